"""`compare`: several runs side by side in one HTML file.

Their options (rows that differ highlighted), their metrics, their ROC
curves on one plot, and per-class retrieval with each run's difference from
the first.

Example:

>>> path, missing = compare(["runs/a", "runs/b"], "comparison.html")   # doctest: +SKIP
"""

import os

from .. import _io
from ..errors import ConfigError
from ..runs import METRICS_FILE, Run
from . import analysis, evidence, figures, page
from .run_report import Steps
from .page import note, pct, table


def _names(runs):
    names = [os.path.basename(os.path.abspath(r.path)) for r in runs]
    return [f"{n} ({i + 1})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _options(found, names):
    configs = [f.run.config for f in found]
    keys = sorted({k for c in configs for k in c})
    rows, classes = [], []
    for key in keys:
        values = [str(c.get(key, "")) for c in configs]
        rows.append([key, *values])
        classes.append("differs" if len(set(values)) > 1 else "")
    return note("Rows that differ between the runs are highlighted.") + table(["option", *names], rows, classes)


def _metric_rows(f):
    v = f.verification["metrics"] if f.verification else {}
    r = f.retrieval or {}
    recorded = [o for o in (f.oneshot or {}).get("by_ways", []) if o["recorded"]]
    default = f.verification["default"] if f.verification else None
    train = f.run.read_json(METRICS_FILE) or {}
    return {
        "ROC AUC": f"{v['roc_auc']:.4f}" if v else "",
        "average precision": f"{v['average_precision']:.4f}" if v else "",
        "EER": pct(v["eer"]) if v else "",
        "accuracy at the default threshold": pct(v["at_threshold"][default]["accuracy"]) if v else "",
        "P@1": pct(r["precision_at_1"]) if r else "",
        **{f"R@{k}": pct(val) for k, val in r.get("recall_at_k", {}).items()},
        "MAP@R": pct(r["map_at_r"]) if r else "",
        "one-shot": "; ".join(f"{o['ways']}-way {pct(o['accuracy'])}" for o in recorded),
        "training time": f"{train['train_seconds']:.1f} s" if "train_seconds" in train else "",
    }


def _metrics(found, names):
    columns = [_metric_rows(f) for f in found]
    keys = list(dict.fromkeys(k for c in columns for k in c))
    return table(["metric", *names], [[k, *(c.get(k, "") for c in columns)] for k in keys])


def _per_class(found, names):
    tables = [
        {row["label"]: row["map_at_r"] for row in analysis.per_class_retrieval(f.retrieval["per_query"], f.test.y)}
        if f.retrieval else {} for f in found
    ]
    labels = sorted({c for t in tables for c in t}, key=str)
    if not labels:
        return None
    base = tables[0]

    def change(c):
        return max((abs(t[c] - base[c]) for t in tables[1:] if c in t and c in base), default=0.0)

    rows = []
    for c in sorted(labels, key=lambda c: -change(c)):
        values = [pct(t[c]) if c in t else "" for t in tables]
        diffs = [f"{100 * (t[c] - base[c]):+.2f}" if c in t and c in base else "" for t in tables[1:]]
        rows.append([c, *values, *diffs])
    header = ["class", *(f"MAP@R {n}" for n in names), *(f"{n} − {names[0]}" for n in names[1:])]
    return note("Per-class MAP@R of each run, largest change first (points of percentage).") + table(header, rows)


def compare(runs, out, dataset=None, data=None, progress=True):
    """Write a comparison of runs.

    Args:
        runs: two or more `Run`s or run directories.
        out: the HTML file.
        dataset, data: held-out data other than each run's own.
        progress: show progress bars on a terminal.

    Returns:
        `(path, missing)`: the file written, and a line for each thing left out.
    """
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    if len(runs) < 2:
        raise ConfigError(f"a comparison needs two runs or more, got {len(runs)}")
    names = _names(runs)
    steps = Steps(progress, total=len(runs) * 5)
    try:
        found = [evidence.gather(r, dataset, data, progress, steps) for r in runs]
    finally:
        steps.close()
    missing = [f"{n}: {line}" for n, f in zip(names, found) for line in f.missing]
    curves = [(n, f.verification["same"], f.verification["scores"], f.verification["higher_is_similar"])
              for n, f in zip(names, found) if f.verification]
    parts = [
        ("options", "Options", _options(found, names)),
        ("metrics", "Metrics", _metrics(found, names)),
        ("roc", "ROC curves", f'<div class="figures"><img src="{figures.roc_overlay_uri(curves)}" '
                              'alt="ROC curves of the runs"></div>' if curves else None),
        ("per-class", "Per class", _per_class(found, names)),
    ]
    html = page.page(f"siamkit comparison: {', '.join(names)}", [p for p in parts if p[2] is not None], missing,
                     subtitle=" · ".join(os.path.abspath(r.path) for r in runs))
    _io.write_text(os.fspath(out), html)
    return os.fspath(out), missing
