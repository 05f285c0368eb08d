"""TensorFlow-only fast paths.

This module is the one home of code that runs on one Keras backend only;
everything else in siamkit is written against `keras.ops` and runs on
every backend. Callers import it only when `keras.backend.backend()` is
`"tensorflow"`, so the other backends never import TensorFlow.
"""

import numpy as np
import tensorflow as tf


def sampler_dataset(sampler):
    """A `tf.data.Dataset` of a siamkit sampler's batches, for `fit` on TensorFlow.

    Batch indices are mapped through `tf.numpy_function`, one batch ahead,
    in order, by one thread; the sampler's own `workers` and
    `use_multiprocessing` options are not used. Nothing tells the pipeline
    that an epoch ended: pair it with `siamkit.training.feed.SamplerEpoch`,
    as `siamkit.training.feed.fit_input` does.

    Args:
        sampler: a siamkit sampler (`PairDataset`, `TripletDataset`,
            `ClassBalancedBatches`, `LabelledPairs`, `CrossModalPairs`).

    Example:

    >>> data = sampler_dataset(PairDataset(x, y, batch_size=128))   # doctest: +SKIP
    >>> model.fit(data, callbacks=[SamplerEpoch(sampler)], shuffle=False)   # doctest: +SKIP
    """
    probe = sampler[0]  # batches are pure functions of (seed, epoch, index): drawing one changes nothing
    flat = [np.asarray(part) for part in tf.nest.flatten(probe)]
    dtypes = [tf.as_dtype(part.dtype) for part in flat]
    shapes = [(None, *part.shape[1:]) for part in flat]  # the last batch may be short

    def load(i):
        return [np.asarray(part) for part in tf.nest.flatten(sampler[int(i)])]

    def batch(i):
        parts = tf.numpy_function(load, [i], dtypes)
        return tf.nest.pack_sequence_as(probe, [tf.ensure_shape(p, s) for p, s in zip(parts, shapes)])

    # One batch ahead: drawn while the previous step trains, in order, by one thread.
    return tf.data.Dataset.range(len(sampler)).map(batch).prefetch(1)
