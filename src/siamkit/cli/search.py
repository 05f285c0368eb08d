"""`siamkit search`: the nearest gallery items of query files."""

import json

from .options import add_input_options, add_json_option, add_threshold_options, check_threshold_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "search",
        help="find the nearest gallery items of query files",
        description="Embed each query file (or every file below a query folder) with the index's run and print "
        "its k nearest items: rank, id, distance (the run's), label and path, and whether each is a "
        "match at the run's calibrated threshold (from `siamkit evaluate`) or at --threshold.",
    )
    parser.add_argument(
        "index_dir",
        metavar="INDEX",
        help="the index (from `siamkit index build`): a directory, qdrant+local://PATH or qdrant://HOST:PORT",
    )
    parser.add_argument("queries", metavar="QUERY", nargs="+", help="image or .wav files, or folders of them")
    parser.add_argument("-k", type=int, default=10, help="results per query (default: 10)")
    parser.add_argument(
        "--filter",
        action="append",
        metavar="FIELD=VALUE",
        help="only items whose metadata FIELD equals VALUE, e.g. label=shoes (repeatable: all must hold)",
    )
    add_json_option(parser)
    parser.add_argument("--run", help="the run directory, if it moved since the index was built")
    add_threshold_options(parser, "match")
    add_input_options(parser)
    parser.set_defaults(func=run)


def _table(query):
    rows = [("rank", "id", "distance", "match", "label", "path")]
    for r in query["results"]:
        match = {True: "yes", False: "no"}.get(r.get("match"), "-")
        label = "-" if r.get("label") is None else str(r["label"])
        rows.append((str(r["rank"]), str(r["id"]), f"{r['distance']:.6g}", match, label, r.get("path", "-")))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    lines = [f"query: {query['query']}"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def run(args):
    import sys

    from ..errors import ConfigError
    from ..index import filters, open_index
    from ..index.inputs import index_run, list_files
    from ..evaluation.calibration import Decision
    from ..index.matching import search_files

    if args.k < 1:
        raise ConfigError(f"-k must be a positive integer, got {args.k}")
    check_threshold_options(args)
    where = filters.parse(args.filter)
    index = open_index(args.index_dir)
    run_ = index_run(index, args.run)
    paths = [p for q in args.queries for p in list_files(q)[0]]
    decision = Decision.for_run(run_, args.threshold, args.method)
    if len(index) == 0:
        print(
            f"siamkit search: the index {args.index_dir} is empty; add items with `siamkit index add`", file=sys.stderr
        )
    found = search_files(
        index, run_, paths, args.k, decision, args.batch_size, args.invert, not args.quiet, filter=where
    )
    if args.json:
        threshold = decision.to_json()
        print(
            json.dumps(
                {"index": args.index_dir, "distance": index.distance, "threshold": threshold, "queries": found}, indent=2
            )
        )
    else:
        if decision.threshold is not None:
            sign = ">=" if run_.higher_is_similar else "<="
            print(f"match: pair score {sign} {decision.threshold:.6g} ({decision.source})")
        print("\n\n".join(_table(q) for q in found))
    return 0
