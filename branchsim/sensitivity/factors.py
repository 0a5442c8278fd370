"""Factor tables: what a global sensitivity analysis varies, and how samples are scored.

*Factors* are plain data: one row per factor with its ``name``, the
parameter ``path`` it sets, its ``kind``, and its range ``low``–``high``
(:func:`default_factors`). Kinds:

``share``
    ``branch.satisfaction_share``; the dimension shares fill the rest (a
    branch type with its own satisfaction share keeps it, as in
    :func:`~branchsim.sensitivity.sweep.scenario_arrays`).
``balance``
    a dimension's relative weight (e.g. 0.5–1.5). The four dimension shares
    are ``(1 - satisfaction) × base_d b_d / Σ base_j b_j``: shares are
    never sampled independently as if they were free, so every scenario's
    weights add up to 1 per branch type.
``cut`` / ``cut_gap``
    a star cut point, or the gap above the cut one level below. Gaps are
    positive, so cut points can never come out of order; a five-star cut
    pushed past 100 by the gaps is set to 100 (only a perfect score).
``value``
    another fast parameter set as drawn (``branch.weak_below``).
``noise``
    a generator parameter (``measurement.*``). The branches are re-measured
    for each distinct noise setting with the population's own seed (common
    random numbers: only the noise level changes), which costs one
    ``generate`` + ``prepare`` per setting (~10 ms for 1,500 branches).

This module holds the factor table (:func:`default_factors`, its checks),
the bridge from samples to the engine (:func:`factor_problem`,
:func:`factor_values`, :func:`scenarios`) and the scoring of samples
(:func:`evaluate_samples`). Weight and cut factors are evaluated on the
scenario axis: all samples of one noise setting in one engine run. The
analyses that use them (Sobol', Morris) are in :mod:`.gsa`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..evaluate import STAR_NAMES
from ..model import GeneratorParams, generate
from ..policy import Policy
from ..scoring import compile_branch_rules
from .engine import Scenarios, baseline_stars, prepare, run
from .sweep import run_batches, scenario_arrays

__all__ = ["KINDS", "default_factors", "factor_problem", "factor_values", "scenarios", "evaluate_samples"]

KINDS = ("share", "balance", "cut", "cut_gap", "value", "noise")
# Default noise factors: generator parameters under ``measurement`` (whole numbers flagged).
_NOISE = (("indicator_noise", False), ("survey_size", True))
_COLUMNS = ["name", "path", "kind", "low", "high", "integer", "baseline"]


def default_factors(policy: Policy, params: GeneratorParams | None = None, *,
                    noise: bool = True) -> pd.DataFrame:
    """The default factor set around ``policy`` (and the generator's noise levels).

    Satisfaction share ± 0.15; each dimension's balance 0.5–1.5; the lowest
    cut ± 5 and each gap between cuts ± 5 (at least half the gap); the weak
    line ± 5; with ``noise``, ``measurement.indicator_noise`` and the survey's
    sample size (``measurement.survey_size``) at 0.5–1.5 times their values.
    ``baseline`` holds the value that reproduces the policy (informative:
    sampling uses ``low``, ``high`` and ``integer`` only).

    Examples
    --------
    >>> import branchsim as bs
    >>> f = default_factors(bs.Policy.load(), noise=False)
    >>> f.loc[f.name == "satisfaction_share", ["low", "high"]].round(2).values.tolist()
    [[0.25, 0.55]]
    """
    s = policy["branch.satisfaction_share"]
    rows = [("satisfaction_share", "branch.satisfaction_share", "share", max(s - .15, 0), min(s + .15, 1),
             False, s)]
    rows += [(f"balance_{d}", f"branch.dimensions.{d}.share", "balance", 0.5, 1.5, False, 1.0)
             for d in policy.dimensions]
    rules = compile_branch_rules(policy)
    prev = None
    for level, cut in zip(rules.star_levels, rules.star_cuts):
        path = f"branch.star_cuts.{level}"
        if prev is None:
            rows.append((f"star_cut_{level}", path, "cut", cut - 5, cut + 5, False, cut))
        else:
            gap = cut - prev
            rows.append((f"gap_{level}", path, "cut_gap", gap - min(5, gap / 2), gap + 5, False, gap))
        prev = cut
    w = policy["branch.weak_below"]
    rows.append(("weak_below", "branch.weak_below", "value", w - 5, w + 5, False, w))
    if noise:
        params = GeneratorParams.load() if params is None else params
        measured = params.values["measurement"]
        for key, integer in _NOISE:
            if key in measured:
                v = measured[key]
                lo, hi = (int(round(.5 * v)), int(round(1.5 * v))) if integer else (.5 * v, 1.5 * v)
                rows.append((key, f"measurement.{key}", "noise", lo, hi, integer, v))
    return pd.DataFrame(rows, columns=_COLUMNS)


def _check_factors(factors, policy: Policy) -> pd.DataFrame:
    if not isinstance(factors, pd.DataFrame):
        factors = pd.DataFrame(factors)
    missing = [c for c in ("name", "path", "kind", "low", "high") if c not in factors]
    if missing:
        raise BranchsimError(f"factors: missing column(s) {missing}; needed: name, path, kind, low, high")
    f = factors.reset_index(drop=True).copy()
    f["integer"] = f["integer"].fillna(False).astype(bool) if "integer" in f else False
    problems = []
    for r in f.itertuples():
        where = f"factor {r.name!r} ({r.path})"
        if not str(r.name).isidentifier():
            problems.append(f"{where}: the name must be an identifier (it is a column in conditions)")
        if r.kind not in KINDS:
            problems.append(f"{where}: kind {r.kind!r}; allowed: {', '.join(KINDS)}")
        elif not (np.isfinite([r.low, r.high]).all() and r.low < r.high):
            problems.append(f"{where}: needs finite low < high, got {r.low}, {r.high}")
        elif r.kind == "share" and (r.path != "branch.satisfaction_share" or r.low < 0 or r.high > 1):
            problems.append(f"{where}: kind 'share' is branch.satisfaction_share within [0, 1]")
        elif r.kind == "balance" and (r.path not in [f"branch.dimensions.{d}.share" for d in policy.dimensions]
                                      or r.low <= 0):
            problems.append(f"{where}: kind 'balance' takes a branch.dimensions.<d>.share path, low > 0")
        elif r.kind in ("cut", "cut_gap") and r.path not in policy:
            problems.append(f"{where}: no such star cut")
        elif r.kind == "cut_gap" and r.low <= 0:
            problems.append(f"{where}: a gap between cut points must be positive")
        elif r.kind == "value" and r.path != "branch.weak_below":
            problems.append(f"{where}: kind 'value' is for branch.weak_below; shares take 'share' or "
                            "'balance' (never sampled independently), cut points 'cut' or 'cut_gap'")
    for col in ("name", "path"):
        dup = f[col][f[col].duplicated()].tolist()
        if dup:
            problems.append(f"factors: duplicated {col} {dup}")
    if problems:
        raise BranchsimError("\n".join(problems))
    _cut_ranges(policy, f)
    return f


def _cut_ranges(policy: Policy, f: pd.DataFrame) -> None:
    """Refuse absolute cut ranges that could come out of order (gaps never can)."""
    rules = compile_branch_rules(policy)
    prev_lo = prev_hi = -np.inf
    for level, cut in zip(rules.star_levels, rules.star_cuts):
        row = f[f.path == f"branch.star_cuts.{level}"]
        if len(row) and row.kind.iloc[0] == "cut_gap":
            if np.isinf(prev_hi):
                raise BranchsimError(f"factor {row.name.iloc[0]!r}: the lowest cut has no cut below it; "
                                     "use kind 'cut'")
            lo_hi = (prev_lo + row.low.iloc[0], prev_hi + row.high.iloc[0])
        else:
            lo_hi = (row.low.iloc[0], row.high.iloc[0]) if len(row) else (cut, cut)
            if lo_hi[0] <= prev_hi:
                raise BranchsimError(f"branch.star_cuts.{level}: its range can reach the cut below it, so "
                                     "samples could break the order; give it kind 'cut_gap' (a positive gap)")
        prev_lo, prev_hi = lo_hi


def factor_problem(factors: pd.DataFrame) -> dict:
    """The SALib problem of a factor table (uniform over each range; integers over low…high).

    Examples
    --------
    >>> import branchsim as bs
    >>> factor_problem(default_factors(bs.Policy.load(), noise=False))["num_vars"]
    9
    """
    f = factors
    integer = f["integer"].astype(bool) if "integer" in f else np.zeros(len(f), bool)
    bounds = [[float(lo), float(hi) + (1 if i else 0)] for lo, hi, i in zip(f["low"], f["high"], integer)]
    return {"num_vars": len(f), "names": list(f["name"]), "bounds": bounds}


def factor_values(factors: pd.DataFrame, X: np.ndarray) -> pd.DataFrame:
    """Samples drawn on :func:`factor_problem`'s bounds → factor values (integers floored)."""
    X = np.array(X, dtype=float)
    for j, (hi, i) in enumerate(zip(factors["high"], factors.get("integer", [False] * len(factors)))):
        if i:
            X[:, j] = np.minimum(np.floor(X[:, j]), hi)
    return pd.DataFrame(X, columns=list(factors["name"]))


def scenarios(policy: Policy, factors: pd.DataFrame, values: pd.DataFrame) -> Scenarios:
    """The engine's :class:`Scenarios` for factor values (one row per sample).

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> f = default_factors(p, noise=False)
    >>> sc = scenarios(p, f, pd.DataFrame([f.low.values, f.high.values], columns=f.name))
    >>> sc.weights.sum(axis=2).round(12).min(), sc.cuts[1].tolist()
    (np.float64(1.0), [75.0, 90.0, 100.0])
    """
    f = _check_factors(factors, policy)
    S = len(values)
    get = {r.path: values[r.name].to_numpy(float) for r in f.itertuples()}
    table = {}
    if f.kind.isin(["share", "balance"]).any():
        s = get.get("branch.satisfaction_share", np.full(S, policy["branch.satisfaction_share"]))
        paths = [f"branch.dimensions.{d}.share" for d in policy.dimensions]
        raw = np.column_stack([policy[p] * get.get(p, np.ones(S)) for p in paths])
        dims = raw * ((1 - s) / raw.sum(axis=1))[:, None]
        table = dict(zip(paths, dims.T)) | {"branch.satisfaction_share": s}
    rules = compile_branch_rules(policy)
    prev = None
    for level, cut in zip(rules.star_levels, rules.star_cuts):
        p = f"branch.star_cuts.{level}"
        kind = f.kind[f.path == p].iloc[0] if p in get else None
        cur = prev + get[p] if kind == "cut_gap" else get.get(p, np.full(S, cut))
        if kind == "cut_gap":
            cur = np.minimum(cur, 100.0)   # documented: a cut beyond 100 admits only a perfect score
        if p in get:
            table[p] = cur
        prev = cur
    if "branch.weak_below" in get:
        table["branch.weak_below"] = get["branch.weak_below"]
    sc = scenario_arrays(policy, pd.DataFrame(table, index=range(S)))
    return Scenarios(sc.weights, sc.levels, sc.cuts, sc.weak_below, values.reset_index(drop=True))


def _factors_for(pop, policy: Policy, factors) -> pd.DataFrame:
    """The given factors, or the defaults around the population's own generator parameters
    (without noise factors for a population that cannot be re-measured)."""
    if factors is None:
        factors = default_factors(policy, pop.params, noise=pop.seed is not None and pop.params is not None)
    return _check_factors(factors, policy)


def _tidy(out: dict, levels) -> pd.DataFrame:
    n = out["n"][0]
    cols = {"n": np.full(out["weak"].shape[1], int(n))}
    cols |= {STAR_NAMES[lv]: out["counts"][0, :, lv].astype(np.int64)
             for lv in [*sorted(levels, reverse=True), 0]}
    cols |= {"weak": out["weak"][0].astype(np.int64), "changed": out["changed"][0].astype(np.int64),
             "mean_abs_change": out["abs_change"][0] / n}
    if "correct" in out:
        cols["accuracy"] = out["correct"][0] / n
    return pd.DataFrame(cols)


def _remeasure(policy, seed, n, params, sc, base):
    """Re-measure the branches under ``params`` (same seed) and run the scenarios (executor job).

    An executor gets the policy document: a Policy object does not pickle.
    """
    policy = policy if isinstance(policy, Policy) else Policy(policy)
    prep = prepare(generate(policy, seed=seed, n_branches=n, members=False, params=params, workers=1), policy)
    return run(prep, sc, baseline_stars=base)


def evaluate_samples(pop, policy: Policy, values: pd.DataFrame, factors=None, *, executor=None,
                     progress: bool = False) -> pd.DataFrame:
    """Outcomes of every sample: the factor values, ``n``, counts per star, ``weak``,
    ``changed`` and ``mean_abs_change`` (against the population's stars under ``policy``)
    and, with truth, ``accuracy``.

    Examples
    --------
    >>> import branchsim as bs
    >>> p, pop = bs.Policy.load(), bs.generate(seed=0, n_branches=200, members=False)
    >>> noise = pop.params.get("measurement.indicator_noise")
    >>> v = pd.DataFrame({"satisfaction_share": [0.4, 0.3], "indicator_noise": [noise, noise]})
    >>> f = default_factors(p).set_index("name").loc[v.columns].reset_index()
    >>> evaluate_samples(pop, p, v, f)["changed"].tolist()[0]
    0
    """
    f = _factors_for(pop, policy, factors)
    missing = [c for c in f.name if c not in values]
    if missing:
        raise BranchsimError(f"samples lack factor column(s) {missing}")
    values = values[list(f.name)].reset_index(drop=True)
    sc = scenarios(policy, f, values)
    prep0 = prepare(pop, policy)
    base = baseline_stars(prep0, policy)
    noise = f[f.kind == "noise"]
    if noise.empty:
        return values.join(_tidy(run_batches(prep0, sc, executor=executor, progress=progress,
                                             baseline_stars=base), sc.levels))
    if pop.seed is None or pop.params is None:
        raise BranchsimError("noise factors re-measure a generated population; this one has no seed "
                             "or generator parameters (drop the 'noise' rows of the factors)")
    n = len(pop.branches)
    again = prepare(generate(policy, seed=pop.seed, n_branches=n, members=False, params=pop.params), policy)
    if not np.allclose(again.components, prep0.components):
        raise BranchsimError("the population cannot be re-measured: generating with its seed and "
                             "parameters does not reproduce its branches (another policy or a changed "
                             "table?); drop the noise factors")
    keys = values[list(noise.name)]
    groups = keys.groupby(list(noise.name), sort=False).indices
    jobs = []
    for key, idx in groups.items():             # a loop over noise settings, not branches
        key = np.atleast_1d(key)
        changes = {p: (int(v) if i else float(v)) for p, v, i in zip(noise.path, key, noise.integer)}
        args = (policy.to_dict() if executor else policy, pop.seed, n, pop.params.with_values(changes),
                sc.subset(idx), base)
        jobs.append((idx, executor.submit(_remeasure, *args) if executor else args))
    if progress:
        from tqdm.auto import tqdm
        jobs = tqdm(jobs, desc="noise settings", unit="setting")
    merged = {}
    for idx, job in jobs:
        out = job.result() if executor else _remeasure(*job)
        for k, v in out.items():
            if k != "n":
                merged.setdefault(k, np.zeros((1, len(values)) + v.shape[2:]))[:, idx] = v
        merged["n"] = out["n"]
    return values.join(_tidy(merged, sc.levels))

