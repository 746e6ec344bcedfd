"""Google Meet adapter against a fake token server and Reports API on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from tests.fakes.common import fixture, iso, parse, shift_times
from tests.fakes.google import ADMIN, PATH, FakeGoogle, call_ended, throwaway_key
from tests.fakes.harness import (
    FAST,
    KEY,
    backfill,
    config,
    incremental,
    pseudonym,
    serve,
    status,
    table,
)
from tests.fakes.resume import Resumable, check_resume
from tests.fakes.server import Reply
from workstyle.collector.ingest.pipeline import Pipeline
from workstyle.collector.pseudonyms import Pseudonymiser

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
H = dt.timedelta(hours=1)


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture
def google(server, tmp_path):
    key_json, public = throwaway_key()
    key_file = tmp_path / "sa-key.json"
    key_file.write_text(key_json)
    fake = FakeGoogle(server, public)
    fake.key_file = key_file
    fake.key_json = key_json
    return fake


def source(server, google, **extra):
    return {
        "name": "meet",
        "kind": "google_meet",
        "service_account_key": f"file:{google.key_file}",
        "admin_email": ADMIN,
        "base_url": server.url,
        "token_url": server.url + "/token",
        **FAST,
        **extra,
    }


def activity_calls(server):
    return server.requests("GET", PATH)


def test_a_meeting_spread_over_several_events_becomes_one_row(server, google, tmp_path):
    t0 = (NOW - dt.timedelta(days=4)).replace(hour=1, minute=0, second=0)
    documented = shift_times(
        fixture("google_meet", "activity_call_ended.json"),
        t0 - dt.datetime(2024, 3, 3, 6, 20, 41, 830000, tzinfo=dt.UTC),
        ("time",),
    )
    documented["id"]["time"] = iso(t0 + 3 * H)
    conf = "M72LdSgb9FV57mAVzdLaDxIWOAkIAjIAGAgIigIgBAg"
    same = {"code": "wkt-imx-ivuk", "organizer": "team@example.org"}
    google.activities = [
        documented,  # guest@gmail.com: 9621 s ending at t0+3h -> started t0+3h-9621s
        call_ended(t0 + 2 * H, conf, "kacho@pref.example.jp", 3600, **same),
        call_ended(
            t0 + 3 * H + dt.timedelta(minutes=5), conf, "kacho@pref.example.jp", 300, **same
        ),  # rejoined: still one person
        call_ended(
            t0 + 2 * H + dt.timedelta(minutes=30), conf, "taro@pref.example.jp", 5400, **same
        ),
        call_ended(t0 + 30 * dt.timedelta(minutes=1), "solo-conf", "alone@pref.example.jp", 1800),
    ]
    cfg = config(tmp_path, source(server, google, page_size=2))

    res = incremental(cfg)

    assert res.ok, res.error
    rows = table(cfg).select(
        "meeting_id",
        "platform",
        "start_time",
        "end_time",
        "duration_seconds",
        "participants",
        "host",
        "series_id",
    )
    start = t0 + 3 * H - dt.timedelta(seconds=9621)
    end = t0 + 3 * H + dt.timedelta(minutes=5)
    assert rows.rows() == [
        (
            conf,
            "google_meet",
            start,
            end,
            int((end - start).total_seconds()),
            3,
            pseudonym("team@example.org"),
            "WKTIMXIVUK",
        ),
        (
            "solo-conf",
            "google_meet",
            t0,
            t0 + 30 * dt.timedelta(minutes=1),
            1800,
            1,
            pseudonym("kacho@pref.example.jp"),
            "ABCDEFGHIJ",
        ),
    ]
    # The token server checked the RS256 signature and these claims.
    assert google.claims[0]["sub"] == ADMIN and len(google.claims) == 1
    calls = activity_calls(server)
    windows = len([c for c in calls if "pageToken" not in c.query])
    assert windows == 5  # 30 days in 7-day windows
    # The window holding the events reads 3 pages of 2; the neighbours see some through
    # their margins; every request is accounted for, no storm.
    assert len(calls) == windows + sum(1 for c in calls if "pageToken" in c.query)
    assert len(calls) <= windows + 2 * 2


def test_meeting_across_a_window_edge_is_assembled_whole_in_a_backfill(server, google, tmp_path):
    edge = (NOW - dt.timedelta(days=10)).replace(hour=0, minute=0, second=0)
    google.activities = [
        call_ended(edge - dt.timedelta(minutes=20), "night", "a@pref.example.jp", 1200),
        call_ended(edge + 2 * H, "night", "b@pref.example.jp", 9000),
        call_ended(edge + 3 * H, "night", "c@pref.example.jp", 12000),
        call_ended(edge + 5 * H, "day", "c@pref.example.jp", 600),
    ]
    cfg = config(tmp_path, source(server, google, window_days=1))

    res = backfill(cfg, edge - dt.timedelta(days=2), edge + dt.timedelta(days=2))

    assert res.ok, res.error
    got = table(cfg)
    assert got.select("meeting_id", "participants", "start_time", "end_time").rows() == [
        ("day", 1, edge + 5 * H - dt.timedelta(seconds=600), edge + 5 * H),
        ("night", 3, edge - dt.timedelta(minutes=40), edge + 3 * H),
    ]
    assert res.new == 2 and res.updated == 0


def test_late_events_are_picked_up_by_the_overlap_without_duplicates(server, google, tmp_path):
    t = NOW - dt.timedelta(hours=10)
    google.activities = [call_ended(t, "late", "a@pref.example.jp", 1800, unique="e1")]
    cfg = config(tmp_path, source(server, google))
    assert incremental(cfg).ok
    assert table(cfg)["participants"].to_list() == [1]

    # Reported hours later: another endpoint of the same conference, and the first
    # event again (the overlap re-reads it).
    google.activities.append(
        call_ended(t + dt.timedelta(minutes=2), "late", "b@pref.example.jp", 1900, unique="e2")
    )
    res = incremental(cfg)

    assert res.ok, res.error
    got = table(cfg)
    assert got.height == 1 and got["participants"].to_list() == [2]
    assert got["end_time"].to_list() == [t + dt.timedelta(minutes=2)]
    assert res.updated == 1 and res.new == 0


def test_quota_503_rate_limit_403_and_an_expired_token(server, google, tmp_path):
    t = NOW - dt.timedelta(days=2)
    google.activities = [call_ended(t + i * H, f"c{i}", "a@pref.example.jp", 600) for i in range(3)]
    google.faults.add(
        "activity",
        Reply(503, {"error": {"code": 503, "message": "Quota exceeded", "status": "UNAVAILABLE"}}),
        Reply(
            403,
            {
                "error": {
                    "code": 403,
                    "message": "Rate Limit Exceeded",
                    "errors": [{"reason": "rateLimitExceeded"}],
                }
            },
        ),
        Reply(429, {"error": {"code": 429}}, {"Retry-After": "1"}),
        lambda: google.tokens.expire_all(),
    )
    cfg = config(tmp_path, source(server, google))

    res = incremental(cfg)

    assert res.ok, res.error
    assert sorted(table(cfg)["meeting_id"]) == ["c0", "c1", "c2"]
    assert len(server.requests("POST", "/token")) == 2
    assert len(activity_calls(server)) == 5 + 4


def test_an_unauthorised_delegation_and_a_bad_key_are_clear_config_errors(
    server, google, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    cfg = config(tmp_path, source(server, google, admin_email="someone@pref.example.jp"))
    res = incremental(cfg)
    assert res.error_kind == "config"
    assert res.error.startswith("meet: POST /token: HTTP 401 (Client is unauthorized")

    google.key_file.write_text('{"client_email": "x", "private_key": "-----BEGIN nonsense"}')
    res = incremental(config(tmp_path, source(server, google)))
    assert res.error_kind == "config"
    assert res.error == (
        "meet: the private_key in service_account_key cannot be read as an"
        " RSA key; download a new JSON key"
    )
    google.key_file.write_text("not json")
    res = incremental(config(tmp_path, source(server, google)))
    assert "is not a service-account JSON key" in res.error
    assert "BEGIN PRIVATE KEY" not in caplog.text + res.error


def test_check_sources_probe(server, google, tmp_path):
    cfg = config(tmp_path, source(server, google))
    adapter = Pipeline(cfg, Pseudonymiser(KEY)).build_adapter(cfg.sources[0])
    assert adapter.check().startswith("ok (token issued")


#: The history tests' clock; the Reports API answers for 180 days before it.
T0 = dt.datetime(2026, 5, 20, 7, 45, 0, tzinfo=dt.UTC)
EDGE = T0 - dt.timedelta(days=180)


def full_history(google) -> list[str]:
    """A two-person conference every 31 hours from just inside the 180 days to T0 - 2 h."""
    ids = []
    when = EDGE + dt.timedelta(hours=1)
    while when < T0 - 2 * H:
        cid = f"conf-{len(ids):03d}"
        google.activities += [
            call_ended(when, cid, "a@pref.example.jp", 1800),
            call_ended(when + dt.timedelta(minutes=3), cid, "b@pref.example.jp", 1500),
        ]
        ids.append(cid)
        when += 31 * H
    return ids


def first_pages(server):
    return [c for c in activity_calls(server) if "pageToken" not in c.query]


@pytest.mark.parametrize(
    "delta",
    [dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1, minutes=7)],
    ids=["a-minute-later", "an-hour-later", "a-day-later"],
)
def test_full_history_backfill_stopped_by_the_quota_resumes_without_rereading(
    server, google, tmp_path, delta
):
    ids = full_history(google)

    def stop_after(n: int) -> None:
        spent = Reply(
            503,
            {"error": {"code": 503, "message": "Quota exceeded", "status": "UNAVAILABLE"}},
            {"Retry-After": "3600"},
        )
        google.faults.add("activity", *[lambda: None] * n, spent)

    check_resume(
        tmp_path,
        source(server, google, window_days=30),
        Resumable(lambda: first_pages(server), lambda t: setattr(google, "now", t), stop_after),
        T0 - dt.timedelta(days=200),
        T0,
        T0,
        delta,
        ids,
    )


def test_backfill_beyond_180_days_lands_all_inside_and_names_the_days_outside(
    server, google, tmp_path
):
    ids = full_history(google)
    google.now = T0
    src = source(server, google)
    cfg = config(tmp_path, src)
    start = T0 - dt.timedelta(days=200)

    res = backfill(cfg, start, T0, now=T0)

    assert res.ok, res.error
    got = table(cfg)
    assert got["meeting_id"].to_list() == ids and set(got["participants"]) == {2}
    assert min(parse(c.query["startTime"]) for c in first_pages(server)) >= EDGE
    (lo, hi), *more = res.unavailable
    assert not more and lo == start and dt.timedelta(0) <= hi - EDGE <= dt.timedelta(seconds=5)
    from workstyle.collector.cli.ingest import _fmt_result

    said = "not fetched (older than the API keeps): 2025-11-01 07:45:00Z until 2025-11-21 07:45"
    assert said in _fmt_result(res)
    assert "  not fetched      2025-11-01 07:45:00Z until 2025-11-21 07:45" in status(tmp_path, src)
