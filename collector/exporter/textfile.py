"""The run's metrics as a ``.prom`` file for node_exporter's textfile collector.

Same metrics as ``collector serve`` (minus the scrape-time ones), written atomically:
a temporary file in the same directory, fsynced, then renamed over the old one, so
node_exporter never reads half a file. The temporary name does not end in ``.prom``,
so the textfile collector ignores it even while it exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.exposition import generate_latest

from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError
from workstyle.collector.exporter.families import registry
from workstyle.collector.exporter.settings import TEXTFILE_NAME


def render(cfg: Config) -> bytes:
    """The metrics in the Prometheus text format, without scrape-time metrics."""
    reg, _ = registry(cfg, live=False)
    return generate_latest(reg)


def write(cfg: Config, directory: Path) -> Path:
    """Write ``workstyle_collector.prom`` into ``directory`` atomically; return its path."""
    if not directory.is_dir():
        raise ConfigError(
            f"textfile directory {directory} does not exist (create it, or fix"
            " --textfile-dir / [exporter] textfile_dir)"
        )
    path = directory / TEXTFILE_NAME
    tmp = directory / f".{TEXTFILE_NAME}.{os.getpid()}.tmp"
    payload = render(cfg)
    try:
        # open() honours the umask (unlike mkstemp's 0600), so node_exporter, running as
        # another user, can read the result.
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return path
