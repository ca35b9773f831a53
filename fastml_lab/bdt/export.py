"""Export a trained BDT to a project folder: conifer's HLS C++ and the emulator's firmware description.

The folder is the NN's (:mod:`fastml_lab.project`) with conifer's project in place of hls4ml's::

    PRJ/project.json     the record ("family": "bdt", the types, board, part, clock, scaler, classes)
    PRJ/firmware.json    the emulator's description: one "bdt" op (:mod:`fastml_lab.firmware.ops.bdt`)
    PRJ/firmware.npz     features, thresholds, children, leaf values, init_predict, norm (stored integers)
    PRJ/conifer/         conifer's xilinxhls project (firmware/*.h, *.cpp, build scripts, conifer's JSON),
                         with the ap_types headers in firmware/ap_types for the C simulation

The description is read back from the written ``parameters.h``, so the emulator follows the C++.
One deliberate change to conifer's defaults: the split weights (one-hot: 0 or 1) get their own
type, ``ap_fixed<2,2>``, where conifer would reuse the threshold type, which for a type without
an integer bit turns 1 into -1 and inverts every comparison.

The record's ``timing`` is conifer's own latency estimate (:mod:`fastml_lab.bdt.estimate`,
``"source": "estimate"``) until a synthesis report replaces it, as for a neural network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from .._deps import require
from .._io import atomic_directory, write_json_atomic
from ..boards import BOARDS, DEFAULT_BOARD, DEFAULT_PRECISION, PART_BACKEND, get_board, same_part
from ..exceptions import ConfigError
from ..fixed import FixedType
from ..options import check_clock_period
from ..project import Project, open_project
from .ensemble import FAMILY, PROJECT_NAME, n_scores, to_ensemble
from .csim import bdt_recipe
from .estimate import estimate_ensemble, timing_from_estimate
from .reader import read_parameters

log = logging.getLogger("fastml_lab")

HLS_DIR = "conifer"
#: The parts of a BDT's precision; ``weight`` is the split weights' type (it must hold 1).
PARTS = ("input", "threshold", "score", "weight")
WEIGHT_PRECISION = "ap_fixed<2,2>"
DEFAULT_PART = get_board("pynq-z2").part
_PART_RE = re.compile(r"(\w+)\s*[=:]\s*((?:ap_)?u?(?:fixed|int)\s*<[^<>]*>)")


def parse_precision(precision=None) -> dict:
    """``{input, threshold, score, weight}`` as FixedTypes, from one type for all, a dict of parts,
    or text such as ``"input=ap_fixed<16,6> threshold=ap_fixed<16,6> score=ap_fixed<18,8,AP_RND,AP_SAT>"``.

    A part left out takes the default precision; the threshold takes the input's type, as in
    conifer; the weight takes ``ap_fixed<2,2>``.
    """
    if precision is None:
        precision = DEFAULT_PRECISION
    if isinstance(precision, str) and "=" in precision:
        pairs = _PART_RE.findall(precision)
        rest = _PART_RE.sub("", precision).replace(",", " ").replace(";", " ").strip()
        if rest or not pairs:
            raise ConfigError(f"Cannot read the BDT precision {precision!r}; expected e.g. "
                              "'input=ap_fixed<16,6> threshold=ap_fixed<16,6> score=ap_fixed<18,8>'.")
        precision = dict(pairs)
    if not isinstance(precision, dict):
        precision = {"input": precision, "score": precision}
    unknown = sorted(set(precision) - set(PARTS))
    if unknown:
        raise ConfigError(f"Unknown BDT precision part(s) {', '.join(map(repr, unknown))}; "
                          f"the parts are {', '.join(PARTS)}.")
    types = {part: FixedType.parse(text) for part, text in precision.items()}
    types.setdefault("input", FixedType.parse(DEFAULT_PRECISION))
    types.setdefault("threshold", types["input"])
    types.setdefault("score", FixedType.parse(DEFAULT_PRECISION))
    types.setdefault("weight", FixedType.parse(WEIGHT_PRECISION))
    if types["weight"].quantize(np.ones(1))[0] != 1.0:
        raise ConfigError(f"The BDT's weight type {types['weight']} must hold 1 exactly (the one-hot split "
                          f"weights); {WEIGHT_PRECISION} does.")
    return {part: types[part] for part in PARTS}


def conifer_config(types: dict, backend: str, part: str | None, clock_period_ns: float | None) -> dict:
    """conifer's xilinxhls configuration for a board of :data:`~fastml_lab.boards.BOARDS` or a bare part."""
    if backend != PART_BACKEND and backend not in BOARDS:
        raise ConfigError(f"Unknown backend {backend!r}; choose one of {', '.join([*BOARDS, PART_BACKEND])}.")
    board = BOARDS.get(backend)
    if board and part and not same_part(part, board.part):
        raise ConfigError(f"The {board.name} backend writes for the board's part {board.part}; got part {part!r}.")
    if clock_period_ns is None:
        clock_period_ns = board.clock_period_ns if board else get_board("pynq-z2").clock_period_ns
    check_clock_period(clock_period_ns)
    config = {
        "Backend": "xilinxhls", "ProjectName": PROJECT_NAME, "Unroll": True,
        "XilinxPart": board.part if board else (part or DEFAULT_PART), "ClockPeriod": float(clock_period_ns),
        "InputPrecision": types["input"].to_hls(), "ThresholdPrecision": types["threshold"].to_hls(),
        "ScorePrecision": types["score"].to_hls(), "WeightPrecision": types["weight"].to_hls(),
        "AcceleratorConfig": None,
    }
    if board:
        config["AcceleratorConfig"] = {"Board": board.name, "InterfaceType": "float"}
    return config


def ap_types_dir() -> Path:
    """The Xilinx ap_types headers shipped inside hls4ml (conifer's wheel lacks them)."""
    hls4ml = require("hls4ml", "find the ap_types headers for the C simulation")
    path = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    if not (path / "ap_fixed.h").is_file():
        raise ConfigError(f"The ap_types headers are not where hls4ml keeps them ({path}).")
    return path


@contextlib.contextmanager
def conifer_environment():
    """``XILINX_AP_INCLUDE`` pointing at hls4ml's ap_types while conifer compiles (its wheel lacks them);
    the variable is restored afterwards. Users never set it themselves."""
    old = os.environ.get("XILINX_AP_INCLUDE")
    os.environ["XILINX_AP_INCLUDE"] = str(ap_types_dir())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XILINX_AP_INCLUDE", None)
        else:
            os.environ["XILINX_AP_INCLUDE"] = old


def conifer_model(project, output_dir, backend: str = "xilinxhls"):
    """The project's BDT as a conifer model of ``backend`` ("xilinxhls", "cpp", "py") writing to
    ``output_dir``, with the project's types: conifer's own ``compile()`` and ``decision_function``,
    for comparisons and benchmarks. Compile it inside :func:`conifer_environment`."""
    conifer = require("conifer", "run conifer's backends")
    project = open_project(project)
    saved = json.loads((project.hls_dir / f"{PROJECT_NAME}.json").read_text())
    ensemble = {k: v for k, v in saved.items() if k not in ("config", "metadata")}
    config = dict(saved["config"], output_dir=str(output_dir), backend=backend, accelerator_config=None)
    if backend == "cpp":
        config = {"backend": "cpp", "output_dir": str(output_dir), "project_name": PROJECT_NAME,
                  "input_precision": saved["config"]["input_precision"],
                  "threshold_precision": saved["config"]["threshold_precision"],
                  "score_precision": saved["config"]["score_precision"]}
    elif backend == "py":
        config = {"backend": "py", "output_dir": str(output_dir), "project_name": PROJECT_NAME}
    return conifer.model.make_model(ensemble, config)


def export_bdt(model, out, *, precision=None, backend: str = PART_BACKEND, part: str | None = None,
               clock_period_ns: float | None = None, scaler=None, class_names=None, feature_names=None,
               name: str | None = None, overwrite: bool = False) -> Project:
    """Write the conifer HLS project and firmware description of ``model`` to the folder ``out``.

    ``model``: an xgboost model or file (``.json``/``.ubj``), a scikit-learn
    GradientBoostingClassifier, conifer's JSON file or ensemble dict. ``precision``: one type, or
    per part (see :func:`parse_precision`). ``backend``: a board of the board table or ``"vitis"``
    (a bare ``part``). ``scaler`` and ``class_names`` are recorded for the overlay.
    """
    types = parse_precision(precision)
    config = conifer_config(types, backend, part, clock_period_ns)
    ensemble = to_ensemble(model)
    class_names = checked_class_names(model, ensemble, class_names)
    conifer = require("conifer", "write the BDT's HLS")
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        hls_dir = tmp / HLS_DIR
        model_obj = conifer.backends.xilinxhls.make_model(dict(ensemble), dict(config, OutputDir=str(hls_dir)))
        model_obj.write()
        point_config_at(hls_dir / f"{PROJECT_NAME}.json", out.resolve() / HLS_DIR)
        shutil.copytree(ap_types_dir(), hls_dir / "firmware" / "ap_types")
        description, arrays = read_parameters(hls_dir / "firmware" / "parameters.h")
        from ..emulator import Firmware

        firmware = Firmware(description, arrays)
        firmware.save(tmp)
        board = BOARDS.get(backend)
        estimate = estimate_ensemble(ensemble, board or get_board(DEFAULT_BOARD), config["ClockPeriod"],
                                     wrapper=board is not None)
        meta = project_record(
            ensemble, firmware, name=name or out.name, backend=backend, board=board, part=config["XilinxPart"],
            clock_period_ns=config["ClockPeriod"], types=types, scaler=scaler, class_names=class_names,
            feature_names=feature_names, timing=timing_from_estimate(estimate), hls_dir=HLS_DIR,
            csim=bdt_recipe(hls_dir), conifer_version=str(getattr(conifer, "__version__", "unknown")))
        Project.write_new(tmp, meta)
    log.info("Exported the BDT %s (%s, %s) to %s", meta["name"], backend, meta["part"], out)
    return Project.open(out)


def checked_class_names(model, ensemble: dict, class_names=None):
    """The class names given, else the model's own (a fastml_lab BDTModel's); one per class or refused."""
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    if class_names is not None and len(class_names) != int(ensemble["n_classes"]):
        raise ConfigError(f"class_names has {len(class_names)} names; the BDT has {ensemble['n_classes']} classes.")
    return class_names


def project_record(ensemble: dict, firmware, *, name: str, backend: str, board, part: str, clock_period_ns: float,
                   types: dict, scaler, class_names, feature_names, timing: dict, hls_dir: str, csim: dict,
                   conifer_version: str, **extra) -> dict:
    """The project record (``project.json``) of an exported BDT, whichever conifer backend wrote it
    (``board``: a :class:`~fastml_lab.boards.Board` or None); ``extra`` entries are added as they are."""
    return {
        "name": name,
        "family": FAMILY,
        "backend": backend,
        "board": board.name if board else None,
        "part": part,
        "clock_period_ns": float(clock_period_ns),
        "interface": firmware.interface,
        "n_inputs": firmware.n_inputs,
        "n_outputs": firmware.n_outputs,
        "precision": {key: t.to_hls() for key, t in types.items()},
        "library": ensemble.get("library"),
        "n_classes": int(ensemble["n_classes"]),
        "n_rounds": int(ensemble["n_trees"]),
        "n_trees": int(ensemble["n_trees"]) * n_scores(ensemble),
        "scaler": scaler.to_dict() if hasattr(scaler, "to_dict") else scaler,
        "class_names": list(class_names) if class_names is not None else None,
        "feature_names": list(feature_names) if feature_names is not None else None,
        "firmware_digest": firmware.digest(),
        "timing": timing,
        "fastml_lab_version": __version__,
        "conifer_version": conifer_version,
        "hls_dir": hls_dir,
        "csim": csim,
        **extra,
    }


def point_config_at(saved, output_dir: Path, **entries) -> None:
    """conifer's saved model names the folder it was written to (the temporary one): name the final
    one (and replace the top-level ``entries`` given)."""
    data = json.loads(saved.read_text())
    data.update(entries)
    data["config"]["output_dir"] = str(output_dir)
    write_json_atomic(saved, data, indent=2)
