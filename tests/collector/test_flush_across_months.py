"""A backfill whose months span many flushes: each month lands whole, once, in one file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import TEST_KEY
from workstyle import schemas
from workstyle.adapters import filebase
from workstyle.collector.ingest.pipeline import Pipeline
from workstyle.collector.ingest.store import Store
from workstyle.collector.pseudonyms import Pseudonymiser

HEAD = (
    "PaperCut Print Logger - http://www.papercut.com/\n"
    "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    "Height,Width,Duplex,Grayscale,Size\n"
)
DAYS = [dt.date(2024, 4, 1) + dt.timedelta(days=9 * k) for k in range(10)]  # Apr..Jun


def _day(day: dt.date, rows: int, trailing: bool) -> str:
    lines = [HEAD]
    for i in range(rows):
        lines.append(
            f"{day:%Y-%m-%d} {8 + i // 60:02d}:{i % 60:02d}:00,user{i % 7},{i % 5 + 1},1,"
            f'MFP-A,"doc, {i}.pdf",PC{i:03d},A4,PCL6,,,NOT DUPLEX,GRAYSCALE,10kb'
            + ("," if trailing else "")
            + "\n"
        )
    if day.day % 2:
        lines.append(f"{day:%Y-%m-%d} 18:00:00,userx,1,1,MFP-A\n")  # a truncated write
    return "".join(lines)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "in"
    out.mkdir()
    for n, day in enumerate(DAYS):
        # Both row forms: with and without the logger's trailing comma.
        (out / f"papercut-print-log-{day:%Y-%m-%d}.csv").write_text(
            _day(day, 40, trailing=n % 3 != 0), encoding="utf-8"
        )
    return out


def _backfill(cfg, flush_rows: int):
    pipe = Pipeline(cfg, Pseudonymiser(TEST_KEY.encode()), flush_rows=flush_rows)
    return pipe.backfill(
        cfg.sources[0],
        dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
    )


def _rows(cfg) -> pl.DataFrame:
    jobs = Store(cfg.data_dir.resolve()).scan(schemas.get("print_jobs")).collect()
    return jobs.drop("ingested_at").sort("job_id")


def test_months_over_many_flushes_land_whole_once_and_rerun_unchanged(
    folder, make_config, load_config, monkeypatch, tmp_path
) -> None:
    # Groups of about one file and flushes of a few dozen rows: every month spans
    # several groups and flushes.
    monkeypatch.setattr(filebase, "GROUP_BYTES", 2000)
    src = {"name": "print", "kind": "papercut_print_logger", "path": str(folder)}
    small = load_config(make_config([src], collector={"data_dir": str(tmp_path / "small")}))
    res = _backfill(small, flush_rows=50)
    assert res.ok, res.error
    assert (res.new, res.quarantined) == (400, sum(d.day % 2 for d in DAYS))
    parts = sorted((tmp_path / "small" / "print_jobs").rglob("*"))
    files = [p for p in parts if p.is_file()]
    months = [p.parent.name for p in files]
    assert months == ["month=2024-03", "month=2024-04", "month=2024-05", "month=2024-06"]
    assert not [p for p in parts if p.name.endswith(".tmp")]

    whole = load_config(make_config([src], collector={"data_dir": str(tmp_path / "whole")}))
    assert _backfill(whole, flush_rows=1_000_000).new == 400
    assert _rows(small).equals(_rows(whole))

    again = _backfill(small, flush_rows=50)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 400)
    assert _rows(small).height == 400


def test_both_row_forms_land_alike(folder, make_config, load_config, tmp_path) -> None:
    src = {"name": "print", "kind": "papercut_print_logger", "path": str(folder)}
    cfg = load_config(make_config([src]))
    res = _backfill(cfg, flush_rows=1_000_000)
    rows = _rows(cfg)
    assert res.new == 400
    by_form = rows.group_by(pl.col("job_id").str.split(":").list.first()).len()
    assert by_form.height == len(DAYS)
    assert rows.get_column("pages").sum() == 10 * sum(i % 5 + 1 for i in range(40))


def _vpn_line(at: dt.datetime, action: str, tunnel: int, user: str, **extra: object) -> str:
    fields = " ".join(f"{k}={v}" for k, v in extra.items())
    return (
        f'<189>date={at:%Y-%m-%d} time={at:%H:%M:%S} devname="FGT-HQ" devid="FG100FTK19000001"'
        f' eventtime={int(at.timestamp())} tz="+0900" logid="0101039947" type="event"'
        f' subtype="vpn" level="information" vd="root" action="{action}"'
        f' tunneltype="ssl-tunnel" tunnelid={tunnel} remip=198.51.100.10 user="{user}"'
        f" {fields}\n"
    )


@pytest.fixture
def vpn_folder(tmp_path: Path) -> Path:
    """Daily FortiGate files; every night a session opens before midnight and closes
    in the next day's file, and another opens and closes within the day."""
    out = tmp_path / "vpn"
    out.mkdir()
    tz = dt.timezone(dt.timedelta(hours=9))
    days = [dt.date(2024, 4, 20) + dt.timedelta(days=k) for k in range(20)]  # Apr..May
    for n, day in enumerate(days):
        midnight = dt.datetime.combine(day, dt.time(), tz)
        lines = []
        if n:  # the session opened the evening before closes in this file
            lines.append(
                _vpn_line(
                    midnight + dt.timedelta(minutes=30),
                    "tunnel-down",
                    500 + n - 1,
                    f"night{n - 1}",
                    duration=3600,
                    sentbyte=10,
                    rcvdbyte=20,
                )
            )
        lines.append(_vpn_line(midnight + dt.timedelta(hours=9), "tunnel-up", 100 + n, "day"))
        lines.append(
            _vpn_line(
                midnight + dt.timedelta(hours=17),
                "tunnel-down",
                100 + n,
                "day",
                duration=28800,
                sentbyte=1,
                rcvdbyte=2,
            )
        )
        lines.append(
            _vpn_line(
                midnight + dt.timedelta(hours=23, minutes=30), "tunnel-up", 500 + n, f"night{n}"
            )
        )
        (out / f"fgt-{day:%Y-%m-%d}.log").write_text("".join(lines), encoding="utf-8")
    return out


def test_sessions_across_windows_pair_as_in_one_window(
    vpn_folder, make_config, load_config, monkeypatch, tmp_path
) -> None:
    """Windows of about one file, parsed ahead of the pairing, pair like one window."""
    src = {"name": "vpn", "kind": "fortigate_vpn", "paths": [str(vpn_folder / "fgt-*.log")]}
    got = {}
    for name, group in (("small", 300), ("whole", 10**9)):
        monkeypatch.setattr(filebase, "GROUP_BYTES", group)
        cfg = load_config(make_config([src], collector={"data_dir": str(tmp_path / name)}))
        res = _backfill(cfg, flush_rows=1_000_000)
        assert res.ok, res.error
        got[name] = (
            Store(cfg.data_dir.resolve())
            .scan(schemas.get("remote_sessions"))
            .collect()
            .drop("ingested_at")
            .sort("session_id")
        )
    # 20 day sessions, 19 night sessions closed in the next file (the last still open).
    assert got["small"].height == 39
    assert got["small"].equals(got["whole"])


def test_a_flush_failing_on_its_thread_fails_the_source_and_a_rerun_lands_each_row_once(
    folder, make_config, load_config, monkeypatch, tmp_path
) -> None:
    """Flushes are written on a thread while the next is read: a failure still stops the
    source, leaves only whole months visible, and commits nothing it did not write."""
    from workstyle.collector.ingest import store as store_mod
    from workstyle.schemas.runs_quarantine import QUARANTINE

    monkeypatch.setattr(filebase, "GROUP_BYTES", 2000)
    src = {"name": "print", "kind": "papercut_print_logger", "path": str(folder)}
    whole = load_config(make_config([src], collector={"data_dir": str(tmp_path / "whole")}))
    assert _backfill(whole, flush_rows=1_000_000).ok
    per_month = _rows(whole).group_by(pl.col("printed_at").dt.month()).len()

    cfg = load_config(make_config([src], collector={"data_dir": str(tmp_path / "data")}))
    real = store_mod.MonthStream.write
    calls = {"n": 0}

    def fails_once(self, rows, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        return real(self, rows, **kwargs)

    monkeypatch.setattr(store_mod.MonthStream, "write", fails_once)
    res = _backfill(cfg, flush_rows=50)
    assert not res.ok and "disk full" in (res.error or "")
    seen = _rows(cfg).group_by(pl.col("printed_at").dt.month()).len()
    assert (
        seen.join(per_month, on="printed_at", how="left")
        .filter(pl.col("len") != pl.col("len_right"))
        .is_empty()
    ), "a visible month is not whole"
    assert not [p for p in (tmp_path / "data").rglob("*.tmp")]

    again = _backfill(cfg, flush_rows=50)
    assert again.ok, again.error
    rows = _rows(cfg)
    assert rows.height == 400 and rows.get_column("job_id").n_unique() == 400
    assert rows.equals(_rows(whole))
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    assert q.height == sum(d.day % 2 for d in DAYS) == q.get_column("location").n_unique()
