"""A token endpoint that echoes the request never gets a secret into output or data.

Some proxies and gateways answer a refused token request with the request itself
in the error text. The client secret (raw, URL-encoded, or as a Basic-auth header)
must then be removed from stdout, stderr (text and JSON logs), the state JSON and
the ``_runs`` ledger, for every API kind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.collector.scan import find, forms
from tests.conftest import write_config
from tests.fakes import google as fake_google
from tests.fakes import graph as fake_graph
from tests.fakes import webex as fake_webex
from tests.fakes import zoom as fake_zoom
from tests.fakes.harness import FAST, serve
from tests.fakes.server import FakeServer, Reply, Request

ZOOM_SECRET = "zoom+secret/value=XYZ&1"
GRAPH_SECRET = "graph~secret+/=ABC%7"
WEBEX_SECRET = "webex/secret+987=&x"
WEBEX_REFRESH = "webex-refresh+token/0=="


@pytest.fixture
def server():
    yield from serve()


def _echo(req: Request) -> Reply:
    """What a careless gateway answers: the request, verbatim, in the error text."""
    auth = req.header("Authorization") or ""
    return Reply(
        400,
        {
            "error": "invalid_request",
            "error_description": f"cannot route {auth} {req.body.decode()}".replace("  ", " "),
        },
    )


def _echo_token_endpoint(server: FakeServer, path: str) -> None:
    # Ahead of the fake's own token route: the first matching route answers.
    server.routes.insert(0, ("POST", re.compile(path), _echo))


def _zoom(server: FakeServer, tmp_path: Path, monkeypatch) -> tuple[dict[str, Any], set[str]]:
    fake_zoom.FakeZoom(server, meetings=[])
    _echo_token_endpoint(server, "/oauth/token")
    monkeypatch.setenv("REDACT_ZOOM_SECRET", ZOOM_SECRET)
    source = {
        "name": "zoom",
        "kind": "zoom",
        "account_id": fake_zoom.ACCOUNT_ID,
        "client_id": fake_zoom.CLIENT_ID,
        "client_secret": "env:REDACT_ZOOM_SECRET",
        "base_url": server.url + "/v2",
        "oauth_url": server.url + "/oauth/token",
    }
    return source, forms(ZOOM_SECRET, fake_zoom.CLIENT_ID)


def _teams(server: FakeServer, tmp_path: Path, monkeypatch) -> tuple[dict[str, Any], set[str]]:
    import datetime as dt

    fake_graph.FakeGraph(server, dt.datetime.now(dt.UTC))
    _echo_token_endpoint(server, f"/{re.escape(fake_graph.TENANT)}/oauth2/v2.0/token")
    monkeypatch.setenv("REDACT_GRAPH_SECRET", GRAPH_SECRET)
    source = {
        "name": "teams",
        "kind": "teams",
        "tenant_id": fake_graph.TENANT,
        "client_id": fake_graph.CLIENT_ID,
        "client_secret": "env:REDACT_GRAPH_SECRET",
        "graph_url": server.url,
        "login_url": server.url,
    }
    return source, forms(GRAPH_SECRET)


def _webex(server: FakeServer, tmp_path: Path, monkeypatch) -> tuple[dict[str, Any], set[str]]:
    fake_webex.FakeWebex(server)
    _echo_token_endpoint(server, "/v1/access_token")
    monkeypatch.setenv("REDACT_WEBEX_SECRET", WEBEX_SECRET)
    refresh = tmp_path / "webex-refresh.token"
    refresh.write_text(WEBEX_REFRESH + "\n", encoding="utf-8")
    source = {
        "name": "webex",
        "kind": "webex",
        "client_id": fake_webex.CLIENT_ID,
        "client_secret": "env:REDACT_WEBEX_SECRET",
        "refresh_token": f"file:{refresh}",
        "base_url": server.url + "/v1",
    }
    return source, forms(WEBEX_SECRET) | forms(WEBEX_REFRESH)


def _google(server: FakeServer, tmp_path: Path, monkeypatch) -> tuple[dict[str, Any], set[str]]:
    key_json, public = fake_google.throwaway_key()
    key_file = tmp_path / "sa-key.json"
    key_file.write_text(key_json, encoding="utf-8")
    fake_google.FakeGoogle(server, public)
    _echo_token_endpoint(server, "/token")
    private = json.loads(key_json)["private_key"]
    body_lines = [ln for ln in private.splitlines() if ln and not ln.startswith("-----")]
    source = {
        "name": "meet",
        "kind": "google_meet",
        "service_account_key": f"file:{key_file}",
        "admin_email": fake_google.ADMIN,
        "base_url": server.url,
        "token_url": server.url + "/token",
    }
    return source, set(body_lines[:3])


KINDS = {"zoom": _zoom, "teams": _teams, "webex": _webex, "google_meet": _google}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_echoed_secret_reaches_no_output_state_or_ledger(
    kind, server, tmp_path, monkeypatch, cli, key_env
) -> None:
    source, secrets = KINDS[kind](server, tmp_path, monkeypatch)
    data = tmp_path / "data"
    path = write_config(
        tmp_path / "collector.toml",
        {"collector": {"data_dir": str(data)}, "privacy": {"key": key_env}},
        [{**source, **FAST}],
    )
    outputs = []
    for fmt in ("text", "json"):
        result = cli("--config", str(path), "--log-format", fmt, "ingest")
        assert result.exit_code == 2, result.output  # refused credentials: the operator acts
        assert "credentials were refused" in result.output
        outputs += [result.stdout, result.stderr]
    token_requests = [r for r in server.log if r.method == "POST"]
    assert len(token_requests) == 2
    echoed = {v for r in token_requests for v in _sensitive_form_values(r)}
    if kind == "google_meet":
        # The signed assertion is a credential for an hour; any stretch of it is too much.
        secrets |= {v[:60] for v in echoed}
    else:
        # The test's premise: the gateway really sent the secret back.
        assert any(s in (r.body.decode() + (r.header("Authorization") or ""))
                   for r in token_requests for s in secrets)  # fmt: skip
    hits = find(secrets, data, extra=outputs)
    assert not hits, hits
    # What remains says what happened.
    assert "[redacted]" in outputs[0] + outputs[1]


def _sensitive_form_values(req: Request) -> list[str]:
    return [v for k, v in req.form().items() if k in {"assertion", "client_secret"}]


def test_the_redactor_knows_every_form_of_a_secret_and_nothing_else() -> None:
    import base64
    from urllib.parse import quote

    from workstyle.collector.secrets import REDACTED, redact, register_secret

    secret = "unit-test+secret/value=1"
    register_secret(secret)
    basic = base64.b64encode(f"client-id:{secret}".encode()).decode()
    text = f"a {secret} b {quote(secret, safe='')} c Basic {basic} d"
    assert redact(text) == f"a {REDACTED} b {REDACTED} c Basic {REDACTED} d"
    register_secret("short")  # too short to redact without blanking ordinary words
    assert redact("a short line") == "a short line"
    key = json.dumps(
        {
            "type": "service_account",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
            "-----END PRIVATE KEY-----\n",
            "client_email": "collector@project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    register_secret(key)
    shown = redact("line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC via https://oauth2.googleapis.com/token")
    assert shown == f"line {REDACTED} via https://oauth2.googleapis.com/token"
