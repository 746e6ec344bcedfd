"""deploy/: alert rules, scrape config, Grafana dashboard, systemd units, cron line, docs."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.promserver import (
    PROMTOOL,
    REPO,
    Target,
    http_get,
    prometheus_server,  # noqa: F401 - session fixture
    requires_promtool,
    served,  # noqa: F401 - session fixture
    wait_for,
)

DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
DOCS = REPO / "docs" / "prometheus.md"
# A metric name in PromQL: ours, or Prometheus's own `up`; never a function call.
_METRIC = re.compile(r"\b(workstyle_[a-z0-9_]+|up)\b(?!\s*\()")
# Grafana variables, replaced by what "All" means in the dashboard (allValue ".+").
_VARIABLE = re.compile(r"\$\{?(kpi|fy|source)\}?")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, check=False, cwd=DEPLOY / "prometheus"
    )


@requires_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
        ("check", "config", "prometheus.yml"),
    ],
)
def test_promtool_is_clean(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def _dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc["panels"])
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["query"]["query"])
            assert m, var["query"]
            exprs.append(f"count by ({m.group(2)}) ({m.group(1)})")
    return [_VARIABLE.sub(".+", e) for e in exprs]


def test_dashboard_is_valid_json_with_the_required_panels() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = {p["title"] for p in doc["panels"]}
    assert {"KPI vs target per fiscal year", "Monthly values, FY $fy", "Source health"} <= titles
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    assert len(_dashboard_queries()) >= 15


def _check_expressions(prom: Any, exprs: list[str], *, must_return_data: bool) -> None:
    existing = {s["metric"]["__name__"] for s in prom.query('{__name__=~"workstyle_.*|up"}')}
    for expr in exprs:
        result = prom.query(expr)  # raises on a PromQL error
        missing = set(_METRIC.findall(expr)) - existing
        assert not missing, f"{expr!r} refers to metrics that do not exist: {missing}"
        # A comparison with weeks ago has no data in a Prometheus started for the test.
        if must_return_data and " offset " not in expr:
            assert result, f"{expr!r} returned nothing"


def test_every_dashboard_query_runs_against_real_metrics(served: Target) -> None:  # noqa: F811
    _check_expressions(served.prom, _dashboard_queries(), must_return_data=True)


def test_every_alert_rule_was_loaded_and_refers_to_real_metrics(served: Target) -> None:  # noqa: F811
    groups = served.prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    names = {r["name"] for r in rules if r["type"] == "alerting"}
    in_file = set(re.findall(r"- alert: (\w+)", (DEPLOY / "prometheus" / "alerts.yml").read_text()))
    assert names == in_file and len(names) >= 8
    assert all(r["health"] in ("ok", "unknown") for r in rules), rules
    _check_expressions(served.prom, [r["query"] for r in rules], must_return_data=False)
    # The rules see the live series: the fixture's print jobs are from 2024, so the data
    # is old; the exporter is healthy; a disabled source never alerts.
    prom = served.prom
    wait_for(
        lambda: prom.values('ALERTS{alertname="WorkstyleSourceDataOld",source="print-honcho"}'),
        30,
        "the data-age alert to become active for print-honcho",
    )
    alerts = {
        (a["labels"]["alertname"], a["labels"].get("source"))
        for g in prom.api("rules")["groups"]
        for r in g["rules"]
        for a in r.get("alerts", [])
    }
    assert ("WorkstyleSourceDataOld", "print-honcho") in alerts
    assert not {name for name, _ in alerts} & {
        "WorkstyleExporterDown",
        "WorkstyleExporterInputUnreadable",
    }
    assert "print-retired" not in {source for _, source in alerts}


def test_every_exported_metric_is_documented(served: Target) -> None:  # noqa: F811
    _, body = http_get(f"{served.serve.url}/metrics")
    exported = set(re.findall(r"^# TYPE (workstyle_\w+) ", body.decode(), re.M))
    docs = DOCS.read_text(encoding="utf-8")
    undocumented = {n for n in exported if f"`{n}`" not in docs}
    assert not undocumented
    assert len(exported) >= 30


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return parser


@pytest.mark.parametrize(
    "name",
    [
        "workstyle-collector-serve.service",
        "workstyle-collector-run.service",
        "workstyle-collector-live.service",
    ],
)
def test_services_are_hardened(name: str) -> None:
    svc = _unit(name)["Service"]
    assert svc["User"] == "workstyle" and svc["Group"] == "workstyle"
    assert svc["ProtectSystem"] == "strict"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["CapabilityBoundingSet"] == ""
    assert "--log-format json" in svc["ExecStart"]
    if name.endswith(("serve.service", "live.service")):
        assert svc["ExecStart"].endswith(" serve" if "serve" in name else " live")
        assert "ReadWritePaths" not in svc  # the exporter writes only the live snapshot:
        assert svc["StateDirectory"] == "workstyle-collector/_live"
    else:
        assert svc["Type"] == "oneshot"
        assert svc["ExecStart"].endswith(" run")
        assert svc["ReadWritePaths"] == "/var/lib/workstyle-collector"


def test_timer_runs_nightly() -> None:
    timer = _unit("workstyle-collector-run.timer")["Timer"]
    assert timer["OnCalendar"] == "*-*-* 02:00:00"
    assert timer["Persistent"] == "true"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_units() -> None:
    units = sorted(str(p) for p in (DEPLOY / "systemd").iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    # The collector binary is not installed on the test host; anything else is an error.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert not problems


def test_cron_line_is_the_documented_one() -> None:
    cron = (DEPLOY / "cron" / "workstyle-collector").read_text()
    job = [line for line in cron.splitlines() if line.startswith("0 2 * * *")]
    assert len(job) == 1 and " run --textfile-dir " in job[0]
    assert job[0] in DOCS.read_text(encoding="utf-8")
