"""Sampling for training: pairs, triplets, P x K batches, class-disjoint splits."""

from .pairs import ClassIndex, sample_pairs
from .samplers import ClassBalancedBatches, LabelledPairs, PairDataset, TripletDataset
from .splits import class_disjoint_split, holdout_split, meta_field, split_indices, split_pairs, stratified_fraction

__all__ = [
    "ClassBalancedBatches",
    "ClassIndex",
    "LabelledPairs",
    "PairDataset",
    "TripletDataset",
    "class_disjoint_split",
    "holdout_split",
    "meta_field",
    "sample_pairs",
    "split_indices",
    "split_pairs",
    "stratified_fraction",
]
