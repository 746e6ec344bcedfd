"""Options several commands share, declared once: --as-of, --fy, --format, --source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def fiscal_year_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> int | None:
    """Click callback: 'R5', '2023' or '令和5年度' -> 2023."""
    if value is None:
        return None
    from workstyle.collector.fiscal_year import parse_fiscal_year

    try:
        return parse_fiscal_year(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def as_of(
    help: str = "Evaluate KPIs as of this date; later data is ignored (default: today).",
) -> Decorator:
    """``--as-of YYYY-MM-DD`` (a datetime, or None)."""
    return click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help=help)


def fiscal_year(help: str) -> Decorator:
    """``--fy R5|2023|令和5年度`` as the parameter ``fiscal_year`` (an int, or None)."""
    return click.option("--fy", "fiscal_year", callback=fiscal_year_option, metavar="FY", help=help)


def output_format(choices: Sequence[str], default: str | None = None) -> Decorator:
    """``--format`` as the parameter ``fmt``; the first choice is the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default or choices[0],
        show_default=True,
        help="Output format.",
    )


def _organisation_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    if value is None or value == "all":
        return value
    from workstyle.collector.errors import ConfigError
    from workstyle.collector.storage import check_organisation

    try:
        return check_organisation(value, "--organisation")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--organisation: ")) from None


def organisation() -> Decorator:
    """``--organisation CODE|all``: another organisation of a shared dataset, or all together."""
    return click.option(
        "--organisation",
        callback=_organisation_option,
        metavar="CODE|all",
        default=None,
        help="KPIs of this organisation (6-digit 地方公共団体コード) of a shared dataset,"
        " or 'all' of them together (default: [collector] organisation, else the whole"
        " dataset).",
    )


def sources() -> Decorator:
    """``--source NAME`` (repeatable) as the parameter ``names``."""
    return click.option(
        "--source",
        "names",
        multiple=True,
        metavar="NAME",
        help="Only these sources (repeatable); default: every enabled source.",
    )
