"""The six KPIs, one function each: a lazy scan that reduces a canonical table to a
small aggregate (by local day or month and department), then the KPI's arithmetic
on that aggregate.

Every function returns a :class:`KpiOutput`: result rows (yearly, monthly and
department rows, before targets and statuses are attached), the counting rules
it applied, and per fiscal year the input counts that ``--explain`` prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa

from aggregates import directory
from aggregates.fiscal import (
    elapsed_days,
    fiscal_year_of,
    fiscal_year_of_month,
    fy_complete,
    fy_days,
    fy_end,
    fy_months,
    fy_months_through,
    fy_order,
    fy_start,
    label,
    month_complete,
    month_end,
    month_of,
    month_start,
)
from aggregates.settings import Rules
from aggregates.targets import Plan
from collector.store import Store
from schemas.tables import (
    MEETINGS,
    PAPER_PURCHASES,
    PAPERLESS_MEETINGS,
    PRINT_JOBS,
    REMOTE_SESSIONS,
    TELEWORK_APPLICANTS,
    TELEWORK_DAYS,
    TERMINALS,
    TableSpec,
)

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


@dataclass
class Ctx:
    """Everything a KPI job needs: store, rules, plan, as-of date and zone."""

    store: Store
    rules: Rules
    plan: Plan
    as_of: dt.date
    timezone: str = "Asia/Tokyo"
    #: Restrict the scans to these fiscal years (None: every year of the data).
    fiscal_years: frozenset[int] | None = None
    basis: str | None = None
    #: Pseudonyms of the accounts never counted as mobile-work users.
    excluded: frozenset[str] = frozenset()

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

    def local_date(self, column: str) -> pl.Expr:
        """The local calendar day of a UTC timestamp column."""
        return pl.col(column).dt.convert_time_zone(self.timezone).dt.date()

    def wanted(self, fy: int) -> bool:
        """Whether a fiscal year is reported (up to the as-of year, in the selection)."""
        if fy > self.as_of_fy:
            return False
        return self.fiscal_years is None or fy in self.fiscal_years

    def unknown(self) -> pl.Expr:
        """The label of an unresolved department."""
        return pl.lit(self.rules.unknown_department)


def fy_expr(day: pl.Expr) -> pl.Expr:
    """The fiscal year of a date expression."""
    return (day.dt.year() - (day.dt.month() < 4).cast(pl.Int32)).cast(pl.Int32)


def _month_str(day: pl.Expr) -> pl.Expr:
    return day.dt.strftime("%Y-%m")


def _proj(value: float, fy: int, through: dt.date) -> float:
    """Straight-line projection of a FY-to-date total to the whole FY."""
    done = elapsed_days(fy, through)
    return value * fy_days(fy) / done if done else value


def _fy_judge(fy: int, as_of: dt.date) -> tuple[bool, str]:
    complete = fy_complete(fy, as_of)
    return complete, FINAL if complete else PROJECTION


def _trend(points: list[tuple[float, float]], at: Iterable[float]) -> list[float]:
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


# -- web meetings per month ------------------------------------------------------------
def web_meetings_per_month(ctx: Ctx) -> KpiOutput:
    """Web meetings that took place, per local start month; FY = mean over complete months."""
    r = ctx.rules
    kpi = "web_meetings_per_month"
    lf = ctx.scan(MEETINGS).filter(pl.col("start_time") < ctx.as_of_end)
    dur = pl.coalesce(
        pl.col("duration_seconds").cast(pl.Float64),
        (pl.col("end_time") - pl.col("start_time")).dt.total_seconds().cast(pl.Float64),
    )
    short = dur.is_not_null() & (dur < r.min_meeting_minutes * 60)
    nodur = dur.is_null() & pl.lit(not r.count_meetings_without_duration)
    few = pl.col("participants").is_not_null() & (pl.col("participants") < r.min_participants)
    lf = directory.attach(
        lf, ctx.intervals, "host", ctx.local_date("start_time"), "department", r.unknown_department
    )
    agg = (
        lf.with_columns(
            short.alias("short"),
            (~short & nodur).alias("nodur"),
            (~short & ~nodur & few).alias("few"),
        )
        .group_by(pl.col("__day").dt.month_start().alias("m"), "dept")
        .agg(
            pl.len().alias("considered"),
            pl.col("short").sum(),
            pl.col("nodur").sum(),
            pl.col("few").sum(),
            (~(pl.col("short") | pl.col("nodur") | pl.col("few"))).sum().alias("counted"),
        )
        .with_columns(_month_str(pl.col("m")).alias("month"))
        .collect(engine=ENGINE)
    )
    first = (
        ctx.store.scan(MEETINGS)
        .filter(pl.col("start_time") < ctx.as_of_end)
        .select(pl.col("start_time").min())
        .collect(engine=ENGINE)
        .item()
    )
    first_month = month_of(first.astimezone(ZoneInfo(ctx.timezone)).date()) if first else None
    by_month = agg.group_by("month").agg(
        pl.col("considered", "short", "nodur", "few", "counted").sum()
    )
    monthly = {m: c for m, c in zip(by_month["month"], by_month["counted"], strict=True)}
    considered = {m: c for m, c in zip(by_month["month"], by_month["considered"], strict=True)}
    out = KpiOutput(
        kpi,
        [],
        r.show(
            "min_meeting_minutes",
            "min_participants",
            "count_meetings_without_duration",
            "meeting_months",
        ),
        ["meetings", "staff_directory (host -> department)"],
        "web meetings that took place (all platforms), counted in the local month they"
        " started; FY value = mean over the FY's complete months so far",
        no_data_reason="no web meeting records",
    )
    fys = sorted({fiscal_year_of_month(m) for m in monthly})
    for fy in fys:
        if not ctx.wanted(fy):
            continue
        started = fy_months_through(fy, ctx.as_of)
        complete_months = [m for m in started if month_complete(m, ctx.as_of)]
        if r.meeting_months == "since_first_data":
            counted_months = [m for m in complete_months if first_month and m >= first_month]
        elif r.meeting_months == "with_data":
            counted_months = [m for m in complete_months if considered.get(m, 0) > 0]
        else:
            counted_months = complete_months
        n = len(counted_months)
        total = sum(monthly.get(m, 0) for m in counted_months)
        complete, judge = _fy_judge(fy, ctx.as_of)
        value = total / n if n else None
        projected = None
        if value is not None and not complete:
            idx = {m: i for i, m in enumerate(fy_months(fy))}
            pts = [(idx[m], float(monthly.get(m, 0))) for m in counted_months]
            rest = [i for i in range(12) if fy_months(fy)[i] not in complete_months]
            projected = (total + sum(_trend(pts, rest))) / (n + len(rest))
        reason = None if n else "no complete month with meeting data in this FY yet"
        if n and n < len(complete_months):
            reason = (
                f"mean over {n} of {len(complete_months)} complete months"
                f" (rule meeting_months = {r.meeting_months})"
            )
        out.rows.append(
            Row(
                kpi,
                fy,
                value,
                complete,
                judge,
                numerator=float(total),
                denominator=float(n),
                projected=projected,
                reason=reason,
            )
        )
        fy_agg = agg.filter(pl.col("month").is_in(started))
        sums = fy_agg.select(pl.col("considered", "short", "nodur", "few", "counted").sum())
        out.counts[fy] = [
            ("meeting rows considered", sums["considered"].item()),
            (f"excluded: shorter than {r.min_meeting_minutes:g} min", sums["short"].item()),
            ("excluded: no duration known", sums["nodur"].item()),
            (f"excluded: fewer than {r.min_participants} participants", sums["few"].item()),
            ("meetings counted (all months so far)", sums["counted"].item()),
            ("months in the mean", ", ".join(counted_months) or "none"),
            ("meetings counted in those months", total),
        ]
        for m in started:
            if first_month and m < first_month:
                continue
            mc = month_complete(m, ctx.as_of)
            c = float(monthly.get(m, 0))
            proj = None
            if not mc:
                days = (ctx.as_of - month_start(m)).days + 1
                proj = c * ((month_end(m) - month_start(m)).days + 1) / days
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    c,
                    mc,
                    FINAL if mc else PROJECTION,
                    month=m,
                    numerator=c,
                    denominator=1.0,
                    projected=proj,
                    cumulative=True,
                )
            )
        if n:
            dept = (
                fy_agg.filter(pl.col("month").is_in(counted_months))
                .group_by("dept")
                .agg(pl.col("counted").sum())
                .sort("dept")
            )
            for d, c in zip(dept["dept"], dept["counted"], strict=True):
                out.rows.append(
                    Row(
                        kpi,
                        fy,
                        c / n,
                        complete,
                        judge,
                        department=d,
                        numerator=float(c),
                        denominator=float(n),
                        target_factor=None,
                    )
                )
    return out


# -- paperless meetings ----------------------------------------------------------------
def paperless_meetings(ctx: Ctx) -> KpiOutput:
    """Meetings held on a paperless meeting system in the FY (and month)."""
    r = ctx.rules
    kpi = "paperless_meetings"
    lf = ctx.scan(PAPERLESS_MEETINGS).filter(pl.col("start_time") < ctx.as_of_end)
    paper = pl.col("paper_also_distributed").fill_null(False) & pl.lit(r.exclude_paper_distributed)
    lf = directory.attach(
        lf, ctx.intervals, None, ctx.local_date("start_time"), "department", r.unknown_department
    )
    agg = (
        lf.group_by(pl.col("__day").dt.month_start().alias("m"), "dept")
        .agg(
            pl.len().alias("considered"),
            paper.sum().alias("paper"),
            (~paper).sum().alias("counted"),
        )
        .with_columns(_month_str(pl.col("m")).alias("month"), fy_expr(pl.col("m")).alias("fy"))
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        kpi,
        [],
        r.show("exclude_paper_distributed"),
        ["paperless_meetings"],
        "meetings held on a paperless meeting system in the FY (a meeting that also"
        " handed out paper does not count)",
        no_data_reason="no paperless-meeting records",
    )
    for fy in sorted(set(agg["fy"])):
        if not ctx.wanted(fy):
            continue
        fa = agg.filter(pl.col("fy") == fy)
        total = int(fa["counted"].sum())
        complete, judge = _fy_judge(fy, ctx.as_of)
        out.rows.append(
            Row(
                kpi,
                fy,
                float(total),
                complete,
                judge,
                numerator=float(total),
                projected=None if complete else _proj(total, fy, ctx.as_of),
                cumulative=True,
            )
        )
        out.counts[fy] = [
            ("meetings considered", int(fa["considered"].sum())),
            ("excluded: paper also handed out", int(fa["paper"].sum())),
            ("meetings counted", total),
        ]
        bm = fa.group_by("month").agg(pl.col("counted").sum())
        counts = dict(zip(bm["month"], bm["counted"], strict=True))
        for m in fy_months_through(fy, ctx.as_of):
            mc = month_complete(m, ctx.as_of)
            c = float(counts.get(m, 0))
            proj = None
            if not mc:
                days = (ctx.as_of - month_start(m)).days + 1
                proj = c * ((month_end(m) - month_start(m)).days + 1) / days
            # The plan's target is yearly: a month is judged against a twelfth of it.
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    c,
                    mc,
                    FINAL if mc else PROJECTION,
                    month=m,
                    numerator=c,
                    projected=proj,
                    target_factor=1 / 12,
                    cumulative=True,
                )
            )
        bd = fa.group_by("dept").agg(pl.col("counted").sum()).sort("dept")
        for d, c in zip(bd["dept"], bd["counted"], strict=True):
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    float(c),
                    complete,
                    judge,
                    department=d,
                    numerator=float(c),
                    target_factor=None,
                    cumulative=True,
                )
            )
    return out


# -- mobile work users -----------------------------------------------------------------
def mobile_work_users(ctx: Ctx) -> KpiOutput:
    """Distinct staff with at least one qualifying mobile-work session in the FY."""
    r = ctx.rules
    kpi = "mobile_work_users"
    lf = ctx.scan(REMOTE_SESSIONS).filter(pl.col("start_time") < ctx.as_of_end)
    dur = pl.coalesce(
        pl.col("duration_seconds").cast(pl.Float64),
        (pl.col("end_time") - pl.col("start_time")).dt.total_seconds().cast(pl.Float64),
    )
    lf = directory.attach(
        lf, ctx.intervals, "person", ctx.local_date("start_time"), None, r.unknown_department
    )
    excluded = list(ctx.excluded)
    acct = pl.col("canon").is_in(excluded) | pl.col("person").is_in(excluded)
    short = ~acct & dur.is_not_null() & (dur < r.min_session_seconds)
    nodur = ~acct & dur.is_null() & pl.lit(not r.count_sessions_without_duration)
    lf = lf.with_columns(
        acct.alias("acct"),
        short.alias("short"),
        nodur.alias("nodur"),
        fy_expr(pl.col("__day")).alias("fy"),
    )
    ok = ~(pl.col("acct") | pl.col("short") | pl.col("nodur"))
    # One scan, two results: per-FY input counts and the qualifying person-months.
    both = lf.group_by("canon", "dept", pl.col("__day").dt.month_start().alias("m"), "fy").agg(
        pl.len().alias("considered"),
        pl.col("acct").sum(),
        pl.col("short").sum(),
        pl.col("nodur").sum(),
        ok.sum().alias("sessions"),
        pl.col("in_directory").any().alias("in_directory"),
    )
    agg = both.collect(engine=ENGINE)
    pm = agg.filter(pl.col("sessions") > 0).with_columns(_month_str(pl.col("m")).alias("month"))
    out = KpiOutput(
        kpi,
        [],
        r.show("min_session_seconds", "count_sessions_without_duration", "excluded_accounts"),
        ["remote_sessions", "staff_directory (alias -> person, department)"],
        "distinct staff with at least one qualifying mobile-work session that started in the FY",
        no_data_reason="no mobile-work session records",
    )
    for fy in sorted(set(agg["fy"])):
        if not ctx.wanted(fy):
            continue
        fa = agg.filter(pl.col("fy") == fy)
        fp = pm.filter(pl.col("fy") == fy)
        people = fp["canon"].n_unique()
        complete, judge = _fy_judge(fy, ctx.as_of)
        out.rows.append(
            Row(
                kpi,
                fy,
                float(people),
                complete,
                judge,
                numerator=float(people),
                projected=None if complete else _proj(people, fy, ctx.as_of),
                cumulative=True,
            )
        )
        unresolved = fp.filter(~pl.col("in_directory"))["canon"].n_unique()
        out.counts[fy] = [
            ("sessions considered", int(fa["considered"].sum())),
            ("excluded: excluded accounts", int(fa["acct"].sum())),
            (f"excluded: shorter than {r.min_session_seconds} s", int(fa["short"].sum())),
            ("excluded: length unknown", int(fa["nodur"].sum())),
            ("qualifying sessions", int(fa["sessions"].sum())),
            ("distinct people", people),
            ("people not found in staff_directory", unresolved),
        ]
        firsts = fp.group_by("canon").agg(pl.col("month").min())
        new_by_month = firsts.group_by("month").len()
        new = dict(zip(new_by_month["month"], new_by_month["len"], strict=True))
        cum = 0
        for m in fy_months_through(fy, ctx.as_of):
            cum += new.get(m, 0)
            mc = month_complete(m, ctx.as_of)
            through = min(month_end(m), ctx.as_of)
            last = m == fy_months(fy)[-1] and mc
            # Monthly rows are the FY to date: how the year stood at each month end.
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    float(cum),
                    mc,
                    FINAL if last else PROJECTION,
                    month=m,
                    numerator=float(cum),
                    projected=_proj(cum, fy, through),
                    cumulative=True,
                    reason="fiscal year to date",
                )
            )
        bd = fp.group_by("dept").agg(pl.col("canon").n_unique()).sort("dept")
        for d, c in zip(bd["dept"], bd["canon"], strict=True):
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    float(c),
                    complete,
                    judge,
                    department=d,
                    numerator=float(c),
                    target_factor=None,
                    cumulative=True,
                )
            )
    return out


# -- telework ratio --------------------------------------------------------------------
def telework_ratio(ctx: Ctx) -> KpiOutput:
    """Share of the FY's telework applicants with at least one qualifying home-work day."""
    r = ctx.rules
    kpi = "telework_ratio"
    fy_col = pl.col("fiscal_year").cast(pl.Int32)
    apps = ctx.scan(TELEWORK_APPLICANTS).filter(
        (fy_col <= ctx.as_of_fy)
        & (pl.col("registered_on").is_null() | (pl.col("registered_on") <= ctx.as_of))
    )
    # Department: the one the applicant belonged to when the FY (or their
    # registration, if later) began; transfers happen on 1 April.
    day = pl.max_horizontal(pl.date(fy_col, 4, 1), pl.col("registered_on"))
    apps = directory.attach(apps, ctx.intervals, "person", day, "department", r.unknown_department)
    fy_last = pl.date(fy_col + 1, 3, 31)
    left = pl.col("left_on").is_not_null() & (
        pl.col("left_on") <= pl.min_horizontal(pl.lit(ctx.as_of), fy_last)
    )
    never_present = left & (pl.col("left_on") < pl.date(fy_col, 4, 1))
    drop = {"keep": pl.lit(False), "present": never_present, "exclude": left}[r.leavers]
    apps_df = (
        apps.select(
            pl.col("canon"), fy_col.alias("fy"), "dept", left.alias("left"), drop.alias("drop")
        )
        .sort("canon", "fy", "dept")
        .unique(["canon", "fy"], keep="first")
        .collect(engine=ENGINE)
    )
    locations = (
        ["home"]
        + (["satellite"] if r.count_satellite_days else [])
        + (["mobile"] if r.count_mobile_days else [])
    )
    portions = (
        ["full"]
        + (["am", "pm"] if r.count_half_days else [])
        + (["hours"] if r.count_hour_portions else [])
    )
    days = ctx.scan(TELEWORK_DAYS).filter(pl.col("work_date") <= ctx.as_of)
    days = directory.attach(
        days, ctx.intervals, "person", pl.col("work_date"), None, r.unknown_department
    )
    qualifies = pl.col("location").is_in(locations) & pl.col("portion").is_in(portions)
    day_agg = (
        days.with_columns(fy_expr(pl.col("work_date")).alias("fy"), qualifies.alias("q"))
        .group_by("canon", "fy", _month_str(pl.col("work_date").dt.month_start()).alias("month"))
        .agg(
            pl.len().alias("records"),
            pl.col("q").sum().alias("qualifying"),
            (pl.col("location") == "home").sum().alias("home"),
        )
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        kpi,
        [],
        r.show(
            "count_half_days",
            "count_hour_portions",
            "count_satellite_days",
            "count_mobile_days",
            "leavers",
        ),
        [
            "telework_applicants",
            "telework_days",
            "staff_directory (alias -> person, applicant department)",
        ],
        "of the staff on the FY's applicant list, the share with at least one qualifying"
        f" day (locations: {', '.join(locations)}; portions: {', '.join(portions)}) in the"
        " FY; staff not on the list never count",
        no_data_reason="no telework applicant list",
    )
    firsts = (
        day_agg.filter(pl.col("qualifying") > 0)
        .group_by("canon", "fy")
        .agg(pl.col("month").min().alias("first"))
    )
    day_fys = set(day_agg["fy"])
    for fy in sorted(set(apps_df["fy"])):
        if not ctx.wanted(fy):
            continue
        fa = apps_df.filter(pl.col("fy") == fy)
        denom_df = fa.filter(~pl.col("drop"))
        joined = denom_df.join(firsts.filter(pl.col("fy") == fy), on=["canon", "fy"], how="left")
        n_app = joined.height
        doers = int(joined["first"].is_not_null().sum())
        complete, judge = _fy_judge(fy, ctx.as_of)
        fd = day_agg.filter(pl.col("fy") == fy)
        non_app = (
            fd.filter(pl.col("qualifying") > 0)
            .join(fa, on=["canon", "fy"], how="anti")["canon"]
            .n_unique()
        )
        out.counts[fy] = [
            ("applicants on the list", fa.height),
            ("applicants who left in the FY", int(fa["left"].sum())),
            (f"applicants dropped by leavers rule ({r.leavers})", int(fa["drop"].sum())),
            ("applicants in the denominator", n_app),
            ("telework-day records considered", int(fd["records"].sum())),
            ("qualifying day records", int(fd["qualifying"].sum())),
            ("applicants with a qualifying day", doers),
            ("non-applicants with qualifying days (never counted)", non_app),
        ]
        if fy not in day_fys:
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    None,
                    complete,
                    judge,
                    numerator=None,
                    denominator=float(n_app),
                    reason="no telework-day records in this FY",
                )
            )
            continue
        if n_app == 0:
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    None,
                    complete,
                    judge,
                    denominator=0.0,
                    reason="no applicants in the denominator",
                )
            )
            continue

        def ratio(num: float, den: float) -> float:
            return 100.0 * num / den

        proj = None if complete else ratio(min(_proj(doers, fy, ctx.as_of), n_app), n_app)
        out.rows.append(
            Row(
                kpi,
                fy,
                ratio(doers, n_app),
                complete,
                judge,
                numerator=float(doers),
                denominator=float(n_app),
                projected=proj,
            )
        )
        first_by_month = joined.drop_nulls("first").group_by("first").len()
        new = dict(zip(first_by_month["first"], first_by_month["len"], strict=True))
        cum = 0
        for m in fy_months_through(fy, ctx.as_of):
            cum += new.get(m, 0)
            mc = month_complete(m, ctx.as_of)
            through = min(month_end(m), ctx.as_of)
            last = m == fy_months(fy)[-1] and mc
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    ratio(cum, n_app),
                    mc,
                    FINAL if last else PROJECTION,
                    month=m,
                    numerator=float(cum),
                    denominator=float(n_app),
                    projected=ratio(min(_proj(cum, fy, through), n_app), n_app),
                    reason="fiscal year to date",
                )
            )
        bd = (
            joined.group_by("dept")
            .agg(pl.len().alias("den"), pl.col("first").is_not_null().sum().alias("num"))
            .sort("dept")
        )
        for d, num, den in zip(bd["dept"], bd["num"], bd["den"], strict=True):
            p = None if complete else ratio(min(_proj(num, fy, ctx.as_of), den), den)
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    ratio(num, den),
                    complete,
                    judge,
                    department=d,
                    numerator=float(num),
                    denominator=float(den),
                    projected=p,
                )
            )
    return out


# -- paper vs the baseline FY ----------------------------------------------------------
def paper_vs_r3(ctx: Ctx) -> KpiOutput:
    """Sheets in the FY / sheets in the baseline FY x 100, on one basis, same period."""
    r = ctx.rules
    kpi = "paper_vs_r3"
    basis = ctx.basis or r.paper_basis
    entry = ctx.plan.get(kpi)
    base_fy = entry.baseline_fy or ctx.plan.first_fy
    out = KpiOutput(
        kpi,
        [],
        r.show("paper_basis", "paper_same_period")
        + [
            f"basis used = {basis}",
            f"baseline FY = {label(base_fy) if base_fy else 'none'} (targets file)",
        ],
        [
            basis,
            "staff_directory (person -> department)"
            if basis == "print_jobs"
            else "(department from the purchase record)",
        ],
        "sheets used in the FY / sheets used in the baseline FY x 100 on one basis; a FY in"
        " progress is compared with the same period of the baseline FY",
        no_data_reason=f"no {basis} records",
        basis=basis,
    )
    if base_fy is None:
        out.no_data_reason = "the targets file names no baseline_fy (or plan first_fy)"
        return out
    if basis == "print_jobs":
        lf = ctx.scan(PRINT_JOBS, base_fy).filter(pl.col("printed_at") < ctx.as_of_end)
        lf = directory.attach(
            lf,
            ctx.intervals,
            "person",
            ctx.local_date("printed_at"),
            "department",
            r.unknown_department,
        )
        upper = pl.col("sheets_upper_bound").fill_null(False)
    else:
        lf = ctx.scan(PAPER_PURCHASES, base_fy).filter(pl.col("purchased_on") <= ctx.as_of)
        lf = directory.attach(
            lf, ctx.intervals, None, pl.col("purchased_on"), "department", r.unknown_department
        )
        upper = pl.lit(False)
    daily = (
        lf.group_by("__day", "dept")
        .agg(pl.col("sheets").sum(), pl.len().alias("records"), upper.sum().alias("upper"))
        .with_columns(
            fy_expr(pl.col("__day")).alias("fy"),
            _month_str(pl.col("__day")).alias("month"),
            # Position within a fiscal year: (month from April) * 100 + day.
            (
                (pl.col("__day").dt.month().cast(pl.Int32) - 4) % 12 * 100
                + pl.col("__day").dt.day().cast(pl.Int32)
            ).alias("order"),
        )
        .collect(engine=ENGINE)
    )
    base = daily.filter(pl.col("fy") == base_fy)
    unit = "sheets" if basis == "print_jobs" else "sheets purchased"

    def period(fy: int) -> tuple[pl.Expr, str]:
        """The part of any FY that is compared, for a FY in progress."""
        if fy_complete(fy, ctx.as_of):
            return pl.lit(True), "whole FY"
        if r.paper_same_period == "days":
            o = fy_order(ctx.as_of)
            return pl.col("order") <= o[0] * 100 + o[1], f"through {ctx.as_of:%m-%d}"
        n = sum(month_complete(m, ctx.as_of) for m in fy_months(fy))
        names = [m[5:] for m in fy_months(fy)[:n]]
        idx = (pl.col("order") // 100) < n
        return idx, ("complete months " + ",".join(names)) if n else "no complete month"

    def month_idx(m: str) -> int:
        return (int(m[5:]) - 4) % 12

    for fy in sorted(set(daily["fy"])):
        if not ctx.wanted(fy):
            continue
        fa = daily.filter(pl.col("fy") == fy)
        cond, what = period(fy)
        cur = fa.filter(cond)
        ref = base.filter(cond)
        num, den = float(cur["sheets"].sum()), float(ref["sheets"].sum())
        complete, judge = _fy_judge(fy, ctx.as_of)
        out.counts[fy] = [
            ("compared period", what),
            (f"records in the FY ({basis})", int(fa["records"].sum())),
            (f"{unit} in the FY's compared period", int(num)),
            (f"{unit} in {label(base_fy)}'s same period", int(den)),
            (
                "records with sheets as an upper bound (copies/duplex unknown)",
                int(cur["upper"].sum()),
            ),
        ]
        reason = f"{basis}: {label(fy)} vs {label(base_fy)}, {what}"
        if fy == base_fy:
            reason = f"baseline year (= 100 by definition); {reason}"
        value: float | None = None
        if what == "no complete month":
            reason = f"no complete month of {label(fy)} yet (paper_same_period = complete_months)"
        elif ref.height == 0 or den == 0:
            reason = (
                f"no {label(base_fy)} ({base_fy}) {unit} on basis {basis} in the"
                " compared period: cannot compare"
            )
        else:
            value = 100.0 * num / den
        out.rows.append(
            Row(
                kpi,
                fy,
                value,
                complete,
                judge,
                numerator=num,
                denominator=den if value is not None else None,
                projected=value,
                basis=basis,
                reason=reason,
            )
        )
        for m in fy_months_through(fy, ctx.as_of):
            mc = month_complete(m, ctx.as_of)
            i = month_idx(m)
            mcond = (pl.col("order") // 100) == i
            if not mc:
                mcond = mcond & (pl.col("order") % 100 <= ctx.as_of.day)
            mn = float(fa.filter(mcond)["sheets"].sum())
            md = float(base.filter(mcond)["sheets"].sum())
            mv = 100.0 * mn / md if md else None
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    mv,
                    mc,
                    FINAL if mc else PROJECTION,
                    month=m,
                    numerator=mn,
                    denominator=md if md else None,
                    projected=mv,
                    basis=basis,
                    reason=None if md else f"no {label(base_fy)} {unit} in the same month",
                )
            )
        if value is None and what == "no complete month":
            continue
        cd = cur.group_by("dept").agg(pl.col("sheets").sum())
        rd = ref.group_by("dept").agg(pl.col("sheets").sum().alias("base"))
        for d, n_, b in cd.join(rd, on="dept", how="full", coalesce=True).sort("dept").iter_rows():
            n_, b = float(n_ or 0), float(b or 0)
            dv = 100.0 * n_ / b if b else None
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    dv,
                    complete,
                    judge,
                    department=d,
                    numerator=n_,
                    denominator=b or None,
                    projected=dv,
                    basis=basis,
                    reason=None if b else f"no {label(base_fy)} {unit} for this department",
                )
            )
    return out


# -- video-conference-capable terminals -------------------------------------------------
def vc_capable_terminals(ctx: Ctx) -> KpiOutput:
    """Share of terminals in the FY's latest inventory snapshot that can join a video call."""
    r = ctx.rules
    kpi = "vc_capable_terminals"
    lf = ctx.store.scan(TERMINALS).filter(pl.col("snapshot_date") <= ctx.as_of)
    lf = directory.attach(
        lf, ctx.intervals, None, pl.col("snapshot_date"), "department", r.unknown_department
    )
    snaps = (
        lf.group_by("source", "snapshot_date", "dept")
        .agg(pl.len().alias("n"), pl.col("vc_capable").sum().alias("vc"))
        .with_columns(
            fy_expr(pl.col("snapshot_date")).alias("fy"),
            _month_str(pl.col("snapshot_date")).alias("month"),
        )
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        kpi,
        [],
        ["(no counting switches: every terminal in the snapshot counts once)"],
        ["terminals"],
        "share of terminals in the FY's latest inventory snapshot (per source) that can"
        " join a video conference",
        no_data_reason="no terminal inventory snapshot",
    )

    def latest(frame: pl.DataFrame) -> pl.DataFrame:
        last = frame.group_by("source").agg(pl.col("snapshot_date").max().alias("last"))
        return frame.join(last, on="source").filter(pl.col("snapshot_date") == pl.col("last"))

    def share(frame: pl.DataFrame) -> tuple[float, float]:
        return float(frame["vc"].sum()), float(frame["n"].sum())

    org = snaps.group_by("snapshot_date").agg(pl.col("vc", "n").sum()).sort("snapshot_date")
    for fy in sorted(set(snaps["fy"])):
        if not ctx.wanted(fy):
            continue
        fa = snaps.filter(pl.col("fy") == fy)
        cur = latest(fa)
        vc, n = share(cur)
        value = 100.0 * vc / n if n else None
        complete, judge = _fy_judge(fy, ctx.as_of)
        projected = value
        last_day = cur["snapshot_date"].max()
        if value is not None and not complete:
            prev = org.filter(pl.col("snapshot_date") < last_day).tail(1)
            if prev.height and prev["n"].item():
                pv = 100.0 * prev["vc"].item() / prev["n"].item()
                span = (last_day - prev["snapshot_date"].item()).days
                ahead = (fy_end(fy) - dt.timedelta(days=1) - last_day).days
                projected = max(0.0, min(100.0, value + (value - pv) * ahead / span))
        snap_list = ", ".join(str(d) for d in sorted(set(cur["snapshot_date"])))
        out.counts[fy] = [
            ("snapshots in the FY", fa["snapshot_date"].n_unique()),
            ("latest snapshot(s) used", snap_list),
            ("terminals in it", int(n)),
            ("video-conference capable", int(vc)),
        ]
        out.rows.append(
            Row(
                kpi,
                fy,
                value,
                complete,
                judge,
                numerator=vc,
                denominator=n,
                projected=projected,
                reason=f"snapshot {snap_list}",
            )
        )
        for m in sorted(set(fa["month"])):
            mc = month_complete(m, ctx.as_of)
            mvc, mn = share(latest(fa.filter(pl.col("month") == m)))
            mv = 100.0 * mvc / mn if mn else None
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    mv,
                    mc,
                    FINAL if mc else PROJECTION,
                    month=m,
                    numerator=mvc,
                    denominator=mn,
                    projected=mv,
                )
            )
        bd = cur.group_by("dept").agg(pl.col("vc", "n").sum()).sort("dept")
        for d, dvc, dn in zip(bd["dept"], bd["vc"], bd["n"], strict=True):
            dv = 100.0 * dvc / dn if dn else None
            out.rows.append(
                Row(
                    kpi,
                    fy,
                    dv,
                    complete,
                    judge,
                    department=d,
                    numerator=float(dvc),
                    denominator=float(dn),
                    projected=dv,
                )
            )
    return out


JOBS = {
    "web_meetings_per_month": web_meetings_per_month,
    "paperless_meetings": paperless_meetings,
    "mobile_work_users": mobile_work_users,
    "telework_ratio": telework_ratio,
    "paper_vs_r3": paper_vs_r3,
    "vc_capable_terminals": vc_capable_terminals,
}
