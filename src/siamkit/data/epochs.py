"""`EpochSeeded`: the epoch bookkeeping every siamkit sampler shares."""

import keras
import numpy as np


class EpochSeeded(keras.utils.PyDataset):
    """A `PyDataset` whose batches are pure functions of `(seed, epoch, batch index)`.

    Subclasses set `self.seed`, call `self._draw()` at the end of their
    `__init__` and draw per-batch randomness from `self._rng(i)`. `set_epoch`
    puts a sampler at any epoch: `siamkit.training.fit_sampler` calls it as
    each epoch of `fit` begins, on every backend, so a resumed run draws the
    batches it would have drawn. Keras' own `PyDataset` path also calls
    `on_epoch_end`, which moves to the next epoch.
    """

    epoch = 0

    def _rng(self, *key):
        return np.random.default_rng([self.seed, self.epoch, *key])

    def _draw(self):
        """Draw whatever the current epoch needs before its batches are asked for."""

    def set_epoch(self, epoch):
        """Put the sampler at `epoch` (0-based); a no-op when it is there already."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._draw()

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)
