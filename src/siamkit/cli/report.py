"""`siamkit report`: a run's report as one self-contained HTML file, or several runs side by side."""


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "report",
        help="write an HTML report of a run, or compare runs",
        description="Write one self-contained HTML file (every image and script inlined, nothing fetched when it "
        "opens) with the run card, training curves, verification (ROC, DET, score histograms, the table at each "
        "calibrated threshold), the hardest false accepts and rejects, the most confused classes, retrieval per "
        "class, nearest-neighbour galleries, one-shot accuracy by ways and an embedding map. Two-tower runs get "
        "cross-modal retrieval examples. With several run directories, the runs are compared side by side. What "
        "cannot be shown (no held-out data, an older run) is named, and the rest is written.",
    )
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="a run directory; two or more compare them")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="held-out data: this standard dataset instead of the run's own")
    source.add_argument("--data", help="held-out data: this image folder (one sub-folder per class)")
    parser.add_argument(
        "--out", help="the HTML file (default: RUN_DIR/report.html for one run, comparison.html for several)"
    )
    parser.add_argument(
        "--projection", choices=("auto", "umap", "tsne", "pca"), default="auto",
        help="the embedding map: auto (default) takes UMAP when umap-learn is installed, else t-SNE up to "
        "5,000 points and PCA above",
    )
    parser.add_argument("--seed", type=int, help="seed of the sample queries and the map (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args):
    import sys

    from .. import report
    from .options import refuse

    if len(args.run_dirs) == 1:
        path, missing = report.build(
            args.run_dirs[0], args.out, args.dataset, args.data, args.projection, args.seed, not args.quiet
        )
    else:
        refuse(["--projection"] if args.projection != "auto" else [], "a comparison draws no embedding map")
        refuse(["--seed"] if args.seed is not None else [], "a comparison draws no sample queries")
        path, missing = report.compare(args.run_dirs, args.out or "comparison.html", args.dataset, args.data,
                                       not args.quiet)
    for line in missing:
        print(f"siamkit report: left out: {line}", file=sys.stderr)
    print(f"wrote {path}")
    return 0
