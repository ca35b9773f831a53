"""fastml_lab.tutorial: the quick switch, environment and board detection (with a fake pynq),
the %%needs cell magic in a real IPython shell, and the exercise checks."""

from __future__ import annotations

import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError
from fastml_lab.tutorial import checks, environment, sizes
from fastml_lab.tutorial.magic import make_magic, skip_notice

TUTORIAL_DIR = Path(__file__).resolve().parents[1] / "fastml_lab" / "tutorial"


# ---------------------------------------------------------------------- the quick switch
@pytest.mark.parametrize("value, quick", [("1", True), ("true", True), ("YES", True), ("on", True),
                                          ("0", False), ("", False), ("no", False)])
def test_quick_switch_values(monkeypatch, value, quick):
    monkeypatch.setenv("FASTML_LAB_QUICK", value)
    assert sizes.quick_mode() is quick
    assert sizes.settings().quick is quick


def test_quick_switch_unset_means_full_sizes(monkeypatch):
    monkeypatch.delenv("FASTML_LAB_QUICK", raising=False)
    assert sizes.settings().quick is False


def test_quick_switch_refuses_other_values(monkeypatch):
    monkeypatch.setenv("FASTML_LAB_QUICK", "fast")
    with pytest.raises(ConfigError, match="FASTML_LAB_QUICK='fast'.*use 1"):
        sizes.quick_mode()


def test_quick_sizes_are_smaller_in_every_respect():
    quick, full = sizes.settings(True), sizes.settings(False)
    for name in ("n_events", "epochs", "qat_epochs", "csim_events", "profile_events"):
        assert getattr(quick, name) < getattr(full, name), name
    assert set(quick.study_bits) <= set(full.study_bits)
    assert len(quick.qat_study_bits) <= len(full.qat_study_bits)
    assert "quick (FASTML_LAB_QUICK=1): 20,000 jets" in quick.describe()


# ---------------------------------------------------------------------- board detection
def _fake_pynq(devices):
    pynq = types.ModuleType("pynq")

    class Device:
        pass

    if isinstance(devices, Exception):
        class Meta(type):
            @property
            def devices(cls):
                raise devices

        Device = Meta("Device", (), {})  # noqa: N806 (pynq's name)
    else:
        Device.devices = devices
    pynq.Device = Device
    return pynq


def test_a_board_is_detected_when_pynq_sees_a_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq([object()]))
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    env = environment.detect()
    assert env.on_board and env.board_reason is None and env.board_name == "Pynq-Z2"
    assert "PYNQ board detected (Pynq-Z2)" in env.describe()[0]
    from fastml_lab import overlay

    assert overlay.on_board() is True


def test_no_board_without_pynq(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq raises ImportError
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    env = environment.detect()
    assert not env.on_board and env.board_name is None
    assert env.board_reason == "pynq is not installed (it ships with the PYNQ board image)"
    assert "no PYNQ board" in env.describe()[0]


def test_no_board_when_pynq_lists_no_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq([]))
    env = environment.detect()
    assert not env.on_board and "found no device" in env.board_reason


def test_no_board_when_pynq_cannot_probe(monkeypatch):
    # pynq 4 on a laptop: importable, but probing raises.
    monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(RuntimeError("No Devices Found")))
    env = environment.detect()
    assert not env.on_board
    assert env.board_reason == "pynq found no device (RuntimeError: No Devices Found)"


def test_availability_is_looked_up_without_importing(monkeypatch):
    assert environment.has("numpy")
    assert not environment.has("no_such_module_for_fastml_lab")
    monkeypatch.setitem(sys.modules, "blocked_for_test", None)
    assert not environment.has("blocked_for_test")
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    assert not environment.has("g++")
    monkeypatch.setattr(environment.shutil, "which", lambda name: "/usr/bin/" + name)
    assert environment.has("g++")


def test_offline_and_tensorflow_are_reported(monkeypatch):
    monkeypatch.setenv("FASTML_LAB_OFFLINE", "1")
    monkeypatch.setattr(environment, "has", lambda name: name != "tensorflow")
    env = environment.detect()
    assert env.offline and not env.has_tensorflow
    lines = "\n".join(env.describe())
    assert "offline (FASTML_LAB_OFFLINE)" in lines and "%%needs tensorflow are skipped" in lines


def test_start_makes_the_work_folder_and_describes_itself(tmp_path, monkeypatch):
    from fastml_lab import tutorial

    monkeypatch.setenv("FASTML_LAB_QUICK", "1")
    lab = tutorial.start("07_test", work_dir=tmp_path / "work")
    assert lab.work == tmp_path / "work" / "07_test" and lab.work.is_dir()
    text = repr(lab)
    assert text.startswith("07_test: quick (FASTML_LAB_QUICK=1)") and "files:" in text
    assert lab.needs("numpy") and not lab.needs("numpy", "no_such_module_for_fastml_lab")


def test_tutorial_helpers_import_with_numpy_alone():
    code = ("import sys, fastml_lab.tutorial, fastml_lab.tutorial.checks, fastml_lab.tutorial.magic;"
            "from fastml_lab import tutorial; tutorial.detect();"
            "heavy = {'tensorflow', 'keras', 'hls4ml', 'sklearn', 'pandas', 'pynq', 'scipy',"
            " 'matplotlib', 'IPython', 'nbclient'};"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tutorial_helpers_are_python_3_10_compatible():
    import ast

    for path in sorted(TUTORIAL_DIR.glob("*.py")):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


# ---------------------------------------------------------------------- the %%needs magic
@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def _register(shell, on_board=False):
    shell.register_magic_function(make_magic(shell, on_board), "cell", "needs")


def test_needs_runs_the_cell_and_returns_its_last_value(shell):
    _register(shell)
    result = shell.run_cell("%%needs numpy\nvalue = 20\nvalue + 1", store_history=False)
    assert result.success and result.result == 21
    assert shell.user_ns["value"] == 20


def test_needs_keeps_a_final_semicolon_quiet(shell):
    _register(shell)
    result = shell.run_cell("%%needs numpy\nquiet_value = 3\nquiet_value + 1;  # no output",
                            store_history=False)
    assert result.success and result.result is None and shell.user_ns["quiet_value"] == 3


def test_needs_runs_line_magics_inside_the_cell(shell):
    _register(shell)
    result = shell.run_cell("%%needs numpy\n%pwd", store_history=False)
    assert result.success and result.result == str(Path.cwd())


def test_needs_skips_with_a_notice(shell, capsys):
    _register(shell, on_board=True)
    shell.user_ns.pop("skipped_value", None)
    result = shell.run_cell("%%needs no_such_module_for_fastml_lab\nskipped_value = 1",
                            store_history=False)
    assert result.success and result.result is None
    assert "skipped_value" not in shell.user_ns
    out = capsys.readouterr().out
    assert out.startswith("[skipped] This cell needs no_such_module_for_fastml_lab")
    assert "run this part on a laptop or on Binder" in out


def test_needs_lets_errors_fail_the_cell(shell):
    _register(shell)
    result = shell.run_cell("%%needs numpy\n1 / 0", store_history=False)
    assert isinstance(result.error_in_exec, ZeroDivisionError)


def test_needs_without_names_is_refused(shell):
    _register(shell)
    result = shell.run_cell("%%needs\nx = 1", store_history=False)
    assert isinstance(result.error_in_exec, ConfigError)


def test_skip_notice_names_the_fix():
    assert "pip install 'fastml-lab[lab]'" in skip_notice(["hls4ml"], on_board=False)
    assert "apt-get install g++" in skip_notice(["g++"], on_board=False)
    notice = skip_notice(["tensorflow", "hls4ml"], on_board=True)
    assert "TensorFlow (to train and quantize models) and hls4ml" in notice and "are not" in notice


# ---------------------------------------------------------------------- exercise checks
def test_a_placeholder_is_not_answered_yet_and_never_an_error():
    for verdict in (checks.check_heaviest_class(...), checks.check_multipliers(None, 16, 64, 4)):
        assert verdict.status == checks.UNANSWERED and not verdict
        assert repr(verdict).startswith("[not answered yet] Replace the ...")


def test_choice_checks():
    assert checks.check_heaviest_class(" T ")
    wrong = checks.check_heaviest_class("w")
    assert not wrong and wrong.status == checks.WRONG and "median mass_mmdt" in repr(wrong)
    assert "is not one of" in repr(checks.check_heaviest_class("higgs"))
    assert checks.check_more_constituents("g") and not checks.check_more_constituents("q")


def test_accuracy_check_compares_with_the_argmax():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    assert checks.check_accuracy(0.75, scores, labels)
    assert checks.check_accuracy(np.float32(0.75), scores, labels)
    assert not checks.check_accuracy(0.5, scores, labels)
    assert "Expected one number" in repr(checks.check_accuracy("high", scores, labels))


def test_mistag_check_reads_the_roc_curve():
    from fastml_lab.evaluate import evaluate_scores

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    scores = np.column_stack([1 - labels * 0.3 - rng.random(1000) * 0.5, labels * 0.3 + rng.random(1000) * 0.5])
    evaluation = evaluate_scores(scores, labels, ("a", "b"))
    expected = evaluation.roc["b"].mistag_at(0.5)
    assert checks.check_mistag_at(expected * 1.01, evaluation, "b", 0.5)
    assert not checks.check_mistag_at(expected * 2 + 0.01, evaluation, "b", 0.5)


def test_hls_checks():
    assert checks.check_accumulator_width(39, n_in=64)      # fc2_accum_t of the tutorial model
    assert checks.check_accumulator_width(37, n_in=16)      # fc1_accum_t
    assert not checks.check_accumulator_width(38, n_in=64)
    assert checks.check_multipliers(256, 16, 64, 4) and not checks.check_multipliers(1024, 16, 64, 4)
    assert checks.check_multipliers(3, 5, 1, 2)             # rounds up
    assert checks.check_resource_ratio(1502 / 220, 1502, 220)
    assert "does not fit" in repr(checks.check_resource_ratio(6.83, 1502, 220))
    counts = {"input": 3, "fc1": 10, "fc2": 99}
    assert checks.check_worst_layer("fc2", counts) and not checks.check_worst_layer("fc1", counts)


def test_overlay_checks():
    assert checks.check_stream_bound(6.25e6, n_words=16, clock_mhz=100)
    assert not checks.check_stream_bound(100e6, n_words=16, clock_mhz=100)
    expected = 100 / ((940 + 100 * 1.42) * 1e-6)
    assert math.isclose(expected, 92421, rel_tol=1e-3)
    assert checks.check_batch_rate(92_400, 940, 1.42, 100)
    assert not checks.check_batch_rate(703_900, 940, 1.42, 100)


def test_fixed_point_checks():
    assert checks.check_fixed_range("ap_fixed<6,2>", 0.0625, 1.9375)
    assert checks.check_fixed_range("ap_fixed<8,3>", 2 ** -5, 4 - 2 ** -5)
    verdict = checks.check_fixed_range("ap_fixed<6,2>", 0.0625, 2.0)
    assert not verdict and "The largest value is not right yet" in repr(verdict)
    assert "are not right yet" in repr(checks.check_fixed_range("ap_fixed<6,2>", 0.1, 2.0))
    assert checks.check_fixed_range("ap_fixed<6,2>", ..., 1.9375).status == checks.UNANSWERED
    assert checks.check_quantized("ap_fixed<6,2>", 2.3, -1.75)        # wraps around by 4
    assert "wraps around by 4" in repr(checks.check_quantized("ap_fixed<6,2>", 2.3, -1.75))
    assert not checks.check_quantized("ap_fixed<6,2>", 2.3, 1.9375)   # that would be SAT
    assert checks.check_quantized("ap_fixed<6,2,AP_RND,AP_SAT>", 2.3, 1.9375)
    assert checks.check_quantized("ap_fixed<6,2>", 0.7, 0.6875)


class _Study:
    """A bit-width study as quantize.bit_width_study returns it (rows by width)."""

    def __init__(self, float_accuracy, accuracies):
        self.float_accuracy = float_accuracy
        self._rows = [{"bits": b, "accuracy": a, "sparsity": 0.0} for b, a in accuracies.items()]

    def bit_rows(self):
        return sorted(self._rows, key=lambda r: r["bits"])


def test_study_checks():
    ptq = _Study(0.75, {4: 0.2, 8: 0.70, 12: 0.745, 16: 0.75})
    qat = _Study(0.75, {4: 0.68, 8: 0.74})
    assert checks.check_smallest_width(12, ptq, tolerance=0.01)
    assert not checks.check_smallest_width(16, ptq, tolerance=0.01)
    assert checks.check_smallest_width(8, ptq, tolerance=0.06)
    assert checks.check_smallest_width(4, _Study(0.75, {4: 0.1}), 0.01).status == checks.WRONG
    assert checks.check_better_method("qat", ptq, qat, bits=4)
    assert not checks.check_better_method("ptq", ptq, qat, bits=4)


class Dense:
    """Stands in for a Keras Dense layer: only its name and weights matter to the checks."""

    def __init__(self, name, kernel):
        self.name, self._kernel = name, np.asarray(kernel)

    def get_weights(self):
        return [self._kernel, np.zeros(self._kernel.shape[1])]


class Activation(Dense):
    def get_weights(self):
        return []


def test_pruning_checks():
    rng = np.random.default_rng(0)
    fc1, out = rng.normal(size=(16, 8)), rng.normal(size=(8, 5))
    fc1[:, :6] = 0.0
    model = types.SimpleNamespace(layers=[Dense("fc1", fc1), Activation("relu1", []), Dense("output", out)])
    assert set(checks.dense_kernels(model)) == {"fc1", "output"}
    assert checks.check_nonzero_weights(16 * 2 + 40, model)
    assert not checks.check_nonzero_weights(16 * 8 + 40, model)
    assert checks.check_largest_layer("fc1", model) and not checks.check_largest_layer("output", model)
    assert checks.check_reduction(500_656 / 41_168, 500_656, 41_168)
    assert not checks.check_reduction(2.0, 500_656, 41_168)


def test_walk_checks_read_the_walk_state(tmp_path):
    keras = pytest.importorskip("keras")
    from fastml_lab.evaluate import evaluate_scores
    from fastml_lab.overlay import resolve

    labels = np.array([0, 1, 1, 0])
    evaluation = evaluate_scores(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]), labels, ("a", "b"))
    small = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4, name="fc1")])
    state = types.SimpleNamespace(evaluation=evaluation, package=resolve("jet_mlp_pynq"), quantized=small)
    walk = types.SimpleNamespace(state=state)
    assert checks.check_walk_accuracy(0.75, walk) and not checks.check_walk_accuracy(0.7, walk)
    assert checks.check_walk_backend("software", walk) and not checks.check_walk_backend("board", walk)
    assert checks.check_walk_fits(True, walk)           # 64 multiplications fit easily
    assert not checks.check_walk_fits(False, walk)
    assert "Answer True or False" in repr(checks.check_walk_fits("yes", walk))
    empty = types.SimpleNamespace(state=types.SimpleNamespace(evaluation=None, package=None, quantized=None))
    for check in (checks.check_walk_accuracy, checks.check_walk_backend, checks.check_walk_fits):
        verdict = check(0.5, empty)
        assert verdict.status == checks.UNANSWERED and "run its" in repr(verdict)


def test_bdt_checks_follow_a_tree_count_adder_levels_and_compare_designs():
    # node 0: x[1] < 0.5 ? node 1 : node 2; node 1: x[0] < -1 ? leaf 3 : leaf 4; node 2 a leaf
    tree = {"feature": [1, 0, -2, -2, -2], "threshold": [0.5, -1.0, 0.0, 0.0, 0.0],
            "children_left": [1, 3, -1, -1, -1], "children_right": [2, 4, -1, -1, -1],
            "value": [0.0, 0.0, 0.7, -0.25, 0.125]}
    x = np.array([0.0, 0.5])  # not below 0.5 (xgboost's "<"): the right child, leaf 2
    assert checks.tree_path(tree, x) == [0, 2] and checks.tree_path(tree, x, "<=") == [0, 1, 4]
    assert checks.check_tree_leaf(0.7, tree, x) and not checks.check_tree_leaf(0.125, tree, x)
    assert checks.check_tree_leaf(0.125, tree, x, "<=")
    assert "leaf 2" in repr(checks.check_tree_leaf(0.7, tree, x))
    assert checks.check_adder_levels(7, n_trees=100) and not checks.check_adder_levels(99, n_trees=100)
    assert checks.check_adder_levels(3, n_trees=8) and checks.check_adder_levels(4, n_trees=9)
    nn, bdt = {"LUT": 66_351, "DSP": 4_130}, {"LUT": 16_569, "DSP": 0}
    assert checks.check_fewer("bdt", nn, bdt, "LUT") and not checks.check_fewer("nn", nn, bdt, "DSP")
    assert "not answered" in repr(checks.check_fewer(..., nn, bdt, "LUT"))


@pytest.mark.slow
@pytest.mark.needs_tf
def test_the_float_model_is_trained_once_and_shared(tmp_path, monkeypatch, capsys):
    """Notebooks that start from tutorial 1's network share one trained model (Restart & Run All and
    the next notebook load it); other jets or other sizes train another."""
    import dataclasses

    from fastml_lab import tutorial
    from fastml_lab.data import load_jets

    monkeypatch.setenv("FASTML_LAB_QUICK", "1")
    monkeypatch.delenv(tutorial.MODEL_CACHE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    first = tutorial.start("02_quantization")
    first = dataclasses.replace(first, settings=dataclasses.replace(first.settings, epochs=1))
    second = dataclasses.replace(first, name="04_hls", work=first.work.parent / "04_hls")
    ds = load_jets("synthetic", n_events=3000, progress=False)
    a = first.train_float_model(ds, "8")
    assert "trained earlier" not in capsys.readouterr().out
    cached = sorted((tmp_path / "work" / tutorial.MODELS_DIR).glob("float_8_*.keras"))
    assert len(cached) == 1
    b = second.train_float_model(ds, "8")
    assert "trained earlier" in capsys.readouterr().out
    assert np.array_equal(a.predict(ds.X_test, verbose=0), b.predict(ds.X_test, verbose=0))
    other = load_jets("synthetic", n_events=3000, seed=1, progress=False)
    first.train_float_model(other, "8")
    assert "trained earlier" not in capsys.readouterr().out
    assert len(list((tmp_path / "work" / tutorial.MODELS_DIR).glob("float_8_*.keras"))) == 2
    cached[0].write_bytes(b"damaged")  # a damaged file is trained again and replaced
    first.train_float_model(ds, "8")
    assert "trained earlier" not in capsys.readouterr().out
    first.train_float_model(ds, "8")
    assert "trained earlier" in capsys.readouterr().out


def test_bdt_growth_prediction_is_graded_on_what_was_measured():
    growth = {"rounds 8": {"cycles": 5, "LUT": 1_000}, "rounds 32": {"cycles": 7, "LUT": 3_500}}
    assert checks.check_bdt_growth("b", growth) and checks.check_bdt_growth(" B ", growth)
    wrong = checks.check_bdt_growth("a", growth)
    assert not wrong and "Measured 8 -> 32 rounds: 5 -> 7 cycles" in repr(wrong) and "adder tree" in repr(wrong)
    assert "adder tree" in repr(checks.check_bdt_growth("b", growth))
    assert checks.check_bdt_growth("c", {"rounds 8": {"cycles": 5, "LUT": 1_000},
                                         "rounds 32": {"cycles": 6, "LUT": 1_100}})
    assert checks.check_bdt_growth("d", {"rounds 8": {"cycles": 5, "LUT": 1_000},
                                         "rounds 32": {"cycles": 20, "LUT": 1_100}})
    assert "not answered" in repr(checks.check_bdt_growth(..., growth))
    assert not checks.check_bdt_growth("e", growth)
    nn, bdt = {"LUT": 66_351}, {"LUT": 16_569}
    assert "Measured: 66,351 LUT for the network" in repr(checks.check_fewer("nn", nn, bdt, "LUT"))


def test_fastest_kind_prediction_reads_the_finished_points():
    rows = [{"kind": "nn", "status": "ok", "latency_ns": "990.0", "label": "nn 16-8"},
            {"kind": "nn", "status": "ok", "latency_ns": 590.0, "label": "nn 8"},
            {"kind": "bdt", "status": "ok", "latency_ns": 260.0, "label": "bdt 10x2"},
            {"kind": "bdt", "status": "error", "latency_ns": 10.0, "label": "failed"},
            {"kind": "bdt", "status": "ok", "latency_ns": None, "label": "no figure"}]
    verdict = checks.check_fastest_kind("bdt", rows)
    assert verdict and "fastest BDT: 260 ns (bdt 10x2)" in repr(verdict) and "fastest NN: 590 ns" in repr(verdict)
    assert not checks.check_fastest_kind("nn", rows)
    assert "not answered" in repr(checks.check_fastest_kind(..., rows))
    assert checks.check_fastest_kind("nn", []).status == checks.UNANSWERED


# ---------------------------------------------------------------------- prediction-first checks: 01, 02, 03, 06
def _evaluation_with_confusion(matrix, names=("g", "q", "t", "w", "z")):
    matrix = np.asarray(matrix, dtype=float)
    return types.SimpleNamespace(class_names=names, confusion_normalized=matrix / matrix.sum(axis=1, keepdims=True))


def test_confused_pair_prediction_is_graded_on_the_measured_matrix():
    evaluation = _evaluation_with_confusion([[69, 19, 6, 3, 3], [13, 81, 2, 3, 1], [4, 3, 84, 5, 4],
                                             [3, 5, 2, 67, 23], [2, 4, 4, 28, 62]])
    for answer in (("w", "z"), ["z", "w"], "w/z", "WZ", "z, w"):
        verdict = checks.check_confused_pair(answer, evaluation)
        assert verdict, answer
    assert "23% of true w jets are called z" in repr(checks.check_confused_pair(("w", "z"), evaluation))
    wrong = checks.check_confused_pair(("g", "q"), evaluation)
    assert not wrong and "mixes w/z most" in repr(wrong) and "your pair g/q" in repr(wrong)
    assert "mass peaks" in repr(wrong)  # the hint teaches why
    assert "Expected two different names" in repr(checks.check_confused_pair(("w", "w"), evaluation))
    assert "Expected two different names" in repr(checks.check_confused_pair("b", evaluation))
    assert checks.check_confused_pair(..., evaluation).status == checks.UNANSWERED
    gluons = _evaluation_with_confusion([[60, 30, 4, 3, 3], [25, 70, 2, 2, 1], [4, 3, 84, 5, 4],
                                         [3, 5, 2, 80, 10], [2, 4, 4, 10, 80]])
    assert checks.check_confused_pair(("q", "g"), gluons) and not checks.check_confused_pair(("w", "z"), gluons)


def test_confusion_entry_reads_a_row_normalised_cell():
    evaluation = _evaluation_with_confusion([[69, 19, 6, 3, 3], [13, 81, 2, 3, 1], [4, 3, 84, 5, 4],
                                             [3, 5, 2, 67, 23], [2, 4, 4, 28, 62]])
    assert checks.check_confusion_entry(0.23, evaluation, "w", "z")
    assert checks.check_confusion_entry(0.234, evaluation, "w", "z")   # read off a plot at 2 decimals
    assert not checks.check_confusion_entry(0.28, evaluation, "w", "z")  # the z row, not the w row
    assert "Rows are the true class" in repr(checks.check_confusion_entry(0.28, evaluation, "w", "z"))


def test_method_prediction_and_accuracy_gain():
    ptq = _Study(0.75, {4: 0.40, 8: 0.70, 16: 0.75})
    qat = _Study(0.75, {4: 0.68, 8: 0.74})
    verdict = checks.check_method_prediction("qat", ptq, qat, bits=4)
    assert verdict and "PTQ reached 0.4000, QAT 0.6800" in repr(verdict)
    wrong = checks.check_method_prediction("ptq", ptq, qat, bits=4)
    assert not wrong and "16 levels" in repr(wrong)  # the hint says why
    assert checks.check_method_prediction(..., ptq, qat, bits=4).status == checks.UNANSWERED
    assert checks.check_method_prediction("PTQ", _Study(0.75, {4: 0.7}), _Study(0.75, {4: 0.6}), bits=4)
    assert checks.check_accuracy_gain(0.28, ptq, qat, bits=4)
    assert not checks.check_accuracy_gain(-0.28, ptq, qat, bits=4)
    assert not checks.check_accuracy_gain(0.68, ptq, qat, bits=4)


def test_pruning_prediction_picks_the_nearest_factor():
    assert checks.check_pruning_prediction("quarter", 4_130, 1_066)
    assert "26% of before" in repr(checks.check_pruning_prediction("quarter", 4_130, 1_066))
    wrong = checks.check_pruning_prediction("same", 4_130, 1_066)
    assert not wrong and "its own multiplier" in repr(wrong)
    assert checks.check_pruning_prediction("half", 1_000, 520, sparsity=0.5)
    assert checks.check_pruning_prediction("tenth", 1_000, 110, sparsity=0.9)
    assert checks.check_pruning_prediction("same", 220, 215)
    assert "not one of" in repr(checks.check_pruning_prediction("third", 4_130, 1_066))
    assert checks.check_pruning_prediction(..., 4_130, 1_066).status == checks.UNANSWERED


def test_walk_fit_prediction_and_tightest_resource(tmp_path):
    keras = pytest.importorskip("keras")
    from fastml_lab.quantize import fit_estimate

    small = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4, name="fc1")])
    walk = types.SimpleNamespace(state=types.SimpleNamespace(quantized=small))
    verdict = checks.check_walk_fit_prediction(True, walk)
    assert verdict and "non-zero weights need" in repr(verdict)          # 64 multiplications fit easily
    wrong = checks.check_walk_fit_prediction(False, walk)
    assert not wrong and "220 DSP slices and 53,200 LUTs" in repr(wrong)
    assert "Answer True or False" in repr(checks.check_walk_fit_prediction("yes", walk))
    estimate = fit_estimate(small)
    tightest = "DSP" if estimate.dsp / estimate.budget.dsp > estimate.lut / estimate.budget.lut else "LUT"
    other = {"DSP": "LUT", "LUT": "DSP"}[tightest]
    assert checks.check_walk_tightest(tightest, walk) and checks.check_walk_tightest(tightest.lower(), walk)
    assert not checks.check_walk_tightest(other, walk)
    assert "compare the shares" in repr(checks.check_walk_tightest(other, walk))
    empty = types.SimpleNamespace(state=types.SimpleNamespace(quantized=None))
    assert checks.check_walk_fit_prediction(True, empty).status == checks.UNANSWERED
    assert checks.check_walk_tightest("DSP", empty).status == checks.UNANSWERED
    assert checks.check_walk_fit_prediction(..., empty).status == checks.UNANSWERED


def test_order_checks_grade_a_ranking_against_what_was_measured():
    measured = {"a": 3.0, "b": 1.0, "c": 2.0}
    assert checks.check_order(["b", "c", "a"], measured, "why", "hint")
    wrong = checks.check_order(["b", "a", "c"], measured, "why", "hint")
    assert not wrong and "b < c < a" in wrong.message and "place 2" in wrong.message
    assert not checks.check_order(["b", "c"], measured, "why", "hint")
    assert not checks.check_order("bca", measured, "why", "hint")
    assert checks.check_order(["a", "c", "b"], measured, "why", "hint", smallest_first=False)
    assert checks.check_order(..., measured, "why", "hint").status == checks.UNANSWERED


def test_latency_order_check_reads_the_ladder():
    from fastml_lab.estimate.headline import latency_ladder, published_rows

    cpu = [{"key": "cpu_model", "where": "CPU: Keras", "ns_per_event": 3_000.0, "latency_ns": 3e7,
            "kind": "measurement", "fits": None}]
    ladder = latency_ladder({"fpga": [], "cpu": cpu, "published": published_rows()})
    assert [row["ns_per_event"] for row in ladder] == sorted(row["ns_per_event"] for row in ladder)
    assert checks.check_latency_order(["fabric", "keras_batch", "arm_c", "dma_one"], ladder)
    assert not checks.check_latency_order(["keras_batch", "fabric", "arm_c", "dma_one"], ladder)
    cpu[0]["ns_per_event"] = 500.0  # a faster CPU changes the answer: the check reads what was measured
    ladder = latency_ladder({"fpga": [], "cpu": cpu, "published": published_rows()})
    verdict = checks.check_latency_order(["keras_batch", "fabric", "arm_c", "dma_one"], ladder)
    assert verdict and "keras_batch 500 ns" in verdict.message


def test_a_design_that_does_not_fit_is_left_off_the_ladder():
    from fastml_lab.estimate.headline import latency_ladder

    fpga = [{"key": "fpga_board", "where": "pynq-z2", "ns_per_event": 10.0, "latency_ns": 100.0, "fits": False},
            {"key": "fpga_trigger", "where": "U250", "ns_per_event": 5.0, "latency_ns": 70.0, "fits": None}]
    assert [row["key"] for row in latency_ladder({"fpga": fpga, "cpu": []})] == ["fpga_trigger"]


def test_batch_speedup_check_takes_the_measured_order_of_magnitude():
    profile = {"events_per_s": 1e6, "latency_us": 80.0, "events": 5_000}  # a batch: 80 times faster
    assert checks.check_batch_speedup("100", profile)
    assert not checks.check_batch_speedup("10000", profile)
    assert not checks.check_batch_speedup("7", profile)


def test_serving_checks_read_what_was_measured():
    assert checks.check_service_overhead("10", {"p50_ms": 0.1}, {"p50_ms": 0.7})
    assert not checks.check_service_overhead("1", {"p50_ms": 0.1}, {"p50_ms": 0.7})
    assert checks.check_service_overhead("100", {"p50_ms": 0.01}, {"p50_ms": 1.2})
    batched = {"requests": 1_800, "calls": 300}
    assert checks.check_batching_calls("10 to 99", batched)
    assert not checks.check_batching_calls("about 100", batched)
    assert checks.check_batching_calls("about 100", {"requests": 1_000, "calls": 1_000})
    assert checks.check_board_time_saved(1.41, batched, call_us=940)
    assert not checks.check_board_time_saved(1.692, batched, call_us=940)
    assert checks.check_batching_calls("under 10", {"requests": 1_800, "calls": 150})
