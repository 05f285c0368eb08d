"""`siamkit evaluate`: verification, one-shot and retrieval metrics of a run."""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run (verification, one-shot, retrieval)",
        description="Evaluate a run on its held-out classes (or on other data). Thresholds are chosen on "
        "validation pairs and written to RUN_DIR/calibration.json; metrics and plots go to RUN_DIR/eval/.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory that `siamkit train` wrote")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="evaluate on this standard dataset instead of the run's own")
    source.add_argument("--data", help="evaluate on this image folder (one sub-folder per class)")
    parser.add_argument("--pairs-csv", help="score the pairs of this CSV (path_a,path_b,label) as the test pairs")
    parser.add_argument(
        "--protocol", default="all", choices=("verification", "oneshot", "retrieval", "all"), help="default: all"
    )
    parser.add_argument("--pairs", type=int, help="random pairs per split (default: the run's eval_pairs)")
    parser.add_argument("--all-pairs", action="store_true", help="score every pair (small sets only)")
    parser.add_argument("--target-far", type=float, default=1e-3, help="FAR of the 'far' threshold (default 1e-3)")
    parser.add_argument("--ways", type=int, help="classes per one-shot episode (default: up to 5)")
    parser.add_argument("--shots", type=int, default=1, help="support samples per class (default 1)")
    parser.add_argument("--episodes", type=int, default=1000, help="one-shot episodes (default 1000)")
    parser.add_argument("--queries", type=int, default=1, help="queries per class and episode (default 1)")
    parser.add_argument("--episodes-dir", help="folder of Lake-layout runNN/ one-shot episodes to score")
    parser.add_argument(
        "--oneshot-method", default="auto", choices=("auto", "prototype", "pair"),
        help="prototype: nearest class-mean embedding; pair: the pair head's score; auto: pair for probability heads",
    )
    parser.add_argument(
        "--local-scaling", type=float, default=0.0, metavar="WEIGHT",
        help="hubness correction of prototype distances: subtract WEIGHT x each prototype's mean distance to its "
        "nearest other prototypes of the episode (0.2-0.3 helped on Omniglot; default 0, off)",
    )
    parser.add_argument(
        "--scaling-neighbours", type=int, default=5, metavar="K", help="neighbours of --local-scaling (default 5)"
    )
    parser.add_argument("--invert", action="store_true", default=None, help="invert image files (dark ink on white)")
    parser.add_argument("--seed", type=int, help="seed of every draw (default: the run's seed)")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.set_defaults(func=run)


def run(args):
    from ..evaluation import report
    from ..runs import Run

    run_ = Run(args.run_dir)
    if run_.config.get("task") == "multimodal":
        return _evaluate_multimodal(run_)
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
        scaling_neighbours=args.scaling_neighbours,
        invert=args.invert,
        seed=args.seed,
        plot=not args.no_plots,
    )
    print(report.format_table(metrics))
    print(f"\nwrote {run_.file(report.EVAL_DIR)}/metrics.json" + (", plots" if metrics["plots"] else ""))
    written = metrics.get("verification", {}).get("calibration_file")
    if written:
        print(f"wrote {written}")
    return 0


def _evaluate_multimodal(run_):
    """Cross-modal retrieval of a two-tower image/audio run, both directions."""
    import os

    from .. import _io
    from ..evaluation.report import EVAL_DIR
    from ..training import multimodal

    metrics = multimodal.evaluate(run_)
    _io.write_json(os.path.join(run_.path, EVAL_DIR, "metrics.json"), metrics)
    print(multimodal.format_metrics(metrics))
    return 0
