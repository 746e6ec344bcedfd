"""workstyle collector: work-style telemetry into Parquet, KPIs against the plan."""

__version__ = "0.1.0"
