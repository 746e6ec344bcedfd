"""PaperCut NG/MF printlog_yyyy_mm_dd.log: manual layout, configured extras, growth, CP932."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "papercut_ng_print_log"
UTC = dt.UTC
DAY1 = "printlog_2024_05_13.log"
DAY2 = "printlog_2024_05_14.log"
EXTENDED = [
    "date",
    "time",
    "server",
    "printer",
    "user",
    "account",
    "client",
    "document",
    "pages",
    "color_pages",
    "copies",
    "duplex",
    "paper_size",
]


@pytest.fixture
def run(tmp_path, make_config, load_config, pipeline_for):
    def go(**extra: object):
        src = {
            "name": "pc",
            "kind": "papercut_ng_print_log",
            "keep_titles": True,
            "keep_device_names": True,  # to check the PC names read
            "paths": [str(tmp_path / "logs" / "printlog_*.log*")],
        }
        cfg = load_config(make_config([{**src, **extra}]))
        return cfg, pipeline_for(cfg).incremental(cfg.sources)[0]

    (tmp_path / "logs").mkdir()
    return go


def _jobs(cfg) -> pl.DataFrame:
    store = Store(cfg.data_dir.resolve())
    return store.scan(schemas.get("print_jobs")).collect().sort("printed_at")


def test_manual_layout_with_am_pm_and_cp932_document_names(tmp_path, run) -> None:
    shutil.copy(FX / DAY1, tmp_path / "logs" / DAY1)
    cfg, res = run()
    assert res.ok, res.error
    jobs = _jobs(cfg)
    assert jobs.select(
        "printed_at",
        "printer",
        "client",
        "pages",
        "color",
        "sheets",
        "sheets_upper_bound",
        "document_name",
    ).rows() == [
        (
            dt.datetime(2024, 5, 13, 0, 5, 12, tzinfo=UTC),
            "MFP-3F-A",
            "PC-21",
            6,
            False,
            6,
            True,
            "予算資料（第２版）.xlsx",
        ),
        (
            dt.datetime(2024, 5, 13, 4, 30, tzinfo=UTC),
            "MFP-3F-A",
            "PC-35",
            4,
            True,
            4,
            True,
            "議事録.docx",
        ),
        (
            dt.datetime(2024, 5, 13, 5, 0, tzinfo=UTC),
            "MFP-4F-B",
            "PC-40",
            10,
            False,
            10,
            True,
            "Invoice.pdf",
        ),
    ]
    # Key: the file's head fingerprint + line, stable across copies and growth.
    assert [j.split(":")[1] for j in jobs.get_column("job_id")] == ["1", "2", "4"]
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    assert sorted((Path(loc).name, r) for loc, r in q.select("location", "reason").iter_rows()) == [
        (f"{DAY1}:3", "1 tab-separated fields, expected at least 9; check the 'columns' setting"),
        (f"{DAY1}:5", "time 2024-05-13 25:99:00 PM matches no time_formats"),
    ]


def test_growing_log_is_read_from_where_it_stopped(tmp_path, run) -> None:
    path = tmp_path / "logs" / DAY1
    shutil.copy(FX / DAY1, path)
    cfg, first = run()
    ids = set(_jobs(cfg).get_column("job_id"))
    with path.open("ab") as fh:
        fh.write((FX / "printlog_2024_05_13.append.log").read_bytes())
    cfg, res = run()
    assert res.rows_read == 1 and res.new == 1 and res.quarantined == 0
    jobs = _jobs(cfg)
    assert ids < set(jobs.get_column("job_id"))
    assert jobs.row(-1, named=True)["job_id"].endswith(":6")


def test_configured_copies_and_duplex_give_exact_sheets(tmp_path, run) -> None:
    shutil.copy(FX / DAY2, tmp_path / "logs" / DAY2)
    cfg, res = run(columns=EXTENDED)
    assert res.ok, res.error
    got = (
        _jobs(cfg)
        .select("pages", "copies", "duplex", "paper_size", "sheets", "sheets_upper_bound")
        .rows()
    )
    assert got == [
        (10, 2, True, "A4", 6, False),  # 5 pages per copy, duplex: 3 sheets x 2
        (3, 3, False, "A3", 3, False),
        (9, 3, True, "A4", 6, False),  # 3 pages per copy -> 2 sheets x 3
    ]


def test_unknown_column_name_is_a_config_error(make_config, load_config) -> None:
    from workstyle.collector.errors import ConfigError

    src = {
        "name": "pc",
        "kind": "papercut_ng_print_log",
        "paths": ["x"],
        "columns": ["date", "time", "printer", "user", "pagez"],
    }
    with pytest.raises(ConfigError, match="pagez"):
        load_config(make_config([src]))
