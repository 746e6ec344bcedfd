"""A fake Zoom API: S2S OAuth, Dashboard and Report meeting lists, past-meeting details.

It enforces what the real API documents: a ``from``..``to`` range of at most one
calendar month, whose ``from`` is not older than six calendar months before the date
of the query (UTC, the calendar of Zoom's quotas), refused with 400 code 300; Basic
auth on the token endpoint; double-encoded UUIDs. It misbehaves on demand through
``faults`` (keyed ``token``, ``metrics``, ``report_users``, ``report_meetings``,
``past``), ``expire_page_tokens`` and ``daily_remaining``.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import secrets
from typing import Any
from urllib.parse import unquote

from tests.fakes.common import Tokens, parse, unauthorized
from tests.fakes.server import FakeServer, Faults, Reply, Request

CLIENT_ID = "zoom-client-id"
CLIENT_SECRET = "zoom-client-secret-value-XYZ"
ACCOUNT_ID = "acct-123"


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def oldest_from(now: dt.datetime) -> dt.date:
    """The oldest ``from`` Zoom accepts on the (UTC) date of ``now``."""
    return add_months(now.astimezone(dt.UTC).date(), -6)


def range_refusal(req: Request, now: dt.datetime) -> Reply | None:
    """Zoom's answer to a ``from``/``to`` outside its documented limits, else None."""
    lo = dt.date.fromisoformat(req.query["from"])
    hi = dt.date.fromisoformat(req.query["to"])
    if hi < lo or hi > add_months(lo, 1):
        return Reply(400, {"code": 300, "message": "The date range must be within one month."})
    if lo < oldest_from(now):
        return Reply(
            400, {"code": 300, "message": "The date range must fall within the last 6 months"}
        )
    return None


class FakeZoom:
    """State of the fake: meetings (Dashboard shape), details by UUID, page tokens."""

    def __init__(
        self,
        server: FakeServer,
        meetings: list[dict[str, Any]],
        details: dict[str, dict[str, Any]] | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.server = server
        self.meetings = meetings
        self.details = details or {}
        self.now = now or dt.datetime.now(dt.UTC)
        self.tokens = Tokens("zoomtok")
        self.faults = Faults()
        self.expire_page_tokens = 0
        self.daily_remaining: int | None = None
        self.deleted_hosts: set[str] = set()
        #: Meetings in progress, in the Dashboard's ``type=live`` shape.
        self.live: list[dict[str, Any]] = []
        self._pages: dict[str, tuple[list[dict[str, Any]], int]] = {}
        server.route("POST", "/oauth/token", self.token)
        server.route("GET", "/v2/metrics/meetings", self.metrics)
        server.route("GET", "/v2/report/users", self.report_users)
        server.route("GET", "/v2/report/users/([^/]+)/meetings", self.report_meetings)
        server.route("GET", "/v2/past_meetings/([^/]+)", self.past)

    # -- endpoints --------------------------------------------------------------------
    def token(self, req: Request) -> Reply:
        if (r := self.faults.take("token")) is not None:
            return r
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = req.form()
        if req.header("Authorization") != f"Basic {expected}":
            return Reply(
                401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
            )
        if form.get("grant_type") != "account_credentials":
            return Reply(
                400, {"reason": "unsupported grant type", "error": "unsupported_grant_type"}
            )
        if form.get("account_id") != ACCOUNT_ID:
            return Reply(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        return Reply(
            200,
            {
                "access_token": self.tokens.issue(),
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": "dashboard_meetings:read:admin",
            },
        )

    def metrics(self, req: Request) -> Reply:
        return self._list(req, "metrics", lambda m: True, dashboard=True)

    def report_users(self, req: Request) -> Reply:
        if (r := self._guard(req, "report_users")) is not None:
            return r
        if not req.query.get("next_page_token") and (r := range_refusal(req, self.now)):
            return r
        if req.query.get("type") != "active":
            return Reply(200, {"users": []})
        hosts = sorted({m["email"] for m in self._in_range(req)})
        users = [{"id": f"id-{h.split('@')[0]}", "email": h, "user_name": h} for h in hosts]
        return self._page(req, users, "users")

    def report_meetings(self, req: Request) -> Reply:
        user = unquote(req.raw_path.split("/")[4])
        if user in self.deleted_hosts:
            return Reply(404, {"code": 1001, "message": "User does not exist: " + user})
        return self._list(
            req,
            "report_meetings",
            lambda m: f"id-{m['email'].split('@')[0]}" == user,
            dashboard=False,
        )

    def past(self, req: Request) -> Reply:
        if (r := self._guard(req, "past")) is not None:
            return r
        segment = req.raw_path.rsplit("/", 1)[1]
        once = unquote(segment)
        if once.startswith("/") or "//" in once:
            # What the real API does with a single-encoded "/..." UUID.
            return Reply(404, {"code": 3001, "message": "Meeting does not exist."})
        uuid = unquote(once) if "%" in once else once
        if uuid not in self.details:
            return Reply(404, {"code": 3001, "message": "Meeting does not exist."})
        return Reply(200, self.details[uuid])

    # -- helpers ----------------------------------------------------------------------
    def daily_limit(self) -> Reply:
        """The 429 of a spent daily quota, as Zoom documents it."""
        tomorrow = (self.now + dt.timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
        return Reply(
            429,
            {
                "code": 429,
                "message": "You have reached the maximum daily"
                " rate limit for this API. Try again at GMT 00:00:00.",
            },
            {"X-RateLimit-Type": "Daily-limit", "Retry-After": tomorrow},
        )

    def _guard(self, req: Request, key: str) -> Reply | None:
        if (r := self.faults.take(key)) is not None:
            return r
        if not self.tokens.ok(req):
            return unauthorized()
        if self.daily_remaining is not None:
            if self.daily_remaining <= 0:
                return self.daily_limit()
            self.daily_remaining -= 1
        return None

    def _in_range(self, req: Request) -> list[dict[str, Any]]:
        lo = dt.date.fromisoformat(req.query["from"])
        hi = dt.date.fromisoformat(req.query["to"])
        return [
            m
            for m in self.meetings
            if m.get("start_time")
            and lo <= parse(m["start_time"]).date() <= hi
            or not m.get("start_time")
            and m.get("_date")
            and lo <= dt.date.fromisoformat(m["_date"]) <= hi
        ]

    def _list(self, req: Request, key: str, pick: Any, dashboard: bool) -> Reply:
        if (r := self._guard(req, key)) is not None:
            return r
        token = req.query.get("next_page_token")
        if token:
            if self.expire_page_tokens > 0:
                self.expire_page_tokens -= 1
                self._pages.pop(token, None)
                return Reply(
                    400, {"code": 300, "message": "The next page token is invalid or expired."}
                )
            if token not in self._pages:
                return Reply(
                    400, {"code": 300, "message": "The next page token is invalid or expired."}
                )
            items, offset = self._pages.pop(token)
            return self._emit(req, items, offset, "meetings")
        if (r := range_refusal(req, self.now)) is not None:
            return r
        if dashboard and req.query.get("type", "live") == "live":
            # The live list ignores the range beyond checking it; it is what runs now.
            return self._emit(req, list(self.live), 0, "meetings")
        if dashboard and req.query.get("type") != "past":
            return Reply(200, {"meetings": [], "next_page_token": ""})
        items = [m if dashboard else _report_shape(m) for m in self._in_range(req) if pick(m)]
        items = [{k: v for k, v in m.items() if not k.startswith("_")} for m in items]
        return self._emit(req, items, 0, "meetings")

    def _page(self, req: Request, items: list[dict[str, Any]], key: str) -> Reply:
        token = req.query.get("next_page_token")
        if token and token in self._pages:
            items, offset = self._pages.pop(token)
            return self._emit(req, items, offset, key)
        return self._emit(req, items, 0, key)

    def _emit(self, req: Request, items: list[dict[str, Any]], offset: int, key: str) -> Reply:
        size = min(int(req.query.get("page_size", 30)), 300)
        chunk = items[offset : offset + size]
        nxt = ""
        if offset + size < len(items):
            nxt = secrets.token_urlsafe(12)
            self._pages[nxt] = (items, offset + size)
        headers = {}
        if self.daily_remaining is not None:
            headers = {
                "X-RateLimit-Category": "Resource-intensive",
                "X-RateLimit-Type": "Daily-limit",
                "X-RateLimit-Limit": "60000",
                "X-RateLimit-Remaining": str(self.daily_remaining),
            }
        return Reply(
            200,
            {
                "from": req.query.get("from"),
                "to": req.query.get("to"),
                "page_size": size,
                "total_records": len(items),
                "next_page_token": nxt,
                key: chunk,
            },
            headers,
        )


def _report_shape(m: dict[str, Any]) -> dict[str, Any]:
    """A Dashboard item as the Report API returns it (other field names and units)."""
    out = {
        "uuid": m["uuid"],
        "id": m["id"],
        "type": 2,
        "topic": m.get("topic"),
        "user_name": m.get("host"),
        "user_email": m.get("email"),
        "start_time": m.get("start_time"),
        "end_time": m.get("end_time"),
        "participants_count": m.get("participants"),
        "source": "Zoom",
    }
    if m.get("start_time") and m.get("end_time"):
        out["duration"] = int((parse(m["end_time"]) - parse(m["start_time"])).total_seconds() // 60)
    return out
