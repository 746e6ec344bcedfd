"""The shared HTTP layer against a real local server: retries, waits, caps, auth, proxy."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import ssl
import time

import pytest

from tests.fakes.common import tls_files
from tests.fakes.harness import serve
from tests.fakes.server import FakeServer, Faults, Reply
from workstyle.adapters.http import (
    HttpClient,
    HttpError,
    HttpSettings,
    TokenCache,
    api_message,
    parse_retry_after,
)
from workstyle.collector.errors import ConfigError, QuotaExhausted, RetryableError

FAST = HttpSettings(
    backoff_max_seconds=0.01,
    backoff_base_seconds=0.01,
    max_wait_seconds=30,
    connect_timeout=2,
    read_timeout=5,
)
NOW = dt.datetime(2025, 3, 4, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def server():
    yield from serve()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Tue, 04 Mar 2025 12:00:30 GMT", 30.0),
        ("2025-03-04T12:01:00Z", 60.0),
        ("2025-03-04T21:01:00+09:00", 60.0),
        ("2020-05-31T00:00:00Z", 0.0),  # in the past: retry now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_accepts_seconds_http_date_and_iso(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def flaky(server: FakeServer, *replies: Reply, body: object = None) -> Faults:
    """A /thing route that answers the queued replies first, then 200."""
    faults = Faults()
    faults.add("thing", *replies)
    server.route(
        "GET", "/thing", lambda req: faults.take("thing") or Reply(200, body or {"ok": True})
    )
    return faults


def test_5xx_then_success_retries_with_tiny_backoff(server):
    flaky(server, Reply(503, {"message": "busy"}), Reply(500, "oops"))
    client = HttpClient("src", FAST)
    assert client.get_json(server.url + "/thing", "GET /thing") == {"ok": True}
    assert len(server.requests("GET", "/thing")) == 3
    assert client.stats.retries == 2
    assert client.stats.by_status[("GET /thing", 503)] == 1


def test_retry_after_seconds_is_honoured(server):
    flaky(server, Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
    client = HttpClient("src", FAST)
    t0 = time.monotonic()
    client.get_json(server.url + "/thing", "GET /thing")
    assert time.monotonic() - t0 >= 0.95
    assert client.stats.waited == pytest.approx(1.0)
    assert len(server.requests()) == 2


def test_retry_after_http_date_is_honoured(server):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    flaky(
        server,
        Reply(
            429,
            {"message": "slow down"},
            {"Retry-After": email.utils.format_datetime(when, usegmt=True)},
        ),
    )
    client = HttpClient("src", FAST)
    t0 = time.monotonic()
    client.get_json(server.url + "/thing", "GET /thing")
    # HTTP-dates have whole seconds: the wait is between 1 and 2 s, never the tiny backoff.
    assert 0.9 <= time.monotonic() - t0 < 3
    assert len(server.requests()) == 2


def test_connection_dropped_then_success(server):
    flaky(server, Reply(0))
    client = HttpClient("src", FAST)
    assert client.get_json(server.url + "/thing", "GET /thing") == {"ok": True}
    assert client.stats.by_status[("GET /thing", 0)] == 1


def test_retries_per_request_are_capped(server):
    flaky(server, *[Reply(503)] * 10)
    client = HttpClient("src", HttpSettings(**{**FAST.__dict__, "max_retries": 3}))
    with pytest.raises(RetryableError, match=r"src: GET /thing: HTTP 503, still failing after 3"):
        client.get_json(server.url + "/thing", "GET /thing")
    assert len(server.requests()) == 4  # the first try and 3 retries, no storm


def test_retry_budget_is_per_run(server):
    flaky(server, *[Reply(502)] * 10)
    client = HttpClient("src", HttpSettings(**{**FAST.__dict__, "retry_budget": 2}))
    with pytest.raises(RetryableError, match="retry budget"):
        client.get_json(server.url + "/thing", "GET /thing")
    assert len(server.requests()) == 3


def test_retry_after_longer_than_the_wait_cap_stops_cleanly_without_sleeping(server):
    flaky(server, Reply(429, {}, {"Retry-After": "3600"}))
    client = HttpClient("src", HttpSettings(**{**FAST.__dict__, "max_wait_seconds": 5}))
    t0 = time.monotonic()
    with pytest.raises(QuotaExhausted, match="rate limited for 3600 s"):
        client.get_json(server.url + "/thing", "GET /thing")
    assert time.monotonic() - t0 < 1
    assert len(server.requests()) == 1


def test_401_renews_the_token_once_then_a_clear_config_error(server, caplog):
    issued: list[str] = []

    def fetch() -> tuple[str, float]:
        issued.append(f"secret-token-{len(issued)}")
        return issued[-1], 3600

    server.route("GET", "/thing", lambda req: Reply(401, {"message": "Invalid access token."}))
    client = HttpClient("src", FAST, TokenCache(fetch))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as exc:
        client.get_json(server.url + "/thing", "GET /thing")
    assert len(server.requests()) == 2 and len(issued) == 2
    assert [r.header("Authorization") for r in server.log] == [
        "Bearer secret-token-0",
        "Bearer secret-token-1",
    ]
    assert "src: GET /thing: HTTP 401 (Invalid access token.)" in str(exc.value)
    for token in issued:
        assert token not in str(exc.value) and token not in caplog.text


def test_401_then_renewed_token_succeeds(server):
    state = {"n": 0}

    def fetch() -> tuple[str, float]:
        state["n"] += 1
        return f"t{state['n']}", 3600

    server.route(
        "GET",
        "/thing",
        lambda req: (
            Reply(200, {"ok": 1}) if req.header("Authorization") == "Bearer t2" else Reply(401, {})
        ),
    )
    client = HttpClient("src", FAST, TokenCache(fetch))
    assert client.get_json(server.url + "/thing", "GET /thing") == {"ok": 1}


def test_token_is_renewed_before_expiry():
    calls: list[int] = []

    def fetch() -> tuple[str, float]:
        calls.append(1)
        return f"t{len(calls)}", 30  # shorter than the 60 s margin: never reused

    cache = TokenCache(fetch)
    assert cache.get() == "t1" and cache.get() == "t2"
    long = TokenCache(lambda: ("x", 3600))
    assert long.get() == long.get() and long.fetches == 1


def test_403_is_a_config_error_and_404_keeps_the_api_message(server):
    server.route(
        "GET",
        "/forbidden",
        lambda req: Reply(
            403, {"error": {"code": "Forbidden", "message": "Missing role CallRecords.Read.All"}}
        ),
    )
    server.route("GET", "/missing", lambda req: Reply(404, {"message": "User does not exist"}))
    client = HttpClient("src", FAST)
    with pytest.raises(ConfigError, match="Missing role CallRecords.Read.All"):
        client.get_json(server.url + "/forbidden", "GET /forbidden")
    with pytest.raises(HttpError) as exc:
        client.get_json(server.url + "/missing", "GET /missing")
    assert exc.value.status == 404 and exc.value.api_message == "User does not exist"
    assert client.stats.errors[("GET /missing", 404)] == "User does not exist"
    assert len(server.requests()) == 2  # neither was retried


def test_google_rate_limit_403_is_retried(server):
    flaky(
        server,
        Reply(
            403,
            {
                "error": {
                    "errors": [{"reason": "rateLimitExceeded"}],
                    "message": "Rate Limit Exceeded",
                }
            },
        ),
    )
    client = HttpClient("src", FAST)
    assert client.get_json(server.url + "/thing", "GET /thing") == {"ok": True}


def test_error_urls_with_presigned_tokens_never_reach_messages(server):
    server.route("GET", "/dl", lambda req: Reply(404, "gone"))
    client = HttpClient("src", FAST)
    with pytest.raises(HttpError) as exc:
        client.get_json(server.url + "/dl?sig=SIGNATURE123", "GET report download")
    assert "SIGNATURE123" not in str(exc.value)


def test_proxy_setting_routes_requests_through_the_proxy(server):
    server.route("GET", "/via-proxy", lambda req: Reply(200, {"proxied": True}))
    client = HttpClient("src", HttpSettings(**{**FAST.__dict__, "proxy": server.url}))
    # The host does not exist: only the proxy (our server) can answer.
    body = client.get_json("http://api.example.invalid/via-proxy", "GET /via-proxy")
    assert body == {"proxied": True}
    assert server.log[0].header("Host") == "api.example.invalid"


def test_ca_bundle_trusts_a_tls_inspecting_gateway(tmp_path):
    ca, cert, key = tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https = FakeServer().start(tls=context)
    try:
        https.route("GET", "/thing", lambda req: Reply(200, {"tls": True}))
        trusted = HttpClient("src", HttpSettings(**{**FAST.__dict__, "ca_bundle": str(ca)}))
        assert trusted.get_json(https.url + "/thing", "GET /thing") == {"tls": True}
        untrusted = HttpClient("src", FAST)
        with pytest.raises(
            ConfigError, match="src: GET /thing: TLS certificate verification failed; set ca_bundle"
        ):
            untrusted.get_json(https.url + "/thing", "GET /thing")
        assert len(https.requests()) == 1  # the refused handshake was not retried
    finally:
        https.stop()


def test_timeouts_are_sent_on_every_call(server):
    def slow(req):
        time.sleep(1.0)
        return Reply(200, {})

    server.route("GET", "/slow", slow)
    client = HttpClient(
        "src", HttpSettings(**{**FAST.__dict__, "read_timeout": 0.2, "max_retries": 1})
    )
    t0 = time.monotonic()
    with pytest.raises(RetryableError, match="ReadTimeout"):
        client.get_json(server.url + "/slow", "GET /slow")
    assert time.monotonic() - t0 < 1.5


def test_api_message_shapes(server):
    import requests

    server.route("GET", "/e1", lambda r: Reply(400, {"error": {"message": "bad filter"}}))
    server.route("GET", "/e2", lambda r: Reply(400, {"errors": [{"description": "bad from"}]}))
    server.route("GET", "/e3", lambda r: Reply(400, "plain text"))
    assert api_message(requests.get(server.url + "/e1", timeout=5)) == "bad filter"
    assert api_message(requests.get(server.url + "/e2", timeout=5)) == "bad from"
    assert api_message(requests.get(server.url + "/e3", timeout=5)) == "plain text"
