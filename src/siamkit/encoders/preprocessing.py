"""The input preprocessing of `keras.applications` backbones, as a layer fed [0, 1] images."""

import keras
from keras import ops

from ..errors import check_choice

# ImageNet statistics of `keras.applications.imagenet_utils.preprocess_input`, RGB order, on [0, 255] pixels.
_IMAGENET_MEAN = (123.68, 116.779, 103.939)
_IMAGENET_STD = (0.229, 0.224, 0.225)  # "torch" mode, on [0, 1] pixels
_TORCH_MEAN = (0.485, 0.456, 0.406)

# What each mode computes from [0, 255] RGB pixels (`keras.applications.imagenet_utils.preprocess_input`):
# "caffe": BGR, minus the ImageNet mean; "tf": scaled to [-1, 1]; "torch": [0, 1] standardised per channel;
# "pixels": unchanged, for backbones that hold their preprocessing inside (MobileNetV3, EfficientNet, ConvNeXt).
MODES = ("caffe", "tf", "torch", "pixels")


@keras.saving.register_keras_serializable(package="siamkit")
class BackbonePreprocessing(keras.layers.Layer):
    """Map siamkit's [0, 1] RGB images to what a backbone's `preprocess_input` gives for [0, 255] pixels.

    The output equals `keras.applications.<family>.preprocess_input(255 * x)`,
    so a model that holds this layer takes the same [0, 1] images as every
    other siamkit encoder, and ImageNet weights see the input they were
    trained on. It is written with `keras.ops` slices and arithmetic only, so
    it saves with the model and exports to SavedModel, ONNX and TFLite.

    Args:
        mode: one of `MODES`: `"caffe"` (ResNet50, VGG), `"tf"` (ResNet50V2,
            MobileNetV2), `"torch"` (DenseNet) or `"pixels"` (backbones with
            built-in preprocessing: only the scale to [0, 255]).

    Example:

    >>> import numpy as np
    >>> layer = BackbonePreprocessing("tf")
    >>> keras.ops.convert_to_numpy(layer(np.array([[[[0.0, 0.5, 1.0]]]], "float32"))).tolist()
    [[[[-1.0, 0.0, 1.0]]]]
    """

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("preprocessing mode", mode, MODES)

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "torch":
            return (x - ops.array(_TORCH_MEAN, x.dtype)) / ops.array(_IMAGENET_STD, x.dtype)
        x = x * 255.0
        if self.mode == "caffe":
            # RGB -> BGR by slices (not a reverse op), which every exporter maps to plain ops.
            bgr = ops.concatenate([x[..., 2:3], x[..., 1:2], x[..., 0:1]], axis=-1)
            return bgr - ops.array(_IMAGENET_MEAN[::-1], x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
