"""FixedType: parsing, printing, and conversions checked against the C++ ap_fixed headers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastml_lab.exceptions import ConfigError, UnsupportedError
from fastml_lab.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType

from cpp_oracle import compile_and_run


@pytest.mark.parametrize("text, expected", [
    ("ap_fixed<16,6>", FixedType(16, 6)),
    ("fixed<8,3,RND,SAT>", FixedType(8, 3, True, "RND", "SAT")),
    ("ap_fixed<8, 3, AP_RND_CONV, AP_SAT_SYM>", FixedType(8, 3, True, "RND_CONV", "SAT_SYM")),
    ("ap_ufixed<8,0>", FixedType(8, 0, False)),
    ("ap_int<8>", FixedType(8, 8)),
    ("ap_uint<4>", FixedType(4, 4, False)),
    ("fixed<18,8,TRN,WRAP,0>", FixedType(18, 8)),
])
def test_parse(text, expected):
    assert FixedType.parse(text) == expected


@pytest.mark.parametrize("t", [FixedType(16, 6), FixedType(8, 3, True, "RND", "SAT"), FixedType(6, 0, False),
                               FixedType(12, -2, True, "RND_ZERO", "SAT_SYM")])
def test_round_trips(t):
    assert FixedType.parse(t.to_hls()) == t
    assert FixedType.parse(t.to_hls4ml()) == t
    assert FixedType.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("bad, words", [
    ("ap_fixed<16>", "arguments"), ("float", "Cannot read"), ("ap_fixed<16,6,AP_ROUND>", "AP_RND"),
    ("ap_fixed<16,6,AP_RND,AP_CLAMP>", "AP_SAT"), ("ap_fixed<0,0>", "positive"),
])
def test_parse_errors_say_what_is_valid(bad, words):
    with pytest.raises(ConfigError, match=words):
        FixedType.parse(bad)


def test_saturation_bits_are_refused():
    with pytest.raises(UnsupportedError, match="Saturation bits"):
        FixedType.parse("ap_fixed<8,3,AP_RND,AP_SAT,2>")


def test_too_wide_for_exact_emulation_is_refused():
    with pytest.raises(UnsupportedError, match="53"):
        FixedType(60, 20).quantize([1.0])


def test_range_and_step():
    t = FixedType(8, 3)
    assert (t.min, t.max, t.lsb) == (-4.0, 4.0 - 2 ** -5, 2 ** -5)
    assert FixedType(6, 2, False).max == 4.0 - 2 ** -4


def _test_values(rng) -> np.ndarray:
    ties = (np.arange(-300, 300) + 0.5) * 2.0 ** -6  # exact midpoints for several grids
    grid = np.arange(-300, 300) * 2.0 ** -7
    return np.concatenate([
        rng.normal(0, 3, 400), rng.normal(0, 300, 200), rng.uniform(-1e-3, 1e-3, 50),
        ties, grid, [0.0, -0.0, 1e-300, -1e-300, 1e6, -1e6, 7.96875, -8.0, -8.03125, 4.0, -4.0],
    ])


ORACLE_TYPES = (
    [FixedType(8, 3, True, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)]
    + [FixedType(6, 2, False, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)]
    + [FixedType(6, -1, True, "RND", "SAT"), FixedType(5, 7, True, "RND_CONV", "WRAP"),
       FixedType(18, 8, True, "RND_ZERO", "SAT_SYM"), FixedType(4, 2, True, "TRN_ZERO", "SAT_ZERO"),
       FixedType(16, 6), FixedType(24, 12, True, "RND_INF", "SAT")]
)


@pytest.mark.needs_gxx
def test_quantize_matches_cpp_for_every_mode(tmp_path):
    """Every rounding and overflow mode, signed and unsigned, against ap_fixed's own conversion."""
    values = _test_values(np.random.default_rng(0))
    body = "\n".join(
        f"    for (int i = 0; i < n; i++) {{ {t.to_hls()} x = v[i]; printf(\"%.17g\\n\", x.to_double()); }}"
        for t in ORACLE_TYPES
    )
    source = f"""
#include "ap_fixed.h"
#include <cstdio>
#include <vector>
int main() {{
    std::vector<double> v; double d;
    while (scanf("%lf", &d) == 1) v.push_back(d);
    int n = (int)v.size();
{body}
}}
"""
    out = compile_and_run(source, tmp_path, "\n".join(repr(float(x)) for x in values))
    expected = np.array([float(x) for x in out.split()]).reshape(len(ORACLE_TYPES), len(values))
    for t, row in zip(ORACLE_TYPES, expected):
        got = t.quantize(values)
        bad = np.flatnonzero(got != row)
        assert bad.size == 0, f"{t}: {bad.size} mismatches, e.g. {values[bad[:3]]} -> {got[bad[:3]]} vs C++ {row[bad[:3]]}"
        # Element by element too: no shortcut for arrays without overflow may change a value.
        one_by_one = np.array([t.quantize(np.array([v]))[0] for v in values])
        assert np.array_equal(one_by_one, row), f"{t}: differs when converted one value at a time"


@pytest.mark.parametrize("value", [1.0, np.float64(5.0), np.array(-3.0), 7])
def test_a_scalar_quantizes_as_a_one_element_array_does(value):
    for t in (FixedType.parse("ap_fixed<8,1>"), FixedType.parse("ap_fixed<8,1,AP_RND,AP_SAT>")):
        got = t.quantize(value)
        assert np.shape(got) == ()
        assert float(got) == t.quantize(np.array([value], dtype=np.float64))[0]
