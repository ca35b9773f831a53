"""PYNQ-style ``.link`` files: fetch a package's bitstream from a release URL, verified.

``<file>.link`` beside ``<file>`` holds ``{"<board>": {"url": ..., "md5sum": ...}}``, the
convention ``pynq get-notebooks`` and pynqutils follow. A fetched file must match both the link's
md5 and the manifest's sha256 before it is renamed into place.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.request
from pathlib import Path

from .._io import atomic_destination
from ..exceptions import BoardError, ConfigError, IntegrityError
from . import manifest as mf

log = logging.getLogger(__name__)


def _board_key(name: str) -> str:
    return name.lower().replace("_", "-")


def write_link(package_path, role: str, url: str, board: str = None) -> Path:
    """Write ``<file>.link`` for the package's existing ``bit`` or ``hwh`` file; returns its path."""
    package_path = Path(package_path)
    manifest = mf.read(package_path)
    entry = (manifest.get("bitstream") or {}).get(role)
    if entry is None:
        raise ConfigError(f"The package {package_path} has no {role!r} file to link.")
    target = mf.safe_member(package_path, entry["path"])
    board = board or manifest["board"]
    link = target.with_name(target.name + ".link")
    mf.write_json_atomic(link, {board: {"url": url, "md5sum": mf.md5_file(target)}})
    return link


def read_link(link_path, board: str) -> dict:
    """The ``{url, md5sum}`` entry of a ``.link`` file for ``board`` (case-insensitive)."""
    try:
        data = json.loads(Path(link_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read {link_path}: {exc}.") from None
    for key, entry in data.items():
        if _board_key(key) == _board_key(board):
            if not isinstance(entry, dict) or "url" not in entry:
                raise ConfigError(f"{link_path}: the entry for {key!r} needs a 'url'.")
            return entry
    raise ConfigError(f"{link_path} has no entry for board {board!r}; it lists "
                      f"{', '.join(data) or 'nothing'}.")


def fetch_bitstream(package_path, timeout_s: float = 60.0) -> list:
    """Download every manifest-listed bitstream file that is missing and has a ``.link``.

    Each download is checked against the link's md5 and the manifest's sha256 and only then
    renamed into place. Returns the paths fetched.
    """
    package_path = Path(package_path)
    manifest = mf.read(package_path)
    board = manifest["board"]
    fetched = []
    for role in ("bit", "hwh"):
        entry = (manifest.get("bitstream") or {}).get(role)
        if entry is None:
            continue
        target = mf.safe_member(package_path, entry["path"])
        link = mf.safe_member(package_path, entry["path"] + ".link")
        if target.is_file() or not link.is_file():
            continue
        source = read_link(link, board)
        _download(source["url"], target, timeout_s, md5=source.get("md5sum"), sha256=entry["sha256"])
        fetched.append(target)
    return fetched


def _download(url: str, target: Path, timeout_s: float, md5=None, sha256=None) -> None:
    if not url.startswith(("https://", "http://", "file://")):
        raise ConfigError(f"Refusing to fetch {url!r}: only http(s) and file URLs are allowed.")
    log.info("Fetching %s -> %s", url, target)
    try:
        with atomic_destination(target) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
                shutil.copyfileobj(response, out, 1 << 20)
            if md5 and mf.md5_file(tmp) != md5:
                raise IntegrityError(f"The file downloaded from {url} has md5 {mf.md5_file(tmp)}, but "
                                     f"the .link file expects {md5}; nothing was written.")
            if sha256 and mf.sha256_file(tmp) != sha256:
                raise IntegrityError(f"The file downloaded from {url} does not match the manifest's "
                                     "sha256; nothing was written.")
    except OSError as exc:
        raise BoardError(f"Could not fetch {url}: {exc}.") from exc
