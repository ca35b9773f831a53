"""The emulator against the compiled C simulation: zero mismatches on every output value.

Each case is a model, a precision plan and a target; its project is exported once, compiled once
with g++, and both sides run on the same inputs, which include values that saturate and wrap and
exact midpoints of the input grid (where rounding modes differ).
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fastml_lab.hls import export, run_csim  # noqa: E402

pytestmark = [pytest.mark.needs_gxx, pytest.mark.slow]


def _mlp(n_in, layers, seed, bn_input=False):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((n_in,))])
    if bn_input:
        model.add(keras.layers.BatchNormalization(name="bn_in"))
    for i, spec in enumerate(layers):
        kind, arg = spec
        if kind == "dense":
            model.add(keras.layers.Dense(arg, name=f"fc{i}"))
        elif kind == "act":
            model.add(keras.layers.Activation(arg, name=f"{arg}{i}"))
        elif kind == "bn":
            model.add(keras.layers.BatchNormalization(name=f"bn{i}"))
        elif kind == "leaky":
            model.add(keras.layers.LeakyReLU(arg, name=f"leaky{i}"))
        elif kind == "relu_layer":
            model.add(keras.layers.ReLU(name=f"relu_layer{i}"))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(256, n_in)).astype("float32")
    model(X)  # build
    for layer in model.layers:  # non-trivial batch-norm statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return model


JET = [("dense", 32), ("act", "relu"), ("dense", 16), ("act", "relu"), ("dense", 5), ("act", "softmax")]

CASES = {
    "jet_16_6_softmax": dict(layers=JET, precision="ap_fixed<16,6>"),
    "4bit_rnd_conv_sat": dict(layers=[("dense", 12), ("act", "relu"), ("dense", 4)],
                              precision="ap_fixed<4,2,AP_RND_CONV,AP_SAT>"),
    "18bit_softmax": dict(layers=JET, precision="ap_fixed<18,8,AP_RND,AP_SAT>"),
    "modes_mixed_a": dict(
        layers=[("dense", 12), ("act", "relu"), ("dense", 10), ("act", "relu"), ("dense", 8),
                ("act", "relu"), ("dense", 5)],
        plan={"default": "ap_fixed<10,4>", "input": "ap_fixed<8,4,AP_RND,AP_SAT>", "layers": {
            "fc0": {"weight": "ap_fixed<6,1,AP_RND_CONV,AP_SAT>", "result": "ap_fixed<8,3,AP_TRN,AP_WRAP>"},
            "fc2": {"weight": "ap_fixed<7,2,AP_RND_ZERO,AP_SAT_SYM>", "result": "ap_fixed<9,3,AP_RND,AP_SAT>",
                    "accum": "ap_fixed<14,6,AP_TRN,AP_WRAP>"},
            "fc4": {"result": "ap_fixed<10,4,AP_RND_CONV,AP_SAT_SYM>"},
            "fc6": {"weight": "ap_fixed<5,1>", "bias": "ap_fixed<6,2,AP_RND,AP_SAT_ZERO>",
                    "result": "ap_fixed<12,5,AP_RND_ZERO,AP_SAT_ZERO>"}}}),
    "modes_mixed_b_saturating_accumulator": dict(
        layers=[("dense", 10), ("act", "relu"), ("dense", 6), ("act", "relu"), ("dense", 5)],
        plan={"default": "ap_fixed<12,4>", "input": "ap_fixed<10,5,AP_RND_INF,AP_WRAP>", "layers": {
            "fc0": {"accum": "ap_fixed<10,3,AP_RND_MIN_INF,AP_SAT>", "result": "ap_fixed<8,3,AP_TRN_ZERO,AP_SAT_SYM>"},
            "fc2": {"accum": "ap_fixed<9,4,AP_RND,AP_SAT_SYM>", "result": "ap_fixed<8,4,AP_RND_INF,AP_SAT>"},
            "fc4": {"weight": "ap_fixed<8,2,AP_RND_MIN_INF,AP_WRAP>", "result": "ap_fixed<14,6,AP_RND_MIN_INF,AP_SAT>"}}}),
    "sigmoid_tanh_linear": dict(layers=[("dense", 8), ("act", "tanh"), ("dense", 6), ("act", "linear"),
                                        ("dense", 3), ("act", "sigmoid")],
                                precision="ap_fixed<14,5,AP_RND,AP_SAT>"),
    "batchnorm_leaky": dict(layers=[("dense", 10), ("bn", None), ("leaky", 0.25), ("dense", 8),
                                    ("relu_layer", None), ("dense", 4), ("act", "softmax")],
                            precision="ap_fixed<16,7,AP_RND,AP_SAT>", bn_input=True),
    "pynq_z2_axi_stream": dict(layers=JET, precision="ap_fixed<12,4,AP_RND,AP_SAT>", backend="pynq-z2"),
    # reuse 3 divides both layers (6 x 24 and 24 x 5), so hls4ml keeps it
    "resource_reuse_3": dict(layers=[("dense", 24), ("act", "relu"), ("dense", 5), ("act", "softmax")],
                             precision="ap_fixed<16,6>", strategy="Resource", reuse_factor=3),
    "latency_softmax_wrap_inputs": dict(layers=[("dense", 8), ("act", "relu"), ("dense", 4)],
                                        precision="ap_fixed<8,2>"),
}


def _inputs(n_in: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2, size=(6000, n_in))
    X[:300] *= 40                      # far out of range: saturates or wraps
    X[300:600] = rng.integers(-512, 512, size=(300, n_in)) / 64 + 1 / 128  # exact midpoints
    X[600:700] = rng.choice([-8.0, -4.0, -2.0, 0.0, 1.99, 3.999, 7.99], size=(100, n_in))
    return X.astype(np.float32)


@pytest.fixture(scope="session")
def bitexact_projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("bitexact")
    projects = {}
    for i, (name, case) in enumerate(CASES.items()):
        model = _mlp(6, case["layers"], seed=i, bn_input=case.get("bn_input", False))
        projects[name] = export(model, root / name, plan=case.get("plan"), precision=case.get("precision"),
                                backend=case.get("backend", "vitis"), strategy=case.get("strategy", "Latency"),
                                reuse_factor=case.get("reuse_factor", 1))
    return projects


@pytest.mark.parametrize("case", list(CASES))
def test_emulator_equals_csim_on_every_value(bitexact_projects, case):
    project = bitexact_projects[case]
    X = _inputs(project.firmware().n_inputs, seed=len(case))
    emulated = project.firmware().predict(X)
    simulated = run_csim(project, X)
    assert emulated.shape == simulated.shape == (X.shape[0], project.firmware().n_outputs)
    bad = np.argwhere(emulated != simulated)
    assert bad.size == 0, (
        f"{case}: {len(bad)} of {emulated.size} values differ; first at {bad[0].tolist()}: "
        f"emulator {emulated[tuple(bad[0])]} vs C simulation {simulated[tuple(bad[0])]}"
    )
    # The inputs really exercised overflow: some results sit on the output type's rails or wrap.
    assert np.unique(emulated).size > 10


def test_cases_cover_the_promised_matrix(bitexact_projects):
    """Widths 4..18, all rounding and overflow modes of the issue, softmax or not, BN, AXI wrapper."""
    import json

    types = set()
    ops = set()
    for project in bitexact_projects.values():
        desc = json.loads((project.path / "firmware.json").read_text())
        ops |= {layer["op"] for layer in desc["layers"]}
        for layer in desc["layers"]:
            types |= {(v["width"], v["rounding"], v["overflow"]) for k, v in layer.items() if k.endswith("_type")}
        types.add((desc["input_type"]["width"], desc["input_type"]["rounding"], desc["input_type"]["overflow"]))
    widths = {w for w, _, _ in types}
    assert min(widths) <= 4 and 18 in widths
    assert {"TRN", "RND", "RND_CONV", "RND_ZERO"} <= {r for _, r, _ in types}
    assert {"WRAP", "SAT", "SAT_SYM", "SAT_ZERO"} <= {o for _, _, o in types}
    # (hls4ml removes linear activations, so 'linear' never reaches the firmware)
    assert {"dense", "relu", "softmax", "sigmoid", "tanh", "normalize", "leaky_relu", "thresholded_relu"} <= ops
    assert any(p.firmware().interface == "axi_stream" for p in bitexact_projects.values())


def test_second_csim_run_reuses_the_compiled_library(bitexact_projects):
    from fastml_lab.hls.csim import compile_csim

    project = bitexact_projects["jet_16_6_softmax"]
    first = compile_csim(project)
    mtime = first.stat().st_mtime_ns
    assert compile_csim(project) == first and first.stat().st_mtime_ns == mtime
