"""The paper KPI: sheets in the FY against the baseline FY, on one basis, same period."""

from __future__ import annotations

import polars as pl

from aggregates.fiscal import (
    fy_complete,
    fy_months,
    fy_months_through,
    fy_order,
    label,
    month_complete,
)
from aggregates.kpis.base import ENGINE, Ctx, KpiOutput, fy_expr, month_str, pct
from schemas.tables import PAPER_PURCHASES, PRINT_JOBS


def paper_vs_r3(ctx: Ctx) -> KpiOutput:
    """Sheets in the FY / sheets in the baseline FY x 100, on one basis, same period."""
    r = ctx.rules
    basis = ctx.basis or r.paper_basis
    entry = ctx.plan.get("paper_vs_r3")
    base_fy = entry.baseline_fy or ctx.plan.first_fy
    out = KpiOutput(
        "paper_vs_r3",
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
        lf = ctx.attach(lf, "person", ctx.local_date("printed_at"), "department")
        upper = pl.col("sheets_upper_bound").fill_null(False)
    else:
        lf = ctx.scan(PAPER_PURCHASES, base_fy).filter(pl.col("purchased_on") <= ctx.as_of)
        lf = ctx.attach(lf, None, pl.col("purchased_on"), "department")
        upper = pl.lit(False)
    daily = (
        lf.group_by("__day", "dept")
        .agg(pl.col("sheets").sum(), pl.len().alias("records"), upper.sum().alias("upper"))
        .with_columns(
            fy_expr(pl.col("__day")).alias("fy"),
            month_str(pl.col("__day")).alias("month"),
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
    for y in out.years(ctx, daily["fy"]):
        fy = y.fy
        fa = daily.filter(pl.col("fy") == fy)
        cond, what = _period(ctx, fy)
        cur = fa.filter(cond)
        ref = base.filter(cond)
        num, den = float(cur["sheets"].sum()), float(ref["sheets"].sum())
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
            value = pct(num, den)
        # A ratio to the baseline is its own projection: nothing accumulates.
        y.year(
            value,
            numerator=num,
            denominator=den if value is not None else None,
            projected=value,
            reason=reason,
        )
        for m in fy_months_through(fy, ctx.as_of):
            # The month in progress is compared through the as-of day of the month.
            mcond = (pl.col("order") // 100) == _month_idx(m)
            if not month_complete(m, ctx.as_of):
                mcond = mcond & (pl.col("order") % 100 <= ctx.as_of.day)
            mn = float(fa.filter(mcond)["sheets"].sum())
            md = float(base.filter(mcond)["sheets"].sum())
            mv = pct(mn, md)
            y.month(
                m,
                mv,
                numerator=mn,
                denominator=md if md else None,
                projected=mv,
                reason=None if md else f"no {label(base_fy)} {unit} in the same month",
            )
        if value is None and what == "no complete month":
            continue
        cd = cur.group_by("dept").agg(pl.col("sheets").sum())
        rd = ref.group_by("dept").agg(pl.col("sheets").sum().alias("base"))
        for d, n_, b in cd.join(rd, on="dept", how="full", coalesce=True).sort("dept").iter_rows():
            n_, b = float(n_ or 0), float(b or 0)
            dv = pct(n_, b)
            y.department(
                d,
                dv,
                numerator=n_,
                denominator=b or None,
                projected=dv,
                reason=None if b else f"no {label(base_fy)} {unit} for this department",
            )
    return out


def _period(ctx: Ctx, fy: int) -> tuple[pl.Expr, str]:
    """The part of any FY that is compared (for a FY in progress), and its description."""
    if fy_complete(fy, ctx.as_of):
        return pl.lit(True), "whole FY"
    if ctx.rules.paper_same_period == "days":
        o = fy_order(ctx.as_of)
        return pl.col("order") <= o[0] * 100 + o[1], f"through {ctx.as_of:%m-%d}"
    n = sum(month_complete(m, ctx.as_of) for m in fy_months(fy))
    names = [m[5:] for m in fy_months(fy)[:n]]
    idx = (pl.col("order") // 100) < n
    return idx, ("complete months " + ",".join(names)) if n else "no complete month"


def _month_idx(month: str) -> int:
    """'YYYY-MM' -> months since April (0..11)."""
    return (int(month[5:]) - 4) % 12
