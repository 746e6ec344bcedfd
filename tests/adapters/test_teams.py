"""Teams adapter against a fake Microsoft Graph on 127.0.0.1, through the real pipeline."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import pytest

from tests.fakes.common import FIXTURES, fixture, iso, shift_times
from tests.fakes.graph import CLIENT_ID, CLIENT_SECRET, TENANT, FakeGraph
from tests.fakes.harness import (
    FAST,
    KEY,
    backfill,
    config,
    incremental,
    pseudonym,
    quarantine,
    serve,
    status,
    table,
)
from tests.fakes.resume import Resumable, check_resume
from tests.fakes.server import Reply
from workstyle.collector.ingest.pipeline import Pipeline
from workstyle.collector.pseudonyms import Pseudonymiser

#: The injected clock: every run and the fake share it, so no test depends on the date
#: or the time of day it runs at (10:59 UTC once split the fixture's records in two).
NOW = dt.datetime(2026, 12, 1, 10, 59, 0, tzinfo=dt.UTC)
CSV = (FIXTURES / "teams" / "user_activity_detail.csv").read_text(encoding="utf-8")
HEADER = CSV.splitlines()[0] + "\n"
RECORD_ID = "3cf3bbc8-b21d-4f2e-bfd0-b13603ae6c65"


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("GRAPH_SECRET", CLIENT_SECRET)


def source(server, **extra):
    return {
        "name": "teams",
        "kind": "teams",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": "env:GRAPH_SECRET",
        "graph_url": server.url,
        "login_url": server.url,
        **FAST,
        **extra,
    }


def report_for(day: dt.date) -> str:
    """The fixture CSV as Graph would serve it for ``day``."""
    refresh = (day + dt.timedelta(days=1)).isoformat()
    return HEADER + "".join(
        refresh + line[len("2025-03-06") :] + "\n" for line in CSV.splitlines()[1:]
    )


def graph_with_fixtures(server) -> tuple[FakeGraph, dt.datetime]:
    fake = FakeGraph(server, NOW)
    start = (NOW - dt.timedelta(days=5)).replace(hour=9, minute=28, second=38)
    delta = start - dt.datetime(2023, 9, 25, 9, 28, 38, tzinfo=dt.UTC)
    keys = ("startDateTime", "endDateTime", "lastModifiedDateTime")
    records = shift_times(fixture("teams", "call_records.json")["value"], delta, keys)
    older = dict(records[0], version=1, endDateTime=iso(start + dt.timedelta(minutes=5)))
    fake.records = [older, records[1], records[0]]  # version 1 first, then version 2
    fake.participants[RECORD_ID] = fixture("teams", "participants_v2.json")["value"]
    fake.header = HEADER
    return fake, start


def test_call_records_and_activity_report_land_exactly(server, tmp_path):
    fake, start = graph_with_fixtures(server)
    day = (NOW - dt.timedelta(days=3)).date()
    fake.reports[day.isoformat()] = report_for(day)
    cfg = config(tmp_path, source(server, page_size=1))

    res = incremental(cfg, now=NOW)

    assert res.ok, res.error
    meetings = table(cfg).select(
        "meeting_id",
        "platform",
        "start_time",
        "end_time",
        "duration_seconds",
        "participants",
        "host",
        "series_id",
    )
    join = fixture("teams", "call_records.json")["value"][0]["joinWebUrl"]
    assert meetings.rows() == [
        (
            RECORD_ID,
            "teams",
            start,
            start + dt.timedelta(hours=1, seconds=3),
            3603,
            3,
            pseudonym("821809f5-0000-0000-0000-3b5136c0e777"),
            hashlib.sha256(join.encode()).hexdigest()[:16],
        )
    ]
    activity = table(cfg, "teams_activity")
    assert activity.select(
        "report_date",
        "user",
        "user_principal_name",
        "meetings",
        "meetings_organized",
        "audio_seconds",
        "is_licensed",
        "report_refresh_date",
        "names_concealed",
    ).sort("user_principal_name").rows() == [
        (
            day,
            pseudonym("3c2f5b1e-0d4a-4b7e-9a51-6f0e6a1c2d33"),
            pseudonym("adele@contoso.com"),
            5,
            1,
            11525,
            True,
            day + dt.timedelta(days=1),
            True,
        ),
        (
            day,
            pseudonym("5d1e2f3a-1b2c-4d5e-8f90-0a1b2c3d4e5f"),
            pseudonym("ken@contoso.com"),
            0,
            0,
            0,
            True,
            day + dt.timedelta(days=1),
            True,
        ),
    ]
    downloads = server.requests("GET", "/download/.*")
    reports = server.requests("GET", r"/v1.0/reports/.*")
    assert len(downloads) == len(reports) == 28  # the 28 days `date=` reaches
    assert all(r.header("Authorization") is None for r in downloads)
    assert all(
        r.header(
            "Authorization",
        )
        for r in reports
    )
    # Pages of one record each: three on the day with records, one on every other day.
    record_calls = server.requests("GET", "/v1.0/communications/callRecords")
    days_read = len([r for r in record_calls if "$filter" in r.query])
    assert len(record_calls) == days_read + 2
    assert len(server.requests("GET", ".*/participants_v2")) == 2
    assert len(server.requests("POST", ".*/token")) == 1


def test_throttling_5xx_and_an_expired_token_mid_run(server, tmp_path):
    fake, _ = graph_with_fixtures(server)
    fake.faults.add(
        "records",
        Reply(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "1"}),
        Reply(503, {"error": {"code": "ServiceUnavailable"}}),
        lambda: fake.tokens.expire_all(),
    )
    fake.faults.add(
        "activity", Reply(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "0"})
    )
    cfg = config(tmp_path, source(server))

    res = incremental(cfg, now=NOW)

    assert res.ok, res.error
    assert table(cfg)["meeting_id"].to_list() == [RECORD_ID]
    assert table(cfg)["participants"].to_list() == [3]
    assert len(server.requests("POST", ".*/token")) == 2
    record_calls = server.requests("GET", "/v1.0/communications/callRecords")
    assert len(record_calls) == len({r.query["$filter"] for r in record_calls}) + 3
    assert len(server.requests("GET", r"/v1.0/reports/.*")) == 29


def test_each_run_repulls_the_last_three_report_days(server, tmp_path):
    fake, _ = graph_with_fixtures(server)
    yesterday = (NOW - dt.timedelta(days=1)).date()
    fake.reports[yesterday.isoformat()] = report_for(yesterday)
    cfg = config(tmp_path, source(server))
    assert incremental(cfg, now=NOW).ok
    first = len(server.requests("GET", r"/v1.0/reports/.*"))

    # Microsoft re-fills the day: adele's meeting count changes from 5 to 6.
    fake.reports[yesterday.isoformat()] = report_for(yesterday).replace(",4,37,2,5,", ",4,37,2,6,")
    res = incremental(cfg, now=NOW)

    assert res.ok, res.error
    again = server.requests("GET", r"/v1.0/reports/.*")[first:]
    asked = sorted(r.raw_path.split("(date=")[1][:10] for r in again)
    assert asked[-1] == yesterday.isoformat()
    assert len(asked) >= 3 and asked[-3] <= (yesterday - dt.timedelta(days=2)).isoformat()
    assert len(asked) <= 5  # the lookback, not the whole month again
    activity = table(cfg, "teams_activity")
    assert activity.height == 2
    adele = activity.filter(activity["user_principal_name"] == pseudonym("adele@contoso.com"))
    assert adele["meetings"].to_list() == [6]
    assert res.updated == 1


def test_backfill_older_than_30_days_warns_and_a_missing_setting_permission_is_counted(
    server, tmp_path, caplog
):
    fake, _ = graph_with_fixtures(server)
    fake.faults.add(
        "settings",
        Reply(
            403,
            {
                "error": {
                    "code": "Authorization_RequestDenied",
                    "message": "Insufficient privileges to complete the operation.",
                }
            },
        ),
    )
    cfg = config(tmp_path, source(server))
    caplog.set_level(logging.WARNING)

    res = backfill(cfg, NOW - dt.timedelta(days=60), NOW - dt.timedelta(days=1), now=NOW)

    assert res.ok, res.error
    assert "keeps call records for 30 days" in caplog.text
    assert [lo for lo, _ in res.unavailable] == [NOW - dt.timedelta(days=60)]
    assert table(cfg)["meeting_id"].to_list() == [RECORD_ID]
    q = quarantine(cfg)
    assert (
        "GET /admin/reportSettings",
        "skipped the report privacy setting: HTTP 403"
        " (Insufficient privileges to complete the operation.)",
    ) in q.select("location", "reason").rows()


def test_missing_call_records_permission_is_a_config_error(server, tmp_path, caplog):
    fake, _ = graph_with_fixtures(server)
    fake.faults.add(
        "records",
        Reply(
            403,
            {
                "error": {
                    "code": "Forbidden",
                    "message": "Missing application permission CallRecords.Read.All",
                }
            },
        ),
    )
    cfg = config(tmp_path, source(server))
    caplog.set_level(logging.DEBUG)
    res = incremental(cfg, now=NOW)
    assert res.error_kind == "config"
    assert res.error.startswith(
        "teams: GET /communications/callRecords: HTTP 403 (Missing"
        " application permission CallRecords.Read.All)"
    )
    for token in fake.tokens.issued:
        assert token not in res.error + caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_presigned_download_url_is_never_logged(server, tmp_path, caplog):
    fake, _ = graph_with_fixtures(server)
    caplog.set_level(logging.DEBUG)
    assert incremental(config(tmp_path, source(server, page_size=1)), now=NOW).ok
    assert "PRESIGNED" not in caplog.text


def test_check_sources_probe(server, tmp_path, monkeypatch):
    graph_with_fixtures(server)
    cfg = config(tmp_path, source(server))
    adapter = Pipeline(cfg, Pseudonymiser(KEY)).build_adapter(cfg.sources[0])
    assert adapter.check() == ("ok (token issued, call records readable, names concealed: True)")


#: The history tests' clock; call records reach back exactly 30 days from it.
T0 = dt.datetime(2026, 3, 15, 10, 20, 0, tzinfo=dt.UTC)
EDGE = T0 - dt.timedelta(days=30)


def full_history(fake: FakeGraph) -> list[str]:
    """A group call every 71 hours from just inside the 30 days to an hour before T0."""
    ids = []
    when = EDGE + dt.timedelta(minutes=10)
    while when < T0 - dt.timedelta(hours=1):
        rid = f"rec-{len(ids):03d}"
        fake.records.append(
            {
                "id": rid,
                "version": 1,
                "type": "groupCall",
                "startDateTime": iso(when),
                "endDateTime": iso(when + dt.timedelta(minutes=45)),
                "organizer_v2": {"id": "org-1", "identity": {"user": {"id": "org-1"}}},
            }
        )
        fake.participants[rid] = [{"id": "p1"}, {"id": "p2"}]
        ids.append(rid)
        when += dt.timedelta(hours=71)
    return ids


def listings(server):
    calls = server.requests("GET", "/v1.0/communications/callRecords")
    return [r for r in calls if "$filter" in r.query]


@pytest.mark.parametrize(
    "delta",
    [dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1, minutes=7)],
    ids=["a-minute-later", "an-hour-later", "a-day-later"],
)
def test_full_history_backfill_stopped_by_throttling_resumes_without_rereading(
    server, tmp_path, delta
):
    fake = FakeGraph(server, T0)
    ids = full_history(fake)

    def stop_after(n: int) -> None:
        hour = Reply(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "3600"})
        fake.faults.add("records", *[lambda: None] * n, hour)

    check_resume(
        tmp_path,
        source(server, activity_report=False),
        Resumable(lambda: listings(server), lambda t: setattr(fake, "now", t), stop_after),
        T0 - dt.timedelta(days=32),
        T0,
        T0,
        delta,
        ids,
    )


def test_backfill_beyond_30_days_lands_all_inside_and_names_the_days_outside(server, tmp_path):
    fake = FakeGraph(server, T0)
    ids = full_history(fake)
    src = source(server, activity_report=False)
    cfg = config(tmp_path, src)
    start = T0 - dt.timedelta(days=33)

    res = backfill(cfg, start, T0, now=T0)

    assert res.ok, res.error
    assert table(cfg)["meeting_id"].to_list() == sorted(ids)
    (lo, hi), *more = res.unavailable
    # Up to the edge of the 30 days as of the run (a second later at most: the
    # request is sent after the run started, and never reaches past the edge).
    assert not more and lo == start and dt.timedelta(0) <= hi - EDGE <= dt.timedelta(seconds=5)
    from workstyle.collector.cli.ingest import _fmt_result

    said = "not fetched (older than the API keeps): 2026-02-10 10:20:00Z until 2026-02-13 10:20"
    assert said in _fmt_result(res)
    assert "  not fetched      2026-02-10 10:20:00Z until 2026-02-13 10:20" in status(tmp_path, src)


def test_the_fake_keeps_call_records_exactly_30_days(server):
    fake = FakeGraph(server, T0)
    token = fake.tokens.issue()

    def ask(lo: dt.datetime) -> int:
        import requests

        flt = f"startDateTime ge {iso(lo)} and startDateTime lt {iso(T0)}"
        return requests.get(
            server.url + "/v1.0/communications/callRecords",
            params={"$filter": flt},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).status_code

    assert ask(EDGE) == 200
    assert ask(EDGE - dt.timedelta(seconds=1)) == 400


def test_a_nightly_run_after_a_long_outage_reads_the_30_days_and_names_the_rest(server, tmp_path):
    before = T0 - dt.timedelta(days=40)
    fake = FakeGraph(server, before)
    ids = full_history(fake)  # all after the first run, inside the 30 days before T0
    src = source(server, activity_report=False)
    cfg = config(tmp_path, src)
    first = incremental(cfg, now=before)
    assert first.ok and first.unavailable == []  # 29 days: the whole history, no edge

    fake.now = T0  # the collector was down for 40 days
    res = incremental(cfg, now=T0)

    assert res.ok, res.error
    assert table(cfg)["meeting_id"].to_list() == sorted(ids)
    (lo, hi), *more = res.unavailable
    assert not more and lo == before - cfg.sources[0].lookback
    assert dt.timedelta(0) <= hi - EDGE <= dt.timedelta(seconds=5)
    assert "  not fetched      2026-01-31 10:20:00Z until 2026-02-13 10:20" in status(tmp_path, src)
