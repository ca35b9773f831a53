"""Boosted decision trees through the same flow as the neural network.

* :mod:`.train`: xgboost or scikit-learn gradient boosting on the jets;
* :mod:`.export`: conifer's HLS project and the emulator's firmware description (:func:`export_bdt`);
* :mod:`.csim`: the C simulation of an exported BDT.

The ensemble itself is the firmware op ``"bdt"`` (:mod:`fastml_lab.firmware.ops.bdt`, numpy only),
bit-exact with conifer's HLS; the emulator and the board read BDT projects through it.
"""


def export_bdt(*args, **kwargs):
    """:func:`fastml_lab.bdt.export.export_bdt` (imported on first use)."""
    from .export import export_bdt as export

    return export(*args, **kwargs)
