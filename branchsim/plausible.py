"""Plausible cities: the calibration's own uncertainty.

Published counts do not pin the generator down. A city's counts vary from
draw to draw (each city draws its own indicator difficulties, states and
survey answers), so the counts a researcher publishes are one draw; and
a few counts identify only a few parameters. :func:`plausible_cities` builds
an ensemble of generator parameter sets consistent with the targets, by a
parametric bootstrap of the fit:

1. **Fit once** (:func:`branchsim.calibrate`): ``θ̂`` and, at ``θ̂``, the
   Jacobian ``J`` of the expected counts (common random numbers over
   ``seeds``; state facts averaged out when their rate is fitted, as
   :func:`~branchsim.calibrate` does, else held by the common random
   numbers) with respect to the fitted parameters and to the parameters
   drawn in step 3.
2. **Replicate the targets.** Candidate ``b`` simulates one city at ``θ̂``
   (its own seed, drawn states) and moves the targets by its departure from
   the expectation: ``t_b = t + c_b − E[c | θ̂]`` (at least 0). That is the
   city-to-city variation of a published count.
3. **Draw what the targets do not identify** from its declared prior range:
   the branch-quality and state parameters (and, with a structure, the
   structure ones) that the fit left alone, uniform on ``prior: [lo, hi]``
   of their entry in the generator file (``prior: {plus_minus: w}``: the
   value ± w); ``priors=`` adds or overrides ranges.
4. **Refit the identified parameters to** ``t_b``: a Gauss–Newton step from
   ``J`` (with the drawn parameters' columns), then up to ``refine``
   Broyden steps, each one evaluation of the expected counts, minimising
   the squared departures in Poisson standard deviations
   ``(E[c] − t_b) / √max(t_b, 1)``; structure parameters are refitted
   exactly. A candidate whose expected counts end farther than ``tol``
   such standard deviations from ``t_b`` (any target) is rejected: its
   drawn parameters are inconsistent with the targets.

The first ``n`` accepted candidates are the plausible cities: the same seed
gives the same cities, and the first cities of a larger ensemble are those
of a smaller one. :func:`across_cities` runs an analysis on each city's
population and reports every numeric answer with its mean and interval
across cities; the analyses take the ensemble as ``cities=``.
Assumptions: docs/calibration.md, "Plausible cities".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .calibration import (QUALITY, STRUCTURE, _as_params, _box, _fit_structure, _seed_list, _split, _whole_number,
                          calibrate, expected_counts, expected_upgrades, seed_counts, target_counts)
from .errors import BranchsimError
from .model import GeneratorParams, generate
from .params import document_leaf
from .policy import Policy, as_policy

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any
    from .population import Population
    from collections.abc import Iterable, Sequence
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["plausible_cities", "Cities", "across_cities", "prior_ranges"]

#: Candidates tried at most, per city wanted, before giving up.
MAX_TRIES = 5
#: Replicate and population seeds are drawn at or above this (the calibration seeds are small integers).
_SEED_FLOOR = 2 ** 20


def prior_ranges(params: GeneratorParams, names: Iterable[str], overrides: Mapping | None = None) -> dict[str, tuple[float, float]]:
    """Prior range ``(lo, hi)`` of each named generator parameter.

    Read from ``overrides`` (``{name: (lo, hi)}``), else the ``prior`` of the
    parameter's entry in the scheme's generator file, else in
    ``data/generator.yaml``: ``[lo, hi]``, or ``{plus_minus: w}`` (the
    parameter's value ± w). Clipped to the parameter's allowed range.

    >>> p = GeneratorParams.load()
    >>> prior_ranges(p, ["branch_quality.scale"], {"branch_quality.scale": (0.05, 0.1)})
    {'branch_quality.scale': (0.05, 0.1)}
    >>> lo, hi = prior_ranges(p, ["branch_quality.loc"])["branch_quality.loc"]
    >>> bool(lo < p.get("branch_quality.loc") < hi)
    True
    """
    overrides = dict(overrides or {})
    base = None
    out = {}
    for name in names:
        if name in overrides:
            spec, where = overrides[name], "priors="
        else:
            spec, where = _entry(params.document, name), "the generator file"
            if spec is None:
                base = GeneratorParams.load() if base is None else base
                spec, where = _entry(base.document, name), "data/generator.yaml"
        if spec is None:
            raise BranchsimError(f"plausible_cities: generator parameter {name!r} has no prior range: add "
                                 f"'prior: [lo, hi]' to its entry in the generator file or give "
                                 f"priors={{{name!r}: (lo, hi)}}")
        try:
            value = params.get(str(name))
        except (KeyError, TypeError):
            value = None
        if not _number(value):
            raise BranchsimError(f"plausible_cities: {name!r} is not a numeric generator parameter, so it has no "
                                 f"prior range")
        if isinstance(spec, Mapping) and set(spec) == {"plus_minus"}:
            w = spec["plus_minus"]
            spec = (value - w, value + w) if _number(w) and w > 0 else None
        if (not isinstance(spec, (list, tuple)) or len(spec) != 2 or not all(map(_number, spec))
                or not spec[0] < spec[1]):
            raise BranchsimError(f"plausible_cities: prior of {name!r} in {where} must be [lo, hi] with lo < hi "
                                 f"(finite numbers) or {{plus_minus: w}} with w > 0, got {overrides.get(name, spec)!r}")
        _, lo, hi = _box([name], params)
        a, b = max(float(spec[0]), lo[0]), min(float(spec[1]), hi[0])
        if not a < b:
            raise BranchsimError(f"plausible_cities: prior of {name!r} ({where}) [{spec[0]:g}, {spec[1]:g}] lies "
                                 f"outside the parameter's allowed range [{lo[0]:g}, {hi[0]:g}]")
        out[name] = (a, b)
    return out


def _check_prior_names(params: GeneratorParams, priors: Mapping) -> None:
    """Before any fitting: every parameter ``priors=`` names is a continuous numeric generator parameter."""
    from .params import _INTEGER, numeric_value
    bad = []
    for name in priors:
        if numeric_value(params, name) is None:
            bad.append(f"{name!r} is not a numeric generator parameter")
        elif name in _INTEGER:
            bad.append(f"{name!r} is a whole number, which a uniform prior does not draw")
    if bad:
        raise BranchsimError(f"plausible_cities: priors=: {'; '.join(bad)}")


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.number)) and math.isfinite(v)


def _entry(document: dict, name: str):
    node = document_leaf(document, name)
    return node.get("prior") if isinstance(node, dict) else None


class Cities:
    """An ensemble of plausible generator parameter sets (see :func:`plausible_cities`).

    Attributes
    ----------
    policy : Policy
    params : DataFrame
        One row per city (index ``city``): ``seed`` (of its population),
        each fitted and each drawn parameter, ``fit_error`` (largest departure
        of its expected counts from its replicated targets, in Poisson
        standard deviations).
    replicates : DataFrame
        Per city, the replicated targets ``t_b`` it was fitted to.
    fitted, drawn : list of str
        Parameters refitted to each replicate, and drawn from their priors.
    n_branches : int
        Branches of each city's population (the calibration's).
    details : dict
        ``calibration`` (the :class:`~branchsim.calibration.CalibrationResult`,
        None without targets), ``priors``, ``seeds``, ``candidates`` (tried),
        ``ignored`` (targets the generator cannot move), ``tol``.
    """

    def __init__(self, policy: Policy, members: list, params: pd.DataFrame, replicates: pd.DataFrame,
                 n_branches: int, fitted: list, drawn: list, details: dict):
        self.policy, self._members, self.params, self.replicates = policy, list(members), params, replicates
        self.n_branches, self.fitted, self.drawn, self.details = int(n_branches), list(fitted), list(drawn), details

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self):
        return iter(self._members)

    def __getitem__(self, i: int) -> GeneratorParams:
        return self._members[i]

    def generate(self, i: int, *, seed: Seed = None, n_branches: int | None = None, members: bool = False,
                 **kwargs: Any) -> Population:
        """Population of city ``i``: its parameters, its own seed (or ``seed``: the same for every city).

        >>> import branchsim as bs
        >>> c = plausible_cities(bs.Policy.load(), {"weak": 5}, n=2, scale=300, seeds=range(2), refine=1, tol=2)
        >>> c.generate(1).branches.shape[0], c.generate(1, n_branches=50).branches.shape[0]
        (300, 50)
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise BranchsimError(f"Cities.generate: city {i!r} is not one of the {len(self)} cities "
                                 f"(0..{len(self) - 1})")
        return generate(self.policy, seed=int(self.params["seed"].iloc[int(i)]) if seed is None else seed,
                        n_branches=self.n_branches if n_branches is None else n_branches,
                        members=members, params=self._members[int(i)], **kwargs)

    def _head(self) -> str:
        fit = ", ".join(self.fitted) or "none"
        drawn = ", ".join(self.drawn) or "none"
        return (f"{len(self)} plausible cities of policy {self.policy.name!r} ({self.n_branches} branches; "
                f"refitted: {fit}; drawn from priors: {drawn})")

    def _table(self) -> pd.DataFrame:
        cols = [c for c in self.params.columns if c != "seed"]
        q = self.params[cols].quantile([0.05, 0.5, 0.95])
        q.index = ["5%", "median", "95%"]
        return q

    def __repr__(self) -> str:
        return "Cities: " + self._head() + "\n" + self._table().to_string(float_format=lambda v: f"{v:.4g}")

    def _repr_html_(self) -> str:
        import html
        return f"<b>Cities</b>: {html.escape(self._head())}" + self._table().to_html(float_format=lambda v: f"{v:.4g}")


def _drawable(policy: Policy, params: GeneratorParams, fitted, extra) -> list[str]:
    s = policy.scheme
    names = list(QUALITY[:4]) + (["state.problem_rate"] if s.branch.state_facts else [])
    names += list(STRUCTURE) if s.structure is not None else []
    names += [k for k in extra if k not in names]
    return [k for k in names if k not in fitted]


def plausible_cities(policy: PolicyLike = None, targets: Mapping[str, float] | PathLike | None = None, n: int = 50,
                     *, scale: float | None = None, n_branches: int | None = None, seed: int = 0,
                     seeds: Iterable[int] = range(10), params: GeneratorParams | dict | None = None,
                     fit: Sequence[str] | None = None, priors: Mapping | None = None,
                     refine: int = 10, tol: float = 1.0, maxiter: int = 200, progress: bool = False) -> Cities:
    """An ensemble of generator parameter sets consistent with the targets (the calibration's uncertainty).

    Parameters
    ----------
    policy : Policy or path, optional
        The scheme (default: the baseline).
    targets : mapping, path or None
        As for :func:`branchsim.calibrate` (None: the policy's own targets
        file; its level counts are ignored under a quota design, whose quotas
        set them). No targets at all: every parameter is drawn from its prior.
    n : int
        Cities wanted.
    scale, n_branches, fit, params, maxiter
        As for :func:`branchsim.calibrate` (``n_branches`` is also the size of
        each city's population).
    seed : int
        Seeds the candidates' replicate cities, prior draws and population
        seeds: the same seed gives the same cities.
    seeds : iterable of int
        Common random numbers of every expectation (the fit and each refit).
    priors : mapping {parameter: (lo, hi)}, optional
        Prior ranges that override the generator file's; a parameter named
        here that is not fitted is drawn too (any numeric generator parameter).
    refine : int
        Broyden steps at most per city after the Gauss–Newton step (each
        costs one expectation: one city per seed).
    tol : float
        Largest departure of a city's expected counts from its replicated
        targets, in Poisson standard deviations (``√max(t_b, 1)``); worse
        candidates are rejected.

    Returns
    -------
    Cities
        ``len(cities) == n``; ``.params`` (one row per city), ``.generate(i)``.

    Raises
    ------
    BranchsimError
        Bad targets or arguments (as :func:`branchsim.calibrate`), ``n`` not a
        whole number >= 1, ``priors=`` naming what is not a continuous
        numeric generator parameter, a parameter without a prior, or fewer
        than ``n`` of ``5 n`` candidates fitting within ``tol``.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> c = plausible_cities(p, {p.levels[0]: 8, "weak": 4}, n=3, scale=300, seeds=range(2), refine=1, tol=2)
    >>> len(c), c.fitted, list(c.params.index)
    (3, ['branch_quality.loc', 'branch_quality.scale'], [0, 1, 2])
    """
    policy = as_policy(policy)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise BranchsimError(f"plausible_cities: n= is the number of cities wanted (a whole number >= 1), got {n!r}")
    for name, v, low in (("refine", refine, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise BranchsimError(f"plausible_cities: {name}= must be a whole number >= {low}, got {v!r}")
    if not _number(tol) or tol <= 0:
        raise BranchsimError(f"plausible_cities: tol= must be a number > 0, got {tol!r}")
    if priors is not None and not isinstance(priors, Mapping):
        raise BranchsimError(f"plausible_cities: priors= takes a mapping {{parameter: (lo, hi)}}, got "
                             f"{type(priors).__name__}")
    base = _as_params(params, policy, "plausible_cities")
    seeds = _seed_list(seeds, "plausible_cities")
    if n_branches is not None:
        n_branches = _whole_number(n_branches, "plausible_cities: n_branches= (branches of each city)")
    _check_prior_names(base, priors or {})
    counts, sc, where = target_counts(policy, targets, scale=scale)
    ignored = []
    if targets is None and policy.scheme.branch.rating.design == "quota":
        ignored = [k for k in counts.index if k in policy.scheme.branch.levels.ids]
        counts = counts.drop(ignored)
    cal = None
    if not counts.empty:
        cal = calibrate(policy, counts.to_dict(), scale=sc, n_branches=n_branches, fit=fit, seeds=seeds,
                        params=base, maxiter=maxiter, progress=progress)
        theta, n_cities = cal.params, cal.details["n_branches"]
        tgt = cal.fit["target"]
    else:
        if fit is not None:
            raise BranchsimError(f"plausible_cities: fit={fit!r} but {where} gives no counts to fit")
        theta = base
        n_cities = int(n_branches if n_branches is not None else round(sc) if sc else base.get("scale.n_branches"))
        tgt = pd.Series(dtype=float)
    quality, upgrades = _split(policy, tgt, where) if not tgt.empty else ([], [])
    fitted = [] if cal is None else list(cal.fitted)
    snames = [k for k in fitted if k.startswith("structure.")]
    qnames = [k for k in fitted if k not in snames]
    drawn = _drawable(policy, theta, fitted, priors or {})
    ranges = prior_ranges(theta, drawn, priors)          # a fitted parameter's prior is not used
    x_hat = np.array([theta.get(k) for k in qnames], dtype=float)
    d_hat = np.array([theta.get(k) for k in drawn], dtype=float)
    steps, lo, hi = _box(qnames, theta)

    # States averaged out only when their rate is fitted (as calibrate does); otherwise common random
    # numbers hold them all but fixed, and one evaluation per seed is enough.
    smooth = "state.problem_rate" in qnames

    def expect(p):
        return expected_counts(p, policy, seeds, n_cities, smooth=smooth)[quality].to_numpy(float)

    c_hat, Jq, Jd = None, None, None
    if qnames:
        c_hat = expect(theta)
        Jr = cal.details["jacobian"]          # the fit's last one (d residual / d parameter): reused
        reuse = Jr is not None and Jr.shape == (len(quality), len(qnames))
        Jq = (Jr * np.maximum(tgt[quality].to_numpy(float), 1.0)[:, None] if reuse
              else _jacobian(expect, theta, qnames, c_hat))
        linear = [k for k in drawn if not k.startswith("structure.")]
        Jd = np.zeros((len(quality), len(drawn)))
        if linear:
            cols = _jacobian(expect, theta, linear, c_hat)
            for j, k in enumerate(linear):
                Jd[:, drawn.index(k)] = cols[:, j]
    u_hat = expected_upgrades(theta, policy, n_cities)

    rng = np.random.default_rng(seed)
    taken = set(seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="plausible cities")
    members, rows, reps, tried = [], [], [], 0
    while len(members) < n and tried < MAX_TRIES * n:
        tried += 1
        u = rng.random(len(drawn))
        rep_seed, pop_seed = (int(s) for s in rng.integers(_SEED_FLOOR, 2 ** 31 - 1, size=2))
        if rep_seed in taken:                       # never a calibration seed (cannot happen above the floor)
            continue
        values = {k: float(a + ui * (b - a)) for k, ui, (a, b) in zip(drawn, u, (ranges[k] for k in drawn))}
        p = theta.with_values(values) if values else theta
        t_b = tgt.copy()
        if not tgt.empty:
            c_b = seed_counts(theta, policy, [rep_seed], n_cities, upgrades=bool(upgrades)).iloc[0]
            if c_hat is not None:
                t_b[quality] = tgt[quality].to_numpy() + c_b[quality].to_numpy() - c_hat
            for k in upgrades:
                t_b[k] = tgt[k] + c_b[k] - u_hat[k]
            t_b = t_b.clip(lower=0.0)
        if snames:
            p = _fit_structure(p, policy, n_cities, t_b[upgrades], snames)
        error, used = 0.0, 0
        if qnames:
            tb = t_b[quality].to_numpy(float)
            wb = np.sqrt(np.maximum(tb, 1.0))          # a count's Poisson standard deviation
            dd = np.array([values[k] for k in drawn]) - d_hat if drawn else np.zeros(0)
            dx = np.linalg.lstsq(Jq / wb[:, None], (tb - c_hat - Jd @ dd) / wb, rcond=None)[0]
            x0 = np.clip(x_hat + _step(dx, steps), lo, hi)

            def resid(x, p=p):
                return (expect(p.with_values(dict(zip(qnames, map(float, x))))) - tb) / wb

            x, r, used = _broyden(resid, x0, Jq / wb[:, None], steps, lo, hi, refine, tol)
            p = p.with_values(dict(zip(qnames, map(float, x))))
            error = float(np.abs(r).max())
        if upgrades:
            e = expected_upgrades(p, policy, n_cities)
            error = max(error, max(abs(e[k] - t_b[k]) / math.sqrt(max(t_b[k], 1.0)) for k in upgrades))
        if error > tol:
            continue
        members.append(p)
        rows.append({"seed": pop_seed, **{k: p.get(k) for k in fitted + drawn}, "fit_error": error,
                     "evaluations": used})
        reps.append(t_b.rename(len(reps)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if len(members) < n:
        raise BranchsimError(
            f"plausible_cities: only {len(members)} of {tried} candidate cities fit their replicated targets within "
            f"tol={tol:g}; the priors of {', '.join(drawn) or 'no parameter'} admit values the targets rule out: "
            f"narrow them (priors=), raise tol or refine")
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="city"))
    replicates = (pd.DataFrame(reps).rename_axis("city") if reps and not tgt.empty
                  else pd.DataFrame(index=pd.RangeIndex(len(rows), name="city")))
    return Cities(policy, members, frame, replicates, n_cities, fitted, drawn,
                  {"calibration": cal, "priors": ranges, "seeds": seeds, "candidates": tried, "ignored": ignored,
                   "tol": tol, "seed": seed})


def _jacobian(expect, params: GeneratorParams, names, at: np.ndarray) -> np.ndarray:
    """Forward-difference d expected count / d parameter (columns: ``names``), steps of calibrate."""
    steps, lo, hi = _box(names, params)
    cols = []
    for k, h, top in zip(names, steps, hi):
        v = params.get(k)
        h = h if v + h <= top else -h
        cols.append((expect(params.with_values({k: float(v + h)})) - at) / h)
    return np.column_stack(cols)


def _step(dx: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``dx`` shortened as a whole (its direction kept) so that no parameter moves more than ten steps."""
    worst = float(np.max(np.abs(dx) / (10 * steps), initial=0.0))
    return dx / worst if worst > 1 else dx


def _broyden(resid, x0, J, steps, lo, hi, refine: int, tol: float):
    """``(x, residual, evaluations)``: ``x0`` checked, then up to ``refine`` damped Broyden steps from ``J``.

    Levenberg–Marquardt steps on a Jacobian that each evaluation updates by
    Broyden's rank-one secant (no finite differences); a step that does not
    lower the sum of squares raises the damping. Stops once every residual
    is within ``tol / 4``.

    >>> x, r, used = _broyden(lambda x: np.array([x[0] ** 2 - 4.0]), np.array([1.5]), np.array([[3.0]]),
    ...                       np.array([0.1]), np.array([0.0]), np.array([9.0]), 8, 1e-6)
    >>> round(float(x[0]), 4), used <= 9
    (2.0, True)
    """
    x = np.asarray(x0, dtype=float)
    r, used, J, lam = resid(x), 1, np.array(J, dtype=float), 1e-3
    for _ in range(refine):
        if np.abs(r).max() <= tol / 4:
            break
        H = J.T @ J
        dx = np.linalg.lstsq(H + lam * np.diag(np.diag(H) + 1e-12), -J.T @ r, rcond=None)[0]
        s = np.clip(x + _step(dx, steps), lo, hi) - x
        if not np.any(np.abs(s) > 1e-12):
            break
        rn = resid(x + s)
        used += 1
        J = J + np.outer((rn - r) - J @ s, s) / (s @ s)
        if rn @ rn < r @ r:
            x, r, lam = x + s, rn, max(lam / 10, 1e-7)
        else:
            lam *= 10
    return x, r, used


# -- analyses across cities --------------------------------------------------------------------------------
def check_cities(cities, pop, policy, where: str) -> None:
    """A clear error for a ``cities=`` that is not an ensemble of this scheme, or given with a population."""
    if not isinstance(cities, Cities):
        raise BranchsimError(f"{where}: cities= takes the ensemble of bs.plausible_cities(policy, targets), got "
                             f"{type(cities).__name__}")
    if pop is not None:
        raise BranchsimError(f"{where}: give a population or cities= (each city's population is generated), "
                             f"not both; pass None as the population")
    if policy is not None and (list(policy.scheme.branch.types) != list(cities.policy.scheme.branch.types)
                               or list(policy.levels) != list(cities.policy.levels)):
        raise BranchsimError(f"{where}: the cities were drawn for policy {cities.policy.name!r} (branch types "
                             f"{', '.join(cities.policy.scheme.branch.types)}), which policy {policy.name!r} cannot "
                             f"rate; draw them with plausible_cities({policy.name!r}, ...)")


def _long(answer, keys) -> pd.DataFrame:
    """An analysis' numeric answers as rows ``keys…, quantity, value``."""
    if isinstance(answer, Mapping):
        answer = pd.Series(dict(answer))
    if isinstance(answer, (int, float, np.number)) and not isinstance(answer, bool):
        answer = pd.Series({"value": answer})
    if isinstance(answer, pd.Series):
        s = pd.to_numeric(answer, errors="coerce").astype(float)
        return pd.DataFrame({"quantity": [str(k) for k in s.index], "value": s.to_numpy()})
    if not isinstance(answer, pd.DataFrame):
        raise BranchsimError(f"across_cities: the analysis returned a {type(answer).__name__}; give numbers= to "
                             f"turn it into a DataFrame or Series")
    keys = [k for k in (keys or []) if k in answer.columns]
    frame = answer if keys else answer.rename_axis(answer.index.name or "row").reset_index()
    keys = keys or [frame.columns[0]]
    values = [c for c in frame.columns if c not in keys and (pd.api.types.is_numeric_dtype(frame[c])
                                                            or pd.api.types.is_bool_dtype(frame[c]))]
    out = frame[keys + values].melt(id_vars=keys, value_vars=values, var_name="quantity", value_name="value")
    out["value"] = out["value"].astype(float)
    return out


def across_cities(cities: Cities, analysis: Callable[..., Any], *args: Any, keys: Sequence[str] | None = None,
                  numbers: Callable[[Any], pd.DataFrame | pd.Series] | None = None, members: bool = False,
                  n_branches: int | None = None, seed: Seed = None, interval: float = 0.9, progress: bool = False,
                  **kwargs: Any) -> pd.DataFrame:
    """Run ``analysis(population, *args, **kwargs)`` on every plausible city; each answer with its interval.

    Parameters
    ----------
    cities : Cities
        From :func:`plausible_cities`.
    analysis : callable
        Takes a population first.
    keys : list of str, optional
        Columns of a DataFrame answer that name a row (others that are not
        numeric are dropped); default: its index.
    numbers : callable, optional
        Turns the answer into a DataFrame or Series of numbers first.
    members, n_branches, seed
        For :meth:`Cities.generate` (``seed`` None: each city's own).
    interval : float
        Central probability of the interval (0.9: the 5% and 95% quantiles).

    Returns
    -------
    DataFrame
        One row per key and ``quantity``: ``mean``, ``sd``, ``lower``,
        ``upper`` (quantiles across cities, NaN answers left out) and
        ``n_cities`` (a quantity no city answers is left out); ``.attrs["per_city"]`` holds every city's value
        (``city``, keys, ``quantity``, ``value``), ``.attrs["interval"]``.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> c = plausible_cities(p, {"weak": 5}, n=3, scale=300, seeds=range(2), refine=1, tol=2)
    >>> out = across_cities(c, lambda pop: {"branches": len(pop.branches)})
    >>> out[["quantity", "mean", "lower", "upper", "n_cities"]].values.tolist()
    [['branches', 300.0, 300.0, 300.0, 3]]
    """
    check_cities(cities, None, None, "across_cities")
    for name, f in (("analysis", analysis), ("numbers", numbers)):
        if not callable(f) and not (name == "numbers" and f is None):
            raise BranchsimError(f"across_cities: {name} must be a function taking "
                                 f"{'a population' if name == 'analysis' else 'the analysis answer'}, got {f!r}")
    if not _number(interval) or not 0 < interval < 1:
        raise BranchsimError(f"across_cities: interval= is a probability in (0, 1), got {interval!r}")
    parts = []
    it = range(len(cities))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="cities")
    for i in it:
        pop = cities.generate(i, seed=seed, n_branches=n_branches, members=members)
        try:
            answer = analysis(pop, *args, **kwargs)
        except BranchsimError as exc:
            text = f"plausible city {i} (seed {int(cities.params['seed'].iloc[i])}): {exc}"
            try:
                again = type(exc)(text)
            except TypeError:               # an error class of other arguments: the family's base
                again = BranchsimError(text)
            raise again from None
        long = _long(numbers(answer) if numbers is not None else answer, keys)
        long.insert(0, "city", i)
        parts.append(long)
    per_city = pd.concat(parts, ignore_index=True)
    ids = [c for c in per_city.columns if c not in ("city", "value")]
    a = (1 - interval) / 2
    rows = []
    for key, g in per_city.groupby(ids, sort=False, dropna=False):
        v = np.sort(g["value"].to_numpy(float))
        v = v[~np.isnan(v)]
        rows.append((*key, *(_stats(v, a))))
    out = pd.DataFrame(rows, columns=ids + ["mean", "sd", "lower", "upper", "n_cities"])
    out = out[out["n_cities"] > 0].reset_index(drop=True)      # what no city answers (NaN everywhere) goes
    out.attrs["per_city"] = _PerCity(per_city)
    out.attrs["interval"] = interval
    return out


class _PerCity(pd.DataFrame):
    """Every city's values, kept in a summary's ``attrs``.

    pandas copies ``attrs`` when it slices a frame and compares them when it
    concatenates frames; a plain DataFrame there fails that comparison
    ("truth value ... ambiguous"). This one keeps its type when copied and
    compares with another of its kind as one bool (same values: ``equals``),
    so ``pd.concat`` of slices of one summary keeps it and of two summaries
    drops it. Frames derived from it (``query``, ``pivot`` ...) are plain
    DataFrames.
    """

    def __deepcopy__(self, memo=None):
        return _PerCity(self.copy(deep=True))

    def __eq__(self, other):
        if isinstance(other, _PerCity):
            return bool(self.equals(other))
        return super().__eq__(other)

    def __ne__(self, other):
        if isinstance(other, _PerCity):
            return not self.equals(other)
        return super().__ne__(other)

    __hash__ = object.__hash__


def _stats(v: np.ndarray, a: float) -> tuple:
    if not len(v):
        return (math.nan, math.nan, math.nan, math.nan, 0)
    finite = v[np.isfinite(v)]
    mean = float(np.mean(v)) if len(finite) == len(v) else math.nan
    sd = float(np.std(v, ddof=1)) if len(v) > 1 and len(finite) == len(v) else math.nan
    return (mean, sd, float(np.quantile(v, a)), float(np.quantile(v, 1 - a)), len(v))
