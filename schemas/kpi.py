"""Schema of the KPI result tables that the aggregate step writes.

The aggregates write three files under ``<data_dir>/kpi/``: ``yearly.parquet``
(whole organisation, one row per KPI x fiscal year), ``monthly.parquet`` (one row
per KPI x month, where the definition allows) and ``by_department.parquet`` (one
row per KPI x fiscal year x department). All three share this schema; the exporter
and the report read only these files and the state, never the raw dataset.
"""

from __future__ import annotations

import pyarrow as pa

from workstyle.schemas.tables import UTC_TS

KPI_VERSION = 1

#: Status values, in the order a report lists them.
STATUSES = ("achieved", "on_track", "behind", "no_data")

KPI_RESULT = pa.schema(
    [
        pa.field("kpi", pa.string(), nullable=False),
        pa.field("fiscal_year", pa.int16(), nullable=False),
        pa.field("label", pa.string(), nullable=False),  # "R5"
        pa.field("month", pa.string()),  # "2023-04" on monthly rows, else null
        pa.field("department", pa.string()),  # null for the whole organisation
        pa.field("value", pa.float64()),
        pa.field("target", pa.float64()),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("basis", pa.string()),  # e.g. "print_jobs" for paper_vs_r3
        pa.field("complete", pa.bool_(), nullable=False),  # the period has ended
        pa.field("numerator", pa.float64()),
        pa.field("denominator", pa.float64()),
        pa.field("reason", pa.string()),  # why no_data, or what was compared
        pa.field("as_of", pa.date32(), nullable=False),
        pa.field("computed_at", UTC_TS, nullable=False),
        # Added with the KPI engine (additive): the straight-line projection to the
        # FY end for a period in progress, and the plan's direction and names.
        pa.field("projected", pa.float64()),
        pa.field("direction", pa.string()),  # "higher" or "lower" is better
        pa.field("name_ja", pa.string()),
        pa.field("name_en", pa.string()),
        # Added for datasets of many organisations (additive): the 6-digit
        # 地方公共団体コード the row is about; null for a single-organisation dataset or
        # for all organisations together.
        pa.field("organisation", pa.string()),
    ],
    metadata={"collector.table": "kpi", "collector.schema_version": str(KPI_VERSION)},
)

KPI_FILES = ("yearly", "monthly", "by_department")
