"""The fit estimate: its arithmetic on hand-made layers, and the same figures from a Keras model, its
export and the export's Firmware (read with numpy alone)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError, DataError
from fastml_lab.quantize import PYNQ_Z2, Budget, fit_estimate
from fastml_lab.quantize.fit import estimate, significant_bits
from fastml_lab.quantize.operands import DenseOperands, Operands

from quantize_helpers import float_model, jets  # noqa: F401  (session fixtures)

ELEVEN_BITS = 1023 / 1024  # binary 0.1111111111: 10 significant bits and a sign


def test_significant_bits_count_from_the_highest_to_the_lowest_set_bit_plus_a_sign():
    values = [0.75, -4.0, 13 / 128, 0.0, 1.0, ELEVEN_BITS, 300.0, -(2 ** 29 + 1) / 2 ** 29]
    assert significant_bits(values).tolist() == [3, 2, 5, 0, 2, 11, 8, 31]


def _operands(*layers, reuse=None) -> Operands:
    return Operands([DenseOperands(name, np.array(w, dtype=float), np.array(b)) for name, w, b in layers],
                    "hand-made layers", reuse)


def test_estimate_counts_only_real_multiplications():
    # Row 2's input is quantized away (0 bits): nothing it multiplies counts.
    fit = estimate(_operands(("a", [[0.75, 0.0, ELEVEN_BITS], [-4.0, 0.5, 300.0]], [12, 0])))
    assert fit.multiplications == {"3x12": 1, "11x12": 1}
    assert fit.n_multiplications == 2 and fit.nonzero_weights == 5 and fit.weights == 6
    assert fit.ebops == 3 * 12 + 11 * 12
    assert fit.layers[0]["zero_weights"] == 1 and fit.hardware is None


def test_dsp_and_lut_come_from_the_hardware_model():
    # A power of two is a shift: no DSP and no multiplier. A wide constant times a wide input: a DSP.
    shifts = estimate(_operands(("a", [[0.5, -4.0, 0.25]], [16])))
    wide = estimate(_operands(("a", [[ELEVEN_BITS, ELEVEN_BITS, ELEVEN_BITS]], [16])))
    narrow_inputs = estimate(_operands(("a", [[ELEVEN_BITS, ELEVEN_BITS, ELEVEN_BITS]], [6])))
    assert shifts.dsp == 0 and wide.dsp == 3 and narrow_inputs.dsp == 0
    assert narrow_inputs.lut > shifts.lut  # shift-and-add multipliers cost LUTs
    assert "C-synthesis" in wide.summary() and wide.kind == "C-synthesis estimate"


def test_reuse_shares_dsps_as_vivado_hls_does():
    layers = [("a", [[ELEVEN_BITS]] * 4, [16] * 4)]
    once, shared = estimate(_operands(*layers)), estimate(_operands(*layers), reuse_factor=3)
    assert (once.dsp, shared.dsp) == (4, 2)  # ceil(4 / 3)
    assert shared.lut > once.lut  # multiplexers in front of the shared DSPs
    assert shared.layers[0]["latency_cycles"] > once.layers[0]["latency_cycles"]
    assert estimate(_operands(*layers, reuse=4)).dsp == 1  # the project's reuse factor by default


def test_fits_compares_the_figures_with_the_budget_and_says_it_is_an_estimate():
    layers = ("a", [[ELEVEN_BITS] * 3], [16])
    assert estimate(_operands(layers)).fits
    tight = Budget(board="tiny", part="xc7z020clg400-1", dsp=2, lut=100)
    fit = estimate(_operands(layers), budget=tight)
    assert not fit.fits and fit.dsp == 3
    record = json.loads(json.dumps(fit.to_dict()))
    assert record["kind"] == "estimate" and record["fits"] is False and record["budget"]["dsp"] == 2
    assert PYNQ_Z2.dsp == 220 and PYNQ_Z2.lut == 53_200 and PYNQ_Z2.part.startswith("xc7z020")
    text = estimate(_operands(layers)).summary()
    assert "before synthesis" in text and "/ 220" in text and "/ 53,200" in text and "fits (estimate)" in text


@pytest.mark.parametrize("reuse", [0, -1, 1.5, True])
def test_bad_reuse_factors_are_refused(reuse):
    with pytest.raises(ConfigError, match="reuse_factor must be an integer >= 1"):
        estimate(_operands(("a", [[1.0]], [8])), reuse_factor=reuse)


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        fit_estimate(tmp_path / "absent.keras")


# ------------------------------------------------------------------- Keras, export and Firmware
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def qat_model(float_model, jets):  # noqa: F811
    from fastml_lab.quantize import quantize

    return quantize(float_model, jets, epochs=1, prune=0.5, progress=False).model


@pytest.mark.parametrize("which", ["float", "qat"])
def test_a_model_and_its_export_give_the_same_estimate(which, float_model, qat_model, tmp_path):  # noqa: F811
    from fastml_lab.hls import export

    model = float_model if which == "float" else qat_model
    project = export(model, tmp_path / "prj", precision="ap_fixed<16,6>" if which == "float" else None)
    from_keras, from_project = fit_estimate(model), fit_estimate(project)
    assert from_keras.ebops > 0 and from_keras.n_multiplications > 0
    for key in ("multiplications", "nonzero_weights", "weights", "ebops", "dsp", "lut"):
        assert getattr(from_keras, key) == getattr(from_project, key), key
    assert fit_estimate(project.firmware()).to_dict()["layers"] == from_project.to_dict()["layers"]


def test_the_estimate_of_an_exported_project_needs_numpy_alone(qat_model, tmp_path):
    from fastml_lab.hls import export

    project = export(qat_model, tmp_path / "prj")
    code = ("import sys, json; from fastml_lab.quantize import fit_estimate; "
            "fit = fit_estimate(sys.argv[1]); "
            "assert not {'keras', 'tensorflow', 'hls4ml'} & set(sys.modules), 'heavy import'; "
            "print(json.dumps(fit.to_dict()))")
    out = subprocess.run([sys.executable, "-c", code, str(project.path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["ebops"] == fit_estimate(qat_model).ebops
