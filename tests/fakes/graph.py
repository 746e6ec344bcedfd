"""A fake Microsoft Graph: client-credentials token, call records, activity report CSV.

Call records are kept exactly 30 days (a ``startDateTime`` filter reaching further
back is refused), filtered on ``startDateTime`` and paged with ``@odata.nextLink``
(a client that re-adds its ``$filter`` to a next link gets a 400, as a skip token
already carries the query). The activity report answers 302 to a download URL on
``/download/...`` that refuses requests carrying an ``Authorization`` header.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from tests.fakes.common import Tokens, parse
from tests.fakes.server import FakeServer, Faults, Reply, Request

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "graph-secret~value.ABC"
#: Call records are kept 30 days; a filter reaching further back is refused.
RETENTION = dt.timedelta(days=30)
FILTER = re.compile(r"startDateTime ge (\S+) and startDateTime lt (\S+)")


class FakeGraph:
    """Records, participants and per-day CSV reports, with faults keyed by endpoint."""

    def __init__(self, server: FakeServer, now: dt.datetime) -> None:
        self.server = server
        self.now = now
        self.records: list[dict[str, Any]] = []
        self.participants: dict[str, list[dict[str, Any]]] = {}
        self.reports: dict[str, str] = {}
        self.header = ""
        self.concealed: bool | None = True
        self.tokens = Tokens("graphtok")
        self.faults = Faults()
        self._pages: dict[str, tuple[list[dict[str, Any]], int, int]] = {}
        self._downloads: dict[str, str] = {}
        server.route("POST", f"/{re.escape(TENANT)}/oauth2/v2.0/token", self.token)
        server.route("GET", "/v1.0/communications/callRecords", self.call_records)
        server.route(
            "GET", "/v1.0/communications/callRecords/([^/]+)/participants_v2", self.participants_v2
        )
        server.route("GET", "/v1.0/admin/reportSettings", self.report_settings)
        server.route(
            "GET", r"/v1.0/reports/getTeamsUserActivityUserDetail\(date=([0-9-]+)\)", self.activity
        )
        server.route("GET", "/download/([^/]+)", self.download)

    def token(self, req: Request) -> Reply:
        form = req.form()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Reply(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        if (
            form.get("scope") != "https://graph.microsoft.com/.default"
            or form.get("grant_type") != "client_credentials"
        ):
            return Reply(400, {"error": "invalid_request"})
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": self.tokens.issue(),
            },
        )

    def _guard(self, req: Request, key: str) -> Reply | None:
        if (r := self.faults.take(key)) is not None:
            return r
        if not self.tokens.ok(req):
            return Reply(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token has expired or is not yet valid.",
                    }
                },
            )
        return None

    def call_records(self, req: Request) -> Reply:
        if (r := self._guard(req, "records")) is not None:
            return r
        token = req.query.get("$skiptoken")
        if token:
            if "$filter" in req.query:
                return Reply(
                    400,
                    {"error": {"code": "BadRequest", "message": "$skiptoken and $filter together"}},
                )
            items, offset, size = self._pages.pop(token)
            return self._page(items, offset, size, "/v1.0/communications/callRecords")
        m = FILTER.fullmatch(req.query.get("$filter", ""))
        if not m:
            return Reply(400, {"error": {"code": "BadRequest", "message": "Invalid filter"}})
        lo, hi = parse(m.group(1)), parse(m.group(2))
        kept = self.now - RETENTION
        if lo < kept:
            return Reply(
                400,
                {"error": {"code": "BadRequest", "message": "startDateTime is older than 30 days"}},
            )
        items = [
            r
            for r in self.records
            if lo <= parse(r["startDateTime"]) < hi and parse(r["startDateTime"]) >= kept
        ]
        size = 60
        prefer = req.header("Prefer") or ""
        if prefer.startswith("odata.maxpagesize="):
            size = int(prefer.split("=")[1])
        return self._page(items, 0, size, "/v1.0/communications/callRecords")

    def participants_v2(self, req: Request) -> Reply:
        if (r := self._guard(req, "participants")) is not None:
            return r
        rid = req.raw_path.split("/")[4]
        path = f"/v1.0/communications/callRecords/{rid}/participants_v2"
        token = req.query.get("$skiptoken")
        if token:
            items, offset, size = self._pages.pop(token)
            return self._page(items, offset, size, path)
        if rid not in self.participants:
            return Reply(404, {"error": {"code": "NotFound", "message": "Record not found"}})
        return self._page(self.participants[rid], 0, 2, path)

    def _page(self, items: list[dict[str, Any]], offset: int, size: int, path: str) -> Reply:
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata",
            "value": items[offset : offset + size],
        }
        if offset + size < len(items):
            token = secrets.token_urlsafe(9) + "=="
            self._pages[token] = (items, offset + size, size)
            body["@odata.nextLink"] = f"{self.server.url}{path}?$skiptoken={token}"
        return Reply(200, body)

    def report_settings(self, req: Request) -> Reply:
        if (r := self._guard(req, "settings")) is not None:
            return r
        return Reply(200, {"id": "reportSettings", "displayConcealedNames": self.concealed})

    def activity(self, req: Request) -> Reply:
        if (r := self._guard(req, "activity")) is not None:
            return r
        day = dt.date.fromisoformat(req.raw_path.split("(date=")[1].rstrip(")"))
        if day < (self.now - dt.timedelta(days=30)).date() or day >= self.now.date():
            return Reply(
                400,
                {"error": {"code": "BadRequest", "message": "Invalid value for parameter date"}},
            )
        token = secrets.token_urlsafe(12)
        self._downloads[token] = self.reports.get(day.isoformat(), self.header)
        return Reply(
            302, b"", {"Location": f"{self.server.url}/download/{token}?sig=PRESIGNED-{token}"}
        )

    def download(self, req: Request) -> Reply:
        if req.header("Authorization"):
            return Reply(400, "Authorization header not allowed on a pre-authenticated URL")
        token = req.raw_path.rsplit("/", 1)[1]
        if token not in self._downloads:
            return Reply(404, "expired")
        text = self._downloads.pop(token)  # valid once, for a few minutes
        return Reply(200, "\ufeff" + text, {"Content-Type": "application/octet-stream"})
