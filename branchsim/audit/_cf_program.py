"""The cheapest combination of fact changes: a small integer program (:func:`scipy.optimize.milp`).

One binary variable per candidate value of each fact (the candidates of the
single-fact search, so every rule form is exact); the dimension, bonus and
sheet caps as hypographs (the score rises with every point); one program per
route to the goal (by the score, or by each direct grading), the cheapest
kept and checked by the exact scoring (:func:`._cf_search._outcome`).
"""
from __future__ import annotations

import numpy as np

from .. import rating as rt
from ..scheme import RULE_CODES
from ._cf_search import _ZERO, _cost_of, _grid, _others_lowest, _outcome, _reached, _unit_cost

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
    if level_min > ctx.bs.levels.n - 1:               # above the best level: no way
        return []
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
