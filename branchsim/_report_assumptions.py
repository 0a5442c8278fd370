"""Which assumed parameters decide the outcome: each one moved a little, the population rated again.

:func:`deciding_assumptions` takes every parameter whose provenance is the
word *assumption* (not a quote of the source; ``policy.parameters()``),
moves it by a small step (:func:`step_of`) with :meth:`Policy.update` and
rates the population under the moved policy. A parameter *decides* the
outcome when the move changes, for at least one unit of this population, one of

* a branch's level, one of its designations or one of its consequences;
* the organisation its member count calls for, whether it needs a
  committee, whether it is below the minimum (with a structure);
* a member's grade or one of its consequences.

Which parameters these are is read from the data, not from a list of names:
a parameter that only acts in later years of a simulation (the effects of
consequences, interventions) changes nothing here, and neither does a
threshold no unit is near. A move is rated on the policy document with one
value changed (:class:`_Moved`: compiled, not checked); a move that changes
something is then made for real with :meth:`Policy.update`, so every move
listed as deciding is a policy the package accepts (shares, whole numbers
and yes/no values, which have cross-checks or re-normalise a group, are
always moved with :meth:`Policy.update`). Member records are scored once; a
move of member indicators re-scores only the indicators it changes (the
period records of ``accrual: mean``; other records are scored again in full).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .errors import PolicyError
from . import _month_kernel
from .evaluate import (_fact_columns, branch_inputs, branch_outcome, evaluate_checked, member_outcome,
                       member_profiles)
from ._schema import value_problem
from .policy import Policy, _leaf, _share_groups
from .scoring import branch_scores, indicator_points, record_from_totals, required_level, type_codes
from .tables import positions

__all__ = ["deciding_assumptions", "step_of", "RULE_TEXT"]

#: The rule, as the report states it.
RULE_TEXT = ("Each parameter recorded as an assumption is moved by a small step and the population is "
             "rated again; it is listed when the move changes the level, a designation or a consequence of "
             "at least one branch, the organisation its size calls for (with a structure), or the grade or a "
             "consequence of at least one member. The step is 1% of the allowed range for a bounded number "
             "(one point for a cut on 100, 0.01 for a share or an answer value), 1% of the value for an "
             "unbounded one (0.01 when it is 0), the nearest value the policy accepts for a whole number, and "
             "the other value for a yes/no. The step up is tried first, the step down when the step up is not "
             "allowed or changes nothing.")

#: Sheet arrays (profiles × indicators) a parameter move can change.
_PER_COLUMN = ("kind", "points", "required", "per_shortfall", "per_unit", "per_event", "per_occurrence",
               "at_least", "otherwise")


def step_of(spec, value):
    """Candidate moves of one parameter, in the order tried: ``[up, down]`` (either may be None).

    >>> from branchsim._schema import Param
    >>> step_of(Param("number", 0, 100), 90)
    [91.0, 89.0]
    >>> step_of(Param("number", 0, None), 0)
    [0.01, None]
    >>> step_of(Param("bool"), True)
    [False, None]
    """
    kind, lo, hi = spec.kind, spec.lo, spec.hi
    if kind == "bool":
        return [not value, None]
    if kind == "int":
        return [[value + k for k in range(1, 6) if hi is None or value + k <= hi],
                [value - k for k in range(1, 6) if lo is None or value - k >= lo]]
    if lo is not None and hi is not None:
        h = 0.01 * (hi - lo)
    elif lo is None and hi is None:
        h = 1.0
    else:
        h = 0.01 * abs(value) if value else 0.01
    up, down = round(value + h, 12), round(value - h, 12)
    return [up if hi is None or up <= hi else None, down if lo is None or down >= lo else None]


_UPDATES: dict = {}        # (policy, path, value) -> moved Policy or None, across reports of a process


def _updated(policy: Policy, key: int, path: str, value):
    """``policy.update({path: value})`` (cached), or None when the policy refuses the move."""
    k = (key, path, type(value), value)
    if k not in _UPDATES:
        if len(_UPDATES) > 4096:
            _UPDATES.clear()
        try:
            _UPDATES[k] = policy.update({path: value}, reason="moved to test whether it decides the outcome")
        except PolicyError:
            _UPDATES[k] = None
    return _UPDATES[k]


class _Moved:
    """A policy document with one parameter moved, compiled without a Policy's checks (see the module)."""

    def __init__(self, doc: dict, name: str, path: str, value, base):
        from .scheme import _branch, _member, compile_scheme
        self._data, self.name = doc, name
        leaf = _leaf(doc, path)
        old, leaf["value"] = leaf["value"], value
        try:                                  # only the section the path is in is compiled again
            self.scheme = (replace(base, branch=_branch(self)) if path.startswith("branch.") else
                           replace(base, member=_member(self, base.branch.types)) if path.startswith("member.")
                           else compile_scheme(self))
        finally:
            leaf["value"] = old


def _column(sheet, j: int):
    """The sheet of indicator ``j`` alone (its rule arrays; no zeroing or rank: see :class:`_Members`)."""
    one = {name: getattr(sheet, name)[:, [j]] for name in (*_PER_COLUMN, "places")}
    one.update({name: getattr(sheet, name)[[j]] for name in ("group", "target", "high_first", "state", "ranges")})
    one.update({name: (getattr(sheet, name)[j],) for name in ("ids", "facts", "labels", "within")})
    return replace(sheet, **one)


#: What :func:`branchsim.rating.rate` reads of a design (a move of anything else keeps the design's levels).
_RATE_FIELDS = ("design", "levels", "cuts", "quotas", "peer_groups", "trim", "resamples", "seed", "guardrail")


def _same(a, b) -> bool:
    """Equal values, arrays compared by value (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is None and b is None or (a is not None and b is not None and a.shape == b.shape
                                           and np.array_equal(a, b, equal_nan=True))
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))


class _Branches:
    """The branches' inputs read once, their decisions taken again under moved policies.

    The design's levels are rated again only when a move changes the scores
    or the design (a clustering design costs a fit per peer group).
    """

    def __init__(self, pop, policy: Policy):
        bs = policy.scheme.branch
        self.inp = inp = branch_inputs(pop.branches, policy.scheme, policy_name=policy.name)
        self.rank_groups = {w: inp.codes(w)[0] for w in {w for w in bs.sheet.within if w is not None}}
        self.n_members = pop.branches["n_members"].to_numpy() if "n_members" in pop.branches else None
        out = branch_outcome(inp, policy.scheme)
        self.score, self.rating, self.rated = out["score"], bs.rating, (out["design"], out["cuts"])
        self.base = self.decisions(policy)

    def decisions(self, policy: Policy) -> np.ndarray:
        """Per branch: level, designations, consequences and the structure its size calls for."""
        scheme = policy.scheme
        bs = scheme.branch
        scores = branch_scores(self.inp.facts, self.inp.type_idx, self.inp.survey, bs, rank_groups=self.rank_groups)
        same = np.array_equal(scores["score"], self.score) and all(
            _same(getattr(bs.rating, f), getattr(self.rating, f)) for f in _RATE_FIELDS)
        out = branch_outcome(self.inp, scheme, scores=scores, rated=self.rated if same else None)
        cols = [out["level"]] + list(out["designations"].values()) + list(out["consequences"].values())
        if scheme.structure is not None and self.n_members is not None:
            need = required_level(self.n_members, scheme.structure)
            cols += [need["level"], need["committee"], need["below_minimum"]]
        return np.column_stack([np.asarray(c, dtype=np.int64) for c in cols])

    def changed(self, policy: Policy) -> int:
        now = self.decisions(policy)
        return int((now != self.base).any(axis=1).sum()) if now.shape == self.base.shape else len(now)


def _grades(ids) -> np.ndarray:
    """Grade ids with the not graded (None, NaN in a frame) as ``""``, so that equal means equal."""
    ids = np.asarray(ids, dtype=object)
    return np.where(pd.isna(ids), "", ids)


class _Members:
    """The members' period records scored once, graded again under moved member rules."""

    def __init__(self, pop, policy: Policy):
        self.b, self.m, self.mm = pop.branches, pop.members, pop.member_months
        ms = policy.scheme.member
        self.ms = ms
        sheet = ms.sheet
        self.incremental = (ms.accrual == "mean" and np.isnan(ms.bonus_cap) and not sheet.has("zeroing")
                            and not sheet.has("rank"))
        self.base = self._full(policy)
        if not self.incremental:
            return
        b, m, mm = self.b, self.m, self.mm
        branch_type = type_codes(b["type"], ms.types)
        mb = positions(b["branch_id"], m["branch_id"])
        self.member_idx = positions(m["member_id"], mm["member_id"])
        self.profile, class_idx = member_profiles(ms, branch_type[mb], m["category"])
        self.row_profile = self.profile[self.member_idx]
        self.periods = np.bincount(self.member_idx, minlength=len(m))
        self.facts = _fact_columns(mm, sheet.facts)        # as evaluate reads them (one compiled kernel)
        self.appraisal = m["appraisal"].to_numpy(float) if "appraisal" in m.columns else np.zeros(len(m))
        key = ms.rating.peer_groups
        self.groups = self.names = None
        if ms.rating.design != "cuts" and key == "class" and class_idx is not None:
            self.groups, self.names = class_idx, list(ms.classes)
        elif ms.rating.design != "cuts" and key == "type":
            self.groups, self.names = branch_type[mb], list(ms.types)
        self.vetoes = self._veto_values(ms)
        if _month_kernel.supports(sheet):           # the totals evaluate computes, bit for bit
            self.total = _month_kernel.row_totals(self.facts, sheet, np.arange(len(mm)), self.row_profile)
        else:
            self.total = indicator_points(np.column_stack(self.facts), self.row_profile, sheet).sum(axis=1)
        self._old: dict[int, np.ndarray] = {}
        # The shortcut must give evaluate's grades; else every move is graded in full.
        self.incremental = all(np.array_equal(a, c) for a, c in zip(self._graded(policy, self.total), self.base))

    def _full(self, policy: Policy) -> list[np.ndarray]:
        r = evaluate_checked(policy, self.b, self.m, self.mm)
        return [_grades(r.members["grade"])] + [r.members[c.id].to_numpy(bool)
                                                         for c in policy.scheme.consequences_of("member")]

    def _points(self, sheet, cols) -> np.ndarray:
        total = np.zeros(len(self.row_profile))
        for j in cols:                                      # one indicator column at a time: no (rows, k) copy
            total += indicator_points(self.facts[j][:, None], self.row_profile, _column(sheet, j))[:, 0]
        return total

    def _base_points(self, j: int) -> np.ndarray:
        """Indicator ``j``'s points under the base rules (the last few kept: moves come by indicator)."""
        if j not in self._old:
            if len(self._old) >= 4:
                self._old.pop(next(iter(self._old)))
            self._old[j] = self._points(self.ms.sheet, [j])
        return self._old[j]

    def _veto_values(self, ms) -> np.ndarray:
        cols = []
        for fact, at_least in zip(ms.vetoes.fact, ms.vetoes.at_least):
            if fact in ms.facts:
                cols.append(self.m[fact].to_numpy(float))
                continue
            col = self.mm[fact].to_numpy(float)
            if at_least:
                cols.append(np.bincount(self.member_idx, col, len(self.m)))
            else:
                low = np.full(len(self.m), np.inf)
                np.minimum.at(low, self.member_idx, col)
                cols.append(low)
        return np.column_stack(cols) if cols else np.zeros((len(self.m), 0))

    def _graded(self, policy: Policy, total: np.ndarray) -> list[np.ndarray]:
        scheme = policy.scheme
        ms = scheme.member
        monthly = record_from_totals(total, self.row_profile, ms)
        with np.errstate(invalid="ignore", divide="ignore"):
            record = np.bincount(self.member_idx, monthly, len(self.m)) / self.periods
        out = member_outcome(record, self.appraisal, self.profile, ms, scheme, veto_values=self.vetoes,
                             groups=self.groups, group_names=self.names)
        return [_grades(ms.grades.id_of(out["grade"]))] + [out["consequences"][c.id]
                                                  for c in scheme.consequences_of("member")]

    def changed(self, policy: Policy) -> int:
        """Members whose grade or a consequence differs under ``policy`` from the base policy's."""
        ms = policy.scheme.member
        same_shape = (ms.accrual == self.ms.accrual and ms.periods == self.ms.periods
                      and np.isnan(ms.bonus_cap) and ms.sheet.k == self.ms.sheet.k)
        if self.incremental and same_shape:
            cols = [j for j in range(ms.sheet.k)
                    if any(not np.array_equal(getattr(ms.sheet, a)[:, j], getattr(self.ms.sheet, a)[:, j])
                           for a in (*_PER_COLUMN, "places"))]
            total = self.total
            if cols:
                total = total + (self._points(ms.sheet, cols) - sum(self._base_points(j) for j in cols))
            now = self._graded(policy, total)
        else:
            now = self._full(policy)
        return int(np.any([np.asarray(a != c, bool) for a, c in zip(now, self.base)], axis=0).sum())


def _reads_members(policy: Policy, path: str) -> bool:
    """Whether a move of ``path`` can change a member's grade or consequence."""
    if path.startswith("member."):
        return True
    parts = path.split(".")
    return parts[0] == "consequences" and any(c.id == parts[1] for c in policy.scheme.consequences_of("member"))


def deciding_assumptions(pop, policy: Policy) -> pd.DataFrame:
    """Every assumption parameter, its move and how many units the move changes.

    Returns
    -------
    DataFrame
        One row per parameter whose provenance is an assumption, in the
        policy's order: ``path, value, moved_to, branches_changed,
        members_changed, decides, reason``. ``moved_to`` is the move that
        changed something (else the first tried within the parameter's
        range; empty when there is none), ``decides`` whether any unit changed.

    Examples
    --------
    >>> import branchsim as bs
    >>> pol = bs.Policy.load()
    >>> d = deciding_assumptions(bs.generate(pol, seed=0, n_branches=200, members=False), pol).set_index("path")
    >>> top = f"branch.rating.cuts.{pol.levels[0]}"
    >>> float(d.loc[top, "moved_to"]), bool(d.loc[top, "decides"])
    (91.0, True)
    >>> effects = [p for p in d.index if p.endswith(".effect")]    # act in later years only
    >>> len(effects) > 0 and not d.loc[effects, "decides"].any()
    True
    """
    branches = _Branches(pop, policy)
    members = (_Members(pop, policy) if policy.has_members and pop.members is not None
               and pop.member_months is not None else None)
    doc = policy.to_dict()
    key = hash(repr(doc))
    grouped = {p for g in _share_groups(doc) for p in g}
    params = policy.parameters()
    rows = []
    for path, value, reason in params.loc[params["provenance"] == "assumption", ["path", "value", "source"]] \
            .itertuples(index=False):
        spec = policy._params[path][0]
        real = path in grouped or spec.kind in ("int", "bool")
        reads_members = members is not None and _reads_members(policy, path)
        first, hit = None, None
        for side in step_of(spec, value):
            for v in (side if isinstance(side, list) else [side]):
                if v is None or (not real and value_problem(spec, v)):
                    continue
                moved = _updated(policy, key, path, v) if real else _Moved(doc, policy.name, path, v, policy.scheme)
                if moved is None:
                    continue
                counts = (0 if path.startswith("member.") else branches.changed(moved),   # branch rules never
                          members.changed(moved) if reads_members else 0)                 # read member.*
                if any(counts) and not real and _updated(policy, key, path, v) is None:
                    continue                       # refused as a whole policy: not a move
                first = first or (v, *counts)
                if any(counts):
                    hit = (v, *counts)
                break                              # the first allowed value on this side
            if hit:
                break
        v, nb, nm = hit or first or (None, 0, 0)
        rows.append({"path": path, "value": value, "moved_to": v, "branches_changed": nb,
                     "members_changed": nm, "decides": bool(nb or nm), "reason": reason})
    return pd.DataFrame(rows, columns=["path", "value", "moved_to", "branches_changed", "members_changed",
                                       "decides", "reason"])
