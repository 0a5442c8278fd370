"""The clustering rating designs' cut points (branchsim._clustering).

Hand-worked cases, and comparisons with independent implementations written
here: a plain Lloyd iteration for k-means and a naive 1-D Ward merging for the
hierarchical design.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from branchsim import _clustering as cl
from branchsim.errors import DataError

THREE_GROUPS = [1.0, 2, 3, 10, 11, 12, 20, 21, 22]


def levels(x, cuts):
    """Level of each score under ``cuts`` (``score >= cut`` reaches it)."""
    return np.searchsorted(np.asarray(cuts), np.asarray(x), side="right")


def quantile_medians(x, k):
    return np.array([np.median(p) for p in np.array_split(np.sort(x), k)])


def lloyd(x, centres):
    """Plain 1-D Lloyd from ``centres`` until no label changes; labels ranked by centre."""
    centres = np.asarray(centres, dtype=float).copy()
    labels = None
    while True:
        new = np.argmin(np.abs(x[:, None] - centres[None, :]), axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centres = np.array([x[labels == j].mean() for j in range(len(centres))])
    rank = np.argsort(np.argsort(centres))
    return rank[labels]


def ward_1d(x, k):
    """Naive Ward in 1-D: merge the adjacent pair of sorted clusters of least cost, down to k.

    In one dimension Ward only ever merges neighbours (the cost of merging two
    clusters around a third exceeds one of the neighbouring costs), so this is
    exact. Returns each unit's cluster rank from the bottom.
    """
    order = np.argsort(x, kind="stable")
    clusters = [[i] for i in order]
    while len(clusters) > k:
        def cost(a, b):
            na, nb = len(a), len(b)
            return na * nb / (na + nb) * (x[a].mean() - x[b].mean()) ** 2
        j = min(range(len(clusters) - 1), key=lambda i: cost(clusters[i], clusters[i + 1]))
        clusters[j:j + 2] = [clusters[j] + clusters[j + 1]]
    rank = np.empty(len(x), dtype=int)
    for r, members in enumerate(clusters):
        rank[members] = r
    return rank


# --- tukey_inliers ---------------------------------------------------------------------------

def test_tukey_inliers_against_hand_fences():
    # sorted positions 2.25 and 6.75 of 0..8 + one more: Q1 = 2.25, Q3 = 6.75, IQR = 4.5,
    # outer fences [2.25 - 13.5, 6.75 + 13.5] = [-11.25, 20.25]
    base = np.arange(9.0)
    assert cl.tukey_inliers(np.append(base, 20.25)).all()          # on the fence: kept
    mask = cl.tukey_inliers(np.append(base, 20.26))
    assert mask.tolist() == [True] * 9 + [False]
    # with two more (11 scores): positions 2.5 and 7.5, Q1 = 1.5, Q3 = 6.5, fences [-13.5, 21.5]
    mask = cl.tukey_inliers(np.append(base, [-13.5, 21.6])[::-1])     # any order
    assert mask.tolist() == [False] + [True] * 10
    mask = cl.tukey_inliers(np.append(base, [-13.6, 21.5]))
    assert mask.tolist() == [True] * 9 + [False, True]
    assert cl.tukey_inliers([]).shape == (0,)
    with pytest.raises(DataError, match="not a finite number"):
        cl.tukey_inliers([1.0, np.nan])


# --- kmeans_cuts ------------------------------------------------------------------------------

def test_kmeans_three_groups_by_hand():
    np.testing.assert_array_equal(cl.kmeans_cuts(THREE_GROUPS, 3), [10, 20])
    np.testing.assert_array_equal(cl.kmeans_cuts(THREE_GROUPS[::-1], 3), [10, 20])
    np.testing.assert_array_equal(cl.kmeans_cuts(THREE_GROUPS, 2), [20])


@pytest.mark.parametrize("seed", range(8))
def test_kmeans_matches_independent_lloyd(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(60, 8, 150), rng.normal(85, 4, 80), rng.uniform(0, 100, 30)])
    for k in (2, 3, 4, 5):
        cuts = cl.kmeans_cuts(x, k)
        assert cuts.shape == (k - 1,) and np.all(np.diff(cuts) > 0)
        expected = lloyd(x, quantile_medians(x, k))
        np.testing.assert_array_equal(levels(x, cuts), expected)
        # each cut is the lowest score of its cluster
        assert [x[expected == j].min() for j in range(1, k)] == cuts.tolist()


def test_kmeans_starts_from_the_quantile_medians():
    # k = 2: quantile groups [0 0 0 0] and [0 0 4 10], medians 0 and 2. From there 4 goes
    # with 10 (centres 0 and 7; 4 is 3 from 7): cut 4. Started from min and max (0, 10)
    # instead, 4 joins the zeros (centres 4/7 and 10): the cut would be 10.
    x = np.array([0.0] * 6 + [4, 10])
    np.testing.assert_array_equal(cl.kmeans_cuts(x, 2), [4])
    assert levels(x, [10]).tolist() == lloyd(x, [0, 10]).tolist()       # the other optimum


def test_kmeans_passes_quantile_medians_to_sklearn(monkeypatch):
    import sklearn.cluster

    seen = {}
    real = sklearn.cluster.KMeans

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(sklearn.cluster, "KMeans", spy)
    x = np.random.default_rng(3).uniform(0, 100, 101)
    cl.kmeans_cuts(x, 4)
    np.testing.assert_array_equal(seen["init"].ravel(), quantile_medians(x, 4))
    assert (seen["n_clusters"], seen["n_init"], seen["algorithm"], seen["tol"]) == (4, 1, "lloyd", 0.0)
    assert seen["max_iter"] >= 1000


@pytest.mark.parametrize("method", ["kmeans", "hierarchical"])
def test_clusters_are_contiguous_with_many_ties(method):
    # integer scores with heavy ties: the cuts must reproduce the library's partition
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(11)
    x = rng.integers(40, 100, 400).astype(float)
    for k in (3, 5):
        if method == "kmeans":
            raw = KMeans(n_clusters=k, init=quantile_medians(x, k).reshape(-1, 1), n_init=1,
                         algorithm="lloyd", max_iter=10_000, tol=0.0).fit(x.reshape(-1, 1)).labels_
            cuts = cl.kmeans_cuts(x, k)
        else:
            raw = fcluster(linkage(x.reshape(-1, 1), method="ward"), k, criterion="maxclust")
            cuts = cl.hierarchical_cuts(x, k, resamples=1)
        lv = levels(x, cuts)
        for label in np.unique(raw):                     # one label, one level ...
            assert len(np.unique(lv[raw == label])) == 1
        assert len(np.unique(lv)) == len(np.unique(raw)) == k   # ... and one level, one label
        order = np.argsort(x, kind="stable")
        assert np.all(np.diff(lv[order]) >= 0)


@pytest.mark.filterwarnings("error")        # no ConvergenceWarning or other warning may leak
@pytest.mark.parametrize("func", [cl.kmeans_cuts, lambda x, k: cl.hierarchical_cuts(x, k, resamples=1)])
def test_edge_cases(func):
    inf = np.inf
    np.testing.assert_array_equal(func([], 3), [inf, inf])
    np.testing.assert_array_equal(func([7.0] * 5, 3), [inf, inf])          # all equal: the floor
    np.testing.assert_array_equal(func([3.0, 7.0], 4), [7, inf, inf])     # n < k
    np.testing.assert_array_equal(func([5.0, 5, 5, 9, 9], 4), [9, inf, inf])   # 2 distinct < k
    np.testing.assert_array_equal(func([1.0, 1, 1, 1, 2, 3], 3), [2, 3])  # distinct == k
    assert func([1.0, 2.0], 1).shape == (0,)
    x = np.array([1.0] * 7 + [2, 3, 4])       # duplicate initial centres (1, 1, 3)
    cuts = func(x, 3)
    assert cuts.shape == (2,) and np.all(np.isfinite(cuts)) and cuts[0] < cuts[1]


@pytest.mark.parametrize("func", [cl.kmeans_cuts, cl.hierarchical_cuts])
def test_bad_input(func):
    with pytest.raises(DataError, match=r"position 2 \(nan\)"):
        func([1.0, np.nan, 3.0], 2)
    with pytest.raises(DataError, match="positions 1, 3"):
        func([np.inf, 2.0, -np.inf], 2)
    with pytest.raises(DataError, match="1-D"):
        func(np.ones((3, 2)), 2)
    for k in (0, 2.5, True):
        with pytest.raises(DataError, match="whole number"):
            func([1.0, 2.0], k)


# --- hierarchical_cuts ------------------------------------------------------------------------

def test_hierarchical_three_groups_by_hand():
    np.testing.assert_array_equal(cl.hierarchical_cuts(THREE_GROUPS, 3, resamples=1), [10, 20])
    # 10 folds of 9 units: nine folds leave one unit out, one leaves none. Only leaving out 10
    # (or 20) moves a cut, to 11 (21): each mean is (8 * 10 + 11 + 10) / 10 = 10.1.
    for seed in range(3):
        np.testing.assert_allclose(cl.hierarchical_cuts(THREE_GROUPS, 3, seed=seed), [10.1, 20.1])


@pytest.mark.parametrize("seed", range(4))
def test_hierarchical_single_pass_matches_naive_ward(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(55, 10, 60), rng.normal(80, 5, 40)])
    for k in (2, 3, 5):
        rank = ward_1d(x, k)
        expected = [x[rank == j].min() for j in range(1, k)]
        np.testing.assert_array_equal(cl.hierarchical_cuts(x, k, resamples=1), expected)


def test_hierarchical_resampling_is_the_mean_over_folds():
    rng = np.random.default_rng(5)
    x = rng.normal(70, 12, 83)
    folds = np.array_split(np.random.default_rng(42).permutation(83), 7)
    per_fold = []
    for fold in folds:
        rest = np.delete(x, fold)
        rank = ward_1d(rest, 4)
        per_fold.append([rest[rank == j].min() for j in range(1, 4)])
    np.testing.assert_allclose(cl.hierarchical_cuts(x, 4, resamples=7, seed=42),
                               np.mean(per_fold, axis=0), rtol=0, atol=1e-12)


def test_hierarchical_seed():
    x = np.random.default_rng(9).normal(70, 12, 60)
    a = cl.hierarchical_cuts(x, 4, seed=0)
    np.testing.assert_array_equal(a, cl.hierarchical_cuts(x, 4, seed=0))
    assert not np.array_equal(a, cl.hierarchical_cuts(x, 4, seed=1))
    assert np.all(np.diff(a) > 0)


def test_hierarchical_empty_level_in_a_fold_gives_inf():
    # 3 distinct scores, k = 3: every fold that leaves out the only 9 lacks the top level
    x = [1.0, 1, 1, 5, 5, 5, 9]
    cuts = cl.hierarchical_cuts(x, 3, resamples=7)
    assert cuts[0] == 5 and cuts[1] == np.inf
    np.testing.assert_array_equal(cl.hierarchical_cuts(x, 3, resamples=1), [5, 9])


def test_hierarchical_refuses_too_many_units(monkeypatch):
    monkeypatch.setattr(cl, "MAX_HIERARCHICAL", 5)
    assert cl.hierarchical_cuts([1.0, 2, 3, 4, 5], 2, resamples=1).shape == (1,)
    with pytest.raises(DataError, match=r"6 units .*\(5: .*kmeans"):
        cl.hierarchical_cuts([1.0, 2, 3, 4, 5, 6], 2)
    with pytest.raises(DataError, match="resamples"):
        cl.hierarchical_cuts([1.0, 2], 2, resamples=0)


# --- guard ------------------------------------------------------------------------------------

def test_guard():
    inf = np.inf
    np.testing.assert_array_equal(cl.guard([60, 85, 88], [70, 80, inf], 5), [65, 85, 88])
    np.testing.assert_array_equal(cl.guard([95, 50], [80, 70], 5), [85, 85])      # raised to 85
    np.testing.assert_array_equal(cl.guard([70, inf], [70, 80], 5), [70, 85])     # inf pulled in
    np.testing.assert_array_equal(cl.guard([10, 20], [inf, -inf], 1), [10, 20])   # no limit
    np.testing.assert_array_equal(cl.guard([10, 20], [50, 0], inf), [10, 20])
    np.testing.assert_array_equal(cl.guard([10, 20], [50, 0], 0), [50, 50])
    assert cl.guard([], [], 3).shape == (0,)
    for bad in ([[1.0], [1.0, 2.0], 1], [[np.nan], [1.0], 1], [[1.0], [1.0], -1],
                [[1.0], [1.0], np.nan]):
        with pytest.raises(DataError):
            cl.guard(*bad)


# --- cluster_cuts -----------------------------------------------------------------------------

def test_cluster_cuts_dispatch_and_trim():
    x = THREE_GROUPS + [500.0]
    np.testing.assert_array_equal(cl.cluster_cuts(x, 3, method="kmeans"), [10, 500])
    np.testing.assert_array_equal(cl.cluster_cuts(x, 3, method="kmeans", trim=True), [10, 20])
    np.testing.assert_array_equal(cl.cluster_cuts(x, 3, method="hierarchical", trim=True,
                                                  resamples=1), [10, 20])
    np.testing.assert_array_equal(
        cl.cluster_cuts(x, 3, method="hierarchical", resamples=4, seed=2),
        cl.hierarchical_cuts(x, 3, resamples=4, seed=2))
    with pytest.raises(DataError, match="method"):
        cl.cluster_cuts(x, 3, method="fuzzy")
    with pytest.raises(DataError, match="finite"):
        cl.cluster_cuts([1.0, np.nan], 2, method="kmeans", trim=True)


def test_import_stays_light():
    code = ("import sys, branchsim._clustering\n"
            "print(sorted(m for m in ('sklearn', 'scipy.cluster') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
