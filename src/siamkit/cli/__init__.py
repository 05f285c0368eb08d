"""The `siamkit` command line.

Each sub-command lives in its own module of this package, which defines
`add_parser(subparsers)`; the parser it adds sets `func` to the function
that runs the command. Errors a user can fix (`SiamkitError`, missing
files, an option that does not apply to the run) print one line and exit
with status 2, without a traceback. Ctrl-C (SIGINT) and SIGTERM stop a
command as an exception would, so files being written are left whole or
not at all; they exit with status 130 and 143. Building the parser imports
no Keras: shared options and their choices come from `options`.
"""

import argparse
import errno
import importlib
import importlib.util
import logging
import os
import signal
import sys

# Sub-command modules, in the order `siamkit --help` lists them.
COMMANDS = ("train", "evaluate", "report", "compare", "datasets", "embed", "export", "index", "search", "dedupe",
            "serve")


def _quiet_tensorflow():
    """Keep TensorFlow's start-up log lines out of the terminal.

    Most obey TF_CPP_MIN_LOG_LEVEL, set before the import; a few are written
    by C++ before logging is configured, so the import itself runs with the
    stderr file descriptor pointed at /dev/null. TensorFlow's Python logger
    (retracing notes when a run embeds batches of several sizes) is kept to
    errors.
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def build_parser():
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="siamkit", description="Train, evaluate, search and serve Siamese similarity networks."
    )
    parser.add_argument("--version", action="version", version=f"siamkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that `finally` blocks and atomic writes clean up."""


def _terminate(signum, frame):
    raise Terminated


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)  # `--help` exits here, before TensorFlow is imported
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return _run(args)
    except KeyboardInterrupt as err:  # a stop that lands while an error is reported or the handler restored
        return _stopped(args, err)


def _run(args):
    from ..errors import SiamkitError

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _quiet_tensorflow()
        return args.func(args) or 0
    except SiamkitError as err:
        print(f"siamkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"siamkit {args.command}: error: {_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        return _stopped(args, err)
    finally:
        signal.signal(signal.SIGTERM, previous)


# What to do about a failed read or write, by its errno; every write is atomic, so earlier files are intact.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run the same command again (files written before are intact)",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable folder (--out)",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
}


def _os_error(err):
    """One line for an `OSError`: the file, what happened and, where known, what to do."""
    where = f"{err.filename}: " if err.filename else ""
    hint = _OS_HINTS.get(err.errno)
    return f"{where}{err.strerror or err}" + (f"; {hint}" if hint else "")


def _stopped(args, err):
    """Ctrl-C (130) or SIGTERM (143): one line, and the same command finishes the work."""
    stopped = "terminated" if isinstance(err, Terminated) else "interrupted"
    print(f"siamkit {args.command}: {stopped}; run the same command again to finish", file=sys.stderr)
    return 143 if isinstance(err, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
