"""Canonical table schemas (pyarrow), their natural keys and versions."""

from workstyle.schemas.kpi import KPI_FILES, KPI_RESULT, STATUSES
from workstyle.schemas.printer_counters import PRINTER_COUNTER_DELTAS  # noqa: F401 - registers the tables
from workstyle.schemas.tables import PARTITION_COLUMNS, TABLES, UTC_TS, TableSpec, get, register
from workstyle.schemas.teams_activity import TEAMS_ACTIVITY  # noqa: F401 - registers the table

__all__ = [
    "KPI_FILES",
    "KPI_RESULT",
    "PARTITION_COLUMNS",
    "STATUSES",
    "TABLES",
    "UTC_TS",
    "TableSpec",
    "get",
    "register",
]
