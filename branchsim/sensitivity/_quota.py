"""Quota rating designs on the scenario axis: thresholds found from the scores themselves.

A quota design gives each level a share of a group's units instead of a fixed
cut point, so the cut of every level depends on the scenario's weights: it is
the score of the unit at the quota's rank. :func:`quota_thresholds_reference`
states the rule plainly (one sort per scenario and group);
:func:`quota_counts` computes the same thresholds without sorting a million
scores per scenario, and the star counts under them, in one compiled kernel.

Conventions (both functions)
----------------------------
Rows (branches) are grouped into contiguous *segments* ``starts[t] ..
starts[t + 1]``, each with its own weights ``w100[s, t, :]``; the score of
row ``i`` of segment ``t`` under scenario ``s`` is the float64 sum, in
component order and without fused multiply-adds,
``x = ct[0, i] * w100[s, t, 0] + ct[1, i] * w100[s, t, 1] + ...`` (the
score of :func:`._kernels.count_at_least`), rounded to
:data:`~branchsim.scoring.DECIMALS` decimals as evaluate rounds it: two
units whose sums differ in the last bits but round alike are tied, as
evaluate ties them (scores of a points scheme tie often). The weak line, a
fixed cut, is compared with the unrounded sum. Segments belong to groups
``seg_group[t]`` (non-decreasing: a group's segments are contiguous).
``allowed[s, g, j]`` is the most units of group ``g`` that may be at level
``j`` or better, levels above the floor in ascending order (so ``allowed`` is
non-increasing in ``j``). With the group's scores sorted descending
``v_1 >= v_2 >= ...`` (``n`` of them, every row of the group: vetoes and caps
act afterwards, in the counting) and ``a = allowed[s, g, j]``, the threshold
is ``-inf`` if ``a >= n``, ``+inf`` if ``a == 0``, ``v_a`` if
``v_a > v_{a+1}``, and otherwise (a tie straddles the quota; the tied units
all go to the lower level, so the quota is never exceeded) the smallest score
strictly above ``v_a``, ``+inf`` if there is none. A unit reaches the level
when ``x >= threshold``.
"""
from __future__ import annotations

import numpy as np

from ..scoring import DECIMALS

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency
    numba = None

__all__ = ["quota_thresholds_reference", "quota_counts"]

#: Histogram bins of a large group (fewer for a small one: see _bins_of).
_BINS = 2048
#: Scenarios sharing each block of rows while it is in cache.
_SCENARIOS_PER_TASK = 8
#: Rows per block (the float32 components of a block stay in L1).
_ROWS = 1024
_U32 = 2.0 ** -24            # float32 unit roundoff
_SCALE = 10.0 ** DECIMALS    # scores are ranked rounded to DECIMALS decimals, as evaluate rounds them
_ROUNDING = 10.0 ** -DECIMALS   # more than the rounding moves a score (half a unit of the last decimal)


def _scores(ct: np.ndarray, starts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Float64 scores of every row under one scenario's weights ``w`` (T, c), summed in k order."""
    x = np.empty(ct.shape[1])
    for t in range(len(starts) - 1):
        r = slice(starts[t], starts[t + 1])
        x[r] = ct[0, r] * w[t, 0]
        for k in range(1, ct.shape[0]):
            x[r] = x[r] + ct[k, r] * w[t, k]
    return x


def quota_thresholds_reference(ct, starts, seg_group, w100, allowed) -> np.ndarray:
    """Quota thresholds by sorting each group's scores (the rule as :func:`branchsim.rating.quota_thresholds`
    states it for evaluate).

    Parameters
    ----------
    ct : ndarray, shape (c, n)
        Components of every row, rows grouped into segments.
    starts : ndarray of int, shape (T + 1,)
        Segment ``t`` is rows ``starts[t] .. starts[t + 1]``.
    seg_group : ndarray of int, shape (T,)
        The group of each segment.
    w100 : ndarray, shape (S, T, c)
        Weights of each scenario and segment (× 100).
    allowed : ndarray of int, shape (S, G, L)
        Cumulative quota: the most units of group ``g`` at level ``j`` or
        better, levels ascending.

    Returns
    -------
    ndarray, shape (S, G, L)
        Thresholds (float64, possibly ``±inf``); a unit reaches level ``j``
        when its score is ``>=`` the threshold.
    """
    from ..rating import quota_thresholds
    ct = np.asarray(ct, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    seg_group = np.asarray(seg_group, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=np.int64)
    S, G, L = allowed.shape
    thr = np.empty((S, G, L))
    rows = [np.concatenate([np.arange(starts[t], starts[t + 1]) for t in np.flatnonzero(seg_group == g)]
                           + [np.zeros(0, dtype=np.int64)]) for g in range(G)]
    for s in range(S):
        x = np.round(_scores(ct, starts, np.asarray(w100[s], dtype=np.float64)), DECIMALS)
        for g in range(G):
            thr[s, g] = quota_thresholds(x[rows[g]], allowed[s, g])
    return thr


# -- the compiled kernel --------------------------------------------------------------------------
# Per scenario and group, pass 1 scores every row in float32 into a histogram over a range known
# beforehand (from each segment's component bounds and the weights) and locates the bins holding
# ranks a and a + 1. Pass 2 scores again, counts the rows above a window around those bins and
# keeps the rows inside it (about 1 %: float32 score and row number). With eps a bound on the
# float32 error, ranks are exact for every float64 score at least eps inside the window's edges;
# v_a lies within eps of the float32 score at rank a, so only the kept rows within 2 eps of that
# score are scored in float64 (a handful: each is a cache miss on the float64 components) to
# give v_a, v_{a+1} and the next distinct score. When a needed score is not far enough inside
# the window (float32 error, or a tie whose next distinct score lies further up) the window grows
# to the next non-empty bins and that one level is collected again: correct whatever the data,
# slower only for pathological ones (e.g. a few distinct scores).
# Counts: rows every level may reach ("main") are counted from the window (rows above it, plus
# kept rows at or above the threshold, in float64 only within eps of it); rows a veto caps at
# some levels only are few and are counted directly in float64 (pass 3); the weak line, a fixed
# cut, is counted in pass 1 with a float32 guard band and an exact recount of a block where a
# score falls inside it.
# No fastmath anywhere, said explicitly (a Numba function that does not set it inherits its first
# caller's): fused multiply-adds would change the float64 scores' last bit (the definition above
# has none). The small helpers are inlined ("always"): called as functions, their loops run
# several times slower.

_DONE, _UP, _DOWN = 0, 1, 2

if numba is not None:
    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _block_scores(ct, r0, m, w, xs):   # pragma: no cover - compiled
        """Scores of rows r0 .. r0 + m into xs, in ct's precision (float32 or float64).

        Summed in component order (``a * b + c * d + e * f`` is ``(a * b + c * d) + e * f``),
        so in float64 these are the module's scores. Through slices: indexing ``ct[k, r0 + i]``
        with an r0 of unknown sign makes Numba handle negative indices, which stops the loop
        from vectorizing (several times slower).
        """
        if ct.shape[0] == 5:                   # the usual shape in one pass (~40 % faster)
            c0, c1, c2 = ct[0, r0:r0 + m], ct[1, r0:r0 + m], ct[2, r0:r0 + m]
            c3, c4 = ct[3, r0:r0 + m], ct[4, r0:r0 + m]
            w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
            for i in range(m):
                xs[i] = c0[i] * w0 + c1[i] * w1 + c2[i] * w2 + c3[i] * w3 + c4[i] * w4
            return
        row = ct[0, r0:r0 + m]
        w0 = w[0]
        for i in range(m):
            xs[i] = row[i] * w0
        for k in range(1, ct.shape[0]):
            row = ct[k, r0:r0 + m]
            wk = w[k]
            for i in range(m):
                xs[i] += row[i] * wk

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _score64(ct, i, w):   # pragma: no cover - compiled
        x = ct[0, i] * w[0]
        for k in range(1, ct.shape[0]):
            x += ct[k, i] * w[k]
        return x

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _bin(x, lo, sc, top):   # pragma: no cover - compiled
        """The bin of a float32 score: monotone in x, so [P, Q) maps into [bin(P), bin(Q)].

        Unsigned, so indexing a histogram with it needs no negative-index wrap-around.
        """
        f = (x - lo) * sc
        f = f if f > np.float32(0.0) else np.float32(0.0)
        return np.uint32(f if f < top else top)

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _bins(xs, m, lo, sc, top, out):   # pragma: no cover - compiled
        for i in range(m):
            out[i] = _bin(xs[i], lo, sc, top)

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _above_and_inside(xs, inside, P, Q):   # pragma: no cover - compiled
        """Rows of xs at or above Q; marks those in [P, Q) in inside."""
        n = 0
        for i in range(len(xs)):
            x = xs[i]
            n += x >= Q
            inside[i] |= (x >= P) & (x < Q)
        return n

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _window(bl, bh, nb, lo, sc, margin):   # pragma: no cover - compiled
        """Float32 window [P, Q) around bins bl .. bh, widened by margin (open at the ends)."""
        lo64 = np.float64(lo)
        inv = 1.0 / np.float64(sc)
        if bl == 0:
            P = np.float32(-np.inf)
        else:
            p = lo64 + bl * inv - margin
            P = np.float32(p - 2.0 * _U32 * abs(p))      # rounding to float32 must not narrow it
        if bh == nb - 1:
            Q = np.float32(np.inf)
        else:
            q = lo64 + (bh + 1) * inv + margin
            Q = np.float32(q + 2.0 * _U32 * abs(q))
        return P, Q

    @numba.njit(inline="always", error_model="numpy", boundscheck=False)
    def _rounded(x):   # pragma: no cover - compiled
        """``x`` rounded to :data:`~branchsim.scoring.DECIMALS` decimals as NumPy's round does it."""
        return np.rint(x * _SCALE) / _SCALE

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _exact(ct, starts, w64, i):   # pragma: no cover - compiled
        """The rounded float64 score of row i (its segment found by bisection: called for few rows)."""
        t = np.searchsorted(starts, i, side="right") - 1
        return _rounded(_score64(ct, i, w64[t]))

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _resolve(ct, starts, w64, x32, idx, a, above, eps, zlo, zhi):   # pragma: no cover - compiled
        """The threshold from a window's kept rows, or which way the window must grow.

        ``x32``/``idx``: the kept rows' float32 scores and row numbers; ``above`` rows lie
        above the window. A float64 score z has its exact rank when ``zlo <= z < zhi``. Only
        rows whose float32 score is within 2 eps of the one at rank a are scored in float64
        (a handful: reading a row's float64 components is a cache miss). Returns (status,
        threshold).
        """
        m = len(x32)
        r = a - above                          # rank of v_a among the kept rows, 1 = largest
        if r < 1:
            return _UP, 0.0
        if r > m:
            return _DOWN, 0.0
        y = np.float64(np.partition(x32, m - r)[m - r])   # rank r in float32 (a selection: O(m))
        # v_a is within eps of y, so rows more than 2 eps above y are above it and rows more than
        # 2 eps below are below it: v_a is a near row's float64 score, ranked among the near rows
        n_up = 0
        near = np.empty(m)
        n_near = 0
        low_up = np.inf                        # the lowest float32 score of the rows above
        for i in range(m):
            x = np.float64(x32[i])
            if x > y + 2.0 * eps:
                n_up += 1
                low_up = min(low_up, x)
            elif x >= y - 2.0 * eps:
                near[n_near] = _exact(ct, starts, w64, idx[i])
                n_near += 1
        near = near[:n_near]
        p = n_near - (r - n_up)                # v_a's place in ascending order among the near rows
        if not 0 <= p < n_near:                # cannot happen while eps bounds the float32 error
            raise RuntimeError("quota_counts: float32 error above its bound")
        part = np.partition(near, p)
        va = part[p]
        if va >= zhi:
            return _UP, 0.0
        if va < zlo:
            return _DOWN, 0.0
        # v_{a+1} < v_a unless another row scores exactly v_a (such a row is a near row)
        tie = False
        for i in range(p):
            tie |= part[i] == va
        if not tie:
            return _DONE, va
        nxt = np.inf                           # the smallest score above v_a: a near row ...
        for i in range(p + 1, n_near):
            if va < part[i] < nxt:
                nxt = part[i]
        for i in range(m):                     # ... or one of the lowest rows above them
            x = np.float64(x32[i])
            if y + 2.0 * eps < x <= low_up + 2.0 * eps:
                nxt = min(nxt, _exact(ct, starts, w64, idx[i]))
        if nxt < np.inf:
            return (_DONE, nxt) if nxt < zhi else (_UP, 0.0)
        return (_DONE, np.inf) if above == 0 else (_UP, 0.0)

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _count_main(ct, starts, w64, x32, idx, main, th, eps):   # pragma: no cover - compiled
        """Kept rows every level may reach whose float64 score is >= th (float64 only near th)."""
        n = 0
        for i in range(len(x32)):
            if main[i]:
                x = np.float64(x32[i])
                if x >= th + eps:
                    n += 1
                elif x >= th - eps:
                    n += _exact(ct, starts, w64, idx[i]) >= th
        return n

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _collect(ct32, starts, ta, tb, main_end, w32, P, Q, cap):   # pragma: no cover - compiled
        """One scenario, one window, the rows of segments ta .. tb: rows above it (all, and those
        every level may reach), and the rows inside (float32 score, row, may reach every level)."""
        x32 = np.empty(max(cap, 16), dtype=np.float32)
        idx = np.empty(max(cap, 16), dtype=np.int64)
        main = np.empty(max(cap, 16), dtype=np.bool_)
        xs = np.empty(_ROWS, dtype=np.float32)
        fill = 0
        above = 0
        above_main = 0
        for t in range(ta, tb):
            for r0 in range(starts[t], starts[t + 1], _ROWS):
                m = min(_ROWS, starts[t + 1] - r0)
                nm = min(m, max(0, main_end[t] - r0))
                _block_scores(ct32, r0, m, w32[t], xs)
                for i in range(m):
                    x = xs[i]
                    if x >= Q:
                        above += 1
                        above_main += i < nm
                    elif x >= P:
                        if fill == len(x32):          # grow: the histogram's estimate was short
                            x2 = np.empty(2 * fill, dtype=np.float32)
                            i2 = np.empty(2 * fill, dtype=np.int64)
                            m2 = np.empty(2 * fill, dtype=np.bool_)
                            x2[:fill] = x32
                            i2[:fill] = idx
                            m2[:fill] = main
                            x32, idx, main = x2, i2, m2
                        x32[fill] = x
                        idx[fill] = r0 + i
                        main[fill] = i < nm
                        fill += 1
        return above, above_main, x32[:fill], idx[:fill], main[:fill]

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _settle(ct, ct32, starts, ta, tb, main_end, w64, w32, hist, nb, lo, sc, eps, margin, a, bl, bh, P, Q,
                above, above_main, x32, idx, main, need):   # pragma: no cover - compiled
        """One scenario's threshold for one level from its window, growing the window until the kept
        rows settle it; returns (threshold, rows every level may reach at or above it).

        ``need`` > len(x32): pass 2's buffer was short, this window is collected again alone.
        A function of its own: reassigning arrays in a loop inside a prange body is miscompiled
        by Numba 0.68 (the loop's last arrays are not seen after it).
        """
        if need > len(x32):
            above, above_main, x32, idx, main = _collect(ct32, starts, ta, tb, main_end, w32, P, Q, need)
        while True:
            status, th = _resolve(ct, starts, w64, x32, idx, a, above, eps, np.float64(P) + eps,
                                  np.float64(Q) - eps)
            if status == _DONE:
                break
            if status == _UP:                  # to the next non-empty bin above
                bh += 1
                while bh < nb - 1 and hist[bh] == 0:
                    bh += 1
                bh = min(bh, nb - 1)
            else:
                bl -= 1
                while bl > 0 and hist[bl] == 0:
                    bl -= 1
                bl = max(bl, 0)
            P, Q = _window(bl, bh, nb, lo, sc, margin)
            above, above_main, x32, idx, main = _collect(ct32, starts, ta, tb, main_end, w32, P, Q,
                                                         hist[bl:bh + 1].sum() + 16)
        return th, above_main + _count_main(ct, starts, w64, x32, idx, main, th, eps)

    @numba.njit(parallel=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _quota_kernel(ct, ct32, starts, gseg, main_end, limits, weak_end, w100, w32, allowed, weak_line,
                      with_weak, lo32, sc32, eps, margin, nbins):   # pragma: no cover
        S, G, L = allowed.shape
        thr = np.empty((S, G, L))
        at_least = np.zeros((S, L), dtype=np.int64)
        weak = np.zeros(S, dtype=np.int64)
        K = _SCENARIOS_PER_TASK
        tasks = (S + K - 1) // K
        for q in numba.prange(tasks):
            s0 = q * K
            ks = min(S, s0 + K) - s0
            hist = np.zeros((K, _BINS), dtype=np.int32)     # 64 KiB: L2-resident counts
            inside = np.zeros(_ROWS, dtype=np.uint8)
            words = inside.view(np.uint64)
            xs = np.empty(_ROWS, dtype=np.float32)
            x64 = np.empty(_ROWS)
            bins = np.empty(_ROWS, dtype=np.uint32)
            pend = np.zeros((K, L), dtype=np.bool_)
            kpend = np.zeros(K, dtype=np.bool_)
            bl = np.zeros((K, L), dtype=np.int64)
            bh = np.zeros((K, L), dtype=np.int64)
            P = np.zeros((K, L), dtype=np.float32)
            Q = np.zeros((K, L), dtype=np.float32)
            above = np.zeros((K, L), dtype=np.int64)
            above_main = np.zeros((K, L), dtype=np.int64)
            off = np.zeros((K, L), dtype=np.int64)
            cap = np.zeros((K, L), dtype=np.int64)
            fill = np.zeros((K, L), dtype=np.int64)
            for g in range(G):
                ta, tb = gseg[g], gseg[g + 1]
                ng = starts[tb] - starts[ta]
                nb = nbins[g]
                top = np.float32(nb - 1)
                n_main = 0
                for t in range(ta, tb):
                    n_main += main_end[t] - starts[t]
                any_pend = False
                for k in range(ks):
                    kpend[k] = False
                    for j in range(L):
                        a = allowed[s0 + k, g, j]
                        pend[k, j] = 0 < a < ng
                        kpend[k] |= pend[k, j]
                        if a >= ng:
                            thr[s0 + k, g, j] = -np.inf
                            at_least[s0 + k, j] += n_main
                        elif a <= 0:
                            thr[s0 + k, g, j] = np.inf
                    any_pend |= kpend[k]
                if any_pend or with_weak:
                    # pass 1: histogram of float32 scores; the weak count with its guard band
                    hist[:, :nb] = 0
                    for t in range(ta, tb):
                        for r0 in range(starts[t], starts[t + 1], _ROWS):
                            m = min(_ROWS, starts[t + 1] - r0)
                            hw = min(m, max(0, weak_end[t] - r0))
                            for k in range(ks):
                                s = s0 + k
                                _block_scores(ct32, r0, m, w32[s, t], xs)
                                if kpend[k]:
                                    h = hist[k]
                                    _bins(xs, m, lo32[s, g], sc32[s, g], top, bins)
                                    for i in range(m):
                                        h[bins[i]] += 1
                                if with_weak and hw > 0:
                                    wl = weak_line[s, t]
                                    if not abs(wl) < np.inf:         # ±inf (or nan): no band to set
                                        weak[s] += hw if wl == np.inf else 0
                                        continue
                                    # wider than eps by more than rounding wl -/+ band to float32 takes
                                    band = eps[s, g] + 2.0 * _U32 * (abs(wl) + eps[s, g]) + 1e-30
                                    wlo = np.float32(wl - band)
                                    whi = np.float32(wl + band)
                                    nl = 0
                                    nh = 0
                                    for i in range(hw):
                                        nl += xs[i] < wlo
                                        nh += xs[i] < whi
                                    if nl == nh:
                                        weak[s] += nl
                                    else:                              # a score near the line: exactly
                                        _block_scores(ct, r0, hw, w100[s, t], x64)
                                        for i in range(hw):
                                            weak[s] += x64[i] < wl
                if any_pend:
                    # the bins of ranks a and a + 1, the window around them and its expected size
                    total = 0
                    for k in range(ks):
                        s = s0 + k
                        for j in range(L):
                            if not pend[k, j]:
                                continue
                            a = allowed[s, g, j]
                            cum = 0
                            b = nb - 1
                            while cum + hist[k, b] < a:
                                cum += hist[k, b]
                                b -= 1
                            bh[k, j] = b
                            while cum + hist[k, b] < a + 1:
                                cum += hist[k, b]
                                b -= 1
                            bl[k, j] = b
                            P[k, j], Q[k, j] = _window(bl[k, j], bh[k, j], nb, lo32[s, g], sc32[s, g],
                                                       margin[s, g])
                            lo_b = _bin(P[k, j], lo32[s, g], sc32[s, g], top)
                            hi_b = _bin(Q[k, j], lo32[s, g], sc32[s, g], top)
                            n = 0
                            for b in range(lo_b, hi_b + 1):
                                n += hist[k, b]
                            off[k, j] = total
                            cap[k, j] = n + 16
                            total += n + 16
                            fill[k, j] = 0
                            above[k, j] = 0
                            above_main[k, j] = 0
                    kx = np.empty(total, dtype=np.float32)         # the kept rows: float32 score,
                    ki = np.empty(total, dtype=np.int64)           # row number, and whether every
                    km = np.empty(total, dtype=np.bool_)           # level may reach it
                    # pass 2: count the rows above each window, keep those inside
                    for t in range(ta, tb):
                        for r0 in range(starts[t], starts[t + 1], _ROWS):
                            m = min(_ROWS, starts[t + 1] - r0)
                            nm = min(m, max(0, main_end[t] - r0))
                            for k in range(ks):
                                if not kpend[k]:
                                    continue
                                s = s0 + k
                                _block_scores(ct32, r0, m, w32[s, t], xs)
                                # vectorized: rows above each window, and a mark on rows inside any
                                inside[:] = 0
                                for j in range(L):
                                    if pend[k, j]:
                                        na = _above_and_inside(xs[:nm], inside[:nm], P[k, j], Q[k, j])
                                        nr = _above_and_inside(xs[nm:m], inside[nm:m], P[k, j], Q[k, j])
                                        above_main[k, j] += na
                                        above[k, j] += na + nr
                                # the marked rows are about 1 %: skip unmarked 8-row words whole
                                for u in range((m + 7) // 8):
                                    if words[u] == 0:
                                        continue
                                    for i in range(8 * u, min(8 * u + 8, m)):
                                        if inside[i] == 0:
                                            continue
                                        x = xs[i]
                                        for j in range(L):
                                            if pend[k, j] and P[k, j] <= x < Q[k, j]:
                                                f = fill[k, j]
                                                if f < cap[k, j]:
                                                    kx[off[k, j] + f] = x
                                                    ki[off[k, j] + f] = r0 + i
                                                    km[off[k, j] + f] = i < nm
                                                fill[k, j] = f + 1     # past cap: collected again below
                    # thresholds from the kept scores, growing a window where they do not settle it
                    for k in range(ks):
                        s = s0 + k
                        for j in range(L):
                            if not pend[k, j]:
                                continue
                            o = off[k, j]
                            f = o + min(fill[k, j], cap[k, j])
                            thr[s, g, j], n = _settle(ct, ct32, starts, ta, tb, main_end, w100[s], w32[s],
                                                      hist[k], nb, lo32[s, g], sc32[s, g], eps[s, g],
                                                      margin[s, g], allowed[s, g, j], bl[k, j], bh[k, j],
                                                      P[k, j], Q[k, j], above[k, j], above_main[k, j],
                                                      kx[o:f], ki[o:f], km[o:f], fill[k, j])
                            at_least[s, j] += n
                # pass 3: rows a veto caps at some levels only, exactly
                for t in range(ta, tb):
                    hi_t = main_end[t]
                    for j in range(L):
                        hi_t = max(hi_t, limits[t, j])
                    for r0 in range(main_end[t], hi_t, _ROWS):
                        m = min(_ROWS, hi_t - r0)
                        for k in range(ks):
                            s = s0 + k
                            _block_scores(ct, r0, m, w100[s, t], x64)
                            for j in range(L):
                                e = min(m, max(0, limits[t, j] - r0))
                                th = thr[s, g, j]
                                n = 0
                                for i in range(e):
                                    n += _rounded(x64[i]) >= th
                                at_least[s, j] += n
        return thr, at_least, weak


def _bins_of(n: int) -> int:
    """Histogram bins for a group of n rows: about 8 rows a bin, at most _BINS.

    Fine bins keep the windows (the rows pass 2 keeps) small; clearing and scanning them costs
    per bin, a fraction of a pass over the rows.
    """
    return int(min(_BINS, max(16, n // 8)))


def quota_counts(ct, starts, seg_group, limits, weak_end, w100, allowed, weak_line=None, ct32=None):
    """Quota thresholds and the star counts under them, for every scenario at once.

    Parameters
    ----------
    ct : ndarray, shape (c, n)
        Components of every row (float64), rows grouped into segments.
    starts : ndarray of int, shape (T + 1,)
        Segment ``t`` is rows ``starts[t] .. starts[t + 1]``.
    seg_group : ndarray of int, shape (T,)
        The group of each segment, non-decreasing (a group's segments are
        contiguous), values in ``0 .. G - 1``.
    limits : ndarray of int, shape (T, L)
        Rows ``starts[t] .. limits[t, j]`` of segment ``t`` may reach level
        ``j`` (rows a veto caps lower are sorted last in their segment).
    weak_end : ndarray of int, shape (T,)
        Rows ``starts[t] .. weak_end[t]`` are counted for the weak line.
    w100 : ndarray, shape (S, T, c)
        Weights of each scenario and segment (× 100).
    allowed : ndarray of int, shape (S, G, L)
        Cumulative quota: the most units of group ``g`` at level ``j`` or
        better, levels ascending (non-increasing in ``j``).
    weak_line : ndarray, shape (S, T), optional
        A fixed weak line per scenario and segment; None skips the weak count.
    ct32 : ndarray of float32, shape (c, n), optional
        ``ct`` in float32, when the caller keeps it.

    Returns
    -------
    thr : ndarray, shape (S, G, L)
        The thresholds, equal to :func:`quota_thresholds_reference`'s (float64,
        ``±inf`` where the quota admits everyone / no one); a row reaches
        level ``j`` when its score is ``>=`` the threshold.
    at_least : ndarray of int64, shape (S, L)
        Rows ``i < limits[t, j]`` of every segment whose score is
        ``>= thr[s, seg_group[t], j]``: :func:`._kernels.count_at_least` with
        these thresholds as each segment's cuts.
    below_weak : ndarray of int64, shape (S,) or None
        Rows ``i < weak_end[t]`` whose score is ``< weak_line[s, t]``.

    Notes
    -----
    Every scenario is computed alone (the result does not depend on the
    number of threads). Scores must stay within float32's range (the
    histogram passes run in float32; the result is exact all the same).
    """
    if numba is None:                                      # pragma: no cover - numba is a dependency
        raise RuntimeError("quota_counts needs numba")
    ct = np.ascontiguousarray(ct, dtype=np.float64)
    c, n = ct.shape
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    T = len(starts) - 1
    seg_group = np.ascontiguousarray(seg_group, dtype=np.int64)
    allowed = np.ascontiguousarray(allowed, dtype=np.int64)
    w100 = np.ascontiguousarray(w100, dtype=np.float64)
    S, G, L = allowed.shape
    if starts[0] != 0 or starts[-1] != n or (np.diff(starts) < 0).any():
        raise ValueError("starts must rise from 0 to the number of rows")
    ordered = seg_group.shape == (T,) and (np.diff(seg_group) >= 0).all()
    if not ordered or (T and not 0 <= seg_group[0] <= seg_group[-1] < G):
        raise ValueError("seg_group must give each segment a group 0 .. G - 1, non-decreasing")
    if (allowed < 0).any():
        raise ValueError("allowed counts must be >= 0")
    if w100.shape != (S, T, c):
        raise ValueError(f"w100 must be shaped (S, T, c) = ({S}, {T}, {c}), not {w100.shape}")
    if weak_line is not None and np.shape(weak_line) != (S, T):
        raise ValueError(f"weak_line must be shaped (S, T) = ({S}, {T}), not {np.shape(weak_line)}")
    seg_lo, seg_hi = starts[:-1], starts[1:]
    limits = np.clip(np.asarray(limits, dtype=np.int64).reshape(T, L), seg_lo[:, None], seg_hi[:, None])
    weak_end = np.clip(np.asarray(weak_end, dtype=np.int64), seg_lo, seg_hi)
    main_end = limits.min(axis=1, initial=n) if L else seg_hi.copy()
    main_end = np.maximum(main_end, seg_lo)
    gseg = np.searchsorted(seg_group, np.arange(G + 1)).astype(np.int64)
    nrows = starts[gseg[1:]] - starts[gseg[:-1]]
    nbins = np.array([_bins_of(int(m)) for m in nrows], dtype=np.int64)

    # the histogram's range and the float32 error bound, per scenario and group, without a pass
    mn = np.zeros((T, c))
    mx = np.zeros((T, c))
    full = seg_hi > seg_lo
    if full.any():
        mn[full] = np.minimum.reduceat(ct, seg_lo[full], axis=1).T
        mx[full] = np.maximum.reduceat(ct, seg_lo[full], axis=1).T
    lo_t = np.minimum(mn * w100, mx * w100).sum(axis=2)                       # (S, T)
    hi_t = np.maximum(mn * w100, mx * w100).sum(axis=2)
    big_t = (np.maximum(np.abs(mn), np.abs(mx)) * np.abs(w100)).sum(axis=2)
    lo = np.zeros((S, G))
    hi = np.zeros((S, G))
    big = np.zeros((S, G))
    for g in range(G):
        segs = [t for t in range(gseg[g], gseg[g + 1]) if full[t]]
        if segs:
            lo[:, g] = lo_t[:, segs].min(axis=1)
            hi[:, g] = hi_t[:, segs].max(axis=1)
            big[:, g] = big_t[:, segs].max(axis=1)
    if not (np.all(big < 1e36) and np.isfinite(w100).all() and np.isfinite(ct).all()):
        raise ValueError("scores must be finite and within float32's range")
    # |float32 score - float64 score| <= (c + 3) u M for M = sum |ct w| (c - 1 additions, three
    # roundings a product); twice that, plus a floor for float32 underflow, plus the rounding of the
    # float64 score to DECIMALS decimals (the scale ranks and ties are decided on)
    eps = 2.0 * (c + 3) * _U32 * big + 1e-30 + _ROUNDING
    lo32 = (lo - eps - 2 * _U32 * np.abs(lo)).astype(np.float32)
    width = (hi + eps) - lo32.astype(np.float64)
    sc32 = (nbins[None, :] / np.maximum(width, 1e-30)).astype(np.float32)
    # the window's margin: twice the float32 error, plus the bins' own rounding (a few float32
    # ulps of the range), so ranks a and a + 1 land well inside on the first try
    margin = 2.0 * eps + 4.0 * _U32 * (np.abs(lo32.astype(np.float64)) + nbins / sc32.astype(np.float64))
    with_weak = weak_line is not None
    wl = np.zeros((S, T)) if weak_line is None else np.ascontiguousarray(weak_line, dtype=np.float64)
    ct32 = ct.astype(np.float32) if ct32 is None else np.ascontiguousarray(ct32, dtype=np.float32)
    thr, at_least, weak = _quota_kernel(ct, ct32, starts, gseg, main_end, limits, weak_end, w100,
                                        w100.astype(np.float32), allowed, wl, with_weak, lo32, sc32, eps, margin,
                                        nbins)
    return thr, at_least, (weak if with_weak else None)
