"""Export a trained BDT through conifer's VHDL backend: a pipelined core, simulated with GHDL.

``fastml-lab export BDT --backend vhdl`` writes the project folder of :mod:`fastml_lab.bdt.export`
with conifer's VHDL project in place of its HLS one::

    PRJ/project.json     the record ("backend": "vhdl", board, part, clock, the exact pipeline latency,
                         the GHDL recipe under "csim", the design's sources under "rtl")
    PRJ/firmware.json    the emulator's description: one "bdt" op with ``reduction: "vhdl"``
    PRJ/firmware.npz     the tables as the VHDL holds them (stored integers)
    PRJ/vhdl/            conifer's VHDL project (firmware/*.vhd, its testbench, synth.tcl, conifer's JSON)

conifer's VHDL has one fixed-point type for inputs, thresholds and scores (``tx`` = ``ty``: W-bit
``signed``), so the three must be equal (:func:`vhdl_type`). The emulator's description is read back
from the written VHDL (:func:`read_vhdl`: ``Constants.vhd``, ``Split.vhd``, ``Arrays<k>.vhd``), so it
follows the code GHDL simulates; its arithmetic is :mod:`fastml_lab.firmware.ops.bdt`'s "vhdl".

Three deliberate changes to what conifer does by itself:

* numbers become integers of the type through :class:`fastml_lab.fixed.FixedType` (the conversion
  the emulator uses), not conifer's ``FixedPointConverter``, which compiles ``ap_fixed.h`` with
  g++ and pybind11 through ``python3`` on PATH in a folder it leaves in the current directory;
* the trees are padded to the depth of the deepest tree, not to the ensemble's ``max_depth``
  (xgboost's saved configuration says 6, its default, for a model trained with depth 3): the same
  scores, fewer registers and a shorter pipeline;
* a one-round ensemble's tables are written as arrays of one (``(0 => (...))``): conifer's
  ``((...))`` does not analyse.

The latency is exact (:func:`pipeline_latency`), read from the VHDL's constants; the tests check it
against the GHDL simulation's valid signals (:func:`fastml_lab.rtl.ghdl.measure_latency`).
conifer is imported inside the functions that write; reading needs numpy only.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import numpy as np

from .._deps import require
from .._io import atomic_directory
from ..boards import DEFAULT_BOARD, get_board, rtl_target
from ..exceptions import ConfigError, UnsupportedError
from ..fixed import FixedType
from ..firmware.ops.bdt import LEAF, MAX_VHDL_WIDTH, OP, VHDL, holds_vhdl_type
from ..project import RTL_PIPELINE, Project, open_project
from .ensemble import FAMILY, PROJECT_NAME, _tree_depth, to_ensemble
from .export import WEIGHT_PRECISION, checked_class_names, parse_precision, point_config_at, project_record
from .reader import _depth, ensemble_description
from .vhdl_estimate import VHDL_STRUCTURE_ESTIMATE, reduce_stages, vhdl_bdt_resources

log = logging.getLogger("fastml_lab")

BACKEND = "vhdl"
VHDL_DIR = "vhdl"
#: The library conifer's scripts analyse the design into (its testbench says ``library BDT``), and the top.
LIBRARY, TOP = "BDT", "BDTTop"
TB_LIBRARY, TESTBENCH = "xil_defaultlib", "testbench"
#: conifer's testbench clock: ``clk <= not clk after 2.5 ns``.
TB_CLOCK_NS = 5.0
_DESIGN_HEAD = ("Constants.vhd", "Split.vhd", "Types.vhd", "Tree.vhd", "AddReduce.vhd")
_DESIGN_TAIL = ("BDT.vhd", "BDTTop.vhd")
_TB_SOURCES = ("SimulationInput.vhd", "SimulationOutput.vhd", "BDTTestbench.vhd")
#: The tables of ``Arrays<k>.vhd`` the reader takes, as conifer names them.
_TABLES = ("feature", "threshold_int", "value_int", "children_left", "children_right", "parent", "iLeaf", "depth")


# ------------------------------------------------------------------ the type
def vhdl_type(precision=None) -> FixedType:
    """The one type of conifer's VHDL from ``precision`` (as :func:`fastml_lab.bdt.export.parse_precision`
    reads it): input, threshold and score types must be equal, signed, at most 32 bits wide, with
    0 to W integer bits. The split weights' type does not apply (the VHDL compares the input itself)."""
    types = parse_precision(precision)
    input_t, threshold_t, score_t = types["input"], types["threshold"], types["score"]
    if not input_t == threshold_t == score_t:
        raise ConfigError(
            f"conifer's VHDL backend has one type for inputs, thresholds and scores; got input {input_t}, "
            f"threshold {threshold_t} and score {score_t}. Give one type, e.g. --precision '{score_t}'.")
    t = input_t
    if not holds_vhdl_type(t):
        raise ConfigError(f"conifer's VHDL backend holds signed types of at most {MAX_VHDL_WIDTH} bits with 0 to "
                          f"W integer bits (its testbench passes VHDL integers); got {t}.")
    return t


class _Converter:
    """conifer's ``FixedPointConverter`` interface (``width``, ``integer_bits``, ``fractional_bits``,
    ``signed``, ``to_int``) on :class:`FixedType`: the type's rounding and overflow modes, as ap_fixed."""

    def __init__(self, type_string: str):
        self.type = FixedType.parse(type_string)
        self.width, self.integer_bits = self.type.width, self.type.integer
        self.fractional_bits, self.signed = self.type.fractional, self.type.signed

    def to_int(self, x) -> int:
        return int(self.type.to_raw(np.array([float(x)]))[0])

    def from_int(self, x) -> float:
        return float(self.type.from_raw(np.array([x]))[0])


# ------------------------------------------------------------------ writing
def write_conifer_vhdl(ensemble: dict, t: FixedType, part: str, clock_period_ns: float, hls_dir: Path) -> dict:
    """Write conifer's VHDL project for ``ensemble`` into ``hls_dir``; returns the ensemble as
    written (its trees unpadded, ``max_depth`` the deepest tree's, at least 1)."""
    from unittest import mock

    require("conifer", "write the BDT's VHDL")
    from conifer.backends.vhdl import writer

    ensemble = copy.deepcopy(ensemble)  # conifer pads the trees in place
    ensemble["max_depth"] = max(1, max(_tree_depth(tree) for rnd in ensemble["trees"] for tree in rnd))
    config = {"Backend": BACKEND, "ProjectName": PROJECT_NAME, "OutputDir": str(hls_dir),
              "InputPrecision": t.to_hls(), "ThresholdPrecision": t.to_hls(), "ScorePrecision": t.to_hls(),
              "XilinxPart": part, "ClockPeriod": float(clock_period_ns)}
    with mock.patch.object(writer, "FixedPointConverter", _Converter):
        model = writer.make_model(copy.deepcopy(ensemble), config)
    model.write()
    if int(ensemble["n_trees"]) == 1:
        _name_single_trees(hls_dir)
    return ensemble


def _name_single_trees(hls_dir: Path) -> None:
    """conifer writes the tables of a one-round ensemble as ``((...))``, which VHDL reads as one
    parenthesised aggregate, not an array of one (GHDL: "type of element not compatible"); the
    named association ``(0 => (...))`` is the array of one."""
    for path in sorted((hls_dir / "firmware").glob("Arrays*.vhd")):
        text = re.sub(r"(intArray2Dn\w+\(0 to nTrees - 1\)\s*:=\s*\()\(", r"\g<1>0 => (", path.read_text())
        path.write_text(text)


# ------------------------------------------------------------------ reading the VHDL back
_CONSTANT = re.compile(r"constant\s+(\w+)\s*:\s*integer\s*:=\s*(-?\d+)\s*;")
_SUBTYPE = re.compile(r"subtype\s+(tx|ty)\s+is\s+signed\((\d+)\s+downto\s+0\)\s*;")
_SCALAR = re.compile(r"constant\s+(initPredict|normalisation)\s*:\s*ty\s*:=\s*to_ty\((-?\d+)\)\s*;")
_TABLE = re.compile(r"constant\s+(\w+)\s*:\s*intArray2Dn\w+\(0 to nTrees - 1\)\s*:=\s*\((.*?)\);", re.S)
_SPLIT = re.compile(r"entity\s+work\.(split_lte?)\b", re.I)


def _read(path: Path) -> str:
    if not path.is_file():
        raise UnsupportedError(f"{path} is missing: the folder holds no conifer VHDL project. Export it again.")
    return path.read_text()


def vhdl_constants(hls_dir) -> dict:
    """The integer constants of ``firmware/Constants.vhd`` (nTrees, maxDepth, nNodes, nLeaves,
    nFeatures, nClasses, norm_slice_h, norm_slice_l) and the widths of ``tx`` and ``ty``."""
    text = _read(Path(hls_dir) / "firmware" / "Constants.vhd")
    found = {name: int(value) for name, value in _CONSTANT.findall(text)}
    found.update({f"{name}_width": int(high) + 1 for name, high in _SUBTYPE.findall(text)})
    missing = [k for k in ("nTrees", "maxDepth", "nNodes", "nLeaves", "nFeatures", "nClasses", "norm_slice_h",
                           "norm_slice_l", "tx_width", "ty_width") if k not in found]
    if missing:
        raise UnsupportedError(f"{hls_dir}/firmware/Constants.vhd is not conifer's (no {', '.join(missing)}).")
    return found


def _class_tables(hls_dir: Path, k: int, constants: dict) -> dict:
    """``Arrays<k>.vhd``: its tables ``(nTrees, nNodes or nLeaves)`` and its two scalars."""
    path = hls_dir / "firmware" / f"Arrays{k}.vhd"
    text = _read(path)
    tables = {}
    for name, body in _TABLE.findall(text):
        rows = [[int(v) for v in row.replace(",", " ").split()] for row in re.findall(r"\(([^()]*)\)", body)]
        tables[name] = np.array(rows, dtype=np.int64)
    tables.update({name: int(value) for name, value in _SCALAR.findall(text)})
    missing = [name for name in (*_TABLES, "initPredict", "normalisation") if name not in tables]
    if missing:
        raise UnsupportedError(f"{path} is not conifer's ({', '.join(missing)} missing).")
    n_trees, n_nodes, n_leaves = constants["nTrees"], constants["nNodes"], constants["nLeaves"]
    for name in _TABLES:
        if tables[name].shape != (n_trees, n_leaves if name == "iLeaf" else n_nodes):
            raise UnsupportedError(f"{path}: the table {name} is {tables[name].shape}, not ({n_trees}, "
                                   f"{n_leaves if name == 'iLeaf' else n_nodes}) as Constants.vhd says.")
    return tables


def _as_traversal(tables: dict, path_name: str) -> tuple:
    """The padded trees of one class as the emulator walks them: ``(feature, left, right, value)``.

    In conifer's VHDL a node without a feature (``-2``) compares nothing and activates its left
    child; padding turned the original leaves into such nodes, with children down to the full
    depth. Each becomes a leaf here, with the value of the full-depth leaf its left children reach.
    """
    feature, left = tables["feature"], tables["children_left"]
    right, value = tables["children_right"].copy(), tables["value_int"].copy()
    n_trees, n_nodes = feature.shape
    parent = tables["parent"]
    for i in range(n_trees):
        for node in range(1, n_nodes):  # every child names its parent: the VHDL's activations use both
            p = parent[i, node]
            if not (0 <= p < n_nodes and node in (left[i, p], right[i, p])):
                raise UnsupportedError(f"{path_name}: tree {i}, node {node} is not a child of its parent {p}.")
        for node in np.flatnonzero(feature[i] == LEAF):
            leaf = node
            while left[i, leaf] >= 0:
                leaf = left[i, leaf]
            value[i, node] = value[i, leaf]
    is_leaf = feature == LEAF
    return feature, np.where(is_leaf, -1, left), np.where(is_leaf, -1, right), value


def read_vhdl(hls_dir, t: FixedType) -> tuple:
    """``(description, arrays)`` of the ensemble in conifer's VHDL project ``hls_dir``, whose one
    type is ``t`` (the record's; checked against the VHDL's widths and normalisation slice)."""
    hls_dir = Path(hls_dir)
    c = vhdl_constants(hls_dir)
    if (c["tx_width"], c["ty_width"], c["norm_slice_l"], c["norm_slice_h"]) != (
            t.width, t.width, t.fractional, 2 * t.width - t.integer - 1):
        raise UnsupportedError(f"{hls_dir}/firmware/Constants.vhd does not hold the type {t} (tx is "
                               f"{c['tx_width']} bits, the normalisation slice {c['norm_slice_h']} downto "
                               f"{c['norm_slice_l']}).")
    split = _SPLIT.search(_read(hls_dir / "firmware" / "Split.vhd"))
    if split is None:
        raise UnsupportedError(f"{hls_dir}/firmware/Split.vhd names no split (split_lt or split_lte).")
    n_scores = c["nClasses"]
    tables = [_class_tables(hls_dir, k, c) for k in range(n_scores)]
    per_class = [_as_traversal(tb, f"{hls_dir}/firmware/Arrays{k}.vhd") for k, tb in enumerate(tables)]
    feature, left, right, value = (np.stack([pc[j] for pc in per_class]) for j in range(4))
    depth = max(_depth(left[k, i], right[k, i]) for k in range(n_scores) for i in range(c["nTrees"]))
    raw = {"feature": feature.astype(np.int32), "children_left": left.astype(np.int32),
           "children_right": right.astype(np.int32),
           "threshold": np.stack([tb["threshold_int"] for tb in tables]), "value": value,
           "init_predict": np.array([tb["initPredict"] for tb in tables], dtype=np.int64),
           "norm": np.array([tables[0]["normalisation"]], dtype=np.int64)}
    if any(tb["normalisation"] != tables[0]["normalisation"] for tb in tables):
        raise UnsupportedError(f"{hls_dir}: the classes have different normalisations; conifer writes one.")
    return ensemble_description(
        {"input": t, "threshold": t, "score": t, "weight": FixedType.parse(WEIGHT_PRECISION)}, raw,
        n_features=c["nFeatures"], n_classes=2 if n_scores == 1 else n_scores, max_depth=depth,
        splitting_convention="<=" if split.group(1).lower() == "split_lte" else "<", reduction=VHDL)


def pipeline_latency(hls_dir) -> int:
    """Clock cycles from an input's valid to its scores' valid in conifer's VHDL, counted from its
    registers (``Tree.vhd``, ``AddReduce.vhd``, ``BDT.vhd``):

    * ``maxDepth + 3`` in each tree: the comparisons' register, ``maxDepth`` registers of node
      activations (the root's is constant, so depth d is active d + 1 cycles after the input), and
      the register of the active leaf's score; the tree's valid pipe has those ``maxDepth + 3`` stages;
    * ``ceil(log2(nTrees + 1))`` in the adder tree over the trees' scores and ``initPredict``;
    * 1 for the normalisation's product, unless the normalisation's stored integer is 1.
    """
    hls_dir = Path(hls_dir)
    c = vhdl_constants(hls_dir)
    latencies = set()
    for k in range(c["nClasses"]):
        norm = [int(v) for name, v in _SCALAR.findall(_read(hls_dir / "firmware" / f"Arrays{k}.vhd"))
                if name == "normalisation"]
        latencies.add(c["maxDepth"] + 3 + reduce_stages(c["nTrees"] + 1) + (0 if norm == [1] else 1))
    if len(latencies) != 1:
        raise UnsupportedError(f"{hls_dir}: the classes' pipelines differ in length ({sorted(latencies)} cycles).")
    return latencies.pop()


# ------------------------------------------------------------------ the record's entries
def _sources(n_scores: int) -> tuple:
    design = [*_DESIGN_HEAD, *(f"Arrays{k}.vhd" for k in range(n_scores)), *_DESIGN_TAIL]
    return [f"firmware/{name}" for name in design], [f"firmware/{name}" for name in _TB_SOURCES]


def ghdl_recipe(n_scores: int, n_features: int, t: FixedType) -> dict:
    """The record's ``csim`` entry: GHDL analyses ``sources`` in order, each into the library that
    lists it, and runs conifer's testbench, which reads one event per line (the inputs' stored
    integers, one space apart) from ``SimulationInput.txt`` and writes the scores' integers to
    ``SimulationOutput.txt`` (:mod:`fastml_lab.rtl.ghdl`)."""
    design, bench = _sources(n_scores)
    return {
        "simulator": "ghdl", "std": "08", "sources": [*design, *bench],
        "libraries": {LIBRARY: design, TB_LIBRARY: bench}, "top": TESTBENCH, "top_library": TB_LIBRARY,
        "testbench": {"input_file": "SimulationInput.txt", "output_file": "SimulationOutput.txt",
                      "n_inputs": int(n_features), "n_outputs": int(n_scores),
                      "input_type": t.to_hls(), "output_type": t.to_hls(), "clock_period_ns": TB_CLOCK_NS,
                      "valid_in": f"/{TESTBENCH}/x_vld", "valid_out": f"/{TESTBENCH}/uut/bdt0/y_vld"},
    }


def rtl_entry(n_scores: int) -> dict:
    """The record's ``rtl`` entry: the design without its testbench, in compile order."""
    return {"language": "vhdl", "top": TOP, "library": LIBRARY, "sources": _sources(n_scores)[0]}


# ------------------------------------------------------------------ the export
def export_vhdl(model, out, *, backend: str = BACKEND, board=None, part=None, clock_period_ns=None,
                precision=None, overwrite: bool = False, scaler=None, class_names=None, feature_names=None,
                name: str | None = None) -> Project:
    """Write conifer's VHDL of ``model`` and its emulator description to the project folder ``out``.

    ``model``: what :func:`fastml_lab.bdt.export.export_bdt` takes. ``board`` (a name of the board
    table) or a bare ``part``, and ``clock_period_ns``: the target, as
    :func:`fastml_lab.boards.rtl_target` resolves it. ``precision``: one type (or per part, all
    three equal: :func:`vhdl_type`). The check (``fastml-lab check``) runs the VHDL in GHDL.
    """
    from ..emulator import Firmware

    if backend != BACKEND:
        raise ConfigError(f"export_vhdl writes conifer's VHDL (backend {BACKEND!r}); got backend {backend!r}.")
    target, part, clock = rtl_target(board, part, clock_period_ns)
    t = vhdl_type(precision)
    ensemble = to_ensemble(model)
    class_names = checked_class_names(model, ensemble, class_names)
    conifer = require("conifer", "write the BDT's VHDL")
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        hls_dir = tmp / VHDL_DIR
        written = write_conifer_vhdl(ensemble, t, part, clock, hls_dir)
        # conifer saved its model after padding the trees, naming the temporary folder: save the trees
        # as they were (conifer pads them again when it loads the file) and name the final folder.
        point_config_at(hls_dir / f"{PROJECT_NAME}.json", out.resolve() / VHDL_DIR, trees=written["trees"],
                         max_depth=written["max_depth"])
        description, arrays = read_vhdl(hls_dir, t)
        firmware = Firmware(description, arrays)
        firmware.save(tmp)
        n_scores = firmware.n_outputs
        timing = {"latency_cycles": pipeline_latency(hls_dir), "ii_cycles": 1,
                  "clock_mhz": round(1000.0 / clock, 3), "source": RTL_PIPELINE}
        meta = project_record(
            written, firmware, name=name or out.name, backend=BACKEND, board=target, part=part,
            clock_period_ns=clock, types={"input": t, "threshold": t, "score": t}, scaler=scaler,
            class_names=class_names, feature_names=feature_names, timing=timing, hls_dir=VHDL_DIR,
            csim=ghdl_recipe(n_scores, firmware.n_inputs, t),
            conifer_version=str(getattr(conifer, "__version__", "unknown")), rtl=rtl_entry(n_scores))
        Project.write_new(tmp, meta)
    log.info("Exported the BDT %s as conifer's VHDL (%s, %s ns; %d-cycle pipeline) to %s", meta["name"], part,
             clock, timing["latency_cycles"], out)
    return Project.open(out)


def vhdl_estimate(project, board=None, part=None, clock_period_ns=None):
    """The :class:`~fastml_lab.estimate.Estimate` of a VHDL project: the pipeline's latency as the
    VHDL counts it (exact; II 1; no board wrapper: the core has none), at the project's clock unless
    ``clock_period_ns`` says otherwise; LUT, FF (and CARRY4, in the row's detail) counted from the
    VHDL's structure and priced as yosys maps it, by coefficients fitted to yosys' mappings of
    random designs (:mod:`fastml_lab.bdt.vhdl_estimate`, kind "conifer VHDL structure estimate");
    no DSP (unless a normalisation other than a power of two needs a multiplier), no BRAM. A
    recorded mapping (``fastml-lab synth PRJ --tool yosys``) replaces the totals."""
    from ..estimate.hardware import Estimate
    from ..estimate.model import LayerCost
    from ..options import check_clock_period

    project = open_project(project)
    if board is None and part is None:
        target = project.budget_board
        board, part = (target.name, None) if target is not None else (None, project.part)
    target = None if part is not None else get_board(board or DEFAULT_BOARD)
    if clock_period_ns is not None:
        period = check_clock_period(clock_period_ns)
    elif project.meta.get("clock_period_ns"):
        period = float(project.meta["clock_period_ns"])
    else:
        period = (target or get_board(DEFAULT_BOARD)).clock_period_ns
    firmware = project.firmware()
    found = vhdl_bdt_resources(firmware.description, firmware.arrays)
    f = found["features"]
    cycles = int(project.timing["latency_cycles"])
    resources = {"dsp": found["DSP"], "lut": found["LUT"], "ff": found["FF"], "bram_18k": found["BRAM_18K"]}
    core = LayerCost(
        "ensemble", OP, latency=cycles, ii=1, dsp=resources["dsp"], lut=resources["lut"], ff=resources["ff"],
        bram_18k=0,
        detail=(f"{f['n_trees']} trees padded to depth {f['depth']}, {f['W']}-bit: {f['comparisons']} distinct "
                f"comparisons, {f['activations']} activations, {f['score_ff']} score bits, {f['adders']} adders; "
                f"{f['srl']} shift-register LUTs, {found['CARRY4']} CARRY4; latency: the VHDL's {cycles}-cycle "
                "pipeline"))
    return Estimate(
        source=f"project {project.path} (conifer's VHDL)", part=part or target.part, clock_mhz=1000.0 / float(period),
        flavour="vitis" if target is None else "vivado", strategy="conifer", reuse_factor=1, board=target,
        layers=[core], wrapper=None, latency_cycles=cycles, ii_cycles=1, resources=resources,
        kind=VHDL_STRUCTURE_ESTIMATE, family=FAMILY,
        own_model=("the VHDL's pipeline (latency, exact) and its structure (LUT and FF as yosys maps them, "
                   "fitted to random designs)"),
        latency_kind=RTL_PIPELINE)


def is_vhdl_project(source) -> bool:
    """Whether ``source`` (a project or its folder) was exported through conifer's VHDL."""
    from ..project import PROJECT_FILE

    if isinstance(source, (str, Path)):
        return (Path(source) / PROJECT_FILE).is_file() and open_project(source).backend == BACKEND
    return isinstance(source, Project) and source.backend == BACKEND
