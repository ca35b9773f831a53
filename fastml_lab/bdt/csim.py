"""How a BDT project's C simulation is built: conifer's HLS C++ as it wrote it, with g++.

The batch entry point does what conifer's own ``bridge.cpp`` does for one event (cast each double
to ``input_t``, call ``bdt.decision_function``, return the scores as doubles), in a loop over the
batch, called with ctypes instead of pybind11. The export records :func:`bdt_recipe` in the
project; :func:`fastml_lab.hls.compile_csim` and :func:`fastml_lab.hls.run_csim` compile, cache
and run it like any project's.
"""

from __future__ import annotations


from ..hls.csim import csim_recipe

#: -O1 compiles the unrolled trees in about half the time of -O3; the arithmetic is the same.
CXXFLAGS = ("-O1", "-fPIC", "-std=c++14", "-fno-gnu-unique")
_BATCH_SOURCE = """\
// Batch entry point for the C simulation, as conifer's bridge.cpp for each event.
#include "BDT.cpp"
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


def bdt_recipe() -> dict:
    """The record's ``csim`` entry: conifer's ``BDT.cpp`` is included by the batch source itself."""
    return csim_recipe("libbdt", CXXFLAGS, ("firmware", "firmware/ap_types"), (), _BATCH_SOURCE,
                       [f"firmware/{name}" for name in ("BDT.h", "BDT.cpp", "parameters.h")])
