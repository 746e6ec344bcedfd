"""Windows PrintService 307/805: wevtutil XML, Get-WinEvent CSV (CP932), copies join, keys."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "windows_print_events"
UTC = dt.UTC
XML = "print-2024-05-13.xml"
PARAMS = "print-2024-05-13-params.csv"
PLAIN = "print-plain-export.csv"


@pytest.fixture
def run(tmp_path, make_config, load_config, pipeline_for):
    def go(*names: str, **extra: object):
        for n in names:
            shutil.copy(FX / n, tmp_path / "in" / n)
        src = {
            "name": "prn",
            "kind": "windows_print_events",
            "keep_titles": True,
            "keep_device_names": True,  # to check the PC names read
            "paths": [str(tmp_path / "in" / "*")],
        }
        cfg = load_config(make_config([{**src, **extra}]))
        return cfg, pipeline_for(cfg).incremental(cfg.sources)[0]

    (tmp_path / "in").mkdir()
    return go


def _jobs(cfg) -> pl.DataFrame:
    return Store(cfg.data_dir.resolve()).scan(schemas.get("print_jobs")).collect().sort("job_id")


def _quarantine(cfg) -> list[tuple[str, str]]:
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    return sorted((Path(loc).name, r) for loc, r in q.select("location", "reason").iter_rows())


def test_xml_export_joins_copies_from_805_and_flags_the_upper_bound(run) -> None:
    cfg, res = run(XML)
    assert res.ok, res.error
    assert _jobs(cfg).select(
        "job_id",
        "printed_at",
        "printer",
        "client",
        "pages",
        "copies",
        "color",
        "sheets",
        "sheets_upper_bound",
        "document_name",
    ).rows() == [
        (
            "PRN01.pref.local:2001",
            dt.datetime(2024, 5, 13, 0, 12, 33, 123456, tzinfo=UTC),
            "MFP-3F-A",
            "PC-21",
            6,
            3,
            True,
            6,
            True,
            "予算資料 R6 & R7.docx",
        ),
        (
            "PRN01.pref.local:2002",
            dt.datetime(2024, 5, 13, 0, 20, tzinfo=UTC),
            "MFP-3F-A",
            "PC-35",
            7,
            None,
            None,
            7,
            True,
            "Minutes.pdf",
        ),
    ]
    assert _quarantine(cfg) == [(f"{XML}:4", "Param8 (pages printed) is not a number")]


def test_805_from_the_previous_export_gives_copies_to_a_307_in_the_next(run) -> None:
    run(XML)
    cfg, res = run(PARAMS)
    assert res.ok, res.error
    assert res.rows_read == 4  # the XML export is not read again
    jobs = _jobs(cfg)
    suzuki = jobs.filter(pl.col("job_id") == "PRN01.pref.local:2005").row(0, named=True)
    # 805 for job 9 (copies 2, monochrome) was in yesterday's XML, kept in the checkpoint.
    assert (suzuki["pages"], suzuki["copies"], suzuki["color"]) == (8, 2, False)
    # CP932 CSV: document names decode; ISO times with +09:00 become UTC.
    assert suzuki["document_name"] == "出張旅費精算書.xlsx"
    assert suzuki["printed_at"] == dt.datetime(2024, 5, 13, 0, 59, 30, tzinfo=UTC)
    ito = jobs.filter(pl.col("job_id") == "PRN01.pref.local:2007").row(0, named=True)
    assert (ito["pages"], ito["copies"], ito["document_name"]) == (3, 1, "議事録（第３回）.docx")
    assert (f"{PARAMS}:5", "no TimeCreated") in _quarantine(cfg)


def test_plain_export_csv_reads_the_english_message_in_local_time(run) -> None:
    cfg, res = run(PLAIN)
    assert res.ok, res.error
    row = _jobs(cfg).row(0, named=True)
    assert row["job_id"] == "PRN02.pref.local:3001"
    assert row["printed_at"] == dt.datetime(2024, 5, 13, 5, 15, tzinfo=UTC)  # 14:15 JST
    assert (row["pages"], row["copies"], row["printer"], row["client"]) == (
        12,
        None,
        "MFP-5F-C",
        "PC-60",
    )


def test_csv_without_the_needed_columns_names_the_file(tmp_path, run) -> None:
    (tmp_path / "in" / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    cfg, res = run(XML)
    assert res.outcome == "failed"
    assert "bad.csv" in res.error and "Export-Csv" in res.error
    assert _jobs(cfg).height == 2  # the good file still landed
