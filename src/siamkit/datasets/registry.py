"""Dataset names, what each holds, and the `load` entry point."""

import dataclasses
import functools

from ..errors import ConfigError, check_choice
from . import fsdd, images, mnist, omniglot, sources
from .base import Dataset


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a standard dataset is, without loading it.

    Args:
        name: the name `load` takes.
        description: one line.
        modality: `"image"` or `"audio"`.
        sizes: `{subset: number of samples}`.
        classes: number of classes.
        shape: one sample's shape (images), or None.
        file: the cache file name, or None when bundled with a package.
        source: where the data comes from.
        read: the reader: images return `(images, labels, meta, info)` with
            uint8 (or float32 in [0, 1]) images,
            audio returns a `Dataset`.
    """

    name: str
    description: str
    modality: str
    sizes: dict
    classes: int
    shape: tuple
    file: str
    source: str
    read: object = dataclasses.field(repr=False, compare=False)

    @property
    def subsets(self):
        return tuple(self.sizes)

    @property
    def size(self):
        return sum(self.sizes.values())

    def location(self, data_dir=None):
        """Where the data is now: a path, `"bundled"`, or None if not cached."""
        return "bundled" if self.file is None else sources.find(self.file, data_dir)


def _read_digits(subset=None, data_dir=None, download=True):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = (bunch.images / 16.0).astype("float32")  # 17 grey levels; uint8 would round them
    info = {"class_names": [str(i) for i in range(10)], "source": "sklearn.datasets.load_digits"}
    return pixels, bunch.target.astype("int64"), {}, info


DATASETS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "scikit-learn's bundled 8x8 handwritten digits (no download)",
            "image",
            {"all": 1797},
            10,
            (8, 8, 1),
            None,
            "scikit-learn (UCI optical digits test set)",
            _read_digits,
        ),
        DatasetSpec(
            "mnist",
            "MNIST handwritten digits, 28x28 grayscale",
            "image",
            {"train": 60000, "test": 10000},
            10,
            (28, 28, 1),
            "mnist.npz",
            "LeCun, Cortes & Burges; CC BY-SA 3.0",
            functools.partial(mnist.read, "mnist"),
        ),
        DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST clothing images, 28x28 grayscale",
            "image",
            {"train": 60000, "test": 10000},
            10,
            (28, 28, 1),
            "fashion_mnist.npz",
            "Zalando Research; MIT licence",
            functools.partial(mnist.read, "fashion_mnist"),
        ),
        DatasetSpec(
            "omniglot",
            "Omniglot handwritten characters of 50 alphabets, 105x105 binary",
            "image",
            {"background": 19280, "evaluation": 13180},
            1623,
            (105, 105, 1),
            "omniglot.npz",
            "Lake, Salakhutdinov & Tenenbaum (2015); MIT licence",
            omniglot.read,
        ),
        DatasetSpec(
            "fsdd",
            "Free Spoken Digit Dataset, 8 kHz int16 recordings of 6 speakers",
            "audio",
            {"train": 2700, "test": 300},
            10,
            None,
            "fsdd.npz",
            "Jakobovski et al.; CC BY-SA 4.0",
            fsdd.load_fsdd,
        ),
    )
}


def get_spec(name):
    """The `DatasetSpec` of `name`; `ConfigError` for an unknown name."""
    return DATASETS[check_choice("dataset", name, list(DATASETS))]


def load(name, subset=None, image_size=None, channels=None, data_dir=None, download=True):
    """Load a standard dataset by name.

    Data comes from `data_dir`, `$SIAMKIT_DATA_DIR`, the user cache, or a
    checked download, in that order (see `siamkit.datasets.sources`).

    Args:
        name: one of `DATASETS`: digits, mnist, fashion_mnist, omniglot, fsdd.
        subset: one of the dataset's subsets (`"train"`/`"test"`,
            `"background"`/`"evaluation"`), or None for all of it.
        image_size: resize images to `N` x `N` (or `(h, w)`); None keeps them.
        channels: 1 or 3 to convert images; None keeps them grayscale.
        data_dir: a folder of `.npz` files to look in first.
        download: False never touches the network.

    Returns:
        A `Dataset`: images float32 `(n, h, w, c)` in [0, 1] with ink high,
        integer labels `y`, per-sample `meta`, and `info`; for `fsdd`, `x` is
        a `Waveforms`.

    Example:

    >>> from siamkit import datasets
    >>> ds = datasets.load("digits", image_size=16, channels=3)
    >>> ds.x.shape, ds.x.dtype.name, ds.num_classes
    ((1797, 16, 16, 3), 'float32', 10)
    """
    spec = get_spec(name)
    if subset is not None and len(spec.subsets) > 1:
        check_choice(f"{name} subset", subset, list(spec.subsets))
    elif subset is not None:
        raise ConfigError(f"dataset {name!r} has no subsets; leave subset unset")
    if spec.modality == "audio":
        if image_size is not None or channels is not None:
            raise ConfigError(f"dataset {name!r} is audio: image_size and channels do not apply")
        return spec.read(subset, data_dir, download)
    pixels, labels, meta, info = spec.read(subset=subset, data_dir=data_dir, download=download)
    pixels = pixels[..., None] if pixels.ndim == 3 else pixels
    if image_size is not None:
        pixels = images.resize(pixels, image_size)
    pixels = images.convert_channels(pixels, channels)
    info = {**info, "image_size": pixels.shape[1:3], "channels": pixels.shape[-1]}
    return Dataset(name, images.to_float(pixels), labels, meta, info)
