"""``collector report``: the KPI report as one offline HTML file and an Excel workbook."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from workstyle.collector.cli import options

DEFAULT_OUT = "kpi-report.html"


@click.command("report")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=DEFAULT_OUT,
    show_default=True,
    help="The HTML report to write.",
)
@click.option(
    "--xlsx",
    type=click.Path(dir_okay=False),
    default=None,
    help="The Excel workbook to write (default: --out with .xlsx).",
)
@click.option("--no-xlsx", is_flag=True, help="Write only the HTML report.")
@options.as_of(
    "Report as of this date (default: the as-of of the last run's KPI tables);"
    " another date recomputes the KPIs in memory."
)
@options.fiscal_year(
    "Fiscal year of the monthly series and the department breakdown: R5, 2023"
    " or 令和5年度 (default: the year in progress, else the latest with data)."
)
@options.organisation()
@click.pass_obj
def report(
    obj: Any,
    out: str,
    xlsx: str | None,
    no_xlsx: bool,
    as_of: dt.datetime | None,
    fiscal_year: int | None,
    organisation: str | None,
) -> None:
    """The KPI report for policy staff: one offline HTML file and an Excel workbook.

    Charts of actual vs target by fiscal year with the baseline, the monthly series
    with its projection, the department breakdown, the status table, and the data's
    freshness and basis. Everything is inline: it opens on a closed network, by mail,
    or printed.
    """
    from workstyle.collector.report.build import build, require_libraries, write

    require_libraries()
    cfg = obj.cfg
    data = build(cfg, as_of.date() if as_of else None, fiscal_year, organisation=organisation)
    html_path = Path(out)
    xlsx_path = None if no_xlsx else Path(xlsx) if xlsx else html_path.with_suffix(".xlsx")
    for path in write(data, html_path, xlsx_path):
        click.echo(f"wrote {path}")
