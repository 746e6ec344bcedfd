"""The aggregate step that `collector run` calls after ingest.

Until the KPI engine lands this is a no-op; it then recomputes every KPI from the
canonical tables and writes the KPI tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def recompute(cfg: Any, as_of: dt.date | None = None) -> Any:
    """Recompute the KPI tables; returns what the CLI prints (None: nothing to show)."""
    return None
