"""`keras.applications` backbones as encoders, by name, with their own input preprocessing."""

import os
import re

import keras
from keras import layers

from ..errors import ConfigError
from .common import check_image_shape, embedding_head
from .preprocessing import BackbonePreprocessing

# name -> (constructor in keras.applications, its module there (whose `preprocess_input` the
# preprocessing layer reproduces), the `BackbonePreprocessing` mode, smallest input side it accepts)
BACKBONES = {
    "resnet50": ("ResNet50", "resnet", "caffe", 32),
    "resnet50v2": ("ResNet50V2", "resnet_v2", "tf", 32),
    "vgg16": ("VGG16", "vgg16", "caffe", 32),
    "vgg19": ("VGG19", "vgg19", "caffe", 32),
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2", "tf", 32),
    "mobilenetv3small": ("MobileNetV3Small", "mobilenet_v3", "pixels", 32),
    "mobilenetv3large": ("MobileNetV3Large", "mobilenet_v3", "pixels", 32),
    "efficientnetb0": ("EfficientNetB0", "efficientnet", "pixels", 32),
    "efficientnetv2b0": ("EfficientNetV2B0", "efficientnet_v2", "pixels", 32),
    "densenet121": ("DenseNet121", "densenet", "torch", 32),
    "convnexttiny": ("ConvNeXtTiny", "convnext", "pixels", 32),
}
# Keras' message when a download fails: "URL fetch failure on <url>: <code> -- <reason>".
_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?): ")


def backbone_key(backbone):
    """The `BACKBONES` key of a backbone name (`"ResNet50"` -> `"resnet50"`); raises for unknown names."""
    key = backbone.lower().replace("_", "").replace("-", "")
    if key not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; valid choices are: {', '.join(sorted(BACKBONES))}")
    return key


def keras_cache_dir():
    """The folder where Keras caches downloaded application weights: `$KERAS_HOME/models` (default `~/.keras`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _base(constructor, class_name, weights, side):
    """The backbone without its top; `"imagenet"` weights come through Keras' download cache."""
    kwargs = {"include_preprocessing": True} if class_name.startswith(("MobileNetV3", "EfficientNetV2", "ConvNeXt")) else {}
    try:
        return constructor(include_top=False, weights=weights, input_shape=(*side, 3), pooling="avg", **kwargs)
    except Exception as err:  # Keras raises a bare Exception when the download fails
        found = _FETCH_FAILURE.search(str(err)) if weights == "imagenet" else None
        if found is None:
            raise
        url = found.group(1)
        raise ConfigError(
            f"{class_name}: cannot download the ImageNet weights ({err}); on a machine without internet, "
            f"place the file {os.path.basename(url)} (from {url}) in {keras_cache_dir()}, "
            "or pass --weights with the path of a local weights file"
        ) from None


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
    """A `keras.applications` backbone with its input preprocessing, global pooling and a projection.

    The encoder takes siamkit's [0, 1] images: 1-channel input is repeated to
    the 3 channels the backbones expect, inputs smaller than a backbone's
    minimum are resized up, and a `BackbonePreprocessing` layer
    (`backbone_preprocessing`) turns them into what the family's
    `preprocess_input` makes of [0, 255] pixels (caffe-style BGR for
    ResNet50 and VGG, [-1, 1] for MobileNetV2, ...), all inside the model, so
    a saved or exported encoder needs nothing outside it.

    Args:
        backbone: a name from `BACKBONES` (case-insensitive), e.g. `ResNet50`.
        input_shape: `(height, width, channels)` with 1 or 3 channels.
        embedding_dim: size of the projection.
        weights: None (random init), `"imagenet"` (downloaded once through
            Keras' cache, `~/.keras/models`; offline, the error names the
            file to place there) or the path of a local weights file of that
            backbone without its top.
        l2_normalize, batch_norm, dropout, weight_decay: as for `cnn`.

    Example:

    >>> application("MobileNetV3Small", (32, 32, 1), embedding_dim=32).output_shape
    (None, 32)
    """
    key = backbone_key(backbone)
    class_name, _, mode, min_side = BACKBONES[key]
    shape = check_image_shape(input_shape, class_name)
    if shape[-1] not in (1, 3):
        raise ConfigError(f"{class_name}: input needs 1 or 3 channels, got {shape[-1]} in {input_shape!r}")
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise ConfigError(
            f"{class_name}: weights file {weights!r} does not exist; pass the path of a weights file of "
            f"{class_name} without its top, or 'imagenet' to download them"
        )
    inputs = keras.Input(shape)
    x = inputs
    if shape[-1] == 1:
        x = layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    side = (max(shape[0], min_side), max(shape[1], min_side))
    if side != shape[:2]:
        x = layers.Resizing(*side, name="resize_to_backbone")(x)
    x = BackbonePreprocessing(mode, name="backbone_preprocessing")(x)
    base = _base(getattr(keras.applications, class_name), class_name, weights, side)
    x = base(x)
    outputs = embedding_head(
        x, embedding_dim, l2_normalize=l2_normalize, batch_norm=batch_norm, dropout=dropout,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, outputs, name=name or key)
