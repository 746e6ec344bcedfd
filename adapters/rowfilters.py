"""Row filters on an export's own columns: ``where`` keeps, ``exclude`` leaves out.

Applied before mapping, on the file's text as written (after trimming and NFKC, so
a full-width ``希望する`` matches). Every row left out is counted under the rule that
left it out; nothing is dropped without a count, and a row a rule cannot judge (a
date range over text that is not a date) is quarantined, not filtered.

A condition, keyed by the file's header::

    where = { "在宅勤務希望" = "希望する" }                  # equality
    where = { "区分" = ["通常", "臨時"] }                   # one of a set
    exclude = { "退職日" = { empty = false } }             # empty / non-empty
    where = { "開催日" = { from = 2023-04-01, to = 2024-03-31 } }   # a date range, inclusive

``where`` keeps a row only when every condition holds (a row failing several is
counted under the first); ``exclude`` leaves out a row when any condition holds.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from workstyle.adapters.parsing import DEFAULT_DATE_FORMATS, DEFAULT_TIME_FORMATS, blank_to_null

FILTER_KEYS = ("where", "exclude")


@dataclass(frozen=True)
class Rule:
    """One condition of ``where`` or ``exclude``, with the text that names it in counts."""

    key: str  # where | exclude
    header: str
    text: str
    #: True where the condition holds (never null).
    holds: pl.Expr
    #: True where the condition cannot be judged (quarantined); None when it always can.
    unjudged: pl.Expr | None = None
    unjudged_reason: pl.Expr | None = None
    #: A date range's day column (computed once by :func:`prepare`) and its parser.
    day_column: str | None = None
    day_of: pl.Expr | None = None


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return unicodedata.normalize("NFKC", str(value)).strip()


def _cell(header: str) -> pl.Expr:
    return blank_to_null(pl.col(header)).str.normalize("NFKC")


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def problems(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Config mistakes in ``where`` / ``exclude`` as ``(key, message)`` pairs."""
    out: list[tuple[str, str]] = []
    for key in FILTER_KEYS:
        for header, cond in (options.get(key) or {}).items():
            where = f"{key}.{header}"
            if isinstance(cond, dict):
                known = {"empty", "from", "to", "format"}
                unknown = sorted(set(cond) - known)
                if unknown:
                    out.append((where, f"unknown condition {unknown[0]!r}; expected {known}"))
                elif "empty" in cond:
                    if not isinstance(cond["empty"], bool) or len(cond) > 1:
                        out.append((where, "expected { empty = true } or { empty = false }"))
                elif "from" in cond or "to" in cond:
                    for end in ("from", "to"):
                        if end in cond:
                            try:
                                _as_date(cond[end])
                            except ValueError:
                                out.append((f"{where}.{end}", "expected a date like 2023-04-01"))
                else:
                    out.append((where, "expected { empty = ... } or { from = ..., to = ... }"))
            elif isinstance(cond, list):
                if not cond or any(isinstance(v, dict | list) for v in cond):
                    out.append((where, "expected a non-empty list of values"))
            elif not isinstance(cond, str | int | float | bool):
                out.append((where, "expected a value, a list of values or a condition table"))
    return out


def headers(options: Mapping[str, Any]) -> dict[str, str]:
    """The file headers the filters read, named for a missing-header message."""
    return {f"{key}.{h}": h for key in FILTER_KEYS for h in (options.get(key) or {})}


def rules(options: Mapping[str, Any]) -> list[Rule]:
    """The configured conditions, ``where`` first, in the order written."""
    out: list[Rule] = []
    for key in FILTER_KEYS:
        for header, cond in (options.get(key) or {}).items():
            out.append(_rule(key, header, cond))
    return out


def _rule(key: str, header: str, cond: Any) -> Rule:
    cell = _cell(header)
    if isinstance(cond, dict) and "empty" in cond:
        empty = cond["empty"]
        return Rule(
            key,
            header,
            f"{key} {header} is {'empty' if empty else 'not empty'}",
            cell.is_null() if empty else cell.is_not_null(),
        )
    if isinstance(cond, dict):
        fmts = cond.get("format")
        formats = [fmts] if isinstance(fmts, str) else list(fmts or DEFAULT_DATE_FORMATS)
        text = pl.col("t")
        day_of = pl.coalesce([text.str.strptime(pl.Date, f, strict=False) for f in formats])
        if not fmts:
            # A date-and-time column: its calendar day as written.
            stamp = pl.coalesce(
                [
                    text.str.strptime(pl.Datetime("us"), f, strict=False)
                    for f in DEFAULT_TIME_FORMATS
                    if "%z" not in f and "%:z" not in f and not f.endswith("Z")
                ]
            )
            day_of = pl.coalesce([day_of, stamp.dt.date()])
        day_column = f"__day:{key}:{header}"
        day = pl.col(day_column)
        lo = _as_date(cond["from"]) if "from" in cond else None
        hi = _as_date(cond["to"]) if "to" in cond else None
        inside = pl.lit(True)
        if lo:
            inside = inside & (day >= lo)
        if hi:
            inside = inside & (day <= hi)
        span = f"from {lo or '…'} to {hi or '…'}"
        unjudged = cell.is_not_null() & day.is_null()
        return Rule(
            key,
            header,
            f"{key} {header} {span}",
            inside.fill_null(False),
            unjudged,
            pl.format(f"{key} {header} {span}: {{}} is not a date", pl.col(header)),
            day_column,
            day_of,
        )
    if isinstance(cond, list):
        values = [_norm(v) for v in cond]
        return Rule(
            key,
            header,
            f"{key} {header} in {{{', '.join(values)}}}",
            cell.is_in(values).fill_null(False),
        )
    value = _norm(cond)
    return Rule(key, header, f"{key} {header} = {value}", (cell == value).fill_null(False))


def prepare(df: pl.DataFrame, rules_: list[Rule]) -> pl.DataFrame:
    """Add the day column of every date range: each distinct text is parsed once.

    An export's dates repeat (a few hundred days, some thousand times of day), and
    trying a dozen formats on every row cost more than the rest of the read.
    """
    cols = []
    for rule in rules_:
        if rule.day_column is None or rule.day_of is None:
            continue
        cell = _cell(rule.header)
        distinct = df.select(cell.unique().drop_nulls().alias("t"))
        parsed = distinct.select("t", rule.day_of.alias("d"))
        cols.append(
            cell.replace_strict(
                parsed.get_column("t"), parsed.get_column("d"), default=None, return_dtype=pl.Date
            ).alias(rule.day_column)
        )
    return df.with_columns(cols) if cols else df


def apply(df: pl.DataFrame, rules_: list[Rule]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into kept and left out; the left-out rows name their rule in ``_rule``.

    ``df`` has been through :func:`prepare`, and rows a rule cannot judge have been
    quarantined (:func:`unjudged_checks`); the day columns are dropped here.
    """
    temp = [r.day_column for r in rules_ if r.day_column and r.day_column in df.columns]
    if not rules_ or df.height == 0:
        left = df.clear().with_columns(pl.lit(None, pl.String).alias("_rule"))
        return df.drop(temp), left.drop(temp)
    # The first rule that leaves the row out names it.
    which = pl.lit(None, pl.String)
    for rule in reversed(rules_):
        leaves = ~rule.holds if rule.key == "where" else rule.holds
        which = pl.when(leaves).then(pl.lit(rule.text)).otherwise(which)
    frame = df.with_columns(which.alias("_rule")).drop(temp)
    return (
        frame.filter(pl.col("_rule").is_null()).drop("_rule"),
        frame.filter(pl.col("_rule").is_not_null()),
    )


def unjudged_checks(rules_: list[Rule]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(row cannot be judged, reason) pairs for the quarantine."""
    return [
        (r.unjudged, r.unjudged_reason)
        for r in rules_
        if r.unjudged is not None and r.unjudged_reason is not None
    ]
