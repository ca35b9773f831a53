"""FixedType against g++'s ap_fixed on random types and values, in one compile.

Every rounding and overflow mode, signed and unsigned, at random widths from 1 to 48 bits and
integer bits from -6 to width + 6; the values are each type's ends, one step and half a step
beyond them, exact midpoints and quarter points of its grid, random values at scales from 1e-4 to
1e8, huge and tiny ones (down to the smallest subnormal), both zeros and both infinities. The
seed is fixed; ``bench/bench_fuzz.py --fixed-seeds`` runs more seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from cpp_oracle import compile_and_run
from fastml_lab.fixed import FixedType
from fuzz_helpers import compare_with_oracle, oracle_source, oracle_values, random_oracle_types

pytestmark = [pytest.mark.needs_gxx]

SEED = 2024

#: Conversions this campaign found wrong, with g++'s ap_fixed results (the oracle below checks them too):
#: a subnormal scaled by 2**-3 underflowed to -0.0 and lost its sign (truncation gives -1 step); a
#: wrap-around of a raw value beyond 2**53 was computed with a rounding subtraction; and AP_SAT_SYM on
#: a 1-bit signed type keeps its one negative code (found through an HGQ2 model's 1-bit quantizer).
REGRESSIONS = [
    (FixedType(1, 3, True, "RND", "SAT_SYM"), -2.6875, -4.0),
    (FixedType(1, 3, True, "TRN", "SAT_SYM"), -0.5, -4.0),
    (FixedType(1, 1, True, "RND", "SAT_SYM"), 5.0, 0.0),
    (FixedType(4, 7), -5e-324, -8.0),
    (FixedType(4, 7), 5e-324, 0.0),
    (FixedType(2, 1, True, "RND_ZERO", "WRAP"), 2.0 ** 53 + 2, 0.0),
    (FixedType(2, 1, True, "RND_ZERO", "WRAP"), -(2.0 ** 53) - 2, 0.0),
    (FixedType(1, 1), 2.0 ** 53 + 2, 0.0),
    (FixedType(2, 2), 2.0 ** 53 + 6, -2.0),
]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    types = random_oracle_types(SEED) + [t for t, _, _ in REGRESSIONS]
    values = np.concatenate([oracle_values(types, SEED), [v for _, v, _ in REGRESSIONS]])
    stdin = "\n".join(float(v).hex() for v in values)
    output = compile_and_run(oracle_source(types), tmp_path_factory.mktemp("fixed_fuzz"), stdin)
    return types, values, output


def test_every_random_conversion_equals_ap_fixed(oracle):
    types, values, output = oracle
    bad = compare_with_oracle(types, values, output)
    assert not bad, f"{len(bad)} of {len(types) * len(values)} conversions differ from ap_fixed, e.g. {bad[:5]}"


def test_the_random_cases_cover_what_they_promise(oracle):
    types, values, _ = oracle
    modes = {(t.rounding, t.overflow, t.signed) for t in types}
    assert len(modes) == 7 * 4 * 2
    assert {(t.rounding, t.overflow) for t in types if t.width == 1 and t.signed} == {
        (r, o) for r, o, _ in modes}
    widths = {t.width for t in types}
    assert min(widths) <= 2 and max(widths) > 32
    assert any(t.integer < 0 for t in types) and any(t.integer > t.width for t in types)
    assert np.isinf(values).sum() == 2 and (values == 0).sum() >= 2 and np.signbit(values[values == 0]).any()
    assert (np.abs(values) > 1e200).any() and ((np.abs(values) < 1e-300) & (values != 0)).any()
    # Values exactly on a midpoint of some type's grid, and values that overflow each type.
    for t in types:
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = values * 2.0 ** t.fractional
        finite = np.isfinite(scaled)
        assert (scaled[finite] - np.floor(scaled[finite]) == 0.5).any(), t
        assert t.overflows(values[np.isfinite(values)]).any(), t


@pytest.mark.parametrize("t, value, cpp", REGRESSIONS)
def test_regressions_found_by_the_campaign(oracle, t, value, cpp):
    types, values, output = oracle
    assert t.quantize(np.array([value]))[0] == cpp
    assert float(t.quantize(value)) == cpp
    assert not [b for b in compare_with_oracle(types, values, output) if b[0] == t.to_hls()]
