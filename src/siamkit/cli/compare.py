"""`siamkit compare`: are two images the same class, according to a run?"""

import json

from .options import add_invert_option, add_json_option, add_threshold_options, check_threshold_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "compare",
        help="compare two images with a trained run",
        description="Print the distance and a similarity of two images, and whether they are the same class "
        "at the run's calibrated threshold (from `siamkit evaluate`) or at --threshold.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("image_a", metavar="A", help="first image file")
    parser.add_argument("image_b", metavar="B", help="second image file")
    add_threshold_options(parser, "decision")
    add_invert_option(parser, "the images")
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..evaluation.compare import compare_files

    check_threshold_options(args)
    r = compare_files(args.run_dir, args.image_a, args.image_b, args.threshold, args.method, args.invert)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    direction = "higher" if r["higher_is_similar"] else "lower"
    print(f"{'score':<11} {r['score']:.6g}  ({r['output_kind']} of the pair head; {direction} = more similar)")
    print(f"{'distance':<11} {r['distance']:.6g}  ({r['distance_name']}, between the embeddings)")
    print(f"{'similarity':<11} {r['similarity']:.6g}  ({r['similarity_kind']})")
    print(f"{'threshold':<11} {r['threshold']:.6g}  ({r['threshold_source']})")
    print(f"{'decision':<11} {'same' if r['same'] else 'different'}")
    return 0
