"""Many organisations in one dataset: keeping the layouts apart, adopting old files.

A dataset written without ``[collector] organisation`` has no organisation level
(``<table>/source=…``) and keeps working as it is. Once an organisation is configured,
``collector adopt-organisation`` moves those files under ``organisation=<code>``
(partitions, the run ledger, quarantine, KPI tables and state), so the watermark and
every row carry on. It is explicit, never automatic: in a shared bucket, un-levelled
files may belong to another organisation than the first collector that sees them. It
runs under the writer lock, lists only the top of each folder, and is restartable: a
file is copied, then its original deleted, so a killed adoption is finished by running
it again.
"""

from __future__ import annotations

import logging

import pyarrow.fs as pafs

from workstyle import schemas
from workstyle.collector.errors import ConfigError
from workstyle.collector.storage import ORG_KEY, DataLocation
from workstyle.schemas.runs_quarantine import QUARANTINE, RUNS

log = logging.getLogger("collector")

#: State files that belong to the data directory, not to one organisation.
_SHARED_STATE = {"writer.lock", "writer.lease"}


def adopt_unlevelled(location: DataLocation) -> int:
    """Move files without the organisation level under this organisation; return how many."""
    if not location.organisation:
        return 0
    moved = 0
    for top in [*schemas.TABLES, RUNS.name, QUARANTINE.name, "kpi", "_state"]:
        count = 0
        files, folders = _unlevelled(location, top)
        for path in files:
            rel = path[len(location.path(top)) + 1 :]
            target = location.org_path(top, rel)
            _move(location, path, target)
            count += 1
        for folder in folders:  # emptied now (or holding a killed writer's temp files)
            location.fs.delete_dir(folder)
        if count:
            log.warning(
                "%s: moved %d file(s) of the single-organisation layout under %s=%s",
                location.display(location.path(top)),
                count,
                ORG_KEY,
                location.organisation,
            )
        moved += count
    return moved


def check_layout(location: DataLocation) -> None:
    """Before writing: no un-levelled writes into a dataset of many organisations.

    One listing of ``_state``. A collector without an organisation writing into a shared
    dataset would mix its rows into whoever adopts the un-levelled files later.
    """
    state = location.path("_state")
    names = {
        i.base_name
        for i in location.fs.get_file_info(pafs.FileSelector(state, allow_not_found=True))
    }
    levelled = sorted(n for n in names if n.startswith(f"{ORG_KEY}="))
    if not location.organisation and levelled:
        raise ConfigError(
            f"data_dir {location.uri}: holds the data of several organisations"
            f" ({', '.join(levelled[:3])}{', …' if len(levelled) > 3 else ''}); set"
            " [collector] organisation to this organisation's 地方公共団体コード"
        )
    if location.organisation and {"sources", "summary"} & names:
        log.warning(
            "data_dir %s: has state and partitions without an organisation level (written"
            " before [collector] organisation was set); if they are this organisation's,"
            " move them under %s=%s with `collector adopt-organisation`",
            location.uri,
            ORG_KEY,
            location.organisation,
        )


def _unlevelled(location: DataLocation, top: str) -> tuple[list[str], list[str]]:
    """The files to move and the folders they are in, below one top folder."""
    fs = location.fs
    base = location.path(top)
    out: list[str] = []
    folders: list[str] = []
    for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = info.base_name
        if name.startswith(f"{ORG_KEY}=") or name.startswith("."):
            continue
        if info.type == pafs.FileType.File:
            if name not in _SHARED_STATE:
                out.append(info.path)
        elif info.type == pafs.FileType.Directory:
            folders.append(info.path)
            selector = pafs.FileSelector(info.path, recursive=True, allow_not_found=True)
            out += [
                i.path
                for i in fs.get_file_info(selector)
                if i.type == pafs.FileType.File and not i.base_name.startswith(".")
            ]
    return sorted(out), folders


def _move(location: DataLocation, source: str, target: str) -> None:
    if location.is_local:
        parent = target.rpartition("/")[0]
        location.fs.create_dir(parent, recursive=True)
        location.fs.move(source, target)  # a rename: atomic
        return
    location.fs.copy_file(source, target)  # server-side copy, whole or not at all
    location.fs.delete_file(source)
