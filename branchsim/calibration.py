"""Fit the generator to a scheme's published figures (its targets file, ``NAME.targets.yaml``).

The targets (:func:`branchsim._result.targets`) are counts keyed by a level
id, a designation id or ``upgrade_<structure level>``, at the published
scale. Two parts, each identified by its own targets:

* **structure** — the branch-size spread ``structure.size_sigma`` and the
  probability that a unit sits one level below what its size calls for,
  ``structure.p_underlevel``, are fitted to the ``upgrade_<level>`` counts.
  Their expectation is computed exactly from the log-normal size model (no
  simulation noise).
* **quality** — ``branch_quality.loc`` (where scores sit), ``scale``
  (spread), ``skew`` (right skew), ``tail`` (tail weight) and, when the
  scheme has state facts (a vacant secretary post, a major violation),
  ``state.problem_rate`` are fitted to the level and designation counts. The
  expected counts are the mean over a fixed set of seeds with common random
  numbers, so the objective is deterministic; under a fixed-cuts design the
  state facts are averaged out exactly (``expected_counts(smooth=True)``: every
  combination of states, weighted by its probability for each unit), so the
  fit cannot chase the problems of particular seeds. Nelder–Mead minimises
  the sum of squared relative errors. Level counts under a ``quota`` design
  are set by the quotas, whatever the generator: they are not fitted.

``calibrate(policy, write=PATH)`` writes the fitted values to a generator
file of your own (e.g. ``NAME.generator.yaml`` beside your policy, which
:meth:`branchsim.GeneratorParams.for_policy` reads), atomically; the
package's own data is never written.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import optimize, stats

from ._result import targets as _targets
from .errors import BranchsimError
from .evaluate import evaluate_checked
from .measurement import MIN_SIZE, _state_value, _type_table, size_median, state_problem_probability
from .model import GeneratorParams, generate
from .policy import Policy, as_policy

__all__ = ["calibrate", "targets", "expected_upgrades", "expected_counts", "CalibrationResult"]

QUALITY = ("branch_quality.loc", "branch_quality.scale", "branch_quality.skew", "branch_quality.tail",
           "state.problem_rate")
_STEPS = (0.03, 0.02, 0.3, 0.2, 0.002)   # initial Nelder-Mead simplex
STRUCTURE = ("structure.size_sigma", "structure.p_underlevel")
#: Combinations of state facts averaged exactly at most (2 ** 6); beyond, states are drawn.
_MAX_STATES = 6


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


def _counts(frame: pd.DataFrame, policy: Policy, weight: np.ndarray | None = None) -> pd.Series:
    bs = policy.scheme.branch
    w = np.ones(len(frame)) if weight is None else weight
    out = {lv: float(w[(frame["rating"] == lv).to_numpy()].sum()) for lv in bs.levels.ids}
    out.update({d.id: float(w[frame[d.id].to_numpy(bool)].sum()) for d in bs.designations})
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


def expected_counts(params: GeneratorParams, policy: Policy, seeds, n_branches: int, *,
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
    bs = policy.scheme.branch
    smooth = smooth and bs.rating.design == "cuts" and 0 < len(bs.state_facts) <= _MAX_STATES
    rows = []
    for s in seeds:
        pop = generate(policy, seed=s, n_branches=n_branches, members=False, params=params)
        rows.append(_smooth_counts(pop, policy, params) if smooth
                    else _counts(evaluate_checked(policy, pop.branches, None, None).branches, policy))
    if not rows:
        raise BranchsimError("expected_counts: give at least one seed")
    return pd.DataFrame(rows).mean()


class CalibrationResult:
    """Fitted parameters and the fit: achieved versus target."""

    def __init__(self, params: GeneratorParams, fit: pd.DataFrame, details: dict):
        self.params, self.fit, self.details = params, fit, details

    def __repr__(self) -> str:
        return "CalibrationResult\n" + self.fit.to_string()

    def _repr_html_(self) -> str:
        return "<b>CalibrationResult</b>" + self.fit.to_html()


def _fit_structure(params, policy, n, tgt: pd.Series):
    def resid(x):
        p = params.with_values({"structure.size_sigma": float(x[0]), "structure.p_underlevel": float(x[1])})
        e = expected_upgrades(p, policy, n)
        return [(e[k] - tgt[k]) / max(tgt[k], 1.0) for k in tgt.index]

    x0 = [params.get(k) for k in STRUCTURE]
    sol = optimize.least_squares(resid, x0, bounds=([0.2, 0.0], [2.5, 1.0]))
    return params.with_values(dict(zip(STRUCTURE, map(float, sol.x))))


def _split(policy: Policy, counts: dict, where) -> tuple[list, list, list]:
    """Targets by what fits them: levels and designations (quality), upgrades (structure); others refused."""
    s = policy.scheme
    levels, designations = list(s.branch.levels.ids), [d.id for d in s.branch.designations]
    upgrades = [f"upgrade_{lv}" for lv in (s.structure.ids[1:] if s.structure is not None else ())]
    unknown = [k for k in counts if k not in levels + designations + upgrades]
    if unknown:
        raise BranchsimError(f"{where}: counts {unknown} are not levels, designations or upgrade_<level> of "
                             f"policy {policy.name!r}; allowed: {', '.join(levels + designations + upgrades)}")
    fixed = s.branch.rating.design == "quota"          # the quotas set the level counts
    quality = [k for k in counts if (k in levels and not fixed) or k in designations]
    return quality, [k for k in counts if k in upgrades], [k for k in counts if k in levels and fixed]


def calibrate(policy: Policy | None = None, *, seeds=range(60), n_branches: int | None = None,
              params: GeneratorParams | None = None, maxiter: int = 400, write=None,
              progress: bool = False) -> CalibrationResult:
    """Fit the generator so the policy's *expected* outcome matches its published figures.

    Parameters
    ----------
    policy : Policy or path, optional
        The scheme whose targets file (``NAME.targets.yaml``) is fitted (default: the baseline).
    seeds : iterable of int
        Seeds whose mean outcome estimates the expectation (common random numbers).
    n_branches : int, optional
        Branches of each population (default: the generator's scale); the
        targets are scaled from the targets file's ``scale.branches``.
    params : GeneratorParams, optional
        Starting values (default: the policy's generator parameters).
    maxiter : int
        Nelder–Mead iterations for the quality part.
    write : path, optional
        A generator file to write the fitted values to, atomically (an
        existing one keeps its other entries); a path inside the package is
        refused.

    Returns
    -------
    CalibrationResult
        ``.params`` (fitted), ``.fit`` (target, achieved, relative error,
        identified by which parameters).

    Raises
    ------
    BranchsimError
        No targets file, or no count the generator can be fitted to (e.g.
        level counts under a quota design); a ``write`` that is not a path or
        lies inside the package.
    """
    policy = as_policy(policy)
    out_path = _write_target(write)
    params = GeneratorParams.for_policy(policy) if params is None else params
    t = _targets(policy)
    where = str(policy.companion("targets") or f"policy {policy.name!r}")
    quality, upgrades, fixed = _split(policy, t["counts"], where)
    if not quality and not upgrades:
        why = (f"its level counts {fixed} are set by the {policy.scheme.branch.rating.design!r} design's "
               f"quotas, whatever the generator" if fixed else "it has no published counts")
        raise BranchsimError(f"calibrate: nothing to fit for policy {policy.name!r} ({where}): {why}")
    n = int(params.get("scale.n_branches") if n_branches is None else n_branches)
    scale = t["scale"] or params.get("scale.n_branches")
    tgt = pd.Series(t["counts"], dtype=float) * n / scale
    seeds = list(seeds)
    if upgrades:
        params = _fit_structure(params, policy, n, tgt[upgrades])
    names = [q for q in QUALITY if q != "state.problem_rate" or policy.scheme.branch.state_facts]
    sol = None
    if quality:
        steps = np.array([st for q, st in zip(QUALITY, _STEPS) if q in names])
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=maxiter, desc="calibrate")

        def loss(x):
            v = dict(zip(names, x))
            if v["branch_quality.scale"] <= 0 or v["branch_quality.tail"] <= 0.2 \
                    or not 0 <= v.get("state.problem_rate", 0) <= 0.2:
                return 1e6
            c = expected_counts(params.with_values({k: float(a) for k, a in v.items()}), policy, seeds, n,
                                smooth=True)
            if bar is not None:
                bar.update(1)
            return float(sum(((c[k] - tgt[k]) / max(tgt[k], 1.0)) ** 2 for k in quality))

        x0 = np.array([params.get(k) for k in names])
        sol = optimize.minimize(loss, x0, method="Nelder-Mead",
                                options={"maxiter": maxiter, "xatol": 1e-4, "fatol": 1e-7,
                                         "initial_simplex": np.vstack([x0, x0 + np.diag(steps)])})
        if bar is not None:
            bar.close()
        params = params.with_values(dict(zip(names, map(float, sol.x))))
    achieved = expected_counts(params, policy, seeds, n).to_dict() if quality else {}
    achieved.update(expected_upgrades(params, policy, n))
    ident = {k: "branch_quality.loc, scale, skew" if k in policy.scheme.branch.levels.ids
             else "branch_quality.tail" + (", state.problem_rate" if "state.problem_rate" in names else "")
             for k in quality}
    ident.update({k: "structure.size_sigma, p_underlevel" for k in upgrades})
    fit = pd.DataFrame({"target": tgt, "achieved": pd.Series(achieved, dtype=float)}).loc[list(ident)]
    fit["relative_error"] = fit["achieved"] / fit["target"] - 1
    fit["identified_by"] = pd.Series(ident)
    if out_path is not None:
        _write(params, out_path, [k for k in STRUCTURE if upgrades] + (names if quality else []), policy)
    return CalibrationResult(params, fit, {"optimizer": sol, "seeds": seeds, "n_branches": n,
                                           "written": out_path})


def _write_target(write) -> Path | None:
    """The file ``write=`` names, checked before any work: a path, never inside the package."""
    if write is None or write is False:
        return None
    if isinstance(write, bool) or not isinstance(write, (str, os.PathLike)):
        raise BranchsimError(f"calibrate: write= takes the path of a generator file to write (e.g. "
                             f"NAME.generator.yaml beside your policy), got {write!r}; the package's own "
                             f"data is not written")
    from .policy import data_path
    path = Path(os.path.abspath(Path(write).expanduser())).resolve()
    package = [Path(__file__).resolve().parent, data_path().resolve()]
    if any(path == p or p in path.parents for p in package):
        raise BranchsimError(f"calibrate: write={str(write)!r} lies inside the installed package "
                             f"({', '.join(map(str, package))}); write the fitted values to a file of your "
                             f"own, e.g. NAME.generator.yaml beside your policy")
    return path


def _write(params: GeneratorParams, path: Path, fitted: list[str], policy: Policy) -> None:
    """The fitted values into ``path`` (a generator file; an existing one keeps its other entries)."""
    from ._output import atomic_file
    from .policy import read_yaml
    doc = {"schema": "branchsim-generator/1"}
    if path.exists():
        try:
            old = read_yaml(path, what="generator parameter file")
        except Exception as exc:         # a PolicyError naming the file: one line
            raise BranchsimError(str(exc)) from None
        if not isinstance(old, dict):
            raise BranchsimError(f"{path}: not a generator parameter file (a mapping); give another path")
        doc = old
    note = f"fitted by branchsim.calibrate to the targets of policy {policy.name!r}"
    for dotted in fitted:
        head, key = dotted.split(".")
        doc.setdefault(head, {})[key] = {"value": round(float(params.get(dotted)), 9), "calibrated": note}
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
