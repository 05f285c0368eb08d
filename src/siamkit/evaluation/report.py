"""`evaluate_run`: every protocol on a trained run, written to `RUN_DIR/eval/`.

By default a run is evaluated on its own data, split as in training: the
validation set (held-out training classes, or held-out images of the
training classes; see `siamkit.data.resolve_validation`) only chooses
thresholds, and every reported number comes from the held-out (test)
classes. `verification.oracle` gives the best accuracy any threshold
reaches on the test pairs, beside the accuracy at the validation threshold,
to show what choosing the threshold on validation costs. `siamkit
evaluate` and `siamkit train` both call `evaluate_run`.

Outputs, in `RUN_DIR/eval/`: `metrics.json`, and the plots `roc.png`,
`det.png`, `scores.png` (verification) and `oneshot.png`; the thresholds go
to `RUN_DIR/calibration.json`.

Example:

>>> metrics = evaluate_run("runs/digits", protocol="all")   # doctest: +SKIP
>>> print(format_table(metrics))                             # doctest: +SKIP
"""

import dataclasses
import os

import numpy as np

from .. import _io
from ..data.splits import class_disjoint_split, resolve_validation, split_indices, validation_info
from ..datasets import Dataset, load_inputs
from ..errors import ConfigError, DataError, check_choice
from ..runs import METRICS_FILE, Run
from . import calibration as calibration_lib
from . import lake, oneshot, pairs, plots, retrieval, verification

PROTOCOLS = ("verification", "oneshot", "retrieval", "all")
EVAL_DIR = "eval"
DEFAULT_WAYS = 5
RECALL_KS = (1, 5, 10)


def _open(run):
    run = run if isinstance(run, Run) else Run(run)
    if run.is_two_tower:
        raise ConfigError(
            f"{run.path}: a two-tower run is evaluated across its modalities; use "
            "siamkit.evaluation.crossmodal.evaluate_two_tower (what `siamkit evaluate` runs for it)"
        )
    return run


def _own_data(config, dataset, data):
    return dataset in (None, config.get("dataset")) and data in (None, config.get("data"))


def holdout_data(run, dataset=None, data=None, seed=None):
    """`(validation, test)` `Dataset`s for evaluating `run`.

    With neither `dataset` nor `data` (or the run's own), the run's data is
    split exactly as in training (`siamkit.data.split_indices`):
    validation = held-out training classes or images of them (as the run
    was validated), test = the held-out classes. Other data is split by
    class into two seeded halves.

    Args:
        run: a `Run` or its directory.
        dataset: a standard dataset name.
        data: an image folder.
        seed: seed of the class split of other data (default: the run's).
    """
    run = _open(run)
    config = run.config
    if _own_data(config, dataset, data):
        full = _check_labelled(load_inputs(config), run)
        _, val_idx, test_idx = split_indices(full, config)
        expected = config.get("test_classes")
        if expected is not None and np.unique(full.y[test_idx]).tolist() != list(expected):
            raise DataError(
                f"{run.path}: the run's held-out classes {expected} are not those of its data now; "
                "the data changed since training (pass --dataset or --data to evaluate on other data)"
            )
        mode, reason = resolve_validation(full, config)
        validation = _labelled(full.subset(val_idx), mode, config.get("validation_reason", reason))
        return validation, full.subset(test_idx)
    # Other data: resized to the model's input, split by class into validation and test halves.
    h, w, c = run.input_shape
    other = {**config, "dataset": dataset, "data": data, "data_b": None, "pairs_csv": None, "subset": None}
    full = _check_labelled(load_inputs({**other, "image_size": (h, w), "channels": c}), run)
    seed = config.get("seed", 0) if seed is None else seed
    val_idx, test_idx = class_disjoint_split(full.y, (0.5, 0.5), seed=seed)
    halves = "the data is split by class into validation and test halves"
    validation = _labelled(full.subset(val_idx), "classes", halves)
    return validation, full.subset(test_idx)


def _labelled(validation, mode, reason):
    """`validation` with how it was drawn in its `info` (see `siamkit.data.validation_info`)."""
    return dataclasses.replace(validation, info={**validation.info, **validation_info(mode, reason)})


def _check_labelled(loaded, run):
    if not isinstance(loaded, Dataset):
        raise ConfigError(
            f"{run.path}: the run's data is a pair CSV or two paired folders, not labelled classes; "
            "evaluate it on a labelled set with --dataset or --data, or score pairs with --pairs-csv"
        )
    return loaded


def embed_samples(run, x, what, block=1024, progress=False):
    """Embeddings of `x`, an array or a lazy store of images, decoded a block at a time.

    Args:
        run: a `Run`.
        x: an input array, or an indexable store of images.
        what: names `x` in an error.
        block: samples per block (a multiple of the run's batch of 256, so blocks batch as one call would).
        progress: show a progress bar on a terminal (then arrays go by blocks too).
    """
    if isinstance(x, np.ndarray) and not progress:
        return run.embed(x)
    if not hasattr(x, "__getitem__") or getattr(x, "ndim", None) != len(run.input_shape) + 1:
        raise DataError(f"{what}: only image arrays can be evaluated by this run, got {type(x).__name__}")
    from ..datasets._progress import progress as progress_bar

    starts = progress_bar(range(0, len(x), block), f"embedding {what}", progress, unit="block")
    return np.concatenate([run.embed(np.asarray(x[i : i + block])) for i in starts])


def _describe(ds):
    return {"name": ds.name, "samples": len(ds), "classes": int(ds.num_classes)}


def _described(validation):
    """How the validation data was drawn (`validation`, `validation_reason`), when it says."""
    return {key: validation.info[key] for key in ("validation", "validation_reason") if key in validation.info}


def draw_pairs(y, n_pairs, all_pairs, seed):
    """`(first, second, same)`: every pair of `y`, or `n_pairs` balanced random pairs drawn with `seed`."""
    if all_pairs:
        return pairs.all_pairs(y)
    return pairs.random_pairs(y, n_pairs, seed)


def _verification(
    run, z_val, val, z_test, test, csv_pairs, n_pairs, all_pairs, target_far, seed, out, plot, calibrate_run
):
    score = run.model.score_embeddings
    higher = run.higher_is_similar
    i, j, val_same = draw_pairs(val.y, n_pairs, all_pairs, seed)
    val_scores = pairs.pair_scores(score, z_val, z_val, i, j)
    protocol = "all pairs" if all_pairs else f"{len(val_same)} balanced random pairs, seed {seed}"
    # Own data: the validation pairs of the run's further class folds (`calibration_folds`) join fold 0's.
    fold_pairs = calibration_lib.read_fold_pairs(run.path) if calibrate_run else None
    if fold_pairs is not None:
        labels, scores, fold = fold_pairs
        val_same, val_scores = np.concatenate([val_same, labels]), np.concatenate([val_scores, scores])
        protocol += f", and {len(labels)} pairs of {len(np.unique(fold))} further class folds scored in training"
    cal = calibration_lib.calibrate(
        val_same, val_scores, higher, target_far=target_far, output_kind=run.model.output_kind
    )
    cal["protocol"] = protocol
    cal["validation_folds"] = 1 if fold_pairs is None else 1 + len(np.unique(fold_pairs[2]))
    cal.update(_described(val))
    calibration_file = calibration_lib.write_calibration(run, cal) if calibrate_run else None
    if csv_pairs is not None:
        z_a = embed_samples(run, csv_pairs.x_a, "pairs")
        z_b = z_a if csv_pairs.same_pool else embed_samples(run, csv_pairs.x_b, "pairs")
        test_same = np.asarray(csv_pairs.y)
        test_scores = pairs.pair_scores(score, z_a, z_b, csv_pairs.index_a, csv_pairs.index_b)
        source = f"pair CSV {csv_pairs.name}"
    else:
        i, j, test_same = draw_pairs(test.y, n_pairs, all_pairs, seed + 1)
        test_scores = pairs.pair_scores(score, z_test, z_test, i, j)
        source = "all pairs" if all_pairs else f"balanced random pairs, seed {seed + 1}"
    thresholds = {m: calibration_lib.threshold(cal, m) for m in cal["thresholds"]}
    result = {
        "test_pairs": source,
        "output_kind": run.model.output_kind,
        "higher_is_similar": higher,
        "calibration": {m: {k: v for k, v in t.items() if k != "method"} for m, t in cal["thresholds"].items()},
        "default_threshold": cal["default"],
        "validation_folds": cal["validation_folds"],
        "calibration_file": calibration_file,
        **verification.verification_metrics(test_same, test_scores, higher, thresholds),
    }
    figures = {}
    if plot:
        figures["roc"] = plots.plot_roc(test_same, test_scores, os.path.join(out, "roc.png"), higher)
        figures["det"] = plots.plot_det(test_same, test_scores, os.path.join(out, "det.png"), higher)
        figures["scores"] = plots.plot_score_histogram(
            test_same, test_scores, os.path.join(out, "scores.png"), thresholds[cal["default"]], higher,
            xlabel=run.model.output_kind, title=f"test pair {run.model.output_kind}s, validation threshold",
        )
    return result, figures


def oneshot_scoring(run, method, local_scaling, scaling_neighbors):
    """How one-shot scores a query: keyword arguments of `oneshot.evaluate_episodes`."""
    check_choice("one-shot method", method, ("auto", "prototype", "pair"))
    local_scaling, scaling_neighbors = oneshot.check_scaling(local_scaling, scaling_neighbors)
    scoring = {"distance": run.distance, "local_scaling": local_scaling, "scaling_neighbors": scaling_neighbors}
    if method == "pair" or method == "auto" and run.model.output_kind == "probability":
        if local_scaling:
            raise ConfigError(
                f"local scaling corrects distances to prototypes, but this run's one-shot method scores pairs with "
                f"its {run.model.output_kind} head: add --oneshot-method prototype, or drop --local-scaling"
            )
        return {**scoring, "pair_score": run.model.score_embeddings, "higher_is_similar": run.higher_is_similar}
    return scoring


def _oneshot_figure(test, z_test, episodes, scoring, path):
    first = oneshot.Episodes(episodes.support[:1], episodes.query[:1], episodes.query_class[:1])
    scores = oneshot.episode_scores(first, z_test, **scoring)[0]
    chosen = scores.argmax(axis=1)
    truth = episodes.query_class[0]
    wrong = np.flatnonzero(chosen != truth)
    q = int(wrong[0]) if len(wrong) else 0
    support, query = np.asarray(test.x[episodes.support[0, :, 0]]), np.asarray(test.x[episodes.query[0, q]])
    verdict = "correct" if chosen[q] == truth[q] else "wrong"
    title = f"{episodes.ways}-way {episodes.shots}-shot episode: {verdict} (scores: higher = more similar)"
    return plots.plot_oneshot(support, query, int(chosen[q]), int(truth[q]), path, scores=scores[q], title=title)


def _omniglot(test, z_test, scoring, seed):
    """Lake et al.'s protocol on the held-out evaluation-set alphabets with 20+ characters."""
    keep = test.meta["split"] == 1 if "split" in test.meta else np.ones(len(test), bool)
    alphabet, drawer, y = test.meta["alphabet"], test.meta["drawer"], test.y
    usable = [
        a for a in np.unique(alphabet[keep])
        if len(np.unique(y[keep & (alphabet == a)])) >= 20 and len(np.unique(drawer[keep & (alphabet == a)])) >= 2
    ]
    if not usable:
        return {"skipped": "no held-out evaluation alphabet has 20 characters"}
    idx = np.flatnonzero(keep & np.isin(alphabet, usable))
    trials = oneshot.omniglot_episodes(y[idx], alphabet[idx], drawer[idx], 20 * len(usable), 20, seed=seed)
    # Episodes index the kept samples; map them back to rows of `z_test`.
    episodes = oneshot.Episodes(idx[trials.support], idx[trials.query], trials.query_class)
    result = oneshot.evaluate_episodes(episodes, z_test, **scoring)
    result.pop("per_episode")
    return {**result, "alphabets": len(usable)}


def _oneshot(run, z_test, test, ways, shots, n_episodes, queries, episodes_dir, scoring, invert, seed, out, plot):
    result, figures = {}, {}
    if ways is None:
        eligible = int(np.sum(np.unique(test.y, return_counts=True)[1] >= shots + queries))
        ways = max(2, min(DEFAULT_WAYS, eligible))
    episodes = oneshot.sample_episodes(test.y, ways, shots, n_episodes, queries, seed=seed)
    nway = oneshot.evaluate_episodes(episodes, z_test, **scoring)
    nway.pop("per_episode")
    result[f"{ways}-way {shots}-shot"] = nway
    if test.name == "omniglot" and {"alphabet", "drawer"} <= set(test.meta):
        result["omniglot within-alphabet 20-way"] = _omniglot(test, z_test, scoring, seed)
    if episodes_dir is not None:
        runs = lake.read_lake_runs(episodes_dir)
        result["episode files"] = {
            "folder": os.fspath(episodes_dir),
            **lake.evaluate_lake_runs(
                runs, lambda paths: run.embed(run.read_inputs(paths, invert=invert)), **scoring
            ),
        }
    if plot and getattr(test.x, "ndim", None) == 4:
        figures["oneshot"] = _oneshot_figure(test, z_test, episodes, scoring, os.path.join(out, "oneshot.png"))
    return result, figures


def evaluate_run(
    run,
    protocol="all",
    validation=None,
    test=None,
    dataset=None,
    data=None,
    csv_pairs=None,
    n_pairs=None,
    all_pairs=False,
    target_far=1e-3,
    ways=None,
    shots=1,
    episodes=1000,
    queries=1,
    episodes_dir=None,
    oneshot_method="auto",
    local_scaling=0.0,
    scaling_neighbors=5,
    invert=None,
    seed=None,
    plot=True,
):
    """Evaluate a run; write `eval/metrics.json`, the plots and `calibration.json`.

    `calibration.json` is written when the thresholds come from the run's own
    validation data (given, or its training data), not from other data.

    Args:
        run: a `Run` or its directory.
        protocol: `"verification"`, `"oneshot"`, `"retrieval"` or `"all"`.
        validation: a `Dataset` for choosing thresholds (held-out classes or
            images of the training classes; its `info` may say which, see
            `siamkit.data.validation_info`); with `test`, skips loading data.
        test: a `Dataset` of held-out classes, which every metric is
            computed on.
        dataset, data: evaluate on another standard dataset or image folder
            (see `holdout_data`) instead of the run's own held-out data.
        csv_pairs: a `siamkit.datasets.Pairs` (a user's pair CSV) to score
            instead of random test pairs; thresholds still come from `validation`.
        n_pairs: random pairs per split (default: the run's `eval_pairs`, 2000).
        all_pairs: score every pair of each split instead (small sets).
        target_far: the FAR of the `"far"` threshold.
        ways, shots, episodes, queries: the N-way K-shot protocol; `ways`
            defaults to 5 (fewer when fewer classes are held out).
        episodes_dir: a folder of Lake-layout `runNN` episodes to score.
        oneshot_method: `"prototype"` (nearest class mean embedding),
            `"pair"` (pair head score) or `"auto"` (pair head for
            probability heads, else prototypes).
        local_scaling, scaling_neighbors: a hubness correction of prototype
            distances (see `oneshot.episode_scores`); 0 turns it off.
        invert: for image files read from `episodes_dir` (see `Run.read_inputs`).
        seed: seeds every draw (default: the run's `seed`).
        plot: write the figures.

    Returns:
        The metrics dict also written to `RUN_DIR/eval/metrics.json`.
    """
    check_choice("protocol", protocol, PROTOCOLS)
    run = _open(run)
    scoring = oneshot_scoring(run, oneshot_method, local_scaling, scaling_neighbors)
    seed = int(run.config.get("seed", 0) if seed is None else seed)
    n_pairs = int(n_pairs or run.config.get("eval_pairs") or 2000)
    if (validation is None) != (test is None):
        raise ConfigError("pass both validation and test data, or neither")
    given = validation is not None
    if not given:
        validation, test = holdout_data(run, dataset, data, seed)
    out = run.file(EVAL_DIR)
    os.makedirs(out, exist_ok=True)
    wanted = PROTOCOLS[:3] if protocol == "all" else (protocol,)

    z_test = embed_samples(run, test.x, "test data")
    metrics = {
        "run": run.path,
        "model_sha256": run.fingerprint(),
        "protocol": protocol,
        "seed": seed,
        "data": {"validation": _describe(validation), "test": _describe(test)},
        **_described(validation),
    }
    figures = {}
    if "verification" in wanted:
        z_val = embed_samples(run, validation.x, "validation data")
        metrics["verification"], made = _verification(
            run, z_val, validation, z_test, test, csv_pairs, n_pairs, all_pairs, target_far, seed, out, plot,
            calibrate_run=given or _own_data(run.config, dataset, data),
        )
        figures.update(made)
    if "oneshot" in wanted:
        metrics["oneshot"], made = _oneshot(
            run, z_test, test, ways, shots, episodes, queries, episodes_dir, scoring, invert, seed + 2, out, plot,
        )
        figures.update(made)
    if "retrieval" in wanted:
        ks = [k for k in RECALL_KS if k < len(test)]
        metrics["retrieval"] = {
            "distance": run.distance,
            **retrieval.retrieval_metrics(z_test, test.y, distance=run.distance, ks=ks),
        }
    metrics["plots"] = {name: os.path.relpath(path, run.path) for name, path in figures.items()}
    _io.write_json(os.path.join(out, METRICS_FILE), metrics)
    return metrics


def _pct(value):
    return f"{100 * value:6.2f}%"


def format_table(metrics):
    """A short text table of `evaluate_run`'s metrics."""
    lines = []
    test = metrics["data"]["test"]
    lines.append(f"test data: {test['name']}, {test['samples']} samples of {test['classes']} held-out classes")
    v = metrics.get("verification")
    if v:
        lines.append(f"verification ({v['n_pairs']} test pairs: {v['test_pairs']})")
        lines.append(f"  {'ROC AUC':<30}{v['roc_auc']:7.4f}")
        lines.append(f"  {'average precision':<30}{v['average_precision']:7.4f}")
        lines.append(f"  {'EER':<30}{_pct(v['eer'])}")
        for far, tar in v["tar_at_far"].items():
            lines.append(f"  {'TAR @ FAR ' + far:<30}{_pct(tar)}")
        for name, at in v["at_threshold"].items():
            label = f"accuracy @ {name} threshold"
            lines.append(f"  {label:<30}{_pct(at['accuracy'])}  (threshold {at['threshold']:.4g}, F1 {at['f1']:.3f})")
        oracle = v["oracle"]
        lines.append(
            f"  {'accuracy, oracle threshold':<30}{_pct(oracle['accuracy'])}  (threshold {oracle['threshold']:.4g} "
            "chosen on the test pairs: a bound, not for decisions)"
        )
        if "validation" in metrics:
            lines.append(f"  thresholds chosen on validation pairs of {metrics['validation'].replace('-', ' ')} "
                         f"({metrics['validation_reason']})")
    for name, o in (metrics.get("oneshot") or {}).items():
        if "skipped" in o:
            lines.append(f"one-shot {name}: skipped ({o['skipped']})")
        elif "error" in o:
            lines.append(f"one-shot {name}: error {o['error']:.2f}% over {len(o['runs'])} runs")
        else:
            lines.append(
                f"one-shot {name} ({o['episodes']} episodes): accuracy {_pct(o['accuracy'])} +- {100 * o['ci95']:.2f}"
            )
    r = metrics.get("retrieval")
    if r:
        recalls = "  ".join(f"R@{k} {100 * val:.2f}" for k, val in r["recall_at_k"].items())
        lines.append(
            f"retrieval ({r['n_queries']} queries, {r['distance']}): P@1 {100 * r['precision_at_1']:.2f}  "
            f"{recalls}  R-prec {100 * r['r_precision']:.2f}  MAP@R {100 * r['map_at_r']:.2f}"
        )
    return "\n".join(lines)
