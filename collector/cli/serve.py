"""``collector serve``: run the Prometheus exporter (see :mod:`workstyle.collector.exporter`)."""

from __future__ import annotations

import logging
from typing import Any

import click

log = logging.getLogger("collector")


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Address to listen on (default: [exporter] listen, else 127.0.0.1:9464).",
)
@click.option("--tls-cert-file", metavar="PATH", help="Serve HTTPS with this certificate.")
@click.option("--tls-key-file", metavar="PATH", help="Private key of --tls-cert-file.")
@click.option(
    "--client-ca-file",
    metavar="PATH",
    help="Require client certificates signed by this CA (mutual TLS).",
)
@click.option(
    "--live/--no-live",
    "run_live",
    default=True,
    show_default=True,
    help="Run the live poller in this process (--no-live: a separate `collector live` does).",
)
@click.pass_obj
def serve(
    obj: Any,
    listen: str | None,
    tls_cert_file: str | None,
    tls_key_file: str | None,
    client_ca_file: str | None,
    run_live: bool,
) -> None:
    """Serve KPI and source-health metrics for Prometheus at /metrics.

    Scrapes read only the KPI tables and source state of the last run, cached in
    memory and re-read when those files change, and the live snapshot that the live
    poller (in this process unless --no-live) writes for sources with `live = true`.
    /healthz answers the service manager.
    """
    from workstyle.collector.exporter.server import build_server
    from workstyle.collector.exporter.settings import settings

    cfg = obj.listed_cfg()
    s = settings(
        cfg,
        listen=listen,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        client_ca_file=client_ca_file,
    )
    poller = None
    if run_live and any(source.live for source in cfg.sources):
        from workstyle.collector.live.poller import Poller

        # The live readers need every option of their sources (and their adapters' parsers).
        poller = Poller(obj.cfg)
    server = build_server(cfg, s)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "serving metrics on %s://%s:%d/metrics%s",
        s.scheme,
        shown,
        port,
        " (client certificates required)" if s.client_ca_file else "",
    )
    if poller is not None:
        poller.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        if poller is not None:
            poller.stop()
        server.server_close()
