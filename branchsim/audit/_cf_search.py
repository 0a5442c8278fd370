"""The search behind :mod:`branchsim.audit.counterfactual`: a branch's facts, candidate values and goals.

:class:`_Context` evaluates a population once; :func:`_outcome` scores
candidate rows (one branch's facts with some changed) with the engine's own
functions, the other branches held; :func:`_single` finds, fact by fact, the
smallest change that reaches a goal. How relative designs are treated: see
:mod:`branchsim.audit.counterfactual`.
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


def _unit_cost(f: _Fact, cost: dict) -> float:
    return float(cost.get(f.indicator, cost.get(f.name, 1.0)))


def _cost_of(ctx, moves: dict, cost: dict) -> float:
    """Cost of a set of moves: each fact's cost per step times its steps."""
    by = {f.name: f for f in ctx.facts}
    return round(sum(_unit_cost(by[f], cost) * abs(dv) / by[f].step for f, dv in moves.items()), 9)
