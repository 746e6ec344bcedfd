"""Secrets: ``env:NAME`` / ``file:PATH`` references, resolved without ever echoing a value.

Every value read here is remembered by the process's one redactor: :func:`redact`
removes it - raw, URL-encoded, or inside base64 (a Basic-auth header) - from any
text before it is logged, printed, or stored in the state, the run ledger or an
exception message. A server that echoes a request (some gateways do) therefore
cannot carry a secret into the collector's output.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

from workstyle.collector.errors import ConfigError

REDACTED = "[redacted]"
#: Shorter values are not redacted: they would blank out ordinary words (and a
#: credential that short is no protection anyway).
MIN_REDACTED_LENGTH = 6
#: Runs of base64 (standard or URL-safe alphabet) long enough to hide a secret.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
#: Fields of a JSON credential (a Google service-account key) that are secret.
_JSON_SECRET_FIELDS = frozenset({"private_key", "private_key_id", "client_secret", "refresh_token"})


class _Redactor:
    """The secret values this process has read, and their encoded forms."""

    def __init__(self) -> None:
        self._raw: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        pieces = {value.strip()}
        try:
            # A JSON credential (a service-account key): its long values are secrets too,
            # and so is each line of a PEM key inside it.
            doc = json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for k, v in doc.items():
                # Not its e-mail or token URL: redacting those would only hide clues.
                if k in _JSON_SECRET_FIELDS and isinstance(v, str):
                    pieces.add(v)
                    pieces.update(line for line in v.splitlines() if len(line) >= 16)
        pieces = {p for p in pieces if len(p) >= MIN_REDACTED_LENGTH}
        if not pieces - self._raw:
            return
        with self._lock:
            for p in pieces:
                self._raw.add(p)
                self._forms.update({p, quote(p, safe=""), quote_plus(p)})
            alternatives = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        text = _BASE64_RUN.sub(self._base64, text)
        return pattern.sub(REDACTED, text)

    def _base64(self, match: re.Match[str]) -> str:
        token = match.group()
        padded = token + "=" * (-len(token) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                plain = decode(padded).decode("utf-8", errors="ignore")
            except (binascii.Error, ValueError):
                continue
            if any(secret in plain for secret in self._raw):
                return REDACTED
        return token


_REDACTOR = _Redactor()


def register_secret(value: str) -> None:
    """Remember a secret value (e.g. a token an API issued) so that it is redacted."""
    if value:
        _REDACTOR.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret value, and its encoded forms, replaced."""
    return _REDACTOR(text)


def read_secret(ref: str, where: str) -> str:
    """Resolve an ``env:NAME`` / ``file:PATH`` reference; errors never show the value."""
    if ref.startswith("env:"):
        var = ref[4:]
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"{where}: environment variable {var} is not set or empty")
        register_secret(value)
        return value
    file = Path(ref[5:]).expanduser()
    try:
        value = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: secret file {file} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{where}: secret file {file} is not UTF-8 text; write the secret as text"
            " (e.g. the output of 'openssl rand -hex 32')"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {file}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: secret file {file} is empty")
    register_secret(value)
    return value
