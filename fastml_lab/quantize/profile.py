"""Numerical profiling: where a model's numbers lie against the fixed-point types meant to hold them.

For every layer, the weights, the biases and the layer's outputs on a data sample (the inputs too)
are summarised as a box of ``log2 |x|`` and set against the range of the type the precision plan
gives them: from the smallest step ``2**-(W-I)`` to the largest magnitude ``2**(I-1)`` (``2**I``
unsigned). Values beyond that range *overflow*; non-zero values that round to zero *vanish*. Both
are counted with :class:`~fastml_lab.fixed.FixedType` itself, so the counts are what the
conversion in the firmware does to these float values. :meth:`Profile.suggested_plan` is
:meth:`PrecisionPlan.from_data <fastml_lab.hls.plan.PrecisionPlan.from_data>` on the same sample:
integer bits that cover every observed range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boards import DEFAULT_PRECISION
from ..exceptions import ConfigError, DataError, UnsupportedError
from ..fixed import FixedType

__all__ = ["DEFAULT_PRECISION", "DEFAULT_SAMPLE", "Distribution", "Profile", "profile"]

#: The plan a profile is drawn against when none is given: one type for everything.
#: Events profiled by default (the first ones of the data).
DEFAULT_SAMPLE = 10_000


@dataclass(frozen=True)
class Distribution:
    """One quantity of one layer (``slot``: ``input``, ``weight``, ``bias`` or ``result``) on the sample.

    ``log2`` holds the box of ``log2 |x|`` over the non-zero values (``min``, ``q1``, ``median``,
    ``q3``, ``max``), None when every value is zero.
    """

    layer: str
    slot: str
    type: FixedType
    values: int
    zeros: int
    overflows: int
    vanished: int
    max_abs: float
    log2: dict | None

    @property
    def band(self) -> tuple[int, int]:
        """``(log2 of the smallest step, log2 of the largest magnitude)`` of the type."""
        t = self.type
        return -t.fractional, t.integer - 1 if t.signed else t.integer

    @property
    def label(self) -> str:
        return self.layer if self.slot in ("input", "result") else f"{self.layer} {self.slot}"

    def to_dict(self) -> dict:
        low, high = self.band
        return {"layer": self.layer, "slot": self.slot, "type": self.type.to_hls(),
                "values": self.values, "zeros": self.zeros, "overflows": self.overflows,
                "vanished": self.vanished, "max_abs": self.max_abs, "log2": self.log2,
                "band_log2": [low, high]}


def measure(layer: str, slot: str, values, ftype: FixedType) -> Distribution:
    """Summarise ``values`` against ``ftype``: box of log2 |x|, overflow and vanish counts."""
    x = np.asarray(values, dtype=np.float64).ravel()
    nonzero = x != 0
    over = ftype.overflows(x)
    vanished = nonzero & ~over & (ftype.quantize(x) == 0)
    magnitudes = np.log2(np.abs(x[nonzero]))
    box = None
    if magnitudes.size:
        q1, median, q3 = np.percentile(magnitudes, [25, 50, 75])
        box = {"min": float(magnitudes.min()), "q1": float(q1), "median": float(median),
               "q3": float(q3), "max": float(magnitudes.max())}
    return Distribution(layer=layer, slot=slot, type=ftype, values=int(x.size),
                        zeros=int(x.size - nonzero.sum()), overflows=int(over.sum()),
                        vanished=int(vanished.sum()), max_abs=float(np.abs(x).max()) if x.size else 0.0,
                        log2=box)


@dataclass
class Profile:
    """The numbers of a model on a sample, against a precision plan; see :func:`profile`."""

    plan: object  # PrecisionPlan
    distributions: list
    events: int
    suggested: object  # PrecisionPlan, None for a quantization-aware model
    model_name: str = ""

    # ------------------------------------------------------------------ counts
    def _per_layer(self, field_name: str) -> dict:
        table: dict = {}
        for d in self.distributions:
            table.setdefault(d.layer, {})[d.slot] = getattr(d, field_name)
        return table

    @property
    def overflows(self) -> dict:
        """``{layer: {slot: values beyond the type's range}}``."""
        return self._per_layer("overflows")

    @property
    def vanished(self) -> dict:
        """``{layer: {slot: non-zero values that round to zero}}``."""
        return self._per_layer("vanished")

    @property
    def total_overflows(self) -> int:
        return sum(d.overflows for d in self.distributions)

    @property
    def total_vanished(self) -> int:
        return sum(d.vanished for d in self.distributions)

    def suggested_plan(self):
        """A plan whose integer bits cover every range seen on the sample (a fresh copy)."""
        if self.suggested is None:
            raise UnsupportedError(f"Model {self.model_name!r} is quantization-aware: its quantizers set "
                                   "its types, and no plan applies to it.")
        return type(self.suggested).from_dict(self.suggested.to_dict())

    # ------------------------------------------------------------------ reports
    def to_dict(self) -> dict:
        return {"model": self.model_name, "events": self.events, "plan": self.plan.to_dict(),
                "total_overflows": self.total_overflows, "total_vanished": self.total_vanished,
                "distributions": [d.to_dict() for d in self.distributions],
                "suggested_plan": self.suggested.to_dict() if self.suggested is not None else None}

    def summary(self) -> str:
        """A text table: one row per quantity, with its type, observed log2 range and counts."""
        head = (f"{'quantity':<16} {'type':<28} {'values':>8} {'zeros':>7} {'overflow':>8} "
                f"{'vanish':>7}  log2|x| seen   type holds")
        rows = [f"Profile of {self.model_name or 'the model'} on {self.events} events", head]
        for d in self.distributions:
            seen = f"{d.log2['min']:6.1f}..{d.log2['max']:5.1f}" if d.log2 else "  all zero  "
            low, high = d.band
            rows.append(f"{d.label:<16} {d.type.to_hls():<28} {d.values:>8} {d.zeros:>7} "
                        f"{d.overflows:>8} {d.vanished:>7}  {seen}  {low:4d}..{high:d}")
        rows.append(f"total: {self.total_overflows} overflow(s), {self.total_vanished} vanished value(s)")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return (f"Profile({self.model_name!r}, {self.events} events, {len(self.distributions)} "
                f"quantities, {self.total_overflows} overflows, {self.total_vanished} vanished)")

    def plot(self, title: str | None = None):
        """Box plots of log2 |x| against each type's range (grey), weights and data side by side.

        Whiskers reach the smallest and largest non-zero magnitude; boxes with overflows are red,
        and each row notes its overflow and vanish counts. Returns the matplotlib Figure.
        """
        from ..plots import _figure_and_axes

        panels = (("Weights and biases", [d for d in self.distributions if d.slot in ("weight", "bias")]),
                  ("Inputs and layer outputs", [d for d in self.distributions if d.slot in ("input", "result")]))
        rows = max(len(p[1]) for p in panels)
        fig, axes = _figure_and_axes(None, ncols=2, figsize=(13.0, 1.2 + 0.42 * rows))
        for ax, (name, dists) in zip(axes, panels):
            _draw_panel(ax, dists)
            ax.set_title(name)
        fig.suptitle(title or f"Numerical profile on {self.events} events (grey: range of the type)")
        fig.tight_layout()
        return fig

    def plot_panels(self) -> dict:
        """One Figure per panel: ``{"weights": fig, "activations": fig}``."""
        from ..plots import _figure_and_axes

        figures = {}
        for key, name, slots in (("weights", "Weights and biases", ("weight", "bias")),
                                 ("activations", "Inputs and layer outputs", ("input", "result"))):
            dists = [d for d in self.distributions if d.slot in slots]
            fig, (ax,) = _figure_and_axes(None, figsize=(7.5, 1.2 + 0.42 * max(1, len(dists))))
            _draw_panel(ax, dists)
            ax.set_title(f"{name} on {self.events} events (grey: range of the type)")
            fig.tight_layout()
            figures[key] = fig
        return figures


def _draw_panel(ax, dists: list) -> None:
    if not dists:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    positions = np.arange(len(dists))[::-1]  # first layer at the top
    for y, d in zip(positions, dists):
        low, high = d.band
        ax.barh(y, high - low, left=low, height=0.8, color="0.85", zorder=0)
    shown = [(y, d) for y, d in zip(positions, dists) if d.log2]
    stats = [{"med": d.log2["median"], "q1": d.log2["q1"], "q3": d.log2["q3"],
              "whislo": d.log2["min"], "whishi": d.log2["max"], "fliers": []} for _, d in shown]
    if stats:
        parts = ax.bxp(stats, positions=[y for y, _ in shown], orientation="horizontal",
                       widths=0.55, patch_artist=True, manage_ticks=False)
        for box, (_, d) in zip(parts["boxes"], shown):
            box.set_facecolor("tab:red" if d.overflows else "tab:blue")
            box.set_alpha(0.8)
    ax.set_yticks(positions, [f"{d.label}\n{d.type.to_hls()}" for d in dists], fontsize="small")
    counts = ax.twinx()  # the counts, as labels on the right
    counts.set_yticks(positions, [_counts_label(d) for d in dists], fontsize="x-small")
    for tick, d in zip(counts.get_yticklabels(), dists):
        tick.set_color("tab:red" if d.overflows else "0.3")
    counts.set_ylim(-0.7, len(dists) - 0.3)
    ax.set_xlabel("log2 |x|")
    ax.grid(True, axis="x", alpha=0.4)
    ax.set_ylim(-0.7, len(dists) - 0.3)


def _counts_label(d: Distribution) -> str:
    if d.log2 is None:
        return "all zero"
    return "\n".join([f"{d.overflows} overflow"] * bool(d.overflows) + [f"{d.vanished} vanish"] * bool(d.vanished))


# ------------------------------------------------------------------------------------------ entry
def profile(model, X, plan=None, sample: int | None = DEFAULT_SAMPLE) -> Profile:
    """Profile ``model`` (a Keras model or ``.keras`` path) on the first ``sample`` events of ``X``.

    ``X`` is an array of events shaped as the model's input ((events, features), or images
    (events, height, width, channels) for a CNN) or a dataset (its training part: the data a plan
    is fitted to, not the data it is judged on). Every quantity is counted value by value, whatever
    its shape (a convolution's kernel, a layer's feature maps). ``plan`` is a PrecisionPlan, a dict or a JSON path;
    without one a float model is profiled against ``ap_fixed<16,6>`` everywhere. Weights and
    biases of Dense layers are profiled, and the outputs of every layer under hls4ml's names: a
    Dense layer with a built-in activation gives its sums as ``name`` and the activated values as
    ``name_activation``, each with its own type in the plan.

    An HGQ2 model takes no plan: it is profiled against the types its export reads from the
    quantizers (per layer; a layer with per-weight widths shows the type that holds them all).
    Its weights are the quantized ones the firmware multiplies by; its layer outputs are the
    float Keras values that the firmware's types then hold. It has no suggested plan.
    """
    from ..hls.keras_model import as_model, has_quantizers, hls_layer_names, hls_layer_outputs
    from ..hls.plan import PrecisionPlan, as_plan

    model = as_model(model)
    X = _sample(model, X, sample)
    quantized = has_quantizers(model)
    if quantized:
        plan = _exported_plan(model, plan)
    else:
        plan = as_plan(plan, None if plan is not None else DEFAULT_PRECISION)
        plan.check_layers(hls_layer_names(model))
    weights = _weights(model)
    distributions = [measure("input", "input", X, plan.input_type())]
    for name, out in hls_layer_outputs(model, X).items():
        if name in weights:
            kernel, bias = weights[name]
            distributions.append(measure(name, "weight", kernel, plan.type_for(name, "weight")))
            if bias is not None:
                distributions.append(measure(name, "bias", bias, plan.type_for(name, "bias")))
        distributions.append(measure(name, "result", out, plan.type_for(name, "result")))
    suggested = None if quantized else PrecisionPlan.from_data(model, X, width=plan.default.width, sample=len(X))
    return Profile(plan=plan, distributions=distributions, events=len(X), suggested=suggested,
                   model_name=getattr(model, "name", ""))


def _exported_plan(model, plan):
    """The types the export of a quantization-aware model reads from its quantizers."""
    from ..hls.describe import describe, resolved_plan

    if plan is not None:
        raise ConfigError(f"Model {model.name!r} is quantization-aware (HGQ2): its quantizers set every "
                          "type, so it is profiled without a plan.")
    return resolved_plan(model, describe(model))


def _weights(model) -> dict:
    """``{layer: (kernel, bias or None)}`` as the firmware holds them (HGQ2: quantized)."""
    from .._deps import require
    from .operands import keras_kernels

    ops = require("keras", "read Keras models").ops
    found = {}
    for name, (layer, kernel) in keras_kernels(model).items():
        bias = layer.qbias if type(layer).__name__.startswith("Q") else layer.bias
        found[name] = (kernel, None if bias is None else np.asarray(ops.convert_to_numpy(bias), np.float64))
    return found


def _sample(model, X, sample) -> np.ndarray:
    from ..data.prepare import dataset_part

    if hasattr(X, "X_train"):
        X = dataset_part(X, "train")[0]
    X = np.asarray(X)
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer))
                               or sample < 1):
        raise DataError(f"sample must be a positive number of events or None (all); got {sample!r}.")
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if X.shape[1:] != shape or len(X) == 0:
        wanted = ", ".join(["n", *map(str, shape)])
        hint = ""
        if X.ndim > 2 and len(shape) == 1 and int(np.prod(X.shape[1:])) == shape[0]:
            hint = " Flatten the images first (X.reshape(len(X), -1), or the dataset's flattened())."
        elif X.ndim == 2 and len(shape) > 1 and X.shape[1] == int(np.prod(shape)):
            hint = f" Reshape the rows into images first (X.reshape(-1, {', '.join(map(str, shape))}))."
        raise DataError(f"Profiling needs events of shape ({wanted}) for this model; got {X.shape}.{hint}")
    X = X[:sample].astype(np.float32)
    if not np.isfinite(X).all():
        raise DataError("The profiling sample contains NaN or infinite values; profile finite data.")
    return X

