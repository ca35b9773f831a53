"""The firmware op registry: one class per op, its description round trip, the reader's dispatch,
and the one-pass dense + ReLU against the layer-by-layer computation. Numpy only (no hls4ml)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastml_lab.emulator import Firmware
from fastml_lab.exceptions import UnsupportedError
from fastml_lab.firmware import Op, build_layer, known_ops, op_classes, registry, supported_functions
from fastml_lab.firmware.reader import read_project
from fastml_lab.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType

T16 = FixedType(16, 6).to_dict()
T8 = FixedType(8, 3, rounding="RND", overflow="SAT").to_dict()
U10 = FixedType(10, 4, signed=False).to_dict()

#: One description (and its stored arrays) per registered op name.
EXAMPLES = {
    "dense": ({"n_in": 3, "n_out": 2, "weight_type": T8, "bias_type": T8, "accum_type": FixedType(24, 10).to_dict(),
               "strategy": "latency", "reuse_factor": 1, "kernel": "DenseLatency"},
              {"weight": np.array([[1, -2], [3, 4], [-5, 6]]), "bias": np.array([7, -8])}),
    "relu": ({}, {}),
    "linear": ({}, {}),
    "leaky_relu": ({"param": 0.25, "param_type": T16}, {}),
    "thresholded_relu": ({"param": 1.5, "param_type": T16}, {}),
    "sigmoid": ({"table_size": 4, "table_type": U10}, {"table": np.array([1, 2, 3, 4])}),
    "tanh": ({"table_size": 4, "table_type": T16}, {"table": np.array([-4, -1, 1, 4])}),
    "normalize": ({"scale_type": T8, "bias_type": T8}, {"scale": np.array([3, 5]), "bias": np.array([-1, 2])}),
    "softmax": ({"implementation": "stable", "exp_table_size": 4, "inv_table_size": 8, "exp_table_type": U10,
                 "inv_table_type": U10, "inv_inp_type": T16, "accum_type": T16, "index_type": T16,
                 "exp_scale": 1.0},
                {"exp_table": np.array([64, 32, 16, 8]), "inv_table": np.arange(8)}),
    "quantize": ({"element_types": [T8, U10]}, {"type_index": np.array([0, -1, 1])}),
    # One stump per class: split on feature 0 (node 0), two leaves.
    "bdt": ({"n_features": 2, "n_classes": 2, "n_rounds": 1, "max_depth": 1, "splitting_convention": "<",
             "threshold_type": T16, "weight_type": T16, "score_type": T16, "library": "xgboost",
             "reduction": "balanced"},
            {"feature": np.array([[[0, -2, -2]]]), "children_left": np.array([[[1, -1, -1]]]),
             "children_right": np.array([[[2, -1, -1]]]), "threshold": np.array([[[1024, 0, 0]]]),
             "value": np.array([[[0, -512, 512]]]), "init_predict": np.array([0]), "norm": np.array([1024])}),
    "conv2d": ({"in_height": 3, "in_width": 3, "n_chan": 1, "filt_height": 2, "filt_width": 2, "stride_height": 1,
                "stride_width": 1, "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0, "out_height": 2,
                "out_width": 2, "n_filt": 2, "n_in": 4, "n_out": 2, "weight_type": T8, "bias_type": T8,
                "accum_type": FixedType(24, 10).to_dict(), "strategy": "latency", "reuse_factor": 1, "io": "parallel"},
               {"weight": np.array([[1, -2], [3, 4], [-5, 6], [0, 1]]), "bias": np.array([7, -8])}),
    "conv1d": ({"in_height": 1, "in_width": 4, "n_chan": 2, "filt_height": 1, "filt_width": 2, "stride_height": 1,
                "stride_width": 2, "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 1, "out_height": 1,
                "out_width": 2, "n_filt": 1, "n_in": 4, "n_out": 1, "weight_type": T8, "bias_type": T8,
                "accum_type": FixedType(24, 10).to_dict(), "strategy": "resource", "reuse_factor": 2, "io": "stream"},
               {"weight": np.array([[1], [-2], [3], [4]]), "bias": np.array([5])}),
    "zeropad2d": ({"in_height": 2, "in_width": 2, "n_chan": 1, "pad_top": 1, "pad_bottom": 0, "pad_left": 0,
                   "pad_right": 1, "out_height": 3, "out_width": 3}, {}),
    "zeropad1d": ({"in_height": 1, "in_width": 3, "n_chan": 1, "pad_top": 0, "pad_bottom": 0, "pad_left": 1,
                   "pad_right": 1, "out_height": 1, "out_width": 5}, {}),
    "pooling2d": ({"in_height": 4, "in_width": 4, "n_chan": 1, "filt_height": 2, "filt_width": 2, "stride_height": 2,
                   "stride_width": 2, "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0, "out_height": 2,
                   "out_width": 2, "pool_op": "max", "count_pad": 0, "accum_type": T16, "io": "stream"}, {}),
    "pooling1d": ({"in_height": 1, "in_width": 4, "n_chan": 2, "filt_height": 1, "filt_width": 3, "stride_height": 1,
                   "stride_width": 1, "pad_top": 0, "pad_bottom": 0, "pad_left": 1, "pad_right": 1, "out_height": 1,
                   "out_width": 4, "pool_op": "average", "count_pad": 0, "accum_type": T16, "io": "parallel"}, {}),
    "global_pooling2d": ({"n_pixels": 4, "n_chan": 2, "pool_op": "average", "accum_type": T16, "io": "parallel"}, {}),
    "global_pooling1d": ({"n_pixels": 3, "n_chan": 1, "pool_op": "max", "accum_type": T16, "io": "stream"}, {}),
    "repack": ({}, {}),
    # da4ml's program: two inputs, their difference (shifted), its ReLU; rows as CODE_COLUMNS.
    "dais_stage": ({"lut_cost": 12.5, "register_bits": 20},
                   {"code": np.array([[-1, 0, -1, 0, 1, 2, 4, -4], [-1, 1, -1, 0, 1, 2, 4, -4],
                                      [1, 0, 1, 1, 1, 4, 4, -4], [2, 2, -1, 0, 0, 4, 4, -4]]),
                    "inp_shifts": np.array([0, 0]), "out_idxs": np.array([2, 3]), "out_shifts": np.array([0, 0]),
                    "out_negs": np.array([0, 0])}),
}


def _example(op):
    fields, arrays = EXAMPLES[op]
    spec = {"name": "lay", "op": op, "data_type": T16, "result_type": T16, **fields}
    return spec, {f"lay/{key}": np.asarray(value, dtype=np.int64) for key, value in arrays.items()}


def test_every_registered_op_has_an_example_here():
    assert set(EXAMPLES) == set(known_ops())


@pytest.mark.parametrize("op", sorted(EXAMPLES))
def test_every_op_round_trips_description_to_layer(op):
    spec, arrays = _example(op)
    layer = build_layer(json.loads(json.dumps(spec)), arrays)
    assert type(layer) is registry.op_class(op) and layer.op == op
    again, again_arrays = layer.describe()
    assert again == spec
    assert again_arrays.keys() == arrays.keys()
    assert all(np.array_equal(again_arrays[k], arrays[k]) for k in arrays)
    # The declared fields are exactly the ones the description holds beside the common four.
    assert set(type(layer).fields) == set(spec) - set(registry.COMMON_FIELDS)


@pytest.mark.parametrize("op", [op for op in sorted(EXAMPLES) if EXAMPLES[op][0]])
def test_a_missing_field_names_the_layer_and_the_field(op):
    spec, arrays = _example(op)
    required = [k for k, f in registry.op_class(op).fields.items() if f.default is registry._REQUIRED]
    del spec[required[0]]
    with pytest.raises(KeyError, match=required[0]):
        build_layer(spec, arrays)


def test_an_op_must_write_the_fields_it_declares():
    dense = registry.op_class("dense")
    spec, _ = _example("dense")
    with pytest.raises(TypeError, match="does not declare"):
        dense.encode({**spec, "colour": "red"})
    del spec["n_in"]
    with pytest.raises(TypeError, match="n_in"):
        dense.encode(spec)


def test_the_old_reader_module_reads_through_the_registry():
    from fastml_lab.hls import firmware_reader

    assert firmware_reader.SUPPORTED_FUNCTIONS == supported_functions()
    assert firmware_reader.read_project is read_project


def test_supported_functions_and_known_ops_come_from_the_registry(monkeypatch):
    assert {"dense", "relu", "softmax", "sigmoid", "tanh", "normalize"} <= set(supported_functions())
    monkeypatch.setattr(registry, "_BY_OP", dict(registry._BY_OP))
    monkeypatch.setattr(registry, "_BY_FUNCTION", dict(registry._BY_FUNCTION))
    monkeypatch.setattr(registry, "_CLASSES", list(registry._CLASSES))

    @registry.register_op
    class Square(Op):
        ops = ("square",)
        functions = ("square",)

        def compute(self, x):
            return x * x

    assert "square" in supported_functions() and "square" in known_ops() and Square in op_classes()
    layer = build_layer({"name": "sq", "op": "square", "data_type": T16, "result_type": T16}, {})
    assert np.array_equal(layer(np.array([[1.5, -2.0]])), [[2.25, 4.0]])
    with pytest.raises(TypeError, match="already registered"):
        @registry.register_op
        class Other(Op):
            ops = ("square",)


def test_an_unknown_op_in_a_description_names_the_known_ones():
    with pytest.raises(UnsupportedError) as err:
        build_layer({"name": "c1", "op": "conv3d", "data_type": T16, "result_type": T16}, {})
    assert "'conv3d'" in str(err.value) and ", ".join(known_ops()) in str(err.value)


# ------------------------------------------------------------------------ reading generated code
def _fake_project(root, calls: str):
    """A minimal hls4ml-shaped project: a dense layer 2 -> 2 and what ``calls`` adds."""
    fw = root / "firmware"
    (fw / "weights").mkdir(parents=True)
    (fw / "defines.h").write_text("typedef ap_fixed<16,6> input_t;\ntypedef ap_fixed<12,4,AP_RND,AP_SAT> layer2_t;\n"
                                  "typedef ap_fixed<32,12> fc1_accum_t;\ntypedef ap_fixed<8,2> fc1_weight_t;\n"
                                  "typedef ap_fixed<8,2> fc1_bias_t;\ntypedef ap_fixed<12,4,AP_RND,AP_SAT> result_t;\n")
    (fw / "parameters.h").write_text(
        "struct config2 : nnet::dense_config {\n    static const unsigned n_in = 2;\n"
        "    static const unsigned n_out = 2;\n    static const unsigned strategy = nnet::latency;\n"
        "    static const unsigned reuse_factor = 1;\n    typedef fc1_accum_t accum_t;\n"
        "    typedef fc1_bias_t bias_t;\n    typedef fc1_weight_t weight_t;\n"
        "    template<class data_T, class res_T, class CONFIG_T>\n"
        "    using kernel = nnet::DenseLatency<data_T, res_T, CONFIG_T>;\n};\n"
        "struct relu_config3 : nnet::activ_config {\n    static const unsigned n_in = 2;\n};\n")
    (fw / "weights" / "w2.txt").write_text("0.5, -0.25, 1.0, 0.125")
    (fw / "weights" / "b2.txt").write_text("0.0, 0.5")
    (fw / "myproject.cpp").write_text(
        "void myproject(\n    input_t x[2],\n    result_t y[2]\n) {\n    // hls-fpga-machine-learning insert layers\n"
        "    nnet::dense<input_t, layer2_t, config2>(x, layer2_out, w2, b2); // fc1\n" + calls + "}\n")
    return root


def test_reader_builds_the_description_from_the_registered_ops(tmp_path):
    prj = _fake_project(tmp_path, "    nnet::relu<layer2_t, result_t, relu_config3>(layer2_out, y); // act\n")
    description, arrays = read_project(prj)
    assert [(lay["name"], lay["op"]) for lay in description["layers"]] == [("fc1", "dense"), ("act", "relu")]
    fc1 = description["layers"][0]
    assert fc1["weight_type"] == FixedType(8, 2).to_dict() and fc1["strategy"] == "latency"
    assert fc1["kernel"] == "DenseLatency" and fc1["n_in"] == 2
    assert arrays["fc1/weight"].tolist() == [[32, -16], [64, 8]] and arrays["fc1/bias"].tolist() == [0, 32]
    fw = Firmware(description, arrays)
    assert np.array_equal(fw.predict([[1.0, 1.0], [-2.0, 0.0]]), [[1.5, 0.375], [0.0, 1.0]])


def test_reader_refuses_an_unknown_function_naming_the_supported_ones(tmp_path):
    prj = _fake_project(tmp_path, "    nnet::conv2d<layer2_t, result_t, relu_config3>(layer2_out, y); // conv\n")
    with pytest.raises(UnsupportedError) as err:
        read_project(prj)
    msg = str(err.value)
    assert "'conv'" in msg and "nnet::conv2d" in msg and ", ".join(supported_functions()) in msg
    assert "per-element quantizers" in msg


# ------------------------------------------------------------------------ dense + ReLU in one pass
def _dense_relu_firmware(result: FixedType, accum: FixedType, seed: int) -> Firmware:
    rng = np.random.default_rng(seed)
    x_t, w_t = FixedType(10, 4, rounding="RND", overflow="SAT"), FixedType(8, 2)
    layers = [
        {"name": "fc1", "op": "dense", "data_type": x_t.to_dict(), "result_type": result.to_dict(),
         "n_in": 6, "n_out": 9, "weight_type": w_t.to_dict(), "bias_type": w_t.to_dict(),
         "accum_type": accum.to_dict(), "strategy": "latency", "reuse_factor": 1, "kernel": None},
        {"name": "relu1", "op": "relu", "data_type": result.to_dict(), "result_type": result.to_dict()},
        {"name": "fc2", "op": "dense", "data_type": result.to_dict(), "result_type": result.to_dict(),
         "n_in": 9, "n_out": 3, "weight_type": w_t.to_dict(), "bias_type": w_t.to_dict(),
         "accum_type": FixedType(40, 16).to_dict(), "strategy": "latency", "reuse_factor": 1, "kernel": None},
    ]
    arrays = {"fc1/weight": rng.integers(-128, 128, (6, 9)), "fc1/bias": rng.integers(-128, 128, 9),
              "fc2/weight": rng.integers(-128, 128, (9, 3)), "fc2/bias": rng.integers(-128, 128, 3)}
    description = {"schema_version": 1, "n_inputs": 6, "n_outputs": 3, "input_type": x_t.to_dict(),
                   "output_type": result.to_dict(), "layers": layers}
    return Firmware(description, arrays)


RESULT_TYPES = [FixedType(w, i, s, r, o) for (w, i, s) in ((6, 2, True), (7, 3, False), (12, 9, True))
                for r in ROUNDING_MODES for o in OVERFLOW_MODES]


@pytest.mark.parametrize("accum", [FixedType(40, 16), FixedType(11, 5), FixedType(12, 5, overflow="SAT")],
                         ids=["exact", "rounding_wrap", "saturating"])
def test_dense_and_relu_in_one_pass_equal_the_layer_by_layer_values(accum):
    X = np.random.default_rng(1).normal(0, 6, size=(5000, 6))   # more than one chunk, many overflows
    for k, result in enumerate(RESULT_TYPES):
        fw = _dense_relu_firmware(result, accum, seed=k)
        assert callable(fw._steps[0]) and len(fw._steps) == 2, "dense + relu should run as one step"
        h = fw.cast_input(fw.validate_input(X))
        for layer in fw._layers:   # the generic per-layer computation: compute, then cast
            h = Op.__call__(layer, h)
        fast = fw.predict(X)
        assert np.array_equal(fast, h), (str(result), str(accum))
        assert np.array_equal(fw.predict(X, trace=True)[0], fast)
        assert not np.signbit(fast[fast == 0]).any(), "no -0.0 in the outputs"


def test_relu_whose_cast_changes_values_is_not_fused():
    fw = _dense_relu_firmware(FixedType(8, 4), FixedType(40, 16), seed=0)
    spec = dict(fw.description)
    relu = dict(spec["layers"][1], result_type=FixedType(6, 2, overflow="SAT").to_dict())
    spec["layers"] = [spec["layers"][0], relu, dict(spec["layers"][2], data_type=relu["result_type"])]
    narrow = Firmware(spec, fw.arrays)
    assert len(narrow._steps) == 3


def test_the_ops_and_the_reader_import_with_numpy_alone(tmp_path):
    import subprocess
    import sys

    prj = _fake_project(tmp_path, "    nnet::relu<layer2_t, result_t, relu_config3>(layer2_out, y); // act\n")
    code = (
        "import sys\n"
        "for name in ('hls4ml', 'tensorflow', 'keras', 'sklearn', 'scipy', 'pandas', 'h5py', 'hgq'):\n"
        "    sys.modules[name] = None  # any import of these now fails\n"
        "from fastml_lab.emulator import Firmware\n"
        "from fastml_lab.firmware.reader import read_project\n"
        f"print(Firmware(*read_project({str(prj)!r})).predict([[1.0, 1.0]]).tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[1.5, 0.375]]"
