"""The overlay package format: ``manifest.json`` and the checks that guard it.

A package is a folder::

    <name>/
        manifest.json          this schema (``SCHEMA_VERSION``)
        firmware.json          the emulator's description of the firmware (a neural network's layers,
                               or a BDT's ensemble)
        firmware.npz           the emulator's weights and tables
        <name>.bit, <name>.hwh optional: the Vivado bitstream and its hardware handoff (PYNQ convention)
        <name>.bit.link        optional: PYNQ-style {board: {url, md5sum}} to fetch a missing file
        verification.json      optional: a board run that matched the software overlay

Every file the manifest names carries its sha256 and must lie inside the package folder; a
bitstream entry also records its ``size`` in bytes (packages written before it did have none).
Numpy-free: this module runs on the board and in ``fastml-lab overlays``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._io import read_json, write_json_atomic  # noqa: F401  (write_json_atomic: part of this module's interface)
from .. import families
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

#: How data reaches the IP: hls4ml's AXI stream behind a DMA (a network on a board), conifer's Zynq
#: accelerator (a BDT on a board: AXI-lite control registers, buffers in memory read and written over
#: an AXI master), or no hardware interface (software only).
STREAM, MEMORY_MAPPED = families.STREAM, families.MEMORY_MAPPED
PARALLEL = "parallel"
INTERFACES = (STREAM, MEMORY_MAPPED, PARALLEL)
#: The control registers a conifer accelerator's manifest must name, and the bits of its control register.
MEMORY_MAPPED_REGISTERS = ("CTRL", "N", "n_f", "n_c", "x", "score")
CONTROL_BITS = ("ap_start", "ap_done", "ap_idle", "ap_ready")
#: The register pointers (buffer addresses) among them; the rest are 32-bit.
POINTER_REGISTERS = ("x", "score")
#: The AXI-lite block's first four words (control, global and IP interrupt enable, interrupt status).
_CONTROL_BLOCK_BYTES = 0x10
_AXI_LITE_SPAN = 1 << 16

_MEMORY_PACKING = (
    "{word} words in two buffers in the processor's memory that the IP reads and writes over its AXI "
    "master (m_axi): x holds N * n_inputs words, one per feature, events back to back in row-major "
    "order; score receives N * n_outputs words. The driver writes N and the buffers' physical "
    "addresses into the AXI-lite control registers, then sets ap_start and waits for ap_done. The IP "
    "casts each word to the input type and each score back to {word}."
)


def stream_packing(board) -> str:
    """The manifest's description of ``board``'s stream (a :class:`fastml_lab.boards.Board`)."""
    return _STREAM_PACKING.format(word=board.word_dtype, bits=board.word_bits)


def memory_packing(word_dtype: str) -> str:
    """The manifest's description of a conifer accelerator's buffers of ``word_dtype`` words."""
    return _MEMORY_PACKING.format(word=word_dtype)


#: The names of a package's one input and one output tensor (the Open Inference Protocol's, as
#: ``fastml-lab serve`` speaks it) when its ``io`` names none as ``input_name`` / ``output_name``.
DEFAULT_TENSOR_NAMES = {"input_name": "input", "output_name": "output"}


def tensor_names(manifest: dict) -> tuple:
    """``(input name, output name)`` of the package's tensors: ``io.input_name`` and
    ``io.output_name`` where given, else :data:`DEFAULT_TENSOR_NAMES`."""
    io = manifest["io"]
    return tuple(io.get(key) or default for key, default in DEFAULT_TENSOR_NAMES.items())


def family(manifest: dict) -> str:
    """The manifest's model family (:mod:`fastml_lab.families`); one written before BDTs names
    none: a network."""
    return manifest.get("family", families.LEGACY_FAMILY)

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
    kind = family(manifest)
    if kind not in families.family_names():
        raise ConfigError(f"family must be one of {', '.join(families.family_names())}; got {kind!r}.")
    board_interface = families.get_family(kind).board_interface
    interface = io["interface"]
    if interface not in INTERFACES:
        raise ConfigError(f"io.interface must be one of {', '.join(map(repr, INTERFACES))}; got {interface!r}.")
    if interface != PARALLEL and interface != board_interface:
        raise ConfigError(f"A {kind} package on a board uses the {board_interface!r} interface; the "
                          f"manifest says {interface!r}.")
    if board is not None and interface == PARALLEL:
        raise ConfigError(f"A {board} package needs the {board_interface!r} interface; got {interface!r}.")
    if board is None and interface != PARALLEL:
        raise ConfigError(f"io.interface {interface!r} needs a board; a package without one (board null) "
                          f"is software only ({PARALLEL!r}).")
    for key in DEFAULT_TENSOR_NAMES:
        if key in io and (not isinstance(io[key], str) or not io[key].strip()):
            raise ConfigError(f"io.{key} must be a non-empty string; got {io[key]!r}.")
    if len(set(tensor_names(manifest))) != 2:
        raise ConfigError(f"io.input_name and io.output_name must differ; both are {tensor_names(manifest)[0]!r}.")
    if io["word_dtype"] not in WORD_DTYPES:
        raise ConfigError(f"io.word_dtype must be one of {', '.join(WORD_DTYPES)}; got {io['word_dtype']!r}.")
    if interface == STREAM and io["word_dtype"] != BOARDS[board].word_dtype:
        raise ConfigError(f"A {board} package streams {BOARDS[board].word_dtype} words; the manifest says "
                          f"io.word_dtype {io['word_dtype']!r}.")
    if interface == MEMORY_MAPPED:
        _validate_memory_mapped(io)
    for entry in _file_entries(manifest):
        if not isinstance(entry, dict) or "path" not in entry or "sha256" not in entry:
            raise ConfigError(f"Every file entry needs 'path' and 'sha256'; got {entry!r}.")
        size = entry.get("size")  # optional (bitstream files, since fetch limits downloads to it)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ConfigError(f"A file entry's 'size' must be a number of bytes; got {size!r} for "
                              f"{entry['path']!r}.")
    names = manifest.get("class_names")
    if names is not None and len(names) != io["n_outputs"]:
        raise ConfigError(f"{len(names)} class names for {io['n_outputs']} outputs.")
    return manifest


def _validate_memory_mapped(io: dict) -> None:
    """The control registers of a conifer accelerator: every one named, word-aligned, inside the
    AXI-lite block, past its control words (except CTRL at 0), none overlapping another."""
    if io["word_dtype"] != "float32":
        raise ConfigError(f"A conifer accelerator exchanges float32 words (its 'float' interface); the "
                          f"manifest says io.word_dtype {io['word_dtype']!r}.")
    ip = io.get("ip")
    if not isinstance(ip, dict) or not isinstance(ip.get("vlnv"), str) or ip["vlnv"].count(":") != 3:
        raise ConfigError(f"io.ip must give the accelerator's 'vlnv' (vendor:library:name:version); got {ip!r}.")
    bits = io.get("address_bits")
    if bits not in (32, 64):
        raise ConfigError(f"io.address_bits must be 32 or 64 (the width of the buffer address registers); "
                          f"got {bits!r}.")
    regs = io.get("registers")
    if not isinstance(regs, dict) or sorted(regs) != sorted(MEMORY_MAPPED_REGISTERS):
        raise ConfigError(f"io.registers must give the offsets of exactly {', '.join(MEMORY_MAPPED_REGISTERS)}; "
                          f"got {sorted(regs) if isinstance(regs, dict) else regs!r}.")
    spans = []
    for name in MEMORY_MAPPED_REGISTERS:
        offset = regs[name]
        if not isinstance(offset, int) or isinstance(offset, bool) or offset % 4 or not 0 <= offset < _AXI_LITE_SPAN:
            raise ConfigError(f"io.registers.{name} must be a word-aligned byte offset (a multiple of 4, "
                              f"below {_AXI_LITE_SPAN:#x}); got {offset!r}.")
        if name == "CTRL" and offset != 0:
            raise ConfigError(f"io.registers.CTRL must be 0 (ap_start, ap_done, ap_idle live at offset 0); got {offset:#x}.")
        if name != "CTRL" and offset < _CONTROL_BLOCK_BYTES:
            raise ConfigError(f"io.registers.{name} = {offset:#x} lies in the control block (0x00-0x0c); "
                              f"argument registers start at {_CONTROL_BLOCK_BYTES:#x}.")
        size = bits // 8 if name in POINTER_REGISTERS else 4
        for other, start, end in spans:
            if offset < end and start < offset + size:
                raise ConfigError(f"io.registers.{name} ({offset:#x}, {size} bytes) overlaps "
                                  f"io.registers.{other} ({start:#x}).")
        spans.append((name, offset, offset + size))
    control = io.get("control_bits")
    if not isinstance(control, dict) or sorted(control) != sorted(CONTROL_BITS):
        raise ConfigError(f"io.control_bits must give the bits of {', '.join(CONTROL_BITS)} in CTRL; got {control!r}.")
    positions = list(control.values())
    if any(not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < 32 for b in positions) \
            or len(set(positions)) != len(positions):
        raise ConfigError(f"io.control_bits must be distinct bit positions 0-31; got {control!r}.")


def _file_entries(manifest: dict) -> list:
    entries = list(manifest["firmware"].get("files", []))
    bitstream = manifest.get("bitstream") or {}
    entries += [bitstream[k] for k in ("bit", "hwh") if k in bitstream]
    return entries


def read(folder) -> dict:
    """Read and validate ``folder/manifest.json``."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError(f"{folder} is not an overlay package: it has no {MANIFEST_FILE}.")
    manifest = read_json(path, "the overlay manifest", ConfigError)
    try:
        return validate(manifest)
    except (ConfigError, IntegrityError) as exc:  # say which package's manifest is wrong
        raise type(exc)(f"{path}: {exc}") from None


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
        try:
            path = safe_member(folder, entry["path"])
        except IntegrityError as exc:
            raise IntegrityError(f"{Path(folder) / MANIFEST_FILE}: {exc}") from None
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
