"""Schemas of the collector's own bookkeeping tables (run ledger, quarantine).

They live under names starting with ``_`` so that dataset scans skip them:
``<data_dir>/_runs/source=S/month=YYYY-MM/part-0.parquet`` and
``<data_dir>/_quarantine/source=S/month=all/part-0.parquet``.
"""

from __future__ import annotations

import pyarrow as pa

from workstyle.schemas.tables import UTC_TS, TableSpec

RUNS = TableSpec(
    name="_runs",
    version=1,
    description="The run ledger: one row per source per run.",
    fields=(
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),  # incremental | backfill
        pa.field("started_at", UTC_TS, nullable=False),
        pa.field("ended_at", UTC_TS, nullable=False),
        pa.field("outcome", pa.string(), nullable=False),  # success | failed | partial
        pa.field("window_start", UTC_TS),
        pa.field("window_end", UTC_TS),
        pa.field("rows_read", pa.int64(), nullable=False),
        pa.field("rows_new", pa.int64(), nullable=False),
        pa.field("rows_updated", pa.int64(), nullable=False),
        pa.field("rows_unchanged", pa.int64(), nullable=False),
        pa.field("rows_quarantined", pa.int64(), nullable=False),
        pa.field("rows_duplicate", pa.int64(), nullable=False),
        # Left out by the source's where/exclude rules (null in ledgers older than them).
        pa.field("rows_filtered", pa.int64()),
        pa.field("newest_event", UTC_TS),
        pa.field("error", pa.string()),
    ),
    key=("run_id",),
    partition_by="started_at",
)

QUARANTINE = TableSpec(
    name="_quarantine",
    version=1,
    description="Rows that could not be read: where, why, and (optionally) the raw text.",
    fields=(
        pa.field("table", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("first_seen", UTC_TS, nullable=False),
    ),
    key=("table", "location", "reason"),
    partition_by="first_seen",
    monthly=False,
)

FILTERED = TableSpec(
    name="_filtered",
    version=1,
    description=(
        "Rows a source's where/exclude rules left out on purpose: a count per file, rule"
        " and the row's local month, YYYY-MM, as `period` (null when its date could not be"
        " read; `month` is the partition column)."
    ),
    fields=(
        pa.field("table", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("period", pa.string()),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("seen_at", UTC_TS, nullable=False),
    ),
    # A file read again (a backfill, a regenerated export) replaces its counts.
    key=("table", "location", "rule", "period"),
    partition_by="seen_at",
    monthly=False,
)
