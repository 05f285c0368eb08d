"""Encoder factories: each returns a `keras.Model` from an input shape to an
embedding of `embedding_dim`.

`build(name, input_shape, ...)` picks one by name; any user-built
`keras.Model` works wherever an encoder is expected. `ensemble(members)`
makes one encoder of several trained ones. `text_encoder` (`"text"`) is
the tokenizer-free text tower, on `siamkit.datasets.encode_text` codes.

Example:

>>> from siamkit import encoders
>>> enc = encoders.build("cnn", (28, 28, 1), embedding_dim=32)
>>> enc.output_shape
(None, 32)
"""

import functools

from ..errors import check_choice
from .applications import BACKBONES, application
from .conv import alexnet, cnn, koch, vgg
from .ensemble import ensemble
from .mlp import mlp
from .preprocessing import BackbonePreprocessing
from .resnet import resnet
from .text import HashedNgrams, MaskedMean, text_encoder

ENCODERS = {
    "mlp": mlp,
    "cnn": cnn,
    "koch": koch,
    "resnet": resnet,
    "alexnet": alexnet,
    "vgg": vgg,
    "text": text_encoder,
    **{name: functools.partial(application, name) for name in BACKBONES},
}


def build(name, input_shape, /, **options):
    """Build an encoder by name.

    Args:
        name: one of `ENCODERS` (`mlp`, `cnn`, `koch`, `resnet`, `alexnet`,
            `vgg`, or a `keras.applications` backbone such as `resnet50`).
        input_shape: shape of one input sample.
        **options: the factory's keyword arguments (`embedding_dim`,
            `l2_normalize`, `batch_norm`, `dropout`, `weight_decay`, ...,
            and `name`, the model's own name).
    """
    key = name.lower().replace("_", "").replace("-", "")
    check_choice("encoder", key, list(ENCODERS))
    return ENCODERS[key](input_shape=input_shape, **options)


__all__ = [
    "ENCODERS", "BACKBONES", "build", "mlp", "cnn", "koch", "resnet", "alexnet", "vgg", "application", "ensemble",
    "text_encoder", "HashedNgrams", "MaskedMean",
    "BackbonePreprocessing",
]
