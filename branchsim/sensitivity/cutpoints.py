"""Fitting star cut points to target counts.

* :func:`fit_cut_points` — star cut points that reproduce target counts
  (by default the published 41 / 173 / 422), with the whole range of cut
  points that reproduces them;
* :func:`policy_with_cuts` — a fit turned into a policy.

Scores are those of :mod:`.fragility` (the engine's prepared components and
the policy's compiled weights, the arithmetic of :func:`branchsim.evaluate`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import yaml

from ..errors import BranchsimError, PolicyError
from ..evaluate import STAR_NAMES, published_counts
from ..policy import Policy, data_path
from ..population import Population
from ..scoring import compile_branch_rules, star_levels
from .engine import prepare
from .fragility import _check_args, _scores

__all__ = ["fit_cut_points", "policy_with_cuts"]

_CUT_MAX = 100.0         # a cut point lies in [0, 100] (policy format)
_TIE_BREAKS = ("midpoint", "high")


# -- fitting cut points to target counts ---------------------------------------------
def _default_targets(n: int, levels: set[int]) -> dict[int, int]:
    """The published counts, scaled from the published city to ``n`` branches (half up)."""
    doc = yaml.safe_load(data_path("published.yaml").read_text(encoding="utf-8"))
    city = float(doc["scale"]["branches"]["value"])
    by_name = {name: k for k, name in STAR_NAMES.items()}
    pub = published_counts()
    return {by_name[name]: int(math.floor(v * n / city + 0.5)) for name, v in pub.items()
            if name in by_name and by_name[name] in levels}


def _check_targets(targets, policy_levels: list[int]) -> dict[int, int]:
    if not isinstance(targets, dict) or not targets:
        raise BranchsimError(f"targets must be a non-empty dict {{star level: count}}, got {targets!r}")
    out, problems = {}, []
    for k, v in targets.items():
        try:
            level = int(k)
            ok_level = float(k) == level
        except (TypeError, ValueError):
            ok_level = False
        if not ok_level:
            problems.append(f"targets: key {k!r} is not a star level")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            problems.append(f"targets[{level}]: {v!r} is not a whole number of branches >= 0")
            continue
        if level not in policy_levels:
            raise PolicyError(f"targets name {level} stars, which has no cut point; this policy has "
                              f"cuts for {', '.join(map(str, sorted(policy_levels)))} stars",
                              where="branch.star_cuts")
        out[level] = int(v)
    if problems:
        raise BranchsimError("; ".join(problems))
    top = sorted(policy_levels, reverse=True)[:len(out)]
    if sorted(out, reverse=True) != top:
        raise BranchsimError(f"targets must cover the top star levels without a gap (counts at or above "
                             f"a level need every level above it): got levels {sorted(out, reverse=True)}, "
                             f"expected {top}")
    return out


def _interval(s: np.ndarray, n: int) -> tuple[float, float]:
    """Cut points ``(low, high]`` giving exactly ``n`` of the scores ``s`` (descending) at or above."""
    high = float(s[n - 1]) if n else _CUT_MAX
    low = float(s[n]) if n < len(s) else -math.inf
    return low, high


def _nearest(s: np.ndarray, n: int) -> int:
    """The achievable count nearest ``n`` when tied scores straddle the n-th place (fewer on a tie)."""
    asc = s[::-1]
    v = float(s[n - 1]) if n else _CUT_MAX
    above = len(s) - int(np.searchsorted(asc, v, side="right"))   # cut just above v
    at = len(s) - int(np.searchsorted(asc, v, side="left"))       # cut at v
    options = [a for a in (above, at) if (lambda lo, hi: lo < hi)(*_interval(s, a))]
    return min(options, key=lambda a: (abs(a - n), a))


def _pick(low: float, high: float, high_inclusive: bool, tie_break: str) -> float:
    """One cut in ``(low, high]`` (``(low, high)`` when not inclusive).

    The midpoint, rounded to 0.1 points when that stays inside, else to the
    fewest decimals that do: a cut a reader can copy into a policy, and with
    no more decimals than scores have (9), as the engine's comparisons assume.
    """
    if tie_break == "high" and high_inclusive:
        return high
    lo = 0.0 if low == -math.inf else low           # no branch below: any cut from 0 works
    lo_inclusive = low == -math.inf
    mid = (lo + high) / 2
    for decimals in range(1, 10):
        r = round(mid, decimals)
        if (r > lo or (lo_inclusive and r >= lo)) and (r <= high if high_inclusive else r < high):
            return r
    return mid


def fit_cut_points(pop: Population, policy: Policy, targets: dict | None = None, *,
                   tie_break: str = "midpoint") -> pd.DataFrame:
    """Star cut points that reproduce target counts, with the range that does.

    A veto caps a branch's star, so the branches with at least ``k`` stars
    are those scoring at least the cut ``c_k`` among those whose cap is at
    least ``k``. With ``N_k`` the target count at ``k`` stars or more and
    ``s_(1) >= s_(2) >= …`` the scores of the branches that can reach ``k``
    stars, every cut in ``(s_(N_k + 1), s_(N_k)]`` gives exactly ``N_k``.
    When tied scores straddle place ``N_k`` no cut can: the nearest count
    that a cut can give is fitted instead (the smaller one when both are
    equally near) and ``note`` says so.

    Parameters
    ----------
    pop : Population
    policy : Policy
        Weights, vetoes and the cut points of levels without a target.
    targets : dict {star level: count}, optional
        Branches wanted at each level (exactly that many stars). They must
        cover the top levels without a gap. Default: the published counts
        (41 five-star, 173 four-star, 422 three-star of 1,500 branches),
        scaled to the population size and rounded half up.
    tie_break : {"midpoint", "high"}
        Which cut of its range each level gets: the midpoint (rounded to
        0.1 points when that stays inside the range, else to the fewest
        decimals that do), or the upper end (the strictest cut: the last
        branch in sits exactly on it).

    Returns
    -------
    DataFrame
        One row per fitted level, best first: ``level``, ``target``,
        ``cut``, ``low`` (exclusive) and ``high`` (inclusive): every cut in
        ``(low, high]`` gives the same count at or above the level, ``low``
        is −inf when any cut down to 0 does; ``achieved`` (branches at the
        level with all fitted cuts applied), ``exact`` and ``note``. Cuts
        of different levels must also increase with the level.
        :func:`policy_with_cuts` turns the fit into a policy.

    Raises
    ------
    BranchsimError
        A target above the branches that can reach the level, or ranges
        that admit no increasing set of cuts (vetoes or a zero target can
        cause it).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> fit = fit_cut_points(pop, bs.Policy.load(), {5: 2, 4: 3, 3: 2})
    >>> fit[["level", "cut", "low", "high"]].round(2).values.tolist()
    [[5.0, 94.0, 92.99, 94.92], [4.0, 81.7, 79.02, 84.4], [3.0, 77.9, 77.11, 78.65]]
    >>> fit["achieved"].tolist(), bool(fit["exact"].all())
    ([2, 3, 2], True)
    """
    _check_args(pop, policy, "fit_cut_points")
    if tie_break not in _TIE_BREAKS:
        raise BranchsimError(f"tie_break={tie_break!r}; allowed: {', '.join(map(repr, _TIE_BREAKS))}")
    rules = compile_branch_rules(policy)
    policy_levels = [int(k) for k in rules.star_levels]
    targets = _check_targets(_default_targets(len(pop.branches), set(policy_levels))
                             if targets is None else targets, policy_levels)
    prep = prepare(pop, policy)
    score = _scores(prep, rules)
    fit_levels = sorted(targets, reverse=True)
    rows, problems, cumulative = [], [], 0
    for k in fit_levels:                                   # a loop over the few star levels
        cumulative += targets[k]
        s = np.sort(score[prep.cap >= k])[::-1]
        if cumulative > len(s):
            capped = int((prep.cap < k).sum())
            problems.append(f"{k} stars: {cumulative} branches wanted at {k} stars or more, but only "
                            f"{len(s)} of {len(score)} can reach it"
                            + (f" ({capped} are capped below {k} stars by a veto)" if capped else ""))
            continue
        n, note = cumulative, ""
        low, high = _interval(s, n)
        if not low < high:
            n = _nearest(s, cumulative)
            tie = float(s[cumulative - 1]) if cumulative else _CUT_MAX
            tied = int((s == tie).sum())
            note = (f"unreachable: {tied} branches tie at {tie:.6g} across place {cumulative}; "
                    f"nearest achievable {n} at {k}+ stars")
            low, high = _interval(s, n)
        rows.append({"level": k, "target": targets[k], "at_least": n, "low": low, "high": high, "note": note})
    if problems:
        raise BranchsimError("targets cannot be met: " + "; ".join(problems))
    # Cuts must increase with the level: bound each range by the ranges around it.
    below = [float(c) for lv, c in zip(rules.star_levels, rules.star_cuts) if lv < fit_levels[-1]]
    floor = max(below) if below else -math.inf
    lows, highs = [], []
    for row in rows[::-1]:                                 # bottom up: a cut exceeds every lower bound below it
        floor = max(floor, row["low"])
        lows.append(floor)
    lows = lows[::-1]
    ceiling = math.inf
    for row in rows:                                       # top down
        ceiling = min(ceiling, row["high"])
        highs.append(ceiling)
    bad = [r["level"] for r, lo, hi in zip(rows, lows, highs) if not lo < hi]
    if bad:
        ranges = "; ".join(f"{r['level']} stars in ({r['low']:.6g}, {r['high']:.6g}]" for r in rows)
        raise BranchsimError(
            f"no increasing set of cut points meets these targets: the counts need {ranges}"
            + (f", above the {max(below):g} cut of {max(lv for lv in rules.star_levels if lv < fit_levels[-1])}"
               f" stars" if below else "")
            + f", and the cut for {bad[0]} stars cannot lie below the cut above it. Vetoes that cap "
              f"some branches, or a zero target, can cause this; change the targets or the vetoes")
    above = None
    for row, lo, hi in zip(rows, lows, highs):
        inclusive = above is None or hi < above
        row["cut"] = _pick(lo, hi if inclusive else above, inclusive, tie_break)
        above = row["cut"]
    cuts = dict(zip(policy_levels, (float(c) for c in rules.star_cuts)))
    cuts.update({r["level"]: r["cut"] for r in rows})
    lv = np.array(sorted(cuts), dtype=np.int8)
    stars = np.minimum(star_levels(score, lv, np.array([cuts[k] for k in lv.tolist()])), prep.cap)
    for row in rows:
        row["achieved"] = int((stars == row["level"]).sum())
        row["exact"] = row["achieved"] == row["target"]
        if not row["exact"] and not row["note"]:
            row["note"] = "the level above could not be matched exactly"
    out = pd.DataFrame(rows, columns=["level", "target", "cut", "low", "high", "achieved", "exact", "note"])
    out.attrs["targets"] = dict(targets)
    return out


def policy_with_cuts(policy: Policy, fit: pd.DataFrame) -> Policy:
    """The policy with the star cut points of a :func:`fit_cut_points` result.

    Equivalent to ``policy.update({f"branch.star_cuts.{k}": cut, ...})`` for
    the cuts that differ (the policy itself when none does); the new
    parameters record that they were fitted, and to which targets.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> p = bs.Policy.load()
    >>> fitted = policy_with_cuts(p, fit_cut_points(pop, p, {5: 2, 4: 3, 3: 2}))
    >>> bs.evaluate(pop, fitted).star_counts().loc[["five_star", "four_star", "three_star"], "count"].tolist()
    [2, 3, 2]
    """
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a branchsim.Policy, got {type(policy).__name__}",
                          where="policy_with_cuts")
    if not isinstance(fit, pd.DataFrame) or not {"level", "cut"} <= set(fit.columns):
        raise BranchsimError("fit must be the DataFrame returned by fit_cut_points (columns level, cut)")
    changes = {f"branch.star_cuts.{int(k)}": float(c) for k, c in zip(fit["level"], fit["cut"])
               if f"branch.star_cuts.{int(k)}" not in policy or policy[f"branch.star_cuts.{int(k)}"] != float(c)}
    if not changes:
        return policy
    wanted = ", ".join(f"{int(k)}★ {int(t)}" for k, t in zip(fit["level"], fit["target"])) \
        if "target" in fit else "given counts"
    return policy.update(changes, reason=f"fitted by fit_cut_points to target counts ({wanted})")
