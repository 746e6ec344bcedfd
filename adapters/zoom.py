"""Zoom: meeting instances from the Dashboard or Report API, via Server-to-Server OAuth.

Each meeting instance (``uuid``) that took place becomes one ``meetings`` row. Windows
are at most ``window_days`` (the API allows one month) inside the six months Zoom
keeps; dates are queried with one day of overlap because Zoom does not say which
zone its ``from``/``to`` dates are in, and rows are then assigned to the window their
start falls in, so an instance returned twice lands once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.http import HTTP_OPTIONS, HttpClient, HttpError, TokenCache
from workstyle.adapters.webconf import (
    Window,
    base_url,
    finish,
    make_client,
    parse_iso,
    pending_windows,
    read_range,
    seconds_between,
    skipped,
    split,
    window_batch,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

log = logging.getLogger("collector.zoom")

#: Restarts of one window when its next_page_token expires (15 min lifetime).
MAX_WINDOW_RESTARTS = 2


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


def live_client(adapter: Zoom) -> HttpClient:
    """An HTTP client with the source's token and quota check: for the live reader."""
    return adapter._client()


def live_meetings(adapter: Zoom, client: HttpClient, today: dt.date) -> Iterator[dict[str, Any]]:
    """Meetings in progress now (Dashboard ``type=live``), every page: for the live reader."""
    window = {"type": "live", "from": f"{today - dt.timedelta(days=1)}", "to": f"{today}"}
    return adapter._pages(client, "/metrics/meetings", "GET /metrics/meetings", window, "meetings")


class _PageTokenExpired(Exception):
    """Zoom refused a next_page_token (it lives 15 minutes): restart the window."""


class Zoom(Adapter):
    """Zoom meetings through the Dashboard (``/metrics/meetings``) or Report API."""

    commit_each_batch = True  # API windows are slow to fetch: commit each one

    kind = "zoom"
    tables = ("meetings",)
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
        Option("base_url", "str", "API base URL.", default="https://api.zoom.us/v2", identity=True),
        Option("oauth_url", "str", "Token endpoint.", default="https://zoom.us/oauth/token"),
        Option("initial_days", "int", "History read by the first incremental run.", default=30),
        Option("history_days", "int", "How far back Zoom keeps reports (six months).", default=180),
        Option("window_days", "int", "Days per API window (Zoom allows one month).", default=28),
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
        if not 1 <= int(options.get("window_days") or 28) <= 29:
            problems.append(
                (
                    "window_days",
                    "expected 1..29 (Zoom allows one month per"
                    " request; one day of overlap is added)",
                )
            )
        if not 1 <= int(options.get("page_size") or 300) <= 300:
            problems.append(("page_size", "expected 1..300"))
        return problems

    # -- plumbing ---------------------------------------------------------------------
    def _client(self) -> HttpClient:
        client = make_client(self, quota_check=self._quota)
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
        return base_url(self, "base_url", "https://api.zoom.us/v2") + path

    def _pages(
        self, client: HttpClient, path: str, label: str, params: dict[str, Any], key: str
    ) -> Iterator[dict[str, Any]]:
        """Items of a ``next_page_token`` paged list."""
        token = ""
        while True:
            query = dict(params, page_size=int(self.opt("page_size") or 300))
            if token:
                query["next_page_token"] = token
            try:
                body = client.get_json(self._url(path), label, query)
            except HttpError as err:
                text = err.api_message.lower()
                if token and err.status in (400, 404) and "token" in text:
                    raise _PageTokenExpired from None
                raise
            yield from body.get(key) or []
            token = body.get("next_page_token") or ""
            if not token:
                return

    # -- reading ----------------------------------------------------------------------
    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """One batch per window; checkpoint (incremental) or unit (backfill) per window."""
        start, end = read_range(
            self,
            request,
            initial_days=int(self.opt("initial_days") or 30),
            history_days=int(self.opt("history_days") or 180),
        )
        windows = split(start, end, dt.timedelta(days=int(self.opt("window_days") or 28)))
        client = self._client()
        seen: set[str] = set()
        try:
            for i, w in pending_windows(self, request, windows):
                rows, q, read = self._window(client, w, seen)
                yield window_batch(self, request, w, (i, len(windows)), rows, q, read)
        finally:
            finish(self, client)

    def _window(
        self, client: HttpClient, w: Window, seen: set[str]
    ) -> tuple[list[dict[str, Any]], Quarantined, int]:
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
        dates = {"from": f"{w.start - dt.timedelta(days=1):%Y-%m-%d}", "to": f"{w.end:%Y-%m-%d}"}
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
        client = self._client()
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
