"""Fragility of levels: how close each branch sits to a boundary between levels.

* :func:`fragility` — each branch's signed margin to its nearest boundary
  (a level's cut, or a designation's score line) and how many branches sit
  within ±δ of one, as a :class:`Fragility`;
* :func:`fragility_curve` — that count as the satisfaction share varies.

Which boundary a margin is measured against depends on the rating design
(``docs/policy-format.md``, "Rating designs"):

* **fixed cuts** (``cuts``): the cut of the unit's type; margin = score − cut.
  A unit within ±δ changes level if its score alone moves by δ.
* **relative designs** (``quota``, ``cuts_and_quota``, ``kmeans``,
  ``hierarchical``): the boundary is where the unit would *swap* level with
  its neighbour in its peer group. The realised cut of a level in a group
  (``branch_outcome(...)["cuts"]``, the lowest score admitted) is the
  threshold of the units below it: margin = score − realised cut (negative).
  A unit at or above it swaps with the best unit left below (its score is
  ``below`` in :attr:`Fragility.cuts`): margin = score − that score (under
  ``cuts_and_quota``, − the fixed cut when that is higher). Exact for quotas
  when the other scores stay; for the clustering designs the boundary the
  clustering draws lies between the two neighbours and moves with the unit,
  so the margin is the largest move that can be needed.

Designation lines (``score_below`` criteria) are fixed under every design.
Scores, levels and realised cuts come from the core
(:func:`branchsim.evaluate.branch_outcome`): a margin of 0 means "exactly on
the boundary". The helpers here are shared with :mod:`.cutpoints`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, overload

import html
import math
from numbers import Real

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError, PolicyError
from ..manifest import recorded
from ..evaluate import branch_inputs, branch_outcome
from ..policy import Policy
from ..population import Population
from ..scoring import DECIMALS, scores_from_components

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..plausible import Cities

__all__ = ["Fragility", "fragility", "fragility_curve"]


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


def _evaluated(pop: Population, policy: Policy):
    """The branch inputs and :func:`branch_outcome` of the population under the policy."""
    inp = branch_inputs(pop.branches, policy.scheme, policy_name=policy.name)
    return inp, branch_outcome(inp, policy.scheme)


def _group_codes(inp, rating, n: int) -> np.ndarray:
    """Each unit's peer group (row of a relative design's cut table)."""
    return inp.codes(rating.peer_groups)[0] if rating.peer_groups else np.zeros(n, dtype=np.intp)


def _best_below(score: np.ndarray, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``(G, L-1)``: the best score of each group below each realised cut (-inf: none)."""
    out = np.full(table.shape, -np.inf)
    for g in range(len(table)):                             # a loop over the few peer groups
        s = np.sort(score[groups == g])
        at = np.searchsorted(s, table[g], side="left")     # scores < cut are s[:at]
        out[g] = np.where(at > 0, s[np.maximum(at - 1, 0)] if len(s) else -np.inf, -np.inf)
    return out


def boundaries(inp, scheme, out: dict) -> dict:
    """Every boundary between levels and designations, with each unit's margin to it.

    Returns ``kinds`` (boundary names: level ids best first, then
    ``<designation>.<criterion>``), ``margins`` ``(n, b)``, ``against``
    ``(n, b)`` (the value each margin is measured from) and ``cuts`` (the
    cut points: ``group``, ``level``, ``cut`` and for relative designs
    ``below``).
    """
    bs = scheme.branch
    r = bs.rating
    score = np.asarray(out["score"], float)
    n = len(score)
    above = list(bs.levels.worst_first[1:])                 # ascending codes 1..L-1
    cuts = out["cuts"].copy()
    if r.relative:
        groups = _group_codes(inp, r, n)
        names = list(dict.fromkeys(cuts["group"]))
        table = cuts.set_index(["group", "level"])["cut"].unstack("level").reindex(index=names,
                                                                                  columns=above).to_numpy(float)
        low = _best_below(score, groups, table)
        cuts["below"] = low.ravel()
        a, e = table[groups], low[groups]                   # (n, L-1)
        if r.design == "cuts_and_quota":
            e = np.maximum(e, r.cuts[0][None, :])
        against = np.where(score[:, None] >= a, e, a)
    else:
        against = r.cuts[inp.type_idx]
    lines = [(f"{d.id}.{c.id}", c.value) for d in bs.designations for c in d.criteria if c.kind == "score_below"]
    against = np.column_stack([against[:, ::-1]] + [np.full(n, v) for _, v in lines]) if lines \
        else against[:, ::-1]
    with np.errstate(invalid="ignore"):
        margins = np.round(score[:, None] - against, DECIMALS)
    return {"kinds": list(bs.levels.ids[:-1]) + [k for k, _ in lines], "margins": margins,
            "against": against, "cuts": cuts}


def _nearest(margins: np.ndarray):
    """Index of the nearest boundary of each unit (the higher boundary on a tie) and the margin to it."""
    near = np.argmin(np.abs(np.nan_to_num(margins, nan=np.inf)), axis=1)
    return near, margins[np.arange(len(margins)), near]


# -- fragility -------------------------------------------------------------------
class Fragility:
    """Margins of every branch to the level boundaries of one policy (see :func:`fragility`).

    Attributes
    ----------
    branches : DataFrame
        One row per branch: branch_id, type, score, rating, nearest_cut (the
        value the margin is measured from), cut_kind (a level id, or
        ``<designation>.<criterion>``), margin, fragile, overridden (a veto or
        direct grading set the level: crossing a boundary may change nothing).
    counts : DataFrame
        One row per boundary (cut_kind, cut: its value when the same for every
        branch) with the branches within ±δ of it (``within``), of which
        ``below`` and ``at_or_above``; a last row ``any cut`` counts the
        distinct fragile branches.
    cuts : DataFrame
        The cut points used: ``group``, ``level``, ``cut``; for relative
        designs realised ones, with ``below`` (the best score left below).
    design, definition : str
        The rating design and which margin applies to it.
    delta : float
    policy : Policy
    """

    def __init__(self, branches: pd.DataFrame, counts: pd.DataFrame, delta: float, policy: Policy,
                 cuts: pd.DataFrame | None = None):
        self.branches, self.counts, self.delta, self.policy = branches, counts, delta, policy
        self.cuts = cuts
        r = policy.scheme.branch.rating
        self.design = r.design
        self.definition = ("swap with the neighbouring unit of the peer group (realised cuts)" if r.relative
                           else "distance to the fixed cut")

    @property
    def n_fragile(self) -> int:
        """Distinct branches within ±δ of at least one boundary."""
        return int(self.branches["fragile"].sum())

    @property
    def fragile(self) -> pd.DataFrame:
        """The rows of ``branches`` within ±δ of a boundary, closest first."""
        f = self.branches[self.branches["fragile"]]
        return f.iloc[np.argsort(np.abs(f["margin"].to_numpy()), kind="stable")]

    def summary(self) -> str:
        n = len(self.branches)
        return (f"{self.n_fragile} of {n} branches within ±{self.delta:g} points of a boundary "
                f"(policy {self.policy.name!r}, design {self.design}: {self.definition})\n\n"
                + self.counts.to_string(index=False))

    __str__ = summary

    def __repr__(self) -> str:
        return (f"<Fragility: {self.n_fragile} of {len(self.branches)} branches within "
                f"±{self.delta:g} points of a boundary ({self.design})>")

    def _repr_html_(self) -> str:
        return (f"<div><b>Fragility</b> — {self.n_fragile} of {len(self.branches)} branches within "
                f"±{self.delta:g} points of a boundary, policy <code>{html.escape(self.policy.name)}</code> "
                f"({html.escape(self.design)}: {html.escape(self.definition)}){self.counts.to_html(index=False)}</div>")


def _counts(kinds, margins, against, frame, delta) -> pd.DataFrame:
    within = np.abs(margins) <= delta
    uniform = [float(c[0]) if len(c) and np.all(c == c[0]) else np.nan for c in against.T]
    fragile, margin = frame["fragile"].to_numpy(), frame["margin"].to_numpy()
    return pd.DataFrame({"cut_kind": kinds + ["any cut"], "cut": uniform + [np.nan],
                         "within": np.append(within.sum(axis=0), fragile.sum()),
                         "below": np.append((within & (margins < 0)).sum(axis=0), (fragile & (margin < 0)).sum()),
                         "at_or_above": np.append((within & (margins >= 0)).sum(axis=0),
                                                  (fragile & (margin >= 0)).sum())})


def _overridden(scheme, out: dict) -> np.ndarray:
    """Units whose level a direct grading or a capping or forcing veto set, whatever their score."""
    levels = np.array([e != "" for e in scheme.branch.vetoes.effect], dtype=bool)
    return out["direct"].any(axis=1) | out["vetoes"][:, levels].any(axis=1)


@overload
def fragility(pop: Population, policy: Policy, delta: float = 1.0, *, cities: None = None) -> Fragility: ...
@overload
def fragility(pop: Population | None, policy: Policy, delta: float = 1.0, *, cities: Cities) -> pd.DataFrame: ...


@recorded("fragility")
def fragility(pop: Population | None, policy: Policy, delta: float = 1.0, *, cities: Cities | None = None) -> Fragility | pd.DataFrame:
    """How close each branch's score is to a level boundary, and how many are within ±δ.

    For a fixed-cut design the boundaries are the cuts of the branch's type;
    for a relative design (quotas, clustering) the realised cuts of its peer
    group, measured as the margin to the neighbouring unit it would swap level
    with (see the module's description). Every design adds the designations'
    score lines. A branch's ``margin`` is its score minus the nearest
    boundary (on a tie, the higher): positive or zero means at or above it,
    negative below. A branch within ±δ (``fragile``) changes level — or
    designation — if its score moves by δ in the right direction.

    Parameters
    ----------
    pop : Population
    policy : Policy
    delta : float, default 1.0
        Half-width of the band around each boundary, in points.
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        per boundary (``cut_kind``; ``any cut``: the distinct fragile
        branches) the counts of ``Fragility.counts``, each with its mean
        and interval across cities.

    Returns
    -------
    Fragility
        ``.branches`` (one row per branch), ``.counts`` (per boundary) and
        ``.cuts`` (the cut points used).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> f = fragility(pop, bs.Policy.load(), delta=1.0)
    >>> f.n_fragile
    4
    >>> f.fragile["branch_id"].tolist(), f.fragile["margin"].round(2).tolist()
    (['B010', 'B008', 'B007', 'B006'], [-0.29, 0.53, 0.75, -0.98])
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, policy, "fragility")
        return across_cities(cities, fragility, policy, _check_delta(delta), keys=["cut_kind"],
                             numbers=lambda f: f.counts)
    _check_args(pop, policy, "fragility")
    delta = _check_delta(delta)
    inp, out = _evaluated(pop, policy)
    bd = boundaries(inp, policy.scheme, out)
    near, margin = _nearest(bd["margins"])
    n = len(margin)
    b = pop.branches
    frame = pd.DataFrame({
        "branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy(), "score": out["score"],
        "rating": policy.scheme.branch.levels.id_of(out["level"]),
        "nearest_cut": bd["against"][np.arange(n), near], "cut_kind": np.array(bd["kinds"], dtype=object)[near],
        "margin": margin, "fragile": np.abs(margin) <= delta,
        "overridden": _overridden(policy.scheme, out)})
    return Fragility(frame, _counts(bd["kinds"], bd["margins"], bd["against"], frame, delta), delta, policy,
                     bd["cuts"])


def fragility_curve(pop: Population, policy: Policy, shares: ArrayLike = np.linspace(0.2, 0.6, 9), delta: float = 1.0,
                    by: str | None = None) -> pd.DataFrame:
    """Branches within ±δ of a level boundary as the satisfaction share varies.

    For each share the policy is changed with :meth:`Policy.update` (the
    dimension shares re-normalised to fill the rest; a type with its own
    survey share keeps it), the branches are scored from their components
    (computed once) and rated again — a relative design draws new realised
    cuts — and the margins are those of :func:`fragility`.

    Parameters
    ----------
    pop : Population
    policy : Policy
        A policy with a survey; boundaries and the other shares come from it.
    shares : array-like of float in [0, 1]
    delta : float, default 1.0
    by : str, optional
        A branch column (``"type"``, ``"level"``, ...) to count per group.

    Returns
    -------
    DataFrame
        One row per share (and group): ``satisfaction_share``, ``n``,
        ``fragile`` (distinct branches within ±δ of any boundary, as
        :func:`fragility` counts them), ``share_fragile``, and
        ``within_<cut_kind>`` per boundary.

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
    if not policy.scheme.branch.survey:
        raise BranchsimError(f"policy {policy.name!r} has no survey: there is no satisfaction share to vary")
    try:
        shares = np.asarray(shares, dtype=float).ravel()
    except (TypeError, ValueError):
        raise BranchsimError(f"shares must be numbers in [0, 1], got {shares!r}") from None
    if shares.size == 0:
        raise BranchsimError("shares is empty; give at least one satisfaction share in [0, 1]")
    b = pop.branches
    if by is not None and by not in b.columns:
        raise DataError(f"by={by!r} is not a branch column; allowed: {', '.join(map(str, b.columns))}")
    codes, names = pd.factorize(b[by], sort=True) if by is not None else (np.zeros(len(b), dtype=np.intp), [None])
    inp, base = _evaluated(pop, policy)
    current = policy["branch.satisfaction_share"]
    rows_of = [[] for _ in names]                          # rows of each group, in the order of the shares
    for s in shares.tolist():                               # a loop over the few shares
        p = policy if s == current else policy.update({"branch.satisfaction_share": s})
        out = branch_outcome(inp, p.scheme, scores=scores_from_components(base["points"], base["components"],
                                                                          inp.type_idx, p.scheme.branch))
        bd = boundaries(inp, p.scheme, out)
        within = np.abs(bd["margins"]) <= delta
        any_hit = within.any(axis=1)
        for g, name in enumerate(names):
            rows = codes == g
            row = {"satisfaction_share": s} if by is None else {by: name, "satisfaction_share": s}
            row.update(n=int(rows.sum()), fragile=int(any_hit[rows].sum()),
                       share_fragile=any_hit[rows].mean() if rows.any() else np.nan)
            row.update({f"within_{k}": int(within[rows, j].sum()) for j, k in enumerate(bd["kinds"])})
            rows_of[g].append(row)
    return pd.DataFrame([row for rows in rows_of for row in rows])
