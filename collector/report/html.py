"""The KPI report: one self-contained HTML file (inline SVG charts and CSS, no script, no
fetches) that policy staff can mail or print, built from the KPI tables alone.

The report never reads the raw dataset or a source: its inputs are the three KPI tables
(``schemas.kpi.KPI_RESULT``), the plan's baselines (``aggregates.targets``) and the
per-source state (``collector.status``) for the data's freshness.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.parquet as pq

from workstyle.aggregates.fiscal import fiscal_year_of, fy_months, japanese_label, label
from workstyle.aggregates.targets import KPI_IDS, Plan
from workstyle.collector import storage
from workstyle.collector.errors import CollectorError
from workstyle.collector.report import charts
from workstyle.collector.report.charts import fmt_number
from workstyle.collector.storage import DataLocation
from workstyle.schemas.kpi import KPI_FILES, KPI_RESULT
from workstyle.schemas.tables import empty as empty_table

STATUS_JA = {
    "achieved": "達成",
    "on_track": "順調",
    "behind": "遅れ",
    "no_data": "データなし",
}
STATUS_EN = {
    "achieved": "achieved",
    "on_track": "on track",
    "behind": "behind",
    "no_data": "no data",
}
DIRECTION = {"higher": "高いほど良い higher is better", "lower": "低いほど良い lower is better"}
#: Japanese counters for the plan's units (a plan that names its own ``unit_ja`` wins).
UNIT_JA = {
    "meetings/month": "件/月",
    "meetings": "回",
    "people": "人",
    "%": "%",
    "terminals": "台",
    "sheets": "枚",
}
BASIS_JA = {
    "print_jobs": "印刷ログ",
    "paper_purchases": "用紙購入記録",
    "printer_counters": "プリンタカウンタ",
}


@dataclass
class ReportData:
    """Everything one report shows, read from the KPI tables and the state."""

    yearly: pl.DataFrame
    monthly: pl.DataFrame
    by_department: pl.DataFrame
    as_of: dt.date
    focus_fy: int
    generated_at: dt.datetime
    computed_at: dt.datetime | None = None
    plan: Plan | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))

    def kpis(self) -> list[str]:
        """KPI ids in the plan's order, then any others the tables hold."""
        present = list(dict.fromkeys(self.yearly["kpi"].to_list()))
        return [k for k in KPI_IDS if k in present] + [k for k in present if k not in KPI_IDS]

    def rows(self, frame: pl.DataFrame, kpi: str, fy: int | None = None) -> list[dict[str, Any]]:
        """One KPI's rows (optionally of one fiscal year) as dicts, in table order."""
        f = frame.filter(pl.col("kpi") == kpi)
        if fy is not None:
            f = f.filter(pl.col("fiscal_year") == fy)
        return f.to_dicts()


# -- loading ------------------------------------------------------------------------------
def read_tables(data_dir: Path | DataLocation) -> dict[str, pl.DataFrame]:
    """The three KPI files with the current schema (columns a file lacks read as null)."""
    location = data_dir if isinstance(data_dir, DataLocation) else storage.local(data_dir)
    out = {}
    for name in KPI_FILES:
        path = location.org_path("kpi", f"{name}.parquet")
        if not location.exists(path):
            raise CollectorError(
                f"{location.display(path)}: no KPI table; run `collector run` first"
                " (it writes the KPI tables)"
            )
        out[name] = conform(pl.from_arrow(pq.read_table(path, filesystem=location.fs)))
    return out


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """A KPI frame with exactly KPI_RESULT's columns, in order, missing ones null."""
    schema = pl.from_arrow(empty_table(KPI_RESULT)).schema
    cols = [
        pl.col(n).cast(t) if n in frame.columns else pl.lit(None, dtype=t).alias(n)
        for n, t in schema.items()
    ]
    return frame.select(cols)


def focus_year(yearly: pl.DataFrame, monthly: pl.DataFrame, as_of: dt.date) -> int:
    """The year in progress on the as-of date if it has data, else the latest that has."""
    have = set(monthly.filter(pl.col("value").is_not_null())["fiscal_year"].to_list())
    have |= set(yearly.filter(pl.col("value").is_not_null())["fiscal_year"].to_list())
    current = fiscal_year_of(as_of)
    earlier = [fy for fy in have if fy <= current]
    return current if current in have or not earlier else max(earlier)


# -- HTML ---------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def unit_ja(unit: str, plan: Plan | None, kpi: str) -> str:
    """The unit as the plan writes it in Japanese, with the English unit alongside."""
    entry = plan.kpis.get(kpi) if plan else None
    ja = getattr(entry, "unit_ja", None) or UNIT_JA.get(unit)
    return f"{ja} ({unit})" if ja and ja != unit else unit


def _when(ts: dt.datetime | None, tz: ZoneInfo) -> str:
    if ts is None:
        return "–"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _num_cell(value: float | None, unit: str, cls: str = "num") -> str:
    raw = "" if value is None else repr(float(value))
    return f'<td class="{cls}" data-value="{raw}">{_e(fmt_number(value, unit))}</td>'


def _badge(status: str) -> str:
    return (
        f'<span class="st st-{_e(status)}" data-status="{_e(status)}">'
        f"{_e(STATUS_JA.get(status, status))} <small>{_e(STATUS_EN.get(status, status))}</small>"
        "</span>"
    )


def _baseline(plan: Plan | None, kpi: str, yearly: list[dict[str, Any]]) -> charts.Baseline | None:
    """The plan's starting point: a value and when, or the baseline year's own value."""
    entry = plan.kpis.get(kpi) if plan else None
    if entry is None:
        return None
    b = entry.baseline
    if isinstance(b, dict) and isinstance(b.get("value"), int | float):
        return charts.Baseline(float(b["value"]), str(b.get("when", "")))
    if entry.baseline_fy is not None:
        row = next((r for r in yearly if r["fiscal_year"] == entry.baseline_fy), None)
        value = row["value"] if row and row["value"] is not None else 100.0
        return charts.Baseline(float(value), f"{label(entry.baseline_fy)} = {value:g}", True)
    return None


def _baseline_text(plan: Plan | None, kpi: str, unit: str) -> str:
    entry = plan.kpis.get(kpi) if plan else None
    if entry is None:
        return ""
    b = entry.baseline
    if isinstance(b, dict) and "value" in b:
        note = b.get("note") or b.get("when") or ""
        return f"基準値 baseline: {fmt_number(float(b['value']), unit)} ({_e(note)})"
    if entry.baseline_fy is not None:
        fy = entry.baseline_fy
        return f"基準年度 baseline year: {label(fy)} ({japanese_label(fy)}) = 100"
    return ""


def _monthly_projection(
    yearly_row: dict[str, Any] | None, month_rows: list[dict[str, Any]]
) -> float | None:
    """The year's projection on the monthly scale, for a year still in progress.

    A per-month series (paperless meetings in a month) has per-month targets that are
    the year's target times a factor; the same factor puts the year's projection on it.
    """
    if not yearly_row or yearly_row["complete"] or yearly_row["projected"] is None:
        return None
    year_target = yearly_row["target"]
    month_target = next((r["target"] for r in month_rows if r["target"] is not None), None)
    if year_target and month_target is not None:
        return yearly_row["projected"] * month_target / year_target
    return yearly_row["projected"] if month_target is None and year_target is None else None


CSS = """
:root{--ink:#1a1a1a;--muted:#5f6368;--line:#d0d4d9;--bg:#f6f7f9}
*{box-sizing:border-box}
html{font-family:%(font)s;color:var(--ink);font-size:14px;line-height:1.5}
body{margin:0 auto;padding:24px 28px;max-width:1180px;background:#fff}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.25rem;margin:0 0 2px}
h3{font-size:1rem;margin:18px 0 6px}
.sub,.en,.muted{color:var(--muted)}
code{font-family:ui-monospace,"DejaVu Sans Mono",Consolas,monospace;font-size:.85em;
background:var(--bg);padding:1px 5px;border-radius:3px;color:#333}
table{border-collapse:collapse;margin:6px 0 10px;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0}
dl.meta dt{color:var(--muted)} dl.meta dd{margin:0}
.st{display:inline-block;padding:0 6px;border-radius:3px;font-size:.85em;white-space:nowrap;
color:#fff}
.st small{font-size:.8em;opacity:.9}
.st-achieved{background:#1e7b34}.st-on_track{background:#1a5fb4}.st-behind{background:#c01c28}
.st-no_data{background:#77767b}
.cell .t{display:block;color:var(--muted);font-size:.8em}
section{margin:22px 0;padding-top:12px;border-top:2px solid var(--ink)}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:14px}
figure{margin:0}
figcaption{font-size:.85rem;color:var(--muted);margin-bottom:2px}
svg.chart{width:100%%;height:auto;display:block}
.dept{display:grid;grid-template-columns:1.2fr 1fr;gap:14px;align-items:start}
.note{font-size:.85rem;color:var(--muted)}
.basis{background:#fff8e1;border-left:4px solid #e5a50a;padding:4px 10px;margin:6px 0}
ul.nodata{margin:4px 0 0 18px;padding:0}
@media screen and (max-width:800px){.charts,.dept{grid-template-columns:1fr}}
@page{size:A4;margin:12mm}
@media print{body{padding:0;max-width:none;font-size:10px}
th,td{padding:1px 5px}h3{margin:8px 0 4px}section{margin:0 0 10px}
.charts,.dept{gap:8px}.dept svg.chart{max-height:300px}
section.kpi{break-before:page}figure,table,tr{break-inside:avoid}}
""" % {"font": charts.FONT_STACK}  # noqa: UP031 - CSS is full of braces


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (UTF-8, everything inline)."""
    plan = data.plan
    title = "KPI進捗報告 KPI progress report"
    plan_name = (plan.name_ja if plan and plan.name_ja else "") or ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ja">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}{' — ' + _e(plan_name) if plan_name else ''}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_e(title)}</h1>",
    ]
    if plan_name:
        parts.append(f'<p class="sub">{_e(plan_name)} — {_e(plan.name_en if plan else "")}</p>')
    parts.append(
        f'<dl class="meta" id="meta">'
        f'<dt>基準日 as of</dt><dd data-as-of="{data.as_of.isoformat()}">'
        f"{data.as_of.isoformat()} (data after this day is not counted)</dd>"
        f"<dt>重点年度 focus year</dt><dd>{label(data.focus_fy)} ({japanese_label(data.focus_fy)},"
        f" FY{data.focus_fy}) — monthly series and department breakdown</dd>"
        f'<dt>作成日時 generated</dt><dd id="generated-at">{_when(data.generated_at, data.tz)}</dd>'
        f"<dt>KPI算出日時 KPIs computed</dt><dd>{_when(data.computed_at, data.tz)}</dd>"
        "</dl>"
    )
    parts.append("</header>")
    parts.append(_summary(data))
    parts.append(_freshness(data))
    for kpi in data.kpis():
        parts.append(_kpi_section(data, kpi))
    parts.append(
        '<footer class="note"><p>workstyle collector — computed from the KPI tables'
        " (kpi/yearly, monthly, by_department). Status: 達成 achieved; 順調 on track (a year"
        " in progress whose straight-line projection reaches the target); 遅れ behind;"
        " データなし no data (the reason is given).</p></footer>"
    )
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _years(data: ReportData) -> list[int]:
    return sorted(set(data.yearly["fiscal_year"].to_list()))


def _summary(data: ReportData) -> str:
    years = _years(data)
    head = "".join(
        f'<th class="num" data-fy="{fy}">{label(fy)}<br><small>{japanese_label(fy)}</small></th>'
        for fy in years
    )
    rows = []
    for kpi in data.kpis():
        yearly = {r["fiscal_year"]: r for r in data.rows(data.yearly, kpi)}
        first = next(iter(yearly.values()))
        unit = first["unit"]
        cells = []
        for fy in years:
            r = yearly.get(fy)
            if r is None:
                cells.append('<td class="num">–</td>')
                continue
            raw = "" if r["value"] is None else repr(float(r["value"]))
            target = fmt_number(r["target"], unit) if r["target"] is not None else "–"
            proj = ""
            if not r["complete"] and r["projected"] is not None and r["value"] is not None:
                proj = f'<span class="t">見込み {_e(fmt_number(r["projected"], unit))}</span>'
            cells.append(
                f'<td class="num cell" data-fy="{fy}" data-value="{raw}">'
                f"{_e(fmt_number(r['value'], unit))}"
                f'<span class="t">目標 {_e(target)}</span>{proj}{_badge(r["status"])}</td>'
            )
        rows.append(
            f'<tr data-kpi="{_e(kpi)}"><td><a href="#kpi-{_e(kpi)}">{_e(first["name_ja"] or kpi)}'
            f"</a><br><code>{_e(kpi)}</code></td>"
            f"<td>{_e(unit_ja(unit, data.plan, kpi))}</td>{''.join(cells)}</tr>"
        )
    return (
        '<section id="summary"><h2>状況一覧 <span class="en">Status by fiscal year</span></h2>'
        '<table class="status"><thead><tr><th>指標 KPI</th><th>単位 unit</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _freshness(data: ReportData) -> str:
    rows = []
    for s in data.sources:
        last = s.get("last_run") or {}
        outcome = last.get("outcome") or "never"
        rows.append(
            f'<tr data-source="{_e(s["source"])}"><td><code>{_e(s["source"])}</code></td>'
            f"<td>{_e(s.get('kind'))}{'' if s.get('enabled', True) else ' (disabled)'}</td>"
            f'<td class="num" data-newest-event="{_e(s.get("newest_event") or "")}">'
            f"{_when(s.get('newest_event'), data.tz)}</td>"
            f'<td class="num">{_when(s.get("last_success_at"), data.tz)}</td>'
            f"<td>{_e(outcome)}</td></tr>"
        )
    sources = (
        '<table class="sources"><thead><tr><th>ソース source</th><th>種類 kind</th>'
        '<th class="num">最新イベント newest event</th><th class="num">最終成功 last success'
        "</th><th>直近の実行 last run</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="note">No source state (no configured source has run yet).</p>'
    )
    nodata = []
    for r in data.yearly.filter(pl.col("status") == "no_data").to_dicts():
        nodata.append(
            f'<li data-kpi="{_e(r["kpi"])}" data-fy="{r["fiscal_year"]}">'
            f"{_e(r['name_ja'] or r['kpi'])} <code>{_e(r['kpi'])}</code> {_e(r['label'])}:"
            f" {_e(r['reason'] or 'no reason recorded')}</li>"
        )
    bases = []
    for kpi in data.kpis():
        for r in data.rows(data.yearly, kpi):
            if r["basis"] and r["value"] is not None:
                bases.append(
                    f"<li>{_e(r['name_ja'] or kpi)} <code>{_e(kpi)}</code> {_e(r['label'])}:"
                    f" {_e(BASIS_JA.get(r['basis'], ''))} <code>{_e(r['basis'])}</code>"
                    f" — {_e(r['reason'] or '')}</li>"
                )
    return (
        '<section id="freshness"><h2>データの鮮度と基準 <span class="en">Data freshness and'
        " basis</span></h2><h3>ソースごとの最新データ Newest event per source</h3>"
        f"{sources}"
        + (
            "<h3>比較の基準 Basis of comparison</h3>"
            f'<ul class="nodata" id="bases">{"".join(bases)}</ul>'
            if bases
            else ""
        )
        + "<h3>データなしの指標 KPIs with no data, and why</h3>"
        + (
            f'<ul class="nodata" id="no-data">{"".join(nodata)}</ul>'
            if nodata
            else '<p class="note" id="no-data">Every KPI has data in every year shown.</p>'
        )
        + "</section>"
    )


def _kpi_section(data: ReportData, kpi: str) -> str:
    yearly = data.rows(data.yearly, kpi)
    first = yearly[0]
    unit, name_ja, name_en = first["unit"], first["name_ja"] or kpi, first["name_en"] or ""
    direction = first["direction"] or ""
    fy = data.focus_fy
    fy_text = f"{label(fy)} ({japanese_label(fy)})"
    baseline = _baseline(data.plan, kpi, yearly)
    months = fy_months(fy)
    month_rows = data.rows(data.monthly, kpi, fy)
    dept_rows = sorted(
        data.rows(data.by_department, kpi, fy),
        key=lambda r: (r["value"] is None, -(r["value"] or 0), r["department"] or ""),
    )
    focus_row = next((r for r in yearly if r["fiscal_year"] == fy), None)
    projection = _monthly_projection(focus_row, month_rows)

    meta = [f"単位 unit: {_e(unit_ja(unit, data.plan, kpi))}"]
    if direction in DIRECTION:
        meta.append(DIRECTION[direction])
    base_text = _baseline_text(data.plan, kpi, unit)
    if base_text:
        meta.append(base_text)
    out = [
        f'<section class="kpi" id="kpi-{_e(kpi)}" data-kpi="{_e(kpi)}">',
        f'<h2>{_e(name_ja)} <code>{_e(kpi)}</code></h2><p class="en">{_e(name_en)}</p>',
        f'<p class="note">{" · ".join(meta)}</p>',
    ]
    basis_row = focus_row if focus_row and focus_row["basis"] else None
    if basis_row:
        out.append(
            f'<p class="basis" data-basis="{_e(basis_row["basis"])}">比較の基準 basis: '
            f"{_e(BASIS_JA.get(basis_row['basis'], ''))} <code>{_e(basis_row['basis'])}</code>"
            f" — {_e(basis_row['reason'] or '')}</p>"
        )
    month_note = next((r["reason"] for r in month_rows if r["reason"]), None)
    out.append('<div class="charts">')
    out.append(
        '<figure data-chart="yearly"><figcaption>年度別 実績と目標 — actual vs target by fiscal'
        f" year</figcaption>{charts.yearly_chart(kpi, yearly, unit, baseline)}</figure>"
    )
    out.append(
        f'<figure data-chart="monthly"><figcaption>{_e(fy_text)} 月別推移と見込み — monthly'
        f"{' (' + _e(month_note) + ')' if month_note else ''}, with projection</figcaption>"
        f"{charts.monthly_chart(kpi, label(fy), months, month_rows, unit, projection)}</figure>"
    )
    out.append("</div>")
    out.append(_yearly_table(yearly, unit))
    out.append(_monthly_table(kpi, months, month_rows, unit, projection))
    out.append(
        f"<h3>部局別 by department — {_e(fy_text)}</h3>"
        '<div class="dept"><figure data-chart="department">'
        f"{charts.department_chart(kpi, label(fy), dept_rows, unit)}</figure>"
        f"{_dept_table(dept_rows, unit)}</div>"
    )
    out.append("</section>")
    return "\n".join(out)


def _yearly_table(rows: Iterable[dict[str, Any]], unit: str) -> str:
    body = []
    for r in rows:
        projected = r["projected"] if not r["complete"] and r["value"] is not None else None
        period = "確定 final" if r["complete"] else "途中 in progress"
        body.append(
            f'<tr data-fy="{r["fiscal_year"]}"><td>{_e(r["label"])}'
            f" <small>{japanese_label(r['fiscal_year'])}</small></td>"
            f"{_num_cell(r['value'], unit, 'num value')}"
            f"{_num_cell(r['target'], unit, 'num target')}"
            f"{_num_cell(projected, unit, 'num projected')}"
            f"<td>{_badge(r['status'])}</td><td>{_e(period)}</td>"
            f'<td class="note">{_e(r["reason"] or "")}</td></tr>'
        )
    return (
        '<table class="yearly"><thead><tr><th>年度 FY</th><th class="num">実績 value</th>'
        '<th class="num">目標 target</th><th class="num">見込み projected</th>'
        "<th>状況 status</th><th>期間 period</th><th>備考 note</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _monthly_table(
    kpi: str, months: list[str], rows: list[dict[str, Any]], unit: str, projection: float | None
) -> str:
    by_month = {r["month"]: r for r in rows}
    head = "".join(f'<th class="num">{m[5:]}</th>' for m in months)
    values = "".join(
        _num_cell(by_month[m]["value"], unit) if m in by_month else '<td class="num">–</td>'
        for m in months
    )
    targets = "".join(
        _num_cell(by_month[m]["target"], unit) if m in by_month else '<td class="num">–</td>'
        for m in months
    )
    proj = (
        f'<p class="note">年度末見込み projected at the year end: '
        f'<span class="projection" data-value="{projection!r}">'
        f"{_e(fmt_number(projection, unit))}</span> (straight line from the months so far)</p>"
        if projection is not None
        else ""
    )
    return (
        f'<table class="monthly" data-kpi="{_e(kpi)}"><thead><tr><th>月 month</th>{head}</tr>'
        f'</thead><tbody><tr class="value"><th>実績</th>{values}</tr>'
        f'<tr class="target"><th>目標</th>{targets}</tr></tbody></table>{proj}'
    )


def _dept_table(rows: list[dict[str, Any]], unit: str) -> str:
    if not rows:
        return '<p class="note">No department rows for this year.</p>'
    with_target = any(r["target"] is not None for r in rows)
    body = []
    for r in rows:
        extra = (
            f"{_num_cell(r['target'], unit, 'num target')}<td>{_badge(r['status'])}</td>"
            if with_target
            else ""
        )
        body.append(
            f'<tr data-department="{_e(r["department"])}"><td>{_e(r["department"])}</td>'
            f"{_num_cell(r['value'], unit, 'num value')}{extra}</tr>"
        )
    reasons = {r["reason"] for r in rows if r["reason"]}
    note = (
        f'<p class="note">{_e("; ".join(sorted(reasons)))}</p>'
        if not with_target and reasons
        else ""
    )
    head = '<th class="num">目標 target</th><th>状況 status</th>' if with_target else ""
    return (
        '<div><table class="department"><thead><tr><th>部局 department</th>'
        f'<th class="num">実績 value</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
        f"</table>{note}</div>"
    )
