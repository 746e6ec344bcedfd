"""Building and writing the KPI report: gather the data, write HTML and Excel atomically.

:func:`write_reports` is what ``collector run --report DIR`` (or ``[report] dir``) calls
after the nightly KPI step. Heavy imports (polars, matplotlib, XlsxWriter) happen inside
the functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstyle.collector.errors import CollectorError, ConfigError

if TYPE_CHECKING:
    from workstyle.collector.config import Config
    from workstyle.collector.report.html import ReportData

log = logging.getLogger("collector.report")


def require_libraries() -> None:
    """The report's two libraries, or one line saying how to get them."""
    missing = []
    for module, package in (("matplotlib", "matplotlib"), ("xlsxwriter", "XlsxWriter")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigError(
            f"the report needs {' and '.join(missing)}, which is not installed:"
            f" pip install {' '.join(missing)} (or reinstall workstyle-collector)"
        )


def build(
    cfg: Config,
    as_of: dt.date | None = None,
    fiscal_year: int | None = None,
    now: dt.datetime | None = None,
    organisation: str | None = None,
) -> ReportData:
    """Gather what the report shows: the KPI tables, the plan's baselines, source freshness.

    Without ``as_of`` the KPI tables the last run wrote are used as they are. With an
    ``as_of`` other than theirs, the KPI engine recomputes the tables in memory as of that
    day (nothing is written), so a past quarter's report can be reproduced. Another
    ``organisation`` than the configured one (or ``all``) is recomputed the same way.
    """
    import polars as pl

    from workstyle.aggregates.fiscal import fiscal_year_of, label
    from workstyle.aggregates.targets import load_plan
    from workstyle.collector.ingest.status import source_status
    from workstyle.collector.report import html as report

    location = cfg.location
    other = organisation is not None and organisation != location.organisation
    try:
        tables: dict[str, pl.DataFrame] | None = None if other else report.read_tables(location)
    except CollectorError:
        if as_of is None:
            raise
        tables = None
    if tables is not None and as_of is not None:
        stored = tables["yearly"]["as_of"].max()
        if stored != as_of:
            tables = None
    if tables is None:
        from workstyle.aggregates import engine

        ctx = engine.context_from_config(cfg, as_of, organisation=organisation)
        result = engine.compute(ctx)
        tables = {
            "yearly": report.conform(result.yearly()),
            "monthly": report.conform(result.monthly()),
            "by_department": report.conform(result.by_department()),
        }
    yearly = tables["yearly"]
    if yearly.height == 0:
        raise CollectorError(
            f"{location.file(*location.org_parts('kpi', 'yearly.parquet'))} has no rows;"
            " run `collector run`"
        )
    table_as_of = yearly["as_of"].max()
    as_of = as_of or table_as_of
    if fiscal_year is not None and fiscal_year > fiscal_year_of(as_of):
        raise ConfigError(f"--fy: {label(fiscal_year)} starts after the as-of date {as_of}")
    focus = fiscal_year or report.focus_year(yearly, tables["monthly"], as_of)
    computed = yearly["computed_at"].max()
    return report.ReportData(
        yearly=yearly,
        monthly=tables["monthly"],
        by_department=tables["by_department"],
        as_of=as_of,
        focus_fy=focus,
        generated_at=now or dt.datetime.now(cfg.tz),
        computed_at=computed,
        plan=load_plan(cfg.targets_file),
        sources=source_status(cfg),
        tz=cfg.tz,
    )


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Write beside the target and rename over it: a mail or web server never sees half."""
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CollectorError(f"{path.parent}: cannot create folder: {exc.strerror}") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise CollectorError(f"{path}: cannot write report: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def write(data: ReportData, html_path: Path, xlsx_path: Path | None) -> list[Path]:
    """Render and write the HTML (and the workbook when a path is given)."""
    from workstyle.collector.report.html import render_html
    from workstyle.collector.report.xlsx import write_workbook

    text = render_html(data)
    written = [_atomic(html_path, lambda p: p.write_text(text, encoding="utf-8"))]
    if xlsx_path is not None:
        written.append(_atomic(xlsx_path, lambda p: write_workbook(data, p)))
    return written


def write_reports(cfg: Config, directory: Path) -> tuple[Path, Path]:
    """The nightly report: ``<dir>/<basename>.html`` and ``.xlsx`` from the KPI tables."""
    require_libraries()
    section = cfg.sections.get("report", {})
    base = section.get("basename") or "kpi-report"
    data = build(cfg)
    html_path, xlsx_path = directory / f"{base}.html", directory / f"{base}.xlsx"
    write(data, html_path, xlsx_path)
    log.info("wrote the KPI report to %s and %s", html_path, xlsx_path)
    return html_path, xlsx_path
