"""The report's figures as inlined PNGs: evaluation's plots, training curves, overlaid ROC curves.

Example:

>>> uri = roc_uri([1, 0, 1, 0], [0.1, 0.7, 0.3, 0.5], higher_is_similar=False)   # doctest: +SKIP
>>> uri[:22]                                                                     # doctest: +SKIP
'data:image/png;base64,'
"""

import io
import os
import tempfile

from ..evaluation import plots, verification
from . import page


def _drawn(draw, *args, **kwargs):
    """A data URI of what `draw(..., path, ...)` (a function of `evaluation.plots`) writes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "figure.png")
        draw(*args, path, **kwargs)
        with open(path, "rb") as f:
            return page.data_uri(f.read())


def roc_uri(labels, scores, higher_is_similar=True):
    return _drawn(plots.plot_roc, labels, scores, higher_is_similar=higher_is_similar)


def det_uri(labels, scores, higher_is_similar=True):
    return _drawn(plots.plot_det, labels, scores, higher_is_similar=higher_is_similar)


def histogram_uri(labels, scores, thresholds, higher_is_similar=True, xlabel=None):
    """Score histograms with every threshold of `thresholds` (`{name: value}`) drawn."""
    return _drawn(
        plots.plot_score_histogram, labels, scores, threshold=thresholds, higher_is_similar=higher_is_similar,
        xlabel=xlabel, title="test pair scores and the thresholds chosen on validation",
    )


def _uri(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return page.data_uri(buffer.getvalue())


def curves_uris(history):
    """One figure per logged quantity (a loss with its `val_` twin), each value against the epoch."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row.get("epoch", i) + 1 for i, row in enumerate(history)]
    names = sorted({k for row in history for k in row if k != "epoch"})
    bases = sorted({n[4:] if n.startswith("val_") and n[4:] in names else n for n in names})
    figures = []
    for base in bases:
        fig = Figure(figsize=(4, 3))
        ax = fig.add_subplot()
        for name in (base, f"val_{base}"):
            if name in names:
                ax.plot(epochs, [row.get(name, float("nan")) for row in history], marker="o", ms=3, label=name)
        ax.set(xlabel="epoch", title=base)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figures.append((base, _uri(fig)))
    return figures


def roc_overlay_uri(curves):
    """ROC curves of several runs on one axes; `curves` is `[(name, labels, scores, higher_is_similar)]`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for name, labels, scores, higher in curves:
        far, tar, _ = verification.roc_curve(labels, scores, higher)
        ax.plot(far, tar, lw=2, label=f"{name} (AUC {verification.roc_auc(labels, scores, higher):.4f})")
    ax.plot([0, 1], [0, 1], ls="--", c="gray", lw=1)
    ax.set(xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)", xlim=(0, 1), ylim=(0, 1.01),
           title="ROC, held-out pairs")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _uri(fig)
