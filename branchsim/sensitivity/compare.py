"""A reform against a baseline: who moves, who becomes weak, what changed.

:func:`compare` evaluates one population under two policies (members
included) and lines the two evaluations up branch by branch and member by
member. Everything it reports is a tidy frame, so a researcher can
``groupby``, ``plot`` or ``to_csv`` it.
"""
from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, PolicyError
from ..evaluate import Result
from ..policy import Policy
from ..population import Population, evaluate

__all__ = ["Comparison", "compare"]

_BRANCH_CONSEQUENCES = ("talk", "reorganise")
_MEMBER_CONSEQUENCES = ("mentoring", "handling")
_CONSEQUENCE_COLUMNS = ["unit", "id", "branch_id", "consequence"]


def _crosstab(old: np.ndarray, new: np.ndarray, levels: list[int]) -> pd.DataFrame:
    """Counts of (old, new) star pairs on a fixed square grid of levels."""
    tab = pd.crosstab(pd.Categorical(old, categories=levels), pd.Categorical(new, categories=levels),
                      dropna=False)
    tab = tab.reindex(index=levels, columns=levels, fill_value=0).astype(int)
    tab.index.name, tab.columns.name = "baseline", "reform"
    return tab


def _consequences(old: pd.DataFrame, new: pd.DataFrame, kinds, unit: str, id_col: str) -> pd.DataFrame:
    """Units facing a consequence under ``new`` but not under ``old`` (one row per unit and kind)."""
    parts = []
    for kind in kinds:                       # a loop over the few consequence kinds, not over units
        hit = new[kind].to_numpy(bool) & ~old[kind].to_numpy(bool)
        parts.append(pd.DataFrame({"unit": unit, "id": new[id_col].to_numpy()[hit],
                                   "branch_id": new["branch_id"].to_numpy()[hit], "consequence": kind}))
    return pd.concat(parts, ignore_index=True)


class Comparison:
    """Two evaluations of one population: a baseline policy and a reform.

    Built by :func:`compare`; every attribute is computed there.

    Attributes
    ----------
    baseline, reform : Result
        The two evaluations.
    diff : DataFrame
        ``baseline.policy.diff(reform.policy)``: path, old, new, provenance.
    transitions : DataFrame
        Branch counts by baseline star level (rows, ``baseline``) and reform
        star level (columns, ``reform``), over every level that occurs in
        either evaluation, best first. The diagonal holds the branches that
        keep their star.
    transitions_by_type : DataFrame
        The same crosstab for each branch type, stacked: the row index is
        ``(type, baseline)``, so ``transitions_by_type.loc["village"]`` is
        the village crosstab. Every type of the population has every level.
    movers : DataFrame
        Branches whose star changed: branch_id, type, old_score, new_score,
        old_stars, new_stars, change (new − old stars).
    newly_weak, no_longer_weak : DataFrame
        Branches weak (軟弱渙散) under the reform and not the baseline, and
        the reverse: branch_id, type, old_score, new_score, old_stars,
        new_stars, vetoes (under the reform).
    new_consequences, lifted_consequences : DataFrame
        Units facing a consequence under the reform and not the baseline
        (and the reverse): unit (``branch`` or ``member``), id, branch_id,
        consequence (``talk``, ``reorganise``, ``mentoring``, ``handling``).
    members_changed : DataFrame or None
        Members whose grade changed: member_id, branch_id, old_annual,
        new_annual, old_grade, new_grade. None for a branch-only population.
    """

    def __init__(self, baseline: Result, reform: Result):
        self.baseline = baseline
        self.reform = reform
        self.diff = baseline.policy.diff(reform.policy)
        b, r = baseline.branches, reform.branches
        old_s, new_s = b["stars"].to_numpy(int), r["stars"].to_numpy(int)
        levels = sorted(set(np.unique(old_s)) | set(np.unique(new_s)), reverse=True)
        self.levels = [int(x) for x in levels]
        self.transitions = _crosstab(old_s, new_s, self.levels)
        self.transitions_by_type = self._by_type(b["type"].to_numpy(), old_s, new_s)
        pair = pd.DataFrame({"branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy(),
                             "old_score": b["score"].to_numpy(), "new_score": r["score"].to_numpy(),
                             "old_stars": old_s, "new_stars": new_s})
        self.movers = pair[old_s != new_s].assign(change=(new_s - old_s)[old_s != new_s]) \
            .reset_index(drop=True)
        old_w, new_w = b["weak"].to_numpy(bool), r["weak"].to_numpy(bool)
        pair["vetoes"] = r["vetoes"].to_numpy()
        self.newly_weak = pair[new_w & ~old_w].reset_index(drop=True)
        self.no_longer_weak = pair[old_w & ~new_w].reset_index(drop=True)
        new_c = [_consequences(b, r, _BRANCH_CONSEQUENCES, "branch", "branch_id")]
        lifted = [_consequences(r, b, _BRANCH_CONSEQUENCES, "branch", "branch_id")]
        self.members_changed = None
        if baseline.members is not None and reform.members is not None:
            bm, rm = baseline.members, reform.members
            new_c.append(_consequences(bm, rm, _MEMBER_CONSEQUENCES, "member", "member_id"))
            lifted.append(_consequences(rm, bm, _MEMBER_CONSEQUENCES, "member", "member_id"))
            moved = bm["grade"].to_numpy() != rm["grade"].to_numpy()
            self.members_changed = pd.DataFrame({
                "member_id": bm["member_id"].to_numpy()[moved], "branch_id": bm["branch_id"].to_numpy()[moved],
                "old_annual": bm["annual"].to_numpy()[moved], "new_annual": rm["annual"].to_numpy()[moved],
                "old_grade": bm["grade"].to_numpy()[moved], "new_grade": rm["grade"].to_numpy()[moved]})
        self.new_consequences = pd.concat(new_c, ignore_index=True)[_CONSEQUENCE_COLUMNS]
        self.lifted_consequences = pd.concat(lifted, ignore_index=True)[_CONSEQUENCE_COLUMNS]

    def _by_type(self, types: np.ndarray, old: np.ndarray, new: np.ndarray) -> pd.DataFrame:
        order = [t for t in self.baseline.policy.branch_types if t in set(types)]
        tab = pd.crosstab([pd.Categorical(types, categories=order), pd.Categorical(old, categories=self.levels)],
                          pd.Categorical(new, categories=self.levels), dropna=False)
        full = pd.MultiIndex.from_product([order, self.levels], names=["type", "baseline"])
        tab.index = tab.index.set_names(["type", "baseline"])
        tab = tab.reindex(index=full, columns=self.levels, fill_value=0).astype(int)
        tab.columns.name = "reform"
        return tab

    # -- summaries -------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        """Whether the reform changes nothing this comparison reports."""
        return (self.diff.empty and self.movers.empty and self.newly_weak.empty
                and self.no_longer_weak.empty and self.new_consequences.empty
                and self.lifted_consequences.empty
                and (self.members_changed is None or self.members_changed.empty))

    def star_counts(self) -> pd.DataFrame:
        """Branches per star level (and weak) under each policy, with the change."""
        old = self.baseline.star_counts()["count"]
        new = self.reform.star_counts()["count"]
        out = pd.concat([old.rename("baseline"), new.rename("reform")], axis=1).fillna(0).astype(int)
        out["change"] = out["reform"] - out["baseline"]
        return out

    def _headline(self) -> dict[str, int]:
        ch = self.movers["change"].to_numpy()
        return {"branches": len(self.baseline.branches), "parameters changed": len(self.diff),
                "movers": len(ch), "up": int((ch > 0).sum()), "down": int((ch < 0).sum()),
                "newly weak": len(self.newly_weak), "no longer weak": len(self.no_longer_weak),
                "new consequences": len(self.new_consequences),
                "members regraded": 0 if self.members_changed is None else len(self.members_changed)}

    def summary(self) -> str:
        """A plain-text report: the policy diff, counts, the transition matrix."""
        h = self._headline()
        diff = (self.diff[["path", "old", "new"]].to_string(index=False) if len(self.diff)
                else "(no parameter differs)")
        cons = (self.new_consequences.groupby("consequence").size().to_string()
                if len(self.new_consequences) else "(none)")
        return "\n".join([
            f"baseline {self.baseline.policy.name!r} → reform {self.reform.policy.name!r}: "
            f"{h['branches']} branches",
            "", "Parameters changed:", diff, "",
            f"Branches changing star: {h['movers']} ({h['up']} up, {h['down']} down); "
            f"newly weak {h['newly weak']}, no longer weak {h['no longer weak']}; "
            f"members regraded {h['members regraded']}",
            "", "Stars:", self.star_counts().to_string(),
            "", "Transitions (rows baseline, columns reform):", self.transitions.to_string(),
            "", "New consequences:", cons])

    __str__ = summary

    def __repr__(self) -> str:
        h = self._headline()
        return (f"<Comparison: {h['branches']} branches, {h['parameters changed']} parameter(s) changed; "
                f"{h['movers']} change star ({h['up']} up, {h['down']} down), "
                f"{h['newly weak']} newly weak, {h['no longer weak']} no longer weak>")

    def _repr_html_(self) -> str:
        h = self._headline()
        diff = (self.diff[["path", "old", "new"]].to_html(index=False) if len(self.diff)
                else "<p>(no parameter differs)</p>")
        counts = pd.Series({k: v for k, v in h.items() if k != "branches"}, name="count").to_frame()
        blocks = [("Parameters changed", diff), ("Transitions (rows: baseline)", self.transitions.to_html()),
                  ("Stars", self.star_counts().to_html()), ("Counts", counts.to_html())]
        cells = "".join(f"<td style='vertical-align:top;padding-right:1.5em'><i>{html.escape(t)}</i>{body}</td>"
                        for t, body in blocks)
        head = (f"<b>Comparison</b> — {h['branches']} branches, "
                f"<code>{html.escape(self.baseline.policy.name)}</code> → "
                f"<code>{html.escape(self.reform.policy.name)}</code>")
        return f"<div>{head}<table><tr>{cells}</tr></table></div>"


def compare(pop: Population, baseline: Policy, reform: Policy | Mapping) -> Comparison:
    """Evaluate a population under a baseline and a reform and line them up.

    Parameters
    ----------
    pop : Population
        From :func:`branchsim.generate` or :func:`branchsim.load_population`;
        members are compared too when it has them.
    baseline : Policy
    reform : Policy or mapping
        The changed policy, or a mapping ``{path: new value}`` applied to
        ``baseline`` with :meth:`Policy.update`.

    Returns
    -------
    Comparison
        ``.transitions`` (star crosstab), ``.transitions_by_type``,
        ``.movers``, ``.newly_weak``, ``.no_longer_weak``,
        ``.new_consequences``, ``.members_changed``, ``.diff`` and the two
        :class:`~branchsim.Result` objects. ``compare(pop, p, p)`` changes
        nothing: a diagonal matrix, no movers, an empty diff.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> p = bs.Policy.load()
    >>> c = compare(pop, p, {"branch.star_cuts.4": 78})
    >>> c.movers[["branch_id", "old_stars", "new_stars"]].values.tolist()
    [['B006', 3, 4], ['B011', 3, 4]]
    >>> int(c.transitions.loc[3, 4]), int(c.transitions.to_numpy().sum())
    (2, 12)
    """
    if not isinstance(pop, Population):
        raise DataError(f"compare() takes a Population (from generate or load_population) first, "
                        f"got {type(pop).__name__}")
    if not isinstance(baseline, Policy):
        raise PolicyError(f"baseline must be a branchsim.Policy, got {type(baseline).__name__}",
                          where="compare")
    if isinstance(reform, Mapping):
        reform = baseline.update(reform)
    if not isinstance(reform, Policy):
        raise PolicyError(f"reform must be a branchsim.Policy or a mapping {{path: value}} for "
                          f"baseline.update, got {type(reform).__name__}", where="compare")
    return Comparison(evaluate(pop, baseline), evaluate(pop, reform))
