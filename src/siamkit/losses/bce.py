"""Binary cross-entropy on a pair head's same-class probability (Koch et al. 2015)."""

import keras
from keras import ops

from .base import check_binary_labels, global_batch


@keras.saving.register_keras_serializable(package="siamkit")
class BinaryCrossEntropy(keras.losses.Loss):
    """Cross-entropy between pair labels and the head's probability `p(same)`.

    Labels: **1 = same class, 0 = different**; anything else is an error.
    Use with `L1Head` or `ConcatHead`.

    Args:
        label_smoothing: squeeze the targets towards 0.5 by this amount.
        reduction: Keras' reduction of the per-pair terms (default: their
            mean; `"sum"`, or `"none"` for the `(n,)` terms).
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> round(float(BinaryCrossEntropy()(np.array([1.0]), np.array([0.5]))), 4)
    0.6931
    """

    def __init__(
        self, label_smoothing=0.0, reduction="sum_over_batch_size", name="binary_cross_entropy", **kwargs
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        check_binary_labels(y_true)
        y_true, y_pred = global_batch(y_true, y_pred)  # averaged over every replica's pairs
        p = ops.reshape(y_pred, (-1,))
        y = ops.cast(ops.reshape(y_true, (-1,)), p.dtype)
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return ops.binary_crossentropy(y, p, from_logits=False)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
