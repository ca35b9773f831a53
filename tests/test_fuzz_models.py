"""Random models against their compiled C simulation, bit for bit: the fixed-seed slice of the campaign.

Eleven models drawn by ``tests/fuzz_helpers.py`` from fixed seeds (narrow, so that g++ compiles
each in seconds): dense networks with random precision plans (every rounding and overflow mode,
wrapping and saturating accumulators, mixed per layer), batch norm, ReLU/leaky/thresholded ReLU,
sigmoid and tanh tables, stable and latency softmax, Latency and Resource strategies, reuse
factors above 1 and the PYNQ-Z2 stream wrapper; HGQ2 models with random per-element bit widths;
BDTs drawn tree by tree or trained, both split conventions and random types. Each is exported,
compiled and run next to the emulator on inputs at the range edges, grid midpoints and BDT
thresholds; every output value must be equal, or the toolkit must refuse the model with a
FastMLError that says why. ``bench/bench_fuzz.py`` runs the long campaign.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("hls4ml")

from fuzz_helpers import describe, make_case, run_case  # noqa: E402

pytestmark = [pytest.mark.needs_gxx, pytest.mark.slow]

SLICE = [("nn", 0), ("nn", 4), ("nn", 6), ("nn", 15), ("nn", 28), ("hgq", 5), ("hgq", 10),
         ("bdt", 2), ("bdt", 3), ("bdt", 4), ("bdt", 15)]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    needs = {"hgq": "hgq", "bdt": "conifer"}
    root = tmp_path_factory.mktemp("fuzz")
    results = {}
    for family, seed in SLICE:
        if family in needs:
            try:
                __import__(needs[family])
            except ImportError:
                continue
        results[(family, seed)] = run_case(make_case(family, seed, small=True), root)
    return results


@pytest.mark.parametrize("family, seed", SLICE, ids=[f"{f}-{s}" for f, s in SLICE])
def test_equal_on_every_value_or_refused_clearly(outcomes, family, seed):
    if (family, seed) not in outcomes:
        pytest.skip(f"{family} needs a library that is not installed")
    r = outcomes[(family, seed)]
    if r["status"] == "refused":
        assert r["error"] in ("ConfigError", "UnsupportedError"), r
        assert len(r["message"]) >= 20
        return
    assert r["status"] == "ok", (
        f"{describe(make_case(family, seed, small=True))}: {r['status']} "
        f"({r.get('error')}: {r.get('message')}; first difference {r.get('first')}); "
        f"reproduce with: python bench/bench_fuzz.py --seeds {seed} --families {family} --small")
    assert r["mismatches"] == 0 and r["values"] > 0


def test_the_slice_compares_what_it_promises(outcomes):
    compared = [r for r in outcomes.values() if r["status"] == "ok"]
    assert len(compared) >= 0.7 * len(outcomes), [(r["seed"], r.get("message")) for r in outcomes.values()]
    ops = set().union(*(r["ops"] for r in compared))
    expected = {"dense", "relu", "softmax", "normalize", "sigmoid"}
    if ("hgq", 5) in outcomes:
        expected.add("quantize")
    if ("bdt", 2) in outcomes:
        expected.add("bdt")
    assert expected <= ops, f"ops reached: {sorted(ops)}"
    assert sum(r["values"] for r in compared) > 20_000


#: Cases the long campaign found, kept as drawn (full size). hgq 105: HGQ2 writes a 1-bit signed
#: ``ap_fixed<1,3,AP_RND,AP_SAT_SYM>`` quantizer for an input element; ap_fixed's symmetric
#: saturation keeps a 1-bit type's one negative code (-4 here), which FixedType used to drop (457 of
#: 4,815 values differed; HGQ2's own Keras model agrees with the old, wrong emulator).
CAMPAIGN_REGRESSIONS = [("hgq", 105)]


@pytest.mark.parametrize("family, seed", CAMPAIGN_REGRESSIONS, ids=[f"{f}-{s}" for f, s in CAMPAIGN_REGRESSIONS])
def test_cases_the_campaign_found(tmp_path, family, seed):
    pytest.importorskip("hgq")
    from fastml_lab.project import Project

    r = run_case(make_case(family, seed), tmp_path, keep=True)
    assert r["status"] == "ok" and r["mismatches"] == 0 and r["values"] > 4000, r
    firmware = Project.open(tmp_path / f"{family}_{seed}").firmware()
    element_types = [t for spec in firmware.description["layers"] if spec["op"] == "quantize"
                     for t in spec["element_types"]]
    assert {"width": 1, "integer": 3, "signed": True, "rounding": "RND", "overflow": "SAT_SYM"} in element_types


def test_a_c_simulation_that_aborts_is_a_clear_error_not_a_dead_process(tmp_path):
    """nn 210 (the campaign): converting a value to a type whose rounding bit lies above all of its
    bits makes the ap_types headers fail an ``assert`` inside the C simulation ("Attempting to read
    bit beyond MSB" of a 34-bit intermediate). The simulation runs in a child process, so the abort
    becomes a CsimError that says so and what to do, and this process lives on. Compiled without the
    headers' checks, as synthesis sees the code, the simulation equals the emulator on every value."""
    from fastml_lab.exceptions import CsimError
    from fastml_lab.hls.csim import run_csim

    r = run_case(make_case("nn", 210), tmp_path, keep=True)
    assert r["status"] == "csim-aborted" and r["error"] == "CsimError" and r["stage"] == "C simulation", r
    assert "Attempting to read bit beyond MSB" in r["message"] and "ap_types" in r["message"]
    assert r["unchecked"] and r["values"] > 4000 and r["mismatches"] == 0, r
    project = tmp_path / "nn_210"
    with pytest.raises(CsimError, match=r"stopped.*--no-header-checks"):
        run_csim(project, [[0.5, -0.25]])
    X = tmp_path / "x.npy"
    np.save(X, np.array([[0.5, -0.25], [-3.0, 7.0]]))
    checked = subprocess.run([sys.executable, "-m", "fastml_lab.cli", "check", str(project), "--input", str(X)],
                             capture_output=True, text=True, timeout=600)
    assert checked.returncode == 2 and "--no-header-checks" in checked.stderr and "Traceback" not in checked.stderr
    unchecked = subprocess.run([sys.executable, "-m", "fastml_lab.cli", "check", str(project), "--input", str(X),
                                "--no-header-checks"], capture_output=True, text=True, timeout=600)
    assert unchecked.returncode == 0 and "0 mismatches" in unchecked.stdout, unchecked.stdout + unchecked.stderr
    assert "without the ap_types header checks" in unchecked.stdout
