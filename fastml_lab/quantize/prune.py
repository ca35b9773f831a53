"""Magnitude pruning on Keras 3: the smallest weights of each dense layer are set to zero for good.

A :class:`PruningSchedule` says which fraction of each layer's weights is zero as training
advances: ``"polynomial"`` ramps from 0 to the target between ``begin`` and ``end`` (fractions of
the run) as ``target * (1 - (1 - p)**3)``, the schedule of the TensorFlow pruning toolkit;
``"step"`` prunes to the target at ``begin`` at once. After every training batch each layer's mask
grows to the scheduled sparsity (a pruned weight never comes back) and its kernel is multiplied by
the mask, so pruned weights are exactly zero between batches, after training and in the export.

Float ``Dense`` and HGQ2 ``QDense`` layers are pruned the same way (a QDense's float kernel is
masked, and zero quantizes to zero). Biases are not pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._deps import require
from ..exceptions import ConfigError
from .operands import keras_kernels, operands_of

__all__ = ["SCHEDULES", "PruningSchedule", "PruneResult", "prune", "pruning_callback", "sparsity"]

SCHEDULES = ("polynomial", "step")


@dataclass(frozen=True)
class PruningSchedule:
    """Target sparsity over a training run (see the module docstring)."""

    target: float
    kind: str = "polynomial"
    begin: float = 0.0
    end: float = 0.5
    power: int = 3

    def __post_init__(self):
        if isinstance(self.target, bool) or not isinstance(self.target, (int, float)) or not 0 <= self.target < 1:
            raise ConfigError(f"sparsity must be a fraction in [0, 1), e.g. 0.75; got {self.target!r}.")
        if self.kind not in SCHEDULES:
            raise ConfigError(f"pruning schedule must be one of {', '.join(SCHEDULES)}; got {self.kind!r}.")
        if not 0 <= self.begin < self.end <= 1:
            raise ConfigError(f"pruning must begin and end within the run, 0 <= begin < end <= 1; "
                              f"got begin={self.begin!r}, end={self.end!r}.")

    def at(self, progress: float) -> float:
        """The sparsity at ``progress`` (0 = first batch, 1 = end of training)."""
        if progress < self.begin:
            return 0.0
        if self.kind == "step":
            return float(self.target)
        p = min(1.0, (progress - self.begin) / (self.end - self.begin))
        return float(self.target * (1 - (1 - p) ** self.power))


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, its training history, the zero fraction per layer."""

    model: object
    history: object
    sparsity: dict

    def to_dict(self) -> dict:
        return {"sparsity": dict(self.sparsity), "training": self.history.to_dict()}


def sparsity(model) -> dict:
    """``{layer: fraction of zero weights}`` for every dense layer of a Keras model (an HGQ2 layer
    counts its quantized weights), a ``.keras`` file, an exported project or a Firmware."""
    return _zero_fractions(model)


def _zero_fractions(model) -> dict:
    if hasattr(model, "layers") and hasattr(model, "inputs"):
        return {name: float(np.mean(kernel == 0)) for name, (_, kernel) in keras_kernels(model).items()}
    return {layer.name: layer.zero_fraction for layer in operands_of(model).layers}


def pruning_callback(schedule: PruningSchedule, layers=None):
    """A Keras callback pruning ``layers`` (names; default: every Dense/QDense) on ``schedule``."""
    keras = require("keras", "prune models")
    ops = keras.ops

    class MagnitudePruning(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            kernels = keras_kernels(self.model)
            names = list(kernels) if layers is None else list(layers)
            missing = sorted(set(names) - set(kernels))
            if missing:
                raise ConfigError(f"cannot prune {missing}: not Dense layers of the model; its Dense "
                                  f"layers are {', '.join(kernels)}.")
            self.targets = [kernels[name][0] for name in names]
            self.keep = {layer.name: np.asarray(ops.convert_to_numpy(layer.kernel)) != 0 for layer in self.targets}
            steps, epochs = self.params.get("steps"), self.params.get("epochs")
            self.total = max(1, (steps or 1) * (epochs or 1))
            self.done = 0
            self._prune(schedule.at(0.0))

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            self._prune(schedule.at(self.done / self.total))

        def on_train_end(self, logs=None):
            self._apply()

        def _prune(self, target: float) -> None:
            for layer in self.targets:
                keep = self.keep[layer.name]
                n_zero = int(round(target * keep.size))
                if n_zero > keep.size - keep.sum():  # grow the mask: smallest surviving magnitudes go
                    magnitude = np.where(keep, np.abs(ops.convert_to_numpy(layer.kernel)), -1.0)
                    keep = np.ones_like(keep)
                    keep.flat[np.argsort(magnitude, axis=None, kind="stable")[:n_zero]] = False
                    self.keep[layer.name] = keep
            self._apply()

        def _apply(self) -> None:
            for layer in self.targets:
                mask = ops.cast(self.keep[layer.name], layer.kernel.dtype)
                layer.kernel.assign(ops.multiply(layer.kernel, mask))

    return MagnitudePruning()


def prune(model, dataset, sparsity: float, epochs: int = 10, batch_size: int = 1024,
          schedule: str = "polynomial", learning_rate: float = 1e-3, on_epoch_end=None,
          progress: bool = True, seed: int = 0) -> PruneResult:
    """Train a copy of ``model`` while pruning each dense layer to ``sparsity`` (e.g. 0.75).

    ``model`` is a float or an HGQ2 Keras model (or a ``.keras`` path) and is left unchanged.
    Training runs all ``epochs`` (no early stopping: an earlier, less pruned epoch must not come
    back) with :func:`fastml_lab.train.train_model`.
    """
    from ..hls.keras_model import as_model
    from ..train import set_seed, train_model
    from .qat_model import is_quantized, trace_ranges

    plan = PruningSchedule(sparsity, kind=schedule)
    keras = require("keras", "prune models")
    source = as_model(model)
    set_seed(seed)
    pruned = keras.models.clone_model(source)
    pruned.set_weights(source.get_weights())
    history = train_model(pruned, dataset, epochs=epochs, batch_size=batch_size, patience=None,
                          learning_rate=learning_rate, progress=progress, on_epoch_end=on_epoch_end,
                          callbacks=[pruning_callback(plan)], seed=seed)
    if is_quantized(pruned):
        from ..train import training_arrays

        trace_ranges(pruned, training_arrays(dataset)[0])
    return PruneResult(model=pruned, history=history, sparsity=_zero_fractions(pruned))
