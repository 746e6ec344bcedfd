"""Webex adapter against a fake Webex API on 127.0.0.1, through the real pipeline."""

from __future__ import annotations

import datetime as dt
import logging
import stat

import pytest

from tests.fakes.common import fixture, iso
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
from tests.fakes.webex import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, FakeWebex, shifted_meetings
from workstyle.collector.ingest.pipeline import Pipeline
from workstyle.collector.pseudonyms import Pseudonymiser

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
QUARTERLY = "560d7b784f5143e3be2fc3064a5c4999_I_204252993233618782"
DAILY_1 = "870f51ff287b41be84648412901e0402_I_204256789012345678"
DAILY_2 = "870f51ff287b41be84648412901e0402_I_204256789012349999"


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture
def refresh_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBEX_SECRET", CLIENT_SECRET)
    path = tmp_path / "webex-refresh-token"
    path.write_text(FIRST_REFRESH + "\n")
    path.chmod(0o600)
    return path


def source(server, refresh_file, **extra):
    return {
        "name": "webex",
        "kind": "webex",
        "client_id": CLIENT_ID,
        "client_secret": "env:WEBEX_SECRET",
        "refresh_token": f"file:{refresh_file}",
        "base_url": server.url + "/v1",
        "page_size": 2,
        **FAST,
        **extra,
    }


def webex_with_fixtures(server) -> tuple[FakeWebex, dt.timedelta]:
    fake = FakeWebex(server)
    day0 = (NOW - dt.timedelta(days=12)).replace(hour=0, minute=0, second=0)
    delta = day0 - dt.datetime(2019, 11, 1, tzinfo=dt.UTC)
    fake.people = fixture("webex", "people.json")["items"]
    fake.meetings = shifted_meetings(fixture("webex", "meetings.json")["items"], delta)
    fake.participants[QUARTERLY] = shifted_meetings(
        fixture("webex", "participants.json")["items"], delta
    )
    fake.participants[DAILY_1] = fake.participants[QUARTERLY][:2]
    fake.participants[DAILY_2] = []
    return fake, delta


def test_meetings_land_with_participant_counts_and_the_rotated_token_is_saved(
    server, tmp_path, refresh_file
):
    fake, delta = webex_with_fixtures(server)
    cfg = config(tmp_path, source(server, refresh_file))

    res = incremental(cfg)

    assert res.ok, res.error
    rows = table(cfg).select(
        "meeting_id",
        "platform",
        "start_time",
        "duration_seconds",
        "participants",
        "host",
        "series_id",
    )
    t = lambda s: dt.datetime.fromisoformat(s) + delta  # noqa: E731
    assert rows.rows() == [
        (
            QUARTERLY,
            "webex",
            t("2019-11-04T03:00:00+00:00"),
            2520,
            2,
            pseudonym("hanako@example.com"),
            "560d7b784f5143e3be2fc3064a5c4999",
        ),
        (
            DAILY_1,
            "webex",
            t("2019-11-01T12:00:03+00:00"),
            2868,
            2,
            pseudonym("john.andersen@example.com"),
            "870f51ff287b41be84648412901e0402",
        ),
        (
            DAILY_2,
            "webex",
            t("2019-11-02T12:00:00+00:00"),
            1800,
            0,
            pseudonym("john.andersen@example.com"),
            "870f51ff287b41be84648412901e0402",
        ),
    ]
    # The rotated refresh token replaced the old one in the secret file, still private.
    saved = refresh_file.read_text().strip()
    assert saved != FIRST_REFRESH and fake.refresh_tokens == {saved}
    assert stat.S_IMODE(refresh_file.stat().st_mode) == 0o600
    # People: 3 on 2 pages; meetings: hosts x windows, one extra page for john's 2 items
    # only if they share a window; participants: one call per meeting + Link pages.
    assert len(server.requests("GET", "/v1/people")) == 2
    meeting_calls = server.requests("GET", "/v1/meetings")
    assert len([r for r in meeting_calls if "cursor" not in r.query]) == 3 * 5
    assert len(server.requests("GET", "/v1/meetingParticipants")) == 3 + 1
    assert len(server.requests("POST", "/v1/access_token")) == 1

    # The next run authenticates with the saved token; the old one is no longer valid.
    again = incremental(cfg)
    assert again.ok, again.error
    assert table(cfg).height == 3


def test_throttling_5xx_and_an_expired_access_token(server, tmp_path, refresh_file):
    fake, _ = webex_with_fixtures(server)
    fake.faults.add(
        "meetings",
        Reply(429, {"message": "Too Many Requests"}, {"Retry-After": "1"}),
        Reply(502, {"message": "Bad Gateway"}),
        lambda: fake.tokens.expire_all(),
    )
    cfg = config(
        tmp_path,
        source(server, refresh_file, hosts=["john.andersen@example.com", "hanako@example.com"]),
    )

    res = incremental(cfg)

    assert res.ok, res.error
    assert sorted(table(cfg)["meeting_id"]) == [QUARTERLY, DAILY_1, DAILY_2]
    assert len(server.requests("GET", "/v1/people")) == 0  # hosts were configured
    assert len(server.requests("POST", "/v1/access_token")) == 2
    # The second refresh used the token saved by the first: the file holds the latest.
    assert fake.refresh_tokens == {refresh_file.read_text().strip()}
    first_pages = [r for r in server.requests("GET", "/v1/meetings") if "cursor" not in r.query]
    assert len(first_pages) == 2 * 5 + 3


def test_refresh_token_in_an_env_var_warns_once_and_never_logs_it(
    server, tmp_path, refresh_file, monkeypatch, caplog
):
    fake, _ = webex_with_fixtures(server)
    monkeypatch.setenv("WEBEX_REFRESH", FIRST_REFRESH)
    cfg = config(tmp_path, dict(source(server, refresh_file), refresh_token="env:WEBEX_REFRESH"))
    caplog.set_level(logging.DEBUG)

    res = incremental(cfg)

    assert res.ok, res.error
    assert "cannot be saved there" in caplog.text
    for secret in [*fake.refresh_tokens, FIRST_REFRESH, CLIENT_SECRET, *fake.tokens.issued]:
        assert secret not in caplog.text


def test_revoked_refresh_token_is_a_config_error(server, tmp_path, refresh_file, caplog):
    fake, _ = webex_with_fixtures(server)
    fake.refresh_tokens = {"something-else"}
    cfg = config(tmp_path, source(server, refresh_file))
    caplog.set_level(logging.DEBUG)
    res = incremental(cfg)
    assert res.error_kind == "config"
    assert res.error.startswith(
        "webex: POST /access_token: HTTP 400 (The refresh token provided is expired"
    )
    assert FIRST_REFRESH not in res.error + caplog.text


def test_backfill_windows_are_bounded_and_an_unknown_meeting_is_counted(
    server, tmp_path, refresh_file
):
    fake, _ = webex_with_fixtures(server)
    del fake.participants[DAILY_2]
    cfg = config(tmp_path, source(server, refresh_file, hosts=["john.andersen@example.com"]))

    res = backfill(cfg, NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=1))

    assert res.ok, res.error
    calls = [r for r in server.requests("GET", "/v1/meetings") if "cursor" not in r.query]
    assert len(calls) == 6  # 39 days in 7-day windows
    for c in calls:
        span = dt.datetime.fromisoformat(c.query["to"]) - dt.datetime.fromisoformat(c.query["from"])
        assert span <= dt.timedelta(days=7)
    got = table(cfg)
    assert sorted(got["meeting_id"]) == [DAILY_1, DAILY_2]
    assert got.filter(got["meeting_id"] == DAILY_2)["participants"].to_list() == [None]
    assert res.quarantined == 1


def test_check_sources_probe(server, tmp_path, refresh_file):
    webex_with_fixtures(server)
    cfg = config(tmp_path, source(server, refresh_file))
    adapter = Pipeline(cfg, Pseudonymiser(KEY)).build_adapter(cfg.sources[0])
    assert adapter.check() == "ok (token refreshed, 3 host(s) to read)"


#: The history tests' clock. ``/meetings`` documents no history limit.
T0 = dt.datetime(2026, 10, 3, 16, 5, 0, tzinfo=dt.UTC)
HOST = "john.andersen@example.com"


def full_history(fake: FakeWebex, days: int = 400) -> list[str]:
    """An ended meeting of one host every 47 hours over ``days`` days before T0."""
    ids = []
    when = T0 - dt.timedelta(days=days) + dt.timedelta(minutes=5)
    while when < T0 - dt.timedelta(hours=1):
        mid = f"series{len(ids) % 4}_I_{len(ids):06d}"
        fake.meetings.append(
            {
                "id": mid,
                "meetingSeriesId": f"series{len(ids) % 4}",
                "title": "weekly",
                "state": "ended",
                "hostEmail": HOST,
                "start": iso(when),
                "end": iso(when + dt.timedelta(minutes=50)),
            }
        )
        ids.append(mid)
        when += dt.timedelta(hours=47)
    return ids


def listings(server):
    return [r for r in server.requests("GET", "/v1/meetings") if "cursor" not in r.query]


@pytest.mark.parametrize(
    "delta",
    [dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1, minutes=7)],
    ids=["a-minute-later", "an-hour-later", "a-day-later"],
)
def test_long_backfill_stopped_by_throttling_resumes_without_rereading(
    server, tmp_path, refresh_file, delta
):
    fake = FakeWebex(server)
    ids = full_history(fake, days=60)

    def stop_after(n: int) -> None:
        hour = Reply(429, {"message": "Too Many Requests"}, {"Retry-After": "3600"})
        fake.faults.add("meetings", *[lambda: None] * n, hour)

    check_resume(
        tmp_path,
        source(server, refresh_file, hosts=[HOST], count_participants=False, page_size=100),
        Resumable(lambda: listings(server), lambda t: None, stop_after),
        T0 - dt.timedelta(days=60),
        T0 + dt.timedelta(days=1),  # through the end of today, as `--to today` asks
        T0,
        delta,
        ids,
    )


def test_backfill_over_years_lands_everything_and_names_no_missing_day(
    server, tmp_path, refresh_file
):
    fake = FakeWebex(server)
    ids = full_history(fake)
    src = source(
        server, refresh_file, hosts=[HOST], count_participants=False, page_size=100, window_days=28
    )
    cfg = config(tmp_path, src)

    res = backfill(cfg, T0 - dt.timedelta(days=400), T0, now=T0)

    assert res.ok, res.error
    assert table(cfg)["meeting_id"].to_list() == sorted(ids)
    assert res.unavailable == []
    from workstyle.collector.cli.ingest import _fmt_result

    assert "not fetched" not in _fmt_result(res) + status(tmp_path, src)
