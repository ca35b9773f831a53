"""Compiled C simulations shared by projects, keyed by what they are compiled from.

A project keeps its own build in ``PRJ/csim``; an export that writes the same C++ again (Restart &
Run All, a second folder, the same BDT in another test) finds it here instead of running g++. The
key hashes the compiler's version and target, the recipe (flags, sources, include folders, batch
entry point) and the bytes of every file the recipe names or includes. A recipe that bakes a path
of its project into the library (``path_defines``: hls4ml's weights folder) is never shared.

The folder is ``$FASTML_LAB_CSIM_CACHE`` (``off`` turns sharing off), else
``$XDG_CACHE_HOME/fastml_lab/csim`` (``~/.cache/...``); it keeps the :data:`KEEP` newest builds.
Files arrive whole (written beside, then renamed), so concurrent processes may share it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("fastml_lab")

CACHE_ENV = "FASTML_LAB_CSIM_CACHE"
KEEP = 64
_VERSION = b"fastml_lab shared csim build 1"


def cache_dir() -> Path | None:
    """The shared folder, or None when ``$FASTML_LAB_CSIM_CACHE`` is ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "off", "0", "no", "none"):
        return None
    if value:
        return Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastml_lab" / "csim"


@functools.lru_cache(maxsize=8)
def compiler_identity(cxx: str) -> bytes:
    """The compiler's version and target (another g++ makes another library)."""
    try:
        proc = subprocess.run([cxx, "-dumpfullversion", "-dumpmachine"], capture_output=True, timeout=30)
        return cxx.encode() + proc.stdout
    except (OSError, subprocess.TimeoutExpired):
        return cxx.encode()


def content_key(hls_dir: Path, recipe: dict, extra_flags, cxx: str, tools=()) -> str | None:
    """The key of a project's build, or None when its library may not be shared. ``tools``: the
    versions of other tools that made sources (Verilator)."""
    if recipe.get("path_defines"):
        return None
    hls_dir = Path(hls_dir)
    h = hashlib.sha256(_VERSION)
    h.update(compiler_identity(cxx))
    h.update(json.dumps({k: recipe.get(k) for k in ("stem", "flags", "include_dirs", "sources", "batch_source",
                                                     "verilate")}, sort_keys=True).encode())
    h.update(repr(tuple(tools)).encode())
    h.update(" ".join(extra_flags).encode())
    verilate = recipe.get("verilate") or {}
    files = {hls_dir / rel for rel in (*recipe.get("key_files", ()), *recipe.get("sources", ()),
                                       *verilate.get("sources", ()))}
    for inc in (*recipe.get("include_dirs", ()), *verilate.get("include_dirs", ())):
        folder = hls_dir / inc
        if folder.is_dir():
            files.update(p for p in folder.rglob("*") if p.is_file())
    for path in sorted(files):
        h.update(path.relative_to(hls_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()[:32]


def fetch(key: str, dest: Path) -> bool:
    """Put the shared build ``key`` at ``dest`` (whole or not at all); False when there is none."""
    folder = cache_dir()
    source = folder / f"{key}.so" if folder else None
    if source is None or not source.is_file():
        return False
    try:
        _copy_whole(source, dest)
        os.utime(source)  # recently used: kept longest
    except OSError:
        log.debug("the shared C simulation build %s could not be copied", source, exc_info=True)
        return False
    return True


def store(key: str, lib: Path) -> None:
    """Share the build ``lib`` under ``key``; a cache that cannot be written is passed over."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _copy_whole(lib, folder / f"{key}.so")
        builds = sorted(folder.glob("*.so"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in builds[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        log.debug("the C simulation build could not be shared in %s", folder, exc_info=True)


def _copy_whole(source: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
