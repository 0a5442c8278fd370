"""Report sections on what the stars rest on: the assumptions, the members, the two-year rule.

Each returns a :class:`~branchsim._report_sections.Section` for
:func:`branchsim.report.write_report`. Small counts carry their n: a rate is
printed with the number of units (or unit-years) it is a share of.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._report_assumptions import RULE_TEXT, deciding_assumptions
from ._report_sections import HISTORIES, Section, _cells, _n, _pct
from .policy import Policy
from .population import Population

__all__ = ["assumptions", "members", "two_year_rule", "HISTORIES"]


def _of(k, n, what: str) -> str:
    """``"12.5% (n = 8 truly weak branch-years)"``: a rate and the count it is a share of."""
    return f"{_pct(k / n) if n else '–'} (n = {_n(n)} {what})"


def assumptions(pop: Population, policy: Policy) -> Section:
    """Every assumed parameter that decides a star, a grade or a designation of this population."""
    d = deciding_assumptions(pop, policy)
    s = Section("assumptions", "Assumptions this outcome depends on", tables={"assumptions.csv": d})
    n_all = len(policy.parameters())
    dec = d[d["decides"]]
    units = "branches and members" if pop.members is not None else "branches"
    s.p(f"Of the policy's {_n(n_all)} parameters, {_n(n_all - len(d))} are quoted from the source and "
        f"{_n(len(d))} are recorded as an assumption: a modelling choice with a stated reason, not a "
        f"rule the source states. {_n(len(dec))} of these assumptions decide a star, a grade or a "
        f"designation of these {units}; they are listed below with their value and reason.")
    s.p("How this is decided: " + RULE_TEXT,
        f"The other {_n(len(d) - len(dec))} assumptions change nothing here (the effects of consequences "
        "and interventions act only on later years of a simulation; other thresholds have no unit near "
        "them); all are in assumptions.csv with the column 'decides'.")
    if pop.members is None:
        s.p("This population has no members, so member rules (grade lines, member indicators, the "
            "monthly and year-end shares) cannot change anything here and are not listed.")
    show = dec[["path", "value", "moved_to", "branches_changed", "members_changed", "reason"]]
    show = _cells(show, {"path": "assumption (parameter)", "moved_to": "moved to",
                         "branches_changed": "branches changed", "members_changed": "members changed"})
    s.table(show, f"The {_n(len(dec))} assumptions that decide the outcome, in the policy's order "
                  f"(units changed by the move)")
    return s


def _member_truth(pop: Population, policy: Policy):
    """The grade each member's true score earns (None without the truth)."""
    if not (pop.has_truth and pop.params is not None and pop.seed is not None
            and "true_quality" in pop.members.columns):
        return None
    # The true score as dynamics.measure.observed_year computes it (m_true; tested equal), without
    # scoring the member-months again: a member's noise-free score from its quality.
    from .measurement import _indicator_offsets, member_true_scores
    from .scoring import GRADES, compile_member_rules, member_grades, type_codes
    mrules = compile_member_rules(policy)
    b, m = pop.branches, pop.members
    t = type_codes(b["type"], mrules.types, policy.name)
    owner = pd.Index(b["branch_id"]).get_indexer(m["branch_id"])
    off = _indicator_offsets(pop.seed, mrules.indicators, pop.params.values["measurement"]["indicator_spread"], 1)
    m_true = member_true_scores(m["true_quality"].to_numpy(float), t[owner], mrules, off)
    return np.array(GRADES, dtype=object)[member_grades(m_true, mrules)]


def members(pop: Population, policy: Policy, r) -> Section:
    """Member grades under the monthly and year-end rule, and against the truth when it is known."""
    s = Section("members", "Members: grades under the monthly and year-end rule")
    if r.members is None:
        s.p("This population has no members, so no member grades are shown.")
        return s
    ms, ap = policy["member.monthly_share"], policy["member.appraisal_share"]
    cuts = policy["member.grade_cuts"]
    g = r.grade_counts()
    n = int(g.sum())
    lines = ", ".join(f"{k} from {v['value']:g}" for k, v in sorted(cuts.items(), key=lambda kv: -kv[1]["value"]))
    s.p(f"Each member's annual score is {_pct(ms, 0)} the mean of the monthly records and {_pct(ap, 0)} the "
        f"year-end appraisal; the grade lines are {lines} (below the lowest: {g.index[-1]}).",
        f"Of {_n(n)} members, " + ", ".join(f"{_n(v)} are {k} ({_pct(v / n)})" for k, v in g.items()) + ".",
        f"{_n(r.members['mentoring'].sum())} member(s) get mentoring and "
        f"{_n(r.members['handling'].sum())} organisational handling.")
    table = pd.DataFrame({"grade": g.index, "members": g.to_numpy(), "share": g.to_numpy() / n})
    true = _member_truth(pop, policy)
    if true is not None:
        got = r.members["grade"].to_numpy()
        wrong = got != true
        tc = pd.Series(true).value_counts().reindex(g.index, fill_value=0)
        mis = pd.Series(wrong).groupby(true).sum().reindex(g.index, fill_value=0)
        table["truly"] = tc.to_numpy()
        table["misgraded_among_truly"] = mis.to_numpy()
        table["misgraded_share"] = np.where(tc > 0, mis / tc.where(tc > 0, 1), np.nan)
        worst = table[table["truly"] > 0].sort_values(["misgraded_share", "grade"], ascending=[False, True])
        w = worst.iloc[0]
        s.p(f"The population is generated, so each member's true score is known: {_pct(1 - wrong.mean())} of "
            f"the {_n(n)} members get the grade their true score earns and {_n(wrong.sum())} are misgraded.",
            f"Misgrading is most frequent among truly {w['grade']} members: "
            f"{_of(w['misgraded_among_truly'], w['truly'], f'truly {w.grade} members')}.")
    s.tables["member_grades.csv"] = table
    show = table.copy()
    show["share"] = show["share"].map(_pct)
    if "misgraded_share" in show:
        show["misgraded_share"] = show["misgraded_share"].map(_pct)
    s.table(_cells(show, {"truly": "truly of this grade", "misgraded_among_truly": "of them misgraded",
                          "misgraded_share": "misgraded share"}),
            f"Members per grade ({_n(n)} members)" + ("; against the grade of the true score" if true is not None
                                                    else ""))
    return s


def two_year_rule(pop: Population, policy: Policy, *, years: int, seed) -> Section:
    """The consecutive-years rule over simulated years: reorganisations, false alarms, misses."""
    s = Section("two_year", f"The {policy['consequences.reorganise_after']}-year rule over {years} years")
    if not (pop.has_truth and pop.params is not None and pop.seed is not None):
        s.p("Not available for this population: simulating later years needs its truth (a generated "
            "population, or one saved with Population.save).")
        return s
    from .dynamics import simulate
    branches_only = Population(pop.branches, seed=pop.seed, params=pop.params, source=pop.source)
    frames = []
    for h, child in enumerate(np.random.SeedSequence(seed).spawn(HISTORIES)):
        acc = simulate(branches_only, policy, years=years, seed=child, members=False).accuracy()
        frames.append(acc.reset_index().assign(history=h))
    per = pd.concat(frames, ignore_index=True)
    per = per[["history", "year"] + [c for c in per.columns if c not in ("history", "year")]]
    s.tables["two_year_rule.csv"] = per
    t = per[["reorganisations", "false_alarms", "truly_weak", "missed", "designated_weak", "false_weak"]].sum()
    k = policy["consequences.reorganise_after"]
    by = len(pop.branches) * years * HISTORIES
    s.p(f"A branch designated weak {k} years in a row is reorganised (consequences.reorganise_after = {k}). "
        f"The branches are simulated for {years} years (year 0 as measured), {HISTORIES} times with "
        f"independent futures: {_n(by)} branch-years. Qualities evolve, each year is measured afresh, and "
        f"consequences and interventions act on the next year (effect sizes are assumptions of the policy).",
        f"Reorganisations: {_n(t['reorganisations'])}; of them reorganised while truly fine: "
        f"{_of(t['false_alarms'], t['reorganisations'], 'reorganisations')}.",
        f"Truly weak branch-years not designated weak: "
        f"{_of(t['missed'], t['truly_weak'], 'truly weak branch-years')}; designated weak but truly fine: "
        f"{_of(t['false_weak'], t['designated_weak'], 'weak designations')}.")
    show = per.groupby("year")[["reorganisations", "false_alarms", "truly_weak", "missed", "designated_weak",
                                "false_weak"]].sum().reset_index()
    s.table(_cells(show, {"false_alarms": "false alarms", "truly_weak": "truly weak",
                          "designated_weak": "designated weak", "false_weak": "false weak"}),
            f"Counts per year, summed over {HISTORIES} histories ({_n(len(pop.branches) * HISTORIES)} "
            f"branch-years a year)")
    return s
