"""A small threaded HTTP server on 127.0.0.1 for testing API adapters without mocks.

Routes map a method and a regular expression over the *raw* request path (so a test
can see exactly how a client encoded it) to a handler returning a :class:`Reply`.
Every request is logged; a handler that raises is answered with 500 and remembered,
so a test fails loudly instead of passing on a broken fake.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """A request as the server saw it."""

    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """A canned answer; ``status=0`` drops the connection without answering."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, (dict, list)):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(self.body, str):
            data = self.body.encode("utf-8")
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = self.body
        return data, headers


Handler = Callable[[Request], Reply]


class FakeServer:
    """Routes, a request log, and a server thread."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.log: list[Request] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._scheme = "http"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern), handler))

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Logged requests, optionally of one method and whose path matches a regex."""
        return [
            r
            for r in self.log
            if (method is None or r.method == method)
            and (path is None or re.fullmatch(path, r.path))
        ]

    def start(self, tls: ssl.SSLContext | None = None) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response: headers and body in separate small packets meet
            # delayed ACKs and cost ~40 ms a request on keep-alive connections.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method=self.command,
                    raw_path=split.path,
                    path=split.path,
                    query={k: v[0] for k, v in parse_qs(split.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.log.append(req)
                reply = fake._dispatch(req)
                if reply.status == 0:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                data, headers = reply.encoded()
                self.send_response(reply.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def _dispatch(self, req: Request) -> Reply:
        for method, pattern, handler in self.routes:
            if method == req.method and pattern.fullmatch(req.raw_path):
                try:
                    return handler(req)
                except Exception:  # surfaced by the fixture's teardown
                    self.errors.append(traceback.format_exc())
                    return Reply(500, {"message": "fake server error"})
        return Reply(404, {"message": f"no route for {req.method} {req.raw_path}"})


class Faults:
    """Queued misbehaviour per route key: the next matching request gets the next reply."""

    def __init__(self) -> None:
        self._queues: dict[str, list[Reply | Callable[[], Reply | None]]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, *replies: Reply | Callable[[], Reply | None]) -> None:
        """Queue replies; a callable runs instead (e.g. expiring tokens) and may return None
        to let the request be served normally."""
        with self._lock:
            self._queues.setdefault(key, []).extend(replies)

    def take(self, key: str) -> Reply | None:
        with self._lock:
            queue = self._queues.get(key)
            item = queue.pop(0) if queue else None
        return item() if callable(item) else item
