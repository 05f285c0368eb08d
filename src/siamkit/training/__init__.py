"""Training: build a model from a config, fit it, write a run directory.

`train` loads Keras on first use, so importing the config helpers is cheap.
"""

from .config import DEFAULTS, resolve


def __getattr__(name):
    if name == "train":
        from .trainer import train

        return train
    if name in ("fit_input", "fit_sampler"):
        from . import feed

        return getattr(feed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULTS", "fit_input", "fit_sampler", "resolve", "train"]
