"""Keyed pseudonyms for person identifiers, applied at ingest.

A pseudonym is HMAC-SHA256(key, normalised identifier), hex, truncated to 128 bits.
Identifiers are normalised first so that one person gets one pseudonym across
sources: case is folded, and the domain forms ``DOMAIN\\user``, ``user@domain``
and ``user`` all reduce to ``user``. (Within one prefecture's directory an account
name is unique; two people with the same local part in different mail domains
would share a pseudonym, which the staff directory's e-mail column does not fix.)

Work is columnar: each *distinct* identifier is hashed once and joined back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import polars as pl

from workstyle.collector.errors import ConfigError
from workstyle.collector.storage import DataLocation

PSEUDONYM_HEX_CHARS = 32
MIN_KEY_BYTES = 16


def normalise_expr(col: pl.Expr) -> pl.Expr:
    """Fold case and domain forms of an identifier column; blanks become null."""
    s = col.cast(pl.String).str.strip_chars().str.to_lowercase()
    s = s.str.replace(r"^.*\\", "")  # DOMAIN\user -> user
    s = s.str.replace(r"@.*$", "")  # user@domain -> user
    s = s.str.strip_chars()
    return pl.when(s.str.len_chars() > 0).then(s).otherwise(None)


class Pseudonymiser:
    """Replaces identifier columns with keyed pseudonyms."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"[privacy] key: the pseudonymisation key must be at least"
                f" {MIN_KEY_BYTES} bytes long"
            )
        self._key = key
        # Distinct identifiers are few (staff, not rows): hash each once per process.
        self._cache: dict[str, str] = {}

    def one(self, identifier: str) -> str:
        """The pseudonym of a single identifier (normalised first)."""
        frame = pl.DataFrame({"x": [identifier]})
        return self.frame(frame, ["x"])["x"][0]

    def _digest(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:PSEUDONYM_HEX_CHARS]

    def frame(self, df: pl.DataFrame, columns: list[str] | tuple[str, ...]) -> pl.DataFrame:
        """Return ``df`` with each of ``columns`` replaced by pseudonyms."""
        present = [c for c in columns if c in df.columns]
        if not present or df.height == 0:
            return df
        # Normalise and hash the distinct raw values only (staff, not rows), then map back.
        raw = (
            pl.concat([df.select(pl.col(c).cast(pl.String).alias("raw")) for c in present])
            .drop_nulls()
            .unique()
        )
        norm = raw.with_columns(normalise_expr(pl.col("raw")).alias("norm"))
        cache = self._cache
        mapping: dict[str, str | None] = {}
        for r, n in norm.iter_rows():
            if n is None:
                mapping[r] = None
                continue
            digest = cache.get(n)
            if digest is None:
                digest = cache[n] = self._digest(n)
            mapping[r] = digest
        return df.with_columns(
            pl.col(c).cast(pl.String).replace_strict(mapping, default=None, return_dtype=pl.String)
            for c in present
        )


def load_key(
    ref: str | None,
    data_dir: Path | DataLocation,
    *,
    allow_create: bool,
    warn: callable | None = None,
) -> bytes:
    """Read the key from its ``env:``/``file:`` reference, or create the example key."""
    from workstyle.collector.secrets import read_secret

    if ref is not None:
        value = read_secret(ref, "[privacy] key")
        return value.encode("utf-8")
    if not allow_create:
        raise ConfigError("[privacy] key: required; expected 'env:VARIABLE' or 'file:PATH'")
    if isinstance(data_dir, DataLocation):
        if not data_dir.is_local:
            return _object_storage_key(data_dir, warn)
        data_dir = Path(data_dir.root)
    path = data_dir / "_secrets" / "pseudonym.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    os.replace(tmp, path)
    if warn is not None:
        warn(
            f"created a new pseudonymisation key at {path} (mode 0600) for the example"
            " config; a real deployment names its own key in [privacy] key"
        )
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def _object_storage_key(location: DataLocation, warn: callable | None) -> bytes:
    """The example's key kept in the bucket (``_secrets/pseudonym.key``), created once."""
    path = location.path("_secrets", "pseudonym.key")
    try:
        return location.read_bytes(path).decode("utf-8").strip().encode("utf-8")
    except FileNotFoundError:
        pass
    location.write_bytes(path, (secrets.token_hex(32) + "\n").encode("utf-8"))
    if warn is not None:
        warn(
            f"created a new pseudonymisation key at {location.display(path)} for the example"
            " config; anyone who can read the bucket can read it: a real deployment names"
            " its own key in [privacy] key"
        )
    return location.read_bytes(path).decode("utf-8").strip().encode("utf-8")
