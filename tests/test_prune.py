"""Magnitude pruning: the schedule, exact zeros after training, zeros that survive QAT and the export."""

from __future__ import annotations

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError
from fastml_lab.quantize import PruningSchedule, prune, quantize, sparsity

from quantize_helpers import float_model, jets  # noqa: F401  (session fixtures)


# -------------------------------------------------------------------------------------- schedule
def test_polynomial_schedule_rises_to_the_target_and_stays():
    schedule = PruningSchedule(0.8, begin=0.1, end=0.6)
    values = [schedule.at(p) for p in np.linspace(0, 1, 101)]
    assert values[0] == schedule.at(0.09) == 0.0
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert schedule.at(0.6) == schedule.at(1.0) == pytest.approx(0.8)
    assert schedule.at(0.35) == pytest.approx(0.8 * (1 - 0.5 ** 3))  # half way: fast at first


def test_step_schedule_prunes_at_once():
    schedule = PruningSchedule(0.5, kind="step", begin=0.2, end=0.3)
    assert schedule.at(0.19) == 0.0 and schedule.at(0.2) == schedule.at(1.0) == 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"target": 1.0}, r"fraction in \[0, 1\)"),
    ({"target": -0.1}, r"fraction in \[0, 1\)"),
    ({"target": 0.5, "kind": "cubic"}, "one of polynomial, step; got 'cubic'"),
    ({"target": 0.5, "begin": 0.6, "end": 0.5}, "0 <= begin < end <= 1"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PruningSchedule(**kwargs)


# --------------------------------------------------------------------------------------- pruning
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def pruned(float_model, jets):  # noqa: F811
    return prune(float_model, jets, sparsity=0.75, epochs=2, progress=False)


def _kernels(model) -> dict:
    return {layer.name: keras.ops.convert_to_numpy(getattr(layer, "qkernel", layer.kernel))
            for layer in model.layers if type(layer).__name__ in ("Dense", "QDense")}


def test_prune_reaches_the_sparsity_in_every_layer_and_leaves_the_model_alone(pruned, float_model, jets):  # noqa: F811
    assert set(pruned.sparsity) == {"fc1", "fc2", "output"}
    for name, kernel in _kernels(pruned.model).items():
        assert (kernel == 0).sum() == round(0.75 * kernel.size), name
    assert pruned.sparsity == sparsity(pruned.model) and all(v == 0.75 for v in pruned.sparsity.values())
    assert all(value == 0 for value in sparsity(float_model).values())  # the original is untouched
    accuracy = np.mean(pruned.model.predict(jets.X_test, verbose=0).argmax(axis=1) == jets.labels_test)
    float_accuracy = np.mean(float_model.predict(jets.X_test, verbose=0).argmax(axis=1) == jets.labels_test)
    assert accuracy > float_accuracy - 0.1 and pruned.history.epochs_run == 2


def test_zeros_survive_quantization_aware_training_and_export(pruned, jets, tmp_path):  # noqa: F811
    from fastml_lab.hls import export

    result = quantize(pruned.model, jets, epochs=1, progress=False)  # no prune= : zeros must stay zeros
    before, after = _kernels(pruned.model), _kernels(result.model)
    for name in before:
        assert np.all(after[name][before[name] == 0] == 0), name
        assert result.sparsity[name] >= 0.75
    firmware = export(result.model, tmp_path / "prj").firmware()
    assert sparsity(firmware) == result.sparsity
    for name in before:
        spec = next(s for s in firmware.description["layers"] if s["name"] == name)
        assert spec["op"] == "dense"
        stored = firmware.arrays[f"{name}/weight"]
        assert np.array_equal(stored == 0, after[name] == 0), name


def test_quantize_can_prune_as_it_trains(float_model, jets):  # noqa: F811
    result = quantize(float_model, jets, prune=0.5, epochs=2, progress=False)
    assert all(value >= 0.5 for value in result.sparsity.values())
    assert result.prune == 0.5 and result.history.stopped_early is False


def test_sparsity_needs_a_model_a_project_or_a_firmware():
    with pytest.raises(ConfigError, match="expected a Keras model, a .keras file, an exported project or a Firmware"):
        sparsity(42)
