"""Losses on the score matrix of a cross-modal batch (in-batch negatives).

Both take `y_pred` of shape `(n, n)`: entry `[i, j]` compares item `i` of
modality a with item `j` of modality b, so every other row of the batch is a
negative for free. `siamkit.models.CrossModalScores` wraps a
`TwoTowerNetwork` to output that matrix. `y_true` is `(n,)` group ids:
items `i` and `j` match when `y_true[i] == y_true[j]`. In data-parallel
training the matrix spans the global batch (`CrossModalScores` gathers the
embeddings of every replica) and the losses gather the labels to match.

- `ClipLoss` (alias `InfoNCELoss`): symmetric InfoNCE on logits (Radford
  et al. 2021).
- `CrossModalContrastiveLoss`: `ContrastiveLoss` on every pair of a
  distance matrix.
"""

import keras
import numpy as np
from keras import ops

from ..backend import gather_replicas
from ..errors import ConfigError, check_choice
from .base import per_item
from .contrastive import ContrastiveLoss

POSITIVES = ("mean", "sum")


def _check_square(y_pred, name):
    shape = tuple(y_pred.shape)
    if len(shape) != 2 or (None not in shape and shape[0] != shape[1]):
        raise ConfigError(
            f"{name} needs the (n, n) score matrix of a batch (item i of modality a against item j of "
            f"modality b), got shape {shape}; wrap the model in CrossModalScores"
        )


def match_matrix(y_true, dtype="float32"):
    """`(n, n)` matrix, 1 where `y_true[i] == y_true[j]`, else 0."""
    y = ops.reshape(y_true, (-1,))
    return ops.cast(ops.equal(ops.expand_dims(y, 1), ops.expand_dims(y, 0)), dtype)


@keras.saving.register_keras_serializable(package="siamkit")
class ClipLoss(keras.losses.Loss):
    """Symmetric InfoNCE / CLIP loss: `(CE(S, T) + CE(S^T, T)) / 2`.

    `S` is the `(n, n)` matrix of logits between the two modalities of a
    batch and `T` the target matrix. With `y_true = arange(n)` (each pair
    its own group), `T` is the identity: CLIP's loss exactly. With class
    labels as `y_true`, every same-class item of the batch is a positive, so
    same-class items are not pushed apart as false negatives, and
    `positives` says how a row's several positives count:

    - `"mean"`: the target mass is split evenly among them (soft targets),
      so every positive must score alike;
    - `"sum"`: the loss is `-log` of the softmax mass on all positives
      together (MIL-NCE, Miech et al. 2020), which only asks the positives
      to outscore the negatives, like a classifier over the batch's classes.

    Both equal CLIP's loss when every row has one positive.

    The temperature is learned by the model: `TwoTowerNetwork(...,
    learn_temperature=True)` holds `logit_scale`, and `CrossModalScores`
    outputs `exp(logit_scale) * cos(a_i, b_j)`. For a fixed temperature
    instead, pass cosine similarities and `temperature`.

    Args:
        temperature: None when `y_pred` are logits already; else `y_pred`
            are similarities and are divided by it.
        positives: `"mean"` or `"sum"`, for rows with several positives.
        reduction: Keras' reduction of the per-item terms
            `(CE(S[i], T[i]) + CE(S[:, i], T[:, i])) / 2`: by default their
            mean; `"sum"`, or `"none"` for the `(n,)` terms.
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[5.0, 0.0], [0.0, 5.0]], "float32")
    >>> round(float(ClipLoss()(np.arange(2), logits)), 4)
    0.0067
    """

    def __init__(
        self, temperature=None, positives="mean", reduction="sum_over_batch_size", name="clip_loss", **kwargs
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        if temperature is not None and float(temperature) <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        self.temperature = None if temperature is None else float(temperature)
        self.positives = check_choice("positives", positives, POSITIVES)

    def _cross_entropy(self, logits, match, axis):
        log_p = ops.log_softmax(logits, axis=axis)
        if self.positives == "sum":
            # log of the softmax mass on the positives; -inf on the negatives drops them.
            return -ops.logsumexp(ops.where(match > 0, log_p, -np.inf), axis=axis)
        return -ops.sum(match * log_p, axis=axis) / ops.sum(match, axis=axis)

    def call(self, y_true, y_pred):
        _check_square(y_pred, "ClipLoss")
        logits = y_pred if self.temperature is None else y_pred / self.temperature
        # The scores span the global batch already (`CrossModalScores`); the labels are each replica's slice.
        match = match_matrix(gather_replicas(y_true, after=y_pred)[0], logits.dtype)
        return 0.5 * (self._cross_entropy(logits, match, 1) + self._cross_entropy(logits, match, 0))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "positives": self.positives}


InfoNCELoss = ClipLoss


@keras.saving.register_keras_serializable(package="siamkit")
class CrossModalContrastiveLoss(keras.losses.Loss):
    """Contrastive loss on every (a_i, b_j) pair of a batch's distance matrix.

    Pair `(i, j)` is positive when `y_true[i] == y_true[j]`; each pair costs
    `ContrastiveLoss`'s term. With C classes only about 1/C of the pairs are
    positive, so positives and negatives are averaged separately and the two
    means averaged (`balanced=True`).

    Args:
        margin: negatives closer than this are pushed apart.
        balanced: weigh positives and negatives equally; False averages
            over all pairs.
        reduction: Keras' reduction of the per-row terms (row `i` holds the
            pairs `(a_i, b_j)`, weighted so that their mean is the loss; by
            default that mean; `"sum"`, or `"none"` for the `(n,)` rows).
        name: the loss's name.

    Example:

    >>> import numpy as np
    >>> d = np.array([[0.0, 2.0], [0.5, 0.0]], "float32")
    >>> float(CrossModalContrastiveLoss(margin=1.0)(np.array([0, 1]), d))
    0.03125
    """

    def __init__(
        self,
        margin=1.0,
        balanced=True,
        reduction="sum_over_batch_size",
        name="cross_modal_contrastive_loss",
        **kwargs,
    ):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.pair_loss = ContrastiveLoss(margin=margin)
        self.balanced = bool(balanced)

    @property
    def margin(self):
        return self.pair_loss.margin

    def call(self, y_true, y_pred):
        _check_square(y_pred, "CrossModalContrastiveLoss")
        same = match_matrix(gather_replicas(y_true, after=y_pred)[0], y_pred.dtype)  # as in ClipLoss
        terms = ops.reshape(self.pair_loss.pair_terms(same, ops.reshape(y_pred, (-1,))), ops.shape(same))
        if self.balanced:
            # Positives and negatives reweighted to half the pairs' total weight each.
            pairs = ops.cast(ops.size(same), same.dtype)
            n_pos = ops.maximum(ops.sum(same), 1.0)
            n_neg = ops.maximum(pairs - ops.sum(same), 1.0)
            terms = terms * (0.5 * pairs) * (same / n_pos + (1.0 - same) / n_neg)
        return per_item(self, ops.sum(terms, axis=1), ops.size(same))

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "balanced": self.balanced}
