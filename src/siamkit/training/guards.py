"""What training does when a batch's loss is NaN or infinite: stop with a message, or skip the batch.

A loss that turns non-finite once poisons every weight it touches, and the
next epoch-end checkpoint would keep the poison. Weights are also checked at
each epoch's end, before any callback after this one saves them. `on_nan="stop"` aborts
training inside the batch (before any epoch end can save) with a
`TrainingDiverged` that names the epoch, the step and the learning rate;
the run directory keeps the last finished epoch's checkpoint and history,
so nothing earlier is lost. `on_nan="skip-batch"` wraps the optimizer in
Keras' `LossScaleOptimizer` at a scale of 1, which applies no update for a
batch whose gradients are not finite (the mechanism mixed precision uses),
and counts the batches skipped; training stops as with `"stop"` when more
than `max_skipped` batches in a row are skipped, since the fault is then not
in a few batches but in the model.

Example:

>>> guard = NonFiniteGuard("skip-batch")                                           # doctest: +SKIP
>>> model.compile(optimizer=guard_optimizer(keras.optimizers.Adam(), "skip-batch"), loss=...)  # doctest: +SKIP
>>> model.fit(x, y, callbacks=[guard])                             # doctest: +SKIP
>>> guard.skipped                                                  # doctest: +SKIP
0
"""

import math

import keras
import numpy as np

from ..errors import SiamkitError, check_choice

ON_NAN = ("stop", "skip-batch")


class TrainingDiverged(SiamkitError):
    """The loss became NaN or infinite; the message says where and what to change."""


def guard_optimizer(optimizer, on_nan="stop"):
    """The optimizer to compile with under `on_nan`: `optimizer` itself, or for `"skip-batch"` one that skips bad steps.

    Under `"skip-batch"` it is `keras.optimizers.LossScaleOptimizer` at a
    scale of 1 (nothing is rescaled in float32) that never grows: it only
    skips steps whose gradients are not finite, halving its scale each time,
    which is how `NonFiniteGuard` counts them.
    """
    if check_choice("on_nan", on_nan, ON_NAN) == "stop" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1.0, dynamic_growth_steps=2**31 - 1)


def _learning_rate(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(np.asarray(keras.ops.convert_to_numpy(inner.learning_rate)))


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop on a NaN or infinite batch loss, or skip such batches.

    Place it first in the callback list, so that it acts before any callback
    that writes at the end of a batch or an epoch. Under `"skip-batch"` the
    model must be compiled with `guard_optimizer(..., "skip-batch")`.

    Args:
        on_nan: `"stop"` or `"skip-batch"`.
        max_skipped: with `"skip-batch"`, the most batches in a row that
            may be skipped before training stops.

    Attributes:
        skipped: batches skipped so far (`"skip-batch"`).
    """

    def __init__(self, on_nan="stop", max_skipped=20):
        super().__init__()
        self.on_nan = check_choice("on_nan", on_nan, ON_NAN)
        self.max_skipped = int(max_skipped)
        self.skipped, self._in_a_row, self._epoch, self._scale = 0, 0, 0, 1.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _current_scale(self):
        scale = getattr(self.model.optimizer, "dynamic_scale", None)  # created when the optimizer is built
        return 1.0 if scale is None else float(keras.ops.convert_to_numpy(scale))

    def on_train_batch_begin(self, batch, logs=None):
        if self.on_nan == "skip-batch":
            self._scale = self._current_scale()

    def on_train_batch_end(self, batch, logs=None):
        if self.on_nan == "skip-batch":
            if self._current_scale() >= self._scale:
                self._in_a_row = 0
                return
            self.skipped += 1
            self._in_a_row += 1
            if self._in_a_row <= self.max_skipped:
                return
            reason = f"{self._in_a_row} batches in a row had a NaN or infinite loss and were skipped"
        else:
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            reason = f"the training loss became {float(loss)}"
        self._diverged(f"{reason} at epoch {self._epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        # A loss can stay finite over broken weights (a clipped or masked term): checked before anything saves.
        if not all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in self.model.trainable_weights):
            self._diverged(f"the weights became NaN or infinite during epoch {epoch + 1}")

    def _diverged(self, what):
        raise TrainingDiverged(
            f"{what} (learning rate {_learning_rate(self.model.optimizer):g}); training stopped and the run "
            "directory keeps the last finished epoch; lower --learning-rate, check the data for broken inputs, "
            "or pass --on-nan skip-batch"
        )
