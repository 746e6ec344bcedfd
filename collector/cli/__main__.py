"""``python -m workstyle.collector.cli``: the same as the ``collector`` script."""

from workstyle.collector.cli import main

main()
