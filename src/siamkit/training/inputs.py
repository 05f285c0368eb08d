"""Resolve a training config's data options into arrays."""

from .. import datasets


def load_inputs(config):
    """Return the `Dataset` that `config` names (`dataset`, default `digits`)."""
    return datasets.load(config.get("dataset") or "digits")
