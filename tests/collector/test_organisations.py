"""Many organisations in one data directory: partitions, state and KPIs kept apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import write_config

AS_OF = "2025-03-31"
MIYAGI, SENDAI = "040002", "041009"


def _terminals_csv(path: Path, vc: int, other: int) -> Path:
    rows = [f"T-{i},2024-10-01,○" for i in range(vc)]
    rows += [f"T-{vc + i},2024-10-01,×" for i in range(other)]
    path.write_text("端末番号,棚卸日,Web会議対応\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _config(tmp_path: Path, name: str, key_env: str, csv: Path, **collector: Any) -> Path:
    return write_config(
        tmp_path / f"{name}.toml",
        {
            "collector": {"data_dir": str(tmp_path / "shared"), **collector},
            "privacy": {"key": key_env},
        },
        [
            {
                "name": "terminals",  # the same source name in every organisation
                "kind": "csv",
                "table": "terminals",
                "path": str(csv),
                "columns": {
                    "terminal_id": "端末番号",
                    "snapshot_date": "棚卸日",
                    "vc_capable": "Web会議対応",
                },
            }
        ],
    )


def _vc_value(cli, cfg: Path, *args: str) -> dict[str, Any]:
    out = cli("--config", str(cfg), "kpi", "--format", "json", "--as-of", AS_OF, *args)
    assert out.exit_code == 0, out.output
    rows = [r for r in json.loads(out.output) if r["kpi"] == "vc_capable_terminals"]
    return next(r for r in rows if r["fiscal_year"] == 2024)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("04000", "expected the 6-digit 地方公共団体コード"),
        ("04000a", "expected the 6-digit 地方公共団体コード"),
        ("040003", "fails the check digit (expected 040002)"),
        ("480001", "starts with prefecture 48; expected 01-47"),
    ],
)
def test_an_invalid_organisation_code_is_one_line_and_exit_2(
    cli, tmp_path: Path, key_env: str, code: str, why: str
) -> None:
    cfg = _config(
        tmp_path, "bad", key_env, _terminals_csv(tmp_path / "t.csv", 1, 0), organisation=code
    )
    result = cli("--config", str(cfg), "validate")
    assert result.exit_code == 2
    assert "[collector] key 'organisation': " in result.output and why in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("code", ["040002", "041009", "130001", "011002", "010006"])
def test_real_organisation_codes_pass_the_check_digit(code: str) -> None:
    from workstyle.collector.storage import check_organisation

    assert check_organisation(code, "x") == code


def test_two_organisations_share_one_data_dir_without_touching_each_other(
    cli, tmp_path: Path, key_env: str
) -> None:
    a = _config(
        tmp_path, "miyagi", key_env, _terminals_csv(tmp_path / "a.csv", 3, 1), organisation=MIYAGI
    )
    b = _config(
        tmp_path, "sendai", key_env, _terminals_csv(tmp_path / "b.csv", 5, 2), organisation=SENDAI
    )
    for cfg in (a, b):
        result = cli("--config", str(cfg), "run", "--as-of", AS_OF)
        assert result.exit_code == 0, result.output
    shared = tmp_path / "shared"
    for code in (MIYAGI, SENDAI):
        assert list(
            (shared / "terminals" / f"organisation={code}" / "source=terminals").rglob(
                "part-0.parquet"
            )
        )
        assert list((shared / "_state" / f"organisation={code}" / "sources").glob("*.json"))
        assert list((shared / "_runs" / f"organisation={code}").rglob("part-0.parquet"))
        yearly = pl.read_parquet(shared / "kpi" / f"organisation={code}" / "yearly.parquet")
        assert yearly["organisation"].unique().to_list() == [code]
    assert not (shared / "terminals" / "source=terminals").exists()
    assert not (shared / "kpi" / "yearly.parquet").exists()
    # Each collector's KPIs are its own; --organisation picks another or all together.
    mine, theirs = _vc_value(cli, a), _vc_value(cli, b)
    assert (mine["numerator"], mine["denominator"], mine["organisation"]) == (3, 4, MIYAGI)
    assert (theirs["numerator"], theirs["denominator"], theirs["organisation"]) == (5, 7, SENDAI)
    assert _vc_value(cli, a, "--organisation", SENDAI)["numerator"] == 5
    together = _vc_value(cli, a, "--organisation", "all")
    assert (together["numerator"], together["denominator"], together["organisation"]) == (
        8,
        11,
        None,
    )
    # A second run of one organisation rewrites nothing of the other's.
    before = {p: p.stat().st_mtime_ns for p in (shared / "terminals").rglob("*.parquet")}
    assert cli("--config", str(a), "run", "--as-of", AS_OF).exit_code == 0
    after = {p: p.stat().st_mtime_ns for p in (shared / "terminals").rglob("*.parquet")}
    assert before == after
    # The report works per organisation and across all.
    out = tmp_path / "all.html"
    result = cli(
        "--config",
        str(a),
        "report",
        "--organisation",
        "all",
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--no-xlsx",
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    # A bad code on the command line is a usage error naming the option.
    result = cli("--config", str(a), "kpi", "--organisation", "040003")
    assert result.exit_code == 2 and "fails the check digit" in result.output


def test_a_collector_without_organisation_may_not_write_into_a_shared_dataset(
    cli, tmp_path: Path, key_env: str
) -> None:
    csv = _terminals_csv(tmp_path / "a.csv", 1, 0)
    levelled = _config(tmp_path, "miyagi", key_env, csv, organisation=MIYAGI)
    assert cli("--config", str(levelled), "ingest").exit_code == 0
    plain = _config(tmp_path, "plain", key_env, csv)
    result = cli("--config", str(plain), "ingest")
    assert result.exit_code == 2
    assert "holds the data of several organisations (organisation=040002)" in result.output
    assert "set [collector] organisation" in result.output


def test_a_single_organisation_dataset_keeps_working_and_is_adopted_on_request(
    cli, tmp_path: Path, key_env: str
) -> None:
    csv = _terminals_csv(tmp_path / "a.csv", 3, 1)
    plain = _config(tmp_path, "plain", key_env, csv)
    assert cli("--config", str(plain), "run", "--as-of", AS_OF).exit_code == 0
    shared = tmp_path / "shared"
    assert list((shared / "terminals" / "source=terminals").rglob("part-0.parquet"))
    assert _vc_value(cli, plain)["numerator"] == 3
    assert _vc_value(cli, plain)["organisation"] is None

    levelled = _config(tmp_path, "miyagi", key_env, csv, organisation=MIYAGI)
    result = cli("--config", str(levelled), "adopt-organisation")
    assert result.exit_code == 0, result.output
    assert f"under organisation={MIYAGI}" in result.output
    assert not (shared / "terminals" / "source=terminals").exists()
    assert not (shared / "_state" / "sources").exists()
    assert (shared / "_state" / "writer.lock").exists()  # the lock stays where it is
    org = f"organisation={MIYAGI}"
    assert list((shared / "terminals" / org / "source=terminals").rglob("part-0.parquet"))
    assert list((shared / "_state" / org / "sources").glob("*.json"))
    # The watermark and rows carried over: the next run finds nothing new.
    result = cli("--config", str(levelled), "run", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("terminals "))
    assert " new         0 " in line, line
    assert _vc_value(cli, levelled)["numerator"] == 3
    # Running it again moves nothing.
    again = cli("--config", str(levelled), "adopt-organisation")
    assert "moved 0 file(s)" in again.output
