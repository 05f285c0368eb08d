"""Resolve a training config's data options into arrays, and record what was used.

One of three inputs, by config key:

- `dataset`: a standard dataset name (`siamkit.datasets.load`), with
  `subset` and `data_dir`;
- `data`: an image folder with one sub-folder per class (with `data_b`, a
  second root of another modality, paired by class name);
- `pairs_csv`: a CSV of `path_a,path_b,label` (with `data` and `data_b` as
  the roots of its two columns, for cross-modal pairs).

`image_size`, `channels`, `skip_bad`, `max_pixels`, `stream` and
`cache_dir` set how files become arrays. With a run directory, the files
used go to `manifest.csv` (and `manifest_b.csv` for a second root), and with
`skip_bad` the files left out go to `bad_files.csv` (`file,reason`).
"""

import os

from ..errors import ConfigError
from . import images
from .folders import load_cross_modal, load_folder, load_pairs, write_bad_files, write_manifest
from .registry import load

MANIFEST_FILE = "manifest.csv"
MANIFEST_B_FILE = "manifest_b.csv"
BAD_FILES_FILE = "bad_files.csv"
DEFAULT_DATASET = "digits"


def _file_options(config):
    return {
        "image_size": images.parse_image_size(config.get("image_size")),
        "channels": images.check_channels(config.get("channels")),
        "skip_bad": bool(config.get("skip_bad")),
        "max_pixels": config.get("max_pixels"),
        "progress": config.get("progress", True),
    }


def _check_sources(config):
    data, data_b, pairs_csv = config.get("data"), config.get("data_b"), config.get("pairs_csv")
    dataset = config.get("dataset")
    if (data or pairs_csv) and dataset not in (None, DEFAULT_DATASET):
        given = "--data" if data else "--pairs-csv"
        raise ConfigError(f"give either --dataset {dataset} or {given}, not both")
    if data_b and not data:
        raise ConfigError("data_b (the second modality's root) needs data (the first root)")
    if pairs_csv and bool(data) != bool(data_b):
        raise ConfigError(
            "with a pairs CSV, give both roots (data and data_b, one per column) or neither (paths relative to the CSV)"
        )
    if config.get("stream") and (data_b or pairs_csv or not data):
        raise ConfigError("stream works with an image folder (--data) only")


def load_inputs(config, run_dir=None):
    """Load the data that `config` names, and record it in `run_dir`.

    Args:
        config: a training config (see the module docstring for its keys).
        run_dir: the run directory for `manifest.csv` and `bad_files.csv`,
            or None to write nothing.

    Returns:
        A `Dataset` (standard dataset or image folder), a `Pairs` (pairs
        CSV), or `(Dataset, Dataset)` for two roots paired by class name.
        Image data's resolved policy is in `info["image_size"]` and
        `info["channels"]`.

    Example:

    >>> ds = load_inputs({"data": "photos", "image_size": 105, "channels": 1}, "runs/x")   # doctest: +SKIP
    """
    _check_sources(config)
    data, data_b, pairs_csv = config.get("data"), config.get("data_b"), config.get("pairs_csv")
    if not (data or pairs_csv):
        return load(
            config.get("dataset") or DEFAULT_DATASET,
            subset=config.get("subset"),
            image_size=config.get("image_size"),
            channels=config.get("channels"),
            data_dir=config.get("data_dir"),
        )
    options = _file_options(config)
    if pairs_csv:
        loaded = load_pairs(pairs_csv, root_a=data, root_b=data_b, **options)
    elif data_b:
        loaded = load_cross_modal(data, data_b, **options)
    else:
        loaded = load_folder(
            data, stream=bool(config.get("stream")), cache_dir=config.get("cache_dir"), **options
        )
    if run_dir is not None:
        _record(loaded, run_dir, options["skip_bad"])
    return loaded


def _record(loaded, run_dir, skip_bad):
    parts = loaded if isinstance(loaded, tuple) else (loaded,)
    for part, name in zip(parts, (MANIFEST_FILE, MANIFEST_B_FILE)):
        write_manifest(part, os.path.join(run_dir, name))
    if skip_bad:
        bad = [row for part in parts for row in part.info["bad_files"]]
        write_bad_files(bad, os.path.join(run_dir, BAD_FILES_FILE))
