"""Fragility of stars: how close each branch sits to a cut point.

* :func:`fragility` — each branch's signed margin to its nearest cut point
  (a star cut or the weak line) and how many branches sit within ±δ of one,
  as a :class:`Fragility`;
* :func:`fragility_curve` — that count as the satisfaction share varies,
  all shares scored with one matrix product per block of branches.

Also the helpers :mod:`.cutpoints` shares: argument checks, the cut points
of a policy and each branch's score. Scores come from the engine's prepared
components (:func:`.engine.prepare`) and the policy's compiled weights, with
the same arithmetic as :func:`branchsim.evaluate`, so a margin of 0 means
"exactly on the cut".
"""
from __future__ import annotations

import html
import math
from numbers import Real

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError, PolicyError
from ..policy import Policy
from ..population import Population
from ..scoring import compile_branch_rules, star_levels
from .engine import BLOCK_ROWS, prepare
from .sweep import scenario_arrays

__all__ = ["Fragility", "fragility", "fragility_curve"]

_DECIMALS = 9            # scores and margins are rounded like branchsim.scoring's scores


# -- shared helpers ------------------------------------------------------------
def _check_args(pop, policy, name: str) -> None:
    if not isinstance(pop, Population):
        raise DataError(f"{name}() takes a Population (from generate or load_population) first, "
                        f"got {type(pop).__name__}")
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy must be a branchsim.Policy, got {type(policy).__name__}", where=name)


def _check_delta(delta) -> float:
    if isinstance(delta, bool) or not isinstance(delta, Real) or not math.isfinite(delta) or delta < 0:
        raise BranchsimError(f"delta must be a finite number of points >= 0, got {delta!r}")
    return float(delta)


def _cuts(rules) -> tuple[np.ndarray, list[str], list[str]]:
    """Cut values (star cuts from the top, then the weak line), their labels and column names."""
    order = np.argsort(rules.star_levels)[::-1]
    values = np.append(rules.star_cuts[order], rules.weak_below)
    kinds = [f"{int(k)}-star cut" for k in rules.star_levels[order]] + ["weak line"]
    cols = [f"within_{int(k)}_star" for k in rules.star_levels[order]] + ["within_weak_line"]
    return values, kinds, cols


def _scores(prep, rules) -> np.ndarray:
    """Each branch's score under the policy: the arithmetic of :func:`branchsim.scoring.branch_outcome`."""
    w = rules.weights[prep.type_idx]
    return np.round(100.0 * np.einsum("nc,nc->n", prep.components, w), _DECIMALS)


# -- fragility -------------------------------------------------------------------
class Fragility:
    """Margins of every branch to the cut points of one policy (see :func:`fragility`).

    Attributes
    ----------
    branches : DataFrame
        One row per branch: branch_id, type, score, stars, nearest_cut,
        cut_kind, margin, fragile, veto_capped.
    counts : DataFrame
        One row per cut point (cut_kind, cut) with the branches within ±δ of
        it (``within``), of which ``below`` and ``at_or_above``; a last row
        ``any cut`` counts the distinct fragile branches.
    delta : float
    policy : Policy
    """

    def __init__(self, branches: pd.DataFrame, counts: pd.DataFrame, delta: float, policy: Policy):
        self.branches, self.counts, self.delta, self.policy = branches, counts, delta, policy

    @property
    def n_fragile(self) -> int:
        """Distinct branches within ±δ of at least one cut point."""
        return int(self.branches["fragile"].sum())

    @property
    def fragile(self) -> pd.DataFrame:
        """The rows of :attr:`branches` within ±δ of a cut, closest first."""
        f = self.branches[self.branches["fragile"]]
        return f.iloc[np.argsort(np.abs(f["margin"].to_numpy()), kind="stable")]

    def summary(self) -> str:
        n = len(self.branches)
        return (f"{self.n_fragile} of {n} branches within ±{self.delta:g} points of a cut point "
                f"(policy {self.policy.name!r})\n\n" + self.counts.to_string(index=False))

    __str__ = summary

    def __repr__(self) -> str:
        return (f"<Fragility: {self.n_fragile} of {len(self.branches)} branches within "
                f"±{self.delta:g} points of a cut>")

    def _repr_html_(self) -> str:
        return (f"<div><b>Fragility</b> — {self.n_fragile} of {len(self.branches)} branches within "
                f"±{self.delta:g} points of a cut, policy <code>{html.escape(self.policy.name)}</code>"
                f"{self.counts.to_html(index=False)}</div>")


def fragility(pop: Population, policy: Policy, delta: float = 1.0) -> Fragility:
    """How close each branch's score is to a cut point, and how many are within ±δ.

    The cut points are the policy's star cuts and its weak line. A branch's
    ``margin`` is its score minus the nearest cut (on a tie, the higher
    cut): positive or zero means at or above it (a score on a cut earns
    that star), negative below. A branch within ±δ of a cut
    (``fragile``) changes star — or weak status — if its score moves by δ
    in the right direction (from exactly δ above, by just over δ): a
    survey answer or one missed meeting can be enough.

    Branches whose star a veto caps (``veto_capped``) keep their margins as
    computed from the score, but crossing a cut above their cap changes
    nothing.

    Parameters
    ----------
    pop : Population
    policy : Policy
    delta : float, default 1.0
        Half-width of the band around each cut, in points.

    Returns
    -------
    Fragility
        ``.branches`` (one row per branch) and ``.counts`` (per cut point).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> f = fragility(pop, bs.Policy.load(), delta=1.0)
    >>> f.n_fragile
    4
    >>> f.fragile["branch_id"].tolist(), f.fragile["margin"].round(2).tolist()
    (['B010', 'B008', 'B007', 'B006'], [-0.29, 0.53, 0.75, -0.98])
    >>> f.fragile["cut_kind"].tolist()
    ['3-star cut', '4-star cut', '5-star cut', '4-star cut']
    """
    _check_args(pop, policy, "fragility")
    delta = _check_delta(delta)
    rules = compile_branch_rules(policy)
    prep = prepare(pop, policy)
    score = _scores(prep, rules)
    stars = np.minimum(star_levels(score, rules.star_levels, rules.star_cuts), prep.cap)
    values, kinds, _ = _cuts(rules)
    margins = np.round(score[:, None] - values[None, :], _DECIMALS)        # (n, cuts)
    near = np.argmin(np.abs(margins), axis=1)                               # first = higher cut on a tie
    margin = margins[np.arange(len(score)), near]
    within = np.abs(margins) <= delta
    frame = pd.DataFrame({
        "branch_id": prep.branches["branch_id"].to_numpy(), "type": prep.branches["type"].to_numpy(),
        "score": score, "stars": stars, "nearest_cut": values[near],
        "cut_kind": np.array(kinds, dtype=object)[near], "margin": margin,
        "fragile": np.abs(margin) <= delta, "veto_capped": prep.cap < 5})
    counts = pd.DataFrame({"cut_kind": kinds + ["any cut"], "cut": np.append(values, np.nan),
                           "within": np.append(within.sum(axis=0), frame["fragile"].sum()),
                           "below": np.append((within & (margins < 0)).sum(axis=0),
                                              (frame["fragile"] & (margin < 0)).sum()),
                           "at_or_above": np.append((within & (margins >= 0)).sum(axis=0),
                                                    (frame["fragile"] & (margin >= 0)).sum())})
    return Fragility(frame, counts, delta, policy)


def fragility_curve(pop: Population, policy: Policy, shares=np.linspace(0.2, 0.6, 9), delta: float = 1.0,
                    by: str | None = None) -> pd.DataFrame:
    """Branches within ±δ of a cut point as the satisfaction share varies.

    For each share the four dimension shares are re-normalised to fill the
    rest of the 100 points, as :meth:`Policy.update` and :func:`sweep` do
    (a type with its own survey share keeps it). All shares are scored at
    once: one ``(block, 5) @ (5, shares)`` product per block of branches.

    Parameters
    ----------
    pop : Population
    policy : Policy
        Cut points, weak line and the other shares come from it.
    shares : array-like of float in [0, 1]
    delta : float, default 1.0
    by : str, optional
        A branch column (``"type"``, ``"level"``, ...) to count per group.

    Returns
    -------
    DataFrame
        One row per share (and group): ``satisfaction_share``, ``n``,
        ``fragile`` (distinct branches within ±δ of any cut, as
        :func:`fragility` counts them), ``share_fragile``, and
        ``within_5_star`` … ``within_weak_line`` per cut point.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> df = fragility_curve(pop, bs.Policy.load(), shares=[0.2, 0.4, 0.6])
    >>> df["fragile"].tolist()
    [2, 4, 3]
    """
    _check_args(pop, policy, "fragility_curve")
    delta = _check_delta(delta)
    try:
        shares = np.asarray(shares, dtype=float).ravel()
    except (TypeError, ValueError):
        raise BranchsimError(f"shares must be numbers in [0, 1], got {shares!r}") from None
    if shares.size == 0:
        raise BranchsimError("shares is empty; give at least one satisfaction share in [0, 1]")
    sc = scenario_arrays(policy, pd.DataFrame({"branch.satisfaction_share": shares}))
    rules = compile_branch_rules(policy)
    prep = prepare(pop, policy)
    if by is not None and by not in prep.branches.columns:
        raise DataError(f"by={by!r} is not a branch column; allowed: {', '.join(prep.branches.columns)}")
    codes, names = (pd.factorize(prep.branches[by], sort=True) if by is not None
                    else (np.zeros(prep.n, dtype=np.intp), [None]))
    G, S = len(names), len(shares)
    values, _, cols = _cuts(rules)
    within = np.zeros((G, S, len(values)))
    anyc = np.zeros((G, S))
    for t in np.unique(prep.type_idx):                      # loops over types and blocks, not branches
        w = sc.weights[:, t, :].T                           # (c, S)
        rows = np.flatnonzero(prep.type_idx == t)
        for lo in range(0, len(rows), BLOCK_ROWS):
            r = rows[lo:lo + BLOCK_ROWS]
            onehot = np.zeros((G, len(r)))
            onehot[codes[r], np.arange(len(r))] = 1.0
            score = np.round(100.0 * (prep.components[r] @ w), _DECIMALS)   # (B, S)
            hit_any = np.zeros(score.shape, dtype=bool)
            for j, cut in enumerate(values):                # a few cut points
                hit = np.abs(np.round(score - cut, _DECIMALS)) <= delta
                within[:, :, j] += onehot @ hit
                hit_any |= hit
            anyc += onehot @ hit_any
    n = np.bincount(codes, minlength=G).astype(float)
    frames = []
    for g in range(G):
        f = pd.DataFrame({"satisfaction_share": shares})
        if by is not None:
            f.insert(0, by, names[g])
        f["n"] = int(n[g])
        f["fragile"] = anyc[g]
        f["share_fragile"] = anyc[g] / n[g] if n[g] else np.nan
        for j, c in enumerate(cols):
            f[c] = within[g, :, j]
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    count_cols = ["fragile"] + cols
    out[count_cols] = out[count_cols].astype(int)
    return out

