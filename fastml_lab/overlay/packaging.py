"""Make an overlay package from an exported project, atomically.

The project's record (:mod:`fastml_lab.project`) gives the board, part, clock, scaler, class names
and the timing (an estimate, or a recorded synthesis report's figures); the board table
(:mod:`fastml_lab.boards`) gives the stream's word type. The package is assembled in a hidden
temporary folder beside the destination and renamed into place at the end
(:func:`fastml_lab._io.atomic_directory`), so an interrupted run leaves either the old package or
the new one, never half.
"""

from __future__ import annotations

import datetime
import logging
import re
import shutil
from pathlib import Path

from .._io import atomic_directory
from ..boards import BOARDS
from ..exceptions import ConfigError, NotReadyError
from ..project import Project, open_project
from . import manifest as mf

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: Where hls4ml's VivadoAccelerator flow leaves the bitstream and the hardware handoff.
_BIT_GLOB = "myproject_vivado_accelerator/project_1.runs/impl_1/*.bit"
_HWH_GLOBS = (
    "myproject_vivado_accelerator/project_1.gen/sources_1/bd/*/hw_handoff/*.hwh",
    "myproject_vivado_accelerator/project_1.srcs/sources_1/bd/*/hw_handoff/*.hwh",
)


def default_out(name: str) -> Path:
    """``./bitstreams/<name>`` in the current folder: where ``fastml-lab overlays`` looks."""
    return Path.cwd() / "bitstreams" / name


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"Package name {name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                          "starting with a letter or digit.")
    return name


def find_build_outputs(project) -> tuple:
    """The Vivado ``.bit`` and ``.hwh`` of a project's hls4ml folder, or (None, None)."""
    hls_dir = open_project(project).hls_dir
    bits = sorted(hls_dir.glob(_BIT_GLOB))
    hwhs = [p for g in _HWH_GLOBS for p in sorted(hls_dir.glob(g))]
    if bits and hwhs:
        return bits[0], hwhs[0]
    if bits or hwhs:
        log.warning("Found %s but not %s in %s; packaging without a bitstream.",
                    "a .bit" if bits else "a .hwh", "its .hwh" if bits else "its .bit", hls_dir)
    return None, None


def build_manifest(project: Project, firmware, name: str, version: str, files: list,
                   bitstream) -> dict:
    """The manifest for a project; ``files`` are the emulator file entries.

    The timing is the project's (an estimate, or a recorded synthesis report's); the stream's
    word type is the board's.
    """
    from .. import __version__

    info = project.meta
    board = info.get("board")
    if board is not None and board not in BOARDS:
        raise ConfigError(f"The project {project.path} targets board {board!r}, which overlays do not "
                          f"support; known boards: {', '.join(BOARDS)}.")
    interface = firmware.interface
    timing = project.timing
    clock_mhz = timing.get("clock_mhz") or project.clock_mhz
    stream = interface == "axi_stream"
    if stream and board is None:
        raise ConfigError(f"The project {project.path} streams its data ({interface}) but names no board; "
                          f"export it for one of {', '.join(BOARDS)}.")
    word_dtype = BOARDS[board].word_dtype if stream else mf.PARALLEL_WORD
    return {
        "schema_version": mf.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "fastml_lab_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "board": board,
        "part": info.get("part"),
        "clock_mhz": clock_mhz,
        "source": {k: info.get(k) for k in ("name", "backend", "reuse_factor", "strategy", "io_type")},
        "io": {
            "interface": interface,
            "n_inputs": int(firmware.n_inputs),
            "n_outputs": int(firmware.n_outputs),
            "input_shape": [int(firmware.n_inputs)],
            "output_shape": [int(firmware.n_outputs)],
            "word_dtype": word_dtype,
            "packing": mf.stream_packing(BOARDS[board]) if stream else mf.PARALLEL_PACKING,
            "input_type": str(firmware.input_type),
            "output_type": str(firmware.output_type),
            "inputs_scaled": False,
        },
        "scaler": info.get("scaler"),
        "class_names": info.get("class_names"),
        "feature_names": info.get("feature_names"),
        "timing": timing,
        "firmware": {"digest": firmware.digest(), "files": files},
        "bitstream": bitstream,
    }


def package(project, name: str, out=None, version: str = "1.0.0", overwrite: bool = False,
            include_bitstream: bool = True) -> Path:
    """Package the exported project ``project`` as overlay ``name``; returns the package folder.

    ``out`` defaults to ``./bitstreams/<name>``. The emulator data is copied and hashed; the
    Vivado ``.bit``/``.hwh`` are added as ``<name>.bit``/``<name>.hwh`` when the project has them.
    An existing package is replaced only with ``overwrite=True``.
    """
    from ..emulator import Firmware

    check_name(name)
    project = open_project(project)
    out = Path(out) if out is not None else default_out(name)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it.")
    firmware = project.firmware()
    with atomic_directory(out, overwrite=overwrite) as tmp:
        files = []
        for fname in Firmware.FILES:
            _copy(project.path / fname, tmp / fname)
            files.append({"path": fname, "sha256": mf.sha256_file(tmp / fname)})
        bitstream = None
        bit, hwh = find_build_outputs(project) if include_bitstream else (None, None)
        if bit is not None:
            bitstream = {}
            for role, src in (("bit", bit), ("hwh", hwh)):
                dest = tmp / f"{name}.{role}"
                _copy(src, dest)
                bitstream[role] = {"path": dest.name, "sha256": mf.sha256_file(dest)}
        manifest = build_manifest(project, firmware, name, version, files, bitstream)
        mf.write(tmp, manifest)
    log.info("Packaged %s %s into %s (%s).", name, version, out,
             "with bitstream" if bitstream else "software only")
    return out


def _copy(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise NotReadyError(f"{src} is missing; export the project again.")
    shutil.copyfile(src, dest)
