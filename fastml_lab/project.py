"""The project record: the one place that reads and writes an exported project folder's facts.

A project folder holds::

    PRJ/project.json     the record: what was exported and how (family, backend, board, part, clock,
                         reuse, strategy, plan, scaler, class names), how its C++ compiles (``csim``),
                         the firmware's digest, the timing and, once recorded, the synthesis report
    PRJ/plan.json        the precision plan as given
    PRJ/firmware.json    the emulator's description of the firmware (no timing: timing is not firmware)
    PRJ/firmware.npz     weights and tables as stored integers
    PRJ/hls4ml/          the hls4ml project (C++ sources, weights, build scripts)

The timing is ``{"latency_cycles", "ii_cycles", "clock_mhz", "source"}``: the export writes an
estimate (``source`` "estimate"); :meth:`Project.record_synthesis` replaces it with a synthesis
report's figures (``source`` "synthesis report"). Packaging copies the project's timing into the
package's manifest. :meth:`Project.record_mapping` records a technology mapping of the project's
RTL (``mapping``: yosys' cells and resources, no timing) and leaves the timing as it is.

Numpy-free (the firmware and the plan are loaded only when asked for): this module runs on the board.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ._io import read_json, recover_replaced, write_json_atomic
from .boards import board_for_part, get_board, same_part
from .exceptions import ConfigError, DataError
from .families import LEGACY_FAMILY, get_family

log = logging.getLogger("fastml_lab")

PROJECT_FILE = "project.json"
HLS_DIR = "hls4ml"
#: Where a project's timing comes from.
ESTIMATE = "estimate"
SYNTHESIS_REPORT = "synthesis report"
#: The timing of an RTL project: its pipeline's own depth, exact (II 1).
RTL_PIPELINE = "RTL pipeline"
TIMING_KEYS = ("latency_cycles", "ii_cycles", "clock_mhz", "source")
#: The resources a synthesis report and a technology mapping both record (``resources``), as they name them.
RECORDED_RESOURCES = ("LUT", "FF", "DSP", "BRAM_18K")


@dataclass
class Project:
    """An exported project folder; ``meta`` is its ``project.json``."""

    path: Path
    meta: dict

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def open(cls, path) -> "Project":
        """Read ``path/project.json``; DataError naming the folder if it is missing or broken."""
        path = Path(path)
        meta_path = path / PROJECT_FILE
        recover_replaced(path)
        if not meta_path.is_file():
            raise DataError(
                f"{path} is not an exported project: {PROJECT_FILE} is missing. "
                "Create one with `fastml-lab export MODEL.keras --out PRJ`."
            )
        try:
            meta = read_json(meta_path, "the project record")
        except DataError as exc:
            raise DataError(f"{path} is not a readable project: {exc} Export the project again.") from None
        check_record(meta, meta_path)
        return cls(path, meta)

    @classmethod
    def write_new(cls, path, meta: dict) -> "Project":
        """Write ``meta`` as the record of the folder ``path`` (atomically) and return the project."""
        project = cls(Path(path), dict(meta))
        project.save()
        return project

    def save(self) -> None:
        """Write ``meta`` to ``project.json`` atomically: a reader sees the old record or the new."""
        write_json_atomic(self.path / PROJECT_FILE, self.meta)

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return self.meta.get("name") or self.path.name

    @property
    def backend(self) -> str:
        return self.meta["backend"]

    @property
    def family(self) -> str:
        """The name of the model family that exported the project (:mod:`fastml_lab.families`)."""
        return self.meta.get("family", LEGACY_FAMILY)

    @property
    def csim_recipe(self) -> dict:
        """How the project's C++ compiles (:func:`fastml_lab.hls.csim.csim_recipe`): the record's
        ``csim`` entry, or for a record written before exports recorded it, its family's recipe."""
        recipe = self.meta.get("csim")
        if recipe is None:
            recipe = get_family(self.family).csim_recipe(self.hls_dir.resolve())
        return recipe

    @property
    def simulator(self) -> str:
        """Which simulator runs the project's ``csim``: ``"g++"``, ``"verilator"`` or ``"ghdl"``."""
        return self.csim_recipe.get("simulator", GXX)

    @property
    def rtl(self):
        """The project's register-transfer-level code (``{"language", "top", "sources", ...}``,
        paths relative to ``hls_dir``), or None: what a logic synthesis maps."""
        return self.meta.get("rtl")

    @property
    def mapping(self):
        """The recorded technology mapping (yosys), or None."""
        return self.meta.get("mapping")

    @property
    def part(self):
        return self.meta.get("part")

    @property
    def board(self):
        """The :class:`~fastml_lab.boards.Board` the project was exported for, or None (a bare part)."""
        name = self.meta.get("board")
        return None if name is None else get_board(name)

    @property
    def budget_board(self):
        """The board whose resources the project is measured against: its own, else the one with
        its part, else None."""
        return self.board or (board_for_part(self.part) if self.part else None)

    @property
    def clock_mhz(self):
        period = self.meta.get("clock_period_ns")
        return round(1000.0 / float(period), 3) if period else None

    @property
    def reuse_factor(self) -> int:
        return int(self.meta.get("reuse_factor", 1))

    @property
    def hls_dir(self) -> Path:
        return self.path / self.meta.get("hls_dir", HLS_DIR)

    @property
    def timing(self) -> dict:
        """Latency, II, clock and their source ("estimate" or "synthesis report"); {} if none."""
        return dict(self.meta.get("timing") or {})

    @property
    def synthesis(self):
        """The recorded synthesis report, or None."""
        return self.meta.get("synthesis")

    def firmware(self):
        """The emulator :class:`~fastml_lab.emulator.Firmware` (numpy)."""
        from .emulator import Firmware

        return Firmware.load(self.path)

    # ------------------------------------------------------------------ synthesis
    def record_synthesis(self, report: dict, origin=None) -> dict:
        """Record a parsed synthesis report (:func:`fastml_lab.hls.synth.parse_csynth_report`).

        The report's latency, II and clock replace the timing estimate; the record is rewritten
        atomically. A report for another FPGA part than the project's is refused (ConfigError):
        its figures would travel into the package of this project's board. ``origin`` (the report's
        file) is named in messages. Returns the new timing.
        """
        where = f" ({origin})" if origin else ""
        missing = [key for key in ("latency_cycles", "ii_cycles") if report.get(key) is None]
        if missing:
            raise DataError(f"The synthesis report{where} gives no {' or '.join(missing)}; "
                            "nothing was recorded.")
        part = report.get("part")
        if part and self.part and not same_part(part, self.part):
            raise ConfigError(
                f"The synthesis report{where} is for part {part}, but the project {self.path} targets "
                f"{self.part}; record a report made from this project's C++ for its own part."
            )
        if not part:
            log.warning("The synthesis report%s names no part; recorded for %s without a check.",
                        where, self.part)
        clock_ns = report.get("target_clock_ns")
        period = self.meta.get("clock_period_ns")
        if clock_ns and period and abs(float(clock_ns) - float(period)) > 1e-6:
            log.warning("The synthesis report%s targets a %g ns clock; the project was exported for %g ns. "
                        "Its timing is recorded at the report's clock.", where, clock_ns, period)
        timing = {
            "latency_cycles": int(report["latency_cycles"]),
            "ii_cycles": int(report["ii_cycles"]),
            "clock_mhz": round(1000.0 / clock_ns, 3) if clock_ns else self.timing.get("clock_mhz", self.clock_mhz),
            "source": SYNTHESIS_REPORT,
        }
        meta = dict(self.meta, synthesis=dict(report), timing=timing)
        write_json_atomic(self.path / PROJECT_FILE, meta)
        self.meta = meta
        return dict(timing)

    def record_mapping(self, mapping: dict) -> dict:
        """Record a technology mapping of the project's RTL (:func:`fastml_lab.rtl.yosys.map_project`)
        as ``meta["mapping"]``, replacing an earlier one; the record is rewritten atomically.

        The timing stays as it is: a mapping has none. A mapping for another part than the
        project's is recorded (``--part`` maps for another 7-series part on purpose) and says which
        part it was. A dict without the mapping's resources is refused (DataError). Returns it.
        """
        resources = mapping.get("resources") if isinstance(mapping, dict) else None
        if not isinstance(resources, dict) or any(not isinstance(resources.get(key), int)
                                                  for key in RECORDED_RESOURCES):
            raise DataError("A technology mapping must carry its resources (LUT, FF, DSP, BRAM_18K as "
                            "integers), as fastml_lab.rtl.yosys.map_project returns them; nothing was recorded.")
        part = mapping.get("part")
        if part and self.part and not same_part(part, self.part):
            log.info("The mapping is for part %s; the project %s targets %s. Recorded with its part.",
                     part, self.path, self.part)
        meta = dict(self.meta, mapping=dict(mapping))
        write_json_atomic(self.path / PROJECT_FILE, meta)
        self.meta = meta
        return dict(mapping)

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r}, backend={self.backend!r})"


#: The simulators a record's ``csim`` entry may name: g++ on C++ (HLS projects, the default),
#: Verilator (Verilog, compiled to C++ and then by g++), GHDL (VHDL).
GXX, VERILATOR, GHDL = "g++", "verilator", "ghdl"
SIMULATORS = (GXX, VERILATOR, GHDL)
#: The record's fields that every reader relies on (for the simulators that compile C++), with what each must hold.
_RECIPE_FIELDS = {"stem": str, "flags": list, "include_dirs": list, "path_defines": dict, "sources": list,
                  "batch_source": str, "key_files": list}


def check_record(meta, origin) -> None:
    """Refuse a project record that the toolchain could not follow, naming ``origin`` and the field."""
    def refuse(why):
        raise DataError(f"{origin.parent} is not a readable project: {origin} {why}. Export the project again.")

    if not isinstance(meta, dict) or "backend" not in meta:
        refuse("holds no project record (a JSON object with its backend)")
    try:
        get_family(meta.get("family", LEGACY_FAMILY))
    except ConfigError as exc:
        refuse(f"names {exc}")
    recipe = meta.get("csim")
    if recipe is not None:
        if not isinstance(recipe, dict):
            refuse("has a 'csim' entry that is not an object")
        simulator = recipe.get("simulator", GXX)
        if simulator not in SIMULATORS:
            refuse(f"names the simulator {simulator!r} in 'csim'; known: {', '.join(SIMULATORS)}")
        fields = _RECIPE_FIELDS if simulator in (GXX, VERILATOR) else {"sources": list}
        for key, kind in fields.items():
            if not isinstance(recipe.get(key), kind):
                refuse(f"has a 'csim.{key}' that is not a {kind.__name__}")
        verilate = recipe.get("verilate") or {}
        paths = [*recipe.get("include_dirs", ()), *recipe["sources"], *recipe.get("key_files", ()),
                 *recipe.get("path_defines", {}).values(), *verilate.get("sources", ()),
                 *verilate.get("include_dirs", ())]
        _check_inside(paths, "csim", refuse)
    rtl = meta.get("rtl")
    if rtl is not None:
        if not isinstance(rtl, dict) or rtl.get("language") not in ("verilog", "vhdl") \
                or not isinstance(rtl.get("top"), str) or not isinstance(rtl.get("sources"), list):
            refuse("has an 'rtl' entry without its language (verilog or vhdl), top module and sources")
        _check_inside([*rtl["sources"], *rtl.get("include_dirs", ())], "rtl", refuse)


def _check_inside(paths, entry: str, refuse) -> None:
    """``refuse`` the first of ``paths`` (the record's ``entry``) that is not a relative path inside the project."""
    for rel in paths:
        if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
            refuse(f"names {rel!r} in '{entry}': paths must be relative and inside the project")


def open_project(project) -> Project:
    """``project`` as a :class:`Project`: itself, or the folder it names opened."""
    return project if isinstance(project, Project) else Project.open(project)
