"""The sections of one run's report, each drawn from an `Evidence` as HTML.

Each function returns the section's HTML, or None when the run has nothing
for it (what is missing is already in `Evidence.missing`).
"""

import importlib.metadata
import os
import platform

import numpy as np

from ..errors import SiamkitError
from ..runs import METRICS_FILE
from . import analysis, figures, media, projection
from .page import Raw, data_uri, esc, json_script, note, pct, table

# Pairs of each failure gallery, queries of the neighbour gallery, episodes and class pairs shown.
GALLERY = 12
QUERIES = 8
EPISODES = 3
CONFUSED = 10
# Packages whose versions the run card lists, when installed.
_PACKAGES = ("siamkit", "keras", "tensorflow", "jax", "torch", "numpy", "scikit-learn", "matplotlib")
# Options of the run card's summary, by the line they go on.
_CARD = {
    "data": ("dataset", "data", "subset", "data_b", "pairs_csv", "image_size", "channels"),
    "split": ("train_classes", "validation_classes", "test_classes", "validation", "validation_reason"),
    "encoder": ("encoder", "embedding_dim", "encoder_options", "ensemble"),
    "loss": ("loss", "margin", "mining", "temperature"),
    "distance": ("distance", "head"),
}


def _class_name(found, label):
    names = (found.test.info or {}).get("class_names") if found.test is not None else None
    if names is not None and 0 <= int(label) < len(names):
        return str(names[int(label)])
    return str(label)


def _sample(found, index, caption, cls="thumb"):
    return media.sample_html(found.test.x, int(index), caption, cls, found.sample_rate)


def _value(value):
    return ", ".join(str(v) for v in value) if isinstance(value, list) else "" if value is None else str(value)


def versions():
    """`{package: version}` of the installed packages of `_PACKAGES`."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def card(found):
    """The run card: data, split, encoder, loss, distance, training time, every option, versions, hardware."""
    config, run = found.run.config, found.run
    summary = run.read_json(METRICS_FILE) or {}
    rows = [["run", os.path.abspath(run.path)]]
    for line, keys in _CARD.items():
        given = [f"{k} = {_value(config[k])}" for k in keys if config.get(k) not in (None, {}, [])]
        rows.append([line, "; ".join(given) or "(not recorded)"])
    if "train_seconds" in summary:
        best = summary.get("best_epoch")  # 0-based, as Keras counts (one per ensemble member); the curves count from 1
        kept = [b for b in (best if isinstance(best, list) else [best]) if b is not None]
        rows.append(["training time", f"{summary['train_seconds']:.1f} s"
                     + (f", weights of epoch {', '.join(str(b + 1) for b in kept)} kept" if kept else "")])
    rows.append(["trained with", f"Keras backend {config.get('keras_backend', '(not recorded)')}"])
    rows.append(["report made with", ", ".join(f"{k} {v}" for k, v in versions().items())])
    rows.append(["report made on", f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                 f"{platform.system()} {platform.release()}, Python {platform.python_version()}"])
    options = table(["option", "value"], [[k, _value(v)] for k, v in sorted(config.items())])
    return table(None, rows, cls="card") + f"<details><summary>every resolved option</summary>{options}</details>"


def curves(found):
    if not found.history:
        return None
    images = "".join(f'<img src="{uri}" alt="training curve of {esc(name)}">'
                     for name, uri in figures.curves_uris(found.history))
    return f'<div class="figures">{images}</div>'


def _threshold_rows(v):
    rows = []
    for name, at in v["metrics"]["at_threshold"].items():
        chosen = " (default)" if name == v["default"] else ""
        rows.append([name + chosen, f"{at['threshold']:.4g}", pct(at["accuracy"]), f"{at['precision']:.4f}",
                     f"{at['recall']:.4f}", pct(at["far"]), f"{at['f1']:.4f}"])
    return rows


def verification_section(found):
    v = found.verification
    if v is None:
        return None
    m = v["metrics"]
    same, scores, higher = v["same"], v["scores"], v["higher_is_similar"]
    overview = table(
        ["pairs", "ROC AUC", "average precision", "EER"] + [f"TAR @ FAR {far}" for far in m["tar_at_far"]],
        [[f"{m['n_pairs']} ({v['protocol']})", f"{m['roc_auc']:.4f}", f"{m['average_precision']:.4f}",
          pct(m["eer"])] + [pct(t) for t in m["tar_at_far"].values()]],
        cls="verification-summary",
    )
    plots = (
        f'<img src="{figures.roc_uri(same, scores, higher)}" alt="ROC curve">'
        f'<img src="{figures.det_uri(same, scores, higher)}" alt="DET curve with the EER marked">'
        f'<img src="{figures.histogram_uri(same, scores, v["thresholds"], higher, v["output_kind"])}" '
        'alt="score histograms with the calibrated thresholds">'
    )
    thresholds = table(["threshold (chosen on validation)", "value", "accuracy", "precision", "recall", "FAR", "F1"],
                       _threshold_rows(v), cls="thresholds")
    oracle = m["oracle"]
    return (
        overview + f'<div class="figures">{plots}</div><h3>At each calibrated threshold</h3>' + thresholds
        + note(f"Best accuracy any threshold reaches on these test pairs: {pct(oracle['accuracy'])} "
               f"(threshold {oracle['threshold']:.4g}; a bound, not for decisions).")
    )


def failures(found):
    v = found.verification
    if v is None or getattr(found.test.x, "ndim", 0) < 2:
        return None
    threshold = v["thresholds"][v["default"]]
    accepts, rejects = analysis.hardest_errors(v["same"], v["scores"], threshold, v["higher_is_similar"])
    kind = v["output_kind"]
    parts = [note(f"At the {v['default']} threshold {threshold:.4g}: {len(accepts)} false accepts and "
                  f"{len(rejects)} false rejects among {len(v['same'])} test pairs; the hardest first.")]
    for title, chosen, key in (("Hardest false accepts (different classes, decided same)", accepts, "false-accepts"),
                               ("Hardest false rejects (same class, decided different)", rejects, "false-rejects")):
        cells = []
        for p in chosen[:GALLERY]:
            i, j = v["first"][p], v["second"][p]
            cells.append(
                f'<div class="pair" data-pair="{int(p)}">'
                + _sample(found, i, f"{_class_name(found, found.test.y[i])}")
                + _sample(found, j, f"{_class_name(found, found.test.y[j])}")
                + f"<figure><figcaption>{esc(kind)}<br>{v['scores'][p]:.4g}</figcaption></figure></div>"
            )
        body = "".join(cells) if cells else note("none")
        parts.append(f'<h3>{esc(title)}</h3><div class="gallery" id="{key}">{body}</div>')
    return "".join(parts)


def confusions(found):
    if found.neighbors is None:
        return None
    idx, _ = found.neighbors
    y = found.test.y
    pairs_ = analysis.confused_pairs(y, y[idx[:, 0]], top=CONFUSED)
    if not pairs_:
        return note("No held-out sample has a nearest neighbour of another class.")
    rows = []
    for a, b, count, examples in pairs_:
        q = examples[0]
        shown = _sample(found, q, _class_name(found, y[q])) + _sample(found, idx[q, 0], _class_name(found, y[idx[q, 0]]))
        rows.append([f"{_class_name(found, a)} / {_class_name(found, b)}", count, Raw(f'<div class="pair">{shown}</div>')])
    return note("Class pairs whose samples most often have their nearest neighbour in the other class.") + table(
        ["classes", "confusions", "example (query, its nearest neighbour)"], rows, cls="confused")


def retrieval_section(found):
    r = found.retrieval
    if r is None:
        return None
    ks = list(r["recall_at_k"])
    overall = table(
        ["queries", "P@1"] + [f"R@{k}" for k in ks] + ["R-precision", "MAP@R"],
        [[r["n_queries"], pct(r["precision_at_1"])] + [pct(r["recall_at_k"][k]) for k in ks]
         + [pct(r["r_precision"]), pct(r["map_at_r"])]],
        cls="retrieval-overall",
    )
    rows = [[_class_name(found, c["label"]), c["queries"], pct(c["precision_at_1"])]
            + [pct(c["recall_at_k"][k]) for k in ks] + [pct(c["map_at_r"])]
            for c in analysis.per_class_retrieval(r["per_query"], found.test.y)]
    per_class = table(["class", "queries", "P@1"] + [f"R@{k}" for k in ks] + ["MAP@R"], rows, cls="per-class")
    return overall + f"<h3>Per class, worst MAP@R first ({esc(found.run.distance)} distance)</h3>" + per_class


def neighbours(found, seed):
    if found.neighbors is None or getattr(found.test.x, "ndim", 0) < 2:
        return None
    idx, dist = found.neighbors
    y = found.test.y
    queries = np.sort(np.random.default_rng(seed).choice(len(y), size=min(QUERIES, len(y)), replace=False))
    rows = []
    for q in queries:
        cells = [_sample(found, q, f"query: {_class_name(found, y[q])}", "thumb"), '<span class="sep"></span>']
        for n, d in zip(idx[q], dist[q]):
            right = y[n] == y[q]
            cells.append(_sample(found, n, f"{_class_name(found, y[n])} {d:.3g}", "thumb " + ("right" if right else "wrong")))
        rows.append(f'<div class="row">{"".join(cells)}</div>')
    return note(f"Random held-out queries, then their {idx.shape[1]} nearest held-out samples with "
                f"{found.run.distance} distances; wrong classes framed red.") + "".join(rows)


def oneshot_section(found):
    o = found.oneshot
    if o is None:
        return None
    rows = [[f"{r['ways']}-way {r['shots']}-shot", r["episodes"], pct(r["accuracy"]), f"± {100 * r['ci95']:.2f}",
             r["method"], "eval/metrics.json" if r["recorded"] else ""] for r in o["by_ways"]]
    parts = [table(["episodes of", "episodes", "accuracy", "95% CI", "method", "as in"], rows, cls="oneshot")]
    ex = o["examples"]
    if getattr(found.test.x, "ndim", 0) >= 2:
        episodes, scores = ex["episodes"], ex["scores"]
        parts.append(f"<h3>Example episodes ({episodes.ways}-way {episodes.shots}-shot)</h3>")
        for e in range(min(EPISODES, len(episodes))):
            q = 0
            chosen, truth = int(scores[e, q].argmax()), int(episodes.query_class[e, q])
            query = episodes.query[e, q]
            cells = [_sample(found, query, f"query: {_class_name(found, found.test.y[query])}"),
                     '<span class="sep"></span>']
            for n in range(episodes.ways):
                s = episodes.support[e, n, 0]
                role = "chosen + true" if n == chosen == truth else "chosen" if n == chosen else "true" if n == truth else ""
                cls = "thumb right" if n == truth else "thumb chosen" if n == chosen else "thumb"
                cells.append(_sample(found, s, f"{_class_name(found, found.test.y[s])} {role}".strip(), cls))
            verdict = "correct" if chosen == truth else "wrong"
            parts.append(f'<div class="row episode" data-verdict="{verdict}">{"".join(cells)}</div>')
    return "".join(parts)


def embedding_map(found, method, seed, progress_bar):
    if found.embeddings is None:
        return None
    xy, name = projection.project(found.embeddings, method, seed)
    y = found.test.y
    labels = np.unique(y)
    data = {"x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
            "c": np.searchsorted(labels, y).tolist(), "id": list(range(len(y))),
            "names": [_class_name(found, c) for c in labels], "sprite": None, "cell": 0, "per_row": 1}
    if getattr(found.test.x, "ndim", 0) >= 3:
        cell = media.sprite_cell(found.test.x.shape[1:], len(y))
        try:
            png, per_row = media.sprite_png(found.test.x, cell, progress_bar)
            data.update(sprite=data_uri(png), cell=cell, per_row=per_row)
        except (OSError, ValueError, SiamkitError) as err:
            found.missing.append(f"thumbnails of the embedding map left out: an image could not be read ({err})")
    return (
        note(f"{name} projection of the {len(y)} held-out embeddings, coloured by class; hover a point to see it.")
        + '<div id="map-wrap"><canvas id="map-canvas" width="640" height="640"></canvas>'
        + '<div id="map-tip"><canvas></canvas><span></span></div></div><div class="legend" id="map-legend"></div>'
        + json_script("map-data", data)
    )


def crossmodal(found):
    c = found.crossmodal
    if c is None:
        return None
    rate, sides = c["sample_rate"], c["sides"]
    parts = []
    for key, query, ref in (("a_to_b", sides["a"], sides["b"]), ("b_to_a", sides["b"], sides["a"])):
        idx, dist = c[key]
        rows = []
        for q in range(0, len(query["labels"]), max(1, len(query["labels"]) // QUERIES))[:QUERIES]:
            cells = [media.item_html(query["modality"], query["shown"], q, f"query: {query['labels'][q]}",
                                     sample_rate=rate), '<span class="sep"></span>']
            for n, d in zip(idx[q], dist[q]):
                cls = "thumb " + ("right" if ref["labels"][n] == query["labels"][q] else "wrong")
                cells.append(media.item_html(ref["modality"], ref["shown"], n, f"{ref['labels'][n]} {d:.3g}", cls,
                                             rate))
            rows.append(f'<div class="row">{"".join(cells)}</div>')
        parts.append(f"<h3>{esc(query['modality'].capitalize())} to {esc(ref['modality'])}</h3>" + "".join(rows))
    return note(f"Test queries of one tower and the nearest items of the other ({found.run.distance} distance); "
                "wrong classes framed red. Audio is shown as a spectrogram with a player, text as itself, "
                "a feature vector by its file's name.") + "".join(parts)
