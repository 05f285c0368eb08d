"""Shared behaviour of the pair models."""

import keras
import numpy as np

from ..backend import replicated
from ..errors import DataError, check_choice
from ..neighbors import paired_distances
from .heads import DistanceHead

# The two sides of a pair: the first and second input (a two-tower network's two modalities).
MODALITIES = ("a", "b")


class PairModel(keras.Model):
    """A model called on `[x1, x2]` that returns one score per pair.

    Every pair model embeds one side of its pairs with
    `embed(x, modality="a", batch_size=256)`: `modality` names the side, `"a"`
    (first input) or `"b"` (second), so code written for one kind of
    network works for the other.
    """

    @property
    def higher_is_similar(self):
        """True when the output grows with similarity (probability, dot)."""
        return self.head.higher_is_similar

    @property
    def output_kind(self):
        """`"distance"`, `"similarity"` or `"probability"`."""
        return self.head.output_kind

    @staticmethod
    def _check_modality(modality):
        return check_choice("modality", modality, MODALITIES)

    @staticmethod
    def _predict_numpy(network, x, batch_size, finish=None):
        """Run `network` over `x` in batches; optionally `finish` each output.

        Keras models go through `predict_on_batch`, Keras' compiled predict
        function: about twice as fast on CPU as calling the model eagerly;
        one built for data-parallel training under `tf.distribute` is called
        itself (`siamkit.backend.replicated`).
        """
        x = np.asarray(x)
        if len(x) == 0:
            raise DataError("cannot embed an empty array; pass at least one input")
        compiled = isinstance(network, keras.Model) and not replicated(network)
        forward = network.predict_on_batch if compiled else network
        out = []
        for i in range(0, len(x), batch_size):
            z = forward(x[i : i + batch_size])
            out.append(keras.ops.convert_to_numpy(finish(z) if finish is not None else z))
        return np.concatenate(out, axis=0)

    def score_embeddings(self, z1, z2):
        """Pair scores from embeddings computed earlier (e.g. by `embed`).

        A `DistanceHead` is scored in NumPy: a Keras call costs more than
        the arithmetic for the few pairs a service compares.
        """
        if isinstance(self.head, DistanceHead):
            return paired_distances(z1, z2, self.head.distance.name).astype("float32")
        return keras.ops.convert_to_numpy(self.head([z1, z2]))
