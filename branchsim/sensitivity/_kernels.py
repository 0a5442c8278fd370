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
_ROWS_PER_BLOCK = 1024


def available() -> bool:
    return numba is not None


if numba is not None:
    @numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
    def _kernel(ct, starts, w100, cuts, weak_line, with_weak):   # pragma: no cover - compiled
        c, _ = ct.shape
        S, L = cuts.shape
        T = len(starts) - 1
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
                            cj = cuts[s, j]
                            n = 0
                            for i in range(m):
                                n += np.int32(xs[i] >= cj)
                            at_least[s, j] += n
                        if with_weak:
                            wl = weak_line[s]
                            n = 0
                            for i in range(m):
                                n += np.int32(xs[i] < wl)
                            weak[s] += n
        return at_least, weak


def count_at_least(ct: np.ndarray, starts: np.ndarray, w100: np.ndarray, cuts: np.ndarray,
                   weak_line: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """For every scenario, branches whose score reaches each cut and branches below the weak line.

    ``ct`` (c, n): components, branches grouped by type; ``starts`` (t + 1,)
    the first branch of each type; ``w100`` (S, t, c) the weights × 100;
    ``cuts`` (S, L) and ``weak_line`` (S,) already shifted by the rounding
    tolerance (None: the weak count is not wanted). Returns
    ``(at_least (S, L), below_weak (S,))`` as int64.
    """
    with_weak = weak_line is not None
    wl = np.zeros(len(cuts)) if weak_line is None else weak_line
    return _kernel(np.ascontiguousarray(ct, dtype=np.float64), np.asarray(starts, dtype=np.int64),
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
