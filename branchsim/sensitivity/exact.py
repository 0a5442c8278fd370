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
``s`` in [0, 1] in one pass, with no grid. A last-place criterion (the
lowest score of a group) follows the lower envelope of the group's lines,
with the near-ties that rounding to 9 decimals makes around its corners.

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

from typing import TYPE_CHECKING

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, PolicyError
from ..manifest import recorded
from ..policy import Policy
from ..scoring import DECIMALS
from .engine import _dependent, _line_criteria, prepare

if TYPE_CHECKING:
    from ..population import Population

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
    A, B = _dot(comp, 100.0 * N0[type_idx]), _dot(comp, 100.0 * N1[type_idx])    # score (A + B s) / (C + D s)
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


_LAST_PLACE = ("NaN: a last-place criterion is followed exactly only as its designation's one score-dependent "
               "criterion and with every score linear in the share (here it is combined with another, or a "
               "type's own survey share makes scores ratios, or near-ties are too many); use bs.sweep on a grid")


class _Rules:
    """A branch's outcome as a function of its predicates ``score >= threshold`` (measured, then true)."""

    def __init__(self, prep, base, lines):
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
        # A last-place criterion is followed exactly when it is its designation's only score-dependent
        # criterion (its count is then the others' plus the eligible branches that are last) and every
        # score is linear in the share.
        scored = [k for k, c in self.dep] + list(self.line_col)
        linear = bool(np.all(lines[3] == 0))
        self.last = {k: j for j, (k, c) in enumerate(self.dep)
                     if c.kind == "last_place" and linear and scored.count(k) == 1}
        self.inexact = {bs.designations[k].id: _LAST_PLACE for k, c in self.dep
                        if c.kind == "last_place" and k not in self.last}
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


@recorded("exact_sweep")
def exact_sweep(pop: Population, policy: Policy, path: str, *, by: str | None = None) -> pd.DataFrame:
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
        (``{designation: why}``, the designations left NaN: a last-place criterion combined with
        another score criterion in one designation, or with scores that are ratios in the share).

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
    lines = _weight_lines(policy, path)
    rules = _Rules(prep, prep.levels.astype(np.int16), lines)
    rows = np.arange(prep.n)
    init = rules.predicates_at(policy, path, 0.0)
    es, elo, ii, delta = _events(rules, policy, path, init)
    start = rules.outcome(rows, init)
    end = rules.outcome(rows, rules.predicates_at(policy, path, 1.0))
    for k, j in rules.last.items():
        got = _last_place(prep, policy, path, lines, k, j, rules.dep[j][1])
        if got is None:
            rules.inexact[policy.scheme.branch.designations[k].id] = _LAST_PLACE
            continue
        (les, llo, lii, sign), first, last = got
        ld = np.zeros((len(les), rules.K))
        ld[:, rules.L + k] = sign
        es, elo, ii, delta = np.r_[es, les], np.r_[elo, llo], np.r_[ii, lii], np.vstack([delta, ld])
        start[:, rules.L + k] += first
        end[:, rules.L + k] += last
    frames = [_table(es[codes[ii] == g], elo[codes[ii] == g], delta[codes[ii] == g], start[codes == g].sum(axis=0),
                     end[codes == g].sum(axis=0)) for g in range(len(names))]
    return _tidy(frames, names, by, rules, policy, path)


def _last_place(prep, policy: Policy, path: str, lines, k: int, j: int, c):
    """Events, and the eligible branches last at 0 and at 1, of a last-place criterion (None: too many ties)."""
    codes = prep.within[c.within] if c.within is not None else np.zeros(prep.n, dtype=np.intp)
    eligible = ~prep.designated[:, k] & prep.dep_ok[:, j]
    N0, N1, D0, _ = lines
    t = prep.type_idx
    A = _dot(prep.components, 100.0 * N0[t]) / D0[t]
    B = _dot(prep.components, 100.0 * N1[t]) / D0[t]
    ev = _last_events(A, B, codes, eligible)
    if ev is None:
        return None

    def last_at(s):
        r = np.round(_scores_at(prep, policy, path, s, prep.components), DECIMALS)
        low = np.full(int(codes.max()) + 1 if prep.n else 0, np.inf)
        np.minimum.at(low, codes, r)
        return eligible & (r <= low[codes])
    return ev, last_at(0.0), last_at(1.0)


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


# -- last place: the group's lowest rounded score ---------------------------------------------------------
#: A line this close to its group's lowest may round (9 decimals) to the same score: a tie for last.
_NEAR = 2e-9
#: Most rounding boundaries examined in the near-ties of one group (nearly parallel lines close together
#: for a long stretch could have millions); beyond it the designation is left NaN.
_MAX_BOUNDS = 200_000


def _envelope(a: np.ndarray, b: np.ndarray):
    """The lowest of the lines ``a + b s`` over [0, 1]: pieces ``(from, to, line)`` (a loop over corners)."""
    cur, s0, pieces = int(np.lexsort((b, a))[0]), 0.0, []
    while True:
        cand = np.flatnonzero(b < b[cur])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (a[cand] - a[cur]) / (b[cur] - b[cand])
        ok = (t > s0) & (t < 1)
        if not ok.any() or len(pieces) > _MAX_BOUNDS:
            pieces.append((s0, 1.0, cur))
            return pieces if len(pieces) <= _MAX_BOUNDS else None
        tmin = t[ok].min()
        nxt = cand[ok][t[ok] <= tmin]
        pieces.append((s0, tmin, cur))
        s0, cur = tmin, int(nxt[np.argmin(b[nxt])])


def _boundaries(a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Shares in (lo, hi) where ``1e9 (a + b s)`` is a half-integer (its rounding changes)."""
    if b == 0:
        return np.zeros(0)
    x0, x1 = sorted((1e9 * (a + b * lo), 1e9 * (a + b * hi)))
    k = np.arange(np.floor(x0 - 0.5), np.ceil(x1 - 0.5) + 1)
    s = ((k + 0.5) * 1e-9 - a) / b
    return s[(s > lo) & (s < hi)]


def _line_last(a: np.ndarray, b: np.ndarray):
    """Per line, the shares where it rounds to its group's lowest: ``(line, from, to, from_lo, to_lo)``.

    On each piece of the lower envelope its line is last; a line within ``_NEAR`` of it is last where
    both round to the same 9-decimal score, which changes only where one of them crosses a rounding
    boundary: the status is read between consecutive boundaries. A change at a boundary is placed
    ``_MARGIN`` past it (as a cut's crossing); pieces join at the envelope's corners.
    """
    pieces = _envelope(a, b)
    if pieces is None:
        return None
    rows, budget = [], _MAX_BOUNDS
    for s0, s1, e in pieces:
        rows.append((e, s0, s1, s0, s1))
        d0, d1 = (a - a[e]) + (b - b[e]) * s0, (a - a[e]) + (b - b[e]) * s1
        near = np.flatnonzero((np.minimum(d0, d1) < _NEAR) & (np.arange(len(a)) != e))
        for u in near.tolist():                           # lines near the lowest: a few at each corner
            slope = b[u] - b[e]
            lo, hi = s0, s1
            if slope > 0:
                hi = min(s1, s0 + (_NEAR - d0[u]) / slope)
            elif slope < 0:
                lo = max(s0, s1 - (_NEAR - d1[u]) / -slope)
            cuts = np.unique(np.r_[_boundaries(a[u], b[u], lo, hi), _boundaries(a[e], b[e], lo, hi)])
            budget -= len(cuts)
            if budget < 0:
                return None
            pts = np.r_[lo, cuts, hi]
            mid = (pts[:-1] + pts[1:]) / 2
            same = np.rint(1e9 * (a[u] + b[u] * mid)) == np.rint(1e9 * (a[e] + b[e] * mid))
            if not same.any():
                continue
            # margins: a rounding boundary of line u or e, passed by the faster of the two
            pad = np.r_[0.0, np.full(len(cuts), _MARGIN / max(abs(b[u]), abs(b[e]), 1e-300)), 0.0]
            edge = np.diff(np.r_[0, same.astype(np.int8), 0])
            first, last = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
            for f, g in zip(first.tolist(), last.tolist()):
                rows.append((u, pts[f] + pad[f], pts[g] + pad[g], pts[f] - pad[f], pts[g] - pad[g]))
    out = np.array(rows, dtype=float).reshape(-1, 5)
    return out[:, 0].astype(np.intp), out[:, 1], out[:, 2], out[:, 3], out[:, 4]


def _last_events(A: np.ndarray, B: np.ndarray, codes: np.ndarray, eligible: np.ndarray):
    """Events of ``eligible`` branches becoming (+1) or ceasing to be (−1) last of their group.

    Returns ``(s, lo, branch, sign)``, or None when the near-ties are too many to follow.
    """
    es, elo, ii, sign = [], [], [], []
    for g in np.unique(codes).tolist():
        rows = np.flatnonzero(codes == g)
        lines, inv = np.unique(np.column_stack([A[rows], B[rows]]), axis=0, return_inverse=True)
        got = _line_last(lines[:, 0], lines[:, 1])
        if got is None:
            return None
        u, s_from, s_to, lo_from, lo_to = got
        order = np.lexsort((s_from, u))                  # one line's intervals in order, joined where they meet
        u, s_from, s_to, lo_from, lo_to = u[order], s_from[order], s_to[order], lo_from[order], lo_to[order]
        new = np.r_[True, u[1:] != u[:-1]] | (s_from > _group_max(s_to, u))
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:] - 1, len(u) - 1]
        iu = u[starts]
        a_from, a_lo = s_from[starts], lo_from[starts]
        b_to = np.maximum.reduceat(s_to, starts)
        b_lo = lo_to[starts + np.array([np.argmax(s_to[s:e + 1]) for s, e in zip(starts, ends)], dtype=np.intp)] \
            if len(starts) else np.zeros(0)
        members = rows[np.argsort(inv.ravel(), kind="stable")]
        count = np.bincount(inv.ravel(), minlength=len(lines))
        first = np.r_[0, np.cumsum(count)[:-1]]
        for pos, val, lo, sgn in ((a_from, a_from, a_lo, 1.0), (b_to, b_to, b_lo, -1.0)):
            inside = (val > 0) & (val < 1)
            lu = iu[inside]
            rep = count[lu]
            idx = np.repeat(first[lu], rep) + (np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep))
            br = members[idx]
            keep = eligible[br]
            es.append(np.repeat(val[inside], rep)[keep])
            elo.append(np.repeat(lo[inside], rep)[keep])
            ii.append(br[keep])
            sign.append(np.full(int(keep.sum()), sgn))
    cat = (lambda x: np.concatenate(x) if x else np.zeros(0))
    return cat(es), cat(elo), cat(ii).astype(np.intp), cat(sign)


def _group_max(s_to: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each interval, the furthest end of the earlier intervals of the same line (−inf for the first)."""
    out = np.empty(len(s_to))
    start = np.r_[True, u[1:] != u[:-1]]
    run = -np.inf
    for i in range(len(s_to)):                            # intervals of near-ties: a handful per corner
        run = -np.inf if start[i] else run
        out[i] = run
        run = max(run, s_to[i])
    return out
