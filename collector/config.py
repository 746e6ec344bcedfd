"""Loading and validating the one TOML config file.

Every problem is reported as one line naming the file, the key and what is
expected (:class:`~collector.errors.ConfigError`, exit code 2). Unknown keys are
errors, so a typo never silently disables a source. Secrets are never read from
the TOML: a secret option holds ``env:NAME`` or ``file:PATH``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workstyle.adapters import REGISTRY, adapter_class
from workstyle.collector.errors import ConfigError
from workstyle.collector.options import COMMON_OPTIONS, OPTION_TYPES, Option, SourceConfig
from workstyle.collector.storage import check_data_dir, check_organisation, is_uri

if TYPE_CHECKING:
    from workstyle.collector.storage import DataLocation, StorageSettings

CONFIG_ENV = "COLLECTOR_CONFIG"

#: Options of the config's own top-level tables.
CORE_SECTIONS: dict[str, tuple[Option, ...]] = {
    "collector": (
        Option(
            "data_dir",
            "path",
            "Where the dataset, state and KPI tables live: a local folder or"
            " s3://bucket/prefix (see [storage]).",
            default="./collector-data",
        ),
        Option(
            "organisation",
            "str",
            "This organisation's 6-digit 地方公共団体コード (e.g. '040002'): its data goes"
            " under organisation=<code>, so many collectors can share one data_dir.",
            default=None,
        ),
        Option(
            "timezone",
            "str",
            "Zone for calendar bucketing and for sources that write local time.",
            default="Asia/Tokyo",
        ),
        Option(
            "lookback",
            "str",
            "Incremental runs re-read this much before the watermark ('3d', '12h').",
            default="3d",
        ),
        Option(
            "lock_wait",
            "float",
            "Seconds a run waits for another run's lock before giving up.",
            default=0.0,
        ),
    ),
    "storage": (
        Option(
            "endpoint_url",
            "str",
            "S3 endpoint of an S3-compatible store (e.g. 'https://s3.pref.example.jp');"
            " default: $AWS_ENDPOINT_URL, else AWS itself.",
            default=None,
        ),
        Option(
            "region",
            "str",
            "S3 region; default: $AWS_REGION or the AWS config file.",
            default=None,
        ),
        Option(
            "access_key_id",
            "secret",
            "Access key ID ('env:VAR' or 'file:PATH'); default: the standard AWS"
            " credential chain (environment, ~/.aws/credentials, instance role).",
            default=None,
        ),
        Option(
            "secret_access_key",
            "secret",
            "Secret access key ('env:VAR' or 'file:PATH'); required with access_key_id.",
            default=None,
        ),
        Option(
            "session_token",
            "secret",
            "Session token of temporary credentials ('env:VAR' or 'file:PATH').",
            default=None,
        ),
        Option(
            "lease_seconds",
            "float",
            "How long a writer's lease on an s3:// data_dir lasts unless renewed; a"
            " collector that died holds it at most this long.",
            default=300.0,
        ),
    ),
    "privacy": (
        Option(
            "key",
            "secret",
            "Pseudonymisation key: 'env:VAR' or 'file:PATH' (at least 16 bytes).",
            default=None,
        ),
        Option(
            "quarantine_raw",
            "bool",
            "Keep the raw text of quarantined rows (may hold identifiers); false keeps"
            " only location and reason.",
            default=True,
        ),
    ),
    "targets": (
        Option(
            "file",
            "path",
            "The plan's KPI targets (TOML); default: the bundled plan.",
            default=None,
        ),
    ),
}


def declared_sections() -> dict[str, tuple[Option, ...]]:
    """Every top-level table of the config, listed once; each owner declares its options."""
    from workstyle.aggregates import settings as kpi
    from workstyle.collector.exporter import settings as exporter
    from workstyle.collector.report import settings as report

    return {
        **CORE_SECTIONS,
        "kpi": kpi.OPTIONS,
        "exporter": exporter.OPTIONS,
        "report": report.OPTIONS,
    }


def bundled_config_dir() -> Path:
    """The folder of the bundled example config and data."""
    import workstyle.config as bundled

    return Path(bundled.__file__).resolve().parent


def bundled_example_config() -> Path:
    return bundled_config_dir() / "example.toml"


@dataclass
class Config:
    """A validated configuration."""

    path: Path
    #: True for the bundled example config (it may create its own pseudonym key).
    is_example: bool
    #: The local data folder; None when data_dir is in object storage (see location).
    data_dir: Path | None
    timezone: str
    lookback: dt.timedelta
    lock_wait: float
    privacy_key: str | None
    quarantine_raw: bool
    targets_file: Path
    sources: list[SourceConfig]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: data_dir as given: a local path or s3://bucket/prefix.
    data_uri: str = ""
    #: [collector] organisation: the 6-digit 地方公共団体コード, or None.
    organisation: str | None = None

    @functools.cached_property
    def location(self) -> DataLocation:
        """Where the data lives (local folder or object storage); opened on first use."""
        from workstyle.collector import storage

        if self.data_dir is not None:
            return storage.local(self.data_dir, self.organisation)
        return storage.open_location(self.data_uri, self.storage_settings(), self.organisation)

    def storage_settings(self) -> StorageSettings:
        """[storage] with its secrets read (only when object storage is used)."""
        from workstyle.collector.secrets import read_secret
        from workstyle.collector.storage import StorageSettings

        st = self.sections.get("storage", {})

        def secret(key: str) -> str | None:
            ref = st.get(key)
            return read_secret(ref, f"{self.path}: [storage] key '{key}'") if ref else None

        return StorageSettings(
            endpoint_url=st.get("endpoint_url"),
            region=st.get("region"),
            access_key_id=secret("access_key_id"),
            secret_access_key=secret("secret_access_key"),
            session_token=secret("session_token"),
            lease_seconds=float(st.get("lease_seconds") or 300.0),
        )

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"{self.path}: no source named {name!r} (configured: {known})")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def parse_duration(text: str) -> dt.timedelta:
    """Parse '3d', '12h' or '30m'; ``ValueError`` otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(text)
    n, unit = int(m.group(1)), m.group(2)
    return {"d": dt.timedelta(days=n), "h": dt.timedelta(hours=n), "m": dt.timedelta(minutes=n)}[
        unit
    ]


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """``--config``, else ``$COLLECTOR_CONFIG``, else the bundled example."""
    if explicit:
        return Path(explicit), False
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env), False
    return bundled_example_config(), True


def load(
    explicit: str | os.PathLike[str] | None = None,
    data_dir_override: str | None = None,
    *,
    source_options: bool = True,
) -> Config:
    """Find, parse and validate the config; raise :class:`ConfigError` on any problem.

    ``source_options=False`` checks only what every source has (name, kind, enabled):
    for the exporter, which must not import the adapters of every configured kind.
    """
    path, is_example = resolve_config_path(explicit)
    if not path.is_file():
        raise ConfigError(
            f"{path}: config file not found (give --config PATH or set ${CONFIG_ENV})"
        )
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return from_dict(
        raw,
        path,
        is_example=is_example,
        data_dir_override=data_dir_override,
        source_options=source_options,
    )


def _check_value(where: str, opt: Option, value: Any) -> Any:
    accepted = OPTION_TYPES[opt.type]
    # bool is an int in Python; a TOML `true` must not pass as a number.
    if isinstance(value, bool) and bool not in accepted:
        value_ok = False
    else:
        value_ok = isinstance(value, accepted)
    if not value_ok:
        raise ConfigError(
            f"{where} key '{opt.name}': expected {opt.type}, got {type(value).__name__} {value!r}"
        )
    if opt.choices and value not in opt.choices:
        raise ConfigError(
            f"{where} key '{opt.name}': expected one of {', '.join(opt.choices)}, got {value!r}"
        )
    if opt.type == "path" or opt.name in PATH_OPTION_NAMES:
        value = expand_vars(where, opt.name, value)
    if opt.type == "secret":
        check_secret_ref(where, opt.name, value)
    if opt.type == "float":
        value = float(value)
    return value


#: Options holding globs of files, declared as text: path options like the ``path`` type.
PATH_OPTION_NAMES = frozenset({"path", "paths"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_vars(where: str, key: str, value: Any) -> Any:
    """``${VAR}`` in a path option (or each of a list) -> the environment variable's value.

    An unset or empty variable is a config error naming it: a path silently missing a
    part would read another folder, or nothing.
    """
    if isinstance(value, list):
        return [expand_vars(where, key, v) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        got = os.environ.get(m.group(1))
        if not got:
            raise ConfigError(
                f"{where} key '{key}': environment variable {m.group(1)} (in {m.group(0)}) is"
                " not set; set it or write the path out"
            )
        return got

    return _VAR.sub(sub, value)


def check_secret_ref(where: str, key: str, value: str) -> None:
    if not (value.startswith("env:") or value.startswith("file:")) or len(value) < 5:
        # Never echo the value: it may be the secret itself pasted by mistake.
        raise ConfigError(
            f"{where} key '{key}': expected 'env:VARIABLE' or 'file:PATH'"
            " (secrets are never written in the config itself)"
        )


def validate_options(
    where: str, given: dict[str, Any], options: tuple[Option, ...]
) -> dict[str, Any]:
    """Check types, unknown and missing keys; return the options with defaults filled in."""
    known = {o.name: o for o in options}
    for key in given:
        if key not in known:
            raise ConfigError(
                f"{where} key '{key}': unknown key; expected one of: {', '.join(sorted(known))}"
            )
    out: dict[str, Any] = {}
    for opt in options:
        if opt.name in given:
            out[opt.name] = _check_value(where, opt, given[opt.name])
        elif opt.required:
            raise ConfigError(f"{where} key '{opt.name}': required ({opt.help})")
        else:
            out[opt.name] = opt.default
    return out


def from_dict(
    raw: dict[str, Any],
    path: Path,
    *,
    is_example: bool = False,
    data_dir_override: str | None = None,
    source_options: bool = True,
) -> Config:
    """Validate an already-parsed config document."""
    section_options = declared_sections()
    base = path.resolve().parent
    for key in raw:
        if key != "sources" and key not in section_options:
            raise ConfigError(
                f"{path}: table [{key}] is unknown; expected one of:"
                f" {', '.join(sorted([*section_options, 'sources']))}"
            )
    sections: dict[str, dict[str, Any]] = {}
    for name, options in section_options.items():
        given = raw.get(name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        sections[name] = validate_options(f"{path}: [{name}]", given, options)

    col = sections["collector"]
    try:
        ZoneInfo(col["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: [collector] key 'timezone': unknown time zone"
            f" {col['timezone']!r}; expected an IANA name like 'Asia/Tokyo'"
        ) from None
    try:
        lookback = parse_duration(col["lookback"])
    except ValueError:
        raise ConfigError(
            f"{path}: [collector] key 'lookback': expected a duration like"
            f" '3d', '12h' or '30m', got {col['lookback']!r}"
        ) from None

    given = data_dir_override or col["data_dir"]
    data_dir: Path | None
    if is_uri(given):
        where = "--data-dir" if data_dir_override else f"{path}: [collector] key 'data_dir'"
        data_uri = check_data_dir(given, where)
        data_dir = None
    elif data_dir_override or is_example:
        # The bundled config lives inside the installed package: its data goes to
        # the current folder, not into site-packages.
        data_dir = Path(given)
        data_uri = str(data_dir)
    else:
        data_dir = _resolve(base, given)
        data_uri = str(data_dir)
    organisation = col["organisation"]
    if organisation is not None:
        check_organisation(organisation, f"{path}: [collector] key 'organisation'")
    st = sections["storage"]
    if st["access_key_id"] and not st["secret_access_key"]:
        raise ConfigError(
            f"{path}: [storage] key 'secret_access_key': required with access_key_id;"
            " expected 'env:VARIABLE' or 'file:PATH'"
        )
    if st["lease_seconds"] < 1:
        raise ConfigError(
            f"{path}: [storage] key 'lease_seconds': expected at least 1 second,"
            f" got {st['lease_seconds']}"
        )

    targets = sections["targets"]["file"]
    targets_file = _resolve(base, targets) if targets else bundled_config_dir() / "targets.toml"
    if not targets_file.is_file():
        raise ConfigError(
            f"{path}: [targets] key 'file': {targets_file} does not exist;"
            " expected the plan's KPI targets file"
        )

    privacy = sections["privacy"]
    if privacy["key"] is None and not is_example:
        raise ConfigError(
            f"{path}: [privacy] key 'key': required; expected 'env:VARIABLE'"
            " or 'file:PATH' naming the pseudonymisation key"
        )

    sources = _sources(raw.get("sources", []), path, base, lookback, source_options)
    return Config(
        path=path,
        is_example=is_example,
        data_dir=data_dir,
        timezone=col["timezone"],
        lookback=lookback,
        lock_wait=col["lock_wait"],
        privacy_key=privacy["key"],
        quarantine_raw=privacy["quarantine_raw"],
        targets_file=targets_file,
        sources=sources,
        sections=sections,
        data_uri=data_uri,
        organisation=organisation,
    )


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _sources(
    raw_sources: Any, path: Path, base: Path, default_lookback: dt.timedelta, deep: bool = True
) -> list[SourceConfig]:
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{path}: 'sources' must be an array of tables ([[sources]])")
    seen: set[str] = set()
    out: list[SourceConfig] = []
    for i, entry in enumerate(raw_sources, start=1):
        label = f"{path}: [[sources]] #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: must be a table")
        name = entry.get("name")
        if isinstance(name, str):
            label = f"{path}: [[sources]] #{i} ({name})"
        kind = entry.get("kind")
        if not isinstance(kind, str):
            raise ConfigError(
                f"{label} key 'kind': required; expected one of: {', '.join(sorted(REGISTRY))}"
            )
        if kind not in REGISTRY:
            raise ConfigError(
                f"{label} key 'kind': unknown kind {kind!r}; expected one of:"
                f" {', '.join(sorted(REGISTRY))}"
            )
        if deep:
            cls = adapter_class(kind)
            values = validate_options(label, entry, COMMON_OPTIONS + cls.options)
        else:
            common = {o.name for o in COMMON_OPTIONS}
            values = validate_options(
                label, {k: v for k, v in entry.items() if k in common}, COMMON_OPTIONS
            )
            values.update({k: v for k, v in entry.items() if k not in common})
        name = values["name"]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(
                f"{label} key 'name': expected letters, digits, '_', '-' or '.'"
                f" (it names a folder), got {name!r}"
            )
        if name in seen:
            raise ConfigError(
                f"{label} key 'name': {name!r} is used by another source; names must be unique"
            )
        seen.add(name)
        lookback = default_lookback
        if values["lookback"] is not None:
            try:
                lookback = parse_duration(values["lookback"])
            except ValueError:
                raise ConfigError(
                    f"{label} key 'lookback': expected a duration like '3d',"
                    f" got {values['lookback']!r}"
                ) from None
        specific = {k: v for k, v in values.items() if k not in {o.name for o in COMMON_OPTIONS}}
        for key, message in cls.validate(specific) if deep else ():
            raise ConfigError(f"{label} key '{key}': {message}")
        if values["live_interval"] <= 0:
            raise ConfigError(
                f"{label} key 'live_interval': expected seconds > 0,"
                f" got {values['live_interval']!r}"
            )
        out.append(
            SourceConfig(
                name=name,
                kind=kind,
                enabled=values["enabled"],
                options=specific,
                keep_titles=values["keep_titles"],
                lookback=lookback,
                base_dir=base,
                live=values["live"],
                live_interval=values["live_interval"],
                live_api=values["live_api"],
            )
        )
    return out


def identity_of(source: SourceConfig) -> dict[str, Any]:
    """The settings that define what a source reads; state is keyed by their hash."""
    cls = adapter_class(source.kind)
    ident: dict[str, Any] = {"kind": source.kind}
    for opt in cls.options:
        if opt.identity:
            value = source.options.get(opt.name)
            if opt.type == "path" and value is not None:
                value = str(source.path(opt.name).resolve())
            ident[opt.name] = value
    return ident
