"""Pure rules of the years: how qualities move, who is targeted, which effects follow.

Nothing here draws a random number: the yearly shocks and the uniforms of a
random selection arrive as arrays (drawn by :mod:`.measure` from seeded
streams), so every function is a plain vectorised transformation that a test
can work out by hand.

Branch quality lives on the attainment scale but is drawn from a skewed
distribution, ``q = loc + scale·sinh((asinh(z) + skew)/tail)`` with ``z``
standard normal (``data/generator.yaml``). Persistence acts on ``z``::

    z_y = persistence · z_{y-1} + shock_sd · e        e ~ N(0, 1)
    q_y = f(z_y) + effect

so with ``shock_sd = sqrt(1 - persistence²)`` and no effects the calibrated
distribution (and the published counts it reproduces) stays the same
year after year. An effect added to ``q`` carries into the next year's ``z``
and fades at the rate of persistence.

A member's quality is the level its branch implies plus a personal
deviation; the deviation persists (clipped to [0, 1], as the generator clips members)::

    level_y = loc_m + branch_link · (q_branch_y - loc_b)
    q_m,y   = clip(level_y + persistence_m · (q_m,y-1 - level_{y-1}) + shock_sd_m · sd_m · e + effect, 0, 1)

Consequences and interventions come from the scheme (``policy.scheme``):
each branch consequence and intervention adds its ``effect`` to the quality of
the units it reached, each member consequence to the members'.
"""
from __future__ import annotations

from typing import cast

import numpy as np

from ..measurement import _quality
from ..scheme import Intervention, Scheme

__all__ = ["latent", "evolve_branches", "member_level", "evolve_members", "lowest", "eligible", "reached", "select",
           "branch_effects", "member_effects"]


def latent(q: np.ndarray, bq: dict) -> np.ndarray:
    """The standard-normal ``z`` behind branch quality ``q`` (inverse of the generator's transform).

    >>> bq = {"loc": 0.5, "scale": 0.06, "skew": 1.1, "tail": 1.06}
    >>> z = np.array([-1.0, 0.0, 2.0])
    >>> np.allclose(latent(_quality(z, bq), bq), z)
    True
    """
    return np.sinh(bq["tail"] * np.arcsinh((np.asarray(q, float) - bq["loc"]) / bq["scale"]) - bq["skew"])


def evolve_branches(q_prev: np.ndarray, shock: np.ndarray, effect: np.ndarray, bq: dict,
                    persistence: float, shock_sd: float) -> np.ndarray:
    """Next year's branch quality from last year's, a standard-normal shock and the effects received."""
    z = persistence * latent(q_prev, bq) + shock_sd * np.asarray(shock, float)
    # Not clipped: the generator's branch quality is unbounded too (a few exceed 1);
    # attainment is clipped to [0, 1] where facts are measured.
    return _quality(z, bq) + effect


def member_level(q_branch: np.ndarray, mq: dict, branch_loc: float) -> np.ndarray:
    """The quality a member's branch implies (the generator's member mean)."""
    return mq["loc"] + mq["branch_link"] * (np.asarray(q_branch, float) - branch_loc)


def evolve_members(q_prev: np.ndarray, level_prev: np.ndarray, level: np.ndarray, shock: np.ndarray,
                   effect: np.ndarray, persistence: float, shock_sd: float, sd: float) -> np.ndarray:
    """Next year's member quality: the branch's new level plus the persisting personal deviation.

    >>> evolve_members(np.array([0.8]), np.array([0.7]), np.array([0.75]), np.array([0.0]),
    ...                np.array([0.03]), 0.5, 0.5, 0.1).round(6).tolist()
    [0.83]
    """
    dev = persistence * (np.asarray(q_prev, float) - level_prev) + shock_sd * sd * np.asarray(shock, float)
    return np.clip(level + dev + effect, 0.0, 1.0)


def lowest(score: np.ndarray, count: int, among: np.ndarray | None = None) -> np.ndarray:
    """Mask of the ``count`` lowest scores (among the ``among`` units); ties go to the earlier unit.

    >>> lowest(np.array([70., 40, 55, 40]), 2).tolist()
    [False, True, False, True]
    >>> lowest(np.array([70., 40, 55, 40]), 2, among=np.array([True, False, True, False])).tolist()
    [True, False, True, False]
    """
    score = np.asarray(score, float)
    idx = np.arange(len(score)) if among is None else np.flatnonzero(among)
    pick = idx[np.argsort(score[idx], kind="stable")[:max(int(count), 0)]]
    mask = np.zeros(len(score), dtype=bool)
    mask[pick] = True
    return mask


def eligible(iv: Intervention, level: np.ndarray, designations: dict[str, np.ndarray]) -> np.ndarray:
    """Units an intervention may reach (its ``among``): a designation, a level (or below), or all.

    >>> from branchsim.scheme import Intervention
    >>> iv = Intervention("x", "x", "lowest", "level", "b", 1, True, 1, 0.0, 0.0)
    >>> eligible(iv, np.array([0, 1, 2]), {}).tolist()
    [True, True, False]
    """
    if iv.among_kind == "designation":
        return np.asarray(designations[cast(str, iv.among)], bool)   # a designation id here
    if iv.among_kind == "level":
        level = np.asarray(level)
        return level <= iv.among_code if iv.or_below else level == iv.among_code
    return np.ones(len(level), dtype=bool)


def reached(iv: Intervention, eligible_units: int) -> int:
    """How many of ``eligible_units`` a lowest-first intervention reaches: its coverage share, within its count.

    >>> from branchsim.scheme import Intervention
    >>> [reached(Intervention("x", "x", "lowest", None, None, -1, False, c, s, 0.0), 15)
    ...  for c, s in [(19, 1.0), (19, 0.5), (5, 0.5), (-1, 0.0)]]
    [15, 8, 5, 0]
    """
    n = eligible_units if iv.coverage >= 1 else int(np.floor(iv.coverage * eligible_units + 0.5))
    return n if iv.count < 0 else min(n, iv.count)


def select(iv: Intervention, score: np.ndarray, among: np.ndarray, u: np.ndarray | None) -> np.ndarray:
    """Units an intervention reaches on one year's evaluation.

    ``lowest``: the lowest measured scores among the eligible units (ties go
    to the earlier unit), as many as ``coverage`` × the eligible units
    (rounded to the nearest unit, halves up; all of them at the default 1)
    and at most ``count`` (no cap at -1). ``random``: each eligible unit with
    probability ``coverage``, from the uniforms ``u`` (one per unit; a
    coverage of 0 or 1 needs none).

    >>> from branchsim.scheme import Intervention
    >>> iv = Intervention("x", "x", "random", None, None, -1, False, 0, 0.5, 0.0)
    >>> select(iv, np.zeros(4), np.array([True, True, True, False]), np.array([0.1, 0.7, 0.2, 0.0])).tolist()
    [True, False, True, False]
    >>> half = Intervention("x", "x", "lowest", None, None, -1, False, -1, 0.5, 0.0)
    >>> select(half, np.array([50., 40, 70, 45, 60]), np.ones(5, bool), None).tolist()   # 2.5 -> 3 units
    [True, True, False, True, False]
    """
    among = np.asarray(among, bool)
    if iv.select == "lowest":
        return lowest(score, reached(iv, int(among.sum())), among=among)
    if iv.coverage <= 0:
        return np.zeros(len(among), dtype=bool)
    if iv.coverage >= 1:
        return among.copy()
    return among & (np.asarray(u) < iv.coverage)


def branch_effects(scheme: Scheme, consequences: dict[str, np.ndarray], selected: dict[str, np.ndarray],
                   n: int) -> np.ndarray:
    """Attainment added to next year's branch quality by this year's decisions (they add up).

    Branch consequences in the policy's order, then interventions: each adds
    its ``effect`` to the units it reached.
    """
    out = np.zeros(n)
    for c in scheme.consequences_of("branch"):
        out = out + c.effect * consequences[c.id]
    for iv in scheme.interventions:
        out = out + iv.effect * selected[iv.id]
    return out.astype(float)


def member_effects(scheme: Scheme, consequences: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Attainment added to next year's member quality by this year's member consequences."""
    out = np.zeros(n)
    for c in scheme.consequences_of("member"):
        out = out + c.effect * np.asarray(consequences[c.id])
    return out.astype(float)
