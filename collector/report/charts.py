"""The report's charts: matplotlib figures rendered to inline SVG with text kept as text.

Every mark a reader counts (a bar, a target tick, a monthly point, the projection, the
baseline) is its own artist with an SVG id ``<chart>-<kind>-<key>``, so the browser test
can count them. Text stays ``<text>`` (``svg.fonttype = 'none'``): the browser draws it
with the page's Japanese font stack, so nothing is embedded and no glyph goes missing
for lack of a font in the SVG.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

#: The CSS font stack of the page, written into every SVG text element (Windows, macOS,
#: Debian's fonts-noto-cjk and fonts-ipafont all covered; the browser takes the first it has).
FONT_STACK = (
    "'Noto Sans CJK JP', 'Noto Sans JP', 'Yu Gothic UI', 'Yu Gothic', YuGothic, Meiryo,"
    " 'Hiragino Sans', 'Hiragino Kaku Gothic ProN', IPAexGothic, IPAGothic, sans-serif"
)

#: Families matplotlib may measure text with, best first (only installed ones are used).
_MEASURE_FAMILIES = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "IPAexGothic",
    "IPAGothic",
    "Yu Gothic",
    "Meiryo",
    "Hiragino Sans",
    "DejaVu Sans",
)

ACTUAL = "#2b6cb0"
ACTUAL_OPEN = "#9cc0e6"  # a fiscal year still in progress
TARGET = "#1a1a1a"
BASELINE = "#9aa0a6"
PROJECTED = "#2b6cb0"
MONTHS_JA = ("4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月", "1月", "2月", "3月")


@dataclass(frozen=True)
class Baseline:
    """The plan's starting point: a value with a label, drawn left of the fiscal years."""

    value: float
    label: str
    as_line: bool = False  # a baseline year (paper: R3 = 100) is a reference line


@cache
def _rc() -> dict[str, Any]:
    """Matplotlib settings: SVG text as text, deterministic ids, an installed CJK font."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    families = [f for f in _MEASURE_FAMILIES if f in installed] or ["DejaVu Sans"]
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": "workstyle-collector-report",
        "font.family": families,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#888888",
        "axes.grid": True,
        "axes.grid.axis": "y",
        "grid.color": "#e3e6ea",
        "grid.linewidth": 0.6,
        "axes.axisbelow": True,
        "legend.frameon": False,
        "legend.fontsize": 8,
        "xtick.color": "#333333",
        "ytick.color": "#333333",
    }


def fmt_number(value: float | None, unit: str) -> str:
    """A value as the report prints it: percentages to 0.1, counts whole, thousands grouped."""
    if value is None:
        return "–"
    if unit == "%":
        return f"{value:,.1f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


_ID = re.compile(r'id="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')
_FONT = re.compile(r"font-family:[^;\"]*")


def _to_inline_svg(raw: str, prefix: str, label: str) -> str:
    """Matplotlib's SVG document made fit to sit inside HTML beside other charts."""
    svg = raw[raw.index("<svg") :]
    # The RDF metadata names the tool; it has no use inline.
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    # Several charts share one document: ids (clip paths, markers, artists) must be unique.
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    svg = _FONT.sub(f"font-family: {FONT_STACK}", svg)
    # Scale with the page (the viewBox keeps the proportions); readable name for screen readers.
    svg = re.sub(r'\swidth="[^"]*pt"\s+height="[^"]*pt"', "", svg, count=1)
    head = f'<svg class="chart" role="img" aria-label="{_attr(label)}" data-chart-id="{prefix}"'
    return head + svg[len("<svg") :]


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _render(fig: Any, prefix: str, label: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return _to_inline_svg(buf.getvalue(), prefix, label)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # A bare Figure (not pyplot): no global state, no GUI backend, safe in a nightly job.
    return Figure(figsize=(width, height), layout="constrained")


@contextmanager
def _style(**extra: Any) -> Iterator[None]:
    """Our rcParams for one figure; quiet about glyphs matplotlib cannot measure.

    Without a CJK font matplotlib warns once per missing glyph; the text is written as
    text all the same and the browser draws it with the page's fonts.
    """
    import matplotlib

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    with matplotlib.rc_context({**_rc(), **extra}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
        yield


def _axis_numbers(ax: Any, unit: str, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _top(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return max(present) * 1.18 if present and max(present) > 0 else 1.0


def _bar_label(
    ax: Any, x: float, value: float, top: float, text: str, color: str = "white"
) -> None:
    """The value inside a tall bar (clear of the target tick near its top), else above it."""
    if value > top * 0.16:
        ax.text(x, value / 2, text, ha="center", va="center", fontsize=7.5, color=color)
    else:
        ax.annotate(
            text,
            (x, value),
            ha="center",
            va="bottom",
            fontsize=7.5,
            xytext=(0, 2),
            textcoords="offset points",
        )


def _legend(fig: Any, entries: dict[str, Any]) -> None:
    """The legend above the plot, where it cannot cover a bar or a point."""
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries.keys()),
            loc="outside upper center",
            ncols=len(entries),
            fontsize=7.5,
            handlelength=1.8,
            columnspacing=1.2,
        )


def yearly_chart(
    kpi: str, rows: Sequence[dict[str, Any]], unit: str, baseline: Baseline | None
) -> str:
    """Bars of the actual value per fiscal year, target ticks, projection and baseline."""
    prefix = f"{kpi}-yearly"
    with _style():
        fig = _figure(4.6, 2.9)
        ax = fig.add_subplot()
        labels: list[str] = []
        x = 0
        if baseline is not None and not baseline.as_line:
            bar = ax.bar([x], [baseline.value], width=0.62, color=BASELINE)[0]
            bar.set_gid("baseline")
            ax.annotate(
                fmt_number(baseline.value, unit),
                (x, baseline.value),
                ha="center",
                va="bottom",
                fontsize=7.5,
                xytext=(0, 2),
                textcoords="offset points",
            )
            labels.append(f"基準値\n{baseline.label}")
            x += 1
        top = _top(
            [r.get("value") for r in rows]
            + [r.get("target") for r in rows]
            + [r.get("projected") for r in rows if not r.get("complete")]
            + [baseline.value if baseline else None]
        )
        legend: dict[str, Any] = {}
        for r in rows:
            fy = r["label"]
            labels.append(f"{fy}\n({r['fiscal_year']})")
            value, target, projected = r.get("value"), r.get("target"), r.get("projected")
            in_progress = not r.get("complete")
            if in_progress and value is not None and projected is not None:
                p = ax.bar(
                    [x],
                    [projected],
                    width=0.62,
                    facecolor="none",
                    edgecolor=PROJECTED,
                    linestyle=(0, (3, 2)),
                    linewidth=1.0,
                )[0]
                p.set_gid(f"projected-{fy}")
                legend.setdefault("見込み projected", p)
            if value is not None:
                b = ax.bar([x], [value], width=0.62, color=ACTUAL_OPEN if in_progress else ACTUAL)
                b[0].set_gid(f"actual-{fy}")
                legend.setdefault("実績 actual", b[0])
                _bar_label(
                    ax, x, value, top, fmt_number(value, unit), TARGET if in_progress else "white"
                )
            else:
                ax.text(
                    x,
                    top * 0.03,
                    "データなし\nno data",
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    color="#77767b",
                )
            if target is not None:
                (t,) = ax.plot(
                    [x - 0.4, x + 0.4],
                    [target, target],
                    color=TARGET,
                    linewidth=2.0,
                    solid_capstyle="butt",
                )
                t.set_gid(f"target-{fy}")
                legend.setdefault("目標 target", t)
            x += 1
        if baseline is not None and baseline.as_line:
            line = ax.axhline(baseline.value, color=BASELINE, linestyle=":", linewidth=1.2)
            line.set_gid("baseline")
            legend.setdefault(f"基準 {baseline.label}", line)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylim(0, top)
        ax.set_ylabel(unit)
        _axis_numbers(ax, unit)
        _legend(fig, legend)
        return _render(fig, prefix, f"{kpi}: actual vs target by fiscal year")


def monthly_chart(
    kpi: str,
    fy_label: str,
    months: Sequence[str],
    rows: Sequence[dict[str, Any]],
    unit: str,
    projection: float | None,
) -> str:
    """The fiscal year's months: actual points, the target line and the straight-line
    projection from the last month with data to the year's end."""
    prefix = f"{kpi}-monthly"
    by_month = {r["month"]: r for r in rows}
    with _style():
        fig = _figure(4.6, 2.9)
        ax = fig.add_subplot()
        xs = [i for i, m in enumerate(months) if by_month.get(m, {}).get("value") is not None]
        ys = [by_month[months[i]]["value"] for i in xs]
        legend: dict[str, Any] = {}
        targets = [by_month.get(m, {}).get("target") for m in months]
        known = [t for t in targets if t is not None]
        if known:
            # Months without a row yet (the rest of the year) keep the last known target.
            filled, last = [], known[0]
            for t in targets:
                last = t if t is not None else last
                filled.append(last)
            (t_line,) = ax.step(
                range(len(months)),
                filled,
                where="mid",
                color=TARGET,
                linestyle="--",
                linewidth=1.2,
            )
            t_line.set_gid("target")
            legend["目標 target"] = t_line
        if xs:
            (line,) = ax.plot(xs, ys, color=ACTUAL, linewidth=1.6)
            line.set_gid("series")
            for i, y in zip(xs, ys, strict=True):
                (pt,) = ax.plot([i], [y], "o", color=ACTUAL, markersize=4)
                pt.set_gid(f"point-{months[i]}")
            legend["実績 actual"] = line
        if projection is not None and xs and xs[-1] < len(months) - 1:
            end = len(months) - 1
            (proj,) = ax.plot(
                [xs[-1], end],
                [ys[-1], projection],
                color=PROJECTED,
                linestyle=":",
                linewidth=1.6,
                marker="o",
                markevery=[1],
                markerfacecolor="white",
                markersize=5,
            )
            proj.set_gid("projected")
            legend["年度末見込み projected"] = proj
            ax.annotate(
                fmt_number(projection, unit),
                (end, projection),
                ha="right",
                va="bottom",
                fontsize=7.5,
                xytext=(-4, 3),
                textcoords="offset points",
            )
        if not xs:
            ax.text(
                0.5, 0.5, "データなし no data", transform=ax.transAxes, ha="center", color="#77767b"
            )
        ax.set_xticks(range(len(months)), MONTHS_JA[: len(months)])
        ax.set_xlim(-0.5, len(months) - 0.5)
        ax.set_ylim(0, _top([*ys, *known, projection]))
        ax.set_xlabel(f"{fy_label} 月別 by month")
        ax.set_ylabel(unit)
        _axis_numbers(ax, unit)
        _legend(fig, legend)
        return _render(fig, prefix, f"{kpi}: monthly values of {fy_label}")


def department_chart(kpi: str, fy_label: str, rows: Sequence[dict[str, Any]], unit: str) -> str:
    """Horizontal bars per department, largest first, with target ticks where a target exists."""
    prefix = f"{kpi}-department"
    shown = sorted(
        (r for r in rows if r.get("value") is not None),
        key=lambda r: (-r["value"], r["department"]),
    )
    with _style(**{"axes.grid.axis": "x"}):
        fig = _figure(4.6, 0.8 + 0.24 * max(len(shown), 1))
        ax = fig.add_subplot()
        names = [r["department"] for r in shown]
        ys = list(range(len(shown)))[::-1]  # largest at the top
        for y, r in zip(ys, shown, strict=True):
            b = ax.barh([y], [r["value"]], height=0.66, color=ACTUAL)[0]
            b.set_gid(f"bar-{len(shown) - 1 - y}")
            ax.annotate(
                fmt_number(r["value"], unit),
                (r["value"], y),
                ha="left",
                va="center",
                fontsize=7,
                xytext=(2, 0),
                textcoords="offset points",
            )
            if r.get("target") is not None:
                (t,) = ax.plot([r["target"]] * 2, [y - 0.4, y + 0.4], color=TARGET, lw=1.8)
                t.set_gid(f"target-{len(shown) - 1 - y}")
        ax.set_yticks(ys, names)
        top = _top([r["value"] for r in shown] + [r.get("target") for r in shown])
        ax.set_xlim(0, top)
        ax.set_xlabel(f"{fy_label} · {unit}")
        _axis_numbers(ax, unit, "x")
        if not shown:
            ax.text(
                0.5, 0.5, "データなし no data", transform=ax.transAxes, ha="center", color="#77767b"
            )
        return _render(fig, prefix, f"{kpi}: by department, {fy_label}")
