"""The ``[report]`` config table: where `collector run` writes the HTML and Excel KPI report.

Declared here (not in ``collector.config``) so that the report owns its settings;
``collector.config`` lists it in its one table of sections.
"""

from __future__ import annotations

from workstyle.collector.options import Option

DEFAULT_BASENAME = "kpi-report"

OPTIONS: tuple[Option, ...] = (
    Option(
        "dir",
        "path",
        "`collector run` also writes the KPI report (HTML and Excel) into this folder"
        " (relative to the config file); unset: no report.",
        default=None,
    ),
    Option(
        "basename",
        "str",
        "File name of the report without extension: <dir>/<basename>.html and .xlsx.",
        default=DEFAULT_BASENAME,
    ),
)
