"""Make an overlay package from an exported project, atomically.

The package is assembled in a hidden temporary folder beside the destination and renamed into
place at the end, so an interrupted run leaves either the old package or the new one, never half.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..exceptions import ConfigError, NotReadyError
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
    hls_dir = Path(project) / _read_project(project).get("hls_dir", "hls4ml")
    bits = sorted(hls_dir.glob(_BIT_GLOB))
    hwhs = [p for g in _HWH_GLOBS for p in sorted(hls_dir.glob(g))]
    if bits and hwhs:
        return bits[0], hwhs[0]
    if bits or hwhs:
        log.warning("Found %s but not %s in %s; packaging without a bitstream.",
                    "a .bit" if bits else "a .hwh", "its .hwh" if bits else "its .bit", hls_dir)
    return None, None


def _read_project(project) -> dict:
    path = Path(project) / "project.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotReadyError(f"{project} is not an exported project (no project.json); run "
                            "`fastml-lab export` first.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}.") from None


def build_manifest(project_info: dict, firmware, name: str, version: str, files: list,
                   bitstream) -> dict:
    """The manifest for a project; ``files`` are the emulator file entries."""
    from .. import __version__

    board = project_info.get("board")
    if board is not None and board not in mf.BOARDS:
        raise ConfigError(f"The project targets board {board!r}, which overlays do not support; "
                          f"known: {', '.join(sorted(mf.BOARDS))}.")
    interface = firmware.interface
    timing = dict(firmware.timing)
    clock_mhz = timing.get("clock_mhz")
    if clock_mhz is None and project_info.get("clock_period_ns"):
        clock_mhz = 1000.0 / float(project_info["clock_period_ns"])
    stream = interface == "axi_stream"
    return {
        "schema_version": mf.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "fastml_lab_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "board": board,
        "part": project_info.get("part"),
        "clock_mhz": clock_mhz,
        "source": {k: project_info.get(k) for k in
                   ("name", "backend", "reuse_factor", "strategy", "io_type")},
        "io": {
            "interface": interface,
            "n_inputs": int(firmware.n_inputs),
            "n_outputs": int(firmware.n_outputs),
            "input_shape": [int(firmware.n_inputs)],
            "output_shape": [int(firmware.n_outputs)],
            "word_dtype": "float32" if stream else "float64",
            "packing": mf.STREAM_PACKING if stream else mf.PARALLEL_PACKING,
            "input_type": str(firmware.input_type),
            "output_type": str(firmware.output_type),
            "inputs_scaled": False,
        },
        "scaler": project_info.get("scaler"),
        "class_names": project_info.get("class_names"),
        "feature_names": project_info.get("feature_names"),
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
    project = Path(project)
    info = _read_project(project)
    out = Path(out) if out is not None else default_out(name)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it.")
    firmware = Firmware.load(project)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a package is shared (board users)
        files = []
        for fname in Firmware.FILES:
            _copy(project / fname, tmp / fname)
            files.append({"path": fname, "sha256": mf.sha256_file(tmp / fname)})
        bitstream = None
        bit, hwh = find_build_outputs(project) if include_bitstream else (None, None)
        if bit is not None:
            bitstream = {}
            for role, src in (("bit", bit), ("hwh", hwh)):
                dest = tmp / f"{name}.{role}"
                _copy(src, dest)
                bitstream[role] = {"path": dest.name, "sha256": mf.sha256_file(dest)}
        manifest = build_manifest(info, firmware, name, version, files, bitstream)
        mf.write(tmp, manifest)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("Packaged %s %s into %s (%s).", name, version, out,
             "with bitstream" if bitstream else "software only")
    return out


def _copy(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise NotReadyError(f"{src} is missing; export the project again.")
    shutil.copyfile(src, dest)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rmdir(old)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
