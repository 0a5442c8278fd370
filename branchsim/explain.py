"""Why three stars? Every rule step for one branch or member, with provenance.

:func:`explain` runs the same vectorised rules as an evaluation on the one
unit's rows and lays each step out as a row: the inputs, the parameter
values used (by dotted path) and where each parameter comes from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError
from .policy import Policy
from .scoring import (GRADES, STRUCTURE_LEVELS, annual_scores, branch_consequences, branch_outcome,
                      compile_branch_rules, compile_member_rules, indicator_points, member_grades,
                      monthly_scores, required_level)
from .tables import SURVEY_COLUMNS, check_tables

__all__ = ["explain"]

_COLUMNS = ["step", "item", "input", "result", "parameters", "provenance"]


def _points_path(policy: Policy, section: str, tid: str, iid: str) -> str:
    over = f"{section}.types.{tid}.indicators.{iid}.points"
    return over if over in policy else f"{section}.indicators.{iid}.points"


def _rule_text(ind: dict, top: float) -> tuple[str, list[str]]:
    rule = ind["rule"]
    if rule == "binary":
        return f"{top:g} if met (fact >= 1) else 0", []
    if rule == "deduction":
        r, d = ind["required"]["value"], ind["per_shortfall"]["value"]
        return f"max(0, {top:g} - {d:g} × max(0, {r:g} - fact))", ["required", "per_shortfall"]
    if rule == "proportion":
        return f"{top:g} × clip(fact, 0, 1)", []
    return f"min({top:g}, {ind['per_unit']['value']:g} × fact)", ["per_unit"]


def _indicator_rows(policy, section, tid, inds, facts, points, top_by_ind, label_fact="fact"):
    rows = []
    for j, (iid, ind) in enumerate(inds.items()):
        text, extra = _rule_text(ind, top_by_ind[j])
        paths = [_points_path(policy, section, tid, iid)] + [f"{section}.indicators.{iid}.{p}" for p in extra]
        rows.append({"step": f"indicator ({ind['rule']})", "item": f"{iid}: {ind['label']}",
                     "input": f"{label_fact} {ind['fact']} = {facts[j]:g}",
                     "result": f"{points[j]:g} points  [{text}]",
                     "parameters": ", ".join(f"{p}={policy[p]:g}" for p in paths),
                     "provenance": policy.provenance(paths[0])})
    return rows


def _explain_branch(policy: Policy, b: pd.DataFrame, branch_id) -> pd.DataFrame:
    hit = np.flatnonzero((b["branch_id"] == str(branch_id)).to_numpy())
    if not len(hit):
        raise DataError(f"branch_id {branch_id!r} is not in the branches table")
    row = b.iloc[hit[:1]]
    rules = compile_branch_rules(policy)
    tid = row["type"].iloc[0]
    t = rules.types.index(tid)
    facts = row[list(rules.indicators.facts)].to_numpy(float)
    counts = row[list(SURVEY_COLUMNS)].to_numpy(float)
    out = branch_outcome(facts, np.array([t]), counts, rules)
    inds = policy.branch_indicators
    rows = _indicator_rows(policy, "branch", tid, inds, facts[0], out["points"][0],
                           rules.indicators.max_points[t])
    gmax = rules.indicators.group_max[t]
    for g, dim in enumerate(policy.dimensions):
        got = out["points"][0][rules.indicators.group == g].sum()
        path = f"branch.dimensions.{dim}.share"
        rows.append({"step": "dimension", "item": f"{dim}: {policy[f'branch.dimensions.{dim}']['label']}",
                     "input": f"{got:g} of {gmax[g]:g} points",
                     "result": f"{out['subscores'][0, g]:.2f} = 100 × {rules.weights[t, g]:.4g} × "
                               f"min(1, {got:g}/{gmax[g]:g})",
                     "parameters": f"{path}={policy[path]:.4g}", "provenance": policy.provenance(path)})
    n = counts[0]
    rows.append({"step": "satisfaction survey", "item": "黨員群眾滿意度測評",
                 "input": f"{n[0]:g} satisfied, {n[1]:g} basic, {n[2]:g} dissatisfied",
                 "result": f"{out['subscores'][0, -1]:.2f} = 100 × {rules.weights[t, -1]:.4g} × "
                           f"{out['components'][0, -1]:.4f}",
                 "parameters": ", ".join(f"branch.survey.answer_values.{a}={v:g}" for a, v in
                                         zip(("satisfied", "basic", "dissatisfied"), rules.answer_values))
                 + f", branch.satisfaction_share={policy['branch.satisfaction_share']:g}",
                 "provenance": policy.provenance("branch.satisfaction_share")})
    score = out["score"][0]
    rows.append({"step": "score", "item": "total on 100 points", "input": "sum of the subscores",
                 "result": f"{score:.2f}", "parameters": "", "provenance": ""})
    reached = [(k, c) for k, c in zip(rules.star_levels, rules.star_cuts) if score >= c]
    if reached:
        k, c = reached[-1]
        path = f"branch.star_cuts.{k}"
        star_text = f"{k} stars (score {score:.2f} >= cut {c:g})"
        params, prov = f"{path}={c:g}", policy.provenance(path)
    else:
        star_text = f"no star (score {score:.2f} below the lowest cut {rules.star_cuts[0]:g})"
        params, prov = f"branch.star_cuts.{rules.star_levels[0]}={rules.star_cuts[0]:g}", \
            policy.provenance(f"branch.star_cuts.{rules.star_levels[0]}")
    rows.append({"step": "star (before vetoes)", "item": "星級評定", "input": f"score {score:.2f}",
                 "result": star_text, "parameters": params, "provenance": prov})
    for v, vid in enumerate(rules.veto_ids):
        fact = facts[0, rules.veto_indicator[v]]
        fired = bool(out["vetoes"][0, v])
        rows.append({"step": "veto", "item": f"{vid}: {policy[f'branch.vetoes.{vid}']['label']}",
                     "input": f"{rules.indicators.facts[rules.veto_indicator[v]]} = {fact:g}",
                     "result": (f"FIRES: star capped at {rules.veto_max_star[v]}"
                                + (", designated weak" if rules.veto_weak[v] else "")) if fired
                     else "does not fire",
                     "parameters": f"branch.vetoes.{vid}.below={rules.veto_below[v]:g}",
                     "provenance": policy.provenance(f"branch.vetoes.{vid}.below")})
    rows.append({"step": "stars", "item": "final star", "input": "", "result": f"{out['stars'][0]}",
                 "parameters": "", "provenance": ""})
    weak = bool(out["weak"][0])
    rows.append({"step": "weak", "item": "軟弱渙散", "input": f"score {score:.2f}",
                 "result": "weak" if weak else "not weak",
                 "parameters": f"branch.weak_below={rules.weak_below:g}",
                 "provenance": policy.provenance("branch.weak_below")})
    prev = int(row["prev_weak"].iloc[0])
    talk, reorg, streak = branch_consequences(out["weak"], np.array([prev]), rules.reorganise_after)
    rows.append({"step": "consequence", "item": "talk / reorganisation",
                 "input": f"weak now: {weak}; weak years just before: {prev}",
                 "result": ("reorganise (組織調整)" if reorg[0] else "talk (提醒或誡勉談話)" if talk[0]
                            else "none") + f"; streak {streak[0]}",
                 "parameters": f"consequences.reorganise_after={rules.reorganise_after}",
                 "provenance": policy.provenance("consequences.reorganise_after")})
    need = required_level(row["n_members"].to_numpy(), policy)
    lvl = STRUCTURE_LEVELS[need["level"][0]]
    rows.append({"step": "structure", "item": "level called for by size",
                 "input": f"{int(row['n_members'].iloc[0])} members; now {row['level'].iloc[0]}",
                 "result": lvl + (" (upgrade)" if STRUCTURE_LEVELS.index(lvl)
                                  > STRUCTURE_LEVELS.index(row["level"].iloc[0]) else ""),
                 "parameters": ", ".join(f"structure.{k}={policy[f'structure.{k}']}" for k in
                                         ("general_branch_from", "party_committee_from")),
                 "provenance": policy.provenance("structure.general_branch_from")})
    return pd.DataFrame(rows, columns=_COLUMNS)


def _explain_member(policy: Policy, b, m, mm, member_id) -> pd.DataFrame:
    hit = np.flatnonzero((m["member_id"] == str(member_id)).to_numpy())
    if not len(hit):
        raise DataError(f"member_id {member_id!r} is not in the members table")
    mrow = m.iloc[hit[0]]
    months = mm[mm["member_id"] == mrow["member_id"]].sort_values("month")
    rules = compile_member_rules(policy)
    tid = b.loc[b["branch_id"] == mrow["branch_id"], "type"].iloc[0]
    t = np.full(len(months), rules.types.index(tid))
    facts = months[list(rules.indicators.facts)].to_numpy(float)
    pts = indicator_points(facts, t, rules.indicators)
    monthly = monthly_scores(facts, t, rules)
    inds = policy.member_indicators
    rows = _indicator_rows(policy, "member", tid, inds, facts.mean(axis=0), pts.mean(axis=0),
                           rules.indicators.max_points[t[0]], label_fact="mean monthly fact")
    rows.append({"step": "monthly scores", "item": "每月記實考評",
                 "input": ", ".join(f"{mo}: {s:.1f}" for mo, s in zip(months["month"], monthly)),
                 "result": f"mean {monthly.mean():.2f}", "parameters": "", "provenance": ""})
    annual = annual_scores(monthly, np.zeros(len(months), int), 1, np.array([mrow["appraisal"]]), rules)
    rows.append({"step": "annual score", "item": "年度考評得分",
                 "input": f"monthly mean {monthly.mean():.2f}, year-end appraisal {mrow['appraisal']:g}",
                 "result": f"{annual[0]:.2f} = {rules.monthly_share:g} × {monthly.mean():.2f} + "
                           f"{rules.appraisal_share:g} × {mrow['appraisal']:g}",
                 "parameters": f"member.monthly_share={rules.monthly_share:g}, "
                               f"member.appraisal_share={rules.appraisal_share:g}",
                 "provenance": policy.provenance("member.monthly_share")})
    grade = GRADES[member_grades(annual, rules)[0]]
    cuts = ", ".join(f"{g}>={c:g}" for g, c in zip(GRADES[1:], rules.grade_cuts))
    rows.append({"step": "grade", "item": "等次", "input": f"annual {annual[0]:.2f}", "result": grade,
                 "parameters": cuts, "provenance": policy.provenance("member.grade_cuts.warning")})
    action = {"warning": "mentoring (結對幫教)", "unqualified": "organisational handling (組織處置)"}
    rows.append({"step": "consequence", "item": "結果運用", "input": grade,
                 "result": action.get(grade, "none"), "parameters": "", "provenance": ""})
    return pd.DataFrame(rows, columns=_COLUMNS)


def explain(policy: Policy, data, *, branch_id=None, member_id=None) -> pd.DataFrame:
    """Each rule step for one branch or one member, with parameters and provenance.

    ``data`` is a population (anything with ``.branches``, ``.members`` and
    ``.member_months``) or a branches DataFrame. Pass ``branch_id`` or
    ``member_id``.

    Examples
    --------
    >>> import branchsim as bs, pandas as pd
    >>> b = pd.read_csv(bs.data_path("examples", "branches.csv"))
    >>> steps = bs.explain(bs.Policy.load(), b, branch_id=b["branch_id"][0])
    >>> steps["step"].iloc[-1]
    'structure'
    """
    if (branch_id is None) == (member_id is None):
        raise DataError("explain() takes exactly one of branch_id= or member_id=")
    if isinstance(data, pd.DataFrame):
        branches, members, months = data, None, None
    else:
        branches = getattr(data, "branches", None)
        members, months = getattr(data, "members", None), getattr(data, "member_months", None)
    if member_id is not None and (members is None or months is None):
        raise DataError("explaining a member needs the members and member_months tables")
    b, m, mm = check_tables(policy, branches, members if member_id is not None else None,
                            months if member_id is not None else None)
    if branch_id is not None:
        return _explain_branch(policy, b, branch_id)
    return _explain_member(policy, b, m, mm, member_id)
