"""Zoom: meeting instances from the Dashboard or Report API, via Server-to-Server OAuth.

Each meeting instance (``uuid``) that took place becomes one ``meetings`` row. Windows
are ``window_days`` whole UTC days; Zoom answers for a ``from`` no older than six
calendar months before the (UTC) date of the query, so every ``from`` is clipped to
that date. Dates are queried with one day of overlap on each side because Zoom does
not say which zone its ``from``/``to`` dates are in (the range stays within one
calendar month), and rows are then assigned to the window their start falls in, so an
instance returned twice lands once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from workstyle.adapters.base import Quarantined
from workstyle.adapters.http import HTTP_OPTIONS, HttpClient, HttpError, TokenCache
from workstyle.adapters.windowed import (
    DAY,
    Page,
    PageRequest,
    Window,
    WindowedApiSource,
    WindowRows,
    months_before,
    parse_iso,
    seconds_between,
    skipped,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

log = logging.getLogger("collector.zoom")

#: Restarts of one window when its next_page_token expires (15 min lifetime).
MAX_WINDOW_RESTARTS = 2
#: Zoom keeps report and dashboard data for six calendar months.
HISTORY_MONTHS = 6
#: Longest window: with a day of overlap on each side the range (``to`` - ``from`` =
#: days + 1) stays within one calendar month even in February.
MAX_WINDOW_DAYS = 27


def encode_uuid(uuid: str) -> str:
    """A meeting UUID as a path segment; double-encoded when Zoom requires it."""
    once = quote(uuid, safe="")
    # Zoom's documented rule: a UUID starting with '/' or containing '//' is encoded twice.
    return quote(once, safe="") if uuid.startswith("/") or "//" in uuid else once


def hms_seconds(value: Any) -> int | None:
    """Seconds from the Dashboard API's ``HH:MM:SS`` (or ``MM:SS``) duration."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = [int(p) for p in value.split(":")]
    except ValueError:
        return None
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


def live_meetings(adapter: Zoom, client: HttpClient, today: dt.date) -> Iterator[dict[str, Any]]:
    """Meetings in progress now (Dashboard ``type=live``), every page: for the live reader."""
    window = {"type": "live", "from": f"{today - dt.timedelta(days=1)}", "to": f"{today}"}
    return adapter._pages(client, "/metrics/meetings", "GET /metrics/meetings", window, "meetings")


class _PageTokenExpired(Exception):
    """Zoom refused a next_page_token (it lives 15 minutes): restart the window."""


class Zoom(WindowedApiSource):
    """Zoom meetings through the Dashboard (``/metrics/meetings``) or Report API."""

    kind = "zoom"
    tables = ("meetings",)
    window_days_default = MAX_WINDOW_DAYS
    history_text = "six calendar months"
    summary = "Zoom meeting instances (Server-to-Server OAuth; Dashboard or Report API)."
    options = (
        Option(
            "account_id",
            "str",
            "Zoom account ID of the Server-to-Server OAuth app.",
            required=True,
            identity=True,
        ),
        Option("client_id", "str", "Client ID of the Server-to-Server OAuth app.", required=True),
        Option(
            "client_secret", "secret", "Client secret: 'env:VAR' or 'file:PATH'.", required=True
        ),
        Option(
            "api",
            "str",
            "'dashboard' (/metrics/meetings, Business plan) or 'report'"
            " (active hosts -> per-host meeting reports, Pro plan).",
            default="dashboard",
            choices=("dashboard", "report"),
        ),
        Option(
            "base_url",
            "str",
            "API base URL (an on-premises proxy, or a test server).",
            default="https://api.zoom.us/v2",
            identity=True,
        ),
        Option(
            "oauth_url",
            "str",
            "Token endpoint (an on-premises proxy, or a test server).",
            default="https://zoom.us/oauth/token",
        ),
        Option("initial_days", "int", "History read by the first incremental run.", default=30),
        Option(
            "window_days",
            "int",
            "Whole UTC days per request (Zoom allows one calendar month; a day of"
            " overlap is added on each side).",
            default=MAX_WINDOW_DAYS,
        ),
        Option("page_size", "int", "Records per page (Zoom's maximum is 300).", default=300),
        Option(
            "quota_reserve",
            "int",
            "Stop when Zoom's daily quota has this many requests"
            " left (the quota is shared with every app on the account).",
            default=0,
        ),
        Option(
            "fill_details",
            "bool",
            "Fetch /past_meetings/{uuid} for listed instances"
            " missing times or participant counts (a known Dashboard quirk).",
            default=True,
        ),
        *HTTP_OPTIONS,
    )

    @classmethod
    def validate(cls, options: dict[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if not 1 <= int(options.get("window_days") or MAX_WINDOW_DAYS) <= MAX_WINDOW_DAYS:
            problems.append(
                (
                    "window_days",
                    f"expected 1..{MAX_WINDOW_DAYS} (Zoom allows one calendar month per"
                    " request; a day of overlap is added on each side)",
                )
            )
        if not 1 <= int(options.get("page_size") or 300) <= 300:
            problems.append(("page_size", "expected 1..300"))
        return problems

    # -- plumbing ---------------------------------------------------------------------
    def open_client(self) -> HttpClient:
        client = self.make_client(quota_check=self._quota)
        client.token = TokenCache(lambda: self._fetch_token(client))
        return client

    def _fetch_token(self, client: HttpClient) -> tuple[str, float]:
        resp = client.request(
            "POST",
            str(self.opt("oauth_url") or "https://zoom.us/oauth/token"),
            "POST /oauth/token",
            auth=False,
            data={"grant_type": "account_credentials", "account_id": self.opt("account_id")},
            basic_auth=(str(self.opt("client_id")), self.secret("client_secret")),
        )
        body = resp.json()
        return body["access_token"], float(body.get("expires_in", 3600))

    def _quota(self, resp: requests.Response) -> str | None:
        kind = resp.headers.get("X-RateLimit-Type", "").lower()
        if resp.status_code == 429:
            if "daily" in kind or "daily" in resp.text.lower():
                return "Zoom's daily API quota is exhausted (it resets at 00:00 UTC)"
            return None
        remaining = resp.headers.get("X-RateLimit-Remaining")
        if (
            "daily" in kind
            and remaining is not None
            and remaining.isdigit()
            and int(remaining) <= int(self.opt("quota_reserve") or 0)
        ):
            return (
                f"Zoom's daily API quota is down to {remaining} requests"
                " (quota_reserve); it resets at 00:00 UTC"
            )
        return None

    def _url(self, path: str) -> str:
        return self.base_url("base_url", "https://api.zoom.us/v2") + path

    def next_page(self, page: Page) -> PageRequest | None:
        token = page.body.get("next_page_token") or ""
        return page.request.with_params(next_page_token=token) if token else None

    def _pages(
        self, client: HttpClient, path: str, label: str, params: dict[str, Any], key: str
    ) -> Iterator[dict[str, Any]]:
        """Items of a ``next_page_token`` paged list."""
        first = PageRequest(
            self._url(path), label, dict(params, page_size=int(self.opt("page_size") or 300))
        )
        answered = 0
        try:
            for page in self.pages(client, first):
                answered += 1
                yield from page.body.get(key) or []
        except HttpError as err:
            # Only a request after the first carries a token Zoom can refuse.
            if answered and err.status in (400, 404) and "token" in err.api_message.lower():
                raise _PageTokenExpired from None
            raise

    # -- reading ----------------------------------------------------------------------
    def oldest(self, now: dt.datetime) -> dt.datetime:
        """Six calendar months before the UTC date of the query, from its midnight."""
        day = months_before(now.astimezone(dt.UTC).date(), HISTORY_MONTHS)
        return dt.datetime.combine(day, dt.time(), dt.UTC)

    def read_window(self, client: HttpClient, w: Window) -> WindowRows:
        return self._window(client, w, self._seen)

    def prepare(self, client: HttpClient) -> None:
        self._seen: set[str] = set()

    def _window(self, client: HttpClient, w: Window, seen: set[str]) -> WindowRows:
        """Rows of instances starting in ``w``, restarting if a page token expires."""
        for attempt in range(MAX_WINDOW_RESTARTS + 1):
            try:
                q = Quarantined.empty()
                listed = list(self._list(client, w, q))
                break
            except _PageTokenExpired:
                log.warning(
                    "%s: next_page_token expired in window %s; restarting the window (%d)",
                    self.name,
                    w.unit(self.kind),
                    attempt + 1,
                )
        else:
            raise SourceError(
                f"{self.name}: Zoom kept refusing its own next_page_token in"
                f" window {w.start:%Y-%m-%d}..{w.end:%Y-%m-%d}; try again later"
            )
        rows: list[dict[str, Any]] = []
        for location, item in listed:
            uuid = item.get("uuid")
            if not uuid or uuid in seen:
                if not uuid:
                    q.add(location, "meeting without uuid", str(item)[:500])
                continue
            row = self._row(item, location)
            if not _in(row, w):
                continue  # in the overlap day: it belongs to the neighbouring window
            if self.opt("fill_details") is not False and _incomplete(row):
                self._fill(client, row, uuid, q)
                if not _in(row, w):
                    continue
            seen.add(uuid)
            rows.append(row)
        return rows, q, len(rows) + len(q)

    def _list(
        self, client: HttpClient, w: Window, q: Quarantined
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        # A day of overlap each side (Zoom's dates are in an unstated zone), never
        # reaching past the history edge nor past today.
        lo = (w.start - DAY).date()
        if w.floor is not None:
            lo = max(lo, w.floor.date())
        hi = w.end.date() if w.now is None else min(w.end.date(), w.now.date())
        dates = {"from": f"{lo:%Y-%m-%d}", "to": f"{hi:%Y-%m-%d}"}
        if self.opt("api") == "report":
            hosts = self._pages(
                client, "/report/users", "GET /report/users", dict(dates, type="active"), "users"
            )
            for host in list(hosts):
                hid = host.get("id") or host.get("email")
                if not hid:
                    continue
                label = "GET /report/users/{userId}/meetings"
                try:
                    for n, m in enumerate(
                        self._pages(
                            client,
                            f"/report/users/{quote(str(hid), safe='')}/meetings",
                            label,
                            dict(dates, type="past"),
                            "meetings",
                        ),
                        start=1,
                    ):
                        yield f"{label} {dates['from']}..{dates['to']} #{n}", m
                except HttpError as err:
                    if err.status != 404:
                        raise
                    # A host deleted since the active-host report: counted, not fatal.
                    skipped(q, err, "a host's meetings")
        else:
            label = "GET /metrics/meetings"
            params = dict(dates, type="past", query_date_type="start_time")
            for n, m in enumerate(
                self._pages(client, "/metrics/meetings", label, params, "meetings"), start=1
            ):
                yield f"{label} {dates['from']}..{dates['to']} #{n}", m

    def _row(self, m: dict[str, Any], location: str) -> dict[str, Any]:
        start, end = parse_iso(m.get("start_time")), parse_iso(m.get("end_time"))
        duration = seconds_between(start, end)
        if duration is None:
            raw = m.get("duration")
            duration = (
                hms_seconds(raw)
                if isinstance(raw, str)
                else (int(raw) * 60 if isinstance(raw, int) else None)
            )
        participants = m.get("participants", m.get("participants_count"))
        return {
            "meeting_id": m["uuid"],
            "platform": "zoom",
            "start_time": start,
            "end_time": end,
            "duration_seconds": duration,
            "participants": participants if isinstance(participants, int) else None,
            "host": m.get("email")
            or m.get("user_email")
            or m.get("host")
            or m.get("user_name")
            or None,
            "department": m.get("dept") or None,
            "series_id": str(m["id"]) if m.get("id") is not None else None,
            "topic": m.get("topic"),
            "_location": location,
        }

    def _fill(self, client: HttpClient, row: dict[str, Any], uuid: str, q: Quarantined) -> None:
        label = "GET /past_meetings/{uuid}"
        try:
            d = client.get_json(self._url(f"/past_meetings/{encode_uuid(uuid)}"), label)
        except HttpError as err:
            if err.status not in (400, 404):
                raise
            skipped(q, err, f"details of instance {uuid}")
            return
        start = row["start_time"] or parse_iso(d.get("start_time"))
        end = row["end_time"] or parse_iso(d.get("end_time"))
        row["start_time"], row["end_time"] = start, end
        row["duration_seconds"] = seconds_between(start, end) or row["duration_seconds"]
        if not row["participants"] and isinstance(d.get("participants_count"), int):
            row["participants"] = d["participants_count"]
        row["department"] = row["department"] or d.get("dept") or None

    def check(self) -> str:
        """Get a token and list one page of the configured API."""
        client = self.open_client()
        try:
            today = dt.datetime.now(dt.UTC)
            dates = {
                "from": f"{today - dt.timedelta(days=1):%Y-%m-%d}",
                "to": f"{today:%Y-%m-%d}",
                "page_size": 1,
            }
            if self.opt("api") == "report":
                client.get_json(
                    self._url("/report/users"), "GET /report/users", dict(dates, type="active")
                )
            else:
                client.get_json(
                    self._url("/metrics/meetings"),
                    "GET /metrics/meetings",
                    dict(dates, type="past"),
                )
            return f"ok (token issued, {self.opt('api') or 'dashboard'} API readable)"
        finally:
            client.close()


def _incomplete(row: dict[str, Any]) -> bool:
    return row["start_time"] is None or row["end_time"] is None or not row["participants"]


def _in(row: dict[str, Any], w: Window) -> bool:
    """Whether a row belongs to ``w`` (a row without a start yet is kept to be filled)."""
    st = row["start_time"]
    return st is None or w.start <= st < w.end
