"""Random models for the exactness campaign: each case is a pure function of its family and seed.

A case is a JSON-able description (the architecture, the weights' seed and scale, the precision
plan or the quantizers' settings, the strategy, reuse factor and target, or the BDT's trees and
types), so a failing case is reproduced from its description alone. :func:`run_case` exports it,
compiles its C simulation with g++, runs both the C simulation and the emulator on inputs aimed at
the places where fixed-point arithmetic goes wrong (the input type's ends and one step beyond,
exact midpoints of the grid, far out of range, every BDT threshold and half a step either side),
and counts mismatches with :func:`fastml_lab.compare.count_mismatches`. A case the toolkit refuses
with a :class:`~fastml_lab.exceptions.FastMLError` that has a message is "refused"; any other
exception is a crash.

Used by ``tests/test_fuzz_models.py`` (a fixed-seed slice) and ``bench/bench_fuzz.py`` (the long
campaign). TensorFlow, hls4ml, HGQ2 and conifer are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

from fastml_lab.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType

FAMILIES = ("nn", "hgq", "bdt")
STATUSES = ("ok", "refused", "mismatch", "crash")
#: Events per case: random ones plus the probes.
N_RANDOM_EVENTS = 400


# ------------------------------------------------------------------------------------ random types
def random_type(rng, widths=(2, 24), signed_p=0.9, modes=True) -> FixedType:
    """A type of ``widths`` bits with integer bits from -2 to width + 3, any modes."""
    width = int(rng.integers(widths[0], widths[1] + 1))
    integer = int(np.clip(np.round(rng.normal(width / 2, width / 3 + 1)), -2, width + 3))
    signed = bool(rng.random() < signed_p)
    if signed and width == 1:
        width = 2
    rounding = str(rng.choice(ROUNDING_MODES)) if modes else "TRN"
    overflow = str(rng.choice(OVERFLOW_MODES)) if modes else "WRAP"
    return FixedType(width, integer, signed, rounding, overflow)


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


# ------------------------------------------------------------------------------------ dense models
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")


def nn_case(seed: int, max_width: int = 64, max_layers: int = 5) -> dict:
    """A random dense network, precision plan, strategy, reuse factor and target."""
    rng = np.random.default_rng([1, seed])
    n_in = int(_small(rng, max_width))
    layers = []
    if rng.random() < 0.15:
        layers.append({"kind": "bn", "name": "bn_in"})
    n_dense = int(rng.integers(1, max_layers + 1))
    for i in range(n_dense):
        last = i == n_dense - 1
        units = int(_small(rng, max_width)) if not last else int(rng.integers(1, min(max_width, 8) + 1))
        fused = _pick(rng, [None, "relu", "sigmoid", "tanh", "linear"], [0.4, 0.3, 0.1, 0.1, 0.1])
        layers.append({"kind": "dense", "name": f"fc{i}", "units": units, "activation": fused,
                       "use_bias": bool(rng.random() < 0.85)})
        if rng.random() < 0.25:
            layers.append({"kind": "bn", "name": f"bn{i}"})
        if fused in (None, "linear") and not last and rng.random() < 0.8:
            kind = _pick(rng, ["activation", "relu_layer", "leaky", "dropout"], [0.55, 0.2, 0.2, 0.05])
            entry = {"kind": kind, "name": f"{kind}{i}"}
            if kind == "activation":
                entry["fn"] = _pick(rng, ACTIVATIONS, [0.5, 0.2, 0.2, 0.1])
                entry["name"] = f"{entry['fn']}{i}"
            elif kind == "leaky":
                entry["alpha"] = float(_pick(rng, [0.01, 0.1, 0.25, 0.3, 0.5, 1.5]))
            layers.append(entry)
    if rng.random() < 0.45:
        style = _pick(rng, ["activation", "layer", "fused"])
        if style == "fused" and layers[-1]["kind"] == "dense" and layers[-1]["activation"] in (None, "linear"):
            layers[-1]["activation"] = "softmax"
        else:
            layers.append({"kind": "softmax", "name": "softmax_out", "style": style})
    elif rng.random() < 0.03:  # a ReLU with a threshold: the export must refuse it clearly
        layers.append({"kind": "relu_threshold", "name": "thr_out", "threshold": 0.5})
    case = {
        "family": "nn", "seed": seed, "n_in": n_in, "layers": layers,
        "weight_scale": float(_pick(rng, [0.05, 0.3, 1.0, 3.0], [0.15, 0.4, 0.35, 0.1])),
        "weight_grid": _pick(rng, [None, 2, 4, 6], [0.6, 0.1, 0.15, 0.15]),
        "softmax_impl": _pick(rng, ["stable", "latency"]),
        "table_size": _pick(rng, [None, 256, 1024, 2048], [0.6, 0.15, 0.1, 0.15]),
        "backend": _pick(rng, ["vitis", "pynq-z2"], [0.8, 0.2]),
        "strategy": _pick(rng, ["Latency", "Resource"], [0.6, 0.4]),
    }
    case["plan"] = _random_plan(rng, layers)
    case["reuse_factor"] = _random_reuse(rng, n_in, layers)
    return case


def _small(rng, top: int) -> int:
    """Widths 1..top, mostly small (compile time grows with the unrolled products)."""
    if rng.random() < 0.1:
        return int(rng.integers(1, top + 1))
    return int(min(top, max(1, round(rng.lognormal(1.4, 0.7)))))


def _hls_names(layers) -> list:
    names = []
    for layer in layers:
        if layer["kind"] == "dropout":
            continue
        names.append(layer["name"])
        if layer["kind"] == "dense" and layer["activation"] not in (None, "linear"):
            names.append(f"{layer['name']}_{layer['activation']}")
    return names


def _random_plan(rng, layers):
    if rng.random() < 0.15:
        return {"uniform": random_type(rng).to_hls()}
    if rng.random() < 0.1:
        return {"from_data": int(rng.integers(6, 20))}
    plan = {"default": random_type(rng).to_hls(), "input": random_type(rng).to_hls(), "layers": {}}
    if rng.random() < 0.3:
        plan["accum"] = random_type(rng, (8, 24)).to_hls()
    kinds = {}
    for layer in layers:
        kinds[layer["name"]] = layer["kind"]
        if layer["kind"] == "dense" and layer["activation"] not in (None, "linear"):
            kinds[f"{layer['name']}_{layer['activation']}"] = (
                "softmax" if layer["activation"] == "softmax" else "table"
                if layer["activation"] in ("sigmoid", "tanh") else "activation")
        if layer["kind"] == "activation" and layer["fn"] in ("sigmoid", "tanh"):
            kinds[layer["name"]] = "table"
    for name in _hls_names(layers):
        if rng.random() < 0.4:
            continue
        kind = kinds.get(name, "activation")
        slots = {"dense": ["weight", "bias", "accum", "result"], "bn": ["weight", "bias", "result"],
                 "softmax": ["result", "table"], "table": ["result", "table"]}.get(kind, ["result"])
        chosen = {}
        for slot in slots:
            if rng.random() < 0.6:
                if slot == "accum":
                    chosen[slot] = "exact" if rng.random() < 0.3 else random_type(rng, (8, 24)).to_hls()
                elif slot == "table":
                    chosen[slot] = random_type(rng, (6, 24)).to_hls()
                else:
                    chosen[slot] = random_type(rng).to_hls()
        if chosen:
            plan["layers"][name] = chosen
    return plan


def _random_reuse(rng, n_in, layers) -> int:
    """A reuse factor valid for every dense layer (hls4ml's own rule), 1 half of the time."""
    from hls4ml.backends.fpga.fpga_backend import FPGABackend

    shapes, n = [], n_in
    for layer in layers:
        if layer["kind"] == "dense":
            shapes.append((n, layer["units"]))
            n = layer["units"]
    common = set(range(1, 4097))
    for n_i, n_o in shapes:
        common &= {rf for rf in range(1, n_i * n_o + 1) if FPGABackend._validate_reuse_factor(None, n_i, n_o, rf)}
    common = sorted(common)
    if rng.random() < 0.5 or len(common) == 1:
        return 1
    return int(rng.choice(common[1:]))


def build_nn(case: dict):
    """The Keras model of an ``nn_case`` with its weights (seeded)."""
    import keras

    keras.utils.set_random_seed(case["seed"] % (2 ** 31))
    rng = np.random.default_rng([2, case["seed"]])
    model = keras.Sequential([keras.Input((case["n_in"],), name="features")])
    for layer in case["layers"]:
        kind, name = layer["kind"], layer["name"]
        if kind == "dense":
            model.add(keras.layers.Dense(layer["units"], activation=layer["activation"], use_bias=layer["use_bias"],
                                         name=name))
        elif kind == "bn":
            model.add(keras.layers.BatchNormalization(name=name))
        elif kind == "activation":
            model.add(keras.layers.Activation(layer["fn"], name=name))
        elif kind == "relu_layer":
            model.add(keras.layers.ReLU(name=name))
        elif kind == "relu_threshold":
            model.add(keras.layers.ReLU(threshold=layer["threshold"], name=name))
        elif kind == "leaky":
            model.add(keras.layers.LeakyReLU(negative_slope=layer["alpha"], name=name))
        elif kind == "dropout":
            model.add(keras.layers.Dropout(0.3, name=name))
        elif kind == "softmax":
            if layer["style"] == "layer":
                model.add(keras.layers.Softmax(name=name))
            else:
                model.add(keras.layers.Activation("softmax", name=name))
    model.build((None, case["n_in"]))
    scale, grid = case["weight_scale"], case["weight_grid"]
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            weights = [rng.uniform(0.3, 3, gamma.shape), rng.normal(0, 0.7, beta.shape),
                       rng.normal(0, 0.7, mean.shape), rng.uniform(0.3, 3, var.shape)]
        else:
            weights = [rng.normal(0, scale, w.shape) for w in weights]
            if grid is not None:
                weights = [np.round(w * 2 ** grid) / 2 ** grid for w in weights]
        layer.set_weights([w.astype("float32") for w in weights])
    return model


@contextlib.contextmanager
def hls_options(case: dict):
    """Softmax implementation and sigmoid/tanh table size, which ``export`` leaves at hls4ml's
    defaults, set in hls4ml's configuration for this case (both are firmware the emulator reads)."""
    import importlib

    export_module = importlib.import_module("fastml_lab.hls.export")
    original = export_module.config_from_plan

    def patched(*args, **kwargs):
        config = original(*args, **kwargs)
        for name, entry in config.get("LayerName", {}).items():
            if name.endswith("softmax") or name.startswith("softmax"):
                entry["Implementation"] = case.get("softmax_impl", "stable")
            elif case.get("table_size") and ("sigmoid" in name or "tanh" in name):
                entry["TableSize"] = case["table_size"]
        return config

    export_module.config_from_plan = patched
    try:
        yield
    finally:
        export_module.config_from_plan = original


def export_nn(case: dict, out: Path):
    from fastml_lab.hls import export
    from fastml_lab.hls.plan import PrecisionPlan

    model = build_nn(case)
    plan, precision = case["plan"], None
    if "uniform" in plan:
        plan, precision = None, plan["uniform"]
    elif "from_data" in plan:
        X = np.random.default_rng([3, case["seed"]]).normal(0, 2, size=(512, case["n_in"]))
        plan = PrecisionPlan.from_data(model, X, width=plan["from_data"])
    with hls_options(case):
        return export(model, out, plan=plan, precision=precision, backend=case["backend"],
                      strategy=case["strategy"], reuse_factor=case["reuse_factor"])


# ------------------------------------------------------------------------------------ HGQ2 models
def hgq_case(seed: int, max_width: int = 16) -> dict:
    rng = np.random.default_rng([4, seed])
    n_dense = int(rng.integers(1, 4))
    units = [int(_small(rng, max_width)) for _ in range(n_dense - 1)] + [int(rng.integers(1, 7))]
    return {
        "family": "hgq", "seed": seed, "n_in": int(_small(rng, max_width)), "units": units,
        "relu": [bool(rng.random() < 0.6) for _ in range(n_dense - 1)] + [False],
        "use_bias": [bool(rng.random() < 0.85) for _ in range(n_dense)],
        "softmax": bool(rng.random() < 0.35),
        "batchnorm": bool(rng.random() < 0.2),
        "overflow": _pick(rng, ["WRAP", "SAT", "SAT_SYM"]),
        "round_mode": _pick(rng, ["RND", "TRN", "RND_CONV"]),
        "datalane_q": _pick(rng, ["kif", "kbi"], [0.7, 0.3]),
        "f_range": [int(rng.integers(-3, 1)), int(rng.integers(2, 9))],
        "b_range": [0, int(rng.integers(3, 10))],
        "backend": _pick(rng, ["vitis", "pynq-z2"], [0.8, 0.2]),
        "reuse_factor": 1,
    }


def build_hgq(case: dict):
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QBatchNormalization, QDense, QSoftmax
    from hgq.utils import trace_minmax

    keras.utils.set_random_seed(case["seed"] % (2 ** 31))
    rng = np.random.default_rng([5, case["seed"]])
    with QuantizerConfigScope(place="all", default_q_type="kbi", overflow_mode="SAT_SYM"), \
            QuantizerConfigScope(place="datalane", default_q_type=case["datalane_q"],
                                 overflow_mode=case["overflow"], round_mode=case["round_mode"]):
        layers = [keras.Input((case["n_in"],), name="features")]
        for i, (units, relu, bias) in enumerate(zip(case["units"], case["relu"], case["use_bias"])):
            layers.append(QDense(units, activation="relu" if relu else None, use_bias=bias, name=f"fc{i}"))
            if case["batchnorm"] and i == 0 and len(case["units"]) > 1:
                layers.append(QBatchNormalization(name="bn0"))
        if case["softmax"]:
            layers.append(QSoftmax(name="sm"))
        model = keras.Sequential(layers)
    X = rng.normal(0, 2, size=(512, case["n_in"])).astype("float32")
    model(X)
    lo, hi = case["f_range"]
    for layer in model.layers:
        for quantizer in (getattr(layer, "_iq", None), getattr(layer, "_kq", None), getattr(layer, "_bq", None)):
            inner = getattr(quantizer, "quantizer", None)
            if inner is None:
                continue
            if hasattr(inner, "_f"):
                inner._f.assign(rng.integers(lo, hi, size=inner._f.shape).astype("float32"))
            elif hasattr(inner, "_b"):
                inner._b.assign(rng.integers(*case["b_range"], size=inner._b.shape).astype("float32"))
    trace_minmax(model, X, batch_size=512)
    return model


def export_hgq(case: dict, out: Path):
    from fastml_lab.hls import export

    return export(build_hgq(case), out, backend=case["backend"], reuse_factor=case["reuse_factor"])


# ------------------------------------------------------------------------------------ BDTs
def bdt_case(seed: int, max_trees: int = 40, max_depth: int = 5) -> dict:
    """A random ensemble (trees drawn directly, or trained by xgboost/scikit-learn) and its types."""
    rng = np.random.default_rng([6, seed])
    n_features = int(rng.integers(1, 7))
    n_classes = int(_pick(rng, [2, 3, 4], [0.5, 0.3, 0.2]))
    depth = int(rng.integers(1, max_depth + 1))
    n_trees = int(min(max_trees, max(1, round(rng.lognormal(1.8, 0.9)))))
    input_t = random_type(rng, (3, 20))
    precision = {"input": input_t.to_hls(), "score": random_type(rng, (3, 24)).to_hls()}
    if rng.random() < 0.6:
        precision["threshold"] = random_type(rng, (3, 20)).to_hls()
    if rng.random() < 0.1:  # an explicit weight type; one that cannot hold 1 must be refused
        precision["weight"] = _pick(rng, ["ap_fixed<4,3>", "ap_fixed<3,2,AP_RND,AP_SAT>", "ap_ufixed<2,1>",
                                          "ap_fixed<2,1>", "ap_fixed<6,2,AP_TRN,AP_SAT>"])
    case = {"family": "bdt", "seed": seed, "precision": precision,
            "backend": _pick(rng, ["vitis", "pynq-z2"], [0.8, 0.2])}
    source = _pick(rng, ["random", "xgboost", "sklearn"], [0.7, 0.2, 0.1])
    if source == "random":
        case["ensemble"] = _random_ensemble(rng, n_features, n_classes, depth, n_trees, input_t)
    else:
        case["train"] = {"library": source, "n_features": n_features, "n_classes": n_classes, "depth": depth,
                         "rounds": min(n_trees, 20), "learning_rate": float(rng.choice([0.1, 0.3, 0.6]))}
    return case


def _random_ensemble(rng, n_features, n_classes, depth, n_trees, input_t: FixedType) -> dict:
    convention = _pick(rng, ["<", "<="])
    library = "xgboost" if convention == "<" else "sklearn"
    spread = max(input_t.max, 1.0) * 1.2
    value_scale = float(_pick(rng, [0.05, 0.5, 2.0, 20.0]))
    n_scores = 1 if n_classes == 2 else n_classes
    rounds = []
    for _ in range(n_trees):
        rounds.append([_random_tree(rng, n_features, depth, spread, value_scale, input_t, library)
                       for _ in range(n_scores)])
    return {"max_depth": depth, "n_trees": n_trees, "n_classes": n_classes, "n_features": n_features,
            "trees": rounds, "init_predict": [float(v) for v in rng.normal(0, value_scale, n_scores)],
            "norm": float(_pick(rng, [1, 1, 0.5, 0.625, 0.1, 3])), "library": library,
            "splitting_convention": convention, "feature_map": {f"f{i}": i for i in range(n_features)}}


def _random_tree(rng, n_features, depth, spread, value_scale, input_t, library) -> dict:
    tree = {"feature": [], "threshold": [], "value": [], "children_left": [], "children_right": [], "weight": []}

    def threshold():
        kind = rng.random()
        if kind < 0.35:  # on the input grid
            return float(input_t.quantize(rng.uniform(-spread, spread)))
        if kind < 0.55:  # an exact midpoint of the input grid
            return float(input_t.quantize(rng.uniform(-spread, spread)) + input_t.lsb / 2)
        if kind < 0.6:  # the type's ends
            return float(rng.choice([input_t.min, input_t.max, input_t.max + input_t.lsb]))
        value = float(rng.uniform(-spread, spread))
        return float(np.float32(value)) if library == "xgboost" else value

    def grow(level):
        index = len(tree["feature"])
        for key in tree:
            tree[key].append(None)
        if level < depth and (level == 0 or rng.random() < 0.8):
            feature = int(rng.integers(0, n_features))
            tree["feature"][index], tree["threshold"][index], tree["value"][index] = feature, threshold(), 0.0
            tree["weight"][index] = [1 if i == feature else 0 for i in range(n_features)]
            tree["children_left"][index] = grow(level + 1)
            tree["children_right"][index] = grow(level + 1)
        else:
            tree["feature"][index], tree["threshold"][index] = -2, -2.0
            tree["value"][index] = float(rng.normal(0, value_scale))
            tree["weight"][index] = [0] * n_features
            tree["children_left"][index] = tree["children_right"][index] = -1
        return index

    grow(0)
    return tree


def build_bdt(case: dict):
    if "ensemble" in case:
        return case["ensemble"]
    from fastml_lab.bdt.train import train_bdt

    spec = case["train"]
    rng = np.random.default_rng([7, case["seed"]])
    X = rng.normal(scale=1.5, size=(600, spec["n_features"]))
    signal = X[:, 0] + (X[:, 1] * X[:, -1] if spec["n_features"] > 1 else 0) + 0.3 * rng.normal(size=len(X))
    labels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, spec["n_classes"] + 1)[1:-1]))
    return train_bdt((X, labels), library=spec["library"], rounds=spec["rounds"], depth=spec["depth"],
                     learning_rate=spec["learning_rate"], early_stopping=None, validation_split=0.0)


def export_bdt_case(case: dict, out: Path):
    from fastml_lab.bdt.export import export_bdt

    return export_bdt(build_bdt(case), out, precision=case["precision"], backend=case["backend"])


# ------------------------------------------------------------------------------------ inputs
def probe_inputs(project, firmware, seed: int, n_random: int = N_RANDOM_EVENTS) -> np.ndarray:
    """Random events plus, column by column, the values where a cast or a comparison can go wrong."""
    rng = np.random.default_rng([8, seed])
    n_in, t = firmware.n_inputs, firmware.input_type
    lsb = t.lsb
    top = max(abs(t.min), abs(t.max), lsb)
    edges = np.array([t.min, t.max, t.min - lsb, t.max + lsb, t.min - lsb / 2, t.max + lsb / 2, t.max - lsb / 2,
                      lsb / 2, -lsb / 2, lsb, -lsb, 0.0, -0.0, 2 * top, -2 * top, 1e6, -1e6, 1e-30, -1e-30])
    midpoints = (rng.integers(t.raw_min, t.raw_max + 1, size=64) + 0.5) * lsb
    quarters = (rng.integers(t.raw_min, t.raw_max + 1, size=32) + rng.choice([0.25, 0.75], 32)) * lsb
    special = list(edges) + list(midpoints) + list(quarters)
    thresholds = _thresholds(project, firmware)
    rows = [rng.normal(0, top / 2, size=(n_random, n_in)),
            rng.normal(0, top * 3, size=(n_random // 4, n_in)),        # beyond the range: saturate or wrap
            (rng.integers(t.raw_min, t.raw_max + 1, size=(n_random // 2, n_in)) + 0.5) * lsb,  # all on midpoints
            t.quantize(rng.uniform(t.min, t.max, size=(n_random // 4, n_in)))]  # all on the grid
    for f in range(n_in):
        probe = np.array(special + sorted(thresholds.get(f, ())))
        base = rng.normal(0, top / 2, size=(len(probe), n_in))
        base[:, f] = probe
        rows.append(base)
    X = np.concatenate(rows)
    if firmware.interface == "axi_stream":  # the stream carries float32 words
        X = X.astype(np.float32)
    return X


def _thresholds(project, firmware) -> dict:
    """For a BDT: every threshold (its literal and its cast value), one step and half a step either side."""
    layer = firmware._layers[0]
    if layer.op != "bdt":
        return {}
    lsb = firmware.input_type.lsb
    values: dict = {}
    literal = json.loads((project.hls_dir / "myproject.json").read_text())
    for trees in literal["trees"]:
        for tree in trees:
            for f, thr in zip(tree["feature"], tree["threshold"]):
                if f >= 0:
                    values.setdefault(int(f), set()).add(float(thr))
    split = layer.feature >= 0
    for f, thr in zip(layer.feature[split], layer.threshold[split]):
        values.setdefault(int(f), set()).update(float(thr) + d for d in (0.0, lsb, -lsb, lsb / 2, -lsb / 2))
    return values


# ------------------------------------------------------------------------------------ one case
def make_case(family: str, seed: int, small: bool = False) -> dict:
    if family == "nn":
        return nn_case(seed, max_width=16 if small else 64, max_layers=3 if small else 5)
    if family == "hgq":
        return hgq_case(seed, max_width=8 if small else 16)
    if family == "bdt":
        return bdt_case(seed, max_trees=12 if small else 40, max_depth=4 if small else 5)
    raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")


def describe(case: dict) -> str:
    """One line saying what a case is."""
    if case["family"] == "nn":
        parts = []
        for layer in case["layers"]:
            if layer["kind"] == "dense":
                parts.append(f"D{layer['units']}" + (f"+{layer['activation']}" if layer["activation"] else ""))
            else:
                parts.append(layer.get("fn") or layer["kind"])
        return (f"nn seed {case['seed']}: {case['n_in']}->{'-'.join(parts)} {case['strategy']} rf "
                f"{case['reuse_factor']} {case['backend']} plan {json.dumps(case['plan'])[:60]}")
    if case["family"] == "hgq":
        return (f"hgq seed {case['seed']}: {case['n_in']}->{'-'.join(map(str, case['units']))} "
                f"{case['overflow']}/{case['round_mode']} softmax={case['softmax']} {case['backend']}")
    what = (f"{case['ensemble']['n_trees']} trees depth {case['ensemble']['max_depth']} "
            f"{case['ensemble']['splitting_convention']}" if "ensemble" in case else f"trained {case['train']}")
    return f"bdt seed {case['seed']}: {what} {case['precision']} {case['backend']}"


def run_case(case: dict, workdir: Path, keep: bool = False) -> dict:
    """Export, compile, run both sides and compare; returns a JSON-able outcome.

    ``status``: "ok" (every value equal), "refused" (a FastMLError with a message, before any
    value was compared), "csim-aborted" (the reference itself stopped: the compiled C simulation
    aborted and ``run_csim`` said so with a CsimError; when the ap_types headers' BEYOND_MSB check
    stopped it, the simulation without header checks is compared instead, and its values and
    mismatches are counted), "mismatch" or "crash" (any other exception, or a refusal without a
    message).
    """
    from fastml_lab.compare import count_mismatches
    from fastml_lab.exceptions import CompileError, CsimError, FastMLError
    from fastml_lab.hls import run_csim
    from fastml_lab.hls.csim import BEYOND_MSB

    workdir = Path(workdir)
    out = workdir / f"{case['family']}_{case['seed']}"
    result = {"family": case["family"], "seed": case["seed"], "description": describe(case),
              "values": 0, "mismatches": 0}
    start = time.perf_counter()
    stage = "export"
    try:
        exporter = {"nn": export_nn, "hgq": export_hgq, "bdt": export_bdt_case}[case["family"]]
        try:
            project = exporter(case, out)
        except FastMLError as exc:
            message = str(exc).strip()
            result.update(status="refused" if len(message) >= 20 else "crash",
                          error=type(exc).__name__, message=message[:500], stage=stage)
            return result
        firmware = project.firmware()
        X = probe_inputs(project, firmware, case["seed"])
        stage = "C simulation"
        simulated = run_csim(project, X)
        stage = "emulator"
        emulated = firmware.predict(X)
        comparison = count_mismatches(simulated, emulated, ("C simulation", "emulator"))
        result.update(values=comparison.values, mismatches=comparison.mismatches, events=comparison.events,
                      status="ok" if comparison.identical else "mismatch", layers=firmware.layer_names,
                      ops=sorted({layer.op for layer in firmware._layers}))
        if not comparison.identical:
            bad = np.argwhere(simulated != emulated)
            row, col = (int(v) for v in bad[0])
            result["first"] = {"input": X[row].tolist(), "output": col, "csim": float(simulated[row, col]),
                               "emulator": float(emulated[row, col])}
    except Exception as exc:  # noqa: BLE001  (a crash is what this campaign looks for)
        kind = "compile" if isinstance(exc, CompileError) else "crash"
        aborted = isinstance(exc, CsimError) and stage == "C simulation"
        if aborted and BEYOND_MSB in str(exc):
            # The headers' check stopped the reference; the firmware's arithmetic is still defined:
            # compare the simulation compiled as synthesis sees it (no asserts) with the emulator.
            try:
                comparison = count_mismatches(run_csim(project, X, header_checks=False), firmware.predict(X),
                                              ("C simulation without header checks", "emulator"))
            except Exception as again:  # noqa: BLE001
                exc = again
                aborted = False
            else:
                result.update(values=comparison.values, mismatches=comparison.mismatches,
                              unchecked=True, ops=sorted({layer.op for layer in firmware._layers}))
                aborted = comparison.identical  # otherwise a mismatch, counted as one below
        status = "csim-aborted" if aborted else ("mismatch" if result["mismatches"] else "crash")
        result.update(status=status, error=type(exc).__name__, message=str(exc)[:1500], stage=stage,
                      crash_kind=kind, traceback=traceback.format_exc()[-3000:])
    finally:
        result["seconds"] = round(time.perf_counter() - start, 2)
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
        _clear_keras()
    return result


def _clear_keras():
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def type_pool_values(t: FixedType) -> list:
    """Values at and around ``t``'s ends and grid for the FixedType-vs-ap_fixed comparisons."""
    lsb = t.lsb
    vals = [t.min, t.max, t.min - lsb, t.max + lsb, t.min - lsb / 2, t.max + lsb / 2, t.max - lsb / 2,
            t.min + lsb / 2, lsb / 2, -lsb / 2, 3 * lsb / 2, -3 * lsb / 2, lsb / 4, -lsb / 4]
    return [v for v in vals if math.isfinite(v)]


# ------------------------------------------------------------------------------------ FixedType vs ap_fixed
def random_oracle_types(seed: int, n_extra: int = 24) -> list:
    """Every rounding x overflow mode, signed and unsigned, at random widths 1-32 and integer bits
    -6..width+6, and signed at width 1, plus ``n_extra`` more of any width up to 48 (all within the
    53 exact bits)."""
    import itertools

    rng = np.random.default_rng([9, seed])
    types = []
    for (rounding, overflow), signed in itertools.product(itertools.product(ROUNDING_MODES, OVERFLOW_MODES),
                                                          (True, False)):
        width = int(rng.integers(1, 33))
        types.append(FixedType(width, int(rng.integers(-6, width + 7)), signed, rounding, overflow))
        if signed:  # 1-bit signed types: the sign bit alone (HGQ2 writes them for 0-bit elements)
            types.append(FixedType(1, int(rng.integers(-3, 5)), True, rounding, overflow))
    for _ in range(n_extra):
        width = int(_pick(rng, [int(rng.integers(1, 9)), int(rng.integers(9, 33)), int(rng.integers(33, 49))]))
        types.append(FixedType(width, int(rng.integers(-6, width + 7)), bool(rng.random() < 0.7),
                               str(rng.choice(ROUNDING_MODES)), str(rng.choice(OVERFLOW_MODES))))
    return types


def oracle_values(types: list, seed: int) -> np.ndarray:
    """Values for every type: each type's ends, one step and half a step beyond them, exact midpoints
    and quarter points of its grid, plus random values at many scales, huge and tiny ones, +-0 and +-inf."""
    rng = np.random.default_rng([10, seed])
    vals = [0.0, -0.0, np.inf, -np.inf, 1e300, -1e300, 2.0 ** 60, -2.0 ** 60, 2.0 ** 53 + 2, -(2.0 ** 53) - 2,
            1e-300, -1e-300, 5e-324, -5e-324, 2.0 ** -60, -(2.0 ** -60), 0.5, -0.5, 1.0, -1.0]
    for scale in (1e-4, 1e-2, 1.0, 10.0, 1e3, 1e5, 1e8):
        vals += list(rng.normal(0, scale, 40))
    for t in types:
        vals += type_pool_values(t)
        raws = rng.integers(t.raw_min, t.raw_max + 1, size=6).astype(np.float64)
        vals += list((raws + 0.5) * t.lsb) + list((raws + rng.choice([0.25, 0.75], 6)) * t.lsb)
        vals += list(t.from_raw(raws))
    values = np.array(vals, dtype=np.float64)
    return values[np.isfinite(values) | np.isinf(values)]


def oracle_source(types: list) -> str:
    """A C++ program that reads doubles from stdin and prints each type's conversion of each, in hex."""
    body = "\n".join(
        f"    for (int i = 0; i < n; i++) {{ {t.to_hls()} x = v[i]; printf(\"%a\\n\", x.to_double()); }}"
        for t in types)
    return f"""
#include "ap_fixed.h"
#include <cstdio>
#include <cstdlib>
#include <vector>
int main() {{
    std::vector<double> v; char buf[64];
    while (scanf("%63s", buf) == 1) v.push_back(strtod(buf, 0));
    int n = (int)v.size();
{body}
}}
"""


def compare_with_oracle(types: list, values: np.ndarray, output: str) -> list:
    """``[(type, value, ours, C++)]`` for every conversion that differs."""
    expected = np.array([float.fromhex(x) for x in output.split()]).reshape(len(types), len(values))
    bad = []
    for t, row in zip(types, expected):
        got = t.quantize(values)
        for k in np.flatnonzero(got != row):
            bad.append((t.to_hls(), float(values[k]), float(got[k]), float(row[k])))
    return bad
