"""How the widths learn in the HGQ mode, so that beta decides where they end within a few epochs.

Adam moves a parameter by about its learning rate per step, whatever the size of its gradient. A
width whose EBOPs penalty outweighs its share of the loss therefore falls at that speed for any
beta: at the weights' learning rate the widths barely move in a few epochs, and at a fixed multiple
of it every large beta ends at the same EBOPs, the distance the widths could cover. Here the widths
(HGQ2's ``b`` and ``f`` of the dense layers' quantizers) get the learning rate that lets them cover
:data:`WIDTH_TRAVEL_BITS` bits during the first ``1 - FIXED_FRACTION`` of the steps: enough to reach
the width where penalty and loss balance, which depends on beta (larger beta, fewer bits). For the
last :data:`FIXED_FRACTION` of the steps the widths stay where they are and the weights adapt to
them. The weights' learning rate falls from ``learning_rate`` to zero along a cosine.
"""

from __future__ import annotations

import math

__all__ = ["WIDTH_TRAVEL_BITS", "FIXED_FRACTION", "hgq_training", "width_paths"]

#: How many bits a width can move in all (Adam steps of about its learning rate).
WIDTH_TRAVEL_BITS = 12.0
#: Fraction of the steps, at the end, during which the widths stay fixed.
FIXED_FRACTION = 0.3
#: Names of HGQ2's width variables: ``b`` (bits of a KBI quantizer), ``f`` (fractional bits of a KIF one).
WIDTH_VARIABLES = ("b", "f")


def width_paths(model) -> set:
    """Paths of the width variables of the model's QDense quantizers (weights, biases, inputs)."""
    return {v.path for layer in model.layers if type(layer).__name__ == "QDense"
            for v in layer.trainable_weights if v.path.rsplit("/", 1)[-1] in WIDTH_VARIABLES}


def hgq_training(keras, model, learning_rate: float):
    """``(optimizer, callback)`` for training ``model`` in the HGQ mode; give both to ``train_model``."""
    widths = width_paths(model)
    width_rate = keras.Variable(0.0, trainable=False, dtype="float32", name="width_learning_rate")

    class AdamWithWidthRate(keras.optimizers.Adam):
        """Adam whose width variables take their learning rate from ``width_rate``."""

        def build(self, variables):
            super().build(variables)
            self._widths = {self._get_variable_index(v) for v in variables if v.path in widths}

        def update_step(self, gradient, variable, learning_rate):
            if self._get_variable_index(variable) in self._widths:
                learning_rate = keras.ops.cast(width_rate, variable.dtype)
            super().update_step(gradient, variable, learning_rate)

    optimizer = AdamWithWidthRate(learning_rate=learning_rate)

    class WidthSchedule(keras.callbacks.Callback):
        """Per step: the cosine learning rate of the weights, the widths' rate or zero once fixed."""

        def on_train_begin(self, logs=None):
            self.total = self.params["epochs"] * self.params["steps"]
            self.moving = max(1, self.total - round(FIXED_FRACTION * self.total))
            self.step = 0

        def on_train_batch_begin(self, batch, logs=None):
            optimizer.learning_rate = learning_rate * 0.5 * (1 + math.cos(math.pi * self.step / self.total))
            width_rate.assign(WIDTH_TRAVEL_BITS / self.moving if self.step < self.moving else 0.0)
            self.step += 1

    return optimizer, WidthSchedule()
