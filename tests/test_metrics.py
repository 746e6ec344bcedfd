"""The custom collector: KPI and source-health metrics from KPI tables and state only."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from tests.promserver import (
    PAPERCUT,
    PROMTOOL,
    add_print_log,
    kpi_row,
    requires_promtool,
    write_kpi_tables,
    write_test_config,
)
from workstyle.collector import config
from workstyle.collector.errors import ConfigError
from workstyle.collector.exporter.families import (
    LABEL_NAMES,
    WorkstyleCollector,
    achievement,
    registry,
)
from workstyle.collector.exporter.settings import parse_listen, settings


@pytest.fixture
def dataset(tmp_path: Path, key_env: str, cli: Callable[..., Any]) -> Path:
    """A config whose data dir holds a real ingest (one failing source) and KPI tables."""
    cfg_path = write_test_config(tmp_path)
    add_print_log(tmp_path, "2024-04-01")
    result = cli("--config", str(cfg_path), "ingest")
    assert result.exit_code == 1, result.output  # print-annex fails by design
    write_kpi_tables(tmp_path / "data")
    return cfg_path


def samples(reg: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value for m in reg.collect() for s in m.samples
    }


def value(reg: Any, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def test_kpi_values_targets_status_and_direction_aware_achievement(dataset: Path) -> None:
    reg, _ = registry(config.load(dataset))
    fy23 = {"kpi": "web_meetings_per_month", "fiscal_year": "2023"}
    assert value(reg, "workstyle_kpi_value", **fy23) == 1250.0
    assert value(reg, "workstyle_kpi_target", **fy23) == 1200.0
    assert value(reg, "workstyle_kpi_achievement_ratio", **fy23) == pytest.approx(1250 / 1200)
    # Percentages are exported as ratios; lower is better for paper: target / value.
    paper = {"kpi": "paper_vs_r3", "fiscal_year": "2024"}
    assert value(reg, "workstyle_kpi_value", **paper) == pytest.approx(0.99)
    assert value(reg, "workstyle_kpi_target", **paper) == pytest.approx(0.97)
    assert value(reg, "workstyle_kpi_achievement_ratio", **paper) == pytest.approx(97 / 99)
    assert value(reg, "workstyle_kpi_info", kpi="paper_vs_r3", unit="ratio", better="lower") == 1.0
    # Status is one series per possible status, exactly one of them 1.
    statuses = {
        s: value(reg, "workstyle_kpi_status", **paper, status=s)
        for s in ("achieved", "on_track", "behind", "no_data")
    }
    assert statuses == {"achieved": 0.0, "on_track": 1.0, "behind": 0.0, "no_data": 0.0}
    assert value(reg, "workstyle_kpi_fiscal_year_complete", **paper) == 0.0
    # no_data: a status, but no value, target or achievement.
    empty = {"kpi": "paperless_meetings", "fiscal_year": "2021"}
    assert value(reg, "workstyle_kpi_status", **empty, status="no_data") == 1.0
    assert value(reg, "workstyle_kpi_value", **empty) is None
    assert value(reg, "workstyle_kpi_achievement_ratio", **empty) is None


def test_monthly_series_and_the_month_in_progress(dataset: Path) -> None:
    reg, _ = registry(config.load(dataset))
    kpi = "web_meetings_per_month"
    assert (
        value(reg, "workstyle_kpi_monthly_value", kpi=kpi, fiscal_year="2024", month="2024-04")
        == 1300.0
    )
    # as_of is 2024-05-20: May is the month in progress.
    assert value(reg, "workstyle_kpi_current_month_value", kpi=kpi) == 900.0
    assert value(reg, "workstyle_kpi_current_month_target", kpi=kpi) == 1400.0
    assert (
        value(reg, "workstyle_kpi_computed_timestamp_seconds")
        == dt.datetime(2024, 5, 20, 17, 5, tzinfo=dt.UTC).timestamp()
    )
    # Local midnight of the as-of date (Asia/Tokyo).
    assert (
        value(reg, "workstyle_kpi_as_of_timestamp_seconds")
        == dt.datetime(2024, 5, 19, 15, 0, tzinfo=dt.UTC).timestamp()
    )


def test_source_health_from_the_state_of_a_real_run(dataset: Path) -> None:
    cfg = config.load(dataset)
    reg, _ = registry(cfg)
    ok = {"source": "print-honcho"}
    assert value(reg, "workstyle_source_last_run_outcome", **ok, outcome="success") == 1.0
    assert value(reg, "workstyle_source_last_run_outcome", **ok, outcome="failed") == 0.0
    assert value(reg, "workstyle_source_last_run_read_rows", **ok) == 9.0
    assert value(reg, "workstyle_source_last_run_ingested_rows", **ok) == 4.0
    assert value(reg, "workstyle_source_last_run_quarantined_rows", **ok) == 5.0
    assert value(reg, "workstyle_source_consecutive_failures", **ok) == 0.0
    # The newest job in the fixture: 2024-04-01 17:45:59 Tokyo time.
    assert (
        value(reg, "workstyle_source_newest_event_timestamp_seconds", **ok)
        == dt.datetime(2024, 4, 1, 8, 45, 59, tzinfo=dt.UTC).timestamp()
    )
    success = value(reg, "workstyle_source_last_success_timestamp_seconds", **ok)
    assert success is not None and abs(success - dt.datetime.now(dt.UTC).timestamp()) < 120
    assert value(reg, "workstyle_source_last_run_duration_seconds", **ok) >= 0
    assert (
        value(reg, "workstyle_source_info", source="print-honcho", kind="papercut_print_logger")
        == 1.0
    )

    bad = {"source": "print-annex"}
    assert value(reg, "workstyle_source_last_run_outcome", **bad, outcome="failed") == 1.0
    assert value(reg, "workstyle_source_consecutive_failures", **bad) == 1.0
    assert value(reg, "workstyle_source_last_success_timestamp_seconds", **bad) is None

    # Disabled and never run: listed, all outcomes 0, no timestamps.
    never = {"source": "print-retired"}
    assert value(reg, "workstyle_source_enabled", **never) == 0.0
    assert value(reg, "workstyle_source_last_run_outcome", **never, outcome="success") == 0.0
    assert value(reg, "workstyle_source_last_run_timestamp_seconds", **never) is None
    assert value(reg, "workstyle_exporter_up") == 1.0


def test_changed_files_are_reloaded_and_unchanged_ones_are_not(
    dataset: Path, cli: Callable[..., Any]
) -> None:
    cfg = config.load(dataset)
    reg, collector = registry(cfg)
    fy23 = {"kpi": "web_meetings_per_month", "fiscal_year": "2023"}
    assert value(reg, "workstyle_kpi_value", **fy23) == 1250.0
    for _ in range(3):
        list(reg.collect())
    assert collector.yearly.loads == 1  # scrapes only stat the files

    write_kpi_tables(
        cfg.data_dir,
        yearly=[
            kpi_row("web_meetings_per_month", 2023, 1333.0, 1200.0, "meetings/month", "achieved")
        ],
    )
    assert value(reg, "workstyle_kpi_value", **fy23) == 1333.0
    # A KPI-year that disappeared from the table disappears from the metrics.
    assert value(reg, "workstyle_kpi_value", kpi="paper_vs_r3", fiscal_year="2023") is None

    add_print_log(dataset.parent, "2024-04-02")
    cli("--config", str(dataset), "ingest")
    assert value(reg, "workstyle_source_consecutive_failures", source="print-annex") == 2.0
    assert value(reg, "workstyle_source_last_run_read_rows", source="print-honcho") == 2.0


def test_corrupt_kpi_file_is_a_metric_not_an_error_and_last_good_values_stay(
    dataset: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI run by the fixture stops "collector" logs from reaching caplog's root handler.
    monkeypatch.setattr(logging.getLogger("collector"), "propagate", True)
    cfg = config.load(dataset)
    reg, _ = registry(cfg)
    yearly = cfg.data_dir / "kpi" / "yearly.parquet"
    assert value(reg, "workstyle_exporter_input_up", input="kpi_yearly") == 1.0
    yearly.write_bytes(b"PAR1 this is not parquet")
    assert value(reg, "workstyle_exporter_input_up", input="kpi_yearly") == 0.0
    assert value(reg, "workstyle_exporter_up") == 0.0
    assert (
        value(reg, "workstyle_kpi_value", kpi="web_meetings_per_month", fiscal_year="2023")
        == 1250.0
    )
    assert value(reg, "workstyle_source_consecutive_failures", source="print-annex") == 1.0
    # Logged when it turned bad, with the file, and not again on every scrape. (Count
    # growth, not records: some pytest versions capture a propagated record twice.)
    logged = sum("unreadable" in r.message for r in caplog.records)
    assert logged >= 1
    for _ in range(3):
        list(reg.collect())
    assert sum("unreadable" in r.message for r in caplog.records) == logged
    assert str(yearly) in caplog.text

    write_kpi_tables(cfg.data_dir)
    assert value(reg, "workstyle_exporter_input_up", input="kpi_yearly") == 1.0


def test_missing_kpi_tables_and_bad_state_are_reported(dataset: Path) -> None:
    cfg = config.load(dataset)
    for f in (cfg.data_dir / "kpi").iterdir():
        f.unlink()
    state = cfg.data_dir / "_state" / "summary" / "print-honcho.json"
    state.write_text("{not json")
    reg, _ = registry(cfg)
    assert value(reg, "workstyle_exporter_input_up", input="kpi_yearly") == 0.0
    assert value(reg, "workstyle_exporter_input_up", input="kpi_monthly") == 0.0
    assert value(reg, "workstyle_exporter_input_up", input="state") == 0.0
    assert not [k for k in samples(reg) if k[0] == "workstyle_kpi_value"]
    assert value(reg, "workstyle_exporter_data_age_seconds") is None
    # The other sources are still reported.
    assert value(reg, "workstyle_source_consecutive_failures", source="print-annex") == 1.0


def test_a_file_with_unexpected_columns_or_labels_is_rejected(dataset: Path) -> None:
    cfg = config.load(dataset)
    write_kpi_tables(
        cfg.data_dir, yearly=[kpi_row("Web Meetings!", 2023, 1.0, 1.0, "x", "achieved")]
    )
    reg, _ = registry(cfg)
    assert value(reg, "workstyle_exporter_input_up", input="kpi_yearly") == 0.0
    assert not [k for k in samples(reg) if k[0] == "workstyle_kpi_value"]


def test_labels_are_bounded_and_never_identify_people_or_documents(dataset: Path) -> None:
    reg, _ = registry(config.load(dataset))
    keys = samples(reg)
    names = {label for _, labels in keys for label, _ in labels}
    assert names <= LABEL_NAMES
    assert not names & {
        "user",
        "person",
        "department",
        "document",
        "meeting",
        "printer",
        "client",
        "title",
        "topic",
    }
    label_values = {v for _, labels in keys for _, v in labels}
    # Every user, document, printer and client name of the ingested fixture.
    text = (PAPERCUT / "papercut-print-log-2024-04-01.csv").read_text(encoding="utf-8-sig")
    fixture_values = {
        field.strip('"') for line in text.splitlines()[2:] for field in line.split(",")[1:9]
    } - {"", "1", "2", "3", "4", "5"}
    assert not label_values & fixture_values
    assert "総務部" not in label_values  # department rows are not exported


def test_projection_of_the_year_in_progress(dataset: Path) -> None:
    reg, _ = registry(config.load(dataset))
    paper = {"kpi": "paper_vs_r3"}
    assert value(reg, "workstyle_kpi_projected", **paper, fiscal_year="2024") == 0.965
    assert value(reg, "workstyle_kpi_projected", **paper, fiscal_year="2023") is None


def test_direction_in_the_kpi_table_wins_over_the_targets_file(dataset: Path) -> None:
    cfg = config.load(dataset)
    row = kpi_row("paper_vs_r3", 2023, 97.5, 98.0, "%", "achieved", direction="higher")
    write_kpi_tables(cfg.data_dir, yearly=[row])
    reg, _ = registry(cfg)
    labels = {"kpi": "paper_vs_r3", "fiscal_year": "2023"}
    assert value(reg, "workstyle_kpi_achievement_ratio", **labels) == pytest.approx(97.5 / 98)
    assert value(reg, "workstyle_kpi_info", kpi="paper_vs_r3", unit="ratio", better="higher") == 1.0


def test_achievement_is_direction_aware() -> None:
    assert achievement(1400, 1400, "higher") == 1.0
    assert achievement(700, 1400, "higher") == 0.5
    assert achievement(97, 97, "lower") == 1.0
    assert achievement(99, 97, "lower") == pytest.approx(0.9798, abs=1e-4)
    assert achievement(1, 1, None) is None  # unknown direction: no guess
    assert achievement(None, 1, "higher") is None
    assert achievement(1, 0, "higher") is None
    assert achievement(0, 97, "lower") is None


def test_direction_from_the_targets_file_when_the_table_has_none(dataset: Path) -> None:
    """The bundled targets.toml says paper_vs_r3 is 'lower', the others 'higher'."""
    cfg = config.load(dataset)
    collector = WorkstyleCollector(cfg)
    collector.refresh()
    directions = collector.targets.value
    assert directions["paper_vs_r3"] == "lower"
    assert directions["web_meetings_per_month"] == "higher"


@requires_promtool
def test_promtool_accepts_the_exposition(dataset: Path) -> None:
    reg, _ = registry(config.load(dataset))
    out = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=generate_latest(reg), capture_output=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen(":9464") == ("0.0.0.0", 9464)
    for bad in ("9464", "localhost", "::1:9464", "host:99999", "[zz]:1"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_exporter_config_errors_are_one_line(tmp_path: Path, key_env: str) -> None:
    cfg_path = write_test_config(tmp_path, listen="localhost", tls_cert_file="cert.pem")
    cfg = config.load(cfg_path)
    with pytest.raises(ConfigError, match=r"\[exporter\] key 'listen': expected host:port"):
        settings(cfg)
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file must be given"):
        settings(cfg, listen="127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"key 'tls_cert_file': .*cert.pem does not exist"):
        settings(cfg, listen="127.0.0.1:1", tls_key_file=str(cfg_path))
    text = cfg_path.read_text().replace("[exporter]", "[exporter]\nport = 1")
    cfg_path.write_text(text)
    with pytest.raises(ConfigError, match=r"\[exporter\] key 'port': unknown key"):
        config.load(cfg_path)


def test_a_scrape_never_reads_more_than_the_inputs(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scrapes open no file when nothing changed (the dataset is never scanned)."""
    reg, _ = registry(config.load(dataset))
    list(reg.collect())
    opened: list[str] = []
    real_open = open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: spy(self, *a, **k))
    list(reg.collect())
    assert opened == []
