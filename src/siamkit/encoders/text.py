"""`text_encoder`: a tokenizer-free text tower on hashed byte n-grams.

The input is the byte codes of `siamkit.datasets.encode_text` (byte + 1, 0
pads). `HashedNgrams` hashes every byte n-gram into a fixed number of
buckets and sums their learned vectors per position, so the model needs no
vocabulary file: all it knows is in its weights, and it saves and loads
with `safe_mode=True` like any other layer.
"""

import keras
from keras import layers, ops

from ..errors import ConfigError
from .common import check_input_shape, embedding_head

# Rolling hash base: larger than any code (256 bytes + padding).
_BASE = 257


@keras.saving.register_keras_serializable(package="siamkit")
class HashedNgrams(keras.layers.Layer):
    """Byte codes `(n, length)` -> `(n, length, dim)`: the sum of each position's hashed n-gram vectors.

    The n-gram of size k starting at position i gets bucket
    `hash(codes[i:i+k]) mod buckets`, the hash a rolling polynomial salted
    with k; n-grams reaching into the padding contribute nothing.

    Args:
        ngrams: the n-gram sizes, e.g. `(1, 2, 3)`.
        buckets: hash buckets (rows of the embedding table).
        dim: size of each bucket's vector.

    Example:

    >>> import numpy as np
    >>> tuple(HashedNgrams((1, 2), buckets=64, dim=4)(np.array([[98.0, 99.0, 0.0]])).shape)
    (1, 3, 4)
    """

    def __init__(self, ngrams=(1, 2, 3), buckets=1 << 14, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.ngrams = tuple(int(k) for k in ngrams)
        self.buckets, self.dim = int(buckets), int(dim)
        if not self.ngrams or min(self.ngrams) < 1 or not 1 < self.buckets <= 1 << 20 or self.dim < 1:
            raise ConfigError(
                f"HashedNgrams needs n-gram sizes >= 1, 2..{1 << 20} buckets and dim >= 1, got "
                f"{ngrams}, {buckets}, {dim}"
            )
        self.table = layers.Embedding(self.buckets, self.dim, name="ngram_table")

    def build(self, input_shape):
        self.table.build((None,))

    def call(self, codes):
        codes = ops.cast(codes, "int32")
        length = ops.shape(codes)[1]
        total = None
        for k in self.ngrams:
            padded = ops.pad(codes, [[0, 0], [0, k - 1]])
            h = ops.full_like(codes, k)
            present = ops.ones_like(codes)
            for j in range(k):
                part = padded[:, j : j + length]
                h = ops.mod(h * _BASE + part, self.buckets)
                present = present * ops.cast(part > 0, "int32")
            vectors = self.table(h) * ops.expand_dims(ops.cast(present, self.compute_dtype), -1)
            total = vectors if total is None else total + vectors
        return total

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def get_config(self):
        return {**super().get_config(), "ngrams": list(self.ngrams), "buckets": self.buckets, "dim": self.dim}


@keras.saving.register_keras_serializable(package="siamkit")
class MaskedMean(keras.layers.Layer):
    """Mean over the positions whose byte code is not padding: `[features (n, L, d), codes (n, L)] -> (n, d)`."""

    def call(self, inputs):
        features, codes = inputs
        mask = ops.expand_dims(ops.cast(codes > 0, features.dtype), -1)
        return ops.sum(features * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])


def text_encoder(
    input_shape=(64,),
    embedding_dim=64,
    ngrams=(1, 2, 3),
    buckets=1 << 14,
    width=64,
    kernel_size=3,
    l2_normalize=False,
    dropout=0.0,
    weight_decay=0.0,
    name="text",
):
    """Hashed byte n-grams -> Conv1D -> masked mean -> embedding.

    Args:
        input_shape: `(length,)`, the byte codes kept per text.
        embedding_dim: size of the embedding.
        ngrams, buckets: of `HashedNgrams`.
        width: n-gram vector size and conv filters.
        kernel_size: conv window over positions.
        l2_normalize, dropout, weight_decay: as for the other encoders.

    Example:

    >>> from siamkit.datasets import encode_text
    >>> enc = text_encoder((16,), embedding_dim=8)
    >>> enc.predict(encode_text(["seven", "sieben"], 16), verbose=0).shape
    (2, 8)
    """
    shape = check_input_shape(input_shape, name=name)
    if len(shape) != 1:
        raise ConfigError(f"{name}: a text tower takes byte codes of shape (length,), got {input_shape!r}")
    codes = keras.Input(shape)
    x = HashedNgrams(ngrams, buckets, width, name="ngrams")(codes)
    x = layers.Conv1D(width, kernel_size, padding="same", activation="relu", name="conv")(x)
    x = MaskedMean(name="masked_mean")([x, codes])
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=False, dropout=dropout, weight_decay=weight_decay
    )
    return keras.Model(codes, outputs, name=name)
