"""`mlp`: a Dense stack, as in the classic Keras Siamese example."""

import keras
from keras import layers

from .common import check_input_shape, embedding_head, regularizer


def mlp(
    input_shape,
    embedding_dim=64,
    hidden_units=(256, 128),
    l2_normalize=False,
    batch_norm=False,
    dropout=0.0,
    weight_decay=0.0,
    name="mlp",
):
    """A multilayer perceptron encoder; any input shape is flattened.

    Args:
        input_shape: shape of one sample, e.g. `(28, 28, 1)` or `(40,)`.
        embedding_dim: size of the embedding.
        hidden_units: widths of the hidden ReLU layers.
        l2_normalize: unit-length embeddings.
        batch_norm: batch norm after each hidden layer and the projection.
        dropout: dropout rate after each hidden layer.
        weight_decay: L2 weight on every kernel.

    Example:

    >>> enc = mlp((8, 8, 1), embedding_dim=16)
    >>> enc.output_shape
    (None, 16)
    """
    shape = check_input_shape(input_shape, name=name)
    inputs = keras.Input(shape)
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, kernel_regularizer=regularizer(weight_decay), name=f"dense_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=batch_norm, dropout=0.0, weight_decay=weight_decay
    )
    return keras.Model(inputs, outputs, name=name)
