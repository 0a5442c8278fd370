"""A reform against a baseline: who changes level, who is newly designated, what follows.

:func:`compare` evaluates one population under two policies (members
included) and lines the two evaluations up branch by branch and member by
member. Levels, designations and consequences are the schemes' own ids
(``policy.scheme``), so any scheme and any rating design compares the same
way. Everything it reports is a tidy frame, so a researcher can
``groupby``, ``plot`` or ``to_csv`` it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, overload

import html
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, PolicyError
from ..manifest import recorded
from ..evaluate import Result
from ..policy import Policy
from ..population import Population, evaluate

if TYPE_CHECKING:
    from ..plausible import Cities

__all__ = ["Comparison", "compare"]

_CONSEQUENCE_COLUMNS = ["unit", "id", "branch_id", "consequence"]
_PAIR = ["branch_id", "type", "old_score", "new_score", "old_rating", "new_rating"]


def _crosstab(rows: pd.Categorical, cols: pd.Categorical, row_ids: list, col_ids: list) -> pd.DataFrame:
    """Counts of (row, column) pairs on the full grid of ids (zero where none)."""
    tab = pd.crosstab(rows, cols, dropna=False).reindex(index=row_ids, columns=col_ids, fill_value=0)
    return tab.astype(int)


def _flags(frame: pd.DataFrame | None, ids, n: int) -> dict[str, np.ndarray]:
    """Boolean column of each id (all False where the evaluation has no such column)."""
    return {i: (frame[i].to_numpy(bool) if frame is not None and i in frame.columns else np.zeros(n, dtype=bool))
            for i in ids}


def _consequences(old: pd.DataFrame, new: pd.DataFrame, ids, unit: str, id_col: str) -> pd.DataFrame:
    """Units facing a consequence under ``new`` but not under ``old`` (one row per unit and consequence)."""
    was, now = _flags(old, ids, len(old)), _flags(new, ids, len(new))
    parts = [pd.DataFrame(columns=_CONSEQUENCE_COLUMNS)]
    for c in ids:                            # a loop over the few consequences, not over units
        hit = now[c] & ~was[c]
        parts.append(pd.DataFrame({"unit": unit, "id": new[id_col].to_numpy()[hit],
                                   "branch_id": new["branch_id"].to_numpy()[hit], "consequence": c}))
    return pd.concat(parts, ignore_index=True)[_CONSEQUENCE_COLUMNS]


def _ids(baseline: Result, reform: Result, what) -> list[str]:
    """Ids of both schemes, the baseline's first (dict order: no duplicates)."""
    return list(dict.fromkeys([*what(baseline.scheme), *what(reform.scheme)]))


class Comparison:
    """Two evaluations of one population: a baseline policy and a reform.

    Built by :func:`compare`; every attribute is computed there.

    Attributes
    ----------
    baseline, reform : Result
        The two evaluations.
    diff : DataFrame
        ``baseline.policy.diff(reform.policy)``: path, old, new, provenance.
    levels : list of str
        The level ids (best first) of the baseline; ``reform_levels`` those of
        the reform (the same unless the reform changes the levels).
    transitions : DataFrame
        Branch counts by baseline level (rows, ``baseline``) and reform level
        (columns, ``reform``), every level of each scheme, best first. The
        diagonal holds the branches that keep their level; the whole table
        adds up to the population.
    transitions_by_type : DataFrame
        The same crosstab for each branch type, stacked: the row index is
        ``(type, baseline)``, so ``transitions_by_type.loc[t]`` is type
        ``t``'s crosstab.
    movers : DataFrame
        Branches whose level changed: branch_id, type, old_score, new_score,
        old_rating, new_rating, change (levels up, positive, or down,
        negative; NaN when the reform changes the levels themselves).
    newly_designated, no_longer_designated : DataFrame
        One row per branch and designation (any designation of either
        scheme) it gains or loses: designation, then the ``movers`` columns
        and vetoes (under the reform).
    new_consequences, lifted_consequences : DataFrame
        Units facing a consequence (any consequence id of either scheme)
        under the reform and not the baseline, and the reverse: unit
        (``branch`` or ``member``), id, branch_id, consequence.
    members_changed : DataFrame or None
        Members whose grade changed: member_id, branch_id, old_annual,
        new_annual, old_grade, new_grade (None: not graded). None when
        either policy rates branches only or the population has no members.
    """

    def __init__(self, baseline: Result, reform: Result):
        self.baseline, self.reform = baseline, reform
        self.diff = baseline.policy.diff(reform.policy)
        b, r = baseline.branches, reform.branches
        n = len(b)
        self.levels = list(baseline.scheme.branch.levels.ids)
        self.reform_levels = list(reform.scheme.branch.levels.ids)
        old, new = b["rating"].to_numpy(object), r["rating"].to_numpy(object)
        old_c = pd.Categorical(old, categories=self.levels)
        new_c = pd.Categorical(new, categories=self.reform_levels)
        self.transitions = _crosstab(old_c, new_c, self.levels, self.reform_levels)
        self.transitions.index.name, self.transitions.columns.name = "baseline", "reform"
        types = b["type"].to_numpy(object)
        order = [t for t in baseline.scheme.branch.types if t in set(types)]
        tab = pd.crosstab([pd.Categorical(types, categories=order), old_c], new_c, dropna=False)
        full = pd.MultiIndex.from_product([order, self.levels], names=["type", "baseline"])
        tab.index = tab.index.set_names(["type", "baseline"])
        self.transitions_by_type = tab.reindex(index=full, columns=self.reform_levels, fill_value=0).astype(int)
        self.transitions_by_type.columns.name = "reform"
        pair = pd.DataFrame({"branch_id": b["branch_id"].to_numpy(), "type": types,
                             "old_score": b["score"].to_numpy(), "new_score": r["score"].to_numpy(),
                             "old_rating": old, "new_rating": new})
        moved = old != new
        change = np.full(n, np.nan)
        if self.levels == self.reform_levels:                    # ids best first: up is a smaller position
            change = (old_c.codes - new_c.codes).astype(float)
        self.movers = pair[moved].assign(change=change[moved]).reset_index(drop=True)
        pair["vetoes"] = r["vetoes"].to_numpy() if "vetoes" in r.columns else ""
        self.designations = _ids(baseline, reform, lambda s: [d.id for d in s.branch.designations])
        was, now = _flags(b, self.designations, n), _flags(r, self.designations, n)
        gained, lost = [], []
        for d in self.designations:                               # a loop over the few designations
            gained.append(pair[now[d] & ~was[d]].assign(designation=d))
            lost.append(pair[was[d] & ~now[d]].assign(designation=d))
        cols = ["designation"] + list(pair.columns)
        self.newly_designated = pd.concat([pair.head(0).assign(designation="")] + gained,
                                          ignore_index=True)[cols]
        self.no_longer_designated = pd.concat([pair.head(0).assign(designation="")] + lost,
                                              ignore_index=True)[cols]
        unit_ids = lambda unit: _ids(baseline, reform,  # noqa: E731
                                     lambda s: [c.id for c in s.consequences_of(unit)])
        new_c, lifted = [_consequences(b, r, unit_ids("branch"), "branch", "branch_id")], \
            [_consequences(r, b, unit_ids("branch"), "branch", "branch_id")]
        self.members_changed = None
        if baseline.members is not None and reform.members is not None:
            bm, rm = baseline.members, reform.members
            new_c.append(_consequences(bm, rm, unit_ids("member"), "member", "member_id"))
            lifted.append(_consequences(rm, bm, unit_ids("member"), "member", "member_id"))
            og, ng = bm["grade"].to_numpy(object), rm["grade"].to_numpy(object)
            moved_m = (og != ng) & ~(pd.isna(og) & pd.isna(ng))        # None: not graded (an exempt class)
            self.members_changed = pd.DataFrame({
                "member_id": bm["member_id"].to_numpy()[moved_m], "branch_id": bm["branch_id"].to_numpy()[moved_m],
                "old_annual": bm["annual"].to_numpy()[moved_m], "new_annual": rm["annual"].to_numpy()[moved_m],
                "old_grade": og[moved_m], "new_grade": ng[moved_m]})
        self.new_consequences = pd.concat(new_c, ignore_index=True)
        self.lifted_consequences = pd.concat(lifted, ignore_index=True)

    # -- summaries -------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        """Whether the two policies are the same and nothing this comparison reports changes."""
        return (self.diff.empty and self.movers.empty and self.newly_designated.empty
                and self.no_longer_designated.empty and self.new_consequences.empty
                and self.lifted_consequences.empty
                and (self.members_changed is None or self.members_changed.empty))

    def level_counts(self) -> pd.DataFrame:
        """Branches per level id and designation under each policy, with the change."""
        old = self.baseline.level_counts()["count"]
        new = self.reform.level_counts()["count"]
        out = pd.concat([old.rename("baseline"), new.rename("reform")], axis=1).fillna(0).astype(int)
        out["change"] = out["reform"] - out["baseline"]
        return out

    def star_counts(self) -> pd.DataFrame:
        """Alias of :meth:`level_counts`."""
        return self.level_counts()

    def by_type(self) -> pd.DataFrame:
        """Per branch type: branches, movers (up, down), and branches newly or no longer designated."""
        types = self.transitions_by_type.index.get_level_values("type").unique()
        b = self.baseline.branches
        out = pd.DataFrame(index=pd.Index(types, name="type"))
        out["branches"] = b["type"].value_counts().reindex(types, fill_value=0)
        ch = self.movers
        out["movers"] = ch["type"].value_counts().reindex(types, fill_value=0)
        out["up"] = ch.loc[ch["change"] > 0, "type"].value_counts().reindex(types, fill_value=0)
        out["down"] = ch.loc[ch["change"] < 0, "type"].value_counts().reindex(types, fill_value=0)
        for d in self.designations:
            for name, frame in (("newly", self.newly_designated), ("no_longer", self.no_longer_designated)):
                hit = frame[frame["designation"] == d]
                out[f"{name}_{d}"] = hit["type"].value_counts().reindex(types, fill_value=0)
        return out.astype(int)

    def _headline(self) -> dict[str, int]:
        ch = self.movers["change"].to_numpy(float)
        return {"branches": len(self.baseline.branches), "parameters changed": len(self.diff),
                "movers": len(ch), "up": int((ch > 0).sum()), "down": int((ch < 0).sum()),
                "newly designated": len(self.newly_designated),
                "no longer designated": len(self.no_longer_designated),
                "new consequences": len(self.new_consequences),
                "members regraded": 0 if self.members_changed is None else len(self.members_changed)}

    def _title(self) -> str:
        return f"{self.baseline.policy.name} → {self.reform.policy.name}"

    def summary(self) -> str:
        """A plain-text report: the policy diff, counts, the transition matrix."""
        h = self._headline()
        diff = (self.diff[["path", "old", "new"]].to_string(index=False) if len(self.diff)
                else "(no parameter differs: the two policies are the same)")
        cons = (self.new_consequences.groupby("consequence").size().to_string()
                if len(self.new_consequences) else "(none)")
        designated = "; ".join(
            f"{d}: {int((self.newly_designated['designation'] == d).sum())} newly, "
            f"{int((self.no_longer_designated['designation'] == d).sum())} no longer"
            for d in self.designations) or "no designations"
        lines = [f"{self._title()}: {h['branches']} branches"]
        if self.is_identity:
            lines.append("identity: the reform is the baseline, nothing changes")
        return "\n".join(lines + [
            "", "Parameters changed:", diff, "",
            f"Branches changing level: {h['movers']} ({h['up']} up, {h['down']} down); {designated}; "
            f"members regraded {h['members regraded']}",
            "", "Levels:", self.level_counts().to_string(),
            "", "Transitions (rows baseline, columns reform):", self.transitions.to_string(),
            "", "By type:", self.by_type().to_string(),
            "", "New consequences:", cons])

    __str__ = summary

    def __repr__(self) -> str:
        h = self._headline()
        return (f"<Comparison {self._title()}: {h['branches']} branches, {h['parameters changed']} "
                f"parameter(s) changed; {h['movers']} change level ({h['up']} up, {h['down']} down), "
                f"{h['newly designated']} newly designated, {h['no longer designated']} no longer>")

    def _repr_html_(self) -> str:
        h = self._headline()
        diff = (self.diff[["path", "old", "new"]].to_html(index=False) if len(self.diff)
                else "<p>(no parameter differs)</p>")
        counts = pd.Series({k: v for k, v in h.items() if k != "branches"}, name="count").to_frame()
        blocks = [("Parameters changed", diff), ("Transitions (rows: baseline)", self.transitions.to_html()),
                  ("Levels", self.level_counts().to_html()), ("Counts", counts.to_html())]
        cells = "".join(f"<td style='vertical-align:top;padding-right:1.5em'><i>{html.escape(t)}</i>{body}</td>"
                        for t, body in blocks)
        head = (f"<b>Comparison</b> — {h['branches']} branches, "
                f"<code>{html.escape(self.baseline.policy.name)}</code> → "
                f"<code>{html.escape(self.reform.policy.name)}</code>")
        return f"<div>{head}<table><tr>{cells}</tr></table></div>"


def _numbers(c: Comparison) -> pd.DataFrame:
    """A comparison's numbers: per level (and designation) baseline, reform, change; the headline as ``all``."""
    head = pd.DataFrame([{"level": "all", **c._headline()}])
    return pd.concat([c.level_counts().rename_axis("level").reset_index(), head], ignore_index=True)


@overload
def compare(pop: Population, baseline: Policy, reform: Policy | Mapping | str | os.PathLike[str], *,
            cities: None = None) -> Comparison: ...
@overload
def compare(pop: Population | None, baseline: Policy, reform: Policy | Mapping | str | os.PathLike[str], *,
            cities: Cities) -> pd.DataFrame: ...


@recorded("compare", policy_arg="baseline", reform_arg="reform")
def compare(pop: Population | None, baseline: Policy, reform: Policy | Mapping | str | os.PathLike[str], *,
            cities: Cities | None = None) -> Comparison | pd.DataFrame:
    """Evaluate a population under a baseline and a reform and line them up.

    Parameters
    ----------
    pop : Population
        From :func:`branchsim.generate` or :func:`branchsim.load_population`;
        members are compared too when it has them and both policies rate them.
    baseline : Policy
    reform : Policy, mapping or path
        The changed policy; a mapping ``{path: new value}`` or the path of a
        reform file, applied to ``baseline`` with :meth:`Policy.update`.
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        a DataFrame of each level's count under both policies, its change and
        the headline counts (``level`` ``all``: movers, up, down, ...), each
        with its mean and interval across cities.

    Returns
    -------
    Comparison
        ``.transitions`` (level crosstab), ``.transitions_by_type``,
        ``.movers``, ``.newly_designated``, ``.no_longer_designated``,
        ``.new_consequences``, ``.members_changed``, ``.diff`` and the two
        :class:`~branchsim.Result` objects. ``compare(pop, p, p)`` changes
        nothing: a diagonal matrix, no movers, an empty diff (``is_identity``).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> p = bs.Policy.load()
    >>> top = p.levels[1]
    >>> c = compare(pop, p, {f"branch.rating.cuts.{top}": 78})
    >>> c.movers["branch_id"].tolist(), c.movers["change"].tolist()
    (['B006', 'B011'], [1.0, 1.0])
    >>> int(c.transitions.to_numpy().sum()), c.reform.policy.name.startswith(p.name + "[")
    (12, True)
    >>> compare(pop, p, p).is_identity
    True
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, baseline if isinstance(baseline, Policy) else None, "compare")
        return across_cities(cities, compare, baseline, reform, keys=["level"], numbers=_numbers)
    if not isinstance(pop, Population):
        raise DataError(f"compare() takes a Population (from generate or load_population) first, "
                        f"got {type(pop).__name__}")
    if not isinstance(baseline, Policy):
        raise PolicyError(f"baseline must be a branchsim.Policy, got {type(baseline).__name__}",
                          where="compare")
    if isinstance(reform, (Mapping, str, os.PathLike)):
        reform = baseline.update(reform)
    if not isinstance(reform, Policy):
        raise PolicyError(f"reform must be a branchsim.Policy, a mapping {{path: value}} or a reform file's "
                          f"path for baseline.update, got {type(reform).__name__}", where="compare")
    old = evaluate(pop, baseline)
    return Comparison(old, old if reform == baseline else evaluate(pop, reform))   # the same policy: one evaluation
