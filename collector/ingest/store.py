"""The Parquet store: Hive-partitioned, one file per partition, replaced whole.

Layout: ``<root>/<table>/source=<name>/month=<YYYY-MM>/part-0.parquet``. Writing a
partition merges the new rows into its existing rows, keeps one row per natural
key (the newest write wins; a re-read row identical to the stored one keeps its
original ``ingested_at`` and causes no rewrite), writes a hidden temporary file
beside it and renames it over the old one. A reader therefore sees the old or the
new partition, never half of one, and a crash leaves at worst a hidden ``.tmp``
file that the next writer removes.

All I/O goes through a :class:`pyarrow.fs.FileSystem`; in object storage a partition
is replaced by a single PUT, which S3 makes visible whole or not at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from workstyle.collector.ingest.reader import DatasetReader

if TYPE_CHECKING:
    from workstyle.collector.ingest.lease import Lease
    from workstyle.collector.ingest.lock import WriterLock
from workstyle.schemas.tables import TableSpec
from workstyle.schemas.tables import empty as empty_table

TMP_SUFFIX = ".tmp"


@dataclass
class UpsertResult:
    """What an upsert did, in rows and files."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Rows that repeated a natural key within the same write (merged into one).
    duplicates: int = 0
    partitions_written: int = 0

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.partitions_written += other.partitions_written
        return self


def month_expr(spec: TableSpec) -> pl.Expr:
    """The partition month of each row, from the table's partition column."""
    if not spec.monthly:
        return pl.lit("all")
    col = spec.field(spec.partition_by)
    if pa.types.is_integer(col.type):  # fiscal year: its April
        return pl.format("{}-04", pl.col(spec.partition_by).cast(pl.Int32))
    return pl.col(spec.partition_by).dt.strftime("%Y-%m")


def month_key(spec: TableSpec) -> pl.Expr:
    """An integer with one value per partition month of the rows (see month_expr)."""
    if not spec.monthly:
        return pl.lit(0)
    col = spec.field(spec.partition_by)
    if pa.types.is_integer(col.type):
        return pl.col(spec.partition_by).cast(pl.Int32)
    c = pl.col(spec.partition_by)
    if pa.types.is_timestamp(col.type) and col.type.tz is not None:
        # Partitions are UTC months: the wall clock in UTC, without the zone lookup
        # per row that year() and month() of a zoned column cost (0.58 s -> 0.35 s/5 M).
        c = c.dt.replace_time_zone(None)
    return c.dt.year() * 100 + c.dt.month()


class Store(DatasetReader):
    """The dataset, writable: atomic partition replacement and upserts by natural key."""

    # -- writing -----------------------------------------------------------------------
    def write_table_atomic(self, path: str, table: pa.Table) -> None:
        """Write a pyarrow table as Parquet via a hidden temporary file and a rename."""
        self._atomic(path, lambda out: pq.write_table(table, out, compression="zstd"))

    def write_frame_atomic(self, path: str, df: pl.DataFrame, schema: pa.Schema) -> None:
        """Write a polars frame with the canonical Arrow schema, atomically."""
        metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        self._atomic(
            path,
            lambda out: df.write_parquet(
                out, compression="zstd", arrow_schema=_polars_arrow(schema), metadata=metadata
            ),
        )

    def _atomic(self, path: str, write: Callable[[Any], None]) -> None:
        """Run ``write`` into a hidden temporary file beside ``path``, then rename it over."""
        if not self._local:
            # Object storage: one PUT replaces the object whole; no temporary object.
            self._downloaded.clear()
            self.location.put_whole(path, write)
            return
        directory, _, name = path.rpartition("/")
        self.fs.create_dir(directory, recursive=True)
        tmp = f"{directory}/{temp_name(name)}"
        try:
            with self.fs.open_output_stream(tmp) as out:
                write(out)
            if self._local:
                _fsync(tmp)
            self.fs.move(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError, FileNotFoundError):
                self.fs.delete_file(tmp)
            raise

    def upsert(
        self, spec: TableSpec, source: str, rows: pl.DataFrame, ingested_at: dt.datetime
    ) -> UpsertResult:
        """Merge ``rows`` (canonical columns, valid) into their month partitions."""
        result = UpsertResult()
        for month, part in self.months(spec, rows):
            result += self.upsert_partition(spec, source, month, part, ingested_at)
        return result

    @staticmethod
    def months(spec: TableSpec, rows: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
        """The rows split into their partitions, with each partition's name."""
        if rows.height == 0:
            return []
        if not spec.monthly:
            return [("all", rows)]
        # Split on a cheap integer month and format the name once per partition: the
        # month string of every row (strftime) cost more than the split itself.
        keys = rows.select(month_key(spec)).to_series()
        if keys.is_sorted():
            # Rows in time order (a log read in order): each month is a run, taken as
            # a slice of the rows, not copied out of them.
            parts, at = [], 0
            for n in keys.rle().struct.field("len"):
                parts.append(rows.slice(at, n))
                at += n
        else:
            parts = rows.with_columns(keys.alias("__month")).partition_by(
                "__month", maintain_order=True, include_key=False
            )
        return [(part.head(1).select(month_expr(spec)).item(), part) for part in parts]

    def upsert_partition(
        self, spec: TableSpec, source: str, month: str, rows: pl.DataFrame, ingested_at: dt.datetime
    ) -> UpsertResult:
        """Merge rows into one partition and replace its file if anything changed."""
        path = self.partition_file(spec.name, source, month)
        key = list(spec.key)
        new = _stamped(spec, rows, ingested_at)
        new, dups = _last_per_key(new, key)
        if not self.exists(path):
            self.write_frame_atomic(path, _sorted(spec, new), spec.schema)
            return UpsertResult(new=new.height, duplicates=dups, partitions_written=1)
        merge = MergeStream(self, spec, source, month, path, ingested_at)
        result = merge.compare(new)
        result.duplicates += dups
        result.partitions_written = merge.close()
        return result

    def open_month(
        self, spec: TableSpec, source: str, month: str, ingested_at: dt.datetime
    ) -> MonthStream | MergeStream | None:
        """A stream writing a partition across flushes: a new one, or merged into one.

        None in object storage: there a partition is one PUT of the whole object (no
        temporary object to grow), so its rows are upserted flush by flush.
        """
        path = self.partition_file(spec.name, source, month)
        if not self._local:
            return None
        if self.exists(path):
            return MergeStream(self, spec, source, month, path, ingested_at)
        return MonthStream(self, spec, source, month, path, ingested_at)

    def merge_into(self, spec: TableSpec, path: str, changed: pl.DataFrame) -> None:
        """Replace a partition by its rows with ``changed`` merged in (by key).

        The partition is read and written a row group at a time, with the changed
        rows put in time order among them: memory is the changed rows and one row
        group, not the partition (a 1 M-row partition took 285 MB more to merge whole).
        """
        key = list(spec.key)
        changed = _sorted(spec, changed)
        keys = changed.select(key)
        by = spec.partition_by
        times = changed.get_column(by)
        taken = 0
        schema = _polars_arrow(spec.schema)

        def write(out: Any) -> None:
            nonlocal taken
            writer = pq.ParquetWriter(
                out,
                schema,
                compression="zstd",
                use_dictionary=spec.dictionary_columns,
                write_statistics=spec.statistics_columns,
            )
            try:
                for part in _row_groups(spec, path, self.fs):
                    part = part.join(keys, on=key, how="anti", nulls_equal=True)
                    if part.height:
                        # The changed rows up to this group's newest time go with it.
                        newest = part.get_column(by).max()
                        upto = int(times.search_sorted(newest, side="right"))
                        if upto > taken:
                            part = _sorted(spec, pl.concat([part, changed[taken:upto]]))
                            taken = upto
                        writer.write_table(part.to_arrow().cast(schema))
                if taken < changed.height:
                    writer.write_table(changed[taken:].to_arrow().cast(schema))
                writer.close()
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.close()
                raise

        self._atomic(path, write)

    def cleanup_temp(self, lock: WriterLock | Lease) -> int:
        """Remove hidden temporary files killed writers left behind (only the lock holder may).

        A file is removed when it is this process's, its writer is gone, or it is older
        than the live process now holding its writer's pid (a reused pid).
        """
        if not self._local:
            return 0  # object storage never holds temporary objects (see _atomic)
        if not getattr(lock, "held", False):
            raise RuntimeError("cleanup_temp needs the writer lock")
        removed = 0
        try:
            infos = self.fs.get_file_info(
                pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
            )
        except FileNotFoundError:
            return 0
        for info in infos:
            if (
                info.type == pafs.FileType.File
                and info.base_name.startswith(".")
                and info.base_name.endswith(TMP_SUFFIX)
                and _abandoned(info)
            ):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.delete_file(info.path)
                removed += 1
        return removed


def temp_name(name: str, pid: int | None = None) -> str:
    """The hidden temporary name a writer uses for ``name``; it carries the writer's pid."""
    return f".{name}.{pid or os.getpid()}-{uuid.uuid4().hex[:12]}{TMP_SUFFIX}"


#: Age after which a temporary file whose name names no writer counts as abandoned.
UNNAMED_TEMP_SECONDS = 3600.0
_TEMP_PID = re.compile(r"\.(\d+)(?:-[0-9a-f]+)?\.tmp$")


def _abandoned(info: pafs.FileInfo) -> bool:
    """Whether the writer of a temporary file is gone (see Store.cleanup_temp)."""
    mtime = info.mtime.timestamp() if info.mtime is not None else None
    m = _TEMP_PID.search(info.base_name)
    if m is None:
        # No pid in the name (the live poller's mkstemp files, which it writes without the
        # lock, or an older version's): only one left alone this long is abandoned.
        return mtime is not None and time.time() - mtime > UNNAMED_TEMP_SECONDS
    pid = int(m.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = _process_started(pid)
    return started is not None and mtime is not None and mtime < started


def _process_started(pid: int) -> float | None:
    """When a live process started (Linux /proc: boot time + its start in clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[19])  # field 22 of proc(5); the list starts at field 3
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


class _PartitionStream:
    """A month's partition written across flushes: where it is, and the run's stamp."""

    def __init__(
        self,
        store: Store,
        spec: TableSpec,
        source: str,
        month: str,
        path: str,
        ingested_at: dt.datetime,
    ) -> None:
        self.store, self.spec, self.source, self.month = store, spec, source, month
        self.path, self.ingested_at = path, ingested_at
        self.closed = False
        self._setup()

    def _setup(self) -> None:
        """What a kind of stream needs before its first part."""


class MonthStream(_PartitionStream):
    """A new partition written in parts across flushes, visible only once closed.

    Each part becomes row groups of a hidden temporary file beside the partition;
    :meth:`close` makes it the partition (fsync, rename), :meth:`abort` removes it.
    A key seen in an earlier part cannot be replaced in a stream: :meth:`write`
    then closes the stream and merges that part into the partition as an upsert.
    """

    def _setup(self) -> None:
        directory, _, name = self.path.rpartition("/")
        self.store.fs.create_dir(directory, recursive=True)
        self.tmp = f"{directory}/{temp_name(name)}"
        self.schema = _polars_arrow(self.spec.schema)
        self.writer: pq.ParquetWriter | None = None
        self._pending: Future[None] | None = None
        self.keys: list[pl.Series] = []

    def write(self, rows: pl.DataFrame, *, unique: bool = False) -> UpsertResult:
        """Append valid canonical rows (or merge them, if a key repeats an earlier part).

        ``unique``: the caller vouches that no key repeats within the run (its adapter
        declares ``unique_keys``), so no key is hashed or remembered.
        """
        if self.closed:
            return self.store.upsert_partition(
                self.spec, self.source, self.month, rows, self.ingested_at
            )
        dups = 0
        if not unique:
            key = list(self.spec.key)
            rows, dups = _last_per_key(rows, key)
            hashes = rows.select(pl.struct(key).hash(seed=0)).to_series()
            if self.keys and hashes.is_in(pl.concat(self.keys).implode()).any():
                self.close()
                result = self.store.upsert_partition(
                    self.spec, self.source, self.month, rows, self.ingested_at
                )
                result.duplicates += dups
                return result
            self.keys.append(hashes)
        new = _stamped(self.spec, rows, self.ingested_at)
        table = new.to_arrow().cast(self.schema)
        if self.writer is None:
            self.out = self.store.fs.open_output_stream(self.tmp)
            self.writer = pq.ParquetWriter(
                self.out,
                self.schema,
                compression="zstd",
                use_dictionary=self.spec.dictionary_columns,
                write_statistics=self.spec.statistics_columns,
            )
        # Encoded and compressed on the writer thread while the caller prepares the
        # next part (pyarrow's writer is single-threaded and releases the GIL); one
        # part at most waits, so memory stays one part.
        self._wait()
        self._pending = _writer_thread().submit(self.writer.write_table, table)
        return UpsertResult(new=new.height, duplicates=dups)

    def _wait(self) -> None:
        """Wait for the part being written; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> int:
        """Make the written parts the partition; the number of files written (0 or 1)."""
        if self.closed:
            return 0
        self.closed = True
        self.keys = []
        if self.writer is None:
            return 0
        try:
            self._wait()
            self.writer.close()
            self.out.close()
            if self.store._local:
                _fsync(self.tmp)
            self.store.fs.move(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return 1

    def abort(self) -> None:
        """Remove the temporary file (a run that failed leaves no half partition)."""
        self.closed = True
        with contextlib.suppress(Exception):
            self._wait()
        with contextlib.suppress(OSError, FileNotFoundError):
            if self.writer is not None:
                self.writer.close()
                self.out.close()
        with contextlib.suppress(OSError, FileNotFoundError):
            self.store.fs.delete_file(self.tmp)


class MergeStream(_PartitionStream):
    """Rows merged into a partition that exists, compared as they come, written once.

    The partition's keys and row hashes are read once; each part's rows are counted
    new, updated or unchanged against them and only the new and updated ones are
    kept; :meth:`close` merges those into the partition (streamed) if there are any.
    A re-read of unchanged rows writes nothing, however many flushes it spans.
    """

    def _setup(self) -> None:
        self.index: pl.DataFrame | None = None
        self.changed: list[pl.DataFrame] = []

    def write(self, rows: pl.DataFrame, *, unique: bool = False) -> UpsertResult:
        """Compare valid canonical rows with the partition (see :class:`MonthStream`)."""
        if self.closed:
            return self.store.upsert_partition(
                self.spec, self.source, self.month, rows, self.ingested_at
            )
        key = list(self.spec.key)
        new = _stamped(self.spec, rows, self.ingested_at)
        dups = 0
        if not unique:
            new, dups = _last_per_key(new, key)
            if self.changed:
                earlier = pl.concat([c.select(key) for c in self.changed])
                if new.join(earlier, on=key, how="semi", nulls_equal=True).height:
                    # A key changed again: merge what came before, compare anew.
                    self.close()
                    self.closed, self.index = False, None
        result = self.compare(new)
        result.duplicates += dups
        return result

    def compare(self, new: pl.DataFrame) -> UpsertResult:
        """Count conformed rows against the partition; keep the new and changed ones."""
        key = list(self.spec.key)
        if self.index is None:
            self.index = _index(self.spec, self.path, self.store.fs)
        # Only hashes are joined (the index holds a key hash once, so the result is
        # aligned with the rows), not the keys or any other column of the rows.
        hashes = new.select(
            _key_hash(pl.col(c) for c in key).alias("__k"),
            _row_hash(self.spec.columns).alias("__h"),
        )
        probe = hashes.join(self.index, on="__k", how="left", maintain_order="left")
        is_new = probe.get_column("__old").is_null()
        mask = is_new | (probe.get_column("__h") != probe.get_column("__old")).fill_null(True)
        changed = new.filter(mask)
        n_new = int(is_new.sum())
        if changed.height:
            self.changed.append(changed)
        return UpsertResult(
            new=n_new,
            updated=changed.height - n_new,
            unchanged=new.height - changed.height,
        )

    def close(self) -> int:
        """Merge the kept rows into the partition; the number of files written (0 or 1)."""
        if self.closed:
            return 0
        self.closed = True
        self.index = None
        if not self.changed:
            return 0
        changed = pl.concat(self.changed, how="vertical")
        self.changed = []
        self.store.merge_into(self.spec, self.path, changed)
        return 1

    def abort(self) -> None:
        """Forget the kept rows (the partition was never touched)."""
        self.closed = True
        self.index = None
        self.changed = []


_WRITER: ThreadPoolExecutor | None = None
_WRITER_LOCK = threading.Lock()


def _writer_thread() -> ThreadPoolExecutor:
    """The one thread month streams write their parts on (in the order given)."""
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(1, "parquet-write")
        return _WRITER


def _last_per_key(rows: pl.DataFrame, key: list[str]) -> tuple[pl.DataFrame, int]:
    """Within one write the last occurrence of a key wins; the rows, and how many repeated."""
    if not rows.select(pl.struct(key).is_duplicated().any()).item():
        return rows, 0
    kept = rows.unique(subset=key, keep="last", maintain_order=True)
    return kept, rows.height - kept.height


def _stamped(spec: TableSpec, rows: pl.DataFrame, ingested_at: dt.datetime) -> pl.DataFrame:
    """Rows in the stored types, with the writing run's ``ingested_at``."""
    stamp = pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")).alias("ingested_at")
    return _conform(spec, rows.with_columns(stamp))


_STORED_TYPES: dict[tuple[str, int], pl.Schema] = {}


def stored_types(spec: TableSpec) -> pl.Schema:
    """The polars types of the table's stored columns (worked out once per table)."""
    key = (spec.name, spec.version)
    if key not in _STORED_TYPES:
        _STORED_TYPES[key] = pl.from_arrow(empty_table(spec.schema)).schema
    return _STORED_TYPES[key]


def _conform(spec: TableSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the table's columns (missing nullable ones become null)."""
    exprs = []
    for name, dtype in stored_types(spec).items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype).alias(name))
    return df.select(exprs)


def _combined(columns: Iterable[pl.Expr | pl.Series], seed: int = 0) -> Any:
    """A row's hash from its columns, one at a time: each hashed with its position (from
    ``seed``) as seed, xor-ed together (so a stored partition is hashed a column at a
    time)."""
    h = None
    for i, c in enumerate(columns):
        one = c.hash(seed=seed + i)
        del c  # a stored column is dropped before the next one is read
        h = one if h is None else h ^ one
    return h


def _row_hash(columns: list[str]) -> pl.Expr:
    """A row's hash, as :func:`_index` computes it for stored rows."""
    return _combined(pl.col(c) for c in columns)


#: Seeds of the key hash, apart from the row hash's (one per column from 0).
_KEY_SEED = 1 << 16


def _key_hash(columns: Iterable[pl.Expr | pl.Series]) -> Any:
    """A row's key as one 64-bit hash, for new rows and stored ones alike.

    Two keys of one month may share a hash (about 1 in 10^8 for a month of 500 k
    rows): the index then keeps one of them, and a row of the other is counted
    updated, not new or unchanged, and merged by its real key; no row is lost.
    """
    return _combined(columns, _KEY_SEED)


def _index(spec: TableSpec, path: str, fs: pafs.FileSystem) -> pl.DataFrame:
    """A stored partition's key hashes (``__k``) and row hashes (``__old``), read a
    column at a time, one row per key hash.

    Reading whole row groups to hash them held ~100 MB above the index's ~9 MB for a
    300 k-row month; one column of one row group at a time holds about that column.
    Hashes, not keys: 16 bytes a row, and a join on integers.
    """
    target = stored_types(spec)
    key = list(spec.key)
    parts = []
    with fs.open_input_file(path) as f:
        stored = pq.ParquetFile(f)
        names = set(stored.schema_arrow.names)

        def column(group: int, name: str) -> pl.Series:
            if name not in names:  # a column added since the partition was written
                rows = stored.metadata.row_group(group).num_rows
                return pl.repeat(None, rows, dtype=target[name], eager=True).alias(name)
            table = stored.read_row_group(group, columns=[name])
            series = pl.from_arrow(table.column(name))
            if not isinstance(series, pl.Series):  # pragma: no cover - one column
                raise TypeError("expected a Series")
            return series.alias(name).cast(target[name])

        for group in range(stored.num_row_groups):
            keys = {k: column(group, k) for k in key}
            by_key = _key_hash(keys.values())
            # Every other column is read, hashed and dropped in turn.
            hashes = _combined(
                keys.pop(name) if name in keys else column(group, name) for name in spec.columns
            )
            parts.append(pl.DataFrame([by_key.alias("__k"), hashes.alias("__old")]))
    if not parts:
        return pl.DataFrame(schema={"__k": pl.UInt64, "__old": pl.UInt64})
    index = pl.concat(parts)
    if index.get_column("__k").is_duplicated().any():
        index = index.unique(subset="__k", keep="first", maintain_order=True)
    return index


def _row_groups(spec: TableSpec, path: str, fs: pafs.FileSystem) -> Iterator[pl.DataFrame]:
    """A stored partition's rows, conformed, a row group (at most 64 k rows) at a time."""
    with fs.open_input_file(path) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=65_536):
            yield _conform(spec, pl.from_arrow(batch))


def _sorted(spec: TableSpec, df: pl.DataFrame) -> pl.DataFrame:
    # Time order keeps row-group statistics useful for pruning; the key is not needed.
    # Logs arrive in time order, so the sort is usually skipped.
    if df.get_column(spec.partition_by).is_sorted():
        return df
    return df.sort(spec.partition_by, nulls_last=True, maintain_order=True)


def _polars_arrow(schema: pa.Schema) -> pa.Schema:
    """The schema polars can write: its strings are large strings (same Parquet type)."""
    return pa.schema(
        [f.with_type(pa.large_string()) if pa.types.is_string(f.type) else f for f in schema],
        metadata=schema.metadata,
    )


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
