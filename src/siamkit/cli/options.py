"""Options that several sub-commands share, and the refusal of options that do not apply.

Choices come from the library's constants, read from Keras-free modules, so
that `siamkit --help` and `siamkit COMMAND --help` never load Keras.

Options that only apply to some runs default to None ("not given"); the
command fills in its default once it knows the run, and `refuse` turns a
given option that does not apply into a one-line error (exit status 2).
"""

import argparse


def add_threshold_options(parser, what="match"):
    """`--threshold` and `--method`: the decision threshold, given or calibrated."""
    from ..runs import THRESHOLD_METHODS

    parser.add_argument("--threshold", type=float, help=f"{what} threshold in the pair head's units")
    parser.add_argument(
        "--method",
        choices=THRESHOLD_METHODS,
        help="which calibrated threshold (default: the calibration's); not with --threshold",
    )


def add_invert_option(parser, what="images"):
    """`--invert/--no-invert`: override the run's image policy for dark ink on white."""
    parser.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"invert {what} (dark ink on white) or not (default: as the run was trained)",
    )


def add_input_options(parser):
    """Options of the commands that embed files: batch size, the image policy, progress."""
    parser.add_argument("--batch-size", type=int, default=256, help="files per batch (default: 256)")
    add_invert_option(parser, "images before embedding")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_json_option(parser):
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def given(args, *dests):
    """The options among `dests` that were given (not None), as `--flag` names.

    Switches that may be refused use `action="store_true", default=None`,
    and `--invert/--no-invert` is None unless given either way.
    """
    return ["--" + d.replace("_", "-") for d in dests if getattr(args, d) is not None]


def refuse(flags, reason):
    """Raise a `ConfigError` if any of `flags` (from `given`) was given: they do not apply, because `reason`."""
    if flags:
        from ..errors import ConfigError

        raise ConfigError(f"{', '.join(flags)} {'does' if len(flags) == 1 else 'do'} not apply: {reason}")


def check_threshold_options(args):
    """`--method` picks a calibrated threshold, so it cannot go with `--threshold`."""
    if args.threshold is not None:
        refuse(given(args, "method"), "--threshold replaces the calibrated thresholds that --method chooses from")


def resolve_defaults(args, defaults):
    """Set each option of `defaults` that was not given to its default."""
    for dest, value in defaults.items():
        if getattr(args, dest) is None:
            setattr(args, dest, value)
