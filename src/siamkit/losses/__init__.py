"""Losses for similarity learning.

Label convention for pair losses: **1 = same class, 0 = different class**.
Every loss takes its distance by name or as a `siamkit.distances.Distance`.

- `ContrastiveLoss`: on pair distances (Hadsell et al. 2006).
- `TripletLoss`: on a labelled batch of embeddings, with online mining.
- `BinaryCrossEntropy`: on a pair head's probability (Koch et al. 2015).
"""

from .bce import BinaryCrossEntropy
from .contrastive import ContrastiveLoss
from .triplet import TripletLoss

LOSSES = {"contrastive": ContrastiveLoss, "triplet": TripletLoss, "bce": BinaryCrossEntropy}

__all__ = ["LOSSES", "BinaryCrossEntropy", "ContrastiveLoss", "TripletLoss"]
