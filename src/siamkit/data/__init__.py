"""Sampling for training: pairs, triplets, P x K batches, class-disjoint splits."""

from .pairs import ClassIndex, sample_pairs
from .samplers import ClassBalancedBatches, LabelledPairs, PairDataset, TripletDataset
from .splits import (
    MIN_TRAIN_CLASSES,
    VALIDATION,
    class_disjoint_split,
    holdout_split,
    meta_field,
    resolve_validation,
    split_indices,
    split_pairs,
    stratified_fraction,
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
    "stratified_fraction",
    "validation_info",
]
