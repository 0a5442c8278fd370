"""The sections of :func:`branchsim.report.write_report`: numbers, prose, figures and the page.

Each section function runs one analysis and returns a :class:`Section`: its
HTML (prose written from the numbers, tables, embedded figures) and the
tidy frames written beside the page as CSV; :mod:`branchsim.report`
assembles the page. Every name shown — levels, designations, consequences,
parameters — comes from the policy (:func:`name`); nothing of one scheme is
written here.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._result import PUBLISHED_TOLERANCE, at_published_scale, targets
from .errors import PolicyError
from .plot.labels import term
from .policy import Policy
from .population import Population, evaluate

__all__ = ["Section", "outcome", "sweep", "fragility", "name", "sweep_parameter", "sweep_grid", "HISTORIES",
           "DESIGN_TEXT"]

SWEEP_SHARES = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
FRAGILITY_DELTA = 1.0
#: Independent histories simulated for the consecutive-years rules (``years`` >= 2).
HISTORIES = 10
#: The rating designs of the format, as the report describes them.
DESIGN_TEXT = {"cuts": "fixed cut points", "quota": "quotas (a share of the branches at each level)",
               "cuts_and_quota": "cut points within quotas", "kmeans": "k-means clustering of the scores",
               "hierarchical": "hierarchical clustering of the scores"}
_HEAD = {"changed": "changed level", "cut_kind": "boundary", "cut": "points", "below": "just below",
         "at_or_above": "at or just above", "survey_size": "respondents", "too_high": "too high",
         "too_low": "too low", "old_score": "score before", "new_score": "score after",
         "old_rating": "level before", "new_rating": "level after"}


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
def name(key, policy, kind: str | None = None) -> str:
    """How the report names a term of the scheme: ``"five-star (五星級)"``, English and the source's term.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> lv = p.scheme.branch.levels
    >>> name(p.levels[0], p) == f"{lv.en[0]} ({lv.labels[0]})"
    True
    >>> name("my_column", p)
    'my_column'
    """
    key = str(key)
    if kind is None and key.startswith("upgrade_") and policy.scheme.structure is not None \
            and key[8:] in policy.scheme.structure.ids:
        return f"upgrade to {name(key[8:], policy, 'structure')}"
    zh, en = term(key, policy, kind)
    return f"{en} ({zh})" if zh and en else en or zh or key


def _n(x) -> str:
    return f"{int(x):,}"


def _pct(x, digits: int = 1) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _share(x) -> str:
    """A share as a percentage without needless decimals (40%, 32.5%)."""
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
        return f"{int(v):,}"
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


def cut_text(cuts: pd.DataFrame, policy: Policy, ids=None) -> str:
    """Cut points as prose, ``"<level> from 90, …"`` (a range over peer groups); ``ids`` default the levels."""
    parts = []
    for lv in policy.levels if ids is None else ids:
        every = cuts.loc[cuts["level"] == lv, "cut"].dropna().to_numpy(float) if len(cuts) else np.array([])
        v = every[np.isfinite(every)]
        none = len(every) - len(v)        # groups where no unit reaches the level (a realised cut of +inf)
        if len(v):
            at = f"{v.min():.4g}" if v.min() == v.max() else f"{v.min():.4g}–{v.max():.4g} by group"
            parts.append(f"{name(lv, policy)} from {at}"
                         + (f" (reached in no unit of {none} group{'s' if none > 1 else ''})" if none else ""))
        elif none:
            parts.append(f"{name(lv, policy)} reached by no unit")
    return ", ".join(parts)


# -- the outcome ---------------------------------------------------------------------------------
def _outcome_rows(r, policy: Policy) -> pd.DataFrame:
    """Counts per level, designation, consequence and structure upgrade, with their labels."""
    lc = r.level_counts()
    des = {d.id for d in policy.scheme.branch.designations}
    rows = [(m, "designation" if m in des else "level", c) for m, c in lc["count"].items()]
    rows += [(m, "consequence", c) for m, c in r.consequence_counts().items()
             if m in {c.id for c in policy.scheme.consequences_of("branch")}]
    rows += [(m, "structure", c) for m, c in r.upgrade_counts()["count"].items()]
    df = pd.DataFrame(rows, columns=["measure", "kind", "count"])
    df.insert(2, "label", [name(m, policy) for m in df["measure"]])
    df["count"] = df["count"].astype(int)
    df["share"] = df["count"] / max(len(r.branches), 1)
    return df


def outcome(pop: Population, policy: Policy, r=None) -> Section:
    """Levels, designations, consequences and structure upgrades; beside the targets at the published scale."""
    from . import plot as bp
    r = evaluate(pop, policy) if r is None else r
    n = len(r.branches)
    bs = policy.scheme.branch
    t = targets(policy)
    pub, scale = t["counts"], t["scale"]
    shown = bool(pub) and at_published_scale(n, city=scale)
    df = _outcome_rows(r, policy)
    if shown:
        df["published"] = pd.array([pub.get(m) for m in df["measure"]], dtype="Int64")
        df["difference"] = df["count"] - df["published"]
        df["published_quote"] = [t["quotes"].get(m, "") for m in df["measure"]]
    s = Section("outcome", "Outcome against the published figures" if shown else "Outcome",
                tables={"outcome.csv": df})
    at = df.set_index("measure")

    def count(m):
        return f"{_n(at.loc[m, 'count'])} {name(m, policy)}" + (
            f" (published: {pub[m]:,.0f})" if shown and m in pub else "")
    design = DESIGN_TEXT.get(bs.rating.design, bs.rating.design)
    s.p(f"Under policy '{policy.name}' the {_n(n)} branches are rated by {design}"
        + (f" within each {bs.rating.peer_groups}" if bs.rating.relative and bs.rating.peer_groups else "")
        + f" into {bs.levels.n} levels: " + ", ".join(count(lv) for lv in bs.levels.ids) + ".",
        " ".join(f"{_branches(at.loc[d.id, 'count'], 'are')} designated {name(d.id, policy)}"
                 + (f" (published: {pub[d.id]:,.0f})." if shown and d.id in pub else ".") for d in bs.designations))
    if len(r.cut_points):
        realised = "realised cut points (the lowest score given each level)" if bs.rating.relative else "cut points"
        s.p(f"The {realised} are: {cut_text(r.cut_points, policy)}.")
    direct = int((r.branches["direct"] != "").sum()) if "direct" in r.branches else 0
    vetoed = int((r.branches["vetoes"] != "").sum()) if "vetoes" in r.branches else 0
    s.p(f"{_branches(direct, 'get')} their level directly (direct grading, whatever the score)." if direct else "",
        f"A veto fired for {_branches(vetoed)}: it caps or forces the level whatever the score." if vetoed else "")
    if not pub:
        why = "its targets file holds none" if policy.companion("targets") is not None else "it has no targets file"
        s.p(f"No published counts are shown beside the simulated ones: {why}.")
    elif shown:
        low, high = _n(round(scale * (1 - PUBLISHED_TOLERANCE))), _n(round(scale * (1 + PUBLISHED_TOLERANCE)))
        s.p(f"The published figures count about {_n(scale)} branches ({t['source'] or 'the targets file'}); they "
            f"are shown beside a population of {low} to {high} branches only.")
    else:
        low, high = _n(round(scale * (1 - PUBLISHED_TOLERANCE))), _n(round(scale * (1 + PUBLISHED_TOLERANCE)))
        s.p(f"The scheme's published figures count about {_n(scale)} branches. This population has {_n(n)}, so "
            f"they are not shown: they are compared only with a population of {low} to {high} branches, never "
            f"with another city or a smaller table, scaled or not.")
    acc = r.accuracy()
    if np.isfinite(acc):
        s.p(f"The population is generated, so each branch's true quality is known: {_pct(acc)} of the "
            f"{_n(n)} branches get the level their true quality earns under the same rules; the others are "
            f"moved by measurement noise.")
    cols = ["measure", "count", "share"] + (["published", "difference", "published_quote"] if shown else [])
    show = df[cols].copy()
    show["measure"] = [name(m, policy) for m in show["measure"]]
    show["share"] = show["share"].map(_pct)
    s.table(_cells(show, {"published_quote": "source (quote)"}),
            "Simulated counts beside the published figures (difference = simulated − published)"
            if shown else f"Simulated counts ({_n(n)} branches)")
    fig = _new_figure((max(5.5, 0.9 * (bs.levels.n + len(bs.designations)) + 2.6), 3.8))
    bp.level_counts(r, ax=fig.add_subplot())
    s.figure(fig, "Branches per level and designation" + ("; hatched bars are the published counts." if shown
                                                           else "."))
    return s


# -- the sweep -------------------------------------------------------------------------------------
def sweep_parameter(policy: Policy) -> str | None:
    """The parameter the report sweeps: the survey share (survey, shares form), else the first cut or quota.

    With neither (a clustering design without a survey share) a designation's
    score line, else None.

    >>> import branchsim as bs
    >>> sweep_parameter(bs.Policy.load())
    'branch.satisfaction_share'
    >>> q = bs.Policy.load(bs.data_path("policies", "star_quota.yaml"))
    >>> sweep_parameter(q) == f"branch.rating.quotas.{q.levels[0]}"
    True
    """
    bs = policy.scheme.branch
    r = bs.rating
    if bs.survey and bs.form == "shares" and "branch.satisfaction_share" in policy:
        return "branch.satisfaction_share"
    kinds = {"cuts": ("cuts",), "cuts_and_quota": ("cuts", "quotas"), "quota": ("quotas",)}.get(r.design, ())
    for kind in kinds:
        for lv in bs.levels.ids[:-1]:
            if f"branch.rating.{kind}.{lv}" in policy:
                return f"branch.rating.{kind}.{lv}"
    for d in bs.designations:
        for c in d.criteria:
            if c.kind == "score_below" and f"branch.designations.{d.id}.criteria.{c.id}.below" in policy:
                return f"branch.designations.{d.id}.criteria.{c.id}.below"
    return None


def sweep_grid(policy: Policy, key: str) -> list[float]:
    """The values swept: the survey shares 20–60%, else steps around the policy's value it accepts."""
    v0 = float(policy[key])
    if key == "branch.satisfaction_share":
        return sorted({*SWEEP_SHARES, round(v0, 6)})
    step = 0.025 if ".quotas." in key else 2.0
    grid = []
    for k in range(-5, 6):
        v = round(v0 + k * step, 6)
        try:
            if k:
                policy.update({key: v})
            grid.append(v)
        except PolicyError:
            continue                              # outside what the policy accepts (a cut below the next)
    return grid


def _value(key: str, v) -> str:
    return _share(v) if key == "branch.satisfaction_share" or ".quotas." in key else f"{v:g}"


def _what(key: str, policy: Policy) -> str:
    parts = key.split(".")
    if key == "branch.satisfaction_share":
        return "the survey share"
    if parts[-2] in ("cuts", "quotas"):
        return f"the {'cut point' if parts[-2] == 'cuts' else 'quota'} of {name(parts[-1], policy)}"
    return f"the score line of {name(parts[2], policy)}"


def sweep(pop: Population, policy: Policy) -> Section:
    """One parameter swept (the survey share, else the first cut or quota): counts, changes and accuracy, by type."""
    from . import plot as bp
    from .sensitivity import sweep as run_sweep
    key = sweep_parameter(policy)
    s = Section("sweep", "A parameter swept" if key is None else f"Sweep of {_what(key, policy)}")
    if key is None:
        s.p("The scheme has no survey share, cut point, quota or score line to sweep (its levels come from "
            "clustering the scores), so this section is empty.")
        return s
    v0 = float(policy[key])
    grid = sweep_grid(policy, key)
    tot = run_sweep(pop, policy, {key: grid}, progress=False)
    byt = run_sweep(pop, policy, {key: grid}, by="type", progress=False)
    s.tables["sweep.csv"] = pd.concat([tot.assign(type="all")[byt.columns], byt], ignore_index=True)
    n = int(tot["n"].iloc[0])
    at = tot.set_index(key)
    bs = policy.scheme.branch
    why = ("" if key == "branch.satisfaction_share" else
           " The scheme has no survey share on a 100-point score to sweep"
           + (" (its score is a points sheet)." if bs.survey else " (it has no survey)."))
    s.p(f"The parameter swept is {key}, {_what(key, policy)}: {_value(key, v0)} under the policy.{why} Each row "
        f"below rates the same branches with another value"
        + (", the dimension shares scaled to fill the rest in their current proportions (as Policy.update does)"
           if key == "branch.satisfaction_share" else "")
        + "; 'changed' counts branches whose level differs from the one they get under the policy.")
    moves = []
    i0 = grid.index(round(v0, 6)) if round(v0, 6) in grid else None
    for j, verb in ((-1, "Lowering"), (1, "raising")):
        if i0 is not None and 0 <= i0 + j * 2 < len(grid) and grid[i0 + j * 2] in at.index:
            target = grid[i0 + j * 2]
            ch = int(at.loc[target, "changed"])
            moves.append(f"{verb} it from {_value(key, v0)} to {_value(key, target)} changes the level of "
                         f"{_branches(ch)} ({_pct(ch / n)} of {_n(n)})")
    if moves:
        text = "; ".join(moves)
        s.p(text[0].upper() + text[1:] + ".")
    shown = [c for c in list(bs.levels.ids[:-1]) + [d.id for d in bs.designations] if c in tot]
    span = lambda c: f"{_n(tot[c].min())}–{_n(tot[c].max())}"          # noqa: E731
    if shown:
        s.p(f"Across {_value(key, grid[0])}–{_value(key, grid[-1])} the count of "
            + "; of ".join(f"{name(c, policy)} branches ranges over {span(c)}" for c in shown) + ".")
    low = grid[max(i0 - 2, 0)] if i0 is not None else grid[0]
    worst = byt[byt[key] == low].assign(rate=lambda d: d["changed"] / d["n"])
    worst = worst.sort_values(["rate", "type"], ascending=[False, True], kind="stable")
    if len(worst) and worst["changed"].iloc[0] > 0:
        w = worst.iloc[0]
        s.p(f"By type, {name(w['type'], policy, 'type')} branches react most: {_n(w['changed'])} of {_n(w['n'])} "
            f"({_pct(w['rate'])}) change level at {_value(key, w[key])}.")
    if "accuracy" in tot and tot["accuracy"].notna().any():
        best = tot.loc[tot["accuracy"].idxmax()]
        own = at.loc[round(v0, 6), "accuracy"] if round(v0, 6) in at.index else np.nan
        if np.isclose(best[key], v0):
            s.p(f"Against the true quality, the policy's {_value(key, v0)} gives the most branches their true "
                f"level on this grid ({_pct(own)}).")
        else:
            s.p(f"Against the true quality, the share of branches given their true level is highest at "
                f"{_value(key, best[key])} ({_pct(best['accuracy'])}), against {_pct(own)} at the policy's "
                f"{_value(key, v0)}.")
    show = tot[[key] + shown + [c for c in (bs.levels.ids[-1], "changed", "accuracy") if c in tot]].copy()
    show[key] = [_value(key, v) + (" (policy)" if np.isclose(v, v0) else "") for v in show[key]]
    if "accuracy" in show:
        show["accuracy"] = show["accuracy"].map(_pct)
    heads = {**_HEAD, key: key, **{c: name(c, policy) for c in show.columns if c not in (key, "changed", "accuracy")}}
    s.table(_cells(show, heads), f"All {_n(n)} branches")
    piv = byt.pivot(index=key, columns="type", values="changed")
    piv.index = [_value(key, v) for v in piv.index]
    piv = piv.rename_axis(index=key, columns=None).reset_index()
    s.table(_cells(piv, {t: name(t, policy, "type") for t in piv.columns if t != key}),
            "Branches whose level changes, by type")
    types = list(pd.unique(byt["type"]))
    ncols = min(3, len(types))
    fig = _new_figure((3.6 * ncols, 3.0 * -(-len(types) // ncols) + 0.8))
    bp.sweep_lines(byt, x=key, by="type", fig=fig, policy=policy)
    s.figure(fig, f"Counts per level (but the lowest) and designations by branch type as {key} varies.")
    return s


# -- fragility --------------------------------------------------------------------------------------
def fragility(pop: Population, policy: Policy) -> Section:
    """Branches within ±1 point of a boundary between levels or of a designation's score line."""
    from . import plot as bp
    from .sensitivity import fragility as run_fragility
    f = run_fragility(pop, policy, delta=FRAGILITY_DELTA)
    d, n, k = f.delta, len(f.branches), f.n_fragile
    s = Section("fragility", f"Fragility: branches within ±{d:g} point of a boundary",
                tables={"fragility.csv": f.branches, "fragility_counts.csv": f.counts})
    r = policy.scheme.branch.rating
    how = (f"Under the {r.design} design a level depends on the other branches: a branch's margin is how far its "
           "score must move to swap level with its neighbour in its peer group (the realised cut point, or the "
           "best score left below it)." if r.relative else
           "A branch's margin is the distance of its score to the nearest fixed cut point of its type.")
    per = f.counts[f.counts["cut_kind"] != "any cut"]
    top = per.sort_values(["within", "cut_kind"], ascending=[False, True], kind="stable").iloc[0] if len(per) else None
    over = "overridden" if "overridden" in f.branches else "veto_capped" if "veto_capped" in f.branches else None
    capped = int((f.branches["fragile"] & f.branches[over]).sum()) if over else 0
    s.p(how, f"{_n(k)} of {_n(n)} branches ({_pct(k / n)}) are within ±{d:g} point of a boundary between levels "
             f"or of a designation's score line: a point more or less moves their level or designation.",
        (f"The most crowded boundary is {_boundary(top['cut_kind'], policy)} ({_n(top['within'])} branches: "
         f"{_n(top['below'])} just below, {_n(top['at_or_above'])} at or just above)." if top is not None
         and top["within"] else ""),
        f"For {_n(capped)} of them a veto or direct grading sets the level, so crossing a boundary may change "
        f"nothing." if capped else "")
    counts = f.counts.assign(cut_kind=[_boundary(c, policy) for c in f.counts["cut_kind"]])
    s.table(_cells(counts, {**_HEAD, "within": f"within ±{d:g}"}),
            f"Branches within ±{d:g} point of each boundary (a branch near two counts at both; 'any cut' counts "
            "it once)")
    bt = f.branches.groupby("type", sort=True)["fragile"].agg(["sum", "size"])
    bt = pd.DataFrame({"type": [name(t, policy, "type") for t in bt.index], "branches": bt["size"].to_numpy(),
                       "fragile": bt["sum"].to_numpy()})
    bt["share fragile"] = (bt["fragile"] / bt["branches"]).map(_pct)
    s.table(_cells(bt), "Fragile branches by type")
    fig = _new_figure((7.2, 4.0))
    bp.score_histogram(f, policy=policy, ax=fig.add_subplot())
    s.figure(fig, f"Scores with the cut points and score lines; branches within ±{d:g} point of a boundary "
                  "are highlighted.")
    return s


def _boundary(kind, policy: Policy) -> str:
    """A boundary of the fragility counts in words: a level's lower boundary, or a designation's line."""
    kind = str(kind)
    if kind in policy.levels:
        return f"the boundary of {name(kind, policy)}"
    if "." in kind:
        d, c = kind.split(".", 1)
        return f"the {c} line of {name(d, policy)}"
    return kind
