"""Compiled kernel for counting stars over many scenarios (Numba).

Counting is the scenario axis' hot loop: for every scenario and branch a
five-term dot product and a few comparisons. NumPy needs a temporary score
matrix and one pass per cut point; this kernel fuses them, reads each block
of branches once per group of scenarios (cache-sized), and runs groups of
scenarios on all cores. Integer counts make the result independent of the
thread count. Without Numba the engine uses its NumPy path (same numbers).
"""
from __future__ import annotations

import os
import types

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the NumPy path stays as a fallback
    numba = None

__all__ = ["available", "count_at_least"]

_SCENARIOS_PER_TASK = 64
_ROWS_PER_BLOCK = 2048


def available() -> bool:
    return numba is not None


if numba is not None:
    # No fastmath: it would let LLVM fuse ``x + ct * w`` into one rounding (FMA), so the scores
    # would differ in the last bit from the float64 sum in k order that _exact, NumPy and
    # _quota compute. The count loops are integer sums and vectorize without it.
    @numba.njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
    def _kernel(ct, starts, limits, weak_end, w100, cuts, weak_line, with_weak):   # pragma: no cover
        c, _ = ct.shape
        S, T, L = cuts.shape
        at_least = np.zeros((S, L), dtype=np.int64)
        weak = np.zeros(S, dtype=np.int64)
        tasks = (S + _SCENARIOS_PER_TASK - 1) // _SCENARIOS_PER_TASK
        for q in numba.prange(tasks):
            xs = np.empty(_ROWS_PER_BLOCK)
            s0 = q * _SCENARIOS_PER_TASK
            s1 = min(S, s0 + _SCENARIOS_PER_TASK)
            for t in range(T):
                for r0 in range(starts[t], starts[t + 1], _ROWS_PER_BLOCK):
                    m = min(r0 + _ROWS_PER_BLOCK, starts[t + 1]) - r0
                    for s in range(s0, s1):
                        w0 = w100[s, t, 0]
                        for i in range(m):
                            xs[i] = ct[0, r0 + i] * w0
                        for k in range(1, c):
                            wk = w100[s, t, k]
                            for i in range(m):
                                xs[i] += ct[k, r0 + i] * wk
                        for j in range(L):
                            # rows are sorted so those a veto caps below this level come last
                            hi = min(m, max(0, limits[t, j] - r0))
                            cj = cuts[s, t, j]
                            n = 0
                            for i in range(hi):
                                n += np.int32(xs[i] >= cj)
                            at_least[s, j] += n
                        if with_weak:
                            hi = min(m, max(0, weak_end[t] - r0))
                            wl = weak_line[s, t]
                            n = 0
                            for i in range(hi):
                                n += np.int32(xs[i] < wl)
                            weak[s] += n
        return at_least, weak


def _check_shapes(w100, cuts, weak_line) -> None:
    """Cuts (S, t, L) and weak lines (S, t) against the weights (S, t, c): a clear error for the
    older (S, L) / (S,) shapes instead of a compiler one."""
    S, T = np.shape(w100)[:2]
    if np.ndim(cuts) != 3 or np.shape(cuts)[:2] != (S, T):
        raise ValueError(f"cuts must be shaped (S, t, L) = ({S}, {T}, L), not {np.shape(cuts)}")
    if weak_line is not None and np.shape(weak_line) != (S, T):
        raise ValueError(f"weak_line must be shaped (S, t) = ({S}, {T}), not {np.shape(weak_line)}")


def count_at_least(ct: np.ndarray, starts: np.ndarray, limits: np.ndarray, weak_end: np.ndarray,
                   w100: np.ndarray, cuts: np.ndarray,
                   weak_line: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """For every scenario, branches whose score reaches each cut and branches below the weak line.

    ``ct`` (c, n): components, branches grouped by type; ``starts`` (t + 1,)
    the first branch of each type; ``limits`` (t, L): for each type and cut,
    the end of the rows that may reach that level (rows a veto caps lower are
    sorted after it); ``weak_end`` (t,): the end of the rows counted for the
    weak line; ``w100`` (S, t, c) the weights × 100;
    ``cuts`` (S, t, L) and ``weak_line`` (S, t): a cut and a weak line per
    scenario and type (each type may have its own), already shifted by the
    rounding tolerance (None: the weak count is not wanted). A row counts
    for level j when ``x >= cuts[s, t, j]``, as weak when ``x < weak_line[s, t]``,
    with ``x`` the float64 sum over k, in k order, of ``ct[k, i] * w100[s, t, k]``.
    Returns ``(at_least (S, L), below_weak (S,))`` as int64.
    """
    _check_shapes(w100, cuts, weak_line)
    with_weak = weak_line is not None
    wl = np.zeros(cuts.shape[:2]) if weak_line is None else weak_line
    return _kernel(np.ascontiguousarray(ct, dtype=np.float64), np.asarray(starts, dtype=np.int64),
                   np.ascontiguousarray(limits, dtype=np.int64), np.asarray(weak_end, dtype=np.int64),
                   np.ascontiguousarray(w100, dtype=np.float64), np.ascontiguousarray(cuts, dtype=np.float64),
                   np.ascontiguousarray(wl, dtype=np.float64), with_weak)


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _month_points(base, shock, u, kind, req32, scale32, prop_noise, topm, per_shortfall, req64,
                      per_unit, out):   # pragma: no cover - compiled
        k, m = base.shape
        half = np.float32(0.5)
        zero = np.float32(0.0)
        one = np.float32(1.0)
        out[:, :] = 0.0
        for mo in range(12):
            sh = shock[mo]
            acc = out[mo]
            for j in range(k):          # one rule form per indicator: a branch-free inner loop
                b = base[j]
                uu = u[j, mo]
                tp = topm[j]
                kd = kind[j]
                if kd == 0:
                    for i in range(m):
                        acc[i] += tp[i] if uu[i] < b[i] + sh[i] else 0.0
                elif kd == 1:
                    r32, r64, d = req32[j], req64[j], per_shortfall[j]
                    for i in range(m):
                        f = min(max(np.floor((b[i] + sh[i]) * r32 + uu[i]), zero), r32)
                        acc[i] += max(tp[i] - d * max(r64 - np.float64(f), 0.0), 0.0)
                elif kd == 2:
                    for i in range(m):
                        f = min(max((b[i] + sh[i]) + (uu[i] - half) * prop_noise, zero), one)
                        acc[i] += tp[i] * min(max(np.float64(f), 0.0), 1.0)
                else:
                    sc, pu = scale32[j], per_unit[j]
                    for i in range(m):
                        f = max(np.floor((b[i] + sh[i]) * sc + uu[i]), zero)
                        acc[i] += min(tp[i], pu * max(np.float64(f), 0.0))


def month_points(base, shock, u, kind, req32, scale32, prop_noise, topm, per_shortfall, req64, per_unit,
                 out) -> None:
    """Points of every member-month, straight from attainment and uniforms (no facts stored).

    ``base`` (k, m) and ``shock`` (12, m) float32 attainment, ``u`` (k, 12, m)
    float32 uniforms, rule arrays in the same (rule-grouped) indicator order;
    ``topm`` (k, m) each member's maximum points (by its branch type);
    ``out`` (12, m) receives the sum of points. The facts are computed with
    the float32 arithmetic of :func:`branchsim.measurement._monthly_facts`, and
    the points with that of :func:`branchsim.scoring.indicator_points`.
    """
    _month_points(base, shock, u, kind, req32, scale32, prop_noise, topm, per_shortfall, req64, per_unit,
                  out)


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _month_facts(base, shock, u, kind, req32, scale32, prop_noise, out):   # pragma: no cover - compiled
        k, m = base.shape
        half = np.float32(0.5)
        zero = np.float32(0.0)
        one = np.float32(1.0)
        for j in range(k):
            b = base[j]
            kd = kind[j]
            for mo in range(12):
                sh = shock[mo]
                uu = u[j, mo]
                o = out[j, mo]
                if kd == 0:
                    for i in range(m):
                        o[i] = one if uu[i] < b[i] + sh[i] else zero
                elif kd == 1:
                    r = req32[j]
                    for i in range(m):
                        o[i] = min(max(np.floor((b[i] + sh[i]) * r + uu[i]), zero), r)
                elif kd == 2:
                    for i in range(m):
                        o[i] = min(max((b[i] + sh[i]) + (uu[i] - half) * prop_noise, zero), one)
                else:
                    sc = scale32[j]
                    for i in range(m):
                        o[i] = max(np.floor((b[i] + sh[i]) * sc + uu[i]), zero)


def month_facts(base, shock, u, kind, req32, scale32, prop_noise, out) -> None:
    """Twelve months of facts into ``out`` (k, 12, m): one fused pass (same float32 arithmetic
    as the NumPy path of :func:`branchsim.measurement._monthly_facts`)."""
    _month_facts(base, shock, u, kind, req32, scale32, prop_noise, out)


# -- the fast path for the usual shape: five components, three cut points ----------------------
# Scores are computed in float32 for two scenarios per pass, with a guard band: each count is
# taken at cut - eps and cut + eps; where the two differ for a block of branches (a score lies
# within eps of the cut, where float32 rounding could decide), that block is recounted exactly in
# float64. eps is three times float32's worst-case error on a 100-point score (five products of
# a share in [0, 1] and a weight up to 100, and four additions: below 9e-5), so the counts equal
# the float64 ones exactly. Small blocks keep the exact recounts rare and cheap.
# The exact recounts say fastmath=False: a function that does not set it inherits its first
# caller's, and would fuse x + ct * w into one rounding (FMA) inside _kernel53, so a score equal
# to a cut (a quota threshold is one) could be miscounted against the plain float64 sum.
_EPS = 2.5e-4
_ROWS_53 = 512

if numba is not None:
    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _exact(ct, lo, hi, w, c):   # pragma: no cover - compiled
        c0, c1, c2, c3, c4 = ct[0, lo:hi], ct[1, lo:hi], ct[2, lo:hi], ct[3, lo:hi], ct[4, lo:hi]
        w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
        n = 0
        for i in range(hi - lo):
            x = c0[i] * w0 + c1[i] * w1 + c2[i] * w2 + c3[i] * w3 + c4[i] * w4
            n += x >= c
        return n

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _exact_below(ct, lo, hi, w, c):   # pragma: no cover - compiled
        c0, c1, c2, c3, c4 = ct[0, lo:hi], ct[1, lo:hi], ct[2, lo:hi], ct[3, lo:hi], ct[4, lo:hi]
        w0, w1, w2, w3, w4 = w[0], w[1], w[2], w[3], w[4]
        n = 0
        for i in range(hi - lo):
            x = c0[i] * w0 + c1[i] * w1 + c2[i] * w2 + c3[i] * w3 + c4[i] * w4
            n += x < c
        return n

    @numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _tail(ct, ct32, lo, hi, w, w32, c, below):   # pragma: no cover - compiled
        """Rows lo..hi of one scenario against one threshold, float32 with the guard band."""
        eps = np.float32(_EPS)
        one = np.float32(1.0)
        zero = np.float32(0.0)
        cl = np.float32(c) - eps
        ch = np.float32(c) + eps
        a0, a1, a2, a3, a4 = w32[0], w32[1], w32[2], w32[3], w32[4]
        nl = zero
        nh = zero
        v0, v1, v2, v3, v4 = ct32[0, lo:hi], ct32[1, lo:hi], ct32[2, lo:hi], ct32[3, lo:hi], ct32[4, lo:hi]
        for i in range(hi - lo):
            x = v0[i] * a0 + v1[i] * a1 + v2[i] * a2 + v3[i] * a3 + v4[i] * a4
            nl += one if x >= cl else zero
            nh += one if x >= ch else zero
        if nl != nh:
            return _exact_below(ct, lo, hi, w, c) if below else _exact(ct, lo, hi, w, c)
        return (hi - lo) - np.int64(nh) if below else np.int64(nh)

    @numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _kernel53(ct, ct32, starts, limits, weak_end, pre_end, w100, w32, cuts, weak_line,
                  with_weak):  # pragma: no cover
        S = cuts.shape[0]
        T = len(starts) - 1
        at_least = np.zeros((S, 3), dtype=np.int64)
        weak = np.zeros(S, dtype=np.int64)
        eps = np.float32(_EPS)
        one = np.float32(1.0)
        zero = np.float32(0.0)
        pairs = (S + 1) // 2
        per_task = 8
        tasks = (pairs + per_task - 1) // per_task
        for q in numba.prange(tasks):
            for t in range(T):
                lim = min(limits[t, 0], limits[t, 1], limits[t, 2])
                for r0 in range(starts[t], starts[t + 1], _ROWS_53):
                    r1 = min(r0 + _ROWS_53, starts[t + 1])
                    e = min(r1, max(r0, lim))                     # rows every cut and the weak line count
                    # 1-D views of the block, as in the other loops here (a plain loop indexing
                    # ct32[k, r0 + i] ran ~10x slower than with views; this one measured the same)
                    v0, v1, v2, v3, v4 = ct32[0, r0:e], ct32[1, r0:e], ct32[2, r0:e], ct32[3, r0:e], ct32[4, r0:e]
                    for pr in range(q * per_task, min(pairs, (q + 1) * per_task)):
                        s = 2 * pr
                        u = s + 1 if s + 1 < S else s
                        a = w32[s, t]
                        b = w32[u, t]
                        la0 = np.float32(cuts[s, t, 0]) - eps
                        la1 = np.float32(cuts[s, t, 1]) - eps
                        la2 = np.float32(cuts[s, t, 2]) - eps
                        ha0 = np.float32(cuts[s, t, 0]) + eps
                        ha1 = np.float32(cuts[s, t, 1]) + eps
                        ha2 = np.float32(cuts[s, t, 2]) + eps
                        lb0 = np.float32(cuts[u, t, 0]) - eps
                        lb1 = np.float32(cuts[u, t, 1]) - eps
                        lb2 = np.float32(cuts[u, t, 2]) - eps
                        hb0 = np.float32(cuts[u, t, 0]) + eps
                        hb1 = np.float32(cuts[u, t, 1]) + eps
                        hb2 = np.float32(cuts[u, t, 2]) + eps
                        lwa = np.float32(weak_line[s, t]) - eps
                        hwa = np.float32(weak_line[s, t]) + eps
                        lwb = np.float32(weak_line[u, t]) - eps
                        hwb = np.float32(weak_line[u, t]) + eps
                        a0, a1, a2, a3, a4 = a[0], a[1], a[2], a[3], a[4]
                        b0, b1, b2, b3, b4 = b[0], b[1], b[2], b[3], b[4]
                        # counts at cut - eps (A*) and cut + eps (B*); weak at line + eps / - eps
                        A0 = zero; A1 = zero; A2 = zero; B0 = zero; B1 = zero; B2 = zero
                        C0 = zero; C1 = zero; C2 = zero; D0 = zero; D1 = zero; D2 = zero
                        WA = zero; WB = zero; WC = zero; WD = zero
                        if with_weak:
                            for i in range(e - r0):
                                x = v0[i] * a0 + v1[i] * a1 + v2[i] * a2 + v3[i] * a3 + v4[i] * a4
                                y = v0[i] * b0 + v1[i] * b1 + v2[i] * b2 + v3[i] * b3 + v4[i] * b4
                                A0 += one if x >= la0 else zero
                                A1 += one if x >= la1 else zero
                                A2 += one if x >= la2 else zero
                                B0 += one if x >= ha0 else zero
                                B1 += one if x >= ha1 else zero
                                B2 += one if x >= ha2 else zero
                                WA += one if x < hwa else zero
                                WB += one if x < lwa else zero
                                C0 += one if y >= lb0 else zero
                                C1 += one if y >= lb1 else zero
                                C2 += one if y >= lb2 else zero
                                D0 += one if y >= hb0 else zero
                                D1 += one if y >= hb1 else zero
                                D2 += one if y >= hb2 else zero
                                WC += one if y < hwb else zero
                                WD += one if y < lwb else zero
                        else:                                       # star counts only
                            for i in range(e - r0):
                                x = v0[i] * a0 + v1[i] * a1 + v2[i] * a2 + v3[i] * a3 + v4[i] * a4
                                y = v0[i] * b0 + v1[i] * b1 + v2[i] * b2 + v3[i] * b3 + v4[i] * b4
                                A0 += one if x >= la0 else zero
                                A1 += one if x >= la1 else zero
                                A2 += one if x >= la2 else zero
                                B0 += one if x >= ha0 else zero
                                B1 += one if x >= ha1 else zero
                                B2 += one if x >= ha2 else zero
                                C0 += one if y >= lb0 else zero
                                C1 += one if y >= lb1 else zero
                                C2 += one if y >= lb2 else zero
                                D0 += one if y >= hb0 else zero
                                D1 += one if y >= hb1 else zero
                                D2 += one if y >= hb2 else zero
                        for side in range(2 if u != s else 1):
                            sc = s if side == 0 else u
                            w = w100[sc, t]
                            if side == 0:
                                lo3 = (A0, A1, A2); hi3 = (B0, B1, B2); wl, wh = WB, WA
                            else:
                                lo3 = (C0, C1, C2); hi3 = (D0, D1, D2); wl, wh = WD, WC
                            for j in range(3):
                                if lo3[j] == hi3[j]:
                                    at_least[sc, j] += np.int64(hi3[j])
                                else:                              # a score near the cut: exactly
                                    at_least[sc, j] += _exact(ct, r0, e, w, cuts[sc, t, j])
                                hj = min(r1, max(r0, limits[t, j]))
                                if hj > e:                         # rows capped below the others' levels
                                    at_least[sc, j] += _tail(ct, ct32, e, hj, w, w32[sc, t], cuts[sc, t, j],
                                                             False)
                                p0 = min(r1, max(r0, weak_end[t]))
                                pj = min(r1, max(r0, pre_end[t, j]))
                                if pj > p0:                        # rows after the weak line's that reach levels
                                    at_least[sc, j] += _tail(ct, ct32, p0, pj, w, w32[sc, t], cuts[sc, t, j],
                                                             False)
                            if not with_weak:
                                continue
                            if wl == wh:
                                weak[sc] += np.int64(wl)
                            else:
                                weak[sc] += _exact_below(ct, r0, e, w, weak_line[sc, t])
                            hw = min(r1, max(r0, weak_end[t]))
                            if hw > e:
                                weak[sc] += _tail(ct, ct32, e, hw, w, w32[sc, t], weak_line[sc, t], True)
        return at_least, weak


def count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line, ct32=None, pre_end=None):
    """:func:`count_at_least` for five components and three cuts (float32 with an exact guard band).

    Same arrays (``cuts`` (S, t, 3), ``weak_line`` (S, t)); the guard band
    is set per type from that type's cuts. ``weak_line`` None skips the weak
    count (star counts only); ``ct32`` is ``ct`` in float32 when the caller
    keeps it. ``pre_end`` (t, 3), optional: rows ``weak_end[t]`` to
    ``pre_end[t, j]`` also count for level j (not for the weak line): units
    designated whatever their score, sorted after the others by cap from
    none down, still reach levels by score; None: no such rows. Assumes what
    the engine's layout gives: ``min_j limits[t, j] <= weak_end[t]`` (the
    rows every level may reach are counted for the weak line too),
    ``limits[t, j] <= weak_end[t] <= pre_end[t, j]`` where ``pre_end`` is
    given, and scores within 100 points (the guard band's size).
    """
    _check_shapes(w100, cuts, weak_line)
    ct = np.ascontiguousarray(ct, dtype=np.float64)
    w100 = np.ascontiguousarray(w100, dtype=np.float64)
    with_weak = weak_line is not None
    wl = np.zeros(cuts.shape[:2]) if weak_line is None else np.ascontiguousarray(weak_line, dtype=np.float64)
    weak_end = np.asarray(weak_end, dtype=np.int64)
    pre_end = np.repeat(weak_end[:, None], 3, axis=1) if pre_end is None else \
        np.ascontiguousarray(pre_end, dtype=np.int64)
    if pre_end.shape != (len(weak_end), 3) or (pre_end < weak_end[:, None]).any():
        raise ValueError(f"pre_end must be shaped (t, 3) = ({len(weak_end)}, 3), each row >= weak_end")
    return _kernel53(ct, ct.astype(np.float32) if ct32 is None else ct32, np.asarray(starts, dtype=np.int64),
                     np.ascontiguousarray(limits, dtype=np.int64), weak_end, pre_end,
                     w100, w100.astype(np.float32), np.ascontiguousarray(cuts, dtype=np.float64), wl, with_weak)


# -- every branch's level, for the statistics a sweep reports --------------------------------
# The counts above need no branch's level; a sweep's ``changed`` / ``mean_abs_change`` (against
# the baseline's level), its accuracy (against the true level), its counts per group (``by=``)
# and its designations do. This kernel forms each branch's level per scenario, a block of rows
# at a time, and counts them. Scores are summed in float32 first; where a score of the block lies
# within _EPS of a threshold the scenario compares it with (a cut, a designation line, a
# criterion's value, a group's lowest score) the block is summed again exactly in float64, in k
# order and without FMA (as _exact); elsewhere the float32 sum decides every comparison as the
# exact sum would. Relative designs compare the scores rounded to 9 decimals (rint(x * 1e9) / 1e9,
# NumPy's round) with their thresholds. Counts are integers: the thread count cannot change them.
# 512 rows a block: a fused pass costs about 0.1 us a call besides its rows (its sums, its set-up),
# a fifth of a 256-row block's time; longer blocks fall back to the exact path more often.
_ROWS_UNITS = 512
_SCENARIOS_UNITS = 32
_SERIAL_BELOW = 1_000_000   # branch-scenarios below which the kernel runs on the calling thread
_BIG = 1e30          # thresholds clamped to +-_BIG for the float32 pass (no inf under fastmath)

if numba is not None:
    @numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _score32(ct32, r0, m, w32, xs):   # pragma: no cover - compiled
        c = ct32.shape[0]
        w0 = w32[0]
        v = ct32[0, r0:r0 + m]             # 1-D views: ct32[k, r0 + i] would keep the loops scalar
        for i in range(m):
            xs[i] = v[i] * w0
        for k in range(1, c):
            wk = w32[k]
            v = ct32[k, r0:r0 + m]
            for i in range(m):
                xs[i] += v[i] * wk

    @numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _near(xs, m, lo, hi):   # pragma: no cover - compiled
        """Rows whose float32 score lies in [lo, hi): those whose comparison float32 cannot decide."""
        one = np.float32(1.0)
        zero = np.float32(0.0)
        n = zero
        for i in range(m):
            n += one if (xs[i] >= lo) & (xs[i] < hi) else zero
        return n

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _score64(ct, r0, m, w, xs):   # pragma: no cover - compiled
        c = ct.shape[0]
        w0 = w[0]
        v = ct[0, r0:r0 + m]
        for i in range(m):
            xs[i] = v[i] * w0
        for k in range(1, c):
            wk = w[k]
            v = ct[k, r0:r0 + m]
            for i in range(m):
                xs[i] = xs[i] + v[i] * wk

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _band(th, eps):   # pragma: no cover - compiled
        t = min(max(th, -_BIG), _BIG)
        return np.float32(t) - eps, np.float32(t) + eps

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _unit_levels(ct, ct32, r0, m, w, w32, thr, rounded, cap, fixed, eps, extra, xs32, x64, xc, lvl,
                     last_low, last_code, scale):   # pragma: no cover - compiled
        """Scores (x64) and levels (lvl) of rows r0..r0+m of one scenario; ``extra``: the other
        thresholds compared with the unrounded score; ``last_low`` (C, G) and ``last_code`` (C, n):
        per-row thresholds of the rounded score (last-place criteria)."""
        _score32(ct32, r0, m, w32, xs32)
        near = np.float32(0.0)
        for j in range(len(thr)):
            lo, hi = _band(thr[j], eps)
            near += _near(xs32, m, lo, hi)
        for j in range(len(extra)):
            lo, hi = _band(extra[j], eps)
            near += _near(xs32, m, lo, hi)
        for q in range(last_low.shape[0]):
            for i in range(m):
                lo, hi = _band(last_low[q, last_code[q, r0 + i]], eps)
                if (xs32[i] >= lo) & (xs32[i] < hi):
                    near += 1
        if near > 0:
            _score64(ct, r0, m, w, x64)
        else:
            for i in range(m):
                x64[i] = np.float64(xs32[i])
        if rounded:
            for i in range(m):
                xc[i] = np.rint(x64[i] * scale) / scale
        else:
            for i in range(m):
                xc[i] = x64[i]
        for i in range(m):
            lvl[i] = 0
        for j in range(len(thr)):
            cj = thr[j]
            for i in range(m):
                lvl[i] += np.int32(xc[i] >= cj)
        fx = fixed[r0:r0 + m]
        cp = cap[r0:r0 + m]
        for i in range(m):
            f = fx[i]
            v = min(lvl[i], np.int32(cp[i]))
            lvl[i] = np.int32(f) if f >= 0 else v

    @numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _fast_measured(v0, v1, v2, v3, v4, w, s, t, m, hi, lo, capf, fixedf, basef, line_hi, line_lo, pref, okf,
                       dep_kind, dep_v, depf, lvbuf, acc):   # pragma: no cover - compiled
        """One fused float32 pass for the usual shape (<= 4 cuts, <= 1 designation, <= 1 level
        criterion) over a block's m rows (every array is the block's view): each row's score
        ``v0[i] * w[s, t, 0] + ... + v4[i] * w[s, t, 4]`` (the rows' components, or a score already
        summed and zeros), levels into ``lvbuf``, sums into ``acc`` (at least 1..4, changed, |change|,
        designated); returns the rows float32 cannot decide (the caller then discards ``acc``)."""
        one = np.float32(1.0)
        zero = np.float32(0.0)
        h0, h1, h2, h3 = hi[0], hi[1], hi[2], hi[3]
        l0, l1, l2, l3 = lo[0], lo[1], lo[2], lo[3]
        near = zero
        A0 = zero; A1 = zero; A2 = zero; A3 = zero; CH = zero; AB = zero; DS = zero
        eq = one if dep_kind == 1 else zero
        le = one if dep_kind == 2 else zero
        w0, w1, w2, w3, w4 = w[s, t, 0], w[s, t, 1], w[s, t, 2], w[s, t, 3], w[s, t, 4]
        for i in range(m):
            x = v0[i] * w0 + v1[i] * w1 + v2[i] * w2 + v3[i] * w3 + v4[i] * w4
            h = ((one if x >= h0 else zero) + (one if x >= h1 else zero)) + \
                ((one if x >= h2 else zero) + (one if x >= h3 else zero))
            lw = ((one if x >= l0 else zero) + (one if x >= l1 else zero)) + \
                 ((one if x >= l2 else zero) + (one if x >= l3 else zero))
            bl = one if x < line_lo else zero           # below the line, surely
            bh = one if x < line_hi else zero
            near += (lw - h) + (bh - bl)
            lv = min(h, capf[i])
            lv = fixedf[i] if fixedf[i] >= zero else lv
            lvbuf[i] = lv
            A0 += one if lv > zero else zero
            A1 += one if lv > one else zero
            A2 += one if lv > np.float32(2.0) else zero
            A3 += one if lv > np.float32(3.0) else zero
            d = lv - basef[i]
            CH += one if d != zero else zero
            AB += abs(d)
            held = max(pref[i], okf[i] * bl)
            crit = (eq * (one if lv == dep_v else zero) + le * (one if lv <= dep_v else zero)) * depf[i]
            DS += max(held, crit)
        acc[0] = A0; acc[1] = A1; acc[2] = A2; acc[3] = A3; acc[4] = CH; acc[5] = AB; acc[6] = DS
        return near

    @numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _fast_truth(v0, v1, v2, v3, v4, w, s, t, m, hi, lo, capf, fixedf, lvbuf, acc):   # pragma: no cover
        """The same for the true levels: at least 1..4 and the rows whose level equals ``lvbuf``."""
        one = np.float32(1.0)
        zero = np.float32(0.0)
        h0, h1, h2, h3 = hi[0], hi[1], hi[2], hi[3]
        l0, l1, l2, l3 = lo[0], lo[1], lo[2], lo[3]
        near = zero
        A0 = zero; A1 = zero; A2 = zero; A3 = zero; CO = zero
        w0, w1, w2, w3, w4 = w[s, t, 0], w[s, t, 1], w[s, t, 2], w[s, t, 3], w[s, t, 4]
        for i in range(m):
            x = v0[i] * w0 + v1[i] * w1 + v2[i] * w2 + v3[i] * w3 + v4[i] * w4
            h = ((one if x >= h0 else zero) + (one if x >= h1 else zero)) + \
                ((one if x >= h2 else zero) + (one if x >= h3 else zero))
            lw = ((one if x >= l0 else zero) + (one if x >= l1 else zero)) + \
                 ((one if x >= l2 else zero) + (one if x >= l3 else zero))
            near += lw - h
            lv = min(h, capf[i])
            lv = fixedf[i] if fixedf[i] >= zero else lv
            A0 += one if lv > zero else zero
            A1 += one if lv > one else zero
            A2 += one if lv > np.float32(2.0) else zero
            A3 += one if lv > np.float32(3.0) else zero
            CO += one if lv == lvbuf[i] else zero
        acc[0] = A0; acc[1] = A1; acc[2] = A2; acc[3] = A3; acc[4] = CO
        return near

    def _units_body(ct, ct32, tt, tt32, starts, seg_t, seg_key, seg_g, G, cap, fixed, base, tcap, tfixed,
                      w100, w32, thr, rounded, tthr, trounded, lines, pre, line_ok,
                      dep_k, dep_kind, dep_val, dep_ok, last_idx, last_low, last_code,
                      with_base, with_truth, with_des, eps, scale, fast, capf, fixedf, basef, tcapf, tfixedf,
                      pref, okf, depf, f_kind, f_val):   # pragma: no cover - compiled
        S, _, L1 = thr.shape
        D = lines.shape[1]
        C = len(dep_k)
        at_least = np.zeros((G, S, L1), dtype=np.int64)
        changed = np.zeros((G, S), dtype=np.int64)
        abs_change = np.zeros((G, S), dtype=np.int64)
        correct = np.zeros((G, S), dtype=np.int64)
        t_at_least = np.zeros((G, S, L1), dtype=np.int64)
        designated = np.zeros((G, S, D), dtype=np.int64)
        n_seg = len(seg_t)
        tasks = (S + _SCENARIOS_UNITS - 1) // _SCENARIOS_UNITS
        for q in numba.prange(tasks):
            xs32 = np.empty(_ROWS_UNITS, dtype=np.float32)
            x64 = np.empty(_ROWS_UNITS)
            xc = np.empty(_ROWS_UNITS)
            lvl = np.empty(_ROWS_UNITS, dtype=np.int32)
            tl = np.empty(_ROWS_UNITS, dtype=np.int32)
            held = np.empty(_ROWS_UNITS, dtype=np.bool_)
            extra = np.empty(D + C)
            no_low = np.empty((0, 1))
            no_code = np.empty((0, 1), dtype=np.int64)
            low_s = np.empty((last_low.shape[0], last_low.shape[2]))
            hi = np.empty(4, dtype=np.float32)
            lo = np.empty(4, dtype=np.float32)
            lvb = np.empty(_ROWS_UNITS, dtype=np.float32)
            acc = np.empty(7, dtype=np.float32)
            tacc = np.empty(5, dtype=np.float32)
            zs = np.zeros(_ROWS_UNITS, dtype=np.float32)
            unit_w = np.zeros((1, 1, 5), dtype=np.float32)
            unit_w[0, 0, 0] = 1.0
            five = ct32.shape[0] == 5
            big = np.float32(_BIG)
            s0 = q * _SCENARIOS_UNITS
            s1 = min(S, s0 + _SCENARIOS_UNITS)
            for sg in range(n_seg):
                t, key, g = seg_t[sg], seg_key[sg], seg_g[sg]
                for r0 in range(starts[sg], starts[sg + 1], _ROWS_UNITS):
                    m = min(r0 + _ROWS_UNITS, starts[sg + 1]) - r0
                    if fast:
                        # the block's views, made once for all its scenarios (not once per scenario)
                        e = r0 + m
                        if five:                            # the score summed in the pass itself
                            c0, c1, c2, c3, c4 = ct32[0, r0:e], ct32[1, r0:e], ct32[2, r0:e], ct32[3, r0:e], \
                                ct32[4, r0:e]
                            u0, u1, u2, u3, u4 = tt32[0, r0:e], tt32[1, r0:e], tt32[2, r0:e], tt32[3, r0:e], \
                                tt32[4, r0:e]
                        else:                               # summed into xs32 first, passed as one term
                            c0, c1, c2, c3, c4 = xs32[:m], zs[:m], zs[:m], zs[:m], zs[:m]
                            u0, u1, u2, u3, u4 = c0, c1, c2, c3, c4
                        b_cap, b_fixed, b_base = capf[r0:e], fixedf[r0:e], basef[r0:e]
                        b_pre, b_ok, b_dep = pref[r0:e], okf[r0:e], depf[r0:e]
                        b_tcap, b_tfixed = tcapf[r0:e], tfixedf[r0:e]
                    for s in range(s0, s1):
                        if fast:                                # the usual shape: fused float32 passes
                            for j in range(4):
                                if j < L1:
                                    lo[j], hi[j] = _band(thr[s, key, j], eps)
                                else:
                                    lo[j], hi[j] = big, big
                            if D:
                                line_lo, line_hi = _band(lines[s, 0], eps)
                            else:
                                line_lo, line_hi = -big, -big
                            if five:
                                wv, ws, wt = w32, s, t
                            else:
                                wv, ws, wt = unit_w, 0, 0
                                _score32(ct32, r0, m, w32[s, t], xs32)
                            nm = _fast_measured(c0, c1, c2, c3, c4, wv, ws, wt, m, hi, lo, b_cap, b_fixed, b_base,
                                                line_hi, line_lo, b_pre, b_ok, f_kind, f_val, b_dep, lvb, acc)
                            nt = np.float32(0.0)
                            if nm == 0 and with_truth:
                                for j in range(4):
                                    if j < L1:
                                        lo[j], hi[j] = _band(tthr[s, key, j], eps)
                                if not five:
                                    _score32(tt32, r0, m, w32[s, t], xs32)
                                nt = _fast_truth(u0, u1, u2, u3, u4, wv, ws, wt, m, hi, lo, b_tcap, b_tfixed, lvb,
                                                 tacc)
                            if nm == 0 and nt == 0:
                                for j in range(L1):
                                    at_least[g, s, j] += np.int64(acc[j])
                                changed[g, s] += np.int64(acc[4])
                                abs_change[g, s] += np.int64(acc[5])
                                if D:
                                    designated[g, s, 0] += np.int64(acc[6])
                                if with_truth:
                                    for j in range(L1):
                                        t_at_least[g, s, j] += np.int64(tacc[j])
                                    correct[g, s] += np.int64(tacc[4])
                                continue
                        ne = 0
                        if with_des:
                            for k in range(D):
                                extra[ne] = lines[s, k]
                                ne += 1
                            for c in range(C):
                                if dep_kind[c] == 0:
                                    extra[ne] = dep_val[c]
                                    ne += 1
                            for c in range(last_low.shape[0]):
                                for h in range(last_low.shape[2]):
                                    low_s[c, h] = last_low[c, s, h]
                        _unit_levels(ct, ct32, r0, m, w100[s, t], w32[s, t], thr[s, key], rounded, cap, fixed,
                                     eps, extra[:ne], xs32, x64, xc, lvl,
                                     low_s if with_des else no_low, last_code if with_des else no_code, scale)
                        for j in range(L1):
                            n = 0
                            for i in range(m):
                                n += np.int32(lvl[i] > j)
                            at_least[g, s, j] += n
                        if with_base:
                            n = 0
                            a = 0
                            for i in range(m):
                                d = lvl[i] - np.int32(base[r0 + i])
                                n += np.int32(d != 0)
                                a += abs(d)
                            changed[g, s] += n
                            abs_change[g, s] += a
                        if with_des:
                            for k in range(D):
                                lk = lines[s, k]
                                for i in range(m):
                                    held[i] = pre[k, r0 + i] | (line_ok[k, r0 + i] & (x64[i] < lk))
                                for c in range(C):
                                    if dep_k[c] != k:
                                        continue
                                    kind = dep_kind[c]
                                    v = dep_val[c]
                                    if kind == 0:                       # score below a value
                                        for i in range(m):
                                            held[i] |= dep_ok[c, r0 + i] & (x64[i] < v)
                                    elif kind == 1:                     # level equal to
                                        for i in range(m):
                                            held[i] |= dep_ok[c, r0 + i] & (lvl[i] == np.int32(v))
                                    elif kind == 2:                     # level at or below
                                        for i in range(m):
                                            held[i] |= dep_ok[c, r0 + i] & (lvl[i] <= np.int32(v))
                                    else:                               # the group's lowest rounded score
                                        p = last_idx[c]
                                        for i in range(m):
                                            xr = np.rint(x64[i] * scale) / scale
                                            held[i] |= dep_ok[c, r0 + i] & (xr <= low_s[p, last_code[p, r0 + i]])
                                n = 0
                                for i in range(m):
                                    n += np.int32(held[i])
                                designated[g, s, k] += n
                        if with_truth:
                            _unit_levels(tt, tt32, r0, m, w100[s, t], w32[s, t], tthr[s, key], trounded, tcap,
                                         tfixed, eps, extra[:0], xs32, x64, xc, tl, no_low, no_code, scale)
                            n = 0
                            for i in range(m):
                                n += np.int32(tl[i] == lvl[i])
                            correct[g, s] += n
                            for j in range(L1):
                                n = 0
                                for i in range(m):
                                    n += np.int32(tl[i] > j)
                                t_at_least[g, s, j] += n
        return at_least, changed, abs_change, correct, t_at_least, designated

    def _renamed(f, name):
        """``f`` under another name, so Numba caches its two compilations apart."""
        g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
        g.__qualname__ = name
        return g

    _opts = dict(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    _units_kernel = numba.njit(parallel=True, **_opts)(_renamed(_units_body, "_units_kernel"))
    # A process forked from one whose Numba threads ran (a ProcessPoolExecutor's worker on Linux)
    # must not start them again: GNU OpenMP aborts it. Such a worker runs the kernel on its own thread.
    _units_kernel_serial = numba.njit(**_opts)(_renamed(_units_body, "_units_kernel_serial"))

_FORKED = False


def _forked() -> None:
    global _FORKED
    _FORKED = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def unit_stats(ct, ct32, tt, tt32, starts, seg_t, seg_key, seg_g, n_groups, cap, fixed, base, tcap, tfixed,
               w100, thr, rounded, tthr, trounded, lines, pre, line_ok, dep_k, dep_kind, dep_val, dep_ok,
               last_idx, last_low, last_code, *, with_base, with_truth, with_des, decimals=9):
    """Counts of every scenario from each branch's level: per group, level, baseline and truth.

    Rows (``ct`` (c, n) components, ``ct32`` in float32; ``tt``/``tt32`` the
    truth's) are sorted into segments ``starts`` (segments + 1,) of one type
    ``seg_t`` (weights ``w100`` (S, t, c), the weights × 100), one row
    ``seg_key`` of the threshold tables and one group ``seg_g`` (of
    ``n_groups``). A row's level under scenario ``s`` is the number of
    thresholds ``thr[s, key]`` (ascending) its score reaches (rounded to
    ``decimals`` first when ``rounded``), lowered to ``cap``, or ``fixed``
    where that is >= 0; its true level the same from ``tt``, ``tthr``,
    ``tcap``, ``tfixed``. Designation ``k`` holds where ``pre[k]``, or
    ``line_ok[k]`` and the score is below ``lines[s, k]``, or a criterion
    ``c`` with ``dep_k[c] == k`` holds where ``dep_ok[c]``: kind 0 score
    below ``dep_val[c]``, 1 level equal to it, 2 level at or below it, 3
    rounded score at or below ``last_low[last_idx[c], s, last_code[last_idx[c], row]]``.
    Scores are the float64 sums in k order; thresholds are compared as given
    (shift them beforehand). Returns int64 ``(at_least (G, S, L-1),
    changed (G, S), abs_change (G, S), correct (G, S), true_at_least
    (G, S, L-1), designated (G, S, D))``; arrays not asked for are zeros.
    """
    w100 = np.ascontiguousarray(w100, dtype=np.float64)
    bound = float(np.abs(w100).sum(axis=2).max(initial=0.0)) * max(float(np.abs(ct).max(initial=0.0)),
                                                                  float(np.abs(tt).max(initial=0.0)))
    # the guard band covers float32's error on scores within 100 points (see _EPS); beyond that,
    # every block is summed exactly (a band wider than any clamped threshold)
    eps = np.float32(_EPS) if bound <= 100.0 * (1 + 1e-6) else np.float32(1e38)
    f64 = np.float64
    f32 = np.float32
    D, C, L1 = np.shape(lines)[1], len(dep_k), np.shape(thr)[2]
    # the fused float32 passes: <= 4 cuts, <= 1 designation and at most one level criterion of it
    fast = bool(eps == f32(_EPS) and L1 <= 4 and D <= 1 and C <= 1
                and all(kind in (1, 2) for kind in dep_kind))
    zero32 = np.zeros(len(cap), dtype=f32)
    row = (lambda a: np.ascontiguousarray(a, dtype=f32)) if fast else (lambda a: zero32)
    f_kind = int(dep_kind[0]) if C else 0
    f_val = f32(dep_val[0]) if C else f32(0)
    # a small call (a Sobol batch on a city) runs on this thread: waking Numba's threads and waiting
    # at their barrier costs more than the work, most of all on a shared machine
    small = len(cap) * np.shape(thr)[0] < _SERIAL_BELOW
    kernel = _units_kernel_serial if (_FORKED or small) else _units_kernel
    return kernel(ct, ct32, tt, tt32, np.asarray(starts, np.int64), np.asarray(seg_t, np.int64),
                         np.asarray(seg_key, np.int64), np.asarray(seg_g, np.int64), int(n_groups),
                         cap, fixed, base, tcap, tfixed, w100, w100.astype(np.float32),
                         np.ascontiguousarray(thr, f64), bool(rounded), np.ascontiguousarray(tthr, f64),
                         bool(trounded), np.ascontiguousarray(lines, f64), pre, line_ok,
                         np.asarray(dep_k, np.int64), np.asarray(dep_kind, np.int64), np.asarray(dep_val, f64),
                         dep_ok, np.asarray(last_idx, np.int64), np.ascontiguousarray(last_low, f64),
                         np.ascontiguousarray(last_code, np.int64), bool(with_base), bool(with_truth),
                         bool(with_des), eps, f64(10.0 ** decimals), fast, row(cap), row(fixed), row(base),
                         row(tcap), row(tfixed), row(pre[0] if D else zero32), row(line_ok[0] if D else zero32),
                         row(dep_ok[0] if C else zero32), f_kind, f_val)
