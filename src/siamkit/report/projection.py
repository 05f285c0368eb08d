"""2-D projections of embeddings for the report's map: UMAP, t-SNE or PCA.

`method="auto"` takes UMAP when `umap-learn` is installed (the `report`
extra), else t-SNE from scikit-learn up to `TSNE_MAX` points and PCA above:
scikit-learn's t-SNE of 10,000 points takes minutes on two cores, PCA a
fraction of a second.

Example:

>>> import numpy as np
>>> xy, name = project(np.random.default_rng(0).normal(size=(50, 8)), method="pca")
>>> xy.shape, name, float(xy.min()), float(xy.max())
((50, 2), 'PCA', 0.0, 1.0)
"""

import importlib.util

import numpy as np

from ..errors import ConfigError, check_choice

METHODS = ("auto", "umap", "tsne", "pca")
TSNE_MAX = 5_000
# t-SNE runs on the first principal components of wider embeddings, as is usual.
_TSNE_DIMS = 50


def resolve(method, n):
    """The method `auto` stands for with `n` points, else `method` itself."""
    check_choice("projection", method, METHODS)
    has_umap = importlib.util.find_spec("umap") is not None
    if method == "umap" and not has_umap:
        raise ConfigError('projection "umap" needs umap-learn: pip install "siamkit[report]", or pass --projection '
                          "tsne or pca")
    if method != "auto":
        return method
    if has_umap:
        return "umap"
    return "tsne" if n <= TSNE_MAX else "pca"


def project(z, method="auto", seed=0):
    """2-D coordinates of `z`, scaled into [0, 1] on the longer axis (aspect kept).

    Args:
        z: `(n, dim)` embeddings.
        method: a name of `METHODS`.
        seed: the seed of UMAP and t-SNE.

    Returns:
        `(xy, name)`: `(n, 2)` float coordinates and the method's display name.
    """
    z = np.asarray(z, dtype="float32")
    method = resolve(method, len(z))
    if len(z) < 4 or z.shape[1] < 2:
        method = "pca"
    if method == "umap":
        import umap

        xy = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(z)
        name = "UMAP"
    elif method == "tsne":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if z.shape[1] > _TSNE_DIMS and len(z) > _TSNE_DIMS:
            z = PCA(_TSNE_DIMS, random_state=seed).fit_transform(z)
        perplexity = float(min(30.0, (len(z) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
        name = "t-SNE"
    else:
        from sklearn.decomposition import PCA

        xy = PCA(2, random_state=seed).fit_transform(z) if z.shape[1] >= 2 else np.c_[z[:, 0], np.zeros(len(z))]
        name = "PCA"
    xy = np.asarray(xy, dtype="float64")
    xy -= xy.min(axis=0)
    span = xy.max()
    return (xy / span if span > 0 else xy), name
