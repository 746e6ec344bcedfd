"""``data_dir = "s3://bucket/prefix"`` against a real S3-protocol server (moto, loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fakes.s3 import S3Server, s3_server
from workstyle.collector.cli import main

AS_OF = "2026-11-26"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def aws_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    return s3


def _invoke(cwd: Path, *args: str):  # noqa: ANN202
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_example_run_writes_into_the_bucket_not_a_local_folder(
    aws_env: S3Server, tmp_path: Path
) -> None:
    aws_env.create_bucket("red-bucket")
    result = _invoke(tmp_path, "--data-dir", "s3://red-bucket/pref", "run", "--as-of", AS_OF)
    assert not (tmp_path / "s3:").exists(), "wrote into a local folder named 's3:'"
    assert result.exit_code == 0, result.output
    keys = aws_env.keys("red-bucket")
    assert any(k.startswith("pref/print_jobs/") and k.endswith("part-0.parquet") for k in keys)
    assert "pref/kpi/yearly.parquet" in keys
    assert any(k.startswith("pref/_state/sources/") for k in keys)
    assert any(k.startswith("pref/_runs/") for k in keys)
