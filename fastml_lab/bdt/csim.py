"""How a BDT project's C simulation is built: conifer's HLS C++ as it wrote it, with g++.

conifer writes every tree as its own template instance in one ``parameters.h`` and calls them all
from one function in ``BDT.cpp``. Compiled as one unit, g++'s time grows faster than the number of
trees (250 trees of depth 4: about 110 s at -O1). :func:`write_units` cuts conifer's text, verbatim,
into translation units of :data:`TREES_PER_UNIT` trees each (every tree keeps its own definition and
its own call), which compile one by one in a few seconds and in parallel: the same code, the same
arithmetic, about 5x sooner.

The batch entry point does what conifer's own ``bridge.cpp`` does for one event (cast each double
to ``input_t``, call ``bdt.decision_function``, return the scores as doubles), in a loop over the
batch, called with ctypes instead of pybind11. The export records :func:`bdt_recipe` in the
project; :func:`fastml_lab.hls.compile_csim` and :func:`fastml_lab.hls.run_csim` compile, cache
and run it like any project's.
"""

from __future__ import annotations

import re
from pathlib import Path

from .._io import write_text_atomic
from ..hls.csim import csim_recipe

#: -O1 compiles the unrolled trees in about half the time of -O3 and runs as fast (measured on 230
#: trees: 1,750 events/s at -O1, 1,850 at -O2, 1,780 at -O3; -O0 compiles three times slower).
CXXFLAGS = ("-O1", "-fPIC", "-std=c++14", "-fno-gnu-unique")
#: Trees per translation unit: 8 units of 29 trees compiled a 230-tree BDT in 21 s on 2 cores, 16
#: units of 15 in 24 s (each unit parses the ap_types headers again), one unit in 110 s.
TREES_PER_UNIT = 32
#: The folder, inside the conifer project, that holds the units.
UNITS_DIR = "csim_units"
TOP_UNIT = "bdt_top.cpp"

_LOOP = """
extern "C" void fastml_predict(const double *x, double *y, long n, long n_in, long n_out) {
    for (long i = 0; i < n; i++) {
        input_arr_t xt;
        for (int j = 0; j < n_features; j++) xt[j] = (input_t) x[i * n_in + j];
        score_t yt[BDT::fn_classes(n_classes)];
        bdt.decision_function(xt, yt);
        for (int j = 0; j < BDT::fn_classes(n_classes); j++) y[i * n_out + j] = (double) yt[j];
    }
}
"""


def _batch_source(includes: str) -> str:
    """The batch entry point over the C++ file that defines ``bdt`` (``includes``)."""
    return f'// Batch entry point for the C simulation, as conifer\'s bridge.cpp for each event.\n#include "{includes}"\n' + _LOOP


_TREE_START = re.compile(r"^static const BDT::Tree<[^>]*>\s*(\w+)\s*=", re.M)
_TREE_CALL = re.compile(r"^\s*scores\[\d+\]\[\d+\] = (\w+)\.decision_function\(x, split_fn\);\s*$")
_SPLIT_FN = re.compile(r"^(bool \(\*split_fn\)\([^)]*\))\s*=", re.M)
_INCLUDE_PARAMS = '#include "parameters.h"'
_UNIT_SIGNATURE = ("void fastml_tree_scores_{k}(input_arr_t x, "
                   "score_t scores[BDT::fn_classes(n_classes)][n_trees])")


def write_units(hls_dir, trees_per_unit: int = TREES_PER_UNIT) -> list[str] | None:
    """Write conifer's trees as translation units in ``hls_dir/csim_units``; return the units'
    paths relative to ``hls_dir`` (the top unit last), or None where conifer's files are not in
    the form this split knows (every tree a ``static const BDT::Tree`` in ``parameters.h``, called
    once each in ``BDT.cpp``): such a project compiles as one unit, as conifer wrote it.

    Each unit holds conifer's text verbatim: the head of ``parameters.h`` (its types and
    constants), a run of tree definitions, and those trees' calls from ``BDT.cpp``'s
    ``tree_scores`` in a function of its own. The top unit is ``BDT.cpp`` with the trees' calls
    replaced by calls of those functions.
    """
    fw = Path(hls_dir) / "firmware"
    params, bdt_cpp = (fw / "parameters.h").read_text(), (fw / "BDT.cpp").read_text()
    starts = [(m.start(), m.group(1)) for m in _TREE_START.finditer(params)]
    split_fn = _SPLIT_FN.search(bdt_cpp)
    lines = bdt_cpp.splitlines(keepends=True)
    call_lines = [line for line in lines if _TREE_CALL.match(line)]
    calls = {_TREE_CALL.match(line).group(1): line for line in call_lines}
    names = [name for _, name in starts]
    if (not starts or split_fn is None or bdt_cpp.count(_INCLUDE_PARAMS) != 1
            or len(calls) != len(call_lines) or sorted(names) != sorted(calls)):  # each tree called once
        return None
    end = params.rindex("};", starts[-1][0]) + 2
    head, tail = params[:starts[0][0]], params[end:]
    bounds = [s for s, _ in starts] + [end]
    trees = [params[bounds[i]:bounds[i + 1]] for i in range(len(starts))]

    out = Path(hls_dir) / UNITS_DIR
    out.mkdir(exist_ok=True)
    units = []
    for k, first in enumerate(range(0, len(trees), trees_per_unit)):
        chunk = range(first, min(first + trees_per_unit, len(trees)))
        text = (f"// conifer's trees {first}-{chunk[-1]} (parameters.h) and their calls (BDT.cpp), "
                "compiled apart for the C simulation.\n" + head + "".join(trees[i] for i in chunk) + tail
                + f"\nextern {split_fn.group(1)};\n" + _UNIT_SIGNATURE.format(k=k) + " {\n"
                + "".join(calls[names[i]] for i in chunk) + "}\n")
        name = f"{UNITS_DIR}/trees_{k:03d}.cpp"
        write_text_atomic(Path(hls_dir) / name, text)
        units.append(name)

    declarations = "".join(_UNIT_SIGNATURE.format(k=k) + ";\n" for k in range(len(units)))
    top, placed = [], False
    for line in lines:
        if line.strip() == _INCLUDE_PARAMS:
            top.append(head + tail + "\n" + declarations)
        elif _TREE_CALL.match(line):
            if not placed:
                top.extend(f"  fastml_tree_scores_{k}(x, scores);\n" for k in range(len(units)))
                placed = True
        else:
            top.append(line)
    write_text_atomic(out / TOP_UNIT, "// conifer's BDT.cpp, its trees compiled in the units beside this one.\n"
                      + "".join(top))
    return units + [f"{UNITS_DIR}/{TOP_UNIT}"]


def bdt_recipe(hls_dir=None, trees_per_unit: int = TREES_PER_UNIT) -> dict:
    """The record's ``csim`` entry. With ``hls_dir``, conifer's trees are split into units
    (:func:`write_units`) compiled in parallel; without it, or where the split does not apply,
    conifer's ``BDT.cpp`` is included by the batch source itself and compiles as one unit."""
    key_files = [f"firmware/{name}" for name in ("BDT.h", "BDT.cpp", "parameters.h")]
    units = write_units(hls_dir, trees_per_unit) if hls_dir is not None else None
    if units is None:
        return csim_recipe("libbdt", CXXFLAGS, ("firmware", "firmware/ap_types"), (), _batch_source("BDT.cpp"),
                           key_files)
    # The top unit is included by the batch source (it defines the BDT object the loop calls).
    return csim_recipe("libbdt", CXXFLAGS, ("firmware", "firmware/ap_types", UNITS_DIR), units[:-1],
                       _batch_source(TOP_UNIT), [*key_files, *units])
