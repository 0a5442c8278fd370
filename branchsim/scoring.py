"""Pure, vectorised scoring rules: raw facts → points → scores → stars, grades.

Nothing here draws a random number or loops over units: every function
works on whole arrays (one row per branch, member or member-month) and a
policy is first *compiled* into arrays (:func:`compile_branch_rules`,
:func:`compile_member_rules`) so the same rules apply to any number of units.

Score arithmetic (see ``docs/policy-format.md``)::

    points_i    = rule_i(fact_i)                       # binary / deduction / proportion / bonus
    fraction_d  = min(1, Σ_{i in d} points_i / Σ_{i in d, not bonus} max_i)
    survey      = Σ_answers count × value / Σ count     # in [0, 1]
    score       = 100 × (Σ_d share_d × fraction_d + share_survey × survey)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .policy import Policy

__all__ = [
    "IndicatorRules", "BranchRules", "MemberRules", "STRUCTURE_LEVELS", "GRADES",
    "compile_branch_rules", "compile_member_rules", "type_codes",
    "indicator_points", "group_fractions", "satisfaction_rate", "branch_components",
    "weighted_scores", "star_levels", "apply_vetoes", "branch_outcome",
    "monthly_scores", "annual_scores", "member_grades",
    "required_level", "branch_consequences", "member_consequences",
]

RULE_CODES = {"binary": 0, "deduction": 1, "proportion": 2, "bonus": 3}
#: Member grades from worst to best; a grade's code is its index.
GRADES = ("unqualified", "warning", "basic", "qualified", "excellent")
#: Organisation levels from smallest to largest; a level's code is its index.
STRUCTURE_LEVELS = ("branch", "general_branch", "party_committee")
# Scores are rounded to this many decimals so a score that is exactly on a
# cut point in decimal arithmetic (e.g. 70.0) is not 69.99999999999999.
# The rounding comes *before* the cut points: a score within 5e-10 below a cut
# reaches it (documented in docs/policy-format.md, "Rounding").
_DECIMALS = 9


def _require_finite(scores: np.ndarray, what: str) -> None:
    """A non-finite score is an error, never rated (a NaN would sort to the top star or grade).

    >>> _require_finite(np.array([70.0, np.nan]), "branch score")
    Traceback (most recent call last):
    ...
    branchsim.errors.DataError: branch score is not a finite number in row 2 (nan); a unit with such a score cannot be rated: check its facts and the policy's points
    """
    scores = np.asarray(scores)
    ok = np.isfinite(scores)
    if ok.all():
        return
    from .errors import DataError
    bad = np.flatnonzero(~ok.reshape(len(scores), -1).all(axis=1)) if scores.ndim else np.array([0])
    shown = ", ".join(str(i + 1) for i in bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    first = float(scores.reshape(len(scores), -1)[bad[0]][~ok.reshape(len(scores), -1)[bad[0]]][0]) \
        if scores.ndim else float(scores)
    raise DataError(f"{what} is not a finite number in row{'s' if len(bad) > 1 else ''} {shown} ({first}); "
                    f"a unit with such a score cannot be rated: check its facts and the policy's points")


@dataclass(frozen=True)
class IndicatorRules:
    """A list of indicators compiled to arrays (k indicators, t types)."""

    ids: tuple[str, ...]
    facts: tuple[str, ...]
    group_ids: tuple[str, ...]
    group: np.ndarray          # (k,) index into group_ids
    kind: np.ndarray           # (k,) RULE_CODES
    max_points: np.ndarray     # (t, k) maximum points by type (0 = not applicable)
    required: np.ndarray       # (k,) deduction: required count
    per_shortfall: np.ndarray  # (k,) deduction: points off per unit short
    per_unit: np.ndarray       # (k,) bonus: points per unit of the fact

    def reordered(self, order: np.ndarray) -> "IndicatorRules":
        """The same rules with columns in ``order`` (e.g. grouped by rule form)."""
        return IndicatorRules(tuple(self.ids[i] for i in order), tuple(self.facts[i] for i in order),
                              self.group_ids, self.group[order], self.kind[order],
                              self.max_points[:, order], self.required[order],
                              self.per_shortfall[order], self.per_unit[order])

    @property
    def group_max(self) -> np.ndarray:
        """(t, g) maximum non-bonus points of each group for each type."""
        scored = np.where(self.kind[None, :] == RULE_CODES["bonus"], 0.0, self.max_points)
        onehot = np.eye(len(self.group_ids))[self.group]          # (k, g)
        return scored @ onehot


@dataclass(frozen=True)
class BranchRules:
    types: tuple[str, ...]
    indicators: IndicatorRules
    components: tuple[str, ...]  # the dimensions, then "satisfaction"
    weights: np.ndarray          # (t, d + 1) shares of the 100-point score
    answer_values: np.ndarray    # (3,) satisfied, basic, dissatisfied
    star_levels: np.ndarray      # (c,) star level of each cut, ascending
    star_cuts: np.ndarray        # (c,) minimum score of each level, ascending
    weak_below: float
    veto_ids: tuple[str, ...]
    veto_indicator: np.ndarray   # (v,) column index into the indicator facts
    veto_below: np.ndarray       # (v,)
    veto_max_star: np.ndarray    # (v,)
    veto_weak: np.ndarray        # (v,) bool
    reorganise_after: int


@dataclass(frozen=True)
class MemberRules:
    types: tuple[str, ...]
    indicators: IndicatorRules
    monthly_share: float
    appraisal_share: float
    grade_cuts: np.ndarray       # (4,) warning, basic, qualified, excellent (ascending)


def _compile_indicators(policy: Policy, section: str, group_key: str, groups: list[str],
                        types: list[str]) -> IndicatorRules:
    inds = policy[f"{section}.indicators"]
    overrides = policy[section].get("types") or {}
    ids = tuple(inds)
    base = np.array([inds[i]["points"]["value"] for i in ids], dtype=float)
    max_points = np.tile(base, (len(types), 1))
    for t, tid in enumerate(types):
        for iid, o in ((overrides.get(tid) or {}).get("indicators") or {}).items():
            max_points[t, ids.index(iid)] = o["points"]["value"]

    def param(name):
        return np.array([inds[i].get(name, {"value": 0})["value"] for i in ids], dtype=float)

    return IndicatorRules(
        ids=ids,
        facts=tuple(inds[i]["fact"] for i in ids),
        group_ids=tuple(groups),
        group=np.array([groups.index(inds[i][group_key]) for i in ids], dtype=np.intp),
        kind=np.array([RULE_CODES[inds[i]["rule"]] for i in ids], dtype=np.int8),
        max_points=max_points,
        required=param("required"),
        per_shortfall=param("per_shortfall"),
        per_unit=param("per_unit"),
    )


def compile_branch_rules(policy: Policy) -> BranchRules:
    """Compile a policy's branch rules to arrays.

    Examples
    --------
    >>> import branchsim as bs
    >>> rules = bs.scoring.compile_branch_rules(bs.Policy.load())
    >>> rules.components[-1], float(rules.weights[0].sum())
    ('satisfaction', 1.0)
    """
    types = policy.branch_types
    dims = policy.dimensions
    ind = _compile_indicators(policy, "branch", "dimension", dims, types)
    dim_share = np.array([policy[f"branch.dimensions.{d}.share"] for d in dims])
    sat = policy["branch.satisfaction_share"]
    weights = np.empty((len(types), len(dims) + 1))
    for t, tid in enumerate(types):
        path = f"branch.types.{tid}.satisfaction_share"
        s = policy[path] if path in policy else sat
        # A type's own survey share re-normalises the dimension shares for that type.
        weights[t, :-1] = dim_share * ((1 - s) / dim_share.sum()) if dim_share.sum() else 0.0
        weights[t, -1] = s
    cuts = sorted((int(k), v["value"]) for k, v in policy["branch.star_cuts"].items())
    vetoes = policy["branch"].get("vetoes") or {}
    vids = tuple(vetoes)
    return BranchRules(
        types=tuple(types),
        indicators=ind,
        components=tuple(dims) + ("satisfaction",),
        weights=weights,
        answer_values=np.array([policy[f"branch.survey.answer_values.{a}"]
                                for a in ("satisfied", "basic", "dissatisfied")]),
        star_levels=np.array([k for k, _ in cuts], dtype=np.int8),
        star_cuts=np.array([c for _, c in cuts], dtype=float),
        weak_below=float(policy["branch.weak_below"]),
        veto_ids=vids,
        veto_indicator=np.array([ind.ids.index(vetoes[v]["indicator"]) for v in vids], dtype=np.intp),
        veto_below=np.array([vetoes[v]["below"]["value"] for v in vids], dtype=float),
        veto_max_star=np.array([vetoes[v]["max_star"]["value"] for v in vids], dtype=np.int8),
        veto_weak=np.array([vetoes[v]["weak"]["value"] for v in vids], dtype=bool),
        reorganise_after=int(policy["consequences.reorganise_after"]),
    )


def type_codes(types, known: tuple[str, ...] | list[str], policy_name: str = "") -> np.ndarray:
    """Index of each branch's type in ``known``; a type the policy does not have is an error.

    >>> type_codes(["village", "enterprise"], ("village", "enterprise")).tolist()
    [0, 1]
    """
    codes = pd.Index(list(known)).get_indexer(types).astype(np.intp)
    if (codes < 0).any():
        from .errors import DataError
        bad = sorted({str(t) for t, c in zip(types, codes) if c < 0})
        raise DataError(f"branches of type(s) {bad[:5]} are not types of policy {policy_name!r}; "
                        f"allowed: {', '.join(known)}")
    return codes


def compile_member_rules(policy: Policy) -> MemberRules:
    """Compile a policy's member rules to arrays (types are branch types)."""
    groups = list(policy["member.groups"])
    ind = _compile_indicators(policy, "member", "group", groups, policy.branch_types)
    cuts = policy["member.grade_cuts"]
    return MemberRules(
        types=tuple(policy.branch_types),
        indicators=ind,
        monthly_share=float(policy["member.monthly_share"]),
        appraisal_share=float(policy["member.appraisal_share"]),
        grade_cuts=np.array([cuts[g]["value"] for g in GRADES[1:]], dtype=float),
    )


# -- facts to points ---------------------------------------------------------
def indicator_points(facts: np.ndarray, type_idx: np.ndarray, rules: IndicatorRules) -> np.ndarray:
    """Points of every indicator for every unit, shape ``(n, k)``.

    ``facts`` is ``(n, k)`` in the order of ``rules.facts``; ``type_idx`` the
    unit's type code. Each rule form is computed for all units at once.

    Examples
    --------
    A deduction rule: 12 meetings required, 0.5 points off per meeting missed,
    6 points at most; 9 meetings held gives 6 - 1.5 = 4.5 points.

    >>> import numpy as np
    >>> r = IndicatorRules(("m",), ("meetings",), ("g",), np.array([0]), np.array([1]),
    ...                    np.array([[6.0]]), np.array([12.0]), np.array([0.5]), np.array([0.0]))
    >>> indicator_points(np.array([[9.0], [20.0], [0.0]]), np.zeros(3, int), r).ravel().tolist()
    [4.5, 6.0, 0.0]
    """
    facts = np.asarray(facts, dtype=float)
    top = rules.max_points[np.asarray(type_idx)]                   # (n, k)
    pts = np.empty_like(top)
    for code, cols in _columns_by_rule(rules.kind):               # at most four column blocks
        f, t = facts[:, cols], top[:, cols]
        if code == 0:      # met / not met
            pts[:, cols] = np.where(f >= 1.0, t, 0.0)
        elif code == 1:    # deduction per shortfall, floored at zero
            pts[:, cols] = np.maximum(t - rules.per_shortfall[cols] * np.maximum(rules.required[cols] - f, 0.0), 0.0)
        elif code == 2:    # proportion
            pts[:, cols] = t * np.clip(f, 0.0, 1.0)
        else:              # capped bonus
            pts[:, cols] = np.minimum(t, rules.per_unit[cols] * np.maximum(f, 0.0))
    return pts


def _columns_by_rule(kind: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """Columns of each rule form: a slice when they are contiguous (views, no gathers)."""
    out = []
    for code in range(4):
        cols = np.flatnonzero(kind == code)
        if len(cols):
            contiguous = cols[-1] - cols[0] + 1 == len(cols)
            out.append((code, slice(cols[0], cols[-1] + 1) if contiguous else cols))
    return out


def group_fractions(points: np.ndarray, type_idx: np.ndarray, rules: IndicatorRules) -> np.ndarray:
    """Share of each group's maximum reached, ``(n, g)`` in [0, 1] (bonus counts, capped)."""
    onehot = np.eye(len(rules.group_ids))[rules.group]             # (k, g)
    got = np.asarray(points) @ onehot                              # (n, g)
    top = rules.group_max[np.asarray(type_idx)]                    # (n, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(top > 0, got / top, 0.0)
    return np.minimum(frac, 1.0)


def satisfaction_rate(counts: np.ndarray, answer_values: np.ndarray) -> np.ndarray:
    """Mean answer value from ``(n, 3)`` counts of satisfied / basic / dissatisfied."""
    counts = np.asarray(counts, dtype=float)
    return (counts @ answer_values) / counts.sum(axis=1)


def branch_components(facts, type_idx, survey_counts, rules: BranchRules):
    """Points ``(n, k)`` and components ``(n, d + 1)``: dimension fractions, then the survey rate."""
    pts = indicator_points(facts, type_idx, rules.indicators)
    comp = np.column_stack([group_fractions(pts, type_idx, rules.indicators),
                            satisfaction_rate(survey_counts, rules.answer_values)])
    return pts, comp


def weighted_scores(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Score on 100 points: ``100 × components @ weights``.

    ``weights`` is ``(c,)`` for one policy or ``(c, s)`` for ``s`` scenarios
    at once (one matrix product → ``(n, s)``).
    """
    return np.round(100.0 * (np.asarray(components, float) @ np.asarray(weights, float)), _DECIMALS)


def star_levels(scores: np.ndarray, levels: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Star level of each score: the highest level whose cut the score reaches, else 0.

    A score exactly on a cut point gets that level. A score that is not a
    finite number (NaN, inf) is an error: it is never rated.

    >>> star_levels(np.array([69.9, 70.0, 85, 90]), np.array([3, 4, 5]), np.array([70., 80, 90])).tolist()
    [0, 3, 4, 5]
    """
    _require_finite(scores, "branch score")
    idx = np.searchsorted(cuts, scores, side="right")
    return np.concatenate([[0], levels]).astype(np.int8)[idx]


def apply_vetoes(stars: np.ndarray, facts: np.ndarray, rules: BranchRules):
    """Cap stars by the vetoes that fire; return ``(stars, veto_weak, fired)``.

    ``fired`` is ``(n, v)`` bool, one column per veto in ``rules.veto_ids``.
    """
    fired = np.asarray(facts, dtype=float)[:, rules.veto_indicator] < rules.veto_below
    cap = np.where(fired, rules.veto_max_star, 5).min(axis=1, initial=5)
    return np.minimum(stars, cap).astype(np.int8), (fired & rules.veto_weak).any(axis=1), fired


def branch_outcome(facts, type_idx, survey_counts, rules: BranchRules) -> dict[str, np.ndarray]:
    """Everything one evaluation decides for each branch, as arrays.

    Returns a dict with ``points`` (n, k), ``components`` (n, d+1),
    ``subscores`` (n, d+1) in points, ``score``, ``stars`` (after vetoes),
    ``weak`` and ``vetoes`` (n, v).
    """
    type_idx = np.asarray(type_idx)
    pts, comp = branch_components(facts, type_idx, survey_counts, rules)
    w = rules.weights[type_idx]                                    # per-unit shares (type rules)
    score = np.round(100.0 * np.einsum("nc,nc->n", comp, w), _DECIMALS)
    stars, veto_weak, fired = apply_vetoes(star_levels(score, rules.star_levels, rules.star_cuts),
                                           facts, rules)
    return {"points": pts, "components": comp, "subscores": 100.0 * comp * w, "score": score,
            "stars": stars, "weak": (score < rules.weak_below) | veto_weak, "vetoes": fired}


# -- members -----------------------------------------------------------------
def monthly_scores(facts: np.ndarray, type_idx: np.ndarray, rules: MemberRules) -> np.ndarray:
    """Score of each member-month on 100 points (bonus counts, capped at 100)."""
    ind = rules.indicators
    pts = indicator_points(facts, type_idx, ind)
    top = ind.group_max[np.asarray(type_idx)].sum(axis=1)
    return np.round(np.minimum(100.0 * pts.sum(axis=1) / top, 100.0), _DECIMALS)


def annual_scores(monthly: np.ndarray, member_idx: np.ndarray, n_members: int,
                  appraisal: np.ndarray, rules: MemberRules) -> np.ndarray:
    """Annual score: ``monthly_share × mean monthly score + appraisal_share × appraisal``.

    ``member_idx`` maps each member-month row to its member (0..n_members-1).
    A member with no month on record gets NaN (the loader refuses such members).

    >>> r = MemberRules((), None, 0.8, 0.2, np.array([50., 60, 75, 90]))
    >>> annual_scores(np.array([80., 90]), np.array([0, 0]), 1, np.array([50.]), r).tolist()
    [78.0]
    """
    member_idx = np.asarray(member_idx)
    total = np.bincount(member_idx, weights=monthly, minlength=n_members)
    months = np.bincount(member_idx, minlength=n_members)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / months
    return np.round(rules.monthly_share * mean + rules.appraisal_share * np.asarray(appraisal, float),
                    _DECIMALS)


def member_grades(annual: np.ndarray, rules: MemberRules) -> np.ndarray:
    """Grade code (index into :data:`GRADES`): 0 unqualified … 4 excellent.

    A score that is not a finite number is an error (never graded).
    """
    _require_finite(annual, "member annual score")
    return np.searchsorted(rules.grade_cuts, annual, side="right").astype(np.int8)


# -- structure and consequences ---------------------------------------------------
def required_level(n_members: np.ndarray, policy: Policy) -> dict[str, np.ndarray]:
    """Organisation each unit should be from its member count.

    Returns ``level`` (index into :data:`STRUCTURE_LEVELS`), ``committee``
    (a branch committee is called for) and ``below_minimum``.

    >>> import branchsim as bs
    >>> required_level(np.array([2, 7, 51, 100]), bs.Policy.load())["level"].tolist()
    [0, 0, 1, 2]
    """
    n = np.asarray(n_members)
    s = {k: policy[f"structure.{k}"] for k in
         ("min_members", "committee_from", "general_branch_from", "party_committee_from")}
    level = (n >= s["general_branch_from"]).astype(np.int8) + (n >= s["party_committee_from"])
    return {"level": level, "committee": n >= s["committee_from"], "below_minimum": n < s["min_members"]}


def branch_consequences(unqualified: np.ndarray, streak_before: np.ndarray, reorganise_after: int):
    """Talk for every unqualified branch; reorganisation once the streak reaches the rule.

    ``streak_before`` counts the consecutive unqualified years just before
    this one. Returns ``(talk, reorganise, streak)``.

    >>> t, r, s = branch_consequences(np.array([True, True, False]), np.array([1, 0, 3]), 2)
    >>> r.tolist(), s.tolist()
    ([True, False, False], [2, 1, 0])
    """
    unqualified = np.asarray(unqualified, dtype=bool)
    streak = np.where(unqualified, np.asarray(streak_before) + 1, 0)
    return unqualified, streak >= reorganise_after, streak


def member_consequences(grade: np.ndarray):
    """``(mentoring, handling)``: warning-grade members are mentored, unqualified handled."""
    grade = np.asarray(grade)
    return grade == GRADES.index("warning"), grade == GRADES.index("unqualified")
