"""An ensemble of encoders as one encoder: their embeddings, concatenated."""

import keras
from keras import layers

from ..errors import ConfigError


def ensemble(members, name="ensemble"):
    """One encoder that runs every member on its input and concatenates their embeddings.

    Distances on the concatenation combine the members' distances:
    squared Euclidean, Manhattan and dot product add up, Euclidean is the
    root of the summed squares, and for unit-length members the cosine
    similarity is the members' mean. The result is an ordinary functional
    `keras.Model`, saved and loaded (`safe_mode=True`) like any encoder.

    Args:
        members: two or more encoders (`keras.Model`) with the same input
            shape and distinct names.
        name: the ensemble's name.

    Example:

    >>> from siamkit import encoders
    >>> a = encoders.mlp((8,), embedding_dim=4, name="a")
    >>> b = encoders.mlp((8,), embedding_dim=6, name="b")
    >>> ensemble([a, b]).output_shape
    (None, 10)
    """
    members = list(members)
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least 2 encoders, got {len(members)}")
    shapes = {tuple(m.input_shape[1:]) for m in members}
    if len(shapes) != 1:
        raise ConfigError(f"ensemble members must share one input shape, got {sorted(shapes)}")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ConfigError(f"ensemble members need distinct names, got {names}")
    inputs = keras.Input(shapes.pop())
    outputs = layers.Concatenate(axis=-1, name="concatenate")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name=name)
