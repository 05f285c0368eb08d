"""`siamkit datasets`: list the standard datasets, describe one, or check your files.

    siamkit datasets list [--data-dir DIR]
    siamkit datasets info NAME [--data-dir DIR]
    siamkit datasets check PATH [--image-size N] [--channels C] [--skip-bad]

`check` reads every file of an image folder (or a pair CSV) the way
`siamkit train --data` would, and reports what it found, so bad files show up
before any training.
"""

import os


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "datasets", help="list, describe or check datasets", description=__doc__.split("\n\n")[0]
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="each standard dataset: size, classes, whether it is cached")
    listing.add_argument("--data-dir", help="folder of .npz datasets (default: $SIAMKIT_DATA_DIR)")
    listing.set_defaults(func=run_list)

    info = actions.add_parser("info", help="details of one standard dataset")
    info.add_argument("name", help="dataset name, e.g. omniglot")
    info.add_argument("--data-dir", help="folder of .npz datasets (default: $SIAMKIT_DATA_DIR)")
    info.set_defaults(func=run_info)

    check = actions.add_parser("check", help="read every file of an image folder or pair CSV and report")
    check.add_argument("path", help="image folder (one sub-folder per class) or pair CSV (.csv)")
    check.add_argument("--image-size", help="resize images to N x N (or HxW)")
    check.add_argument("--channels", type=int, help="1 (grayscale), 3 (RGB) or 4 (RGBA)")
    check.add_argument("--skip-bad", action="store_true", help="list bad files instead of stopping at the first")
    check.add_argument("--max-pixels", type=int, help="largest image accepted, in pixels")
    check.set_defaults(func=run_check)


def _location(spec, data_dir):
    where = spec.location(data_dir)
    return where or "no"


def run_list(args):
    from ..datasets import DATASETS

    rows = [("name", "samples", "classes", "shape", "cached")]
    for spec in DATASETS.values():
        shape = "x".join(map(str, spec.shape)) if spec.shape else spec.modality
        rows.append((spec.name, f"{spec.size:,}", str(spec.classes), shape, _location(spec, args.data_dir)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    return 0


def run_info(args):
    from ..datasets import get_spec, sources

    spec = get_spec(args.name)
    subsets = ", ".join(f"{k} {v:,}" for k, v in spec.sizes.items())
    lines = [
        f"{spec.name}: {spec.description}",
        f"  samples   {spec.size:,} ({subsets})",
        f"  classes   {spec.classes}",
        f"  modality  {spec.modality}" + (f", shape {spec.shape}" if spec.shape else ""),
        f"  source    {spec.source}",
    ]
    if spec.file is None:
        lines.append("  data      bundled with its package, no download")
    else:
        where = spec.location(args.data_dir)
        lines.append(f"  file      {spec.file}")
        lines.append(f"  cached    {where or 'no'}")
        if where is None:
            lines.append(
                f"  load      downloads into {sources.cache_dir()} on first use, or set "
                f"{sources.ENV_DATA_DIR} to a folder that holds {spec.file}"
            )
    print("\n".join(lines))
    return 0


def run_check(args):
    from ..datasets import load_inputs

    key = "pairs_csv" if os.path.splitext(args.path)[1].lower() == ".csv" else "data"
    config = {
        key: args.path,
        "image_size": args.image_size,
        "channels": args.channels,
        "skip_bad": args.skip_bad,
        "max_pixels": args.max_pixels,
    }
    loaded = load_inputs(config)
    if key == "pairs_csv":
        print(
            f"{args.path}: {len(loaded):,} pairs ({int(loaded.y.sum()):,} same), {len(loaded.info['paths_a']):,} files"
        )
    else:
        names = loaded.info["class_names"]
        print(f"{args.path}: {len(loaded):,} images in {len(names)} classes")
    if "image_size" in loaded.info:
        h, w = loaded.info["image_size"]
        print(f"  image size {h}x{w} (height x width), {loaded.info['channels']} channel(s)")
    bad = loaded.info["bad_files"]
    print(f"  bad files  {len(bad)}")
    for path, reason in bad:
        print(f"    {path}: {reason}")
    return 0
