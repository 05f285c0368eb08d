"""`keras.applications` backbones as encoders, by name."""

import os

import keras
from keras import layers

from ..errors import ConfigError
from .common import check_image_shape, embedding_head

# name -> (constructor name in keras.applications, smallest input side it accepts)
BACKBONES = {
    "resnet50": ("ResNet50", 32),
    "resnet50v2": ("ResNet50V2", 32),
    "vgg16": ("VGG16", 32),
    "vgg19": ("VGG19", 32),
    "mobilenetv2": ("MobileNetV2", 32),
    "mobilenetv3small": ("MobileNetV3Small", 32),
    "mobilenetv3large": ("MobileNetV3Large", 32),
    "efficientnetb0": ("EfficientNetB0", 32),
    "efficientnetv2b0": ("EfficientNetV2B0", 32),
    "densenet121": ("DenseNet121", 32),
    "convnexttiny": ("ConvNeXtTiny", 32),
}


def application(
    backbone,
    input_shape,
    embedding_dim=128,
    weights=None,
    l2_normalize=True,
    batch_norm=False,
    dropout=0.0,
    weight_decay=0.0,
    name=None,
):
    """A `keras.applications` backbone with global pooling and a projection.

    1-channel input is repeated to the 3 channels the backbones expect, and
    inputs smaller than a backbone's minimum are resized up inside the model.

    Args:
        backbone: a name from `BACKBONES` (case-insensitive), e.g. `ResNet50`.
        input_shape: `(height, width, channels)` with 1 or 3 channels.
        embedding_dim: size of the projection.
        weights: None (random init) or the path of a local weights file of
            that backbone without its top (nothing is downloaded).
        l2_normalize, batch_norm, dropout, weight_decay: as for `cnn`.

    Example:

    >>> application("MobileNetV3Small", (32, 32, 1), embedding_dim=32).output_shape
    (None, 32)
    """
    key = backbone.lower().replace("_", "").replace("-", "")
    if key not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; valid choices are: {', '.join(sorted(BACKBONES))}")
    class_name, min_side = BACKBONES[key]
    shape = check_image_shape(input_shape, class_name)
    if shape[-1] not in (1, 3):
        raise ConfigError(f"{class_name}: input needs 1 or 3 channels, got {shape[-1]} in {input_shape!r}")
    if weights is not None and not os.path.isfile(weights):
        raise ConfigError(f"{class_name}: weights file {weights!r} does not exist (weights are never downloaded)")
    inputs = keras.Input(shape)
    x = inputs
    if shape[-1] == 1:
        x = layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    side = (max(shape[0], min_side), max(shape[1], min_side))
    if side != shape[:2]:
        x = layers.Resizing(*side, name="resize_to_backbone")(x)
    constructor = getattr(keras.applications, class_name)
    kwargs = {"include_preprocessing": False} if "MobileNetV3" in class_name or "EfficientNetV2" in class_name else {}
    base = constructor(include_top=False, weights=weights, input_shape=(*side, 3), pooling="avg", **kwargs)
    x = base(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=batch_norm, dropout=dropout,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, outputs, name=name or key)
