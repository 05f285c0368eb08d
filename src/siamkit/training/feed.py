"""`fit_sampler` and `fit_input`: hand one of siamkit's samplers to `fit`, fast on every backend.

On JAX and torch, Keras iterates a sampler (a `keras.utils.PyDataset`)
directly. On TensorFlow, Keras would wrap it in
`tf.data.Dataset.from_generator`, which is markedly slower on few CPU cores
(see `benchmarks/train_throughput.py`), so `fit_input` hands `fit` the
`tf.data` pipeline of `siamkit.backend.tensorflow.sampler_dataset` instead.
Inside a data-parallel `siamkit.training.distribute.scope`, every batch is
the global batch, split between the replicas.
"""

import keras

from .distribute import check_batches, local_batches


class SamplerEpoch(keras.callbacks.Callback):
    """Tells a sampler which epoch `fit` is in, so a resumed run draws the batches it would have drawn.

    It also puts the model's random layers (dropout, `SpecAugment`, ...) at
    the same draws for each epoch: their `keras.random.SeedGenerator` states
    are not in a `BackupAndRestore` checkpoint, so each epoch begins them at
    their state when training began, moved on by `epoch * 2**20` draws.

    Args:
        sampler: a `siamkit.data.epochs.EpochSeeded` sampler.
    """

    def __init__(self, sampler):
        super().__init__()
        self.sampler = sampler
        self._seeds = []

    def on_train_begin(self, logs=None):
        self._seeds = [(v, keras.ops.convert_to_numpy(v).astype("int64")) for v in self.model.variables
                       if v.name == "seed_generator_state"]

    def on_epoch_begin(self, epoch, logs=None):
        self.sampler.set_epoch(epoch)
        for variable, start in self._seeds:  # [seed, draws so far]
            variable.assign(((start + [0, epoch * 2**20]) % 2**32).astype(variable.dtype))


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
    if keras.backend.backend() == "tensorflow":
        from ..backend.tensorflow import sampler_dataset

        return sampler_dataset(sampler), SamplerEpoch(sampler)
    return local_batches(sampler), SamplerEpoch(sampler)


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
    check_batches(sampler)
    data, epoch = fit_input(sampler)
    return model.fit(data, callbacks=[epoch, *callbacks], shuffle=False, **kwargs)
