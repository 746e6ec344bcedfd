"""The CLI end to end on the bundled example data, as a new operator runs it."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, write_config
from workstyle.collector.cli import main

EXAMPLE_SOURCES = {
    "staff-directory",
    "print-logger",
    "web-meetings",
    "paperless",
    "vpn",
    "telework-records",
    "telework-applicants",
    "terminals",
    "paper-purchases",
}


def _invoke(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(
            main, list(args), catch_exceptions=False, env={"COLLECTOR_CONFIG": None}
        )
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """`collector run` with no config, in an empty folder, once for this module."""
    cwd = tmp_path_factory.mktemp("operator")
    first = _invoke(cwd, "run", "--as-of", "2026-11-26")
    return cwd, first


def _line(output: str, source: str) -> dict[str, int]:
    line = next(ln for ln in output.splitlines() if ln.startswith(source + " "))
    return {
        k: int(v.replace(",", ""))
        for k, v in re.findall(r"(read|new|updated|unchanged|quarantined)\s+([\d,]+)", line)
    }


def test_first_run_ingests_every_example_source(example) -> None:
    cwd, first = example
    assert first.exit_code == 0, first.output
    for source in EXAMPLE_SOURCES:
        counts = _line(first.stdout, source)
        assert counts["new"] > 0, source
    assert _line(first.stdout, "print-logger")["quarantined"] == 2
    assert (cwd / "collector-data" / "print_jobs").is_dir()


def test_the_example_key_is_created_private_with_a_warning(example) -> None:
    cwd, first = example
    key = cwd / "collector-data" / "_secrets" / "pseudonym.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "created a new pseudonymisation key" in first.stderr


def test_second_run_adds_no_rows(example) -> None:
    cwd, _ = example
    second = _invoke(cwd, "run", "--as-of", "2026-11-26")
    assert second.exit_code == 0, second.output
    for source in EXAMPLE_SOURCES:
        counts = _line(second.stdout, source)
        assert counts["new"] == 0 and counts["updated"] == 0, source


def test_status_shows_every_source(example) -> None:
    cwd, _ = example
    result = _invoke(cwd, "status", "--format", "json")
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    # vpn-gateway is polled live only (enabled = false): listed, never run.
    assert set(rows) == EXAMPLE_SOURCES | {"vpn-gateway"}
    assert rows["print-logger"]["rows"] == {"print_jobs": 13480}
    assert rows["print-logger"]["quarantined"] == 2
    assert rows["vpn"]["last_run"]["outcome"] == "success"
    text = _invoke(cwd, "status").stdout
    assert "print-logger (papercut_print_logger)" in text and "quarantined      2" in text


def test_duckdb_counts_what_polars_counts(example) -> None:
    cwd, _ = example
    glob = str(cwd / "collector-data" / "print_jobs" / "**" / "*.parquet")
    duck = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=1)"
    ).fetchall()[0][0]
    pols = pl.scan_parquet(glob, hive_partitioning=True).select(pl.len()).collect().item()
    assert duck == pols == 13480


def test_no_raw_identifier_or_title_is_stored(example) -> None:
    cwd, _ = example
    needles = [
        b"s00042",
        b"S00042",
        b"100042",
        b"pref.example.lg.jp",
        b"PREF\\",
        "定例打合せ".encode(),
        "会議資料".encode(),
        "部内会議".encode(),
    ]
    data_dir = cwd / "collector-data"
    scanned = 0
    for path in data_dir.rglob("*.parquet"):
        # The quarantine too: its raw text is kept only with [privacy] quarantine_raw = true.
        blob = path.read_bytes()
        scanned += 1
        for needle in needles:
            assert needle not in blob, (path, needle)
    for path in (data_dir / "_state").rglob("*.json"):
        blob = path.read_bytes()
        for needle in needles[:5]:
            assert needle not in blob, (path, needle)
    assert scanned > 50


def test_run_ledger_has_one_row_per_source_per_run(example) -> None:
    cwd, _ = example
    ledger = pl.read_parquet(
        cwd / "collector-data" / "_runs" / "**" / "*.parquet", hive_partitioning=True
    )
    per_source = ledger.group_by("source").len()
    assert set(per_source.get_column("source")) == EXAMPLE_SOURCES
    assert ledger.get_column("run_id").n_unique() >= 2


def test_a_failing_source_does_not_stop_the_others(tmp_path, cli, key_env) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "inv.csv").write_text(
        "端末番号,棚卸日,Web会議対応\nPC-1,2023-12-01,○\n", encoding="utf-8"
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "papercut-print-log-2024-04-01.csv").write_bytes("壊れた".encode("cp932") + b"\n")
    path = write_config(
        tmp_path / "c.toml",
        {"collector": {"data_dir": str(tmp_path / "d")}, "privacy": {"key": key_env}},
        [
            {"name": "print", "kind": "papercut_print_logger", "path": str(bad)},
            {
                "name": "inv",
                "kind": "csv",
                "table": "terminals",
                "path": str(good / "*.csv"),
                "columns": {
                    "terminal_id": "端末番号",
                    "snapshot_date": "棚卸日",
                    "vc_capable": "Web会議対応",
                },
            },
        ],
    )
    result = cli("--config", str(path), "ingest")
    assert result.exit_code == 1
    assert _line(result.stdout, "inv")["new"] == 1
    assert "FAILED" in result.stdout.splitlines()[0]
    assert "not a PaperCut Print Logger CSV" in result.stdout


def test_missing_secret_is_exit_2_but_other_sources_still_land(
    tmp_path, cli, key_env, monkeypatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    good = tmp_path / "good"
    good.mkdir()
    (good / "inv.csv").write_text("id,day,vc\nPC-1,2023-12-01,○\n", encoding="utf-8")
    path = write_config(
        tmp_path / "c.toml",
        {"collector": {"data_dir": str(tmp_path / "d")}, "privacy": {"key": "env:NO_SUCH_TOKEN"}},
        [
            {
                "name": "inv",
                "kind": "csv",
                "table": "terminals",
                "path": str(good / "*.csv"),
                "columns": {"terminal_id": "id", "snapshot_date": "day", "vc_capable": "vc"},
            }
        ],
    )
    result = cli("--config", str(path), "ingest")
    assert result.exit_code == 2
    assert "environment variable NO_SUCH_TOKEN is not set" in result.stderr


def test_backfill_dry_run_writes_nothing(tmp_path, cli, make_config, copy_fixture) -> None:
    folder = copy_fixture("papercut_print_logger")
    path = make_config(
        [
            {
                "name": "print",
                "kind": "papercut_print_logger",
                "path": str(folder),
                "settle_seconds": 0,
            }
        ]
    )
    result = cli(
        "--config",
        str(path),
        "backfill",
        "--source",
        "print",
        "--from",
        "2024-04-01",
        "--to",
        "2024-04-02",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "dry run: nothing was written" in result.stdout
    assert _line(result.stdout, "print")["read"] == 11
    assert not list((tmp_path / "data").rglob("*.parquet"))


def test_backfill_resumes_after_an_interruption(
    tmp_path, cli, make_config, copy_fixture, load_config
) -> None:
    """Units committed before a failure are skipped when the same backfill runs again."""
    from workstyle.collector.config import identity_of
    from workstyle.collector.ingest.state import StateStore

    folder = copy_fixture("papercut_print_logger")
    bad = folder / "papercut-print-log-2024-04-03.csv"
    bad.write_text("not a log\n", encoding="utf-8")
    path = make_config(
        [
            {
                "name": "print",
                "kind": "papercut_print_logger",
                "path": str(folder),
                "settle_seconds": 0,
            }
        ]
    )
    args = (
        "--config",
        str(path),
        "backfill",
        "--source",
        "print",
        "--from",
        "2024-04-01",
        "--to",
        "2024-04-03",
    )
    first = cli(*args)
    assert first.exit_code == 1
    assert _line(first.stdout, "print")["new"] == 6
    cfg = load_config(path)
    states = StateStore(cfg.data_dir)
    done = list((cfg.data_dir / "_state" / "backfill").glob("*.json"))
    assert len(done) == 1 and len(json.loads(done[0].read_text())["done_units"]) == 2
    bad.unlink()
    second = cli(*args)
    assert second.exit_code == 0, second.output
    assert _line(second.stdout, "print")["read"] == 0  # both files were already committed
    assert not list((cfg.data_dir / "_state" / "backfill").glob("*.json"))
    assert states.load("print", identity_of(cfg.sources[0])).watermark is None


def test_kinds_lists_every_adapter_and_the_readme_reference_is_current(cli) -> None:
    from workstyle.adapters import kinds

    text = cli("kinds").stdout
    for kind in kinds():
        assert f"\n{kind}: " in text
    markdown = cli("kinds", "--format", "markdown").stdout.strip()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- kinds:begin -->", "<!-- kinds:end -->"
    assert begin in readme, "README.md lacks the generated source reference"
    section = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert section == markdown, (
        "README source reference is stale:"
        " run python -m workstyle.collector.cli.kinds_reference README.md"
    )


def test_json_logs_are_one_object_per_line_without_secrets(
    tmp_path, cli, make_config, copy_fixture
) -> None:
    from tests.conftest import TEST_KEY

    folder = copy_fixture("papercut_print_logger")
    path = make_config(
        [
            {
                "name": "print",
                "kind": "papercut_print_logger",
                "path": str(folder),
                "settle_seconds": 0,
            }
        ]
    )
    result = cli("--config", str(path), "--log-format", "json", "ingest")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert entries and all({"time", "level", "message"} <= set(e) for e in entries)
    assert any("print: incremental read" in e["message"] for e in entries)
    assert TEST_KEY not in result.stderr and TEST_KEY not in result.stdout
    state_files = list((tmp_path / "data" / "_state").rglob("*.json"))
    assert state_files and all(TEST_KEY not in p.read_text() for p in state_files)


def test_relative_output_dirs_in_the_config_are_relative_to_the_config(
    tmp_path, cli, make_config, copy_fixture, monkeypatch
) -> None:
    folder = copy_fixture("papercut_print_logger")
    path = make_config(
        [
            {
                "name": "print",
                "kind": "papercut_print_logger",
                "path": str(folder),
                "settle_seconds": 0,
            }
        ],
        exporter={"textfile_dir": "prom"},
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (tmp_path / "prom").mkdir()  # node_exporter's textfile directory exists already
    result = cli("--config", str(path), "run", "--as-of", "2024-04-30", cwd=elsewhere)
    assert result.exit_code == 0, result.output
    prom = (tmp_path / "prom" / "workstyle_collector.prom").read_text(encoding="utf-8")
    assert 'workstyle_source_last_run_read_rows{source="print"} 11' in prom
    assert not (elsewhere / "prom").exists()


def test_quarantine_lists_and_exports_the_rows_that_could_not_be_read(example) -> None:
    cwd, _ = example
    table = _invoke(cwd, "quarantine")
    assert table.exit_code == 0, table.output
    assert "print-logger" in table.stdout and "print_jobs" in table.stdout
    assert "2 quarantined row(s)" in table.stdout
    rows = json.loads(_invoke(cwd, "quarantine", "--format", "json").stdout)
    assert len(rows) == 2
    assert {r["source"] for r in rows} == {"print-logger"}
    for r in rows:
        assert set(r) >= {"source", "table", "run_id", "first_seen", "location", "reason", "raw"}
        assert re.search(r"\.csv:\d+$", r["location"]), r
        assert r["raw"] is None  # raw text only with [privacy] quarantine_raw = true
    run_id = rows[0]["run_id"]
    csv_out = _invoke(
        cwd, "quarantine", "--source", "print-logger", "--table", "print_jobs", "--run", run_id,
        "--format", "csv",
    )  # fmt: skip
    assert csv_out.exit_code == 0, csv_out.output
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("source,table,run_id,first_seen,location,reason")
    assert len(lines) == 1 + sum(r["run_id"] == run_id for r in rows)
    none = _invoke(cwd, "quarantine", "--source", "vpn", "--format", "json")
    assert none.exit_code == 0 and json.loads(none.stdout) == []
    unknown = _invoke(cwd, "quarantine", "--source", "no-such-source")
    assert unknown.exit_code == 2 and "no source named 'no-such-source'" in unknown.stderr


ALLOC = "dirty_decay_ms:100,muzzy_decay_ms:0"


@pytest.mark.parametrize(
    ("preset", "pool", "jemalloc"),
    [
        ({}, "jemalloc", ALLOC),
        (
            {"ARROW_DEFAULT_MEMORY_POOL": "system", "_RJEM_MALLOC_CONF": "dirty_decay_ms:5"},
            "system",
            "dirty_decay_ms:5",
        ),
        # What polars writes into the environment of a process that imported it (a
        # Python wrapper, a benchmark) and its children inherit: not the site's choice.
        ({"_RJEM_MALLOC_CONF": "dirty_decay_ms:500,muzzy_decay_ms:1000"}, "jemalloc", ALLOC),
        (
            {"_RJEM_MALLOC_CONF": "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:5"},
            "jemalloc",
            "dirty_decay_ms:5",
        ),
    ],
)
def test_the_cli_sets_allocators_that_give_memory_back_unless_the_site_did(
    preset, pool, jemalloc, tmp_path
) -> None:
    """pyarrow's default pool (mimalloc) kept ~70 MB of a re-ingest's freed reads; the
    pool chosen is the one the ingest uses (building the pipeline does not change it)."""
    import os
    import subprocess
    import sys

    (tmp_path / "in").mkdir()
    config = tmp_path / "collector.toml"
    config.write_text(
        '[collector]\ndata_dir = "data"\n\n[privacy]\nkey = "env:NO_SUCH_KEY"\n\n'
        '[[sources]]\nname = "print"\n'
        'kind = "papercut_print_logger"\npath = "in"\n',
        encoding="utf-8",
    )
    code = (
        "import os, sys, pathlib\n"
        "from workstyle.collector.cli.app import _tune_allocator\n"
        "_tune_allocator()\n"
        "conf = os.environ['_RJEM_MALLOC_CONF']\n"
        "import pyarrow as pa\n"
        "from workstyle.collector.config import load\n"
        "from workstyle.collector.ingest.pipeline import Pipeline\n"
        "from workstyle.collector.pseudonyms import Pseudonymiser\n"
        "Pipeline(load(pathlib.Path(sys.argv[1])), Pseudonymiser(b'k' * 32))\n"
        "print(pa.default_memory_pool().backend_name, conf)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ARROW_DEFAULT_MEMORY_POOL", "_RJEM_MALLOC_CONF")
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(config)],
        env={**env, **preset},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [pool, jemalloc]
