"""`siamkit export`: a run's encoder as a SavedModel, ONNX or TFLite model, with a manifest."""

# The formats, without importing the exporter (and Keras) to build the parser.
FORMATS = ("savedmodel", "onnx", "tflite")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a run's encoder for serving",
        description="Write the run's encoder (each tower of a two-tower run), with its input preprocessing and "
        "normalisation, as a TensorFlow SavedModel, an ONNX model or a TFLite model, plus siamkit-export.json: "
        "input shape, dtype, channel order and value range, embedding size, distance, calibrated threshold and "
        "the model's fingerprint.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--format", required=True, help=f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}")
    parser.add_argument("--out", help="folder to create (default: RUN_DIR/export/FORMAT)")
    parser.set_defaults(func=run)


def run(args):
    from ..errors import check_choice

    check_choice("export format", args.format, FORMATS)  # before the run's model loads
    import os

    from ..export import MANIFEST_FILE, default_dir, export_run
    from ..runs import Run

    run_ = Run(args.run_dir)
    out = args.out or default_dir(run_, args.format)
    manifest = export_run(run_, args.format, out)
    for modality, tower in manifest["towers"].items():
        print(f"tower {modality}: {os.path.join(out, tower['file'])}  input {tower['input_shape']} -> "
              f"{tower['embedding_size']}")
    threshold = manifest["threshold"]
    print(f"manifest: {os.path.join(out, MANIFEST_FILE)} (distance {manifest['distance']}, threshold "
          f"{'none' if threshold is None else format(threshold, '.6g')})")
    return 0
