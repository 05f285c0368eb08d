"""Pair models: `SiameseNetwork` (shared encoder) and `TwoTowerNetwork`
(one encoder per modality), the pair heads they end in, and
`CrossModalScores`, the in-batch score matrix a two-tower network trains on."""

from .base import PairModel
from .scores import CrossModalScores
from .heads import HEADS, ConcatHead, DistanceHead, L1Head, PairHead
from .siamese import SiameseNetwork
from .two_tower import TwoTowerNetwork

__all__ = [
    "HEADS",
    "ConcatHead",
    "CrossModalScores",
    "DistanceHead",
    "L1Head",
    "PairHead",
    "PairModel",
    "SiameseNetwork",
    "TwoTowerNetwork",
]
