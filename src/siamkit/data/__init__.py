"""Sampling for training: pairs, triplets, P x K batches, class-disjoint splits.

The samplers are `keras.utils.PyDataset`s, so they load on first use: splits
and pair sampling stay free of Keras for the layers that only need those.
"""

import importlib

from .pairs import ClassIndex, sample_pairs
from .splits import (
    MIN_TRAIN_CLASSES,
    VALIDATION,
    class_disjoint_split,
    holdout_split,
    meta_field,
    resolve_validation,
    split_indices,
    split_pairs,
    split_two_tower,
    stratified_fraction,
    validation_folds,
    validation_info,
)

__all__ = [
    "MIN_TRAIN_CLASSES",
    "VALIDATION",
    "ClassBalancedBatches",
    "ClassIndex",
    "LabelledPairs",
    "PairDataset",
    "TripletDataset",
    "class_disjoint_split",
    "holdout_split",
    "meta_field",
    "resolve_validation",
    "sample_pairs",
    "split_indices",
    "split_pairs",
    "split_two_tower",
    "stratified_fraction",
    "validation_folds",
    "validation_info",
]

_SAMPLERS = ("ClassBalancedBatches", "LabelledPairs", "PairDataset", "TripletDataset")


def __getattr__(name):
    if name in _SAMPLERS:
        return getattr(importlib.import_module(f"{__name__}.samplers"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
