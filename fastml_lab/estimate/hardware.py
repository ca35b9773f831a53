"""One hardware estimate for a model and a target: :func:`estimate` returns an :class:`Estimate`.

The source is an exported project (object or folder), an emulator Firmware, or a model (object or
file) of a registered family (:mod:`fastml_lab.families`): a family whose firmware the op registry
prices is described by the family (a Keras/HGQ2 model: a silent hls4ml export, no g++) and priced
op by op; a family with a cost model of its own (BDTs: conifer's) estimates itself.
The target is a board of the board table (its part, clock and budget; the AXI-stream wrapper when
the board streams) or a bare FPGA part (no budget, so no verdict).

Every figure carries its kind: ``"C-synthesis estimate"`` (the model, :mod:`.model`),
``"after implementation"`` (C synthesis times the place-and-route factors below, only where a
published implementation of the same flow exists: the Zynq-7000 board flow) and
``"synthesis report"`` (a report recorded with ``fastml-lab synth PRJ --report``: it replaces the
estimate's totals wherever they are shown) and ``"yosys technology mapping, before place and route"``
(a mapping of the project's RTL recorded with ``fastml-lab synth PRJ --tool yosys``: where no
synthesis report exists and the target is a 7-series part, its LUT, FF, DSP and BRAM replace the
totals; no place-and-route factors apply to it, and the verdict says that routing is not included).
A project whose firmware the cost model cannot price (or that has none) but that has a mapping is
shown by its mapping alone, with the record's timing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import DEFAULT_BOARD, Board, Resources, get_board
from ..exceptions import ConfigError, DataError, UnsupportedError
from ..families import LEGACY_FAMILY
from ..families.sources import family_of
from ..options import check_reuse_factor, check_strategy
from ..project import RECORDED_RESOURCES
from .model import (C_SYNTHESIS, FLAVOURS, IMPLEMENTATION, SYNTHESIS_REPORT, TECHNOLOGY_MAPPING, LayerCost,
                    combine, device_of, layer_costs, valid_reuse_factors, weighted_layers)
from .wrapper import axi_stream_cost

log = logging.getLogger("fastml_lab")

__all__ = ["Estimate", "estimate", "DMA_MARGIN", "IMPLEMENTATION_FACTORS", "flavour_for"]

#: What the board design adds around the IP (AXI DMA, interconnect, reset; PS7 is hard logic): the
#: published PYNQ-Z2 implementation (20,668 LUT, 23,097 FF, 7 BRAM36) minus its IP's share.
DMA_MARGIN = Resources(dsp=0, lut=3_000, ff=3_500, bram_18k=10)
#: After implementation / C synthesis on the Zynq-7000 board flow (Vivado HLS, then Vivado): the
#: published PYNQ-Z2 run (IP 41,606 LUT and 24,483 FF in C synthesis; 20,668 LUT and 23,097 FF for
#: the whole placed design). Field notes give 0.30 for LUTs on another Z2 project: expect 0.3-0.45.
IMPLEMENTATION_FACTORS = {"dsp": 1.0, "lut": 0.42, "ff": 0.80, "bram_18k": 1.0}
RESOURCE_KEYS = ("dsp", "lut", "ff", "bram_18k")


def flavour_for(backend: str | None) -> str:
    """The HLS tool a target is built with: a board (hls4ml's VivadoAccelerator backend, which needs
    Vivado HLS 2020.1 or older) -> ``"vivado"``; a bare part (hls4ml's Vitis backend) -> ``"vitis"``."""
    return "vitis" if backend in (None, "vitis") else "vivado"


@dataclass
class Estimate:
    """Latency, II and resources of one model on one target, per layer and in total."""

    source: str
    part: str
    clock_mhz: float
    flavour: str
    strategy: str
    reuse_factor: int
    board: Board | None = None
    layers: list = field(default_factory=list)
    wrapper: LayerCost | None = None
    latency_cycles: int = 0
    ii_cycles: int = 1
    resources: dict = field(default_factory=dict)
    kind: str = C_SYNTHESIS
    report: dict | None = None
    family: str = LEGACY_FAMILY
    io_type: str = "io_parallel"
    #: A family's own cost model that made the figures (e.g. "conifer's xilinxhls model"), or None:
    #: the op registry's cost model, whose implementation factors apply on the board flow.
    own_model: str | None = None
    #: The recorded technology mapping (yosys) whose resources are the totals, or None.
    mapping: dict | None = None
    #: Where the latency and II come from when the totals are a mapping's (a mapping has no timing).
    latency_kind: str | None = None

    # ------------------------------------------------------------------ derived figures
    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * self.clock_period_ns

    @property
    def events_per_s(self) -> float:
        return self.clock_mhz * 1e6 / max(1, self.ii_cycles)

    @property
    def implementation(self) -> dict | None:
        """Resources after placement and routing, the IP plus the board design (``DMA_MARGIN``);
        None where no published implementation of the flow backs the factors (a bare part)."""
        if self.board is None or self.own_model or self.mapping is not None \
                or device_of(self.part).family != "7-series":
            return None
        ip = {key: int(round(self.resources[key] * IMPLEMENTATION_FACTORS[key])) for key in RESOURCE_KEYS}
        return {key: ip[key] + getattr(DMA_MARGIN, key) for key in RESOURCE_KEYS}

    @property
    def budget(self) -> dict | None:
        return None if self.board is None else {
            "dsp": self.board.resources.dsp, "lut": self.board.resources.lut,
            "ff": self.board.resources.ff, "bram_18k": self.board.resources.bram_18k}

    def compared(self) -> tuple:
        """``(figures, kind)`` the verdict compares with the budget: after implementation where the
        flow has factors, else the C-synthesis figures plus the board design's margin."""
        after = self.implementation
        if after is not None:
            return after, IMPLEMENTATION
        margin = {key: getattr(DMA_MARGIN, key) if self.board is not None and self.wrapper else 0
                  for key in RESOURCE_KEYS}
        return {key: self.resources[key] + margin[key] for key in RESOURCE_KEYS}, self.kind

    @property
    def fits(self) -> bool | None:
        """Whether every resource fits the board's budget; None for a bare part (no budget)."""
        if self.board is None:
            return None
        figures, _ = self.compared()
        return all(figures[key] <= self.budget[key] for key in RESOURCE_KEYS)

    def utilization(self) -> dict | None:
        if self.board is None:
            return None
        figures, _ = self.compared()
        return {key: figures[key] / self.budget[key] for key in RESOURCE_KEYS}

    def verdict(self) -> str:
        if self.board is None:
            return f"{self.part} is a bare part with no budget in the board table: no verdict."
        figures, kind = self.compared()
        tight = max(RESOURCE_KEYS, key=lambda k: figures[k] / self.budget[k])
        use = figures[tight] / self.budget[tight]
        word = "fits" if self.fits else "does not fit"
        margin = ", with the AXI DMA margin" if self.wrapper is not None or kind == IMPLEMENTATION else ""
        if kind == TECHNOLOGY_MAPPING:
            margin += "; routing is not included"
        return (f"{word} the {self.board.title} ({kind}{margin}): the tightest resource is "
                f"{_LABELS[tight]} at {use:.0%} of {self.budget[tight]:,}.")

    def fit_detail(self) -> str | None:
        """What the verdict compared, per resource: ``"LUT 20,668/53,200 (39%), ... [after
        implementation, with the AXI DMA margin]"``; None for a bare part (no budget)."""
        if self.board is None:
            return None
        figures, kind = self.compared()
        margin = ", with the AXI DMA margin" if self.wrapper is not None or kind == IMPLEMENTATION else ""
        return ", ".join(f"{_LABELS[k]} {figures[k]:,}/{self.budget[k]:,} ({figures[k] / self.budget[k]:.0%})"
                         for k in RESOURCE_KEYS) + f" [{kind}{margin}]"

    def timing(self) -> dict:
        """The project record's timing (``project.TIMING_KEYS``): source "estimate"."""
        from ..project import ESTIMATE

        return {"latency_cycles": int(self.latency_cycles), "ii_cycles": int(self.ii_cycles),
                "clock_mhz": round(self.clock_mhz, 3), "source": ESTIMATE}

    # ------------------------------------------------------------------ output
    def rows(self) -> list:
        rows = [layer.to_dict() for layer in self.layers]
        if self.wrapper is not None:
            rows.append(self.wrapper.to_dict())
        return rows

    def to_dict(self) -> dict:
        figures, compared_kind = self.compared()
        mapped = {} if self.latency_kind is None else {"latency_kind": self.latency_kind}
        return {
            "family": self.family, "source": self.source, "kind": self.kind,
            "target": {"board": self.board.name if self.board else None, "part": self.part,
                       "clock_mhz": round(self.clock_mhz, 3), "flavour": self.flavour,
                       "strategy": self.strategy, "reuse_factor": self.reuse_factor, "io_type": self.io_type,
                       "wrapper": self.wrapper is not None},
            "totals": {"latency_cycles": self.latency_cycles, "latency_ns": round(self.latency_ns, 3),
                       "ii_cycles": self.ii_cycles, "events_per_s": round(self.events_per_s, 1),
                       **self.resources, "kind": self.kind, **mapped},
            "after_implementation": (None if self.implementation is None else
                                     {**self.implementation, "kind": IMPLEMENTATION,
                                      "includes": "IP and the board's AXI DMA design"}),
            "synthesis_report": self.report,
            "technology_mapping": self.mapping,
            "budget": self.budget, "fits": self.fits, "compared": {**figures, "kind": compared_kind},
            "verdict": self.verdict(),
            "layers": [{**row, "kind": C_SYNTHESIS} for row in self.rows()],
        }

    def table(self) -> str:
        """The per-layer table, the totals and the verdict, as text."""
        target = (f"{self.board.title} ({self.part})" if self.board else self.part)
        head = f"Hardware estimate for {self.source} on {target} at {self.clock_mhz:g} MHz: " + (
            self.own_model or
            f"{FLAVOURS[self.flavour].title}, {self.strategy} strategy, reuse factor {self.reuse_factor}, {self.io_type}")
        cols = ("layer", "op", "latency", "II", "DSP", "LUT", "FF", "BRAM18")
        body = [(r["name"], r["op"], str(r["latency_cycles"]), str(r["ii_cycles"]), f"{r['dsp']:,}",
                 f"{r['lut']:,}", f"{r['ff']:,}", str(r["bram_18k"])) for r in self.rows()]
        total = ("total", self.kind, str(self.latency_cycles), str(self.ii_cycles),
                 *(f"{self.resources[k]:,}" for k in RESOURCE_KEYS))
        lines = [head] + _columns([cols] + body + [total])
        if self.report is not None:
            lines.append(f"(the totals are the recorded synthesis report's; the layer rows stay "
                         f"{C_SYNTHESIS}s)")
        if self.mapping is not None:
            res = self.mapping.get("resources") or {}
            rows = f"; the layer rows stay {self.latency_kind or C_SYNTHESIS}s" if self.layers else ""
            lines.append(f"(the resource totals are the recorded mapping of {self.mapping.get('top')} for "
                         f"{self.mapping.get('part')}, {TECHNOLOGY_MAPPING}, with {res.get('CARRY4', 0):,} CARRY4 "
                         f"besides: routing is not included, and LUTs may differ from Vivado's by tens of "
                         f"percent{rows})")
        after = self.implementation
        if after is not None:
            lines.append(f"{IMPLEMENTATION} (IP + AXI DMA design): " + ", ".join(
                f"{_LABELS[k]} {after[k]:,}" for k in RESOURCE_KEYS))
        lines.append(f"latency {self.latency_cycles} cycles = {self.latency_ns:,.0f} ns, II {self.ii_cycles} "
                     f"cycles = {self.events_per_s:,.0f} events/s ({self.latency_kind or self.kind})")
        lines.append(self.verdict())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Estimate({self.latency_cycles} cycles, II {self.ii_cycles}, DSP {self.resources.get('dsp')}, "
                f"LUT {self.resources.get('lut')}, {self.kind} on {self.part})")


_LABELS = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram_18k": "BRAM18"}
#: The estimate's resource keys and the names a recorded report or mapping gives them ("lut": "LUT", ...).
_RECORDED_KEYS = {name.lower(): name for name in RECORDED_RESOURCES}
#: The kind of a figure from a generator's own cost model (``{generator}``: "da4ml").
OWN_ESTIMATE = "{generator} estimate"


def _columns(rows: list) -> list:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows]


# ---------------------------------------------------------------------------------- target
@dataclass(frozen=True)
class Target:
    board: Board | None
    part: str
    clock_ns: float
    flavour: str
    interface: str


def resolve_target(board=None, part=None, clock_ns=None, flavour=None, default_board=None,
                   default_part=None, default_clock_ns=None, default_interface="parallel") -> Target:
    """The board or bare part, its clock, the HLS flavour and whether the AXI-stream wrapper is there."""
    if board is not None and part is not None:
        raise ConfigError("Give a board (--board) or a bare part (--part), not both.")
    if isinstance(board, str):
        board = get_board(board)
    if board is None and part is None:
        if default_board is not None:
            board = get_board(default_board) if isinstance(default_board, str) else default_board
        elif default_part is not None:
            part = default_part
        else:
            board = get_board(DEFAULT_BOARD)
    if board is not None:
        part = board.part
        interface = board.interface
        clock_ns = clock_ns or board.clock_period_ns
    else:
        interface = default_interface if default_part is not None and part == default_part else "parallel"
        board = None
        clock_ns = clock_ns or default_clock_ns or get_board(DEFAULT_BOARD).clock_period_ns
    device_of(part)  # refuses unknown parts early
    flavour = flavour or ("vivado" if board is not None else "vitis")
    if flavour not in FLAVOURS:
        raise ConfigError(f"Unknown HLS flavour {flavour!r}; valid: {', '.join(FLAVOURS)}.")
    return Target(board, part, float(clock_ns), flavour, interface)


# ---------------------------------------------------------------------------------- estimate
def estimate(source, board=None, part=None, *, flavour: str | None = None, precision: str | None = None,
             reuse_factor: int | None = None, strategy: str | None = None,
             clock_period_ns: float | None = None) -> Estimate:
    """The hardware estimate of ``source`` (see the module docstring) on ``board`` or ``part``.

    A project brings its own precision, reuse factor, strategy, board (or part) and clock;
    ``reuse_factor`` and ``strategy`` given here replace them (a what-if), ``board``/``part`` move
    it to another target. A Keras model takes ``precision`` (default ``ap_fixed<16,6>``; an HGQ2
    model brings its own types), reuse factor 1 and the Latency strategy unless given. A project
    with a recorded synthesis report shows the report's totals (kind "synthesis report"); one with
    a recorded technology mapping and no report shows the mapping's resources on a 7-series target
    (kind "yosys technology mapping, before place and route"), unless a what-if changes the design.
    """
    if strategy is not None:
        strategy = check_strategy(strategy)
    if reuse_factor is not None:
        check_reuse_factor(reuse_factor, upper=False)  # _check_reuse names the factors each layer takes
    family = family_of(source)
    project = _project_of(source)
    mapping = None
    if project is not None and project.mapping and not project.synthesis and reuse_factor is None \
            and strategy is None:
        mapping = project.mapping
    try:
        result = _estimate(source, family, board, part, flavour=flavour, precision=precision,
                           reuse_factor=reuse_factor, strategy=strategy, clock_period_ns=clock_period_ns)
    except (DataError, UnsupportedError) as exc:
        if mapping is None:
            raise
        result = _mapping_only(project, board, part, clock_period_ns)
        if device_of(result.part).family != "7-series":
            raise
        log.info("The cost model cannot price %s (%s); it is shown by its recorded mapping.", project.path, exc)
    if mapping is not None and device_of(result.part).family == "7-series":
        _apply_mapping(result, mapping)
    return result


def _estimate(source, family, board, part, *, flavour, precision, reuse_factor, strategy,
              clock_period_ns) -> Estimate:
    """:func:`estimate` by the cost models, before any recorded mapping is applied."""
    if not family.priced_by_ops:
        given = [name for name, value in (("precision", precision), ("reuse factor", reuse_factor),
                                          ("strategy", strategy), ("flavour", flavour)) if value is not None]
        if given:
            raise ConfigError(f"{source} is a {family.title}: its cost model takes no {' or '.join(given)} "
                              f"(export the {family.title} with its precision and estimate the project).")
        if part is not None:
            device_of(part)  # refuses unknown parts
        return family.estimate(source, board=board, part=part, clock_period_ns=clock_period_ns)
    found = _read_source(source, precision, family)
    if reuse_factor is not None:
        _check_reuse(found["description"], reuse_factor)
        check_reuse_factor(reuse_factor)
    target = resolve_target(board, part, clock_period_ns, flavour, default_board=found.get("board"),
                            default_part=found.get("part"), default_clock_ns=found.get("clock_ns"),
                            default_interface=found["description"].get("interface", "parallel"))
    # A recorded report describes the project as exported: it applies unless the target or the settings change.
    same = (target.part == found.get("part") and (reuse_factor or found.get("reuse")) == found.get("reuse")
            and (strategy or found.get("strategy")) == found.get("strategy")
            and (target.board.name if target.board else None) == (found["board"].name if found.get("board") else None))
    return estimate_description(found["description"], found["arrays"], target, source_name=found["name"],
                                reuse_factor=reuse_factor, strategy=strategy,
                                report=found.get("report") if same else None)


def _project_of(source):
    """``source`` as a :class:`~fastml_lab.project.Project` when it is one (object or folder), else None."""
    from ..project import PROJECT_FILE, Project

    if isinstance(source, Project):
        return source
    if isinstance(source, (str, Path)) and (Path(source) / PROJECT_FILE).is_file():
        return Project.open(source)
    return None


def _mapping_only(project, board, part, clock_period_ns) -> Estimate:
    """The estimate of a project that no cost model prices: no layers, the record's timing, and
    (applied by the caller) its recorded mapping's resources."""
    period = project.meta.get("clock_period_ns")
    target = resolve_target(board, part, clock_period_ns, None, default_board=project.board,
                            default_part=project.part, default_clock_ns=float(period) if period else None)
    timing = project.timing
    return Estimate(source=f"project {project.name}", part=target.part, clock_mhz=1000.0 / target.clock_ns,
                    flavour=target.flavour, strategy="RTL", reuse_factor=1, board=target.board,
                    latency_cycles=int(timing.get("latency_cycles") or 0), ii_cycles=int(timing.get("ii_cycles") or 1),
                    resources={key: 0 for key in RESOURCE_KEYS}, kind=timing.get("source") or "no timing recorded",
                    family=project.family, own_model="its RTL, mapped by yosys (no cost model prices it)")


def estimate_description(description: dict, arrays: dict, target: Target, *, source_name: str = "firmware",
                         reuse_factor: int | None = None, strategy: str | None = None,
                         report: dict | None = None) -> Estimate:
    """The estimate of a firmware description (numpy only) on a resolved :class:`Target`."""
    flavour, device = FLAVOURS[target.flavour], device_of(target.part)
    costs = layer_costs(description, arrays, flavour=flavour, device=device, clock_ns=target.clock_ns,
                        reuse=reuse_factor, strategy=strategy)
    dense = weighted_layers(description)
    used = {strategy or spec.get("strategy", "latency").capitalize() for spec in dense} or {"Latency"}
    io_type = description.get("io_type", "io_parallel")
    latency, ii = combine(costs, used, io_type, flavour)
    totals = {key: sum(getattr(c, key) for c in costs) for key in RESOURCE_KEYS}
    wrapper = None
    # A generator with a cost model of its own (da4ml's RTL) prices its design; no HLS wrapper is built around it.
    own_model = description.get("cost_model")
    if target.interface == "axi_stream" and own_model is None:
        from ..fixed import FixedType

        word = target.board.word_dtype if target.board is not None else "float32"
        wrapper = axi_stream_cost(int(description["n_inputs"]), int(description["n_outputs"]),
                                  FixedType.from_dict(description["input_type"]).width, latency,
                                  word=word, flavour=flavour, device=device, clock_ns=target.clock_ns)
        latency = wrapper.latency
        ii = max(ii, wrapper.ii)
        for key in RESOURCE_KEYS:
            totals[key] += getattr(wrapper, key)
    reuse_used = reuse_factor or max((int(spec.get("reuse_factor", 1)) for spec in dense), default=1)
    result = Estimate(source=source_name, part=target.part, clock_mhz=1000.0 / target.clock_ns,
                      flavour=target.flavour, strategy=" + ".join(sorted(used)), reuse_factor=int(reuse_used),
                      board=target.board, layers=costs, wrapper=wrapper, latency_cycles=int(latency),
                      ii_cycles=int(ii), resources=totals, own_model=own_model, io_type=io_type)
    if own_model is not None:
        result.kind = OWN_ESTIMATE.format(generator=description.get("generator", "the generator"))
    # A generator that writes the pipeline itself knows its latency exactly (da4ml: one cycle a stage).
    result.latency_kind = description.get("latency_kind")
    if report:
        _apply_report(result, report)
    return result


def _apply_report(result: Estimate, report: dict) -> None:
    """A recorded synthesis report's figures replace the totals."""
    res = report.get("resources") or {}
    for key, name in _RECORDED_KEYS.items():
        if res.get(name) is not None:
            result.resources[key] = int(res[name])
    result.latency_cycles = int(report.get("latency_cycles") or result.latency_cycles)
    result.ii_cycles = int(report.get("ii_cycles") or result.ii_cycles)
    if report.get("target_clock_ns"):
        result.clock_mhz = 1000.0 / float(report["target_clock_ns"])
    result.kind = SYNTHESIS_REPORT
    result.report = dict(report)


def _apply_mapping(result: Estimate, mapping: dict) -> None:
    """A recorded technology mapping's LUT, FF, DSP and BRAM replace the resource totals; the
    latency stays the estimate's (a mapping has no timing), and no implementation factors apply."""
    res = mapping.get("resources") or {}
    for key, name in _RECORDED_KEYS.items():
        result.resources[key] = int(res.get(name) or 0)
    result.latency_kind = result.latency_kind or result.kind
    result.kind = TECHNOLOGY_MAPPING
    result.mapping = dict(mapping)


def _check_reuse(description: dict, reuse_factor: int) -> None:
    """Refuse a reuse factor that hls4ml would not take for every dense layer (as the export does)."""
    dense = weighted_layers(description)
    for layer in dense:
        if reuse_factor not in valid_reuse_factors(int(layer["n_in"]), int(layer["n_out"])):
            common = sorted(set.intersection(*(set(valid_reuse_factors(int(d["n_in"]), int(d["n_out"])))
                                               for d in dense)))
            raise ConfigError(f"reuse_factor {reuse_factor} is not valid for layer {layer['name']!r} "
                              f"({layer['n_in']} inputs x {layer['n_out']} outputs). Reuse factors valid for "
                              f"every dense layer of this model: {', '.join(map(str, common))}.")


def _read_source(source, precision, family) -> dict:
    """What the estimate needs from a source whose ops price it: its description, arrays and a
    project's settings; a model is described by its ``family`` (silently, at ``precision``)."""
    project = _project_of(source)
    if project is not None:
        if precision is not None:
            raise ConfigError(f"The project {project.path} brings its own precision; export it again with "
                              f"--precision {precision!r} to estimate another one.")
        firmware = project.firmware()
        period = project.meta.get("clock_period_ns")
        return {"description": firmware.description, "arrays": firmware.arrays,
                "name": f"project {project.name}", "board": project.board, "part": project.part,
                "clock_ns": float(period) if period else None, "reuse": project.reuse_factor,
                "strategy": project.meta.get("strategy"), "report": project.synthesis}
    if hasattr(source, "description") and hasattr(source, "arrays"):
        return {"description": source.description, "arrays": source.arrays, "name": "firmware"}
    firmware, label = family.describe(source, precision)
    return {"description": firmware.description, "arrays": firmware.arrays, "name": label}
