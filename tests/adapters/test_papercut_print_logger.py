"""PaperCut Print Logger CSVs: banner, trailing commas, encodings, growth, copies, quarantine."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store

DAY1 = "papercut-print-log-2024-04-01.csv"
DAY2 = "papercut-print-log-2024-04-02.csv"


def _source(folder: Path, **extra: object) -> dict[str, object]:
    return {
        "name": "print",
        "kind": "papercut_print_logger",
        "path": str(folder),
        "settle_seconds": 0,
        **extra,
    }


def _jobs(cfg) -> pl.DataFrame:
    return Store(cfg.data_dir.resolve()).scan(schemas.get("print_jobs")).collect().sort("job_id")


def _quarantine(cfg) -> pl.DataFrame:
    from workstyle.schemas.runs_quarantine import QUARANTINE

    return Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect().sort("location")


@pytest.fixture
def ingest(make_config, load_config, pipeline_for):
    def run(folder: Path, **extra: object):
        # Raw text is kept here to check it (by default only location and reason are).
        cfg = load_config(make_config([_source(folder, **extra)], privacy={"quarantine_raw": True}))
        results = pipeline_for(cfg).incremental(cfg.sources)
        return cfg, results[0]

    return run


def test_rows_land_with_sheets_and_utc_times(copy_fixture, ingest) -> None:
    folder = copy_fixture("papercut_print_logger", DAY1, DAY2)
    cfg, res = ingest(folder)
    assert res.ok, res.error
    jobs = _jobs(cfg)
    # Day 1: lines 3, 4, 5 (no trailing comma) and 11 are good; day 2: lines 3 and 4.
    assert jobs.height == 6
    by_line = {
        j.split(":")[1] + "@" + str(t.date()): (p, c, s, d)
        for j, t, p, c, s, d in jobs.select(
            "job_id", "printed_at", "pages", "copies", "sheets", "duplex"
        ).iter_rows()
    }
    assert sorted(by_line.values()) == sorted(
        [
            (4, 2, 2, True),  # 2 pages per copy, duplex: 1 sheet x 2 copies
            (3, 1, 3, False),  # simplex: every page a sheet
            (7, 1, 4, True),  # ceil(7 / 2)
            (10, 5, 5, True),  # 2 pages per copy, duplex, 5 copies
            (6, 3, 3, True),
            (9, 1, 5, True),
        ]
    )
    first = jobs.filter(pl.col("pages") == 4).row(0, named=True)
    # 08:30:05 in Tokyo is 23:30:05 UTC the day before.
    assert first["printed_at"] == dt.datetime(2024, 3, 31, 23, 30, 5, tzinfo=dt.UTC)
    assert first["month"] == "2024-03"  # partitioned by UTC month
    assert jobs.get_column("sheets_upper_bound").to_list() == [False] * 6
    assert res.new == 6 and res.quarantined == 5


def test_bad_rows_are_quarantined_with_file_line_and_reason(copy_fixture, ingest) -> None:
    folder = copy_fixture("papercut_print_logger", DAY1)
    cfg, res = ingest(folder)
    q = _quarantine(cfg)
    got = {
        (loc.rsplit(":", 1)[1], reason)
        for loc, reason in q.select("location", "reason").iter_rows()
    }
    assert got == {
        ("6", "expected 14 fields (+ trailing comma), found 5"),
        ("7", "Pages abc is not a whole number"),
        ("8", "Time 2024-04-01 25:61:00 is not yyyy-MM-dd HH:mm:ss"),
        ("9", "Copies 0 is not a whole number >= 1"),
        ("10", "Duplex SIMPLEX is not DUPLEX or NOT DUPLEX"),
    }
    assert all(loc.startswith(str(folder / DAY1)) for loc in q.get_column("location"))
    assert (
        q.filter(pl.col("location").str.ends_with(":6")).item(0, "raw")
        == "2024-04-01 09:15:00,hsato,1,1,MFP-HONCHO-3F"
    )
    assert res.rows_read == 9


def test_same_person_in_domain_and_case_forms_gets_one_pseudonym(copy_fixture, ingest) -> None:
    cfg, _ = ingest(copy_fixture("papercut_print_logger", DAY1))
    jobs = _jobs(cfg)
    tyamada = jobs.filter(pl.col("pages").is_in([4, 3])).get_column("person").unique()
    assert tyamada.len() == 1
    assert "tyamada" not in tyamada[0]
    assert jobs.get_column("person").n_unique() == 3  # tyamada, hsato, kito


def test_cp932_file_decodes_document_names_when_titles_are_kept(copy_fixture, ingest) -> None:
    cfg, res = ingest(copy_fixture("papercut_print_logger", DAY2), keep_titles=True)
    assert res.ok
    names = set(_jobs(cfg).get_column("document_name"))
    assert names == {"議事録_４月.docx", "令和6年度 事業計画.pdf"}


def test_titles_are_dropped_by_default(copy_fixture, ingest) -> None:
    cfg, _ = ingest(copy_fixture("papercut_print_logger", DAY2))
    assert _jobs(cfg).get_column("document_name").null_count() == 2


def test_wrong_encoding_is_a_clear_source_error(copy_fixture, ingest) -> None:
    cfg, res = ingest(copy_fixture("papercut_print_logger", DAY2), encoding="utf-8")
    assert res.outcome == "failed"
    assert DAY2 in res.error and "cp932" in res.error
    assert _jobs(cfg).height == 0


def test_a_growing_file_is_read_from_where_it_stopped(
    tmp_path, copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("papercut_print_logger", DAY2)
    path = folder / DAY2
    data = path.read_bytes()
    lines = data.split(b"\r\n")
    # The file as it stood at 09:00: banner, header, one job.
    path.write_bytes(b"\r\n".join(lines[:3]) + b"\r\n")
    cfg = load_config(make_config([_source(folder)]))
    first = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert (first.rows_read, first.new) == (1, 1)
    path.write_bytes(data)  # the logger appended the afternoon's job
    second = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert (second.rows_read, second.new, second.unchanged) == (1, 1, 0)
    third = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert third.rows_read == 0
    assert _jobs(cfg).height == 2


def test_half_written_last_line_waits_for_the_next_run(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("papercut_print_logger", DAY2)
    path = folder / DAY2
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the writer is in the middle of the last line
    cfg = load_config(make_config([_source(folder, settle_seconds=3600)]))
    assert pipeline_for(cfg).incremental(cfg.sources)[0].new == 1
    path.write_bytes(data)
    assert pipeline_for(cfg).incremental(cfg.sources)[0].new == 1
    assert _jobs(cfg).height == 2


def test_a_quote_left_open_in_a_settled_file_is_quarantined_not_left_unread(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    """A file the logger has finished with (quiet past settle_seconds) is read whole: a
    last record whose quote never closes is quarantined, not waited for every night."""
    folder = copy_fixture("papercut_print_logger", DAY2)
    path = folder / DAY2
    path.write_bytes(
        path.read_bytes()
        + b'2024-04-02 17:00:00,hsato,1,1,MFP-HONCHO-3F,"unclosed.pdf,PC00233,A4,PCL6,,,'
        + b"NOT DUPLEX,GRAYSCALE,9kb,\r\n"
    )
    os.utime(path, (0, 0))  # settled long ago
    cfg = load_config(make_config([_source(folder, settle_seconds=3600)]))
    res = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert res.ok, res.error
    assert (res.new, res.quarantined) == (2, 1)
    q = _quarantine(cfg)
    assert q.get_column("location").to_list() == [f"{path}:5"]
    again = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert (again.rows_read, again.new, again.quarantined) == (0, 0, 0)


def test_copies_renames_and_gzip_rotations_are_not_counted_twice(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("papercut_print_logger", DAY1, DAY2)
    cfg = load_config(make_config([_source(folder)]))
    pipeline_for(cfg).incremental(cfg.sources)
    # An operator copies the folder's files around; logrotate compresses one.
    shutil.copy2(folder / DAY1, folder / "papercut-print-log-2024-04-01 (copy).csv")
    (folder / "papercut-print-log-2024-04-02.csv.gz").write_bytes(
        gzip.compress((folder / DAY2).read_bytes())
    )
    (folder / DAY2).unlink()
    res = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert res.ok
    assert res.new == 0
    assert _jobs(cfg).height == 6


def test_backfill_rereads_only_its_window_and_keeps_the_watermark(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("papercut_print_logger", DAY1, DAY2)
    cfg = load_config(make_config([_source(folder)]))
    pipeline_for(cfg).incremental(cfg.sources)
    from workstyle.collector.config import identity_of
    from workstyle.collector.ingest.state import StateStore

    states = StateStore(cfg.data_dir)
    before = states.load("print", identity_of(cfg.sources[0]))
    tokyo = dt.timezone(dt.timedelta(hours=9))
    start = dt.datetime(2024, 4, 2, tzinfo=tokyo)
    res = pipeline_for(cfg).backfill(cfg.sources[0], start, start + dt.timedelta(days=1))
    assert res.ok
    # Day 1's file is read too (its name is within a day of the window), but its rows
    # fall outside the window and are left alone.
    assert (res.new, res.unchanged, res.outside_window) == (0, 2, 4)
    after = states.load("print", identity_of(cfg.sources[0]))
    assert after.watermark == before.watermark
    assert after.checkpoint == before.checkpoint
    assert _jobs(cfg).height == 6


def test_a_file_that_is_not_a_print_log_fails_the_source_not_the_run(
    tmp_path, copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("papercut_print_logger", DAY1)
    (folder / "papercut-print-log-2024-04-03.csv").write_text(
        "Date,Name\n2024-04-03,someone\n", encoding="utf-8"
    )
    cfg = load_config(make_config([_source(folder)]))
    res = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert res.outcome == "failed"
    assert "papercut-print-log-2024-04-03.csv" in res.error and "banner" in res.error
    # The good file still landed, and will not be read again.
    assert _jobs(cfg).height == 4
    assert pipeline_for(cfg).incremental(cfg.sources)[0].new == 0


def test_a_row_with_too_many_fields_is_quarantined_and_the_rest_lands(copy_fixture, ingest) -> None:
    folder = copy_fixture("papercut_print_logger", DAY2)
    path = folder / DAY2
    extra = '2024-04-02 14:00:00,hsato,1,1,MFP,"a",PC1,A4,PCL6,,,DUPLEX,GRAYSCALE,1kb,,x,y\r\n'
    path.write_bytes(path.read_bytes() + extra.encode("cp932"))
    cfg, res = ingest(folder)
    assert (res.new, res.quarantined) == (2, 1)
    assert _reasons_of(cfg) == {"5": "expected 14 fields (+ trailing comma), found 17"}


def _reasons_of(cfg) -> dict[str, str]:
    q = _quarantine(cfg)
    return {loc.rsplit(":", 1)[1]: r for loc, r in q.select("location", "reason").iter_rows()}


ODD_ROWS = [
    "2024-04-01 09:00:00,asato,2,1,MFP-1,Plan.docx,PC1,A4,PCL6,,,DUPLEX,GRAYSCALE,12kb,",
    # cut after Grayscale: 13 fields, every check but the width passes
    "2024-04-01 09:05:00,asato,1,1,MFP-1,Cut.docx,PC1,A4,PCL6,,,DUPLEX,GRAYSCALE",
    # values the careful path strips and upper-cases
    "2024-04-01 09:10:00,bsato, 3 ,1, MFP 2 ,Spaced.docx, PC2 ,A4,PCL6,,,duplex,grayscale,3kb,",
    "",
    '2024-04-01 09:15:00,csato,1,1,MFP-1,"Minutes, final",PC3,A4,PCL6,,,NOT DUPLEX,'
    "NOT GRAYSCALE,5kb,,extra",
    "2024-04-01 09:20:00,dsato,4,2,MFP-1,Copies.pdf,PC4,A3,PCL6,,,DUPLEX,GRAYSCALE,9kb",
]


def test_the_fast_path_lands_and_quarantines_exactly_what_the_careful_path_does(
    tmp_path, ingest
) -> None:
    """Rows of odd widths and forms give the same rows and reasons on both paths.

    The grouped plan reads UTF-8 only: ``encoding = "cp932"`` (the same ASCII bytes)
    takes the per-file path, which counts every record's width.
    """
    text = "PaperCut Print Logger - http://www.papercut.com/\r\n" + HEADER_LINE + "\r\n"
    text += "\r\n".join(ODD_ROWS) + "\r\n"
    got = []
    for encoding in ("auto", "cp932"):
        folder = tmp_path / encoding
        folder.mkdir()
        (folder / DAY1).write_bytes(text.encode("ascii"))
        cfg, res = ingest(folder, encoding=encoding)
        jobs = _jobs(cfg).drop("ingested_at")
        got.append((jobs, _reasons_of(cfg), res.rows_read))
    (fast_jobs, fast_q, fast_read), (slow_jobs, slow_q, slow_read) = got
    assert slow_q == {
        "4": "expected 14 fields (+ trailing comma), found 13",
        "7": "expected 14 fields (+ trailing comma), found 16",
    }
    assert fast_q == slow_q
    assert slow_jobs.height == 3
    assert slow_jobs.sort("job_id").get_column("printer").to_list() == ["MFP-1", "MFP 2", "MFP-1"]
    assert fast_jobs.sort("job_id").equals(slow_jobs.sort("job_id"))
    assert fast_read == slow_read == 5


def test_new_files_and_grown_ones_in_one_group_quarantine_what_the_careful_path_does(
    tmp_path, ingest
) -> None:
    """New files are read from their banner, grown ones from where the last run stopped;
    in one group of the fast plan, each row keeps its own file, line and raw text."""
    head = "PaperCut Print Logger - http://www.papercut.com/\r\n" + HEADER_LINE + "\r\n"
    day3 = "papercut-print-log-2024-04-03.csv"

    def body(day: int, hour: int = 9) -> bytes:
        rows = "\r\n".join(ODD_ROWS).replace("2024-04-01 09", f"2024-04-0{day} {hour}")
        return (rows + "\r\n").encode("ascii")

    got = []
    for encoding in ("auto", "cp932"):
        folder = tmp_path / encoding
        folder.mkdir()
        (folder / DAY1).write_bytes(head.encode("ascii") + body(1))
        (folder / DAY2).write_bytes(head.encode("ascii") + body(2))
        cfg, first = ingest(folder, encoding=encoding)
        with (folder / DAY2).open("ab") as fh:
            fh.write(body(2, 10))  # grown: read from line 9
        (folder / day3).write_bytes(head.encode("ascii") + body(3))
        cfg, second = ingest(folder, encoding=encoding)
        q = _quarantine(cfg)
        where = {
            f"{Path(loc.rsplit(':', 1)[0]).name}:{loc.rsplit(':', 1)[1]}": (reason, raw)
            for loc, reason, raw in q.select("location", "reason", "raw").iter_rows()
        }
        got.append((_jobs(cfg).drop("ingested_at"), where, first.rows_read + second.rows_read))
    (fast_jobs, fast_q, fast_read), (slow_jobs, slow_q, slow_read) = got
    assert sorted(slow_q) == sorted(
        f"{day}:{line}"
        for day, lines in ((DAY1, (4, 7)), (DAY2, (4, 7, 10, 13)), (day3, (4, 7)))
        for line in lines
    )
    assert slow_q[f"{DAY2}:13"][1] == ODD_ROWS[4].replace("2024-04-01 09", "2024-04-02 10")
    assert fast_q == slow_q
    assert slow_jobs.height == 12
    assert fast_jobs.equals(slow_jobs)
    assert fast_read == slow_read == 20


HEADER_LINE = (
    "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    "Height,Width,Duplex,Grayscale,Size"
)


def test_a_file_larger_than_a_group_is_read_by_the_group_plan(tmp_path, ingest, monkeypatch):
    """At scale, a daily log is larger than a group: it is still read by the fast plan
    (the per-file path only for the rows the plan doubts), as a group of one."""
    from workstyle.adapters import filebase
    from workstyle.adapters.papercut_print_logger import PaperCutPrintLogger

    calls = {"parse": 0, "parse_many": 0}
    for name in calls:
        real = getattr(PaperCutPrintLogger, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(PaperCutPrintLogger, name, spy)
    monkeypatch.setattr(filebase, "GROUP_BYTES", 300)
    head = "PaperCut Print Logger - http://www.papercut.com/\r\n" + HEADER_LINE + "\r\n"
    row = (
        "2024-04-0{} 09:{:02d}:00,user{},2,1,MFP-1,doc.pdf,PC1,A4,PCL6,,,NOT DUPLEX,GRAYSCALE,1kb,"
    )
    for n, day in enumerate((DAY1, DAY2), start=1):
        rows = "\r\n".join(row.format(n, i, i % 3) for i in range(20))
        (tmp_path / day).write_text(head + rows + "\r\n", encoding="utf-8")
    assert (tmp_path / DAY1).stat().st_size > 3 * filebase.GROUP_BYTES
    cfg, res = ingest(tmp_path)
    assert res.ok, res.error
    assert res.new == 40 and res.quarantined == 0
    assert calls == {"parse": 0, "parse_many": 2}
