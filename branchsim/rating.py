"""Scores → levels: the rating designs, direct grading, vetoes, designations and consequences.

Pure functions on arrays and the compiled :class:`~branchsim.scheme.Scheme`
(``docs/policy-format.md``, "Rating designs"). Level codes count from the
floor (0) up to the best (``L - 1``). The order is fixed: the design rates
the (rounded) scores, within peer groups; direct grading sets levels; vetoes
come last and the most severe wins.

Examples
--------
>>> import numpy as np
>>> cut_levels(np.array([69.9, 70.0, 85, 90]), np.array([70., 80, 90])).tolist()
[0, 1, 2, 3]
>>> quota_levels(np.array([5., 4, 4, 4, 1]), np.array([0.4]))[0].tolist()   # 2 places, 3 tied: none
[1, 0, 0, 0, 0]
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import DataError
from .scheme import Rating, Vetoes

__all__ = ["cut_levels", "quota_thresholds", "quota_levels", "rate", "direct_fired", "apply_direct",
           "veto_fired", "apply_vetoes", "streak", "allowed_counts"]

#: Quota counts are floor(N × share); this tolerance keeps 0.1 × 30 = 3 from becoming 2.
_QUOTA_EPS = 1e-9


def _require_finite(scores: np.ndarray, what: str) -> None:
    """A non-finite score is an error, never rated (a NaN would sort to the top level).

    >>> _require_finite(np.array([70.0, np.nan]), "branch score")
    Traceback (most recent call last):
    ...
    branchsim.errors.DataError: branch score is not a finite number in row 2 (nan); a unit with such a score cannot be rated: check its facts and the policy's points
    """
    scores = np.asarray(scores)
    ok = np.isfinite(scores)
    if ok.all():
        return
    bad = np.flatnonzero(~ok.reshape(len(scores), -1).all(axis=1)) if scores.ndim else np.array([0])
    shown = ", ".join(str(i + 1) for i in bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    first = float(scores.reshape(len(scores), -1)[bad[0]][~ok.reshape(len(scores), -1)[bad[0]]][0]) \
        if scores.ndim else float(scores)
    raise DataError(f"{what} is not a finite number in row{'s' if len(bad) > 1 else ''} {shown} ({first}); "
                    f"a unit with such a score cannot be rated: check its facts and the policy's points")


def cut_levels(scores: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Level code of each score: how many cuts it reaches (``score >= cut``).

    ``cuts`` is ascending, ``(L-1,)`` for all units or ``(n, L-1)`` per unit.
    A score that is not a finite number is an error.
    """
    scores = np.asarray(scores, float)
    _require_finite(scores, "score")
    cuts = np.asarray(cuts, float)
    if cuts.ndim == 1:
        return np.searchsorted(cuts, scores, side="right").astype(np.int8)
    return (scores[:, None] >= cuts).sum(axis=1).astype(np.int8)


def allowed_counts(n: int, allowed_shares: np.ndarray) -> np.ndarray:
    """Most units allowed at each level code or better (ascending codes): ``floor(n × share)``.

    >>> allowed_counts(1000, np.array([0.8, 0.5, 0.1])).tolist()
    [800, 500, 100]
    """
    return np.floor(n * np.asarray(allowed_shares, float) + _QUOTA_EPS).astype(np.int64)


def quota_thresholds(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Thresholds ``(L-1,)`` of a quota design on one group's scores (``score >= threshold`` admits).

    ``allowed[j]`` is the most units at level code ``j + 1`` or better. The
    ``a``-th best score is the threshold unless units tied with it would
    exceed the quota: then they all stay below (the next higher score is the
    threshold), so a quota is never exceeded. ``-inf``: everyone reaches it.
    """
    s = np.sort(np.asarray(scores, float))[::-1]
    n = len(s)
    out = np.empty(len(allowed))
    for j, a in enumerate(np.asarray(allowed, np.int64)):
        if a >= n:
            out[j] = -np.inf
        elif a <= 0:
            out[j] = np.inf
        elif s[a - 1] > s[a]:
            out[j] = s[a - 1]
        else:
            higher = s[:a][s[:a] > s[a - 1]]
            out[j] = higher[-1] if len(higher) else np.inf
    return out


def quota_levels(scores: np.ndarray, allowed_shares: np.ndarray, groups: np.ndarray | None = None):
    """Level codes under a quota design, within groups; and the thresholds ``(G, L-1)``."""
    scores = np.asarray(scores, float)
    _require_finite(scores, "score")
    groups = np.zeros(len(scores), dtype=np.intp) if groups is None else np.asarray(groups)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    thr = np.full((n_groups, len(allowed_shares)), np.inf)
    codes = np.zeros(len(scores), dtype=np.int8)
    for g in range(n_groups):
        rows = np.flatnonzero(groups == g)
        if not len(rows):
            continue
        thr[g] = quota_thresholds(scores[rows], allowed_counts(len(rows), allowed_shares))
        codes[rows] = cut_levels(scores[rows], _monotone(thr[g]))
    return codes, thr


def _monotone(thr: np.ndarray) -> np.ndarray:
    """Thresholds made non-decreasing (a better level never admits a lower score than a worse one)."""
    return np.maximum.accumulate(np.asarray(thr, float))


def rate(scores: np.ndarray, rating: Rating, *, profile: np.ndarray, groups: np.ndarray | None = None,
         group_names=None, previous: pd.DataFrame | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Level codes of rounded scores under a design, and the cut points it used.

    Parameters
    ----------
    scores : (n,) rounded scores
    rating : the compiled design
    profile : (n,) profile codes (per-type cuts of a cuts design)
    groups, group_names : peer-group codes and their names (relative designs)
    previous : last year's cut points (``Result.cut_points``) for the guardrail

    Returns
    -------
    codes : (n,) int8
    cuts : DataFrame with ``group``, ``level`` and ``cut`` (the minimum score of
        the level; for relative designs the realised thresholds)
    """
    scores = np.asarray(scores, float)
    _require_finite(scores, "score")
    levels = rating.levels
    above = levels.worst_first[1:]
    n = len(scores)
    if rating.design == "cuts":
        per_unit = rating.cuts[np.asarray(profile)]
        names = list(rating_profiles(rating, profile_names=group_names))
        table = rating.cuts
        group_of = np.asarray(profile)
    else:
        groups = np.zeros(n, dtype=np.intp) if groups is None else np.asarray(groups)
        names = list(group_names) if group_names is not None else ["all"]
        table = np.full((len(names), len(above)), np.inf)
        for g in range(len(names)):
            rows = np.flatnonzero(groups == g)
            if not len(rows):
                continue
            table[g] = _relative_cuts(scores[rows], rating)
        group_of = groups
    if previous is not None and not math.isnan(rating.guardrail):
        table = _guarded(table, names, above, previous, rating.guardrail)
    if rating.design != "cuts" or previous is not None:
        per_unit = table[group_of] if len(table) else np.zeros((n, len(above)))
    codes = cut_levels(scores, per_unit) if n else np.zeros(0, dtype=np.int8)
    return codes, _cut_frame(tuple(names), tuple(above), np.ascontiguousarray(table, dtype=float))


_FRAMES: dict = {}


def _cut_frame(names: tuple, above: tuple, table: np.ndarray) -> pd.DataFrame:
    """The cut points as a tidy frame ``group, level, cut`` (a copy of a cached one: blocks of a
    national run and years of a simulation rate with the same cuts many times)."""
    key = (names, above, table.shape, table.tobytes())
    frame = _FRAMES.get(key)
    if frame is None:
        frame = pd.DataFrame({"group": np.repeat(np.array(names, dtype=object), len(above)),
                              "level": np.tile(np.array(above, dtype=object), len(names)),
                              "cut": table.ravel() if len(names) else np.zeros(0)})
        if len(_FRAMES) > 256:
            _FRAMES.clear()
        _FRAMES[key] = frame
    return frame.copy()


def rating_profiles(rating: Rating, profile_names=None):
    """Names of the rows of a cuts design's table (the profiles: branch types)."""
    if profile_names is not None:
        return profile_names
    return [str(i) for i in range(len(rating.cuts))]


def _relative_cuts(scores: np.ndarray, rating: Rating) -> np.ndarray:
    """Cut points ``(L-1,)`` of a relative design on one group's scores."""
    L = rating.levels.n
    if rating.design in ("quota", "cuts_and_quota"):
        thr = _monotone(quota_thresholds(scores, allowed_counts(len(scores), rating.allowed_shares)))
        if rating.design == "cuts_and_quota":
            thr = np.maximum(thr, rating.cuts[0])
        return thr
    from . import _clustering
    return _clustering.cluster_cuts(scores, L, method=rating.design, trim=rating.trim,
                                    resamples=rating.resamples, seed=rating.seed)


def _guarded(table: np.ndarray, names, above, previous: pd.DataFrame, max_move: float) -> np.ndarray:
    """Cut points kept within ``max_move`` of last year's (by group and level)."""
    from ._clustering import guard
    if not {"group", "level", "cut"} <= set(previous.columns):
        raise DataError("previous: last year's cut points need columns group, level and cut "
                        "(Result.cut_points)")
    prev = previous.set_index(["group", "level"])["cut"]
    out = table.copy()
    for g, name in enumerate(names):
        last = np.array([prev.get((name, lv), np.inf) for lv in above], dtype=float)
        out[g] = guard(table[g], last, max_move)
    return out


# -- direct grading and vetoes ---------------------------------------------------------
def direct_fired(values: np.ndarray, rating: Rating) -> np.ndarray:
    """``(n, d)``: which direct gradings fire (``values`` ``(n, d)``: each rule's fact)."""
    return np.asarray(values, float) >= rating.direct_at_least


def apply_direct(codes: np.ndarray, fired: np.ndarray, rating: Rating) -> np.ndarray:
    """Levels set by direct grading (the best of those that fire), else the design's."""
    if not fired.size:
        return codes
    best = np.where(fired, rating.direct_level, -1).max(axis=1)
    return np.where(best >= 0, best, codes).astype(np.int8)


def veto_fired(values: np.ndarray, vetoes: Vetoes) -> np.ndarray:
    """``(n, v)``: which active vetoes fire (``values`` ``(n, v)``: each veto's fact)."""
    values = np.asarray(values, float)
    fired = np.where(vetoes.at_least, values >= vetoes.threshold, values < vetoes.threshold)
    return fired & vetoes.active


def apply_vetoes(codes: np.ndarray, fired: np.ndarray, vetoes: Vetoes) -> np.ndarray:
    """Levels after the vetoes: each fired veto gives a level (cap: at most; force: exactly); the lowest wins.

    >>> import numpy as np
    >>> from branchsim.scheme import Vetoes
    >>> v = Vetoes(("a", "b"), ("a", "b"), ("x", "y"), np.array([1., 1]), np.array([False, False]),
    ...            ("cap", "force"), np.array([2, 1], dtype=np.int8), np.array([True, True]))
    >>> apply_vetoes(np.array([3, 3, 0, 3]), np.array([[1, 0], [0, 1], [0, 1], [1, 1]], bool), v).tolist()
    [2, 1, 1, 1]
    """
    codes = np.asarray(codes)
    if not vetoes.n:
        return codes.astype(np.int8)
    fired = np.asarray(fired, bool)
    big = np.int16(np.iinfo(np.int16).max)
    lowest = {"cap": np.full(len(codes), big), "force": np.full(len(codes), big)}   # per effect
    for j, effect in enumerate(vetoes.effect):     # a loop over the vetoes, not the units
        if effect in lowest:                        # "": read by designations only
            np.minimum(lowest[effect], np.where(fired[:, j], np.int16(vetoes.level[j]), big),
                       out=lowest[effect])
    capped, forced = lowest["cap"] < big, lowest["force"] < big
    out = np.minimum(np.where(capped, np.minimum(codes, lowest["cap"]), big), lowest["force"])
    return np.where(capped | forced, out, codes).astype(np.int8)


def streak(held: np.ndarray, before: np.ndarray | None) -> np.ndarray:
    """Consecutive years a condition has held, this year included (0 when it does not hold).

    >>> streak(np.array([True, True, False]), np.array([1, 0, 3])).tolist()
    [2, 1, 0]
    """
    before = np.zeros(len(held), dtype=np.int64) if before is None else np.asarray(before, dtype=np.int64)
    return np.where(np.asarray(held, bool), before + 1, 0)
