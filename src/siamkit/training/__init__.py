"""Training: build a model from a config, fit it, write a run directory."""

from .config import DEFAULTS, resolve
from .trainer import train

__all__ = ["DEFAULTS", "resolve", "train"]
