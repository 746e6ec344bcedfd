"""``collector quarantine``: the rows that could not be read, so an operator can act on them."""

from __future__ import annotations

import csv
import io
import json

import click

from workstyle.collector.cli import options
from workstyle.collector.cli.app import Context


@click.command()
@click.option(
    "--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable)."
)
@click.option(
    "--table", "tables", multiple=True, metavar="TABLE", help="Only this table (repeatable)."
)
@click.option(
    "--run",
    "runs",
    multiple=True,
    metavar="RUN_ID",
    help="Only rows first seen by this run (repeatable; see `status`).",
)
@options.output_format(["table", "csv", "json"])
@click.pass_obj
def quarantine(
    obj: Context, sources: tuple[str, ...], tables: tuple[str, ...], runs: tuple[str, ...], fmt: str
) -> None:
    """List or export quarantined rows: source, table, run, location, reason, field count.

    The raw text is shown only where it was kept ([privacy] quarantine_raw = true).
    """
    from workstyle.collector.ingest.status import QUARANTINE_COLUMNS, quarantined

    rows = quarantined(obj.listed_cfg(), sources, tables, runs)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=QUARANTINE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    for r in rows:
        fields = "" if r["fields"] is None else f"  ({r['fields']} fields)"
        click.echo(f"{r['source']}  {r['table']}  {r['location']}{fields}")
        click.echo(f"    {r['reason']}   [run {r['run_id']}]")
        if r["raw"] is not None:
            click.echo(f"    raw: {r['raw']}")
    click.echo(f"{len(rows):,} quarantined row(s)")
