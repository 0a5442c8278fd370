"""The exact sweep of one share: every count as a step function of the share, breakpoints in closed form.

A branch's score is ``100 × components @ weights``. When one share ``s``
varies (the survey share, or a dimension's share, the other shares scaled by
one common factor as :meth:`Policy.update` does), each weight is linear in
``s``; for a type that keeps its own survey share while a dimension share
varies, the dimension weights are a ratio of two linear functions. Either
way a branch's score is monotone in ``s`` and meets each cut point,
designation line and (for generated populations) each cut on its true
score at most once, at a point known in closed form. Sorting those points
gives the level counts, designations, ``changed`` and ``accuracy`` for every
``s`` in [0, 1] in one pass, with no grid.

Rounding: scores are rounded to 9 decimals before they are compared, so a
score reaches a cut ``c`` when its unrounded value reaches ``c - 0.5e-9``.
Exactly there, floating-point evaluation (:func:`branchsim.evaluate`, the
engine's matrix products) decides by the last bit of the sum, which depends
on summation order. A breakpoint is therefore placed where the unrounded
score is ``_MARGIN`` past that value in the direction it moves: from there
on every evaluation agrees. The table is exact at every ``s`` except within
``_MARGIN / |slope|`` (about 1e-14) below a breakpoint.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, PolicyError
from ..policy import Policy
from ..scoring import DECIMALS
from .engine import _dependent, _line_criteria, prepare

__all__ = ["exact_sweep"]

_HALF = 0.5 * 10.0 ** -DECIMALS
#: How far past the rounding point a breakpoint is placed: above the rounding error of a score (at most
#: ~1.5e-13 for scores up to 100), far below the 1e-9 a rounded score resolves.
_MARGIN = 5e-13


def _check(policy: Policy, path) -> None:
    """Refuse, with the reason, a path or a design the closed form does not cover."""
    from .sweep import fast_paths
    fast = fast_paths(policy)
    shares = [p for p, (kind, _) in fast.items() if kind in ("share", "dimension")]
    if not isinstance(path, str) or path not in policy:
        from .._schema import _suggest
        raise PolicyError(f"{path}: no such parameter{_suggest(str(path), policy.parameters()['path'])}; "
                          f"the shares an exact sweep varies: {', '.join(shares) or 'none'}", where="exact_sweep")
    if path not in shares:
        raise PolicyError(f"{path}: not a share; an exact sweep varies one share, in which every score is "
                          f"linear (allowed: {', '.join(shares) or 'none'}); use bs.sweep on a grid for other "
                          f"parameters", where="exact_sweep")
    design = policy.scheme.branch.rating.design
    if design != "cuts":
        how = ("ranks every branch's score in each scenario (a quota)" if "quota" in design else
               "clusters the scores of each scenario")
        raise PolicyError(f"branch.rating.design: {design!r} sets its thresholds from the scores themselves: it "
                          f"{how}, so a level is not a function of the branch's own score against fixed cut "
                          f"points; the exact sweep needs the 'cuts' design. Use bs.sweep on a grid",
                          where="exact_sweep")


def _weight_lines(policy: Policy, path: str):
    """Per type the weights as ``(N0 + N1 s) / (D0 + D1 s)``: ``N0, N1`` (t, c), ``D0, D1`` (t,).

    The same re-normalisation as :func:`branchsim.sensitivity.sweep._weights`, solved in closed form.
    """
    bs = policy.scheme.branch
    T, C = bs.weights.shape
    N0, N1 = bs.weights.astype(float).copy(), np.zeros((T, C))
    D0, D1 = np.ones(T), np.zeros(T)
    survey = "branch.satisfaction_share" in policy
    own = [survey and f"branch.types.{t}.satisfaction_share" in policy for t in bs.types]
    if bs.form != "shares":                              # weights (1 - s, s) of sheet and survey
        for t in range(T):
            if not own[t]:
                N0[t, :2], N1[t, :2] = (1.0, 0.0), (-1.0, 1.0)
        return N0, N1, D0, D1
    paths = [f"branch.dimensions.{d}.share" for d in bs.sheet.group_ids] + (
        ["branch.satisfaction_share"] if survey else [])
    base = np.array([float(policy[p]) for p in paths])
    j = paths.index(path)
    rest = np.delete(base, j).sum()
    if not rest > 0:
        raise PolicyError(f"{path}: the other shares are all 0, so only 1 keeps the shares adding up to 1; "
                          f"nothing to sweep", where="exact_sweep")
    P, Q = base / rest, -base / rest                     # share_k(s) = P_k + Q_k s
    P[j], Q[j] = 0.0, 1.0
    nd = len(paths) - survey
    for t in range(T):
        if own[t]:                                       # dimensions rescaled to 1 - the type's own share
            st = float(policy[f"branch.types.{bs.types[t]}.satisfaction_share"])
            N0[t, :nd], N1[t, :nd] = P[:nd] * (1 - st), Q[:nd] * (1 - st)
            N0[t, nd], N1[t, nd] = st * P[:nd].sum(), st * Q[:nd].sum()
            D0[t], D1[t] = P[:nd].sum(), Q[:nd].sum()
        else:
            N0[t], N1[t] = P, Q
    return N0, N1, D0, D1


def _crossings(comp, type_idx, lines, thresholds):
    """Where each score passes each threshold, ``_MARGIN`` past it and (``lo``) ``_MARGIN`` before it.

    Returns ``(s, lo, rising)``: ``(n, P)`` shares, NaN where ``s`` is not in (0, 1), and whether
    each score rises with the share.
    """
    N0, N1, D0, D1 = lines
    A, B = _dot(comp, 100.0 * N0[type_idx]), _dot(comp, 100.0 * N1[type_idx])
    C, D = D0[type_idx], D1[type_idx]
    slope = B * C - A * D                                # sign of d score / d s
    flat = np.abs(slope) <= 1e-12 * (np.abs(A) + np.abs(B)) * (np.abs(C) + np.abs(D))
    rising = slope > 0
    margin = np.where(rising, _MARGIN, -_MARGIN)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        s, lo = ((Tm * C[:, None] - A[:, None]) / (B[:, None] - Tm * D[:, None])
                 for Tm in (thresholds + margin, thresholds - margin))
    s[flat[:, None] | ~np.isfinite(s) | ~(s > 0) | ~(s < 1)] = np.nan
    return s, lo, rising


def _scores_at(prep, policy: Policy, path: str, s: float, comp) -> np.ndarray:
    """Unrounded scores at one value of the share, with the weights ``sweep`` uses."""
    from .sweep import _weights
    w = _weights(policy, pd.DataFrame({path: [float(s)]}), [])[0]
    return _dot(comp, 100.0 * w[prep.type_idx])


def _dot(comp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise ``comp · w`` summed in component order: the same last bits on every machine (a
    reduction's order may follow the SIMD width; the breakpoints are printed in full)."""
    out = comp[:, 0] * w[:, 0]
    for k in range(1, comp.shape[1]):
        out = out + comp[:, k] * w[:, k]
    return out


_LAST_PLACE = ("NaN: a last-place criterion compares each branch's rounded score with its group's lowest; "
               "that lowest score follows every branch's line, and where two lines cross the 9-decimal rounding "
               "ties them over windows not solved in closed form; use bs.sweep on a grid for it")


class _Rules:
    """A branch's outcome as a function of its predicates ``score >= threshold`` (measured, then true)."""

    def __init__(self, prep, base):
        scheme = prep.scheme
        bs = scheme.branch
        self.prep, self.base, self.L = prep, base, bs.levels.n
        n, L = prep.n, self.L
        cuts = bs.rating.cuts[prep.type_idx] - _HALF                     # (n, L-1)
        cols, self.line_col, self.dep_col = [cuts], {}, {}
        for k, c in enumerate(_line_criteria(scheme)):
            if c is not None:
                self.line_col[k] = L - 1 + len(self.line_col) + len(self.dep_col)
                cols.append(np.full((n, 1), c.value - _HALF))
        self.dep = _dependent(scheme)
        self.inexact = {bs.designations[k].id: _LAST_PLACE for k, c in self.dep if c.kind == "last_place"}
        for j, (k, c) in enumerate(self.dep):
            if c.kind == "score_below":
                self.dep_col[j] = L - 1 + len(self.line_col) + len(self.dep_col)
                cols.append(np.full((n, 1), c.value - _HALF))
        self.measured = np.hstack(cols)
        self.truth = None if prep.truth is None else cuts
        self.D = len(bs.designations)
        self.K = L + self.D + 2 + (prep.truth is not None)

    def _level(self, pred, rows, cap, fixed):
        level = np.minimum(pred[:, :self.L - 1].sum(axis=1), cap[rows])
        return np.where(fixed[rows] >= 0, fixed[rows], level)

    def outcome(self, rows, pred) -> np.ndarray:
        """``(m, K)``: one-hot level, designations, changed, |change|, and correct (with truth)."""
        p = self.prep
        pm = pred[:, :self.measured.shape[1]]
        level = self._level(pm, rows, p.cap, p.fixed)
        out = np.zeros((len(rows), self.K))
        out[np.arange(len(rows)), level] = 1.0
        for k in range(self.D):
            held = p.designated[rows, k].copy()
            if k in self.line_col:
                held |= p.line_ok[rows, k] & ~pm[:, self.line_col[k]]
            for j, (kk, c) in enumerate(self.dep):
                if kk != k:
                    continue
                ok = p.dep_ok[rows, j]
                if c.kind == "score_below":
                    held |= ok & ~pm[:, self.dep_col[j]]
                elif c.kind == "level":
                    held |= ok & ((level <= c.level) if c.or_below else (level == c.level))
            out[:, self.L + k] = held
        diff = level.astype(np.int16) - self.base[rows]
        out[:, self.L + self.D] = diff != 0
        out[:, self.L + self.D + 1] = np.abs(diff)
        if self.truth is not None:
            true = self._level(pred[:, self.measured.shape[1]:], rows, p.truth_cap, p.truth_fixed)
            out[:, -1] = true == level
        return out

    def predicates_at(self, policy, path, s) -> np.ndarray:
        p = self.prep
        pred = _scores_at(p, policy, path, s, p.components)[:, None] >= self.measured
        if self.truth is not None:
            pred = np.hstack([pred, _scores_at(p, policy, path, s, p.truth)[:, None] >= self.truth])
        return pred


def _events(rules: _Rules, policy: Policy, path: str, init: np.ndarray):
    """Every predicate change in (0, 1): ``(s, lo, branch, change in the outcome (E, K))``."""
    p = rules.prep
    lines = _weight_lines(policy, path)
    s, lo, up = _crossings(p.components, p.type_idx, lines, rules.measured)
    value = np.repeat(up[:, None], s.shape[1], axis=1)
    if rules.truth is not None:
        st, tlo, tup = _crossings(p.truth, p.type_idx, lines, rules.truth)
        s, lo = np.hstack([s, st]), np.hstack([lo, tlo])
        value = np.hstack([value, np.repeat(tup[:, None], st.shape[1], axis=1)])
    ii, pp = np.nonzero(~np.isnan(s))
    es, elo = s[ii, pp], np.fmin(lo[ii, pp], s[ii, pp])
    order = np.lexsort((pp, es, ii))                     # by branch, then share
    ii, pp, es, elo = ii[order], pp[order], es[order], elo[order]
    start = np.r_[True, ii[1:] != ii[:-1]]
    rank = np.arange(len(ii)) - np.maximum.accumulate(np.where(start, np.arange(len(ii)), 0))
    R = np.full(s.shape, np.iinfo(np.int64).max)
    R[ii, pp] = rank
    Ri, Vi, Ii = R[ii], value[ii], init[ii]
    after = np.where(Ri <= rank[:, None], Vi, Ii)
    before = np.where(Ri < rank[:, None], Vi, Ii)
    return es, elo, ii, rules.outcome(ii, after) - rules.outcome(ii, before)


def exact_sweep(pop, policy: Policy, path: str, *, by: str | None = None) -> pd.DataFrame:
    """Level counts for every value of one share in [0, 1], exactly: one row per interval.

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline: ``changed`` and ``mean_abs_change`` compare with its levels.
    path : str
        A share: ``branch.satisfaction_share`` or ``branch.dimensions.<d>.share`` (the other shares are
        re-normalised as :meth:`Policy.update` does). The rating design must be ``cuts``.
    by : str, optional
        A branch column (``"type"``, ...) to report per group (each group has its own breakpoints).

    Returns
    -------
    DataFrame
        One row per interval ``[s_from, s_to)`` of the share over which nothing changes (the last
        interval includes 1): ``n``, the count per level (level ids, best first), per designation,
        ``changed``, ``mean_abs_change`` and, for generated populations, ``accuracy`` — the columns
        of :func:`sweep`. ``attrs``: ``path``, ``baseline`` (the policy's value) and ``not_exact``
        (``{designation: why}``: a designation with a last-place criterion is left NaN, the group's
        lowest score being no single branch's line).

    Raises
    ------
    PolicyError
        The path is not a share, or the design sets thresholds from the scores (quotas, clustering).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> p = bs.Policy.load()
    >>> t = exact_sweep(pop, p, "branch.satisfaction_share")
    >>> row = t[(t.s_from <= 0.4) & (0.4 < t.s_to)]
    >>> int(row["changed"].iloc[0]), bool((t[list(p.levels)].sum(axis=1) == 300).all())
    (0, True)
    """
    _check(policy, path)
    return from_prepared(prepare(pop, policy), policy, path, by=by)


def from_prepared(prep, policy: Policy, path: str, *, by: str | None = None) -> pd.DataFrame:
    """:func:`exact_sweep` on a population already prepared under ``policy`` (:func:`.engine.prepare`)."""
    _check(policy, path)
    if by is not None and by not in prep.branches.columns:
        raise DataError(f"by={by!r} is not a branch column; allowed: {', '.join(prep.branches.columns)}")
    codes, names = (pd.factorize(prep.branches[by], sort=True) if by is not None
                    else (np.zeros(prep.n, dtype=np.intp), [None]))
    rules = _Rules(prep, prep.levels.astype(np.int16))
    rows = np.arange(prep.n)
    init = rules.predicates_at(policy, path, 0.0)
    es, elo, ii, delta = _events(rules, policy, path, init)
    start = rules.outcome(rows, init)
    end = rules.outcome(rows, rules.predicates_at(policy, path, 1.0))
    frames = [_table(es[codes[ii] == g], elo[codes[ii] == g], delta[codes[ii] == g], start[codes == g].sum(axis=0),
                     end[codes == g].sum(axis=0)) for g in range(len(names))]
    return _tidy(frames, names, by, rules, policy, path)


def _table(es, lo, delta, first, last):
    """Rows ``(s_from, totals)`` of one group: the totals from 0, changed at each distinct breakpoint."""
    if len(es):
        # Around its exact crossing an event is uncertain for floating-point evaluation over [lo, s];
        # events whose spans overlap (two lines through the same point of a cut, computed a few ulps
        # apart, or crossings closer than the margin) are one breakpoint, placed at the last ``s``:
        # there every one of them has happened, whatever the summation order.
        order = np.lexsort((es, lo))
        es, lo, delta = es[order], lo[order], delta[order]
        new = np.r_[True, lo[1:] > np.maximum.accumulate(es)[:-1]]
        starts = np.flatnonzero(new)
        at, sums = np.maximum.reduceat(es, starts), np.add.reduceat(delta, starts, axis=0)
        keep = np.any(np.abs(sums) > 0.5, axis=1)        # integer sums: a point where nothing changes goes
        at, sums = at[keep], sums[keep]
    else:
        at, sums = np.zeros(0), np.zeros((0, len(first)))
    s_from = np.r_[0.0, at]
    totals = first[None] + np.vstack([np.zeros_like(first)[None], np.cumsum(sums, axis=0)])
    if np.any(np.abs(totals[-1] - last) > 0.5):          # s = 1 itself differs (a type's own share)
        s_from, totals = np.r_[s_from, 1.0], np.vstack([totals, last[None]])
    return s_from, np.rint(totals)


def _tidy(frames, names, by, rules: _Rules, policy: Policy, path: str) -> pd.DataFrame:
    bs = policy.scheme.branch
    L, D = rules.L, rules.D
    out = []
    for g, (s_from, tot) in enumerate(frames):
        f = pd.DataFrame({"s_from": s_from, "s_to": np.r_[s_from[1:], 1.0]})
        if by is not None:
            f.insert(0, by, names[g])
        n = int(tot[0, :L].sum())
        f["n"] = n
        for code, lv in reversed(list(enumerate(bs.levels.worst_first))):
            f[lv] = tot[:, code].astype(int)
        for k, d in enumerate(bs.designations):
            f[d.id] = np.nan if d.id in rules.inexact else tot[:, L + k].astype(int)
        f["changed"] = tot[:, L + D].astype(int)
        f["mean_abs_change"] = tot[:, L + D + 1] / n if n else np.nan
        if rules.truth is not None:
            f["accuracy"] = tot[:, -1] / n if n else np.nan
        out.append(f)
    table = pd.concat(out, ignore_index=True)
    table.attrs.update(path=path, baseline=float(policy[path]), not_exact=rules.inexact)
    return table


def from_grid(pop, policy: Policy, grid: Mapping, *, by=None, cities=None) -> pd.DataFrame:
    """``sweep(pop, policy, {path: "exact"})``: the exact sweep of that one share."""
    if len(grid) != 1:
        raise PolicyError(f"an exact sweep varies one share alone; the grid has {list(grid)}: give "
                          f"{{path: 'exact'}} with no other parameter", where="sweep")
    if cities is not None:
        raise PolicyError("an exact sweep runs on one population; cities= is not available with 'exact'",
                          where="sweep")
    return exact_sweep(pop, policy, next(iter(grid)), by=by)
