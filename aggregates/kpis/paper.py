"""The paper KPI: sheets in the FY against the baseline FY, on one basis, same period.

Three bases, never mixed: ``print_jobs`` (sheets printed, from print logs),
``paper_purchases`` (sheets bought) and ``printer_counters`` (page deltas of printer
SNMP counters). Each is reduced to the same daily frame (day, department, quantity
and flags), and the comparison with the baseline FY is the same for all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from workstyle.aggregates.fiscal import (
    fy_complete,
    fy_months,
    fy_months_through,
    fy_order,
    label,
    month_complete,
)
from workstyle.aggregates.kpis.base import ENGINE, Ctx, KpiOutput, fy_expr, month_str, pct
from workstyle.schemas.printer_counters import PRINTER_COUNTER_DELTAS
from workstyle.schemas.tables import PAPER_PURCHASES, PRINT_JOBS, TableSpec

COUNTERS = "printer_counters"
#: Counter units that count pages; any other unit (lines, meters, hours) is not paper.
SHEETS, IMPRESSIONS = "sheets", "impressions"

#: How the counters basis treats units, as ``--explain`` prints it.
COUNTER_RULE = (
    "counter units: sheets count as sheets; impressions are not converted (duplex"
    " unknown), so the basis is then reported as impressions; other units are not paper"
)
#: Extra daily columns of the counters basis; zero on the other bases.
_COUNTER_COLUMNS = ("impressions", "n_impressions", "n_sheets", "lower", "ignored")


@dataclass(frozen=True)
class _Basis:
    """Where one basis reads from, and how ``--explain`` names its records."""

    table: TableSpec
    department: str
    records: str


_BASES = {
    "print_jobs": _Basis(PRINT_JOBS, "staff_directory (person -> department)", "records"),
    "paper_purchases": _Basis(PAPER_PURCHASES, "(department from the purchase record)", "records"),
    COUNTERS: _Basis(
        PRINTER_COUNTER_DELTAS,
        "(no department: a printer counter knows its device, not a department)",
        "deltas",
    ),
}


def paper_vs_r3(ctx: Ctx) -> KpiOutput:
    """Sheets in the FY / sheets in the baseline FY x 100, on one basis, same period."""
    r = ctx.rules
    basis = ctx.basis or r.paper_basis
    source = _BASES[basis]
    entry = ctx.plan.get("paper_vs_r3")
    base_fy = entry.baseline_fy or ctx.plan.first_fy
    daily = _daily(ctx, basis, base_fy) if base_fy is not None else None
    shown = _counter_basis(daily) if basis == COUNTERS and daily is not None else basis
    out = KpiOutput(
        "paper_vs_r3",
        [],
        r.show("paper_basis", "paper_same_period")
        + ([COUNTER_RULE] if basis == COUNTERS else [])
        + [
            f"basis used = {shown}",
            f"baseline FY = {label(base_fy) if base_fy else 'none'} (targets file)",
        ],
        [source.table.name, source.department],
        "sheets used in the FY / sheets used in the baseline FY x 100 on one basis; a FY in"
        " progress is compared with the same period of the baseline FY",
        no_data_reason=f"no {source.table.name} records",
        basis=shown,
    )
    if daily is None:
        out.no_data_reason = "the targets file names no baseline_fy (or plan first_fy)"
        return out
    base = daily.filter(pl.col("fy") == base_fy)
    for y in out.years(ctx, daily["fy"]):
        fy = y.fy
        fa = daily.filter(pl.col("fy") == fy)
        if basis == COUNTERS:
            y.basis = _counter_basis(pl.concat([fa, base]))
        unit = _unit(basis, y.basis)
        cond, what = _period(ctx, fy)
        cur = fa.filter(cond)
        ref = base.filter(cond)
        num, den = float(cur["sheets"].sum()), float(ref["sheets"].sum())
        # A counter basis that sums two units shows how much of each it summed.
        split = unit == "pages"
        out.counts[fy] = [
            ("compared period", what),
            (f"{source.records} in the FY ({basis})", int(fa["records"].sum())),
            (f"{unit} in the FY's compared period", int(num)),
            *(_unit_split(cur) if split else []),
            (f"{unit} in {label(base_fy)}'s same period", int(den)),
            *(_unit_split(ref) if split else []),
        ]
        if basis == COUNTERS:
            out.counts[fy] += [
                ("reset deltas (lower bounds) in the compared period", int(cur["lower"].sum())),
                (
                    f"reset deltas (lower bounds) in {label(base_fy)}'s same period",
                    int(ref["lower"].sum()),
                ),
                ("deltas in other units (not pages, not counted)", int(fa["ignored"].sum())),
            ]
        else:
            out.counts[fy].append(
                (
                    "records with sheets as an upper bound (copies/duplex unknown)",
                    int(cur["upper"].sum()),
                )
            )
        reason = f"{y.basis}: {label(fy)} vs {label(base_fy)}, {what}"
        if fy == base_fy:
            reason = f"baseline year (= 100 by definition); {reason}"
        value: float | None = None
        if what == "no complete month":
            reason = f"no complete month of {label(fy)} yet (paper_same_period = complete_months)"
        elif ref.height == 0 or den == 0:
            reason = (
                f"no {label(base_fy)} ({base_fy}) {unit} on basis {y.basis} in the"
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


def _daily(ctx: Ctx, basis: str, base_fy: int) -> pl.DataFrame:
    """The basis reduced to one row per local day and department, with its FY and order."""
    aggs: list[pl.Expr] = []
    if basis == "print_jobs":
        lf = ctx.scan(PRINT_JOBS, base_fy).filter(pl.col("printed_at") < ctx.as_of_end)
        lf = ctx.attach(lf, "person", ctx.local_date("printed_at"), "department")
        upper = pl.col("sheets_upper_bound").fill_null(False)
    elif basis == "paper_purchases":
        lf = ctx.scan(PAPER_PURCHASES, base_fy).filter(pl.col("purchased_on") <= ctx.as_of)
        lf = ctx.attach(lf, None, pl.col("purchased_on"), "department")
        upper = pl.lit(False)
    else:
        # A delta belongs to the local day (and so the FY) in which its interval ends.
        lf = ctx.scan(PRINTER_COUNTER_DELTAS, base_fy).filter(
            pl.col("interval_end") < ctx.as_of_end
        )
        lf = ctx.attach(lf, None, ctx.local_date("interval_end"), None)
        unit = pl.col("unit")
        is_sheets, is_impressions = unit == SHEETS, unit == IMPRESSIONS
        paper = (is_sheets | is_impressions).fill_null(False)
        lf = lf.with_columns(pl.when(paper).then(pl.col("pages")).otherwise(0).alias("sheets"))
        upper = pl.lit(False)
        aggs = [
            pl.col("pages").filter(is_impressions).sum().alias("impressions"),
            is_impressions.fill_null(False).sum().alias("n_impressions"),
            is_sheets.fill_null(False).sum().alias("n_sheets"),
            # A reset's delta counts only the pages since the reset: a lower bound.
            (paper & (pl.col("kind") == "reset")).sum().alias("lower"),
            (~paper).sum().alias("ignored"),
        ]
    daily = (
        lf.group_by("__day", "dept")
        .agg(
            pl.col("sheets").sum(),
            pl.len().alias("records"),
            upper.sum().alias("upper"),
            *aggs,
        )
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
    if basis != COUNTERS:
        daily = daily.with_columns(pl.lit(0).alias(c) for c in _COUNTER_COLUMNS)
    return daily


def _counter_basis(daily: pl.DataFrame) -> str:
    """The counters basis named by the units it sums: impressions are never sheets."""
    impressions = bool(daily["n_impressions"].sum())
    sheets = bool(daily["n_sheets"].sum())
    if impressions and sheets:
        return f"{COUNTERS} (impressions and sheets)"
    return f"{COUNTERS} (impressions)" if impressions else COUNTERS


def _unit(basis: str, shown: str | None) -> str:
    """What the basis's quantity is called in reasons and ``--explain``."""
    if basis == "print_jobs":
        return "sheets"
    if basis == "paper_purchases":
        return "sheets purchased"
    if shown == COUNTERS:
        return "sheets"
    return "impressions" if shown == f"{COUNTERS} (impressions)" else "pages"


def _unit_split(frame: pl.DataFrame) -> list[tuple[str, int]]:
    """Counter pages by unit, for ``--explain``."""
    impressions = int(frame["impressions"].sum())
    return [
        ("  of them impressions (a duplex sheet counts 2)", impressions),
        ("  of them sheets", int(frame["sheets"].sum()) - impressions),
    ]


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
