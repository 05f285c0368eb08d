"""Episodic prototypical softmax loss on a labelled batch (Snell et al. 2017)."""

import keras
from keras import ops

from .. import distances
from ..errors import ConfigError
from .base import global_batch, per_item, require_distance


@keras.saving.register_keras_serializable(package="siamkit")
class PrototypicalLoss(keras.losses.Loss):
    """Softmax over the negative distances to the class prototypes of a batch.

    Every sample of a P x K batch is a query in turn: the prototype of its own
    class is the mean of the *other* K - 1 samples of that class (leave one
    out), and every other class's prototype is the mean of its samples. The
    loss is the cross-entropy of `softmax(-d(z, prototype) / temperature)`
    over the classes of the batch, averaged over the samples that have a
    class-mate. This is Prototypical Networks' episode with K - 1 shots and
    one query, averaged over the K choices of query, so no sample is wasted
    and any batch order works (see `siamkit.data.ClassBalancedBatches`).

    Called as `loss(labels, embeddings)`: `labels` are class ids `(n,)` and
    `embeddings` the encoder's output `(n, dim)`.

    Args:
        margin: added to each query's distance to its own prototype inside
            the softmax, so that it must be `margin` closer to its own class
            than to the others to cost as little as before (an additive
            margin, as CosFace's on cosines: with unit-length embeddings
            and `"sqeuclidean"`, a cosine margin m is a margin of 2m).
            Default 0, Snell et al.'s loss.
        distance: name or `Distance` between embeddings and prototypes;
            Snell et al. use `"sqeuclidean"`.
        temperature: logits are `-distance / temperature`; lower it for
            unit-length embeddings, whose distances are small.
        reduction: Keras' reduction of the per-sample terms. The default
            averages over the samples that have a class-mate in the batch;
            `"sum"` adds the terms, `"none"` returns them, shape `(n,)`
            (0 for a sample alone in its class).
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> z = np.array([[0.0], [0.1], [5.0], [5.1]], "float32")
    >>> round(float(PrototypicalLoss(distance="sqeuclidean")(np.array([0, 0, 1, 1]), z)), 4)
    0.0
    """

    def __init__(
        self,
        margin=0.0,
        distance="sqeuclidean",
        temperature=1.0,
        reduction="sum_over_batch_size",
        name="prototypical_loss",
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.distance = require_distance(distance, "PrototypicalLoss")
        if not float(temperature) > 0:
            raise ConfigError(f"PrototypicalLoss temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)
        if not float(margin) >= 0:
            raise ConfigError(f"PrototypicalLoss margin must be zero or positive, got {margin!r}")
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        y_true, y_pred = global_batch(y_true, y_pred)  # prototypes of every replica's items
        z = ops.cast(y_pred, "float32")
        y = ops.reshape(y_true, (-1,))
        same = ops.cast(ops.equal(y[:, None], y[None, :]), z.dtype)  # (n, n)
        count = ops.sum(same, axis=1)  # size of each sample's class in the batch
        sums = ops.matmul(same, z)
        # Column j stands for the class of sample j: its full-class prototype,
        # or, for the query's own class, the prototype without the query.
        d_other = self.distance.pairwise(z, sums / count[:, None])
        own = (sums - z) / ops.maximum(count - 1.0, 1.0)[:, None]
        d_own = self.distance.paired(z, own) + self.margin
        logits = -ops.where(same > 0, d_own[:, None], d_other) / self.temperature
        # A class with c members fills c identical columns; -log(c) counts it once.
        log_norm = ops.logsumexp(logits - ops.log(count)[None, :], axis=1)
        terms = log_norm + d_own / self.temperature
        valid = ops.cast(count > 1.0, z.dtype)
        return per_item(self, terms * valid, ops.sum(valid))

    def get_config(self):
        return {
            **super().get_config(),
            "distance": distances.serialize(self.distance),
            "temperature": self.temperature,
            "margin": self.margin,
        }
