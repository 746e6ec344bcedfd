"""``collector run``, ``ingest`` and ``backfill``: the ingest engine from the command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from workstyle.collector.cli import options
from workstyle.collector.cli.app import Context
from workstyle.collector.errors import exit_code_of

log = logging.getLogger("collector")


def _pipeline(cfg, progress=None):
    from workstyle.collector.config import key_where
    from workstyle.collector.ingest.pipeline import Pipeline
    from workstyle.collector.pseudonyms import Pseudonymiser, load_key

    key = load_key(
        cfg.privacy_key,
        cfg.location,
        allow_create=cfg.is_example,
        warn=log.warning,
        where=key_where(cfg.path),
    )
    return Pipeline(cfg, Pseudonymiser(key), progress=progress)


def _select_sources(cfg, names: tuple[str, ...]):
    if names:
        return [cfg.source(n) for n in names]
    return [s for s in cfg.sources if s.enabled]


def _fmt_result(r) -> str:
    status = {"success": "ok", "failed": "FAILED", "partial": "PARTIAL"}[r.outcome]
    line = (
        f"{r.source:<24} {status:<7} read {r.rows_read:>9,}  new {r.new:>9,}"
        f"  updated {r.updated:>7,}  unchanged {r.unchanged:>9,}"
        f"  quarantined {r.quarantined:>6,}  {r.duration:6.2f}s"
    )
    if r.filtered:
        line += f"  filtered {r.filtered:,} ({_by_rule(r.filtered_by)})"
    if r.duplicates:
        line += f"  duplicate keys {r.duplicates:,}"
    if r.outside_window:
        line += f"  outside window {r.outside_window:,}"
    if r.unavailable:
        from workstyle.collector.ingest.state import describe_spans

        line += (
            f"\n{'':<24} not fetched (older than the API keeps): {describe_spans(r.unavailable)}"
        )
    if r.error:
        line += f"\n{'':<24} {r.error}"
    if r.warning:
        line += f"\n{'':<24} warning: {r.warning}"
    return line


def _by_rule(counts: dict[str, int]) -> str:
    return "; ".join(f"{rule} {n:,}" for rule, n in counts.items())


def _exit_code(results) -> int:
    return exit_code_of([None if r.ok else (r.error_kind or "source") for r in results])


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


@contextlib.contextmanager
def _writer(cfg) -> Iterator[None]:
    """The writer lock (a lease in a bucket), held for the whole command; the holder
    first removes what killed writers left. Inside, data is written owner-only."""
    from workstyle.collector.ingest.lease import writer_lock
    from workstyle.collector.ingest.lock import owner_only
    from workstyle.collector.ingest.organisations import check_layout
    from workstyle.collector.ingest.store import Store

    with writer_lock(cfg.location, cfg.lock_wait) as lock:
        with owner_only():
            removed = Store.at(cfg.location).cleanup_temp(lock)
        if removed:
            log.info("removed %d temporary file(s) a killed run left behind", removed)
        check_layout(cfg.location)
        yield


def _ingest(cfg, names: tuple[str, ...]) -> list:
    """Every selected source (call holding the writer lock, inside ``owner_only``)."""
    sources = _select_sources(cfg, names)
    progress = _Progress()
    pipeline = _pipeline(cfg, progress)
    try:
        results = pipeline.incremental(sources)
    finally:
        progress.close()
    for r in results:
        click.echo(_fmt_result(r))
    return results


@click.command()
@options.sources()
@options.as_of()
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
    from workstyle.collector.ingest.lock import owner_only

    cfg = obj.cfg
    # One lock for the whole run: a waiting writer must not start while the KPI tables,
    # the textfile or the report are still being written.
    with _writer(cfg):
        with owner_only():
            results = _ingest(cfg, names)
            shown = _recompute_kpis(cfg, as_of.date() if as_of else None)
        if shown:
            click.echo("")
            click.echo(shown)
        # Outside data_dir and read by others (node_exporter, policy staff): the caller's
        # umask applies.
        _after_run(cfg, results, textfile_dir, report_dir)
    sys.exit(_exit_code(results))


def _recompute_kpis(cfg, as_of: dt.date | None) -> str:
    """The KPI step of ``run``: recompute, write the three KPI tables, render the table."""
    from workstyle.aggregates import engine
    from workstyle.collector.ingest.store import Store

    ctx = engine.context_from_config(cfg, as_of)
    result = engine.compute(ctx)
    paths = engine.write(Store.at(cfg.location), result)
    log.info("wrote KPI tables: %s", ", ".join(paths.values()))
    return engine.render_table(result.yearly(), result.as_of, result.plan)


def _after_run(
    cfg,
    results,
    textfile_dir: str | None,
    report_dir: str | None,
) -> None:
    """Optional outputs of the nightly run, each owned by its own module."""
    # A directory given on the command line is relative to the working directory; one
    # from the config file is relative to the config file, like every other path there.
    textfile = _dir_option(cfg, textfile_dir, "exporter", "textfile_dir")
    if textfile:
        from workstyle.collector.exporter import textfile as textfile_output

        path = textfile_output.write(cfg, textfile)
        log.info("wrote metrics for the textfile collector to %s", path)
    report = _dir_option(cfg, report_dir, "report", "dir")
    if report:
        from workstyle.collector.report.build import write_reports

        write_reports(cfg, report)


def _dir_option(cfg, given: str | None, section: str, key: str) -> Path | None:
    if given:
        return Path(given)
    configured = cfg.sections.get(section, {}).get(key)
    if not configured:
        return None
    path = Path(configured).expanduser()
    return path if path.is_absolute() else cfg.path.resolve().parent / path


@click.command()
@options.sources()
@click.pass_obj
def ingest(obj: Context, names: tuple[str, ...]) -> None:
    """Ingest sources incrementally (the first half of `run`, without the KPIs)."""
    from workstyle.collector.ingest.lock import owner_only

    with _writer(obj.cfg), owner_only():
        results = _ingest(obj.cfg, names)
    sys.exit(_exit_code(results))


def _parse_when(value: str, tz, end: bool) -> dt.datetime:
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


@click.command()
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
    from workstyle.collector.ingest.lock import owner_only

    cfg = obj.cfg
    source = cfg.source(name)
    lo, hi = _parse_when(start, cfg.tz, False), _parse_when(end, cfg.tz, True)
    if hi <= lo:
        raise click.BadParameter("--to must be after --from")
    with _writer(cfg), owner_only():
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


@click.command("adopt-organisation")
@click.pass_obj
def adopt_organisation(obj: Context) -> None:
    """Move a dataset written without an organisation level under [collector] organisation.

    For a single-organisation dataset that is to be shared: its partitions, run ledger,
    quarantine, KPI tables and state move under organisation=<code>, so the watermark and
    every row carry on. Restartable; run it once, before the first shared run.
    """
    from workstyle.collector.errors import ConfigError
    from workstyle.collector.ingest.lease import writer_lock
    from workstyle.collector.ingest.organisations import adopt_unlevelled

    cfg = obj.cfg
    if not cfg.organisation:
        raise ConfigError(
            f"{cfg.path}: [collector] key 'organisation': required by adopt-organisation;"
            " expected the 6-digit 地方公共団体コード the existing data belongs to"
        )
    with writer_lock(cfg.location, cfg.lock_wait):
        moved = adopt_unlevelled(cfg.location)
    click.echo(f"moved {moved} file(s) under organisation={cfg.organisation}")
