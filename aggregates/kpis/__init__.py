"""The six KPIs, one function each: a lazy scan that reduces a canonical table to a
small aggregate (by local day or month and department), then the KPI's arithmetic
on that aggregate.

Every function returns a :class:`KpiOutput`: result rows (yearly, monthly and
department rows, before targets and statuses are attached), the counting rules
it applied, and per fiscal year the input counts that ``--explain`` prints.

One module per family: :mod:`.meetings` (web and paperless meetings),
:mod:`.people` (mobile-work users, telework ratio), :mod:`.paper` and
:mod:`.terminals`; :mod:`.base` holds the context, the row types and the helpers
that emit a fiscal year's rows.
"""

from __future__ import annotations

from collections.abc import Callable

from workstyle.aggregates.kpis.base import (
    ENGINE,
    FINAL,
    PROJECTION,
    Ctx,
    FyRows,
    KpiOutput,
    Row,
    fy_expr,
    fy_judge,
)
from workstyle.aggregates.kpis.meetings import paperless_meetings, web_meetings_per_month
from workstyle.aggregates.kpis.paper import paper_vs_r3
from workstyle.aggregates.kpis.people import mobile_work_users, telework_ratio
from workstyle.aggregates.kpis.terminals import vc_capable_terminals

__all__ = [
    "ENGINE",
    "FINAL",
    "JOBS",
    "PROJECTION",
    "Ctx",
    "FyRows",
    "KpiOutput",
    "Row",
    "fy_expr",
    "fy_judge",
    "mobile_work_users",
    "paper_vs_r3",
    "paperless_meetings",
    "telework_ratio",
    "vc_capable_terminals",
    "web_meetings_per_month",
]

#: KPI id -> its job, in the order a report lists them.
JOBS: dict[str, Callable[[Ctx], KpiOutput]] = {
    "web_meetings_per_month": web_meetings_per_month,
    "paperless_meetings": paperless_meetings,
    "mobile_work_users": mobile_work_users,
    "telework_ratio": telework_ratio,
    "paper_vs_r3": paper_vs_r3,
    "vc_capable_terminals": vc_capable_terminals,
}
