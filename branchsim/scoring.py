"""Pure, vectorised scoring rules: raw facts → points → scores.

Nothing here draws a random number, decides a level or loops over units:
every function works on whole arrays (one row per branch, member or
member-period) with the compiled sheet of a :class:`~branchsim.scheme.Scheme`.
How scores become levels is the rating room's (:mod:`branchsim.rating`).

Score arithmetic (``docs/policy-format.md``)::

    points_i  = rule_i(fact_i)            # binary / deduction / proportion / per_event / per_occurrence /
                                          # rank / bonus / penalty; zeroing sets a target's points to 0
    shares:   fraction_d = clip(Σ_{i in d} points_i / max_d, 0, 1)      (bonus capped per dimension)
              score = 100 × (Σ_d share_d × fraction_d + share_survey × survey)
    points:   sheet = clip(base + Σ_d min(cap_d, scored_d) + min(bonus_cap, bonus) − penalties, floor, cap)
              score = (1 − share_survey) × sheet + 100 × share_survey × survey
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .scheme import EXTRA_CODES, RULE_CODES, BranchScheme, MemberScheme, Sheet, Structure

if TYPE_CHECKING:
    from collections.abc import Sequence
    from numpy.typing import ArrayLike

__all__ = ["RULE_CODES", "DECIMALS", "type_codes", "indicator_points", "rank_points", "group_points",
           "satisfaction_rate", "answer_share", "branch_components", "weighted_scores", "branch_scores",
           "scores_from_components",
           "record_scores", "record_from_totals", "period_totals", "annual_facts", "annual_scores", "required_level"]

#: Scores are rounded to this many decimals before any comparison, so a score that is exactly on a
#: cut in decimal arithmetic (e.g. 70.0) is not 69.99999999999999 (docs/policy-format.md, "Rounding").
DECIMALS = 9


def type_codes(types: ArrayLike, known: tuple[str, ...] | list[str], policy_name: str = "", what: str = "type") -> np.ndarray:
    """Index of each unit's type (or class) in ``known``; one the policy does not have is an error.

    >>> type_codes(["b", "a"], ("a", "b")).tolist()
    [1, 0]
    """
    # factorised first (Arrow-backed strings encode fast), then only the distinct values looked up
    raw, distinct = pd.factorize(types if isinstance(types, (pd.Series, pd.Index, np.ndarray))
                                 else np.asarray(list(types), dtype=object))
    lookup = np.r_[pd.Index(list(known)).get_indexer(distinct), -1].astype(np.intp)
    codes = lookup[raw]                                            # raw -1 (a missing value): the -1 at the end
    if (codes < 0).any():
        from .errors import DataError
        bad = sorted({str(t) for t, c in zip(types, codes) if c < 0})
        raise DataError(f"branches of {what}(s) {bad[:5]} are not {what}s of policy {policy_name!r}; "
                        f"allowed: {', '.join(known)}")
    return codes


def stack_columns(cols: Sequence[ArrayLike], n: int) -> np.ndarray:
    """``np.column_stack(cols)`` as a row-major ``(n, len(cols))`` array, the same values, written a column
    at a time into the rows of a ``(k, n)`` buffer and transposed once (``column_stack`` writes each
    column with a stride of a whole row).

    >>> stack_columns([np.array([1., 2.]), np.array([3., 4.])], 2).tolist()
    [[1.0, 3.0], [2.0, 4.0]]
    """
    out = np.empty((len(cols), n))
    for j, c in enumerate(cols):
        out[j] = c
    return np.ascontiguousarray(out.T)


def _columns_by_rule(kind: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """Columns of each rule form (one kind row): a slice when contiguous (views, no gathers)."""
    out = []
    for code in np.unique(kind).tolist():
        cols = np.flatnonzero(kind == code)
        contiguous = cols[-1] - cols[0] + 1 == len(cols)
        out.append((int(code), slice(cols[0], cols[-1] + 1) if contiguous else cols))
    return out


def _per_unit(values: np.ndarray, profile: np.ndarray, cols: np.ndarray | list[int]) -> np.ndarray:
    """A (P, k) parameter for the columns ``cols``: one row when every profile agrees, else per unit."""
    v = values[:, cols]
    return v[0] if (v == v[:1]).all() else v[profile]


def _form(code: int, f: np.ndarray, top: np.ndarray, p: dict) -> np.ndarray:
    """Points of one rule form on fact block ``f`` with maxima ``top`` (``p``: its parameters)."""
    if code == 0:                       # met / not met
        return np.where(f >= p["at_least"], top, 0.0)
    if code == 1:                       # deduction per shortfall, floored at zero
        return np.maximum(top - p["per_shortfall"] * np.maximum(p["required"] - f, 0.0), 0.0)
    if code == 2:                       # proportion
        return top * np.clip(f, 0.0, 1.0)
    if code == 3:                       # capped bonus
        return np.minimum(top, p["per_unit"] * np.maximum(f, 0.0))
    if code == 4:                       # points per event, capped
        return np.minimum(top, p["per_event"] * np.maximum(f, 0.0))
    if code == 5:                       # deduction per occurrence, floored at the item
        return np.maximum(top - p["per_occurrence"] * np.maximum(f, 0.0), 0.0)
    if code == 6:                       # penalty: taken off, at most the item's points
        return -np.minimum(top, p["per_occurrence"] * np.maximum(f, 0.0))
    return np.zeros_like(f)             # zeroing (applied afterwards) and rank (by place)


#: Units from which :func:`indicator_points` takes the compiled pass (below, NumPy's is as fast).
_COMPILED_FROM = 256

_PARAMS = {0: ("at_least",), 1: ("per_shortfall", "required"), 2: (), 3: ("per_unit",), 4: ("per_event",),
           5: ("per_occurrence",), 6: ("per_occurrence",), 7: (), 8: ()}


def indicator_points(facts: np.ndarray, profile: np.ndarray, sheet: Sheet, *,
                     rank_groups: dict | None = None) -> np.ndarray:
    """Points of every indicator for every unit, shape ``(n, k)``.

    ``facts`` is ``(n, k)`` in the order of ``sheet.facts``; ``profile`` the
    unit's profile code (its type, or type and class). Each rule form is
    computed for all units at once; ``rank`` rules rank the units given
    together (``rank_groups``: ``{within column: group codes}`` for ranks
    within groups), ``zeroing`` rules then set their targets to 0.

    Examples
    --------
    A deduction rule: 12 committee meetings required, 0.5 points off per
    meeting missed, 4 points at most; 9 meetings held give 4 - 1.5 = 2.5 points.

    >>> import branchsim as bs
    >>> sheet = bs.Policy.load().scheme.branch.sheet
    >>> j = sheet.facts.index("committee_meetings")
    >>> facts = np.zeros((1, sheet.k)); facts[0, j] = 9
    >>> float(indicator_points(facts, np.array([0]), sheet)[0, j]), float(sheet.points[0, j])
    (2.5, 4.0)
    """
    facts = np.asarray(facts, dtype=float)
    profile = np.asarray(profile)
    from . import _month_kernel
    if len(profile) >= _COMPILED_FROM and _month_kernel.supports(sheet):   # no rank or zeroing rule
        return _month_kernel.points_matrix(facts, profile, sheet)        # the same numbers, one pass
    if sheet.uniform:
        pts = np.empty((len(profile), sheet.k))
        for code, cols in _columns_by_rule(sheet.kind[0]):
            p = {name: _per_unit(getattr(sheet, name), profile, cols) for name in _PARAMS[code]}
            pts[:, cols] = _form(code, facts[:, cols], _per_unit(sheet.points, profile, cols), p)
    else:                                                         # a type changes a rule form
        top = sheet.points[profile]                               # (n, k)
        pts = np.zeros_like(top)
        kind = sheet.kind[profile]
        for code in np.unique(sheet.kind).tolist():
            p = {name: getattr(sheet, name)[profile] for name in _PARAMS[code]}
            pts = np.where(kind == code, _form(code, facts, top, p), pts)
    if sheet.has("rank"):
        for j in np.flatnonzero((sheet.kind == RULE_CODES["rank"]).any(axis=0)):
            groups = None if sheet.within[j] is None else (rank_groups or {}).get(sheet.within[j])
            if sheet.within[j] is not None and groups is None:
                from .errors import DataError
                raise DataError(f"indicator {sheet.ids[j]!r} ranks within {sheet.within[j]!r}: the units' "
                                f"{sheet.within[j]} is needed")
            ranked = rank_points(facts[:, j], groups, sheet.places[profile, j], sheet.high_first[j])
            pts[:, j] = np.where(sheet.kind[profile, j] == RULE_CODES["rank"], ranked, pts[:, j])
    if sheet.has("zeroing"):
        for j in np.flatnonzero((sheet.kind == RULE_CODES["zeroing"]).any(axis=0)):
            fired = (sheet.kind[profile, j] == RULE_CODES["zeroing"]) & (facts[:, j] >= sheet.at_least[profile, j])
            t = sheet.target[j]
            pts[:, t] = np.where(fired, 0.0, pts[:, t])
    return pts


def rank_points(fact: np.ndarray, groups: np.ndarray | None, places: np.ndarray, high_first: bool) -> np.ndarray:
    """Points by place in a group: competition ranking (equal facts share the better place).

    ``places`` is ``(n, m)``: each unit's points for places 1..m (the last
    column also for every place beyond m).

    >>> rank_points(np.array([5., 9, 9, 1]), None, np.tile([60., 57, 54, 0], (4, 1)), True).tolist()
    [54.0, 60.0, 60.0, 0.0]
    """
    fact = np.asarray(fact, float)
    n = len(fact)
    groups = np.zeros(n, dtype=np.intp) if groups is None else np.asarray(groups)
    key = -fact if high_first else fact
    order = np.lexsort((key, groups))                 # by group, then best first
    g_sorted, k_sorted = groups[order], key[order]
    start = np.r_[True, g_sorted[1:] != g_sorted[:-1]]
    first_of_group = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    new_value = start | np.r_[True, k_sorted[1:] != k_sorted[:-1]]
    first_of_value = np.maximum.accumulate(np.where(new_value, np.arange(n), 0))
    place = np.empty(n, dtype=np.intp)
    place[order] = first_of_value - first_of_group     # 0-based competition rank
    m = places.shape[1]
    return places[np.arange(n), np.minimum(place, m - 1)] if n else np.zeros(0)


def ordered_product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for ``x`` ``(n, k)`` and ``w`` ``(k,)`` or ``(k, g)``, adding the terms in column order.

    A matrix product leaves the order of its additions to the BLAS kernel,
    which differs between CPUs and library builds (a 1-ulp difference in a
    subscore shown to the user); here the order is fixed, so every machine
    gives the same bits. ``w`` is read as given (0/1 group indicators or
    weights); zero weights are skipped.

    >>> import numpy as np
    >>> bool(ordered_product(np.array([[0.1, 0.2, 0.3]]), np.array([1.0, 1.0, 1.0]))[0] == (0.1 + 0.2) + 0.3)
    True
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    vector = w.ndim == 1
    w2 = w[:, None] if vector else w
    cols, groups = np.nonzero(w2)
    from . import _month_kernel
    if len(x) >= _COMPILED_FROM and _month_kernel.available() and (w2[cols, groups] == 1.0).all():
        out = _month_kernel.group_sums(x, cols, groups, w2.shape[1])     # the same additions, one pass
        return out[:, 0] if vector else out
    out = np.zeros((x.shape[0], w2.shape[1]))
    for j, g in zip(cols, groups):
        out[:, g] += x[:, j] if w2[j, g] == 1.0 else x[:, j] * w2[j, g]
    return out[:, 0] if vector else out


def group_points(points: np.ndarray, profile: np.ndarray, sheet: Sheet,
                 bonus_cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: ``(got, scored, bonus)`` each ``(n, g)``; ``got`` = scored + capped bonus − penalties.

    ``bonus_cap`` ``(P, g)`` caps each group's bonus points (inf: no cap).
    """
    points = np.asarray(points)
    onehot = sheet.onehot
    got = ordered_product(points, onehot)                          # bonus and penalties included
    extra = np.isin(sheet.kind[np.asarray(profile)], EXTRA_CODES)
    if not extra.any():
        return got, got, np.zeros_like(got)
    bonus = ordered_product(np.where(extra, np.maximum(points, 0.0), 0.0), onehot)
    penalty = ordered_product(np.where(extra, np.minimum(points, 0.0), 0.0), onehot)
    scored = ordered_product(np.where(extra, 0.0, points), onehot)
    if bonus_cap is not None and np.isfinite(bonus_cap).any():
        capped = np.minimum(bonus, bonus_cap[np.asarray(profile)])
        got = scored + capped + penalty
        bonus = capped
    return got, scored, bonus


def satisfaction_rate(counts: np.ndarray, answer_values: np.ndarray) -> np.ndarray:
    """Mean answer value from ``(n, a)`` answer counts (``answer_values`` in the same order)."""
    counts = np.asarray(counts, dtype=float)
    return ordered_product(counts, answer_values) / counts.sum(axis=1)


def answer_share(counts: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Share of respondents who gave one of the answers in ``which`` (a boolean mask over answers)."""
    counts = np.asarray(counts, dtype=float)
    return counts[:, np.asarray(which, bool)].sum(axis=1) / counts.sum(axis=1)


def branch_components(points: np.ndarray, type_idx: np.ndarray, survey_counts: np.ndarray | None, bs: BranchScheme) -> np.ndarray:
    """Components ``(n, c)`` of the branch score: ``score = 100 × components @ weights``.

    ``shares`` form: the dimension fractions, then the survey rate; ``points``
    form: the sheet's points / 100, then the survey rate.
    """
    type_idx = np.asarray(type_idx)
    capped = np.isfinite(bs.dim_bonus_cap).any()
    if bs.form == "shares" and not capped:
        got = ordered_product(points, bs.sheet.onehot)      # bonus and penalties count in their dimension
    else:
        got, scored, bonus = group_points(points, type_idx, bs.sheet, bs.dim_bonus_cap if capped else None)
    if bs.form == "shares":
        top = bs.sheet.group_max[type_idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(top > 0, got / top, 0.0)
        parts = [np.clip(frac, 0.0, 1.0) if (frac < 0).any() else np.minimum(frac, 1.0)]
    else:
        penalty = got - scored - bonus
        kept = np.minimum(scored, bs.dim_cap[type_idx]).sum(axis=1)
        sheet = bs.base + kept + np.minimum(bonus.sum(axis=1), bs.bonus_cap) + penalty.sum(axis=1)
        parts = [(np.clip(sheet, bs.floor, bs.cap) / 100.0)[:, None]]
    if bs.survey:
        parts.append(satisfaction_rate(survey_counts, bs.answer_values)[:, None])
    return np.column_stack(parts) if len(parts) > 1 else parts[0]


def weighted_scores(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Score: ``100 × components @ weights``, rounded to :data:`DECIMALS`.

    ``weights`` is ``(c,)`` for one policy or ``(c, s)`` for ``s`` scenarios
    at once (one matrix product → ``(n, s)``).
    """
    return np.round(100.0 * (np.asarray(components, float) @ np.asarray(weights, float)), DECIMALS)


def branch_scores(facts: np.ndarray, type_idx: np.ndarray, survey_counts: np.ndarray | None, bs: BranchScheme, *,
                  rank_groups: dict | None = None) -> dict[str, np.ndarray]:
    """Points ``(n, k)``, components ``(n, c)``, subscores ``(n, c)`` in points and the score ``(n,)``.

    ``facts`` holds the sheet's indicator facts (``bs.sheet.facts`` order).
    """
    type_idx = np.asarray(type_idx)
    pts = indicator_points(facts, type_idx, bs.sheet, rank_groups=rank_groups)
    return scores_from_components(pts, branch_components(pts, type_idx, survey_counts, bs), type_idx, bs)


def scores_from_components(points: np.ndarray, components: np.ndarray, type_idx: np.ndarray,
                           bs: BranchScheme) -> dict[str, np.ndarray]:
    """:func:`branch_scores` from points and components already computed (under the weights of ``bs``)."""
    w = bs.weights[np.asarray(type_idx)]                           # per-unit shares (type rules)
    score = np.round(100.0 * np.einsum("nc,nc->n", components, w), DECIMALS)
    return {"points": points, "components": components, "subscores": 100.0 * components * w, "score": score}


# -- members -----------------------------------------------------------------
def period_totals(points: np.ndarray, profile: np.ndarray, ms: MemberScheme) -> np.ndarray:
    """Each row's counted points: scored + bonus (capped at ``score.bonus_cap``) − penalties."""
    points = np.asarray(points)
    if np.isnan(ms.bonus_cap):
        return points.sum(axis=1)
    extra = np.isin(ms.sheet.kind[np.asarray(profile)], EXTRA_CODES)
    bonus = np.where(extra, np.maximum(points, 0.0), 0.0).sum(axis=1)
    return points.sum(axis=1) - bonus + np.minimum(bonus, ms.bonus_cap)


def record_scores(points: np.ndarray, profile: np.ndarray, ms: MemberScheme) -> np.ndarray:
    """Record score of each row on 100: ``clip(100 × counted / max, 0, cap)``, rounded."""
    return record_from_totals(period_totals(points, profile, ms), profile, ms)


def record_from_totals(counted: np.ndarray, profile: np.ndarray, ms: MemberScheme) -> np.ndarray:
    """:func:`record_scores` from each row's counted points (:func:`period_totals`, or a compiled kernel's)."""
    top = ms.sheet.group_max.sum(axis=1)[np.asarray(profile)]
    score = 100.0 * np.asarray(counted) / top
    if not np.isnan(ms.cap):
        score = np.minimum(score, ms.cap)
    return np.round(np.maximum(score, 0.0), DECIMALS)


def annual_facts(facts: np.ndarray, member_idx: np.ndarray, n_members: int, kind: np.ndarray) -> np.ndarray:
    """A year of period facts per member (``accrual: sum``): summed, a share averaged, binary met-every-period.

    ``facts`` ``(rows, k)``; ``member_idx`` maps each row to its member;
    ``kind`` the rule codes ``(k,)`` (of the member's profile where it differs).

    >>> annual_facts(np.array([[1., 2], [0., 3]]), np.array([0, 0]), 1, np.array([0, 4])).tolist()
    [[0.0, 5.0]]
    """
    facts = np.asarray(facts, float)
    member_idx = np.asarray(member_idx)
    k = facts.shape[1]
    out = np.empty((n_members, k))
    months = np.bincount(member_idx, minlength=n_members)
    for j in range(k):
        col = facts[:, j]
        if kind[j] == RULE_CODES["binary"]:
            low = np.full(n_members, np.inf)
            np.minimum.at(low, member_idx, col)
            out[:, j] = low
        elif kind[j] == RULE_CODES["proportion"]:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, j] = np.bincount(member_idx, col, n_members) / months
        else:
            out[:, j] = np.bincount(member_idx, col, n_members)
    return out


def annual_scores(record: np.ndarray, appraisal: np.ndarray | None, ms: MemberScheme) -> np.ndarray:
    """Annual score: ``record_share × record + appraisal_share × appraisal``, rounded.

    >>> import branchsim as bs
    >>> ms = bs.Policy.load().scheme.member
    >>> annual_scores(np.array([85.0]), np.array([50.0]), ms).tolist()
    [78.0]
    """
    record = np.asarray(record, float)
    appraisal = np.zeros_like(record) if appraisal is None else np.asarray(appraisal, float)
    return np.round(ms.record_share * record + ms.appraisal_share * appraisal, DECIMALS)


# -- structure ---------------------------------------------------------------------
def required_level(n_members: np.ndarray, st: Structure) -> dict[str, np.ndarray]:
    """Organisation each unit should be from its member count.

    Returns ``level`` (index into ``st.ids``: the largest level whose
    threshold the count reaches, 0 below every threshold), ``committee``
    (a committee is called for) and ``below_minimum`` (fewer members than the
    first level needs).

    >>> import branchsim as bs
    >>> st = bs.Policy.load().scheme.structure
    >>> required_level(np.array([2, 7, 51, 100]), st)["level"].tolist()
    [0, 0, 1, 2]
    """
    n = np.asarray(n_members)
    level = np.maximum(np.searchsorted(st.start, n, side="right") - 1, 0).astype(np.int8)
    committee = n >= st.committee_from if not np.isnan(st.committee_from) else np.zeros(len(n), dtype=bool)
    return {"level": level, "committee": committee, "below_minimum": n < st.start[0]}
