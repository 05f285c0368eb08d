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
    from ..export import export_run
    from ..runs import Run

    manifest = export_run(Run(args.run_dir), args.format, args.out)
    out = args.out or f"{args.run_dir}/export/{args.format}"
    for modality, tower in manifest["towers"].items():
        print(f"tower {modality}: {out}/{tower['file']}  input {tower['input_shape']} -> {tower['embedding_size']}")
    threshold = manifest["threshold"]
    print(f"manifest: {out}/siamkit-export.json (distance {manifest['distance']}, threshold "
          f"{'none' if threshold is None else format(threshold, '.6g')})")
    return 0
