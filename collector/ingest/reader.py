"""Reading the Parquet dataset: partition paths, file listings, lazy scans.

The half of the store that the KPI engine (aggregates) may use: it reads canonical
tables and never writes them. :class:`~workstyle.collector.ingest.store.Store` adds the
writing half.
"""

from __future__ import annotations

import os

import polars as pl
import pyarrow.fs as pafs

from workstyle.collector.storage import ALL_ORGANISATIONS, ORG_KEY, DataLocation
from workstyle.schemas.tables import TableSpec
from workstyle.schemas.tables import empty as empty_table

PART_FILE = "part-0.parquet"
HIVE_SCHEMA = {"source": pl.String, "month": pl.String}
#: A dataset of many organisations has one more level above ``source=``.
ORG_HIVE_SCHEMA = {ORG_KEY: pl.String, **HIVE_SCHEMA}


class DatasetReader:
    """A Hive-partitioned Parquet dataset rooted at ``root``, read-only."""

    def __init__(
        self, root: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> None:
        self.fs = filesystem or pafs.LocalFileSystem()
        self.root = str(root).rstrip("/")
        self._local = isinstance(self.fs, pafs.LocalFileSystem)
        self.location: DataLocation | None = None
        #: Object storage: tables already downloaded by this reader (the KPI jobs scan
        #: some tables several times; each scan would fetch every file again).
        self._downloaded: dict[tuple[str, str], pl.DataFrame] = {}

    @classmethod
    def at(cls, location: DataLocation) -> DatasetReader:
        """The dataset of a data directory (local folder or object storage)."""
        store = cls(location.root, location.fs)
        store.location = location
        return store

    # -- paths -------------------------------------------------------------------------
    @property
    def organisation(self) -> str | None:
        return self.location.organisation if self.location is not None else None

    def table_dir(self, table: str) -> str:
        """The table's folder for this organisation (every organisation's when unscoped)."""
        if self.location is not None:
            return self.location.org_path(table)
        return f"{self.root}/{table}"

    def partition_file(self, table: str, source: str, month: str) -> str:
        return f"{self.table_dir(table)}/source={source}/month={month}/{PART_FILE}"

    def exists(self, path: str) -> bool:
        if self.location is not None:
            return self.location.exists(path)
        return self.fs.get_file_info(path).type == pafs.FileType.File

    # -- reading -----------------------------------------------------------------------
    def _infos(self, table: str, source: str | None = None) -> list[pafs.FileInfo]:
        base = self.table_dir(table) + (f"/source={source}" if source else "")
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        found = [i for i in infos if i.type == pafs.FileType.File and i.base_name == PART_FILE]
        return sorted(found, key=lambda i: i.path)

    def files(self, table: str, source: str | None = None) -> list[str]:
        return [i.path for i in self._infos(table, source)]

    def scan(self, spec: TableSpec, source: str | None = None) -> pl.LazyFrame:
        """A lazy scan of a table with its partition columns; empty when there is no data."""
        infos = self._infos(spec.name, source)
        if not infos:
            return empty_frame(spec).lazy()
        if not self._local:
            return _partition_columns_last(self._download(spec.name, source).lazy())
        # A dataset may hold partitions with and without the organisation level (a
        # single-organisation dataset, later shared): each layout is scanned with its
        # own partition keys; rows without the level have a null organisation.
        levelled = [i.path for i in infos if f"/{ORG_KEY}=" in i.path]
        plain = [i.path for i in infos if f"/{ORG_KEY}=" not in i.path]
        frames = []
        if levelled:
            frames.append(
                pl.scan_parquet(
                    levelled,
                    hive_partitioning=True,
                    hive_schema=ORG_HIVE_SCHEMA,
                    missing_columns="insert",
                )
            )
        if plain:
            frames.append(
                pl.scan_parquet(
                    plain, hive_partitioning=True, hive_schema=HIVE_SCHEMA, missing_columns="insert"
                ).with_columns(pl.lit(None, pl.String).alias(ORG_KEY))
            )
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        return _partition_columns_last(frame)

    def _download(self, table: str, source: str | None) -> pl.DataFrame:
        """Object storage: the table read once, partition columns from the keys.

        A dataset over the table's folder reads the sizes from the listing (a file list
        would cost a HEAD per file); the frame is kept for this reader's lifetime because
        the KPI jobs scan some tables several times.
        """
        cached = self._downloaded.get((table, source or ""))
        if cached is not None:
            return cached
        import pyarrow as pa
        import pyarrow.dataset as pads

        partitioning = pads.partitioning(
            pa.schema([(k, pa.string()) for k in ORG_HIVE_SCHEMA]), flavor="hive"
        )
        dataset = pads.dataset(
            self.table_dir(table), filesystem=self.fs, format="parquet", partitioning=partitioning
        )
        selected = dataset.to_table(filter=pads.field("source") == source if source else None)
        frame = pl.from_arrow(selected)
        if self.organisation and self.organisation != ALL_ORGANISATIONS:
            # Below organisation=X the key is not in the relative path: fill it in.
            frame = frame.with_columns(pl.lit(self.organisation, pl.String).alias(ORG_KEY))
        self._downloaded[(table, source or "")] = frame
        return frame


def _partition_columns_last(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Every layout's scan in one column order: the table's, then source, month, organisation."""
    names = frame.collect_schema().names()
    last = ["source", "month", ORG_KEY]
    return frame.select([c for c in names if c not in last] + [c for c in last if c in names])


def empty_frame(spec: TableSpec) -> pl.DataFrame:
    """An empty frame with the table's columns and the partition columns."""
    frame = pl.from_arrow(empty_table(spec.schema))
    return frame.with_columns(
        pl.lit(None, pl.String).alias("source"),
        pl.lit(None, pl.String).alias("month"),
        pl.lit(None, pl.String).alias(ORG_KEY),
    )
