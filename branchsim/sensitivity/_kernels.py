"""Compiled kernel for counting stars over many scenarios (Numba).

Counting is the scenario axis' hot loop: for every scenario and branch a
five-term dot product and a few comparisons. NumPy needs a temporary score
matrix and one pass per cut point; this kernel fuses them, reads each block
of branches once per group of scenarios (cache-sized), and runs groups of
scenarios on all cores. Integer counts make the result independent of the
thread count. Without Numba the engine uses its NumPy path (same numbers).
"""
from __future__ import annotations

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
        n = 0
        for i in range(lo, hi):
            x = ct[0, i] * w[0] + ct[1, i] * w[1] + ct[2, i] * w[2] + ct[3, i] * w[3] + ct[4, i] * w[4]
            n += x >= c
        return n

    @numba.njit(cache=True, fastmath=False, error_model="numpy", boundscheck=False)
    def _exact_below(ct, lo, hi, w, c):   # pragma: no cover - compiled
        n = 0
        for i in range(lo, hi):
            x = ct[0, i] * w[0] + ct[1, i] * w[1] + ct[2, i] * w[2] + ct[3, i] * w[3] + ct[4, i] * w[4]
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
        for i in range(lo, hi):
            x = ct32[0, i] * a0 + ct32[1, i] * a1 + ct32[2, i] * a2 + ct32[3, i] * a3 + ct32[4, i] * a4
            nl += one if x >= cl else zero
            nh += one if x >= ch else zero
        if nl != nh:
            return _exact_below(ct, lo, hi, w, c) if below else _exact(ct, lo, hi, w, c)
        return (hi - lo) - np.int64(nh) if below else np.int64(nh)

    @numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy", boundscheck=False)
    def _kernel53(ct, ct32, starts, limits, weak_end, w100, w32, cuts, weak_line, with_weak):  # pragma: no cover
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
                            for i in range(r0, e):
                                v0 = ct32[0, i]; v1 = ct32[1, i]; v2 = ct32[2, i]; v3 = ct32[3, i]
                                v4 = ct32[4, i]
                                x = v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3 + v4 * a4
                                y = v0 * b0 + v1 * b1 + v2 * b2 + v3 * b3 + v4 * b4
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
                            for i in range(r0, e):
                                v0 = ct32[0, i]; v1 = ct32[1, i]; v2 = ct32[2, i]; v3 = ct32[3, i]
                                v4 = ct32[4, i]
                                x = v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3 + v4 * a4
                                y = v0 * b0 + v1 * b1 + v2 * b2 + v3 * b3 + v4 * b4
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


def count_at_least_53(ct, starts, limits, weak_end, w100, cuts, weak_line, ct32=None):
    """:func:`count_at_least` for five components and three cuts (float32 with an exact guard band).

    Same arrays (``cuts`` (S, t, 3), ``weak_line`` (S, t)); the guard band
    is set per type from that type's cuts. ``weak_line`` None skips the weak
    count (star counts only); ``ct32`` is ``ct`` in float32 when the caller
    keeps it. Assumes what the engine's layout gives: ``weak_end[t] >=
    min_j limits[t, j]`` (the rows every level may reach are counted for the
    weak line too) and scores within 100 points (the guard band's size).
    """
    _check_shapes(w100, cuts, weak_line)
    ct = np.ascontiguousarray(ct, dtype=np.float64)
    w100 = np.ascontiguousarray(w100, dtype=np.float64)
    with_weak = weak_line is not None
    wl = np.zeros(cuts.shape[:2]) if weak_line is None else np.ascontiguousarray(weak_line, dtype=np.float64)
    return _kernel53(ct, ct.astype(np.float32) if ct32 is None else ct32, np.asarray(starts, dtype=np.int64),
                     np.ascontiguousarray(limits, dtype=np.int64), np.asarray(weak_end, dtype=np.int64),
                     w100, w100.astype(np.float32), np.ascontiguousarray(cuts, dtype=np.float64), wl, with_weak)
