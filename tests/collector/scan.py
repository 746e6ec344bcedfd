"""Look for strings in everything the collector wrote: every byte, Parquet decoded too."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus


def forms(secret: str, user: str | None = None) -> set[str]:
    """A secret as it may travel: raw, URL-encoded, and in a Basic-auth header."""
    out = {secret, quote(secret, safe=""), quote_plus(secret)}
    if user is not None:
        out.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return out


def _decoded(path: Path, data: bytes) -> Iterator[str]:
    yield data.decode("utf-8", errors="replace")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        for column in table.columns:
            yield "\n".join(str(v) for v in column.to_pylist())
    elif data[:2] == b"PK":  # xlsx and other zip containers
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                yield z.read(name).decode("utf-8", errors="replace")


def texts(*roots: Path) -> Iterator[tuple[Path, str]]:
    """(file, text) for every file under the roots, Parquet and zip contents included."""
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            data = path.read_bytes()
            for text in _decoded(path, data):
                yield path, text


def find(needles: Iterable[str], *roots: Path, extra: Iterable[str] = ()) -> list[str]:
    """Where any needle occurs: 'file: needle' lines (empty when none is found)."""
    needles = [n for n in needles if n]
    hits = []
    for path, text in texts(*roots):
        hits += [f"{path}: {n!r}" for n in needles if n in text]
    for i, text in enumerate(extra):
        hits += [f"output #{i}: {n!r}" for n in needles if n in text]
    return sorted(set(hits))
