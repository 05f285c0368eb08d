"""`siamkit evaluate`: verification, one-shot and retrieval metrics of a run."""


# Options and their defaults, by the protocol they belong to (None: not given).
_VERIFICATION = {"pairs_csv": None, "pairs": None, "all_pairs": False, "target_far": 1e-3}
_ONESHOT = {
    "ways": None,
    "shots": 1,
    "episodes": 1000,
    "queries": 1,
    "episodes_dir": None,
    "oneshot_method": "auto",
    "local_scaling": 0.0,
    "scaling_neighbors": 5,
}
# The rest, which every protocol of a single-model run takes.
_COMMON = {"protocol": "all", "dataset": None, "data": None, "invert": None, "seed": None, "no_plots": False}


def add_parser(subparsers):
    from .options import add_invert_option, add_json_option

    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run (verification, one-shot, retrieval)",
        description="Evaluate a run on its held-out classes (or on other data). Thresholds are chosen on "
        "validation pairs and written to RUN_DIR/calibration.json; metrics and plots go to RUN_DIR/eval/. "
        "A two-tower run is evaluated on its own held-out items: cross-modal retrieval both ways (R@1/5/10, "
        "MAP@R) and cross-modal verification (ROC AUC, EER, thresholds chosen on validation pairs); it takes "
        "--pairs, --seed and --json only. An option that does not apply to the run or the protocol is refused.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory that `siamkit train` wrote")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="evaluate on this standard dataset instead of the run's own")
    source.add_argument("--data", help="evaluate on this image folder (one sub-folder per class)")
    parser.add_argument("--pairs-csv", help="score the pairs of this CSV (path_a,path_b,label) as the test pairs")
    parser.add_argument(
        "--protocol", choices=("verification", "oneshot", "retrieval", "all"), help="default: all"
    )
    parser.add_argument("--pairs", type=int, help="random pairs per split (default: the run's eval_pairs)")
    parser.add_argument("--all-pairs", action="store_true", default=None, help="score every pair (small sets only)")
    parser.add_argument("--target-far", type=float, help="FAR of the 'far' threshold (default 1e-3)")
    parser.add_argument("--ways", type=int, help="classes per one-shot episode (default: up to 5)")
    parser.add_argument("--shots", type=int, help="support samples per class (default 1)")
    parser.add_argument("--episodes", type=int, help="one-shot episodes (default 1000)")
    parser.add_argument("--queries", type=int, help="queries per class and episode (default 1)")
    parser.add_argument("--episodes-dir", help="folder of Lake-layout runNN/ one-shot episodes to score")
    parser.add_argument(
        "--oneshot-method", choices=("auto", "prototype", "pair"),
        help="prototype: nearest class-mean embedding; pair: the pair head's score; auto (default): pair for "
        "probability heads",
    )
    parser.add_argument(
        "--local-scaling", type=float, metavar="WEIGHT",
        help="hubness correction of prototype distances: subtract WEIGHT x each prototype's mean distance to its "
        "nearest other prototypes of the episode (0.2-0.3 helped on Omniglot; default 0, off)",
    )
    parser.add_argument(
        "--scaling-neighbors", type=int, metavar="K", help="neighbors of --local-scaling (default 5)"
    )
    add_invert_option(parser, "the image files of --pairs-csv and --episodes-dir")
    parser.add_argument("--seed", type=int, help="seed of every draw (default: the run's seed)")
    parser.add_argument("--no-plots", action="store_true", default=None, help="skip the figures")
    add_json_option(parser)
    parser.set_defaults(func=run)


def _check_options(args, run_):
    """Refuse the options that do not apply to this run and protocol, then fill in the defaults."""
    from .options import given, refuse, resolve_defaults

    if run_.is_two_tower:
        refuse(
            [flag for flag in given(args, *_COMMON, *_VERIFICATION, *_ONESHOT) if flag not in ("--pairs", "--seed")],
            "a two-tower run is evaluated by cross-modal retrieval and verification on its own held-out items",
        )
        return
    protocol = args.protocol or "all"
    if protocol not in ("all", "verification"):
        refuse(given(args, *_VERIFICATION), f"they belong to the verification protocol, not {protocol!r}")
    if protocol not in ("all", "oneshot"):
        refuse(given(args, *_ONESHOT), f"they belong to the one-shot protocol, not {protocol!r}")
    if not args.local_scaling:
        refuse(given(args, "scaling_neighbors"), "it sizes --local-scaling, which is off")
    if args.pairs_csv is None and args.episodes_dir is None:
        refuse(
            given(args, "invert"),
            "it applies to the image files of --pairs-csv and --episodes-dir; other data is read as the run was "
            "trained",
        )
    resolve_defaults(args, {**_COMMON, **_VERIFICATION, **_ONESHOT})


def run(args):
    from ..evaluation import report
    from ..runs import Run

    run_ = Run(args.run_dir)
    _check_options(args, run_)
    if run_.is_two_tower:
        return _evaluate_two_tower(run_, args)
    csv_pairs = run_.read_pairs(args.pairs_csv, args.invert) if args.pairs_csv else None
    metrics = report.evaluate_run(
        run_,
        protocol=args.protocol,
        dataset=args.dataset,
        data=args.data,
        csv_pairs=csv_pairs,
        n_pairs=args.pairs,
        all_pairs=args.all_pairs,
        target_far=args.target_far,
        ways=args.ways,
        shots=args.shots,
        episodes=args.episodes,
        queries=args.queries,
        episodes_dir=args.episodes_dir,
        oneshot_method=args.oneshot_method,
        local_scaling=args.local_scaling,
        scaling_neighbors=args.scaling_neighbors,
        invert=args.invert,
        seed=args.seed,
        plot=not args.no_plots,
    )
    if args.json:
        return _print_metrics_file(run_)
    print(report.format_table(metrics))
    print(f"\nwrote {run_.file(report.EVAL_DIR)}/metrics.json" + (", plots" if metrics["plots"] else ""))
    written = metrics.get("verification", {}).get("calibration_file")
    if written:
        print(f"wrote {written}")
    return 0


def _print_metrics_file(run_):
    """Print the metrics.json just written: the JSON output is the file, NumPy values converted."""
    import os

    from ..evaluation.report import EVAL_DIR

    with open(os.path.join(run_.path, EVAL_DIR, "metrics.json"), encoding="utf-8") as f:
        print(f.read().rstrip("\n"))
    return 0


def _evaluate_two_tower(run_, args):
    """Cross-modal retrieval (both directions) and verification of a two-tower run, on its held-out items."""
    import os

    from .. import _io
    from ..evaluation.crossmodal import evaluate_two_tower, format_two_tower, two_tower_parts
    from ..evaluation.report import EVAL_DIR

    config = run_.config
    if "towers" not in config:
        from ..errors import ConfigError

        raise ConfigError(
            f"{run_.path}: this two-tower run was trained before two-tower runs recorded their data options; "
            "train it again (e.g. siamkit train --config configs/mnist_fsdd.toml) to evaluate it"
        )
    parts = two_tower_parts(config)
    seed = config.get("seed", 0) if args.seed is None else args.seed
    metrics = evaluate_two_tower(run_, parts, n_pairs=args.pairs or config.get("eval_pairs", 2000), seed=seed)
    _io.write_json(os.path.join(run_.path, EVAL_DIR, "metrics.json"), metrics)
    if args.json:
        return _print_metrics_file(run_)
    print(format_two_tower(metrics))
    print(f"\nwrote {run_.file(EVAL_DIR)}/metrics.json and {run_.file('calibration.json')}")
    return 0
