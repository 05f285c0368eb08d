"""Pair heads: turn two embeddings into one score per pair.

- `DistanceHead` outputs a distance (or a similarity) and has no weights.
- `L1Head` is Koch et al.'s `sigmoid(w . |z1 - z2| + b)`, a probability.
- `ConcatHead` feeds `[z1, z2]` through Dense layers to a sigmoid. It is
  **not symmetric**: `head([z1, z2])` and `head([z2, z1])` can differ.

Every head has `output_kind`: `"distance"` (lower = more similar),
`"similarity"` or `"probability"` (higher = more similar), and the matching
`higher_is_similar` flag.
"""

import keras
from keras import ops

from .. import distances


class PairHead(keras.layers.Layer):
    """Base class of the heads: called on `[z1, z2]`, returns shape `(n,)`."""

    output_kind = "probability"

    @property
    def higher_is_similar(self):
        return self.output_kind != "distance"

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


@keras.saving.register_keras_serializable(package="siamkit")
class DistanceHead(PairHead):
    """Outputs the distance between the two embeddings; no parameters.

    Args:
        distance: a distance name or `siamkit.distances.Distance`.

    Example:

    >>> import numpy as np
    >>> head = DistanceHead("euclidean")
    >>> z = np.array([[0.0, 0.0]], "float32"); w = np.array([[3.0, 4.0]], "float32")
    >>> float(head([z, w])[0])
    5.0
    """

    def __init__(self, distance="euclidean", **kwargs):
        super().__init__(**kwargs)
        self.distance = distances.get(distance)

    @property
    def output_kind(self):
        return "similarity" if self.distance.higher_is_similar else "distance"

    def call(self, inputs):
        z1, z2 = inputs
        return self.distance.paired(z1, z2)

    def get_config(self):
        return {**super().get_config(), "distance": distances.serialize(self.distance)}


@keras.saving.register_keras_serializable(package="siamkit")
class L1Head(PairHead):
    """Koch et al. (2015): `sigmoid(w . |z1 - z2| + b)`, a same-class probability.

    Symmetric in its inputs.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, activation="sigmoid", name="score")

    def build(self, input_shape):
        self.dense.build(input_shape[0])

    def call(self, inputs):
        z1, z2 = inputs
        return ops.squeeze(self.dense(ops.abs(z1 - z2)), axis=-1)


@keras.saving.register_keras_serializable(package="siamkit")
class ConcatHead(PairHead):
    """Concatenates `z1` and `z2` into Dense layers ending in a sigmoid.

    Not symmetric in its inputs: swapping the pair can change the score.

    Args:
        units: widths of the hidden Dense layers.
        dropout: dropout rate after each hidden layer.
    """

    def __init__(self, units=(128,), dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.dropout = float(dropout)
        self.hidden = [keras.layers.Dense(u, activation="relu", name=f"hidden_{i}") for i, u in enumerate(self.units)]
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout else None
        self.score = keras.layers.Dense(1, activation="sigmoid", name="score")

    def build(self, input_shape):
        width = 2 * input_shape[0][-1]
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units
        self.score.build((None, width))

    def call(self, inputs, training=None):
        h = ops.concatenate(inputs, axis=-1)
        for layer in self.hidden:
            h = layer(h)
            if self.drop is not None:
                h = self.drop(h, training=training)
        return ops.squeeze(self.score(h), axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": list(self.units), "dropout": self.dropout}


HEADS = {"distance": DistanceHead, "l1": L1Head, "concat": ConcatHead}
