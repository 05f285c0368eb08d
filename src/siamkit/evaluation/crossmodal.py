"""Cross-modal retrieval: queries of one modality against references of the other.

A retrieved item is a hit when its class matches the query's (a spoken
"seven" should find handwritten sevens). Metrics are those of
`retrieval_metrics` in both directions; `recall_table` flattens the R@K.

For a trained two-tower run, `two_tower_parts` loads and splits its data as
training did, and `evaluate_two_tower` reports retrieval both ways and
verification across the modalities (ROC, EER, thresholds calibrated on
validation pairs).

Example:

>>> import numpy as np
>>> za = np.array([[1.0, 0.0], [0.0, 1.0]]); zb = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> m = crossmodal_retrieval(za, [0, 1], zb, [0, 1], distance="cosine", ks=(1,))
>>> m["b_to_a"]["recall_at_k"]["1"], m["a_to_b"]["recall_at_k"]["1"]
(1.0, 1.0)
"""

import numpy as np

from ..data import meta_field, split_two_tower
from ..datasets import encode_text, load_towers
from ..errors import DataError
from .calibration import calibrate, write_calibration
from .retrieval import retrieval_metrics
from .verification import verification_metrics

RECALL_KS = (1, 5, 10)


def crossmodal_retrieval(z_a, y_a, z_b, y_b, distance="cosine", ks=(1, 5, 10), names=("a", "b")):
    """Retrieval metrics from modality b to a and from a to b.

    Args:
        z_a, y_a: embeddings `(n_a, dim)` and class labels of modality a.
        z_b, y_b: embeddings `(n_b, dim)` and class labels of modality b.
        distance: a name of `siamkit.neighbors.DISTANCES`.
        ks: the K of R@K; each at most the size of the smaller side.
        names: names of the two modalities, used in the keys.

    Returns:
        `{"B_to_A": metrics, "A_to_B": metrics}` with `A`, `B` from `names`,
        each as returned by `retrieval_metrics` (`recall_at_k`,
        `precision_at_1`, `map_at_r`, ...).
    """
    a, b = names
    return {
        f"{b}_to_{a}": retrieval_metrics(z_b, y_b, z_a, y_a, distance=distance, ks=ks),
        f"{a}_to_{b}": retrieval_metrics(z_a, y_a, z_b, y_b, distance=distance, ks=ks),
    }


def recall_table(metrics):
    """`{"b_to_a": {"R@1": .., "R@5": ..}, ...}` from `crossmodal_retrieval`'s output."""
    return {
        direction: {f"R@{k}": value for k, value in m["recall_at_k"].items()} for direction, m in metrics.items()
    }


def evaluate_run(run, x_a, y_a, x_b, y_b, ks=(1, 5, 10), names=("a", "b"), batch_size=256):
    """Cross-modal retrieval of a two-tower `siamkit.runs.Run` on raw inputs.

    Embeds `x_a` with tower a and `x_b` with tower b, then calls
    `crossmodal_retrieval` with the run's distance.
    """
    z_a = run.embed(x_a, modality="a", batch_size=batch_size)
    z_b = run.embed(x_b, modality="b", batch_size=batch_size)
    return crossmodal_retrieval(z_a, y_a, z_b, y_b, distance=run.distance, ks=ks, names=names)


def side_names(modalities):
    """Names of the two sides in metric keys: their modalities, or `("a", "b")` when both are alike."""
    a, b = modalities
    return (a, b) if a != b else ("a", "b")


def tower_inputs(dataset, modality, config):
    """A loaded side as its tower's float32 inputs.

    Images and feature vectors as they are; audio (`Waveforms`, int16)
    scaled to [-1, 1) as `siamkit.audio.read_wav` reads files, and cut or
    zero-padded to `clip_seconds`; text as `siamkit.datasets.encode_text`
    byte codes of `text_length`.

    Args:
        dataset: a `siamkit.datasets.Dataset` of one side.
        modality: `"image"`, `"audio"`, `"text"` or `"features"`.
        config: the training config (`clip_seconds`, `text_length`).
    """
    if modality == "audio":
        from ..audio import fix_length

        rate = dataset.x.sample_rate
        return fix_length([c / np.float32(32768.0) for c in dataset.x], int(round(config["clip_seconds"] * rate)))
    if modality == "text":
        names = [f"{dataset.name}: {p}" for p in dataset.meta.get("path", [None] * len(dataset))]
        return encode_text(dataset.x, config["text_length"], names=names)
    return np.asarray(dataset.x, dtype="float32")


def two_tower_parts(config, run_dir=None):
    """The two sides of a two-tower config: loaded, split and ready for the towers.

    Training and `siamkit evaluate` both call it, so a run is evaluated on
    exactly the items it held out (`siamkit.data.split_two_tower`).

    Returns:
        `{"a": side, "b": side, "modalities": (a, b), "class_names": [...],
        "loaded": (dataset_a, dataset_b)}`, each side a dict of `x` (tower
        inputs), `y`, `meta`, `info` and the index arrays `train`, `val`, `test`.
    """
    loaded = load_towers({**config, "progress": config.get("progress", False)}, run_dir)
    groups = [meta_field(ds, config, "split_by") if config.get("split_by") in ds.meta else None for ds in loaded]
    if config.get("split_by") is not None and all(g is None for g in groups):
        raise DataError(f"split_by {config['split_by']!r} is a meta field of neither side; the sides have "
                        f"{sorted(set(loaded[0].meta) | set(loaded[1].meta))}")
    splits = split_two_tower(loaded[0].y, loaded[1].y, config, *groups)
    parts = {
        "modalities": tuple(ds.info["modality"] for ds in loaded), "class_names": loaded[0].info.get("class_names"),
        "loaded": loaded,
    }
    for side, ds, (train, val, test) in zip("ab", loaded, splits):
        parts[side] = {
            "x": tower_inputs(ds, ds.info["modality"], config), "y": ds.y, "meta": ds.meta, "info": ds.info,
            "train": train, "val": val, "test": test,
        }
    return parts


def cross_pairs(y_a, y_b, n_pairs, seed=0):
    """Balanced cross-modal verification pairs: `(index_a, index_b, same)`.

    Every pair is a random b-item with a random a-item of its class (even
    rows) or of another class (odd rows).
    """
    from ..data.crossmodal import CrossModalPairs

    rng = np.random.default_rng(seed)
    y_a, y_b = np.asarray(y_a), np.asarray(y_b)
    usable = np.flatnonzero(np.isin(y_b, y_a))
    index_b = usable[rng.integers(0, len(usable), n_pairs)]
    same = np.arange(n_pairs) % 2 == 0
    pool = CrossModalPairs(np.zeros(len(y_a)), y_a, np.zeros(len(y_b)), y_b, seed=seed)
    return pool.partners(y_b[index_b], same, rng), index_b, same.astype("int64")


def evaluate_two_tower(run, parts, n_pairs=2000, seed=0, ks=RECALL_KS, calibrate_run=True):
    """Cross-modal retrieval and verification of a two-tower run on its held-out items.

    Retrieval: every test item of one side queries the test items of the
    other, both ways (R@K, MAP@R; a hit shares the query's class).
    Verification: balanced cross-modal pairs (`cross_pairs`); thresholds are
    chosen on validation pairs (written to `calibration.json`) and applied
    to test pairs.

    Args:
        run: a two-tower `siamkit.runs.Run`.
        parts: `two_tower_parts` of its config.
        n_pairs: verification pairs per split.
        seed: seeds the pairs.
        ks: the K of R@K (those above the smaller test side are left out).
        calibrate_run: write the thresholds to the run's `calibration.json`.

    Returns:
        `{"retrieval": {direction: {"R@1": .., "map_at_r": ..}}, "verification": {...},
        "calibration": {...}}`.
    """
    a, b = parts["a"], parts["b"]
    names = side_names(parts["modalities"])

    def embed(side, idx, modality):
        return run.embed(side["x"][idx], modality)

    z = {(s, part): embed(parts[s], parts[s][part], s) for s in "ab" for part in ("val", "test")}
    smaller = min(len(a["test"]), len(b["test"]))
    ks = tuple(k for k in ks if k <= smaller) or (1,)
    details = crossmodal_retrieval(
        z["a", "test"], a["y"][a["test"]], z["b", "test"], b["y"][b["test"]], distance=run.distance, ks=ks,
        names=names,
    )
    retrieval = {
        direction: {**table, "map_at_r": details[direction]["map_at_r"]}
        for direction, table in recall_table(details).items()
    }
    out = {"retrieval": retrieval, "test_items": {"a": int(len(a["test"])), "b": int(len(b["test"]))}}
    model, higher = run.model, run.higher_is_similar

    def scored(part, pair_seed):
        ia, ib, same = cross_pairs(a["y"][a[part]], b["y"][b[part]], n_pairs, pair_seed)
        return same, model.score_embeddings(z["a", part][ia], z["b", part][ib])

    if len(a["val"]) and len(b["val"]) and len(np.unique(b["y"][b["val"]])) > 1:
        calibration = calibrate(*scored("val", seed), higher, output_kind=model.output_kind)
        if calibrate_run:
            write_calibration(run, calibration)
        thresholds = {name: t["threshold"] for name, t in calibration["thresholds"].items()}
        out["calibration"] = calibration["thresholds"]
    else:
        thresholds = {}
    if len(np.unique(b["y"][b["test"]])) > 1:
        out["verification"] = verification_metrics(*scored("test", seed + 1), higher, thresholds=thresholds)
    return out


def format_two_tower(metrics):
    """Lines for a terminal: R@K and MAP@R per direction, then verification."""
    lines = ["cross-modal retrieval on the held-out items (each side's test items query the other's):"]
    for direction, table in metrics["retrieval"].items():
        lines.append(f"  {direction:<20} " + "  ".join(f"{k} {v:.4f}" for k, v in table.items()))
    verification = metrics.get("verification")
    if verification:
        at = verification["at_threshold"].get("accuracy")
        lines.append(
            f"cross-modal verification: ROC AUC {verification['roc_auc']:.4f}  EER {verification['eer']:.4f}"
            + (f"  accuracy {at['accuracy']:.4f} at the validation threshold {at['threshold']:.4f}" if at else "")
        )
    return "\n".join(lines)
