"""Cisco Webex: ended meeting instances per host, via an admin-authorised OAuth integration.

``GET /meetings?meetingType=meeting&state=ended`` lists instances (not series) of one
host, so the adapter walks the configured hosts (or every person of the org) window
by window, following ``Link: rel="next"`` verbatim, and counts participants of each
instance with ``/meetingParticipants``. Access tokens come from the refresh token;
when Webex rotates it, the new one is written back to the secret file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workstyle.adapters.base import Quarantined
from workstyle.adapters.http import HTTP_OPTIONS, HttpClient, HttpError, TokenCache
from workstyle.adapters.windowed import (
    Page,
    PageRequest,
    Window,
    WindowedApiSource,
    WindowRows,
    parse_iso,
    seconds_between,
    skipped,
)
from workstyle.collector.options import Option

log = logging.getLogger("collector.webex")

DEFAULT_BASE = "https://webexapis.com/v1"
#: Webex says "not available" with this time (or none) for join/leave times.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def live_meetings(adapter: Webex, client: HttpClient) -> Iterator[tuple[str, int | None]]:
    """(meeting id, participants) of the configured hosts' meetings in progress now (one
    ``state=inProgress`` list per host): for the live reader."""
    q = Quarantined.empty()
    params = {"meetingType": "meeting", "state": "inProgress"}
    for host in [str(h) for h in adapter.opt("hosts") or []]:
        for m in adapter._items(client, "/meetings", "GET /meetings", dict(params, hostEmail=host)):
            if m.get("id"):
                yield m["id"], adapter._participants(client, m["id"], host, q)


class Webex(WindowedApiSource):
    """Webex meeting instances (``/meetings``) with participant counts.

    ``/meetings`` documents no history limit, so :meth:`oldest` stays None.
    """

    kind = "webex"
    tables = ("meetings",)
    summary = "Cisco Webex ended meeting instances per host (OAuth integration)."
    options = (
        Option("client_id", "str", "Client ID of the Webex integration.", required=True),
        Option(
            "client_secret", "secret", "Client secret: 'env:VAR' or 'file:PATH'.", required=True
        ),
        Option(
            "refresh_token",
            "secret",
            "Refresh token of the admin who authorised the"
            " integration; use 'file:PATH' so a rotated token is saved back.",
            required=True,
        ),
        Option("base_url", "str", "API base URL.", default=DEFAULT_BASE, identity=True),
        Option(
            "site_url",
            "str",
            "Webex site (e.g. 'pref-example.webex.com'); default: the admin's preferred site.",
            identity=True,
        ),
        Option(
            "hosts",
            "list",
            "Host e-mail addresses to read; empty: every person in the"
            " organisation (GET /people, needs spark-admin:people_read).",
            default=[],
        ),
        Option("initial_days", "int", "History read by the first incremental run.", default=30),
        Option(
            "window_days",
            "int",
            "Days per request window (Webex lists at most 10,000 instances per query).",
            default=7,
        ),
        Option(
            "count_participants",
            "bool",
            "Count each instance's participants (one /meetingParticipants call per meeting).",
            default=True,
        ),
        Option("page_size", "int", "Items per page (Webex's maximum is 100).", default=100),
        *HTTP_OPTIONS,
    )

    # -- plumbing ---------------------------------------------------------------------
    def open_client(self) -> HttpClient:
        client = self.make_client()
        self._refresh: str | None = None
        client.token = TokenCache(lambda: self._fetch_token(client))
        return client

    def _fetch_token(self, client: HttpClient) -> tuple[str, float]:
        current = self._refresh or self.secret("refresh_token")
        resp = client.request(
            "POST",
            self._url("/access_token"),
            "POST /access_token",
            auth=False,
            data={
                "grant_type": "refresh_token",
                "client_id": self.opt("client_id"),
                "client_secret": self.secret("client_secret"),
                "refresh_token": current,
            },
        )
        body = resp.json()
        rotated = body.get("refresh_token")
        if rotated and rotated != current:
            self._save_refresh_token(rotated)
        self._refresh = rotated or current
        return body["access_token"], float(body.get("expires_in", 3600))

    def _save_refresh_token(self, token: str) -> None:
        """Persist a rotated refresh token where the operator keeps it (never logged)."""
        ref = str(self.source.options.get("refresh_token") or "")
        if not ref.startswith("file:"):
            log.warning(
                "%s: Webex issued a new refresh token but refresh_token is %s; it"
                " cannot be saved there. Use 'file:PATH' so the next run has it.",
                self.name,
                ref.split(":", 1)[0] + ":...",
            )
            return
        path = Path(ref[5:]).expanduser()
        # Write beside the file and rename over it: a crash never leaves half a token.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".refresh-")
        try:
            os.chmod(tmp, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(token + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            log.error(
                "%s: could not save the rotated Webex refresh token to %s: %s",
                self.name,
                path,
                exc.strerror,
            )
            return
        log.info("%s: saved the rotated Webex refresh token to %s", self.name, path)

    def _url(self, path: str) -> str:
        return self.base_url("base_url", DEFAULT_BASE) + path

    def next_page(self, page: Page) -> PageRequest | None:
        # The next link carries the whole query (cursor included): add nothing.
        url = page.links.get("next", {}).get("url")
        return page.request.at(url) if url else None

    def _items(
        self, client: HttpClient, path: str, label: str, params: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Items of a list, following ``Link: rel="next"`` verbatim."""
        first = PageRequest(
            self._url(path),
            label,
            dict(params, max=int(self.opt("page_size") or 100)),
            {"timezone": "UTC"},
        )
        for page in self.pages(client, first):
            yield from page.body.get("items") or []

    # -- reading ----------------------------------------------------------------------
    def prepare(self, client: HttpClient) -> None:
        self._host_list = self._hosts(client)
        self._seen: set[str] = set()

    def read_window(self, client: HttpClient, w: Window) -> WindowRows:
        return self._window(client, w, self._host_list, self._seen)

    def _hosts(self, client: HttpClient) -> list[str]:
        configured = [str(h) for h in self.opt("hosts") or []]
        if configured:
            return configured
        hosts = []
        for person in self._items(client, "/people", "GET /people", {}):
            emails = person.get("emails") or []
            if emails:
                hosts.append(str(emails[0]))
        return hosts

    def _window(
        self, client: HttpClient, w: Window, hosts: list[str], seen: set[str]
    ) -> WindowRows:
        q = Quarantined.empty()
        rows: list[dict[str, Any]] = []
        label = "GET /meetings"
        params: dict[str, Any] = {
            "meetingType": "meeting",
            "state": "ended",
            "from": f"{w.start:%Y-%m-%dT%H:%M:%SZ}",
            "to": f"{w.end:%Y-%m-%dT%H:%M:%SZ}",
        }
        if self.opt("site_url"):
            params["siteUrl"] = self.opt("site_url")
        for host in hosts:
            try:
                for n, m in enumerate(
                    self._items(client, "/meetings", label, dict(params, hostEmail=host)), start=1
                ):
                    mid = m.get("id")
                    if not mid:
                        q.add(label, "meeting without id", str(m)[:500])
                        continue
                    if mid in seen:
                        continue
                    start = parse_iso(m.get("start"))
                    if start is not None and not (w.start <= start < w.end):
                        continue  # listed because it overlaps: it belongs to another window
                    seen.add(mid)
                    rows.append(
                        self._row(client, m, host, q, f"{label} {w.start:%Y-%m-%d} host item {n}")
                    )
            except HttpError as err:
                if err.status not in (400, 404):
                    raise
                skipped(q, err, "a host's meetings")
        return rows, q, len(rows) + len(q)

    def _row(
        self, client: HttpClient, m: dict[str, Any], host: str, q: Quarantined, location: str
    ) -> dict[str, Any]:
        start, end = parse_iso(m.get("start")), parse_iso(m.get("end"))
        participants = None
        if self.opt("count_participants") is not False:
            participants = self._participants(client, m["id"], host, q)
        return {
            "meeting_id": m["id"],
            "platform": "webex",
            "start_time": start,
            "end_time": end,
            "duration_seconds": seconds_between(start, end),
            "participants": participants,
            "host": m.get("hostEmail") or m.get("hostUserId") or host,
            "department": None,
            "series_id": m.get("meetingSeriesId"),
            "topic": m.get("title"),
            "_location": location,
        }

    def _participants(
        self, client: HttpClient, meeting_id: str, host: str, q: Quarantined
    ) -> int | None:
        label = "GET /meetingParticipants"
        people: set[str] = set()
        try:
            for p in self._items(
                client, "/meetingParticipants", label, {"meetingId": meeting_id, "hostEmail": host}
            ):
                joined = parse_iso(p.get("joinedTime"))
                if joined is not None and joined <= EPOCH:
                    continue  # "not available": never joined
                who = p.get("email") or p.get("id") or p.get("displayName")
                if who:
                    people.add(str(who).lower())
        except HttpError as err:
            if err.status not in (400, 404):
                raise
            skipped(q, err, f"participants of {meeting_id}")
            return None
        return len(people)

    def check(self) -> str:
        """Refresh the access token and read the authorising user."""
        client = self.open_client()
        try:
            client.get_json(self._url("/people/me"), "GET /people/me")
            hosts = len(self._hosts(client))
            return f"ok (token refreshed, {hosts} host(s) to read)"
        finally:
            client.close()
