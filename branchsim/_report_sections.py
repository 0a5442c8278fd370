"""The sections of :func:`branchsim.report.write_report`: numbers, prose, figures and the page.

Each section function runs one analysis and returns a :class:`Section`: its
HTML (prose written from the numbers, tables, embedded figures) and the
tidy frames written beside the page as CSV; :mod:`branchsim.report`
assembles the page.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .evaluate import PUBLISHED_TOLERANCE, STAR_NAMES, _published, at_published_scale
from .policy import Policy
from .population import Population, evaluate

__all__ = ["Section", "outcome", "sweep", "fragility", "measurement", "comparison", "transitions_long",
           "run_rows"]

LEVEL_TEXT = {5: "five-star", 4: "four-star", 3: "three-star", 2: "two-star", 1: "one-star", 0: "no star"}
_ROW_TEXT = {**{STAR_NAMES[k]: v for k, v in LEVEL_TEXT.items()}, "weak": "weak (軟弱渙散)",
             "upgrade_party_committee": "upgrade to party committee",
             "upgrade_general_branch": "upgrade to general branch"}
_LEVEL_OF = {v: k for k, v in STAR_NAMES.items()}
_HEAD = {**{STAR_NAMES[k]: v for k, v in LEVEL_TEXT.items()}, "changed": "changed star",
         "cut_kind": "cut", "cut": "points", "within": "within ±δ", "below": "just below",
         "at_or_above": "at or just above", "survey_size": "respondents", "false_alarm_rate": "false alarms",
         "miss_rate": "misses", "too_high": "too high", "too_low": "too low", "old_score": "score before",
         "new_score": "score after", "old_stars": "stars before", "new_stars": "stars after"}
SWEEP_SHARES = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
FRAGILITY_DELTA = 1.0


@dataclass
class Section:
    """One part of the report: an anchor, a title, HTML blocks and the CSV tables behind them."""

    id: str
    title: str
    blocks: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def p(self, *sentences: str) -> None:
        text = " ".join(s for s in sentences if s)
        if text:
            self.blocks.append(f"<p>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, caption: str, *, index: bool = False) -> None:
        body = df.to_html(index=index, border=0, classes="t", na_rep="–", escape=True)
        self.blocks.append(f"<div class='tw'><p class='cap'>{html.escape(caption)}</p>{body}</div>")

    def figure(self, fig, caption: str) -> None:
        self.blocks.append(f"<figure><img alt='{html.escape(caption, quote=True)}' "
                           f"src='data:image/png;base64,{_png(fig)}'>"
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")


# -- formatting ---------------------------------------------------------------------------------
def _n(x) -> str:
    return f"{int(x):,}"


def _pct(x, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _share(x) -> str:
    """A satisfaction share as a percentage without needless decimals (40%, 32.5%)."""
    return f"{100 * x:.4g}%"


def _branches(k, verb: str = "") -> str:
    """``"1 branch becomes"`` / ``"3 branches become"``: the verb agrees with the count."""
    one = int(k) == 1
    out = f"{_n(k)} branch" + ("" if one else "es")
    if verb:
        out += " " + (verb if not one else {"are": "is", "have": "has"}.get(verb, verb + "s"))
    return out


def _units(k, what: str) -> str:
    """``"1 truly weak branch"`` / ``"5 truly weak branches"``."""
    return f"{_n(k)} {what}" + ("" if int(k) == 1 else "es" if what.endswith(("ch", "sh", "s", "x")) else "s")


def _cell(v) -> str:
    """A table cell: whole numbers as such, floats to 6 significant digits, missing as a dash."""
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:,.0f}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _cells(df: pd.DataFrame, headers: dict | None = None) -> pd.DataFrame:
    """A frame of display strings with readable column names."""
    out = pd.DataFrame({c: [_cell(v) for v in df[c].astype(object)] for c in df.columns}, index=df.index)
    return out.rename(columns=headers or {})


def _new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)                     # file output through Agg, no pyplot state
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


#: Independent histories simulated for the consecutive-years rule (``years`` >= 2).
HISTORIES = 10


# -- sections ---------------------------------------------------------------------------------------
def outcome(pop: Population, policy: Policy, r=None) -> Section:
    """Stars, weak units and structure upgrades; beside the published figures at the published scale."""
    from . import plot as bp
    r = evaluate(pop, policy) if r is None else r
    n = len(r.branches)
    pub, city = _published()
    shown = at_published_scale(n, city=city)
    sc, up = r.star_counts(), r.upgrade_counts()
    df = pd.DataFrame({"measure": [*sc.index, *up.index],
                       "count": [*sc["count"], *up["count"]]})
    df["share"] = df["count"] / n
    if shown:
        df["published"] = pd.array([pub[m]["value"] if m in pub else None for m in df["measure"]],
                                   dtype="Int64")
        df["difference"] = df["count"] - df["published"]
        df["published_quote"] = [pub[m]["quote"] if m in pub else "" for m in df["measure"]]
    title = "Outcome against the published figures" if shown else "Outcome"
    s = Section("outcome", title, tables={"outcome.csv": df})
    stars = [m for m in sc.index if m != "weak"]
    got = ", ".join(f"{_n(sc.loc[m, 'count'])} {LEVEL_TEXT[_LEVEL_OF[m]]}"
                    + (f" (published: {pub[m]['value']})" if shown and m in pub else "") for m in stars)
    s.p(f"Under policy '{policy.name}' the {_n(n)} branches get {got}.",
        f"{_branches(sc.loc['weak', 'count'], 'are')} designated weak (軟弱渙散"
        + (f"; published: {pub['weak']['value']})." if shown else ")."))
    low, high = _n(round(city * (1 - PUBLISHED_TOLERANCE))), _n(round(city * (1 + PUBLISHED_TOLERANCE)))
    if shown:
        s.p(f"The published figures are counts of a city of about {_n(city)} branches; they are shown "
            f"beside a population of {low} to {high} branches only.")
    else:
        s.p(f"The published figures count a city of about {_n(city)} branches. This population has "
            f"{_n(n)}, so they are not shown: they are compared only with a population of {low} to "
            f"{high} branches, never with another city or a smaller table, scaled or not.")
    acc = r.accuracy()
    if np.isfinite(acc):
        s.p(f"The population is generated, so each branch's true quality is known: {_pct(acc)} of the "
            f"{_n(n)} branches get the star their true quality earns under the same rules; the others are "
            f"moved by measurement noise (indicator records and the satisfaction survey).")
    cols = ["measure", "count", "share"] + (["published", "difference", "published_quote"] if shown else [])
    show = df[cols].copy()
    show["measure"] = show["measure"].map(_ROW_TEXT)
    show["share"] = show["share"].map(_pct)
    show = _cells(show, {"published_quote": "source (quote)"})
    s.table(show, "Simulated counts beside the published figures (difference = simulated − published)"
            if shown else f"Simulated counts ({_n(n)} branches)")
    fig = _new_figure((6.6, 3.8))
    bp.star_counts(sc if shown else sc[["count"]], ax=fig.add_subplot(), scale=False)
    s.figure(fig, "Branches per star level and weak units; hatched bars are the published counts."
             if shown else "Branches per star level and weak units.")
    return s


def sweep(pop: Population, policy: Policy) -> Section:
    """The satisfaction share from 20% to 60%: star counts, changes and accuracy, by type."""
    from . import plot as bp
    from .sensitivity import sweep as run_sweep
    key = "branch.satisfaction_share"
    s0 = float(policy[key])
    grid = sorted({*SWEEP_SHARES, round(s0, 6)})
    tot = run_sweep(pop, policy, {key: grid}, progress=False)
    byt = run_sweep(pop, policy, {key: grid}, by="type", progress=False)
    csv = pd.concat([tot.assign(type="all")[byt.columns], byt], ignore_index=True)
    s = Section("sweep", "The satisfaction-survey share", tables={"sweep_satisfaction_share.csv": csv})
    n = int(tot["n"].iloc[0])
    at = tot.set_index(key)
    own = [t for t in policy.branch_types if f"branch.types.{t}.satisfaction_share" in policy]
    s.p(f"The policy gives the satisfaction survey {_share(s0)} of the score. Each row below scores the "
        f"same branches with another share, the four dimension shares scaled to fill the rest in their "
        f"current proportions (as Policy.update does); 'changed' counts branches whose star differs from "
        f"the one they get under the policy.",
        f"Types with their own survey share ({', '.join(own)}) keep it." if own else "")
    moves = []
    for target, verb in ((round(s0 - 0.1, 6), "Lowering"), (round(s0 + 0.1, 6), "raising")):
        if target in at.index:
            ch = int(at.loc[target, "changed"])
            moves.append(f"{verb} the survey share from {_share(s0)} to {_share(target)} changes the star "
                         f"of {_branches(ch)} ({_pct(ch / n)} of {_n(n)})")
    if moves:
        text = "; ".join(moves)
        s.p(text[0].upper() + text[1:] + ".")
    span = lambda c: f"{_n(tot[c].min())}–{_n(tot[c].max())}"          # noqa: E731
    star_cols = [c for c in ("five_star", "four_star", "three_star") if c in tot]
    s.p(f"Across {_share(grid[0])}–{_share(grid[-1])} the count of "
        + ", of ".join(f"{LEVEL_TEXT[_LEVEL_OF[c]]} branches ranges over {span(c)}" if i == 0
                       else f"{LEVEL_TEXT[_LEVEL_OF[c]]} over {span(c)}" for i, c in enumerate(star_cols))
        + f", and of weak branches over {span('weak')}.")
    low = round(s0 - 0.1, 6) if round(s0 - 0.1, 6) in at.index else grid[0]
    worst = byt[byt[key] == low].assign(rate=lambda d: d["changed"] / d["n"])
    worst = worst.sort_values(["rate", "type"], ascending=[False, True])
    if len(worst) and worst["changed"].iloc[0] > 0:
        w = worst.iloc[0]
        s.p(f"By type, {w['type']} branches react most: {_n(w['changed'])} of {_n(w['n'])} "
            f"({_pct(w['rate'])}) change star at a share of {_share(w[key])}.")
    if "accuracy" in tot:
        best = tot.loc[tot["accuracy"].idxmax()]
        own_acc = at.loc[round(s0, 6), "accuracy"]
        if np.isclose(best[key], s0):
            s.p(f"Against the true quality, the policy's {_share(s0)} gives the most branches their true "
                f"star on this grid ({_pct(own_acc)}).")
        else:
            s.p(f"Against the true quality, the share of branches given their true star is highest at a "
                f"survey share of {_share(best[key])} ({_pct(best['accuracy'])}), against {_pct(own_acc)} at "
                f"the policy's {_share(s0)}: on these data a {'smaller' if best[key] < s0 else 'larger'} "
                f"survey share tracks the branches' true quality better.")
    show = tot[[key] + star_cols + [c for c in ("two_star", "one_star", "no_star", "weak", "changed")
                                    if c in tot] + (["accuracy"] if "accuracy" in tot else [])].copy()
    show[key] = [_share(v) + (" (policy)" if np.isclose(v, s0) else "") for v in show[key]]
    if "accuracy" in show:
        show["accuracy"] = show["accuracy"].map(_pct)
    s.table(_cells(show, {**_HEAD, key: "survey share"}), f"All {_n(n)} branches")
    piv = byt.pivot(index=key, columns="type", values="changed")
    piv.index = [_share(v) for v in piv.index]
    piv = piv.rename_axis(index="survey share", columns=None).reset_index()
    s.table(_cells(piv), "Branches whose star changes, by type")
    types = list(pd.unique(byt["type"]))
    ncols = min(3, len(types))
    fig = _new_figure((3.6 * ncols, 3.0 * -(-len(types) // ncols) + 0.8))
    bp.sweep_lines(byt, x=key, y=[c for c in ("five_star", "four_star", "three_star", "weak") if c in byt],
                   by="type", fig=fig)
    s.figure(fig, "Star counts and weak units by branch type as the survey share varies.")
    return s


def fragility(pop: Population, policy: Policy) -> Section:
    """Branches within ±1 point of a cut point: how fragile the stars are."""
    from . import plot as bp
    from .sensitivity import fragility as run_fragility
    f = run_fragility(pop, policy, delta=FRAGILITY_DELTA)
    d, n, k = f.delta, len(f.branches), f.n_fragile
    s = Section("fragility", f"Fragility: branches within ±{d:g} point of a cut",
                tables={"fragility.csv": f.branches, "fragility_counts.csv": f.counts})
    cuts = f.counts[f.counts["cut_kind"] != "any cut"]
    top = cuts.sort_values(["within", "cut"], ascending=[False, False]).iloc[0]
    capped = int((f.branches["fragile"] & f.branches["veto_capped"]).sum())
    s.p(f"{_n(k)} of {_n(n)} branches ({_pct(k / n)}) score within ±{d:g} point of a star cut point or the "
        f"weak line: a point more or less — one survey answer or one missed meeting can be enough — "
        f"moves their star or their weak designation.",
        f"The most crowded is the {top['cut_kind']} at {top['cut']:g} ({_n(top['within'])} branches: "
        f"{_n(top['below'])} just below, {_n(top['at_or_above'])} at or just above).",
        f"For {_n(capped)} of them a veto caps the star, so crossing a star cut above the cap changes "
        f"nothing." if capped else "")
    s.table(_cells(f.counts, {**_HEAD, "within": f"within ±{d:g}"}),
            f"Branches within ±{d:g} point of each cut (a branch near two cuts counts at both; "
            "'any cut' counts it once)")
    bt = f.branches.groupby("type", sort=True)["fragile"].agg(["sum", "size"])
    bt = pd.DataFrame({"type": bt.index, "branches": bt["size"].to_numpy(), "fragile": bt["sum"].to_numpy()})
    bt["share fragile"] = (bt["fragile"] / bt["branches"]).map(_pct)
    s.table(_cells(bt), "Fragile branches by type")
    fig = _new_figure((7.2, 4.0))
    bp.score_histogram(f, ax=fig.add_subplot())
    s.figure(fig, f"Scores with the cut points; branches within ±{d:g} point of one are highlighted.")
    return s


def measurement(pop: Population, policy: Policy, *, draws: int, seed, sizes) -> Section:
    """Monte Carlo over measurement noise with the truth fixed (generated populations only)."""
    from . import plot as bp
    from .sensitivity import measurement_mc
    s = Section("measurement", "Measurement uncertainty: how reliable is a star?")
    if not (pop.has_truth and pop.params is not None and pop.seed is not None):
        s.p("Not available for this population: its tables carry no truth (true quality, the generator's "
            "seed and parameters), so the measurement cannot be drawn again. Run the report on a generated "
            "population, or on one saved with Population.save, to include this section.")
        return s
    mc = measurement_mc(pop, policy, draws=draws, seed=seed, survey_sizes=list(sizes), progress=False)
    mis = mc.misclassification
    s.tables["measurement_uncertainty.csv"] = mis
    at = mis.set_index("survey_size")
    base = mc.baseline_size
    b = at.loc[base]
    others = [f"{_pct(at.loc[z, 'misclassified'])} with {z}" for z in mc.survey_sizes if z != base]
    s.p(f"The measurement — indicator records and the satisfaction survey — is drawn again {_n(draws)} "
        f"times, each branch's true quality held fixed. With the generator's survey of {base} respondents "
        f"per branch, {_pct(b['misclassified'])} of branch-draws get a star other than the one their true "
        f"quality earns ({_pct(b['too_high'])} too high, {_pct(b['too_low'])} too low)"
        + (f"; the share is {' and '.join(others)} respondents." if others else "."))
    weak_n, fine_n = int(b["truly_weak"]), int(b["truly_fine"])
    miss = ("no branch is truly weak, so there is no miss rate" if not np.isfinite(b["miss_rate"])
            else f"a truly weak branch escapes the designation in {_pct(b['miss_rate'])} of draws "
                 f"(n = {_units(weak_n, 'truly weak branch')} × {_n(draws)} draws)")
    unsure = int((mc.star_probabilities["p_true"] < 0.5).sum())
    s.p(f"A branch that is not truly weak is designated weak in {_pct(b['false_alarm_rate'], 2)} of draws "
        f"(n = {_units(fine_n, 'truly fine branch')} × {_n(draws)} draws); "
        f"{miss}. {_n(unsure)} of {_n(len(mc.star_probabilities))} branches get their true star in fewer "
        f"than half of the draws.")
    cs = mc.count_summary()
    cs = cs[(cs["survey_size"] == base) & cs["measure"].isin([*STAR_NAMES.values(), "weak", "accuracy"])]
    by = cs.set_index("measure")
    spans = [f"of {what} branches over {by.loc[m, 'q05']:.0f}–{by.loc[m, 'q95']:.0f} (true: "
             f"{by.loc[m, 'true']:.0f})" for m, what in (("five_star", "five-star"), ("weak", "weak"))
             if m in by.index]
    if spans:
        s.p("From draw to draw (5–95% of draws) the count " + ", and the count ".join(spans) + ".")
    show = mis[["survey_size", "misclassified", "too_high", "too_low", "false_alarm_rate", "truly_fine",
                "miss_rate", "truly_weak"]].copy()
    for c in ("misclassified", "too_high", "too_low", "false_alarm_rate", "miss_rate"):
        show[c] = show[c].map(lambda v: _pct(v, 2))
    s.table(_cells(show, {**_HEAD, "truly_fine": "n truly fine", "truly_weak": "n truly weak"}),
            f"Misclassification by survey size (shares of branch-draws over {_n(draws)} draws; false alarms "
            "among truly fine branches, misses among truly weak ones, each with its number of branches)")
    cshow = cs[["measure", "true", "mean", "q05", "median", "q95"]].copy()
    cshow["measure"] = cshow["measure"].map(lambda m: _ROW_TEXT.get(m, m))
    acc = cs["measure"].eq("accuracy").to_numpy()
    for c in ("true", "mean", "q05", "median", "q95"):
        cshow[c] = [_pct(v) if a else f"{v:,.0f}" if c == "true" else f"{v:,.1f}" for v, a in zip(cs[c], acc)]
    s.table(cshow, f"Counts over {_n(draws)} draws at {base} respondents: mean and 5/50/95% quantiles")
    nb = min(30, len(mc.star_probabilities))
    fig = _new_figure((7.0, max(3.0, 0.2 * nb + 1.6)))
    bp.star_probabilities(mc, n=nb, ax=fig.add_subplot())
    s.figure(fig, f"Chance of each star for the {nb} branches least likely to get their true star "
                  f"(diamond: the true star).")
    return s


def transitions_long(c) -> pd.DataFrame:
    """A Comparison's transitions as a tidy frame: type (``all`` first), baseline_stars, reform_stars, branches."""
    parts = [c.transitions.stack().rename("branches").reset_index().assign(type="all")]
    if len(c.transitions_by_type):
        parts.append(c.transitions_by_type.stack().rename("branches").reset_index())
    long = pd.concat(parts, ignore_index=True)[["type", "baseline", "reform", "branches"]]
    return long.rename(columns={"baseline": "baseline_stars", "reform": "reform_stars"})


def comparison(pop: Population, policy: Policy, reform: Policy, reform_src: str = "") -> Section:
    """The reform against the policy: the parameter diff, transitions, movers, newly weak branches."""
    from . import plot as bp
    from .sensitivity import compare
    c = compare(pop, policy, reform)
    s = Section("comparison", "The reform against the policy",
                tables={"comparison_transitions.csv": transitions_long(c), "comparison_movers.csv": c.movers,
                        "policy_diff.csv": c.diff})
    n, ch = len(c.baseline.branches), c.movers["change"].to_numpy()
    which = f"The reform ('{reform.name}'" + (f", {reform_src})" if reform_src else ")")
    if c.diff.empty:
        s.p(f"{which} has the same parameters as the policy '{policy.name}': nothing changes.")
        return s
    regraded = 0 if c.members_changed is None else len(c.members_changed)
    s.p(f"{which} changes {len(c.diff)} parameter(s) of '{policy.name}', listed below. Under it "
        f"{_n(len(ch))} of {_n(n)} branches ({_pct(len(ch) / n)}) change star: {_n((ch > 0).sum())} move up "
        f"and {_n((ch < 0).sum())} down. {_branches(len(c.newly_weak), 'become')} weak and "
        f"{_branches(len(c.no_longer_weak), 'are')} no longer weak; {_n(len(c.new_consequences))} unit(s) "
        f"face a new consequence (talk, reorganisation, mentoring or handling) and {_n(regraded)} "
        f"member(s) change grade.")
    sc = c.star_counts()
    moved = [f"{_ROW_TEXT.get(m, m)} {_n(r['baseline'])} → {_n(r['reform'])}" for m, r in sc.iterrows()
             if r["change"]]
    if moved:
        s.p("Counts that change: " + "; ".join(moved) + ".")
    s.table(_cells(c.diff), "Parameters changed (provenance as recorded in the reform)")
    sc = sc.reset_index()
    sc["level"] = sc["level"].map(lambda m: _ROW_TEXT.get(m, m))
    s.table(_cells(sc), "Branches per star level and weak, under each policy")
    tab = c.transitions.copy()
    tab.index = [LEVEL_TEXT[int(k)] for k in tab.index]
    tab.columns = [LEVEL_TEXT[int(k)] for k in tab.columns]
    tab = tab.rename_axis(index="policy \\ reform", columns=None).reset_index()
    s.table(_cells(tab), "Transitions: star under the policy (rows) and under the reform (columns)")
    fig = _new_figure((5.8, 4.8))
    bp.transitions(c, ax=fig.add_subplot())
    s.figure(fig, "Transition matrix; the framed diagonal holds the branches that keep their star.")
    if len(c.newly_weak):
        nw = c.newly_weak.head(20).round({"old_score": 2, "new_score": 2})
        s.table(_cells(nw, _HEAD), f"Newly weak branches ({_n(len(c.newly_weak))}"
                                   + (", the first 20)" if len(c.newly_weak) > 20 else ")"))
    return s


# -- what was run ---------------------------------------------------------------------------------------
def run_rows(policy, policy_src, pop, pop_src, reform, reform_src, seed, draws, sizes, files,
             years: int = 1) -> list:
    from . import __version__
    n_members = f", {_n(len(pop.members))} members" if pop.members is not None else " (no members)"
    rows = [("policy", f"'{policy.name}' — {policy_src}"),
            ("population", f"{pop_src}: {_n(len(pop.branches))} branches{n_members}"),
            ("truth known", "yes (generated: true quality per branch)" if pop.has_truth else "no"),
            ("reform", f"'{reform.name}' — {reform_src}" if reform is not None else "none"),
            ("seed", str(seed)),
            ("measurement draws", f"{_n(draws)} per survey size ({', '.join(map(str, sizes))} respondents "
                                  f"and the generator's own)"),
            ("years simulated", "1 (no simulation)" if years < 2 else
             f"{years} (the consecutive-years rule, {HISTORIES} histories)"),
            ("branchsim", __version__),
            ("tables (CSV, beside this file)", ", ".join(files))]
    return rows
