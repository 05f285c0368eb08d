"""`SiameseNetwork`: twin branches that share one encoder."""

import keras

from .heads import DistanceHead
from .base import PairModel


@keras.saving.register_keras_serializable(package="siamkit")
class SiameseNetwork(PairModel):
    """Runs both inputs through the **same** encoder object, then a head.

    The weights are shared because there is one encoder: the model's
    trainable variables are the encoder's plus the head's, nothing else.

    Args:
        encoder: a `keras.Model` (or layer) mapping one input to an embedding.
        head: a pair head from `siamkit.models.heads`; defaults to a
            euclidean `DistanceHead`.

    Example:

    >>> import numpy as np
    >>> from siamkit import encoders
    >>> net = SiameseNetwork(encoders.mlp((8, 8, 1), embedding_dim=16))
    >>> x = np.random.rand(4, 8, 8, 1).astype("float32")
    >>> net.predict([x, x], verbose=0).shape
    (4,)
    """

    def __init__(self, encoder, head=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head if head is not None else DistanceHead("euclidean")

    def call(self, inputs, training=None):
        a, b = inputs
        return self.head([self.encoder(a, training=training), self.encoder(b, training=training)])

    def embed(self, x, modality="a", batch_size=256):
        """Embed an array of inputs, in batches; returns NumPy.

        Args:
            x: inputs shaped like the encoder's input.
            modality: the side of the pairs, `"a"` or `"b"`; both sides share
                the one encoder, so both embed alike (the argument is there so
                that code written for `TwoTowerNetwork` works unchanged).
            batch_size: inputs per forward pass.
        """
        self._check_modality(modality)
        return self._predict_numpy(self.encoder, x, batch_size)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "head": keras.saving.serialize_keras_object(self.head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(encoder=encoder, head=head, **config)
