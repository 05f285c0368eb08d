"""TensorFlow-only code: the `tf.data` feed and `tf.distribute` data parallelism.

This module (with `siamkit.backend.jax`) is the one home of code that runs
on one Keras backend only; everything else in siamkit is written against
`keras.ops` and runs on every backend. Callers import it only when `keras.backend.backend()` is
`"tensorflow"`, so the other backends never import TensorFlow.
"""

import functools
import os

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

    # Data-parallel fits split each global batch into replica slices; across hosts
    # (MultiWorkerMirroredStrategy) the slices are dealt out to the hosts: there are no files to shard by.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # One batch ahead: drawn while the previous step trains, in order, by one thread.
    return tf.data.Dataset.range(len(sampler)).map(batch).prefetch(1).with_options(options)


@functools.cache
def data_parallel_strategy():
    """The `tf.distribute` strategy of data-parallel training on this host or cluster.

    With `TF_CONFIG` set (one JSON per host naming the cluster and this
    host's task), `MultiWorkerMirroredStrategy` across the hosts; else
    `MirroredStrategy` over this host's GPUs or, without GPUs, over its
    logical CPU devices (see `tf.config.set_logical_device_configuration`).
    Model variables created in its `scope()` are mirrored on every replica,
    and `fit` splits each global batch between the replicas and sums their
    gradients. One strategy serves the whole process (every member of an
    ensemble, every fit): a new strategy would number its collectives from
    the start again, and the runtime would pair them with the old ones'.

    Example:

    >>> with data_parallel_strategy().scope():   # doctest: +SKIP
    ...     model = build(); model.compile(...); model.fit(...)
    """
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])


def replicas():
    """How many replicas the current `tf.distribute` strategy trains on (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replicated(model):
    """Whether `model` was built under a strategy of several replicas (see `siamkit.backend.replicated`)."""
    return model.distribute_strategy.num_replicas_in_sync > 1


def gather_replicas(*tensors, after=None):
    """`tensors` of every replica, each concatenated along axis 0, inside a step run by a `tf.distribute` strategy.

    Outside a replica context or with one replica, `tensors` as they are.
    The tensors travel in one collective (flattened to `(n, -1)` float32
    columns side by side, so integer labels must stay below 2**24): the
    replicas of a step run their collectives in whatever order the graph
    allows, and two gathers could pair one replica's labels with another's
    embeddings. For the same reason a gather that belongs after another
    one (the labels of scores that were gathered in the model) names that
    one's result in `after`.

    The gather is differentiable: the gradient reaching each replica's
    slice is the sum, over the replicas, of the gradients of their losses
    with respect to that slice. Each replica then computes the same
    global-batch loss, and Keras divides every replica's loss by the number
    of replicas before the replicas' gradients are summed, so the summed
    gradient is the single-device gradient of the global batch.

    Args:
        *tensors: tensors whose first axis is the batch (each replica's
            slice) and whose other axes have static sizes.
        after: a tensor the gather must wait for, or None.

    Returns:
        A tuple of the gathered tensors, in the order given.

    Example:

    >>> strategy.run(lambda y, z: gather_replicas(y, z), args=(labels, embeddings))   # doctest: +SKIP
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    flat = [tf.reshape(tf.cast(t, tf.float32), (tf.shape(t)[0], -1)) for t in tensors]
    widths = [int(np.prod(t.shape[1:])) for t in tensors]
    with tf.control_dependencies([] if after is None else [after]):
        gathered = context.all_gather(tf.concat(flat, axis=1), axis=0)
    parts = tf.split(gathered, widths, axis=1)
    return tuple(tf.cast(tf.reshape(p, (-1, *t.shape[1:])), t.dtype) for p, t in zip(parts, tensors))
