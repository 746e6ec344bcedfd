"""The aggregate step that `collector run` calls after ingest.

It recomputes every KPI from the canonical tables, writes the three KPI files
(``<data_dir>/kpi/{yearly,monthly,by_department}.parquet``) and returns the KPI
table the CLI prints.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aggregates import engine

log = logging.getLogger("collector.kpi")


def recompute(cfg: Any, as_of: dt.date | None = None) -> str:
    """Recompute and write the KPI tables; return the yearly table for every fiscal year."""
    ctx = engine.context_from_config(cfg, as_of)
    result = engine.compute(ctx)
    paths = engine.write(ctx.store, result)
    log.info("wrote KPI tables: %s", ", ".join(paths.values()))
    return engine.render_table(result.yearly(), result.as_of, result.plan)
