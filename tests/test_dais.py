"""The emulator's da4ml stage (firmware/ops/dais.py) against da4ml's own interpreters, opcode by opcode."""

import numpy as np
import pytest

pytest.importorskip("da4ml")

from da4ml.trace import FixedVariableArrayInput, comb_trace  # noqa: E402
from da4ml.trace.pipeline import to_pipeline  # noqa: E402
from da4ml.types import Pipeline  # noqa: E402

from fastml_lab.emulator import Firmware  # noqa: E402
from fastml_lab.exceptions import UnsupportedError  # noqa: E402
from fastml_lab.firmware.ops.dais import SUPPORTED_OPCODES  # noqa: E402
from fastml_lab.rtl.network import describe_pipeline  # noqa: E402


def _program():
    inp = FixedVariableArrayInput((4,))
    x = inp.quantize(np.array([1, 1, 0, 1]), np.array([3, 2, 3, 1]), np.array([4, 3, 2, 5]))
    a, b, d = x[0], x[1], x[3]
    mx = np.maximum(x[0:2], x[2:4])  # MSB multiplexers
    outs = [a * b, (a - 2 * d).relu(), (a + b * 0.375 + 1.25).quantize(1, 2, 2), mx[0], mx[1], -d, x[2] * 3.0,
            (-(a + b)).relu(), 1.5]
    return x, comb_trace(x, outs)


def _inputs(n=4000, seed=0):
    X = np.random.default_rng(seed).normal(scale=6, size=(n, 4))
    X[:100] *= 1e3
    return X


def test_every_opcode_the_program_uses_equals_da4ml():
    _, comb = _program()
    used = {op.opcode for op in comb.ops}
    assert {-1, 0, 1, 2, 3, 4, 5, 6, 7} <= used
    firmware = Firmware(*describe_pipeline(Pipeline((comb,))))
    X = _inputs()
    ours = firmware.predict(X)
    theirs = comb.predict(np.ascontiguousarray(firmware.cast_input(X)))
    np.testing.assert_array_equal(ours, theirs)
    # da4ml's Python reference (inputs cut to their own widths, as the RTL does), event by event
    for row in firmware.cast_input(X[:20]):
        np.testing.assert_array_equal(firmware.predict(row)[0], np.asarray(comb(row, quantize=True), dtype=np.float64))


@pytest.mark.parametrize("cutoff", [1, 2, 4])
def test_pipelining_does_not_change_a_value(cutoff):
    _, comb = _program()
    pipeline = to_pipeline(comb, cutoff, verbose=False)
    staged = Firmware(*describe_pipeline(pipeline))
    whole = Firmware(*describe_pipeline(Pipeline((comb,))))
    assert len(staged.layer_names) == len(pipeline.solutions)
    X = _inputs(seed=cutoff)
    np.testing.assert_array_equal(staged.predict(X), whole.predict(X))


def test_lookup_tables_are_refused_by_name():
    inp = FixedVariableArrayInput((2,))
    x = inp.quantize(np.array([1, 1]), np.array([2, 2]), np.array([3, 3]))
    tabled = x.apply(np.tanh).quantize(1, 1, 6) if hasattr(x, "apply") else None
    if tabled is None:
        pytest.skip("this da4ml has no table operations")
    comb = comb_trace(x, tabled)
    assert 8 in {op.opcode for op in comb.ops} and 8 not in SUPPORTED_OPCODES
    with pytest.raises(UnsupportedError, match="opcode 8"):
        describe_pipeline(Pipeline((comb,)))
