"""The exporter's HTTP server: ``/metrics`` for Prometheus, ``/healthz`` and a landing page.

The HTTP side is prometheus-client's WSGI app and threading server; TLS and client
certificates mirror what its ``start_http_server`` offers (certfile, keyfile,
client_cafile with client_auth_required), built here so that the server can also
answer ``/healthz`` and does the TLS handshake in the request's own thread (a slow
client cannot stall the accept loop). No server-side auth beyond client
certificates: put a reverse proxy in front for anything more.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.process_collector import ProcessCollector

from workstyle.collector import __version__
from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError
from workstyle.collector.exporter.families import WorkstyleCollector, registry
from workstyle.collector.exporter.settings import ExporterSettings

log = logging.getLogger("collector")

#: Seconds a client may take for the TLS handshake or to send its request.
CLIENT_TIMEOUT = 15.0

_LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>workstyle collector</title></head>
<body><h1>workstyle collector {version}</h1>
<p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">Health</a></p></body></html>
"""


class _Handler(WSGIRequestHandler):
    """Request handler with a timeout that logs at debug level instead of to stderr."""

    timeout = CLIENT_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s " + format, self.client_address[0], *args)


class _Server(ThreadingWSGIServer):
    """prometheus-client's threading server, with TLS wrapped per connection."""

    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(CLIENT_TIMEOUT)
        with self.ssl_context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that fails the handshake or hangs up is its problem, not a traceback.
        log.debug("http %s: %s", client_address[0], _brief(sys.exc_info()[1]))


def _brief(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc else "unknown error"


def tls_context(s: ExporterSettings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP; a bad file is a ConfigError."""
    if not s.tls_cert_file:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile=s.tls_cert_file, keyfile=s.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"[exporter] cannot load TLS certificate {s.tls_cert_file} or its"
            f" key {s.tls_key_file}: {_reason(exc)}"
        ) from None
    if s.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=s.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"[exporter] cannot load client CA {s.client_ca_file}: {_reason(exc)}"
            ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)


def make_app(cfg: Config, *, process_metrics: bool = True) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: /metrics, /healthz and a landing page at /."""
    reg, collector = registry(cfg, live=True)
    if process_metrics:
        ProcessCollector(registry=reg)
    metrics_app = make_wsgi_app(reg)
    # Load the inputs now: problems show in the log at start-up, and the first scrape does
    # not pay for importing pyarrow and parsing the tables.
    collector.refresh()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            return _healthz(collector, start_response)
        if path == "/":
            body = _LANDING.format(version=__version__).encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found; metrics are at /metrics\n"]

    return app


def _healthz(collector: WorkstyleCollector, start_response: Callable[..., Any]) -> Iterable[bytes]:
    # The process is healthy when it can answer; data problems are reported (here and in
    # workstyle_exporter_input_up), not turned into a restart loop by the service manager.
    inputs = collector.refresh()
    body = {"status": "ok", "inputs": {k: "ok" if v else "error" for k, v in inputs.items()}}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode() + b"\n"]


def build_server(cfg: Config, s: ExporterSettings) -> _Server:
    """Bind the listening socket (port 0 picks a free one); serve with ``serve_forever()``."""
    try:
        family = socket.getaddrinfo(
            s.host, s.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"[exporter] listen: cannot resolve {s.host!r}: {exc.strerror}") from None
    server_class = type("_BoundServer", (_Server,), {"address_family": family})
    ctx = tls_context(s)
    app = make_app(cfg)
    try:
        server = make_server(s.host, s.port, app, server_class=server_class, handler_class=_Handler)
    except OSError as exc:
        raise ConfigError(
            f"[exporter] cannot listen on {s.host}:{s.port}: {exc.strerror}"
        ) from None
    server.ssl_context = ctx
    return server
