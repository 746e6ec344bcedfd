"""The installed distribution: one namespace, every package folder shipped."""

from __future__ import annotations

import importlib.metadata
import sysconfig
import tomllib
from pathlib import Path

import workstyle.collector

REPO = Path(__file__).resolve().parents[2]
TOP_FOLDERS = ("collector", "adapters", "aggregates", "schemas", "config")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_listed() -> None:
    """A new sub-package missing from `packages` would be absent from an installed copy."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    folders = {
        "workstyle." + ".".join(init.parent.relative_to(REPO).parts)
        for top in TOP_FOLDERS
        for init in (REPO / top).rglob("__init__.py")
    }
    assert folders == listed


def test_installed_copy_claims_only_the_workstyle_namespace() -> None:
    # Ask site-packages itself: a build leaves an .egg-info in the checkout, which the
    # working directory on sys.path would otherwise answer for.
    site = sysconfig.get_paths()["purelib"]
    (dist,) = [
        d
        for d in importlib.metadata.distributions(path=[site])
        if d.metadata["Name"] == "workstyle-collector"
    ]
    files = dist.files or []
    tops = {f.parts[0] for f in files if f.suffix == ".py" and len(f.parts) > 1}
    tops |= {f.stem for f in files if f.suffix == ".py" and len(f.parts) == 1}
    # An editable install adds its own finder module; a regular one has only workstyle/.
    tops = {t for t in tops if not t.startswith("__editable__")}
    assert tops <= {"workstyle"}, tops
    assert not set(TOP_FOLDERS) & tops


def test_the_imported_package_is_the_one_tested() -> None:
    assert Path(workstyle.collector.__file__).name == "__init__.py"
