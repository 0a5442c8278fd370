"""Why three stars? Every rule step for one branch or member, with provenance.

:func:`explain` runs the same vectorised rules as an evaluation on the one
unit's rows and lays each step out as a row: the inputs, the rule with its
numbers filled in, what the line adds to the score, the parameter values
used (by dotted path) and where each of them comes from.

The lines that add to the score (column ``adds``) sum to the score the
engine computes: for a branch, each indicator's points scaled to its
dimension's share, a line for each dimension cap that binds, and the
survey; for a member, each indicator's points on the 100-point monthly
scale, and a line for the cap at 100 when it binds.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from .errors import DataError, PolicyError
from .policy import Policy, as_policy
from .population import Population, load_population
from .scoring import (GRADES, STRUCTURE_LEVELS, branch_consequences, branch_outcome, compile_branch_rules,
                      compile_member_rules, indicator_points, member_consequences, member_grades,
                      monthly_scores, annual_scores, required_level, type_codes)
from .tables import SURVEY_COLUMNS, check_tables

__all__ = ["explain"]

_COLUMNS = ["step", "item", "input", "result", "adds", "parameters", "provenance"]


# -- text of numbers and parameters ---------------------------------------------------------------
def _g(x) -> str:
    """A plain number: ``3``, ``0.25``, ``1.83333`` (never ``np.float64(3.0)``)."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    return f"{float(x):g}"


def _pts(x) -> str:
    """Points as shown: two decimals at most (``4``, ``2.5``, ``1.83``)."""
    return f"{round(float(x), 2):g}"


def _row(step, item, input="", result="", adds=np.nan, paths=(), policy=None) -> dict:
    """One step; ``paths`` are the parameters it uses, each cited with its provenance."""
    return {"step": step, "item": item, "input": input, "result": result, "adds": float(adds),
            "parameters": ", ".join(f"{p}={_g(policy[p])}" for p in paths),
            "provenance": " | ".join(f"{p}: {policy.provenance(p)}" for p in paths)}


def _label(policy: Policy, path: str, default: str) -> str:
    try:
        return str(policy[path])
    except PolicyError:
        return default


# -- indicators --------------------------------------------------------------------------------
def _param_path(policy: Policy, section: str, tid: str, iid: str, name: str) -> str:
    """The path a type's value of an indicator parameter comes from: its override, else the default."""
    over = f"{section}.types.{tid}.indicators.{iid}.{name}"
    return over if over in policy else f"{section}.indicators.{iid}.{name}"


def _at(values, t: int, j: int) -> float:
    """Value of indicator ``j`` for type ``t`` from a compiled ``(k,)`` or ``(t, k)`` array."""
    values = np.asarray(values)
    return float(values[t, j] if values.ndim == 2 else values[j])


def _rule(policy: Policy, section: str, tid: str, iid: str, rule: str, ind, t: int, j: int
          ) -> tuple[str, list[str]]:
    """The rule as an expression in ``fact`` (``×`` for times) and the parameter paths it uses.

    The numbers are the compiled ones the engine uses (``ind`` is an IndicatorRules).
    """
    names = {"binary": [], "deduction": ["required", "per_shortfall"], "proportion": [],
             "bonus": ["per_unit"]}[rule]
    paths = [_param_path(policy, section, tid, iid, n) for n in ["points"] + names]
    top = _g(_at(ind.max_points, t, j))
    if rule == "binary":
        return f"{top} if fact >= 1 else 0", paths
    if rule == "deduction":
        r, d = _g(_at(ind.required, t, j)), _g(_at(ind.per_shortfall, t, j))
        return f"max(0, {top} - {d} × max(0, {r} - fact))", paths
    if rule == "proportion":
        return f"{top} × clip(fact, 0, 1)", paths
    return f"min({top}, {_g(_at(ind.per_unit, t, j))} × max(0, fact))", paths


def _find(ids: pd.Series, wanted, column: str, table: str, where: str) -> int:
    """Position of ``wanted`` in an id column; an unknown id names the table and shows valid ids."""
    key = str(wanted)
    hit = np.flatnonzero((ids == key).to_numpy())
    if not len(hit):
        some = ", ".join(str(v) for v in ids.iloc[:3])
        raise DataError(f"{column} {key!r} is not in the {table} table of {where} ({len(ids):,} {table}; "
                        f"ids such as {some})")
    return int(hit[0])


# -- branches ----------------------------------------------------------------------------------
def _explain_branch(policy: Policy, b: pd.DataFrame, branch_id, where: str) -> pd.DataFrame:
    row = b.iloc[[_find(b["branch_id"], branch_id, "branch_id", "branches", where)]]
    rules = compile_branch_rules(policy)
    tid = str(row["type"].iloc[0])
    t = int(type_codes([tid], rules.types, policy.name)[0])
    facts = row[list(rules.indicators.facts)].to_numpy(float)
    counts = row[list(SURVEY_COLUMNS)].to_numpy(float)
    out = branch_outcome(facts, np.array([t]), counts, rules)
    ind, pts, w = rules.indicators, out["points"][0], rules.weights[t]
    gmax = ind.group_max[t]
    inds = policy.branch_indicators
    ids = list(inds)
    s_path = f"branch.types.{tid}.satisfaction_share"
    s_path = s_path if s_path in policy else "branch.satisfaction_share"
    rows = []
    for g, dim in enumerate(policy.dimensions):
        share_path = f"branch.dimensions.{dim}.share"
        # A type's own survey share re-scales the dimension shares: then the weight rests on both.
        dim_paths = [share_path] + ([s_path] if abs(w[g] - policy[share_path]) > 1e-12 else [])
        scale = 100.0 * w[g] / gmax[g] if gmax[g] > 0 else 0.0
        cols = np.flatnonzero(ind.group == g)
        for j in cols:
            iid = ids[j]
            text, paths = _rule(policy, "branch", tid, iid, inds[iid]["rule"], ind, t, j)
            scaled = f"; adds {pts[j] * scale:.2f} = 100 × {w[g]:.4g} × {_pts(pts[j])}/{gmax[g]:g}" \
                if gmax[g] > 0 else f"; adds 0 ({dim} has no scored points for type {tid})"
            rows.append(_row(f"indicator ({inds[iid]['rule']})", f"{iid}: {inds[iid]['label']}",
                             f"fact {ind.facts[j]} = {_g(facts[0, j])}",
                             f"{_pts(pts[j])} points [{text}]{scaled}", pts[j] * scale,
                             paths + dim_paths, policy))
        got, sub = pts[cols].sum(), out["subscores"][0, g]
        dim_label = policy[f"branch.dimensions.{dim}"].get("label", dim)
        if got > gmax[g] > 0:      # bonus points above the dimension's maximum are cut off
            cut = sub - pts[cols].sum() * scale
            rows.append(_row("cap", f"{dim}: at most {gmax[g]:g} points",
                             f"{_pts(got)} points earned of {gmax[g]:g}",
                             f"{cut:.2f} = 100 × {w[g]:.4g} × ({gmax[g]:g} - {_pts(got)})/{gmax[g]:g}",
                             cut, dim_paths, policy))
        rows.append(_row("dimension", f"{dim}: {dim_label}", f"{_pts(got)} of {gmax[g]:g} points",
                         f"{sub:.2f} = 100 × {w[g]:.4g} × min(1, {_pts(got)}/{gmax[g]:g})"
                         if gmax[g] > 0 else "0.00 (no scored points for this type)",
                         paths=dim_paths, policy=policy))
    n = counts[0]
    answers = ("satisfied", "basic", "dissatisfied")
    rate = out["components"][0, -1]
    rows.append(_row("satisfaction survey", "survey of members and residents",
                     ", ".join(f"{_g(c)} {a}" for c, a in zip(n, answers)),
                     f"{out['subscores'][0, -1]:.2f} = 100 × {w[-1]:.4g} × {rate:.4f} "
                     f"(rate = ({' + '.join(f'{_g(c)} × {_g(v)}' for c, v in zip(n, rules.answer_values))})"
                     f"/{_g(n.sum())})", out["subscores"][0, -1],
                     [f"branch.survey.answer_values.{a}" for a in answers] + [s_path], policy))
    score = out["score"][0]
    rows.append(_row("score", "total on 100 points", "sum of the lines above (column adds)", f"{score:.2f}",
                     policy=policy))
    before = int(np.concatenate([[0], rules.star_levels])[np.searchsorted(rules.star_cuts, score, "right")])
    cut_paths = [f"branch.star_cuts.{k}" for k in rules.star_levels]
    reached = [i for i, c in enumerate(rules.star_cuts) if score >= c]
    near = ([reached[-1]] if reached else []) + ([len(reached)] if len(reached) < len(rules.star_cuts) else [])
    if reached:
        star_text = f"{before} stars (score {score:.2f} >= cut {rules.star_cuts[reached[-1]]:g})"
    else:
        star_text = f"no star (score {score:.2f} below the lowest cut {rules.star_cuts[0]:g})"
    rows.append(_row("star (before vetoes)", "star rating by cut points", f"score {score:.2f}", star_text,
                     paths=[cut_paths[i] for i in near], policy=policy))
    for v, vid in enumerate(rules.veto_ids):
        fired = bool(out["vetoes"][0, v])
        base = f"branch.vetoes.{vid}"
        fact = ind.facts[rules.veto_indicator[v]]
        rows.append(_row("veto", f"{vid}: {policy[base].get('label', vid)}",
                         f"{fact} = {_g(facts[0, rules.veto_indicator[v]])} (fires below "
                         f"{_g(rules.veto_below[v])})",
                         (f"FIRES: star capped at {rules.veto_max_star[v]}"
                          + (", designated weak" if rules.veto_weak[v] else "")) if fired else "does not fire",
                         paths=[f"{base}.below"] + ([f"{base}.max_star", f"{base}.weak"] if fired else []),
                         policy=policy))
    stars = int(out["stars"][0])
    fired_ids = [vid for v, vid in enumerate(rules.veto_ids) if out["vetoes"][0, v]]
    rows.append(_row("stars", "final star", f"{before} before vetoes"
                     + (f"; capped by {', '.join(fired_ids)}" if fired_ids else "; no veto fires"),
                     f"{stars}", policy=policy))
    weak = bool(out["weak"][0])
    weak_vetoes = [vid for v, vid in enumerate(rules.veto_ids) if out["vetoes"][0, v] and rules.veto_weak[v]]
    rows.append(_row("weak", "weak and lax designation", f"score {score:.2f}"
                     + (f"; veto {', '.join(weak_vetoes)}" if weak_vetoes else ""),
                     "weak" if weak else "not weak",
                     paths=["branch.weak_below"] + [f"branch.vetoes.{v}.weak" for v in weak_vetoes],
                     policy=policy))
    prev = int(row["prev_weak"].iloc[0])
    talk, reorg, streak = branch_consequences(out["weak"], np.array([prev]), rules.reorganise_after)
    action = "reorganise" if reorg[0] else "talk" if talk[0] else None
    rows.append(_row("consequence", "talk / reorganisation", f"weak now: {weak}; weak years just before: {prev}",
                     (f"{action}: {_label(policy, f'consequences.actions.{action}.label', action)}"
                      if action else "none") + f"; streak {int(streak[0])}",
                     paths=["consequences.reorganise_after"], policy=policy))
    need = required_level(row["n_members"].to_numpy(), policy)
    lvl, now = STRUCTURE_LEVELS[need["level"][0]], str(row["level"].iloc[0])
    upgrade = now in STRUCTURE_LEVELS and STRUCTURE_LEVELS.index(lvl) > STRUCTURE_LEVELS.index(now)
    rows.append(_row("structure", "level called for by size",
                     f"{int(row['n_members'].iloc[0])} members; now {now}",
                     lvl + (" (upgrade)" if upgrade else "")
                     + ("; committee called for" if need["committee"][0] else "")
                     + ("; below the minimum membership" if need["below_minimum"][0] else ""),
                     paths=[f"structure.{k}" for k in ("min_members", "committee_from", "general_branch_from",
                                                       "party_committee_from")], policy=policy))
    return pd.DataFrame(rows, columns=_COLUMNS)


# -- members -----------------------------------------------------------------------------------
def _by_month(months: np.ndarray, values: np.ndarray, fmt) -> str:
    if len(values) > 1 and np.all(values == values[0]):
        return f"= {fmt(values[0])} in all {len(values)} months"
    return "by month: " + ", ".join(f"{int(mo)}: {fmt(v)}" for mo, v in zip(months, values))


def _explain_member(policy: Policy, b, m, mm, member_id, month, where: str) -> pd.DataFrame:
    mrow = m.iloc[_find(m["member_id"], member_id, "member_id", "members", where)]
    mine = mm[(mm["member_id"] == mrow["member_id"]).to_numpy()]
    mine = mine.iloc[np.argsort(mine["month"].to_numpy(), kind="stable")]
    all_months = mine["month"].to_numpy()
    rules = compile_member_rules(policy)
    btype = b.loc[(b["branch_id"] == mrow["branch_id"]).to_numpy(), "type"]
    tid = str(btype.iloc[0])
    t = int(type_codes([tid], rules.types, policy.name)[0])
    ind = rules.indicators
    facts_all = mine[list(ind.facts)].to_numpy(float)
    monthly_all = monthly_scores(facts_all, np.full(len(mine), t), rules)
    if month is None:
        sel = np.arange(len(mine))
    else:
        sel = np.flatnonzero(all_months == month)
        if not len(sel):
            raise DataError(f"member {mrow['member_id']} has no record for month {month} in the "
                            f"member_months table of {where}; months on record: "
                            f"{', '.join(str(int(x)) for x in all_months)}")
    months, facts = all_months[sel], facts_all[sel]
    pts = indicator_points(facts, np.full(len(sel), t), ind)            # (months, k)
    top = ind.group_max[t].sum()
    adds = (100.0 * pts / top).mean(axis=0)
    inds = policy.member_indicators
    ids = list(inds)
    one = len(sel) == 1
    rows = []
    for j, iid in enumerate(ids):
        text, paths = _rule(policy, "member", tid, iid, inds[iid]["rule"], ind, t, j)
        fact_text = (f"fact {ind.facts[j]} = {_g(facts[0, j])} (month {int(months[0])})" if one
                     else f"fact {ind.facts[j]} {_by_month(months, facts[:, j], _g)}")
        got = pts[0, j] if one else pts[:, j].mean()
        result = (f"{_pts(got)} points [{text}]" if one
                  else f"{_pts(got)} points a month on average [mean over months of {text}]")
        rows.append(_row(f"indicator ({inds[iid]['rule']})", f"{iid}: {inds[iid]['label']}", fact_text,
                         result + f"; adds {adds[j]:.2f} = 100 × {_pts(got)}/{top:g}", adds[j], paths, policy))
    scores = monthly_all[sel]
    raw = 100.0 * pts.sum(axis=1) / top
    if np.any(raw > 100.0):   # bonus points above the maximum are cut off at 100
        cut = scores.mean() - adds.sum()
        over = ", ".join(f"month {int(mo)}: {r:.2f}" for mo, r in zip(months, raw) if r > 100.0)
        rows.append(_row("cap", "monthly score at most 100", f"before the cap {over}",
                         f"{cut:.2f} = " + (f"100 - {raw[0]:.2f}" if one else
                                            f"mean over the {len(sel)} months of (min(100, s) - s)"), cut,
                         policy=policy))
    total = f"min(100, 100 × points/{top:g})"
    if one:
        rows.append(_row("monthly score", f"month {int(months[0])}", f"{_pts(pts.sum())} points of {top:g}",
                         f"{scores[0]:.2f} = {total}", policy=policy))
    else:
        rows.append(_row("monthly scores", "monthly record",
                         "scores " + _by_month(months, scores, lambda s: f"{s:.1f}"),
                         f"mean {scores.mean():.2f} = mean over months of {total}", policy=policy))
    appraisal = float(mrow["appraisal"])
    mean_all = monthly_all.mean()
    annual = annual_scores(monthly_all, np.zeros(len(mine), int), 1, np.array([appraisal]), rules)[0]
    rows.append(_row("annual score", "monthly record and year-end appraisal",
                     f"mean of the {len(mine)} monthly scores {mean_all:.2f}, year-end appraisal {_g(appraisal)}",
                     f"{annual:.2f} = {rules.monthly_share:g} × {mean_all:.2f} + {rules.appraisal_share:g} × "
                     f"{_g(appraisal)}", paths=["member.monthly_share", "member.appraisal_share"], policy=policy))
    code = int(member_grades(np.array([annual]), rules)[0])
    cuts = list(policy["member.grade_cuts"])
    rows.append(_row("grade", "grade by cut points", f"annual {annual:.2f}", GRADES[code],
                     paths=[f"member.grade_cuts.{g}" for g in cuts], policy=policy))
    mentoring, handling = member_consequences(np.array([code]))
    action = "mentoring" if mentoring[0] else "handling" if handling[0] else None
    rows.append(_row("consequence", "mentoring / organisational handling", GRADES[code],
                     f"{action}: {_label(policy, f'consequences.actions.{action}.label', action)}"
                     if action else "none", policy=policy))
    return pd.DataFrame(rows, columns=_COLUMNS)


# -- arguments ---------------------------------------------------------------------------------
def _where(pop: Population) -> str:
    seed = pop.seed
    if pop.source == "generated" and seed is not None:
        key = f", spawn key {tuple(seed.spawn_key)}" if getattr(seed, "spawn_key", ()) else ""
        return f"the generated city, seed {getattr(seed, 'entropy', seed)}{key}"
    return f"the folder {pop.source}" if pop.source not in ("", "tables") else "the tables passed in"


def _arguments(data, policy):
    """(tables, policy, description); the old order ``explain(policy, data)`` still works, with a warning."""
    if isinstance(data, Policy):
        if isinstance(policy, Policy) or policy is None:
            raise DataError("explain() takes the population first and the policy second: "
                            "explain(pop, policy, branch_id=...) (pop from generate or load_population)")
        warnings.warn("explain(policy, data) is deprecated and will be removed in the next release; "
                      "call explain(data, policy, branch_id=...) like the other analyses", DeprecationWarning,
                      stacklevel=3)
        data, policy = policy, data
    policy = as_policy(policy, "explain(): policy")
    if isinstance(data, (str, os.PathLike)):
        data = load_population(data, policy=policy)
    if isinstance(data, Population):
        return data, policy, _where(data)
    if isinstance(data, pd.DataFrame):
        b, _, _ = check_tables(policy, data)
        return Population(b, source="tables"), policy, "the branches table passed in"
    raise DataError(f"explain() takes a Population (from generate or load_population), a folder of tables "
                    f"or a branches DataFrame first, got {type(data).__name__}")


def explain(data, policy: Policy | str | os.PathLike | None = None, *, branch_id=None, member_id=None,
            month: int | None = None) -> pd.DataFrame:
    """Each rule step for one branch or one member, with parameters and provenance.

    Parameters
    ----------
    data : Population, folder path or DataFrame
        The population (from :func:`branchsim.generate` or
        :func:`branchsim.load_population`), a folder of tables, or a
        branches table (enough to explain a branch).
    policy : Policy, path or None
        The policy (default: the baseline).
    branch_id, member_id : str
        The unit to explain: exactly one of them.
    month : int, optional
        With ``member_id``: explain that month's record alone instead of the
        mean over the year.

    Returns
    -------
    DataFrame
        One row per step: ``step``, ``item``, ``input``, ``result`` (the rule
        with its numbers), ``adds`` (what the line adds to the score; NaN for
        lines that only total or decide), ``parameters`` (``path=value`` of
        every parameter the step uses) and ``provenance`` (``path: quote: …``
        or ``path: assumption: …`` for each of them, joined by `` | ``).
        For a branch the ``adds`` column sums to the branch's score; for a
        member, to the mean monthly score (or that month's score).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> steps = bs.explain(pop, branch_id="B001")
    >>> steps["step"].iloc[-1], len(steps) > len(pop.branches.columns)
    ('structure', True)
    >>> f"{steps['adds'].sum():.2f}" == steps.set_index("step").loc["score", "result"]
    True
    """
    if (branch_id is None) == (member_id is None):
        raise DataError("explain() takes exactly one of branch_id= or member_id=")
    if month is not None and member_id is None:
        raise DataError("explain(): month= goes with member_id= (a branch is scored once a year)")
    pop, policy, where = _arguments(data, policy)
    if branch_id is not None:
        return _explain_branch(policy, pop.branches, branch_id, where)
    if pop.members is None or pop.member_months is None:
        raise DataError(f"explaining a member needs the members and member_months tables; {where} has "
                        f"branches only")
    return _explain_member(policy, pop.branches, pop.members, pop.member_months, member_id, month, where)
