"""`resnet`: a residual conv net of configurable depth and width."""

import keras
from keras import layers

from .common import check_image_shape, embedding_head, regularizer


def _residual_block(x, filters, stride, *, weight_decay, name):
    """Two 3x3 convolutions with batch norm, plus an identity or 1x1 shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, kernel_regularizer=regularizer(weight_decay),
            name=f"{name}_proj",
        )(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, kernel_regularizer=regularizer(weight_decay),
        name=f"{name}_conv1",
    )(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_regularizer=regularizer(weight_decay), name=f"{name}_conv2"
    )(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnet(
    input_shape,
    embedding_dim=128,
    depth=(2, 2, 2),
    width=32,
    l2_normalize=True,
    batch_norm=False,
    dropout=0.0,
    weight_decay=0.0,
    name="resnet",
):
    """A ResNet of basic blocks: stem, stages, global pooling, projection.

    Stage `i` has `depth[i]` residual blocks of `width * 2**i` filters; each
    stage after the first halves the resolution while it is 2 pixels or more.
    Inputs of 64 pixels or more get a 5x5 stride-2 stem.

    Args:
        input_shape: `(height, width, channels)`.
        embedding_dim: size of the embedding.
        depth: residual blocks per stage; `(2, 2, 2, 2)` is ResNet-18-like.
        width: filters of the first stage.
        l2_normalize: unit-length embeddings.
        batch_norm: batch-normalise the projection (blocks always use it).
        dropout: dropout before the projection.
        weight_decay: L2 weight on every kernel.

    Example:

    >>> resnet((28, 28, 1), depth=(1, 1)).output_shape
    (None, 128)
    """
    shape = check_image_shape(input_shape, name)
    inputs = keras.Input(shape)
    big = min(shape[:2]) >= 64
    x = layers.Conv2D(
        width, 5 if big else 3, strides=2 if big else 1, padding="same", use_bias=False,
        kernel_regularizer=regularizer(weight_decay), name="stem_conv",
    )(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, blocks in enumerate(depth):
        for block in range(blocks):
            downsample = stage > 0 and block == 0 and min(x.shape[1], x.shape[2]) >= 2
            x = _residual_block(
                x, width * 2**stage, 2 if downsample else 1, weight_decay=weight_decay, name=f"s{stage}b{block}"
            )
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=batch_norm, dropout=dropout,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, outputs, name=name)
