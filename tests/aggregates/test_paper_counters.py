"""paper_vs_r3 on the printer_counters basis: hand-computed on deltas written through the
Store, and once on deltas the real adapter derived from a real snmpd."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from kpi_fixtures import Fixture, d, ts

from tests.adapters.test_snmp_printer_counters import SNMPD, Agent
from workstyle.aggregates import engine
from workstyle.aggregates.fiscal import fiscal_year_of

UNIT_OID = "1.3.6.1.2.1.43.10.2.1.3.1.1"

IMPRESSIONS, SHEETS = "impressions", "sheets"


def _delta(
    end: str,
    pages: int,
    unit: str | None = IMPRESSIONS,
    kind: str = "counted",
    device: str = "JPA0000001",
    start: str | None = None,
) -> dict:
    end_ts = ts(end)
    return {
        "device": device,
        "marker": "1.1",
        "interval_start": ts(start) if start else end_ts - dt.timedelta(days=1),
        "interval_end": end_ts,
        "pages": pages,
        "unit": unit,
        "kind": kind,
        "host": "10.0.3.21",
    }


def _counters_fixture(fx: Fixture, unit: str = IMPRESSIONS) -> None:
    fx.put(
        "printer_counter_deltas",
        [
            # R3 (FY2021): 100 + 100 + 50 = 250.
            _delta("2021-04-10T03:00Z", 100, unit),
            _delta("2021-05-10T03:00Z", 100, unit),
            _delta("2022-03-31T14:30Z", 50, unit),  # 23:30 JST on 31 March: still R3
            # R4: 40 + 160 = 200. The 40-page interval starts in R3 but ends at 00:30 JST
            # on 1 April: a delta belongs to the FY in which its interval ends.
            _delta("2022-03-31T15:30Z", 40, unit, start="2022-03-30T03:00Z"),
            _delta("2022-06-10T03:00Z", 160, unit, kind="reset"),
            # R5: 60 in April, 30 in May (a reset: at least 30).
            _delta("2023-04-10T03:00Z", 60, unit),
            _delta("2023-05-05T03:00Z", 30, unit, kind="reset"),
        ],
    )


def _job(jid: str, at: str, sheets: int) -> dict:
    return {
        "job_id": jid,
        "printed_at": ts(at),
        "pages": sheets,
        "sheets": sheets,
        "sheets_upper_bound": False,
    }


def _yearly(result: engine.Result, fy: int) -> dict:
    rows = result.yearly().filter(pl.col("kpi") == "paper_vs_r3", pl.col("fiscal_year") == fy)
    assert rows.height == 1
    return rows.row(0, named=True)


def test_counters_whole_fy_and_fy_boundary_in_local_time(fx: Fixture) -> None:
    _counters_fixture(fx)
    result = fx.result("2023-05-20", basis="printer_counters")
    r4 = _yearly(result, 2022)
    assert (r4["numerator"], r4["denominator"]) == (200.0, 250.0)
    assert r4["value"] == pytest.approx(80.0) and r4["status"] == "achieved"  # <= 99
    assert r4["basis"] == "printer_counters (impressions)"
    assert r4["reason"] == "printer_counters (impressions): R4 vs R3, whole FY"
    r3 = _yearly(result, 2021)
    assert r3["value"] == pytest.approx(100.0) and r3["numerator"] == 250.0


def test_counters_same_period_as_the_other_bases(fx: Fixture) -> None:
    _counters_fixture(fx)
    r5 = fx.yearly("2023-05-20", "paper_vs_r3", 2023, basis="printer_counters")
    # Complete months: April only -> 60 / 100.
    assert (r5["numerator"], r5["denominator"], r5["value"]) == (60.0, 100.0, 60.0)
    assert not r5["complete"] and r5["status"] == "on_track"
    r5 = fx.yearly(
        "2023-05-20", "paper_vs_r3", 2023, basis="printer_counters", paper_same_period="days"
    )
    # Through 05-20: (60 + 30) / (100 + 100).
    assert r5["value"] == pytest.approx(45.0)
    monthly = fx.result("2023-05-20", basis="printer_counters").monthly()
    may = monthly.filter(pl.col("kpi") == "paper_vs_r3", pl.col("month") == "2023-05").row(
        0, named=True
    )
    assert (may["numerator"], may["denominator"]) == (30.0, 100.0)  # through the 20th


def test_counters_in_sheets_are_reported_as_sheets(fx: Fixture) -> None:
    _counters_fixture(fx, unit=SHEETS)
    row = fx.yearly("2023-03-31", "paper_vs_r3", 2022, basis="printer_counters")
    assert row["value"] == pytest.approx(80.0)
    assert row["basis"] == "printer_counters"
    assert row["reason"] == "printer_counters: R4 vs R3, whole FY"


def test_counters_in_other_units_do_not_count_and_units_are_named(fx: Fixture) -> None:
    _counters_fixture(fx)
    fx.put(
        "printer_counter_deltas",
        [
            _delta("2022-07-01T03:00Z", 50, SHEETS, device="JPB0000002"),
            _delta("2022-07-01T03:00Z", 9999, "lines", device="JPC0000003"),
            _delta("2022-07-02T03:00Z", 9999, None, device="JPC0000003"),
        ],
        source="s2",
    )
    result = fx.result("2023-03-31", basis="printer_counters")
    r4 = _yearly(result, 2022)
    assert (r4["numerator"], r4["denominator"]) == (250.0, 250.0)  # 40 + 160 + 50
    assert r4["basis"] == "printer_counters (impressions and sheets)"
    assert _yearly(result, 2021)["basis"] == "printer_counters (impressions)"
    counts = dict(result.outputs["paper_vs_r3"].counts[2022][:4])
    assert counts == {
        "compared period": "whole FY",
        "deltas in the FY (printer_counters)": 5,
        "pages in the FY's compared period": 250,
        "  of them impressions (a duplex sheet counts 2)": 200,
    }
    text = engine.render_explain(result, "paper_vs_r3", 2022)
    assert _lines(text)[4:8] == [
        ("of them sheets", "50"),
        ("pages in R3's same period", "250"),
        ("of them impressions (a duplex sheet counts 2)", "250"),
        ("of them sheets", "0"),
    ]
    assert _line(text, "deltas in other units (not pages, not counted)") == "2"


def test_counters_explain_counts_resets_as_lower_bounds(fx: Fixture) -> None:
    _counters_fixture(fx)
    result = fx.result("2023-05-20", basis="printer_counters", paper_same_period="days")
    text = engine.render_explain(result, "paper_vs_r3", 2023)
    assert "basis used = printer_counters (impressions)" in text
    assert "source tables: printer_counter_deltas" in text
    assert _line(text, "deltas in the FY (printer_counters)") == "2"
    assert _line(text, "reset deltas (lower bounds) in the compared period") == "1"
    assert _line(text, "reset deltas (lower bounds) in R3's same period") == "0"
    assert "note: printer_counters (impressions): R5 vs R3, through 05-20" in text
    text = engine.render_explain(result, "paper_vs_r3", 2022)
    assert _line(text, "reset deltas (lower bounds) in the compared period") == "1"


def test_counters_never_mix_with_the_other_bases(fx: Fixture) -> None:
    _counters_fixture(fx)
    fx.put(
        "print_jobs",
        [
            _job("a", "2021-06-01T01:00Z", 10),
            _job("b", "2022-06-01T01:00Z", 7),
        ],
    )
    fx.put("paper_purchases", [{"record_id": "1", "purchased_on": d("2022-06-01"), "sheets": 5}])
    counters = fx.yearly("2023-03-31", "paper_vs_r3", 2022, basis="printer_counters")
    assert (counters["numerator"], counters["denominator"]) == (200.0, 250.0)
    jobs = fx.yearly("2023-03-31", "paper_vs_r3", 2022)
    assert (jobs["numerator"], jobs["denominator"], jobs["basis"]) == (7.0, 10.0, "print_jobs")
    rule = fx.yearly("2023-03-31", "paper_vs_r3", 2022, paper_basis="printer_counters")
    assert rule["value"] == counters["value"] == pytest.approx(80.0)


def test_counters_without_data_name_the_table(fx: Fixture) -> None:
    row = fx.yearly("2023-03-31", "paper_vs_r3", 2022, basis="printer_counters")
    assert row["status"] == "no_data" and row["basis"] == "printer_counters"
    assert row["reason"] == "no printer_counter_deltas records for R4"


def test_counters_department_rows_sum_to_the_whole(fx: Fixture) -> None:
    _counters_fixture(fx)
    result = fx.result("2023-03-31", basis="printer_counters")
    dept = result.by_department().filter(
        pl.col("kpi") == "paper_vs_r3", pl.col("fiscal_year") == 2022
    )
    # A counter knows its device, not a department: all under the unknown label.
    assert dept.select("department", "numerator", "denominator").rows() == [
        ("(unknown)", 200.0, 250.0)
    ]


def _lines(text: str) -> list[tuple[str, str]]:
    """(name, value) of every count line of one FY's --explain block."""
    block = text.split("):\n", 1)[1]  # after the "R4 (令和4年度, FY2022):" header
    rows = [line.strip().rsplit(None, 1) for line in block.splitlines()]
    return [(name.strip(), value) for name, value in (r for r in rows if len(r) == 2)]


@pytest.mark.skipif(SNMPD is None, reason="net-snmp's snmpd is not installed")
def test_counters_from_the_real_adapter(tmp_path, make_config, load_config, pipeline_for) -> None:
    """Deltas as the snmp_printer_counters adapter lands them, against a real snmpd."""
    impressions = Agent(tmp_path / "a", "JPA0000001", 1000)  # the fixture's unit: 7
    sheets = Agent(tmp_path / "b", "JPB0000002", 5000)
    sheets.data[UNIT_OID] = ["integer", "8"]
    sheets.set(5000)
    source = {
        "name": "mfp",
        "kind": "snmp_printer_counters",
        "hosts": [impressions.start().host, sheets.start().host],
        # Generous: other test suites may load the machine; a live agent still answers.
        "timeout": 3.0,
        "retries": 1,
    }
    kpi = {"paper_basis": "printer_counters", "paper_same_period": "days"}
    cfg = load_config(make_config([source], kpi=kpi))
    try:
        assert pipeline_for(cfg).incremental(cfg.sources)[0].ok  # first readings: no delta
        time.sleep(1.0)  # readings are keyed by the second they were read
        impressions.set(1300)  # +300 impressions
        sheets.set(200)  # a reset: at least 200 sheets
        assert pipeline_for(cfg).incremental(cfg.sources)[0].ok
    finally:
        impressions.stop()
        sheets.stop()
    # The R3 baseline, as an earlier poll would have stored it (1 April: in any period).
    Fixture(cfg.data_dir, cfg.targets_file).put(
        "printer_counter_deltas",
        [
            _delta("2021-04-01T03:00Z", 600, IMPRESSIONS),
            _delta("2021-04-01T03:00Z", 400, SHEETS, device="JPB0000002"),
        ],
        source="r3-counters",
    )
    as_of = dt.datetime.now(ZoneInfo(cfg.timezone)).date()
    result = engine.compute(engine.context_from_config(cfg, as_of), only=("paper_vs_r3",))
    row = _yearly(result, fiscal_year_of(as_of))
    assert (row["numerator"], row["denominator"], row["value"]) == (500.0, 1000.0, 50.0)
    assert row["basis"] == "printer_counters (impressions and sheets)"
    counts = dict(result.outputs["paper_vs_r3"].counts[fiscal_year_of(as_of)])
    assert counts["reset deltas (lower bounds) in the compared period"] == 1
    assert counts["deltas in the FY (printer_counters)"] == 2


def _line(text: str, name: str) -> str:
    """The value printed after an --explain count line."""
    for line in text.splitlines():
        if line.strip().startswith(name):
            return line.strip()[len(name) :].strip()
    raise AssertionError(f"no line {name!r} in:\n{text}")
