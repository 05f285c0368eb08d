"""`build`: one run's report as a single self-contained HTML file.

Sections, each present when the run has the data for it: the run card,
training curves, verification (ROC, DET with the EER, score histograms
with the calibrated thresholds, the table at each threshold), failure
galleries, the most confused class pairs, retrieval overall and per class,
nearest-neighbour galleries, one-shot accuracy by ways with example
episodes, an embedding map, and for two-tower runs cross-modal retrieval
examples both ways. What is left out, and why, is listed at the top.

Example:

>>> path = build("runs/digits")     # doctest: +SKIP
>>> path                            # doctest: +SKIP
'runs/digits/report.html'
"""

import os

from .. import _io
from ..datasets._progress import progress as progress_bar
from ..runs import REPORT_FILE, Run
from . import evidence, page, sections

STEPS = ("held-out data", "embedding", "verification", "retrieval", "one-shot", "figures and galleries",
         "embedding map")


class Steps:
    """A progress bar over the report's steps, shown on a terminal."""

    def __init__(self, enabled, total=len(STEPS)):
        self.bar = progress_bar(None, "report", enabled, total=total, unit="step")

    def __call__(self, name):
        self.bar.set_postfix_str(name)
        self.bar.update(1)

    def close(self):
        self.bar.close()


def build(run, out=None, dataset=None, data=None, projection="auto", seed=None, progress=True):
    """Write the report of one run.

    Args:
        run: a `Run` or its directory.
        out: the HTML file (default: `RUN_DIR/report.html`).
        dataset, data: held-out data other than the run's own (a standard
            dataset name or an image folder, as for `siamkit evaluate`).
        projection: the embedding map's method: `"auto"`, `"umap"`,
            `"tsne"` or `"pca"` (see `siamkit.report.projection`).
        seed: seed of the sample queries and the projection (default: the run's).
        progress: show progress bars on a terminal.

    Returns:
        `(path, missing)`: the file written, and a line for each thing left out.
    """
    run = run if isinstance(run, Run) else Run(run)
    out = os.fspath(out) if out is not None else run.file(REPORT_FILE)
    seed = int(run.config.get("seed", 0) if seed is None else seed)
    steps = Steps(progress)
    try:
        found = evidence.gather(run, dataset, data, progress, steps)
        steps("figures and galleries")
        parts = [
            ("card", "Run", sections.card(found)),
            ("curves", "Training curves", sections.curves(found)),
            ("verification", "Verification", sections.verification_section(found)),
            ("failures", "Failure galleries", sections.failures(found)),
            ("confusions", "Most confused classes", sections.confusions(found)),
            ("retrieval", "Retrieval", sections.retrieval_section(found)),
            ("neighbours", "Nearest neighbours", sections.neighbours(found, seed)),
            ("oneshot", "One-shot", sections.oneshot_section(found)),
            ("crossmodal", "Cross-modal retrieval", sections.crossmodal(found)),
        ]
        steps("embedding map")
        sprite_bar = lambda items: progress_bar(items, "thumbnails", progress, unit="image")  # noqa: E731
        parts.append(("map", "Embedding map", sections.embedding_map(found, projection, seed, sprite_bar)))
    finally:
        steps.close()
    shown = [part for part in parts if part[2] is not None]
    name = os.path.basename(os.path.abspath(run.path))
    html = page.page(f"siamkit report: {name}", shown, found.missing, subtitle=os.path.abspath(run.path))
    _io.write_text(out, html)
    return out, found.missing
