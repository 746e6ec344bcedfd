"""The mobile-work-users and paper KPIs computed from what the infrastructure adapters land."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl

from workstyle.aggregates.engine import compute, context_from_config

FX = Path(__file__).resolve().parent.parent / "fixtures"


def _yearly(cfg, kpi: str, fy: int, as_of: dt.date) -> dict:
    result = compute(context_from_config(cfg, as_of=as_of), only=(kpi,))
    rows = result.yearly().filter((pl.col("kpi") == kpi) & (pl.col("fiscal_year") == fy))
    return rows.row(0, named=True)


def test_mobile_work_users_from_fortigate_asa_and_rd_gateway(
    tmp_path, make_config, load_config, pipeline_for
) -> None:
    for kind, name in (
        ("fortigate_vpn", "fgt-2024-05-13.log"),
        ("cisco_asa_vpn", "asa-2024-05-13.log"),
        ("rd_gateway", "rdg-2024-05-13.xml"),
    ):
        (tmp_path / kind).mkdir()
        shutil.copy(FX / kind / name, tmp_path / kind / name)
    sources = [
        {"name": k.replace("_", "-"), "kind": k, "paths": [str(tmp_path / k / "*")]}
        for k in ("fortigate_vpn", "cisco_asa_vpn", "rd_gateway")
    ]
    cfg = load_config(make_config(sources))
    assert all(r.ok for r in pipeline_for(cfg).incremental(cfg.sources))
    row = _yearly(cfg, "mobile_work_users", 2024, dt.date(2025, 3, 31))
    # yamada (all three gateways, one person), sato (WebVPN 45 min), tanaka (ASA, 43 h);
    # tanaka's 30-second FortiGate session alone would not qualify (< 60 s).
    assert row["value"] == 3.0


def test_paper_kpi_from_papercut_ng_and_windows_print_events(
    tmp_path, make_config, load_config, pipeline_for
) -> None:
    logs = tmp_path / "pc"
    logs.mkdir()
    shutil.copy(FX / "papercut_ng_print_log" / "printlog_2024_05_13.log", logs)  # 20 sheets
    # The R3 (FY2021) baseline: one day of the same server, 100 pages.
    line = "2021-05-13\t10:00:00 AM\tPCSRV01\tMFP-3F-A\tyamada\tyamada\tPC-21\tR3.pdf\t100\t0\n"
    (logs / "printlog_2021_05_13.log").write_text(line, encoding="utf-8")
    (tmp_path / "win").mkdir()
    shutil.copy(FX / "windows_print_events" / "print-2024-05-13.xml", tmp_path / "win")  # 13
    sources = [
        {"name": "pc", "kind": "papercut_ng_print_log", "paths": [str(logs / "*.log")]},
        {"name": "win", "kind": "windows_print_events", "paths": [str(tmp_path / "win" / "*")]},
    ]
    cfg = load_config(make_config(sources))
    assert all(r.ok for r in pipeline_for(cfg).incremental(cfg.sources))
    row = _yearly(cfg, "paper_vs_r3", 2024, dt.date(2025, 4, 30))
    assert row["basis"] == "print_jobs"
    assert (row["numerator"], row["denominator"]) == (33.0, 100.0)
    assert row["value"] == 33.0
