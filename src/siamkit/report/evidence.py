"""What a report shows about one run, computed once: held-out data, embeddings, pairs, neighbours, episodes.

Verification pairs and one-shot episodes are drawn exactly as `siamkit
evaluate` drew them (the seed, pair count and protocol recorded in
`eval/metrics.json`), so the report's numbers are those of the metrics file
and its galleries show the very pairs those numbers count.

Whatever cannot be computed (no held-out data, an older run without its
evaluation files) is recorded in `missing`, one line naming what is missing
and which sections are left out; the rest goes on.

Example:

>>> found = gather(Run("runs/digits"))        # doctest: +SKIP
>>> found.verification["metrics"]["eer"]      # doctest: +SKIP
0.02
"""

import csv
import dataclasses
import os
import re

import numpy as np

from .. import neighbors
from ..errors import SiamkitError
from ..evaluation import oneshot, pairs, retrieval, verification
from ..evaluation import report as evaluation
from ..runs import HISTORY_FILE, METRICS_FILE, Run

# Neighbours shown per query in the galleries (and looked up for every held-out sample).
NEIGHBORS = 8
# Episode sizes of the accuracy-by-ways table, beside the one `evaluate` used.
WAYS = (2, 5, 10, 20)
# Episodes per extra size of that table.
EXTRA_EPISODES = 500

_DATA_SECTIONS = "verification, failure galleries, confused classes, retrieval, nearest neighbours, one-shot, " \
                 "embedding map"


@dataclasses.dataclass
class Evidence:
    """Everything the sections of one run's report are drawn from (None where unavailable)."""

    run: Run
    metrics: dict = None
    history: list = None
    test: object = None
    embeddings: np.ndarray = None
    verification: dict = None
    retrieval: dict = None
    neighbors: tuple = None
    oneshot: dict = None
    crossmodal: dict = None
    missing: list = dataclasses.field(default_factory=list)

    @property
    def sample_rate(self):
        return self.run.config.get("sample_rate")


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):  # "NA" (Keras' CSVLogger for a value an epoch did not log), empty cells
        return None


def read_history(run):
    """Rows of `history.csv` as dicts of floats (keys: `epoch` and each logged number), or None when absent."""
    path = run.file(HISTORY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in ((k, _number(t)) for k, t in row.items()) if v is not None} for row in rows]


def read_metrics(run):
    """`eval/metrics.json` of the run, or None."""
    return run.read_json(os.path.join(evaluation.EVAL_DIR, METRICS_FILE))


def gather(run, dataset=None, data=None, progress=True, step=lambda name: None):
    """The evidence of one run.

    Args:
        run: a `Run` or its directory.
        dataset, data: held-out data other than the run's own (as for `siamkit evaluate`).
        progress: show progress bars on a terminal.
        step: called with the name of each step as it starts.

    Returns:
        An `Evidence`.
    """
    run = run if isinstance(run, Run) else Run(run)
    found = Evidence(run, metrics=read_metrics(run), history=read_history(run))
    if found.history is None:
        found.missing.append(f"{HISTORY_FILE} is missing from {run.path}: training curves left out")
    if found.metrics is None and not run.is_two_tower:  # two-tower runs are shown by their test split alone
        found.missing.append(
            f"{run.path} has no {evaluation.EVAL_DIR}/{METRICS_FILE} (run `siamkit evaluate {run.path}`): "
            "the metrics are computed here, verification only from calibration.json"
        )
    if run.is_two_tower:
        _crossmodal(found, step)
        return found
    seed = int((found.metrics or {}).get("seed", run.config.get("seed", 0)))
    step("held-out data")
    try:
        _, test = evaluation.holdout_data(run, dataset, data, seed)
        step("embedding")
        z = evaluation.embed_samples(run, test.x, "held-out data", progress=progress)
    except (SiamkitError, OSError) as err:
        found.missing.append(f"held-out data unavailable ({err}); pass --data or --dataset. Left out: {_DATA_SECTIONS}")
        return found
    found.test, found.embeddings = test, z
    step("verification")
    _verification(found, seed)
    step("retrieval")
    ks = [k for k in evaluation.RECALL_KS if k < len(test)]
    k = min(NEIGHBORS, len(test) - 1)
    try:
        found.retrieval = retrieval.retrieval_metrics(
            z, test.y, distance=run.distance, ks=ks, per_query=True, neighbors=k
        )
        found.neighbors = found.retrieval.pop("neighbors")
    except SiamkitError as err:  # no class with two samples: the neighbours alone
        found.missing.append(f"retrieval left out: {err}")
        if k >= 1:
            found.neighbors = neighbors.knn(z, z, k, run.distance, exclude_self=True)
    step("one-shot")
    _oneshot(found, seed)
    return found


def _calibration(found):
    """`(thresholds {method: value}, default method)` as `evaluate` used them, or None."""
    if found.metrics and "verification" in found.metrics:
        v = found.metrics["verification"]
        return {m: t["threshold"] for m, t in v["calibration"].items()}, v["default_threshold"]
    cal = found.run.calibration
    if cal:
        return {m: t["threshold"] for m, t in cal["thresholds"].items()}, cal["default"]
    return None


def _verification(found, seed):
    run, test = found.run, found.test
    cal = _calibration(found)
    if cal is None:
        found.missing.append(
            f"{run.path} has neither calibration.json nor verification metrics (run `siamkit evaluate`): "
            "verification and failure galleries left out"
        )
        return
    thresholds, default = cal
    recorded = (found.metrics or {}).get("verification", {})
    protocol = recorded.get("test_pairs", "")
    if protocol.startswith("pair CSV"):
        found.missing.append(
            f"the run was evaluated on a {protocol}, which the report does not re-read: verification and failure "
            "galleries left out (evaluate on held-out classes to see them)"
        )
        return
    all_pairs = protocol == "all pairs"
    n_pairs = int(recorded.get("n_pairs") or run.config.get("eval_pairs") or 2000)
    try:
        first, second, same = evaluation.draw_pairs(test.y, n_pairs, all_pairs, seed + 1)
    except SiamkitError as err:
        found.missing.append(f"verification left out: {err}")
        return
    scores = pairs.pair_scores(run.model.score_embeddings, found.embeddings, found.embeddings, first, second)
    higher = run.higher_is_similar
    found.verification = {
        "first": first, "second": second, "same": same, "scores": scores, "higher_is_similar": higher,
        "thresholds": thresholds, "default": default, "output_kind": run.model.output_kind,
        "protocol": protocol or ("all pairs" if all_pairs else f"balanced random pairs, seed {seed + 1}"),
        "metrics": verification.verification_metrics(same, scores, higher, thresholds),
    }


def _scoring(run, method):
    """One-shot scoring options as `evaluate` recorded them in `method` (see `oneshot.evaluate_episodes`)."""
    if method == "pair_score":
        return evaluation.oneshot_scoring(run, "pair", 0.0, 5)
    scaled = re.search(r"local scaling ([0-9.eE+-]+), k=(\d+)", method or "")
    if scaled:
        return evaluation.oneshot_scoring(run, "prototype", float(scaled.group(1)), int(scaled.group(2)))
    return evaluation.oneshot_scoring(run, "prototype", 0.0, 5)


def _oneshot(found, seed):
    """Accuracy by ways, the recorded N-way K-shot protocol among them, and its first episodes."""
    run, y = found.run, found.test.y
    recorded = {
        name: o for name, o in ((found.metrics or {}).get("oneshot") or {}).items()
        if "ways" in o and "queries_per_episode" in o
    }
    base = next(iter(recorded.values()), None)
    shots = base["shots"] if base else 1
    queries = base["queries_per_episode"] // base["ways"] if base else 1
    # without a record, as `evaluate`'s default ("auto"): the pair head for probability heads, else prototypes
    scoring = _scoring(run, base["method"] if base else "pair_score" if run.model.output_kind == "probability" else "")
    eligible = int(np.sum(np.unique(y, return_counts=True)[1] >= shots + queries))
    sizes = sorted({w for w in WAYS if w <= eligible} | ({base["ways"]} if base else set()))
    if not sizes:
        found.missing.append(f"one-shot left out: the held-out data has {eligible} classes with enough samples")
        return
    table, examples = [], None
    for ways in sizes:
        n = base["episodes"] if base and ways == base["ways"] else EXTRA_EPISODES
        episodes = oneshot.sample_episodes(y, ways, shots, n, queries, seed=seed + 2)
        result = oneshot.evaluate_episodes(episodes, found.embeddings, **scoring)
        result.pop("per_episode")
        result["recorded"] = bool(base and ways == base["ways"])
        table.append(result)
        if examples is None or result["recorded"]:
            scores = oneshot.episode_scores(episodes, found.embeddings, **scoring)
            examples = {"episodes": episodes, "scores": scores}
    found.oneshot = {"by_ways": table, "examples": examples, "shots": shots}


def _crossmodal(found, step):
    """Two-tower runs: the run's own test split, each tower's nearest items of the other's queries.

    Each side keeps what the report shows of an item: the image, the clip,
    the text itself, or a feature vector's file name.
    """
    from ..evaluation.crossmodal import two_tower_parts

    step("cross-modal retrieval")
    run = found.run
    try:
        parts = two_tower_parts(run.config)
    except (SiamkitError, OSError) as err:
        found.missing.append(f"held-out data unavailable ({err}): cross-modal retrieval examples left out")
        return
    names = parts["class_names"]
    sides, embedded = {}, {}
    for side, dataset in zip("ab", parts["loaded"]):
        part, modality = parts[side], run.modality(side)
        test = part["test"]
        if modality in ("image", "audio"):
            shown = part["x"][test]
        elif modality == "text":
            shown = [dataset.x[i] for i in test]
        else:  # a feature vector is shown by its file's name
            paths = dataset.meta.get("path")
            shown = [os.path.basename(str(paths[i])) if paths is not None else f"vector {i}" for i in test]
        sides[side] = {
            "modality": modality, "shown": shown,
            "labels": [names[y] if names else str(y) for y in part["y"][test]],
        }
        embedded[side] = run.embed(part["x"][test], side)
    k = min(NEIGHBORS, len(embedded["a"]), len(embedded["b"]))
    found.crossmodal = {
        "sides": sides, "sample_rate": run.config.get("sample_rate"),
        "a_to_b": neighbors.knn(embedded["a"], embedded["b"], k, run.distance),
        "b_to_a": neighbors.knn(embedded["b"], embedded["a"], k, run.distance),
    }
