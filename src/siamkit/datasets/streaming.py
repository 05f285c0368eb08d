"""`ImageBatches`: a `keras.utils.PyDataset` over images that stay on disk.

Batches are decoded by Keras' worker processes (`workers=4,
use_multiprocessing=True`) from an `ImageStore`, optionally through its
decoded-image cache. Use it to embed or predict on folders larger than
memory; for training, the samplers of `siamkit.data` take an `ImageStore`
as their `x` in the same way.

Example:

>>> ds = load_folder("big_folder", image_size=105, channels=1, stream=True)      # doctest: +SKIP
>>> batches = ImageBatches(ds.x, batch_size=256, workers=4, use_multiprocessing=True)
>>> embeddings = encoder.predict(batches)
"""

import math

import keras
import numpy as np

from ..errors import DataError


class ImageBatches(keras.utils.PyDataset):
    """Batches of `x` (and `y`), in order or shuffled each epoch.

    Every batch is a pure function of `(seed, epoch, batch index)`, so the
    result does not depend on the number of workers.

    Args:
        x: an `ImageStore` or any array indexed by integer arrays.
        y: optional labels; batches are then `(x, y)`.
        batch_size: samples per batch.
        shuffle: draw a new order each epoch.
        augment: optional `augment(batch, rng) -> batch`.
        seed: seeds the order and the augmentation.
        **kwargs: `keras.utils.PyDataset` options (`workers`,
            `use_multiprocessing`, `max_queue_size`).
    """

    def __init__(self, x, y=None, batch_size=32, shuffle=False, augment=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        if y is not None and len(y) != len(x):
            raise DataError(f"x has {len(x)} samples but y has {len(y)}; give one label per sample")
        self.x, self.y = x, None if y is None else np.asarray(y)
        self.batch_size = int(batch_size)
        self.shuffle, self.augment, self.seed = bool(shuffle), augment, int(seed)
        self.epoch = 0
        self._order()

    def _order(self):
        n = len(self.x)
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        batch = np.asarray(self.x[idx], dtype="float32")
        if self.augment is not None:
            batch = self.augment(batch, np.random.default_rng([self.seed, self.epoch, i]))
        return batch if self.y is None else (batch, self.y[idx])

    def on_epoch_end(self):
        self.epoch += 1
        self._order()
