"""Pieces shared by the encoder factories."""

import keras
from keras import layers

from ..errors import ConfigError


def regularizer(weight_decay):
    """An L2 kernel regularizer, or None when `weight_decay` is 0."""
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def check_input_shape(input_shape, min_rank=1, name="encoder"):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < min_rank or any(s <= 0 for s in shape):
        raise ConfigError(f"{name}: input_shape must be {min_rank}+ positive sizes, got {input_shape!r}")
    return shape


def check_image_shape(input_shape, name):
    """Validate an `(height, width, channels)` image shape."""
    shape = check_input_shape(input_shape, min_rank=3, name=name)
    if len(shape) != 3:
        raise ConfigError(f"{name}: expects images of shape (height, width, channels), got {input_shape!r}")
    return shape


def embedding_head(x, embedding_dim, *, l2_normalize, batch_norm, dropout, weight_decay, activation=None):
    """Project features to `embedding_dim`, with the common options.

    Args:
        x: the feature tensor (flat).
        embedding_dim: output size.
        l2_normalize: end with unit-length embeddings.
        batch_norm: batch-normalise the projection.
        dropout: dropout rate before the projection.
        weight_decay: L2 weight on the projection kernel.
        activation: activation of the projection (Koch uses sigmoid).
    """
    if embedding_dim <= 0:
        raise ConfigError(f"embedding_dim must be positive, got {embedding_dim}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if dropout:
        x = layers.Dropout(dropout, name="embedding_dropout")(x)
    x = layers.Dense(
        embedding_dim, activation=activation, kernel_regularizer=regularizer(weight_decay), name="embedding"
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name="embedding_bn")(x)
    if l2_normalize:
        x = layers.UnitNormalization(axis=-1, name="l2_normalize")(x)
    return x


def conv_block(x, filters, kernel_size, *, batch_norm, weight_decay, padding, pool, name, pool_first=False):
    """Conv2D -> (BatchNorm) -> ReLU -> (MaxPool 2x2), or with `pool_first` Conv2D -> MaxPool -> (BatchNorm) -> ReLU."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding=padding,
        use_bias=not batch_norm,
        kernel_regularizer=regularizer(weight_decay),
        name=f"{name}_conv",
    )(x)
    if pool and pool_first:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if pool and not pool_first:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return x
