"""Resolve a training config's data options into arrays, and record what was used.

One of three inputs, by config key:

- `dataset`: a standard dataset name (`siamkit.datasets.load`), with
  `subset` and `data_dir`;
- `data`: an image folder with one sub-folder per class (with `data_b`, a
  second root of another modality, paired by class name);
- `pairs_csv`: a CSV of `path_a,path_b,label` (with `data` and `data_b` as
  the roots of its two columns, for cross-modal pairs).

`load_towers` resolves the two sides of a two-tower config (`towers = 2`):
two class-folder roots (`data`, `data_b`), two standard datasets
(`dataset`, `dataset_b`), or a CSV of matching pairs (`pairs_csv`, its
columns relative to `data` and `data_b`).

`image_size`, `channels`, `skip_bad`, `max_pixels`, `stream` and
`cache_dir` set how files become arrays. With a run directory, the files
used go to `manifest.csv` (and `manifest_b.csv` for a second root), and with
`skip_bad` the files left out go to `bad_files.csv` (`file,reason`).
"""

import os

from ..errors import ConfigError, DataError
from . import images
from .folders import (
    load_cross_modal, load_folder, load_pairs, load_positive_pairs, write_bad_files, write_manifest,
)
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
        record_inputs(loaded, run_dir, options["skip_bad"])
    return loaded


def record_inputs(loaded, run_dir, skip_bad):
    """Write `manifest.csv` (and `manifest_b.csv`, and with `skip_bad` `bad_files.csv`) for loaded data."""
    parts = loaded if isinstance(loaded, tuple) else (loaded,)
    for part, name in zip(parts, (MANIFEST_FILE, MANIFEST_B_FILE)):
        write_manifest(part, os.path.join(run_dir, name))
    if skip_bad:
        bad = [row for part in parts for row in part.info["bad_files"]]
        write_bad_files(bad, os.path.join(run_dir, BAD_FILES_FILE))


def _side(loaded, modality, side, where):
    """Record the side's modality, checking it against `modality` when given."""
    found = loaded.info.get("modality")
    if found is None:  # a standard dataset: its registry entry says
        from .registry import get_spec

        found = get_spec(loaded.name).modality
    if modality is not None and modality != found:
        raise DataError(f"{where}: holds {found} data, but modality_{side} is {modality!r}; fix one of them")
    loaded.info["modality"] = found
    return loaded


def load_towers(config, run_dir=None):
    """Load the two sides of a two-tower config, and record them in `run_dir`.

    Args:
        config: a training config with `towers = 2`.
        run_dir: where `manifest.csv`, `manifest_b.csv` (and with
            `skip_bad`, `bad_files.csv`) go, or None.

    Returns:
        `(dataset_a, dataset_b)`: labels index the same class names on both
        sides; `info["modality"]` is `"image"`, `"audio"`, `"text"` or
        `"features"`. Text sides hold strings, audio sides `Waveforms`.

    Example:

    >>> a, b = load_towers({"data": "sketches", "data_b": "photos", "towers": 2})   # doctest: +SKIP
    """
    data, data_b, pairs_csv = config.get("data"), config.get("data_b"), config.get("pairs_csv")
    dataset, dataset_b = config.get("dataset"), config.get("dataset_b")
    options = _file_options(config)
    side_b = {"image_size_b": images.parse_image_size(config.get("image_size_b")),
              "channels_b": images.check_channels(config.get("channels_b"))}
    modalities = (config.get("modality_a"), config.get("modality_b"))
    if config.get("stream"):
        raise ConfigError("stream reads one image folder per batch; a two-tower network loads both sides in memory")
    if pairs_csv:
        if dataset or dataset_b:
            raise ConfigError("a pairs CSV names the files of both sides; give no dataset or dataset_b with it")
        parts = load_positive_pairs(
            pairs_csv, data, data_b, text_a=modalities[0] == "text", text_b=modalities[1] == "text",
            **options, **side_b,
        )
        where = (pairs_csv, pairs_csv)
    elif data or data_b:
        if not (data and data_b) or dataset or dataset_b:
            raise ConfigError(
                "give the two sides alike: two class-folder roots (data and data_b), two standard datasets "
                "(dataset and dataset_b), or a pairs CSV"
            )
        parts = load_cross_modal(data, data_b, **options, **side_b)
        where = (data, data_b)
    else:
        if not (dataset and dataset_b):
            raise ConfigError(
                "a two-tower network needs two sides: data and data_b (class folders), dataset and dataset_b, "
                "or a pairs CSV with both roots"
            )
        parts = []
        for name, subset, (size, chans) in (
            (dataset, config.get("subset"), (options["image_size"], options["channels"])),
            (dataset_b, config.get("subset_b"), (side_b["image_size_b"], side_b["channels_b"])),
        ):
            parts.append(load(name, subset=subset, image_size=size, channels=chans, data_dir=config.get("data_dir")))
        names = [p.info.get("class_names") for p in parts]
        if names[0] != names[1]:
            raise DataError(
                f"{dataset} and {dataset_b} have different classes ({names[0]} and {names[1]}); "
                "pairing matches classes by name"
            )
        where = (dataset, dataset_b)
    parts = tuple(_side(p, m, s, w) for p, m, s, w in zip(parts, modalities, "ab", where))
    if run_dir is not None and (data or pairs_csv):
        record_inputs(parts, run_dir, options["skip_bad"])
    return parts
