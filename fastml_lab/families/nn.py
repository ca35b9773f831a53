"""The neural-network family: Keras 3 (float or HGQ2 quantization-aware) models through hls4ml.

Keras, hls4ml and HGQ2 are imported inside the methods: this module loads with numpy alone.
"""

from __future__ import annotations

from pathlib import Path

from . import NETWORK, STREAM, Family, register

#: The network kinds ``train`` builds: an MLP on jet features, a CNN on jet images.
MODEL_KINDS = ("mlp", "cnn")


class NeuralNetwork(Family):
    name = NETWORK
    title = "neural network"
    model_suffixes = (".keras",)
    board_interface = STREAM
    source_keys = ("name", "backend", "reuse_factor", "strategy", "io_type")
    #: Where hls4ml's VivadoAccelerator flow leaves the bitstream and the hardware handoff.
    bitstream_globs = (("myproject_vivado_accelerator/project_1.runs/impl_1/*.bit",),
                       ("myproject_vivado_accelerator/project_1.gen/sources_1/bd/*/hw_handoff/*.hwh",
                        "myproject_vivado_accelerator/project_1.srcs/sources_1/bd/*/hw_handoff/*.hwh"))
    export_options = ("plan", "reuse", "strategy", "io", "hls_config")
    rtl_backends = {"rtl": "Verilog from da4ml, for HGQ2 models"}
    train_options = {
        "model": (str, "network kind: mlp (jet features) or cnn (jet images, --data synthetic-images) "
                       "(default: mlp)"),
        "hidden": (str, "hidden layer widths, e.g. 64-32-32 or 32-16:bn (default: 64-32-32); for a cnn the "
                        "filters of each conv block, e.g. 8-8 or 4-8:fc=16 (default: 8-8)"),
        "epochs": (int, "training epochs (default: 30)"),
        "batch_size": (int, "events per batch (default: 1024)"),
        "learning_rate": (float, "Adam's learning rate (network; default: 0.001) or each tree's share (BDT; default: 0.3)"),
        "patience": (int, "epochs without a better validation loss before stopping (default: 5)"),
    }
    sweep_marker = ("o", "#1f77b4")

    def owns_model(self, model) -> bool:
        return hasattr(model, "layers") and hasattr(model, "count_params")

    def train(self, dataset, hidden: str | None = None, seed: int = 0, model: str = "mlp", **settings):
        """A float MLP with ``hidden`` layers (:func:`fastml_lab.train.parse_spec`), or for
        ``model="cnn"`` a CNN with ``hidden`` conv filters (:func:`fastml_lab.train.parse_cnn_spec`) on
        image data, trained on ``dataset``; ``settings`` are :func:`fastml_lab.train.train_model`'s."""
        from ..train import build_cnn, build_model, parse_cnn_spec, parse_spec, train_model

        self._check_model_kind(model, dataset)
        n_classes = len(dataset.class_names)
        if model == "cnn":
            spec = parse_cnn_spec(hidden or "8-8", input_shape=tuple(dataset.X_train.shape[1:]), n_classes=n_classes)
            network = build_cnn(spec, seed=seed)
        else:
            network = build_model(parse_spec(hidden or "64-32-32", n_inputs=dataset.X_train.shape[1],
                                             n_classes=n_classes), seed=seed)
        train_model(network, dataset, seed=seed, **settings)
        return network

    @staticmethod
    def _check_model_kind(model: str, dataset=None) -> None:
        from ..exceptions import ConfigError

        if model not in MODEL_KINDS:
            raise ConfigError(f"--model must be one of {', '.join(MODEL_KINDS)}; got {model!r}.")
        if dataset is None:
            return
        images = dataset.X_train.ndim == 4
        if model == "cnn" and not images:
            raise ConfigError(f"--model cnn takes jet images (--data synthetic-images or images:PATH); the data "
                              f"{dataset.source!r} holds {dataset.X_train.shape[1]} features per jet.")
        if model == "mlp" and images:
            raise ConfigError(f"--model mlp takes jet features; the data {dataset.source!r} holds images of shape "
                              f"{tuple(dataset.X_train.shape[1:])}: use --model cnn.")

    def check_train_settings(self, settings: dict) -> None:
        from ..train import check_training_params, parse_cnn_spec, parse_spec

        model = settings.get("model", "mlp")
        self._check_model_kind(model)
        if model == "cnn":
            parse_cnn_spec(settings.get("hidden", "8-8"))
        else:
            parse_spec(settings.get("hidden", "64-32-32"))
        check_training_params(**{k: v for k, v in settings.items() if k not in ("hidden", "model")})

    def save(self, model, path) -> Path:
        from ..train import save_model

        return save_model(model, path)

    def load(self, path):
        from ..train import load_model

        return load_model(path)

    def preflight(self, path, precision=None) -> None:
        from ..fixed import FixedType
        from ..project import PROJECT_FILE
        from ..train import check_model_file

        if not (Path(path) / PROJECT_FILE).is_file():
            check_model_file(path)
        if precision is not None:
            FixedType.parse(precision)

    def cpu_predictor(self, model) -> tuple:
        from ..hls.keras_model import as_model

        keras_model = as_model(model)
        return "Keras predict_on_batch", "TensorFlow's threads", keras_model.predict_on_batch

    def evaluate(self, model, dataset):
        from ..evaluate import evaluate

        return evaluate(model, dataset)

    def export(self, model, out, *, plan=None, precision=None, reuse=None, strategy=None, io=None, **options):
        """:func:`fastml_lab.hls.export` of a model or ``.keras`` file; a ``plan`` replaces ``precision``;
        ``io`` is the I/O style (``parallel`` or ``stream``)."""
        from ..hls.export import export

        extra = {k: v for k, v in (("reuse_factor", reuse), ("strategy", strategy), ("io_type", io)) if v is not None}
        return export(model, out, plan=plan, precision=None if plan else precision, **options, **extra)

    def export_rtl(self, model, out, *, backend: str, precision=None, **options):
        """:func:`fastml_lab.rtl.network.export_rtl`: da4ml's pipelined Verilog of an HGQ2 model."""
        from ..exceptions import ConfigError
        from ..rtl.network import export_rtl

        if precision is not None:
            raise ConfigError("--backend rtl takes an HGQ2 model, whose quantizers set every precision; leave out "
                              "--precision (quantize a float model with `fastml-lab quantize` first).")
        return export_rtl(model, out, **options)

    def csim_recipe(self, hls_dir: Path) -> dict:
        from ..hls.csim import nn_recipe

        return nn_recipe(hls_dir)

    def describe(self, model, precision=None):
        """``(firmware, label)``: the firmware ``model`` becomes at ``precision`` (an HGQ2 model
        brings its own types), described silently in a temporary folder."""
        from ..boards import DEFAULT_PRECISION
        from ..exceptions import ConfigError
        from ..hls.describe import describe
        from ..hls.keras_model import as_model, has_quantizers

        keras_model = as_model(model)
        quantized = has_quantizers(keras_model)
        if quantized and precision is not None:
            raise ConfigError("This model is quantization-aware (HGQ2): its quantizers set every precision; "
                              "leave out the precision.")
        firmware = describe(keras_model, precision=None if quantized else (precision or DEFAULT_PRECISION))
        label = f"Keras model {getattr(keras_model, 'name', 'model')!r}" + (
            "" if quantized else f" at {precision or DEFAULT_PRECISION}")
        return firmware, label

    def profile(self, model, dataset, plan=None, **options):
        from ..quantize import profile

        return profile(model, dataset, plan=plan, **options)

    def study(self, model, dataset, **options):
        from ..quantize.study import bit_width_study

        return bit_width_study(model, dataset, **options)


register(NeuralNetwork())
