"""Triplet loss with online mining inside a labelled batch."""

import keras
from keras import ops

from .. import distances, miners
from ..errors import check_choice
from .base import global_batch, per_item, require_distance


@keras.saving.register_keras_serializable(package="siamkit")
class TripletLoss(keras.losses.Loss):
    """`max(0, d(a, p) - d(a, n) + margin)` over triplets mined in the batch.

    Called as `loss(labels, embeddings)`: `labels` are class ids `(n,)` and
    `embeddings` the encoder's output `(n, dim)`. Batches should hold several
    samples per class (see `siamkit.data.ClassBalancedBatches`).

    Args:
        margin: the required gap between positive and negative distances.
        distance: name or `Distance` used between embeddings.
        mining: `"hard"` (the default, as `siamkit train`'s), `"all"` (average of the non-zero terms of every valid
            triplet), `"hard"` (batch-hard: hardest positive and negative per
            anchor), `"semi-hard"` (FaceNet: the closest negative farther
            than the positive but inside the margin, else the closest
            negative), or `"easy"` (easy positive: closest positive and
            closest negative per anchor). See `siamkit.miners`.
        soft_margin: replace the hinge with `softplus(d_ap - d_an)`
            (Hermans et al. 2017); `margin` is then unused.
        reduction: Keras' reduction of the per-anchor terms. The default
            averages over the anchors that have a valid triplet (for
            `mining="all"`: over the triplets that violate the margin);
            `"sum"` adds the terms, `"none"` returns each anchor's sum of
            terms, shape `(n,)`.
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> z = np.array([[0.0], [0.1], [1.0], [1.1]], "float32")
    >>> float(TripletLoss(margin=0.2, mining="hard")(np.array([0, 0, 1, 1]), z))
    0.0
    """

    def __init__(
        self,
        margin=0.2,
        distance="euclidean",
        mining="hard",
        soft_margin=False,
        reduction="sum_over_batch_size",
        name="triplet_loss",
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.margin = float(margin)
        self.mining = check_choice("mining", mining, miners.MINERS)
        self.soft_margin = bool(soft_margin)
        self.distance = require_distance(distance, "TripletLoss")

    def _terms(self, d_ap, d_an):
        if self.soft_margin:
            return ops.softplus(d_ap - d_an)
        return ops.relu(d_ap - d_an + self.margin)

    def call(self, y_true, y_pred):
        y_true, y_pred = global_batch(y_true, y_pred)  # mined over every replica's items
        D = self.distance.pairwise(y_pred, y_pred)
        if self.mining == "all":
            d_ap, d_an, valid = miners.all_triplets(D, y_true)
        elif self.mining == "hard":
            d_ap, d_an, valid = miners.batch_hard(D, y_true)
        elif self.mining == "easy":
            d_ap, d_an, valid = miners.easy_positive(D, y_true)
        else:
            d_ap, d_an, valid = miners.semi_hard(D, y_true, self.margin)
        valid = ops.cast(valid, D.dtype)
        terms = self._terms(d_ap, d_an) * valid
        if self.mining == "all":
            # Average over the triplets that still violate the margin, so easy
            # triplets do not dilute the gradient as training progresses.
            valid = ops.cast(ops.greater(terms, 1e-16), D.dtype)
        # Triplet terms are (n,), (n, n) or (n, n, n), anchor first: one sum per anchor.
        per_anchor = ops.reshape(terms, (ops.shape(terms)[0], -1))
        return per_item(self, ops.sum(per_anchor, axis=1), ops.sum(valid))

    def get_config(self):
        return {
            **super().get_config(),
            "margin": self.margin,
            "mining": self.mining,
            "soft_margin": self.soft_margin,
            "distance": distances.serialize(self.distance),
        }
