"""Where a benchmark writes its JSON results.

A full run writes into `benchmarks/results/`, the committed figures the
documentation quotes. A `--quick` run checks a script end to end and its
figures mean nothing, so it writes under `runs/benchmarks/` (relative to the
working directory) and refuses to write into `benchmarks/results/`.
"""

import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
QUICK_DIR = os.path.join("runs", "benchmarks")


def output_path(name, out=None, quick=False):
    """The JSON file a run writes: `out` if given, else `RESULTS/name`, or `QUICK_DIR/name` for a quick run.

    Raises SystemExit (an argparse-style message, status 2) when a quick run's
    `out` lies inside `RESULTS`.
    """
    if out is None:
        return os.path.join(QUICK_DIR if quick else RESULTS, name)
    results = os.path.realpath(RESULTS)
    if quick and os.path.commonpath([results, os.path.realpath(out)]) == results:
        raise SystemExit(
            f"error: --quick writes smoke-test figures, not results: {out} is inside {RESULTS}; "
            f"leave out the output option (default {os.path.join(QUICK_DIR, name)}) or choose a file elsewhere"
        )
    return out
