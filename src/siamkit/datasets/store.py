"""`ImageStore`: image files as a lazy array, for folders larger than memory.

Indexing decodes the files (`store[idx]` -> float32 `(k, h, w, c)`), so the
samplers in `siamkit.data` read it like an array, batch by batch, in their
worker processes. An optional decoded-image cache (a uint8 `.npy` memory map
plus a "filled" flag per image) makes every epoch after the first a read
instead of a decode; it is keyed by the files' paths, sizes and modification
times and the image policy, so a changed folder gets a fresh cache.

Example:

>>> store = ImageStore(paths, image_size=(64, 64), channels=3, cache_dir="cache")   # doctest: +SKIP
>>> store[[0, 5, 9]].shape
(3, 64, 64, 3)
"""

import copy
import hashlib
import json
import os

import numpy as np

from .. import _io
from ..errors import ConfigError
from . import images


class ImageStore:
    """Image files decoded on demand under one size and channel policy.

    Args:
        paths: image files.
        image_size: `(h, w)` (or `N`); every image is resized to it.
        channels: 1, 3 or 4.
        max_pixels: as for `images.read_header`.
        cache_dir: folder for the decoded-image cache, or None for none.
    """

    def __init__(self, paths, image_size, channels, max_pixels=None, cache_dir=None):
        self.paths = [os.fspath(p) for p in paths]
        self.image_size = images.parse_image_size(image_size)
        self.channels = images.check_channels(channels)
        if self.channels is None:
            raise ConfigError("ImageStore needs explicit channels (1, 3 or 4), got None")
        self.max_pixels = max_pixels
        self.rows = np.arange(len(self.paths))
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self._cache = None
        if self.cache_dir is not None:
            self._create_cache()

    # --- array protocol -------------------------------------------------
    @property
    def shape(self):
        return (len(self.rows), *self.image_size, self.channels)

    @property
    def dtype(self):
        return np.dtype("float32")

    @property
    def ndim(self):
        return 4

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return images.to_float(self._load(self.rows[key]))
        rows = self.rows[key]
        out = np.empty((len(rows), *self.image_size, self.channels), dtype="uint8")
        for i, row in enumerate(rows):
            out[i] = self._load(row)
        return images.to_float(out)

    def __array__(self, dtype=None, copy=None):
        x = self[:]
        return x if dtype is None else x.astype(dtype)

    def subset(self, sel):
        """A lazy view of the selected images (sharing the cache)."""
        view = copy.copy(self)
        view.rows, view._cache = self.rows[sel], None
        return view

    def __repr__(self):
        return (
            f"ImageStore(n={len(self)}, image_size={self.image_size}, channels={self.channels}, cache={self.cache_dir})"
        )

    # --- decoding and the cache -----------------------------------------
    def _decode(self, row):
        return images.decode(self.paths[row], self.image_size, self.channels, self.max_pixels)

    def _load(self, row):
        if self.cache_dir is None:
            return self._decode(row)
        pixels, filled = self._open_cache()
        if not filled[row]:
            pixels[row] = self._decode(row)
            filled[row] = 1  # after the pixels, so a reader never sees a half-written image
        return pixels[row]

    def _cache_files(self):
        return (os.path.join(self.cache_dir, f"{self._key}.{part}.npy") for part in ("images", "filled"))

    def _create_cache(self):
        digest = hashlib.sha256(json.dumps([self.image_size, self.channels]).encode())
        for path in self.paths:
            st = os.stat(path)
            digest.update(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        self._key = digest.hexdigest()[:24]
        pixels_path, filled_path = self._cache_files()
        if os.path.isfile(pixels_path) and os.path.isfile(filled_path):
            return
        n = len(self.paths)
        for path, shape in ((pixels_path, (n, *self.image_size, self.channels)), (filled_path, (n,))):
            with _io.atomic_path(path, suffix=".npy") as tmp:
                np.lib.format.open_memmap(tmp, mode="w+", dtype="uint8", shape=shape).flush()

    def _open_cache(self):
        # Opened per process: memory maps are not pickled to worker processes.
        if self._cache is None:
            self._cache = tuple(np.load(p, mmap_mode="r+", allow_pickle=False) for p in self._cache_files())
        return self._cache

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None
        return state
