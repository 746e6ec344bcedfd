"""A fake Webex API: refresh-token grant with rotation, people, meetings, participants.

Every refresh returns a new refresh token and retires the old one (the strictest
behaviour a client must survive). Lists are paged with an RFC 5988 ``Link`` header
whose URL carries an opaque cursor; a request with a cursor *and* other filters is
refused, so a client that rebuilds the query instead of following the link fails.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from tests.fakes.common import Tokens, parse
from tests.fakes.server import FakeServer, Faults, Reply, Request

CLIENT_ID = "C0ffee-webex-integration"
CLIENT_SECRET = "webex-client-secret-987"
FIRST_REFRESH = "webex-refresh-token-0"


class FakeWebex:
    """Hosts' meetings and per-meeting participants."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.people: list[dict[str, Any]] = []
        self.meetings: list[dict[str, Any]] = []
        self.participants: dict[str, list[dict[str, Any]]] = {}
        #: Meeting instances in progress now (``state=inProgress``), with ``hostEmail``.
        self.in_progress: list[dict[str, Any]] = []
        self.refresh_tokens = {FIRST_REFRESH}
        self.rotate = True
        self.tokens = Tokens("webextok")
        self.faults = Faults()
        self._cursors: dict[str, tuple[list[dict[str, Any]], int, int, str]] = {}
        server.route("POST", "/v1/access_token", self.access_token)
        server.route("GET", "/v1/people", self.list_people)
        server.route("GET", "/v1/people/me", self.me)
        server.route("GET", "/v1/meetings", self.list_meetings)
        server.route("GET", "/v1/meetingParticipants", self.list_participants)

    def access_token(self, req: Request) -> Reply:
        form = req.form()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Reply(
                401,
                {
                    "message": "The client credentials are invalid.",
                    "errors": [{"description": "invalid_client"}],
                },
            )
        current = form.get("refresh_token")
        if form.get("grant_type") != "refresh_token" or current not in self.refresh_tokens:
            return Reply(
                400,
                {
                    "message": "The refresh token provided is expired, revoked,"
                    " malformed, or invalid.",
                    "errors": [{"description": "invalid_grant"}],
                },
            )
        new = current
        if self.rotate:
            new = f"webex-refresh-token-{secrets.token_hex(6)}"
            self.refresh_tokens = {new}
        return Reply(
            200,
            {
                "access_token": self.tokens.issue(),
                "expires_in": 1209599,
                "refresh_token": new,
                "refresh_token_expires_in": 7775999,
                "token_type": "Bearer",
            },
        )

    def _guard(self, req: Request, key: str) -> Reply | None:
        if (r := self.faults.take(key)) is not None:
            return r
        if not self.tokens.ok(req):
            return Reply(
                401,
                {
                    "message": "The request requires a valid access token set in"
                    " the Authorization request header.",
                    "trackingId": "ROUTER_1",
                },
            )
        return None

    def me(self, req: Request) -> Reply:
        return self._guard(req, "me") or Reply(200, self.people[0] if self.people else {})

    def list_people(self, req: Request) -> Reply:
        return self._guard(req, "people") or self._list(req, "/v1/people", self.people)

    def list_meetings(self, req: Request) -> Reply:
        if (r := self._guard(req, "meetings")) is not None:
            return r
        if "cursor" in req.query:
            return self._list(req, "/v1/meetings", [])
        q = req.query
        if q.get("meetingType") == "meeting" and q.get("state") == "inProgress":
            items = [m for m in self.in_progress if m["hostEmail"] == q.get("hostEmail")]
            return self._list(req, "/v1/meetings", items)
        if (
            q.get("meetingType") != "meeting"
            or q.get("state") != "ended"
            or req.header("timezone") != "UTC"
        ):
            return Reply(400, {"message": "expected meetingType=meeting, state=ended, UTC"})
        lo, hi = parse(q["from"]), parse(q["to"])
        items = [
            m
            for m in self.meetings
            if m["hostEmail"] == q.get("hostEmail")
            # Listed when the meeting overlaps the range, as a time-range query does.
            and parse(m["start"]) < hi
            and parse(m["end"]) > lo
        ]
        return self._list(req, "/v1/meetings", items)

    def list_participants(self, req: Request) -> Reply:
        if (r := self._guard(req, "participants")) is not None:
            return r
        if "cursor" in req.query:
            return self._list(req, "/v1/meetingParticipants", [])
        mid = req.query.get("meetingId", "")
        if mid not in self.participants:
            return Reply(404, {"message": "Meeting not found.", "trackingId": "ROUTER_2"})
        return self._list(req, "/v1/meetingParticipants", self.participants[mid])

    def _list(self, req: Request, path: str, items: list[dict[str, Any]]) -> Reply:
        cursor = req.query.get("cursor")
        if cursor:
            if set(req.query) != {"cursor"}:
                return Reply(400, {"message": "cursor cannot be combined with other filters"})
            items, offset, size, _ = self._cursors.pop(cursor)
        else:
            offset, size = 0, int(req.query.get("max", 10))
        headers = {}
        if offset + size < len(items):
            cursor = secrets.token_urlsafe(9)
            self._cursors[cursor] = (items, offset + size, size, path)
            headers["Link"] = f'<{self.server.url}{path}?cursor={cursor}>; rel="next"'
        return Reply(200, {"items": items[offset : offset + size]}, headers)


def shifted_meetings(items: list[dict[str, Any]], delta: dt.timedelta) -> list[dict[str, Any]]:
    from tests.fakes.common import shift_times

    return shift_times(items, delta, ("start", "end", "joinedTime", "leftTime", "meetingStartTime"))
