"""The quota kernel: thresholds and counts equal the plain reference exactly, ties included.

Also the fixed-cut kernels with a cut per segment (the quota thresholds are such cuts).
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

import branchsim as bs
from branchsim.scoring import DECIMALS
from branchsim.sensitivity import _kernels
from branchsim.sensitivity._quota import _scores, quota_counts, quota_thresholds_reference


def _data(seed, n=4000, c=5, T=4, G=2, S=13, L=3, kind="rand", caps=False, weight_grid=False):
    """Random rows in T segments of G groups; ``kind`` ties scores: grid (components on a coarse
    grid), dup (repeated rows), const (every score equal)."""
    rng = np.random.default_rng(seed)
    ct = rng.random((c, n))
    if kind == "grid":
        ct = np.round(ct * 4) / 4
    elif kind == "dup":
        ct = ct[:, rng.integers(0, max(1, n // 25), n)]
    elif kind == "const":
        ct[:] = 0.5
    starts = np.r_[0, np.sort(rng.integers(0, n + 1, T - 1)), n].astype(np.int64)
    seg_group = np.sort(np.r_[np.arange(G), rng.integers(0, G, T - G)])     # every group has a segment
    w100 = 100 * rng.dirichlet(np.ones(c), size=(S, T))
    if weight_grid:
        w100 = np.round(w100)
    sizes = np.bincount(seg_group, weights=np.diff(starts), minlength=G).astype(np.int64)
    allowed = -np.sort(-rng.integers(0, sizes[None, :, None] + 3, size=(S, G, L)), axis=2)
    if caps:   # rows a veto keeps below some levels come last in their segment
        limits = -np.sort(-np.array([rng.integers(starts[t], starts[t + 1] + 1, L) for t in range(T)]), axis=1)
        weak_end = np.array([rng.integers(limits[t].min(), starts[t + 1] + 1) for t in range(T)])
    else:
        limits = np.repeat(starts[1:, None], L, axis=1)
        weak_end = starts[1:].copy()
    weak_line = rng.uniform(20, 60, (S, T))
    if n:
        weak_line[::3] = _scores(ct, starts, w100[0])[rng.integers(0, n)]      # lines on a score
    return dict(ct=ct, starts=starts, seg_group=seg_group, limits=limits, weak_end=weak_end, w100=w100,
                allowed=allowed, weak_line=weak_line)


def _direct_counts(d, thr):
    """Counts by comparing every row's float64 score, rounded as evaluate rounds it, with its segment's
    threshold (the weak line: the unrounded score)."""
    S, _, L = thr.shape
    starts, limits = d["starts"], d["limits"]
    at_least = np.zeros((S, L), dtype=np.int64)
    below = np.zeros(S, dtype=np.int64)
    for s in range(S):
        x = _scores(d["ct"], starts, d["w100"][s])
        xr = np.round(x, DECIMALS)                  # levels compare the rounded score, the weak line the sum
        for t, g in enumerate(d["seg_group"]):
            for j in range(L):
                at_least[s, j] += np.count_nonzero(xr[starts[t]:limits[t, j]] >= thr[s, g, j])
            below[s] += np.count_nonzero(x[starts[t]:d["weak_end"][t]] < d["weak_line"][s, t])
    return at_least, below


def _check(d):
    """quota_counts against the reference thresholds and the direct counts; returns its result."""
    ref = quota_thresholds_reference(d["ct"], d["starts"], d["seg_group"], d["w100"], d["allowed"])
    thr, at_least, below = quota_counts(**d)
    np.testing.assert_array_equal(thr, ref)
    exp_at_least, exp_below = _direct_counts(d, ref)
    np.testing.assert_array_equal(at_least, exp_at_least)
    np.testing.assert_array_equal(below, exp_below)
    return thr, at_least, below


def _one_group(scores, allowed):
    """Scores as rows of one segment (x = score × 1 + 0 × 1, exact) and one scenario."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    return dict(ct=np.vstack([scores, np.zeros(n)]), starts=np.array([0, n]), seg_group=np.array([0]),
                limits=np.full((1, len(allowed)), n), weak_end=np.array([n]), w100=np.ones((1, 1, 2)),
                allowed=np.array(allowed).reshape(1, 1, -1))


@pytest.mark.parametrize("order", [[5, 4, 4, 4, 1], [4, 1, 5, 4, 4]])
def test_ties_worked_by_hand(order):
    # sorted 5 4 4 4 1: a = 1 -> 5 (5 > 4); a = 2 and 3 -> the tie at 4 straddles the quota, the
    # tied units all stay below: 5; a = 4 -> 4 (4 > 1); a = 5 >= n -> everyone; a = 0 -> no one
    d = _one_group(order, [7, 5, 4, 3, 2, 1, 0])
    thr, at_least, below = quota_counts(**d)
    assert thr[0, 0].tolist() == [-np.inf, -np.inf, 4, 5, 5, 5, np.inf]
    assert at_least[0].tolist() == [5, 5, 4, 1, 1, 1, 0]          # never more than allowed
    assert below is None
    np.testing.assert_array_equal(quota_thresholds_reference(d["ct"], d["starts"], d["seg_group"], d["w100"],
                                                             d["allowed"]), thr)


def test_sums_that_round_alike_are_tied():
    # 0.1 + 0.2 is 0.30000000000000004 in float64: rounded to 9 decimals it ties with 0.3, as evaluate
    # ties it. Sorted (rounded) 0.3 0.3 0.3 0.1: a quota of 2 straddles the tie, so no one is admitted
    # (summed unrounded, 0.30000000000000004 alone was admitted, one more than evaluate gives).
    d = _one_group([0.3, 0.1, 0.3, 0.3], [4, 3, 2, 1])
    d["ct"] = np.vstack([[0.1, 0.1, 0.3, 0.1], [0.2, 0.0, 0.0, 0.2]])    # sums 0.1+0.2, 0.1, 0.3, 0.1+0.2
    thr, at_least, _ = quota_counts(**d)
    assert thr[0, 0].tolist() == [-np.inf, 0.3, np.inf, np.inf]
    assert at_least[0].tolist() == [4, 3, 0, 0]
    np.testing.assert_array_equal(quota_thresholds_reference(d["ct"], d["starts"], d["seg_group"], d["w100"],
                                                             d["allowed"]), thr)


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_engine_equals_evaluate_under_a_shipped_quota_policy(seed):
    # A points scheme's scores tie often: the engine's quota thresholds must tie them as evaluate does
    # (seeds 2 and 5 put such a tie on the lowest quota; the engine once gave 2 units another level).
    from branchsim.sensitivity.engine import Scenarios, prepare, run
    policy = bs.Policy.load(bs.data_path("policies", "star_quota.yaml"))
    pop = bs.generate(policy, seed=seed, n_branches=400, members=False)
    prep = prepare(pop, policy)
    ids = list(policy.scheme.branch.levels.worst_first)
    expected = bs.evaluate(pop, policy).branches["rating"].map(ids.index).value_counts()
    out = run(prep, Scenarios.from_policy(policy), baseline=prep.levels.astype(np.int16))
    assert out["counts"][0, 0].tolist() == [expected.get(i, 0) for i in range(len(ids))]
    assert out["changed"].tolist() == [[0]]
    counts = run(prep, Scenarios.from_policy(policy), accuracy=False, designations=False)["counts"]
    assert counts[0, 0].tolist() == out["counts"][0, 0].tolist()


def test_no_one_and_everyone():
    d = _data(1, n=3000, S=9, caps=True)
    sizes = np.bincount(d["seg_group"], weights=np.diff(d["starts"])).astype(np.int64)
    d["allowed"][:, :, 0] = sizes + 4                                  # more than the group: everyone
    d["allowed"][:, :, 1] = sizes                                      # the whole group: everyone
    d["allowed"][:, :, 2] = 0                                          # no one
    thr, at_least, _ = _check(d)
    assert (thr[:, :, :2] == -np.inf).all() and (thr[:, :, 2] == np.inf).all()
    eligible = (d["limits"] - d["starts"][:-1, None]).sum(axis=0)
    assert (at_least[:, :2] == eligible[:2]).all() and (at_least[:, 2] == 0).all()


@pytest.mark.parametrize("c, L, kind, G, caps, S", [
    (5, 3, "rand", 1, False, 13),
    (5, 3, "grid", 2, True, 21),
    (5, 3, "dup", 3, True, 10),
    (5, 3, "const", 1, False, 5),
    (2, 1, "grid", 3, True, 9),
    (3, 2, "rand", 2, True, 17),
    (4, 4, "grid", 1, False, 8),
    (6, 5, "grid", 4, True, 11),
    (6, 5, "dup", 2, False, 3),
])
def test_equals_the_reference(c, L, kind, G, caps, S):
    for seed, weight_grid in ((c * 10 + L, False), (c * 10 + L + 1, True)):   # integer weights: exact ties
        _check(_data(seed, c=c, L=L, kind=kind, G=G, T=G + 3, caps=caps, S=S, weight_grid=weight_grid))


@pytest.mark.parametrize("kind", ["rand", "grid"])
def test_a_large_group(kind):
    # enough rows for the full histogram; coarse components put many rows on each distinct score
    _check(_data(3, n=200_000, T=6, G=1, S=10, kind=kind, caps=True))


def test_empty_segments_and_groups():
    d = _data(4, n=500, T=6, G=3, S=6)
    d["starts"] = np.array([0, 0, 200, 200, 500, 500, 500])       # segments 0, 2, 4 and 5 are empty
    d["limits"] = np.repeat(d["starts"][1:, None], 3, axis=1)
    d["weak_end"] = d["starts"][1:].copy()
    _check(d)
    e = _data(5, n=0, T=2, G=2, S=3)
    thr, at_least, below = _check(e)
    assert (thr == -np.inf).all() and not at_least.any() and not below.any()


def test_counts_equal_the_fixed_cut_kernels_at_the_thresholds():
    # the quota thresholds as each segment's cuts: both fixed-cut kernels count the same rows. They
    # compare the unrounded sum, so with each cut less half a unit of the last decimal kept (as the
    # engine shifts a cuts design's cuts); the quota kernel compares the rounded score with the cut.
    for seed, kind in ((6, "rand"), (7, "grid"), (8, "dup")):
        d = _data(seed, n=5000, T=6, G=3, S=11, kind=kind, caps=True, weight_grid=seed == 8)
        thr, at_least, below = quota_counts(**d)
        cuts = np.ascontiguousarray(thr[:, d["seg_group"], :] - 0.5 * 10.0 ** -DECIMALS)   # (S, T, L)
        args = (d["ct"], d["starts"], d["limits"], d["weak_end"], d["w100"], cuts, d["weak_line"])
        for kernel in (_kernels.count_at_least, _kernels.count_at_least_53):
            got_at_least, got_below = kernel(*args)
            np.testing.assert_array_equal(got_at_least, at_least)
            np.testing.assert_array_equal(got_below, below)


def test_fixed_cut_kernels_take_a_cut_per_segment():
    d = _data(9, n=6000, T=5, G=1, S=12, caps=True)
    cuts = np.sort(np.random.default_rng(9).uniform(30, 80, (12, 5, 3)), axis=2)
    x0 = _scores(d["ct"], d["starts"], d["w100"][0])
    cuts[0, :, 1] = x0[np.maximum(d["starts"][1:] - 1, 0)]             # scenario 0: cuts on scores
    exp_at_least, exp_below = _direct_counts(dict(d, seg_group=np.arange(5)), cuts)   # a segment's cuts
    args = (d["ct"], d["starts"], d["limits"], d["weak_end"], d["w100"], cuts, d["weak_line"])
    for kernel in (_kernels.count_at_least, _kernels.count_at_least_53):
        at_least, below = kernel(*args)
        np.testing.assert_array_equal(at_least, exp_at_least)
        np.testing.assert_array_equal(below, exp_below)
        with pytest.raises(ValueError, match="cuts must be shaped"):
            kernel(*args[:5], cuts[:, 0, :], None)                       # the older (S, L) cuts
        with pytest.raises(ValueError, match="weak_line must be shaped"):
            kernel(*args[:6], d["weak_line"][:, 0])


def test_threads_do_not_change_the_result():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    d = _data(10, n=20_000, T=6, G=2, S=37, kind="grid", caps=True)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = quota_counts(**d)
        numba.set_num_threads(2)
        two = quota_counts(**d)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_refused():
    d = _data(11, n=300, T=3, G=2, S=2)
    with pytest.raises(ValueError, match="seg_group"):
        quota_counts(**dict(d, seg_group=d["seg_group"][::-1].copy()))
    with pytest.raises(ValueError, match=">= 0"):
        quota_counts(**dict(d, allowed=-d["allowed"] - 1))
    bad = d["ct"].copy()
    bad[0, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        quota_counts(**dict(d, ct=bad))
