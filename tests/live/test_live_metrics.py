"""Live metrics in the exposition: from the snapshot only, no person in any label, and a real
Prometheus scraping ``collector serve`` while live polls fail and recover."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.fakes.fortigate import TOKEN
from tests.live.helpers import PAPERCUT_HEAD, TZ, Clock, fgt, live_config, papercut
from tests.promserver import (
    Target,
    example,  # noqa: F401 - session fixture
    http_get,
    live,  # noqa: F401 - session fixture
    prometheus_server,  # noqa: F401 - session fixture
)
from workstyle.collector.exporter.families import WorkstyleCollector
from workstyle.collector.live.poller import Poller
from workstyle.collector.live.snapshot import snapshot_path

LIVE_FAMILIES = (
    "workstyle_live_meetings",
    "workstyle_live_meeting_participants",
    "workstyle_live_vpn_users",
    "workstyle_live_vpn_sessions",
    "workstyle_live_print_jobs_today",
    "workstyle_live_print_sheets_today",
    "workstyle_live_up",
    "workstyle_live_last_success_timestamp_seconds",
    "workstyle_live_poll_duration_seconds",
)
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TZ)
#: Every person, host and device identifier in the fixtures below.
IDENTIFIERS = ("yamada", "sato", "kato", "FGT-HQ", "FG100FTK", "198.51.100", "MFP-", "PC00101")


@pytest.fixture
def polled(tmp_path: Path, key_env: str) -> tuple[object, Clock]:
    (tmp_path / "print").mkdir()
    (tmp_path / "print" / "papercut-print-log-2026-12-01.csv").write_text(
        PAPERCUT_HEAD
        + papercut(NOW, "tyamada", 4, 2, True)
        + papercut(NOW, "PREF\\TYAMADA", 3, 1, False)
    )
    log = tmp_path / "fgt.log"
    log.write_text(
        fgt(NOW, "tunnel-up", 1, "Yamada")
        + fgt(NOW, "tunnel-up", 2, "sato")
        + fgt(NOW, "tunnel-up", 3, "kato")
    )
    cfg = live_config(
        tmp_path,
        {"name": "vpn", "kind": "fortigate_vpn", "paths": [str(log)], "live": True},
        {
            "name": "print",
            "kind": "papercut_print_logger",
            "path": str(tmp_path / "print"),
            "live": True,
            "settle_seconds": 0,
        },
        {"name": "print-nightly", "kind": "papercut_print_logger", "path": str(tmp_path / "print")},
    )
    clock = Clock(NOW + dt.timedelta(minutes=5))
    Poller(cfg, clock=clock).poll_once()
    return cfg, clock


def _exposition(cfg: object, clock: Clock) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WorkstyleCollector(cfg, live=True, clock=clock))
    return generate_latest(reg).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("workstyle_live_")
    }


def test_live_families_come_from_the_snapshot(polled: tuple[object, Clock]) -> None:
    cfg, clock = polled
    got = _samples(_exposition(cfg, clock))
    vpn = (("platform", "fortigate"), ("source", "vpn"))
    prn = (("platform", "papercut"), ("source", "print"))
    assert got[("workstyle_live_vpn_sessions", vpn)] == 3
    assert got[("workstyle_live_vpn_users", vpn)] == 3
    assert got[("workstyle_live_print_jobs_today", prn)] == 2
    assert got[("workstyle_live_print_sheets_today", prn)] == 5
    assert got[("workstyle_live_up", vpn)] == 1 and got[("workstyle_live_up", prn)] == 1
    assert got[("workstyle_live_last_success_timestamp_seconds", vpn)] == clock()
    assert ("workstyle_live_up", (("platform", "papercut"), ("source", "print-nightly"))) not in got
    assert {k for _, labels in got for k, _ in labels} == {"source", "platform"}


def test_every_live_family_is_exposed_and_no_person_is_in_it(
    polled: tuple[object, Clock],
) -> None:
    cfg, clock = polled
    text = _exposition(cfg, clock)
    types = set(re.findall(r"^# TYPE (workstyle_live_\w+) ", text, re.M))
    assert types == set(LIVE_FAMILIES)
    for ident in IDENTIFIERS:
        assert ident.lower() not in text.lower(), ident
    snap = snapshot_path(cfg.data_dir).read_text()
    for ident in IDENTIFIERS:
        assert ident.lower() not in snap.lower(), ident


def test_live_up_drops_when_the_poller_stops_writing(polled: tuple[object, Clock]) -> None:
    """A snapshot nobody refreshes is stale: values stay, up goes to 0."""
    cfg, clock = polled
    clock.advance(minutes=10)  # ten intervals of 60 s without a poll
    got = _samples(_exposition(cfg, clock))
    vpn = (("platform", "fortigate"), ("source", "vpn"))
    assert got[("workstyle_live_up", vpn)] == 0
    assert got[("workstyle_live_vpn_sessions", vpn)] == 3


def test_scrape_does_not_read_a_source(polled: tuple[object, Clock], tmp_path: Path) -> None:
    """The exporter reads the snapshot file only: deleting the logs changes nothing."""
    cfg, clock = polled
    before = _samples(_exposition(cfg, clock))
    (tmp_path / "fgt.log").unlink()
    assert _samples(_exposition(cfg, clock)) == before


# -- a real Prometheus scraping `collector serve` --------------------------------------------
def test_prometheus_sees_live_values_while_polls_fail_and_recover(live: Target) -> None:  # noqa: F811
    fake = live.fake  # type: ignore[attr-defined]
    api = '{source="fgt-api"}'
    live.wait_value(f"workstyle_live_vpn_users{api}", 3)
    live.wait_value(f"workstyle_live_vpn_sessions{api}", 4)
    live.wait_value(f"workstyle_live_up{api}", 1)
    live.wait_value('workstyle_live_vpn_sessions{source="fgt-log"}', 2)
    live.wait_value('workstyle_live_print_jobs_today{source="print-live"}', 3)
    live.wait_value('workstyle_live_print_sheets_today{source="print-live"}', 8)

    fake.token = "rotated-elsewhere-9f8e"
    live.wait_value(f"workstyle_live_up{api}", 0)
    assert list(live.values(f"workstyle_live_vpn_users{api}").values()) == [3]
    # The log-fed sources are unaffected.
    assert list(live.values('workstyle_live_up{source="fgt-log"}').values()) == [1]
    started = time.monotonic()
    status, body = http_get(f"{live.serve.url}/metrics")
    assert status == 200 and time.monotonic() - started < 0.5
    for ident in (*IDENTIFIERS, "host@pref", "課長会議"):
        assert ident.lower() not in body.decode().lower(), ident
    live.wait_value('workstyle_live_meetings{source="zoom-live"}', 2)
    live.wait_value('workstyle_live_meeting_participants{source="zoom-live"}', 6)

    fake.token = TOKEN
    live.wait_value(f"workstyle_live_up{api}", 1)
    log = live.serve.log.read_text()
    assert TOKEN not in log and "rotated-elsewhere" not in log


def test_the_bundled_example_shows_every_live_family(example: Target) -> None:  # noqa: F811
    _, body = http_get(f"{example.serve.url}/metrics")
    types = set(re.findall(r"^# TYPE (workstyle_live_\w+) ", body.decode(), re.M))
    assert types == set(LIVE_FAMILIES)
    example.wait_value('workstyle_live_up{source="print-logger"}', 1)
    snap = json.loads((example.data_dir / "_live" / "snapshot.json").read_text())
    assert {"print-logger", "vpn-gateway"} <= set(snap["sources"])
