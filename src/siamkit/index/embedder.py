"""`BatchEmbedder`: embedding as a plain batch -> batch callable, for distributed engines.

An instance holds only the run's folder and options, so it pickles small
and is shipped to every worker; the run (its Keras model) is loaded there
on the first batch and reused for the next ones. The same object works
unchanged with:

- Ray Data: `ds.map_batches(BatchEmbedder, fn_constructor_args=(run_dir,), batch_format="numpy", concurrency=4)`;
- Spark: `predict_batch_udf(lambda: BatchEmbedder(run_dir), return_type=ArrayType(FloatType()), batch_size=256)`
  over a column of paths;
- Dask: `ddf.map_partitions(BatchEmbedder(run_dir))` over a frame with a `path` column.

A batch is a dict of columns (Ray's numpy format) or a data frame with a
`path` column, answered with the same columns and a `vector` column; or an
array of paths (Spark), answered with a `(n, dim)` float32 array.

Example:

>>> embed = BatchEmbedder("runs/digits")                           # doctest: +SKIP
>>> embed({"path": np.array(["a.png", "b.png"])})["vector"].shape  # doctest: +SKIP
(2, 64)
"""

import os

import numpy as np

from ..errors import DataError


class BatchEmbedder:
    """Embeds batches of files with a run, loaded once per worker.

    Args:
        run_dir: the run directory (reachable from every worker).
        batch_size: files per forward pass within a batch.
        invert: for images, flip intensities (default: as the run was trained).
        column: the column of a batch that holds the file paths.
    """

    def __init__(self, run_dir, batch_size=256, invert=None, column="path"):
        self.run_dir = os.fspath(run_dir)
        self.batch_size = batch_size
        self.invert = invert
        self.column = column
        self._run = None

    def __getstate__(self):
        return {**self.__dict__, "_run": None}  # ship the folder's name, not the model

    @property
    def run(self):
        """The run, loaded on first use in this process."""
        if self._run is None:
            from ..runs import Run

            self._run = Run(self.run_dir)
        return self._run

    def embed(self, paths):
        """float32 `(len(paths), dim)` embeddings of files."""
        from .inputs import embed_files

        paths = [str(p) for p in paths]
        if not paths:
            raise DataError("an embedding batch holds no files")
        return embed_files(self.run, paths, self.batch_size, self.invert, progress=False)

    def __call__(self, batch):
        if isinstance(batch, dict) or hasattr(batch, "columns"):
            if self.column not in batch:
                raise DataError(f"the batch has no {self.column!r} column (columns: {sorted(batch)})")
            vectors = self.embed(list(batch[self.column]))
            if isinstance(batch, dict):
                return {**batch, "vector": vectors}
            out = batch.copy()
            out["vector"] = list(vectors)
            return out
        return self.embed(np.asarray(batch).ravel())


ENGINES = ("local", "ray")


def embed_paths(run_dir, paths, engine="local", workers=2, batch_size=256, invert=None, progress=True):
    """float32 `(len(paths), dim)` embeddings of files, in the order of `paths`, on an engine.

    Args:
        run_dir: the run directory.
        paths: the files.
        engine: `local` (this process) or `ray` (Ray Data, `workers` actors,
            each loading the run once; a running Ray cluster is used if
            `ray.init` finds one, else a local one with `workers` CPUs).
        workers: Ray actors.
        batch_size: files per batch.
        invert: for images, flip intensities.
        progress: show progress bars.
    """
    from ..errors import check_choice

    check_choice("engine", engine, ENGINES)
    if engine == "local":
        from .inputs import embed_files

        return embed_files(BatchEmbedder(run_dir).run, paths, batch_size, invert, progress)
    try:
        import ray
    except ImportError:
        raise DataError("--engine ray needs Ray: pip install 'siamkit[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = progress
    items = [{"row": i, "path": str(p)} for i, p in enumerate(paths)]
    ds = ray.data.from_items(items).map_batches(
        BatchEmbedder,
        fn_constructor_args=(os.path.abspath(run_dir), batch_size, invert),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=workers,
    )
    out = None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        if out is None:
            out = np.empty((len(paths), batch["vector"].shape[1]), np.float32)
        out[batch["row"]] = batch["vector"]
    return out
