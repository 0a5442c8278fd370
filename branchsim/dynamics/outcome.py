"""One year's evaluation under the scheme, with what carries over from the year before.

The measured arrays of a year (:mod:`.measure`) are scored on the whole
population at once with the core's rules (:func:`branchsim.evaluate.branch_outcome`,
:func:`branchsim.evaluate.member_outcome`), so relative designs (quotas,
clustering) rate each year on that year's scores, places (``last_place``,
``rank``) are counted among all units, and the result never depends on how
the measurement was chunked. What carries over (:class:`Carry`):

* the streaks (``prev_<id>``): consecutive years each designation, each
  criterion with ``years`` and each level a consequence follows has held —
  measured, and separately for the truth; members: each grade a member
  consequence with ``years`` follows;
* last year's cut points, which a design's ``guardrail`` reads
  (``branch_outcome(..., previous=last_cuts)``).

Year 0 of a population with measurements is scored by
:func:`branchsim.evaluate.evaluate_checked` itself, so it is the population
as :func:`branchsim.evaluate` rates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import rating as rt
from ..evaluate import BranchInputs, branch_outcome, evaluate_checked, member_outcome
from ..measurement import member_true_scores
from ..truth import truth, truth_arrays
from ..scheme import Scheme
from .evolve import eligible, select
from .measure import Context

__all__ = ["Carry", "streak_ids", "score_year", "from_result", "with_truth", "year_zero", "interventions"]


@dataclass
class Carry:
    """What a year hands the next: streaks (measured and true) and cut points (for the guardrail)."""

    prev: dict = field(default_factory=dict)
    true_prev: dict = field(default_factory=dict)
    cuts: pd.DataFrame | None = None
    true_cuts: pd.DataFrame | None = None
    m_prev: dict = field(default_factory=dict)
    m_cuts: pd.DataFrame | None = None
    m_true_cuts: pd.DataFrame | None = None

    def after(self, st: dict) -> "Carry":
        return Carry(st["streaks"], st["true_streaks"], st["cuts"], st["true_cuts"], st.get("m_streaks", {}),
                     st.get("m_cuts"), st.get("m_true_cuts"))


def streak_ids(scheme: Scheme) -> list[str]:
    """Ids whose streaks a branch outcome keeps (``<id>_streak``), in the order it adds them.

    >>> import branchsim as bs
    >>> s = bs.Policy.load().scheme
    >>> streak_ids(s) == [d.id for d in s.branch.designations]
    True
    """
    out = []
    for d in scheme.branch.designations:
        out += [c.id for c in d.criteria if c.years > 1] + [d.id]
    out += [c.target for c in scheme.consequences_of("branch") if c.kind != "designation"]
    return list(dict.fromkeys(out))


def _true_outcome(ctx: Context, tr, carry: Carry) -> dict:
    """The true branch outcome (the design on the true scores), with the true streaks of years before."""
    inp = BranchInputs(None, {}, ctx.type_idx, None, carry.true_prev, ctx.columns)
    return tr.outcome_arrays(ctx.scheme, inp, previous=carry.true_cuts)


def _rank_groups(ctx: Context) -> dict:
    inp = BranchInputs(None, {}, ctx.type_idx, None, {}, ctx.columns)
    return {w: inp.codes(w)[0] for w in {w for w in ctx.scheme.branch.sheet.within if w is not None}}


def _member_streaks(scheme: Scheme, grade: np.ndarray, graded: np.ndarray, m_prev: dict) -> dict:
    """Consecutive years each grade that a member consequence with ``years`` follows has held."""
    out = {}
    for c in scheme.consequences_of("member"):
        if c.years > 1 and c.target not in out:
            held = graded & ((grade <= c.code) if c.or_below else (grade == c.code))
            out[c.target] = rt.streak(held, m_prev.get(c.target))
    return out


def _true_veto_values(ctx: Context, m_facts: dict, n: int) -> np.ndarray:
    """What the member vetoes read in the truth: the members' state facts (others do not fire)."""
    ms = ctx.scheme.member
    cols = [m_facts[f] if f in m_facts and ms.fact_entries.get(f, {}).get("state") else np.full(n, np.nan)
            for f in ms.vetoes.fact]
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def _members(ctx: Context, st: dict, carry: Carry, meas: dict | None) -> None:
    """Member outcomes of a year into ``st`` (measured from ``meas``, unless year 0 filled them)."""
    ms, scheme = ctx.scheme.member, ctx.scheme
    groups, names = ctx.member_groups()
    if meas is not None:
        out = member_outcome(meas["record"], meas["appraisal"], ctx.m_profile, ms, scheme,
                             veto_values=meas["veto_values"], groups=groups, group_names=names,
                             previous=carry.m_cuts, prev=carry.m_prev)
        st.update(record=meas["record"], appraisal=meas["appraisal"], annual=out["annual"], grade=out["grade"],
                  m_consequences=out["consequences"], m_vetoes=out["vetoes"], m_cuts=out["cuts"])
    n = len(st["m_true"])
    tm = member_outcome(st["m_true"], st["m_true"], ctx.m_profile, ms, scheme,
                        veto_values=_true_veto_values(ctx, st["m_facts"], n), groups=groups, group_names=names,
                        previous=carry.m_true_cuts)
    st.update(true_grade=tm["grade"], m_true_cuts=tm["cuts"],
              m_streaks=_member_streaks(scheme, st["grade"], ~ms.exempt[ctx.m_profile], carry.m_prev))


def score_year(ctx: Context, meas: dict, carry: Carry) -> dict:
    """Score one year's measurements (whole population): measured and true outcomes, member grades."""
    scheme, bs = ctx.scheme, ctx.scheme.branch
    tr = truth_arrays(meas["q"], ctx.type_idx, meas["state"], ctx.b_off, ctx.params, scheme,
                      rank_groups=_rank_groups(ctx))
    true = _true_outcome(ctx, tr, carry)
    if ctx.noise:
        facts = meas["facts"]
        values = {f: facts[:, j] for j, f in enumerate(bs.sheet.facts)}
        values.update(meas["declared"])
        inp = BranchInputs(facts, values, ctx.type_idx, meas["survey"] if bs.survey else None, carry.prev,
                           ctx.columns)
        out = branch_outcome(inp, scheme, previous=carry.cuts)
    else:                                     # measured exactly: the truth, vetoes included
        out = true
    st = _branch_state(meas["q"], out, true)
    if ctx.members:
        st.update(qm=meas["qm"], m_true=meas["m_true"], m_facts=meas["m_facts"])
        _members(ctx, st, carry, meas)
    return st


def _branch_state(q, out: dict, true: dict) -> dict:
    return {"q": q, "score": out["score"], "level": out["level"], "designations": out["designations"],
            "streaks": out["streaks"], "consequences": out["consequences"], "cuts": out["cuts"],
            "true_score": true["score"], "true_level": true["level"], "true_designations": true["designations"],
            "true_streaks": true["streaks"], "true_cuts": true["cuts"]}


def from_result(res, scheme: Scheme, m_perm: np.ndarray | None = None) -> dict:
    """The measured part of a year's state from an evaluation's :class:`~branchsim.Result` (members in ``m_perm`` order)."""
    bs = scheme.branch
    f = res.branches
    code = {lv: bs.levels.code(lv) for lv in bs.levels.ids}
    st = {"score": f["score"].to_numpy(float), "level": f["rating"].map(code).to_numpy(np.int8),
          "designations": {d.id: f[d.id].to_numpy(bool) for d in bs.designations},
          "streaks": {i: f[f"{i}_streak"].to_numpy(np.int64) for i in streak_ids(scheme)},
          "consequences": {c.id: f[c.id].to_numpy(bool) for c in scheme.consequences_of("branch")},
          "cuts": res.cut_points}
    if res.members is not None and scheme.member is not None:
        ms = scheme.member
        mf = res.members if m_perm is None else res.members.iloc[m_perm]
        gcode = {g: ms.grades.code(g) for g in ms.grades.ids}
        st.update(record=mf["record"].to_numpy(float), appraisal=mf["appraisal"].to_numpy(float),
                  annual=mf["annual"].to_numpy(float),
                  grade=mf["grade"].map(gcode).fillna(-1).to_numpy(np.int8),
                  m_consequences={c.id: mf[c.id].to_numpy(bool) for c in scheme.consequences_of("member")},
                  m_vetoes_text=mf["vetoes"].to_numpy() if "vetoes" in mf else None, m_cuts=res.member_cut_points)
    return st


def with_truth(ctx: Context, st: dict, pop, carry: Carry) -> dict:
    """Add the truth of a population with truth (its true qualities and states) to a year's state."""
    true = _true_outcome(ctx, truth(pop, ctx.policy), carry)
    st.update(q=pop.branches["true_quality"].to_numpy(float), true_score=true["score"], true_level=true["level"],
              true_designations=true["designations"], true_streaks=true["streaks"], true_cuts=true["cuts"])
    if ctx.members and "record" in st:
        ms = ctx.scheme.member
        qm = pop.members["true_quality"].to_numpy(float)[ctx.m_perm]
        st.update(qm=qm, m_true=member_true_scores(qm, ctx.m_profile, ms, ctx.m_off), m_facts=ctx.m_facts0)
        _members(ctx, st, carry, None)
    return st


def year_zero(ctx: Context, pop, carry: Carry, chunk_size: int | None) -> dict:
    """Year 0 with noise: the population's own measurements, rated as :func:`branchsim.evaluate` rates them."""
    m, mm = (pop.members, pop.member_months) if ctx.members else (None, None)
    res = evaluate_checked(ctx.policy, pop.branches, m, mm, chunk_size=chunk_size)
    return with_truth(ctx, from_result(res, ctx.scheme, ctx.m_perm), pop, carry)


def interventions(scheme: Scheme, st: dict, draw=None) -> dict[str, np.ndarray]:
    """Units each intervention reaches on this year's evaluation.

    ``draw(j)`` gives one uniform per branch for the ``j``-th random
    intervention; without it (a replay: nothing is drawn) random ones are left out.
    """
    out, j = {}, 0
    for iv in scheme.interventions:
        u = None
        if iv.select == "random":
            if draw is None:
                continue
            if 0 < iv.coverage < 1:
                u = draw(j)
            j += 1
        out[iv.id] = select(iv, st["score"], eligible(iv, st["level"], st["designations"]), u)
    return out
