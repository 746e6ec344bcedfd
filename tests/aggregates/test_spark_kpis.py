"""The Spark job (deploy/spark/workstyle_kpis.py) computes the polars engine's KPI table.

On a real local Spark session (pyspark from the test extra, Java from Debian's
openjdk-17-jre-headless): over the bundled example after a real ``collector run``,
and over generated data of two organisations, the Spark job's rows equal the
polars engine's, KPI by KPI, year by year, department by department, column by
column (all but ``computed_at``). The job is loaded from its file, as spark-submit
runs it: it must not need the collector package.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, write_config
from workstyle.aggregates import engine
from workstyle.aggregates.kpis import Ctx
from workstyle.aggregates.settings import Rules
from workstyle.aggregates.targets import load_plan
from workstyle.collector import config, storage
from workstyle.collector.cli import main as collector
from workstyle.collector.ingest.reader import DatasetReader
from workstyle.schemas.kpi import KPI_FILES, KPI_RESULT

JOB = REPO / "deploy" / "spark" / "workstyle_kpis.py"
EXAMPLE_CONFIG = REPO / "config" / "example.toml"
TARGETS = REPO / "config" / "targets.toml"
KEYS = ("kpi", "fiscal_year", "month", "department")

pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
        reason="Spark needs a Java runtime: apt-get install openjdk-17-jre-headless",
    ),
    # One JVM start (~5 s) and about a dozen small Spark jobs per KPI table (~5-10 s
    # each on 2 shared cores): 25-40 s for the module.
    pytest.mark.slow,
]


def _load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workstyle_kpis", JOB)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def job() -> ModuleType:
    return _load_job()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("workstyle-kpis-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Small data: a few shuffle partitions, not 200 tasks per stage.
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.adaptive.enabled", "false")
        # Tiny inputs: compiling whole-stage code costs more than it saves.
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example ingested by a real `collector run`; returns its data_dir."""
    cwd = tmp_path_factory.mktemp("example")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        out = CliRunner().invoke(
            collector, ["run", "--as-of", "2025-03-31"], env={"COLLECTOR_CONFIG": None}
        )
    finally:
        os.chdir(old)
    assert out.exit_code == 0, out.output
    return cwd / "collector-data"


@pytest.fixture(scope="module")
def two_orgs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """bench/spark_bench.py's generator: two organisations (own staff and seed each)."""
    spec = importlib.util.spec_from_file_location("spark_bench", REPO / "bench" / "spark_bench.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = tmp_path_factory.mktemp("orgs")
    codes = bench.build(root, 2, 0.0005, distinct=True)
    assert {p.name for p in (root / "print_jobs").iterdir()} == {f"organisation={c}" for c in codes}
    return root, codes


def _example_cfg(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bundled example config (no --config, no $COLLECTOR_CONFIG) on ``data_dir``."""
    import dataclasses

    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    return dataclasses.replace(config.load(None), data_dir=data_dir)


def _polars(ctx: Ctx) -> list[dict[str, Any]]:
    return engine.compute(ctx).frame.drop("computed_at").to_dicts()


def assert_same_table(spark_rows: list[dict[str, Any]], polars_rows: list[dict[str, Any]]) -> None:
    """Row for row (by KPI, FY, month, department) and column for column."""

    def keyed(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        out = {tuple(r[k] for k in KEYS): r for r in rows}
        assert len(out) == len(rows), "duplicate KPI rows"
        return out

    ours, theirs = keyed(spark_rows), keyed(polars_rows)
    assert sorted(ours, key=str) == sorted(theirs, key=str), {
        "only in spark": sorted(set(ours) - set(theirs), key=str)[:5],
        "only in polars": sorted(set(theirs) - set(ours), key=str)[:5],
    }
    for key, want in theirs.items():
        got = ours[key]
        for col, value in want.items():
            if isinstance(value, float):
                assert got[col] == pytest.approx(value, rel=1e-12), (key, col)
            else:
                assert got[col] == value, (key, col, got[col], value)
    kpis = {r["kpi"] for r in polars_rows}
    assert len(kpis) == 6


def test_example_in_progress_fy_matches_polars(
    spark: Any, job: ModuleType, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FY R6 in progress: projections, the same-period paper rule, FY-to-date months."""
    as_of = "2024-11-15"
    cfg = _example_cfg(example, monkeypatch)
    want = _polars(engine.context_from_config(cfg, as_of=dt.date.fromisoformat(as_of)))
    key = example / "_secrets" / "pseudonym.key"
    j, _ = job.job_from_args(
        spark,
        [str(example), "--config", str(EXAMPLE_CONFIG), "--targets", str(TARGETS)]
        + ["--as-of", as_of, "--pseudonym-key", f"file:{key}"],
    )
    assert j.excluded, "the example's excluded account is pseudonymised with its key"
    got = job.compute(j)
    assert_same_table([{k: v for k, v in r.items() if k != "computed_at"} for r in got], want)
    # Department rows resolved through the directory, with the 1 April transfers.
    depts = {r["department"] for r in want if r["kpi"] == "mobile_work_users"}
    assert len(depts - {None}) > 3


def test_example_other_rules_and_basis_written_by_main(
    spark: Any, job: ModuleType, example: Path, tmp_path: Path
) -> None:
    """Non-default [kpi] rules and the paper_purchases basis, through main() and its files."""
    rules = {
        "min_meeting_minutes": 30,
        "min_participants": 3,
        "meeting_months": "all",
        "min_session_seconds": 600,
        "count_half_days": False,
        "leavers": "exclude",
        "paper_same_period": "days",
        "excluded_accounts": ["svc-backup"],
    }
    # The example's data with other [kpi] rules, its key named in [privacy], a named plan.
    key = example / "_secrets" / "pseudonym.key"
    sections = {
        "collector": {"data_dir": str(example), "timezone": "Asia/Tokyo"},
        "privacy": {"key": f"file:{key}"},
        "kpi": rules,
        "targets": {"file": str(TARGETS)},
    }
    cfg_path = write_config(tmp_path / "collector.toml", sections, [])
    as_of = "2024-08-20"
    cfg = config.load(cfg_path)
    want = _polars(
        engine.context_from_config(cfg, as_of=dt.date.fromisoformat(as_of), basis="paper_purchases")
    )
    out = tmp_path / "kpi-spark"
    code = job.main(
        [str(example), "--config", str(cfg_path), "--as-of", as_of]
        + ["--basis", "paper_purchases", "--out", str(out)]
    )
    assert code == 0
    got: list[dict[str, Any]] = []
    for name in KPI_FILES:
        table = pq.read_table(out / f"{name}.parquet")
        # The KPI table schema: every column, in order, with its type (Spark writes
        # every Parquet column as nullable; the required ones hold no nulls).
        assert table.schema.names == KPI_RESULT.names
        for f in KPI_RESULT:
            assert table.schema.field(f.name).type == f.type, f.name
            if not f.nullable:
                assert table.column(f.name).null_count == 0, f.name
        got += pl.from_arrow(table).drop("computed_at").to_dicts()
    # yearly + monthly + by_department hold every row once.
    assert_same_table(got, want)
    paper = [r for r in want if r["kpi"] == "paper_vs_r3" and r["department"] is None]
    assert {r["basis"] for r in paper} == {"paper_purchases"}


def test_two_generated_organisations_match_polars(
    spark: Any, job: ModuleType, two_orgs: tuple[Path, list[str]]
) -> None:
    """Every organisation together (``all``), and one of them, as `collector kpi --organisation`."""
    root, codes = two_orgs
    as_of = "2024-11-15"
    for organisation in ("all", codes[1]):
        location = storage.local(root).with_organisation(organisation)
        ctx = Ctx(
            DatasetReader.at(location),
            Rules(),
            load_plan(TARGETS),
            dt.date.fromisoformat(as_of),
            organisation=None if organisation == "all" else organisation,
        )
        want = _polars(ctx)
        j, _ = job.job_from_args(
            spark,
            [str(root), "--as-of", as_of, "--targets", str(TARGETS)]
            + ["--organisation", organisation],
        )
        got = [{k: v for k, v in r.items() if k != "computed_at"} for r in job.compute(j)]
        assert_same_table(got, want)
        assert {r["organisation"] for r in got} == {None if organisation == "all" else codes[1]}
        mobile = [
            r["value"]
            for r in want
            if r["kpi"] == "mobile_work_users" and r["month"] is None and r["department"] is None
        ]
        assert max(v or 0 for v in mobile) > 0


def test_a_usage_error_is_one_line_and_exit_2(
    spark: Any, job: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "collector.toml"
    bad.write_text('[kpi]\nleavers = "sometimes"\n', encoding="utf-8")
    assert job.main([str(tmp_path), "--config", str(bad), "--targets", str(TARGETS)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "leavers" in err and str(bad) in err
    assert job.main([str(tmp_path), "--config", str(EXAMPLE_CONFIG)]) == 2
    assert "--targets" in capsys.readouterr().err


def test_the_job_imports_only_the_standard_library_and_pyspark() -> None:
    """spark-submit ships one file: nothing of the collector package may be imported."""
    import ast

    tree = ast.parse(JOB.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - {"__future__", "pyspark"} <= sys.stdlib_module_names, roots
