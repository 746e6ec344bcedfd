"""Source adapters: one module per source kind, looked up by kind name.

The registry maps a kind to ``module:Class`` so that ``collector`` imports only the
adapters a config uses (the SaaS ones pull in more code than the file ones).
"""

from __future__ import annotations

import importlib

from adapters.base import Adapter, Batch, Option, Quarantined, ReadRequest, SourceConfig

REGISTRY: dict[str, str] = {
    "papercut_print_logger": "adapters.papercut_print_logger:PaperCutPrintLogger",
    "csv": "adapters.csv_export:CsvExport",
    "zoom": "adapters.zoom:Zoom",
    "teams": "adapters.teams:Teams",
    "webex": "adapters.webex:Webex",
    "google_meet": "adapters.google_meet:GoogleMeet",
    "windows_print_events": "adapters.windows_print_events:WindowsPrintEvents",
    "papercut_ng_print_log": "adapters.papercut_ng_print_log:PaperCutNgPrintLog",
    "snmp_printer_counters": "adapters.snmp_printer_counters:SnmpPrinterCounters",
    "fortigate_vpn": "adapters.fortigate_vpn:FortiGateVpn",
    "cisco_asa_vpn": "adapters.cisco_asa_vpn:CiscoAsaVpn",
    "rd_gateway": "adapters.rd_gateway:RdGateway",
}


def adapter_class(kind: str) -> type[Adapter]:
    """The adapter class for a kind; ``KeyError`` when there is none."""
    target = REGISTRY[kind]
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def kinds() -> list[str]:
    return sorted(REGISTRY)


__all__ = [
    "REGISTRY",
    "Adapter",
    "Batch",
    "Option",
    "Quarantined",
    "ReadRequest",
    "SourceConfig",
    "adapter_class",
    "kinds",
]
