"""JAX-only code: which process of a multi-host cluster this is.

Callers import it only when `keras.backend.backend()` is `"jax"`.
"""

import jax


def process():
    """`(index, count)`: this process's index among the cluster's `count` processes (`(0, 1)` on one host).

    Example:

    >>> process()
    (0, 1)
    """
    return jax.process_index(), jax.process_count()
