"""What a csv source may declare beyond its column map: row filters and units, checked once.

The csv kind's read loop calls these hooks; the rules themselves live in
:mod:`.rowfilters` and :mod:`.units`, the derived columns in
:mod:`workstyle.schemas.derivations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import pyarrow as pa

from workstyle import schemas
from workstyle.adapters import rowfilters, units
from workstyle.collector.options import Option
from workstyle.schemas import derivations

_CONDITION_FORMS = (
    "a value, a list of values, { empty = true|false } or { from = DATE, to = DATE }"
    " (inclusive; optional format)"
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "where",
        "table",
        "File header -> condition a row must meet to be read: " + _CONDITION_FORMS + "."
        " Rows left out are counted as filtered, per rule, in the run line, status and"
        " kpi --explain.",
        default={},
    ),
    Option(
        "exclude",
        "table",
        "File header -> condition that leaves a row out (same forms as where); counted as"
        " filtered.",
        default={},
    ),
    Option(
        "units",
        "table",
        "Canonical column -> the unit the file writes it in: "
        + ", ".join(units.UNITS)
        + " (durations, sizes, percentages; a number may carry its own unit's suffix)."
        " A value in another form is quarantined.",
        default={},
    ),
)


def problems(options: Mapping[str, Any], spec: schemas.TableSpec) -> list[tuple[str, str]]:
    """Mistakes in ``where``, ``exclude`` and ``units`` as ``(key, message)`` pairs."""
    out = rowfilters.problems(options)
    for col, unit in (options.get("units") or {}).items():
        if col not in spec.columns:
            continue  # reported with the other column-name mistakes
        if not isinstance(unit, str):
            out.append((f"units.{col}", "expected a unit name (string)"))
            continue
        is_float = pa.types.is_floating(spec.field(col).type)
        why = units.check(col, unit, is_float)
        if why:
            out.append((f"units.{col}", why))
    return out


def derivable(spec: schemas.TableSpec, provided: set[str]) -> set[str]:
    """Columns the table can derive from the provided ones."""
    rules = derivations.DERIVABLE.get(spec.name, {})
    return {col for col, inputs in rules.items() if set(inputs) <= provided}


def month_of(value: pl.Expr, field: pa.Field, timezone: str) -> pl.Expr:
    """The local calendar month ``YYYY-MM`` of a partition value (a FY's April for a FY)."""
    t = field.type
    if pa.types.is_timestamp(t):
        return value.dt.convert_time_zone(timezone).dt.strftime("%Y-%m")
    if pa.types.is_date32(t):
        return value.dt.strftime("%Y-%m")
    if pa.types.is_integer(t):  # a fiscal year
        return pl.format("{}-04", value)
    return pl.lit(None, pl.String)


def filtered_counts(left: pl.DataFrame, month: pl.Expr, location: str) -> pl.DataFrame:
    """Rows left out, counted per rule and month: the ``Batch.filtered`` frame."""
    return (
        left.select(pl.col("_rule").alias("rule"), month.alias("period"))
        .group_by("rule", "period", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(pl.lit(location).alias("location"))
        .select("location", "rule", "period", "rows")
    )
