"""One definition of a mismatch: output values that differ, not events."""

import numpy as np
import pytest

from fastml_lab.compare import count_mismatches
from fastml_lab.exceptions import DataError


def test_mismatches_count_values_not_events():
    a = np.zeros((4, 5))
    b = a.copy()
    b[1] = 1.0          # one event, all five values
    b[3, 2] = -0.5      # one value of another event
    result = count_mismatches(a, b)
    assert (result.mismatches, result.values, result.events, result.events_differing) == (6, 20, 4, 2)
    assert result.max_abs_diff == 1.0 and not result.identical
    assert result.describe() == "6 mismatches on 20 output values (4 events)"


def test_identical_outputs_have_no_mismatch():
    a = np.arange(12.0).reshape(3, 4)
    result = count_mismatches(a, a.copy())
    assert result.identical and result.mismatches == 0 and result.max_abs_diff == 0.0


def test_outputs_of_different_shapes_are_refused_by_name():
    with pytest.raises(DataError, match=r"\(3, 4\) \(board\) and \(2, 4\) \(software overlay\)"):
        count_mismatches(np.zeros((3, 4)), np.zeros((2, 4)), ("board", "software overlay"))


def test_the_module_imports_with_numpy_alone():
    import subprocess
    import sys

    code = ("import sys; import fastml_lab.compare; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'hls4ml', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
