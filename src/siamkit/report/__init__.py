"""Run reports: one self-contained HTML file per run, a side-by-side comparison of runs, a projector export.

- `build`: a run's report (run card, curves, verification, failure
  galleries, confused classes, retrieval, neighbours, one-shot, an
  embedding map; cross-modal examples for two-tower runs);
- `compare`: several runs side by side;
- `write_projector`: embeddings for TensorBoard's projector, written
  without TensorFlow.

Example:

>>> from siamkit import report
>>> path, missing = report.build("runs/digits")   # doctest: +SKIP
"""

from .run_report import build
from .comparison import compare
from .projector import write_projector

__all__ = ["build", "compare", "write_projector"]
