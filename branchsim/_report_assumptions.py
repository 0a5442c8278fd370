"""Which assumed parameters decide the outcome: each one moved a little, the population re-rated.

:func:`deciding_assumptions` takes every parameter whose provenance is the
word *assumption* (not a quote of the source), moves it by a small step
(:func:`step_of`) with :meth:`Policy.update` and re-rates the population
under the moved policy. A parameter *decides* the outcome when the move
changes, for at least one unit of this population, one of

* a branch's star, its weak designation or the reorganisation that follows
  from a run of weak years;
* the organisation its member count calls for (general branch, party
  committee), whether it needs a committee, whether it is below the minimum;
* a member's grade.

Which parameters these are is read from the data, not from a list of names:
a parameter that only acts in later years of a simulation (the effects of
consequences and interventions) changes nothing here, and neither does a
threshold no unit is near. Moves are rated on a view of the policy document
(:class:`_View`, the rules compiled with one value changed); a move that
changes something is then made for real with :meth:`Policy.update` (cached
per policy and process), so every listed move is a policy the package accepts.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass

import numpy as np
import pandas as pd

from .errors import PolicyError
from .policy import Policy, _leaf, _share_groups
from ._schema import value_problem
from .scoring import (annual_scores, branch_consequences, branch_outcome, compile_branch_rules,
                      compile_member_rules, indicator_points, member_grades, monthly_scores,
                      required_level, type_codes)
from .tables import SURVEY_COLUMNS

__all__ = ["deciding_assumptions", "step_of", "RULE_TEXT"]

SHARE_PROBE = "branch.weak_below"        # any parameter: the view must compile the policy's own rules

#: The rule, as the report states it.
RULE_TEXT = ("Each parameter recorded as an assumption is moved by a small step and the population is "
             "rated again; it is listed when the move changes the star, the weak designation, a "
             "reorganisation, the structure designation (general branch, party committee, committee, "
             "below minimum) or the member grade of at least one unit. The step is 1% of the allowed range "
             "for a bounded number (one point for a cut point or a grade line, 0.01 for a share or an "
             "answer value), 1% of the value for an indicator's points, requirement or rate (0.01 when it "
             "is 0), one unit for a veto's threshold (it is compared with a count), the nearest value "
             "the policy accepts for a whole number, and the other value for a yes/no. The step up is "
             "tried first, the step down when the step up is not allowed or changes nothing.")


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


_UPDATES: dict = {}        # (policy, path, value) -> (moved Policy, its rules) or None, across reports


def _updated(policy: Policy, key: int, path: str, value):
    """``(policy.update({path: value}), branch rules, member rules)`` (cached), or None when refused."""
    k = (key, type(value), path, value)
    if k not in _UPDATES:
        if len(_UPDATES) > 4096:
            _UPDATES.clear()
        try:
            q = policy.update({path: value}, reason="moved to test whether it decides the outcome")
            _UPDATES[k] = (q, compile_branch_rules(q), compile_member_rules(q))
        except PolicyError:
            _UPDATES[k] = None
    return _UPDATES[k]


class _View:
    """A policy document read as the scoring module reads a Policy, one leaf changed at a time.

    Building a Policy per move (a deep copy and a full check) costs far more than rating
    the city; the view compiles the same rules from the document with one value set, and
    only a move that changes something is then made for real with :meth:`Policy.update`.
    """

    def __init__(self, policy: Policy, doc: dict):
        self._data = doc
        self._paths = set(policy._params)

    branch_types = Policy.branch_types
    dimensions = Policy.dimensions

    def __getitem__(self, path: str):
        node = _leaf(self._data, path)
        return node["value"] if path in self._paths else node

    def __contains__(self, path: str) -> bool:
        return path in self._paths

    def accepted(self, key: int, path: str, value) -> bool:
        """Whether a policy with ``path`` set to ``value`` passes the package's checks (cached)."""
        k = ("accepted", key, type(value), path, value)
        if k not in _UPDATES:
            leaf = _leaf(self._data, path)
            old = leaf["value"]
            leaf["value"] = value
            try:
                Policy(self._data, where="moved")          # validates a copy; the view is restored
                _UPDATES[k] = True
            except PolicyError:
                _UPDATES[k] = False
            finally:
                leaf["value"] = old
        return _UPDATES[k]

    def rules(self, path: str, value, base=None):
        """Branch and member rules with ``path`` set to ``value`` (the document is restored).

        With ``base`` (the policy's own rules), only the rules of the section ``path`` is in
        are compiled again: member rules read only ``member.*``, branch rules never read it.
        """
        leaf = _leaf(self._data, path)
        old = leaf["value"]
        leaf["value"] = value
        try:
            if base is None:
                return compile_branch_rules(self), compile_member_rules(self)
            if path.startswith("member."):
                return base[0], compile_member_rules(self)
            return compile_branch_rules(self), base[1]
        finally:
            leaf["value"] = old


def _same(a, b) -> bool:
    """Compiled rules equal field by field (arrays by value)."""
    if a is b:
        return True
    if is_dataclass(a) and is_dataclass(b):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, tuple) and isinstance(b, tuple) and a and b and not isinstance(a[0], (str, int, float)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


class _Rater:
    """The population's arrays, prepared once, rated under many policies."""

    def __init__(self, pop, policy: Policy):
        b = pop.branches
        self.brules = compile_branch_rules(policy)
        self.tb = type_codes(b["type"], self.brules.types, policy.name)
        self.facts = b[list(self.brules.indicators.facts)].to_numpy(float)
        self.survey = b[list(SURVEY_COLUMNS)].to_numpy(float)
        self.n_members = b["n_members"].to_numpy()
        self.prev = b["prev_weak"].to_numpy()
        self.base_b = self.branches(policy, self.brules)
        self.has_members = pop.members is not None and pop.member_months is not None
        if self.has_members:
            m, mm = pop.members, pop.member_months
            self.mrules = compile_member_rules(policy)
            owner = pd.Index(b["branch_id"]).get_indexer(m["branch_id"])
            self.midx = pd.Index(m["member_id"]).get_indexer(mm["member_id"])
            self.tm = self.tb[owner][self.midx]
            self.n_m = len(m)
            self.appraisal = m["appraisal"].to_numpy(float)
            # Column-major: a move re-scores only the indicator columns it changes, from the total
            # of the others; nothing of size (member-months x indicators) is kept but the facts.
            facts = np.asfortranarray(mm[list(self.mrules.indicators.facts)].to_numpy(float))
            self.mfacts = facts
            self.total = np.zeros(len(facts))
            for j in range(facts.shape[1]):
                self.total += self._points(self.mrules, [j])
            self.monthly = self._monthly(self.mrules, [])
            # The shortcut must give monthly_scores' numbers (checked on the first rows), else
            # every move is scored in full.
            k = min(len(facts), 20_000)
            self.exact = np.array_equal(self.monthly[:k], monthly_scores(facts[:k], self.tm[:k], self.mrules))
            if not self.exact:
                self.monthly = monthly_scores(facts, self.tm, self.mrules)
            self.base_g = member_grades(self._annual(self.monthly, self.mrules), self.mrules)

    def branches(self, policy: Policy, rules) -> np.ndarray:
        """(n, 6) decisions per branch: stars, weak, reorganise, structure level, committee, below minimum."""
        o = branch_outcome(self.facts, self.tb, self.survey, rules)
        _, reorganise, _ = branch_consequences(o["weak"], self.prev, rules.reorganise_after)
        need = required_level(self.n_members, policy)
        return np.column_stack([o["stars"], o["weak"], reorganise, need["level"], need["committee"],
                                need["below_minimum"]])

    def _annual(self, monthly, rules):
        return annual_scores(monthly, self.midx, self.n_m, self.appraisal, rules)

    def _points(self, rules, cols) -> np.ndarray:
        """Points of the indicator columns ``cols`` under ``rules``, summed per member-month."""
        sub = rules.indicators.reordered(np.asarray(cols))
        return indicator_points(self.mfacts[:, cols], self.tm, sub).sum(axis=1)

    def _monthly(self, rules, cols) -> np.ndarray:
        ind = rules.indicators
        total = self.total
        if len(cols):
            total = total + (self._points(rules, cols) - self._points(self.mrules, cols))
        top = ind.group_max.sum(axis=1)[self.tm]
        return np.round(np.minimum(100.0 * total / top, 100.0), 9)

    def changes(self, policy, brules, mrules) -> tuple[int, int]:
        """Branches and members whose decisions differ from the policy's own."""
        if _same(brules, self.brules):          # only the structure thresholds can differ
            need = required_level(self.n_members, policy)
            now = np.column_stack([need["level"], need["committee"], need["below_minimum"]])
            nb = int((now != self.base_b[:, 3:]).any(axis=1).sum())
        else:
            nb = int((self.branches(policy, brules) != self.base_b).any(axis=1).sum())
        nm = 0
        if self.has_members and not _same(mrules, self.mrules):
            nm = int((self.members(mrules) != self.base_g).sum())
        return nb, nm

    def members(self, rules) -> np.ndarray:
        a, b = rules.indicators, self.mrules.indicators
        cols = [j for j in range(len(a.ids))
                if not (np.array_equal(a.max_points[:, j], b.max_points[:, j]) and a.kind[j] == b.kind[j]
                        and a.required[j] == b.required[j] and a.per_shortfall[j] == b.per_shortfall[j]
                        and a.per_unit[j] == b.per_unit[j])]
        if not cols and np.array_equal(a.group_max, b.group_max):
            monthly = self.monthly
        elif self.exact:
            monthly = self._monthly(rules, cols)
        else:
            monthly = monthly_scores(self.mfacts, self.tm, rules)
        return member_grades(self._annual(monthly, rules), rules)


def deciding_assumptions(pop, policy: Policy) -> pd.DataFrame:
    """Every assumption parameter, its move and how many units the move changes.

    Returns
    -------
    DataFrame
        One row per parameter whose provenance is an assumption, in the
        policy's order: ``path, value, moved_to, branches_changed,
        members_changed, decides, reason``. ``moved_to`` is the move that
        changed something (the first tried when none did; empty when the
        policy accepts no move), ``decides`` whether any unit changed.

    Examples
    --------
    >>> import branchsim as bs
    >>> pol = bs.Policy.load()
    >>> d = deciding_assumptions(bs.generate(pol, seed=0, n_branches=200, members=False), pol)
    >>> row = d.set_index("path").loc["branch.star_cuts.5"]
    >>> float(row["moved_to"]), bool(row["decides"])
    (91.0, True)
    >>> bool(d.set_index("path").loc["consequences.effects.talk", "decides"])   # acts in later years only
    False
    """
    rater = _Rater(pop, policy)
    doc = policy.to_dict()
    key = hash(repr(doc))
    view = _View(policy, doc)
    own = (rater.brules, rater.mrules if rater.has_members else compile_member_rules(policy))
    fast = _same(view.rules(SHARE_PROBE, policy[SHARE_PROBE]), own)
    grouped = {p for g in _share_groups(doc) for p in g}
    rows = []
    for path, (spec, leaf) in policy._params.items():
        if "quote" in leaf:
            continue
        value = leaf["value"]
        # Shares are re-normalised and whole numbers / yes-no have cross-checks: always a real update.
        real = not fast or path in grouped or spec.kind in ("int", "bool")
        first, hit = None, None
        for side in step_of(spec, value):
            for v in (side if isinstance(side, list) else [side]):
                if v is None:
                    continue
                if real:
                    moved = _updated(policy, key, path, v)
                    if moved is None:
                        continue
                    counts = rater.changes(*moved)
                else:
                    if value_problem(spec, v):
                        continue
                    counts = rater.changes(view, *view.rules(path, v, own))
                    if any(counts) and not view.accepted(key, path, v):
                        continue                   # refused as a whole policy: not a move
                first = first or (v, *counts)
                if any(counts):
                    hit = (v, *counts)
                break                              # the first allowed value on this side
            if hit:
                break
        v, nb, nm = hit or first or (None, 0, 0)
        rows.append({"path": path, "value": value, "moved_to": v, "branches_changed": nb,
                     "members_changed": nm, "decides": bool(nb or nm), "reason": leaf["assumption"]})
    return pd.DataFrame(rows, columns=["path", "value", "moved_to", "branches_changed", "members_changed",
                                       "decides", "reason"])
