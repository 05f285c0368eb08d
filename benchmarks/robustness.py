"""Robustness benchmark: fuzzed readers and interrupted commands, counted.

One run measures:

- per reader of user input (images, WAV, pair CSVs, TOML configs, index
  directories, `.npz` inputs, `.npy`/`.npz` feature vectors, the service's
  request bodies): the fuzz inputs tried under the `long` Hypothesis
  profile (`tests/test_fuzz.py`), the failure classes found and fixed (the cases of
  `tests/test_fuzz_regressions.py`, named `test_READER_...`), and the
  crashes remaining (readers whose fuzz test fails; target 0);
- per interruption case (`tests/test_interruptions.py`: `siamkit index add`
  and `remove` stopped by SIGKILL, SIGTERM or SIGINT; `siamkit embed`,
  `index build` and `train`, Siamese and two-tower, stopped by SIGKILL,
  SIGTERM or SIGINT, then rerun; `siamkit serve` killed during
  `POST /v1/index/items`): the stops sent to a running process, how many
  left the old index (then finished by a rerun) or the new one, how many
  reruns equal the uninterrupted result, and the runs that differ (target 0);
- with `--atheris SECONDS` (needs `pip install atheris`): coverage-guided
  fuzzing of the file readers by `benchmarks/fuzz_atheris.py`, SECONDS per
  reader; its executions and crashes per reader.

Usage:

    python benchmarks/robustness.py            # long profile, 10 stops per case
    python benchmarks/robustness.py --quick    # ci profile, 2 stops per case, no trained model (about 2 minutes)
    python benchmarks/robustness.py --stops 5 --atheris 60

It prints a table and writes `benchmarks/results/robustness.json`; a
`--quick` run writes `runs/benchmarks/robustness.json` instead."""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _output import output_path  # noqa: E402

REPO = os.path.dirname(HERE)
READERS = ("images", "wav", "pair_csv", "toml", "index", "npz", "features", "service")
# The fuzz test of each reader.
FUZZ_TESTS = {
    "images": "test_image_decoding",
    "wav": "test_wav_decoding",
    "pair_csv": "test_pair_csv_reading",
    "toml": "test_toml_config_reading",
    "index": "test_index_directory_loading",
    "npz": "test_npz_inputs",
    "features": "test_feature_vector_reading",
    "service": "test_service_request_bodies",
}


def pytest(args, env, junit):
    """Run pytest with `args`; the names of the tests that failed, from its JUnit report."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"), MPLBACKEND="Agg", **env)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 1: some tests failed, which the report counts
        raise SystemExit(f"pytest failed to run ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    failed = set()
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(case.get("name"))
    return failed


def regression_cases():
    """Cases of the regression tests per reader, from their names (`test_READER_...`)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_fuzz_regressions.py"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "src")), capture_output=True, text=True,
    )
    counts = dict.fromkeys(READERS, 0)
    for line in proc.stdout.splitlines():
        name = line.partition("::test_")[2]
        reader = next((r for r in READERS if name.startswith(r + "_")), None)
        if reader:
            counts[reader] += 1
    return counts


def fuzz(profile, tmp):
    report = os.path.join(tmp, "fuzz.json")
    start = time.monotonic()
    failed = pytest(
        ["tests/test_fuzz.py"], {"HYPOTHESIS_PROFILE": profile, "SIAMKIT_FUZZ_REPORT": report},
        os.path.join(tmp, "fuzz.xml"),
    )
    seconds = time.monotonic() - start
    with open(report, encoding="utf-8") as f:
        examples = json.load(f)
    fixed = regression_cases()
    return {
        reader: {
            "examples": examples.get(reader, 0),
            "failure_classes_fixed": fixed[reader],
            "crashes_remaining": int(FUZZ_TESTS[reader] in failed),
        }
        for reader in READERS
    }, seconds


def kills(stops, quick, tmp):
    report = os.path.join(tmp, "kills.json")
    start = time.monotonic()
    failed = pytest(
        ["tests/test_interruptions.py", "-k", "stopped_at_any_moment or killed_and_rerun or index_write_killed"]
        + (["-m", "not slow"] if quick else []),
        {"SIAMKIT_KILLS": str(stops), "SIAMKIT_KILL_REPORT": report},
        os.path.join(tmp, "kills.xml"),
    )
    seconds = time.monotonic() - start
    with open(report, encoding="utf-8") as f:
        outcomes = json.load(f)
    cases = {}
    for case, counts in outcomes.items():
        tried = counts.get("stops", 0)
        cases[case] = {
            "stops": tried,
            "old_then_resumed": counts.get("old index, rerun", 0),
            "new": counts.get("new index", 0),
            "equal_to_uninterrupted": counts.get("equal to uninterrupted", 0),
            "differing": tried - counts.get("equal to uninterrupted", 0),
        }
    return cases, sorted(failed), seconds


def atheris(seconds, tmp):
    """Run `fuzz_atheris.py` on each of its readers for `seconds`: executions and crashes per reader."""
    script = os.path.join(HERE, "fuzz_atheris.py")
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    proc = subprocess.run([sys.executable, "-c", "import fuzz_atheris; print(*fuzz_atheris.READERS)"], cwd=HERE,
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmarks/fuzz_atheris.py does not run (pip install atheris):\n{proc.stderr[-2000:]}")
    results = {}
    for reader in proc.stdout.split():
        folder = os.path.join(tmp, f"atheris-{reader}")
        os.makedirs(folder)
        run = subprocess.run(
            [sys.executable, script, reader, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=4096"],
            cwd=folder, env=env, capture_output=True, text=True,
        )
        done = re.search(r"Done (\d+) runs in (\d+) second", run.stderr)
        crashes = [name for name in os.listdir(folder) if name.startswith(("crash-", "timeout-", "oom-"))]
        results[reader] = {
            "executions": int(done.group(1)) if done else None,
            "seconds": int(done.group(2)) if done else None,
            "crashes": len(crashes) or int(run.returncode != 0),
            "first_error": next((line for line in run.stderr.splitlines() if "Error" in line), None)
            if run.returncode else None,
        }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ci fuzz profile, 2 stops per case, no trained model")
    parser.add_argument("--stops", type=int, help="stops per interruption case (default: 10, or 2 with --quick)")
    parser.add_argument("--atheris", type=int, metavar="SECONDS",
                        help="also fuzz each file reader with atheris for SECONDS (pip install atheris)")
    parser.add_argument("--out", help="JSON results file")
    args = parser.parse_args()
    out = output_path("robustness.json", args.out, args.quick)
    stops = args.stops or (2 if args.quick else 10)
    with tempfile.TemporaryDirectory() as tmp:
        readers, fuzz_seconds = fuzz("ci" if args.quick else "long", tmp)
        cases, failed, kill_seconds = kills(stops, args.quick, tmp)
        coverage_guided = atheris(args.atheris, tmp) if args.atheris else None

    print(f"{'reader':<10} {'examples':>9} {'fixed':>6} {'crashes':>8}")
    for reader, row in readers.items():
        print(f"{reader:<10} {row['examples']:>9} {row['failure_classes_fixed']:>6} {row['crashes_remaining']:>8}")
    print(f"\n{'interruption':<22} {'stops':>6} {'old+rerun':>10} {'new':>5} {'equal':>6} {'differing':>10}")
    for case, row in cases.items():
        print(
            f"{case:<22} {row['stops']:>6} {row['old_then_resumed']:>10} {row['new']:>5} "
            f"{row['equal_to_uninterrupted']:>6} {row['differing']:>10}"
        )
    if failed:
        print(f"\nfailing interruption tests: {', '.join(failed)}")
    if coverage_guided:
        print(f"\n{'atheris':<10} {'executions':>11} {'seconds':>8} {'crashes':>8}")
        for reader, row in coverage_guided.items():
            print(f"{reader:<10} {row['executions']!s:>11} {row['seconds']!s:>8} {row['crashes']:>8}")
    report = {
        "quick": args.quick,
        "profile": "ci" if args.quick else "long",
        "stops_per_case": stops,
        "readers": readers,
        "interruptions": cases,
        "failing_interruption_tests": failed,
        "atheris": coverage_guided,
        "seconds": {"fuzz": round(fuzz_seconds, 1), "interruptions": round(kill_seconds, 1)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "processor": platform.processor()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
