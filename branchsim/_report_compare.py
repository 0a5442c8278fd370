"""Report sections on how far a level can be trusted and what a reform changes.

:func:`measurement` (the measurement Monte Carlo: how often a branch gets a
level other than the one its true quality earns, how often a designation is
wrong) and :func:`comparison` (the policy against a reform) return a
:class:`~branchsim._report_sections.Section` for
:func:`branchsim.report.write_report`. Names come from the policy.
"""
from __future__ import annotations

import pandas as pd

from ._report_sections import _HEAD, Section, _branches, _cells, _n, _new_figure, _pct, _units, name
from .policy import Policy
from .population import Population

__all__ = ["measurement", "comparison"]


def measurement(pop: Population, policy: Policy, *, draws: int, seed, sizes) -> Section:
    """Monte Carlo over measurement noise with the truth fixed (generated populations only)."""
    from . import plot as bp
    from .sensitivity import measurement_mc
    s = Section("measurement", "Measurement uncertainty: how reliable is a level?")
    if not (pop.has_truth and pop.params is not None and pop.seed is not None):
        s.p("Not available for this population: its tables carry no truth (true quality, the generator's "
            "seed and parameters), so the measurement cannot be drawn again. Run the report on a generated "
            "population, or on one saved with Population.save, to include this section.")
        return s
    mc = measurement_mc(pop, policy, draws=draws, seed=seed, survey_sizes=list(sizes) if sizes else None,
                        progress=False)
    mis, de = mc.misclassification, mc.designation_errors
    s.tables["measurement_uncertainty.csv"] = mis
    s.tables["measurement_designations.csv"] = de
    base = mc.baseline_size
    at = mis.set_index("survey_size") if "survey_size" in mis else mis.assign(survey_size=base).set_index("survey_size")
    b = at.loc[base]
    others = [f"{_pct(at.loc[z, 'misclassified'])} with {z}" for z in mc.survey_sizes if z != base]
    what = "indicator records and the survey" if policy.has_survey else "indicator records"
    s.p(f"The measurement — {what} — is drawn again {_n(draws)} times, each branch's true quality held fixed"
        + (f"; the generator's survey has {base} respondents per branch" if policy.has_survey else "")
        + f". {_pct(b['misclassified'])} of branch-draws get a level other than the one their true quality "
          f"earns ({_pct(b['too_high'])} too high, {_pct(b['too_low'])} too low)"
        + (f"; the share is {' and '.join(others)} respondents." if others else "."))
    probs = mc.level_probabilities
    unsure = int((probs["p_true"] < 0.5).sum())
    errs = de[de["survey_size"] == base] if "survey_size" in de else de
    for row in errs.itertuples(index=False):
        d = name(row.designation, policy)
        miss = (f"no branch is truly {d}, so there is no miss rate" if not row.truly else
                f"a branch the truth designates escapes in {_pct(row.miss_rate)} of draws "
                f"(n = {_units(row.truly, 'branch')} × {_n(draws)} draws)")
        s.p(f"{d}: a branch the truth does not designate is designated in {_pct(row.false_alarm_rate, 2)} of "
            f"draws (n = {_units(row.truly_not, 'branch')} × {_n(draws)} draws); {miss}.")
    s.p(f"{_n(unsure)} of {_n(len(probs))} branches get their true level in fewer than half of the draws.")
    cs = mc.count_summary()
    cs = cs[(cs["survey_size"] == base) & cs["measure"].isin([*mc.levels, *mc.designations, "accuracy"])]
    by = cs.set_index("measure")
    spans = [f"of {name(m, policy)} branches over {by.loc[m, 'q05']:.0f}–{by.loc[m, 'q95']:.0f} (true: "
             f"{by.loc[m, 'true']:.0f})" for m in [mc.levels[0], *mc.designations] if m in by.index]
    if spans:
        s.p("From draw to draw (5–95% of draws) the count " + "; the count ".join(spans) + ".")
    show = mis[[c for c in ("survey_size", "misclassified", "too_high", "too_low") if c in mis]].copy()
    for c in ("misclassified", "too_high", "too_low"):
        show[c] = show[c].map(lambda v: _pct(v, 2))
    if not policy.has_survey:       # one measurement only: no respondents to vary
        show = show.drop(columns=["survey_size"], errors="ignore")
    s.table(_cells(show, _HEAD), ("Misclassified branches by survey size" if policy.has_survey else
                                  "Misclassified branches") + f" (shares of branch-draws over {_n(draws)} draws)")
    if len(de):
        dshow = de.assign(designation=[name(d, policy) for d in de["designation"]])
        if not policy.has_survey:
            dshow = dshow.drop(columns=["survey_size"], errors="ignore")
        for c in ("false_alarm_rate", "miss_rate"):
            dshow[c] = dshow[c].map(lambda v: _pct(v, 2))
        s.table(_cells(dshow, {**_HEAD, "truly": "n truly", "truly_not": "n truly not",
                               "false_alarm_rate": "false alarms", "miss_rate": "misses"}),
                ("Designations by survey size" if policy.has_survey else "Designations")
                + " (false alarms among branches the truth does not designate, misses among those it does, "
                  "each with its number of branches)")
    cshow = cs[["measure", "true", "mean", "q05", "median", "q95"]].copy()
    acc = cs["measure"].eq("accuracy").to_numpy()
    cshow["measure"] = [name(m, policy) for m in cs["measure"]]
    for c in ("true", "mean", "q05", "median", "q95"):
        cshow[c] = ["–" if a and c == "true" else _pct(v) if a else f"{v:,.0f}" if c == "true" else f"{v:,.1f}"
                    for v, a in zip(cs[c], acc)]
    s.table(cshow, f"Counts over {_n(draws)} draws" + (f" at {base} respondents" if policy.has_survey else "")
            + ": mean and 5/50/95% quantiles")
    nb = min(30, len(probs))
    fig = _new_figure((7.0, max(3.0, 0.2 * nb + 1.6)))
    bp.level_probabilities(probs, n=nb, ax=fig.add_subplot(), policy=policy)
    s.figure(fig, f"Chance of each level for the {nb} branches least likely to get their true level "
                  f"(diamond: the true level).")
    return s


def comparison(pop: Population, policy: Policy, reform: Policy, reform_src: str = "") -> Section:
    """The reform against the policy: what differs, transitions, movers, designations gained and lost."""
    from . import plot as bp
    from ._commands import comparison_tables
    from .sensitivity import compare
    c = compare(pop, policy, reform)
    tables = comparison_tables(c)
    s = Section("comparison", "The reform against the policy",
                tables={"comparison_transitions.csv": tables["transitions.csv"],
                        "comparison_movers.csv": c.movers, "comparison_designations.csv": tables["designations.csv"],
                        "policy_diff.csv": c.diff})
    n = len(c.baseline.branches)
    which = f"The reform ('{reform.name}'" + (f", {reform_src})" if reform_src else ")")
    if c.diff.empty:
        s.p(f"{which} has the same parameters and structure as the policy '{policy.name}': nothing changes.")
        return s
    ch = c.movers["change"].to_numpy(float)
    regraded = 0 if c.members_changed is None else len(c.members_changed)
    structural = int((c.diff["provenance"] == "structure").sum()) if "provenance" in c.diff else 0
    gained = [f"{_branches((c.newly_designated['designation'] == d).sum(), 'become')} {name(d, policy)}"
              for d in pd.unique(c.newly_designated["designation"])]
    lost = [f"{_branches((c.no_longer_designated['designation'] == d).sum(), 'are')} no longer {name(d, policy)}"
            for d in pd.unique(c.no_longer_designated["designation"])]
    cons = c.new_consequences.groupby("consequence", sort=False).size() if len(c.new_consequences) else {}
    s.p(f"{which} changes {len(c.diff) - structural} parameter(s) and {structural} structural choice(s) of "
        f"'{policy.name}', listed below. Under it {_n(len(ch))} of {_n(n)} branches ({_pct(len(ch) / n)}) "
        f"change level" + (f": {_n((ch > 0).sum())} move up and {_n((ch < 0).sum())} down." if len(ch) else "."),
        "; ".join(gained + lost) + "." if gained or lost else "No branch gains or loses a designation.",
        ("New consequences: " + "; ".join(f"{name(k, policy)} for {_n(v)} unit(s)" for k, v in cons.items()) + "."
         if len(cons) else "No unit faces a new consequence."),
        f"{_n(regraded)} member(s) change grade." if c.members_changed is not None else "")
    lc = c.level_counts()
    moved = [f"{name(m, policy)} {_n(r['baseline'])} → {_n(r['reform'])}" for m, r in lc.iterrows() if r["change"]]
    if moved:
        s.p("Counts that change: " + "; ".join(moved) + ".")
    s.table(_cells(c.diff), "What the reform changes (provenance as recorded in the reform)")
    lc = lc.reset_index()
    lc["level"] = [name(m, policy) for m in lc["level"]]
    s.table(_cells(lc), "Branches per level and designation, under each policy")
    tab = c.transitions.copy()
    tab.index = [name(k, policy) for k in tab.index]
    tab.columns = [name(k, reform) for k in tab.columns]
    tab = tab.rename_axis(index="policy \\ reform", columns=None).reset_index()
    s.table(_cells(tab), "Transitions: level under the policy (rows) and under the reform (columns)")
    fig = _new_figure((5.8, 4.8))
    bp.transitions(c, ax=fig.add_subplot(), policy=policy)
    s.figure(fig, "Transition matrix; the framed diagonal holds the branches that keep their level.")
    if len(c.newly_designated):
        nd = c.newly_designated.head(20).round({"old_score": 2, "new_score": 2})
        nd = nd.assign(designation=[name(d, policy) for d in nd["designation"]])
        s.table(_cells(nd, _HEAD), f"Newly designated branches ({_n(len(c.newly_designated))}"
                                   + (", the first 20)" if len(c.newly_designated) > 20 else ")"))
    return s
