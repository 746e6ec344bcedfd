"""The Parquet store: upsert by natural key, atomic partition replacement, any reader."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from workstyle import schemas
from workstyle.collector.ingest.reader import PART_FILE
from workstyle.collector.ingest.store import MergeStream, Store, UpsertResult

SPEC = schemas.get("remote_sessions")
T0 = dt.datetime(2024, 4, 30, 23, 0, tzinfo=dt.UTC)
INGEST = dt.datetime(2024, 5, 2, tzinfo=dt.UTC)


def sessions(ids: range, *, duration: int = 600) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "session_id": [f"s{i}" for i in ids],
            "person": [f"p{i % 7}" for i in ids],
            "start_time": [T0 + dt.timedelta(hours=i) for i in ids],
            "duration_seconds": [duration] * len(ids),
        }
    )


def test_partitions_are_source_and_utc_month(tmp_path) -> None:
    store = Store(tmp_path)
    res = store.upsert(SPEC, "vpn", sessions(range(3)), INGEST)
    assert (res.new, res.partitions_written) == (3, 2)
    files = [Path(f).relative_to(tmp_path).as_posix() for f in store.files(SPEC.name)]
    assert files == [
        f"remote_sessions/source=vpn/month=2024-04/{PART_FILE}",
        f"remote_sessions/source=vpn/month=2024-05/{PART_FILE}",
    ]


def test_reingesting_any_overlap_leaves_one_row_per_key(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", sessions(range(0, 10)), INGEST)
    files = store.files(SPEC.name)
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    again = store.upsert(SPEC, "vpn", sessions(range(0, 10)), INGEST + dt.timedelta(days=1))
    assert (again.new, again.updated, again.unchanged, again.partitions_written) == (0, 0, 10, 0)
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes  # nothing rewritten
    overlap = store.upsert(SPEC, "vpn", sessions(range(5, 15), duration=900), INGEST)
    assert (overlap.new, overlap.updated, overlap.unchanged) == (5, 5, 0)
    rows = store.scan(SPEC).collect()
    assert rows.height == 15
    assert rows.get_column("session_id").n_unique() == 15
    by_id = dict(rows.select("session_id", "duration_seconds").iter_rows())
    assert by_id["s4"] == 600 and by_id["s5"] == 900  # the newest write wins


def test_unchanged_rows_keep_their_first_ingest_time(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", sessions(range(2)), INGEST)
    store.upsert(SPEC, "vpn", sessions(range(3)), INGEST + dt.timedelta(days=9))
    times = dict(store.scan(SPEC).collect().select("session_id", "ingested_at").iter_rows())
    assert times["s0"] == INGEST and times["s2"] == INGEST + dt.timedelta(days=9)


def test_sources_never_overwrite_each_other(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn-a", sessions(range(3)), INGEST)
    store.upsert(SPEC, "vpn-b", sessions(range(3)), INGEST)
    rows = store.scan(SPEC).collect()
    assert rows.group_by("source").len().sort("source").rows() == [("vpn-a", 3), ("vpn-b", 3)]


def test_polars_pyarrow_and_duckdb_read_the_same_rows(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", sessions(range(40)), INGEST)
    store.upsert(SPEC, "rdg", sessions(range(7)), INGEST)
    glob = f"{tmp_path}/remote_sessions/**/*.parquet"
    by_polars = pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item()
    by_arrow = pads.dataset(
        f"{tmp_path}/remote_sessions", format="parquet", partitioning="hive"
    ).count_rows()
    by_duck = duckdb.sql(
        f"SELECT count(*), count(DISTINCT source) FROM read_parquet('{glob}', hive_partitioning=1)"
    ).fetchall()[0]
    assert by_polars == by_arrow == by_duck[0] == 47
    assert by_duck[1] == 2


def test_an_empty_table_scans_as_empty_with_the_schema(tmp_path) -> None:
    frame = Store(tmp_path).scan(SPEC).collect()
    assert frame.height == 0
    assert {"session_id", "start_time", "source", "month"} <= set(frame.columns)


KILLER = textwrap.dedent("""
    import datetime as dt, sys
    import polars as pl
    from workstyle import schemas
    from workstyle.collector.ingest.store import Store
    spec = schemas.get("remote_sessions")
    store = Store(sys.argv[1])
    t0 = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    n = 400_000
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        frame = pl.DataFrame({
            "session_id": [f"s{k}" for k in range(n)],
            "person": ["p"] * n,
            "start_time": [t0 + dt.timedelta(seconds=k) for k in range(n)],
            "duration_seconds": [i] * n,
        })
        store.upsert(spec, "vpn", frame, dt.datetime.now(dt.UTC))
""")


def test_a_killed_writer_leaves_a_readable_dataset_and_the_next_run_recovers(tmp_path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(KILLER, encoding="utf-8")
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    store = Store(data)
    deadline = time.monotonic() + 60
    while not store.files(SPEC.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.7)  # let it get into further rewrites, then kill it mid-way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # Whatever the moment of the kill, every visible partition is complete.
    rows = store.scan(SPEC).collect()
    assert rows.height == 400_000
    assert rows.get_column("duration_seconds").n_unique() == 1
    from workstyle.collector.ingest.lock import WriterLock

    with WriterLock(data) as lock:
        store.cleanup_temp(lock)
    leftovers = [p for p in data.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    res = store.upsert(SPEC, "vpn", sessions(range(500_000, 500_002)), INGEST)
    assert res.new == 2
    assert store.scan(SPEC).collect().height == 400_002


def test_writes_are_temp_file_plus_rename(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way leaves the previous partition and no temporary file."""
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", sessions(range(3)), INGEST)

    def half_written(self, file, **kwargs):
        file.write(b"PAR1 half a file")
        raise OSError("disk full")

    def half_a_group(self, table, **kwargs):
        self.writer.write_table(table.slice(0, 1))
        raise OSError("disk full")

    # Both ways a partition is written: whole, or merged a row group at a time.
    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_written)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", half_a_group)
    with pytest.raises(OSError, match="disk full"):
        store.upsert(SPEC, "vpn", sessions(range(3), duration=5), INGEST)
    monkeypatch.undo()
    assert store.scan(SPEC).collect().get_column("duration_seconds").unique().to_list() == [600]
    assert [p for p in tmp_path.rglob(".*")] == []


def _may_sessions(ids: list[int], duration: int = 600) -> pl.DataFrame:
    """Sessions in May 2024, one per id, an hour apart."""
    may = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "session_id": [f"m{i}" for i in ids],
            "person": [f"p{i % 7}" for i in ids],
            "start_time": [may + dt.timedelta(hours=i) for i in ids],
            "duration_seconds": [duration] * len(ids),
        }
    )


@pytest.mark.parametrize("unique", [True, False])
def test_a_month_merged_over_many_parts_equals_one_upsert(tmp_path, unique) -> None:
    """Parts of changed, new and unchanged rows, in any time order, land as one upsert
    of them all would: every key once, the partition in time order, written once."""
    stored = list(range(0, 600, 2))  # even hours stored; odd hours arrive new
    parts = [
        _may_sessions(list(range(1, 200, 2))),  # new, interleaved in time
        _may_sessions(list(range(100, 300, 2)), duration=900),  # changed
        _may_sessions(list(range(300, 400, 2))),  # unchanged
        _may_sessions(list(range(401, 500, 2)) + list(range(500, 520, 2)), duration=5),
    ]
    got = {}
    for how in ("parts", "once"):
        store = Store(tmp_path / how)
        store.upsert(SPEC, "vpn", _may_sessions(stored), INGEST)
        path = store.partition_file(SPEC.name, "vpn", "2024-05")
        if how == "parts":
            merge = store.open_month(SPEC, "vpn", "2024-05", INGEST)
            assert isinstance(merge, MergeStream)
            counts = UpsertResult()
            for part in parts:
                counts += merge.write(part, unique=unique)
            before = os.stat(path).st_mtime_ns
            assert merge.close() == 1
            assert os.stat(path).st_mtime_ns != before
        else:
            counts = store.upsert(SPEC, "vpn", pl.concat(parts), INGEST)
        got[how] = (counts, pl.read_parquet(path).drop("ingested_at"))
    (c_parts, rows_parts), (c_once, rows_once) = got["parts"], got["once"]
    assert (c_parts.new, c_parts.updated, c_parts.unchanged) == (150, 110, 50)
    assert (c_once.new, c_once.updated, c_once.unchanged) == (150, 110, 50)
    assert rows_parts.get_column("start_time").is_sorted()
    assert rows_parts.get_column("session_id").n_unique() == rows_parts.height == 450
    assert rows_parts.sort("session_id").equals(rows_once.sort("session_id"))


def test_a_merge_that_changes_nothing_writes_nothing(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", _may_sessions(list(range(50))), INGEST)
    path = store.partition_file(SPEC.name, "vpn", "2024-05")
    before = os.stat(path).st_mtime_ns
    merge = store.open_month(SPEC, "vpn", "2024-05", INGEST + dt.timedelta(days=1))
    for k in range(0, 50, 10):
        assert merge.write(_may_sessions(list(range(k, k + 10)))).unchanged == 10
    assert merge.close() == 0
    assert os.stat(path).st_mtime_ns == before


def test_a_key_changed_twice_in_one_run_keeps_the_last(tmp_path) -> None:
    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", _may_sessions(list(range(10))), INGEST)
    merge = store.open_month(SPEC, "vpn", "2024-05", INGEST)
    merge.write(_may_sessions([3, 4], duration=1))
    merge.write(_may_sessions([4, 5], duration=2))  # 4 again: what came before is merged
    merge.close()
    rows = pl.read_parquet(store.partition_file(SPEC.name, "vpn", "2024-05")).sort("session_id")
    assert rows.height == 10
    assert dict(rows.select("session_id", "duration_seconds").iter_rows()) == {
        **{f"m{i}": 600 for i in range(10)},
        "m3": 1,
        "m4": 2,
        "m5": 2,
    }


def test_every_writer_keeps_the_statistics_a_time_filter_prunes_by(tmp_path) -> None:
    """A month streamed, then merged into: row groups carry their time and number
    ranges (a reader skips row groups by them); text columns carry none."""
    store = Store(tmp_path)
    stream = store.open_month(SPEC, "vpn", "2024-05", INGEST)
    stream.write(_may_sessions(list(range(0, 100))), unique=True)
    assert stream.close() == 1
    path = store.partition_file(SPEC.name, "vpn", "2024-05")
    for step in ("streamed", "merged"):
        meta = pq.ParquetFile(path).metadata
        rows = pl.read_parquet(path)
        group = meta.row_group(0)
        columns = {
            group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)
        }
        start = columns["start_time"].statistics
        assert start is not None and start.has_min_max, step
        assert start.min == rows.get_column("start_time").min(), step
        assert columns["duration_seconds"].statistics.has_min_max, step
        assert columns["session_id"].statistics is None or not (
            columns["session_id"].statistics.has_min_max
        ), step
        store.upsert(SPEC, "vpn", _may_sessions(list(range(50, 150)), duration=5), INGEST)


def test_keys_whose_hashes_collide_are_still_merged_by_their_real_keys(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge index holds key hashes: even if every key shared one hash, the month
    ends exact (each key once, the newest values), only the counts lean to updated."""
    from workstyle.collector.ingest import store as store_module

    store = Store(tmp_path)
    store.upsert(SPEC, "vpn", _may_sessions(list(range(0, 20))), INGEST)
    monkeypatch.setattr(store_module, "_key_hash", _constant_hash)
    merge = store.open_month(SPEC, "vpn", "2024-05", INGEST)
    counts = merge.write(
        pl.concat(
            [_may_sessions(list(range(10, 20)), duration=5), _may_sessions(list(range(20, 25)))]
        ),
        unique=True,
    )
    assert merge.close() == 1
    assert counts.new + counts.updated + counts.unchanged == 15
    rows = pl.read_parquet(store.partition_file(SPEC.name, "vpn", "2024-05")).sort("session_id")
    expected = pl.concat(
        [
            _may_sessions(list(range(0, 10))),
            _may_sessions(list(range(10, 20)), duration=5),
            _may_sessions(list(range(20, 25))),
        ]
    ).sort("session_id")
    assert (counts.new, counts.updated, counts.unchanged) == (0, 15, 0)
    stored = rows.select(expected.columns)
    assert stored.equals(expected.cast(stored.schema))


def _constant_hash(columns) -> pl.Expr:
    """Every key hashed alike (a collision for every pair)."""
    for c in columns:
        return (c.hash(seed=0) * 0).cast(pl.UInt64)
    raise AssertionError("no key column")
