"""Secrets: ``env:NAME`` / ``file:PATH`` references, resolved without ever echoing a value."""

from __future__ import annotations

import os
from pathlib import Path

from workstyle.collector.errors import ConfigError


def read_secret(ref: str, where: str) -> str:
    """Resolve an ``env:NAME`` / ``file:PATH`` reference; errors never show the value."""
    if ref.startswith("env:"):
        var = ref[4:]
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"{where}: environment variable {var} is not set or empty")
        return value
    file = Path(ref[5:]).expanduser()
    try:
        value = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: secret file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {file}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: secret file {file} is empty")
    return value
