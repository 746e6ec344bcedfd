"""``collector status``, ``kinds`` and ``validate``: look at config and data, change nothing."""

from __future__ import annotations

import json
import time

import click

from workstyle.collector.cli import options
from workstyle.collector.cli.app import Context
from workstyle.collector.errors import CollectorError, ConfigError


@click.command()
@options.output_format(["table", "json"])
@click.pass_obj
def status(obj: Context, fmt: str) -> None:
    """Per source: watermark, last run and outcome, row and quarantine counts, last error."""
    from workstyle.collector.ingest.status import source_status

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
        if r["filtered"]:
            by_rule = "; ".join(f"{rule} {n:,}" for rule, n in r["filtered"].items())
            click.echo(f"  filtered         {sum(r['filtered'].values()):,} ({by_rule})")
        if last.get("unavailable"):
            from workstyle.collector.ingest.state import describe_spans

            spans = describe_spans(last["unavailable"])
            click.echo(f"  not fetched      {spans} (older than the API keeps)")
        if last.get("error"):
            click.echo(f"  last error       {last['error']}")
        if r.get("year_rules"):
            rules = ", ".join(
                f"{rule} ({n} file{'s' if n > 1 else ''})" for rule, n in r["year_rules"].items()
            )
            click.echo(f"  year from        {rules}")
        if last.get("warning"):
            click.echo(f"  warning          {last['warning']}")


@click.command()
@options.output_format(["text", "markdown"])
def kinds(fmt: str) -> None:
    """Every source kind with its config keys, which are required, and their defaults."""
    from workstyle.collector.cli.kinds_reference import describe

    click.echo(describe(fmt))


@click.command()
@click.option(
    "--check-sources",
    is_flag=True,
    help="Also probe each enabled source (credentials, permissions, folders).",
)
@click.pass_obj
def validate(obj: Context, check_sources: bool) -> None:
    """Check the config as `run` would, without touching data (exit 2, every problem listed).

    Types, bounds and every kind's own value checks, the pseudonymisation key (readable,
    long enough) and every enabled source's secrets; --check-sources also probes them.
    """
    cfg = obj.checked_cfg()
    if any(s.live for s in cfg.sources):
        # The live settings are checked as `serve` would when it starts its poller.
        from workstyle.collector.live.readers import readers

        for reader in readers(cfg, time.time):
            reader.close()
    problems: list[str] = []
    for check in _run_checks():
        try:
            check(cfg)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError.of(problems)
    click.echo(
        f"{cfg.path}: ok, {len(cfg.sources)} source(s):"
        f" {', '.join(s.name for s in cfg.sources) or 'none'}"
    )
    if not check_sources:
        return
    from workstyle.collector.ingest.pipeline import Pipeline

    failed = False
    for source in (s for s in cfg.sources if s.enabled):
        try:
            adapter = Pipeline.build_adapter(_PipelineShim(cfg), source)
            click.echo(f"  {source.name}: {adapter.check()}")
        except CollectorError as exc:
            failed = True
            click.echo(f"  {source.name}: FAILED: {exc}")
    if failed:
        raise ConfigError("one or more sources failed their check (see above)")


def _run_checks() -> list:
    """What `run` reads besides the config itself: the plan's targets, the [kpi] rules,
    the [exporter] settings (`serve`, `run --textfile-dir`)."""
    from workstyle.aggregates.settings import rules_from
    from workstyle.aggregates.targets import load_plan
    from workstyle.collector.exporter.settings import settings

    return [
        lambda cfg: load_plan(cfg.targets_file),
        lambda cfg: rules_from(cfg.sections.get("kpi")),
        settings,
    ]


class _PipelineShim:
    """Just enough of a Pipeline to build adapters (their secret reader needs the config)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
