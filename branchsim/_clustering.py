"""Cut points of the clustering rating designs (``kmeans``, ``hierarchical``).

Pure functions on 1-D arrays of finite scores (no policy objects). Each
returns the ``k - 1`` ascending cut points of ``k`` ordered levels: a unit
reaches level ``j`` (``1 .. k-1``; ``0`` is the floor) when
``score >= cuts[j - 1]``; a cut of ``inf`` is a level no unit reaches.
:func:`kmeans_cuts` follows the US CMS hospital star rating,
:func:`hierarchical_cuts` the US Medicare Part C/D star ratings;
:func:`tukey_inliers`, :func:`guard` and :func:`cluster_cuts` serve trimming,
the guardrail and the dispatch (``docs/policy-format.md``, "Rating designs").

In one dimension the clusters of both methods are contiguous intervals, so a
cluster's lowest score is a cut that rates each clustered unit into its own
cluster. SciPy and scikit-learn are imported on first use only.
"""
from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["MAX_HIERARCHICAL", "tukey_inliers", "kmeans_cuts", "hierarchical_cuts",
           "guard", "cluster_cuts"]

#: Most units :func:`hierarchical_cuts` clusters: Ward linkage keeps all
#: ``n (n - 1) / 2`` pairwise distances (about 1.6 GB at 20 000 units).
MAX_HIERARCHICAL = 20_000
#: Lloyd iterations allowed to :func:`kmeans_cuts` (1-D data converges in far fewer).
_MAX_ITER = 10_000


def _scores(scores, where: str) -> np.ndarray:
    """``scores`` as a 1-D float array; a DataError for another shape or a non-finite value."""
    x = np.asarray(scores, dtype=float)
    if x.ndim != 1:
        raise DataError(f"scores must be a 1-D array, got shape {x.shape}", where=where)
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        shown = ", ".join(str(i + 1) for i in bad[:8]) + (f" and {bad.size - 8} more" if bad.size > 8 else "")
        raise DataError(f"score is not a finite number at position{'s' if bad.size > 1 else ''} "
                        f"{shown} ({x[bad[0]]}); clustering needs finite scores", where=where)
    return x


def _whole(value, name: str, where: str) -> int:
    """``value`` as an int >= 1 (``k``, ``resamples``); a DataError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a whole number >= 1, got {value!r}", where=where)
    return int(value)


def _cuts(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Cut points of the clusters ``labels`` of ``x``, the clusters ordered by mean.

    Cluster ``j`` from the bottom gives level ``j``; levels beyond the last
    cluster get ``inf``. Level ``j``'s cut is the lowest score of clusters
    ``j`` and up, i.e. of cluster ``j`` as clusters are contiguous (and still
    an ordered cut should a floating-point tie at a boundary break that).

    >>> _cuts(np.array([5.0, 1.0, 9.0, 2.0]), np.array([7, 3, 4, 3]), 4)
    array([ 5.,  9., inf])
    """
    ids, inverse = np.unique(labels, return_inverse=True)
    means = np.bincount(inverse, weights=x) / np.bincount(inverse)
    rank = np.empty(ids.size, dtype=np.intp)
    rank[np.argsort(means, kind="stable")] = np.arange(ids.size)
    lowest = np.full(k, np.inf)
    np.minimum.at(lowest, rank[inverse], x)
    return np.minimum.accumulate(lowest[::-1])[::-1][1:]


def _few_distinct(x: np.ndarray, k: int) -> np.ndarray | None:
    """Cuts when ``x`` has at most ``k`` distinct values (each its own cluster), else None."""
    values, inverse = np.unique(x, return_inverse=True)
    return _cuts(x, inverse, k) if values.size <= k else None


def tukey_inliers(scores) -> np.ndarray:
    """Mask of the scores within Tukey's outer fences ``[Q1 - 3 IQR, Q3 + 3 IQR]``.

    Q1 and Q3 are ``np.percentile(scores, [25, 75], method="linear")``.

    Returns
    -------
    numpy.ndarray of bool
        True for a score on or within the fences.

    Examples
    --------
    >>> tukey_inliers([1.0, 2, 3, 4, 40])       # Q1 = 2, Q3 = 4: fences [-4, 10]
    array([ True,  True,  True,  True, False])
    """
    x = _scores(scores, "tukey_inliers")
    if x.size == 0:
        return np.ones(0, dtype=bool)
    q1, q3 = np.percentile(x, [25, 75], method="linear")
    iqr = q3 - q1
    return (x >= q1 - 3 * iqr) & (x <= q3 + 3 * iqr)


def kmeans_cuts(scores, k: int) -> np.ndarray:
    """Cut points of ``k`` levels by k-means on the scores (US CMS hospital star rating).

    The initial centres are the medians of the ``k`` quantile groups of the
    sorted scores (``np.array_split`` into ``k`` parts); scikit-learn's
    ``KMeans`` (Lloyd, ``n_init=1``, ``tol=0``) then runs until no label
    changes. Clusters are ordered by centre; level ``j``'s cut is the lowest
    score of the ``j``-th cluster from the bottom. Deterministic: no random
    start, and one OpenMP thread so sums add in the same order everywhere.

    Parameters
    ----------
    scores : array_like of float, 1-D, finite
    k : int
        Number of levels (>= 1).

    Returns
    -------
    numpy.ndarray of float, shape (k - 1,)
        Ascending cuts. With at most ``k`` distinct scores each is a cluster
        (the levels above the last get ``inf``; no scores: all ``inf``).

    Raises
    ------
    DataError
        A NaN or infinite score, a non-1-D array, or a bad ``k``.

    Examples
    --------
    >>> kmeans_cuts([1.0, 2, 3, 10, 11, 12, 20, 21, 22], 3)
    array([10., 20.])
    >>> kmeans_cuts([5.0, 5, 7], 4)                # two distinct scores
    array([ 7., inf, inf])
    """
    x, k = _scores(scores, "kmeans_cuts"), _whole(k, "k (the number of levels)", "kmeans_cuts")
    few = _few_distinct(x, k)
    if few is not None:
        return few
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    centres = np.array([np.median(part) for part in np.array_split(np.sort(x), k)])
    model = KMeans(n_clusters=k, init=centres.reshape(-1, 1), n_init=1, algorithm="lloyd",
                   max_iter=_MAX_ITER, tol=0.0)
    with threadpool_limits(limits=1, user_api="openmp"):
        labels = model.fit(x.reshape(-1, 1)).labels_
    return _cuts(x, labels, k)


def _ward_cuts(x: np.ndarray, k: int) -> np.ndarray:
    """Cut points of one Ward clustering of ``x`` into at most ``k`` clusters."""
    few = _few_distinct(x, k)
    if few is not None:
        return few
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = fcluster(linkage(x.reshape(-1, 1), method="ward"), k, criterion="maxclust")
    return _cuts(x, labels, k)


def hierarchical_cuts(scores, k: int, *, resamples: int = 10, seed: int = 0) -> np.ndarray:
    """Cut points of ``k`` levels by Ward clustering with mean resampling (US Medicare Part C/D).

    The units are dealt at random (``np.random.default_rng(seed).permutation``)
    into ``resamples`` folds of nearly equal size (``np.array_split``). For each
    fold the *other* units are clustered (SciPy ``linkage(method="ward")``,
    ``fcluster(criterion="maxclust")``), the clusters are ordered by mean and
    the fold's cut of level ``j`` is the lowest score of the ``j``-th cluster
    from the bottom. Each cut is the mean of the folds' cuts. With
    ``resamples=1`` all units are clustered once; with more folds than units
    some folds are empty and their "other units" are all units.

    Parameters
    ----------
    scores : array_like of float, 1-D, finite
    k : int
        Number of levels (>= 1).
    resamples, seed : int
        Number of folds (>= 1); seed of the fold assignment.

    Returns
    -------
    numpy.ndarray of float, shape (k - 1,)
        Ascending cut points. A level that is empty in any fold (fewer than
        ``k`` distinct scores, or tied Ward heights giving fewer clusters)
        has the cut ``inf`` in that fold and so ``inf`` as the mean.

    Raises
    ------
    DataError
        A NaN or infinite score, a bad ``k`` or ``resamples``, or more than
        :data:`MAX_HIERARCHICAL` units (use ``kmeans`` for such groups).

    Examples
    --------
    >>> x = [1.0, 2, 3, 10, 11, 12, 20, 21, 22]
    >>> hierarchical_cuts(x, 3, resamples=1)
    array([10., 20.])
    >>> hierarchical_cuts(x, 3)    # the folds without 10 (or 20) move that cut to 11 (21)
    array([10.1, 20.1])
    """
    where = "hierarchical_cuts"
    x, k = _scores(scores, where), _whole(k, "k (the number of levels)", where)
    resamples = _whole(resamples, "resamples", where)
    if x.size > MAX_HIERARCHICAL:
        raise DataError(
            f"{x.size} units are more than hierarchical clustering takes ({MAX_HIERARCHICAL}: "
            f"Ward linkage keeps every pairwise distance, O(n^2) memory); use the kmeans "
            f"design for groups this large", where=where)
    if resamples == 1:
        return _ward_cuts(x, k)
    folds = np.array_split(np.random.default_rng(seed).permutation(x.size), resamples)
    keep = np.ones(x.size, dtype=bool)
    per_fold = []
    for fold in folds:
        keep[fold] = False
        per_fold.append(_ward_cuts(x[keep], k))
        keep[fold] = True
    return np.mean(per_fold, axis=0)


def guard(cuts, previous, max_move: float) -> np.ndarray:
    """Keep each cut point within ``max_move`` of last year's, then keep the cuts ordered.

    Each cut is clipped into ``[previous - max_move, previous + max_move]``;
    a non-finite ``previous`` (a level no unit reached last year) sets no
    limit, while an ``inf`` cut with a finite ``previous`` is pulled down to
    ``previous + max_move``. A cut then below the one before it is raised to
    it (``np.maximum.accumulate``), so the result stays non-decreasing.

    ``cuts`` and ``previous`` are 1-D of one shape, ascending by level;
    ``max_move >= 0`` (``inf``: no limit).

    Examples
    --------
    >>> guard([60.0, 85.0, 88.0], [70.0, 80.0, np.inf], 5)
    array([65., 85., 88.])
    >>> guard([70.0, 70.0], [60.0, 80.0], 5)    # 65 and 75 clipped, already ordered
    array([65., 75.])
    >>> guard([90.0, 70.0], [90.0, 70.0], 30)   # the second raised to the first
    array([90., 90.])
    """
    c = np.asarray(cuts, dtype=float)
    p = np.asarray(previous, dtype=float)
    if c.ndim != 1 or c.shape != p.shape:
        raise DataError(f"cuts {c.shape} and previous {p.shape} must be 1-D of the same shape",
                        where="guard")
    if np.isnan(c).any() or np.isnan(p).any():
        raise DataError("a cut point is NaN", where="guard")
    if not max_move >= 0:
        raise DataError(f"max_move must be >= 0, got {max_move!r}", where="guard")
    known = np.isfinite(p)
    low = np.where(known, p - max_move, -np.inf)
    high = np.where(known, p + max_move, np.inf)
    return np.maximum.accumulate(np.clip(c, low, high))


def cluster_cuts(scores, k: int, *, method: str, trim: bool = False, resamples: int = 10,
                 seed: int = 0) -> np.ndarray:
    """Cut points of ``k`` levels by ``method`` (``"kmeans"`` or ``"hierarchical"``).

    With ``trim=True`` only the scores within Tukey's outer fences
    (:func:`tukey_inliers`) are clustered; the caller rates the outliers by
    the cuts returned. ``resamples`` and ``seed`` serve ``hierarchical``.

    Examples
    --------
    >>> x = [1.0, 2, 3, 10, 11, 12, 20, 21, 22, 500]
    >>> cluster_cuts(x, 3, method="kmeans")             # 500 takes a level of its own
    array([ 10., 500.])
    >>> cluster_cuts(x, 3, method="kmeans", trim=True)
    array([10., 20.])
    """
    x = _scores(scores, "cluster_cuts")
    if trim:
        x = x[tukey_inliers(x)]
    if method == "kmeans":
        return kmeans_cuts(x, k)
    if method == "hierarchical":
        return hierarchical_cuts(x, k, resamples=resamples, seed=seed)
    raise DataError(f"method must be 'kmeans' or 'hierarchical', got {method!r}",
                    where="cluster_cuts")
