"""Dataset names and the `load` entry point."""

import numpy as np

from ..errors import check_choice
from .base import Dataset


def load_digits():
    """scikit-learn's bundled 8x8 digits: 1,797 images, 10 classes, no download."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    return Dataset(
        name="digits",
        x=x,
        y=bunch.target.astype("int64"),
        info={"class_names": [str(i) for i in range(10)], "source": "sklearn.datasets.load_digits"},
    )


DATASETS = {"digits": load_digits}


def load(name, **kwargs):
    """Load a standard dataset by name.

    Args:
        name: one of `DATASETS`.
        **kwargs: options of that dataset's loader.

    Returns:
        A `Dataset`.
    """
    check_choice("dataset", name, sorted(DATASETS))
    return DATASETS[name](**kwargs)
