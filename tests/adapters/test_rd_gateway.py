"""RD Gateway 302/303 XML exports: sessions keyed by computer + record id, open sessions kept."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "rd_gateway"
UTC = dt.UTC


@pytest.fixture
def run(tmp_path, make_config, load_config, pipeline_for):
    def go(**extra: object):
        src = {"name": "rdg", "kind": "rd_gateway", "paths": [str(tmp_path / "in" / "*.xml")]}
        cfg = load_config(make_config([{**src, **extra}]))
        return cfg, pipeline_for(cfg).incremental(cfg.sources)[0]

    (tmp_path / "in").mkdir()
    return go


def _sessions(cfg) -> pl.DataFrame:
    store = Store(cfg.data_dir.resolve())
    return store.scan(schemas.get("remote_sessions")).collect().sort("start_time")


def test_303_events_become_sessions_and_302_waits_for_its_end(tmp_path, run) -> None:
    shutil.copy(FX / "rdg-2024-05-13.xml", tmp_path / "in")
    cfg, res = run()
    assert res.ok, res.error
    assert _sessions(cfg).select(
        "session_id",
        "start_time",
        "duration_seconds",
        "gateway",
        "tunnel_type",
        "bytes_in",
        "bytes_out",
    ).rows() == [
        (
            "RDG01.pref.local:1002",
            dt.datetime(2024, 5, 13, 0, 0, 10, 500000, tzinfo=UTC),
            5400,
            "RDG01.pref.local",
            "rdg-http",
            5242880,
            1048576,
        ),
    ]
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    assert sorted((Path(loc).name, r) for loc, r in q.select("location", "reason").iter_rows()) == [
        ("rdg-2024-05-13.xml:4", "no Username in EventInfo"),
        ("rdg-2024-05-13.xml:5", "truncated event at the end of the export (no </Event>)"),
    ]
    # Next night's export closes sato's session, opened in the first file.
    shutil.copy(FX / "rdg-2024-05-14.xml", tmp_path / "in")
    cfg, res = run()
    assert res.new == 1 and res.rows_read == 2  # the first export is not read again
    sato = _sessions(cfg).row(-1, named=True)
    assert sato["session_id"] == "RDG01.pref.local:1005"
    assert sato["start_time"] == dt.datetime(2024, 5, 13, 8, 50, tzinfo=UTC)
    # 'PREF\Sato' and a later 'pref\sato' are one pseudonym: domain dropped, lower-cased.
    from tests.conftest import TEST_KEY
    from workstyle.collector.pseudonyms import Pseudonymiser

    assert sato["person"] == Pseudonymiser(TEST_KEY.encode()).one("sato")


def test_a_session_that_never_ends_is_quarantined_after_max_age(tmp_path, run) -> None:
    shutil.copy(FX / "rdg-2024-05-14.xml", tmp_path / "in")
    run(open_session_max_hours=24.0)
    # Two days later tanaka's 302 (record 1006) has still no 303.
    shutil.copy(FX / "rdg-2024-05-16.xml", tmp_path / "in")
    cfg, _ = run(open_session_max_hours=24.0)
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    reasons = q.filter(pl.col("location").str.ends_with("rdg-2024-05-14.xml:3"))
    assert reasons.height == 1
    assert "never followed by an end" in reasons.item(0, "reason")
