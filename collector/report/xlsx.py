"""The KPI report as an Excel workbook: one sheet per view, typed cells, Japanese headers.

Written with XlsxWriter (write-only, no dependencies, faithful number and date formats);
numbers stay numbers, dates are dates, booleans are booleans, so a pivot table or a
formula works on the cells as they are.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from workstyle.collector.report.html import STATUS_JA, ReportData, _when

#: (column key, Japanese header, kind). Kinds: text, int, number, bool, date, month, status_ja.
_COMMON_HEAD = [
    ("kpi", "指標ID", "text"),
    ("name_ja", "指標名", "text"),
    ("name_en", "指標名(英語)", "text"),
    ("fiscal_year", "年度", "int"),
    ("label", "年度表記", "text"),
]
_COMMON_TAIL = [
    ("value", "実績値", "number"),
    ("target", "目標値", "number"),
    ("unit", "単位", "text"),
    ("status_ja", "状況", "status_ja"),
    ("status", "状況コード", "text"),
    ("projected", "年度末見込み", "number"),
    ("complete", "確定", "bool"),
    ("numerator", "分子", "number"),
    ("denominator", "分母", "number"),
    ("basis", "基準データ", "text"),
    ("reason", "備考", "text"),
    ("as_of", "基準日", "date"),
]
SHEETS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "yearly": ("年度別 yearly", _COMMON_HEAD + _COMMON_TAIL),
    "monthly": ("月別 monthly", _COMMON_HEAD + [("month", "月", "month")] + _COMMON_TAIL),
    "by_department": (
        "部局別 by department",
        _COMMON_HEAD + [("department", "部局", "text")] + _COMMON_TAIL,
    ),
}
INFO_SHEET = "情報 about"
_WIDTHS = {"text": 14, "int": 7, "number": 12, "bool": 6, "date": 11, "month": 9, "status_ja": 9}
_WIDE = {"name_ja": 24, "name_en": 30, "kpi": 24, "reason": 48, "department": 16}


def write_workbook(data: ReportData, path: Path) -> Path:
    """Write the workbook to ``path`` (the caller renames it into place)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(
        str(path), {"strings_to_numbers": False, "strings_to_urls": False, "remove_timezone": True}
    )
    wb.set_properties(
        {
            "title": "KPI進捗報告 KPI progress report",
            "subject": data.plan.name_ja if data.plan else "",
            "created": data.generated_at.astimezone(dt.UTC).replace(tzinfo=None),
        }
    )
    fmt = {
        "head": wb.add_format(
            {"bold": True, "bg_color": "#EEF1F4", "bottom": 1, "text_wrap": True}
        ),
        "int": wb.add_format({"num_format": "0"}),
        "whole": wb.add_format({"num_format": "#,##0"}),
        "dec": wb.add_format({"num_format": "#,##0.0"}),
        "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
        "month": wb.add_format({"num_format": "yyyy-mm"}),
        "when": wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
    }
    frames = {"yearly": data.yearly, "monthly": data.monthly, "by_department": data.by_department}
    for key, (title, columns) in SHEETS.items():
        ws = wb.add_worksheet(title)
        for c, (name, head, kind) in enumerate(columns):
            ws.write_string(0, c, head, fmt["head"])
            ws.set_column(c, c, _WIDE.get(name, _WIDTHS[kind]))
        for r, row in enumerate(frames[key].to_dicts(), start=1):
            for c, (name, _head, kind) in enumerate(columns):
                _cell(ws, r, c, kind, row, name, fmt)
        ws.freeze_panes(1, 2)
        ws.autofilter(0, 0, max(frames[key].height, 1), len(columns) - 1)
    _info_sheet(wb, data, fmt)
    wb.close()
    return path


def _cell(ws: Any, r: int, c: int, kind: str, row: dict[str, Any], name: str, fmt: dict) -> None:
    if kind == "status_ja":
        ws.write_string(r, c, STATUS_JA.get(row["status"], row["status"]))
        return
    value = row.get(name)
    if value is None:
        ws.write_blank(r, c, None)
    elif kind == "text":
        ws.write_string(r, c, str(value))
    elif kind == "int":
        ws.write_number(r, c, int(value), fmt["int"])
    elif kind == "number":
        number = float(value)
        ws.write_number(r, c, number, fmt["whole"] if number.is_integer() else fmt["dec"])
    elif kind == "bool":
        ws.write_boolean(r, c, bool(value))
    elif kind == "date":
        ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), fmt["date"])
    elif kind == "month":
        year, month = (int(p) for p in str(value).split("-"))
        ws.write_datetime(r, c, dt.datetime(year, month, 1), fmt["month"])  # noqa: DTZ001
    else:  # pragma: no cover - the column lists above name every kind
        raise ValueError(kind)


def _info_sheet(wb: Any, data: ReportData, fmt: dict) -> None:
    ws = wb.add_worksheet(INFO_SHEET)
    ws.set_column(0, 0, 26)
    ws.set_column(1, 4, 24)
    rows: list[tuple[str, Any]] = [
        ("計画 plan", data.plan.name_ja if data.plan else ""),
        ("基準日 as of", dt.datetime.combine(data.as_of, dt.time())),
        ("重点年度 focus year", data.focus_fy),
        ("作成日時 generated", _when(data.generated_at, data.tz)),
        ("KPI算出日時 KPIs computed", _when(data.computed_at, data.tz)),
    ]
    for r, (key, value) in enumerate(rows):
        ws.write_string(r, 0, key, fmt["head"])
        if isinstance(value, dt.datetime):
            ws.write_datetime(r, 1, value, fmt["date"])
        elif isinstance(value, int):
            ws.write_number(r, 1, value, fmt["int"])
        else:
            ws.write_string(r, 1, str(value))
    r0 = len(rows) + 1
    heads = ("ソース source", "種類 kind", "最新イベント newest event", "最終成功 last success")
    for c, head in enumerate(heads):
        ws.write_string(r0, c, head, fmt["head"])
    for i, s in enumerate(data.sources, start=r0 + 1):
        ws.write_string(i, 0, s["source"])
        ws.write_string(i, 1, str(s.get("kind") or ""))
        for c, key in ((2, "newest_event"), (3, "last_success_at")):
            when = s.get(key)
            if when is None:
                ws.write_blank(i, c, None)
            else:
                local = when.astimezone(data.tz).replace(tzinfo=None)
                ws.write_datetime(i, c, local, fmt["when"])
