"""The Japanese fiscal calendar: April to March, Reiwa labels both ways.

FY 2023 = 2023-04-01 .. 2024-03-31 = R5 = 令和5年度. Reiwa n = 2018 + n; FY2019 is
written 令和元年度 (although April 2019 was still Heisei).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

REIWA_OFFSET = 2018

_PATTERNS = (
    (re.compile(r"^(?:令和|R)\s*(元|\d{1,2})\s*(?:年度|年)?$", re.IGNORECASE), "reiwa"),
    (re.compile(r"^(?:FY)?\s*(\d{4})\s*(?:年度)?$", re.IGNORECASE), "western"),
)


def parse_fiscal_year(text: str | int) -> int:
    """'R5', 'r5', '2023', 'FY2023', '2023年度', '令和5年度', '令和元年度' -> 2023."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = unicodedata.normalize("NFKC", str(text)).strip()
    for pattern, kind in _PATTERNS:
        m = pattern.match(s)
        if m:
            if kind == "reiwa":
                n = 1 if m.group(1) == "元" else int(m.group(1))
                return REIWA_OFFSET + n
            return int(m.group(1))
    raise ValueError(f"not a fiscal year: {text!r} (expected e.g. R5, 2023 or 令和5年度)")


def label(fy: int) -> str:
    """2023 -> 'R5' (fiscal years before Reiwa keep their western number)."""
    return f"R{fy - REIWA_OFFSET}" if fy > REIWA_OFFSET else str(fy)


def japanese_label(fy: int) -> str:
    """2023 -> '令和5年度'; 2019 -> '令和元年度'."""
    n = fy - REIWA_OFFSET
    if n < 1:
        return f"{fy}年度"
    return "令和元年度" if n == 1 else f"令和{n}年度"


def fiscal_year_of(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def fy_start(fy: int) -> dt.date:
    return dt.date(fy, 4, 1)


def fy_end(fy: int) -> dt.date:
    """The first day after the fiscal year (exclusive end)."""
    return dt.date(fy + 1, 4, 1)


def fy_months(fy: int) -> list[str]:
    """The twelve months of a fiscal year as 'YYYY-MM', April first."""
    return [f"{fy + (m < 4)}-{m:02d}" for m in (*range(4, 13), 1, 2, 3)]


# -- helpers for the KPI engine ------------------------------------------------------------
def month_start(month: str) -> dt.date:
    """'2024-04' -> 2024-04-01."""
    return dt.date(int(month[:4]), int(month[5:7]), 1)


def month_end(month: str) -> dt.date:
    """'2024-04' -> 2024-04-30 (the month's last day)."""
    start = month_start(month)
    nxt = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def month_of(day: dt.date) -> str:
    """2024-04-15 -> '2024-04'."""
    return f"{day.year}-{day.month:02d}"


def fiscal_year_of_month(month: str) -> int:
    """'2024-03' -> 2023."""
    return fiscal_year_of(month_start(month))


def fy_days(fy: int) -> int:
    """Number of days in a fiscal year (365 or 366)."""
    return (fy_end(fy) - fy_start(fy)).days


def fy_complete(fy: int, as_of: dt.date) -> bool:
    """True when the whole fiscal year lies on or before the as-of date."""
    return as_of >= fy_end(fy) - dt.timedelta(days=1)


def month_complete(month: str, as_of: dt.date) -> bool:
    """True when the whole month lies on or before the as-of date."""
    return as_of >= month_end(month)


def elapsed_days(fy: int, as_of: dt.date) -> int:
    """Days of the fiscal year up to and including the as-of date (0..fy_days)."""
    return max(0, min(fy_days(fy), (as_of - fy_start(fy)).days + 1))


def fy_months_through(fy: int, as_of: dt.date) -> list[str]:
    """The FY's months that have started by the as-of date."""
    return [m for m in fy_months(fy) if month_start(m) <= as_of]


def fy_order(day: dt.date) -> tuple[int, int]:
    """Position of a day within any fiscal year: (month index from April, day)."""
    return ((day.month - 4) % 12, day.day)
