"""yosys: an open technology mapping of a project's RTL to Xilinx 7-series cells (``synth --tool yosys``).

:func:`map_project` reads the project's register-transfer-level code and runs Debian's yosys 0.23
on it in a temporary folder; it returns the cells the design maps to and the resources they add up to.
:meth:`fastml_lab.project.Project.record_mapping` records the result, and the hardware estimate shows
it where no vendor synthesis report exists (:mod:`fastml_lab.estimate.hardware`).

Which RTL (:func:`project_rtl`):

* the record's ``rtl`` entry (``{"language", "top", "sources", "include_dirs"}``, paths relative to
  the project's ``hls_dir``): da4ml's Verilog (``export --backend rtl``), conifer's VHDL
  (``--backend vhdl``);
* else the Verilog an HLS tool wrote into the project (``hls4ml/<name>_prj/solution1/syn/verilog``
  after Vitis/Vivado HLS synthesis; conifer's HLS projects alike), its top module named by the
  csynth report beside it, the recorded synthesis report, or the one module no other instantiates.

The flow (:data:`FLOW`), in one yosys script::

    read_verilog -defer [-I DIR ...] SOURCES...
    hierarchy -top TOP
    proc
    memory_collect
    setattr -set rom_style "logic" t:$mem_v2 r:WR_PORTS=0 %i a:rom_style=distributed %i
    synth_xilinx -family xc7 -abc9 -noiopad -flatten -top TOP
    tee -q -o stat.json stat -json

* ``-defer``: a module is elaborated only when the design instantiates it, so da4ml's
  ``static/lookup_table.v`` (whose ``$readmemh`` wants the design's mem files) costs nothing in a
  design without tables; a design with tables finds its ``memfiles/*.mem``, which are linked into
  the working folder.
* The ``setattr`` line: yosys 0.23 finds no cell for a read-only memory that demands
  ``rom_style = "distributed"`` (da4ml's tables do) and stops; "logic" builds the ROM from LUTs,
  which is what Vivado makes of a distributed ROM. Designs without such memories are unaffected.
* ``-flatten``: da4ml's own Vivado script synthesises with ``-flatten_hierarchy full``, and
  optimisation across module boundaries matters for a network of thousands of small adders
  (measured on a 6-8-4 network: 1,409 LUT flattened, 1,490 kept hierarchical). It also keeps
  ``stat -json`` valid: yosys 0.23 writes a hierarchical design's module tree as text inside the JSON.
* VHDL first goes through ``ghdl -a --std=08`` (in the record's order) and
  ``ghdl synth --std=08 --out=verilog TOP`` (no yosys plugin needed).

Counting (:func:`count_resources`), from the cells of the flattened top module:

* ``LUT``: every LUT the design occupies, as Vivado's "Slice LUTs" (the figure a board's budget
  counts): ``LUT1``..``LUT6``, plus ``INV`` (one LUT1 each in Vivado: yosys' count is an upper
  bound, Vivado often folds an inverter into its neighbour), plus the LUTs used as shift registers
  (``SRL``: ``SRL16E``, ``SRLC32E``) and as distributed RAM (``LUTRAM``: ``RAM64M`` = 4 LUTs, ...),
  which are also given on their own when present; ``LUT_logic`` is the part without them;
* ``FF``: ``FDRE``, ``FDSE``, ``FDCE``, ``FDPE`` (and their ``_1`` inverted-clock forms), plus latches
  ``LDCE``/``LDPE``, as Vivado's "Slice Registers";
* ``CARRY4``; ``MUXF7``, ``MUXF8`` (listed, not LUTs); ``DSP``: ``DSP48E1``; ``BRAM_18K``:
  ``RAMB18E1`` + 2 x ``RAMB36E1`` (FIFO18E1/FIFO36E1 likewise). Clock buffers are listed in
  ``cells`` only.

These are a technology mapping before placement and routing: LUT counts can differ from Vivado's
by tens of percent either way, and no timing comes out of it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from ..estimate.model import SEVEN_SERIES, TECHNOLOGY_MAPPING
from .._deps import program
from .._system import DIE_WITH_PARENT
from ..exceptions import CompileError, ConfigError, DataError
from .ghdl import ghdl_version

log = logging.getLogger("fastml_lab")

__all__ = ["TECHNOLOGY_MAPPING", "FLOW", "MAP_TIMEOUT_S", "map_project", "project_rtl", "count_resources",
           "parse_stat_json", "check_part", "yosys_script"]

#: The mapping command (after the sources are read).
FLOW = "synth_xilinx -family xc7 -abc9 -noiopad -flatten"
#: A 16-64-32-32-5 network maps in about 2.5 min on two cores; a large design may take much longer.
MAP_TIMEOUT_S = 3600
#: How much of a failed tool's log an error shows.
_LOG_TAIL_LINES = 25
_YOSYS_HINT = "Install it with `apt-get install yosys` (Debian 12 has 0.23)."
_GHDL_HINT = "Install it with `apt-get install ghdl` (Debian 12 has 2.0.0, with `ghdl synth`)."

#: Cells of xc7 that are LUTs used as memory, and how many LUTs each takes.
_SRL_LUTS = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
_LUTRAM_LUTS = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4,
                "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}
_LOGIC_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV")
_FF = re.compile(r"^(FD[RSCP]E|LD[CP]E)(_1)?$")
_BRAM18 = {"RAMB18E1": 1, "FIFO18E1": 1, "RAMB36E1": 2, "FIFO36E1": 2}
_DSP = ("DSP48E1",)


# ---------------------------------------------------------------------------------- parts
def check_part(part) -> str:
    """``part`` if it is a Xilinx 7-series part (xc7..., xa7..., xq7...); ConfigError otherwise."""
    if not part or not isinstance(part, str):
        raise ConfigError("The mapping needs an FPGA part and the project names none; give one with "
                          "--part (a Xilinx 7-series part, e.g. xc7z020clg400-1).")
    if not part.strip().lower().startswith(SEVEN_SERIES):
        raise ConfigError(
            f"yosys maps to Xilinx 7-series cells only (parts xc7..., e.g. xc7z020clg400-1 or "
            f"xc7a35tcpg236-1); {part} is not a 7-series part. Map for a 7-series part with --part, or "
            "synthesise for this part with the vendor tools (`fastml-lab synth PRJ --tool vendor`).")
    return part.strip()


# ---------------------------------------------------------------------------------- which RTL
_MODULE = re.compile(r"^\s*module\s+([A-Za-z_][\w$]*)", re.M)
_INSTANCE = re.compile(r"(?:^|;)\s*([A-Za-z_][\w$]*)\s*(?:#\s*\(|\s[A-Za-z_\\][\w$.\[\]]*\s*\()", re.M)
_KEYWORDS = {"module", "input", "output", "inout", "wire", "reg", "assign", "always", "initial", "begin", "end",
             "if", "else", "case", "for", "function", "task", "localparam", "parameter", "integer", "genvar",
             "generate", "endmodule", "return", "signed", "logic", "defparam"}


def _modules(paths) -> tuple:
    """``(defined, instantiated)`` module names of the Verilog files ``paths`` (comments removed; a
    heuristic good for generated code: an instance begins a line or follows a ``;``)."""
    defined, used = set(), set()
    for path in paths:
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", Path(path).read_text(errors="replace"), flags=re.S)
        defined |= set(_MODULE.findall(text))
        used |= {name for name in _INSTANCE.findall(text) if name not in _KEYWORDS}
    return defined, used


def _hls_verilog(project):
    """``(folder, files)`` of the Verilog an HLS tool wrote under the project's ``hls_dir``, or None."""
    hls_dir = project.hls_dir.resolve()
    if not hls_dir.is_dir():
        return None
    for folder in sorted(hls_dir.glob("*/*/syn/verilog")):
        files = sorted(folder.glob("*.v"))
        if files:
            return folder, files
    return None


def _hls_top(folder: Path, files, project) -> str:
    """The top module of HLS Verilog: the csynth report's, the recorded report's, else the one
    module that no other instantiates."""
    report = folder.parent / "report" / "csynth.xml"
    if report.is_file():
        try:
            node = ET.parse(report).getroot().find("UserAssignments/TopModelName")
            if node is not None and node.text and node.text.strip():
                return node.text.strip()
        except (ET.ParseError, OSError):
            pass
    if project.synthesis and project.synthesis.get("top"):
        return str(project.synthesis["top"])
    defined, used = _modules(files)
    roots = sorted(defined - used)
    if len(roots) == 1:
        return roots[0]
    raise DataError(f"The HLS Verilog in {folder} has {len(roots)} candidate top modules "
                    f"({', '.join(roots) or 'none'}) and no csynth.xml names one; record the synthesis "
                    "report (`fastml-lab synth PRJ --report csynth.xml`) or an 'rtl' entry.")


def project_rtl(project) -> dict:
    """What the mapping reads: ``{"language", "top", "sources" (absolute paths, in order),
    "include_dirs", "origin", "root"}``; DataError saying how to get RTL when the project has none."""
    rtl = project.rtl
    if rtl is not None:
        root = project.hls_dir.resolve()
        sources = [root / rel for rel in rtl["sources"]]
        missing = [str(rel) for rel, path in zip(rtl["sources"], sources) if not path.is_file()]
        if missing:
            raise DataError(f"The project {project.path} records RTL that is not there: "
                            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} missing under {root}. "
                            "Export the project again.")
        if not sources:
            raise DataError(f"The project {project.path} records an 'rtl' entry without sources. "
                            "Export the project again.")
        includes = [root / rel for rel in rtl.get("include_dirs", ())]
        if rtl["language"] == "verilog":
            sources = sources + _unlisted_helpers(sources, includes)
        return {"language": rtl["language"], "top": rtl["top"], "sources": sources, "include_dirs": includes,
                "library": rtl.get("library", "work"), "origin": "the project's RTL", "root": root}
    found = _hls_verilog(project)
    if found is None:
        raise DataError(
            f"The project {project.path} has no RTL yet: its record has no 'rtl' entry and no HLS tool "
            f"has written Verilog under {project.hls_dir}. Export the model with --backend rtl (a "
            "quantized network, da4ml's Verilog) or --backend vhdl (a BDT, conifer's VHDL), or run HLS "
            "synthesis first (`fastml-lab synth PRJ --tool vendor`, with Vitis/Vivado HLS).")
    folder, files = found
    return {"language": "verilog", "top": _hls_top(folder, files, project), "sources": files,
            "include_dirs": [folder], "origin": f"the HLS tool's Verilog ({folder.relative_to(project.path)})",
            "root": project.hls_dir.resolve()}


def _unlisted_helpers(sources, includes) -> list:
    """da4ml's ``static/*.v`` helpers the design instantiates but the record does not list (read
    with ``-defer``, a helper the design does not use costs nothing)."""
    defined, used = _modules(sources)
    wanted = used - defined
    if not wanted:
        return []
    listed = {p.resolve() for p in sources}
    folders = {p.parent for p in sources} | {p.parent / "static" for p in sources} | set(includes)
    extra = sorted({folder / f"{name}.v" for folder in folders for name in wanted
                    if (folder / f"{name}.v").is_file() and (folder / f"{name}.v").resolve() not in listed})
    if extra:
        log.info("Also reading %s, which the design instantiates and the record does not list.",
                 ", ".join(p.name for p in extra))
    return extra


# ---------------------------------------------------------------------------------- running tools
def _run(cmd, cwd: Path, deadline: float, what: str, log_path: Path, stdout_path: Path | None = None) -> None:
    """Run ``cmd`` in its own process group until ``deadline`` (time.monotonic), its output (or only
    its stderr, when ``stdout_path`` takes the output) appended to ``log_path``; CompileError with
    the log's last lines when it fails or runs out of time (the whole group is stopped then)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CompileError(f"{what} did not start: the mapping's time limit ran out.")
    with open(log_path, "ab") as err, open(stdout_path or os.devnull, "wb") as out:
        proc = subprocess.Popen([*DIE_WITH_PARENT, *cmd], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out if stdout_path else err,
                                stderr=err, start_new_session=True)
        try:
            code = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise CompileError(f"{what} did not finish within the mapping's time limit; the last lines of "
                               f"its log:\n{_tail(log_path)}") from None
        except BaseException:  # KeyboardInterrupt: leave no yosys or abc running
            _stop(proc)
            raise
    if code != 0:
        raise CompileError(f"{what} failed (exit status {code}); the last lines of its log:\n{_tail(log_path)}")


def _stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The error lines of a tool's log (where its stderr may have landed mid-line), then its last lines."""
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log)"
    last = text[-lines:]
    errors = [line.strip() for line in text[:-lines] if "ERROR" in line][:5]
    return "\n".join(([*errors, "..."] if errors else []) + last) or "(empty log)"


def yosys_script(sources, top: str, include_dirs=(), stat_file: str = "stat.json") -> str:
    """The yosys script of the flow (see the module docstring)."""
    incs = "".join(f" -I {_quote(d)}" for d in include_dirs)
    return "\n".join([
        f"read_verilog -defer{incs} " + " ".join(_quote(s) for s in sources),
        f"hierarchy -top {top}",
        "proc",
        "memory_collect",
        'setattr -set rom_style "logic" t:$mem_v2 r:WR_PORTS=0 %i a:rom_style=distributed %i',
        f"{FLOW} -top {top}",
        f"tee -q -o {stat_file} stat -json",
    ]) + "\n"


def _quote(path) -> str:
    text = str(path)
    if any(c in text for c in ' "\t\n;'):
        if '"' in text or "\n" in text:
            raise DataError(f"yosys cannot read a path with quotes or line breaks: {text!r}.")
        return f'"{text}"'
    return text


def _link_data_files(sources, work: Path) -> None:
    """Memory images (``*.mem``, ``*.dat``) beside the sources or in a ``memfiles`` folder next to
    them, linked into ``work`` where ``$readmemh`` with a bare file name looks first."""
    folders = set()
    for src in sources:
        for folder in (src.parent, src.parent / "memfiles", src.parent.parent / "memfiles"):
            if folder.is_dir():
                folders.add(folder)
    for folder in sorted(folders):
        for data in [*folder.glob("*.mem"), *folder.glob("*.dat")]:
            target = work / data.name
            if not target.exists():
                try:
                    target.symlink_to(data.resolve())
                except OSError:
                    shutil.copyfile(data, target)


def _ghdl_to_verilog(rtl: dict, work: Path, deadline: float) -> tuple:
    """Analyse the VHDL (in order) and let ``ghdl synth`` write it as Verilog; ``(file, top, version)``."""
    ghdl = program("ghdl", "Mapping VHDL", _GHDL_HINT)
    lib_dir = work / "ghdl"
    lib_dir.mkdir()
    library = rtl.get("library") or "work"
    common = ["--std=08", f"--workdir={lib_dir}", f"--work={library}"]
    log_path = work / "ghdl.log"
    log.info("Analysing %d VHDL files with GHDL...", len(rtl["sources"]))
    _run([ghdl, "-a", *common, *map(str, rtl["sources"])], work, deadline, "GHDL's analysis of the VHDL", log_path)
    verilog = work / f"{rtl['top']}_ghdl.v"
    _run([ghdl, "synth", *common, "--out=verilog", rtl["top"]], work, deadline,
         f"ghdl synth of {rtl['top']}", log_path, stdout_path=verilog)
    modules = _MODULE.findall(verilog.read_text(errors="replace"))
    top = next((m for m in modules if m == rtl["top"]), None) or next(
        (m for m in modules if m.lower() == rtl["top"].lower()), None)
    if top is None:
        raise CompileError(f"ghdl synth wrote no module {rtl['top']} (it wrote {', '.join(modules[-5:]) or 'none'}); "
                           f"the last lines of its log:\n{_tail(log_path)}")
    return verilog, top, ghdl_version(ghdl)


# ---------------------------------------------------------------------------------- the mapping
def map_project(project, part=None, timeout_s: float = MAP_TIMEOUT_S) -> dict:
    """Map the RTL of ``project`` (a Project or folder) to Xilinx 7-series cells with yosys.

    ``part`` replaces the project's part for the mapping (the result names the part mapped); only
    7-series parts map (ConfigError otherwise). ToolchainNotFoundError when yosys (or, for VHDL,
    GHDL) is missing; DataError when the project has no RTL; CompileError, with the log's last
    lines, when a tool fails on the design or ``timeout_s`` runs out. Records nothing: pass the
    result to :meth:`~fastml_lab.project.Project.record_mapping`.

    Returns ``{"source", "tool_version", "part", "top", "language", "rtl", "flow", "cells",
    "resources", "seconds"}`` (see the module docstring for how the resources are counted).
    """
    from ..project import open_project

    project = open_project(project)
    part = check_part(part if part is not None else project.part)
    rtl = project_rtl(project)
    yosys = program("yosys", "The technology mapping", _YOSYS_HINT)
    start = time.monotonic()
    deadline = start + float(timeout_s)
    log.info("Mapping %s (%s, top %s) to Xilinx 7-series cells with yosys for %s...",
             project.name, rtl["origin"], rtl["top"], part)
    with tempfile.TemporaryDirectory(prefix="fastml-yosys-") as tmp:
        work = Path(tmp)
        sources, top, includes, extra = rtl["sources"], rtl["top"], rtl["include_dirs"], {}
        if rtl["language"] == "vhdl":
            verilog, top, extra["ghdl_version"] = _ghdl_to_verilog(rtl, work, deadline)
            sources, includes = [verilog], []
        _link_data_files(sources, work)
        (work / "map.ys").write_text(yosys_script(sources, top, includes))
        _run([yosys, "-Q", "map.ys"], work, deadline,
             f"yosys ({FLOW}) on {top}", work / "yosys.log")
        stat = parse_stat_json(work / "stat.json", top)
    seconds = round(time.monotonic() - start, 2)
    rel = []
    for src in rtl["sources"]:
        try:
            rel.append(str(Path(src).relative_to(rtl["root"])))
        except ValueError:
            rel.append(str(src))
    result = {
        "source": TECHNOLOGY_MAPPING,
        "tool_version": stat["creator"],
        **extra,
        "part": part,
        "top": rtl["top"],
        "language": rtl["language"],
        "rtl": {"origin": rtl["origin"], "sources": rel},
        "flow": FLOW,
        "cells": stat["cells"],
        "resources": count_resources(stat["cells"]),
        "seconds": seconds,
    }
    res = result["resources"]
    log.debug("Mapped %s in %.1f s: LUT %d, FF %d, CARRY4 %d, DSP %d, BRAM_18K %d (%s).", top, seconds,
             res["LUT"], res["FF"], res["CARRY4"], res["DSP"], res["BRAM_18K"], TECHNOLOGY_MAPPING)
    return result


def parse_stat_json(path, top: str | None = None) -> dict:
    """``{"creator", "cells": {cell type: count}}`` from yosys' ``stat -json`` output at ``path``:
    the whole design's counts (the top module's where yosys gives no design total)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CompileError(f"yosys wrote no statistics ({path}: {exc}).") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"yosys' statistics in {path} are not valid JSON ({exc}); a hierarchical design makes "
                        "yosys 0.23 write text into them: map with -flatten.") from None
    design = data.get("design")
    if not isinstance(design, dict):
        modules = data.get("modules") or {}
        candidates = [v for k, v in modules.items() if top and k.lstrip("\\") == top] or list(modules.values())
        if len(candidates) != 1:
            raise DataError(f"yosys' statistics in {path} give no design total and {len(candidates)} modules.")
        design = candidates[0]
    cells = design.get("num_cells_by_type")
    if not isinstance(cells, dict):
        raise DataError(f"yosys' statistics in {path} list no cells by type.")
    return {"creator": str(data.get("creator", "yosys")).strip(),
            "cells": {str(k): int(v) for k, v in sorted(cells.items())}}


def count_resources(cells: dict) -> dict:
    """LUT, FF, CARRY4, MUXF7/F8, DSP and BRAM_18K of a mapped design's cells (the rules are in
    the module docstring); ``LUTRAM`` and ``SRL`` (in LUTs) only when the design has them.
    Cells yosys left generic (``$...``) mean the mapping is incomplete: DataError."""
    generic = sorted(k for k in cells if k.startswith("$"))
    if generic:
        raise DataError(f"yosys left generic cells in the mapped design ({', '.join(generic[:5])}): the "
                        "mapping is incomplete, its counts would be wrong.")
    logic = sum(cells.get(name, 0) for name in _LOGIC_LUTS)
    srl = sum(n * cells.get(name, 0) for name, n in _SRL_LUTS.items())
    lutram = sum(n * cells.get(name, 0) for name, n in _LUTRAM_LUTS.items())
    resources = {
        "LUT": logic + srl + lutram,
        "LUT_logic": logic,
        "FF": sum(n for name, n in cells.items() if _FF.match(name)),
        "CARRY4": cells.get("CARRY4", 0),
        "MUXF7": cells.get("MUXF7", 0),
        "MUXF8": cells.get("MUXF8", 0),
        "DSP": sum(cells.get(name, 0) for name in _DSP),
        "BRAM_18K": sum(n * cells.get(name, 0) for name, n in _BRAM18.items()),
    }
    if srl:
        resources["SRL"] = srl
    if lutram:
        resources["LUTRAM"] = lutram
    return resources
