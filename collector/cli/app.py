"""The ``collector`` group: global options, the shared context, errors to exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from workstyle.collector import __version__
from workstyle.collector.errors import CollectorError

log = logging.getLogger("collector")


class Context:
    """Options shared by every command; the config is loaded on first use."""

    def __init__(self, config_path: str | None, data_dir: str | None, lock_wait: float | None):
        self.config_path = config_path
        self.data_dir = data_dir
        self.lock_wait = lock_wait
        self._cfg = None

    @property
    def cfg(self):
        """The config with every source's options validated (imports their adapters)."""
        if self._cfg is None:
            self._cfg = self._load(source_options=True)
        return self._cfg

    def listed_cfg(self):
        """The config with sources only listed: for the exporter, which reads no source."""
        return self._cfg or self._load(source_options=False)

    def checked_cfg(self):
        """The config with the key and every enabled source's secret read, as a run would."""
        return self._load(source_options=True, secrets=True)

    def _load(self, *, source_options: bool, secrets: bool = False):
        from workstyle.collector import config

        cfg = config.load(
            self.config_path, self.data_dir, source_options=source_options, secrets=secrets
        )
        if self.lock_wait is not None:
            cfg.lock_wait = self.lock_wait
        return cfg


def _finite(value: float | None) -> float | None:
    # FloatRange lets nan through (every comparison with nan is false).
    if value is not None and value != value:
        raise click.BadParameter("expected a number of seconds, got nan")
    return value


class CollectorGroup(click.Group):
    """Turns errors a user can hit into one line on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CollectorError as exc:
            from workstyle.collector.secrets import redact

            for line in getattr(exc, "problems", None) or [str(exc)]:
                click.echo(f"error: {redact(line)}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=CollectorGroup)
@click.version_option(__version__, prog_name="collector")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="COLLECTOR_CONFIG",
    help="Config file (default: $COLLECTOR_CONFIG, else the bundled example).",
)
@click.option("--data-dir", metavar="DIR", help="Override [collector] data_dir.")
@click.option(
    "--lock-wait",
    type=click.FloatRange(0, 1_000_000_000),
    callback=lambda _ctx, _param, v: _finite(v),
    metavar="SECONDS",
    help="Wait this long for another run's lock (default: [collector] lock_wait).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of the logs on stderr.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    data_dir: str | None,
    lock_wait: float | None,
    log_format: str,
    verbose: bool,
) -> None:
    """Collect work-style telemetry into Parquet and compute the plan's KPIs.

    Quick start: `collector run` ingests the bundled example data into
    ./collector-data and prints the KPI table.
    """
    from workstyle.collector import logs

    _tune_allocator()
    logs.setup(log_format, verbose)
    ctx.obj = Context(config_path, data_dir, lock_wait)


#: polars' jemalloc keeps freed pages (dirty for 10 s, muzzy forever): a backfill of
#: a year of daily print logs peaked at 456 MB with that, 400 MB with these (+5 % time).
#: A site's own ``_RJEM_MALLOC_CONF`` wins.
ALLOCATOR = "dirty_decay_ms:100,muzzy_decay_ms:0"
#: pyarrow's default pool (mimalloc) keeps what it freed: a re-ingest of 15 M print
#: jobs over a populated store peaked at 461-481 MB with it, 393-399 MB with the
#: system allocator or pyarrow's jemalloc; jemalloc, because the system allocator
#: cost a four-year backfill 20 % more time (page faults). A site's own
#: ``ARROW_DEFAULT_MEMORY_POOL`` wins.
ARROW_POOL = "jemalloc"
#: What polars puts in front of ``_RJEM_MALLOC_CONF`` in the environment of a process
#: that imports it, which that process's children inherit (a Python wrapper that
#: spawns the collector, the benchmarks): not a setting of the site's.
POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def _tune_allocator() -> None:
    """Set polars' and pyarrow's allocators to give memory back, before they load."""
    import os

    if "polars" not in sys.modules:
        conf = os.environ.get("_RJEM_MALLOC_CONF", "")
        if conf.startswith(POLARS_DEFAULT):
            conf = conf[len(POLARS_DEFAULT) :].lstrip(",")
        os.environ["_RJEM_MALLOC_CONF"] = conf or ALLOCATOR
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", ARROW_POOL)
