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


def _direct(ct, starts, limits, weak_end, w100, cuts, weak_line, pre_end=None):
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
                if pre_end is not None:
                    pre = x[weak_end[t] - starts[t]:pre_end[t, j] - starts[t]]
                    at_least[s, j] += np.count_nonzero(pre >= cuts[s, t, j])
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


@pytest.mark.parametrize("seed, grid", [(6, False), (7, True)])
def test_rows_after_the_weak_lines_count_for_levels(seed, grid):
    # rows designated whatever their score (after weak_end) still reach levels, up to pre_end[t, j]
    ct, starts, _, _, w100, cuts, weak_line = _case(seed, [3 * BLOCK + 40, BLOCK - 3, 2 * BLOCK + 1], 5, grid)
    rng = np.random.default_rng(seed)
    T = len(starts) - 1
    weak_end = np.array([rng.integers(starts[t], starts[t + 1] + 1) for t in range(T)])
    weak_end[0] = starts[0] + BLOCK + 17                         # a block holding both kinds of rows
    limits = np.array([-np.sort(-rng.integers(starts[t], weak_end[t] + 1, 3)) for t in range(T)])
    pre_end = np.array([-np.sort(-rng.integers(weak_end[t], starts[t + 1] + 1, 3)) for t in range(T)])
    exp_at_least, exp_below = _direct(ct, starts, limits, weak_end, w100, cuts, weak_line, pre_end)
    at_least, below = _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line,
                                                 pre_end=pre_end)
    np.testing.assert_array_equal(at_least, exp_at_least)
    np.testing.assert_array_equal(below, exp_below)
    assert (pre_end > weak_end[:, None]).any()                   # the case has such rows
    without, _ = _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line)
    np.testing.assert_array_equal(without, _direct(ct, starts, limits, weak_end, w100, cuts, weak_line)[0])
    with pytest.raises(ValueError, match="pre_end"):
        _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line,
                                   pre_end=np.repeat(weak_end[:, None] - 1, 3, axis=1))


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


# -- the unit kernel's fused float32 pass (unit_stats): levels per branch and scenario -------------

def _unit_case(seed, n, S, c, near=True):
    """Rows of three types (one segment each), three cuts per scenario and type, caps, a fixed
    level, a baseline, truth and one designation line; ``near``: cuts put on actual scores."""
    rng = np.random.default_rng(seed)
    T = 3
    starts = np.array([0, n // 3, 2 * n // 3, n], dtype=np.int64)
    t_of = np.repeat(np.arange(T), np.diff(starts))
    ct = rng.random((c, n))
    tt = np.clip(ct + rng.normal(0, 0.05, (c, n)), 0, 1)
    w100 = 100 * rng.dirichlet(np.ones(c), size=(S, T))
    thr = np.sort(rng.uniform(30, 70, (S, T, 3)), axis=2)
    if near:                                    # cuts on (and a hair off) measured and true scores
        for s in range(S):
            for t in range(T):
                r = slice(starts[t], starts[t + 1])
                x = _score(ct[:, r], w100[s, t])
                y = _score(tt[:, r], w100[s, t])
                thr[s, t] = np.sort([x[3], y[5] + 1e-7, x[7] - 1e-12])
    cap = rng.choice(np.array([3, 3, 3, 2, 1], dtype=np.int8), n)
    fixed = np.where(rng.random(n) < 0.02, rng.integers(0, 4, n), -1).astype(np.int8)
    base = rng.integers(0, 4, n).astype(np.int16)
    lines = rng.uniform(35, 55, (S, 1))
    pre = (rng.random((1, n)) < 0.03)
    line_ok = (rng.random((1, n)) < 0.9)
    return dict(ct=ct, tt=tt, starts=starts, t_of=t_of, w100=w100, thr=thr, cap=cap, fixed=fixed, base=base,
                lines=lines, pre=pre, line_ok=line_ok)


def _score(ct, w):
    x = ct[0] * w[0]
    for k in range(1, len(ct)):
        x = x + ct[k] * w[k]
    return x


def _unit_direct(d):
    """Each branch's level per scenario from its float64 score, and the statistics counted in NumPy."""
    S, T, L1 = d["thr"].shape
    n = d["ct"].shape[1]
    out = {k: np.zeros(S, dtype=np.int64) for k in ("changed", "abs_change", "correct", "designated")}
    out["at_least"] = np.zeros((S, L1), dtype=np.int64)
    out["t_at_least"] = np.zeros((S, L1), dtype=np.int64)
    for s in range(S):
        x = np.empty(n)
        y = np.empty(n)
        lv = np.empty(n, dtype=np.int64)
        for t in range(T):
            r = slice(d["starts"][t], d["starts"][t + 1])
            x[r] = _score(d["ct"][:, r], d["w100"][s, t])
            y[r] = _score(d["tt"][:, r], d["w100"][s, t])
        lv = (x[:, None] >= d["thr"][s, d["t_of"]]).sum(axis=1)
        tl = (y[:, None] >= d["thr"][s, d["t_of"]]).sum(axis=1)
        lv = np.where(d["fixed"] >= 0, d["fixed"], np.minimum(lv, d["cap"]))
        tl = np.where(d["fixed"] >= 0, d["fixed"], np.minimum(tl, d["cap"]))
        out["at_least"][s] = [(lv > j).sum() for j in range(L1)]
        out["t_at_least"][s] = [(tl > j).sum() for j in range(L1)]
        out["changed"][s] = (lv != d["base"]).sum()
        out["abs_change"][s] = np.abs(lv - d["base"]).sum()
        out["correct"][s] = (lv == tl).sum()
        out["designated"][s] = (d["pre"][0] | (d["line_ok"][0] & (x < d["lines"][s, 0]))).sum()
    return out


def _unit_kernel(d):
    S = d["thr"].shape[0]
    T = len(d["starts"]) - 1
    seg = np.arange(T, dtype=np.int64)
    none = np.zeros((0, d["ct"].shape[1]), dtype=bool)
    at_least, changed, abs_change, correct, t_at_least, designated = _kernels.unit_stats(
        d["ct"], d["ct"].astype(np.float32), d["tt"], d["tt"].astype(np.float32), d["starts"], seg, seg,
        np.zeros(T, dtype=np.int64), 1, d["cap"], d["fixed"], d["base"], d["cap"], d["fixed"], d["w100"],
        d["thr"], False, d["thr"], False, d["lines"], d["pre"], d["line_ok"], [], [], [], none, [],
        np.zeros((0, S, 1)), np.zeros((0, d["ct"].shape[1]), dtype=np.int64),
        with_base=True, with_truth=True, with_des=True)
    return dict(at_least=at_least[0], changed=changed[0], abs_change=abs_change[0], correct=correct[0],
                t_at_least=t_at_least[0], designated=designated[0, :, 0])


@pytest.mark.parametrize("c", [5, 4, 6])
@pytest.mark.parametrize("near", [True, False])
def test_unit_statistics_equal_the_float64_levels(c, near):
    # five components take the pass that sums each score itself; others sum into a buffer first
    d = _unit_case(20 + c, n=3 * _kernels._ROWS_UNITS + 50, S=6, c=c, near=near)
    got, exp = _unit_kernel(d), _unit_direct(d)
    for key in exp:
        np.testing.assert_array_equal(got[key], exp[key], err_msg=key)


def test_a_zero_component_changes_nothing():
    # the same scores from five components and from six (a sixth with weight 0): the same statistics
    d = _unit_case(31, n=2 * _kernels._ROWS_UNITS + 7, S=5, c=5)
    six = dict(d, ct=np.vstack([d["ct"], np.zeros(d["ct"].shape[1])]),
               tt=np.vstack([d["tt"], np.zeros(d["tt"].shape[1])]),
               w100=np.concatenate([d["w100"], np.zeros(d["w100"].shape[:2] + (1,))], axis=2))
    a, b = _unit_kernel(d), _unit_kernel(six)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
