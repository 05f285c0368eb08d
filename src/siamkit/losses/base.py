"""Helpers shared by the losses."""

import keras
import numpy as np
from keras import ops

from .. import distances
from ..backend import gather_replicas
from ..errors import ConfigError, DataError


def concrete(x):
    """`x` as a NumPy array when it has values (eager), else None (traced)."""
    try:
        return np.asarray(keras.ops.convert_to_numpy(x))
    except Exception:  # symbolic tensors inside tf.function / jax.jit have no values
        return None


def check_binary_labels(y_true):
    """Raise `DataError` unless every pair label is 0 (different) or 1 (same).

    Checked whenever the labels have values; the samplers only ever produce
    0 and 1, so traced training steps are covered at the data edge.
    """
    values = concrete(y_true)
    if values is not None and values.size and not np.isin(values, (0, 1)).all():
        bad = np.unique(values[~np.isin(values, (0, 1))])[:5]
        raise DataError(f"pair labels must be 1 (same class) or 0 (different class); got {bad.tolist()}")


def global_batch(y_true, y_pred):
    """`(y_true, y_pred)` of the whole global batch of a data-parallel step.

    Under a `tf.distribute` strategy each replica holds a slice of the
    batch; a loss that compares the items of a batch (mined triplets,
    prototypes, in-batch negatives) must see every slice, so both are
    gathered across the replicas (`siamkit.backend.gather_replicas`). On
    one device, and under JAX's `DataParallel` (whose step already sees the
    global batch), they are returned as they are. Sample weights are not
    gathered: siamkit's losses are fitted without them.

    Example:

    >>> import numpy as np
    >>> y, z = global_batch(np.array([0, 1]), np.zeros((2, 3)))
    >>> tuple(z.shape)
    (2, 3)
    """
    return gather_replicas(y_true, y_pred)


def per_item(loss, terms, count):
    """A batch loss's per-item `terms` `(n,)`, made ready for Keras' `reduction`.

    Batch losses average over a count of their own (the anchors with a valid
    triplet, the samples with a class-mate), not over the batch. For the
    mean reductions (`"sum_over_batch_size"`, the default, and `"mean"`)
    the terms are scaled by `n / count`, so that their mean is that average;
    `"sum"` adds the terms as they are and `"none"` returns them.

    Args:
        loss: the `keras.losses.Loss`, for its `reduction`.
        terms: `(n,)` per-item losses (0 for items that do not count).
        count: how many items the loss's average is over.
    """
    if loss.reduction in ("sum_over_batch_size", "mean"):
        n = ops.cast(ops.shape(terms)[0], terms.dtype)
        return terms * (n / ops.maximum(ops.cast(count, terms.dtype), 1.0))
    return terms


def require_distance(distance, loss_name):
    """A `Distance` that is a distance, not a similarity."""
    distance = distances.get(distance)
    if distance.higher_is_similar:
        raise ConfigError(
            f"{loss_name} needs a distance (lower = more similar), not the similarity {distance.name!r}; "
            "use euclidean, sqeuclidean, manhattan or cosine"
        )
    return distance
