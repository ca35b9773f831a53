"""The overlay package format: ``manifest.json`` and the checks that guard it.

A package is a folder::

    <name>/
        manifest.json          this schema (``SCHEMA_VERSION``)
        firmware.json          the emulator's description of the firmware
        firmware.npz           the emulator's weights and tables
        <name>.bit, <name>.hwh optional: the Vivado bitstream and its hardware handoff (PYNQ convention)
        <name>.bit.link        optional: PYNQ-style {board: {url, md5sum}} to fetch a missing file
        verification.json      optional: a board run that matched the software overlay

Every file the manifest names carries its sha256 and must lie inside the package folder.
Numpy-free: this module runs on the board and in ``fastml-lab overlays``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .._io import write_json_atomic  # noqa: F401  (part of this module's interface)
from ..boards import BOARDS
from ..exceptions import ConfigError, IntegrityError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
VERIFICATION_FILE = "verification.json"

# A package targets a board of fastml_lab.boards.BOARDS, or none (``None``: software only).

#: How the AXI stream carries one batch, as hls4ml's VivadoAccelerator wrapper implements it.
_STREAM_PACKING = (
    "{word} words on a {bits}-bit AXI stream, one word per feature, events back to back in row-major "
    "order; the DMA raises TLAST on the last word of each transfer and the IP repeats it on the "
    "last output word of that transfer. The IP casts each word to the input type and each result "
    "back to {word}."
)
#: A software-only package's values (no stream).
PARALLEL_WORD = "float64"
PARALLEL_PACKING = "float64 values, one per feature, row-major (software only: no stream)"
WORD_DTYPES = ("float32", "float64")


def stream_packing(board) -> str:
    """The manifest's description of ``board``'s stream (a :class:`fastml_lab.boards.Board`)."""
    return _STREAM_PACKING.format(word=board.word_dtype, bits=board.word_bits)

_REQUIRED = ("schema_version", "name", "version", "fastml_lab_version", "board", "io", "firmware")
_IO_REQUIRED = ("interface", "n_inputs", "n_outputs", "word_dtype", "input_type", "output_type")


def _file_digest(path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    return _file_digest(path, "sha256")


def md5_file(path) -> str:
    """Hex md5 of a file's bytes (PYNQ's ``.link`` files record md5)."""
    return _file_digest(path, "md5")


def safe_member(root, relpath: str) -> Path:
    """``root/relpath`` if it stays inside ``root`` (no ``..``, no absolute path, no symlink out).

    Raises IntegrityError otherwise. The file need not exist.
    """
    if not isinstance(relpath, str) or not relpath:
        raise IntegrityError(f"A package path must be a non-empty string; got {relpath!r}.")
    if os.path.isabs(relpath) or relpath.startswith(("/", "\\")) or ":" in relpath:
        raise IntegrityError(f"The manifest names an absolute path {relpath!r}; package paths must "
                             "be relative to the package folder.")
    parts = relpath.replace("\\", "/").split("/")
    if ".." in parts:
        raise IntegrityError(f"The manifest path {relpath!r} escapes the package folder ('..').")
    root = Path(root).resolve()
    target = (root / relpath).resolve()
    if target != root and root not in target.parents:
        raise IntegrityError(f"The manifest path {relpath!r} resolves to {target}, outside the "
                             f"package folder {root} (a symlink pointing out?).")
    return root / relpath


def validate(manifest: dict) -> dict:
    """Check a manifest's structure; returns it. Raises ConfigError saying what is wrong."""
    if not isinstance(manifest, dict):
        raise ConfigError(f"A manifest must be a JSON object; got {type(manifest).__name__}.")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ConfigError(f"The manifest lacks {', '.join(missing)}.")
    version = manifest["schema_version"]
    if not isinstance(version, int) or version < 1:
        raise ConfigError(f"schema_version must be a positive integer; got {version!r}.")
    if version > SCHEMA_VERSION:
        raise ConfigError(f"The package uses manifest schema {version}, newer than this fastml_lab "
                          f"reads ({SCHEMA_VERSION}). Upgrade fastml-lab.")
    board = manifest["board"]
    if board is not None and board not in BOARDS:
        raise ConfigError(f"Unknown board {board!r} in the manifest; known boards: "
                          f"{', '.join(BOARDS)} (or null for software only).")
    io = manifest["io"]
    if not isinstance(io, dict) or any(k not in io for k in _IO_REQUIRED):
        raise ConfigError(f"The manifest's 'io' needs {', '.join(_IO_REQUIRED)}; got {io!r}.")
    for key in ("n_inputs", "n_outputs"):
        if not isinstance(io[key], int) or io[key] < 1:
            raise ConfigError(f"io.{key} must be a positive integer; got {io[key]!r}.")
    if io["interface"] not in ("axi_stream", "parallel"):
        raise ConfigError(f"io.interface must be 'axi_stream' or 'parallel'; got {io['interface']!r}.")
    if board is not None and io["interface"] != "axi_stream":
        raise ConfigError(f"A {board} package needs the 'axi_stream' interface; got {io['interface']!r}.")
    if io["word_dtype"] not in WORD_DTYPES:
        raise ConfigError(f"io.word_dtype must be one of {', '.join(WORD_DTYPES)}; got {io['word_dtype']!r}.")
    if board is not None and io["word_dtype"] != BOARDS[board].word_dtype:
        raise ConfigError(f"A {board} package streams {BOARDS[board].word_dtype} words; the manifest says "
                          f"io.word_dtype {io['word_dtype']!r}.")
    for entry in _file_entries(manifest):
        if not isinstance(entry, dict) or "path" not in entry or "sha256" not in entry:
            raise ConfigError(f"Every file entry needs 'path' and 'sha256'; got {entry!r}.")
    names = manifest.get("class_names")
    if names is not None and len(names) != io["n_outputs"]:
        raise ConfigError(f"{len(names)} class names for {io['n_outputs']} outputs.")
    return manifest


def _file_entries(manifest: dict) -> list:
    entries = list(manifest["firmware"].get("files", []))
    bitstream = manifest.get("bitstream") or {}
    entries += [bitstream[k] for k in ("bit", "hwh") if k in bitstream]
    return entries


def read(folder) -> dict:
    """Read and validate ``folder/manifest.json``."""
    path = Path(folder) / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{folder} is not an overlay package: it has no {MANIFEST_FILE}.") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}.") from None
    return validate(manifest)


def write(folder, manifest: dict) -> None:
    """Validate and write ``folder/manifest.json`` atomically."""
    write_json_atomic(Path(folder) / MANIFEST_FILE, validate(manifest))


def check_files(folder, manifest: dict) -> dict:
    """Verify every listed file that exists; returns {"missing": [...], "present": [...]}.

    Emulator files must exist; a bitstream or HWH may be absent (software-only use). A checksum
    mismatch raises IntegrityError naming the file and both hashes.
    """
    missing, present = [], []
    firmware_paths = {e["path"] for e in manifest["firmware"].get("files", [])}
    for entry in _file_entries(manifest):
        path = safe_member(folder, entry["path"])
        if not path.is_file():
            if entry["path"] in firmware_paths:
                raise IntegrityError(f"The package {folder} lacks {entry['path']}, which its "
                                     "manifest lists; re-create it with `fastml-lab package`.")
            missing.append(entry["path"])
            continue
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise IntegrityError(f"{path} does not match the manifest: sha256 {actual[:16]}... "
                                 f"instead of {entry['sha256'][:16]}... The file was changed or "
                                 "corrupted; restore it or re-create the package.")
        present.append(entry["path"])
    return {"missing": missing, "present": present}
