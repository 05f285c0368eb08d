"""`fit_sampler` and `fit_input`: hand one of siamkit's samplers to `fit`, fast on every backend.

Keras feeds a `PyDataset` to TensorFlow through
`tf.data.Dataset.from_generator`; on 2 CPU cores that path halved training
throughput (`benchmarks/train_throughput.py`: 490 pairs/s against 910 for the
same model fed by a `train_on_batch` loop). On TensorFlow, `fit_input` maps
batch indices through `tf.numpy_function` instead, which ran at 879 pairs/s;
on JAX and torch Keras already iterates the `PyDataset` directly.
"""

import keras
import numpy as np


class SamplerEpoch(keras.callbacks.Callback):
    """Tells a sampler which epoch `fit` is in, so a resumed run draws the batches it would have drawn.

    Args:
        sampler: a `siamkit.data.epochs.EpochSeeded` sampler.
    """

    def __init__(self, sampler):
        super().__init__()
        self.sampler = sampler

    def on_epoch_begin(self, epoch, logs=None):
        self.sampler.set_epoch(epoch)


def _tf_dataset(sampler):
    import tensorflow as tf

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


def fit_input(sampler):
    """`(data, callback)` to pass to `fit` for `sampler`: `model.fit(data, callbacks=[callback, ...])`.

    The callback is not optional: Keras never tells a `tf.data` pipeline that
    an epoch ended, so without it every epoch would replay epoch 0's batches.
    `fit_sampler` wires both. To continue training in a second `fit` call,
    pass `initial_epoch`, as Keras expects anyway. On TensorFlow the
    sampler's `workers` and `use_multiprocessing` options are not used:
    batches are drawn one ahead by one tf.data thread.

    Args:
        sampler: a siamkit sampler (`PairDataset`, `TripletDataset`,
            `ClassBalancedBatches`, `LabelledPairs`, `CrossModalPairs`).

    Example:

    >>> data, epochs = fit_input(PairDataset(x, y, batch_size=128))  # doctest: +SKIP
    >>> model.fit(data, epochs=10, callbacks=[epochs], shuffle=False)  # doctest: +SKIP
    """
    data = _tf_dataset(sampler) if keras.backend.backend() == "tensorflow" else sampler
    return data, SamplerEpoch(sampler)


def fit_sampler(model, sampler, callbacks=(), **kwargs):
    """`model.fit` on a siamkit sampler, fed by `fit_input`; returns Keras' `History`.

    Args:
        model: a compiled `keras.Model`.
        sampler: a siamkit sampler.
        callbacks: more Keras callbacks.
        **kwargs: the other arguments of `fit` (`epochs`, `validation_data`,
            `initial_epoch`, `verbose`, ...). The samplers shuffle
            themselves, so `shuffle` is always False.

    Example:

    >>> fit_sampler(encoder, ClassBalancedBatches(x, y, 16, 4), epochs=5)  # doctest: +SKIP
    """
    data, epoch = fit_input(sampler)
    return model.fit(data, callbacks=[epoch, *callbacks], shuffle=False, **kwargs)
