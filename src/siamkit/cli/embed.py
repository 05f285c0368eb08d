"""`siamkit embed`: embeddings of a folder of images (or `.wav` clips) with a run."""

import numpy as np

from .options import add_input_options, given, refuse

RUNTIMES = ("keras", "onnx")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "embed",
        help="embed files with a trained run",
        description="Embed every image (or .wav clip) below --data with the run's model, batch by batch, and "
        "write the embeddings with their paths and labels (top sub-folder names) to a .npz file that "
        "`siamkit index build --data` accepts, or (with --shards) to Parquet shards of (id, path, label, metadata, "
        "vector) for `siamkit index build --from-shards`, embedded by this process or by Ray workers (--engine ray).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument(
        "--data", required=True, help="a folder (searched at any depth), a file, or a .npz of inputs `x`"
    )
    parser.add_argument("--out", default="embeddings.npz", help="output .npz (default: embeddings.npz)")
    parser.add_argument(
        "--runtime", default="keras",
        help="keras (the run's model, default) or onnx (ONNX Runtime on the run's ONNX export)",
    )
    parser.add_argument("--export", help="with --runtime onnx: the export folder (default: RUN_DIR/export/onnx)")
    parser.add_argument("--shards", metavar="DIR", help="write Parquet shards into this new folder instead of --out")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="who embeds, with --shards: this process (default) or Ray Data workers")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers, each loading the run once (default: 2)")
    parser.add_argument(
        "--projector", metavar="DIR",
        help="also write DIR for TensorBoard's embedding projector (tensors.tsv, metadata.tsv, sprite.png, "
        "projector_config.pbtxt): `tensorboard --logdir DIR`",
    )
    add_input_options(parser)
    parser.set_defaults(func=run)


def run(args):
    from .. import _io
    from ..errors import check_choice
    from ..index.inputs import embed_data
    from ..runs import Run

    check_choice("runtime", args.runtime, RUNTIMES)
    run_ = Run(args.run_dir)
    if args.runtime == "onnx":
        from ..export import OnnxRun

        run_ = OnnxRun(run_, args.export)
    else:
        refuse(given(args, "export"), "it names the ONNX export that --runtime onnx embeds with")
    if args.shards:
        refuse(["--runtime onnx"] if args.runtime != "keras" else [], "--shards embeds with each worker's Keras model")
        return _shards(args, run_)
    if args.engine != "local":
        from ..errors import ConfigError

        raise ConfigError("--engine ray writes shards: give --shards DIR")
    found = embed_data(run_, args.data, args.batch_size, args.invert, not args.quiet)
    _io.save_npz(
        args.out,
        embeddings=found.embeddings,
        paths=np.array(found.paths, dtype=str),
        labels=np.array(["" if lab is None else str(lab) for lab in found.labels], dtype=str),
        fingerprint=np.array(run_.fingerprint()),
        distance=np.array(run_.distance),
    )
    print(f"wrote {len(found.embeddings)} embeddings of size {found.embeddings.shape[1]} to {args.out}")
    if args.projector:
        _projector(run_, args, found)
    return 0


def _shards(args, run_):
    import os

    from ..errors import ConfigError, DataError
    from ..index import shards
    from ..index.embedder import embed_paths
    from ..index.inputs import list_files

    if args.workers < 1:
        raise ConfigError(f"--workers must be positive, got {args.workers}")
    if os.path.exists(args.shards):
        raise DataError(f"{args.shards} exists already; remove it or choose another folder for the shards")
    shards.require_arrow()  # pyarrow is needed: say so before embedding
    paths, labels = list_files(args.data)
    z = embed_paths(run_.path, paths, args.engine, args.workers, args.batch_size, args.invert, not args.quiet)
    ids = np.arange(len(paths), dtype=np.int64)
    shards.write(args.shards, ids, paths, labels, z, run_.fingerprint(), run_.distance)
    print(f"wrote {len(z)} embeddings of size {z.shape[1]} to {args.shards} ({args.engine} engine)")
    return 0


def _projector(run_, args, found):
    """The projector folder, with thumbnails of image files read as the run reads them (none for audio or .npz rows)."""
    from ..datasets._progress import progress
    from ..report import write_projector

    import os

    images = None
    if len(run_.input_shape) == 3 and os.path.isfile(found.paths[0]):  # image files, not rows of a .npz
        images = _Thumbnails(run_, found.paths, args.invert)
    write_projector(
        args.projector, found.embeddings, ["" if lab is None else str(lab) for lab in found.labels], found.paths,
        images, progress=lambda items: progress(items, "thumbnails", not args.quiet, unit="image"),
    )
    print(f"wrote {args.projector} for TensorBoard's projector (tensorboard --logdir {args.projector})")


class _Thumbnails:
    """Images of files, read one at a time as the run reads them (the sprite needs each once)."""

    def __init__(self, run_, paths, invert):
        self.run, self.paths, self.invert = run_, paths, invert

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.run.read_inputs([self.paths[i]], invert=self.invert)[0]
