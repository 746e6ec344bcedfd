"""Zoom adapter against a fake Zoom API on 127.0.0.1, through the real pipeline."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.fakes.common import fixture, iso, parse, shift_times
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
from tests.fakes.zoom import ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET, FakeZoom
from workstyle.adapters import adapter_class
from workstyle.adapters.zoom import encode_uuid, hms_seconds
from workstyle.collector.errors import ConfigError
from workstyle.collector.ingest.pipeline import Pipeline
from workstyle.collector.pseudonyms import Pseudonymiser

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TIME_KEYS = ("start_time", "end_time")
#: The injected clock of the history tests: 30 s before a UTC midnight at a month's end.
T0 = dt.datetime(2026, 8, 31, 23, 59, 30, tzinfo=dt.UTC)
#: Six calendar months before 2026-08-31: 2026-02-28 (February has no 31st).
EDGE = dt.datetime(2026, 2, 28, tzinfo=dt.UTC)
#: Days per window by default: whole UTC days, within one calendar month with overlap.
GRID = dt.timedelta(days=27)


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("ZOOM_SECRET", CLIENT_SECRET)


def source(server, **extra):
    return {
        "name": "zoom",
        "kind": "zoom",
        "account_id": ACCOUNT_ID,
        "client_id": CLIENT_ID,
        "client_secret": "env:ZOOM_SECRET",
        "base_url": server.url + "/v2",
        "oauth_url": server.url + "/oauth/token",
        **FAST,
        **extra,
    }


def generated(n: int, first: dt.datetime, step: dt.timedelta) -> list[dict]:
    """Dashboard items, one every ``step`` from ``first``."""
    out = []
    for i in range(n):
        start = first + i * step
        out.append(
            {
                "uuid": f"u{i:03d}+/x==",
                "id": 9000 + i % 3,
                "topic": f"meeting {i}",
                "host": f"Host {i % 2}",
                "email": f"host{i % 2}@example.com",
                "start_time": iso(start),
                "end_time": iso(start + dt.timedelta(minutes=30)),
                "duration": "00:30:00",
                "participants": 2 + i % 4,
                "dept": "Dept",
            }
        )
    return out


def metrics_calls(server):
    return server.requests("GET", "/v2/metrics/meetings")


def test_helpers():
    assert encode_uuid("/ajXp112QmuoKj4854875==") == "%252FajXp112QmuoKj4854875%253D%253D"
    assert encode_uuid("a//b") == "a%252F%252Fb"
    assert encode_uuid("iOTQZ+PmhTUq5a232ETb9eg==") == "iOTQZ%2BPmhTUq5a232ETb9eg%3D%3D"
    assert hms_seconds("01:00:30") == 3630 and hms_seconds("41:43") == 2503
    assert hms_seconds("") is None and hms_seconds("x") is None


def test_six_calendar_months_and_the_grid_of_whole_days():
    from workstyle.adapters.windowed import grid, months_before

    d = dt.date
    assert months_before(d(2026, 12, 1), 6) == d(2026, 6, 1)
    assert months_before(d(2026, 8, 31), 6) == d(2026, 2, 28)
    assert months_before(d(2024, 8, 31), 6) == d(2024, 2, 29)  # a leap year
    assert months_before(d(2026, 3, 31), 6) == d(2025, 9, 30)
    assert months_before(d(2026, 1, 15), 6) == d(2025, 7, 15)
    start = dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.UTC)  # 2026-03-02 00:00 in Tokyo
    windows = grid(start, start + dt.timedelta(days=30), 27)
    assert [(w.start, w.end) for w in windows] == [
        (start, dt.datetime(2026, 3, 28, tzinfo=dt.UTC)),
        (dt.datetime(2026, 3, 28, tzinfo=dt.UTC), start + dt.timedelta(days=30)),
    ]
    assert [w.unit("zoom") for w in windows] == [
        "zoom:2026-03-01/2026-03-28",
        "zoom:2026-03-28/2026-04-24",
    ]
    # A rerun starting later on the same day names the same units.
    later = grid(start + dt.timedelta(hours=5), start + dt.timedelta(days=31), 27)
    assert [w.unit("zoom") for w in later] == [w.unit("zoom") for w in windows]


def test_days_not_fetched_read_as_days_or_times():
    from workstyle.collector.ingest.state import describe_spans

    utc = dt.UTC
    assert describe_spans([(dt.datetime(2026, 1, 29, tzinfo=utc), EDGE)]) == (
        "2026-01-29..2026-02-27 (30 days)"
    )
    assert describe_spans([("2026-02-27T00:00:00+00:00", "2026-02-28T00:00:00+00:00")]) == (
        "2026-02-27 (1 day)"
    )
    assert describe_spans([(EDGE, EDGE + dt.timedelta(hours=10, seconds=1))]) == (
        "2026-02-28 00:00:00Z until 2026-02-28 10:00:01Z"
    )


def test_first_run_lands_exact_rows_and_fills_a_double_encoded_uuid(server, tmp_path):
    day0 = (NOW - dt.timedelta(days=25)).replace(hour=0, minute=0, second=0)
    delta = day0 - dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    body = fixture("zoom", "metrics_meetings.json")
    meetings = shift_times(body["meetings"], delta, TIME_KEYS)
    meetings[1]["_date"] = f"{day0 + dt.timedelta(days=10):%Y-%m-%d}"  # empty times: quirk
    detail = shift_times(fixture("zoom", "past_meeting.json"), delta, TIME_KEYS)
    fake = FakeZoom(server, meetings, {detail["uuid"]: detail})
    cfg = config(tmp_path, source(server))

    res = incremental(cfg)

    assert res.ok, res.error
    rows = table(cfg).select(
        "meeting_id",
        "start_time",
        "end_time",
        "duration_seconds",
        "participants",
        "host",
        "department",
        "series_id",
        "topic",
    )
    expected = [
        (
            "/ajXp112QmuoKj4854875==",
            day0 + dt.timedelta(days=10, hours=15, seconds=5),
            day0 + dt.timedelta(days=10, hours=15, minutes=30, seconds=5),
            1800,
            3,
            pseudonym("jill@example.com"),
            "Digital Policy",
            "85123456789",
            None,
        ),
        (
            "4444AAAiAAAAAiAiAiiAii==",
            day0 + dt.timedelta(days=9, minutes=30),
            day0 + dt.timedelta(days=9, hours=1, minutes=30, seconds=30),
            3630,
            2,
            pseudonym("ken@example.com"),
            "Finance",
            "91234567890",
            None,
        ),
        (
            "iOTQZPmhTUq5a232ETb9eg==",
            day0 + dt.timedelta(days=3, hours=15, seconds=12),
            day0 + dt.timedelta(days=3, hours=15, minutes=41, seconds=55),
            2503,
            4,
            pseudonym("jill@example.com"),
            "Digital Policy",
            "85123456789",
            None,
        ),
    ]
    assert rows.rows() == expected
    assert set(table(cfg)["platform"]) == {"zoom"}
    # One token, two windows of one page each, one detail lookup: nothing more.
    assert len(server.requests("POST", "/oauth/token")) == 1
    assert len(metrics_calls(server)) == 2
    past = server.requests("GET", "/v2/past_meetings/.*")
    assert [r.raw_path for r in past] == ["/v2/past_meetings/%252FajXp112QmuoKj4854875%253D%253D"]
    assert all(r.query["type"] == "past" for r in metrics_calls(server))
    assert len(fake.tokens.issued) == 1

    again = incremental(cfg)
    assert again.ok and again.new == 0 and table(cfg).height == 3


def test_pages_429s_5xx_and_expired_token_lose_and_double_nothing(server, tmp_path):
    meetings = generated(25, NOW - dt.timedelta(days=20, hours=3), dt.timedelta(hours=19))
    fake = FakeZoom(server, meetings)
    fake.faults.add(
        "metrics",
        Reply(
            429,
            {
                "code": 429,
                "message": "You have reached the maximum per-second rate limit for this API.",
            },
            {"X-RateLimit-Type": "QPS", "Retry-After": "1"},
        ),
        Reply(503, {"message": "Service Unavailable"}),
        lambda: Reply(
            429,
            {"message": "slow down"},
            {
                "Retry-After": email.utils.format_datetime(
                    dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), usegmt=True
                )
            },
        ),
        lambda: fake.tokens.expire_all(),  # the token expires mid-run: served as a 401
    )
    cfg = config(tmp_path, source(server, page_size=10))

    res = incremental(cfg)

    assert res.ok, res.error
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(m["uuid"] for m in meetings)
    assert got["participants"].to_list() == [2 + i % 4 for i in range(25)]
    boundary = NOW - dt.timedelta(days=2)
    n1 = sum(parse(m["start_time"]) < boundary for m in meetings)
    pages = math.ceil(n1 / 10) + max(1, math.ceil((25 - n1) / 10))
    # 4 refused attempts (429, 503, 429, 401) and then exactly one request per page.
    assert len(metrics_calls(server)) == pages + 4
    assert len(server.requests("POST", "/oauth/token")) == 2


def test_expired_next_page_token_restarts_the_window(server, tmp_path):
    meetings = generated(25, NOW - dt.timedelta(days=19, hours=23), dt.timedelta(hours=12))
    fake = FakeZoom(server, meetings)
    fake.expire_page_tokens = 1
    cfg = config(tmp_path, source(server, page_size=10, initial_days=20))

    res = incremental(cfg)

    assert res.ok, res.error
    assert table(cfg).height == 25 and res.rows_read == 25
    # Window 1: page 1, page 2 refused, then pages 1..3 again. Nothing else.
    calls = metrics_calls(server)
    assert len(calls) == 5
    assert ["next_page_token" in c.query for c in calls] == [False, True, False, True, True]


def test_same_instance_in_two_overlapping_windows_lands_once(server, tmp_path):
    # A first run reads 30 days in 27-day windows of whole UTC days: they meet here.
    boundary = (T0 - dt.timedelta(days=30)).replace(hour=0, minute=0, second=0)
    boundary += dt.timedelta(days=27)
    meetings = generated(1, boundary - dt.timedelta(hours=1), dt.timedelta(hours=2)) + [
        dict(m, uuid="late==")
        for m in generated(1, boundary + dt.timedelta(hours=1), dt.timedelta(hours=1))
    ]
    FakeZoom(server, meetings, now=T0)
    cfg = config(tmp_path, source(server))

    res = incremental(cfg, now=T0)

    assert res.ok, res.error
    calls = metrics_calls(server)
    assert len(calls) == 2
    # Both windows' date ranges hold both meetings (the overlap day), each lands once.
    for c in calls:
        assert c.query["from"] <= f"{boundary - dt.timedelta(hours=1):%Y-%m-%d}"
        assert c.query["to"] >= f"{boundary + dt.timedelta(hours=1):%Y-%m-%d}"
    assert sorted(table(cfg)["meeting_id"]) == ["late==", "u000+/x=="]
    assert res.rows_read == 2 and res.new == 2


def test_backfill_over_months_uses_legal_windows_and_warns_on_old_data(server, tmp_path, caplog):
    meetings = generated(30, T0 - dt.timedelta(days=210, hours=12), dt.timedelta(days=7))
    FakeZoom(server, meetings, now=T0)
    cfg = config(tmp_path, source(server))
    caplog.set_level(logging.WARNING)
    start, end = T0 - dt.timedelta(days=220), T0 - dt.timedelta(days=5)

    res = backfill(cfg, start, end, now=T0)

    assert res.ok, res.error
    assert "keeps six calendar months" in caplog.text
    assert res.unavailable == [(start, EDGE)]
    calls = metrics_calls(server)
    # Only the 27-day windows (whole UTC days from the first) that reach past the edge.
    grid = start.replace(hour=0, minute=0, second=0)
    cells = [grid + k * dt.timedelta(days=27) for k in range(math.ceil((end - grid) / GRID))]
    assert len(calls) == sum(c + GRID > EDGE for c in cells)
    for c in calls:  # each one accepted by the fake: inside a month and six months
        lo, hi = dt.date.fromisoformat(c.query["from"]), dt.date.fromisoformat(c.query["to"])
        assert (hi - lo).days <= 28 and lo >= EDGE.date()
    expected = sorted(m["uuid"] for m in meetings if EDGE <= parse(m["start_time"]) < end)
    assert sorted(table(cfg)["meeting_id"]) == expected and len(expected) == 26


def test_daily_quota_stops_cleanly_and_the_backfill_resumes(server, tmp_path):
    meetings = generated(19, T0 - dt.timedelta(days=99), dt.timedelta(days=5))
    fake = FakeZoom(server, meetings, now=T0)
    fake.daily_remaining = 3
    cfg = config(tmp_path, source(server))
    start, end = T0 - dt.timedelta(days=100), T0 - dt.timedelta(days=5)

    first = backfill(cfg, start, end, now=T0)

    assert first.outcome == "partial" and first.error_kind == "quota"
    assert "daily API quota" in first.error and "resumes" in first.error
    assert len(metrics_calls(server)) == 3  # the 4th request is never sent
    committed = table(cfg).height
    grid = start.replace(hour=0, minute=0, second=0)
    assert committed == sum(parse(m["start_time"]) < grid + 3 * GRID for m in meetings)

    fake.daily_remaining = None  # a new UTC day
    fake.now = T0 + dt.timedelta(hours=2)
    second = backfill(cfg, start, end, now=T0 + dt.timedelta(hours=2))

    assert second.ok, second.error
    assert len(metrics_calls(server)) == 4  # only the window that was missing
    assert sorted(table(cfg)["meeting_id"]) == sorted(m["uuid"] for m in meetings)


def test_daily_limit_429_is_a_clean_stop(server, tmp_path):
    fake = FakeZoom(server, generated(3, NOW - dt.timedelta(days=10), dt.timedelta(days=1)))
    fake.daily_remaining = 0
    cfg = config(tmp_path, source(server))
    res = incremental(cfg)
    assert res.outcome == "partial" and res.error_kind == "quota"
    assert len(metrics_calls(server)) == 1  # no retry loop on a daily limit


def test_backfill_killed_mid_run_resumes_a_minute_later_without_rereading(server, tmp_path):
    meetings = generated(20, T0 - dt.timedelta(days=140), dt.timedelta(days=7))
    fake = FakeZoom(server, meetings, now=T0)
    release = threading.Event()

    def hang():
        release.wait(20)
        return None

    fake.faults.add("metrics", lambda: None, lambda: None, hang)
    cfg_src = source(server)
    start, end = T0 - dt.timedelta(days=141), T0 - dt.timedelta(days=1)
    script = tmp_path / "run_backfill.py"
    script.write_text(
        textwrap.dedent(f"""
        import datetime as dt, pathlib
        from tests.fakes.harness import config, pipeline
        cfg = config(pathlib.Path({str(tmp_path)!r}), {cfg_src!r})
        # Default pipeline: API adapters commit every window.
        pipeline(cfg, dt.datetime.fromisoformat({T0.isoformat()!r})).backfill(
            cfg.sources[0], dt.datetime.fromisoformat({start.isoformat()!r}),
            dt.datetime.fromisoformat({end.isoformat()!r}))
    """)
    )
    env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=Path.cwd())
    try:
        deadline = time.monotonic() + 30
        while len(metrics_calls(server)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(metrics_calls(server)) == 3, "the backfill never reached window 3"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    cfg = config(tmp_path, cfg_src)
    # Windows are whole UTC days on a grid from the backfill's first day, 27 days each.
    grid = start.replace(hour=0, minute=0, second=0)
    step = dt.timedelta(days=27)
    assert table(cfg).height == sum(parse(m["start_time"]) < grid + 2 * step for m in meetings)

    fake.now = T0 + dt.timedelta(minutes=1)
    res = backfill(cfg, start, end, now=T0 + dt.timedelta(minutes=1))

    assert res.ok, res.error
    windows = math.ceil((end - grid) / step)
    assert len(metrics_calls(server)) == 3 + (windows - 2)  # windows 1-2 were not re-read
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(m["uuid"] for m in meetings)
    assert got["meeting_id"].n_unique() == got.height
    assert res.unchanged == 0


def full_history() -> list[dict]:
    """One meeting every 37 hours from the first instant Zoom keeps to an hour before T0."""
    n = (T0 - dt.timedelta(hours=1) - EDGE) // dt.timedelta(hours=37) + 1
    return generated(n, EDGE, dt.timedelta(hours=37))


@pytest.mark.parametrize(
    "delta",
    [dt.timedelta(seconds=30), dt.timedelta(hours=1), dt.timedelta(days=1)],
    ids=["30s-later-past-utc-midnight", "an-hour-later", "a-day-later"],
)
def test_full_history_backfill_stopped_by_the_quota_resumes_without_rereading(
    server, tmp_path, delta
):
    meetings = full_history()
    fake = FakeZoom(server, meetings, now=T0)

    def stop_after(n: int) -> None:
        fake.faults.add("metrics", *[lambda: None] * n, fake.daily_limit)

    _, resumed = check_resume(
        tmp_path,
        source(server),
        Resumable(
            lambda: [c for c in metrics_calls(server) if "next_page_token" not in c.query],
            lambda t: setattr(fake, "now", t),
            stop_after,
        ),
        EDGE - dt.timedelta(days=30),
        T0,
        T0,
        delta,
        [m["uuid"] for m in meetings],
    )
    # The resumed attempt names the days the first one could not fetch, not the ones its
    # own (later) edge excludes: those were fetched before.
    assert resumed.unavailable == [(EDGE - dt.timedelta(days=30), EDGE)]


def test_backfill_beyond_six_months_lands_all_inside_and_names_the_days_outside(server, tmp_path):
    meetings = full_history()
    FakeZoom(server, meetings, now=T0)
    src = source(server)
    cfg = config(tmp_path, src)

    res = backfill(cfg, EDGE - dt.timedelta(days=30), T0, now=T0)

    assert res.ok, res.error
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(m["uuid"] for m in meetings)
    assert got.height == len(meetings)
    # The first request asks from the exact edge, and the fake (Zoom's rule) accepts it.
    assert min(c.query["from"] for c in metrics_calls(server)) == "2026-02-28"
    assert res.unavailable == [(EDGE - dt.timedelta(days=30), EDGE)]
    from workstyle.collector.cli.ingest import _fmt_result

    days = "2026-01-29..2026-02-27 (30 days)"
    assert f"not fetched (older than the API keeps): {days}" in _fmt_result(res)
    assert f"  not fetched      {days}" in status(tmp_path, src)


def test_the_fake_follows_zooms_documented_limits(server):
    fake = FakeZoom(server, full_history(), now=T0)
    token = fake.tokens.issue()

    def ask(lo: str, hi: str) -> tuple[int, dict]:
        import requests

        r = requests.get(
            server.url + "/v2/metrics/meetings",
            params={"from": lo, "to": hi, "type": "past", "page_size": 300},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        return r.status_code, r.json()

    assert ask("2026-02-28", "2026-03-28")[0] == 200  # the edge, a whole calendar month
    assert ask("2026-02-27", "2026-03-20") == (
        400,
        {"code": 300, "message": "The date range must fall within the last 6 months"},
    )
    assert ask("2026-03-01", "2026-04-02")[0] == 400  # over a month
    assert ask("2026-08-01", "2026-08-31")[0] == 200


def test_wrong_secret_is_a_config_error_that_never_shows_the_secret(
    server, tmp_path, monkeypatch, caplog
):
    FakeZoom(server, [])
    monkeypatch.setenv("ZOOM_SECRET", "wrong-secret-value-123")
    cfg = config(tmp_path, source(server))
    caplog.set_level(logging.DEBUG)
    res = incremental(cfg)
    assert res.error_kind == "config"
    assert res.error.startswith("zoom: POST /oauth/token: HTTP 401")
    assert "wrong-secret-value-123" not in res.error + caplog.text
    assert len(server.log) == 1


def test_token_refused_after_one_renewal_is_a_config_error(server, tmp_path, caplog):
    fake = FakeZoom(server, [])
    fake.faults.add("metrics", *[Reply(401, {"code": 124, "message": "Invalid access token."})] * 5)
    cfg = config(tmp_path, source(server))
    caplog.set_level(logging.DEBUG)
    res = incremental(cfg)
    assert res.error_kind == "config" and "HTTP 401 (Invalid access token.)" in res.error
    assert len(fake.tokens.issued) == 2 and len(metrics_calls(server)) == 2
    for token in fake.tokens.issued:
        assert token not in res.error + caplog.text


def test_report_api_counts_a_deleted_host_instead_of_hiding_it(server, tmp_path, caplog):
    meetings = generated(6, NOW - dt.timedelta(days=9), dt.timedelta(days=1))
    meetings[5] = dict(meetings[5], email="gone@example.com", host="Gone")
    fake = FakeZoom(server, meetings)
    fake.deleted_hosts = {"id-gone"}
    cfg = config(tmp_path, source(server, api="report", initial_days=10))

    res = incremental(cfg)

    assert res.ok, res.error
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(m["uuid"] for m in meetings[:5])
    assert got.filter(got["meeting_id"] == "u000+/x==")["duration_seconds"].item() == 1800
    assert res.quarantined == 1
    assert (
        "zoom: GET /report/users/{userId}/meetings answered HTTP 404 1 time(s): User does"
        " not exist: id-gone"
    ) in caplog.text
    q = quarantine(cfg)
    assert q.select("location", "reason").rows() == [
        (
            "GET /report/users/{userId}/meetings",
            "skipped a host's meetings: HTTP 404 (User does not exist: id-gone)",
        )
    ]
    assert len(server.requests("GET", "/v2/report/users")) == 1
    assert len(server.requests("GET", "/v2/report/users/[^/]+/meetings")) == 3


def test_check_sources_probe(server, tmp_path, monkeypatch):
    FakeZoom(server, [])
    cfg = config(tmp_path, source(server))
    adapter = Pipeline(cfg, Pseudonymiser(KEY)).build_adapter(cfg.sources[0])
    assert adapter.check().startswith("ok")
    monkeypatch.setenv("ZOOM_SECRET", "nope")
    with pytest.raises(ConfigError, match="credentials were refused"):
        adapter.check()


def test_options_are_validated(tmp_path):
    cls = adapter_class("zoom")
    assert cls.validate({"window_days": 31, "page_size": 1000}) == [
        (
            "window_days",
            "expected 1..27 (Zoom allows one calendar month per request; a day of overlap is"
            " added on each side)",
        ),
        ("page_size", "expected 1..300"),
    ]


def test_nightly_run_stopped_by_the_quota_resumes_from_its_last_window(server, tmp_path):
    meetings = generated(17, T0 - dt.timedelta(days=88), dt.timedelta(days=5))
    fake = FakeZoom(server, meetings, now=T0)
    fake.daily_remaining = 2
    cfg = config(tmp_path, source(server, initial_days=90))

    first = incremental(cfg, now=T0)

    assert first.outcome == "partial" and first.error_kind == "quota"
    assert len(metrics_calls(server)) == 2
    grid = (T0 - dt.timedelta(days=90)).replace(hour=0, minute=0, second=0)
    done = grid + 2 * GRID  # two 27-day windows were committed

    fake.daily_remaining = None
    fake.now = T0 + dt.timedelta(days=1)
    second = incremental(cfg, now=T0 + dt.timedelta(days=1))

    assert second.ok, second.error
    resumed = metrics_calls(server)[2:]
    # From the last committed window minus the 3-day lookback, not 90 days again.
    assert len(resumed) == 2
    assert resumed[0].query["from"] >= f"{done - dt.timedelta(days=5):%Y-%m-%d}"
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(m["uuid"] for m in meetings)
    assert got["meeting_id"].n_unique() == got.height


def test_cli_validate_then_backfill_months_through_429_and_500(server, tmp_path):
    from zoneinfo import ZoneInfo

    meetings = generated(24, NOW - dt.timedelta(days=150), dt.timedelta(days=6))
    fake = FakeZoom(server, meetings)
    conf = tmp_path / "collector.toml"
    conf.write_text(
        textwrap.dedent(f"""
        [collector]
        data_dir = "{tmp_path / "data"}"
        [privacy]
        key = "env:PSEUDO_KEY"
        [[sources]]
        name = "zoom"
        kind = "zoom"
        account_id = "{ACCOUNT_ID}"
        client_id = "{CLIENT_ID}"
        client_secret = "env:ZOOM_SECRET"
        base_url = "{server.url}/v2"
        oauth_url = "{server.url}/oauth/token"
        backoff_max_seconds = 0.01
    """)
    )
    env = dict(
        os.environ, PYTHONPATH=str(Path.cwd()), PSEUDO_KEY="p" * 32, ZOOM_SECRET=CLIENT_SECRET
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workstyle.collector.cli", "--config", str(conf), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    checked = cli("validate", "--check-sources")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "zoom: ok (token issued, dashboard API readable)" in checked.stdout

    fake.faults.add(
        "metrics",
        Reply(429, {"message": "slow down"}, {"Retry-After": "1"}),
        Reply(500, {"message": "Internal Error"}),
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    first, last = (NOW - dt.timedelta(days=140)).date(), (NOW - dt.timedelta(days=2)).date()
    done = cli("backfill", "--source", "zoom", "--from", str(first), "--to", str(last))

    assert done.returncode == 0, done.stdout + done.stderr
    calls = [c for c in metrics_calls(server) if c.query.get("page_size") != "1"]
    lo = dt.datetime.combine(first, dt.time(), tokyo)
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tokyo)
    grid = lo.astimezone(dt.UTC).replace(hour=0)  # whole UTC days from the first one
    # One per 27-day window, plus the 429 and the 500.
    assert len(calls) == math.ceil((hi - grid) / GRID) + 2
    for c in calls:
        span = dt.date.fromisoformat(c.query["to"]) - dt.date.fromisoformat(c.query["from"])
        assert span.days <= 28
    expected = sorted(m["uuid"] for m in meetings if lo <= parse(m["start_time"]) < hi)
    got = table(config(tmp_path, source(server)))
    assert sorted(got["meeting_id"]) == expected and got.height == len(expected)
    output = checked.stdout + checked.stderr + done.stdout + done.stderr
    for secret in [CLIENT_SECRET, *fake.tokens.issued]:
        assert secret not in output
