"""`collector kinds`: the adapters' own option declarations, as text or Markdown.

The README's source reference is generated from the same function, and a test
checks that it is up to date, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json

from workstyle.adapters import adapter_class, kinds
from workstyle.collector.live.readers import live_api_options, live_view
from workstyle.collector.options import COMMON_OPTIONS, Option


def _default(opt: Option) -> str:
    if opt.required:
        return "required"
    if opt.default is None:
        return "-"
    return json.dumps(opt.default, ensure_ascii=False)


def describe(fmt: str = "text") -> str:
    lines: list[str] = []
    if fmt == "markdown":
        lines.append("Every source has these keys:\n")
        lines += _md_table(COMMON_OPTIONS)
        for kind in kinds():
            cls = adapter_class(kind)
            lines.append(f"\n### `{kind}`\n")
            lines.append(f"{cls.summary} Writes: {', '.join(f'`{t}`' for t in cls.tables)}.\n")
            lines += _md_table(cls.options)
            lines.append(f"\nLive (`live = true`): {live_view(kind)}")
            if api := live_api_options(kind):
                lines.append("\n`live_api` table:\n")
                lines += _md_table(api)
        return "\n".join(lines)
    lines.append("common keys (every source):")
    lines += _text_rows(COMMON_OPTIONS)
    for kind in kinds():
        cls = adapter_class(kind)
        lines.append("")
        lines.append(f"{kind}: {cls.summary}")
        lines.append(f"  writes: {', '.join(cls.tables)}")
        lines += _text_rows(cls.options)
        lines.append(f"  live: {live_view(kind)}")
        if api := live_api_options(kind):
            lines.append("  live_api table:")
            lines += _text_rows(api)
    return "\n".join(lines)


def _md_table(options: tuple[Option, ...]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for o in options:
        meaning = o.help + (f" One of: {', '.join(o.choices)}." if o.choices else "")
        rows.append(f"| `{o.name}` | {o.type} | {_cell(_default(o))} | {_cell(meaning)} |")
    return rows


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a pipe is escaped, never replaced (a key separator
    shown as another character would misstate the code)."""
    return text.replace("|", "\\|")


def _text_rows(options: tuple[Option, ...]) -> list[str]:
    return [f"  {o.name:<16} {o.type:<6} {_default(o):<28} {o.help}" for o in options]


def update_readme(path: str) -> bool:
    """Rewrite the generated section of a README; True when it changed."""
    from pathlib import Path

    begin, end = "<!-- kinds:begin -->", "<!-- kinds:end -->"
    readme = Path(path)
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{describe('markdown')}\n{end}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    import sys

    update_readme(sys.argv[1] if len(sys.argv) > 1 else "README.md")
