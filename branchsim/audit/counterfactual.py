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

The combination is a small integer program (:func:`scipy.optimize.milp`)
rather than a search: with one binary variable per candidate value of each
fact (the same candidates as the single-fact search, so any rule form is
exact) the space is the product of some 35 facts' few to hundred values,
far beyond enumeration, while the program solves in milliseconds. The
dimension, bonus and sheet caps are hypographs (the score rises with every
point); there is one program per route to the goal (by the score, or by each
direct grading), the cheapest kept; equally cheap answers go to the facts
first in the scheme's order. The lower clips (a sheet's floor, a dimension's
fraction below zero) are left out, which can only over-estimate the cost.
Every answer is re-scored exactly (``verified``); one that misses the goal by
the solver's tolerance is solved again with a margin, then dropped. One
program per branch: :func:`distances` with ``combination=True`` takes about
0.1 s a branch (2 shared cores).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import os

import numpy as np
import pandas as pd

from ..errors import DataError
from ..policy import Policy, as_policy
from ..scheme import RULE_CODES
from ._cf_program import _combination
from ._cf_search import (_RANK, _SHARE_STEP, _ZERO, _Context, _goal_text, _goals, _outcome, _single,  # noqa: F401
                         _unit_cost)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from ..population import Population

__all__ = ["next_level", "distances", "marginal_points", "check_cost"]


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


def check_cost(policy: Policy, cost: Mapping[str, float] | None) -> dict:
    """A cost mapping ``{indicator or fact: cost per step}`` checked against ``policy`` (None: {}).

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> first = p.scheme.branch.sheet.ids[0]
    >>> check_cost(p, {first: 2}) == {first: 2.0}
    True
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


def next_level(pop: Population, policy: Policy | str | os.PathLike[str] | None = None, branch_id: object = None, *,
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
        ({goal: ...}; verified: the combination re-scored reaches the goal;
        the cost NaN and verified None where no combination within the facts'
        ranges reaches it).
        Other branches' facts and scores are held as they are (see the
        module notes for relative designs).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> moves = next_level(pop, None, "B006")
    >>> levels = bs.Policy.load().levels                      # best first
    >>> up = levels[levels.index(moves.attrs["level"]) - 1]
    >>> moves.attrs["goals"] == [up], moves.attrs["combination_cost"] == {up: 1.0}
    (True, True)
    >>> one = moves[(moves["move"] == "single") & (moves["steps"] == 1)]
    >>> len(one)                                              # two facts each reach it in one step
    2
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
        costs[name], verified[name] = total, (ok if moves else None)
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


def distances(pop: Population, policy: Policy | str | os.PathLike[str] | None = None, *, cost: dict | None = None,
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
        and ``verified`` (NaN / NA where no combination within the facts'
        ranges reaches the goal). ``attrs["summary"]``: branches with a goal, how
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
        table["verified"] = pd.array([ok if m else pd.NA for m, _, ok in found],
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


def marginal_points(policy: Policy | str | os.PathLike[str] | None = None,
                    pop: Population | None = None) -> pd.DataFrame:
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
