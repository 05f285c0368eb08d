"""`CrossModalScores`: a two-tower network's scores between every pair of a batch.

Fitting this wrapper with `siamkit.losses.ClipLoss` or
`CrossModalContrastiveLoss` trains the wrapped `TwoTowerNetwork` on in-batch
negatives: every other row of a batch is a negative for free. In
data-parallel training the negatives are those of the global batch: under a
`tf.distribute` strategy each replica gathers every replica's embeddings
before scoring (`siamkit.backend.gather_replicas`), and under JAX's
`DataParallel` the step sees the global batch as it is.
"""

import math

import keras
from keras import ops

from .. import distances
from ..backend import gather_replicas
from ..errors import ConfigError, check_choice

SCORES = ("logits", "distance")
# CLIP clips the learned logit scale at 100 so the softmax cannot collapse.
MAX_LOGIT_SCALE = math.log(100.0)


@keras.saving.register_keras_serializable(package="siamkit")
class CrossModalScores(keras.Model):
    """A `TwoTowerNetwork`'s scores between every pair of a batch, for in-batch negatives.

    Called on `[x_a, x_b]` (n items each), returns the `(n, n)` matrix whose
    entry `[i, j]` compares `x_a[i]` with `x_b[j]`. It shares the network's
    weights: fit this wrapper, then save the network itself.

    Args:
        network: a `siamkit.models.TwoTowerNetwork`.
        scores: `"logits"`, `exp(logit_scale) * cos(z_a_i, z_b_j)` for
            `siamkit.losses.ClipLoss`, with the network's learned
            `logit_scale` (`learn_temperature=True`, clipped at 100) or else
            the fixed `1 / temperature`; or `"distance"`, the network head's
            distance for `siamkit.losses.CrossModalContrastiveLoss`.
        temperature: the fixed temperature when the network learns none.

    Example:

    >>> import numpy as np
    >>> from siamkit import encoders, models
    >>> net = models.TwoTowerNetwork(encoders.mlp((4,), embedding_dim=8),
    ...                              encoders.mlp((6,), embedding_dim=8), learn_temperature=True)
    >>> tuple(models.CrossModalScores(net)([np.zeros((3, 4)), np.zeros((5, 6))]).shape)
    (3, 5)
    """

    def __init__(self, network, scores="logits", temperature=0.07, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.scores = check_choice("scores", scores, SCORES)
        self.temperature = float(temperature)
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        if self.scores == "distance":
            distance = getattr(network.head, "distance", None)
            if distance is None or distance.higher_is_similar:
                raise ConfigError("scores='distance' needs a network whose head is a DistanceHead with a distance")
        self.cosine = distances.get("cosine")

    def build(self, input_shape):
        if not self.network.built:
            # One forward pass on an all-zero pair creates the towers' weights before training.
            self.network([ops.zeros((1, *shape[1:])) for shape in input_shape])

    def logit_scale(self):
        """The multiplier of the cosine similarities (`1 / temperature`)."""
        if self.network.learn_temperature:
            return ops.exp(ops.minimum(self.network.logit_scale, MAX_LOGIT_SCALE))
        return ops.convert_to_tensor(1.0 / self.temperature)

    def call(self, inputs, training=None):
        a, b = inputs
        # Every replica's embeddings, so that the negatives span the global batch.
        z_a, z_b = gather_replicas(
            self.network.embed_a(a, training=training), self.network.embed_b(b, training=training)
        )
        if self.scores == "distance":
            return self.network.head.distance.pairwise(z_a, z_b)
        return self.logit_scale() * (1.0 - self.cosine.pairwise(z_a, z_b))

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "scores": self.scores,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
