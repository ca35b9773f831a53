"""Loss and accuracy curves that redraw while a model trains (the ``on_epoch_end`` hook)."""

from __future__ import annotations

import io
import time

import ipywidgets as widgets

from .figures import plot_history

#: Least time between two redraws, so fast epochs do not spend their time drawing.
REDRAW_EVERY_S = 0.5

_KEYS = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}


class LiveCurves:
    """``hook(epoch, logs)`` records the metrics and redraws the Image at most every 0.5 s."""

    def __init__(self):
        self.image = widgets.Image(format="png").add_class("fastml-lab-live-curves")
        self.image.layout.max_width = "100%"
        self.history = {short: [] for short in _KEYS.values()}
        self._last = 0.0

    def reset(self) -> None:
        self.history = {short: [] for short in _KEYS.values()}
        self.image.value = b""
        self._last = 0.0

    def hook(self, epoch: int, logs: dict) -> None:
        for key, short in _KEYS.items():
            if key in logs:
                self.history[short].append(float(logs[key]))
        if time.perf_counter() - self._last >= REDRAW_EVERY_S:
            self.redraw()

    def redraw(self) -> None:
        if not self.history["loss"]:
            return
        fig = plot_history({k: v for k, v in self.history.items() if v})
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        self.image.value = buf.getvalue()
        self._last = time.perf_counter()

    @staticmethod
    def postfix(logs: dict) -> str:
        """``loss 0.912 acc 0.641 val_acc 0.652`` for the progress bar."""
        return " ".join(f"{short} {logs[key]:.3f}" for key, short in _KEYS.items() if key in logs)
