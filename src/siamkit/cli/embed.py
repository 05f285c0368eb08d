"""`siamkit embed`: embeddings of a folder of images (or `.wav` clips) with a run."""

import numpy as np

from .options import add_input_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "embed",
        help="embed files with a trained run",
        description="Embed every image (or .wav clip) below --data with the run's model, batch by batch, and "
        "write the embeddings with their paths and labels (top sub-folder names) to a .npz file that "
        "`siamkit index build --data` accepts.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument(
        "--data", required=True, help="a folder (searched at any depth), a file, or a .npz of inputs `x`"
    )
    parser.add_argument("--out", default="embeddings.npz", help="output .npz (default: embeddings.npz)")
    parser.add_argument(
        "--projector", metavar="DIR",
        help="also write DIR for TensorBoard's embedding projector (tensors.tsv, metadata.tsv, sprite.png, "
        "projector_config.pbtxt): `tensorboard --logdir DIR`",
    )
    add_input_options(parser)
    parser.set_defaults(func=run)


def run(args):
    from .. import _io
    from ..index.inputs import embed_data
    from ..runs import Run

    run_ = Run(args.run_dir)
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
