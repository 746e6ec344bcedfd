"""The ``collector`` command line (click): a small documented layer over the library.

Every command is listed here, once; each module imports its heavy dependencies inside
the command, so ``collector --help`` stays light (tests/test_layers.py checks it).
"""

from __future__ import annotations

from workstyle.collector.cli import ingest, inspect, kpi, live, report, serve
from workstyle.collector.cli.app import main

COMMANDS = (
    ingest.run,
    ingest.ingest,
    ingest.backfill,
    ingest.adopt_organisation,
    inspect.status,
    inspect.validate,
    inspect.kinds,
    kpi.kpi,
    report.report,
    serve.serve,
    live.live,
)

for _command in COMMANDS:
    main.add_command(_command)

__all__ = ["COMMANDS", "main"]
