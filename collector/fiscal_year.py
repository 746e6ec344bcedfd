"""Fiscal-year names both ways: 'R5', '2023', '令和5年度' and '令和元年度' (a leaf module).

FY 2023 = 2023-04-01 .. 2024-03-31 = R5 = 令和5年度. Reiwa n = 2018 + n; FY2019 is
written 令和元年度 (although April 2019 was still Heisei).
"""

from __future__ import annotations

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
