"""``collector kpi``: the KPI table for a report, as text, CSV or JSON, or one KPI explained."""

from __future__ import annotations

import datetime as dt
import sys

import click

from workstyle.aggregates.settings import BASES
from workstyle.aggregates.targets import KPI_IDS
from workstyle.collector.cli import options


@click.command("kpi")
@options.fiscal_year("Only this fiscal year: R5, 2023 or 令和5年度 (default: every year).")
@options.as_of()
@click.option(
    "--by",
    type=click.Choice(["department", "month"]),
    default=None,
    help="Break the KPIs down by department or by month.",
)
@click.option(
    "--basis",
    type=click.Choice(BASES),
    default=None,
    help="Basis of paper_vs_r3: print_jobs, paper_purchases or printer_counters"
    " (default: [kpi] paper_basis). Bases are never mixed.",
)
@options.output_format(["table", "csv", "json"])
@click.option(
    "--explain",
    type=click.Choice(KPI_IDS),
    default=None,
    metavar="KPI",
    help="Print the rule, input counts and source tables behind one KPI.",
)
@options.organisation()
@click.pass_obj
def kpi(
    obj,
    fiscal_year: int | None,
    as_of: dt.datetime | None,
    by: str | None,
    basis: str | None,
    fmt: str,
    explain: str | None,
    organisation: str | None,
) -> None:
    """The plan's KPIs by fiscal year: value, target, status (computed from the dataset).

    Status: achieved, on_track (a year in progress whose straight-line projection
    reaches the target), behind, or no_data (see the note for why).
    """
    from workstyle.aggregates import engine

    cfg = obj.cfg
    years = frozenset({fiscal_year}) if fiscal_year is not None else None
    ctx = engine.context_from_config(
        cfg, as_of.date() if as_of else None, years, basis, organisation=organisation
    )
    if fiscal_year is not None and fiscal_year > ctx.as_of_fy:
        raise click.BadParameter(
            f"FY{fiscal_year} starts after the as-of date {ctx.as_of}", param_hint="--fy"
        )
    only = (explain,) if explain else KPI_IDS
    result = engine.compute(ctx, only)
    if explain:
        click.echo(engine.render_explain(result, explain, fiscal_year))
        return
    frame = engine.select(result, by)
    if fmt == "json":
        click.echo(engine.render_json(frame))
    elif fmt == "csv":
        # UTF-8 with a BOM: Excel in Japan otherwise opens it as Shift_JIS.
        data = ("\ufeff" + engine.render_csv(frame)).encode("utf-8")
        sys.stdout.buffer.write(data) if _real_stdout() else click.echo(
            data.decode("utf-8"), nl=False
        )
    else:
        click.echo(engine.render_table(frame, result.as_of, result.plan))


def _real_stdout() -> bool:
    """True when writing bytes straight to stdout is possible (not under CliRunner)."""
    try:
        sys.stdout.buffer.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
