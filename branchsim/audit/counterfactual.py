"""What does it take to reach the next level? Counterfactual moves of one branch's facts.

For one branch, :func:`next_level` finds (a) for each fact alone the smallest
change that reaches a goal (the next level up; or, for a designated branch,
out of the designation) and (b) the cheapest combination of changes under a
cost per step of each fact. :func:`distances` does it for every branch;
:func:`marginal_points` gives score points per step of each fact by branch
type (where gaming pays).

How a move is judged
--------------------
Every candidate is scored with the engine's own functions
(:mod:`branchsim.scoring`, :mod:`branchsim.rating`), all candidates at once.
Only the branch's own facts change; everything that depends on the other
branches is read with *their* facts and scores held as they are:

* a fixed-cut design rates the new score by the branch's cuts;
* a quota design re-rates the branch against the other branches' scores (the
  new score must beat the score that would otherwise hold the last place of
  the quota, ties at the boundary staying below, as :func:`branchsim.rating.rate`
  does): this is exactly what :func:`branchsim.evaluate` gives for the changed
  table, as long as the change leaves the other branches' scores alone;
* a clustering design keeps the population's realised cut points (a new
  clustering may move them; the move is then an estimate);
* a rank rule places the branch among the other branches' facts (it would
  also move the others' points: not followed);
* a last-place criterion compares the new score with the others' lowest.

Steps
-----
A count and a binary fact move by whole units (a binary flips), a share and
a number (a rank's fact) by 0.01, always within the fact's plausible range
(``range`` in the policy). The survey is an opinion, not a fact: it is never
moved, so a criterion on the survey can be left only by the score.

The combination is a small integer program (:func:`scipy.optimize.milp`):
one binary variable per candidate value of each fact (the same candidates as
the single-fact search, so any rule form is exact), the dimension, bonus and
sheet caps as hypographs (the score rises with every point), one program per
route to the goal (by the score, or by each direct grading), the cheapest
kept. The lower clips (a sheet's floor, a dimension's fraction below zero)
are left out of the program, which can then only over-estimate the cost; the
answer is checked with the exact scoring and reported with ``verified``.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .. import rating as rt
from .._schema import fact_range
from ..errors import DataError
from ..evaluate import branch_inputs, branch_outcome
from ..policy import Policy, as_policy
from ..scheme import RULE_CODES
from ..scoring import branch_components, indicator_points, scores_from_components

__all__ = ["next_level", "distances", "marginal_points"]

_SHARE_STEP = 0.01
_ROWS = 200_000                   # candidate rows scored at a time
_RANK, _ZERO = RULE_CODES["rank"], RULE_CODES["zeroing"]


# -- the population and its facts ------------------------------------------------------------------
def _branches(pop, policy: Policy) -> pd.DataFrame:
    from ..population import Population, load_population
    from ..tables import check_tables
    if isinstance(pop, (str, os.PathLike)):
        pop = load_population(pop, policy=policy)
    if isinstance(pop, Population):
        return pop.branches
    if isinstance(pop, pd.DataFrame):
        return check_tables(policy, pop)[0]
    raise DataError(f"pop must be a Population (from generate or load_population), a folder of tables or a "
                    f"branches DataFrame, got {type(pop).__name__}")


class _Fact:
    """One fact the branch can move: its column, kind, step, range and the values where rules turn."""

    def __init__(self, name, j, kind, step, lo, hi, turns, indicator=None):
        self.name, self.j, self.kind, self.step, self.lo, self.hi = name, j, kind, step, lo, hi
        self.turns = np.array(sorted({float(x) for x in turns if np.isfinite(x)}))
        self.indicator = indicator or name


class _Context:
    """A population evaluated once under a policy, with what every move needs."""

    def __init__(self, pop, policy, *, evaluated=None):
        self.policy = as_policy(policy, "policy")
        self.scheme = self.policy.scheme
        self.bs = bs = self.scheme.branch
        if evaluated is None:                  # (checked branches, BranchInputs, branch_outcome) when known
            self.b = _branches(pop, self.policy)
            self.inp = branch_inputs(self.b, self.scheme, policy_name=self.policy.name)
            self.out = branch_outcome(self.inp, self.scheme)
        else:
            self.b, self.inp, self.out = evaluated
        self.n = len(self.b)
        r = bs.rating
        if r.design == "cuts":
            self.group, self.group_names = self.inp.type_idx, list(bs.types)
        elif r.peer_groups is None:
            self.group, self.group_names = np.zeros(self.n, dtype=np.intp), ["all"]
        else:
            self.group, self.group_names = self.inp.codes(r.peer_groups)
        self.facts = [self._fact(f) for f in bs.facts]
        self.cache = {}
        self.thresholds = _thresholds(self)

    def _fact(self, name: str) -> _Fact:
        sheet, bs = self.bs.sheet, self.bs
        turns = [v for v, f in zip(bs.vetoes.threshold, bs.vetoes.fact) if f == name]
        turns += [v for v, f in zip(bs.rating.direct_at_least, bs.rating.direct_fact) if f == name]
        turns += [c.value for d in bs.designations for c in d.criteria if c.fact == name]
        if name in sheet.facts:
            j = sheet.facts.index(name)
            codes = set(sheet.kind[:, j].tolist())
            p = sheet
            top = p.points[:, j]
            with np.errstate(divide="ignore", invalid="ignore"):
                turns += list(p.at_least[:, j]) + list(p.required[:, j]) \
                    + list(p.required[:, j] - top / p.per_shortfall[:, j]) + [0.0] \
                    + list(top / p.per_unit[:, j]) + list(top / p.per_event[:, j]) \
                    + list(top / p.per_occurrence[:, j])
            if _RANK in codes:
                kind, step = "rank", _SHARE_STEP
                turns += list(self.inp.facts[:, j])
            elif codes == {RULE_CODES["binary"]}:
                kind, step = "binary", 1.0
            elif codes == {RULE_CODES["proportion"]}:
                kind, step, turns = "share", _SHARE_STEP, turns + [1.0]
            else:
                kind, step = "count", 1.0
            lo, hi = sheet.ranges[j]
            return _Fact(name, j, kind, step, float(lo), float(hi), turns, sheet.ids[j])
        entry = bs.fact_entries.get(name, {})
        kind = entry.get("kind", "number")
        step = 1.0 if kind in ("binary", "count") else _SHARE_STEP
        lo, hi = fact_range({**entry, "_name": name})
        return _Fact(name, -1, kind, step, float(lo), float(hi), turns)

    def candidates(self, f: _Fact, i: int) -> np.ndarray:
        """Values fact ``f`` of branch ``i`` may take that can change something (its own value first)."""
        cur = float(self.inp.value(f.name)[i])
        if not len(f.turns):
            return np.array([cur])
        if f.kind == "rank":
            vals = f.turns[(f.turns >= f.lo) & (f.turns <= f.hi)]
        else:
            lo, hi = max(f.lo, min(f.turns.min() - f.step, cur)), min(f.hi, max(f.turns.max() + f.step, cur))
            z = np.arange(np.ceil((lo - cur) / f.step - 1e-9), np.floor((hi - cur) / f.step + 1e-9) + 1)
            vals = np.round(cur + f.step * z, 9)
            vals = vals[(vals >= f.lo - 1e-9) & (vals <= f.hi + 1e-9)]
        return np.r_[cur, vals[vals != cur]]


# -- the exact outcome of candidate rows ----------------------------------------------------------
def _outcome(ctx: _Context, rows: np.ndarray, values: dict, *, zeroing=True):
    """Score, level and designations of branches ``rows`` with facts ``values`` (name -> (m,) array)."""
    bs, inp, out = ctx.bs, ctx.inp, ctx.out
    sheet, m = bs.sheet, len(rows)
    F = np.column_stack([values.get(f, inp.facts[rows, j]) for j, f in enumerate(sheet.facts)]) if sheet.k \
        else np.empty((m, 0))
    if not zeroing:                   # the zeroing rules kept from firing: the targets' own points
        cols = (sheet.kind == _ZERO).any(axis=0)
        F[:, cols] = np.nanmin(np.where(sheet.kind == _ZERO, sheet.at_least, np.inf), axis=0)[cols] - 1
    t = inp.type_idx[rows]
    pts = indicator_points(F, t, sheet, rank_groups={w: np.zeros(m, dtype=np.intp)
                                                      for w in sheet.within if w is not None})
    for j in np.flatnonzero((sheet.kind == _RANK).any(axis=0)):
        pts[:, j] = _rank_points(ctx, rows, j, F[:, j]) if sheet.facts[j] in values else out["points"][rows, j]
    survey = inp.survey[rows] if bs.survey else None
    score = scores_from_components(pts, branch_components(pts, t, survey, bs), t, bs)["score"]
    design = _design_level(ctx, rows, score)
    get = lambda f: values.get(f, inp.value(f)[rows])  # noqa: E731
    r, v = bs.rating, bs.vetoes
    level = design
    if r.direct_ids:
        level = rt.apply_direct(design, rt.direct_fired(np.column_stack([get(f) for f in r.direct_fact]), r), r)
    fired = rt.veto_fired(np.column_stack([get(f) for f in v.fact]), v) if v.n else np.zeros((m, 0), bool)
    level = rt.apply_vetoes(level, fired, v)
    desig = {}
    for d in bs.designations:
        held_any = np.zeros(m, dtype=bool)
        for c in d.criteria:
            held = _held(ctx, c, rows, score, level, fired, get)
            held_any |= rt.streak(held, None if inp.prev.get(c.id) is None else inp.prev[c.id][rows]) >= c.years
        desig[d.id] = held_any
    return score, level, desig, pts


def _held(ctx, c, rows, score, level, fired, get):
    if c.kind == "score_below":
        return score < c.value
    if c.kind == "survey_below":
        return ctx.out["criteria"][c.id][rows]
    if c.kind == "veto":
        return fired[:, c.veto]
    if c.kind == "fact_below":
        return get(c.fact) < c.value
    if c.kind == "fact_at_least":
        return get(c.fact) >= c.value
    if c.kind == "last_place":
        return score <= _others_lowest(ctx, rows, c.within)
    if c.kind == "level":
        return level <= c.level if c.or_below else level == c.level
    raise DataError(f"criterion {c.id!r}: kind {c.kind!r} is not followed by the counterfactuals")


def _others_lowest(ctx, rows, within) -> np.ndarray:
    """The lowest score among the other branches of each row's group (inf when alone)."""
    key = ("lowest", within)
    if key not in ctx.cache:
        codes = np.zeros(ctx.n, dtype=np.intp) if within is None else ctx.inp.codes(within)[0]
        s = ctx.out["score"]
        order = np.lexsort((s, codes))
        first = np.r_[True, codes[order][1:] != codes[order][:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(ctx.n), 0))
        g_start = np.empty(ctx.n, dtype=np.intp)
        g_start[order] = start
        size = np.bincount(codes)[codes]
        low1 = s[order][g_start]
        low2 = np.where(size > 1, s[order][np.minimum(g_start + 1, ctx.n - 1)], np.inf)
        is_min_alone = (s == low1) & (low2 > low1)
        ctx.cache[key] = np.where(size == 1, np.inf, np.where(is_min_alone, low2, low1))
    return ctx.cache[key][rows]


def _rank_points(ctx, rows, j, fact):
    """A rank indicator's points at ``fact`` among the other branches' facts of the group."""
    sheet, inp = ctx.bs.sheet, ctx.inp
    groups = np.zeros(ctx.n, dtype=np.intp) if sheet.within[j] is None else inp.codes(sheet.within[j])[0]
    own = inp.facts[rows, j]
    place = np.empty(len(rows), dtype=np.intp)
    for g in np.unique(groups[rows]):
        at = groups[rows] == g
        s = np.sort(inp.facts[groups == g, j])
        if sheet.high_first[j]:
            place[at] = len(s) - np.searchsorted(s, fact[at], "right") - (own[at] > fact[at])
        else:
            place[at] = np.searchsorted(s, fact[at], "left") - (own[at] < fact[at])
    t = inp.type_idx[rows]
    return sheet.places[t, j, np.minimum(place, sheet.places.shape[2] - 1)]


def _thresholds(ctx) -> tuple[np.ndarray, np.ndarray]:
    """``(n, L-1)`` the score each branch needs for each level up, and whether it must be beaten strictly.

    A quota design: the score holding the last place of each quota among the *other* branches of the
    group (a tie with it stays below); the cut of a cuts-and-quota design as well.
    """
    r, n = ctx.bs.rating, ctx.n
    L1 = ctx.bs.levels.n - 1
    if r.design == "cuts":
        return np.asarray(r.cuts, float)[ctx.inp.type_idx], np.zeros((n, L1), bool)
    if r.design in ("quota", "cuts_and_quota"):
        s = ctx.out["score"]
        thr = np.full((n, L1), np.inf)
        for g in np.unique(ctx.group):
            same = np.flatnonzero(ctx.group == g)
            S = np.sort(s[same])[::-1]
            a = rt.allowed_counts(len(same), r.allowed_shares)
            for lv, k in enumerate(a.tolist()):
                if k >= len(same):
                    thr[same, lv] = -np.inf
                elif k > 0:
                    thr[same, lv] = np.where(s[same] >= S[k - 1], S[k], S[k - 1])
        thr = np.maximum.accumulate(thr, axis=1)
        strict = np.ones((n, L1), bool)
        if r.design == "cuts_and_quota":
            cut = np.asarray(r.cuts[0], float)
            strict = thr >= cut
            thr = np.maximum(thr, cut)
        return thr, strict
    table = ctx.out["cuts"].set_index(["group", "level"])["cut"]
    per_group = np.array([[table[(name, lv)] for lv in ctx.bs.levels.worst_first[1:]]
                          for name in ctx.group_names], float)
    return per_group[ctx.group], np.zeros((n, L1), bool)


def _design_level(ctx, rows, score):
    thr, strict = ctx.thresholds
    s = score[:, None]
    ok = np.where(strict[rows], s > thr[rows], s >= thr[rows])
    return np.cumprod(ok, axis=1).sum(axis=1).astype(np.int8)


# -- goals and single-fact moves ---------------------------------------------------------------------
def _goals(ctx, i: int) -> list[tuple[str, str | int]]:
    """Goals of branch ``i``: the next level up (unless at the top), out of each designation it holds."""
    out = []
    if int(ctx.out["level"][i]) < ctx.bs.levels.n - 1:
        out.append(("level", int(ctx.out["level"][i]) + 1))
    out += [("designation", d.id) for d in ctx.bs.designations if ctx.out["designations"][d.id][i]]
    return out


def _goal_text(ctx, goal) -> str:
    if goal is None:
        return "none"
    kind, what = goal
    return ctx.bs.levels.ids[ctx.bs.levels.n - 1 - what] if kind == "level" else f"not {what}"


def _reached(goal, level, desig) -> np.ndarray:
    if goal is None:
        return np.zeros(len(level), dtype=bool)
    kind, what = goal
    return level >= what if kind == "level" else ~desig[what]


def _grid(ctx, f: _Fact, rows: np.ndarray):
    """Candidate (row position, value) pairs of fact ``f`` for branches ``rows``, own values left out."""
    cur = ctx.inp.value(f.name)[rows].astype(float)
    if not len(f.turns):
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    if f.kind == "rank":
        vals = f.turns[(f.turns >= f.lo) & (f.turns <= f.hi)]
        pos, v = np.repeat(np.arange(len(rows)), len(vals)), np.tile(vals, len(rows))
    else:
        lo = np.maximum(f.lo, np.minimum(f.turns.min() - f.step, cur))
        hi = np.minimum(f.hi, np.maximum(f.turns.max() + f.step, cur))
        z0 = np.ceil((lo - cur) / f.step - 1e-9)
        count = np.maximum(np.floor((hi - cur) / f.step + 1e-9) - z0 + 1, 0).astype(np.int64)
        pos = np.repeat(np.arange(len(rows)), count)
        z = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(z0, count)
        v = np.round(cur[pos] + f.step * z, 9)
    keep = (v != cur[pos]) & (v >= f.lo - 1e-9) & (v <= f.hi + 1e-9)
    return pos[keep], v[keep]


def _single(ctx, rows: np.ndarray, goals: list) -> pd.DataFrame:
    """Per (row, fact): the smallest change of that fact alone reaching the row's goal (NaN: none)."""
    frames = []
    ids = ctx.b["branch_id"].to_numpy()
    kinds = sorted(set(goals), key=str)
    code = np.array([kinds.index(g) for g in goals], dtype=np.intp)
    for f in ctx.facts:
        pos, val = _grid(ctx, f, rows)
        hits = []
        for a in range(0, len(pos), _ROWS):
            p, v = pos[a:a + _ROWS], val[a:a + _ROWS]
            _, level, desig, _ = _outcome(ctx, rows[p], {f.name: v})
            ok = np.zeros(len(p), dtype=bool)
            for c, g in enumerate(kinds):
                at = code[p] == c
                ok[at] = _reached(g, level[at], {d: x[at] for d, x in desig.items()})
            hits.append((p[ok], v[ok], level[ok]))
        p, v, level = (np.concatenate(x) for x in zip(*hits)) if hits else (np.zeros(0, int),) * 3
        cur = ctx.inp.value(f.name)[rows].astype(float)
        delta = v - cur[p]
        order = np.lexsort((delta, np.abs(delta), p))       # by row, the smallest move first (a fall on ties)
        first = order[np.unique(p[order], return_index=True)[1]]
        best, after = np.full(len(rows), np.nan), np.full(len(rows), -1)
        best[p[first]], after[p[first]] = delta[first], level[first]
        frames.append(pd.DataFrame({
            "branch_id": ids[rows], "goal": [_goal_text(ctx, g) for g in goals], "fact": f.name,
            "indicator": f.indicator, "kind": f.kind, "step": f.step, "current": cur,
            "change": np.round(best, 9), "new_value": np.round(cur + best, 9),
            "steps": np.round(np.abs(best) / f.step, 6),
            "level_after": ctx.bs.levels.id_of(np.where(np.isnan(best), -1, after))}))
    return pd.concat(frames, ignore_index=True)


# -- the cheapest combination ----------------------------------------------------------------------
class _Program:
    """A small mixed-integer program built term by term (variables, rows ``lb <= a·x <= ub``)."""

    def __init__(self):
        self.cost, self.lo, self.hi, self.integer, self.rows = [], [], [], [], []

    def var(self, cost=0.0, lo=-np.inf, hi=np.inf, integer=False) -> int:
        self.cost.append(cost), self.lo.append(lo), self.hi.append(hi), self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, terms: dict, lo=-np.inf, hi=np.inf) -> None:
        self.rows.append((terms, lo, hi))

    def at_most(self, expr, bound) -> dict:
        """A new variable ``y <= expr`` and ``y <= bound`` (the hypograph of a min): its expression."""
        terms, const = expr
        if not np.isfinite(bound):
            return expr
        y = self.var(hi=bound)
        self.row({**{k: -v for k, v in terms.items()}, y: 1.0}, hi=const)
        return {y: 1.0}, 0.0

    def solve(self):
        from scipy.optimize import LinearConstraint, milp
        from scipy.sparse import lil_matrix
        A = lil_matrix((max(len(self.rows), 1), len(self.cost)))
        lb, ub = np.full(A.shape[0], -np.inf), np.full(A.shape[0], np.inf)
        for r, (terms, lo, hi) in enumerate(self.rows):
            for k, v in terms.items():
                A[r, k] += v
            lb[r], ub[r] = lo, hi
        from scipy.optimize import Bounds
        res = milp(np.array(self.cost), integrality=np.array(self.integer, dtype=int),
                   bounds=Bounds(np.array(self.lo), np.array(self.hi)),
                   constraints=LinearConstraint(A.tocsr(), lb, ub) if self.rows else None)
        return res.x if res.status == 0 else None


def _add(*exprs, scale=None):
    terms, const = {}, 0.0
    for n, (t, c) in enumerate(exprs):
        s = 1.0 if scale is None else scale[n]
        for k, v in t.items():
            terms[k] = terms.get(k, 0.0) + s * v
        const += s * c
    return terms, const


def _requirement(ctx, i: int, goal):
    """``(level_min, [(score, strict)], {fact: forbidden(values)}, possible)`` for branch ``i``'s goal."""
    level_min, scores, forbid = None, [], {}
    if goal[0] == "level":
        return goal[1], scores, forbid, True
    v = ctx.bs.vetoes
    for d in ctx.bs.designations:
        if d.id != goal[1]:
            continue
        for c in d.criteria:
            before = ctx.inp.prev.get(c.id)
            if c.years > 1 and (0 if before is None else int(before[i])) + 1 < c.years:
                continue                                   # cannot count this year whatever happens
            if c.kind == "score_below":
                scores.append((c.value, False))
            elif c.kind == "survey_below":
                if ctx.out["criteria"][c.id][i]:
                    return None, scores, forbid, False
            elif c.kind == "veto":
                k = c.veto
                forbid.setdefault(v.fact[k], []).append(lambda x, k=k: rt.veto_fired(
                    np.repeat(x[:, None], v.n, axis=1), v)[:, k])
            elif c.kind == "fact_below":
                forbid.setdefault(c.fact, []).append(lambda x, c=c: x < c.value)
            elif c.kind == "fact_at_least":
                forbid.setdefault(c.fact, []).append(lambda x, c=c: x >= c.value)
            elif c.kind == "last_place":
                low = float(_others_lowest(ctx, np.array([i]), c.within)[0])
                if not np.isfinite(low):
                    return None, scores, forbid, False
                scores.append((low, True))
            elif c.kind == "level":
                level_min = max(level_min or 0, c.level + 1)
    return level_min, scores, forbid, True


def _routes(ctx, i: int, level_min):
    """Ways to reach ``level_min``: by the score (its threshold) or by a direct grading; vetoes below stay off."""
    if level_min is None:
        return [([], {})]
    r, v = ctx.bs.rating, ctx.bs.vetoes
    forbid = {}
    for k in range(v.n):
        if v.effect[k] in ("cap", "force") and v.level[k] < level_min:
            forbid.setdefault(v.fact[k], []).append(lambda x, k=k: rt.veto_fired(
                np.repeat(x[:, None], v.n, axis=1), v)[:, k])
    thr, strict = ctx.thresholds
    by_score = {f: list(x) for f, x in forbid.items()}
    for d in range(len(r.direct_ids)):
        if r.direct_level[d] < level_min:
            by_score.setdefault(r.direct_fact[d], []).append(lambda x, d=d: x >= r.direct_at_least[d])
    out = [([(float(thr[i, level_min - 1]), bool(strict[i, level_min - 1]))], by_score)]
    for d in range(len(r.direct_ids)):
        if r.direct_level[d] >= level_min:
            route = {f: list(x) for f, x in forbid.items()}
            route.setdefault(r.direct_fact[d], []).append(lambda x, d=d: x < r.direct_at_least[d])
            out.append(([], route))
    return out


def _combination(ctx, i: int, goal, cost: dict):
    """The cheapest set of fact changes reaching ``goal`` for branch ``i``: ({fact: change}, cost, verified)."""
    level_min, scores, forbid, possible = _requirement(ctx, i, goal)
    if not possible:
        return None, np.nan, False
    best = (None, np.inf, False)
    for route_scores, route_forbid in _routes(ctx, i, level_min):
        rules = {f: forbid.get(f, []) + route_forbid.get(f, []) for f in set(forbid) | set(route_forbid)}
        need = scores + route_scores
        for margin in (1e-7, 1e-5, 1e-3):
            moves, total = _solve(ctx, i, need, rules, cost, margin)
            if moves is None:
                break
            values = {f: np.array([ctx.inp.value(f)[i] + dv]) for f, dv in moves.items()}
            _, level, desig, _ = _outcome(ctx, np.array([i]), values)
            if _reached(goal, level, desig)[0]:
                if total < best[1] - 1e-12:
                    best = (moves, total, True)
                break
    return best if best[0] is not None else (None, np.nan, False)


def _solve(ctx, i, need, rules, cost, margin):
    bs, sheet = ctx.bs, ctx.bs.sheet
    tp = int(ctx.inp.type_idx[i])
    prog = _Program()
    chosen = {}                           # fact -> (values, variable ids)
    row = np.array([i])
    grids = {f.name: _grid(ctx, f, row)[1] for f in ctx.facts}
    blocks = [(f, grids[f.name]) for f in ctx.facts if f.j >= 0]
    sizes = [1] + [len(v) for _, v in blocks]
    start = np.cumsum([0] + sizes)
    together = {}                             # every indicator's candidates scored in one call
    for n, (f, v) in enumerate(blocks):
        col = np.full(start[-1], float(ctx.inp.value(f.name)[i]))
        col[start[n + 1]:start[n + 2]] = v
        together[f.name] = col
    _, _, _, all_pts = _outcome(ctx, np.full(start[-1], i), together, zeroing=False)
    pts_of = {f.name: all_pts[start[n + 1]:start[n + 2], f.j] for n, (f, _) in enumerate(blocks)}
    point = [({}, float(all_pts[0, j])) for j in range(sheet.k)]
    fact_expr = {}
    for f in ctx.facts:
        cur = float(ctx.inp.value(f.name)[i])
        vals = np.r_[cur, grids[f.name]]
        own_pts = np.r_[all_pts[0, f.j], pts_of[f.name]] if f.j >= 0 else None
        c = _unit_cost(f, cost)
        ok = np.ones(len(vals), dtype=bool)
        if not np.isfinite(c):
            ok[1:] = False
        for rule in rules.get(f.name, []):
            ok &= ~np.asarray(rule(vals), bool)
        if not ok.any():
            return None, np.nan
        vals = vals[ok]
        own_pts = own_pts[ok] if own_pts is not None else None
        if len(vals) == 1 and vals[0] == cur:
            fact_expr[f.name] = ({}, cur)
            continue
        # a tie between equally cheap combinations goes to the facts first in the scheme's order
        tie = 1e-7 * (1 + ctx.facts.index(f)) / len(ctx.facts)
        ids = [prog.var(cost=(c + tie) * abs(v - cur) / f.step, lo=0, hi=1, integer=True) for v in vals]
        prog.row({k: 1.0 for k in ids}, 1.0, 1.0)
        chosen[f.name] = (vals, ids, cur)
        fact_expr[f.name] = ({k: float(v) for k, v in zip(ids, vals)}, 0.0)
        if f.j >= 0:
            point[f.j] = ({k: float(p) for k, p in zip(ids, own_pts)}, 0.0)
    for z in np.flatnonzero(sheet.kind[tp] == _ZERO):     # a zeroing rule: the target's points or 0
        t = int(sheet.target[z])
        terms, const = fact_expr[sheet.facts[z]]
        if terms:
            fires = ({k: 1.0 for k, v in terms.items() if v >= sheet.at_least[tp, z]}, 0.0)
        else:
            fires = ({}, float(const >= sheet.at_least[tp, z]))
        top = float(sheet.points[tp, t])
        y = prog.var(hi=top)
        prog.row({**{k: -v for k, v in point[t][0].items()}, y: 1.0}, hi=point[t][1])
        prog.row({**{k: top * v for k, v in fires[0].items()}, y: 1.0}, hi=top * (1 - fires[1]))
        point[t] = ({y: 1.0}, 0.0)
    score = _score_expr(ctx, prog, tp, point)
    surv = float(ctx.out["subscores"][i, -1]) if bs.survey else 0.0
    score = _add(score, ({}, surv))
    floor = float(bs.weights[tp, 0]) * bs.floor + surv if bs.form == "points" and np.isfinite(bs.floor) else -np.inf
    for value, strict in need:
        if value > floor:
            prog.row(score[0], lo=value - score[1] + (margin if strict else -margin / 10))
    x = prog.solve() if prog.cost else np.zeros(0)
    if x is None:
        return None, np.nan
    moves = {}
    for f, (vals, ids, cur) in chosen.items():
        v = float(vals[int(np.argmax(x[ids]))])
        if v != cur:
            moves[f] = round(v - cur, 9)
    return moves, _cost_of(ctx, moves, cost)


def _unit_cost(f: _Fact, cost: dict) -> float:
    return float(cost.get(f.indicator, cost.get(f.name, 1.0)))


def _cost_of(ctx, moves: dict, cost: dict) -> float:
    """Cost of a set of moves: each fact's cost per step times its steps."""
    by = {f.name: f for f in ctx.facts}
    return round(sum(_unit_cost(by[f], cost) * abs(dv) / by[f].step for f, dv in moves.items()), 9)


def _score_expr(ctx, prog, tp, point):
    """The branch score (without the survey) as a linear expression of the points (hypographs for caps)."""
    bs, sheet = ctx.bs, ctx.bs.sheet
    kind = sheet.kind[tp]
    parts = []
    for g in range(len(sheet.group_ids)):
        cols = np.flatnonzero(sheet.group == g)
        scored = _add(*[point[j] for j in cols if kind[j] not in (RULE_CODES["bonus"], RULE_CODES["penalty"], _ZERO)])
        bonus = _add(*[point[j] for j in cols if kind[j] == RULE_CODES["bonus"]])
        pen = _add(*[point[j] for j in cols if kind[j] == RULE_CODES["penalty"]])
        bonus = prog.at_most(bonus, float(bs.dim_bonus_cap[tp, g]))
        parts.append((scored, bonus, pen))
    w = bs.weights[tp]
    if bs.form == "shares":
        out = []
        for g, (scored, bonus, pen) in enumerate(parts):
            M = float(sheet.group_max[tp, g])
            if M > 0:
                frac = prog.at_most(_add(scored, bonus, pen, scale=[1 / M] * 3), 1.0)
                out.append(_add(frac, scale=[100.0 * float(w[g])]))
        return _add(*out) if out else ({}, 0.0)
    kept = [prog.at_most(s, float(bs.dim_cap[tp, g])) for g, (s, _, _) in enumerate(parts)]
    bonus = prog.at_most(_add(*[b for _, b, _ in parts]), float(bs.bonus_cap))
    raw = _add(({}, float(bs.base)), *kept, bonus, *[p for _, _, p in parts])
    sheet_pts = prog.at_most(raw, float(bs.cap))
    return _add(sheet_pts, scale=[float(w[0])])


# -- public -----------------------------------------------------------------------------------------
def _check_cost(ctx, cost) -> dict:
    return check_cost(ctx.policy, cost)


def _check_known_cost(cost, known: set, name: str) -> dict:
    if not isinstance(cost, dict):
        raise DataError(f"cost must be a mapping {{indicator or fact: cost per step}}, got {type(cost).__name__}")
    out = {}
    for k, v in cost.items():
        if k not in known:
            listed = sorted(known)
            raise DataError(f"cost: {k!r} is not an indicator or fact of policy {name!r}; allowed: "
                            f"{', '.join(listed[:12])}{f', ... ({len(listed)} in all)' if len(listed) > 12 else ''}")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v >= 0:
            raise DataError(f"cost: {k!r} must be a number >= 0 (inf: the fact cannot change), got {v!r}")
        out[k] = float(v)
    return out


def check_cost(policy: Policy, cost) -> dict:
    """A cost mapping ``{indicator or fact: cost per step}`` checked against ``policy`` (None: {}).

    >>> import branchsim as bs
    >>> check_cost(bs.Policy.load(), {"committee_meetings": 2})
    {'committee_meetings': 2.0}
    """
    if cost is None:
        return {}
    bs = policy.scheme.branch
    return _check_known_cost(cost, set(bs.sheet.ids) | set(bs.facts), policy.name)


def _row(ctx, branch_id) -> int:
    ids = ctx.b["branch_id"].astype(str).to_numpy()
    hit = np.flatnonzero(ids == str(branch_id))
    if not len(hit):
        raise DataError(f"branch_id {str(branch_id)!r} is not in the branches table ({ctx.n:,} branches; ids "
                        f"such as {', '.join(ids[:3])})")
    return int(hit[0])


def _with_cost(ctx, single: pd.DataFrame, cost: dict) -> pd.DataFrame:
    unit = single["fact"].map({f.name: _unit_cost(f, cost) for f in ctx.facts})
    return single.assign(cost=np.round(unit * single["steps"], 9))


def next_level(pop, policy: Policy | str | os.PathLike | None = None, branch_id=None, *,
               cost: dict | None = None) -> pd.DataFrame:
    """What one branch needs to reach the next level up (and, if designated, to leave the designation).

    Parameters
    ----------
    pop : Population, folder path or branches DataFrame
    policy : Policy, path or None (the baseline)
    branch_id : the branch
    cost : dict, optional
        Cost per step of each indicator (or declared fact), ``{id: cost}``;
        default 1. A step is one whole unit of a count, a flip of a binary,
        0.01 of a share or number; ``inf``: the fact may not change.

    Returns
    -------
    DataFrame
        One row per goal and fact with ``move == "single"``: the smallest
        change of that fact alone (``change`` in the fact's unit, NaN where
        no change of it suffices), its ``steps``, ``cost`` and
        ``level_after``; then, with ``move == "combination"``, the facts of
        the cheapest combination of each goal. ``attrs``: ``branch_id``,
        ``score``, ``level``, ``goals``, ``combination_cost`` and ``verified``
        ({goal: ...}; verified: the combination re-scored reaches the goal).
        Other branches' facts and scores are held as they are (see the
        module notes for relative designs).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> moves = next_level(pop, None, "B006")
    >>> moves.attrs["level"], moves.attrs["goals"], moves.attrs["combination_cost"]
    ('three_star', ['four_star'], {'four_star': 1.0})
    >>> one = moves[(moves["move"] == "single") & (moves["steps"] == 1)]
    >>> sorted(one["fact"])
    ['org_life_meetings', 'secretary_trained']
    """
    ctx = _Context(pop, policy)
    cost = _check_cost(ctx, cost)
    i = _row(ctx, branch_id)
    goals = _goals(ctx, i)
    frames, costs, verified = [], {}, {}
    for goal in goals:
        single = _with_cost(ctx, _single(ctx, np.array([i]), [goal]), cost)
        frames.append(single.assign(move="single"))
        moves, total, ok = _combination(ctx, i, goal, cost)
        name = _goal_text(ctx, goal)
        costs[name], verified[name] = total, ok
        if moves:
            part = single.set_index("fact").loc[list(moves)].reset_index()
            change = np.array(list(moves.values()), dtype=float)
            steps = np.round(np.abs(change) / part["step"].to_numpy(), 6)
            unit = np.array([_unit_cost(next(f for f in ctx.facts if f.name == m), cost) for m in moves])
            frames.append(part.assign(move="combination", change=change,
                                      new_value=np.round(part["current"].to_numpy() + change, 9), steps=steps,
                                      cost=np.round(unit * steps, 9), level_after=None))
    cols = ["branch_id", "goal", "move", "fact", "indicator", "kind", "step", "current", "change", "new_value",
            "steps", "cost", "level_after"]
    out = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    out.attrs.update(branch_id=str(ctx.b["branch_id"].iloc[i]), score=float(ctx.out["score"][i]),
                     level=str(ctx.bs.levels.id_of([ctx.out["level"][i]])[0]),
                     goals=[_goal_text(ctx, g) for g in goals], combination_cost=costs, verified=verified)
    return out


def distances(pop, policy: Policy | str | os.PathLike | None = None, *, cost: dict | None = None,
              goal: str = "level", combination: bool = True) -> pd.DataFrame:
    """Every branch's distance to the next level up (or out of a designation), as one table.

    Parameters
    ----------
    pop, policy, cost : as :func:`next_level`
    goal : ``"level"`` (the next level up; none for the top level) or a
        designation id (out of it; none for a branch not designated)
    combination : whether to solve each branch's cheapest combination (one
        small integer program per branch: the slow part)

    Returns
    -------
    DataFrame
        One row per branch: ``branch_id``, ``type``, ``level``, ``score``,
        ``goal``, the cheapest single-fact move (``best_fact``,
        ``best_change``, ``best_steps``, ``best_cost``; by cost, then steps,
        then fact name), ``n_facts`` (facts that alone suffice),
        ``one_step`` (one step of some fact is enough), and with
        ``combination`` its ``combination_cost``, ``combination`` (text)
        and ``verified``. ``attrs["summary"]``: branches with a goal, how
        many are one step away, and that count per level.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> table = distances(pop, combination=False)
    >>> len(table) == len(pop.branches), table.attrs["summary"]["branches"] >= table.attrs["summary"]["one_step"]
    (True, True)
    """
    ctx = _Context(pop, policy)
    cost = _check_cost(ctx, cost)
    if goal != "level" and goal not in [d.id for d in ctx.bs.designations]:
        raise DataError(f"goal must be 'level' or a designation of policy {ctx.policy.name!r} "
                        f"({', '.join(d.id for d in ctx.bs.designations) or 'none'}), got {goal!r}")
    lv = ctx.out["level"].astype(int)
    if goal == "level":
        goals = [("level", int(x) + 1) if x < ctx.bs.levels.n - 1 else None for x in lv]
    else:
        goals = [("designation", goal) if held else None for held in ctx.out["designations"][goal]]
    rows = np.arange(ctx.n)
    single = _with_cost(ctx, _single(ctx, rows, goals), cost).dropna(subset=["change"])
    single = single.sort_values(["branch_id", "cost", "steps", "fact"], kind="stable")
    best = single.drop_duplicates("branch_id").set_index("branch_id")
    ids = ctx.b["branch_id"].to_numpy()
    table = pd.DataFrame({"branch_id": ids, "type": ctx.b["type"].to_numpy(),
                          "level": ctx.bs.levels.id_of(lv), "score": ctx.out["score"],
                          "goal": [_goal_text(ctx, g) for g in goals]})
    for col in ("fact", "change", "steps", "cost"):
        table[f"best_{col}"] = table["branch_id"].map(best[col]).to_numpy()
    table["n_facts"] = table["branch_id"].map(single.groupby("branch_id").size()).fillna(0).astype(int).to_numpy()
    table["one_step"] = (table["best_steps"] == 1).to_numpy() | table["branch_id"].isin(
        single.loc[single["steps"] == 1, "branch_id"]).to_numpy()
    if combination:
        found = [_combination(ctx, i, g, cost) if g is not None else (None, np.nan, False)
                 for i, g in enumerate(goals)]
        table["combination_cost"] = [c for _, c, _ in found]
        table["combination"] = ["; ".join(f"{f} {dv:+g}" for f, dv in sorted(m.items())) if m else ""
                                for m, _, _ in found]
        table["verified"] = pd.array([ok if g is not None else pd.NA for (_, _, ok), g in zip(found, goals)],
                                     dtype="boolean")
    with_goal = table["goal"] != "none"
    one = table.loc[with_goal & table["one_step"], "level"].value_counts()
    table.attrs["summary"] = {"branches": int(with_goal.sum()), "one_step": int((with_goal & table["one_step"]).sum()),
                              "one_step_by_level": {lvl: int(one.get(lvl, 0)) for lvl in ctx.bs.levels.ids}}
    return table


def explain_rows(policy: Policy, b: pd.DataFrame, inp, out, i: int, shown: int = 3) -> list[tuple[str, str, str]]:
    """``(item, input, result)`` lines "to reach the next level" for :func:`branchsim.explain`.

    ``b``, ``inp`` and ``out`` are the evaluation explain already made; per
    goal, the ``shown`` cheapest single-fact moves and the cheapest combination.
    """
    ctx = _Context(None, policy, evaluated=(b, inp, out))
    goals = _goals(ctx, i)
    if not goals:
        return [("nothing to reach", "the top level, no designation", "no move needed")]
    rows = []
    held = "the other branches' scores held" if ctx.bs.rating.design != "cuts" else "the cuts fixed"
    for goal in goals:
        name = _goal_text(ctx, goal)
        single = _with_cost(ctx, _single(ctx, np.array([i]), [goal]), {}).dropna(subset=["change"])
        single = single.sort_values(["cost", "steps", "fact"], kind="stable").head(shown)
        text = "; ".join(f"{r.fact} {r.current:g} -> {r.new_value:g} ({r.steps:g} step{'s' * (r.steps != 1)})"
                         for r in single.itertuples()) or "no fact alone suffices"
        rows.append((f"to {name}: one fact alone", f"smallest change of each fact, {held}", text))
        moves, total, ok = _combination(ctx, i, goal, {})
        combo = ("; ".join(f"{f} {dv:+g}" for f, dv in moves.items()) + f" (cost {total:g}"
                 + ("" if ok else ", not verified") + ")") if moves else "none found"
        rows.append((f"to {name}: cheapest combination", "cost 1 a step (a count: 1, a share: 0.01)", combo))
    return rows


#: Rule forms whose points rise with the fact (the rest fall with it); rank follows its order.
_RISING = {RULE_CODES[r] for r in ("binary", "deduction", "proportion", "bonus", "per_event")}


def marginal_points(policy: Policy | str | os.PathLike | None = None, pop=None) -> pd.DataFrame:
    """Score points one step of each indicator's fact buys, per branch type (where gaming pays).

    Parameters
    ----------
    policy : Policy, path or None (the baseline)
    pop : Population, folder or branches DataFrame, optional
        With a population, each branch's facts are moved one step the way
        that earns points (within their range) and re-scored: the mean gain
        per type and the share of branches whose score moves at all.

    Returns
    -------
    DataFrame
        One row per type and indicator: ``rule``, ``direction`` (+1: more
        earns, -1: less earns), ``step``, ``points_per_step`` (the rule's
        slope, in the indicator's points), ``score_per_step`` (in score
        points where no cap binds) and ``score_max`` (the indicator's whole
        weight in the score), best buy first within a type; with ``pop``
        also ``mean_gain`` and ``share_moved``. A rank rule's slope depends
        on the others: NaN.

    Examples
    --------
    >>> m = marginal_points()
    >>> bool((m["score_per_step"].dropna() >= 0).all())
    True
    """
    policy = as_policy(policy, "policy")
    bs = policy.scheme.branch
    sheet = bs.sheet
    from .._explain_lines import RULES
    rows = []
    for tp, tname in enumerate(bs.types):
        w = bs.weights[tp]
        for j in range(sheet.k):
            code = int(sheet.kind[tp, j])
            top = float(sheet.points[tp, j])
            slope = {0: top, 1: sheet.per_shortfall[tp, j], 2: top * _SHARE_STEP, 3: sheet.per_unit[tp, j],
                     4: sheet.per_event[tp, j], 5: sheet.per_occurrence[tp, j],
                     6: sheet.per_occurrence[tp, j]}.get(code, np.nan)
            if code == _ZERO:
                slope = float(sheet.points[tp, sheet.target[j]])
                top = slope
            g = int(sheet.group[j])
            if bs.form == "shares":
                M = float(sheet.group_max[tp, g])
                scale = 100.0 * float(w[g]) / M if M > 0 else 0.0
            else:
                scale = float(w[0])
            step = _SHARE_STEP if code in (2, _RANK) else 1.0
            direction = 1 if code in _RISING or (code == _RANK and sheet.high_first[j]) else -1
            rows.append({"type": tname, "indicator": sheet.ids[j], "fact": sheet.facts[j], "rule": RULES[code],
                         "direction": direction, "step": step, "points_per_step": float(min(slope, top)),
                         "score_per_step": round(float(min(slope, top)) * scale, 9),
                         "score_max": round(top * scale, 9)})
    out = pd.DataFrame(rows)
    if pop is not None:
        ctx = _Context(pop, policy)
        gain, moved = [], []
        for j in range(sheet.k):
            f = next(x for x in ctx.facts if x.j == j)
            d = out.loc[out["indicator"] == sheet.ids[j]].set_index("type")["direction"]
            sign = d.reindex(list(bs.types)).to_numpy()[ctx.inp.type_idx]
            v = np.clip(ctx.inp.facts[:, j] + sign * f.step, f.lo, f.hi)
            score = _outcome(ctx, np.arange(ctx.n), {f.name: v})[0]
            dg = pd.Series(score - ctx.out["score"]).groupby(ctx.b["type"].to_numpy())
            gain.append(dg.mean().rename(sheet.ids[j]))
            moved.append((dg.apply(lambda s: float((s.abs() > 1e-9).mean()))).rename(sheet.ids[j]))
        key = pd.MultiIndex.from_arrays([out["type"], out["indicator"]])
        g = pd.concat(gain, axis=1).stack()
        m = pd.concat(moved, axis=1).stack()
        out["mean_gain"] = np.round(g.reindex(key).to_numpy(), 9)
        out["share_moved"] = np.round(m.reindex(key).to_numpy(), 9)
    out = out.sort_values(["type", "score_per_step", "indicator"], ascending=[True, False, True], kind="stable")
    return out.reset_index(drop=True)
