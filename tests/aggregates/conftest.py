"""Pytest fixtures for the KPI engine tests (helpers live in kpi_fixtures)."""

from kpi_fixtures import fx  # noqa: F401
