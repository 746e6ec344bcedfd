"""SNMP printer counters against a real net-snmp agent on 127.0.0.1 (no mocked client).

Each agent is ``snmpd`` serving the Printer-MIB subtree through a ``pass`` script
that reads a JSON file the test rewrites between polls, so one agent can show a
counter that wraps, another one that resets, and a third address answers nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "snmp_printer_counters"
SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
LIFE = "1.3.6.1.2.1.43.10.2.1.4.1.1"
SERIAL = "1.3.6.1.2.1.43.5.1.1.17.1"

pytestmark = pytest.mark.skipif(
    SNMPD is None, reason="net-snmp's snmpd is not installed (apt-get install snmpd; CI does)"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """One snmpd on 127.0.0.1:port serving values from a JSON file."""

    def __init__(self, folder: Path, serial: str, count: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.values = folder / "values.json"
        base = json.loads((FX / "values-mfp-a.json").read_text(encoding="utf-8"))
        base[SERIAL] = ["string", serial]
        self.data = base
        self.set(count)
        (folder / "agent.conf").write_text(
            f"agentAddress udp:127.0.0.1:{self.port}\n"
            "rocommunity public 127.0.0.1\n"
            'createUser collector SHA "auth-pass-123" AES "priv-pass-456"\n'
            "rouser collector priv\n"
            f"pass .1.3.6.1.2.1.43 {sys.executable} {FX / 'printer_mib_pass.py'} {self.values}\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def set(self, count: int) -> None:
        self.data[LIFE] = ["counter", str(count)]
        self.values.write_text(json.dumps(self.data), encoding="utf-8")

    def start(self) -> Agent:
        log = self.folder / "snmpd.log"
        log.write_bytes(b"")
        # snmpd saves state as <persistent dir>/snmpd.conf on exit: keep it apart from
        # the agent's own config, or a restart loses the community and user.
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.folder / "state"), "MIBS": ""}
        self.proc = subprocess.Popen(
            [
                SNMPD,
                "-f",
                "-Lf",
                str(log),
                "-C",
                "-c",
                str(self.folder / "agent.conf"),
                "-p",
                str(self.folder / "snmpd.pid"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while b"NET-SNMP version" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[dict[str, Agent]]:
    started = {
        "wraps": Agent(tmp_path / "a", "JPA0000001", 4_294_967_000).start(),
        "resets": Agent(tmp_path / "b", "JPB0000002", 1500).start(),
    }
    yield started
    for agent in started.values():
        agent.stop()


@pytest.fixture
def poll(make_config, load_config, pipeline_for, monkeypatch):
    monkeypatch.setenv("SNMP_AUTH", "auth-pass-123")
    monkeypatch.setenv("SNMP_PRIV", "priv-pass-456")

    def go(hosts: list[str], **extra: object):
        src = {
            "name": "mfp",
            "kind": "snmp_printer_counters",
            "hosts": hosts,
            # Long enough for a live agent on a loaded machine; a dead address costs 2 s.
            "timeout": 2.0,
            "retries": 0,
            **extra,
        }
        cfg = load_config(make_config([src]))
        res = pipeline_for(cfg).incremental(cfg.sources)[0]
        time.sleep(1.0)  # readings are keyed by the second they were read
        return cfg, res

    return go


def _table(cfg, name: str) -> pl.DataFrame:
    return Store(cfg.data_dir.resolve()).scan(schemas.get(name)).collect()


def test_wrap_reset_and_unreachable_printer(agents, poll) -> None:
    a, b = agents["wraps"], agents["resets"]
    dead = f"127.0.0.1:{free_udp_port()}"
    hosts = [a.host, b.host, dead]

    cfg, res = poll(hosts)
    assert res.ok, res.error
    readings = _table(cfg, "printer_counter_readings")
    assert sorted(
        readings.select("device", "marker", "life_count", "unit", "printer_name").rows()
    ) == [
        ("JPA0000001", "1.1", 4_294_967_000, "impressions", "MFP-3F-A"),
        ("JPB0000002", "1.1", 1500, "impressions", "MFP-3F-A"),
    ]
    assert _table(cfg, "printer_counter_deltas").height == 0  # a first reading has no delta
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    assert q.get_column("location").to_list() == [dead]
    assert "no reading stored" in q.item(0, "reason")

    a.set(500)  # Counter32 rolled over: 296 + 500 pages
    b.set(200)  # reset: only the 200 pages since the reset are known
    cfg, _ = poll(hosts)
    deltas = _table(cfg, "printer_counter_deltas").sort("device")
    assert deltas.select("device", "pages", "kind").rows() == [
        ("JPA0000001", 796, "wrapped"),
        ("JPB0000002", 200, "reset"),
    ]
    b_second = deltas.row(1, named=True)["interval_end"]

    b.stop()  # unreachable: no reading, no zero delta
    a.set(900)
    cfg, res = poll(hosts)
    assert res.ok
    deltas = _table(cfg, "printer_counter_deltas")
    assert deltas.filter(pl.col("device") == "JPB0000002").height == 1
    assert (
        deltas.filter(pl.col("device") == "JPA0000001")
        .sort("interval_end")
        .row(-1, named=True)["pages"]
        == 400
    )

    b.set(260)
    b.start()
    cfg, res = poll(hosts)
    assert res.quarantined == 1  # only the dead address
    last = (
        _table(cfg, "printer_counter_deltas")
        .filter(pl.col("device") == "JPB0000002")
        .sort("interval_end")
        .row(-1, named=True)
    )
    # The gap while it was off is one interval from the last good reading.
    assert (last["pages"], last["kind"], last["interval_start"]) == (60, "counted", b_second)
    assert (_table(cfg, "printer_counter_deltas").get_column("pages") >= 0).all()


def test_snmp_v3_auth_priv(agents, poll) -> None:
    a = agents["wraps"]
    cfg, res = poll(
        [a.host], version="3", user="collector", auth_key="env:SNMP_AUTH", priv_key="env:SNMP_PRIV"
    )
    assert res.ok, res.error
    assert _table(cfg, "printer_counter_readings").get_column("device").to_list() == ["JPA0000001"]


def test_no_printer_answering_fails_the_source(agents, poll) -> None:
    a = agents["wraps"]
    cfg, res = poll(
        [a.host], version="3", user="collector", auth_key="env:SNMP_PRIV", priv_key="env:SNMP_PRIV"
    )
    assert res.outcome == "failed"
    assert "no printer answered" in res.error and a.host in res.error
