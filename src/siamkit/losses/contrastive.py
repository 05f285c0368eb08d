"""Contrastive loss (Hadsell, Chopra & LeCun 2006)."""

import keras
from keras import ops

from .. import distances
from .base import check_binary_labels, global_batch, require_distance


@keras.saving.register_keras_serializable(package="siamkit")
class ContrastiveLoss(keras.losses.Loss):
    """`y * d^2 / 2 + (1 - y) * max(0, margin - d)^2 / 2`, averaged over pairs.

    Labels: **1 = same class, 0 = different**; anything else is an error.

    `y_pred` is either the distances a `DistanceHead` model outputs, shape
    `(n,)` or `(n, 1)`, or the two embeddings of each pair stacked as
    `(n, 2, dim)`, in which case `distance` is applied to them.

    Args:
        margin: negatives closer than this are pushed apart.
        distance: distance for stacked embeddings (name or `Distance`).
        reduction: Keras' reduction of the per-pair terms (default: their
            mean; `"sum"`, or `"none"` for the `(n,)` terms).
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> loss = ContrastiveLoss(margin=1.0)
    >>> float(loss(np.array([1.0, 0.0]), np.array([0.5, 0.5])))
    0.125
    """

    def __init__(
        self, margin=1.0, distance="euclidean", reduction="sum_over_batch_size", name="contrastive_loss", **kwargs
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.margin = float(margin)
        self.distance = require_distance(distance, "ContrastiveLoss")

    def call(self, y_true, y_pred):
        check_binary_labels(y_true)
        y_true, y_pred = global_batch(y_true, y_pred)  # averaged over every replica's pairs
        if len(y_pred.shape) == 3:
            d = self.distance.paired(y_pred[:, 0], y_pred[:, 1])
        else:
            d = ops.reshape(y_pred, (-1,))
        return self.pair_terms(y_true, d)

    def pair_terms(self, same, d):
        """The per-pair terms of labels `same` (1 = same class) and distances `d`, both `(n,)`."""
        y = ops.cast(ops.reshape(same, (-1,)), d.dtype)
        return 0.5 * (y * ops.square(d) + (1.0 - y) * ops.square(ops.relu(self.margin - d)))

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "distance": distances.serialize(self.distance)}
