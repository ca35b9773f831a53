"""Find overlay packages by name.

Search order: the folders passed in, then each folder of ``$FASTML_LAB_OVERLAYS`` (separated like
PATH), then ``./bitstreams`` of the current folder, then the packages shipped with fastml_lab.
A folder is either a package itself (it has ``manifest.json``) or holds packages as subfolders.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import ConfigError, FastMLError
from . import manifest as mf

log = logging.getLogger(__name__)

ENV_VAR = "FASTML_LAB_OVERLAYS"


def shipped_dirs() -> list:
    """Folders holding the packages that ship with fastml_lab (installed or source checkout)."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "bitstreams", here.parents[1] / "bitstreams"]
    return [p for p in candidates if p.is_dir()]


def search_dirs(paths=()) -> list:
    """The folders searched, in order, without duplicates."""
    dirs = [Path(p) for p in paths or ()]
    dirs += [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "bitstreams")
    dirs += shipped_dirs()
    unique, seen = [], set()
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


def _package_dirs(folder: Path) -> list:
    if (folder / mf.MANIFEST_FILE).is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / mf.MANIFEST_FILE).is_file())


@dataclass(frozen=True)
class OverlayInfo:
    """One row of :func:`list_overlays`; ``status`` is "invalid: ..." for a broken package."""

    name: str
    version: str
    board: object
    status: str
    path: Path


def list_overlays(paths=()) -> list:
    """Every package found in the search folders, verified (broken ones say why in ``status``)."""
    from .package import OverlayPackage

    rows = []
    for folder in search_dirs(paths):
        for pkg_dir in _package_dirs(folder):
            try:
                pkg = OverlayPackage(pkg_dir)
                rows.append(OverlayInfo(pkg.name, pkg.version, pkg.board, pkg.status, pkg_dir))
            except FastMLError as exc:
                rows.append(OverlayInfo(pkg_dir.name, "?", None, f"invalid: {exc}", pkg_dir))
    return rows


def resolve(name_or_path, paths=()) -> Path:
    """The package folder for a path or a package name (first match in search order)."""
    candidate = Path(name_or_path)
    if (candidate / mf.MANIFEST_FILE).is_file():
        return candidate
    if candidate.exists():
        raise ConfigError(f"{candidate} is not an overlay package: it has no {mf.MANIFEST_FILE}.")
    name = str(name_or_path)
    if len(candidate.parts) > 1:  # a path, not a package name
        raise ConfigError(f"{candidate} does not exist: there is no overlay package there. "
                          "`fastml-lab package PRJ --name NAME --out DIR` makes one.")
    searched = search_dirs(paths)
    for folder in searched:
        for pkg_dir in _package_dirs(folder):
            if pkg_dir.name == name:
                return pkg_dir
    raise ConfigError(f"No overlay package named {name!r}; searched "
                      f"{', '.join(str(d) for d in searched)}. `fastml-lab overlays` lists what "
                      "is available; `fastml-lab package` makes one.")
