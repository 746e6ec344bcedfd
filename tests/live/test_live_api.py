"""Live readers over the APIs: Zoom meetings in progress, FortiGate connected SSL-VPN users."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from tests.fakes import zoom as zoom_fake
from tests.fakes.common import tls_files
from tests.fakes.fortigate import TOKEN, FakeFortiGate, user
from tests.fakes.harness import FAST, serve
from tests.fakes.server import FakeServer, Reply
from tests.live.helpers import Clock, live_config
from workstyle.collector.errors import ConfigError
from workstyle.collector.exporter.families import WorkstyleCollector
from workstyle.collector.live.poller import Poller
from workstyle.collector.live.snapshot import read_snapshot, snapshot_path


@pytest.fixture
def server() -> Iterator[FakeServer]:
    yield from serve()


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch, key_env: str) -> None:
    monkeypatch.setenv("ZOOM_SECRET", zoom_fake.CLIENT_SECRET)
    monkeypatch.setenv("FGT_TOKEN", TOKEN)


def _live_meeting(n: int, participants: int) -> dict:
    return {
        "uuid": f"live-uuid-{n}==",
        "id": 81234567000 + n,
        "topic": f"課長会議 {n}",
        "host": f"Host {n}",
        "email": f"host{n}@pref.example.jp",
        "user_type": "Licensed",
        "start_time": "2026-12-01T00:30:00Z",
        "duration": "00:30:00",
        "participants": participants,
        "has_screen_share": True,
    }


def _zoom_source(server: FakeServer, **extra: object) -> dict:
    return {
        "name": "zoom",
        "kind": "zoom",
        "account_id": zoom_fake.ACCOUNT_ID,
        "client_id": zoom_fake.CLIENT_ID,
        "client_secret": "env:ZOOM_SECRET",
        "base_url": server.url + "/v2",
        "oauth_url": server.url + "/oauth/token",
        "page_size": 2,
        "live": True,
        **FAST,
        **extra,
    }


def _reading(poller: Poller, name: str):
    poller.poll_once()
    return read_snapshot(snapshot_path(poller.cfg.data_dir)).sources[name]


def test_zoom_meetings_in_progress_over_pages_and_429(tmp_path: Path, server: FakeServer) -> None:
    fake = zoom_fake.FakeZoom(server, [])
    fake.live = [_live_meeting(n, p) for n, p in enumerate([3, 2, 7, 1, 4])]
    fake.faults.add(
        "metrics", Reply(429, {"code": 429, "message": "Too many requests"}, {"Retry-After": "0"})
    )
    cfg = live_config(tmp_path, _zoom_source(server))
    poller = Poller(cfg)
    reading = _reading(poller, "zoom")
    assert reading.ok, reading.error
    assert reading.values == {"meetings": 5.0, "meeting_participants": 17.0}
    assert reading.platform == "zoom"
    lists = server.requests("GET", "/v2/metrics/meetings")
    assert [r.query.get("type") for r in lists] == ["live"] * 4  # 429, then three pages
    assert all(r.query.get("next_page_token") for r in lists[2:])

    fake.live = fake.live[:1]
    assert _reading(poller, "zoom").values == {"meetings": 1.0, "meeting_participants": 3.0}


def test_zoom_daily_quota_spent_keeps_the_last_value(tmp_path: Path, server: FakeServer) -> None:
    fake = zoom_fake.FakeZoom(server, [])
    fake.live = [_live_meeting(1, 6)]
    cfg = live_config(tmp_path, _zoom_source(server))
    poller = Poller(cfg)
    assert _reading(poller, "zoom").values == {"meetings": 1.0, "meeting_participants": 6.0}
    fake.daily_remaining = 0
    reading = _reading(poller, "zoom")
    assert not reading.ok and "daily" in reading.error
    assert reading.values == {"meetings": 1.0, "meeting_participants": 6.0}


def _fgt_source(server: FakeServer, **api: object) -> dict:
    return {
        "name": "fgt",
        "kind": "fortigate_vpn",
        "paths": ["/nonexistent/*.log"],
        "live": True,
        "live_api": {"url": server.url, "token": "env:FGT_TOKEN", **api},
    }


def test_fortigate_monitor_across_vdoms_and_an_expired_token(
    tmp_path: Path, server: FakeServer
) -> None:
    fake = FakeFortiGate(
        server,
        {
            "root": [user("yamada", "198.51.100.10", tunnels=2), user("sato", "198.51.100.11")],
            "branch": [user("kato", "203.0.113.5")],
            "dmz": [user("ito", "203.0.113.6")],
        },
    )
    clock = Clock(dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC))
    cfg = live_config(tmp_path, _fgt_source(server, vdoms=["root", "branch"]))
    poller = Poller(cfg, clock=clock)
    reading = _reading(poller, "fgt")
    assert reading.ok, reading.error
    assert reading.values == {"vpn_users": 3.0, "vpn_sessions": 4.0}
    assert reading.platform == "fortigate"
    assert sorted(r.query.get("vdom") for r in server.requests("GET")) == ["branch", "root"]

    fake.token = "a-new-token"  # the old one expired or was revoked
    clock.advance(minutes=1)
    reading = _reading(poller, "fgt")
    assert not reading.ok
    assert "fgt" in reading.error and "401" in reading.error and "token" in reading.error
    assert TOKEN not in reading.error
    assert reading.values == {"vpn_users": 3.0, "vpn_sessions": 4.0}
    assert reading.last_success == dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC).timestamp()

    fake.token = TOKEN
    clock.advance(minutes=1)
    reading = _reading(poller, "fgt")
    assert reading.ok and reading.last_success == clock()


def test_fortigate_all_vdoms_in_one_request(tmp_path: Path, server: FakeServer) -> None:
    FakeFortiGate(
        server,
        {"root": [user("yamada", "198.51.100.10")], "branch": [user("yamada", "203.0.113.5")]},
    )
    cfg = live_config(tmp_path, _fgt_source(server, vdoms=["*"]))
    reading = _reading(Poller(cfg), "fgt")
    assert reading.values == {"vpn_users": 1.0, "vpn_sessions": 2.0}


def test_fortigate_tls_is_verified_by_default(tmp_path: Path) -> None:
    import ssl

    ca, cert, key = tls_files(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = FakeServer().start(tls=ctx)
    try:
        FakeFortiGate(server, {"root": [user("yamada", "198.51.100.10")]})
        cfg = live_config(tmp_path, _fgt_source(server))
        reading = _reading(Poller(cfg), "fgt")
        assert not reading.ok and "ca_bundle" in reading.error
        cfg = live_config(tmp_path, _fgt_source(server, ca_bundle=str(ca)))
        reading = _reading(Poller(cfg), "fgt")
        assert reading.ok, reading.error
    finally:
        server.stop()


def test_a_slow_source_does_not_hold_up_the_others(tmp_path: Path, server: FakeServer) -> None:
    """Each source polls on its own thread: a hanging API leaves the log reader on time."""
    fake = FakeFortiGate(server, {"root": [user("yamada", "198.51.100.10")]})
    fake.faults.add("ssl", lambda: time.sleep(3) or None)
    log = tmp_path / "fgt.log"
    log.write_text("")
    cfg = live_config(
        tmp_path,
        _fgt_source(server) | {"live_interval": 0.2},
        {
            "name": "vpn-log",
            "kind": "fortigate_vpn",
            "paths": [str(log)],
            "live": True,
            "live_interval": 0.2,
        },
    )
    poller = Poller(cfg)
    poller.start()
    try:
        deadline = time.monotonic() + 2
        path = snapshot_path(cfg.data_dir)
        while time.monotonic() < deadline:
            if path.exists() and "vpn-log" in read_snapshot(path).sources:
                break
            time.sleep(0.05)
        snap = read_snapshot(path)
        assert snap.sources["vpn-log"].ok
        assert time.monotonic() < deadline
        # ... and a scrape, while the API poll still hangs, reads the snapshot only.
        reg = CollectorRegistry(auto_describe=False)
        reg.register(WorkstyleCollector(cfg, live=True))
        started = time.monotonic()
        text = generate_latest(reg).decode()
        assert time.monotonic() - started < 0.5
        assert 'workstyle_live_up{platform="fortigate",source="vpn-log"} 1.0' in text
        assert 'workstyle_live_up{platform="fortigate",source="fgt"} 0.0' in text
    finally:
        poller.stop(timeout=0.1)  # the hung API thread is a daemon


def test_live_on_a_kind_without_a_live_view_is_a_config_error(tmp_path: Path) -> None:
    cfg = live_config(
        tmp_path,
        {
            "name": "teams",
            "kind": "teams",
            "tenant_id": "t",
            "client_id": "x",
            "client_secret": "env:X",
            "live": True,
        },
    )
    with pytest.raises(ConfigError, match=r"teams.*'live'.*docs/sources/live.md"):
        Poller(cfg)


def test_zoom_live_leaves_the_daily_quota_to_the_nightly_run(
    tmp_path: Path, server: FakeServer
) -> None:
    """Below quota_reserve + live_api.quota_reserve requests left, live polling stops."""
    fake = zoom_fake.FakeZoom(server, [])
    fake.live = [_live_meeting(1, 6)]
    fake.daily_remaining = 1500
    cfg = live_config(
        tmp_path, _zoom_source(server, quota_reserve=100, live_api={"quota_reserve": 1000})
    )
    poller = Poller(cfg)
    assert _reading(poller, "zoom").ok
    fake.daily_remaining = 1050  # the next answer says 1049 left: under 100 + 1000
    assert _reading(poller, "zoom").ok  # that answer is still used
    before = len(server.requests("GET", "/v2/metrics/meetings"))
    reading = _reading(poller, "zoom")
    assert not reading.ok and "daily" in reading.error
    assert reading.values == {"meetings": 1.0, "meeting_participants": 6.0}
    assert len(server.requests("GET", "/v2/metrics/meetings")) == before  # nothing spent


def test_webex_meetings_in_progress_of_the_configured_hosts(
    tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webex lists in-progress instances per host: the live reader asks each configured
    host (paged by Link headers) and counts each meeting's participants."""
    from tests.fakes import webex as webex_fake

    fake = webex_fake.FakeWebex(server)
    monkeypatch.setenv("WEBEX_SECRET", webex_fake.CLIENT_SECRET)
    refresh = tmp_path / "webex-refresh"
    refresh.write_text(webex_fake.FIRST_REFRESH + "\n")
    hosts = ["hanako@pref.example.jp", "taro@pref.example.jp"]
    fake.in_progress = [
        {
            "id": f"m{n}_I_1",
            "hostEmail": hosts[n % 2],
            "title": "課長会議",
            "state": "inProgress",
            "start": "2026-12-01T01:00:00Z",
        }
        for n in range(3)
    ]
    fake.participants = {
        "m0_I_1": [{"email": "a@pref.example.jp", "joinedTime": "2026-12-01T01:00:10Z"}] * 2,
        "m1_I_1": [
            {"email": f"p{i}@pref.example.jp", "joinedTime": "2026-12-01T01:00:10Z"}
            for i in range(4)
        ],
        "m2_I_1": [],
    }
    cfg = live_config(
        tmp_path,
        {
            "name": "webex",
            "kind": "webex",
            "client_id": webex_fake.CLIENT_ID,
            "client_secret": "env:WEBEX_SECRET",
            "refresh_token": f"file:{refresh}",
            "base_url": server.url + "/v1",
            "hosts": hosts,
            "page_size": 1,
            "live": True,
            **FAST,
        },
    )
    reading = _reading(Poller(cfg), "webex")
    assert reading.ok, reading.error
    assert reading.values == {"meetings": 3.0, "meeting_participants": 5.0}
    assert reading.platform == "webex"
    assert {r.query.get("hostEmail") for r in server.requests("GET", "/v1/meetings")} >= set(hosts)


def test_webex_live_needs_a_host_list(tmp_path: Path) -> None:
    cfg = live_config(
        tmp_path,
        {
            "name": "webex",
            "kind": "webex",
            "client_id": "x",
            "client_secret": "env:X",
            "refresh_token": "env:Y",
            "live": True,
        },
    )
    with pytest.raises(ConfigError, match=r"\(webex\) key 'hosts'.*live"):
        Poller(cfg)
