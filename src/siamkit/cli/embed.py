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
        "`siamkit index build --data` accepts.",
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
    return 0
