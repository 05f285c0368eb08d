"""Pair models: `SiameseNetwork` (shared encoder) and `TwoTowerNetwork`
(one encoder per modality), and the pair heads they end in."""

from .base import PairModel
from .heads import HEADS, ConcatHead, DistanceHead, L1Head, PairHead
from .siamese import SiameseNetwork
from .two_tower import TwoTowerNetwork

__all__ = [
    "HEADS",
    "ConcatHead",
    "DistanceHead",
    "L1Head",
    "PairHead",
    "PairModel",
    "SiameseNetwork",
    "TwoTowerNetwork",
]
