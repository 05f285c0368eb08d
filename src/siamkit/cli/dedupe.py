"""`siamkit dedupe`: groups of near-duplicate files, as CSV."""

import csv
import io
import sys

from .options import add_input_options, add_threshold_options, check_threshold_options


def add_parser(subparsers):
    from ..index import BACKENDS

    parser = subparsers.add_parser(
        "dedupe",
        help="find groups of near-duplicate files",
        description="Embed every file below --data, pair each with its nearest neighbors, and join the pairs "
        "whose pair-head score passes the threshold (--threshold in the head's units, else the run's calibrated "
        "one) into groups. Writes CSV rows group,size,path,label (groups of 2 or more, largest first).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--data", required=True, help="folder (searched at any depth) or .npz (from `siamkit embed`)")
    add_threshold_options(parser, "duplicate")
    parser.add_argument("--neighbors", type=int, default=10, help="neighbors checked per file (default: 10)")
    parser.add_argument("--backend", default="exact", choices=sorted(BACKENDS), help="search backend (default: exact)")
    parser.add_argument("--out", help="CSV file to write (default: standard output)")
    add_input_options(parser)
    parser.set_defaults(func=run)


def run(args):
    from .. import _io
    from ..errors import ConfigError
    from ..evaluation.calibration import Decision
    from ..index.dedupe import duplicate_groups
    from ..index.inputs import embed_data
    from ..index.matching import pair_matcher
    from ..runs import Run

    if args.neighbors < 1:
        raise ConfigError(f"--neighbors must be a positive integer, got {args.neighbors}")
    check_threshold_options(args)
    run_ = Run(args.run_dir)
    decision = Decision.for_run(run_, args.threshold, args.method, required=True)
    found = embed_data(run_, args.data, args.batch_size, args.invert, not args.quiet)
    decide = pair_matcher(run_, decision)
    groups = duplicate_groups(found.embeddings, args.neighbors, decide, args.backend, run_.distance)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["group", "size", "path", "label"])
    for number, group in enumerate(groups, 1):
        for i in group:
            writer.writerow([number, len(group), found.paths[i], "" if found.labels[i] is None else found.labels[i]])
    if args.out:
        _io.write_text(args.out, text.getvalue())
    else:
        sys.stdout.write(text.getvalue())
    grouped = sum(len(g) for g in groups)
    print(
        f"{len(found.paths)} files: {len(groups)} groups of near-duplicates ({grouped} files) at "
        f"threshold {decision.threshold:.6g} ({decision.source})",
        file=sys.stderr,
    )
    return 0
