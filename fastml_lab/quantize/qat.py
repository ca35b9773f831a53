"""Quantization-aware training: fine-tune the HGQ2 twin of a float model, optionally pruning it.

:func:`quantize` builds the twin (:mod:`.qat_model`) from the float weights, traces its activation
ranges on the training events, fine-tunes it with :func:`fastml_lab.train.train_model`, traces
the ranges again (every training value then fits its type) and reports sparsity, EBOPs and the
fit estimate. The returned Keras model computes exactly what its HLS export computes.

In the HGQ mode the widths learn at their own pace (:mod:`.hgq_training`): they settle where the
EBOPs penalty and the loss balance within the epochs given, then stay fixed while the weights
adapt, so a larger beta gives fewer EBOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._deps import require
from ..exceptions import ConfigError
from .fit import FitEstimate, fit_estimate
from .hgq_training import hgq_training
from .prune import PruningSchedule, pruning_callback, sparsity
from .qat_model import (DEFAULT_BITS, HGQ_START_BITS, build_qat_model, dense_layer_names, is_quantized,
                        resolve_bits, start_hgq_widths, trace_ranges)

__all__ = ["QuantizeResult", "quantize"]


@dataclass
class QuantizeResult:
    """A quantization-aware model and what it costs.

    ``bits`` are the widths per layer (for ``mode="hgq"``: where training started), ``sparsity``
    the fraction of zero (quantized) weights per layer, ``ebops`` and ``fit`` from
    :func:`~fastml_lab.quantize.fit_estimate`.
    """

    model: object
    history: object
    sparsity: dict
    ebops: int
    mode: str
    bits: dict
    beta: float | None
    prune: float | None
    fit: FitEstimate

    def to_dict(self) -> dict:
        return {"mode": self.mode, "bits": self.bits, "beta": self.beta, "prune": self.prune,
                "sparsity": dict(self.sparsity), "ebops": self.ebops, "fit": self.fit.to_dict(),
                "training": self.history.to_dict()}


def quantize(model, dataset, bits=None, hgq_beta: float | None = None, prune: float | None = None,
             epochs: int = 10, batch_size: int = 1024, on_epoch_end=None, seed: int = 0,
             learning_rate: float = 1e-3, patience: int | None = 5, progress: bool = True) -> QuantizeResult:
    """Quantization-aware training of ``model`` (a float Keras MLP or ``.keras`` path) on ``dataset``.

    ``bits``: widths per layer (see :mod:`fastml_lab.quantize.qat_model`; default 6-bit weights,
    8-bit activations). ``hgq_beta``: learn per-weight and per-input widths with HGQ2's EBOPs
    penalty of this strength (``bits`` is then where they start, default 8/8); larger means
    fewer bits. ``prune``: also prune every layer to this sparsity (weights that are already zero
    stay zero in any case). Training is :func:`fastml_lab.train.train_model`'s, without early
    stopping when pruning or in the HGQ mode (the best validation loss would undo either); in the
    HGQ mode ``learning_rate`` is where the weights' rate starts (see :mod:`.hgq_training`).
    A loss that turns NaN raises :class:`~fastml_lab.exceptions.TrainingError`.
    """
    from ..hls.keras_model import as_model
    from ..train import training_arrays, set_seed, train_model

    keras = require("keras", "train quantization-aware models")
    mode = "uniform" if hgq_beta is None else "hgq"
    if mode == "hgq" and (isinstance(hgq_beta, bool) or not isinstance(hgq_beta, (int, float))
                          or not math.isfinite(hgq_beta) or hgq_beta < 0):
        raise ConfigError(f"hgq_beta must be a number >= 0 (e.g. 1e-6); got {hgq_beta!r}.")
    float_model = as_model(model)
    if is_quantized(float_model):
        raise ConfigError(f"model {float_model.name!r} is already quantization-aware; pass its float model.")
    widths = resolve_bits(bits, dense_layer_names(float_model), DEFAULT_BITS if mode == "uniform" else HGQ_START_BITS)
    schedule = PruningSchedule(prune or 0.0)
    X = training_arrays(dataset)[0]

    set_seed(seed)
    qmodel = build_qat_model(float_model, widths, mode, hgq_beta or 0.0)
    callbacks, optimizer = [], None
    if mode == "hgq":
        start_hgq_widths(qmodel, widths, X)
        optimizer, width_schedule = hgq_training(keras, qmodel, learning_rate)
        callbacks.append(width_schedule)
    else:
        trace_ranges(qmodel, X)
    if prune or any(value > 0 for value in sparsity(float_model).values()):
        callbacks.append(pruning_callback(schedule))
    history = train_model(qmodel, dataset, epochs=epochs, batch_size=batch_size,
                          patience=patience if mode == "uniform" and not prune else None,
                          learning_rate=learning_rate, progress=progress, on_epoch_end=on_epoch_end,
                          seed=seed, callbacks=callbacks, optimizer=optimizer)
    trace_ranges(qmodel, X)
    if optimizer is not None:  # a plain Adam from here on, so a saved model loads without this module
        qmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                       loss="categorical_crossentropy", metrics=["accuracy"])
    fit = fit_estimate(qmodel)
    return QuantizeResult(model=qmodel, history=history, sparsity=sparsity(qmodel), ebops=fit.ebops,
                          mode=mode, bits=widths, beta=None if hgq_beta is None else float(hgq_beta),
                          prune=prune, fit=fit)
