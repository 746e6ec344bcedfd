"""Bundled configuration: the example config and data, and the plan's KPI targets."""
