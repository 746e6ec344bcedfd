"""``collector serve``: HTTP endpoints, TLS, and a real Prometheus scraping it."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.promserver import (
    EXAMPLE_AS_OF,
    JOB,
    PROMTOOL,
    Target,
    add_print_log,
    collector_cli,
    example,  # noqa: F401 - session fixture
    example_cli,
    http_get,
    kpi_row,
    prometheus_server,  # noqa: F401 - session fixture
    requires_promtool,
    served,  # noqa: F401 - session fixture
    write_kpi_tables,
    write_test_config,
)
from workstyle.collector import config
from workstyle.collector.exporter.server import build_server
from workstyle.collector.exporter.settings import settings


@pytest.fixture
def dataset(tmp_path: Path, key_env: str, cli: Callable[..., Any]) -> Path:
    cfg_path = write_test_config(tmp_path)
    add_print_log(tmp_path, "2024-04-01")
    cli("--config", str(cfg_path), "ingest")
    write_kpi_tables(tmp_path / "data")
    return cfg_path


def _start(cfg_path: Path, **overrides: str) -> tuple[Any, str]:
    cfg = config.load(cfg_path)
    server = build_server(cfg, settings(cfg, listen="127.0.0.1:0", **overrides))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    scheme = "https" if overrides.get("tls_cert_file") else "http"
    return server, f"{scheme}://{host}:{port}"


@pytest.fixture
def server(dataset: Path) -> Iterator[str]:
    srv, url = _start(dataset)
    yield url
    srv.shutdown()
    srv.server_close()


def test_endpoints(server: str) -> None:
    status, body = http_get(f"{server}/metrics")
    assert status == 200
    assert b'workstyle_kpi_value{fiscal_year="2023",kpi="web_meetings_per_month"} 1250.0' in body
    assert b"process_resident_memory_bytes" in body
    assert b"workstyle_exporter_scrape_duration_seconds" in body
    status, body = http_get(f"{server}/healthz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ok",
        "inputs": {"kpi_yearly": "ok", "kpi_monthly": "ok", "targets": "ok", "state": "ok"},
    }
    status, body = http_get(f"{server}/")
    assert status == 200 and b'href="/metrics"' in body
    assert http_get(f"{server}/nope")[0] == 404


def test_corrupt_kpi_file_is_served_as_a_health_metric_not_a_500(
    dataset: Path, server: str
) -> None:
    (dataset.parent / "data" / "kpi" / "yearly.parquet").write_bytes(b"garbage")
    (dataset.parent / "data" / "kpi" / "monthly.parquet").unlink()
    status, body = http_get(f"{server}/metrics")
    assert status == 200
    assert b'workstyle_exporter_input_up{input="kpi_yearly"} 0.0' in body
    assert b'workstyle_exporter_input_up{input="kpi_monthly"} 0.0' in body
    assert b"workstyle_exporter_up 0.0" in body
    status, body = http_get(f"{server}/healthz")
    assert status == 200 and json.loads(body)["inputs"]["kpi_yearly"] == "error"


@requires_promtool
def test_promtool_accepts_the_live_exposition(server: str) -> None:
    _, body = http_get(f"{server}/metrics")
    out = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (apt-get install openssl)")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test ca",
    )
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (folder / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            f"{name}.pem",
            "-extfile",
            f"{name}.ext",
        )
    return {
        f"{n}.{e}": folder / f"{n}.{e}" for n in ("ca", "server", "client") for e in ("pem", "key")
    }


def test_tls_with_client_certificates(dataset: Path, tmp_path: Path) -> None:
    certs = _certificates(tmp_path)
    srv, url = _start(
        dataset,
        tls_cert_file=str(certs["server.pem"]),
        tls_key_file=str(certs["server.key"]),
        client_ca_file=str(certs["ca.pem"]),
    )
    try:
        ctx = ssl.create_default_context(cafile=certs["ca.pem"])
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
            # No client certificate: the handshake is refused.
            urllib.request.urlopen(f"{url}/metrics", context=ctx, timeout=5).read()
        ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
        with urllib.request.urlopen(f"{url}/metrics", context=ctx, timeout=5) as resp:
            assert resp.status == 200
            assert b"workstyle_kpi_value" in resp.read()
    finally:
        srv.shutdown()
        srv.server_close()


def test_serve_errors_are_one_line(dataset: Path, tmp_path: Path) -> None:
    result = collector_cli(dataset, "serve", "--listen", "localhost")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {dataset}: [exporter] key 'listen': expected host:port like"
        " '127.0.0.1:9464' or '[::1]:9464', got 'localhost'"
    ]
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = collector_cli(
        dataset,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert-file",
        str(bad),
        "--tls-key-file",
        str(bad),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: [exporter] cannot load TLS certificate {bad}"
    )


# -- a real Prometheus -------------------------------------------------------------------------
def test_prometheus_scrapes_kpis_and_source_health(served: Target) -> None:  # noqa: F811
    assert served.values(f'up{{job="{JOB}"}}') == {(): 1.0}
    kpi = served.values("workstyle_kpi_value")
    assert kpi[(("fiscal_year", "2023"), ("kpi", "web_meetings_per_month"))] == 1250.0
    assert kpi[(("fiscal_year", "2024"), ("kpi", "paper_vs_r3"))] == pytest.approx(0.99)
    assert served.values('workstyle_kpi_status{kpi="paper_vs_r3", fiscal_year="2024"} == 1') == {
        (("fiscal_year", "2024"), ("kpi", "paper_vs_r3"), ("status", "on_track")): 1.0
    }
    assert served.values("workstyle_kpi_achievement_ratio{kpi='paper_vs_r3'}") == {
        (("fiscal_year", "2023"), ("kpi", "paper_vs_r3")): pytest.approx(98 / 97.5),
        (("fiscal_year", "2024"), ("kpi", "paper_vs_r3")): pytest.approx(97 / 99),
    }
    assert served.values("workstyle_kpi_current_month_value") == {
        (("kpi", "web_meetings_per_month"),): 900.0
    }
    assert served.values("workstyle_source_last_run_outcome == 1") == {
        (("outcome", "success"), ("source", "print-honcho")): 1.0,
        (("outcome", "failed"), ("source", "print-annex")): 1.0,
    }
    assert served.values("workstyle_source_last_run_quarantined_rows") == {
        (("source", "print-honcho"),): 5.0,
        (("source", "print-annex"),): 0.0,
    }
    assert (
        served.values("workstyle_source_last_run_ingested_rows")[(("source", "print-honcho"),)]
        == 4.0
    )
    assert served.values("workstyle_source_newest_event_timestamp_seconds") == {
        (("source", "print-honcho"),): dt.datetime(2024, 4, 1, 8, 45, 59, tzinfo=dt.UTC).timestamp()
    }
    assert set(served.values("workstyle_source_last_success_timestamp_seconds")) == {
        (("source", "print-honcho"),)
    }
    assert served.values("workstyle_exporter_up") == {(): 1.0}


def test_new_kpis_and_a_new_run_appear_without_a_restart(served: Target) -> None:  # noqa: F811
    pid = served.serve.proc.pid
    write_kpi_tables(
        served.data_dir,
        yearly=[
            kpi_row("web_meetings_per_month", 2023, 1250.0, 1200.0, "meetings/month", "achieved"),
            kpi_row(
                "web_meetings_per_month",
                2024,
                1450.0,
                1400.0,
                "meetings/month",
                "achieved",
                complete=False,
            ),
            kpi_row("paper_vs_r3", 2023, 97.5, 98.0, "%", "achieved"),
            kpi_row("paper_vs_r3", 2024, 99.0, 97.0, "%", "on_track", complete=False),
            kpi_row("paperless_meetings", 2021, None, None, "meetings", "no_data"),
        ],
    )
    served.wait_value(
        'workstyle_kpi_value{kpi="web_meetings_per_month", fiscal_year="2024"}', 1450.0
    )
    served.wait_value(
        'workstyle_kpi_status{kpi="web_meetings_per_month", fiscal_year="2024", status="achieved"}',
        1.0,
    )

    add_print_log(served.root, "2024-04-02")
    result = collector_cli(served.config, "ingest")
    assert result.returncode == 1, result.stderr
    served.wait_value('workstyle_source_consecutive_failures{source="print-annex"}', 2.0)
    served.wait_value('workstyle_source_last_run_read_rows{source="print-honcho"}', 2.0)
    served.wait_value(
        'workstyle_source_newest_event_timestamp_seconds{source="print-honcho"}',
        dt.datetime(2024, 4, 2, 4, 0, tzinfo=dt.UTC).timestamp(),  # 13:00 JST
    )
    assert served.serve.proc.pid == pid and served.serve.proc.poll() is None


def test_bundled_example_end_to_end_run_serve_prometheus(example: Target) -> None:  # noqa: F811
    """`collector run` on the bundled example (ingest + KPI engine) -> serve -> Prometheus
    shows exactly what `collector kpi --format json` reports."""
    out = example_cli(example.data_dir, "kpi", "--format", "json", "--as-of", EXAMPLE_AS_OF)
    kpis = [k for k in json.loads(out.stdout) if k["department"] is None and k["month"] is None]
    expected = {
        (("fiscal_year", str(k["fiscal_year"])), ("kpi", k["kpi"])): (
            k["value"] / 100 if k["unit"] == "%" else k["value"]
        )
        for k in kpis
        if k["value"] is not None
    }
    assert len(expected) >= 10
    assert example.values("workstyle_kpi_value") == pytest.approx(expected)
    assert example.values("workstyle_kpi_status == 1") == {
        (("fiscal_year", str(k["fiscal_year"])), ("kpi", k["kpi"]), ("status", k["status"])): 1.0
        for k in kpis
    }
    outcomes = example.values("workstyle_source_last_run_outcome == 1")
    assert len(outcomes) == 9
    assert {dict(k)["outcome"] for k in outcomes} == {"success"}
    assert example.values("workstyle_exporter_up") == {(): 1.0}
