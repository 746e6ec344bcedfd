"""Printer page counters read over SNMP (Printer-MIB), and the page deltas derived from them.

Two tables, written by the ``snmp_printer_counters`` adapter:

- ``printer_counter_readings``: every successful poll of a marker's lifetime counter
  (``prtMarkerLifeCount``) with its unit, so deltas can be recomputed and audited;
- ``printer_counter_deltas``: pages (in the counter's unit) between two successive
  readings of one device and marker, never negative: a counter that wraps is
  unwrapped, a decrease that is not a wrap (reset, new board) is flagged
  ``kind = "reset"`` and counts only the pages read since the reset, and an
  unreachable device produces no reading (the next delta spans the gap).

A device is its serial number (``prtGeneralSerialNumber``); a printer replaced
behind the same address is a new device. Counters include copies, faxes and
reports, and count impressions (a duplex sheet is 2) or sheets depending on
``unit``: they are a second basis for paper, never mixed with print logs.
"""

from __future__ import annotations

import pyarrow as pa

from workstyle.schemas.tables import UTC_TS, TableSpec, register

#: prtMarkerCounterUnit values (RFC 3805) as stored in ``unit``.
COUNTER_UNITS = {
    3: "tenThousandthsOfInches",
    4: "micrometers",
    5: "characters",
    6: "lines",
    7: "impressions",
    8: "sheets",
    9: "dotRow",
    11: "hours",
    16: "feet",
    17: "meters",
}
DELTA_KINDS = ("counted", "wrapped", "reset")

PRINTER_COUNTER_READINGS = register(
    TableSpec(
        name="printer_counter_readings",
        version=1,
        description="One row per successful SNMP poll of a printer marker's lifetime counter.",
        fields=(
            pa.field("device", pa.string(), nullable=False),
            pa.field("marker", pa.string(), nullable=False),
            pa.field("read_at", UTC_TS, nullable=False),
            pa.field("life_count", pa.int64(), nullable=False),
            pa.field("unit", pa.string()),
            pa.field("host", pa.string()),
            pa.field("printer_name", pa.string()),
        ),
        key=("device", "marker", "read_at"),
        partition_by="read_at",
        non_negative=("life_count",),
    )
)

PRINTER_COUNTER_DELTAS = register(
    TableSpec(
        name="printer_counter_deltas",
        version=1,
        description="Pages (in the counter's unit) between two successive readings of a marker.",
        fields=(
            pa.field("device", pa.string(), nullable=False),
            pa.field("marker", pa.string(), nullable=False),
            pa.field("interval_start", UTC_TS, nullable=False),
            pa.field("interval_end", UTC_TS, nullable=False),
            pa.field("pages", pa.int64(), nullable=False),
            pa.field("unit", pa.string()),
            # counted | wrapped (counter rolled over) | reset (decrease: pages since reset)
            pa.field("kind", pa.string(), nullable=False),
            pa.field("host", pa.string()),
        ),
        key=("device", "marker", "interval_end"),
        partition_by="interval_end",
        non_negative=("pages",),
        enums={"kind": DELTA_KINDS},
    )
)
