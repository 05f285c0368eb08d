"""MNIST and Fashion-MNIST: official idx files -> the cache schema -> arrays.

Cache schema (`mnist.npz`, `fashion_mnist.npz`): `train_images` (60000, 28, 28)
uint8, `train_labels` (60000,) uint8, `test_images` (10000, 28, 28) uint8,
`test_labels` (10000,) uint8, in the official order.
"""

import gzip

import numpy as np

from ..errors import DataError
from .sources import Remote, ensure

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
PARTS = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def parse_idx(data, name="idx file"):
    """Parse the bytes of an idx file (LeCun's format) into an array.

    The header is two zero bytes, a type code, the number of dimensions,
    then each dimension as a big-endian uint32.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an idx file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{name}: header says shape {dims} but the file holds {len(body)} bytes of data")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def convert_idx(paths):
    """Official gzipped idx files -> the cache schema's arrays.

    Args:
        paths: `{file name in PARTS: path}`.
    """
    arrays = {}
    for key, filename in PARTS.items():
        try:
            with gzip.open(paths[filename], "rb") as f:
                arrays[key] = parse_idx(f.read(), filename)
        except (OSError, EOFError) as err:
            raise DataError(f"{filename}: not a readable gzip file ({err})") from None
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{part}: {images.shape} images do not match {labels.shape} labels")
    return arrays


def _remote(base, checksums):
    return Remote({name: (base + name, sha) for name, sha in zip(PARTS.values(), checksums)}, convert_idx)


REMOTES = {
    "mnist": _remote(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ),
    "fashion_mnist": _remote(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    ),
}


def read(name, subset=None, data_dir=None, download=True):
    """Read MNIST or Fashion-MNIST from the cache schema.

    Args:
        name: `"mnist"` or `"fashion_mnist"`.
        subset: `"train"`, `"test"`, or None for both (train first).
        data_dir, download: as for `sources.ensure`.

    Returns:
        `(images, labels, meta, info)`: uint8 `(n, 28, 28)` with ink high,
        int64 labels, `meta["split"]` (0 train, 1 test), `info["class_names"]`.
    """
    path = ensure(f"{name}.npz", REMOTES[name], data_dir, download)
    parts = ("train", "test") if subset is None else (subset,)
    with np.load(path, allow_pickle=False) as f:
        images = [f[f"{p}_images"] for p in parts]
        labels = [f[f"{p}_labels"].astype("int64") for p in parts]
    split = np.concatenate([np.full(len(y), ("train", "test").index(p), "uint8") for p, y in zip(parts, labels)])
    class_names = list(FASHION_CLASSES) if name == "fashion_mnist" else [str(i) for i in range(10)]
    return np.concatenate(images), np.concatenate(labels), {"split": split}, {"class_names": class_names, "path": path}
