"""``collector run --textfile-dir``: the same metrics, written atomically for node_exporter."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.promserver import (
    PROMTOOL,
    add_print_log,
    requires_promtool,
    write_kpi_tables,
    write_test_config,
)
from workstyle.collector import config
from workstyle.collector.errors import ConfigError
from workstyle.collector.exporter import textfile
from workstyle.collector.exporter.settings import TEXTFILE_NAME


@pytest.fixture
def dataset(tmp_path: Path, key_env: str, cli: Callable[..., Any]) -> Path:
    cfg_path = write_test_config(tmp_path)
    add_print_log(tmp_path, "2024-04-01")
    cli("--config", str(cfg_path), "ingest")
    write_kpi_tables(tmp_path / "data")
    return cfg_path


def test_write_is_atomic_readable_and_has_no_scrape_time_metrics(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "textfile"
    out.mkdir()
    (out / TEXTFILE_NAME).write_text("# an older file\n")
    before = (out / TEXTFILE_NAME).stat().st_ino
    old_umask = os.umask(0o022)
    try:
        path = textfile.write(config.load(dataset), out)
    finally:
        os.umask(old_umask)
    assert path == out / TEXTFILE_NAME
    assert os.listdir(out) == [TEXTFILE_NAME]  # no temporary file left behind
    assert path.stat().st_ino != before  # replaced by rename, never rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    text = path.read_text()
    assert 'workstyle_kpi_value{fiscal_year="2023",kpi="web_meetings_per_month"} 1250.0' in text
    assert 'workstyle_source_last_run_quarantined_rows{source="print-honcho"} 5.0' in text
    # Ages and scrape durations would be frozen in a file: they are serve-only.
    for name in ("workstyle_exporter_data_age_seconds", "scrape_duration", "process_"):
        assert name not in text
    # node_exporter skips a whole file whose samples carry timestamps.
    assert all(
        len(line.split(" ")) == 2
        for line in text.splitlines()
        if line and not line.startswith("#") and "{" not in line
    )


@requires_promtool
def test_promtool_accepts_the_textfile(dataset: Path, tmp_path: Path) -> None:
    path = textfile.write(config.load(dataset), tmp_path)
    out = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=path.read_bytes(), capture_output=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_failed_write_leaves_the_old_file_and_no_temporary(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / TEXTFILE_NAME).write_text("old\n")

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ConfigError, match=f"cannot write .*{TEXTFILE_NAME}: No space left"):
        textfile.write(config.load(dataset), tmp_path)
    assert (tmp_path / TEXTFILE_NAME).read_text() == "old\n"
    assert not list(tmp_path.glob(f".{TEXTFILE_NAME}*"))


def test_missing_directory_is_one_clear_error(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="textfile directory .* does not exist"):
        textfile.write(config.load(dataset), tmp_path / "nope")


def test_run_writes_the_textfile_from_the_flag_and_from_config(
    tmp_path: Path, key_env: str, cli: Callable[..., Any]
) -> None:
    flag_dir, cfg_dir = tmp_path / "flag", tmp_path / "cfg"
    flag_dir.mkdir()
    cfg_dir.mkdir()
    cfg_path = write_test_config(tmp_path, textfile_dir=str(cfg_dir))
    add_print_log(tmp_path, "2024-04-01")
    result = cli("--config", str(cfg_path), "run", "--textfile-dir", str(flag_dir))
    assert result.exit_code == 1  # print-annex fails; the metrics are written all the same
    text = (flag_dir / TEXTFILE_NAME).read_text()
    assert 'workstyle_source_consecutive_failures{source="print-annex"} 1.0' in text
    assert 'workstyle_source_last_run_outcome{outcome="success",source="print-honcho"} 1.0' in text
    assert not (cfg_dir / TEXTFILE_NAME).exists()  # the flag wins over the config
    cli("--config", str(cfg_path), "run")
    text = (cfg_dir / TEXTFILE_NAME).read_text()
    assert 'workstyle_source_consecutive_failures{source="print-annex"} 2.0' in text
