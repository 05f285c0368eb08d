"""`siamkit train`: train a Siamese or two-tower network and write a run directory."""

import json

from ..neighbors import DISTANCES
from ..training.config import DEFAULTS

# Flags that map one-to-one onto config keys: (flag, type, help).
_OPTIONS = (
    ("--dataset", str, "standard dataset name (default: digits, bundled with scikit-learn)"),
    ("--subset", str, "part of a standard dataset, e.g. train or background"),
    ("--data", str, "image folder with one sub-folder per class"),
    ("--data-b", str, "second side's class folders (images, .wav, .txt or .npy/.npz), paired with --data by "
     "class name: trains a two-tower network"),
    ("--dataset-b", str, "second side's standard dataset (e.g. fsdd): trains a two-tower network"),
    ("--pairs-csv", str, "CSV of path_a,path_b,label pairs (1 = same), paths relative to the CSV; with "
     "--towers 2, rows are matching pairs path_a,path_b[,label] relative to --data and --data-b"),
    ("--towers", int, "1: Siamese network (one shared encoder); 2: two-tower network, one encoder per side "
     "(default: 2 when a second side is given)"),
    ("--modality-a", str, "what side a holds: image, audio, text or features (default: what the files are; "
     "text for a CSV column of text)"),
    ("--modality-b", str, "what side b holds: image, audio, text or features"),
    ("--encoder-b", str, "side b's encoder (default by modality: cnn, audio, text, mlp)"),
    ("--image-size-b", str, "side b's image size, SIZE or HxW (default: --image-size)"),
    ("--channels-b", int, "side b's image channels (default: --channels)"),
    ("--text-length", int, "text towers: UTF-8 bytes kept per text (default 64)"),
    ("--clip-seconds", float, "audio towers: clip length in seconds (default 1.0)"),
    ("--rotate-by", str, "two towers: a meta field of side b (e.g. speaker); after training, hold out each of "
     "its groups in turn and report retrieval on it"),
    ("--data-dir", str, "folder of cached .npz datasets (default: $SIAMKIT_DATA_DIR)"),
    ("--image-size", str, "resize images to SIZE or HxW (required when a folder mixes sizes)"),
    ("--channels", int, "1 (grayscale), 3 (RGB) or 4 (RGBA)"),
    ("--max-pixels", int, "refuse images with more pixels than this (decompression bombs)"),
    ("--cache-dir", str, "with --stream: cache decoded images here"),
    ("--encoder", str, "encoder architecture (cnn, mlp, koch, resnet, alexnet, vgg, resnet50, ...)"),
    ("--head", str, "pair head: distance, l1 or concat"),
    ("--loss", str, "triplet, prototypical (both on P x K batches), contrastive or bce (both on pairs); "
     "two towers: clip or contrastive (in-batch negatives)"),
    ("--distance", str, f"{', '.join(DISTANCES[:-1])} or {DISTANCES[-1]} (default: euclidean)"),
    ("--embedding-dim", int, "size of the embedding"),
    ("--margin", float, "margin of the contrastive, triplet or prototypical loss"),
    ("--mining", str, "triplet mining: all, hard, semi-hard or easy"),
    ("--epochs", int, "training epochs"),
    ("--batch-size", int, "pairs per training batch (contrastive, bce); with triplet or prototypical the "
     "training batch is --classes-per-batch x --samples-per-class, and this sizes validation batches"),
    ("--classes-per-batch", int, "P of the P x K batches of triplet and prototypical (default: min(16, classes))"),
    ("--samples-per-class", int, "K of the P x K batches of triplet and prototypical (default: 4)"),
    ("--learning-rate", float, "optimizer learning rate"),
    ("--optimizer", str, "adam, adamw, sgd or rmsprop"),
    ("--pairs-per-epoch", int, "contrastive, bce: pairs drawn per epoch (default: 2 x training images)"),
    ("--validation", str, "what chooses the threshold and the epoch: classes (whole training classes held out), "
     "images (images of the training classes) or auto (default: classes when 5 or more training classes remain)"),
    ("--calibration-folds", int, "with class validation: choose the threshold on the validation pairs of K class "
     "folds, fold k scored by a model of the same recipe trained without its classes (default: 1)"),
    ("--patience", int, "early stopping: epochs without improvement of --monitor before stopping (default: 5)"),
    ("--monitor", str, "what early stopping watches: val_roc_auc (of the validation pairs, default) or val_loss"),
    ("--on-nan", str, "a NaN or infinite batch loss: stop (default; the last finished epoch is kept) or "
     "skip-batch (no update for that batch; stops after 20 such batches in a row)"),
    ("--seed", int, "seed of every random source"),
    ("--ensemble", int, "train N encoders in turn (seeds seed..seed+N-1) and concatenate their embeddings"),
    ("--weights", str, "keras.applications backbones: imagenet (downloaded once into Keras' cache, ~/.keras/models) "
     "or the path of a local weights file of the backbone without its top"),
    ("--init-from", str, "start from the encoder weights of this run directory (same encoder, embedding size and "
     "image size)"),
    ("--freeze-backbone-epochs", int, "train the head for N epochs with the backbone frozen, then unfreeze it"),
    ("--fine-tune-learning-rate", float, "learning rate once the backbone is unfrozen (default: --learning-rate / 10)"),
    ("--trainable-layers", int, "unfreeze only the backbone's top K layers (BatchNorm stays frozen when fine-tuning)"),
    ("--mixed-precision", str, "mixed_float16 or mixed_bfloat16: compute in 16 bits, distances and losses in float32 "
     "(faster on recent GPUs)"),
    ("--distribute", str, "data-parallel: split every batch between this host's devices (JAX: "
     "keras.distribution.DataParallel; TensorFlow: MirroredStrategy, or MultiWorkerMirroredStrategy across the "
     "hosts of TF_CONFIG); the losses still see the whole batch. none (default): one device"),
    ("--out", str, "run directory (default: runs/<timestamp>); an interrupted run there resumes"),
)


def _dest(flag):
    return flag.lstrip("-").replace("-", "_")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a Siamese or two-tower (multi-modal) network",
        description="Train a Siamese network, or a two-tower network with one encoder per side when a second "
        "side is given (--data-b, --dataset-b, --towers 2). With no options it trains on scikit-learn's "
        "bundled digits (classes 0-6) and evaluates on held-out classes 7-9.",
    )
    parser.add_argument("--config", help="TOML file with the same keys as these flags; flags override it")
    for flag, kind, help_text in _OPTIONS:
        assert _dest(flag) in DEFAULTS, flag
        parser.add_argument(flag, type=kind, default=None, help=help_text)
    parser.add_argument("--holdout-classes", type=int, nargs="+", default=None, help="class labels held out")
    parser.add_argument("--skip-bad", action="store_true", default=None, help="leave bad files out, list them")
    parser.add_argument("--stream", action="store_true", default=None, help="read the folder from disk per batch")
    parser.add_argument(
        "--no-early-stopping", dest="early_stopping", action="store_false", default=None,
        help="train all --epochs and keep the last epoch's weights, not the best validation epoch's",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args):
    from ..training import resolve, train

    overrides = {key: getattr(args, key) for key in DEFAULTS if hasattr(args, key)}
    config = resolve(args.config, overrides)
    if config["towers"] == 2:
        run_, metrics = train(config, verbose=_verbosity(args))
        return _report_two_tower(run_, metrics)
    _refuse_unused(args, config)
    run_, metrics = train(config, verbose=_verbosity(args))
    return _report(run_, metrics, "held-out classes (threshold chosen on validation pairs):")


def _report_two_tower(run_, metrics):
    from ..evaluation.crossmodal import format_two_tower

    print(f"\nrun directory: {run_.path}")
    verification = {}
    if "test_roc_auc" in metrics:
        verification = {"roc_auc": metrics["test_roc_auc"], "eer": metrics["test_eer"], "at_threshold": {}}
        if "test_accuracy" in metrics:
            verification["at_threshold"]["accuracy"] = {
                "accuracy": metrics["test_accuracy"], "threshold": metrics["threshold"]
            }
    print(format_two_tower({"retrieval": metrics["retrieval"], "verification": verification}))
    for group, table in metrics.get("rotation", {}).items():
        if group == "train_seconds":
            continue
        title = "held-out groups, mean" if group == "mean" else f"held-out group {group}"
        print(f"{title}: " + "  ".join(f"{d} R@1 {t['R@1']:.4f}" for d, t in table.items()))
    print(f"training time: {metrics['train_seconds']:.0f} s")
    return 0


def _refuse_unused(args, config):
    """Refuse the flags that the resolved config's loss (or reading mode) does not use."""
    from ..losses import BATCH_LOSSES
    from .options import given, refuse

    loss = config["loss"]
    if loss != "triplet":
        refuse(given(args, "mining"), f"triplet mining, and the loss is {loss!r}")
    if loss in BATCH_LOSSES:
        refuse(given(args, "pairs_per_epoch"), f"loss {loss!r} trains on P x K batches, not on drawn pairs")
    else:
        refuse(
            given(args, "classes_per_batch", "samples_per_class"),
            f"they shape the P x K batches of {' and '.join(BATCH_LOSSES)}, and the loss is {loss!r}",
        )
    if loss == "bce":
        refuse(given(args, "margin"), "loss 'bce' has no margin")
    if not config["stream"]:
        refuse(given(args, "cache_dir"), "it caches the images that --stream reads; add --stream")


def _validation_lines(metrics):
    """How the threshold was chosen, and a warning when it was chosen on classes seen in training."""
    kind = metrics.get("validation")
    if kind is None:
        return []
    lines = [f"threshold chosen on validation pairs of {kind.replace('-', ' ')}: {metrics['validation_reason']}"]
    if metrics.get("validation_folds", 1) > 1:
        lines.append(
            f"  and of {metrics['validation_folds'] - 1} further class folds, each scored by a model of the same "
            "recipe trained without its classes (calibration_folds)"
        )
    if kind == "seen-classes":
        lines.append(
            "warning: distances between seen classes are tighter than between new ones, so this threshold may "
            "not transfer to the held-out classes (compare test_accuracy with test_oracle_accuracy)"
        )
    return lines


def _verbosity(args):
    return 0 if args.quiet else "auto"


def _report(run_, metrics, heading):
    print(f"\nrun directory: {run_.path}")
    print(heading)
    for key, value in metrics.items():
        if key in ("validation", "validation_reason", "validation_folds"):
            continue
        if isinstance(value, float):
            print(f"  {key:<24} {value:.4f}")
        else:
            print(f"  {key:<24} {json.dumps(value) if isinstance(value, dict) else value}")
    for line in _validation_lines(metrics):
        print(line)
    return 0
