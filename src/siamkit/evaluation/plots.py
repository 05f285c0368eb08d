"""Evaluation figures, written as PNG files.

Figures are drawn on `matplotlib.figure.Figure` objects (the Agg renderer),
never through `pyplot`, so nothing needs a display and no global state
changes. Each function writes its file atomically and returns the path.

Example:

>>> plot_roc([1, 0, 1, 0], [0.1, 0.7, 0.3, 0.5], "roc.png", higher_is_similar=False)  # doctest: +SKIP
'roc.png'
"""

import statistics

import numpy as np

from .. import _io
from . import verification

# DET axes cover error rates in [_DET_MIN, 1 - _DET_MIN].
_DET_MIN = 1e-4
_DET_TICKS = (0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95)


def _figure(**kwargs):
    # Imported here: `import siamkit.evaluation` stays free of matplotlib until a figure is drawn.
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path):
    with _io.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def plot_roc(labels, scores, path, higher_is_similar=True, title="ROC"):
    """ROC curve (TAR against FAR) with its AUC; returns `path`."""
    far, tar, _ = verification.roc_curve(labels, scores, higher_is_similar)
    fig = _figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(far, tar, lw=2, label=f"AUC = {verification.roc_auc(labels, scores, higher_is_similar):.4f}")
    ax.plot([0, 1], [0, 1], ls="--", c="gray", lw=1, label="chance")
    ax.set(xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _probit(p):
    p = np.clip(np.asarray(p, dtype="float64"), _DET_MIN, 1 - _DET_MIN)
    return np.vectorize(statistics.NormalDist().inv_cdf)(p)


def plot_det(labels, scores, path, higher_is_similar=True, title="DET"):
    """Detection error trade-off (FRR against FAR, normal-deviate axes), EER marked."""
    far, tar, _ = verification.roc_curve(labels, scores, higher_is_similar)
    eer, _ = verification.eer(labels, scores, higher_is_similar)
    fig = _figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(_probit(far), _probit(1 - tar), lw=2, label="DET")
    ax.plot(_probit([_DET_MIN, 1 - _DET_MIN]), _probit([_DET_MIN, 1 - _DET_MIN]), ls=":", c="gray", lw=1)
    ax.plot(_probit(eer), _probit(eer), "o", c="C3", ms=8, label=f"EER = {100 * eer:.2f}%")
    ticks = _probit(_DET_TICKS)
    tick_labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.set_xticks(ticks, tick_labels)
    ax.set_yticks(ticks, tick_labels)
    ax.set(xlabel="false accept rate (%)", ylabel="false reject rate (%)", title=title)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_score_histogram(labels, scores, path, threshold=None, higher_is_similar=True, xlabel=None, title=None):
    """Histograms of same-class and different-class scores, threshold marked.

    `threshold` is one value, or `{name: value}` to draw several (each
    calibrated threshold, for example).
    """
    y, s = verification.check_pairs(labels, scores)
    fig = _figure(figsize=(6, 4))
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(s, bins=min(60, max(10, len(s) // 20)))
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label=f"same class ({int(y.sum())})")
    ax.hist(s[~y], bins=bins, alpha=0.6, density=True, label=f"different class ({int((~y).sum())})")
    marks = {} if threshold is None else threshold if isinstance(threshold, dict) else {"threshold": threshold}
    for (name, value), style in zip(marks.items(), ("--", ":", "-.", (0, (5, 1, 1, 1)))):
        ax.axvline(value, c="k", ls=style, label=f"{name} = {value:.4g}")
    kind = "similarity" if higher_is_similar else "distance"
    ax.set(xlabel=xlabel or kind, ylabel="density", title=title or f"pair {kind}s")
    ax.legend(fontsize="small", framealpha=0.8)
    return _save(fig, path)


def _show(ax, image, title, color=None):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_title(title, fontsize=8, color=color or "black")
    ax.set_xticks([])
    ax.set_yticks([])
    if color:
        for spine in ax.spines.values():
            spine.set(color=color, linewidth=3)


def plot_oneshot(support, query, chosen, true, path, scores=None, title=None):
    """One episode: the query, and the support set with the chosen and true classes framed.

    Args:
        support: images `(N, h, w[, c])` in [0, 1], one per class.
        query: the query image.
        chosen: index of the predicted class.
        true: index of the true class.
        path: output PNG.
        scores: optional `(N,)` similarities, printed under each support.
        title: figure title.
    """
    n = len(support)
    cols = min(n, 10)
    rows = -(-n // cols)
    fig = _figure(figsize=(1.2 * (cols + 2), 1.4 * rows + 0.6))
    grid = fig.add_gridspec(rows, cols + 2)
    _show(fig.add_subplot(grid[0, 0]), query, "query")
    for i in range(n):
        ax = fig.add_subplot(grid[i // cols, 2 + i % cols])
        label = "chosen + true" if i == chosen == true else "chosen" if i == chosen else "true" if i == true else f"{i}"
        color = "green" if i == true else "red" if i == chosen else None
        if scores is not None:
            label = f"{label}\n{scores[i]:.3g}"
        _show(ax, support[i], label, color)
    fig.suptitle(title or ("correct" if chosen == true else "wrong"), fontsize=10)
    return _save(fig, path)
