"""Facts → points → components of many measurement draws in one compiled pass (Numba).

The measurement Monte Carlo draws, for every draw and seed block, a
standard normal ``z`` and a uniform ``u`` per branch and indicator (the
streams of :func:`branchsim.measurement.branch_block`). This kernel turns a
stack of such draws (rows: draw-major, then branch) into

* the measured facts, with the arithmetic of
  :func:`~branchsim.measurement.branch_block` and
  :func:`~branchsim.measurement.facts_from_attainment` (attainment
  ``clip(q + offset + noise z, 0, 1)``, each rule form's fact, shares and
  ranks' measures rounded to two decimals as ``np.round`` does:
  ``rint(100 x) / 100``; state facts as the branch's state), bit for bit;
* the points (rule codes as :data:`branchsim.scheme.RULE_CODES`) of every rule form but ``zeroing`` and ``rank`` (those two stay
  0 here, as in :func:`~branchsim.scoring.indicator_points`, which sets
  them afterwards), bit for bit;
* for a ``shares`` sheet without dimension bonus caps, without rank and
  zeroing rules, the components: each dimension's points over its maximum,
  clipped to ``[0, 1]``, summed in the sheet's order (BLAS's order may
  differ in the last bit; scores are rounded to nine decimals after), and
  the survey rate.

Free of threads: one call works on its rows in order, so the numbers
never depend on how draws are stacked or run. Without Numba the caller uses
the NumPy functions above (same facts and points).
"""
from __future__ import annotations

import numpy as np

from ..measurement import _scales

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; NumPy remains the fallback
    numba = None

__all__ = ["available", "Sheet", "sheet_arrays", "facts_points", "fuses_components"]


def available() -> bool:
    return numba is not None


def fuses_components(bs) -> bool:
    """Whether the kernel computes the components too (a shares sheet, no bonus caps, no rank or zeroing)."""
    return (bs.form == "shares" and not np.isfinite(bs.dim_bonus_cap).any() and not bs.sheet.has("rank")
            and not bs.sheet.has("zeroing") and bool((bs.sheet.onehot.sum(axis=1) == 1).all()))


def sheet_arrays(bs, state_facts: tuple) -> tuple:
    """The plain arrays the kernel reads from a branch scheme (rule forms, parameters, scales, groups)."""
    from ..measurement import _state_value
    sheet = bs.sheet
    k = sheet.k
    sc = _scales(sheet)
    kind0 = sheet.kind[0].astype(np.int64)
    scale = np.zeros(k)
    for j in range(k):
        c = int(kind0[j])
        scale[j] = (sc["required"][j] if c == 1 else sc["bonus"][j] if c == 3 else sc["per_event"][j] if c == 4
                    else sc["occurrences"][j] if c in (5, 6) else 0.0)
    state_of = np.full(k, -1, dtype=np.int64)
    good, bad = np.zeros(max(1, len(state_facts))), np.zeros(max(1, len(state_facts)))
    for s, fact in enumerate(state_facts):
        good[s], bad[s] = _state_value(bs, fact)
        if fact in sheet.facts:
            state_of[sheet.facts.index(fact)] = s
    group = np.argmax(sheet.onehot, axis=1).astype(np.int64) if k else np.zeros(0, np.int64)
    # (types, k, 8): each unit's rule in one place: form code, points, at_least, per_shortfall, required,
    # per_unit, per_event, per_occurrence
    rule = np.ascontiguousarray(np.stack([sheet.kind, sheet.points, sheet.at_least, sheet.per_shortfall,
                                          sheet.required, sheet.per_unit, sheet.per_event, sheet.per_occurrence],
                                         axis=2), dtype=float)
    return (kind0, scale, rule, state_of, good, bad, group, np.ascontiguousarray(sheet.group_max, dtype=float),
            np.ascontiguousarray(bs.answer_values, dtype=float))


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)
    def _kernel(q, t, off, sigma, prop_noise, z, u, state, survey, with_components, slot, with_points,
                kind0, scale, rule, state_of, good, bad, group, group_max, answer_values,
                facts, points, components):   # pragma: no cover - compiled
        rows, k = z.shape
        g = group_max.shape[1]
        a = answer_values.shape[0]
        got = np.zeros(g)
        for i in range(rows):
            ti = t[i]
            qi = q[i]
            for h in range(g):
                got[h] = 0.0
            for j in range(k):
                p = (qi + off[j]) + sigma * z[i, j]
                p = min(max(p, 0.0), 1.0)
                uu = u[i, j]
                c = kind0[j]
                if c == 0:                              # (comparisons as numbers: no branch to mispredict)
                    f = np.float64(uu < p)
                elif c == 2:
                    f = min(max(p + prop_noise * (uu - 0.5), 0.0), 1.0)
                    f = np.rint(f * 100.0) / 100.0
                elif c == 5 or c == 6:
                    f = np.floor(scale[j] * (1.0 - p) + uu)
                elif c == 7:
                    f = np.float64(uu < (1.0 - p) / 2.0)
                elif c == 8:
                    f = np.rint((100.0 * p) * 100.0) / 100.0
                else:                                   # 1, 3, 4: counts
                    f = np.floor(scale[j] * p + uu)
                s = state_of[j]
                if s >= 0:
                    f = good[s] if state[i, s] > 0 else bad[s]
                if slot[j] >= 0:
                    facts[i, slot[j]] = f
                cu = rule[ti, j, 0]                     # the unit's rule: form code, points, parameters
                tp = rule[ti, j, 1]
                if cu == 0.0:
                    pt = tp * np.float64(f >= rule[ti, j, 2])   # tp >= 0: the same as tp or 0.0
                elif cu == 1.0:
                    pt = max(tp - rule[ti, j, 3] * max(rule[ti, j, 4] - f, 0.0), 0.0)
                elif cu == 2.0:
                    pt = tp * min(max(f, 0.0), 1.0)
                elif cu == 3.0:
                    pt = min(tp, rule[ti, j, 5] * max(f, 0.0))
                elif cu == 4.0:
                    pt = min(tp, rule[ti, j, 6] * max(f, 0.0))
                elif cu == 5.0:
                    pt = max(tp - rule[ti, j, 7] * max(f, 0.0), 0.0)
                elif cu == 6.0:
                    pt = -min(tp, rule[ti, j, 7] * max(f, 0.0))
                else:                                   # zeroing and rank: set afterwards
                    pt = 0.0
                if with_points:
                    points[i, j] = pt
                got[group[j]] += pt                     # the dimension's points, in the sheet's order
            if with_components:
                for h in range(g):
                    mx = group_max[ti, h]
                    frac = got[h] / mx if mx > 0 else 0.0
                    components[i, h] = min(max(frac, 0.0), 1.0)
                if a > 0:
                    num = 0.0
                    den = 0.0
                    for b in range(a):
                        num += survey[i, b] * answer_values[b]
                        den += survey[i, b]
                    components[i, g] = num / den


def facts_points(q, t, off, sigma: float, prop_noise: float, z, u, state, survey, arrays: tuple,
                 with_components: bool, keep=None):
    """Facts, points and (``with_components``) components ``(R, c)`` of stacked rows.

    ``q``, ``t`` per row; ``z``, ``u`` ``(R, k)``; ``state`` ``(R, s)``;
    ``survey`` ``(R, a)`` answer counts; ``arrays`` from :func:`sheet_arrays`.
    ``keep`` (indicator positions, default all) picks the facts returned,
    in that order; with components and a ``keep`` that leaves some
    indicator out, no points are returned (None): the caller needs the
    components and a few facts only.
    """
    rows, k = z.shape
    g = arrays[7].shape[1]
    a = len(arrays[8])
    keep = np.arange(k) if keep is None else np.asarray(keep, dtype=np.int64)
    slot = np.full(k, -1, dtype=np.int64)
    slot[keep] = np.arange(len(keep))
    with_points = not (with_components and len(keep) < k)
    facts = np.empty((rows, len(keep)))
    points = np.empty((rows, k) if with_points else (0, 0))
    comps = np.empty((rows, g + (a > 0))) if with_components else np.empty((0, 0))
    st = state if state.shape[1] else np.zeros((rows, 1))
    sv = survey if survey is not None and survey.shape[1] else np.zeros((rows, 1), dtype=np.int64)
    _kernel(q, t, off, float(sigma), float(prop_noise), z, u, st, sv, bool(with_components), slot, with_points,
            *arrays, facts, points, comps)
    return facts, (points if with_points else None), (comps if with_components else None)
