"""The KPI report: the bundled example run through the real pipeline, then `collector report`.

The HTML is parsed and every KPI section and value checked against the KPI tables; a
headless Chromium with networking disabled loads it and must see no request but the
file itself, Japanese text drawn with a CJK font, and the expected number of chart
marks; the workbook is read back and compared with `collector kpi --format json`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from workstyle.collector.cli import main

AS_OF = "2023-12-31"  # R5 in progress: every view has a year in progress to show
FOCUS = 2023
KPIS = (
    "web_meetings_per_month",
    "paperless_meetings",
    "mobile_work_users",
    "telework_ratio",
    "paper_vs_r3",
    "vc_capable_terminals",
)
BASELINES = {"web_meetings_per_month", "paper_vs_r3", "vc_capable_terminals"}
CJK_FAMILIES = {"Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic"}


def _invoke(cwd: Path, *args: str) -> Any:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), env={"COLLECTOR_CONFIG": None})
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The nightly run on the bundled example with --report, then `collector report`."""
    cwd = tmp_path_factory.mktemp("report")
    run = _invoke(cwd, "run", "--as-of", AS_OF, "--report", str(cwd / "nightly"))
    assert run.exit_code == 0, run.output
    report = _invoke(cwd, "report")
    assert report.exit_code == 0, report.output
    kpi = cwd / "collector-data" / "kpi"
    return {
        "cwd": cwd,
        "report_output": report.output,
        "html": (cwd / "kpi-report.html").read_text(encoding="utf-8"),
        "html_path": cwd / "kpi-report.html",
        "xlsx_path": cwd / "kpi-report.xlsx",
        "yearly": pl.read_parquet(kpi / "yearly.parquet"),
        "monthly": pl.read_parquet(kpi / "monthly.parquet"),
        "by_department": pl.read_parquet(kpi / "by_department.parquet"),
    }


# -- a small DOM from the standard library's parser ----------------------------------------
class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.parts: list[str] = []

    def text(self) -> str:
        return "".join(self.parts) + "".join(c.text() for c in self.children)

    def iter(self) -> Any:
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and all(
                (n.attrs.get(k.replace("_", "-")) == v)
                if k != "cls"
                else v in (n.attrs.get("class") or "").split()
                for k, v in attrs.items()
            )
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}> in <{self.tag} {self.attrs}>"
        return found[0]


VOID = {"meta", "br", "img", "link", "input", "hr", "path", "use", "rect"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag: str) -> None:
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.parts.append(data)


def parse(text: str) -> Node:
    builder = TreeBuilder()
    builder.feed(text)
    return builder.root


def fmt(value: float | None, unit: str) -> str:
    """How the report prints a number (independent of the implementation)."""
    if value is None:
        return "–"
    if unit == "%":
        return f"{value:,.1f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def raw(value: float | None) -> str:
    return "" if value is None else repr(float(value))


# -- the command ---------------------------------------------------------------------------
def test_report_command_writes_both_files(example: dict[str, Any]) -> None:
    cwd = example["cwd"]
    assert "kpi-report.html" in example["report_output"]
    assert "kpi-report.xlsx" in example["report_output"]
    assert example["xlsx_path"].stat().st_size > 5_000
    # The nightly run wrote the same pair into --report DIR.
    assert (cwd / "nightly" / "kpi-report.html").stat().st_size > 50_000
    assert (cwd / "nightly" / "kpi-report.xlsx").stat().st_size > 5_000
    assert not list((cwd / "nightly").glob(".*"))  # no temporary file left behind


def test_html_has_every_kpi_section_with_its_values(example: dict[str, Any]) -> None:
    doc = parse(example["html"])
    yearly: pl.DataFrame = example["yearly"]
    sections = doc.find_all("section", cls="kpi")
    assert [s.attrs["data-kpi"] for s in sections] == list(KPIS)
    for section in sections:
        kpi = section.attrs["data-kpi"]
        rows = yearly.filter(pl.col("kpi") == kpi).to_dicts()
        heading = section.find("h2").text()
        assert rows[0]["name_ja"] in heading and kpi in heading
        assert rows[0]["name_en"] in section.text()
        table = section.find("table", cls="yearly")
        for r in rows:
            tr = table.find("tr", data_fy=str(r["fiscal_year"]))
            value, target = tr.find("td", cls="value"), tr.find("td", cls="target")
            assert value.attrs["data-value"] == raw(r["value"])
            assert value.text() == fmt(r["value"], r["unit"])
            assert target.attrs["data-value"] == raw(r["target"])
            assert tr.find("span", data_status=r["status"])
            if r["reason"]:
                assert r["reason"] in tr.text()
        # The monthly series of the focus year, month by month.
        monthly = example["monthly"].filter(
            (pl.col("kpi") == kpi) & (pl.col("fiscal_year") == FOCUS)
        )
        cells = section.find("table", cls="monthly").find("tr", cls="value").find_all("td")
        shown = [c.attrs.get("data-value") for c in cells if c.attrs.get("data-value")]
        assert shown == [raw(v) for v in monthly["value"].to_list()]
        # The department breakdown of the focus year.
        depts = example["by_department"].filter(
            (pl.col("kpi") == kpi) & (pl.col("fiscal_year") == FOCUS)
        )
        dtable = section.find("table", cls="department")
        for d in depts.to_dicts():
            cell = dtable.find("tr", data_department=d["department"]).find("td", cls="value")
            assert cell.attrs["data-value"] == raw(d["value"])
        # Three charts, each an inline SVG.
        charts = {f.attrs["data-chart"]: f for f in section.find_all("figure")}
        assert set(charts) == {"yearly", "monthly", "department"}
        assert all(f.find("svg") for f in charts.values())


def test_html_states_as_of_freshness_basis_and_no_data_reasons(example: dict[str, Any]) -> None:
    doc = parse(example["html"])
    assert doc.find("dd", data_as_of=AS_OF)
    generated = doc.find("dd", id="generated-at").text()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", generated)
    # Newest event per source, from the state.
    from workstyle.collector import config
    from workstyle.collector.ingest.status import source_status

    cfg = config.load(None, str(example["cwd"] / "collector-data"))
    for s in source_status(cfg):
        tr = doc.find("tr", data_source=s["source"])
        newest = tr.find("td", data_newest_event=str(s["newest_event"] or ""))
        if s["newest_event"] is not None:
            local = s["newest_event"].astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M")
            assert local in newest.text()
    # Every no_data KPI-year is listed with its reason.
    nodata = doc.find("ul", id="no-data")
    for r in example["yearly"].filter(pl.col("status") == "no_data").to_dicts():
        li = nodata.find("li", data_kpi=r["kpi"], data_fy=str(r["fiscal_year"]))
        assert r["reason"] and r["reason"] in li.text()
    # Paper: which basis and which months were compared.
    paper = doc.find("section", data_kpi="paper_vs_r3").find("p", cls="basis")
    assert paper.attrs["data-basis"] == "print_jobs"
    assert "complete months 04,05,06,07,08,09,10,11,12" in paper.text()


def test_html_is_self_contained(example: dict[str, Any]) -> None:
    text = example["html"]
    doc = parse(text)
    assert not doc.find_all("script") and not doc.find_all("link") and not doc.find_all("img")
    for node in doc.iter():
        for name in ("src", "href", "xlink:href"):
            value = node.attrs.get(name)
            assert value is None or value.startswith("#"), (node.tag, name, value)
    assert "@import" not in text and "@font-face" not in text
    assert not re.findall(r"url\((?!#)", text)
    # The only absolute URLs are XML namespace names, which nothing fetches.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    ids = [n.attrs["id"] for n in doc.iter() if n.attrs.get("id")]
    assert len(ids) == len(set(ids)), "ids must be unique across the inline charts"


# -- the workbook --------------------------------------------------------------------------
def _kpi_json(cwd: Path, *args: str) -> list[dict[str, Any]]:
    result = _invoke(cwd, "kpi", "--as-of", AS_OF, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_workbook_matches_kpi_json(example: dict[str, Any]) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(example["xlsx_path"], read_only=True)
    assert wb.sheetnames == ["年度別 yearly", "月別 monthly", "部局別 by department", "情報 about"]
    views = {"年度別 yearly": (), "月別 monthly": ("--by", "month")}
    views["部局別 by department"] = ("--by", "department")
    for sheet, args in views.items():
        rows = list(wb[sheet].iter_rows(values_only=True))
        head, body = rows[0], rows[1:]
        assert head[:5] == ("指標ID", "指標名", "指標名(英語)", "年度", "年度表記")
        assert {"実績値", "目標値", "単位", "状況", "年度末見込み", "基準日"} <= set(head)
        col = {h: i for i, h in enumerate(head)}
        expected = _kpi_json(example["cwd"], *args)
        assert len(body) == len(expected)
        for cells, want in zip(body, expected, strict=True):
            assert cells[col["指標ID"]] == want["kpi"]
            assert cells[col["指標名"]] == want["name_ja"]
            assert cells[col["年度"]] == want["fiscal_year"]
            assert isinstance(cells[col["年度"]], int)
            if "月" in col:
                month = cells[col["月"]]
                assert isinstance(month, dt.datetime)  # a real date, shown as yyyy-mm
                assert month.strftime("%Y-%m") == want["month"]
            if "部局" in col:
                assert cells[col["部局"]] == want["department"]
            for head_ja, key in (
                ("実績値", "value"),
                ("目標値", "target"),
                ("年度末見込み", "projected"),
            ):
                got = cells[col[head_ja]]
                if want[key] is None:
                    assert got is None
                else:
                    assert isinstance(got, float | int)
                    assert got == pytest.approx(want[key], rel=1e-12)
            assert cells[col["状況コード"]] == want["status"]
            assert cells[col["単位"]] == want["unit"]
            assert cells[col["確定"]] is want["complete"]
            assert cells[col["基準日"]].date().isoformat() == want["as_of"]
            assert (cells[col["備考"]] or None) == want["reason"]
    wb.close()


# -- in a real browser ---------------------------------------------------------------------
def _expected_marks(example: dict[str, Any]) -> dict[str, int]:
    """How many marks of each kind each chart must show, from the KPI tables."""
    marks: dict[str, int] = {}
    y, m, d = example["yearly"], example["monthly"], example["by_department"]
    for kpi in KPIS:
        rows = y.filter(pl.col("kpi") == kpi)
        valued = rows.filter(pl.col("value").is_not_null())
        marks[f"{kpi}/yearly/actual"] = valued.height
        marks[f"{kpi}/yearly/target"] = rows.filter(pl.col("target").is_not_null()).height
        open_ = valued.filter(~pl.col("complete") & pl.col("projected").is_not_null())
        marks[f"{kpi}/yearly/projected"] = open_.height
        marks[f"{kpi}/yearly/baseline"] = int(kpi in BASELINES)
        months = m.filter(
            (pl.col("kpi") == kpi)
            & (pl.col("fiscal_year") == FOCUS)
            & pl.col("value").is_not_null()
        )
        marks[f"{kpi}/monthly/point"] = months.height
        marks[f"{kpi}/monthly/target"] = int(months["target"].is_not_null().any())
        marks[f"{kpi}/monthly/projected"] = int(open_.filter(pl.col("fiscal_year") == FOCUS).height)
        depts = d.filter(
            (pl.col("kpi") == kpi)
            & (pl.col("fiscal_year") == FOCUS)
            & pl.col("value").is_not_null()
        )
        marks[f"{kpi}/department/bar"] = depts.height
        marks[f"{kpi}/department/target"] = depts["target"].is_not_null().sum()
    return {k: v for k, v in marks.items() if v}


# Counts, in the rendered page, the chart marks that have a box on screen.
COUNT_MARKS = r"""
(() => {
  const out = {};
  for (const g of document.querySelectorAll('svg.chart g[id]')) {
    const m = g.id.match(
      /^(.+)-(yearly|monthly|department)-(actual|target|projected|baseline|point|bar)(-.*)?$/);
    if (!m) continue;
    const box = g.getBBox();
    if (box.width <= 0 && box.height <= 0) continue;
    const key = m[1] + '/' + m[2] + '/' + m[3];
    out[key] = (out[key] || 0) + 1;
  }
  return out;
})()
"""


@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(),
    reason="/usr/bin/chromium is missing (Debian package chromium; .ci/apt-packages installs it)",
)
def test_browser_renders_offline_with_cjk_fonts_and_every_mark(
    example: dict[str, Any], tmp_path: Path
) -> None:
    from tests.cdp import Browser

    page = example["html_path"].resolve().as_uri()
    canary = tmp_path / "canary.html"
    canary.write_text(
        '<!DOCTYPE html><link rel="stylesheet" href="https://cdn.example.invalid/a.css">'
        '<img src="http://img.example.invalid/x.png">',
        encoding="utf-8",
    )
    with Browser() as browser:
        browser.open_page(1280, 1800)
        browser.load(page)
        shot = browser.screenshot()
        asked = browser.requests()
        marks = browser.evaluate(COUNT_MARKS)
        heading_fonts = browser.fonts_for("document.querySelector('h1')")
        label_fonts = browser.fonts_for(
            "[...document.querySelectorAll('svg.chart text')]"
            ".find(t => /[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(t.textContent))"
        )
        # The monitor itself must see a page that does fetch: the same browser, a canary.
        browser.load(canary.as_uri())
        canary_asked = browser.requests()
    assert asked == [page], f"the report asked for more than itself: {asked}"
    assert "https://cdn.example.invalid/a.css" in canary_asked
    assert "http://img.example.invalid/x.png" in canary_asked
    assert shot.startswith(b"\x89PNG") and len(shot) > 50_000
    (tmp_path / "report.png").write_bytes(shot)
    assert marks == _expected_marks(example)
    for fonts in (heading_fonts, label_fonts):
        families = {f["familyName"] for f in fonts}
        assert families and families <= CJK_FAMILIES, (
            f"Japanese text drawn with {families}: install fonts-noto-cjk (see .ci/apt-packages)"
        )


# -- errors, settings, another as-of -------------------------------------------------------
def test_report_without_kpi_tables_is_one_clear_line(tmp_path: Path) -> None:
    result = _invoke(tmp_path, "--data-dir", str(tmp_path / "empty"), "report")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "run `collector run` first" in lines[0]


def test_fy_after_the_as_of_date_is_refused(example: dict[str, Any]) -> None:
    result = _invoke(example["cwd"], "report", "--fy", "R6", "--out", "x.html")
    assert result.exit_code == 2
    assert "R6 starts after the as-of date 2023-12-31" in result.output


def test_another_as_of_recomputes_in_memory(example: dict[str, Any]) -> None:
    cwd = example["cwd"]
    kpi_file = cwd / "collector-data" / "kpi" / "yearly.parquet"
    before = kpi_file.stat().st_mtime_ns
    result = _invoke(
        cwd, "report", "--as-of", "2022-12-31", "--fy", "令和4年度", "--out", "r4.html", "--no-xlsx"
    )
    assert result.exit_code == 0, result.output
    assert not (cwd / "r4.xlsx").exists()
    assert kpi_file.stat().st_mtime_ns == before  # nothing written to the KPI tables
    doc = parse((cwd / "r4.html").read_text(encoding="utf-8"))
    assert doc.find("dd", data_as_of="2022-12-31")
    want = _invoke(cwd, "kpi", "--as-of", "2022-12-31", "--fy", "R4", "--format", "json")
    for r in json.loads(want.output):
        section = doc.find("section", data_kpi=r["kpi"])
        tr = section.find("table", cls="yearly").find("tr", data_fy="2022")
        assert tr.find("td", cls="value").attrs["data-value"] == raw(r["value"])
    # Only R3 and R4 exist on that day; the monthly views show R4.
    assert "R4 (令和4年度) 月別推移と見込み" in doc.text()


def test_report_settings_are_validated(tmp_path: Path, make_config: Any) -> None:
    from workstyle.collector import config
    from workstyle.collector.errors import ConfigError

    cfg = config.load(make_config([], report={"dir": str(tmp_path / "out"), "basename": "q"}))
    assert cfg.sections["report"] == {"dir": str(tmp_path / "out"), "basename": "q"}
    with pytest.raises(ConfigError, match=r"\[report\] key 'folder': unknown key"):
        config.load(make_config([], report={"folder": "x"}))


def test_a_kpi_without_any_data_still_renders(tmp_path: Path) -> None:
    """Hand-made KPI rows: a KPI with no data at all, charts with no marks, the reason shown."""
    from workstyle.collector.report.html import ReportData, conform, render_html

    now = dt.datetime(2024, 1, 5, 3, 0, tzinfo=dt.UTC)
    base = {
        "label": "R5",
        "month": None,
        "department": None,
        "target": 1600.0,
        "unit": "people",
        "basis": None,
        "complete": False,
        "numerator": None,
        "denominator": None,
        "as_of": dt.date(2024, 1, 4),
        "computed_at": now,
        "projected": None,
        "direction": "higher",
        "name_en": "Staff who did mobile work",
    }
    yearly = conform(
        pl.DataFrame(
            [
                {
                    **base,
                    "kpi": "mobile_work_users",
                    "fiscal_year": 2023,
                    "value": None,
                    "status": "no_data",
                    "reason": "no mobile-work session records for R5",
                    "name_ja": "モバイルワーク実施人数",
                }
            ]
        )
    )
    empty = conform(pl.DataFrame(schema={"kpi": pl.String}))
    data = ReportData(yearly, empty, empty, dt.date(2024, 1, 4), 2023, now.astimezone())
    doc = parse(render_html(data))
    section = doc.find("section", data_kpi="mobile_work_users")
    assert "データなし" in section.text()
    assert "no mobile-work session records for R5" in doc.find("ul", id="no-data").text()
    ids = [n.attrs.get("id", "") for n in section.iter()]
    assert not [i for i in ids if re.search(r"-(actual|point|bar)-", i)]
    assert [i for i in ids if "-yearly-target-R5" in i]


def test_run_writes_the_report_where_the_config_says(tmp_path: Path, make_config: Any) -> None:
    """`[report] dir` (relative to the config file) and basename; an empty dataset still reports."""
    config = make_config([], report={"dir": "reports", "basename": "quarterly"})
    result = _invoke(tmp_path, "--config", str(config), "run", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    html_path = config.parent / "reports" / "quarterly.html"
    assert (config.parent / "reports" / "quarterly.xlsx").is_file()
    doc = parse(html_path.read_text(encoding="utf-8"))
    assert [s.attrs["data-kpi"] for s in doc.find_all("section", cls="kpi")] == list(KPIS)
    # Nothing ingested: every KPI-year is no_data, and says why.
    assert len(doc.find("ul", id="no-data").find_all("li")) == len(KPIS) * 3
