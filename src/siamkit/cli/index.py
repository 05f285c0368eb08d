"""`siamkit index build|add|remove`: a searchable index of a gallery's embeddings."""

from .options import add_input_options


def _options(pairs):
    from ..errors import ConfigError

    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        try:
            options[key.replace("-", "_")] = int(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"invalid --option {pair!r}; write KEY=INTEGER, e.g. ef_search=128")
    return options


def _add_lock_timeout(parser):
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another process writing the index (default: 60)",
    )


LOCATION_HELP = "an index directory, or a Qdrant collection: qdrant+local://PATH or qdrant://HOST:PORT"


def add_parser(subparsers):
    from ..index import BACKENDS

    parser = subparsers.add_parser(
        "index",
        help="build, grow or shrink a search index",
        description="Build an index of a gallery's embeddings for `siamkit search`, add to it, or remove from it.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="embed a gallery and index it",
        description="Embed every file below --data with the run's model and write an index directory.",
    )
    build.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="gallery folder, file, or .npz (from `siamkit embed`)")
    source.add_argument("--from-shards", metavar="DIR", help="Parquet shards from `siamkit embed --shards`")
    build.add_argument(
        "--out", required=True, help="the index to write: " + LOCATION_HELP + " (with --backend qdrant)"
    )
    build.add_argument(
        "--backend",
        choices=sorted([*BACKENDS, "qdrant"]),
        help="search backend (default: exact; qdrant for a Qdrant --out)",
    )
    build.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="backend option, repeatable (e.g. ef_search=128)"
    )
    add_input_options(build)
    _add_lock_timeout(build)
    build.set_defaults(func=run_build)

    add = actions.add_parser(
        "add",
        help="embed more files into an index",
        description="Embed every file below --data with the index's run and add it to the index.",
    )
    add.add_argument("index_dir", metavar="INDEX", help=LOCATION_HELP)
    add.add_argument("--data", required=True, help="folder, file, or .npz (from `siamkit embed`)")
    add.add_argument("--run", help="the run directory, if it moved since the index was built")
    add_input_options(add)
    _add_lock_timeout(add)
    add.set_defaults(func=run_add)

    remove = actions.add_parser(
        "remove",
        help="remove items by id",
        description="Remove items from an index by id (the ids `siamkit search` prints).",
    )
    remove.add_argument("index_dir", metavar="INDEX", help=LOCATION_HELP)
    remove.add_argument("--ids", type=int, nargs="+", required=True, help="ids to remove")
    _add_lock_timeout(remove)
    remove.set_defaults(func=run_remove)


def run_build(args):
    import os

    from ..index.inputs import embed_data
    from ..index.protocol import check_target, create_index
    from ..index.qdrant import is_qdrant
    from ..runs import Run

    run_ = Run(args.run_dir)
    options = _options(args.option)
    backend = args.backend or ("qdrant" if is_qdrant(args.out) else "exact")
    # Check the backend, its options and the destination before the (long) embedding pass.
    check_target(args.out, backend, options, run_.distance)
    if args.from_shards:
        from ..index import shards

        dim, batches = shards.read(args.from_shards, run_.fingerprint())  # every shard checked first
    else:
        found = embed_data(run_, args.data, args.batch_size, args.invert, not args.quiet)
        batches, dim = [(None, found.embeddings, found.metadata())], found.embeddings.shape[1]
    index = create_index(
        args.out,
        dim,
        run_.distance,
        backend,
        options,
        fingerprint=run_.fingerprint(),
        info={"run": os.path.abspath(run_.path)},
    )
    try:
        for ids, vectors, metadata in batches:
            index.add(vectors, ids=ids, metadata=metadata)
        index.save(args.out, args.lock_timeout)
    except BaseException:
        if backend == "qdrant":  # a collection made by this build goes with it
            index.drop()
        raise
    print(f"indexed {len(index)} items ({backend}, {run_.distance}) in {args.out}")
    return 0


def run_add(args):
    from ..index import open_index
    from ..index.files import locked
    from ..index.inputs import embed_data, index_run

    # The lock spans load to save, so a concurrent writer's items are not lost (Qdrant serialises its own writes).
    with locked(args.index_dir, args.lock_timeout):
        index = open_index(args.index_dir)
        run_ = index_run(index, args.run)
        found = embed_data(run_, args.data, args.batch_size, args.invert, not args.quiet)
        ids = index.add(found.embeddings, metadata=found.metadata(), fingerprint=run_.fingerprint())
        index.save(args.index_dir)
    print(f"added {len(ids)} items (ids {ids[0]}..{ids[-1]}); the index holds {len(index)}")
    return 0


def run_remove(args):
    from ..index import open_index
    from ..index.files import locked

    with locked(args.index_dir, args.lock_timeout):
        index = open_index(args.index_dir)
        index.remove(args.ids)
        index.save(args.index_dir)
    print(f"removed {len(set(args.ids))} items; the index holds {len(index)}")
    return 0
