"""Data-parallel training: the `distribute` option and the engine each backend runs it on.

With `distribute = "data-parallel"` (`siamkit train --distribute
data-parallel`, or `train(config, distribution="data-parallel")`) the model
is replicated on every device and each global batch is split between them:

- JAX: `keras.distribution.DataParallel` over every device that
  `keras.distribution.list_devices()` reports. With the variables
  `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`
  and `KERAS_DISTRIBUTION_PROCESS_ID` set, `keras.distribution.initialize`
  first joins the hosts into one cluster, and each process feeds its own
  slice of every batch (`local_batches`).
- TensorFlow: `tf.distribute.MirroredStrategy` on one host,
  `MultiWorkerMirroredStrategy` across the hosts named by `TF_CONFIG`
  (`siamkit.backend.tensorflow.data_parallel_strategy`).
- torch: refused (`check`).

The batch losses see the whole global batch, not a replica's slice: under
JAX the jitted step computes on the global (sharded) batch, and under
`tf.distribute` the losses and `CrossModalScores` gather every replica's
items (`siamkit.losses.base.global_batch`), so a step's loss and gradients
are those of one device on the same batch. `batch_size` (or P x K) is the
global batch: each of R replicas gets 1/R of it, and every batch must split
evenly (`check_batches`). Under JAX, which shards every batch it runs,
validation arrays are cut to a multiple of R (`validation_input`) and
callbacks predict on one device (`paused`).

Example:

>>> with scope("data-parallel"):                          # doctest: +SKIP
...     model = build(); model.compile(...); fit_sampler(model, sampler)
"""

import contextlib
import functools
import os

import keras

from ..errors import ConfigError, check_choice

DISTRIBUTIONS = ("none", "data-parallel")
# What runs data-parallel training on each backend that has it.
ENGINES = {
    "jax": "keras.distribution.DataParallel",
    "tensorflow": "tf.distribute.MirroredStrategy / MultiWorkerMirroredStrategy",
}
# Set on every host of a multi-host JAX cluster; `keras.distribution.initialize` reads them.
JAX_CLUSTER_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES")


def check(distribution):
    """`distribution` checked against the Keras backend: `"data-parallel"`, or None for one device.

    Raises a `ConfigError` for an unknown value, or for data-parallel
    training on a backend without an engine for it (torch).

    Example:

    >>> check("none") is None
    True
    """
    if distribution is None or distribution == "none":
        return None
    check_choice("distribute", distribution, DISTRIBUTIONS)
    backend = keras.backend.backend()
    if backend not in ENGINES:
        raise ConfigError(
            f"distribute {distribution!r} is not available on the {backend} backend; "
            f"it runs on jax ({ENGINES['jax']}) or tensorflow ({ENGINES['tensorflow']}): set KERAS_BACKEND"
        )
    return distribution


@functools.cache
def _join_jax_cluster():
    """`keras.distribution.initialize()` once per process, when the cluster variables are set."""
    if any(os.environ.get(name) for name in JAX_CLUSTER_VARIABLES):
        keras.distribution.initialize()


def engine(distribution):
    """What runs `distribution` in its `scope()`: a Keras `Distribution` or a `tf.distribute` strategy.

    None for one device. The first call joins a multi-host cluster (JAX:
    `keras.distribution.initialize`; TensorFlow: the one, cached strategy),
    so make it before anything runs on the devices, as `train` does.
    """
    if check(distribution) is None:
        return None
    if keras.backend.backend() == "jax":
        _join_jax_cluster()
        return keras.distribution.DataParallel()
    from ..backend.tensorflow import data_parallel_strategy

    return data_parallel_strategy()


@contextlib.contextmanager
def scope(distribution):
    """Build, compile and fit a model inside this to train it data-parallel (a no-op for one device).

    Args:
        distribution: `"data-parallel"`, or None / `"none"`.

    Example:

    >>> with scope(None):
    ...     replicas()
    1
    """
    runner = engine(distribution)
    if runner is None:
        yield
        return
    with runner.scope():
        yield


def replicas():
    """How many replicas share each batch in the current scope (1 outside a data-parallel `scope`)."""
    if keras.backend.backend() == "tensorflow":
        from ..backend.tensorflow import replicas as tf_replicas

        return tf_replicas()
    if keras.backend.backend() == "jax" and keras.distribution.distribution() is not None:
        return int(keras.distribution.distribution().device_mesh.devices.size)
    return 1


@contextlib.contextmanager
def paused():
    """Keras calls inside this run on one device, in a data-parallel fit too (a callback's predictions).

    Under JAX, `DataParallel` shards every batch that a model predicts on
    between the devices, so a batch that does not split evenly fails;
    paused, the replicated model predicts batches of any size. Elsewhere a
    no-op: `tf.distribute` splits uneven batches itself.

    Example:

    >>> with paused():
    ...     replicas()
    1
    """
    current = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
    if current is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def validation_input(data):
    """`fit`'s validation data for the current scope: `data`, or what of it splits evenly between the replicas.

    Under JAX data parallelism `fit` shards every validation batch, the
    last one too, between the devices: validation arrays are cut to a
    multiple of the replica count (at most `replicas() - 1` items fewer
    than on one device), and a validation sampler must split evenly
    (`check_batches`). Elsewhere `data` as it is.

    Args:
        data: None, a siamkit sampler, or a tuple of arrays (`(x, y)`, `([x1, x2], same)`).
    """
    count = replicas()
    if data is None or count == 1 or keras.backend.backend() != "jax":
        return data
    if isinstance(data, keras.utils.PyDataset):
        check_batches(data)
        return data
    size = len(keras.tree.flatten(data)[0])
    return keras.tree.map_structure(lambda v: v[: size - size % count], data)


def check_batches(sampler):
    """Refuse a sampler whose first or last batch does not split evenly between the replicas.

    Raises:
        ConfigError: naming the batch, its size and what to change.
    """
    count = replicas()
    if count == 1:
        return
    for i in sorted({0, len(sampler) - 1}):  # every batch but the last has the first's size
        size = len(keras.tree.flatten(sampler[i])[0])
        if size % count:
            raise ConfigError(
                f"data-parallel training splits every batch evenly between {count} replicas, but batch {i} "
                f"holds {size} items; make batch_size (P x K for triplet and prototypical) and pairs_per_epoch "
                f"multiples of {count}"
            )


class ProcessSlice(keras.utils.PyDataset):
    """One process's part of a sampler's batches: rows `[k n / m, (k + 1) n / m)` of each batch of n, process k of m.

    Under multi-host JAX `fit` assembles the global batch from each
    process's part, so each feeds its own rows of the same (seeded) batch.

    Args:
        sampler: a siamkit sampler (`EpochSeeded`).
        index: this process's index.
        count: how many processes there are.
    """

    def __init__(self, sampler, index, count):
        super().__init__()
        self.sampler, self.index, self.count = sampler, index, count

    def __len__(self):
        return len(self.sampler)

    def __getitem__(self, i):
        def part(x):
            step = len(x) // self.count
            return x[self.index * step:(self.index + 1) * step]

        return keras.tree.map_structure(part, self.sampler[i])

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def on_epoch_end(self):
        self.sampler.on_epoch_end()


def local_batches(sampler):
    """What this process feeds to `fit`: `sampler` itself, or its `ProcessSlice` on a multi-host JAX cluster."""
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return sampler
    from ..backend.jax import process

    index, count = process()
    return sampler if count == 1 else ProcessSlice(sampler, index, count)
