"""One-shot episodes given as files, in the layout of Lake et al.'s `all_runs`.

Each `runNN` folder holds `training/classNN.png` (one support image per
class), `test/itemNN.png` (the queries) and `class_labels.txt`, whose lines
are `test/itemNN.png training/classMM.png` (a query and its true class).
`read_lake_runs` reads the folders; `evaluate_lake_runs` scores them with
any `paths -> embeddings` function, as `siamkit evaluate --episodes-dir` does.

Example:

>>> runs = read_lake_runs("all_runs")                                     # doctest: +SKIP
>>> evaluate_lake_runs(runs, lambda paths: run.embed(run.read_inputs(paths)))["error"]   # doctest: +SKIP
7.5
"""

import dataclasses
import os
import re

import numpy as np

from ..errors import DataError
from .oneshot import Episodes, evaluate_episodes, mean_ci95

_RUN_DIR = re.compile(r"^run\d+$")


@dataclasses.dataclass
class LakeRun:
    """One run of Lake's layout: support files, query files, and the answers.

    Attributes:
        name: the run folder's name, e.g. `run01`.
        support: paths of `training/classNN.png`, sorted.
        query: paths of `test/itemNN.png`, sorted.
        answer: for each query, the position of its true class in `support`.
    """

    name: str
    support: list
    query: list
    answer: np.ndarray


def _resolve(run_dir, relative):
    """Lake's label files give paths from the run folder (or from its parent)."""
    for base in (run_dir, os.path.dirname(run_dir)):
        path = os.path.normpath(os.path.join(base, relative))
        if os.path.isfile(path):
            return path
    raise DataError(f"{os.path.join(run_dir, 'class_labels.txt')}: {relative!r} does not exist")


def read_lake_runs(folder):
    """Read every `runNN` folder of Lake's one-shot layout under `folder`.

    Each run has `training/classNN.png` (one support image per class),
    `test/itemNN.png` (the queries) and `class_labels.txt`, whose lines are
    `test/itemNN.png training/classMM.png` (query, its true class).

    Returns:
        A list of `LakeRun`, sorted by name.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"episodes folder {folder!r} does not exist")
    names = sorted(d for d in os.listdir(folder) if _RUN_DIR.match(d) and os.path.isdir(os.path.join(folder, d)))
    if not names:
        raise DataError(f"{folder!r} has no runNN folders (expected Lake's layout runNN/training, runNN/test)")
    return [_read_lake_run(os.path.join(folder, name)) for name in names]


def _read_lake_run(run_dir):
    labels_file = os.path.join(run_dir, "class_labels.txt")
    if not os.path.isfile(labels_file):
        raise DataError(f"{labels_file} is missing; each runNN folder needs a class_labels.txt")
    pairs = []
    with open(labels_file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                expected = "'test/itemNN.png training/classMM.png'"
                raise DataError(f"{labels_file}, line {number}: expected {expected}, got {line.strip()!r}")
            pairs.append(tuple(_resolve(run_dir, p) for p in fields))
    if not pairs:
        raise DataError(f"{labels_file} lists no queries")
    support = sorted({s for _, s in pairs})
    training = os.path.join(run_dir, "training")
    if os.path.isdir(training):  # classes that no query belongs to are still candidates
        files = {os.path.normpath(os.path.join(training, f)) for f in os.listdir(training) if f.endswith(".png")}
        support = sorted(set(support) | files)
    if len(support) < 2:
        raise DataError(f"{run_dir}: one-shot classification needs at least 2 support classes, found {len(support)}")
    pairs.sort()
    position = {path: i for i, path in enumerate(support)}
    return LakeRun(
        name=os.path.basename(run_dir),
        support=support,
        query=[q for q, _ in pairs],
        answer=np.array([position[s] for _, s in pairs], dtype="int64"),
    )


def evaluate_lake_runs(
    runs, embed, distance="euclidean", pair_score=None, higher_is_similar=True,
    local_scaling=0.0, scaling_neighbors=5,
):
    """Score Lake-layout runs with a model.

    Args:
        runs: the `LakeRun`s from `read_lake_runs`.
        embed: `f(paths) -> (n, dim)` embeddings of image files (read under
            the model's image policy).
        distance, pair_score, higher_is_similar, local_scaling,
            scaling_neighbors: as for `episode_scores`.

    Returns:
        A dict: `error` (mean error rate over runs, in %), `accuracy`,
        `ci95` (of the accuracy, over runs), and `runs`, a list of
        `{"run", "error", "queries", "ways"}` dicts.
    """
    rows = []
    for run in runs:
        z = embed(run.support + run.query)
        n = len(run.support)
        episode = Episodes(
            support=np.arange(n)[None, :, None],
            query=np.arange(n, n + len(run.query))[None, :],
            query_class=run.answer[None, :],
        )
        accuracy = evaluate_episodes(
            episode, z, distance, pair_score, higher_is_similar, local_scaling, scaling_neighbors
        )["accuracy"]
        rows.append({"run": run.name, "error": 100.0 * (1.0 - accuracy), "queries": len(run.query), "ways": n})
    accuracy, ci = mean_ci95([1.0 - r["error"] / 100.0 for r in rows])
    return {"error": 100.0 * (1.0 - accuracy), "accuracy": accuracy, "ci95": ci, "runs": rows}
