"""Privacy by default: no raw identifiers, secrets or device names anywhere the collector writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.collector.scan import find
from tests.conftest import TEST_KEY

PRINT = {"name": "print", "kind": "papercut_print_logger"}
#: What the PaperCut fixture holds that identifies a person or their PC.
PEOPLE = ["tyamada", "TYAMADA", "hsato", "kito"]
PCS = ["PC00101", "PC00233", "PC00301"]
TITLES = ["会議資料_第1回", "予算要求書", "説明資料"]


@pytest.fixture
def permissive_umask():
    old = os.umask(0o022)  # what cron gives a job
    yield
    os.umask(old)


def _quarantine(data: Path) -> pl.DataFrame:
    return pl.read_parquet(data / "_quarantine" / "**" / "*.parquet", hive_partitioning=True)


def test_quarantine_keeps_location_reason_and_field_count_but_no_raw_text_by_default(
    make_config, copy_fixture, cli, tmp_path
) -> None:
    path = make_config([{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}])
    result = cli("--config", str(path), "ingest")
    assert result.exit_code == 0, result.output
    q = _quarantine(tmp_path / "data")
    assert q.height >= 3
    assert q.get_column("raw").null_count() == q.height
    assert q.get_column("location").str.contains(r"papercut-print-log-2024-04-01\.csv:\d+").all()
    assert q.get_column("reason").str.len_chars().min() > 0
    assert (q.get_column("fields") > 0).all()


def test_quarantine_raw_is_kept_when_asked(make_config, copy_fixture, cli, tmp_path) -> None:
    path = make_config(
        [{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}],
        privacy={"quarantine_raw": True},
    )
    assert cli("--config", str(path), "ingest").exit_code == 0
    q = _quarantine(tmp_path / "data")
    assert q.get_column("raw").null_count() == 0
    assert q.get_column("raw").str.contains("hsato").any()


def test_everything_under_data_dir_is_owner_only_whatever_the_umask(
    make_config, copy_fixture, cli, tmp_path, permissive_umask
) -> None:
    path = make_config([{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}])
    result = cli("--config", str(path), "run")
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    wrong = []
    for p in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        expected = 0o700 if p.is_dir() else 0o600
        if mode != expected:
            wrong.append(f"{p.relative_to(tmp_path)} {mode:o}")
    assert not wrong, wrong


def _print_jobs(data: Path) -> pl.DataFrame:
    return pl.read_parquet(data / "print_jobs" / "**" / "*.parquet", hive_partitioning=True)


def test_pc_names_are_pseudonymised_in_their_own_namespace(
    make_config, copy_fixture, cli, tmp_path
) -> None:
    from workstyle.collector.pseudonyms import Pseudonymiser

    path = make_config([{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}])
    assert cli("--config", str(path), "ingest").exit_code == 0
    jobs = _print_jobs(tmp_path / "data")
    clients = set(jobs.get_column("client").drop_nulls())
    assert len(clients) == 3  # three PCs, still told apart
    assert not clients & set(PCS) and not {c.lower() for c in PCS} & clients
    # Not the person namespace: a PC named like an account does not share its pseudonym.
    people = Pseudonymiser(TEST_KEY.encode())
    assert not clients & {people.one(pc) for pc in PCS}


def test_a_source_may_keep_device_names(make_config, copy_fixture, cli, tmp_path) -> None:
    path = make_config(
        [
            {
                **PRINT,
                "path": str(copy_fixture("papercut_print_logger")),
                "keep_device_names": True,
            }
        ]
    )
    assert cli("--config", str(path), "ingest").exit_code == 0
    assert set(_print_jobs(tmp_path / "data").get_column("client").drop_nulls()) == set(PCS)


def _metrics(cfg: Any) -> str:
    """One scrape of the real exporter application."""
    from wsgiref.util import setup_testing_defaults

    from workstyle.collector.exporter.server import make_app

    environ: dict[str, Any] = {"PATH_INFO": "/metrics"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(make_app(cfg)(environ, lambda s, h: status.append(s)))
    assert status[0].startswith("200")
    return body.decode()


def test_nothing_written_or_shown_holds_an_identifier_title_or_secret(
    make_config, copy_fixture, cli, tmp_path, permissive_umask
) -> None:
    from workstyle.collector import config

    path = make_config([{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}])
    prom, report = tmp_path / "prom", tmp_path / "report"
    prom.mkdir()
    outputs = []
    # The report once (it is the slow part); the JSON logs of a second run.
    for fmt, extra in (("text", ["--report", str(report)]), ("json", [])):
        result = cli(
            "--config", str(path), "--log-format", fmt, "-v", "run",
            "--textfile-dir", str(prom), *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs += [result.stdout, result.stderr]
    for command in (["status"], ["status", "--format", "json"], ["quarantine"]):
        result = cli("--config", str(path), *command)
        assert result.exit_code == 0, result.output
        outputs += [result.stdout, result.stderr]
    outputs.append(_metrics(config.load(path)))
    assert any(f.suffix == ".prom" for f in prom.iterdir())
    assert any(f.suffix == ".html" for f in report.iterdir())
    hits = find([*PEOPLE, *PCS, *TITLES, TEST_KEY], tmp_path / "data", prom, report, extra=outputs)
    assert not hits, hits


def test_the_threat_model_and_column_reference_are_documented() -> None:
    from tests.conftest import REPO
    from workstyle import schemas

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "quarantine_raw = false" in readme
    assert "raw identifiers" in readme
    security = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    for heading in (
        "## What is stored",
        "## Who can read it",
        "## What leaves the machine",
        "## Rotating the pseudonymisation key",
    ):
        assert heading in security, heading
    for name, spec in schemas.TABLES.items():
        assert f"### `{name}`" in security, name
        for col in spec.columns:
            assert f"`{col}`" in security, (name, col)
