"""The family interface: a family defined here, nowhere else, goes through the whole toolchain.

A fixed-point linear classifier (``y = W x + b``, written as plain C++ on the ap_types headers) is
registered as a third model family with an op of its own. Export, the emulator, the C simulation
and its check, packaging and the software overlay take it with no edit outside this file: they read
the project record and the registries, never a family's name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastml_lab import families
from fastml_lab.emulator import Firmware
from fastml_lab.exceptions import ConfigError, DataError
from fastml_lab.families.sources import family_of
from fastml_lab.firmware.registry import TYPE, Field, Op, register_op, unregister_op
from fastml_lab.fixed import FixedType
from fastml_lab.hls.csim import csim_recipe
from fastml_lab.project import Project

INPUT_T, ACCUM_T, RESULT_T = "ap_fixed<12,4>", "ap_fixed<32,14>", "ap_fixed<12,5>"
OP = "test_linear"


class LinearOp(Op):
    """``W x + b`` summed exactly in the accumulator type, then cast (truncated, wrapped)."""

    ops = (OP,)
    fields = {"accum_type": Field(TYPE)}
    arrays = {"weights": "accum_type", "bias": "accum_type"}

    def compute(self, x):
        return x @ self.weights.T + self.bias


_CPP = """\
#include "ap_fixed.h"
typedef ap_fixed<{input_t}> input_t;
typedef ap_fixed<{accum_t}> accum_t;
typedef ap_fixed<{result_t}> result_t;
static const int N_IN = {n_in}, N_OUT = {n_out};
static const accum_t W[{n_out}][{n_in}] = {{{weights}}};
static const accum_t B[{n_out}] = {{{bias}}};
extern "C" void linear_one(const double *x, double *y) {{
    input_t xt[N_IN];
    for (int j = 0; j < N_IN; j++) xt[j] = (input_t) x[j];
    for (int i = 0; i < N_OUT; i++) {{
        accum_t acc = B[i];
        for (int j = 0; j < N_IN; j++) acc += W[i][j] * xt[j];
        y[i] = (double) (result_t) acc;
    }}
}}
"""
_BATCH = """\
extern "C" void linear_one(const double *x, double *y);
extern "C" void fastml_predict(const double *x, double *y, long n, long n_in, long n_out) {
    for (long i = 0; i < n; i++) linear_one(x + i * n_in, y + i * n_out);
}
"""


class LinearFamily(families.Family):
    name = "test_linear"
    title = "linear model"
    model_suffixes = (".linear",)
    source_keys = ("name", "backend", "n_inputs")

    def load(self, path):
        return json.loads(Path(path).read_text())

    def export(self, model, out, backend="vitis", **options):
        from fastml_lab.bdt.export import ap_types_dir

        model = self.load(model) if isinstance(model, (str, Path)) else model
        accum = FixedType.parse(ACCUM_T)
        weights, bias = np.asarray(model["weights"], float), np.asarray(model["bias"], float)
        out = Path(out)
        src = out / "src"
        src.mkdir(parents=True)
        shutil.copytree(ap_types_dir(), src / "ap_types")
        rows = ", ".join("{" + ", ".join(repr(float(w)) for w in row) + "}" for row in weights)
        (src / "linear.cpp").write_text(_CPP.format(
            input_t=INPUT_T[9:-1], accum_t=ACCUM_T[9:-1], result_t=RESULT_T[9:-1], n_in=weights.shape[1],
            n_out=weights.shape[0], weights=rows, bias=", ".join(repr(float(b)) for b in bias)))
        layer = {"name": "linear", "op": OP, "data_type": INPUT_T, "result_type": RESULT_T, "accum_type": ACCUM_T}
        description = {"schema_version": 1, "family": self.name, "interface": "parallel",
                       "n_inputs": int(weights.shape[1]), "n_outputs": int(weights.shape[0]),
                       "input_type": FixedType.parse(INPUT_T).to_dict(),
                       "output_type": FixedType.parse(RESULT_T).to_dict(), "layers": [LinearOp.encode(layer)]}
        firmware = Firmware(description, {"linear/weights": accum.to_raw(weights), "linear/bias": accum.to_raw(bias)})
        firmware.save(out)
        return Project.write_new(out, {
            "name": out.name, "family": self.name, "backend": backend, "board": None, "part": "xc7z020clg400-1",
            "clock_period_ns": 10.0, "interface": "parallel", "n_inputs": firmware.n_inputs,
            "n_outputs": firmware.n_outputs, "firmware_digest": firmware.digest(), "timing": {}, "hls_dir": "src",
            "csim": csim_recipe("liblinear", ("-O1", "-fPIC", "-std=c++14"), ("ap_types",), ("linear.cpp",),
                                _BATCH, ("linear.cpp",)),
        })


@pytest.fixture
def linear_family():
    """The family and its op, registered for one test (the registries' other users never see them)."""
    register_op(LinearOp)
    family = families.register(LinearFamily())
    yield family
    families.unregister(family.name)
    unregister_op(LinearOp)


@pytest.fixture
def linear_model(tmp_path):
    rng = np.random.default_rng(7)
    model = {"weights": (rng.integers(-128, 128, size=(3, 6)) / 16).tolist(),
             "bias": (rng.integers(-64, 64, size=3) / 8).tolist()}
    path = tmp_path / "model.linear"
    path.write_text(json.dumps(model))
    return path


def test_a_family_defined_here_goes_through_the_whole_toolchain(tmp_path, linear_family, linear_model):
    from fastml_lab.hls.check import check_project
    from fastml_lab.hls.csim import run_csim
    from fastml_lab.overlay import load
    from fastml_lab.overlay.packaging import package

    assert family_of(linear_model) is linear_family
    project = family_of(linear_model).export(linear_model, tmp_path / "prj")
    assert family_of(tmp_path / "prj") is linear_family

    X = np.random.default_rng(8).normal(scale=3.0, size=(2000, 6))
    X[:100] *= 40  # far outside the input type: saturates nothing, wraps (ap_fixed's default)
    emulated = Project.open(project.path).firmware().predict(X)
    simulated = run_csim(project.path, X)
    np.testing.assert_array_equal(emulated, simulated)
    assert len(np.unique(emulated)) > 100  # a model that computes something
    assert check_project(project.path, X).mismatches == 0

    pkg = package(project.path, "linear_demo", out=tmp_path / "pkg")
    manifest = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    assert manifest["family"] == linear_family.name
    assert manifest["source"] == {"name": "prj", "backend": "vitis", "n_inputs": 6}
    with load(pkg, backend="software") as overlay:
        np.testing.assert_array_equal(overlay.predict(X), simulated)


def test_the_command_line_exports_a_registered_family(tmp_path, linear_family, linear_model, capsys):
    from fastml_lab.cli import main

    assert main(["export", str(linear_model), "--out", str(tmp_path / "prj")]) == 0
    assert Project.open(tmp_path / "prj").family == linear_family.name
    assert main(["export", str(linear_model), "--out", str(tmp_path / "p2"), "--reuse", "2"]) == 2
    assert "is a linear model; --reuse does not apply to it" in capsys.readouterr().err


def test_unknown_families_are_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="Unknown model family 'nope'; valid: nn, bdt"):
        families.get_family("nope")
    record = tmp_path / "prj"
    record.mkdir()
    (record / "project.json").write_text(json.dumps({"backend": "vitis", "family": "nope"}))
    with pytest.raises(DataError, match="Unknown model family 'nope'"):
        Project.open(record)
    with pytest.raises(ConfigError, match="neither an exported project"):
        family_of(tmp_path / "missing.keras")


def test_a_family_name_is_registered_once():
    with pytest.raises(ConfigError, match="registered already"):
        families.register(type("Again", (LinearFamily,), {"name": families.NETWORK})())


def test_the_record_refuses_a_recipe_that_leaves_the_project(tmp_path):
    record = tmp_path / "prj"
    record.mkdir()
    recipe = csim_recipe("lib", ("-O1",), ("../elsewhere",), (), "", ())
    (record / "project.json").write_text(json.dumps({"backend": "vitis", "csim": recipe}))
    with pytest.raises(DataError, match="paths must be relative and inside the project"):
        Project.open(record)
