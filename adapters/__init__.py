"""Source adapters: one module per source kind, looked up by kind name.

The registry maps a kind to ``module:Class`` so that ``collector`` imports only the
adapters a config uses (the SaaS ones pull in more code than the file ones).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry must stay light: `collector --help` and `serve` import it
    from workstyle.adapters.base import Adapter

REGISTRY: dict[str, str] = {
    "papercut_print_logger": "workstyle.adapters.papercut_print_logger:PaperCutPrintLogger",
    "csv": "workstyle.adapters.csv_export:CsvExport",
    "zoom": "workstyle.adapters.zoom:Zoom",
    "teams": "workstyle.adapters.teams:Teams",
    "webex": "workstyle.adapters.webex:Webex",
    "google_meet": "workstyle.adapters.google_meet:GoogleMeet",
    "windows_print_events": "workstyle.adapters.windows_print_events:WindowsPrintEvents",
    "papercut_ng_print_log": "workstyle.adapters.papercut_ng_print_log:PaperCutNgPrintLog",
    "snmp_printer_counters": "workstyle.adapters.snmp_printer_counters:SnmpPrinterCounters",
    "fortigate_vpn": "workstyle.adapters.fortigate_vpn:FortiGateVpn",
    "cisco_asa_vpn": "workstyle.adapters.cisco_asa_vpn:CiscoAsaVpn",
    "rd_gateway": "workstyle.adapters.rd_gateway:RdGateway",
}


def adapter_class(kind: str) -> type[Adapter]:
    """The adapter class for a kind; ``KeyError`` when there is none."""
    target = REGISTRY[kind]
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def kinds() -> list[str]:
    return sorted(REGISTRY)
