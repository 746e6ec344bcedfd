"""The ``[exporter]`` config table: where ``collector serve`` listens, TLS, textfile output.

Declared here (not in ``collector.config``) so that the exporter owns its settings;
``collector.config`` lists it in its one table of sections.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workstyle.collector.errors import ConfigError
from workstyle.collector.options import Option

if TYPE_CHECKING:
    from workstyle.collector.config import Config

DEFAULT_LISTEN = "127.0.0.1:9464"
TEXTFILE_NAME = "workstyle_collector.prom"

OPTIONS: tuple[Option, ...] = (
    Option(
        "listen",
        "str",
        "host:port that `collector serve` listens on; loopback by default, '[::1]:9464' for IPv6.",
        default=DEFAULT_LISTEN,
    ),
    Option(
        "tls_cert_file",
        "path",
        "Serve HTTPS with this certificate (PEM); needs tls_key_file.",
        default=None,
    ),
    Option("tls_key_file", "path", "Private key (PEM) of tls_cert_file.", default=None),
    Option(
        "client_ca_file",
        "path",
        "Require client certificates signed by this CA"
        " (PEM bundle): mutual TLS. Needs tls_cert_file.",
        default=None,
    ),
    Option(
        "textfile_dir",
        "path",
        "`collector run` also writes "
        + TEXTFILE_NAME
        + " here for node_exporter's textfile collector (use an absolute path).",
        default=None,
    ),
)


@dataclass(frozen=True)
class ExporterSettings:
    """Validated ``[exporter]`` values with paths resolved against the config file."""

    host: str
    port: int
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"


def parse_listen(text: str) -> tuple[str, int]:
    """Split 'host:port', '[v6]:port' or ':port' (every interface; port 0: any free one)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # raises ValueError
    elif ":" in host:
        raise ValueError(text)  # a bare IPv6 address needs brackets
    return host or "0.0.0.0", int(port_text)  # noqa: S104 - only when the user asks for it


def settings(
    cfg: Config,
    *,
    listen: str | None = None,
    tls_cert_file: str | None = None,
    tls_key_file: str | None = None,
    client_ca_file: str | None = None,
) -> ExporterSettings:
    """The exporter settings from the config, overridden by command-line values."""
    section = cfg.sections.get("exporter", {})
    where = f"{cfg.path}: [exporter]"
    text = listen or section.get("listen") or DEFAULT_LISTEN
    try:
        host, port = parse_listen(text)
    except ValueError:
        raise ConfigError(
            f"{where} key 'listen': expected host:port like"
            f" '127.0.0.1:9464' or '[::1]:9464', got {text!r}"
        ) from None

    def path(cli_value: str | None, key: str) -> Path | None:
        if cli_value:
            return Path(cli_value).expanduser()
        value = section.get(key)
        if not value:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else cfg.path.resolve().parent / p

    cert = path(tls_cert_file, "tls_cert_file")
    key = path(tls_key_file, "tls_key_file")
    ca = path(client_ca_file, "client_ca_file")
    if bool(cert) != bool(key):
        raise ConfigError(f"{where}: tls_cert_file and tls_key_file must be given together")
    if ca and not cert:
        raise ConfigError(
            f"{where} key 'client_ca_file': client certificates need TLS;"
            " also set tls_cert_file and tls_key_file"
        )
    for name, p in (("tls_cert_file", cert), ("tls_key_file", key), ("client_ca_file", ca)):
        if p is not None and not p.is_file():
            raise ConfigError(f"{where} key '{name}': {p} does not exist")
    return ExporterSettings(host, port, cert, key, ca)
