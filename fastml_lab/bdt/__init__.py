"""Boosted decision trees through the same flow as the neural network.

* :mod:`.train`: xgboost or scikit-learn gradient boosting on the jets;
* :mod:`.export`: conifer's HLS project and the emulator's firmware description (:func:`export_bdt`);
* :mod:`.csim`: the C simulation of an exported BDT;
* :mod:`.profile`: ``profile_bdt(model, X, precision=None) -> BDTProfile``: overflow and vanish
  counts of the inputs, thresholds, leaf values, partial sums and scores at a precision, with
  ``.table()`` (one dict per quantity), ``.summary()`` (text) and ``.suggested_precision``
  (``{"input", "threshold", "score"}`` -> type string);
* :mod:`.study`: ``precision_study(model, dataset, widths=(4, 6, 8, 10, 12, 16), integer_bits="auto")``
  -> a list of rows (dicts: ``bits``/``total_bits``, ``precision``, ``accuracy``, ``float_accuracy``,
  ``overflows``, ...; ``.table()`` and ``.plot()`` as the NN's study), on the emulator;
* :mod:`.estimate`: ``estimate_bdt(project_or_ensemble, board=None) -> dict`` (``latency_cycles``,
  ``latency_ns``, ``ii_cycles``, ``LUT``, ``FF``, ``DSP``, ``BRAM``, ``"kind": "estimate"``):
  conifer's own estimates; the export records its timing in project.json.

The ensemble itself is the firmware op ``"bdt"`` (:mod:`fastml_lab.firmware.ops.bdt`, numpy only),
bit-exact with conifer's HLS; the emulator and the board read BDT projects through it.
"""


def export_bdt(*args, **kwargs):
    """:func:`fastml_lab.bdt.export.export_bdt` (imported on first use)."""
    from .export import export_bdt as export

    return export(*args, **kwargs)
