"""Declared units of export columns: durations, sizes and percentages, converted, never guessed.

A source declares the unit a column is written in (``units = { duration_seconds =
"minutes" }``); the value is converted to the canonical column's own unit (seconds,
hours, bytes). A value that is not in the declared form (``1:05:00`` in a minutes
column, ``45`` in an ``h:mm:ss`` column, ``3 KB`` in an MB column) does not parse, and
the row is quarantined with the reason: a number in an unexpected form is far more
likely a misdeclared column than something to reinterpret silently.

A number may carry the declared unit's own suffix (``20分``, ``20 min``, ``12 MB``,
``50%``); any other suffix is the wrong form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

_NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)"


@dataclass(frozen=True)
class Unit:
    """One declarable unit: what it measures, its size in the base unit, its suffixes."""

    name: str
    measures: str  # duration (base: seconds) | size (base: bytes) | fraction
    factor: float
    suffixes: tuple[str, ...] = ()
    #: Described in a quarantine reason as "... is not {form}".
    form: str = ""


_UNITS = (
    Unit("seconds", "duration", 1, ("s", "sec", "secs", "second", "seconds", "秒"), "seconds"),
    Unit("minutes", "duration", 60, ("m", "min", "mins", "minute", "minutes", "分"), "minutes"),
    Unit("hours", "duration", 3600, ("h", "hr", "hrs", "hour", "hours", "時間"), "hours"),
    Unit("h:mm:ss", "duration", 1, (), "H:MM:SS"),
    Unit("h:mm", "duration", 1, (), "H:MM"),
    Unit("bytes", "size", 1, ("b", "byte", "bytes"), "bytes"),
    Unit("kB", "size", 1e3, ("kb",), "kB"),
    Unit("MB", "size", 1e6, ("mb",), "MB"),
    Unit("GB", "size", 1e9, ("gb",), "GB"),
    Unit("TB", "size", 1e12, ("tb",), "TB"),
    Unit("KiB", "size", 1024, ("kib",), "KiB"),
    Unit("MiB", "size", 1024**2, ("mib",), "MiB"),
    Unit("GiB", "size", 1024**3, ("gib",), "GiB"),
    Unit("TiB", "size", 1024**4, ("tib",), "TiB"),
    Unit("percent", "fraction", 0.01, ("%",), "a percentage"),
)
UNITS: dict[str, Unit] = {u.name: u for u in _UNITS}

#: Canonical columns that take a declared unit, and what they hold.
#: duration_seconds: whole seconds; hours: hours (float); bytes_*: whole bytes.
COLUMN_MEASURES: dict[str, tuple[str, str]] = {
    "duration_seconds": ("duration", "seconds"),
    "hours": ("duration", "hours"),
    "bytes_in": ("size", "bytes"),
    "bytes_out": ("size", "bytes"),
}


def check(column: str, unit: str, float_column: bool) -> str | None:
    """Why ``unit`` cannot be declared for ``column``, or None when it can."""
    u = UNITS.get(unit)
    if u is None:
        return f"unknown unit {unit!r}; expected one of: {', '.join(UNITS)}"
    measures = COLUMN_MEASURES.get(column, ("fraction", "") if float_column else None)
    if measures is None:
        return f"column {column!r} takes no unit"
    if u.measures != measures[0]:
        allowed = [n for n, x in UNITS.items() if x.measures == measures[0]]
        return f"{column} holds a {measures[0]}; expected one of: {', '.join(allowed)}"
    return None


def convert(raw: pl.Expr, column: str, unit: str) -> tuple[pl.Expr, str]:
    """The value of ``raw`` (text in ``unit``) in the canonical column's unit, and its form.

    Null where the text is not in the declared form, so the caller quarantines it.
    """
    u = UNITS[unit]
    s = raw.cast(pl.String).str.strip_chars().str.normalize("NFKC")
    s = pl.when(s.str.len_chars() > 0).then(s)
    if u.name == "h:mm:ss":
        hms = r"^(\d+):([0-5]\d):([0-5]\d)$"
        h, m, sec = (s.str.extract(hms, i).cast(pl.Int64) for i in (1, 2, 3))
        base = (h * 3600 + m * 60 + sec).cast(pl.Float64)
    elif u.name == "h:mm":
        hm = r"^(\d+):([0-5]\d)$"
        h, m = (s.str.extract(hm, i).cast(pl.Int64) for i in (1, 2))
        base = (h * 3600 + m * 60).cast(pl.Float64)
    else:
        suffix = "|".join(re.escape(x) for x in sorted(u.suffixes, key=len, reverse=True))
        pattern = rf"(?i)^{_NUMBER}\s*(?:{suffix})?$"
        number = s.str.extract(pattern, 1).str.replace_all(",", "").cast(pl.Float64)
        base = number * u.factor
    form = (
        f"a number of {u.name}"
        if u.name in ("seconds", "minutes", "hours")
        else f"a size in {u.name}"
        if u.measures == "size"
        else u.form
    )
    measures, target = COLUMN_MEASURES.get(column, ("fraction", ""))
    if target == "hours":
        return base / 3600, form
    if measures == "fraction":
        return base, form
    return base.round(0).cast(pl.Int64), form
