"""Feature vectors from a Parquet table: one row per item, a vector column and a label column.

Users who already have embeddings from another system often keep them in
Parquet rather than one `.npy` file per item. `read_feature_table` reads such
a table as a feature-vector side of a two-tower dataset: the vector column
is a list (or fixed-size list) of numbers, the same length on every row; the
label column holds the class name each row belongs to. Column names are
found by convention (`label` or `class`; `vector`, `embedding`, `features`,
or else the only list column), so a table needs no option to be read.

Example:

>>> x, labels, names = read_feature_table("vectors.parquet")     # doctest: +SKIP
>>> x.shape, labels[:2], names[:2]                              # doctest: +SKIP
((300, 512), ['cat', 'cat'], ['vectors.parquet:row 1', 'vectors.parquet:row 2'])
"""

import os

import numpy as np

from ..errors import ConfigError, DataError

EXTENSIONS = (".parquet",)
LABEL_COLUMNS = ("label", "class")
VECTOR_COLUMNS = ("vector", "embedding", "features")


def require_arrow(what="Parquet files"):
    """pyarrow and pyarrow.parquet, or a `ConfigError` that says how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(f"{what} need pyarrow: pip install 'siamkit[ray]' (or pyarrow)") from None
    return pyarrow, pyarrow.parquet


def is_table(path):
    """True when `path` names a Parquet file (by its extension)."""
    return os.path.splitext(os.fspath(path))[1].lower() in EXTENSIONS


def _column(table, path, wanted, kind):
    for name in wanted:
        if name in table.column_names:
            return name
    if kind == "vector":
        import pyarrow.types as t

        lists = [f.name for f in table.schema if t.is_list(f.type) or t.is_fixed_size_list(f.type)
                 or t.is_large_list(f.type)]
        if len(lists) == 1:
            return lists[0]
    raise DataError(f"{path}: no {kind} column; name it one of {', '.join(wanted)} (the table has "
                    f"{', '.join(table.column_names) or 'no columns'})")


def read_feature_table(path):
    """The vectors, class names and item names of a Parquet table of feature vectors.

    Args:
        path: a `.parquet` file.

    Returns:
        `(x, labels, names)`: float32 `(n, dim)` vectors, each row's class
        name (a string), and each row's name for messages and manifests
        (`file:row k`, counting from 1).

    Raises:
        DataError naming the file, the row and the value: a missing column,
        an empty or null vector, vectors of different lengths, NaN or
        infinite values, a null label.
    """
    path = os.fspath(path)
    _, pq = require_arrow()
    try:
        table = pq.read_table(path)
    except OSError as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: the table has no rows")
    label_column = _column(table, path, LABEL_COLUMNS, "label")
    vector_column = _column(table, path, VECTOR_COLUMNS, "vector")
    labels = table.column(label_column).to_pylist()
    vectors = table.column(vector_column).to_pylist()
    dim = None
    for row, (label, vector) in enumerate(zip(labels, vectors), start=1):
        where = f"{path}: row {row}"
        if label is None or str(label).strip() == "":
            raise DataError(f"{where} has no {label_column}; give every row its class")
        if not isinstance(vector, list) or not vector or any(v is None for v in vector):
            raise DataError(f"{where}: {vector_column} {vector!r:.60} is not a list of numbers")
        dim = len(vector) if dim is None else dim
        if len(vector) != dim:
            raise DataError(f"{where}: {vector_column} has length {len(vector)}, expected {dim} like row 1")
    try:
        x = np.asarray(vectors, dtype="float32")
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: {vector_column} holds values that are not numbers ({err})") from None
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise DataError(f"{path}: row {bad[0] + 1}: {vector_column} has NaN or infinite values")
    names = [f"{os.path.basename(path)}:row {row}" for row in range(1, len(x) + 1)]
    return x, [str(label) for label in labels], names
