"""N-way K-shot classification: the one-shot protocols.

An episode gives N support classes with K examples each; every query is
classified among those N. Embeddings are computed once for all samples and
episodes index into them, so thousands of episodes cost little.

Queries are scored against each class either by distance to the class
prototype (the mean support embedding, which for K = 1 is the support itself)
or by the pair head's score against each support, averaged over the K shots.

Protocols:

- `sample_episodes`: seeded N-way K-shot episodes over a labelled set;
- `omniglot_episodes`: the within-alphabet 20-way one-shot protocol of Lake
  et al. (2015) and Koch et al. (2015);
- episodes given as files in Lake's `all_runs` layout: `siamkit.evaluation.lake`.

Example:

>>> import numpy as np
>>> y = np.repeat(np.arange(6), 3); z = y[:, None] + 0.01 * np.arange(18)[:, None]
>>> ep = sample_episodes(y, ways=5, shots=1, episodes=20, seed=0)
>>> evaluate_episodes(ep, z)["accuracy"]
1.0
"""

import dataclasses
import numbers

import numpy as np

from ..errors import ConfigError, DataError
from ..neighbors import check_distance, pairwise_costs
from .pairs import pair_scores

# 1.96: the two-sided 95% quantile of the normal distribution.
_Z95 = 1.959963984540054


@dataclasses.dataclass
class Episodes:
    """A batch of episodes over one array of samples.

    Attributes:
        support: int `(E, N, K)`: sample indices of shot k of class n.
        query: int `(E, M)`: sample indices of the queries.
        query_class: int `(E, M)`: the position `n` of each query's class.
    """

    support: np.ndarray
    query: np.ndarray
    query_class: np.ndarray

    def __len__(self):
        return len(self.support)

    @property
    def ways(self):
        return self.support.shape[1]

    @property
    def shots(self):
        return self.support.shape[2]


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def sample_episodes(y, ways=5, shots=1, episodes=1000, queries=1, seed=0):
    """Seeded N-way K-shot episodes.

    Each episode draws `ways` distinct classes, then for each class
    `shots + queries` distinct samples: the first `shots` are the support,
    the rest are queries.

    Args:
        y: class labels `(n,)` of the (held-out) samples.
        ways: classes per episode (N).
        shots: support samples per class (K).
        episodes: number of episodes.
        queries: query samples per class.
        seed: the random seed.

    Returns:
        An `Episodes`.
    """
    ways, shots = _check_int("ways", ways, 2), _check_int("shots", shots)
    episodes, queries = _check_int("episodes", episodes), _check_int("queries", queries)
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"one-shot evaluation needs at least 2 classes, got {len(classes)}")
    eligible = classes[counts >= shots + queries]
    if len(eligible) < ways:
        raise DataError(
            f"{ways}-way {shots}-shot episodes need {ways} classes with at least {shots + queries} samples "
            f"each ({shots} support + {queries} query); only {len(eligible)} of {len(classes)} classes qualify. "
            "Lower --ways/--shots or evaluate on more held-out classes"
        )
    members = {c: np.flatnonzero(y == c) for c in eligible}
    rng = np.random.default_rng(seed)
    picked = np.empty((episodes, ways, shots + queries), dtype="int64")
    for e in range(episodes):
        for n, c in enumerate(rng.choice(eligible, size=ways, replace=False)):
            picked[e, n] = rng.choice(members[c], size=shots + queries, replace=False)
    return Episodes(
        support=picked[:, :, :shots],
        query=picked[:, :, shots:].reshape(episodes, -1),
        query_class=np.broadcast_to(np.repeat(np.arange(ways), queries), (episodes, ways * queries)).copy(),
    )


def omniglot_episodes(y, alphabet, drawer, trials=400, ways=20, seed=0):
    """The within-alphabet one-shot protocol of Lake et al. (2015) and Koch et al. (2015).

    Trials are spread evenly over the alphabets present (400 over the 20
    evaluation alphabets: 20 each). A trial picks one alphabet, `ways` of its
    characters and two distinct drawers; the first drawer's image of each
    character is the support, and the second drawer's images are the
    queries, each classified among the `ways` supports.

    Args:
        y: character labels `(n,)`.
        alphabet: alphabet of each sample `(n,)`.
        drawer: drawer of each sample `(n,)`; every (character, drawer)
            pair must have exactly one image.
        trials: number of trials; must be a multiple of the alphabet count.
        ways: characters per trial.
        seed: the random seed.

    Returns:
        An `Episodes` (one shot, one query per character).
    """
    y, alphabet, drawer = np.asarray(y), np.asarray(alphabet), np.asarray(drawer)
    trials, ways = _check_int("trials", trials), _check_int("ways", ways, 2)
    alphabets = np.unique(alphabet)
    if trials % len(alphabets):
        raise ConfigError(f"{trials} trials cannot be spread evenly over {len(alphabets)} alphabets")
    lookup = {(int(c), int(d)): i for i, (c, d) in enumerate(zip(y, drawer))}
    if len(lookup) != len(y):
        raise DataError("each (character, drawer) pair must have exactly one image")
    rng = np.random.default_rng(seed)
    support = np.empty((trials, ways, 1), dtype="int64")
    query = np.empty((trials, ways), dtype="int64")
    per_alphabet = trials // len(alphabets)
    for a_pos, a in enumerate(alphabets):
        in_alphabet = alphabet == a
        chars = np.unique(y[in_alphabet])
        drawers = np.unique(drawer[in_alphabet])
        if len(chars) < ways or len(drawers) < 2:
            raise DataError(
                f"alphabet {a!r} has {len(chars)} characters and {len(drawers)} drawers; "
                f"a {ways}-way trial needs {ways} characters and 2 drawers"
            )
        for t in range(a_pos * per_alphabet, (a_pos + 1) * per_alphabet):
            picked = rng.choice(chars, size=ways, replace=False)
            d1, d2 = rng.choice(drawers, size=2, replace=False)
            try:
                support[t, :, 0] = [lookup[int(c), int(d1)] for c in picked]
                query[t] = [lookup[int(c), int(d2)] for c in picked]
            except KeyError as err:
                raise DataError(f"alphabet {a!r}: no image of (character, drawer) {err.args[0]}") from None
    return Episodes(support, query, np.broadcast_to(np.arange(ways), (trials, ways)).copy())


def episode_scores(
    episodes, embeddings, distance="euclidean", pair_score=None, higher_is_similar=True,
    local_scaling=0.0, scaling_neighbors=5,
):
    """Similarity of every query to every class of its episode.

    Args:
        episodes: an `Episodes`.
        embeddings: `(n, dim)` embeddings of the samples the episodes index.
        distance: distance to the class prototypes (ignored with `pair_score`).
        pair_score: optional `f(za, zb) -> scores`, such as a model's
            `score_embeddings`: score each query against each support and
            average over the shots.
        higher_is_similar: the direction of `pair_score`'s output.
        local_scaling: weight `a` of a hubness correction on prototype
            distances, after the CSLS of Conneau et al. (2018): a query's
            distance to prototype `p` becomes `d(q, p) - a * r(p)`, where
            `r(p)` is the mean distance of `p` to its `scaling_neighbors`
            nearest other prototypes of the episode. A prototype in a crowded
            part of the space (close to other classes) attracts queries that
            are not its own; this evens that out. It uses the support set
            only, never the other queries. 0 (the default) turns it off.
        scaling_neighbors: the neighbors `r(p)` averages over (at most the
            episode's other classes).

    Returns:
        `(E, M, N)` similarities (higher = more similar).
    """
    z = np.asarray(embeddings)
    if not np.isfinite(z).all():
        raise DataError("embeddings contain NaN or infinite values; the model diverged or the inputs are broken")
    local_scaling, scaling_neighbors = check_scaling(local_scaling, scaling_neighbors)
    e, n, k = episodes.support.shape
    m = episodes.query.shape[1]
    if pair_score is None:
        distance = check_distance(distance)
        prototypes = z[episodes.support].mean(axis=2)
        queries = z[episodes.query]
        costs = np.stack([pairwise_costs(queries[i], prototypes[i], distance) for i in range(e)])
        if local_scaling > 0 and n > 1:
            costs = costs - local_scaling * _crowding(prototypes, distance, scaling_neighbors)[:, None, :]
        return -costs
    if local_scaling > 0:
        raise ConfigError(
            "local_scaling corrects distances to prototypes, not a pair head's scores: "
            "score by prototype (oneshot method 'prototype') or set local_scaling to 0"
        )
    # Every (query, support) pair: query first, as in Koch et al.'s (test, train) pairs.
    qi = np.broadcast_to(episodes.query[:, :, None, None], (e, m, n, k)).ravel()
    si = np.broadcast_to(episodes.support[:, None, :, :], (e, m, n, k)).ravel()
    scores = pair_scores(pair_score, z, z, qi, si).reshape(e, m, n, k).mean(axis=3)
    if not np.isfinite(scores).all():
        raise DataError("the pair head returned NaN or infinite scores")
    return scores if higher_is_similar else -scores


def check_scaling(local_scaling, scaling_neighbors):
    """Validated `(local_scaling, scaling_neighbors)` of `episode_scores`."""
    if isinstance(local_scaling, bool) or not isinstance(local_scaling, numbers.Real) or not local_scaling >= 0:
        raise ConfigError(f"local_scaling must be zero or a positive weight, got {local_scaling!r}")
    return float(local_scaling), _check_int("scaling_neighbors", scaling_neighbors)


def _crowding(prototypes, distance, neighbors):
    """`(E, N)`: each prototype's mean distance to its `neighbors` nearest other prototypes of the episode."""
    n = prototypes.shape[1]
    costs = np.stack([pairwise_costs(p, p, distance) for p in prototypes])
    costs[:, np.arange(n), np.arange(n)] = np.inf
    return np.sort(costs, axis=2)[:, :, : min(neighbors, n - 1)].mean(axis=2)


def _prototype_method(distance, local_scaling=0.0, scaling_neighbors=5):
    if not local_scaling:
        return f"prototype ({distance})"
    return f"prototype ({distance}, local scaling {float(local_scaling):g}, k={scaling_neighbors})"


def mean_ci95(values):
    """`(mean, half_width)` of a normal-approximation 95% confidence interval."""
    values = np.asarray(values, dtype="float64")
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(_Z95 * values.std(ddof=1) / np.sqrt(len(values)))


def evaluate_episodes(
    episodes, embeddings, distance="euclidean", pair_score=None, higher_is_similar=True,
    local_scaling=0.0, scaling_neighbors=5,
):
    """Accuracy of each episode, and their mean with a 95% confidence interval.

    Takes the arguments of `episode_scores`.

    Returns:
        A dict: `accuracy`, `ci95` (half width), `episodes`, `ways`,
        `shots`, `queries_per_episode`, `method`, and `per_episode`
        accuracies (a list).
    """
    scaling = {"local_scaling": local_scaling, "scaling_neighbors": scaling_neighbors}
    scores = episode_scores(episodes, embeddings, distance, pair_score, higher_is_similar, **scaling)
    correct = scores.argmax(axis=2) == episodes.query_class
    per_episode = correct.mean(axis=1)
    accuracy, ci = mean_ci95(per_episode)
    return {
        "accuracy": accuracy,
        "ci95": ci,
        "episodes": len(episodes),
        "ways": episodes.ways,
        "shots": episodes.shots,
        "queries_per_episode": int(episodes.query.shape[1]),
        "method": "pair_score" if pair_score is not None else _prototype_method(distance, **scaling),
        "per_episode": per_episode.tolist(),
    }
