"""Fitting a fixed-cut design's cut points to target counts.

* :func:`fit_cut_points` — cut points that reproduce target counts of levels
  (by default the scheme's published counts, ``NAME.targets.yaml``, scaled
  to the population), with the whole range of cut points that reproduces
  them, for any number of levels;
* :func:`policy_with_cuts` — a fit turned into a policy
  (``branch.rating.cuts.<level>``, and a designation's score line).

A designation's score line (the weak line) is fitted like a cut point when
the targets name the designation.

Only a ``cuts`` design has cut points to fit: a relative design (quotas,
clustering) sets its own cuts from the scores each year. Scores, vetoes and
direct grading come from the core (:func:`branchsim.evaluate.branch_outcome`,
:mod:`branchsim.rating`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math

import numpy as np
import pandas as pd

from .. import rating as rt
from .._result import targets as published_targets
from ..errors import BranchsimError, PolicyError
from ..policy import Policy
from ..population import Population
from .fragility import _check_args, _evaluated

if TYPE_CHECKING:
    from ..plausible import Cities

__all__ = ["fit_cut_points", "policy_with_cuts"]

_TIE_BREAKS = ("midpoint", "high")


def _default_targets(policy: Policy, n: int) -> dict[str, int]:
    """The scheme's published counts of its levels, scaled from the published scale to ``n`` branches (half up)."""
    t = published_targets(policy)
    rated = policy.levels[:-1]
    counts = {lv: v for lv, v in t["counts"].items() if lv in rated}
    if not counts:
        raise BranchsimError(f"policy {policy.name!r} publishes no counts of its levels (its targets file "
                             f"{'has none' if policy.companion('targets') else 'is missing'}); give targets "
                             f"{{level id: count}} for the levels {', '.join(rated)}")
    scale = n / t["scale"] if t["scale"] else 1.0
    return {lv: int(math.floor(v * scale + 0.5)) for lv, v in counts.items()}


def _check_targets(targets, levels: list[str]) -> dict[str, int]:
    """Targets keyed by level id (best first), covering the top levels without a gap."""
    if not isinstance(targets, dict) or not targets:
        raise BranchsimError(f"targets must be a non-empty dict {{level id: count}}, got {targets!r}")
    rated, problems, out = levels[:-1], [], {}
    for k, v in targets.items():
        if k not in levels:
            raise PolicyError(f"targets name {k!r}, which is not a level; levels (best first): "
                              f"{', '.join(levels)}", where="branch.levels")
        if k == levels[-1]:
            raise PolicyError(f"targets name {k!r}, the floor: it has no cut point (every branch below the "
                              f"cuts gets it); give counts for {', '.join(rated)}", where="branch.rating.cuts")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            problems.append(f"targets[{k!r}]: {v!r} is not a whole number of branches >= 0")
            continue
        out[k] = int(v)
    if problems:
        raise BranchsimError("; ".join(problems))
    top = rated[:len(out)]
    if sorted(out, key=levels.index) != top:
        raise BranchsimError(f"targets must cover the top levels without a gap (counts at or above a level need "
                             f"every level above it): got {sorted(out, key=levels.index)}, expected {top}")
    return {k: out[k] for k in top}


def _interval(s: np.ndarray, n: int, top: float) -> tuple[float, float]:
    """Cut points ``(low, high]`` giving exactly ``n`` of the scores ``s`` (descending) at or above."""
    high = float(s[n - 1]) if n else top
    low = float(s[n]) if n < len(s) else -math.inf
    return low, high


def _nearest(s: np.ndarray, n: int, top: float) -> int:
    """The achievable count nearest ``n`` when tied scores straddle the n-th place (fewer on a tie)."""
    asc = s[::-1]
    v = float(s[n - 1]) if n else top
    above = len(s) - int(np.searchsorted(asc, v, side="right"))   # cut just above v
    at = len(s) - int(np.searchsorted(asc, v, side="left"))       # cut at v
    options = [a for a in (above, at) if (lambda lo, hi: lo < hi)(*_interval(s, a, top))]
    return min(options, key=lambda a: (abs(a - n), a))


def _pick(low: float, high: float, high_inclusive: bool, tie_break: str) -> float:
    """One cut in ``(low, high]`` (``(low, high)`` when not inclusive).

    The midpoint, rounded to 0.1 points when that stays inside, else to the
    fewest decimals that do: a cut a reader can copy into a policy, and with
    no more decimals than scores have (9), as the rating's comparisons assume.
    """
    if tie_break == "high" and high_inclusive:
        return high
    lo = min(0.0, high - 1.0) if low == -math.inf else low   # no branch below: any lower cut works
    lo_inclusive = low == -math.inf
    mid = (lo + high) / 2
    for decimals in range(1, 10):
        r = round(mid, decimals)
        if (r > lo or (lo_inclusive and r >= lo)) and (r <= high if high_inclusive else r < high):
            return r
    return mid


def _final(codes, out, scheme) -> np.ndarray:
    """Levels after direct grading and vetoes, for design levels ``codes``."""
    bs = scheme.branch
    return rt.apply_vetoes(rt.apply_direct(codes, out["direct"], bs.rating), out["vetoes"], bs.vetoes)


def fit_cut_points(pop: Population | None, policy: Policy, targets: dict | None = None, *,
                   tie_break: str = "midpoint", cities: Cities | None = None) -> pd.DataFrame:
    """Cut points of a fixed-cut design that reproduce target counts, with the range that does.

    A veto caps or forces a level and direct grading sets one, so a branch
    reaches level ``k`` or better through its score only when neither keeps
    it from ``k``; branches that such a rule puts at ``k`` or better whatever
    their score count towards the target. With ``N_k`` the branches wanted at
    ``k`` or better (less those) and ``s_(1) >= s_(2) >= …`` the scores of
    the branches whose level at ``k`` the cut decides, every cut in
    ``(s_(N_k + 1), s_(N_k)]`` gives exactly ``N_k``. When tied scores
    straddle place ``N_k`` no cut can: the nearest count a cut can give is
    fitted instead (the smaller when both are as near) and ``note`` says so.
    A branch type that overrides a level's cut keeps its own cut: its
    branches count at that level as their cut decides.

    Parameters
    ----------
    pop : Population
    policy : Policy
        A ``cuts`` design: weights, vetoes, direct grading and the cuts of
        levels without a target.
    targets : dict {level id: count}, optional
        Branches wanted at each level (exactly that level). They must cover
        the top levels without a gap; the floor has no cut. A designation
        with a score line (a ``score_below`` criterion, e.g. a weak line) may
        be named too: its line is fitted, after the cuts, so that exactly
        that many branches are designated (its own row; any design, as the
        line does not depend on how levels are set; at most the top cut). Default: the
        scheme's published counts (``NAME.targets.yaml``), scaled from its
        published number of branches to the population and rounded half up.
    tie_break : {"midpoint", "high"}
        Which cut of its range each level gets: the midpoint (rounded to 0.1
        points when that stays inside the range, else to the fewest decimals
        that do), or the upper end (the strictest cut: the last branch in sits
        exactly on it).
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        the cuts are fitted on each city's population; per level and
        quantity (``target``, ``cut``, ``low``, ``high``, ``achieved``,
        ``exact``) the mean and interval across cities.

    Returns
    -------
    DataFrame
        One row per fitted level, best first: ``level`` (id), ``target``,
        ``cut``, ``low`` (exclusive) and ``high`` (inclusive): every cut in
        ``(low, high]`` gives the same count at or above the level, ``low``
        is −inf when any lower cut does; ``achieved`` (branches at the level
        with all fitted cuts applied), ``exact`` and ``note``.
        :func:`policy_with_cuts` turns the fit into a policy.

    Raises
    ------
    BranchsimError
        A relative design (it sets its own cuts), a target above the branches
        that can reach the level, or ranges that admit no increasing set of
        cuts (vetoes or a zero target can cause it).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> p = bs.Policy.load()
    >>> fit = fit_cut_points(pop, p, dict(zip(p.levels, [2, 3, 2])))
    >>> fit[["cut", "low", "high"]].round(2).values.tolist()
    [[94.0, 92.99, 94.92], [81.7, 79.02, 84.4], [77.9, 77.11, 78.65]]
    >>> fit["achieved"].tolist(), bool(fit["exact"].all())
    ([2, 3, 2], True)
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, policy, "fit_cut_points")
        return across_cities(cities, fit_cut_points, policy, targets, keys=["level"], tie_break=tie_break)
    _check_args(pop, policy, "fit_cut_points")
    if tie_break not in _TIE_BREAKS:
        raise BranchsimError(f"tie_break={tie_break!r}; allowed: {', '.join(map(repr, _TIE_BREAKS))}")
    scheme = policy.scheme
    r = scheme.branch.rating
    levels = list(scheme.branch.levels.ids)
    L = len(levels)
    line_of = _lines(policy)
    line_targets = {}
    if isinstance(targets, dict):
        line_targets = {k: v for k, v in targets.items() if k in line_of or k in _designation_ids(policy)}
        targets = {k: v for k, v in targets.items() if k not in line_targets}
        _check_line_targets(line_targets, line_of, policy)
        if not targets and line_targets:
            return _with_lines(pd.DataFrame(columns=_FIT_COLUMNS), pop, policy, line_targets, line_of, tie_break)
    if r.design != "cuts":
        extra = " (quota: the quotas are the targets)" if r.quotas is not None else ""
        raise BranchsimError(f"policy {policy.name!r} rates by the {r.design!r} design, which sets its own cut "
                             f"points from the scores{extra}; fit_cut_points fits the cut points of a 'cuts' "
                             f"design")
    targets = _check_targets(_default_targets(policy, len(pop.branches)) if targets is None else targets, levels)
    inp, out = _evaluated(pop, policy)
    score, n = out["score"], len(out["score"])
    reach = np.column_stack([_final(np.full(n, d, np.int8), out, scheme) for d in range(L)])   # (n, L)
    own = np.array([[policy.get(f"branch.types.{t}.rating.cuts.{lv}") is not None
                     for lv in scheme.branch.levels.worst_first[1:]] for t in scheme.branch.types],
                   dtype=bool).reshape(-1, L - 1)[inp.type_idx]          # (n, L-1): the type's own cut
    design = rt.cut_levels(score, r.cuts[inp.type_idx])
    best = float(score.max()) if n else 0.0
    top_score = 100.0 if best < 100 else math.floor(best) + 1.0       # a cut no branch reaches
    rows, problems, cumulative = [], [], 0
    for lv, want in targets.items():                       # a loop over the few levels, best first
        k = L - 1 - levels.index(lv)                       # its code
        cumulative += want
        always = reach[:, 0] >= k                          # at k or better whatever the score
        decided = (reach[:, -1] >= k) & ~always            # the cut decides
        fixed = decided & own[:, k - 1]                    # … but the type's own cut, not the fitted one
        fitted = decided & ~own[:, k - 1]
        s = np.sort(score[fitted])[::-1]
        wanted = cumulative - int(always.sum()) - int((fixed & (design >= k)).sum())
        if wanted > len(s) or wanted < 0:
            problems.append(f"{lv}: {cumulative} branches wanted at {lv} or better, but "
                            + (f"{int(always.sum())} are there whatever the cut (direct grading or a veto)"
                               if wanted < 0 else
                               f"the cut decides for only {len(s)} of {n}"
                               + (f" ({int((reach[:, -1] < k).sum())} are kept below {lv} by a veto)"
                                  if (reach[:, -1] < k).any() else "")))
            continue
        note, got = "", wanted
        low, high = _interval(s, wanted, top_score)
        if not low < high:
            got = _nearest(s, wanted, top_score)
            tie = float(s[wanted - 1]) if wanted else top_score
            note = (f"unreachable: {int((s == tie).sum())} branches tie at {tie:.6g} across place {wanted}; "
                    f"nearest achievable {got - wanted + cumulative} at {lv} or better")
            low, high = _interval(s, got, top_score)
        rows.append({"level": lv, "code": k, "target": want, "low": low, "high": high, "note": note})
    if problems:
        raise BranchsimError("targets cannot be met: " + "; ".join(problems))
    # Cuts must increase with the level: bound each range by the ranges around it.
    base_cuts = np.array([float(policy[f"branch.rating.cuts.{lv}"]) for lv in scheme.branch.levels.worst_first[1:]])
    lowest = rows[-1]["code"]
    floor = max(base_cuts[:lowest - 1], default=-math.inf)
    lows, highs = [], []
    for row in rows[::-1]:                                 # bottom up: a cut exceeds every lower bound below it
        floor = max(floor, row["low"])
        lows.append(floor)
    lows = lows[::-1]
    ceiling = math.inf
    for row in rows:                                       # top down
        ceiling = min(ceiling, row["high"])
        highs.append(ceiling)
    bad = [row["level"] for row, lo, hi in zip(rows, lows, highs) if not lo < hi]
    if bad:
        ranges = "; ".join(f"{row['level']} in ({row['low']:.6g}, {row['high']:.6g}]" for row in rows)
        raise BranchsimError(
            f"no increasing set of cut points meets these targets: the counts need {ranges}"
            + (f", above the {base_cuts[lowest - 2]:g} cut of {scheme.branch.levels.worst_first[lowest - 1]}"
               if lowest > 1 else "")
            + f", and the cut for {bad[0]} cannot lie below the cut above it. Vetoes that cap some branches, "
              f"direct grading, or a zero target can cause this; change the targets")
    above = None
    for row, lo, hi in zip(rows, lows, highs):
        inclusive = above is None or hi < above
        row["cut"] = _pick(lo, hi if inclusive else above, inclusive, tie_break)
        above = row["cut"]
    cuts = r.cuts[inp.type_idx].copy()
    for row in rows:
        j = row["code"] - 1
        cuts[:, j] = np.where(own[:, j], cuts[:, j], row["cut"])
    final = _final(rt.cut_levels(score, cuts), out, scheme)
    for row in rows:
        row["achieved"] = int((final == row["code"]).sum())
        row["exact"] = row["achieved"] == row["target"]
        if not row["exact"] and not row["note"]:
            row["note"] = "the level above could not be matched exactly"
    fit = pd.DataFrame(rows, columns=_FIT_COLUMNS)
    fit.attrs["targets"] = dict(targets)
    return _with_lines(fit, pop, policy, line_targets, line_of, tie_break) if line_targets else fit


_FIT_COLUMNS = ["level", "target", "cut", "low", "high", "achieved", "exact", "note"]


def _designation_ids(policy: Policy) -> list:
    return [d.id for d in policy.scheme.branch.designations]


def _lines(policy: Policy) -> dict:
    """``{designation id: path of its score line}`` for the designations that have one."""
    from .engine import _line_criteria
    bs = policy.scheme.branch
    return {d.id: f"branch.designations.{d.id}.criteria.{c.id}.below"
            for d, c in zip(bs.designations, _line_criteria(policy.scheme)) if c is not None}


def _check_line_targets(line_targets: dict, line_of: dict, policy: Policy) -> None:
    problems = []
    for k, v in line_targets.items():
        if k not in line_of:
            kinds = [c.kind for d in policy.scheme.branch.designations if d.id == k for c in d.criteria]
            problems.append(f"targets[{k!r}]: designation {k!r} has no score line to fit (its criteria: "
                            f"{', '.join(kinds)}); a designation's score line is a 'score_below' criterion")
        elif isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            problems.append(f"targets[{k!r}]: {v!r} is not a whole number of branches >= 0")
    if problems:
        raise BranchsimError("; ".join(problems))


def _with_lines(fit: pd.DataFrame, pop, policy: Policy, line_targets: dict, line_of: dict,
                tie_break: str) -> pd.DataFrame:
    """The fit with a row per designation line: the score line that designates the target count.

    With the fitted cuts applied, a branch is designated whatever the line
    when another criterion holds (at the lowest line), and through the line
    when its score lies below it and the line may hold for it (its years);
    with ``e_(1) <= e_(2) <= …`` the scores of the branches the line decides,
    every line in ``(e_(w), e_(w + 1)]`` designates exactly ``w`` of them.
    The line stays at most the top cut (a unit may not be at the top level
    and designated at once).
    """
    fitted = policy_with_cuts(policy, fit) if len(fit) else policy
    inp, out = _evaluated(pop, fitted)
    score = out["score"]
    top = float(fitted.scheme.branch.rating.cuts[:, -1].max()) if fitted.scheme.branch.rating.cuts is not None \
        else float(np.ceil(score.max()) + 1 if len(score) else 100.0)
    lowest = float(np.floor(score.min()) - 1) if len(score) else 0.0
    rows = []
    for d, want in line_targets.items():
        path = line_of[d]
        always = _designated(pop, fitted, path, lowest, d)
        maybe = _designated(pop, fitted, path, top, d) & ~always
        e = np.sort(score[maybe])
        wanted = want - int(always.sum())
        if wanted < 0 or wanted > len(e):
            raise BranchsimError(
                f"targets cannot be met: {want} branches wanted as {d}, but "
                + (f"{int(always.sum())} are {d} whatever its score line (its other criteria)" if wanted < 0 else
                   f"at most {int(always.sum()) + len(e)} can be, with the line at the top cut {top:g}"))
        got, note = wanted, ""
        low, high = (float(e[wanted - 1]) if wanted else -math.inf), (float(e[wanted]) if wanted < len(e) else top)
        if not low < high:
            tie = low
            below = int(np.searchsorted(e, tie, side="left"))
            upto = int(np.searchsorted(e, tie, side="right"))
            got = min((a for a in (below, upto) if a <= len(e)), key=lambda a: (abs(a - wanted), a))
            note = (f"unreachable: {upto - below} branches tie at {tie:.6g}; nearest achievable "
                    f"{got + int(always.sum())}")
            low, high = (float(e[got - 1]) if got else -math.inf), (float(e[got]) if got < len(e) else top)
        value = _pick(low, high, True, tie_break)
        achieved = int(_designated(pop, fitted, path, value, d).sum())
        rows.append({"level": d, "target": want, "cut": value, "low": low, "high": high, "achieved": achieved,
                     "exact": achieved == want, "note": note})
    lines = pd.DataFrame(rows, columns=_FIT_COLUMNS)
    both = pd.concat([fit, lines], ignore_index=True) if len(fit) else lines
    both["exact"] = both["exact"].astype(bool)
    both.attrs["targets"] = {**fit.attrs.get("targets", {}), **line_targets}
    return both


def _designated(pop, policy: Policy, path: str, value: float, d: str) -> np.ndarray:
    """Branches designated ``d`` with its score line at ``value``."""
    pol = policy if policy.get(path) == value else policy.update({path: value})
    return np.asarray(_evaluated(pop, pol)[1]["designations"][d], bool)


def policy_with_cuts(policy: Policy, fit: pd.DataFrame) -> Policy:
    """The policy with the cut points of a :func:`fit_cut_points` result (``branch.rating.cuts.<level>``).

    Equivalent to ``policy.update({f"branch.rating.cuts.{level}": cut, ...})``
    for the cuts that differ (the policy itself when none does); the new
    parameters record that they were fitted, and to which targets.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> p = bs.Policy.load()
    >>> fitted = policy_with_cuts(p, fit_cut_points(pop, p, dict(zip(p.levels, [2, 3, 2]))))
    >>> bs.evaluate(pop, fitted).level_counts().loc[p.levels[:3], "count"].tolist()
    [2, 3, 2]
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a branchsim.Policy, got {type(policy).__name__}",
                          where="policy_with_cuts")
    if not isinstance(fit, pd.DataFrame) or not {"level", "cut"} <= set(fit.columns):
        raise BranchsimError("fit must be the DataFrame returned by fit_cut_points (columns level, cut)")
    line_of = _lines(policy)
    unknown = [lv for lv in fit["level"] if lv not in policy.levels[:-1] and lv not in line_of]
    if unknown:
        raise PolicyError(f"fit names {unknown[0]!r}, which has no cut point or score line; levels with cuts: "
                          f"{', '.join(policy.levels[:-1])}; designations with a line: "
                          f"{', '.join(line_of) or 'none'}", where="branch.rating.cuts")
    paths = {line_of.get(lv, f"branch.rating.cuts.{lv}"): float(c) for lv, c in zip(fit["level"], fit["cut"])}
    changes = {k: v for k, v in paths.items() if policy.get(k) != v}
    if not changes:
        return policy
    wanted = ", ".join(f"{lv} {int(t)}" for lv, t in zip(fit["level"], fit["target"])) \
        if "target" in fit else "given counts"
    return policy.update(changes, reason=f"fitted by fit_cut_points to target counts ({wanted})")
