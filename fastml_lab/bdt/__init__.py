"""Boosted decision trees through the same flow as the neural network.

* :mod:`.train`: xgboost or scikit-learn gradient boosting on the jets;
* :mod:`.export`: conifer's HLS project and the emulator's firmware description (:func:`export_bdt`);
* :mod:`.op`: the ensemble as one firmware op ``"bdt"``, bit-exact with conifer's HLS (numpy only);
* :mod:`.csim`: the C simulation of an exported BDT.

Importing this package registers the op and nothing else (numpy only): the board imports it.
"""

from . import op  # noqa: F401  (registers the "bdt" op)


def export_bdt(*args, **kwargs):
    """:func:`fastml_lab.bdt.export.export_bdt` (imported on first use)."""
    from .export import export_bdt as export

    return export(*args, **kwargs)
