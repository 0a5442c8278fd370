"""The float32 counting kernel with its guard band (count_at_least_53) counts exactly what the
float64 scores say: scores on a cut, a hair either side of it, segments of every length around the
kernel's row blocks, veto caps, an odd number of scenarios, with and without the weak line.

The expected counts are computed here independently, in NumPy: each row's float64 score summed in
k order (no fused multiply-add), compared with its segment's cuts.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest

from branchsim.sensitivity import _kernels

pytestmark = pytest.mark.skipif(not _kernels.available(), reason="needs numba")


def _direct(ct, starts, limits, weak_end, w100, cuts, weak_line):
    S, T, L = cuts.shape
    at_least = np.zeros((S, L), dtype=np.int64)
    below = np.zeros(S, dtype=np.int64)
    for s in range(S):
        for t in range(T):
            r = slice(starts[t], starts[t + 1])
            x = ct[0, r] * w100[s, t, 0]
            for k in range(1, 5):
                x = x + ct[k, r] * w100[s, t, k]
            for j in range(L):
                at_least[s, j] += np.count_nonzero(x[:limits[t, j] - starts[t]] >= cuts[s, t, j])
            if weak_line is not None:
                below[s] += np.count_nonzero(x[:weak_end[t] - starts[t]] < weak_line[s, t])
    return at_least, below


def _case(seed, lengths, S, grid=False):
    """Segments of the given lengths; cuts and weak lines placed on, and a float32 ulp either side
    of, actual scores, so the guard band and its exact recount decide them."""
    rng = np.random.default_rng(seed)
    starts = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    n, T = int(starts[-1]), len(lengths)
    ct = rng.random((5, n))
    w100 = 100 * rng.dirichlet(np.ones(5), size=(S, T))
    if grid:                                   # many equal scores: whole groups of rows on a cut
        ct = np.round(ct * 8) / 8
        w100 = np.round(w100)
    cuts = np.sort(rng.uniform(30, 70, (S, T, 3)), axis=2)
    weak_line = rng.uniform(30, 60, (S, T))
    for s in range(S):
        for t in range(T):
            a, b = starts[t], starts[t + 1]
            if b == a:
                continue
            x = ct[0, a:b] * w100[s, t, 0]
            for k in range(1, 5):
                x = x + ct[k, a:b] * w100[s, t, k]
            x = np.sort(x)
            pick = x[rng.integers(0, b - a, 4)]
            nudge = rng.choice([-1.0, 0.0, 1.0], 4) * rng.choice([1e-12, 1e-7, 2e-5], 4)
            cuts[s, t] = np.sort(pick[:3] + nudge[:3])
            weak_line[s, t] = pick[3] + nudge[3]
    # veto caps: the last rows of a segment may reach fewer levels; weak_end >= min(limits)
    limits = np.empty((T, 3), dtype=np.int64)
    weak_end = np.empty(T, dtype=np.int64)
    for t in range(T):
        a, b = starts[t], starts[t + 1]
        limits[t] = -np.sort(-rng.integers(a, b + 1, 3))
        limits[t, 0] = b if seed % 2 else limits[t, 0]
        weak_end[t] = rng.integers(limits[t].min(), b + 1)
    return ct, starts, limits, weak_end, w100, cuts, weak_line


BLOCK = _kernels._ROWS_53


@pytest.mark.parametrize("seed, lengths, S, grid", [
    (1, [BLOCK - 1, BLOCK, BLOCK + 1, 1, 0, 3 * BLOCK + 7], 7, False),
    (2, [5 * BLOCK + 3, 17], 4, False),
    (3, [2 * BLOCK, BLOCK // 2, 9], 5, True),
    (4, [1, 2, 3], 1, False),
])
def test_counts_equal_the_float64_scores(seed, lengths, S, grid):
    ct, starts, limits, weak_end, w100, cuts, weak_line = _case(seed, lengths, S, grid)
    exp_at_least, exp_below = _direct(ct, starts, limits, weak_end, w100, cuts, weak_line)
    at_least, below = _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line)
    np.testing.assert_array_equal(at_least, exp_at_least)
    np.testing.assert_array_equal(below, exp_below)
    at_least, below = _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, None,
                                                 ct.astype(np.float32))
    np.testing.assert_array_equal(at_least, exp_at_least)        # star counts only: the same
    assert not below.any()


def test_a_cut_on_scores_counts_them_at_or_above():
    # every score 50 exactly (0.5 x 100 in each term), cuts at 50 and a hair either side
    n = 3 * BLOCK + 5
    ct = np.full((5, n), 0.5)
    starts = np.array([0, n])
    w100 = np.full((3, 1, 5), 20.0)
    cuts = np.array([[[50 - 1e-9, 50.0, 50 + 1e-9]]] * 3)
    limits = np.full((1, 3), n)
    at_least, below = _kernels.count_at_least_53(ct, starts, limits, starts[1:], w100, cuts,
                                                 np.array([[50.0], [50 + 1e-9], [50 - 1e-9]]))
    np.testing.assert_array_equal(at_least, [[n, n, 0]] * 3)
    np.testing.assert_array_equal(below, [0, n, 0])


def test_threads_do_not_change_the_counts():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    args = _case(5, [4 * BLOCK + 11, 3 * BLOCK], 37, grid=True)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _kernels.count_at_least_53(*args)
        numba.set_num_threads(2)
        two = _kernels.count_at_least_53(*args)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
