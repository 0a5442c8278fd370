"""Fit the generator to a scheme's published figures: the counts a researcher gives.

A **target** is a count keyed by

* a level id (branches rated exactly at that level; not under a ``quota``
  design, whose quotas set the level counts whatever the generator),
* a designation id (branches designated), or
* ``upgrade_<structure level>`` (branches whose size calls for that
  organisation level, one above theirs),

given as a mapping ``{id: count}``, the path of a targets file
(docs/policy-format.md, "Targets") or, by default, the policy's own
``NAME.targets.yaml``, at a scale: the number of branches the counts refer
to. Two parts of the generator are fitted, each by its own targets:

* **structure** — ``structure.p_underlevel`` (the probability that a unit
  sits one level below what its size calls for), then ``size_sigma`` (the
  spread of branch sizes), one per ``upgrade_<level>`` target. Their
  expectation is exact (:func:`expected_upgrades`).
* **quality** — ``branch_quality.loc``, ``scale``, ``skew``, ``tail`` (and
  ``state.problem_rate`` fifth, when the scheme has state facts), as many as
  there are independent level and designation targets (the level counts add
  up to the population: when every level is given, one of them is not
  independent). The expected counts are the mean over a fixed set of seeds
  with common random numbers (a deterministic objective); under a fixed-cuts
  design the state facts are averaged out exactly
  (``expected_counts(smooth=True)``).

``fit=`` names the parameters instead (any numeric generator parameter);
more parameters than targets is refused. A Levenberg–Marquardt solver on
forward differences minimises the sum of squared relative errors.
``calibrate(policy, targets, out=PATH)`` writes the fitted values to a
generator file of your own, atomically; a path inside the installed package
is refused. docs/calibration.md says which target identifies which parameter
for each shipped scheme.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import itertools
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import optimize, stats

from ._result import targets as _targets
from .errors import BranchsimError, PolicyError
from .evaluate import evaluate_checked
from .measurement import MIN_SIZE, _state_value, _type_table, size_median, state_problem_probability
from .model import GeneratorParams, generate
from .params import _INTEGER, _PROBABILITIES, _SIGNED, numeric_value
from .policy import Policy, as_policy

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["calibrate", "targets", "target_counts", "expected_upgrades", "expected_counts", "seed_counts",
           "CalibrationResult"]

QUALITY = ("branch_quality.loc", "branch_quality.scale", "branch_quality.skew", "branch_quality.tail",
           "state.problem_rate")
STRUCTURE = ("structure.size_sigma", "structure.p_underlevel")
#: Forward-difference step of the parameters fitted by default (others: 5% of the value); a step
#: moves at most ten of these.
STEP = {"branch_quality.loc": 0.01, "branch_quality.scale": 0.007, "branch_quality.skew": 0.1,
        "branch_quality.tail": 0.07, "state.problem_rate": 0.001, "structure.size_sigma": 0.02,
        "structure.p_underlevel": 0.01}
_BOUNDS = {"branch_quality.scale": (0.005, math.inf), "branch_quality.tail": (0.2, 5.0),
           "state.problem_rate": (0.0, 0.2), "structure.size_sigma": (0.2, 2.5)}
#: Combinations of state facts averaged exactly at most (2 ** 6); beyond, states are drawn.
_MAX_STATES = 6


def _whole_number(v, what: str, low: int = 1) -> int:
    """``v`` as an int, or one clear error naming the argument (not 1.5 truncated, not a raw ValueError)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise BranchsimError(f"{what} must be a whole number >= {low}, got {v!r}")
    return int(v)


def _seed_list(seeds, where: str) -> list:
    """``seeds`` as a non-empty list of fixed seeds (ints >= 0 or SeedSequences): the common random numbers of
    every expectation. None (fresh entropy) would make the objective random; a bare int is not a list."""
    if isinstance(seeds, (str, bytes, Mapping)) or not hasattr(seeds, "__iter__"):
        raise BranchsimError(f"{where}: seeds= takes a list of seeds (e.g. range(60)), got {seeds!r}")
    seeds = list(seeds)
    bad = [s for s in seeds if not (isinstance(s, np.random.SeedSequence) or (
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0))]
    if bad:
        raise BranchsimError(f"{where}: seeds= must be whole numbers >= 0 or SeedSequences (fixed, so every "
                             f"expectation uses the same random numbers); got {bad[:3]!r}")
    if not seeds:
        raise BranchsimError(f"{where}: give at least one seed")
    return seeds


def _as_params(params, policy: Policy, where: str) -> GeneratorParams:
    """Starting generator parameters: None (the policy's), a GeneratorParams, or a dict of dotted changes."""
    if params is None:
        return GeneratorParams.for_policy(policy)
    if isinstance(params, Mapping):
        return GeneratorParams.for_policy(policy).with_values(dict(params))
    if not isinstance(params, GeneratorParams):
        raise BranchsimError(f"{where}: params= takes GeneratorParams or a mapping of dotted generator "
                             f"parameters to values, got {type(params).__name__}")
    return params


def targets(policy: Policy | None = None) -> pd.DataFrame:
    """The policy's published counts with their quotes (``NAME.targets.yaml``), indexed by target.

    >>> import branchsim as bs
    >>> t = targets(bs.Policy.load())
    >>> list(t.columns), bool((t["value"] > 0).all())
    (['value', 'quote'], True)
    """
    t = _targets(as_policy(policy))
    rows = [{"target": k, "value": float(v), "quote": t["quotes"].get(k, "")} for k, v in t["counts"].items()]
    return pd.DataFrame(rows, columns=["target", "value", "quote"]).set_index("target")


class _TargetsFile:
    """A targets file at any path, read by the same reader as a policy's own (``_result.targets``)."""

    def __init__(self, path: Path):
        self.path = path

    def companion(self, kind: str) -> Path:
        return self.path


def target_counts(policy: Policy, targets: Mapping[str, float] | PathLike | None = None, *,
                  scale: float | None = None) -> tuple[pd.Series, float | None, str]:
    """``(counts, scale, where)``: the targets as floats, the branches they refer to, and their source.

    ``targets``: None (the policy's ``NAME.targets.yaml``), the path of a
    targets file, or a mapping ``{id: count}``. ``scale`` overrides the
    file's ``scale.branches`` (None: a mapping's scale is left to the caller).

    >>> import branchsim as bs
    >>> c, n, where = target_counts(bs.Policy.load(), {"weak": 19}, scale=1500)
    >>> c.to_dict(), n, where
    ({'weak': 19.0}, 1500.0, 'targets')
    """
    file_scale = None
    if targets is None or isinstance(targets, (str, os.PathLike)):
        path = policy.companion("targets") if targets is None else Path(targets)
        where = str(path) if path is not None else f"policy {policy.name!r}"
        if targets is not None and not path.is_file():
            raise BranchsimError(f"calibrate: targets file {str(targets)!r} not found (a branchsim-targets/1 "
                                 f"file: docs/policy-format.md, 'Targets')")
        try:
            t = _targets(policy if targets is None else _TargetsFile(path))
        except PolicyError as exc:           # one line naming the file
            raise BranchsimError(str(exc)) from None
        counts, file_scale = t["counts"], t["scale"]
    elif isinstance(targets, Mapping):
        counts, where = dict(targets), "targets"
    else:
        raise BranchsimError(f"calibrate: targets= takes a mapping {{id: count}}, the path of a targets file or "
                             f"None (the policy's own), got {type(targets).__name__}")
    bad = [f"{k}={v!r}" for k, v in counts.items() if isinstance(v, bool) or not isinstance(v, (int, float, np.number))
           or not math.isfinite(v) or v < 0]
    if bad:
        raise BranchsimError(f"{where}: counts must be finite numbers >= 0; got {', '.join(bad)}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)) or not math.isfinite(scale)
                              or not scale > 0):
        raise BranchsimError(f"calibrate: scale= is the number of branches the counts refer to (a finite number > 0), "
                             f"got {scale!r}")
    scale = file_scale if scale is None else scale
    return (pd.Series({str(k): float(v) for k, v in counts.items()}, dtype=float),
            None if scale is None else float(scale), where)


def expected_upgrades(params: GeneratorParams, policy: Policy, n_branches: int) -> dict[str, float]:
    """Exact expected number of units to upgrade to each structure level (``upgrade_<level>``).

    A unit of size ``s`` needs the largest level whose ``from`` it reaches;
    with probability ``structure.p_underlevel`` it sits one level lower, so
    it is upgraded. Sizes are rounded log-normal draws (at least 3). Empty
    without a structure.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> sorted(expected_upgrades(bs.GeneratorParams.for_policy(p), p, 1500)) == sorted(
    ...     f"upgrade_{lv}" for lv in p.scheme.structure.ids[1:])
    True
    """
    scheme = policy.scheme
    st = scheme.structure
    if st is None:
        return {}
    _, share, mult = _type_table(params, scheme.branch)
    sigma, p_under = params.get("structure.size_sigma"), params.get("structure.p_underlevel")
    median = size_median(params, scheme)

    def p_at_least(k):  # sizes are rounded: size >= k  <=>  draw >= k - 0.5
        if k <= MIN_SIZE:
            return np.ones(len(share))
        return stats.norm.sf(np.log((k - 0.5) / (median * mult)) / sigma)

    start = list(st.start) + [np.inf]
    out = {}
    for lv in range(len(st.ids) - 1, 0, -1):
        upper = np.zeros(len(share)) if np.isinf(start[lv + 1]) else p_at_least(start[lv + 1])
        out[f"upgrade_{st.ids[lv]}"] = float(n_branches * p_under * share @ (p_at_least(start[lv]) - upper))
    return out


def _counts(frame: pd.DataFrame, policy: Policy, weight: np.ndarray | None = None,
            upgrades: bool = False) -> pd.Series:
    bs, st = policy.scheme.branch, policy.scheme.structure
    w = np.ones(len(frame)) if weight is None else weight
    out = {lv: float(w[(frame["rating"] == lv).to_numpy()].sum()) for lv in bs.levels.ids}
    out.update({d.id: float(w[frame[d.id].to_numpy(bool)].sum()) for d in bs.designations})
    if upgrades and st is not None:
        out.update({f"upgrade_{lv}": float(w[(frame["upgrade_to"] == lv).to_numpy()].sum()) for lv in st.ids[1:]})
    return pd.Series(out)


def _smooth_counts(pop, policy: Policy, params: GeneratorParams) -> pd.Series:
    """Counts with the state facts averaged out exactly: every combination, weighted per unit."""
    bs = policy.scheme.branch
    b = pop.branches
    p = state_problem_probability(b["true_quality"].to_numpy(), params, 1)
    total = None
    for combo in itertools.product((True, False), repeat=len(bs.state_facts)):
        changed = b.copy()
        weight = np.ones(len(b))
        for fact, in_order in zip(bs.state_facts, combo):
            good, bad = _state_value(bs, fact)
            changed[fact] = good if in_order else bad
            weight = weight * ((1 - p) if in_order else p)
        c = _counts(evaluate_checked(policy, changed, None, None).branches, policy, weight)
        total = c if total is None else total + c
    return total


def seed_counts(params: GeneratorParams, policy: Policy, seeds: Iterable[int], n_branches: int, *, smooth: bool = False,
                upgrades: bool = False) -> pd.DataFrame:
    """Each seed's count of each level (best first) and designation: one row per seed (index: the seed).

    ``smooth`` as for :func:`expected_counts`; ``upgrades=True`` (drawn
    states only) adds each city's realised ``upgrade_<level>`` counts.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> seed_counts(bs.GeneratorParams.for_policy(p), p, [0, 1], 300)[list(p.levels)].sum(axis=1).tolist()
    [300.0, 300.0]
    """
    bs = policy.scheme.branch
    smooth = smooth and bs.rating.design == "cuts" and 0 < len(bs.state_facts) <= _MAX_STATES
    rows, seeds = [], _seed_list(seeds, "expected_counts")
    for s in seeds:
        pop = generate(policy, seed=s, n_branches=n_branches, members=False, params=params)
        rows.append(_smooth_counts(pop, policy, params) if smooth and not upgrades
                    else _counts(evaluate_checked(policy, pop.branches, None, None).branches, policy,
                                 upgrades=upgrades))
    return pd.DataFrame(rows, index=pd.Index(seeds, name="seed"))


def expected_counts(params: GeneratorParams, policy: Policy, seeds: Iterable[int], n_branches: int, *,
                    smooth: bool = False) -> pd.Series:
    """Mean count of each level (best first) and designation over ``seeds`` (branch-only populations).

    With ``smooth=True`` (a fixed-cuts design and a few state facts) the
    state facts (a vacant secretary post, a major violation) are averaged
    out exactly instead of drawn: each branch counts under every combination
    of its states with that combination's probability
    (:func:`branchsim.measurement.state_problem_probability`). That removes
    their Bernoulli noise from the calibration objective, so the fit cannot
    tune ``state.problem_rate`` to the particular problems of the calibration
    seeds (the counts are the same in expectation).

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> c = expected_counts(bs.GeneratorParams.for_policy(p), p, [0], 300)
    >>> float(c[list(p.levels)].sum())
    300.0
    """
    return seed_counts(params, policy, seeds, n_branches, smooth=smooth).mean()


class CalibrationResult:
    """Fitted parameters and the fit: achieved versus target.

    Attributes
    ----------
    params : GeneratorParams
        The fitted generator (``scale.n_branches`` set to the targets' scale).
    fit : DataFrame
        Per target: ``target`` (scaled to the simulated cities), ``achieved``,
        ``relative_error``, ``identified_by``.
    fitted : list of str
        The parameters fitted (structure first).
    details : dict
        ``seeds``, ``n_branches`` (of each simulated city), ``scale``,
        ``targets`` (at the published scale), ``evaluations``, ``jacobian``
        (the last one the solver used: d residual / d parameter), ``written``.
    """

    def __init__(self, params: GeneratorParams, fit: pd.DataFrame, details: dict):
        self.params, self.fit, self.details = params, fit, details
        self.fitted = list(details.get("fitted", []))

    def __repr__(self) -> str:
        return "CalibrationResult\n" + self.fit.to_string()

    def _repr_html_(self) -> str:
        return "<b>CalibrationResult</b>" + self.fit.to_html()


def _split(policy: Policy, counts: pd.Series, where) -> tuple[list, list]:
    """Targets by what fits them: levels and designations (quality), upgrades (structure); others refused."""
    s = policy.scheme
    levels, designations = list(s.branch.levels.ids), [d.id for d in s.branch.designations]
    upgrades = [f"upgrade_{lv}" for lv in (s.structure.ids[1:] if s.structure is not None else ())]
    unknown = [k for k in counts.index if k not in levels + designations + upgrades]
    if unknown:
        raise BranchsimError(f"{where}: counts {unknown} are not levels, designations or upgrade_<level> of "
                             f"policy {policy.name!r}; allowed: {', '.join(levels + designations + upgrades)}")
    design = s.branch.rating.design
    fixed = [k for k in counts.index if k in levels and design == "quota"]
    if fixed:
        rest = [k for k in counts.index if k not in fixed]
        raise BranchsimError(f"calibrate: nothing to fit for policy {policy.name!r} ({where}): its level counts "
                             f"{fixed} are set by the {design!r} design's quotas, whatever the generator"
                             if not rest else
                             f"{where}: the level counts {fixed} are set by the {design!r} design's quotas, "
                             f"whatever the generator; leave them out and fit to {rest}")
    if counts.empty:
        raise BranchsimError(f"calibrate: nothing to fit for policy {policy.name!r} ({where}): "
                             f"it has no published counts")
    return [k for k in counts.index if k not in upgrades], [k for k in counts.index if k in upgrades]


def _check_possible(policy: Policy, counts: pd.Series, scale: float, where) -> None:
    """Refuse counts no city of ``scale`` branches can have: one above the scale, or levels adding up to more
    (a fit would otherwise stop at a bound and return parameters that match nothing)."""
    over = [f"{k}={v:g}" for k, v in counts.items() if v > scale]
    levels = [k for k in counts.index if k in policy.scheme.branch.levels.ids]
    total = float(counts[levels].sum()) if levels else 0.0
    if over or total > scale + 0.5 * len(levels):        # (published counts may be rounded)
        what = (f"counts {', '.join(over)} exceed" if over else
                f"the level counts ({', '.join(levels)}) add up to {total:g}, more than")
        raise BranchsimError(f"{where}: {what} the {scale:g} branches they refer to (scale); give the scale "
                             f"of the published counts (scale= or the file's scale.branches)")


def _parameters(policy: Policy, params: GeneratorParams, quality, upgrades, fit, where) -> tuple[list, list]:
    """(quality, structure) parameters to fit: ``fit`` checked, or as many as the targets identify."""
    s = policy.scheme
    n_lv = sum(k in s.branch.levels.ids for k in quality)
    k_quality = len(quality) - (n_lv == s.branch.levels.n)      # all levels: they add up to the population
    if fit is None:
        order = list(QUALITY[:4]) + (["state.problem_rate"] if s.branch.state_facts else [])
        return order[:k_quality], ["structure.p_underlevel", "structure.size_sigma"][:len(upgrades)]
    if not isinstance(fit, str) and not (hasattr(fit, "__iter__") and not isinstance(fit, Mapping)):
        raise BranchsimError(f"calibrate: fit= takes a generator parameter's dotted name or a list of them, "
                             f"got {fit!r}")
    names = [fit] if isinstance(fit, str) else list(fit)
    try:
        hash(tuple(names))
    except TypeError:
        raise BranchsimError(f"calibrate: fit={names!r}: give parameter names (text)") from None
    bad = []
    for name in names:
        if numeric_value(params, name) is None or name in _INTEGER:
            bad.append(f"{name!r} is not a numeric generator parameter")
        elif name == "state.problem_rate" and not s.branch.state_facts:
            bad.append(f"{name!r} moves nothing: policy {policy.name!r} has no state facts")
    if bad or len(set(names)) < len(names):
        raise BranchsimError(f"calibrate: fit={names}: " + ("; ".join(bad) or "a parameter is named twice"))
    struct = [k for k in names if k.startswith("structure.")]
    qual = [k for k in names if k not in struct]
    if len(qual) > k_quality or len(struct) > len(upgrades):
        raise BranchsimError(
            f"{where}: too few targets for the parameters fitted: {len(qual)} quality parameter(s) {qual} from "
            f"{k_quality} independent level/designation count(s) and {len(struct)} structure parameter(s) from "
            f"{len(upgrades)} upgrade count(s); give more targets or fit fewer parameters")
    return qual, struct


def _box(names, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, lower, upper) of parameters: known ones from STEP/_BOUNDS, others from their value."""
    steps = np.array([STEP.get(k, max(0.05 * abs(params.get(k)), 1e-3)) for k in names], dtype=float)
    lo = [(_BOUNDS.get(k) or (-math.inf if k in _SIGNED else 0.0, 1.0 if k in _PROBABILITIES else math.inf))[0]
          for k in names]
    hi = [(_BOUNDS.get(k) or (0.0, 1.0 if k in _PROBABILITIES else math.inf))[1] for k in names]
    return steps, np.array(lo, dtype=float), np.array(hi, dtype=float)


def least_squares(resid, x0, steps, lower, upper, maxiter: int, tick=None):
    """Levenberg–Marquardt on forward differences within bounds: ``(x, residuals, jacobian, evaluations)``.

    At most ``maxiter`` evaluations of ``resid``; a step moves each
    parameter by at most ten of its ``steps``.

    >>> x, r, J, used = least_squares(lambda x: np.array([x[0] - 2.0, 3 * (x[0] - 2.0)]), [0.0], np.array([0.1]),
    ...                               np.array([-9.0]), np.array([9.0]), 20)
    >>> round(float(x[0]), 6), used <= 20
    (2.0, True)
    """
    def f(x):
        if tick is not None:
            tick()
        return np.asarray(resid(x), dtype=float)

    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    r, used, J, lam = f(x), 1, None, 1e-3
    while used + len(x) + 1 <= maxiter and r @ r > 1e-12:
        h = np.where(x + steps <= upper, steps, -steps)
        J = np.column_stack([(f(x + h[j] * np.eye(len(x))[j]) - r) / h[j] for j in range(len(x))])
        used += len(x)
        g, H = J.T @ r, J.T @ J
        gain = 0.0
        while used < maxiter and lam < 1e8:
            dx = np.linalg.lstsq(H + lam * np.diag(np.diag(H) + 1e-12), -g, rcond=None)[0]
            xn = np.clip(x + np.clip(dx, -10 * steps, 10 * steps), lower, upper)
            if np.allclose(xn, x, rtol=0, atol=1e-10):
                break
            rn = f(xn)
            used += 1
            if rn @ rn < r @ r:
                gain = 1 - (rn @ rn) / (r @ r)
                x, r, lam = xn, rn, max(lam / 10, 1e-7)
                break
            lam *= 10
        if gain < 1e-4:
            break
    return x, r, J, used


def _fit_structure(params, policy, n, tgt: pd.Series, names):
    def resid(x):
        e = expected_upgrades(params.with_values(dict(zip(names, map(float, x)))), policy, n)
        return [(e[k] - tgt[k]) / max(tgt[k], 1.0) for k in tgt.index]

    _, lo, hi = _box(names, params)
    x0 = np.clip([params.get(k) for k in names], lo, hi)
    sol = optimize.least_squares(resid, x0, bounds=(lo, hi))
    return params.with_values(dict(zip(names, map(float, sol.x))))


def calibrate(policy: PolicyLike = None, targets: Mapping[str, float] | PathLike | None = None, *,
              scale: float | None = None, n_branches: int | None = None, fit: Sequence[str] | None = None,
              seeds: Iterable[int] = range(60), params: GeneratorParams | Mapping | None = None,
              maxiter: int = 400, out: PathLike | None = None, write: PathLike | bool | None = None,
              progress: bool = False) -> CalibrationResult:
    """Fit the generator so the policy's *expected* outcome matches the targets.

    Parameters
    ----------
    policy : Policy or path, optional
        The scheme (default: the baseline).
    targets : mapping, path or None
        Counts ``{id: count}`` keyed by level ids, designation ids and
        ``upgrade_<structure level>``; or the path of a targets file; or
        None, the policy's own ``NAME.targets.yaml``.
    scale : float, optional
        The number of branches the counts refer to (default: the targets
        file's ``scale.branches``; for a mapping, ``n_branches``).
    n_branches : int, optional
        Branches of each simulated city (default: the scale, else the
        generator's ``scale.n_branches``); the targets are scaled to it.
    fit : list of str, optional
        Generator parameters to fit (default: as many as the targets
        identify; see the module's description).
    seeds : iterable of int
        Seeds whose mean outcome estimates the expectation (common random numbers).
    params : GeneratorParams or dict, optional
        Starting values (default: the policy's generator parameters).
    maxiter : int
        Evaluations of the expected counts at most (each costs one city per seed).
    out, write : path, optional
        A generator file to write the fitted values to, atomically (an
        existing one keeps its other entries); ``write`` is an alias.

    Returns
    -------
    CalibrationResult
        ``.params`` (fitted), ``.fit`` (target, achieved, relative error,
        identified by which parameters), ``.fitted``.

    Raises
    ------
    BranchsimError
        A target id the policy does not have, a target the design cannot
        move (level counts under a quota design), no target, counts more
        than the branches they refer to, more parameters than targets; an
        ``out`` inside the package or one that cannot be written (checked
        before fitting); seeds, ``maxiter``, ``n_branches`` or ``params``
        that are not what they say above.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> r = calibrate(p, {p.levels[0]: 14}, scale=500, n_branches=500, seeds=range(2), maxiter=10)
    >>> r.fitted, abs(float(r.fit["relative_error"].iloc[0])) < 0.1
    (['branch_quality.loc'], True)
    """
    policy = as_policy(policy)
    if out is not None and write not in (None, False):
        raise BranchsimError("calibrate: give out= or its alias write=, not both")
    out_path = _write_target(write if out is None else out)
    params = _as_params(params, policy, "calibrate")
    maxiter = _whole_number(maxiter, "calibrate: maxiter= (evaluations of the expected counts)")
    if n_branches is not None:
        n_branches = _whole_number(n_branches, "calibrate: n_branches= (branches of each simulated city)")
    seeds = _seed_list(seeds, "calibrate")
    start_scale = params.get("scale.n_branches")
    counts, scale, where = target_counts(policy, targets, scale=scale)
    quality, upgrades = _split(policy, counts, where)
    qnames, snames = _parameters(policy, params, quality, upgrades, fit, where)
    n = int(n_branches if n_branches is not None else round(scale) if scale else params.get("scale.n_branches"))
    if n < 1:
        raise BranchsimError(f"calibrate: scale={scale:g} rounds to no branch; give the number of branches the "
                             f"counts refer to")
    scale = float(scale or n)
    _check_possible(policy, counts, scale, where)
    if out_path is not None:                 # an existing file that cannot take the values: before fitting
        _existing(out_path, snames + qnames + ["scale.n_branches"])
    tgt = counts * n / scale
    if snames:
        params = _fit_structure(params, policy, n, tgt[upgrades], snames)
    J, used = None, 0
    if qnames:
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=maxiter, desc="calibrate")
        weight = np.maximum(tgt[quality].to_numpy(), 1.0)

        def resid(x):
            c = expected_counts(params.with_values(dict(zip(qnames, map(float, x)))), policy, seeds, n, smooth=True)
            return (c[quality].to_numpy() - tgt[quality].to_numpy()) / weight

        steps, lo, hi = _box(qnames, params)
        x, _, J, used = least_squares(resid, [params.get(k) for k in qnames], steps, lo, hi, maxiter,
                                      tick=None if bar is None else lambda: bar.update(1))
        if bar is not None:
            bar.close()
        params = params.with_values(dict(zip(qnames, map(float, x))))
    if round(scale) != params.get("scale.n_branches"):
        params = params.with_values({"scale.n_branches": int(round(scale))})
    achieved = expected_counts(params, policy, seeds, n).to_dict() if quality else {}
    achieved.update(expected_upgrades(params, policy, n))
    lv = set(policy.scheme.branch.levels.ids)
    shape = [k for k in qnames if k in QUALITY[:3]] or qnames
    tails = [k for k in qnames if k not in QUALITY[:3]] or qnames
    ident = {k: ", ".join(shape if k in lv else tails) for k in quality}
    ident.update({k: ", ".join(snames) for k in upgrades})
    fit_frame = pd.DataFrame({"target": tgt, "achieved": pd.Series(achieved, dtype=float)}).loc[list(counts.index)]
    fit_frame["relative_error"] = fit_frame["achieved"] / fit_frame["target"] - 1
    fit_frame["identified_by"] = pd.Series(ident)
    fitted = snames + qnames
    if out_path is not None:
        _write(params, out_path, fitted + (["scale.n_branches"] if params.get("scale.n_branches") != start_scale
                                           else []), f"fitted by branchsim.calibrate to {where} (policy {policy.name!r})")
    return CalibrationResult(params, fit_frame, {"seeds": seeds, "n_branches": n, "scale": scale, "fitted": fitted,
                                                 "targets": counts, "evaluations": used, "jacobian": J,
                                                 "written": out_path})


def _write_target(write) -> Path | None:
    """The file ``write=`` names, checked before any work: a path, never inside the package."""
    if write is None or write is False:
        return None
    if isinstance(write, bool) or not isinstance(write, (str, os.PathLike)):
        raise BranchsimError(f"calibrate: out= (write=) takes the path of a generator file to write (e.g. "
                             f"NAME.generator.yaml beside your policy), got {write!r}; the package's own "
                             f"data is not written")
    from .policy import data_path
    path = Path(os.path.abspath(Path(write).expanduser())).resolve()
    package = [Path(__file__).resolve().parent, data_path().resolve()]
    if any(path == p or p in path.parents for p in package):
        raise BranchsimError(f"calibrate: out={str(write)!r} lies inside the installed package "
                             f"({', '.join(map(str, package))}); write the fitted values to a file of your "
                             f"own, e.g. NAME.generator.yaml beside your policy")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK) or path.is_dir():
        why = "is a folder" if path.is_dir() else f"no writable folder {path.parent}"
        raise BranchsimError(f"{path}: cannot write the fitted values ({why}); checked before fitting")
    return path


def _existing(path: Path, fitted: list[str]) -> dict:
    """The generator file at ``path`` to update (a new one if absent), checked: a generator file whose
    entries along every fitted parameter's path are mappings, so the write cannot fail half-way."""
    if not path.exists():
        return {"schema": "branchsim-generator/1"}
    from .policy import read_yaml
    try:
        doc = read_yaml(path, what="generator parameter file")
    except Exception as exc:         # a PolicyError naming the file: one line
        raise BranchsimError(str(exc).splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise BranchsimError(f"{path}: not a generator parameter file (a mapping); give another path")
    GeneratorParams.load(path)       # its values checked: a file that would not load is not extended
    for dotted in fitted:
        node, seen = doc, []
        for part in dotted.split(".")[:-1]:
            seen.append(part)
            node = node.get(part, {}) if isinstance(node, dict) else node
            if not isinstance(node, dict):
                raise BranchsimError(f"{path}: entry {'.'.join(seen)!r} is {node!r}, not a mapping: cannot write "
                                     f"{dotted}; give another path")
    return doc


def _write(params: GeneratorParams, path: Path, fitted: list[str], note: str) -> None:
    """The fitted values into ``path`` (a generator file; an existing one keeps its other entries, and a
    fitted entry keeps its other keys: its prior, source, unit)."""
    from ._output import atomic_file
    doc = _existing(path, fitted)
    for dotted in fitted:
        *head, key = dotted.split(".")
        node = doc
        for part in head:
            node = node.setdefault(part, {})
        value = params.get(dotted)
        value = value if isinstance(value, int) else round(float(value), 9)
        entry = node.get(key)
        node[key] = ({**entry, "value": value, "calibrated": note} if isinstance(entry, dict)
                     else {"value": value, "calibrated": note})
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
