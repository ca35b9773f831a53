"""Read the firmware description of a BDT from the C++ conifer wrote (``firmware/parameters.h``).

The emulator is built from what the compiler sees, not from the model conifer started from: the
typedefs, the splitting convention, and every constant as its decimal literal, parsed as the C++
compiler parses it (to the nearest double) and cast to its type with the type's own modes.

Numpy only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..exceptions import DataError, UnsupportedError
from ..fixed import FixedType
from ..firmware.registry import Field, TYPE
from ..firmware.ops.bdt import LEAF, OP, Ensemble
from .ensemble import FAMILY

_TYPEDEF = re.compile(r"typedef\s+(ap_u?fixed<[^;]*>|ap_u?int<[^;]*>)\s+(\w+)\s*;")
_INT_CONST = re.compile(r"static const (?:int|bool)\s+(\w+)\s*=\s*(\w+)\s*;")
_CONVENTION = re.compile(r'splitting_convention\s*=\s*"([^"]*)"')
_BDT = re.compile(r"bdt\s*=\s*\{[^{]*?\n\s*([^,\s]+)\s*,\s*//[^\n]*\n\s*\{([^}]*)\}", re.S)
_TREE = re.compile(r"tree_(\d+)_(\d+)\s*=\s*\{(.*?)\n\};", re.S)
TREE_FIELDS = ("feature", "weight", "threshold", "value", "children_left", "children_right", "parent")


def _groups(text: str) -> list:
    """The top-level ``{...}`` groups of ``text`` (their insides)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i + 1
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start:i])
    return out


def _numbers(text: str) -> list:
    return [float(v) for v in text.replace("{", " ").replace("}", " ").replace(",", " ").split()]


def read_parameters(path) -> tuple:
    """``(description, arrays)`` of the ensemble in ``parameters.h`` at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: the folder holds no conifer HLS project.")
    text = path.read_text()
    types = {name: FixedType.parse(t) for t, name in _TYPEDEF.findall(text)}
    consts = dict(_INT_CONST.findall(text))
    missing = [k for k in ("input_t", "threshold_t", "weight_t", "score_t") if k not in types]
    convention = _CONVENTION.search(text)
    bdt = _BDT.search(text)
    if missing or convention is None or bdt is None or consts.get("unroll") != "true":
        raise UnsupportedError(
            f"{path} is not a parameters.h that the emulator reads (conifer's xilinxhls backend, "
            f"unrolled trees): {'missing typedefs ' + ', '.join(missing) if missing else 'unexpected layout'}.")
    n_features, n_classes = int(consts["n_features"]), int(consts["n_classes"])
    n_scores = 1 if n_classes == 2 else n_classes
    trees = {}
    for ic, it, body in _TREE.findall(text):
        fields = dict(zip(TREE_FIELDS, _groups(body)))
        trees[int(ic), int(it)] = fields
    n_rounds = 1 + max(it for _, it in trees) if trees else 0
    if len(trees) != n_scores * n_rounds or not trees:
        raise UnsupportedError(f"{path}: expected {n_scores} trees per round, found {len(trees)} trees.")
    n_nodes = max(len(_numbers(f["feature"])) for f in trees.values())
    shape = (n_scores, n_rounds, n_nodes)
    feature = np.full(shape, LEAF, dtype=np.int32)
    left = np.full(shape, -1, dtype=np.int32)
    right = np.full(shape, -1, dtype=np.int32)
    threshold = np.zeros(shape)
    value = np.zeros(shape)
    depth = 0
    for (ic, it), f in trees.items():
        feat = np.array(_numbers(f["feature"]), dtype=np.int64)
        n = feat.size
        weight = np.array(_numbers(f["weight"])).reshape(n, n_features)
        onehot = np.zeros((n, n_features))
        split = feat >= 0
        onehot[np.flatnonzero(split), feat[split]] = 1.0
        if not np.array_equal(weight, onehot):
            raise UnsupportedError(f"{path}: tree_{ic}_{it} has oblique splits (weights other than one-hot); "
                                   "the emulator runs axis-aligned trees only.")
        feature[ic, it, :n] = feat
        left[ic, it, :n] = _numbers(f["children_left"])
        right[ic, it, :n] = _numbers(f["children_right"])
        threshold[ic, it, :n] = _numbers(f["threshold"])
        value[ic, it, :n] = _numbers(f["value"])
        depth = max(depth, _depth(left[ic, it, :n], right[ic, it, :n]))
    norm, init = _numbers(bdt.group(1)), _numbers(bdt.group(2))
    if len(init) != n_scores or len(norm) != 1:
        raise UnsupportedError(f"{path}: expected {n_scores} init_predict value(s) and one normalisation.")
    score_t, threshold_t = types["score_t"], types["threshold_t"]
    raw = {"feature": feature, "children_left": left, "children_right": right,
           "threshold": threshold_t.to_raw(threshold), "value": score_t.to_raw(value),
           "init_predict": score_t.to_raw(np.array(init)), "norm": score_t.to_raw(np.array(norm))}
    return ensemble_description(
        {"input": types["input_t"], "threshold": threshold_t, "score": score_t, "weight": types["weight_t"]},
        raw, n_features=n_features, n_classes=n_classes, max_depth=depth,
        splitting_convention=convention.group(1), reduction="balanced")


def ensemble_description(types: dict, raw: dict, *, n_features: int, n_classes: int, max_depth: int,
                         splitting_convention: str, reduction: str) -> tuple:
    """``(description, arrays)`` of the one-op firmware of an ensemble, from its tables as stored:
    ``raw`` holds ``feature``, ``children_left``, ``children_right`` ((n_scores, n_rounds, n_nodes),
    leaves marked :data:`LEAF`), ``threshold`` and ``value`` (the stored integers of the threshold
    and score types), ``init_predict`` (n_scores,) and ``norm`` (1,) (score-type integers).
    ``types``: ``{input, threshold, score, weight}`` as FixedTypes. Shared by the readers of
    conifer's HLS (:func:`read_parameters`) and VHDL (:func:`fastml_lab.bdt.vhdl.read_vhdl`)."""
    n_scores, n_rounds = np.shape(raw["feature"])[:2]
    score_t = types["score"]
    spec = {"name": "bdt", "op": OP, "data_type": types["input"], "result_type": score_t,
            "n_features": n_features, "n_classes": n_classes, "n_rounds": n_rounds, "max_depth": max_depth,
            "splitting_convention": splitting_convention, "threshold_type": types["threshold"],
            "weight_type": types["weight"], "score_type": score_t, "reduction": reduction}
    arrays = {f"bdt/{key}": np.asarray(raw[key]) for key in
              ("feature", "children_left", "children_right", "threshold", "value", "init_predict", "norm")}
    arrays = {k: (v.astype(np.int64) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
    description = {
        "schema_version": 1, "family": FAMILY, "interface": "parallel",
        "n_inputs": n_features, "n_outputs": n_scores,
        "input_type": Field(TYPE).encode(types["input"]), "output_type": Field(TYPE).encode(score_t),
        "layers": [Ensemble.encode(spec)],
    }
    return description, arrays


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth of the deepest leaf of one tree (root: 0)."""
    depth, level = 0, [0]
    while True:
        nxt = [c for n in level for c in (left[n], right[n]) if c >= 0]
        if not nxt:
            return depth
        depth, level = depth + 1, nxt
