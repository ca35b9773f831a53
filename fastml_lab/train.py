"""Build, train, save and load the jet-tagging MLP (Keras 3).

The classic model is 16-64-32-32-5 with ReLU and a softmax output. Variants come from a
:class:`ModelSpec` or from a short string (see :func:`parse_spec`)::

    "64-32-32"                 the classic hidden layers
    "64-32-32:bn:l1=1e-4"      BatchNormalization after each hidden Dense, L1 on the kernels
    "32-16:act=tanh"           tanh instead of ReLU

Each Dense is followed by its own ``Activation`` layer (``fc1``, ``relu1``, ..., ``output``,
``softmax``) so an HLS export sees one layer per operation. Keras is imported only when a function
needs it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._deps import require
from ._io import atomic_destination
from .data.prepare import dataset_part
from .data.schema import one_hot
from .exceptions import ConfigError, DataError, TrainingError

log = logging.getLogger(__name__)

ACTIVATIONS = ("relu", "tanh", "sigmoid")
CLASSIC_HIDDEN = (64, 32, 32)

__all__ = [
    "ACTIVATIONS", "ModelSpec", "CnnSpec", "TrainingHistory", "parse_spec", "parse_cnn_spec", "build_model",
    "build_cnn", "train_model", "save_model", "load_model", "set_seed",
]


# ------------------------------------------------------------------------------------------ spec
@dataclass(frozen=True)
class ModelSpec:
    """Shape of a fully connected classifier: ``n_inputs -> hidden... -> n_classes``."""

    hidden: tuple[int, ...] = CLASSIC_HIDDEN
    activation: str = "relu"
    batch_norm: bool = False
    l1: float = 0.0
    n_inputs: int = 16
    n_classes: int = 5

    def __post_init__(self):
        _check_widths(tuple(self.hidden))
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}; "
                              f"got {self.activation!r}")
        if not (isinstance(self.l1, (int, float)) and math.isfinite(self.l1) and self.l1 >= 0):
            raise ConfigError(f"l1 must be a finite number >= 0; got {self.l1!r}")
        for name in ("n_inputs", "n_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        if self.n_classes < 2:
            raise ConfigError(f"n_classes must be at least 2; got {self.n_classes}")

    @classmethod
    def parse(cls, text: str, **overrides) -> "ModelSpec":
        """Same as :func:`parse_spec`."""
        return parse_spec(text, **overrides)

    def to_string(self) -> str:
        """The short form that :func:`parse_spec` reads back (inputs and classes not included)."""
        parts = ["-".join(str(w) for w in self.hidden)]
        if self.batch_norm:
            parts.append("bn")
        if self.l1:
            parts.append(f"l1={self.l1:g}")
        if self.activation != "relu":
            parts.append(f"act={self.activation}")
        return ":".join(parts)

    def describe(self) -> str:
        """Full layer widths, e.g. ``'16-64-32-32-5 relu'``."""
        widths = (self.n_inputs, *self.hidden, self.n_classes)
        return "-".join(str(w) for w in widths) + f" {self.activation}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


def _check_widths(hidden: tuple) -> None:
    if not hidden:
        raise ConfigError("a model needs at least one hidden layer, e.g. hidden=(64, 32, 32)")
    for width in hidden:
        if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
            raise ConfigError(f"hidden layer widths must be positive integers; got {hidden!r}")


_GRAMMAR = ("WIDTH[-WIDTH...][:bn][:l1=FLOAT][:act=" + "|".join(ACTIVATIONS) + "], "
            "e.g. '64-32-32' or '64-32-32:bn:l1=1e-4'")


def parse_spec(text: str, **overrides) -> ModelSpec:
    """Read a short model description.

    Grammar: ``WIDTH[-WIDTH...]`` for the hidden layers, then any of the options ``:bn``
    (BatchNormalization), ``:l1=FLOAT`` (L1 kernel penalty) and ``:act=NAME`` (relu, tanh or
    sigmoid), in any order. ``overrides`` (e.g. ``n_inputs=16``) are passed to :class:`ModelSpec`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"model spec must be a non-empty string like {_GRAMMAR}; got {text!r}")
    head, *options = [part.strip() for part in text.strip().split(":")]
    fields = {"hidden": _parse_widths(head, text)}
    for option in options:
        fields.update(_parse_option(option, text))
    fields.update(overrides)
    return ModelSpec(**fields)


def _parse_widths(head: str, text: str, what: str = "hidden layer widths", kind: str = "model spec",
                  grammar: str = _GRAMMAR) -> tuple[int, ...]:
    pieces = head.split("-")
    if not all(p.strip().isdigit() and int(p) > 0 for p in pieces):
        raise ConfigError(f"bad {what} {head!r} in {kind} {text!r}; expected {grammar}")
    return tuple(int(p) for p in pieces)


def _parse_option(option: str, text: str) -> dict:
    key, _, value = option.partition("=")
    key = key.strip().lower()
    if key == "bn" and not value:
        return {"batch_norm": True}
    if key == "l1" and value:
        try:
            return {"l1": float(value)}
        except ValueError:
            raise ConfigError(f"l1 needs a number, got {value!r} in model spec {text!r}") from None
    if key == "act" and value:
        return {"activation": value.strip().lower()}
    raise ConfigError(f"unknown option {option!r} in model spec {text!r}; expected {_GRAMMAR}")


def _as_spec(spec) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, str):
        return parse_spec(spec)
    raise ConfigError(f"spec must be a ModelSpec or a string like '64-32-32'; got {type(spec).__name__}")


# ----------------------------------------------------------------------------------------- model
def set_seed(seed: int) -> None:
    """Seed Python, numpy and the Keras backend."""
    keras = require("keras", "train models")
    keras.utils.set_random_seed(int(seed))


def build_model(spec: ModelSpec | str = ModelSpec(), seed: int | None = 0, name: str = "jet_mlp"):
    """Return an uncompiled ``keras.Sequential`` for ``spec`` with readable layer names.

    Layers: ``fc1, [bn1,] relu1, fc2, ..., output, softmax`` (the activation name replaces
    ``relu`` for other activations). ``seed`` (None: leave the global state alone) makes the
    initial weights reproducible.
    """
    keras = require("keras", "build models")
    spec = _as_spec(spec)
    if seed is not None:
        set_seed(seed)
    layers = [keras.Input(shape=(spec.n_inputs,), name="features")]
    for index, width in enumerate(spec.hidden, start=1):
        layers.extend(_hidden_block(keras, spec, index, width))
    layers.append(keras.layers.Dense(spec.n_classes, name="output",
                                     kernel_regularizer=_regularizer(keras, spec)))
    layers.append(keras.layers.Activation("softmax", name="softmax"))
    return keras.Sequential(layers, name=name)


def _hidden_block(keras, spec: ModelSpec, index: int, width: int) -> list:
    block = [keras.layers.Dense(width, name=f"fc{index}", kernel_regularizer=_regularizer(keras, spec))]
    if spec.batch_norm:
        block.append(keras.layers.BatchNormalization(name=f"bn{index}"))
    block.append(keras.layers.Activation(spec.activation, name=f"{spec.activation}{index}"))
    return block


def _regularizer(keras, spec: ModelSpec):
    return keras.regularizers.L1(spec.l1) if spec.l1 > 0 else None


# ------------------------------------------------------------------------------------------- cnn
@dataclass(frozen=True)
class CnnSpec:
    """A small image classifier: conv blocks (Conv2D, ReLU, 2x2 max pooling), Flatten, Dense layers.

    ``filters`` are the channels of each conv block; the first convolution keeps the image size
    (``same`` padding), the later ones shrink it (``valid``); ``dense`` are hidden widths after Flatten.
    """

    filters: tuple[int, ...] = (8, 8)
    kernel_size: int = 3
    dense: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = (16, 16, 1)
    n_classes: int = 5

    def __post_init__(self):
        _check_widths(tuple(self.filters))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        object.__setattr__(self, "dense", tuple(int(w) for w in self.dense))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.dense:
            _check_widths(self.dense)
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int) or self.kernel_size < 1:
            raise ConfigError(f"kernel_size must be a positive integer; got {self.kernel_size!r}")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"input_shape must be (height, width, channels); got {self.input_shape!r}")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ConfigError(f"n_classes must be an integer >= 2; got {self.n_classes!r}")
        side = min(self.input_shape[:2])
        for index in range(len(self.filters)):
            side = side if index == 0 else side - self.kernel_size + 1
            if side < 2:
                raise ConfigError(f"{len(self.filters)} conv blocks of kernel {self.kernel_size} shrink a "
                                  f"{self.input_shape[0]}x{self.input_shape[1]} image below 2x2 before pooling "
                                  f"block {index + 1}; use fewer blocks or a smaller kernel.")
            side //= 2

    def to_string(self) -> str:
        """The short form :func:`parse_cnn_spec` reads back (input shape and classes not included)."""
        parts = ["-".join(str(f) for f in self.filters)]
        if self.kernel_size != 3:
            parts.append(f"k={self.kernel_size}")
        if self.dense:
            parts.append("fc=" + "-".join(str(w) for w in self.dense))
        return ":".join(parts)

    def describe(self) -> str:
        """E.g. ``'16x16x1 conv 8-8 (3x3) -> 5'``."""
        dense = "".join(f"-{w}" for w in self.dense)
        shape = "x".join(str(d) for d in self.input_shape)
        return f"{shape} conv {'-'.join(map(str, self.filters))} ({self.kernel_size}x{self.kernel_size}){dense} -> {self.n_classes}"


_CNN_GRAMMAR = "FILTERS[-FILTERS...][:k=KERNEL][:fc=WIDTH[-WIDTH...]], e.g. '8-8' or '4-8:fc=16'"


def parse_cnn_spec(text: str = "8-8", **overrides) -> CnnSpec:
    """Read a short CNN description: conv filters per block, then ``:k=`` (kernel size) and ``:fc=``
    (Dense widths after Flatten) in any order; ``overrides`` (e.g. ``input_shape``) go to :class:`CnnSpec`."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"CNN spec must be a non-empty string like {_CNN_GRAMMAR}; got {text!r}")
    head, *options = [part.strip() for part in text.strip().split(":")]
    fields = {"filters": _cnn_widths(head, text)}
    for option in options:
        key, _, value = option.partition("=")
        key = key.strip().lower()
        if key == "k" and value.strip().isdigit() and int(value) > 0:
            fields["kernel_size"] = int(value)
        elif key == "fc" and value:
            fields["dense"] = _cnn_widths(value, text)
        else:
            raise ConfigError(f"unknown option {option!r} in CNN spec {text!r}; expected {_CNN_GRAMMAR}")
    fields.update(overrides)
    return CnnSpec(**fields)


def _cnn_widths(head: str, text: str) -> tuple[int, ...]:
    return _parse_widths(head, text, "widths", "CNN spec", _CNN_GRAMMAR)


def build_cnn(spec: CnnSpec | str = CnnSpec(), seed: int | None = 0, name: str = "jet_cnn"):
    """Return an uncompiled ``keras.Sequential`` CNN for ``spec`` with readable layer names.

    Layers: ``conv1, relu1, pool1, conv2, relu2, pool2, ..., flatten, [fc1, relu_fc1, ...] output,
    softmax``. Every part exports with both of hls4ml's I/O styles (pooling windows do not overlap).
    """
    keras = require("keras", "build models")
    spec = spec if isinstance(spec, CnnSpec) else parse_cnn_spec(spec)
    if seed is not None:
        set_seed(seed)
    L = keras.layers
    layers = [keras.Input(shape=spec.input_shape, name="image")]
    for index, filters in enumerate(spec.filters, start=1):
        layers += [L.Conv2D(filters, spec.kernel_size, padding="same" if index == 1 else "valid", name=f"conv{index}"),
                   L.Activation("relu", name=f"relu{index}"), L.MaxPooling2D(2, name=f"pool{index}")]
    layers.append(L.Flatten(name="flatten"))
    for index, width in enumerate(spec.dense, start=1):
        layers += [L.Dense(width, name=f"fc{index}"), L.Activation("relu", name=f"relu_fc{index}")]
    layers += [L.Dense(spec.n_classes, name="output"), L.Activation("softmax", name="softmax")]
    return keras.Sequential(layers, name=name)


# -------------------------------------------------------------------------------------- training
@dataclass
class TrainingHistory:
    """Per-epoch metrics of one :func:`train_model` run."""

    loss: list = field(default_factory=list)
    acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _progress_callback(keras, epochs: int):
    """A Keras callback that shows one tqdm bar per run: epoch, loss and accuracy."""
    tqdm = require("tqdm", "show progress").tqdm

    class TqdmProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc="training", unit="epoch", leave=True)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix(_short_logs(logs or {}), refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmProgress()


def _short_logs(logs: dict) -> dict:
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    return {short: f"{float(logs[key]):.4f}" for key, short in names.items() if key in logs}


def _hook_callback(keras, on_epoch_end: Callable[[int, dict], None]):
    """Call ``on_epoch_end(epoch, logs)`` with plain floats after every epoch (e.g. live plots)."""

    class EpochHook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            on_epoch_end(epoch, {k: float(v) for k, v in (logs or {}).items()})

    return EpochHook()


def training_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(X, y)`` from a JetDataset-like object or an ``(X, y)`` pair (y one-hot or int)."""
    X, y = dataset_part(dataset, "train")
    if y is None:
        raise DataError(f"{type(dataset).__name__} has no training labels (labels_train or y_train).")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim < 2 or len(X) == 0:
        raise DataError(f"X must be a non-empty array of events (events, features) or images (events, height, "
                        f"width, channels); got shape {X.shape}")
    if len(y) != len(X):
        raise DataError(f"X has {len(X)} rows but y has {len(y)}")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    return X, y


def _split_validation(X, y, fraction: float, seed: int):
    """Shuffle once, then hold out ``fraction`` of the events for validation."""
    order = np.random.default_rng(seed).permutation(len(X))
    n_val = int(round(len(X) * fraction))
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), ((X[val], y[val]) if n_val else None)


def check_training_params(epochs=30, batch_size=1024, patience=5, learning_rate=1e-3, validation_split=0.25):
    """Refuse a bad training setting (ConfigError naming it) before any work; defaults: train_model's."""
    checks = [
        ("epochs", epochs, isinstance(epochs, int) and epochs >= 1, "an integer >= 1"),
        ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1, "an integer >= 1"),
        ("patience", patience, patience is None or (isinstance(patience, int) and patience >= 0),
         "None or an integer >= 0"),
        ("learning_rate", learning_rate, isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
         and learning_rate > 0, "a finite number > 0"),
        ("validation_split", validation_split,
         isinstance(validation_split, (int, float)) and 0 <= validation_split < 1, "a number in [0, 1)"),
    ]
    for name, value, ok, valid in checks:
        if not ok:
            raise ConfigError(f"train_model's {name} must be {valid}; got {value!r}")


def train_model(model, dataset, epochs: int = 30, batch_size: int = 1024, patience: int | None = 5,
                learning_rate: float = 1e-3, progress: bool = True, callbacks: Sequence | None = None,
                validation_split: float = 0.25, on_epoch_end: Callable[[int, dict], None] | None = None,
                seed: int = 0, optimizer=None) -> TrainingHistory:
    """Compile ``model`` (fresh Adam, categorical cross-entropy), train it, return the history.

    ``dataset`` is a JetDataset (its training part is used) or an ``(X, y)`` pair. A shuffled
    ``validation_split`` of it is held out; early stopping watches ``val_loss`` (``loss`` when
    there is no validation part) and restores the best weights. ``patience=None`` turns early
    stopping off. ``on_epoch_end(epoch, logs)`` is called after each epoch with float metrics.
    ``optimizer`` (a Keras optimizer) replaces the fresh ``Adam(learning_rate)``. A loss that
    becomes NaN or infinite stops training at once (Keras' ``TerminateOnNaN``) and raises
    :class:`~fastml_lab.exceptions.TrainingError` instead of returning a history.
    """
    keras = require("keras", "train models")
    check_training_params(epochs, batch_size, patience, learning_rate, validation_split)
    X, y = training_arrays(dataset)
    y = one_hot(y, model.output_shape[-1])
    (X_fit, y_fit), validation = _split_validation(X, y, validation_split, seed)

    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    stopper = _early_stopping(keras, patience, has_validation=validation is not None)
    extra = [keras.callbacks.TerminateOnNaN(), *([stopper] if stopper else [])]
    extra += [_progress_callback(keras, epochs)] if progress else []
    extra += [_hook_callback(keras, on_epoch_end)] if on_epoch_end else []

    start = time.perf_counter()
    fit = model.fit(X_fit, y_fit, epochs=epochs, batch_size=batch_size, validation_data=validation,
                    callbacks=[*extra, *(callbacks or [])], verbose=0, shuffle=True)
    _check_diverged(model, fit.history.get("loss", []), epochs, learning_rate)
    return _history(fit.history, stopper, epochs, time.perf_counter() - start)


def _check_diverged(model, losses: list, epochs: int, learning_rate: float) -> None:
    if losses and not math.isfinite(float(losses[-1])):
        raise TrainingError(
            f"Training of model {model.name!r} diverged in epoch {len(losses)} of {epochs}: the loss became "
            f"{float(losses[-1])}, so the weights are no longer usable. Train again with a smaller learning "
            f"rate (this run: {learning_rate:g}).")


def _early_stopping(keras, patience, has_validation: bool):
    if patience is None:
        return None
    return keras.callbacks.EarlyStopping(monitor="val_loss" if has_validation else "loss",
                                         patience=patience, restore_best_weights=True)


def _history(logs: dict, stopper, epochs: int, seconds: float) -> TrainingHistory:
    as_floats = lambda key: [float(v) for v in logs.get(key, [])]  # noqa: E731
    history = TrainingHistory(loss=as_floats("loss"), acc=as_floats("accuracy"),
                              val_loss=as_floats("val_loss"), val_acc=as_floats("val_accuracy"),
                              seconds=round(seconds, 3))
    history.epochs_run = len(history.loss)
    if stopper is not None:
        history.best_epoch = int(stopper.best_epoch)
        history.stopped_early = history.epochs_run < epochs
    log.info("trained %d epochs in %.1f s", history.epochs_run, seconds)
    return history


# ------------------------------------------------------------------------------------ save, load
def save_model(model, path: str | os.PathLike) -> Path:
    """Save ``model`` to a ``.keras`` file atomically; return the path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"save_model writes the Keras 3 format, so the file name must end in "
                          f"'.keras'; got {str(path)!r}")
    with atomic_destination(path) as tmp:
        model.save(tmp)
    log.info("saved model to %s", path)
    return path


def check_model_file(path) -> Path:
    """Refuse a model file :func:`load_model` cannot read, cheaply (before TensorFlow starts): a
    missing file, another suffix, or not a Keras 3 archive (a zip holding ``config.json``)."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Model file {str(path)!r} does not exist.")
    if path.suffix != ".keras":
        raise DataError(f"Model file {str(path)!r} must be a Keras 3 '.keras' file.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"Model file {str(path)!r} is not a Keras 3 archive (a zip file): {exc}.") from None
    if "config.json" not in names:
        raise DataError(f"Model file {str(path)!r} is a zip file without the config.json of a Keras 3 "
                        "archive; save the model with model.save('NAME.keras').")
    return path


def load_model(path: str | os.PathLike, custom_objects: dict | None = None, compile: bool = False):
    """Load a ``.keras`` model (float or HGQ2 quantization-aware); DataError naming the file otherwise.

    ``compile=False`` (the default) loads the weights without the optimizer: training compiles
    afresh, and export, evaluation and prediction need none.
    """
    path = check_model_file(path)
    keras = require("keras", "load models")
    _register_hgq()
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile)
    except Exception as exc:  # keras raises many types for a damaged archive
        raise DataError(f"could not load model file {str(path)!r}: {type(exc).__name__}: {exc}") from exc


def _register_hgq() -> None:
    try:  # importing hgq registers its layers with Keras' serialisation
        import hgq  # noqa: F401
    except ImportError:
        pass
