"""Convolutional encoders for images: `cnn`, `koch`, `alexnet` and `vgg`."""

import keras
from keras import layers

from .common import check_image_shape, conv_block, embedding_head, regularizer


def _spatial_after(size, kernel, padding, pool):
    size = size - kernel + 1 if padding == "valid" else size
    return size // 2 if pool else size


def _fits(size, specs, padding):
    """True when every conv/pool of `specs` keeps at least one pixel."""
    for kernel, pool in specs:
        size = _spatial_after(size, kernel, padding, pool and size >= 2)
        if size < 1:
            return False
    return True


def _flat_dense(x, units, *, batch_norm, dropout, weight_decay, name):
    x = layers.Flatten(name="flatten")(x)
    for i, width in enumerate(units):
        x = layers.Dense(width, kernel_regularizer=regularizer(weight_decay), name=f"{name}_dense_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_dense_bn_{i}")(x)
        x = layers.Activation("relu", name=f"{name}_dense_relu_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dense_dropout_{i}")(x)
    return x


def _conv_stack(inputs, specs, *, batch_norm, weight_decay, padding, prefix, pool_first=False):
    """Conv blocks from `(filters, kernel, pool)` specs; pools only while size >= 2."""
    x = inputs
    for i, (filters, kernel, pool) in enumerate(specs):
        x = conv_block(
            x,
            filters,
            kernel,
            batch_norm=batch_norm,
            weight_decay=weight_decay,
            padding=padding,
            pool=pool and min(x.shape[1], x.shape[2]) >= 2,
            name=f"{prefix}{i}",
            pool_first=pool_first,
        )
    return x


def cnn(
    input_shape,
    embedding_dim=64,
    filters=(32, 64),
    dense_units=(128,),
    l2_normalize=True,
    batch_norm=False,
    dropout=0.0,
    weight_decay=0.0,
    pool_first=False,
    name="cnn",
):
    """A small conv net for small images (8x8 to ~105x105).

    Each entry of `filters` is a 3x3 "same" convolution, ReLU and 2x2
    max-pooling; then Dense layers and the embedding projection. The default
    is the benchmark network: conv 32, pool, conv 64, pool, dense 128, 64-d.

    Args:
        input_shape: `(height, width, channels)`.
        embedding_dim: size of the embedding.
        filters: filters of each conv block.
        dense_units: widths of the Dense layers after the conv blocks.
        l2_normalize: unit-length embeddings.
        batch_norm: batch norm after each conv and dense layer.
        dropout: dropout rate after each dense layer.
        weight_decay: L2 weight on every kernel.
        pool_first: max-pool each convolution's output before batch norm and
            ReLU instead of after: the same receptive fields, with the
            normalisation done on a quarter of the pixels, so a training step
            costs less (about two thirds of the time for the 5-block Omniglot
            net at 84x84 on CPU).

    Example:

    >>> cnn((28, 28, 1)).output_shape
    (None, 64)
    """
    shape = check_image_shape(input_shape, name)
    inputs = keras.Input(shape)
    x = _conv_stack(
        inputs, [(f, 3, True) for f in filters], batch_norm=batch_norm, weight_decay=weight_decay,
        padding="same", prefix="block", pool_first=pool_first,
    )
    x = _flat_dense(x, dense_units, batch_norm=batch_norm, dropout=dropout, weight_decay=weight_decay, name="fc")
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=False, dropout=0.0, weight_decay=weight_decay
    )
    return keras.Model(inputs, outputs, name=name)


# Koch, Zemel & Salakhutdinov (2015), figure 4: (filters, kernel, pool after).
KOCH_LAYERS = ((64, 10, True), (128, 7, True), (128, 4, True), (256, 4, False))


def koch(
    input_shape=(105, 105, 1),
    embedding_dim=4096,
    l2_normalize=False,
    batch_norm=False,
    dropout=0.0,
    weight_decay=0.0,
    name="koch",
):
    """The Siamese conv net of Koch, Zemel & Salakhutdinov (2015).

    64@10x10, 128@7x7, 128@4x4 and 256@4x4 ReLU convolutions, the first three
    followed by 2x2 max-pooling, then a sigmoid Dense layer (4096 units in
    the paper). At 105x105 the convolutions are "valid" as in the paper;
    inputs too small for that (e.g. 28x28) use "same" padding instead.

    Args:
        input_shape: `(height, width, channels)`; 105x105x1 in the paper.
        embedding_dim: units of the sigmoid embedding layer.
        l2_normalize, batch_norm, dropout, weight_decay: as for `cnn`.

    Example:

    >>> koch((105, 105, 1), embedding_dim=128).output_shape
    (None, 128)
    """
    shape = check_image_shape(input_shape, name)
    specs = [(k, p) for _, k, p in KOCH_LAYERS]
    padding = "valid" if _fits(min(shape[:2]), specs, "valid") else "same"
    inputs = keras.Input(shape)
    x = _conv_stack(
        inputs, KOCH_LAYERS, batch_norm=batch_norm, weight_decay=weight_decay, padding=padding, prefix="koch"
    )
    x = layers.Flatten(name="flatten")(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=batch_norm, dropout=dropout,
        weight_decay=weight_decay, activation="sigmoid",
    )
    return keras.Model(inputs, outputs, name=name)


def alexnet(
    input_shape,
    embedding_dim=128,
    width=1.0,
    dense_units=(1024, 1024),
    l2_normalize=True,
    batch_norm=True,
    dropout=0.5,
    weight_decay=0.0,
    name="alexnet",
):
    """An AlexNet-style stack (five convolutions, three pools, two Dense).

    Sized to the input: the 11x11 stride-4 stem of the original is used only
    for inputs of 128 pixels or more; smaller inputs get a 5x5 stride-1 stem,
    and pooling stops once the feature map is 1 pixel.

    Args:
        input_shape: `(height, width, channels)`.
        embedding_dim: size of the embedding.
        width: multiplier on the filter counts (64, 192, 384, 256, 256).
        dense_units: widths of the Dense layers.
        l2_normalize, batch_norm, dropout, weight_decay: as for `cnn`.
    """
    shape = check_image_shape(input_shape, name)
    big = min(shape[:2]) >= 128
    filters = [max(8, int(f * width)) for f in (64, 192, 384, 256, 256)]
    inputs = keras.Input(shape)
    x = layers.Conv2D(
        filters[0], 11 if big else 5, strides=4 if big else 1, padding="same",
        kernel_regularizer=regularizer(weight_decay), name="stem_conv",
    )(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    if min(x.shape[1], x.shape[2]) >= 2:
        x = layers.MaxPooling2D(2, name="stem_pool")(x)
    specs = [(filters[1], 5, True), (filters[2], 3, False), (filters[3], 3, False), (filters[4], 3, True)]
    x = _conv_stack(x, specs, batch_norm=batch_norm, weight_decay=weight_decay, padding="same", prefix="conv")
    x = _flat_dense(x, dense_units, batch_norm=False, dropout=dropout, weight_decay=weight_decay, name="fc")
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=False, dropout=0.0, weight_decay=weight_decay
    )
    return keras.Model(inputs, outputs, name=name)


def vgg(
    input_shape,
    embedding_dim=128,
    blocks=None,
    convs_per_block=2,
    base_filters=32,
    l2_normalize=True,
    batch_norm=True,
    dropout=0.0,
    weight_decay=0.0,
    name="vgg",
):
    """A VGG-style stack of 3x3 conv blocks, each ending in 2x2 pooling.

    Sized to the input: by default it has as many blocks as halvings keep the
    feature map at 2 pixels or more (at most 5), filters doubling per block
    from `base_filters` up to 16x; then global average pooling.

    Args:
        input_shape: `(height, width, channels)`.
        embedding_dim: size of the embedding.
        blocks: number of conv blocks; None sizes it to the input.
        convs_per_block: 3x3 convolutions per block.
        base_filters: filters of the first block.
        l2_normalize, batch_norm, dropout, weight_decay: as for `cnn`.
    """
    shape = check_image_shape(input_shape, name)
    if blocks is None:
        blocks, size = 0, min(shape[:2])
        while blocks < 5 and size // 2 >= 2:
            blocks, size = blocks + 1, size // 2
        blocks = max(blocks, 1)
    inputs = keras.Input(shape)
    x = inputs
    for b in range(blocks):
        filters = base_filters * 2 ** min(b, 4)
        specs = [(filters, 3, i == convs_per_block - 1) for i in range(convs_per_block)]
        x = _conv_stack(x, specs, batch_norm=batch_norm, weight_decay=weight_decay, padding="same", prefix=f"b{b}_")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=False, dropout=dropout, weight_decay=weight_decay
    )
    return keras.Model(inputs, outputs, name=name)
