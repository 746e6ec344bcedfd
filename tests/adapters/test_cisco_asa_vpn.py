"""Cisco ASA syslog: every duration format, WebVPN pairing, headers with and without a year."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.adapters.cisco_asa_vpn import duration_seconds
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "cisco_asa_vpn"
UTC = dt.UTC


def _sessions(cfg) -> pl.DataFrame:
    store = Store(cfg.data_dir.resolve())
    return store.scan(schemas.get("remote_sessions")).collect().sort("start_time")


@pytest.fixture
def run(tmp_path, make_config, load_config, pipeline_for):
    def go(**extra: object):
        src = {"name": "asa", "kind": "cisco_asa_vpn", "paths": [str(tmp_path / "logs" / "asa*")]}
        cfg = load_config(make_config([{**src, **extra}]))
        return cfg, pipeline_for(cfg).incremental(cfg.sources)[0]

    (tmp_path / "logs").mkdir()
    return go


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0h:32m:16s", 1936),
        ("1d 19h:41m:14s", 86400 + 19 * 3600 + 41 * 60 + 14),
        ("0:45:01", 2701),
        ("12:00:00", 43200),
        ("2d 01:02:03", 2 * 86400 + 3723),
        ("about an hour", None),
    ],
)
def test_every_asa_duration_format(text: str, seconds: int | None) -> None:
    got = pl.select(duration_seconds(pl.lit(text))).item()
    assert got == seconds


def test_sessions_from_113019_and_webvpn_pairs(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "asa-2024-05-13.log", logs / "asa.log")
    cfg, res = run()
    assert res.ok, res.error
    s = _sessions(cfg)
    got = s.select(
        "start_time", "duration_seconds", "tunnel_type", "bytes_in", "bytes_out", "gateway"
    ).rows()
    jst = dt.timezone(dt.timedelta(hours=9))
    assert got == [
        # tanaka: 1d 19h:41m:14s ending 11:00 JST on the 13th.
        (
            dt.datetime(2024, 5, 11, 15, 18, 46, tzinfo=jst).astimezone(UTC),
            157274,
            "AnyConnect-Parent",
            99999,
            8888,
            "asa01",
        ),
        (
            dt.datetime(2024, 5, 13, 0, 0, tzinfo=UTC),
            1936,
            "AnyConnect-Parent",
            1048576,
            204800,
            "asa01",
        ),
        # sato's WebVPN: 716001 .. 716002, then its 113019 merged into the same row.
        (dt.datetime(2024, 5, 13, 1, 0, tzinfo=UTC), 2701, "WebVPN", 4096, 2048, "asa01"),
    ]
    assert all(sid.startswith("asa01/") and "sato" not in sid for sid in s.get_column("session_id"))
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    assert sorted((Path(loc).name, r) for loc, r in q.select("location", "reason").iter_rows()) == [
        ("asa.log:10", "not an ASA syslog line (no %ASA-n-nnnnnn: tag)"),
        ("asa.log:13", "WebVPN session end without its start (716001); the duration is unknown"),
        ("asa.log:9", "duration about an hour is in no known format"),
    ]


def test_open_session_spans_a_rotation_and_bsd_headers_take_the_file_year(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "asa-2024-05-13.log", logs / "asa.log")
    run()
    with gzip.open(logs / "asa.log.1.gz", "wb") as gz:
        gz.write((logs / "asa.log").read_bytes())
    shutil.copy(FX / "asa-2024-05-14.log", logs / "asa.log")
    # BSD syslog headers carry no year: the file's modification time gives it.
    stamp = dt.datetime(2024, 5, 14, 12, tzinfo=UTC).timestamp()
    os.utime(logs / "asa.log", (stamp, stamp))
    cfg, res = run()
    assert res.ok, res.error
    assert res.new == 2 and res.rows_read == 3 and res.quarantined == 0
    s = _sessions(cfg)
    suzuki = s.filter(pl.col("bytes_in") == 777).row(0, named=True)
    # ISO header with +09:00: 01:15 JST on the 14th, 2h45m long.
    assert suzuki["end_time"] == dt.datetime(2024, 5, 13, 16, 15, tzinfo=UTC)
    assert suzuki["start_time"] == dt.datetime(2024, 5, 13, 13, 30, tzinfo=UTC)
    watanabe = s.filter(pl.col("gateway") == "asa02").row(0, named=True)
    assert watanabe["start_time"] == dt.datetime(2024, 5, 14, 0, 0, tzinfo=UTC)
    assert watanabe["duration_seconds"] == 630
    assert s.height == 5
