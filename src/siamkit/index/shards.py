"""Embedding shards: Parquet files of `(id, path, label, metadata, vector)` rows.

`siamkit embed --shards DIR` writes them (with the local engine or Ray) and
`siamkit index build --from-shards DIR` indexes them. Each shard,
`DIR/part-NNNNN.parquet`, has the columns

- `id` (int64), `path` (string), `label` (string or null),
- `metadata` (a JSON object as a string: any further fields),
- `vector` (fixed-size list of float32),

and records in its schema metadata the model's fingerprint, the run's
distance and the embedding size. Reading checks that every shard agrees
on all three, so shards of two models or sizes are refused. A writer
fills a temporary folder beside `DIR` and renames it into place at the
end: a reader sees every shard or none.

Needs `pyarrow` (`pip install 'siamkit[ray]'` brings it).

Example:

>>> write("shards", ids, paths, labels, vectors, fingerprint, "euclidean")   # doctest: +SKIP
>>> dim, rows = read("shards", fingerprint)                                  # doctest: +SKIP
>>> for ids, vectors, metadata in rows: ...                                  # doctest: +SKIP
"""

import glob
import json
import os
import shutil
import tempfile

import numpy as np

from ..datasets import parquet
from ..errors import ConfigError, DataError

ROWS_PER_SHARD = 100_000
_KEYS = (b"siamkit.fingerprint", b"siamkit.distance", b"siamkit.dim")


def require_arrow():
    """pyarrow and pyarrow.parquet, or a `ConfigError` that says how to install them."""
    return parquet.require_arrow("embedding shards")


def _table(pa, ids, paths, labels, vectors, fingerprint, distance):
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, np.float32).ravel(), pa.float32())
    table = pa.table({
        "id": pa.array(np.asarray(ids, np.int64)),
        "path": pa.array([str(p) for p in paths], pa.string()),
        "label": pa.array([None if lab is None else str(lab) for lab in labels], pa.string()),
        "metadata": pa.array(["{}"] * len(ids), pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
    })
    meta = dict(zip(_KEYS, (fingerprint or "", distance, str(dim))))
    return table.replace_schema_metadata({k: v.encode() if isinstance(v, str) else v for k, v in meta.items()})


def write(directory, ids, paths, labels, vectors, fingerprint, distance, rows_per_shard=ROWS_PER_SHARD):
    """Write rows as shards of `rows_per_shard` into a new folder `directory` (refused if it exists)."""
    pa, pq = require_arrow()
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory):
        raise DataError(f"{directory} exists already; remove it or choose another folder for the shards")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(directory) + ".", suffix=".tmp", dir=parent)
    try:
        for shard, start in enumerate(range(0, len(ids), rows_per_shard)):
            part = slice(start, start + rows_per_shard)
            table = _table(pa, ids[part], paths[part], labels[part], vectors[part], fingerprint, distance)
            pq.write_table(table, os.path.join(tmp, f"part-{shard:05d}.parquet"))
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def describe(directory):
    """`(files, fingerprint, distance, dim)` of a shard folder, checked to agree, or a `DataError`."""
    _, pq = require_arrow()
    files = sorted(glob.glob(os.path.join(os.fspath(directory), "part-*.parquet")))
    if not files:
        raise DataError(f"{directory} holds no embedding shards (part-*.parquet from `siamkit embed --shards`)")
    seen = None
    for path in files:
        try:
            meta = pq.read_schema(path).metadata or {}
        except Exception as err:  # pyarrow's errors for a damaged file vary by version
            raise DataError(f"{path} is not a readable Parquet file ({err})") from None
        if not all(k in meta for k in _KEYS):
            raise DataError(f"{path} is not a siamkit embedding shard (no model fingerprint, distance and size)")
        info = tuple(meta[k].decode() for k in _KEYS)
        if seen is None:
            seen, first = info, path
        elif info != seen:
            what = "model fingerprint" if info[0] != seen[0] else "distance" if info[1] != seen[1] else "embedding size"
            raise DataError(f"{path} and {first} differ in {what}; index shards of one model only")
    return files, seen[0] or None, seen[1], int(seen[2])


def read(directory, fingerprint=None):
    """`(dim, rows)`: every shard checked now (and against `fingerprint`, if given); `rows` yields
    `(ids, vectors, metadata)` per shard."""
    files, found, _, dim = describe(directory)
    if fingerprint is not None and found is not None and found != fingerprint:
        raise DataError(
            f"the shards in {directory} come from another model (fingerprint {found[:12]}) than the run "
            f"({fingerprint[:12]}); embed them again with this run"
        )
    return dim, _rows(files, dim)


def _rows(files, dim):
    _, pq = require_arrow()
    for path in files:
        table = pq.read_table(path)
        vectors = np.asarray(table.column("vector").combine_chunks().flatten(), np.float32).reshape(-1, dim)
        metadata = []
        for p, lab, extra in zip(*(table.column(c).to_pylist() for c in ("path", "label", "metadata"))):
            metadata.append({**json.loads(extra or "{}"), "path": p, "label": lab})
        yield np.asarray(table.column("id"), np.int64), vectors, metadata
