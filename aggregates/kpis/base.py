"""What every KPI job shares: the context it runs in, the rows it emits, and the
helpers that build one fiscal year's yearly, monthly and by-department rows.

A KPI job states only its own arithmetic; :class:`FyRows` fills in the parts that
are the same everywhere (fiscal year, completeness, final or projection, basis).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa

from workstyle.aggregates import staff_directory as directory
from workstyle.aggregates.fiscal import (
    elapsed_days,
    fiscal_year_of,
    fy_complete,
    fy_days,
    fy_end,
    fy_months,
    fy_months_through,
    fy_start,
    month_complete,
    month_end,
    month_of,
    month_start,
)
from workstyle.aggregates.settings import Rules
from workstyle.aggregates.targets import Plan
from workstyle.collector.ingest.reader import DatasetReader
from workstyle.schemas import derivations
from workstyle.schemas.tables import TableSpec

#: How a row's status is judged: ``final`` (the period the target refers to has
#: ended) or ``projection`` (straight-line projection to the end of the FY).
FINAL, PROJECTION = "final", "projection"

#: Event tables are reduced with the streaming engine: bounded memory at any size.
ENGINE = "streaming"


@dataclass
class Row:
    """One KPI result row before targets and statuses are attached."""

    kpi: str
    fiscal_year: int
    value: float | None
    complete: bool
    judge: str
    month: str | None = None
    department: str | None = None
    numerator: float | None = None
    denominator: float | None = None
    projected: float | None = None
    basis: str | None = None
    reason: str | None = None
    #: The plan's FY target times this factor is the row's target; None: no target.
    target_factor: float | None = 1.0
    #: The value can only grow during the FY (a count): reaching the target early
    #: means it is achieved.
    cumulative: bool = False


@dataclass
class KpiOutput:
    """What one KPI job produced."""

    kpi: str
    rows: list[Row]
    rules: list[str]
    tables: list[str]
    definition: str
    counts: dict[int, list[tuple[str, Any]]] = field(default_factory=dict)
    #: Reason given to a fiscal year the job found no data for.
    no_data_reason: str = "no data"
    basis: str | None = None

    def years(self, ctx: Ctx, found: Iterable[int]) -> Iterator[FyRows]:
        """The reported fiscal years among ``found``, oldest first, each with its row builder."""
        for fy in sorted(set(found)):
            if ctx.wanted(fy):
                yield FyRows(self, fy, ctx.as_of)


@dataclass
class Ctx:
    """Everything a KPI job needs: store, rules, plan, as-of date and zone."""

    store: DatasetReader
    rules: Rules
    plan: Plan
    as_of: dt.date
    timezone: str = "Asia/Tokyo"
    #: Restrict the scans to these fiscal years (None: every year of the data).
    fiscal_years: frozenset[int] | None = None
    basis: str | None = None
    #: Pseudonyms of the accounts never counted as mobile-work users.
    excluded: frozenset[str] = frozenset()
    #: The organisation the KPIs are about (its 地方公共団体コード); None: the whole dataset.
    organisation: str | None = None

    @cached_property
    def as_of_end(self) -> dt.datetime:
        """The first UTC instant after the as-of day (local) ends."""
        local = dt.datetime.combine(
            self.as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(self.timezone)
        )
        return local.astimezone(dt.UTC)

    @cached_property
    def as_of_fy(self) -> int:
        """The fiscal year the as-of date falls in."""
        return fiscal_year_of(self.as_of)

    @cached_property
    def intervals(self) -> pl.DataFrame:
        """The staff directory as alias -> (person, department) intervals."""
        return directory.load_intervals(self.store, self.as_of)

    def scan(self, spec: TableSpec, *extra_fys: int) -> pl.LazyFrame:
        """A scan pruned to the partitions the as-of date and fiscal years can need."""
        lf = self.store.scan(spec)
        is_date = spec.field(spec.partition_by).type.equals(pa.date32())
        last = self.as_of if is_date else self.as_of_end.date()
        conds = [pl.col("month") <= month_of(last)]
        if self.fiscal_years is not None:
            years = {*self.fiscal_years, *extra_fys}
            # A month of slack on both sides: partitions are UTC months, buckets local.
            lo = fy_start(min(years)) - dt.timedelta(days=1)
            hi = fy_end(max(years)) + dt.timedelta(days=1)
            conds += [pl.col("month") >= month_of(lo), pl.col("month") <= month_of(hi)]
        return lf.filter(pl.all_horizontal(conds))

    def attach(
        self, lf: pl.LazyFrame, person: str | None, day: pl.Expr, own_department: str | None
    ) -> pl.LazyFrame:
        """Add ``__day``, ``canon`` and ``dept`` to an event frame (:func:`directory.attach`)."""
        return directory.attach(
            lf, self.intervals, person, day, own_department, self.rules.unknown_department
        )

    def local_date(self, column: str) -> pl.Expr:
        """The local calendar day of a UTC timestamp column."""
        return pl.col(column).dt.convert_time_zone(self.timezone).dt.date()

    def wanted(self, fy: int) -> bool:
        """Whether a fiscal year is reported (up to the as-of year, in the selection)."""
        if fy > self.as_of_fy:
            return False
        return self.fiscal_years is None or fy in self.fiscal_years


@dataclass
class FyRows:
    """Appends one fiscal year's rows of one KPI to its output.

    Yearly and department rows share the FY's completeness; a month row is complete
    when its month is. Every row carries the basis (the output's, unless the KPI sets
    :attr:`basis` for this FY).
    """

    out: KpiOutput
    fy: int
    as_of: dt.date

    def __post_init__(self) -> None:
        self.complete, self.judge = fy_judge(self.fy, self.as_of)
        #: The basis the FY's rows report (a KPI may qualify it per FY).
        self.basis = self.out.basis

    def year(self, value: float | None, **fields: Any) -> None:
        """The whole-organisation row of the FY."""
        self._add(value, self.complete, self.judge, **fields)

    def month(
        self, month: str, value: float | None, *, to_date: bool = False, **fields: Any
    ) -> None:
        """A month's row; a FY-to-date row is final only once the FY's last month is over."""
        complete = month_complete(month, self.as_of)
        final = complete and (not to_date or month == fy_months(self.fy)[-1])
        if to_date:
            fields.setdefault("reason", "fiscal year to date")
        self._add(value, complete, FINAL if final else PROJECTION, month=month, **fields)

    def department(self, department: str, value: float | None, **fields: Any) -> None:
        """A department's row for the FY."""
        self._add(value, self.complete, self.judge, department=department, **fields)

    # -- the shapes several KPIs share -------------------------------------------------
    def count_year(self, total: int) -> None:
        """A count that only grows during the FY, projected straight to the FY end."""
        projected = None if self.complete else fy_projection(total, self.fy, self.as_of)
        self.year(float(total), numerator=float(total), projected=projected, cumulative=True)

    def count_month(self, month: str, count: float, **fields: Any) -> None:
        """A month's count; a month in progress is projected to its whole length."""
        self.month(
            month,
            count,
            numerator=count,
            projected=month_projection(count, month, self.as_of),
            cumulative=True,
            **fields,
        )

    def count_departments(self, departments: Iterable[str], counts: Iterable[int]) -> None:
        """Department counts: no target (the plan's target is for the whole organisation)."""
        for d, c in zip(departments, counts, strict=True):
            self.department(d, float(c), numerator=float(c), target_factor=None, cumulative=True)

    def to_date(self, new: dict[str, int]) -> Iterator[tuple[str, int, float]]:
        """Per started month: (month, FY-to-date total, its projection to the FY end).

        ``new`` counts, per month, what was first seen in that month (people, say),
        so the running total is the FY as it stood at each month end.
        """
        total = 0
        for m in fy_months_through(self.fy, self.as_of):
            total += new.get(m, 0)
            yield m, total, fy_projection(total, self.fy, min(month_end(m), self.as_of))

    def _add(self, value: float | None, complete: bool, judge: str, **fields: Any) -> None:
        fields.setdefault("basis", self.basis)
        self.out.rows.append(Row(self.out.kpi, self.fy, value, complete, judge, **fields))


def fy_judge(fy: int, as_of: dt.date) -> tuple[bool, str]:
    """Whether a FY is complete at the as-of date, and so how its status is judged."""
    complete = fy_complete(fy, as_of)
    return complete, FINAL if complete else PROJECTION


def fy_expr(day: pl.Expr) -> pl.Expr:
    """The fiscal year of a date expression."""
    return (day.dt.year() - (day.dt.month() < 4).cast(pl.Int32)).cast(pl.Int32)


def duration_seconds() -> pl.Expr:
    """An event's length in seconds: its own duration, else end - start, else null."""
    derived = derivations.duration_seconds(pl.col("start_time"), pl.col("end_time"))
    return pl.coalesce(pl.col("duration_seconds").cast(pl.Float64), derived.cast(pl.Float64))


def month_str(day: pl.Expr) -> pl.Expr:
    """'YYYY-MM' of a date expression."""
    return day.dt.strftime("%Y-%m")


def fy_projection(value: float, fy: int, through: dt.date) -> float:
    """Straight-line projection of a FY-to-date total to the whole FY."""
    done = elapsed_days(fy, through)
    return value * fy_days(fy) / done if done else value


def month_projection(count: float, month: str, as_of: dt.date) -> float | None:
    """Straight-line projection of a month in progress to its whole length; None once over."""
    if month_complete(month, as_of):
        return None
    days = (as_of - month_start(month)).days + 1
    return count * ((month_end(month) - month_start(month)).days + 1) / days


def pct(num: float, den: float) -> float | None:
    """``num / den x 100``, or None without a denominator."""
    return 100.0 * num / den if den else None


def trend(points: list[tuple[float, float]], at: Iterable[float]) -> list[float]:
    """Least-squares straight line through ``points`` evaluated at ``at``."""
    n = len(points)
    if n == 0:
        return []
    if n == 1:
        return [points[0][1] for _ in at]
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return [my + slope * (x - mx) for x in at]
