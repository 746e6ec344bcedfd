"""Config declarations every layer may use: option types, declared options, a source's config.

A leaf module: it imports nothing of ours, so adapters, aggregates, the exporter and
the CLI can all declare and read options without importing each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Option types an adapter can declare, and the TOML types they accept.
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "table": (dict,),
    "path": (str,),
    "secret": (str,),
}


@dataclass(frozen=True)
class Option:
    """One kind-specific config key of a source, as shown by ``collector kinds``."""

    name: str
    type: str
    help: str
    required: bool = False
    default: Any = None
    #: Allowed values, when the option is an enumeration.
    choices: tuple[str, ...] = ()
    #: The option defines *what* the source reads (a folder, an account): state is
    #: keyed by these, so changing one never silently reuses an old watermark.
    identity: bool = False

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name}: unknown type {self.type}")


#: Options every source has, whatever its kind.
COMMON_OPTIONS: tuple[Option, ...] = (
    Option(
        "name", "str", "Unique name of the source; becomes the `source=` partition.", required=True
    ),
    Option("kind", "str", "Adapter kind (see `collector kinds`).", required=True),
    Option("enabled", "bool", "Whether `collector run` reads this source.", default=True),
    Option(
        "keep_titles",
        "bool",
        "Store document titles and meeting topics (dropped by default for privacy).",
        default=False,
    ),
    Option(
        "lookback",
        "str",
        "Re-read this much before the watermark on incremental runs (e.g. '3d', '12h');"
        " defaults to [collector] lookback.",
        default=None,
    ),
    Option(
        "live",
        "bool",
        "Poll this source for live metrics (what is happening now) while `collector serve`"
        " or `collector live` runs; see docs/sources/live.md for the kinds that can.",
        default=False,
    ),
    Option(
        "live_interval",
        "float",
        "Seconds between two live polls of this source.",
        default=60.0,
    ),
    Option(
        "live_api",
        "table",
        "Live API settings: fortigate_vpn reads the monitor API instead of its logs (url,"
        " token, vdoms, ca_bundle); zoom: quota_reserve. See `live_api` under each kind.",
        default=None,
    ),
)


@dataclass
class SourceConfig:
    """A validated ``[[sources]]`` entry."""

    name: str
    kind: str
    enabled: bool
    options: dict[str, Any]
    keep_titles: bool = False
    lookback: dt.timedelta = dt.timedelta(days=3)
    #: Live polling (``collector serve`` / ``collector live``): on, seconds apart, API table.
    live: bool = False
    live_interval: float = 60.0
    live_api: dict[str, Any] | None = None
    #: Directory relative paths in the options are resolved against.
    base_dir: Path = Path()

    def path(self, key: str) -> Path | None:
        """An option holding a path, resolved against the config file's folder."""
        value = self.options.get(key)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)
