"""Report sections on what the levels rest on: the assumptions, the members, the consecutive-years rules.

Each returns a :class:`~branchsim._report_sections.Section` for
:func:`branchsim.report.write_report`. Small counts carry their n: a rate is
printed with the number of units (or unit-years) it is a share of. Names
come from the policy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._report_assumptions import RULE_TEXT, deciding_assumptions
from ._report_sections import HISTORIES, Section, _cells, _n, _pct, cut_text, name
from .policy import Policy
from .population import Population, member_truth

__all__ = ["assumptions", "members", "consecutive_years", "member_truth", "HISTORIES"]


def _of(k, n, what: str) -> str:
    """``"12.5% (n = 8 truly weak branch-years)"``: a rate and the count it is a share of."""
    return f"{_pct(k / n) if n else '–'} (n = {_n(n)} {what})"


def assumptions(pop: Population, policy: Policy) -> Section:
    """Every assumed parameter that decides a level, a designation, a consequence or a grade here."""
    d = deciding_assumptions(pop, policy)
    s = Section("assumptions", "Assumptions this outcome depends on", tables={"assumptions.csv": d})
    n_all = len(policy.parameters())
    dec = d[d["decides"]]
    units = "branches and members" if pop.members is not None and policy.has_members else "branches"
    s.p(f"Of the policy's {_n(n_all)} parameters, {_n(n_all - len(d))} are quoted from the source and "
        f"{_n(len(d))} are recorded as an assumption: a modelling choice with a stated reason, not a "
        f"rule the source states. {_n(len(dec))} of these assumptions decide a level, a designation, a "
        f"consequence or a grade of these {units}; they are listed below with their value and reason.")
    s.p("How this is decided: " + RULE_TEXT,
        f"The other {_n(len(d) - len(dec))} assumptions change nothing here (the effects of consequences "
        "and interventions act only on later years of a simulation; other thresholds have no unit near "
        "them); all are in assumptions.csv with the column 'decides'.")
    if policy.has_members and pop.members is None:
        s.p("This population has no members, so member rules (grade lines, member indicators, the record "
            "and appraisal shares) cannot change anything here.")
    show = dec[["path", "value", "moved_to", "branches_changed", "members_changed", "reason"]]
    show = _cells(show, {"path": "assumption (parameter)", "moved_to": "moved to",
                         "branches_changed": "branches changed", "members_changed": "members changed"})
    s.table(show, f"The {_n(len(dec))} assumptions that decide the outcome, in the policy's order "
                  f"(units changed by the move)")
    return s


def _record_text(ms) -> str:
    periods = {12: "monthly", 4: "quarterly", 2: "half-yearly", 1: "yearly"}.get(ms.periods, f"{ms.periods} period")
    return (f"the mean of the {ms.periods} {periods} record scores" if ms.accrual == "mean" else
            f"the year's {periods} facts added up and scored once")


def members(pop: Population, policy: Policy, r) -> Section:
    """Member grades (exempt members apart), their consequences, and against the truth when it is known."""
    s = Section("members", "Members: grades")
    if not policy.has_members:
        s.p(f"Policy '{policy.name}' rates branches only: it has no member section, so no member is graded.")
        return s
    if r.members is None:
        s.p("This population has no members, so no member grades are shown.")
        return s
    ms = policy.scheme.member
    g = r.grade_counts()
    exempt = int(g.get("exempt", 0))
    graded = g.drop("exempt", errors="ignore")
    n = int(graded.sum())
    mc = r.member_cut_points
    lines = (f"the grade lines are {cut_text(mc, policy, ms.grades.ids)}"
             if ms.rating.design == "cuts" and mc is not None and len(mc)
             else f"grades are set by {ms.rating.design}")
    if ms.classes:
        by_class = ms.exempt.reshape(len(ms.types), len(ms.classes)).any(axis=0)
        exempt_classes = [c for c, ex in zip(ms.classes, by_class) if ex]
    else:
        exempt_classes = []
    s.p(f"Each member's annual score is {_pct(ms.record_share, 0)} {_record_text(ms)} and "
        f"{_pct(ms.appraisal_share, 0)} the year-end appraisal; {lines} (below the lowest: "
        f"{name(ms.grades.ids[-1], policy)}).",
        f"Of {_n(n)} graded members, " + ", ".join(f"{_n(v)} are {name(k, policy)} ({_pct(v / n if n else np.nan)})"
                                                   for k, v in graded.items()) + ".",
        f"{_n(exempt)} members belong to a class exempt from grading "
        f"({', '.join(name(c, policy, 'class') for c in exempt_classes)}): they get no grade and no consequence."
        if exempt else "")
    cons = [c for c in policy.scheme.consequences_of("member") if c.id in r.members]
    if cons:
        s.p(" ".join(f"{_n(r.members[c.id].sum())} member(s) face {name(c.id, policy)}." for c in cons))
    table = pd.DataFrame({"grade": graded.index, "members": graded.to_numpy(), "share": graded.to_numpy() / max(n, 1)})
    true = member_truth(pop, policy)
    if true is not None:
        got = r.members["grade"].to_numpy(object)
        rated = pd.notna(true) & pd.notna(got)
        wrong = rated & (got != true)
        tc = pd.Series(true[rated]).value_counts().reindex(graded.index, fill_value=0)
        mis = pd.Series(wrong[rated]).groupby(true[rated]).sum().reindex(graded.index, fill_value=0)
        table["truly"] = tc.to_numpy()
        table["misgraded_among_truly"] = mis.to_numpy()
        table["misgraded_share"] = np.where(tc > 0, mis / tc.where(tc > 0, 1), np.nan)
        worst = table[table["truly"] > 0].sort_values(["misgraded_share", "grade"], ascending=[False, True],
                                                      kind="stable")
        right = 1 - wrong.sum() / max(rated.sum(), 1)
        s.p(f"The population is generated, so each member's true score is known: {_pct(right)} of the "
            f"{_n(rated.sum())} graded members get the grade their true score earns and {_n(wrong.sum())} are "
            "misgraded.")
        if len(worst):
            w = worst.iloc[0]
            what = f"truly {name(w['grade'], policy)} members"
            s.p(f"Misgrading is most frequent among {what}: {_of(w['misgraded_among_truly'], w['truly'], what)}.")
    if exempt:
        table = pd.concat([table, pd.DataFrame({"grade": ["exempt"], "members": [exempt], "share": [np.nan]})],
                          ignore_index=True)
    s.tables["member_grades.csv"] = table
    show = table.assign(grade=[name(k, policy) for k in table["grade"]], share=table["share"].map(_pct))
    if "misgraded_share" in show:
        show["misgraded_share"] = show["misgraded_share"].map(_pct)
    s.table(_cells(show, {"truly": "truly of this grade", "misgraded_among_truly": "of them misgraded",
                          "misgraded_share": "misgraded share"}),
            f"Members per grade ({_n(n)} graded)" + ("; against the grade of the true score" if true is not None
                                                     else ""))
    return s


def _truly(c, b: pd.DataFrame, policy: Policy):
    """Whether each branch-year truly meets a consequence's condition (None without the truth)."""
    if c.kind == "designation":
        col = f"true_{c.target}"
        return b[col].to_numpy(bool) if col in b else None
    if "true_rating" not in b:
        return None
    codes = {lv: policy.scheme.branch.levels.code(lv) for lv in policy.levels}
    true = b["true_rating"].map(codes).to_numpy(float)
    return (true <= c.code) if c.or_below else (true == c.code)


def consecutive_years(pop: Population, policy: Policy, *, years: int, seed) -> Section:
    """Each consequence that follows a condition held several years in a row, over simulated years."""
    rules = [c for c in policy.scheme.consequences_of("branch") if c.years > 1]
    s = Section("consecutive_years", f"Consecutive-years rules over {years} years")
    if not rules:
        s.p(f"No branch consequence of policy '{policy.name}' follows a condition held several years in a row "
            "(no consequence has 'years' above 1), so no years are simulated.")
        return s
    if not (pop.has_truth and pop.params is not None and pop.seed is not None):
        s.p("Not available for this population: simulating later years needs its truth (a generated "
            "population, or one saved with Population.save).")
        return s
    from .dynamics import simulate
    branches_only = Population(pop.branches, seed=pop.seed, params=pop.params, source=pop.source)
    frames = []
    for h, child in enumerate(np.random.SeedSequence(seed).spawn(HISTORIES)):
        b = simulate(branches_only, policy, years=years, seed=child, members=False).branches
        for c in rules:
            fired = b[c.id].to_numpy(bool)
            truly = _truly(c, b, policy)
            row = pd.DataFrame({"history": h, "year": b["year"].to_numpy(), "rule": c.id, "fired": fired})
            if truly is not None:
                row["false_alarms"] = fired & ~truly
                if c.kind == "designation" and c.target in b:
                    held = b[c.target].to_numpy(bool)
                    row = row.assign(truly=truly, missed=truly & ~held, designated=held,
                                     false_designations=held & ~truly)
            frames.append(row)
    per = pd.concat(frames, ignore_index=True).groupby(["history", "year", "rule"], sort=False).sum().reset_index()
    s.tables["consecutive_years.csv"] = per
    by = len(pop.branches) * years * HISTORIES
    s.p(f"The branches are simulated for {years} years (year 0 as measured), {HISTORIES} times with independent "
        f"futures: {_n(by)} branch-years. Qualities evolve, each year is measured afresh, and consequences and "
        "interventions act on the next year (effect sizes are assumptions of the policy).")
    for c in rules:
        t = per[per["rule"] == c.id].drop(columns=["history", "year", "rule"]).sum()
        cond = name(c.target, policy) + (" or below" if c.or_below else "")
        when = f"designated {cond}" if c.kind == "designation" else f"rated {cond}"
        path = f"consequences.{c.id}.when.years"
        s.p(f"{name(c.id, policy)}: a branch {when} {c.years} years in a row ({path} = {c.years}). "
            f"It follows {_n(t['fired'])} times"
            + (f"; of them while the branch was not truly {cond}: "
               f"{_of(t['false_alarms'], t['fired'], 'decisions')}." if "false_alarms" in t and t["fired"] else "."),
            (f"Truly {name(c.target, policy)} branch-years not designated: "
             f"{_of(t['missed'], t['truly'], 'truly ' + name(c.target, policy) + ' branch-years')}; designated but "
             f"not truly: {_of(t['false_designations'], t['designated'], 'designations')}." if "missed" in t else ""))
    show = per.drop(columns="history").groupby(["rule", "year"], sort=False).sum().reset_index()
    show["rule"] = [name(r, policy) for r in show["rule"]]
    s.table(_cells(show, {"false_alarms": "false alarms", "false_designations": "false designations"}),
            f"Counts per year, summed over {HISTORIES} histories ({_n(len(pop.branches) * HISTORIES)} "
            f"branch-years a year)")
    return s
