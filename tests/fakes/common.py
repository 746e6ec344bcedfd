"""Helpers the platform fakes share: fixtures, time shifting, bearer-token bookkeeping."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from tests.fakes.server import Reply, Request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(platform: str, name: str) -> Any:
    """A JSON fixture body."""
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def shift_times(obj: Any, delta: dt.timedelta, keys: tuple[str, ...]) -> Any:
    """A deep copy of ``obj`` with the ISO timestamps under ``keys`` moved by ``delta``.

    Fixtures carry the dates of the documentation examples; the APIs only keep a few
    months, so tests move them next to "now".
    """
    if isinstance(obj, list):
        return [shift_times(x, delta, keys) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            # 1970-01-01 is Webex's "not available": a sentinel, not a time.
            if k in keys and isinstance(v, str) and v and not v.startswith("1970-01-01"):
                out[k] = iso(parse(v) + delta)
            else:
                out[k] = shift_times(v, delta, keys)
        return out
    return obj


class Tokens:
    """Bearer tokens a fake issued, with expiry by the test (``expire_all``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.valid: set[str] = set()
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{self.prefix}-{secrets.token_hex(8)}"
        with self._lock:
            self.valid.add(token)
            self.issued.append(token)
        return token

    def expire_all(self) -> None:
        with self._lock:
            self.valid.clear()

    def ok(self, req: Request) -> bool:
        auth = req.header("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.valid


def unauthorized(message: str = "Invalid access token.") -> Reply:
    return Reply(401, {"code": 124, "message": message})
