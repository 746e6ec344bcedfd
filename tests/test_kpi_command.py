"""`collector kpi` through click's CliRunner, against hand-computed values."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "aggregates"))

from kpi_fixtures import SMALL_TARGETS, Fixture, d, ts

from workstyle.aggregates.targets import KPI_IDS
from workstyle.collector.cli import main


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Fixture]:
    targets = tmp_path / "targets.toml"
    targets.write_text(SMALL_TARGETS, encoding="utf-8")
    config = tmp_path / "collector.toml"
    config.write_text(
        '[collector]\ndata_dir = "data"\n[privacy]\nkey = "env:KPI_TEST_KEY"\n'
        '[targets]\nfile = "targets.toml"\n[kpi]\nmeeting_months = "with_data"\n',
        encoding="utf-8",
    )
    fx = Fixture(tmp_path / "data", targets)
    fx.put(
        "meetings",
        [
            {
                "meeting_id": f"m{i}",
                "platform": "zoom",
                "start_time": ts(f"2023-04-{i + 1:02d}T01:00Z"),
                "duration_seconds": 600,
                "participants": 3,
                "department": "総務部",
            }
            for i in range(4)
        ]
        + [
            {
                "meeting_id": "late",
                "platform": "zoom",
                "start_time": ts("2024-03-31T15:30Z"),
                "duration_seconds": 600,
                "participants": 3,
            }
        ],
    )
    fx.put(
        "paperless_meetings",
        [
            {"meeting_id": f"p{i}", "start_time": ts("2023-06-01T01:00Z"), "department": "企画部"}
            for i in range(5)
        ],
    )
    fx.put(
        "terminals",
        [
            {"terminal_id": f"t{i}", "snapshot_date": d("2023-10-01"), "vc_capable": i < 3}
            for i in range(4)
        ],
    )
    return config, fx


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["--config", str(config), "kpi", *args], env={"KPI_TEST_KEY": "x" * 32}
    )
    return result.exit_code, result.output


def test_json_matches_hand_computed(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(config, "--fy", "R5", "--as-of", "2024-03-31", "--format", "json")
    assert code == 0, out
    rows = {r["kpi"]: r for r in json.loads(out)}
    assert set(rows) == set(KPI_IDS)
    web = rows["web_meetings_per_month"]
    # 4 meetings in April 2023; the 2024-03-31T15:30Z one is April 2024 (R6).
    assert (web["value"], web["target"], web["status"]) == (4.0, 3.0, "achieved")
    assert web["fiscal_year"] == 2023 and web["label"] == "R5"
    assert web["month"] is None and web["department"] is None
    assert rows["paperless_meetings"]["value"] == 5.0
    assert rows["paperless_meetings"]["status"] == "achieved"
    assert rows["vc_capable_terminals"]["value"] == pytest.approx(75.0)
    assert rows["telework_ratio"]["status"] == "no_data"
    assert rows["paper_vs_r3"]["basis"] == "print_jobs"


def test_by_department_and_month(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(
        config, "--fy", "2023", "--as-of", "2024-03-31", "--format", "json", "--by", "department"
    )
    assert code == 0, out
    depts = {(r["kpi"], r["department"]): r["value"] for r in json.loads(out)}
    assert depts[("paperless_meetings", "企画部")] == 5.0
    code, out = _run(
        config, "--fy", "R6", "--as-of", "2024-04-30", "--format", "json", "--by", "month"
    )
    months = [r for r in json.loads(out) if r["kpi"] == "web_meetings_per_month"]
    assert [(r["month"], r["value"]) for r in months] == [("2024-04", 1.0)]


def test_table_and_csv(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(config, "--as-of", "2024-03-31")
    assert code == 0, out
    assert "Web会議実施件数" in out and "achieved" in out and "R5 (令和5年度)" in out
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "kpi", "--as-of", "2024-03-31", "--format", "csv"],
        env={"KPI_TEST_KEY": "x" * 32},
    )
    assert result.exit_code == 0
    assert result.output.startswith("\ufeffkpi,name_ja,fiscal_year")


@pytest.mark.parametrize("kpi", KPI_IDS)
def test_explain_every_kpi(setup: tuple[Path, Fixture], kpi: str) -> None:
    config, _ = setup
    code, out = _run(config, "--explain", kpi, "--fy", "R5", "--as-of", "2024-03-31")
    assert code == 0, out
    assert out.startswith(kpi)
    assert "counting rules:" in out and "source tables:" in out and "R5 (令和5年度" in out
    assert "status:" in out


def test_explain_shows_the_rule_values(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(
        config, "--explain", "web_meetings_per_month", "--fy", "R5", "--as-of", "2024-03-31"
    )
    assert '[kpi] meeting_months = "with_data"' in out
    assert "[kpi] min_participants = 2" in out
    assert "value: 4 meetings/month = 4 / 1" in out


def test_user_errors_are_one_line(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(config, "--fy", "R99x")
    assert code == 2 and "not a fiscal year" in out
    code, out = _run(config, "--fy", "R9", "--as-of", "2024-03-31")
    assert code == 2 and "after the as-of date" in out


def test_today_is_the_default_as_of(setup: tuple[Path, Fixture]) -> None:
    config, _ = setup
    code, out = _run(config, "--format", "json")
    assert code == 0
    today = dt.datetime.now(dt.UTC).date()
    assert abs((dt.date.fromisoformat(json.loads(out)[0]["as_of"]) - today).days) <= 1


def test_printer_counters_basis(setup: tuple[Path, Fixture]) -> None:
    config, fx = setup

    def delta(end: str, pages: int, kind: str = "counted") -> dict:
        return {
            "device": "JPA0000001",
            "marker": "1.1",
            "interval_start": ts(end) - dt.timedelta(hours=12),
            "interval_end": ts(end),
            "pages": pages,
            "unit": "impressions",
            "kind": kind,
        }

    fx.put(
        "printer_counter_deltas",
        [delta("2021-06-01T03:00Z", 400), delta("2023-06-01T03:00Z", 300, kind="reset")],
    )
    code, out = _run(
        config,
        "--fy",
        "R5",
        "--as-of",
        "2024-03-31",
        "--format",
        "json",
        "--basis",
        "printer_counters",
    )
    assert code == 0, out
    paper = next(r for r in json.loads(out) if r["kpi"] == "paper_vs_r3")
    assert (paper["numerator"], paper["denominator"], paper["value"]) == (300.0, 400.0, 75.0)
    assert paper["basis"] == "printer_counters (impressions)"
    assert paper["reason"] == "printer_counters (impressions): R5 vs R3, whole FY"
    code, out = _run(
        config,
        "--explain",
        "paper_vs_r3",
        "--fy",
        "R5",
        "--as-of",
        "2024-03-31",
        "--basis",
        "printer_counters",
    )
    assert code == 0, out
    assert "source tables: printer_counter_deltas" in out
    assert "reset deltas (lower bounds) in the compared period" in out
    line = next(x for x in out.splitlines() if "reset deltas (lower bounds) in the comp" in x)
    assert line.split()[-1] == "1"
    code, out = _run(config, "--basis", "sheets_guessed", "--as-of", "2024-03-31")
    assert code == 2 and "printer_counters" in out
