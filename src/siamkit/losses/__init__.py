"""Losses for similarity learning.

Label convention for pair losses: **1 = same class, 0 = different class**.
Every loss takes its distance by name or as a `siamkit.distances.Distance`.

- `ContrastiveLoss`: on pair distances (Hadsell et al. 2006).
- `TripletLoss`: on a labelled batch of embeddings, with online mining.
- `BinaryCrossEntropy`: on a pair head's probability (Koch et al. 2015).
- `PrototypicalLoss`: episodic softmax over class prototypes of a labelled batch.
- `ClipLoss` (alias `InfoNCELoss`) and `CrossModalContrastiveLoss`: on the
  `(n, n)` score matrix of a cross-modal batch (see `siamkit.losses.clip`).

Constructors take their arguments in one order: `margin`, `distance`, the
loss's own options, then Keras' `reduction` and `name`. Every loss honours
`reduction`: the default (`"sum_over_batch_size"`) is the loss's own average,
`"sum"` adds the per-item terms and `"none"` returns them.
"""

from .bce import BinaryCrossEntropy
from .clip import ClipLoss, CrossModalContrastiveLoss, InfoNCELoss
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
    "ClipLoss",
    "ContrastiveLoss",
    "CrossModalContrastiveLoss",
    "InfoNCELoss",
    "PrototypicalLoss",
    "TripletLoss",
]
