"""Make an overlay package from an exported project, atomically.

The project's record (:mod:`fastml_lab.project`) gives the family, board, part, clock, scaler, class
names and the timing (an estimate, or a recorded synthesis report's figures; a BDT project may have
none); the board table (:mod:`fastml_lab.boards`) gives a network's stream word type; a BDT for a
board gets conifer's Zynq accelerator interface, checked against the C++ conifer wrote
(:func:`conifer_accelerator_io`). The package is assembled in a hidden
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
from ..families import get_family
from ..project import RECORDED_RESOURCES, SYNTHESIS_REPORT, Project, open_project
from . import manifest as mf

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

#: conifer's Zynq accelerator (``xilinxhls`` backend with an ``AcceleratorConfig``, conifer 1.11):
#: the top function its ``myproject.cpp`` template writes, and the interface pragmas it inserts.
CONIFER_TOP = "myproject_accelerator"
CONIFER_IP_NAME = "conifer_myproject"
_CONIFER_SIGNATURE = re.compile(
    r"void\s+myproject_accelerator\s*\(\s*int\s+N\s*,\s*int\s*&\s*n_f\s*,\s*int\s*&\s*n_c\s*,\s*"
    r"accelerator_input_t\s*\*\s*x\s*,\s*accelerator_output_t\s*\*\s*score\s*\)")
_CONIFER_PRAGMAS = (
    "mode=m_axi port=x offset=slave", "mode=m_axi port=score offset=slave",
    *(f"mode=s_axilite port={p} bundle=control" for p in ("x", "score", "N", "n_f", "n_c", "return")),
)
#: The accelerator's AXI-lite register map as Vitis HLS generates it for that top with 32-bit
#: m_axi addresses (``config_interface -m_axi_addr64=false``, which conifer's ZynqBuilder sets):
#: the generated ``x<top>_hw.h`` reads CTRL 0x00, N 0x10, n_f 0x18 (its ap_vld 0x1c), n_c 0x28
#: (0x2c), x 0x38, score 0x40. A ``*_hw.h`` from the project's own HLS run replaces these.
CONIFER_REGISTERS = {"CTRL": 0x00, "N": 0x10, "n_f": 0x18, "n_c": 0x28, "x": 0x38, "score": 0x40}
#: ap_ctrl_hs bits of CTRL.
CONIFER_CONTROL_BITS = {"ap_start": 0, "ap_done": 1, "ap_idle": 2, "ap_ready": 3}
#: conifer's accelerator word types (``InterfaceType``) that the overlay carries.
_CONIFER_WORDS = {"float": "float32"}
_HW_DEFINE = re.compile(r"#define\s+\w*?CONTROL_(ADDR|BITS)_(\w+?)_DATA\s+(0x[0-9a-fA-F]+|\d+)")


def default_out(name: str) -> Path:
    """``./bitstreams/<name>`` in the current folder: where ``fastml-lab overlays`` looks."""
    return Path.cwd() / "bitstreams" / name


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"Package name {name!r} must be 1-64 letters, digits, '_', '-' or '.', "
                          "starting with a letter or digit.")
    return name


def find_build_outputs(project) -> tuple:
    """The Vivado ``.bit`` and ``.hwh`` of a project's hls4ml (or conifer) folder, or (None, None)."""
    project = open_project(project)
    hls_dir = project.hls_dir
    bit_globs, hwh_globs = get_family(project.family).bitstream_globs
    bits = [p for g in bit_globs for p in sorted(hls_dir.glob(g))]
    hwhs = [p for g in hwh_globs for p in sorted(hls_dir.glob(g))]
    if bits and hwhs:
        return bits[0], hwhs[0]
    if bits or hwhs:
        log.warning("Found %s but not %s in %s; packaging without a bitstream.",
                    "a .bit" if bits else "a .hwh", "its .hwh" if bits else "its .bit", hls_dir)
    return None, None


def _read_text(path: Path, project) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise NotReadyError(f"{path} is missing; export the project {project.path} again.") from None


def _generated_registers(hls_dir: Path):
    """``(registers, address_bits, path)`` from a ``x<top>_hw.h`` that Vitis HLS generated in
    ``hls_dir``, or None when the HLS has not been run there."""
    headers = sorted(hls_dir.rglob(f"x{CONIFER_TOP}_hw.h"))
    if not headers:
        return None
    path = headers[0]
    addr, bits = {}, {}
    for kind, name, value in _HW_DEFINE.findall(path.read_text(encoding="utf-8", errors="replace")):
        (addr if kind == "ADDR" else bits)[name.lower()] = int(value, 0)
    regs = {"CTRL": 0}
    for reg in mf.MEMORY_MAPPED_REGISTERS[1:]:
        if reg.lower() not in addr:
            raise ConfigError(f"{path} gives no offset for {reg}; it is not the register map of conifer's "
                              f"{CONIFER_TOP}. Run conifer's HLS build again.")
        regs[reg] = addr[reg.lower()]
    return regs, bits.get("x", 32), path


def conifer_accelerator_io(project) -> dict:
    """The manifest's ``io`` entries for a BDT exported for a board: conifer's Zynq accelerator.

    The C++ conifer wrote is checked first (the top function's arguments, their interface pragmas,
    32-bit m_axi addresses, the word type), so the register offsets written describe its design:
    those of the project's own HLS run when its ``x<top>_hw.h`` exists, else :data:`CONIFER_REGISTERS`.
    """
    hls_dir = project.hls_dir
    cpp = _read_text(hls_dir / "firmware" / "myproject.cpp", project)
    missing = [p for p in _CONIFER_PRAGMAS if p not in cpp]
    if _CONIFER_SIGNATURE.search(cpp) is None or missing:
        raise ConfigError(
            f"{hls_dir / 'firmware' / 'myproject.cpp'} is not conifer's Zynq accelerator "
            f"({CONIFER_TOP}(int N, int& n_f, int& n_c, x*, score*) with AXI-lite control and m_axi "
            f"buffers{'; missing #pragma HLS interface ' + ', '.join(missing) if missing else ''}). "
            "Export the BDT again with --backend for a board.")
    params = _read_text(hls_dir / "firmware" / "parameters.h", project)
    words = {}
    for role in ("input", "output"):
        match = re.search(rf"typedef\s+(\w+)\s+accelerator_{role}_t\s*;", params)
        words[role] = _CONIFER_WORDS.get(match.group(1)) if match else None
        if words[role] is None:
            raise ConfigError(f"The accelerator's {role} word in {hls_dir / 'firmware' / 'parameters.h'} is "
                              f"{match.group(1) if match else 'not declared'}; overlays carry conifer's "
                              f"InterfaceType {', '.join(map(repr, _CONIFER_WORDS))} only.")
    if words["input"] != words["output"]:
        raise ConfigError(f"The accelerator reads {words['input']} and writes {words['output']} words; "
                          "overlays carry one word type.")
    tcl = _read_text(hls_dir / "hls_parameters.tcl", project)
    addr64 = re.search(r"set\s+m_axi_addr64\s+(\w+)", tcl)
    address_bits = 64 if addr64 and addr64.group(1).lower() == "true" else 32
    registers = dict(CONIFER_REGISTERS)
    origin = "conifer 1.11's Zynq top as Vitis HLS maps it (32-bit m_axi addresses)"
    generated = _generated_registers(hls_dir)
    if generated is not None:
        registers, address_bits, path = generated
        origin = f"the project's HLS run ({path.relative_to(project.path)})"
    elif address_bits != 32:
        raise ConfigError(f"{hls_dir / 'hls_parameters.tcl'} asks for 64-bit m_axi addresses, whose register "
                          "offsets only the HLS run's x*_hw.h gives; run the HLS build and package again.")
    version = re.search(r"set\s+version\s+([\w.]+)", tcl)
    word = words["input"]
    return {
        "interface": mf.MEMORY_MAPPED,
        "word_dtype": word,
        "packing": mf.memory_packing(word),
        "ip": {"vlnv": f"cern.ch:conifer:{CONIFER_TOP}:{version.group(1) if version else '1.11'}",
               "name": CONIFER_IP_NAME, "top": CONIFER_TOP},
        "address_bits": address_bits,
        "registers": registers,
        "registers_from": origin,
        "control_bits": dict(CONIFER_CONTROL_BITS),
    }


def _io(project: Project, firmware, board) -> dict:
    """The interface entries of the manifest's ``io``: the family's board interface, or none."""
    if board is None:
        if firmware.interface != mf.PARALLEL:
            raise ConfigError(f"The project {project.path} streams its data ({firmware.interface}) but names "
                              f"no board; export it for one of {', '.join(BOARDS)}.")
        return {"interface": mf.PARALLEL, "word_dtype": mf.PARALLEL_WORD, "packing": mf.PARALLEL_PACKING}
    if get_family(project.family).board_interface == mf.MEMORY_MAPPED:
        return conifer_accelerator_io(project)
    if firmware.interface != mf.STREAM:
        raise ConfigError(f"The project {project.path} targets {board} but its firmware has the "
                          f"{firmware.interface!r} interface; export it again for the board.")
    return {"interface": mf.STREAM, "word_dtype": BOARDS[board].word_dtype,
            "packing": mf.stream_packing(BOARDS[board])}


def build_manifest(project: Project, firmware, name: str, version: str, files: list,
                   bitstream) -> dict:
    """The manifest for a project; ``files`` are the emulator file entries.

    The timing is the project's (an estimate, or a recorded synthesis report's; ``{}`` when the
    project has none); a network's stream word type is the board's, a BDT's is its accelerator's.
    """
    from .. import __version__

    info = project.meta
    board = info.get("board")
    if board is not None and project.rtl is not None:
        # An RTL core (export --backend rtl|vhdl) targets the board's part and clock, but no board
        # design (DMA, AXI) wraps it: its package runs the emulator, in software only.
        log.info("%s is an RTL core without a board design around it: its package is software only.", project.path)
        board = None
    if board is not None and board not in BOARDS:
        raise ConfigError(f"The project {project.path} targets board {board!r}, which overlays do not "
                          f"support; known boards: {', '.join(BOARDS)}.")
    family = get_family(project.family)
    timing = project.timing
    clock_mhz = timing.get("clock_mhz") or project.clock_mhz
    io = _io(project, firmware, board)
    return {
        "schema_version": mf.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "fastml_lab_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "family": family.name,
        "board": board,
        "part": info.get("part"),
        "clock_mhz": clock_mhz,
        "source": {k: info.get(k) for k in family.source_keys},
        "io": {
            "interface": io.pop("interface"),
            "n_inputs": int(firmware.n_inputs),
            "n_outputs": int(firmware.n_outputs),
            "input_shape": [int(d) for d in firmware.input_shape],
            "output_shape": [int(firmware.n_outputs)],
            "word_dtype": io.pop("word_dtype"),
            "packing": io.pop("packing"),
            "input_type": str(firmware.input_type),
            "output_type": str(firmware.output_type),
            "inputs_scaled": False,
            **io,
        },
        "scaler": info.get("scaler"),
        "class_names": info.get("class_names"),
        "feature_names": info.get("feature_names"),
        "timing": timing,
        "resources": recorded_resources(project),
        "firmware": {"digest": firmware.digest(), "files": files},
        "bitstream": bitstream,
    }


def recorded_resources(project) -> dict | None:
    """The best recorded figures of the project's hardware, with what they are: a vendor synthesis
    report's, else a technology mapping's (yosys); None when only an estimate exists."""
    if project.synthesis:
        chosen, kind = project.synthesis, SYNTHESIS_REPORT
    elif project.mapping:
        chosen = project.mapping
        kind = chosen.get("source", "technology mapping")
    else:
        return None
    res = chosen.get("resources") or {}
    figures = {key: res[key] for key in (*RECORDED_RESOURCES, "CARRY4") if res.get(key) is not None}
    return {**figures, "kind": kind, "part": chosen.get("part")}


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
                bitstream[role] = {"path": dest.name, "sha256": mf.sha256_file(dest),
                                   "size": dest.stat().st_size}
        manifest = build_manifest(project, firmware, name, version, files, bitstream)
        mf.write(tmp, manifest)
    log.info("Packaged %s %s into %s (%s).", name, version, out,
             "with bitstream" if bitstream else "software only")
    return out


def _copy(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise NotReadyError(f"{src} is missing; export the project again.")
    shutil.copyfile(src, dest)
