"""`TwoTowerNetwork`: one encoder per modality, one shared embedding space.

This is the multi-modal Siamese network: image and sound (say) each get an
encoder of their own, and an optional shared projection maps both towers'
outputs into the same space, where a pair head compares them.
"""

import keras

from ..errors import ConfigError
from .base import PairModel
from .heads import DistanceHead


@keras.saving.register_keras_serializable(package="siamkit")
class TwoTowerNetwork(PairModel):
    """Two encoders (towers) mapping two modalities into one space.

    Args:
        encoder_a: encoder of the first modality (input `x1`).
        encoder_b: encoder of the second modality (input `x2`).
        head: a pair head; defaults to a cosine `DistanceHead`.
        projection: optional layer applied to both towers' outputs (shared
            weights), e.g. `keras.layers.Dense(64)`.
        normalize: L2-normalise the final embeddings.
        learn_temperature: add a trainable log logit scale, initialised to
            `log(1 / 0.07)` as in CLIP, read by `siamkit.losses.ClipLoss`.

    Example:

    >>> import numpy as np
    >>> from siamkit import encoders
    >>> net = TwoTowerNetwork(encoders.mlp((8, 8, 1), embedding_dim=16),
    ...                       encoders.mlp((20,), embedding_dim=16))
    >>> net.predict([np.zeros((2, 8, 8, 1)), np.zeros((2, 20))], verbose=0).shape
    (2,)
    """

    def __init__(
        self,
        encoder_a,
        encoder_b,
        head=None,
        projection=None,
        normalize=True,
        learn_temperature=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder_a = encoder_a
        self.encoder_b = encoder_b
        self.head = head if head is not None else DistanceHead("cosine")
        self.projection = projection
        dims = [getattr(e, "output_shape", (None,))[-1] for e in (encoder_a, encoder_b)]
        if projection is not None and None not in dims and dims[0] != dims[1]:
            raise ConfigError(
                f"a shared projection needs both towers to output the same size, got {dims[0]} and {dims[1]}"
            )
        self.normalize = bool(normalize)
        self.learn_temperature = bool(learn_temperature)
        self.unit_norm = keras.layers.UnitNormalization(axis=-1) if self.normalize else None
        if self.learn_temperature:
            self.logit_scale = self.add_weight(
                name="logit_scale",
                shape=(),
                initializer=keras.initializers.Constant(2.6592600),  # log(1 / 0.07)
                trainable=True,
            )

    def _finish(self, z):
        if self.projection is not None:
            z = self.projection(z)
        if self.unit_norm is not None:
            z = self.unit_norm(z)
        return z

    def embed_a(self, x, training=None):
        return self._finish(self.encoder_a(x, training=training))

    def embed_b(self, x, training=None):
        return self._finish(self.encoder_b(x, training=training))

    def call(self, inputs, training=None):
        a, b = inputs
        return self.head([self.embed_a(a, training=training), self.embed_b(b, training=training)])

    def embed(self, x, modality="a", batch_size=256):
        """Embed inputs of one modality, in batches; returns NumPy.

        Args:
            x: inputs shaped like that modality's encoder input.
            modality: `"a"` (`encoder_a`) or `"b"` (`encoder_b`).
            batch_size: inputs per forward pass.
        """
        encoder = self.encoder_a if self._check_modality(modality) == "a" else self.encoder_b
        return self._predict_numpy(encoder, x, batch_size, finish=self._finish)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder_a": keras.saving.serialize_keras_object(self.encoder_a),
            "encoder_b": keras.saving.serialize_keras_object(self.encoder_b),
            "head": keras.saving.serialize_keras_object(self.head),
            "projection": keras.saving.serialize_keras_object(self.projection),
            "normalize": self.normalize,
            "learn_temperature": self.learn_temperature,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder_a", "encoder_b", "head", "projection"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
