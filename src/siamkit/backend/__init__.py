"""Backend-specific code, one module per Keras backend (`tensorflow`, `jax`).

Those modules are imported only under the backend they name; see each.
`gather_replicas` is the one backend-neutral entry point: library code
calls it and it reaches the TensorFlow module only under TensorFlow.
"""

import keras


def gather_replicas(*tensors, after=None):
    """`tensors` of every replica of a data-parallel step, each concatenated along axis 0; as they are otherwise.

    Under a `tf.distribute` strategy with several replicas, each replica
    runs the step on its slice of the global batch, so a batch loss would
    see only that slice; this gathers the slices in replica order, in one
    collective (see `siamkit.backend.tensorflow.gather_replicas`, also for
    `after`). Under JAX's `keras.distribution.DataParallel` the jitted step
    already computes on the whole sharded global batch, and on one device
    there is nothing to gather, so the tensors are returned as they are.

    Args:
        *tensors: tensors whose first axis is the batch.
        after: under `tf.distribute`, a tensor the gather waits for.

    Returns:
        A tuple of the tensors, gathered.

    Example:

    >>> import numpy as np
    >>> labels, z = gather_replicas(np.arange(4), np.zeros((4, 2)))   # one device: unchanged
    >>> tuple(z.shape)
    (4, 2)
    """
    if keras.backend.backend() == "tensorflow":
        from .tensorflow import gather_replicas as gather

        return gather(*tensors, after=after)
    return tensors


def replicated(model):
    """Whether `model` was built under a `tf.distribute` strategy of several replicas.

    Keras' `predict_on_batch` of such a model runs the whole batch on every
    replica and returns the copies concatenated, so call the model itself
    instead. Always False on the other backends.

    Example:

    >>> import keras
    >>> replicated(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    False
    """
    if keras.backend.backend() == "tensorflow":
        from .tensorflow import replicated as tf_replicated

        return tf_replicated(model)
    return False
