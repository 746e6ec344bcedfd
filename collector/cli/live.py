"""``collector live``: run the live poller alone (for sites that split it from ``serve``)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

log = logging.getLogger("collector")


@click.command()
@click.option("--once", is_flag=True, help="Poll every live source once, write the snapshot, exit.")
@click.pass_obj
def live(obj: Any, once: bool) -> None:
    """Poll the sources with `live = true` and keep the live snapshot up to date.

    Each source is polled on its own thread every `live_interval` seconds; the snapshot
    (<data_dir>/_live/snapshot.json) is what `collector serve --no-live` exposes. With
    --once the exit code is 1 when any poll failed.
    """
    from workstyle.collector.live.poller import Poller

    poller = Poller(obj.cfg)
    if not poller.readers:
        click.echo("no source has live = true; nothing to poll", err=True)
        raise SystemExit(0 if not once else 1)
    if once:
        poller.poll_once()
        failed = [n for n, r in poller.readings.items() if not r.ok]
        for name, reading in sorted(poller.readings.items()):
            values = ", ".join(f"{k}={v:g}" for k, v in sorted(reading.values.items()))
            click.echo(f"{name}: {'ok' if reading.ok else reading.error} {values}".rstrip())
        raise SystemExit(1 if failed else 0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    poller.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
        log.info("stopped")
