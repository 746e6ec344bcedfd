"""Reading the Parquet dataset: partition paths, file listings, lazy scans.

The half of the store that the KPI engine (aggregates) may use: it reads canonical
tables and never writes them. :class:`~workstyle.collector.ingest.store.Store` adds the
writing half.
"""

from __future__ import annotations

import os

import polars as pl
import pyarrow.fs as pafs

from workstyle.collector.storage import ORG_KEY, DataLocation
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
    def files(self, table: str, source: str | None = None) -> list[str]:
        base = self.table_dir(table) + (f"/source={source}" if source else "")
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(
            i.path for i in infos if i.type == pafs.FileType.File and i.base_name == PART_FILE
        )

    def scan(self, spec: TableSpec, source: str | None = None) -> pl.LazyFrame:
        """A lazy scan of a table with its partition columns; empty when there is no data."""
        files = self.files(spec.name, source)
        if not files:
            return empty_frame(spec).lazy()
        # A dataset may hold partitions with and without the organisation level (a
        # single-organisation dataset, later shared): each layout is scanned with its
        # own partition keys; rows without the level have a null organisation.
        levelled = [f for f in files if f"/{ORG_KEY}=" in f]
        plain = [f for f in files if f"/{ORG_KEY}=" not in f]
        frames = []
        if levelled:
            frames.append(self._scan_files(levelled, ORG_HIVE_SCHEMA))
        if plain:
            frames.append(
                self._scan_files(plain, HIVE_SCHEMA).with_columns(
                    pl.lit(None, pl.String).alias(ORG_KEY)
                )
            )
        if len(frames) == 1:
            return frames[0]
        return pl.concat(frames, how="diagonal_relaxed")

    def _scan_files(self, files: list[str], hive: dict[str, pl.DataType]) -> pl.LazyFrame:
        if self._local:
            return pl.scan_parquet(
                files, hive_partitioning=True, hive_schema=hive, missing_columns="insert"
            )
        import pyarrow as pa
        import pyarrow.dataset as pads

        partitioning = pads.partitioning(pa.schema([(k, pa.string()) for k in hive]), flavor="hive")
        dataset = pads.dataset(
            files, filesystem=self.fs, format="parquet", partitioning=partitioning
        )
        return pl.from_arrow(dataset.to_table()).lazy()


def empty_frame(spec: TableSpec) -> pl.DataFrame:
    """An empty frame with the table's columns and the partition columns."""
    frame = pl.from_arrow(empty_table(spec.schema))
    return frame.with_columns(
        pl.lit(None, pl.String).alias("source"),
        pl.lit(None, pl.String).alias("month"),
        pl.lit(None, pl.String).alias(ORG_KEY),
    )
