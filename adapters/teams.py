"""Microsoft Teams via Graph: call records as meeting instances, plus daily user activity.

Meetings come from ``/communications/callRecords`` (kept 30 days: no request reaches
further back than 30 days before the moment it is sent), one UTC day per request,
filtered on ``startDateTime`` and paged by ``@odata.nextLink`` used verbatim;
participants are counted from ``participants_v2``. The per-user daily activity report
(``getTeamsUserActivityUserDetail(date=...)``) is an aggregate signal stored in its own
table: Graph answers with a 302 to a pre-authenticated CSV, fetched without our token.
Microsoft re-fills the last three days, so they are re-pulled on every run.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
from collections.abc import Iterator
from typing import Any

import polars as pl

from workstyle.adapters.base import Batch, Quarantined, ReadRequest
from workstyle.adapters.http import HTTP_OPTIONS, HttpClient, HttpError, TokenCache
from workstyle.adapters.windowed import (
    Page,
    PageRequest,
    Window,
    WindowedApiSource,
    WindowRows,
    ceil_second,
    parse_iso,
    seconds_between,
    skipped,
)
from workstyle.collector.errors import ConfigError
from workstyle.collector.options import Option
from workstyle.schemas.tables import empty as empty_table
from workstyle.schemas.teams_activity import TEAMS_ACTIVITY

log = logging.getLogger("collector.teams")

SCOPE = "https://graph.microsoft.com/.default"
#: Graph keeps call records for 30 days.
CALL_RECORD_HISTORY = dt.timedelta(days=30)
#: How far back the activity report's ``date=`` reaches in practice.
REPORT_DAYS = 28
#: CSV header -> column of ``teams_activity`` (counts; durations use the seconds columns).
CSV_COUNTS = {
    "Team Chat Message Count": "team_chat_messages",
    "Private Chat Message Count": "private_chat_messages",
    "Call Count": "calls",
    "Meeting Count": "meetings",
    "Meetings Organized Count": "meetings_organized",
    "Meetings Attended Count": "meetings_attended",
    "Ad Hoc Meetings Organized Count": "adhoc_meetings_organized",
    "Ad Hoc Meetings Attended Count": "adhoc_meetings_attended",
    "Scheduled One-time Meetings Organized Count": "scheduled_onetime_meetings_organized",
    "Scheduled One-time Meetings Attended Count": "scheduled_onetime_meetings_attended",
    "Scheduled Recurring Meetings Organized Count": "scheduled_recurring_meetings_organized",
    "Scheduled Recurring Meetings Attended Count": "scheduled_recurring_meetings_attended",
    "Audio Duration In Seconds": "audio_seconds",
    "Video Duration In Seconds": "video_seconds",
    "Screen Share Duration In Seconds": "screen_share_seconds",
}


class Teams(WindowedApiSource):
    """Teams meetings (call records) and the per-user daily activity report."""

    kind = "teams"
    window_days_default = 1  # one UTC day per request
    history_text = "call records for 30 days"
    tables = ("meetings", "teams_activity")
    summary = "Microsoft Teams call records and daily user activity (Graph, app-only)."
    options = (
        Option(
            "tenant_id", "str", "Entra ID tenant (GUID or domain).", required=True, identity=True
        ),
        Option(
            "client_id", "str", "Application (client) ID of the app registration.", required=True
        ),
        Option(
            "client_secret", "secret", "Client secret: 'env:VAR' or 'file:PATH'.", required=True
        ),
        Option(
            "graph_url",
            "str",
            "Graph base URL.",
            default="https://graph.microsoft.com",
            identity=True,
        ),
        Option(
            "login_url",
            "str",
            "Entra ID login base URL.",
            default="https://login.microsoftonline.com",
        ),
        Option(
            "activity_report",
            "bool",
            "Also read the per-user daily activity report (needs Reports.Read.All).",
            default=True,
        ),
        Option(
            "repull_days",
            "int",
            "Days of the activity report re-read every run (Microsoft re-fills the last three).",
            default=3,
        ),
        Option(
            "initial_days",
            "int",
            "History read by the first incremental run (call records are kept 30 days:"
            " 29 reads all of them without reaching the edge).",
            default=29,
        ),
        Option("include_peer_to_peer", "bool", "Count 1:1 calls as meetings.", default=False),
        Option(
            "page_size", "int", "Call records per page (Prefer: odata.maxpagesize).", default=60
        ),
        *HTTP_OPTIONS,
    )

    # -- plumbing ---------------------------------------------------------------------
    def open_client(self) -> HttpClient:
        client = self.make_client()
        client.token = TokenCache(lambda: self._fetch_token(client))
        return client

    def _fetch_token(self, client: HttpClient) -> tuple[str, float]:
        login = self.base_url("login_url", "https://login.microsoftonline.com")
        resp = client.request(
            "POST",
            f"{login}/{self.opt('tenant_id')}/oauth2/v2.0/token",
            "POST /oauth2/v2.0/token",
            auth=False,
            data={
                "client_id": self.opt("client_id"),
                "scope": SCOPE,
                "client_secret": self.secret("client_secret"),
                "grant_type": "client_credentials",
            },
        )
        body = resp.json()
        return body["access_token"], float(body.get("expires_in", 3599))

    def _url(self, path: str) -> str:
        return self.base_url("graph_url", "https://graph.microsoft.com") + "/v1.0" + path

    def next_page(self, page: Page) -> PageRequest | None:
        # The next link carries the whole query (skip token included): add nothing.
        link = page.body.get("@odata.nextLink")
        return page.request.at(link) if link else None

    def _values(
        self,
        client: HttpClient,
        url: str,
        label: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of an OData collection, following ``@odata.nextLink`` verbatim."""
        for page in self.pages(client, PageRequest(url, label, params, headers)):
            yield from page.body.get("value") or []

    # -- reading ----------------------------------------------------------------------
    def window_days(self) -> int:
        return 1

    def oldest(self, now: dt.datetime) -> dt.datetime:
        """30 days before the request, to the whole second the filter can say."""
        return ceil_second(now - CALL_RECORD_HISTORY)

    def read_window(self, client: HttpClient, w: Window) -> WindowRows:
        return self._calls(client, w)

    def extra_units(self, request: ReadRequest, start: dt.datetime) -> int:
        return len(self._days(request, start))

    def _days(self, request: ReadRequest, start: dt.datetime) -> list[dt.date]:
        return self._report_days(request, start) if self._reports() else []

    def _reports(self) -> bool:
        return self.opt("activity_report") is not False

    def extra_batches(
        self,
        client: HttpClient,
        request: ReadRequest,
        start: dt.datetime,
        done: int,
        total: int,
    ) -> Iterator[Batch]:
        """The activity report, day by day, after the call records."""
        days = self._days(request, start)
        reach = (request.run_start - dt.timedelta(days=REPORT_DAYS)).date()
        if request.mode == "backfill" and self._reports() and start.date() < reach:
            log.warning(
                "%s: the activity report reaches back %d days; report days before %s are"
                " not fetched",
                self.name,
                REPORT_DAYS,
                reach,
            )
        if not days:
            return
        q = Quarantined.empty()
        concealed = self._concealed(client, q)
        for n, day in enumerate(days, start=done + 1):
            unit = f"teams-activity:{day:%Y-%m-%d}"
            if request.mode == "backfill" and unit in request.done_units:
                continue
            frame = self._activity(client, day, concealed, q)
            yield Batch(
                table=TEAMS_ACTIVITY.name,
                rows=frame,
                quarantined=q,
                rows_read=frame.height + len(q),
                unit=unit,
                progress=(n, total),
            )
            q = Quarantined.empty()

    def _calls(self, client: HttpClient, w: Window) -> WindowRows:
        q = Quarantined.empty()
        flt = (
            f"startDateTime ge {w.start:%Y-%m-%dT%H:%M:%SZ}"
            f" and startDateTime lt {w.end:%Y-%m-%dT%H:%M:%SZ}"
        )
        label = "GET /communications/callRecords"
        prefer = {"Prefer": f"odata.maxpagesize={int(self.opt('page_size') or 60)}"}
        latest: dict[str, dict[str, Any]] = {}
        read = 0
        for rec in self._values(
            client, self._url("/communications/callRecords"), label, {"$filter": flt}, prefer
        ):
            read += 1
            rid = rec.get("id")
            if not rid:
                q.add(label, "call record without id", str(rec)[:500])
                continue
            # A record is re-versioned as Graph adds data: keep the highest version.
            if rid not in latest or int(rec.get("version") or 0) > int(
                latest[rid].get("version") or 0
            ):
                latest[rid] = rec
        rows = []
        for rec in latest.values():
            if rec.get("type") == "peerToPeer" and not self.opt("include_peer_to_peer"):
                continue  # a 1:1 call, not a meeting; counted in rows_read
            rows.append(self._row(client, rec, q, f"{label} {w.start:%Y-%m-%d}"))
        return rows, q, read

    def _row(
        self, client: HttpClient, rec: dict[str, Any], q: Quarantined, location: str
    ) -> dict[str, Any]:
        start, end = parse_iso(rec.get("startDateTime")), parse_iso(rec.get("endDateTime"))
        organizer = rec.get("organizer_v2") or {}
        user = (organizer.get("identity") or {}).get("user") or {}
        join = rec.get("joinWebUrl")
        return {
            "meeting_id": rec["id"],
            "platform": "teams",
            "start_time": start,
            "end_time": end,
            "duration_seconds": seconds_between(start, end),
            "participants": self._participants(client, rec["id"], q),
            "host": user.get("id") or organizer.get("id") or None,
            "department": None,
            # Recurring meetings share a join link; store its hash, never the link itself
            # (anyone holding it can join the meeting).
            "series_id": hashlib.sha256(join.encode()).hexdigest()[:16] if join else None,
            "topic": None,
            "_location": location,
        }

    def _participants(self, client: HttpClient, rid: str, q: Quarantined) -> int | None:
        label = "GET /communications/callRecords/{id}/participants_v2"
        try:
            ids = {
                p.get("id")
                for p in self._values(
                    client, self._url(f"/communications/callRecords/{rid}/participants_v2"), label
                )
            }
        except HttpError as err:
            if err.status != 404:
                raise
            skipped(q, err, f"participants of call record {rid}")
            return None
        ids.discard(None)
        return len(ids)

    # -- the activity report -------------------------------------------------------------
    def _report_days(self, request: ReadRequest, start: dt.datetime) -> list[dt.date]:
        """Report days to read: the window plus the days Microsoft may still re-fill."""
        last = (request.run_start - dt.timedelta(days=1)).date()
        first = start.date()
        if request.mode == "incremental":
            first = min(first, last - dt.timedelta(days=int(self.opt("repull_days") or 3) - 1))
        else:
            last = min(
                last, ((request.end or request.run_start) - dt.timedelta(microseconds=1)).date()
            )
        # ``date=`` only reaches back 28 days in practice ("up to 28 days" in the admin
        # center; the Graph docs say 30).
        first = max(first, (request.run_start - dt.timedelta(days=REPORT_DAYS)).date())
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def _concealed(self, client: HttpClient, q: Quarantined) -> bool | None:
        label = "GET /admin/reportSettings"
        try:
            body = client.get_json(self._url("/admin/reportSettings"), label)
        except HttpError as err:
            skipped(q, err, "the report privacy setting")
            return None
        except ConfigError:
            # ReportSettings.Read.All is optional: record the gap, keep reading reports.
            msg = client.stats.errors.get((label, 403), "")
            log.warning(
                "%s: %s: HTTP 403 (%s); names_concealed stays unknown", self.name, label, msg
            )
            q.add(label, f"skipped the report privacy setting: HTTP 403 ({msg})", "")
            return None
        value = body.get("displayConcealedNames")
        return value if isinstance(value, bool) else None

    def _activity(
        self, client: HttpClient, day: dt.date, concealed: bool | None, q: Quarantined
    ) -> pl.DataFrame:
        label = "GET /reports/getTeamsUserActivityUserDetail"
        url = self._url(f"/reports/getTeamsUserActivityUserDetail(date={day:%Y-%m-%d})")
        try:
            resp = client.request(
                "GET", url, label, allow_redirects=False, ok_statuses=frozenset({302})
            )
            if resp.status_code == 302:
                # A pre-authenticated download: no Authorization header, never logged.
                resp = client.request(
                    "GET",
                    resp.headers["Location"],
                    "GET Teams activity report download",
                    auth=False,
                )
        except HttpError as err:
            if err.status not in (400, 404):
                raise
            skipped(q, err, f"the activity report of {day:%Y-%m-%d}")
            return activity_frame([], day, concealed)
        text = resp.content.decode("utf-8-sig")
        return activity_frame(list(csv.DictReader(io.StringIO(text))), day, concealed)

    def check(self) -> str:
        """Get a token, list call records of the last hour and read the report setting."""
        client = self.open_client()
        try:
            now = dt.datetime.now(dt.UTC)
            flt = (
                f"startDateTime ge {now - dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
                f" and startDateTime lt {now:%Y-%m-%dT%H:%M:%SZ}"
            )
            client.get_json(
                self._url("/communications/callRecords"),
                "GET /communications/callRecords",
                {"$filter": flt},
            )
            q = Quarantined.empty()
            concealed = self._concealed(client, q)
            extra = "" if not len(q) else f"; {q.reason[0]}"
            return f"ok (token issued, call records readable, names concealed: {concealed}{extra})"
        finally:
            client.close()


def activity_frame(
    records: list[dict[str, str]], day: dt.date, concealed: bool | None
) -> pl.DataFrame:
    """``teams_activity`` rows from the CSV records of one report day."""
    schema = pl.from_arrow(empty_table(TEAMS_ACTIVITY.schema)).drop("ingested_at").schema
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "report_date": day,
            "user": (r.get("User Id") or r.get("User Principal Name") or "").strip() or None,
            "user_principal_name": (r.get("User Principal Name") or "").strip() or None,
            "last_activity_date": _date(r.get("Last Activity Date")),
            "is_licensed": _flag(r.get("Is Licensed")),
            "is_deleted": _flag(r.get("Is Deleted")),
            "report_refresh_date": _date(r.get("Report Refresh Date")),
            "names_concealed": concealed,
            "_location": f"Teams activity report {day:%Y-%m-%d} user {len(rows) + 1}",
        }
        for header, col in CSV_COUNTS.items():
            value = (r.get(header) or "").strip()
            row[col] = int(value) if value.isdigit() else None
        rows.append(row)
    schema = dict(schema, _location=pl.String())
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _date(value: str | None) -> dt.date | None:
    """A report date; both ``2025-03-06`` and ``2025-03-06T00:00:00Z`` have been seen."""
    if not value or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _flag(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v in ("true", "yes") else False if v in ("false", "no") else None
