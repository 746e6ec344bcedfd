"""What `collector status` shows: state, ledger and counts per configured source."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow.parquet as pq

from workstyle import schemas
from workstyle.collector.config import Config, identity_of
from workstyle.collector.ingest.state import StateStore
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import FILTERED, QUARANTINE


def _count_rows(store: Store, table: str, source: str) -> int:
    """Rows of one source in one table, from Parquet footers (no data is read)."""
    return sum(
        pq.read_metadata(f, filesystem=store.fs).num_rows for f in store.files(table, source)
    )


def _filtered(store: Store, source: str) -> dict[str, int]:
    """Rows the source's where/exclude rules left out, per rule, over every file read."""
    if not store.files(FILTERED.name, source):
        return {}
    frame = store.scan(FILTERED, source).group_by("rule").agg(pl.col("rows").sum()).collect()
    return dict(sorted(frame.rows()))


def year_rules(checkpoint: dict[str, Any]) -> dict[str, int]:
    """Files per rule that gave year-less timestamps their year (file kinds' manifests)."""
    out: dict[str, int] = {}
    for entry in (checkpoint.get("files") or {}).values():
        rule = (entry.get("memo") or {}).get("year_rule") if isinstance(entry, dict) else None
        if rule:
            out[rule] = out.get(rule, 0) + 1
    return out


def source_status(cfg: Config) -> list[dict[str, Any]]:
    store = Store.at(cfg.location)
    states = StateStore(cfg.location)
    out = []
    for source in cfg.sources:
        from workstyle.adapters import adapter_class

        st = states.load(source.name, identity_of(source))
        tables = adapter_class(source.kind).output_tables(source.options)
        rows = {t: _count_rows(store, t, source.name) for t in tables if t in schemas.TABLES}
        out.append(
            {
                "source": source.name,
                "kind": source.kind,
                "enabled": source.enabled,
                "watermark": st.watermark,
                "newest_event": st.newest_event,
                "last_run": st.last_run,
                "last_success_at": st.last_success_at,
                "consecutive_failures": st.consecutive_failures,
                "rows": rows,
                "quarantined": _count_rows(store, QUARANTINE.name, source.name),
                "year_rules": year_rules(st.checkpoint),
                "filtered": _filtered(store, source.name),
            }
        )
    return out
