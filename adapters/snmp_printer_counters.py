"""Printer page counters polled over SNMP v2c/v3 (Printer-MIB, RFC 3805).

Each run asks every configured printer for:

- ``prtMarkerLifeCount`` 1.3.6.1.2.1.43.10.2.1.4 (walked: one row per
  ``hrDeviceIndex.prtMarkerIndex``, usually ``1.1``);
- ``prtMarkerCounterUnit`` 1.3.6.1.2.1.43.10.2.1.3 (7 impressions, 8 sheets, ...);
- ``prtGeneralSerialNumber`` .43.5.1.1.17.1 (the device's identity) and
  ``prtGeneralPrinterName`` .43.5.1.1.16.1.

Every answer is stored (``printer_counter_readings``) and compared with the last
reading of the same device and marker kept in the checkpoint, giving a
non-negative delta (``printer_counter_deltas``):

- counter went up: the difference (``counted``);
- counter went down from the top half of a rollover range (10^6, 2^24 or 2^32,
  the moduli printers use) and the rollover means at most
  ``max_pages_per_interval`` pages: unwrapped
  (``wrapped``);
- any other decrease (reset, new main board): the new value, the pages counted
  since the reset, flagged ``reset``.

A printer that does not answer gets no reading and no delta (never a fake zero);
its next answer's delta spans the whole gap. It is quarantined with its address
so it shows in ``status``; the source fails only when no printer answered.
Polling has no history, so backfills read nothing (``windowed = False``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.collector.errors import ConfigError, SourceError
from workstyle.collector.options import Option
from workstyle.schemas.printer_counters import COUNTER_UNITS

LIFE_COUNT = "1.3.6.1.2.1.43.10.2.1.4"
COUNTER_UNIT = "1.3.6.1.2.1.43.10.2.1.3"
SERIAL = "1.3.6.1.2.1.43.5.1.1.17.1"
NAME = "1.3.6.1.2.1.43.5.1.1.16.1"
#: Where printer counters roll over: HP's 999,999 / 2^24 - 1, and Counter32.
MODULI = (1_000_000, 2**24, 2**32)

AUTH = ("SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5", "none")
PRIV = ("AES", "AES192", "AES256", "DES", "3DES", "none")

READING_COLUMNS = {
    "device": pl.String,
    "marker": pl.String,
    "read_at": pl.Datetime("us", "UTC"),
    "life_count": pl.Int64,
    "unit": pl.String,
    "host": pl.String,
    "printer_name": pl.String,
    "_location": pl.String,
}
DELTA_COLUMNS = {
    "device": pl.String,
    "marker": pl.String,
    "interval_start": pl.Datetime("us", "UTC"),
    "interval_end": pl.Datetime("us", "UTC"),
    "pages": pl.Int64,
    "unit": pl.String,
    "kind": pl.String,
    "host": pl.String,
    "_location": pl.String,
}


@dataclass
class Poll:
    """What one printer answered (or why it did not)."""

    host: str
    port: int
    read_at: dt.datetime
    serial: str | None = None
    name: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def delta(previous: int, current: int, max_pages: int) -> tuple[int, str]:
    """Pages between two readings of one counter, never negative, and how it was judged."""
    if current >= previous:
        return current - previous, "counted"
    for m in MODULI:
        # A rollover needs the old value in the top half of the range and a
        # plausible number of pages; 500 -> 100 is a reset, not 999,600 pages.
        if m // 2 <= previous < m and (m - previous) + current <= max_pages:
            return (m - previous) + current, "wrapped"
    return current, "reset"


def split_host(entry: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port); 161 by default."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest.lstrip(":") or 161)
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, 161


class SnmpPrinterCounters(Adapter):
    """Printer-MIB lifetime page counters over SNMP -> readings and page deltas."""

    kind: ClassVar[str] = "snmp_printer_counters"
    tables: ClassVar[tuple[str, ...]] = ("printer_counter_readings", "printer_counter_deltas")
    summary: ClassVar[str] = (
        "Printer page counters (Printer-MIB prtMarkerLifeCount) over SNMP v2c/v3, with"
        " non-negative deltas per interval."
    )
    windowed: ClassVar[bool] = False
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "hosts",
            "list",
            "Printers to poll: 'address' or 'address:port' (UDP 161 by default).",
            required=True,
            identity=True,
        ),
        Option("version", "str", "SNMP version.", default="2c", choices=("2c", "3")),
        Option(
            "community",
            "secret",
            "v2c community ('env:VAR' or 'file:PATH'); 'public' when not set.",
            default=None,
        ),
        Option("user", "str", "v3 user name.", default=None),
        Option("auth_protocol", "str", "v3 authentication protocol.", default="SHA", choices=AUTH),
        Option(
            "auth_key",
            "secret",
            "v3 authentication pass phrase ('env:VAR' or 'file:PATH').",
            default=None,
        ),
        Option(
            "priv_protocol", "str", "v3 privacy (encryption) protocol.", default="AES", choices=PRIV
        ),
        Option(
            "priv_key", "secret", "v3 privacy pass phrase ('env:VAR' or 'file:PATH').", default=None
        ),
        Option("timeout", "float", "Seconds to wait for each answer.", default=2.0),
        Option("retries", "int", "Retries after a timeout.", default=1),
        Option("concurrency", "int", "Printers polled at the same time.", default=16),
        Option(
            "max_pages_per_interval",
            "int",
            "A decrease is read as a counter rollover only if the rollover means at most this"
            " many pages since the last reading; otherwise it is a reset.",
            default=200_000,
        ),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for entry in options.get("hosts") or []:
            try:
                split_host(str(entry))
            except ValueError:
                problems.append(("hosts", f"{entry!r} is not 'address' or 'address:port'"))
        if options.get("version") == "3" and not options.get("user"):
            problems.append(("user", 'required with version = "3"'))
        return problems

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        if request.mode == "backfill":
            # Counters have no history to re-read: only a poll tells the current value.
            return
        hosts = [str(h) for h in self.opt("hosts") or []]
        polls = asyncio.run(self._poll_all(hosts))
        last: dict[str, dict[str, Any]] = dict(request.state.get("last", {}))
        readings: list[dict[str, Any]] = []
        deltas: list[dict[str, Any]] = []
        q = Quarantined.empty()
        max_pages = int(self.opt("max_pages_per_interval") or 200_000)
        for p in polls:
            where = f"{p.host}:{p.port}"
            if p.error is not None:
                q.add(
                    where,
                    f"{p.error}; no reading stored (the next reading's delta spans the gap)",
                    "",
                )
                continue
            device = p.serial or f"host:{p.host}"
            for marker, count in sorted(p.counts.items()):
                unit = COUNTER_UNITS.get(p.units.get(marker, 0), str(p.units.get(marker)))
                loc = f"{where} marker {marker}"
                readings.append(
                    {
                        "device": device,
                        "marker": marker,
                        "read_at": p.read_at,
                        "life_count": count,
                        "unit": unit,
                        "host": p.host,
                        "printer_name": p.name,
                        "_location": loc,
                    }
                )
                key = f"{device}/{marker}"
                prev = last.get(key)
                if prev is not None and dt.datetime.fromisoformat(prev["at"]) < p.read_at:
                    pages, kind = delta(int(prev["count"]), count, max_pages)
                    deltas.append(
                        {
                            "device": device,
                            "marker": marker,
                            "interval_start": dt.datetime.fromisoformat(prev["at"]),
                            "interval_end": p.read_at,
                            "pages": pages,
                            "unit": unit,
                            "kind": kind,
                            "host": p.host,
                            "_location": loc,
                        }
                    )
                last[key] = {"count": count, "at": p.read_at.isoformat(), "unit": unit}
        checkpoint = {"last": last}
        yield Batch(
            table="printer_counter_readings",
            rows=pl.DataFrame(readings, schema=READING_COLUMNS),
            quarantined=q,
            rows_read=len(polls),
        )
        yield Batch(
            table="printer_counter_deltas",
            rows=pl.DataFrame(deltas, schema=DELTA_COLUMNS),
            checkpoint=checkpoint,
        )
        if polls and all(p.error for p in polls):
            raise SourceError(
                f"no printer answered SNMP ({', '.join(h for h in hosts)});"
                " check the addresses, the community or v3 user, and that UDP"
                " 161 is allowed from this host"
            )

    # -- SNMP ------------------------------------------------------------------------
    def _auth(self) -> Any:
        from pysnmp.hlapi.v3arch import asyncio as snmp

        if self.opt("version") != "3":
            community = self.secret("community") if self.opt("community") else "public"
            # v2c is what many printers offer; v3 is documented as the preferred setting.
            return snmp.CommunityData(community, mpModel=1)  # noqa: S508
        auth_protocols = {
            "SHA": snmp.usmHMACSHAAuthProtocol,
            "SHA224": snmp.usmHMAC128SHA224AuthProtocol,
            "SHA256": snmp.usmHMAC192SHA256AuthProtocol,
            "SHA384": snmp.usmHMAC256SHA384AuthProtocol,
            "SHA512": snmp.usmHMAC384SHA512AuthProtocol,
            "MD5": snmp.usmHMACMD5AuthProtocol,
            "none": snmp.usmNoAuthProtocol,
        }
        priv_protocols = {
            "AES": snmp.usmAesCfb128Protocol,
            "AES192": snmp.usmAesCfb192Protocol,
            "AES256": snmp.usmAesCfb256Protocol,
            "DES": snmp.usmDESPrivProtocol,
            "3DES": snmp.usm3DESEDEPrivProtocol,
            "none": snmp.usmNoPrivProtocol,
        }
        auth_p = self.opt("auth_protocol") or "SHA"
        priv_p = self.opt("priv_protocol") or "AES"
        if auth_p != "none" and not self.opt("auth_key"):
            raise ConfigError(
                f"source {self.name}: auth_key is required with auth_protocol"
                f" = {auth_p!r} (or set auth_protocol = 'none')"
            )
        if priv_p != "none" and not self.opt("priv_key"):
            raise ConfigError(
                f"source {self.name}: priv_key is required with priv_protocol"
                f" = {priv_p!r} (or set priv_protocol = 'none')"
            )
        return snmp.UsmUserData(
            self.opt("user"),
            authKey=self.secret("auth_key") if auth_p != "none" else None,
            privKey=self.secret("priv_key") if priv_p != "none" else None,
            authProtocol=auth_protocols[auth_p],
            privProtocol=priv_protocols[priv_p],
        )

    async def _poll_all(self, hosts: list[str]) -> list[Poll]:
        from pysnmp.hlapi.v3arch import asyncio as snmp

        auth = self._auth()
        engine = snmp.SnmpEngine()
        limit = asyncio.Semaphore(max(1, int(self.opt("concurrency") or 16)))

        async def one(entry: str) -> Poll:
            host, port = split_host(entry)
            async with limit:
                return await self._poll(snmp, engine, auth, host, port)

        try:
            return list(await asyncio.gather(*(one(h) for h in hosts)))
        finally:
            engine.close_dispatcher()

    async def _poll(self, snmp: Any, engine: Any, auth: Any, host: str, port: int) -> Poll:
        poll = Poll(host=host, port=port, read_at=dt.datetime.now(dt.UTC).replace(microsecond=0))
        timeout = float(self.opt("timeout") or 2.0)
        retries = int(self.opt("retries") if self.opt("retries") is not None else 1)
        try:
            target = await snmp.UdpTransportTarget.create(
                (host, port), timeout=timeout, retries=retries
            )
        except Exception as exc:  # noqa: BLE001 - pysnmp raises plain errors on bad addresses
            poll.error = f"cannot resolve {host}: {exc}"
            return poll
        ctx = snmp.ContextData()
        # Separate requests: an agent without the serial must still give its counters.
        for oid, attr in ((SERIAL, "serial"), (NAME, "name")):
            err, status, _, binds = await snmp.get_cmd(
                engine, auth, target, ctx, snmp.ObjectType(snmp.ObjectIdentity(oid))
            )
            if err:
                poll.error = f"no answer ({err})"
                return poll
            if not status and binds and _has_value(binds[0][1]):
                setattr(poll, attr, str(binds[0][1]).strip() or None)
        for column, into in ((LIFE_COUNT, poll.counts), (COUNTER_UNIT, poll.units)):
            async for err, status, _, binds in snmp.walk_cmd(
                engine,
                auth,
                target,
                ctx,
                snmp.ObjectType(snmp.ObjectIdentity(column)),
                lexicographicMode=False,
            ):
                if err or status:
                    poll.error = f"walk of {column} failed ({err or status.prettyPrint()})"
                    return poll
                for name, value in binds:
                    if _has_value(value):
                        into[str(name)[len(column) + 1 :]] = int(value)
        if not poll.counts:
            poll.error = "answers SNMP but has no prtMarkerLifeCount (not a Printer-MIB device)"
        return poll


def _has_value(value: Any) -> bool:
    """False for noSuchObject / noSuchInstance / endOfMibView answers."""
    return value.__class__.__name__ not in (
        "NoSuchObject",
        "NoSuchInstance",
        "EndOfMibView",
        "Null",
    )
