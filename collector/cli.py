"""The ``collector`` command line (click): a thin layer over config, pipeline and store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from collector import __version__
from collector.errors import EXIT_CONFIG, EXIT_OK, EXIT_SOURCE_FAILED, CollectorError, ConfigError

log = logging.getLogger("collector")

EXIT_LOCKED = 3


class Context:
    """Options shared by every command; the config is loaded on first use."""

    def __init__(self, config_path: str | None, data_dir: str | None, lock_wait: float | None):
        self.config_path = config_path
        self.data_dir = data_dir
        self.lock_wait = lock_wait
        self._cfg = None

    @property
    def cfg(self):  # noqa: ANN201 - collector.config.Config
        if self._cfg is None:
            from collector import config

            self._cfg = config.load(self.config_path, self.data_dir)
            if self.lock_wait is not None:
                self._cfg.lock_wait = self.lock_wait
        return self._cfg


class CollectorGroup(click.Group):
    """Turns errors a user can hit into one line on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from collector.errors import LockedError

        try:
            return super().invoke(ctx)
        except LockedError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_LOCKED)
        except CollectorError as exc:
            click.echo(f"error: {exc}", err=True)
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
    type=float,
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
    from collector import logs

    logs.setup(log_format, verbose)
    ctx.obj = Context(config_path, data_dir, lock_wait)


# -- helpers ------------------------------------------------------------------------------
def _pipeline(cfg, progress=None):  # noqa: ANN001, ANN202
    from collector.pipeline import Pipeline
    from collector.pseudonym import Pseudonymiser, load_key

    key = load_key(cfg.privacy_key, cfg.data_dir, allow_create=cfg.is_example, warn=log.warning)
    return Pipeline(cfg, Pseudonymiser(key), progress=progress)


def _select_sources(cfg, names: tuple[str, ...]):  # noqa: ANN001, ANN202
    if names:
        return [cfg.source(n) for n in names]
    return [s for s in cfg.sources if s.enabled]


def _fmt_result(r) -> str:  # noqa: ANN001
    status = {"success": "ok", "failed": "FAILED", "partial": "PARTIAL"}[r.outcome]
    line = (
        f"{r.source:<24} {status:<7} read {r.rows_read:>9,}  new {r.new:>9,}"
        f"  updated {r.updated:>7,}  unchanged {r.unchanged:>9,}"
        f"  quarantined {r.quarantined:>6,}  {r.duration:6.2f}s"
    )
    if r.duplicates:
        line += f"  duplicate keys {r.duplicates:,}"
    if r.outside_window:
        line += f"  outside window {r.outside_window:,}"
    if r.error:
        line += f"\n{'':<24} {r.error}"
    return line


def _exit_code(results) -> int:  # noqa: ANN001
    if any(r.error_kind == "config" for r in results):
        return EXIT_CONFIG
    if any(not r.ok for r in results):
        return EXIT_SOURCE_FAILED
    return EXIT_OK


class _Progress:
    """A progress bar on a terminal, plain progress lines in a log."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bars: dict[str, Any] = {}
        self._last: dict[str, int] = {}

    def __call__(self, source: str, done: int, total: int) -> None:
        if self.tty:
            bar = self._bars.get(source)
            if bar is None:
                bar = click.progressbar(length=total, label=source, file=sys.stderr)
                bar.__enter__()
                self._bars[source] = bar
            bar.update(done - bar.pos)
            if done >= total:
                bar.__exit__(None, None, None)
        elif total >= 10:  # a handful of files needs no progress lines
            pct = int(100 * done / max(total, 1))
            if pct // 10 != self._last.get(source, -1) // 10 or done == total:
                log.info("%s: %d/%d units (%d%%)", source, done, total, pct)
            self._last[source] = pct

    def close(self) -> None:
        for bar in self._bars.values():
            bar.__exit__(None, None, None)
        self._bars.clear()


def _ingest(cfg, names: tuple[str, ...]) -> list:  # noqa: ANN001
    from collector.lock import WriterLock
    from collector.store import Store

    sources = _select_sources(cfg, names)
    with WriterLock(cfg.data_dir, cfg.lock_wait):
        Store(cfg.data_dir.resolve()).cleanup_temp()
        progress = _Progress()
        pipeline = _pipeline(cfg, progress)
        try:
            results = pipeline.incremental(sources)
        finally:
            progress.close()
    for r in results:
        click.echo(_fmt_result(r))
    return results


# -- commands ------------------------------------------------------------------------------
SOURCES_OPTION = click.option(
    "--source",
    "names",
    multiple=True,
    metavar="NAME",
    help="Only these sources (repeatable); default: every enabled source.",
)


@main.command()
@SOURCES_OPTION
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Evaluate KPIs as of this date (default: today).",
)
@click.option(
    "--textfile-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write the run and KPI metrics for node_exporter's textfile"
    " collector into DIR (default: [exporter] textfile_dir).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write the HTML and Excel KPI report into DIR.",
)
@click.pass_obj
def run(
    obj: Context,
    names: tuple[str, ...],
    as_of: dt.datetime | None,
    textfile_dir: str | None,
    report_dir: str | None,
) -> None:
    """The nightly job: ingest every enabled source, then recompute the KPIs.

    Exit code 0 when every source succeeded, 1 when any failed (the others still
    landed), 2 on configuration errors, 3 when another run holds the lock.
    """
    cfg = obj.cfg
    results = _ingest(cfg, names)
    from aggregates import hook

    shown = hook.recompute(cfg, as_of.date() if as_of else None)
    if shown:
        click.echo("")
        click.echo(shown)
    _after_run(cfg, results, textfile_dir, report_dir)
    sys.exit(_exit_code(results))


def _after_run(
    cfg,
    results,
    textfile_dir: str | None,  # noqa: ANN001
    report_dir: str | None,
) -> None:
    """Optional outputs of the nightly run, each owned by its own module."""
    # A directory given on the command line is relative to the working directory; one
    # from the config file is relative to the config file, like every other path there.
    textfile = _dir_option(cfg, textfile_dir, "exporter", "textfile_dir")
    if textfile:
        from collector import textfile as textfile_output

        path = textfile_output.write(cfg, textfile)
        log.info("wrote metrics for the textfile collector to %s", path)
    report = _dir_option(cfg, report_dir, "report", "dir")
    if report:
        from collector import report_command

        report_command.write_reports(cfg, report)


def _dir_option(cfg, given: str | None, section: str, key: str) -> Path | None:  # noqa: ANN001
    if given:
        return Path(given)
    configured = cfg.sections.get(section, {}).get(key)
    if not configured:
        return None
    path = Path(configured).expanduser()
    return path if path.is_absolute() else cfg.path.resolve().parent / path


@main.command()
@SOURCES_OPTION
@click.pass_obj
def ingest(obj: Context, names: tuple[str, ...]) -> None:
    """Ingest sources incrementally (the first half of `run`, without the KPIs)."""
    results = _ingest(obj.cfg, names)
    sys.exit(_exit_code(results))


def _parse_when(value: str, tz, end: bool) -> dt.datetime:  # noqa: ANN001
    """A date (local midnight; an end date is inclusive) or an ISO time, to UTC."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.UTC)


@main.command()
@click.option("--source", "name", required=True, metavar="NAME", help="The source to re-read.")
@click.option(
    "--from",
    "start",
    required=True,
    metavar="DATE",
    help="First day (YYYY-MM-DD, local) or ISO time.",
)
@click.option(
    "--to",
    "end",
    required=True,
    metavar="DATE",
    help="Last day, inclusive (YYYY-MM-DD, local) or ISO time (exclusive).",
)
@click.option("--dry-run", is_flag=True, help="Read and validate, write nothing.")
@click.option(
    "--restart", is_flag=True, help="Forget the progress of an interrupted backfill of this window."
)
@click.pass_obj
def backfill(obj: Context, name: str, start: str, end: str, dry_run: bool, restart: bool) -> None:
    """Re-read one source's window, whatever its watermark says.

    Idempotent (rows are upserted by natural key), resumable after an interruption
    (committed units are skipped), and it never moves the nightly watermark.
    """
    from collector.lock import WriterLock

    cfg = obj.cfg
    source = cfg.source(name)
    lo, hi = _parse_when(start, cfg.tz, False), _parse_when(end, cfg.tz, True)
    if hi <= lo:
        raise click.BadParameter("--to must be after --from")
    with WriterLock(cfg.data_dir, cfg.lock_wait):
        progress = _Progress()
        try:
            result = _pipeline(cfg, progress).backfill(
                source, lo, hi, dry_run=dry_run, restart=restart
            )
        finally:
            progress.close()
    if dry_run:
        click.echo("dry run: nothing was written")
    click.echo(_fmt_result(result))
    sys.exit(_exit_code([result]))


@main.command()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_obj
def status(obj: Context, fmt: str) -> None:
    """Per source: watermark, last run and outcome, row and quarantine counts, last error."""
    from collector.status import source_status

    rows = source_status(obj.cfg)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("no sources configured")
        return
    for r in rows:
        last = r["last_run"] or {}
        click.echo(f"{r['source']} ({r['kind']}{'' if r['enabled'] else ', disabled'})")
        click.echo(f"  watermark        {r['watermark'] or '-'}")
        click.echo(f"  newest event     {r['newest_event'] or '-'}")
        click.echo(
            f"  last run         {last.get('started_at', '-')} {last.get('mode', '')}"
            f" {last.get('outcome', 'never')}"
        )
        click.echo(f"  last success     {r['last_success_at'] or '-'}")
        click.echo(
            "  rows             " + (", ".join(f"{t} {n:,}" for t, n in r["rows"].items()) or "0")
        )
        click.echo(f"  quarantined      {r['quarantined']:,}")
        if last.get("error"):
            click.echo(f"  last error       {last['error']}")


@main.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True
)
def kinds(fmt: str) -> None:
    """Every source kind with its config keys, which are required, and their defaults."""
    from collector.kinds import describe

    click.echo(describe(fmt))


@main.command()
@click.option(
    "--check-sources",
    is_flag=True,
    help="Also probe each enabled source (credentials, permissions, folders).",
)
@click.pass_obj
def validate(obj: Context, check_sources: bool) -> None:
    """Check the config without touching data (exit 2 on the first problem)."""
    cfg = obj.cfg
    click.echo(
        f"{cfg.path}: ok, {len(cfg.sources)} source(s):"
        f" {', '.join(s.name for s in cfg.sources) or 'none'}"
    )
    if not check_sources:
        return
    from collector.pipeline import Pipeline

    failed = False
    for source in _select_sources(cfg, ()):
        try:
            adapter = Pipeline.build_adapter(_PipelineShim(cfg), source)
            click.echo(f"  {source.name}: {adapter.check()}")
        except CollectorError as exc:
            failed = True
            click.echo(f"  {source.name}: FAILED: {exc}")
    if failed:
        raise ConfigError("one or more sources failed their check (see above)")


class _PipelineShim:
    """Just enough of a Pipeline to build adapters (their secret reader needs the config)."""

    def __init__(self, cfg) -> None:  # noqa: ANN001
        self.cfg = cfg


def _extend() -> None:
    """Commands that live in their own modules register themselves here."""
    import importlib

    for module in ("collector.kpi_command", "collector.serve_command", "collector.report_command"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(main)


_extend()


if __name__ == "__main__":  # pragma: no cover
    main()
