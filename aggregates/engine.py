"""Runs the KPI jobs, attaches the plan's targets and a status to every row, writes the
three KPI files, and renders the table, CSV, JSON and ``--explain`` text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from workstyle.aggregates import kpis
from workstyle.aggregates.fiscal import fiscal_year_of, japanese_label, label
from workstyle.aggregates.kpis import FINAL, Ctx, FyRows, KpiOutput, Row
from workstyle.aggregates.settings import Rules, rules_from
from workstyle.aggregates.targets import KPI_IDS, Plan, load_plan
from workstyle.collector.ingest.reader import DatasetReader
from workstyle.collector.storage import ALL_ORGANISATIONS
from workstyle.schemas.kpi import KPI_FILES, KPI_RESULT
from workstyle.schemas.runs_quarantine import FILTERED
from workstyle.schemas.tables import empty as empty_table

if TYPE_CHECKING:
    from workstyle.collector.ingest.store import Store

_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Result:
    """Every KPI's rows (with targets and statuses) and the jobs' explain data."""

    frame: pl.DataFrame
    outputs: dict[str, KpiOutput]
    plan: Plan
    rules: Rules
    as_of: dt.date

    def yearly(self) -> pl.DataFrame:
        """Whole-organisation rows, one per KPI x fiscal year."""
        return self.frame.filter(pl.col("month").is_null() & pl.col("department").is_null())

    def monthly(self) -> pl.DataFrame:
        """Whole-organisation rows per month."""
        return self.frame.filter(pl.col("month").is_not_null())

    def by_department(self) -> pl.DataFrame:
        """Rows per KPI x fiscal year x department."""
        return self.frame.filter(pl.col("department").is_not_null())


def excluded_pseudonyms(cfg: Any, accounts: tuple[str, ...]) -> frozenset[str]:
    """Pseudonyms of the excluded accounts: 32-hex entries as given, names hashed."""
    if not accounts:
        return frozenset()
    given = {a.lower() for a in accounts if _HEX.match(a.lower())}
    names = [a for a in accounts if not _HEX.match(a.lower())]
    if names:
        from workstyle.collector.pseudonyms import Pseudonymiser, load_key

        key = load_key(cfg.privacy_key, cfg.location, allow_create=cfg.is_example)
        pseudo = Pseudonymiser(key)
        given |= {pseudo.one(n) for n in names}
    return frozenset(given)


def context_from_config(
    cfg: Any,
    as_of: dt.date | None = None,
    fiscal_years: frozenset[int] | None = None,
    basis: str | None = None,
    organisation: str | None = None,
) -> Ctx:
    """A KPI context from a loaded :class:`collector.config.Config`.

    ``organisation``: another organisation of the dataset, or ``all`` of them together;
    default: the configured one (or the whole dataset when none is configured).
    """
    rules = rules_from(cfg.sections.get("kpi"))
    location = cfg.location
    if organisation is not None:
        location = location.with_organisation(organisation)
    return Ctx(
        store=DatasetReader.at(location),
        organisation=None if location.organisation == ALL_ORGANISATIONS else location.organisation,
        rules=rules,
        plan=load_plan(cfg.targets_file),
        as_of=as_of or dt.datetime.now(cfg.tz).date(),
        timezone=cfg.timezone,
        fiscal_years=fiscal_years,
        basis=basis,
        excluded=excluded_pseudonyms(cfg, rules.excluded_accounts),
    )


def compute(
    ctx: Ctx, only: tuple[str, ...] = KPI_IDS, computed_at: dt.datetime | None = None
) -> Result:
    """Run the KPI jobs and return every row with its target and status."""
    outputs = {k: kpis.JOBS[k](ctx) for k in only}
    _add_filtered_counts(ctx, outputs)
    years = {r.fiscal_year for o in outputs.values() for r in o.rows}
    years |= ctx.plan.fiscal_years()
    years = {fy for fy in years if ctx.wanted(fy)}
    rows: list[dict[str, Any]] = []
    computed_at = computed_at or dt.datetime.now(dt.UTC)
    for out in outputs.values():
        have = {r.fiscal_year for r in out.rows if r.month is None and r.department is None}
        for fy in sorted(years - have):
            FyRows(out, fy, ctx.as_of).year(None, reason=f"{out.no_data_reason} for {label(fy)}")
        for r in out.rows:
            rows.append(_finish(r, ctx, computed_at))
    frame = pl.DataFrame(rows, schema=_frame_schema())
    order = {k: i for i, k in enumerate(KPI_IDS)}
    frame = frame.sort(
        pl.col("kpi").replace_strict(order, return_dtype=pl.Int32),
        "fiscal_year",
        pl.col("month").fill_null(""),
        pl.col("department").fill_null(""),
    )
    return Result(frame, outputs, ctx.plan, ctx.rules, ctx.as_of)


def _add_filtered_counts(ctx: Ctx, outputs: dict[str, KpiOutput]) -> None:
    """Rows that sources' where/exclude rules left out of a KPI's tables, per FY.

    They were never stored, so the KPI never saw them; --explain says so, with the rule.
    A row whose date could not be read is shown in every FY.
    """
    counts = ctx.store.scan(FILTERED).collect()
    if counts.height == 0:
        return
    year = pl.col("period").str.slice(0, 4).cast(pl.Int32, strict=False)
    month = pl.col("period").str.slice(5, 2).cast(pl.Int32, strict=False)
    counts = counts.with_columns(pl.when(month >= 4).then(year).otherwise(year - 1).alias("fy"))
    per = counts.group_by("table", "source", "rule", "fy").agg(pl.col("rows").sum())
    per = per.sort("table", "source", "rule", "fy", nulls_last=True)
    for out in outputs.values():
        tables = {t.split()[0] for t in out.tables}
        mine = per.filter(pl.col("table").is_in(list(tables)))
        if mine.height == 0:
            continue
        years = set(out.counts) | {fy for fy in mine["fy"] if fy is not None}
        for fy in sorted(years):
            for _, source, rule, row_fy, rows in mine.rows():
                if row_fy is not None and row_fy != fy:
                    continue
                label = f"filtered at ingest: {source}: {rule}"
                if row_fy is None:
                    label += " (date not read)"
                out.counts.setdefault(fy, []).append((label, int(rows)))


def _frame_schema() -> dict[str, pl.DataType]:
    return dict(pl.from_arrow(empty_table(KPI_RESULT)).schema)


def _finish(r: Row, ctx: Ctx, computed_at: dt.datetime) -> dict[str, Any]:
    entry = ctx.plan.get(r.kpi)
    fy_target = entry.target(r.fiscal_year)
    target = None if fy_target is None or r.target_factor is None else (fy_target * r.target_factor)
    reason = r.reason
    if r.value is None:
        status = "no_data"
    elif target is None:
        status = "no_data"
        why = (
            "the plan's target is for the whole organisation"
            if r.target_factor is None
            else f"no target for {label(r.fiscal_year)} in the plan"
        )
        reason = f"{reason}; {why}" if reason else why
    else:
        status = _status(r, target, entry.direction)
    return {
        "kpi": r.kpi,
        "fiscal_year": r.fiscal_year,
        "label": label(r.fiscal_year),
        "month": r.month,
        "department": r.department,
        "value": r.value,
        "target": target,
        "unit": entry.unit,
        "status": status,
        "basis": r.basis,
        "complete": r.complete,
        "numerator": r.numerator,
        "denominator": r.denominator,
        "reason": reason,
        "as_of": ctx.as_of,
        "computed_at": computed_at,
        "projected": r.projected,
        "direction": entry.direction,
        "name_ja": entry.name_ja,
        "name_en": entry.name_en,
        "organisation": ctx.organisation,
    }


def _status(r: Row, target: float, direction: str) -> str:
    """achieved / on_track / behind for a row that has a value and a target."""

    def meets(v: float) -> bool:
        # A tiny tolerance so that 80.0 computed as 79.99999999 still meets 80.
        return v >= target - 1e-9 if direction == "higher" else v <= target + 1e-9

    assert r.value is not None
    if r.judge == FINAL:
        return "achieved" if meets(r.value) else "behind"
    if r.cumulative and meets(r.value):
        return "achieved"
    projected = r.projected if r.projected is not None else r.value
    return "on_track" if meets(projected) else "behind"


# -- writing ---------------------------------------------------------------------------
def write(store: Store, result: Result) -> dict[str, str]:
    """Write yearly, monthly and by_department Parquet files atomically."""
    parts = {
        "yearly": result.yearly(),
        "monthly": result.monthly(),
        "by_department": result.by_department(),
    }
    paths = {}
    for name in KPI_FILES:
        path = (
            store.location.org_path("kpi", f"{name}.parquet")
            if store.location is not None
            else f"{store.root}/kpi/{name}.parquet"
        )
        store.write_table_atomic(path, parts[name].to_arrow().cast(KPI_RESULT))
        paths[name] = path
    return paths


# -- rendering -------------------------------------------------------------------------
OUTPUT_COLUMNS = (
    "kpi",
    "name_ja",
    "fiscal_year",
    "label",
    "month",
    "department",
    "value",
    "target",
    "unit",
    "status",
    "basis",
    "complete",
    "projected",
    "numerator",
    "denominator",
    "reason",
    "as_of",
    "organisation",
)


def select(result: Result, by: str | None = None, kpi: str | None = None) -> pl.DataFrame:
    """The rows a report shows: yearly, or by month, or by department."""
    frame = {None: result.yearly, "month": result.monthly, "department": result.by_department}[by]()
    if kpi:
        frame = frame.filter(pl.col("kpi") == kpi)
    return frame


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "%":
        return f"{v:,.1f}"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def _width(s: str) -> int:
    """Display width: East Asian wide characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(s))
    return fill + s if right else s + fill


def render_table(frame: pl.DataFrame, as_of: dt.date, plan: Plan | None = None) -> str:
    """An aligned text table with Japanese plan names next to KPI ids."""
    has_month = frame["month"].is_not_null().any()
    has_dept = frame["department"].is_not_null().any()
    header = (
        ["KPI", "指標", "FY"]
        + (["month"] if has_month else [])
        + (["department"] if has_dept else [])
        + ["value", "target", "unit", "status", "note"]
    )
    right = {"value", "target"}
    lines = []
    for row in frame.iter_rows(named=True):
        note = row["reason"] or ""
        if (
            row["status"] in ("on_track", "behind")
            and not row["complete"]
            and row["projected"] is not None
        ):
            note = f"projected {_num(row['projected'], row['unit'])}" + (
                f"; {note}" if note else ""
            )
        if row["basis"]:
            note = note if row["basis"] in note else f"[{row['basis']}] {note}"
        fy = f"{row['label']} ({japanese_label(row['fiscal_year'])})"
        cells = [row["kpi"], row["name_ja"] or "", fy]
        if has_month:
            cells.append(row["month"] or "")
        if has_dept:
            cells.append(row["department"] or "")
        cells += [
            _num(row["value"], row["unit"]),
            _num(row["target"], row["unit"]),
            row["unit"],
            row["status"],
            note.strip(),
        ]
        lines.append(cells)
    widths = [max([_width(h)] + [_width(c[i]) for c in lines]) for i, h in enumerate(header)]
    out = [
        f"KPIs as of {as_of.isoformat()}" + (f" — {plan.name_ja}" if plan and plan.name_ja else "")
    ]
    out.append(
        "  ".join(_pad(h, w, h in right) for h, w in zip(header, widths, strict=True)).rstrip()
    )
    out.append("  ".join("-" * w for w in widths))
    for cells in lines:
        out.append(
            "  ".join(
                _pad(c, w, h in right) for c, w, h in zip(cells, widths, header, strict=True)
            ).rstrip()
        )
    if not lines:
        out.append("(no rows)")
    return "\n".join(out)


def to_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts (dates as ISO strings, fiscal_year as int)."""
    records = []
    for row in frame.select(OUTPUT_COLUMNS).iter_rows(named=True):
        row["fiscal_year"] = int(row["fiscal_year"])
        row["as_of"] = row["as_of"].isoformat()
        records.append(row)
    return records


def render_json(frame: pl.DataFrame) -> str:
    """A JSON list of row objects."""
    return json.dumps(to_records(frame), ensure_ascii=False, indent=2)


def render_csv(frame: pl.DataFrame) -> str:
    """CSV text; the caller writes it as UTF-8 with a BOM so that Excel reads it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(OUTPUT_COLUMNS)
    for rec in to_records(frame):
        writer.writerow(["" if rec[c] is None else rec[c] for c in OUTPUT_COLUMNS])
    return buf.getvalue()


def render_explain(result: Result, kpi: str, fiscal_year: int | None) -> str:
    """The rule, inputs and result behind one KPI, so a number can be defended."""
    out = result.outputs[kpi]
    entry = result.plan.get(kpi)
    yearly = result.yearly().filter(pl.col("kpi") == kpi)
    years = [fiscal_year] if fiscal_year is not None else sorted(set(yearly["fiscal_year"]))
    lines = [
        f"{kpi} — {entry.name_ja} ({entry.name_en})",
        f"as of: {result.as_of.isoformat()}",
        f"definition: {out.definition}",
        f"unit: {entry.unit}; better: {entry.direction}",
        "counting rules:",
    ]
    lines += [f"  {rule}" for rule in out.rules]
    lines.append(f"source tables: {', '.join(out.tables)}")
    if entry.baseline:
        lines.append("plan baseline: " + ", ".join(f"{k} {v}" for k, v in entry.baseline.items()))
    for fy in years:
        lines.append("")
        lines.append(f"{label(fy)} ({japanese_label(fy)}, FY{fy}):")
        for name, value in out.counts.get(fy, [("input rows", 0)]):
            shown = f"{value:,}" if isinstance(value, int) else str(value)
            lines.append(f"  {name:<60} {shown}")
        row = yearly.filter(pl.col("fiscal_year") == fy)
        if row.height == 0:
            lines.append("  (not computed: outside the as-of date)")
            continue
        rec = row.row(0, named=True)
        nd = ""
        if rec["numerator"] is not None and rec["denominator"] is not None:
            nd = f" = {rec['numerator']:,.0f} / {rec['denominator']:,.0f}"
            if entry.unit == "%":
                nd += " x 100"
        lines.append(f"  value: {_num(rec['value'], entry.unit)} {entry.unit}{nd}")
        lines.append(
            f"  target: {_num(rec['target'], entry.unit)}; status: {rec['status']}"
            + (
                ""
                if rec["complete"]
                else f"; FY in progress, projected {_num(rec['projected'], entry.unit)}"
            )
        )
        if rec["reason"]:
            lines.append(f"  note: {rec['reason']}")
    return "\n".join(lines)


def default_years_note(result: Result) -> str:
    """One line naming the fiscal years shown."""
    years = sorted(set(result.yearly()["fiscal_year"]))
    return "fiscal years: " + ", ".join(label(y) for y in years) if years else ""


def fy_of(day: dt.date) -> int:
    """Re-exported for the CLI: the fiscal year of a date."""
    return fiscal_year_of(day)
