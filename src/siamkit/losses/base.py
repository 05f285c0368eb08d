"""Helpers shared by the losses."""

import keras
import numpy as np

from .. import distances
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


def require_distance(distance, loss_name):
    """A `Distance` that is a distance, not a similarity."""
    distance = distances.get(distance)
    if distance.higher_is_similar:
        raise ConfigError(
            f"{loss_name} needs a distance (lower = more similar), not the similarity {distance.name!r}; "
            "use euclidean, sqeuclidean, manhattan or cosine"
        )
    return distance
