"""KPI jobs (polars, lazy) over the canonical tables; they know nothing of adapters."""
