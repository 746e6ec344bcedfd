"""docs/kpis.md lists every [kpi] counting rule with its real default and choices."""

from __future__ import annotations

import re
from pathlib import Path

from workstyle.aggregates.settings import OPTIONS, Rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"
ROW = re.compile(r"^\| `(\w+)` \| `([^`]*)` \|([^|]*)\|")


def test_rules_table_matches_the_settings() -> None:
    rows = {m[1]: (m[2], m[3].strip()) for m in map(ROW.match, DOC.read_text().splitlines()) if m}
    documented = {n: v for n, v in rows.items() if n in {o.name for o in OPTIONS}}
    assert set(documented) == {o.name for o in OPTIONS}
    for o in OPTIONS:
        # As --explain prints it, from the Rules defaults (which must agree with OPTIONS).
        default = Rules().show(o.name)[0].split(" = ", 1)[1]
        choices = ", ".join(f"`{c}`" for c in o.choices)
        assert documented[o.name] == (default, choices), o.name
