"""siamkit: Siamese and two-tower similarity networks on Keras 3.

Submodules load on first use, so `import siamkit` is cheap and the CLI can
quiet TensorFlow before Keras is imported.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "audio",
    "data",
    "datasets",
    "distances",
    "encoders",
    "errors",
    "evaluation",
    "index",
    "losses",
    "miners",
    "models",
    "neighbors",
    "runs",
    "service",
    "training",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'siamkit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
