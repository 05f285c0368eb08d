"""Distances between embeddings, in a paired and a pairwise form.

Every distance has two forms:

- `paired(a, b)`: row by row, `a[i]` against `b[i]`, shape `(n,)`;
- `pairwise(a, b)`: every row of `a` against every row of `b`, shape `(n, m)`.

Distances are "lower = more similar". `DotProductSimilarity` is the one
similarity: `higher_is_similar` is `True` on it, and code that ranks or
thresholds reads that flag instead of flipping signs by hand.

Example:

>>> import numpy as np
>>> from siamkit import distances
>>> d = distances.get("euclidean")
>>> a = np.zeros((2, 3), "float32"); b = np.ones((4, 3), "float32")
>>> tuple(d.pairwise(a, b).shape)
(2, 4)
"""

import keras
from keras import ops

from .errors import ConfigError
from .neighbors import ALIASES, DISTANCES

# Squared norms below this are treated as zero so that sqrt has a finite
# gradient at identical points (d sqrt(x)/dx is infinite at x = 0).
_EPSILON = 1e-12


def _safe_sqrt(squared):
    """sqrt with value 0 and gradient 0 (not NaN) where `squared` is ~0; NaN stays NaN (a diverged model shows)."""
    positive = ops.logical_or(squared > _EPSILON, ops.isnan(squared))
    root = ops.sqrt(ops.where(positive, squared, _EPSILON))
    return ops.where(positive, root, ops.zeros_like(root))


def _l2_normalize(x):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), _EPSILON))


class Distance:
    """Base class: subclasses define `paired` and `pairwise`."""

    name = None
    higher_is_similar = False

    def paired(self, a, b):
        """Row-by-row distances of `a` and `b`, both `(n, d)`: shape `(n,)`."""
        return self._paired(ops.convert_to_tensor(a), ops.convert_to_tensor(b))

    def pairwise(self, a, b):
        """Distances of every row of `a` `(n, d)` to every row of `b` `(m, d)`: `(n, m)`."""
        return self._pairwise(ops.convert_to_tensor(a), ops.convert_to_tensor(b))

    def _paired(self, a, b):
        raise NotImplementedError

    def _pairwise(self, a, b):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        return f"{type(self).__name__}()"


@keras.saving.register_keras_serializable(package="siamkit")
class SquaredEuclideanDistance(Distance):
    """Squared euclidean distance, `sum((a - b) ** 2)`."""

    name = "sqeuclidean"

    def _paired(self, a, b):
        return ops.sum(ops.square(a - b), axis=-1)

    def _pairwise(self, a, b):
        # |a|^2 + |b|^2 - 2 a.b: one matrix product instead of an (n, m, d) tensor.
        aa = ops.sum(ops.square(a), axis=-1, keepdims=True)
        bb = ops.sum(ops.square(b), axis=-1, keepdims=True)
        return ops.maximum(aa + ops.transpose(bb) - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)


@keras.saving.register_keras_serializable(package="siamkit")
class EuclideanDistance(SquaredEuclideanDistance):
    """Euclidean (L2) distance, with a finite gradient at zero distance."""

    name = "euclidean"

    def _paired(self, a, b):
        return _safe_sqrt(super()._paired(a, b))

    def _pairwise(self, a, b):
        return _safe_sqrt(super()._pairwise(a, b))


@keras.saving.register_keras_serializable(package="siamkit")
class ManhattanDistance(Distance):
    """Manhattan (L1, cityblock) distance, `sum(|a - b|)`."""

    name = "manhattan"

    def _paired(self, a, b):
        return ops.sum(ops.abs(a - b), axis=-1)

    def _pairwise(self, a, b):
        return ops.sum(ops.abs(ops.expand_dims(a, 1) - ops.expand_dims(b, 0)), axis=-1)


@keras.saving.register_keras_serializable(package="siamkit")
class CosineDistance(Distance):
    """Cosine distance, `1 - cos(a, b)`, in [0, 2]."""

    name = "cosine"

    def _paired(self, a, b):
        return 1.0 - ops.sum(_l2_normalize(a) * _l2_normalize(b), axis=-1)

    def _pairwise(self, a, b):
        return 1.0 - ops.matmul(_l2_normalize(a), ops.transpose(_l2_normalize(b)))


@keras.saving.register_keras_serializable(package="siamkit")
class DotProductSimilarity(Distance):
    """Dot-product similarity, `sum(a * b)`: higher means more similar."""

    name = "dot"
    higher_is_similar = True

    def _paired(self, a, b):
        return ops.sum(a * b, axis=-1)

    def _pairwise(self, a, b):
        return ops.matmul(a, ops.transpose(b))


# One class per name of `DISTANCES` (the Keras-free list the index and the CLI read), in its order
# (tests/test_neighbors.py checks it).
CLASSES = {
    cls.name: cls
    for cls in (
        EuclideanDistance,
        SquaredEuclideanDistance,
        ManhattanDistance,
        CosineDistance,
        DotProductSimilarity,
    )
}


def get(identifier):
    """Return a `Distance` from a name, a config dict or a `Distance`.

    Args:
        identifier: one of `euclidean`, `sqeuclidean`, `manhattan`, `cosine`,
            `dot` (or the aliases `l2`, `l1`), a `Distance` instance, or the
            output of `serialize`.
    """
    if isinstance(identifier, Distance):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str):
        name = ALIASES.get(identifier.lower(), identifier.lower())
        if name in CLASSES:
            return CLASSES[name]()
    valid = ", ".join(sorted(DISTANCES))
    raise ConfigError(f"unknown distance {identifier!r}; valid choices are: {valid}")


def serialize(distance):
    """Serialize a `Distance` for a layer's or loss's `get_config`."""
    return keras.saving.serialize_keras_object(get(distance))
