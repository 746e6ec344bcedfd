"""Meeting KPIs: web meetings per month and paperless meetings per FY."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import polars as pl

from workstyle.aggregates.fiscal import (
    fiscal_year_of_month,
    fy_months,
    fy_months_through,
    month_complete,
    month_of,
)
from workstyle.aggregates.kpis.base import (
    ENGINE,
    Ctx,
    KpiOutput,
    duration_seconds,
    fy_expr,
    month_str,
    trend,
)
from workstyle.schemas.tables import MEETINGS, PAPERLESS_MEETINGS


def web_meetings_per_month(ctx: Ctx) -> KpiOutput:
    """Web meetings that took place, per local start month; FY = mean over complete months."""
    r = ctx.rules
    lf = ctx.scan(MEETINGS).filter(pl.col("start_time") < ctx.as_of_end)
    dur = duration_seconds()
    short = dur.is_not_null() & (dur < r.min_meeting_minutes * 60)
    nodur = dur.is_null() & pl.lit(not r.count_meetings_without_duration)
    few = pl.col("participants").is_not_null() & (pl.col("participants") < r.min_participants)
    lf = ctx.attach(lf, "host", ctx.local_date("start_time"), "department")
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
        .with_columns(month_str(pl.col("m")).alias("month"))
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
        "web_meetings_per_month",
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
    for y in out.years(ctx, (fiscal_year_of_month(m) for m in monthly)):
        fy = y.fy
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
        value = total / n if n else None
        projected = None
        if value is not None and not y.complete:
            # The months still to come follow the trend of the complete ones.
            idx = {m: i for i, m in enumerate(fy_months(fy))}
            pts = [(idx[m], float(monthly.get(m, 0))) for m in counted_months]
            rest = [i for i in range(12) if fy_months(fy)[i] not in complete_months]
            projected = (total + sum(trend(pts, rest))) / (n + len(rest))
        reason = None if n else "no complete month with meeting data in this FY yet"
        if n and n < len(complete_months):
            reason = (
                f"mean over {n} of {len(complete_months)} complete months"
                f" (rule meeting_months = {r.meeting_months})"
            )
        y.year(
            value,
            numerator=float(total),
            denominator=float(n),
            projected=projected,
            reason=reason,
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
            if not (first_month and m < first_month):
                y.count_month(m, float(monthly.get(m, 0)), denominator=1.0)
        if n:
            # A department's value is its mean over the same months as the FY's.
            dept = (
                fy_agg.filter(pl.col("month").is_in(counted_months))
                .group_by("dept")
                .agg(pl.col("counted").sum())
                .sort("dept")
            )
            for d, c in zip(dept["dept"], dept["counted"], strict=True):
                y.department(d, c / n, numerator=float(c), denominator=float(n), target_factor=None)
    return out


def paperless_meetings(ctx: Ctx) -> KpiOutput:
    """Meetings held on a paperless meeting system in the FY (and month)."""
    r = ctx.rules
    lf = ctx.scan(PAPERLESS_MEETINGS).filter(pl.col("start_time") < ctx.as_of_end)
    paper = pl.col("paper_also_distributed").fill_null(False) & pl.lit(r.exclude_paper_distributed)
    lf = ctx.attach(lf, None, ctx.local_date("start_time"), "department")
    agg = (
        lf.group_by(pl.col("__day").dt.month_start().alias("m"), "dept")
        .agg(
            pl.len().alias("considered"),
            paper.sum().alias("paper"),
            (~paper).sum().alias("counted"),
        )
        .with_columns(month_str(pl.col("m")).alias("month"), fy_expr(pl.col("m")).alias("fy"))
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        "paperless_meetings",
        [],
        r.show("exclude_paper_distributed"),
        ["paperless_meetings"],
        "meetings held on a paperless meeting system in the FY (a meeting that also"
        " handed out paper does not count)",
        no_data_reason="no paperless-meeting records",
    )
    for y in out.years(ctx, agg["fy"]):
        fa = agg.filter(pl.col("fy") == y.fy)
        total = int(fa["counted"].sum())
        y.count_year(total)
        out.counts[y.fy] = [
            ("meetings considered", int(fa["considered"].sum())),
            ("excluded: paper also handed out", int(fa["paper"].sum())),
            ("meetings counted", total),
        ]
        bm = fa.group_by("month").agg(pl.col("counted").sum())
        counts = dict(zip(bm["month"], bm["counted"], strict=True))
        for m in fy_months_through(y.fy, ctx.as_of):
            # The plan's target is yearly: a month is judged against a twelfth of it.
            y.count_month(m, float(counts.get(m, 0)), target_factor=1 / 12)
        bd = fa.group_by("dept").agg(pl.col("counted").sum()).sort("dept")
        y.count_departments(bd["dept"], bd["counted"])
    return out
