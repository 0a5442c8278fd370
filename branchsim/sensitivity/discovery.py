"""Scenario discovery: where in the space of weights and cut points a condition holds.

:func:`discover` samples scenarios (a Latin hypercube over the factors of
:func:`~branchsim.sensitivity.factors.default_factors`, noise levels excluded),
scores them all on the scenario axis, marks those meeting a condition such
as ``"weak / n > 0.03"``, and describes them by one readable box found with
PRIM (Friedman & Fisher 1999), implemented in :func:`prim`:

1. *Peeling.* Starting from the whole sample, repeatedly remove the slice
   holding a share ``peel_alpha`` of the box's scenarios from the low or the
   high side of one factor — the slice whose removal raises the share of
   scenarios meeting the condition the most — until the box would hold less
   than ``min_support`` of all scenarios. Each step is one row of the
   trajectory (coverage, density, support).
2. *Choice.* Without ``threshold``, the box maximising density × coverage
   (a perfect box scores 1; the whole space scores the base rate, so a
   condition that holds almost everywhere may get no box — describe its
   opposite); with ``threshold``, the largest box (highest coverage) whose
   density reaches it, or the densest box if none does. Any other step can
   be chosen with :meth:`Discovery.select`.
3. *Simplification.* A restriction is dropped when dropping it does not
   lower the criterion: peels of an irrelevant factor made early, by chance,
   are undone. (Friedman's pasting step is not done.)

Terms: *coverage* = share of all scenarios meeting the condition that lie in
the box; *density* = share of the box's scenarios meeting it; *support* =
share of all scenarios in the box.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import html
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..model import as_seed_sequence
from ..policy import Policy
from .factors import _check_factors, default_factors, evaluate_samples, factor_problem, factor_values

if TYPE_CHECKING:
    from typing import Any
    from collections.abc import Callable, Mapping, Sequence
    from concurrent.futures import Executor
    from numpy.typing import ArrayLike
    from ..population import Population
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["Discovery", "prim", "discover"]


@dataclass(frozen=True, repr=False)
class Discovery:
    """A PRIM box, its peeling trajectory and the scenarios behind it."""

    X: pd.DataFrame
    y: np.ndarray
    lows: np.ndarray          # (steps, k) box bounds of each peeling step (-inf: not restricted)
    highs: np.ndarray
    trajectory: pd.DataFrame  # step, support, coverage, density, n_restricted, peeled
    full: pd.DataFrame        # factor, full_low, full_high
    step: int
    lo: np.ndarray            # the chosen (simplified) box
    hi: np.ndarray
    label: str = "condition"
    threshold: float | None = None
    samples: pd.DataFrame | None = None

    def _stats(self, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any, Any]:
        inside = ((self.X.to_numpy(float) >= lo) & (self.X.to_numpy(float) <= hi)).all(axis=1)
        k = self.y[inside].sum()
        return k / max(inside.sum(), 1), k / self.y.sum(), inside.mean()

    @property
    def density(self) -> float:
        return float(self._stats(self.lo, self.hi)[0])

    @property
    def coverage(self) -> float:
        return float(self._stats(self.lo, self.hi)[1])

    @property
    def support(self) -> float:
        return float(self._stats(self.lo, self.hi)[2])

    @property
    def base_rate(self) -> float:
        return float(self.y.mean())

    @property
    def box(self) -> pd.DataFrame:
        """One row per factor: ``low, high`` of the box, ``restricted``, and the full range."""
        b = self.full.copy()
        b.insert(1, "low", np.where(np.isfinite(self.lo), self.lo, b.full_low))
        b.insert(2, "high", np.where(np.isfinite(self.hi), self.hi, b.full_high))
        b.insert(3, "restricted", np.isfinite(self.lo) | np.isfinite(self.hi))
        return b

    def select(self, step: int, *, simplify: bool = True) -> "Discovery":
        """The box of another peeling step (see ``trajectory``)."""
        if not 0 <= step < len(self.trajectory):
            raise BranchsimError(f"step {step!r}: allowed 0 to {len(self.trajectory) - 1}")
        lo, hi = self.lows[step], self.highs[step]
        if simplify:
            lo, hi = _simplify(self, lo, hi)
        return replace(self, step=step, lo=lo, hi=hi)

    def summary(self) -> str:
        """One sentence: how often the condition holds in the box, and where the box is."""
        parts = []
        for r in self.box[self.box.restricted].itertuples():
            lo, hi = np.isfinite(self.lo[r.Index]), np.isfinite(self.hi[r.Index])
            parts.append(f"{r.low:.4g} ≤ {r.factor} ≤ {r.high:.4g}" if lo and hi
                         else f"{r.factor} ≥ {r.low:.4g}" if lo else f"{r.factor} ≤ {r.high:.4g}")
        where = " and ".join(parts) if parts else (
            "anywhere: no box beats the whole space (for a condition that holds almost everywhere, "
            "describe its opposite instead)")
        return (f"{self.label} holds in {self.density:.0%} of scenarios inside this box (which holds "
                f"{self.coverage:.0%} of all such scenarios; {self.support:.0%} of scenarios, base rate "
                f"{self.base_rate:.0%}) where {where}")

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        box = self.box[self.box.restricted]
        return (f"<p>{html.escape(self.summary())}</p>"
                + box.to_html(index=False, float_format=lambda v: f"{v:.4g}"))


def _criterion(density: Any, coverage: Any, threshold: float | None, met: Any) -> Any:
    """What the choice maximises: density × coverage, or coverage once the threshold is met."""
    if threshold is not None and met:
        return np.where(density >= threshold, coverage, -np.inf)
    return density * coverage


def _simplify(d: Discovery, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = lo.copy(), hi.copy()
    dens, cov, _ = d._stats(lo, hi)
    met = d.threshold is not None and dens >= d.threshold
    best = _criterion(dens, cov, d.threshold, met)
    while True:
        trials = []
        for j in range(len(lo)):                 # a loop over restricted sides
            for side, arr in (("lo", lo), ("hi", hi)):
                if np.isfinite(arr[j]):
                    l2, h2 = lo.copy(), hi.copy()
                    (l2 if side == "lo" else h2)[j] = -np.inf if side == "lo" else np.inf
                    de, co, _ = d._stats(l2, h2)
                    trials.append((_criterion(de, co, d.threshold, met), l2, h2))
        if not trials:
            return lo, hi
        crit, l2, h2 = max(trials, key=lambda t: t[0])
        if crit < best:
            return lo, hi
        best, lo, hi = crit, l2, h2


def prim(X: pd.DataFrame, y: ArrayLike, *, peel_alpha: float = 0.05, min_support: float = 0.05,
         threshold: float | None = None, label: str = "condition",
         limits: pd.DataFrame | Mapping[str, Sequence] | None = None,
         simplify: bool = True) -> Discovery:
    """PRIM on scenarios ``X`` (one numeric column per factor) and a True/False ``y`` each.

    ``limits`` (a frame with ``name, low, high``) gives each factor's full
    range for the report; default: the range of ``X``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.random((2000, 3)), columns=["a", "b", "c"])
    >>> d = prim(X, (X.a > 0.6).to_numpy())
    >>> d.box.loc[d.box.restricted, ["factor", "low"]].round(1).values.tolist()
    [['a', 0.6]]
    """
    if not isinstance(X, pd.DataFrame) or X.shape[1] == 0:
        raise BranchsimError("prim takes X as a DataFrame with one numeric column per factor")
    Xa = X.to_numpy(float)
    y = np.asarray(y)
    problems = []
    if y.shape != (len(X),) or y.dtype != bool:
        problems.append(f"y must be True/False, one per scenario ({len(X)}); got {y.dtype} {y.shape}")
    if not np.isfinite(Xa).all():
        problems.append(f"X has missing or infinite values in {list(X.columns[~np.isfinite(Xa).all(0)])}")
    if not 0 < peel_alpha < 0.5 or not 0 < min_support < 1:
        problems.append(f"peel_alpha must be in (0, 0.5), min_support in (0, 1); got {peel_alpha}, {min_support}")
    if threshold is not None and not 0 < threshold <= 1:
        problems.append(f"threshold must be in (0, 1]; got {threshold}")
    if problems:
        raise BranchsimError(problems[0] if len(problems) == 1 else "\n".join(problems))
    if not y.any():
        raise BranchsimError(f"{label!r} holds in none of the {len(y)} scenarios: there is nothing to describe")
    n, k = Xa.shape
    lo, hi = np.full(k, -np.inf), np.full(k, np.inf)
    inside = np.ones(n, dtype=bool)
    lows, highs, rows = [lo.copy()], [hi.copy()], [(inside.sum(), y.sum(), "")]
    while True:                                   # a loop over peeling steps
        xi, yi = Xa[inside], y[inside]
        best = None
        for j in range(k):
            col = xi[:, j]
            for side in ("low", "high"):
                t = np.quantile(col, peel_alpha if side == "low" else 1 - peel_alpha)
                if side == "low":
                    cut = t if (col < t).any() else (col[col > t].min() if (col > t).any() else None)
                    keep = None if cut is None else col >= cut
                else:
                    cut = t if (col > t).any() else (col[col < t].max() if (col < t).any() else None)
                    keep = None if cut is None else col <= cut
                if keep is None or not keep.any():
                    continue
                key = (yi[keep].mean(), keep.sum())
                if best is None or key > best[0]:
                    best = (key, j, side, cut, keep)
        if best is None or best[4].sum() < min_support * n:
            break
        _, j, side, cut, keep = best
        (lo if side == "low" else hi)[j] = cut
        inside[np.flatnonzero(inside)[~keep]] = False
        lows.append(lo.copy())
        highs.append(hi.copy())
        rows.append((inside.sum(), y[inside].sum(), f"{X.columns[j]} {side}"))
    size, hits, peeled = map(np.array, zip(*rows))
    traj = pd.DataFrame({"step": np.arange(len(rows)), "support": size / n, "coverage": hits / y.sum(),
                         "density": hits / size,
                         "n_restricted": [int((np.isfinite(a) | np.isfinite(b)).sum()) for a, b in zip(lows, highs)],
                         "peeled": peeled})
    met = threshold is not None and (traj.density >= threshold).any()
    step = int(np.argmax(_criterion(traj.density.to_numpy(), traj.coverage.to_numpy(), threshold, met)))
    if limits is not None:
        lim = pd.DataFrame(limits).set_index("name").loc[list(X.columns)]
        full = pd.DataFrame({"factor": list(X.columns), "full_low": lim["low"].to_numpy(float),
                             "full_high": lim["high"].to_numpy(float)})
    else:
        full = pd.DataFrame({"factor": list(X.columns), "full_low": Xa.min(0), "full_high": Xa.max(0)})
    d = Discovery(X.reset_index(drop=True), y, np.array(lows), np.array(highs), traj, full, step,
                  lows[step], highs[step], str(label), threshold)
    return d.select(step, simplify=simplify)


def _condition(frame: pd.DataFrame,
               condition: str | Callable[[pd.DataFrame], ArrayLike]) -> tuple[np.ndarray, str]:
    allowed = ", ".join(frame.columns)
    if callable(condition):
        label = getattr(condition, "__name__", "condition")
        label = "condition" if label == "<lambda>" else label
        try:
            y = condition(frame)
        except Exception as exc:
            raise BranchsimError(f"condition {label!r} failed on the scenario frame: {exc}; "
                                 f"columns: {allowed}") from exc
    elif isinstance(condition, str):
        label = condition
        try:
            y = frame.eval(condition)
        except Exception as exc:     # pandas raises many types (UndefinedVariableError, SyntaxError, ...)
            raise BranchsimError(f"condition {condition!r} cannot be evaluated: {exc}; write an "
                                 f"expression of the columns {allowed}, e.g. 'weak / n > 0.03'") from None
    else:
        raise BranchsimError(f"condition must be a string expression or a function of the scenario "
                             f"frame; got {type(condition).__name__}")
    y = np.asarray(y)
    if y.shape != (len(frame),) or y.dtype != bool:
        raise BranchsimError(f"condition {label!r} must give True/False for each of the {len(frame)} "
                             f"scenarios (a comparison such as 'weak / n > 0.03'); got {y.dtype} {y.shape}")
    return y, label


def discover(pop: Population, policy: Policy, condition: str | Callable[[pd.DataFrame], ArrayLike],
             factors: pd.DataFrame | None = None, *, n: int = 2000, seed: Seed = 0,
             peel_alpha: float = 0.05, min_support: float = 0.05, threshold: float | None = None,
             label: str | None = None, executor: Executor | None = None, progress: bool = True) -> Discovery:
    """The region of weights and cut points in which ``condition`` holds, as a PRIM box.

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline: ``changed`` / ``mean_abs_change`` are against its levels.
    condition : str or callable
        An expression for ``DataFrame.eval`` on the scenario frame (factor
        columns and the outputs ``n``, one count per level id and designation
        id, ``changed``, ``mean_abs_change``, ``accuracy``), e.g.
        ``"weak / n > 0.03"`` or ``"changed / n > 0.10"``; or a function of
        that frame returning a bool array.
    factors : DataFrame, optional
        Default: :func:`~branchsim.sensitivity.factors.default_factors` without noise.
    n : int
        Scenarios, drawn as a Latin hypercube seeded by ``seed``.

    Returns
    -------
    Discovery
        ``.box``, ``.trajectory``, ``.coverage``, ``.density``, ``.support``,
        ``.summary()``, ``.samples`` (the scenarios with a ``condition`` column).

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> d = discover(pop, p, "weak / n > 0.03", n=500, progress=False)
    >>> bool(d.density > d.base_rate), bool(d.box.restricted.any())
    (True, True)
    """
    from scipy.stats import qmc
    f = _check_factors(default_factors(policy, noise=False) if factors is None else factors, policy)
    if not isinstance(n, (int, np.integer)) or n < 20:
        raise BranchsimError(f"n must be a whole number of scenarios, at least 20; got {n!r}")
    rng = np.random.default_rng(as_seed_sequence(seed))
    bounds = np.array(factor_problem(f)["bounds"])
    U = qmc.LatinHypercube(d=len(f), rng=rng).random(int(n))
    values = factor_values(f, bounds[:, 0] + U * (bounds[:, 1] - bounds[:, 0]))
    frame = evaluate_samples(pop, policy, values, f, executor=executor, progress=progress, _checked=True)
    y, name = _condition(frame, condition)
    d = prim(values, y, peel_alpha=peel_alpha, min_support=min_support, threshold=threshold,
             label=label or name, limits=f[["name", "low", "high"]])
    return replace(d, samples=frame.assign(condition=y))
