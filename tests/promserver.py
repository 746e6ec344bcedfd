"""A real Prometheus server and a running ``collector serve`` for the exporter's tests.

Both are started once per test session (a module-level singleton behind session
fixtures, so test modules importing these fixtures share them) on free loopback
ports, with a temporary config and storage: the Debian package's own service is
never touched. Tests that need the binaries are skipped, with the reason, only when
``prometheus`` or ``promtool`` is not installed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
PAPERCUT = FIXTURES / "papercut_print_logger"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
JOB = "workstyle-collector"
KEY = "test-pseudonymisation-key-0123456789"
FGT_TOKEN = "fgt-api-token-0123456789abcdef"  # tests.fakes.fortigate.TOKEN
EXAMPLE_AS_OF = "2024-03-31"

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
requires_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
requires_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus server not installed (apt-get install prometheus)"
)


# -- test data -------------------------------------------------------------------------------
def kpi_row(
    kpi: str,
    fy: int,
    value: float | None,
    target: float | None,
    unit: str,
    status: str,
    *,
    month: str | None = None,
    complete: bool = True,
    as_of: dt.date = dt.date(2024, 5, 20),
    computed_at: dt.datetime | None = None,
    department: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of a KPI table (schemas.kpi.KPI_RESULT); ``extra`` sets optional columns."""
    return {
        "kpi": kpi,
        "fiscal_year": fy,
        "label": f"R{fy - 2018}",
        "month": month,
        "department": department,
        "value": value,
        "target": target,
        "unit": unit,
        "status": status,
        "basis": None,
        "complete": complete,
        "numerator": None,
        "denominator": None,
        "reason": None,
        "as_of": as_of,
        "computed_at": computed_at or dt.datetime(2024, 5, 20, 17, 5, tzinfo=dt.UTC),
        **extra,
    }


YEARLY = [
    kpi_row("web_meetings_per_month", 2023, 1250.0, 1200.0, "meetings/month", "achieved"),
    kpi_row(
        "web_meetings_per_month", 2024, 1100.0, 1400.0, "meetings/month", "behind", complete=False
    ),
    kpi_row("paper_vs_r3", 2023, 97.5, 98.0, "%", "achieved"),
    kpi_row("paper_vs_r3", 2024, 99.0, 97.0, "%", "on_track", complete=False, projected=96.5),
    kpi_row("paperless_meetings", 2021, None, None, "meetings", "no_data"),
    # Department rows are never exported (small departments could single people out).
    kpi_row("paper_vs_r3", 2023, 80.0, 98.0, "%", "achieved", department="総務部"),
]
MONTHLY = [
    kpi_row(
        "web_meetings_per_month", 2024, 1300.0, 1400.0, "meetings/month", "behind", month="2024-04"
    ),
    kpi_row(
        "web_meetings_per_month",
        2024,
        900.0,
        1400.0,
        "meetings/month",
        "behind",
        month="2024-05",
        complete=False,
    ),
]


def write_kpi_tables(
    data_dir: Path, yearly: list[dict[str, Any]] = YEARLY, monthly: list[dict[str, Any]] = MONTHLY
) -> None:
    """Write kpi/yearly.parquet and kpi/monthly.parquet atomically, as the KPI engine does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workstyle.schemas.kpi import KPI_RESULT

    folder = data_dir / "kpi"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("yearly", yearly), ("monthly", monthly)):
        full = [{f.name: r.get(f.name) for f in KPI_RESULT} for r in rows]
        tmp = folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(full, schema=KPI_RESULT), tmp)
        os.replace(tmp, folder / f"{name}.parquet")


def write_test_config(root: Path, **exporter: Any) -> Path:
    """A config with three PaperCut sources: one with data, one failing, one disabled."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # A file that is not a Print Logger export: the annex source fails on every run.
    (root / "annex").mkdir(exist_ok=True)
    (root / "annex" / "papercut-print-log-2024-04-01.csv").write_text("Time,User\n1,2\n")
    sections: dict[str, dict[str, Any]] = {
        "collector": {"data_dir": str(root / "data")},
        "privacy": {"key": "env:COLLECTOR_TEST_KEY"},
    }
    if exporter:
        sections["exporter"] = exporter
    sources = [
        {
            "name": name,
            "kind": "papercut_print_logger",
            "path": str(path),
            "settle_seconds": 0,
            "enabled": enabled,
        }
        for name, path, enabled in (
            ("print-honcho", logs, True),
            ("print-annex", root / "annex", True),
            ("print-retired", logs, False),
        )
    ]
    return write_config(root / "collector.toml", sections, sources)


def add_print_log(root: Path, day: str) -> None:
    """Copy a real PaperCut Print Logger file (2024-04-01 or 2024-04-02) into the logs."""
    name = f"papercut-print-log-{day}.csv"
    shutil.copy(PAPERCUT / name, root / "logs" / name)


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "COLLECTOR_TEST_KEY": KEY,
        "PYTHONPATH": str(REPO),
        "FGT_TOKEN": FGT_TOKEN,
        "ZOOM_SECRET": "zoom-client-secret-value-XYZ",  # tests.fakes.zoom.CLIENT_SECRET
    }
    env.pop("COLLECTOR_CONFIG", None)
    return env


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workstyle.collector.cli", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def collector_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``collector`` command line (as cron would) and return its result."""
    return _cli("--config", str(config), *args)


def example_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``collector`` on the bundled example config with its data in ``data_dir``."""
    return _cli("--data-dir", str(data_dir), *args)


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Serve:
    """A ``collector serve`` subprocess on a free port."""

    def __init__(
        self, config: Path | None, log: Path, data_dir: Path | None = None, port: int = 0
    ) -> None:
        """Serve ``config``, or the bundled example config with ``data_dir``."""
        where = ["--config", str(config)] if config else ["--data-dir", str(data_dir)]
        self.log = log
        self._fh = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workstyle.collector.cli",
                *where,
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            cwd=REPO,
            env=_env(),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
        )

        def started() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector serve exited: {log.read_text()}")
            m = re.search(r"serving metrics on http://(127\.0\.0\.1:\d+)/metrics", log.read_text())
            return m.group(1) if m else None

        self.address = wait_for(started, 30, "collector serve to listen")
        self.url = f"http://{self.address}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._fh.close()


class PromServer:
    """A Prometheus server with a 1 s scrape interval and the shipped alert rules, scraping
    a fixed list of targets (given at start: Prometheus applies target changes only every
    5 s, so the whole stack is started once, targets first)."""

    def __init__(self, root: Path, targets: list[str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        # Prometheus reads YAML, and JSON is YAML.
        (root / "prometheus.yml").write_text(json.dumps(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = (root / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, "prometheus to become ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited; see its log")
        try:
            return http_get(f"{self.url}/-/ready", 1)[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}")
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"{path} {params}: {doc.get('error', body[:200])}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [data["result"]]

    def values(
        self, expr: str, instance: str | None = None
    ) -> dict[tuple[tuple[str, str], ...], float]:
        """{sorted labels without job/instance: value} of an instant query, optionally only
        the series scraped from one instance."""
        out = {}
        for sample in self.query(expr):
            if instance and sample["metric"].get("instance") != instance:
                continue
            labels = tuple(
                sorted(
                    (k, v)
                    for k, v in sample["metric"].items()
                    if k not in ("job", "instance", "__name__")
                )
            )
            out[labels] = float(sample["value"][1])
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Target:
    """A data dir served by a running ``collector serve``, scraped by the shared Prometheus."""

    prom: PromServer

    def __init__(self, root: Path, config: Path | None, data_dir: Path, port: int) -> None:
        self.root, self.config, self.data_dir = root, config, data_dir
        self.serve = Serve(config, root / "serve.log", data_dir=data_dir, port=port)

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's result for this target's series only."""
        return self.prom.values(expr, self.serve.address)

    def wait_value(self, expr: str, expected: float, timeout: float = 15) -> None:
        """Wait until the single-series query ``expr`` equals ``expected``."""

        def check() -> bool:
            got = list(self.values(expr).values())
            return len(got) == 1 and abs(got[0] - expected) < 1e-9

        wait_for(check, timeout, f"{expr} == {expected} (last: {self.values(expr)})")


def served_dataset(root: Path, port: int = 0) -> Target:
    """Three PaperCut sources after a real ingest (one fails), and KPI tables written here."""
    config = write_test_config(root)
    add_print_log(root, "2024-04-01")
    result = collector_cli(config, "ingest")
    # print-annex holds a file in the wrong format: that source fails, exit code 1.
    assert result.returncode == 1, result.stdout + result.stderr
    write_kpi_tables(root / "data")
    return Target(root, config, root / "data", port)


def example_dataset(root: Path, port: int = 0) -> Target:
    """The bundled example after `collector run` (ingest and the real KPI engine)."""
    result = example_cli(root / "data", "run", "--as-of", EXAMPLE_AS_OF)
    assert result.returncode == 0, result.stdout + result.stderr
    return Target(root, None, root / "data", port)


def live_dataset(root: Path, port: int = 0) -> Target:
    """Live readers only: a FortiGate monitor API (a fake in this process), a FortiGate
    syslog file with two sessions open and today's PaperCut log (3 jobs, 8 sheets)."""
    from tests.fakes import zoom as zoom_fake
    from tests.fakes.fortigate import FakeFortiGate, user
    from tests.fakes.server import FakeServer
    from tests.live.helpers import PAPERCUT_HEAD, fgt, papercut

    fake_server = FakeServer().start()
    fake = FakeFortiGate(
        fake_server,
        {
            "root": [user("yamada", "198.51.100.10", tunnels=2), user("sato", "198.51.100.11")],
            "branch": [user("kato", "203.0.113.5")],
        },
    )
    zoom = zoom_fake.FakeZoom(fake_server, [])
    zoom.live = [
        {
            "uuid": f"live-{n}",
            "id": 8100 + n,
            "topic": "課長会議",
            "host": "Host",
            "email": "host@pref.example.jp",
            "start_time": "2026-12-01T00:30:00Z",
            "participants": p,
        }
        for n, p in enumerate([4, 2])
    ]
    now = dt.datetime.now(dt.UTC)
    (root / "vpn").mkdir(parents=True, exist_ok=True)
    (root / "vpn" / "fgt.log").write_text(
        fgt(now, "tunnel-up", 1, "yamada")
        + fgt(now, "tunnel-up", 2, "sato")
        + fgt(now, "tunnel-up", 3, "kato")
        + fgt(now, "tunnel-down", 3, "kato")
    )
    (root / "print").mkdir(exist_ok=True)
    local = now.astimezone(dt.timezone(dt.timedelta(hours=9)))
    (root / "print" / f"papercut-print-log-{local:%Y-%m-%d}.csv").write_text(
        PAPERCUT_HEAD
        + papercut(now, "tyamada", 4, 2, True)  # 2 sheets
        + papercut(now, "hsato", 3, 1, False)  # 3 sheets
        + papercut(now, "kato", 3, 3, False)  # 3 sheets
    )
    live = {"live": True, "live_interval": 0.3}
    config = write_config(
        root / "collector.toml",
        {
            "collector": {"data_dir": str(root / "data"), "timezone": "Asia/Tokyo"},
            "privacy": {"key": "env:COLLECTOR_TEST_KEY"},
        },
        [
            {
                "name": "fgt-api",
                "kind": "fortigate_vpn",
                "paths": [str(root / "vpn" / "none-*.log")],
                "enabled": False,
                "live_api": {
                    "url": fake_server.url,
                    "token": "env:FGT_TOKEN",
                    "vdoms": ["root", "branch"],
                },
                **live,
            },
            {"name": "fgt-log", "kind": "fortigate_vpn", "paths": [str(root / "vpn" / "*.log")]}
            | live,
            {
                "name": "zoom-live",
                "kind": "zoom",
                "enabled": False,
                "account_id": zoom_fake.ACCOUNT_ID,
                "client_id": zoom_fake.CLIENT_ID,
                "client_secret": "env:ZOOM_SECRET",
                "base_url": fake_server.url + "/v2",
                "oauth_url": fake_server.url + "/oauth/token",
                "backoff_max_seconds": 0.01,
            }
            | live,
            {
                "name": "print-live",
                "kind": "papercut_print_logger",
                "path": str(root / "print"),
                "settle_seconds": 0,
            }
            | live,
        ],
    )
    write_kpi_tables(root / "data")
    target = Target(root, config, root / "data", port)
    target.fake = fake  # type: ignore[attr-defined]
    target.fake_server = fake_server  # type: ignore[attr-defined]
    return target


_stack: dict[str, Any] = {}


@pytest.fixture(scope="session")
def prometheus_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> PromServer:
    """One Prometheus for the session, scraping two running exporters (see :func:`served`
    and :func:`example`); shared by every test module that imports these fixtures."""
    if PROMETHEUS is None:
        pytest.skip("prometheus server not installed (apt-get install prometheus)")
    if not _stack:
        root = tmp_path_factory.mktemp("stack")
        # Prometheus applies a target list only after ~5 s: start it first, on ports picked
        # for the two exporters, and prepare both datasets (subprocesses) meanwhile.
        ports = [free_port(), free_port(), free_port()]
        prom = PromServer(root / "prometheus", [f"127.0.0.1:{p}" for p in ports])
        _stack["prom"] = prom

        def stop() -> None:
            for target in (_stack.get("served"), _stack.get("example"), _stack.get("live")):
                if target is not None:
                    target.serve.stop()
            if _stack.get("live") is not None:
                _stack["live"].fake_server.stop()
            prom.stop()
            _stack.clear()

        request.addfinalizer(stop)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = {
                "served": pool.submit(served_dataset, root / "served", ports[0]),
                "example": pool.submit(example_dataset, root / "example", ports[1]),
                "live": pool.submit(live_dataset, root / "live", ports[2]),
            }
            for name, future in futures.items():
                with contextlib.suppress(Exception):  # re-raised below, after bookkeeping
                    _stack[name] = future.result()
        served, example = futures["served"].result(), futures["example"].result()
        live = futures["live"].result()
        served.prom = example.prom = live.prom = prom
        for target in (served, example, live):
            wait_for(
                lambda t=target: t.values("workstyle_source_info"),
                30,
                f"Prometheus to scrape {target.serve.address}",
            )
        # Before the exporters were up, the exporter-down rule saw up == 0: let it clear.
        wait_for(
            lambda: not prom.query('ALERTS{alertname="WorkstyleExporterDown"}'),
            10,
            "the exporter-down alert to clear",
        )
    return _stack["prom"]


@pytest.fixture(scope="session")
def served(prometheus_server: PromServer) -> Target:
    """Hand-written KPI tables and three PaperCut sources (one failing, one disabled)."""
    return _stack["served"]


@pytest.fixture(scope="session")
def example(prometheus_server: PromServer) -> Target:
    """The bundled example data after a real `collector run`."""
    return _stack["example"]


@pytest.fixture(scope="session")
def live(prometheus_server: PromServer) -> Target:
    """Live readers polling a fake FortiGate API and growing logs every 0.3 s."""
    return _stack["live"]
