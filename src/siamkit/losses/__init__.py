"""Losses for similarity learning.

Label convention for pair losses: **1 = same class, 0 = different class**.
Every loss takes its distance by name or as a `siamkit.distances.Distance`.

- `ContrastiveLoss`: on pair distances (Hadsell et al. 2006).
- `TripletLoss`: on a labelled batch of embeddings, with online mining.
- `BinaryCrossEntropy`: on a pair head's probability (Koch et al. 2015).
- `PrototypicalLoss`: episodic softmax over class prototypes of a labelled batch.
"""

from .bce import BinaryCrossEntropy
from .contrastive import ContrastiveLoss
from .prototypical import PrototypicalLoss
from .triplet import TripletLoss

LOSSES = {
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
    "bce": BinaryCrossEntropy,
    "prototypical": PrototypicalLoss,
}
# Losses called as `loss(labels, embeddings)` on a P x K batch, not on pairs.
BATCH_LOSSES = ("triplet", "prototypical")
# Losses that train a distance, so the model ends in a `DistanceHead`.
DISTANCE_LOSSES = ("contrastive", "triplet", "prototypical")

__all__ = [
    "LOSSES",
    "BATCH_LOSSES",
    "DISTANCE_LOSSES",
    "BinaryCrossEntropy",
    "ContrastiveLoss",
    "PrototypicalLoss",
    "TripletLoss",
]
