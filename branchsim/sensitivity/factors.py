"""Factor tables: what a global sensitivity analysis varies, and how samples are scored.

*Factors* are plain data: one row per factor with its ``name``, the
parameter ``path`` it sets, its ``kind``, and its range ``low``–``high``
(:func:`default_factors`). Kinds:

``share``
    ``branch.satisfaction_share``; the dimension shares fill the rest (a
    branch type with its own satisfaction share keeps it, as in
    :func:`~branchsim.sensitivity.sweep.scenario_arrays`).
``balance``
    a dimension's relative weight (e.g. 0.5–1.5). The dimension shares are
    ``(1 - satisfaction) × base_d b_d / Σ base_j b_j``: shares are never
    sampled independently as if they were free, so every scenario's weights
    add up to 1 per branch type.
``cut`` / ``cut_gap``
    a level's cut point (cuts designs), or the gap above the cut one level
    below. Gaps are positive, so cut points can never come out of order; on a
    100-point score (the shares form) a cut pushed past 100 by the gaps is set
    to 100 (only a perfect score reaches it).
``quota``
    a level's quota (quota designs): its share of the units.
``line`` (``value``)
    a designation's score line (``branch.designations.<d>.criteria.<c>.below``).
``noise``
    a generator parameter (``measurement.*``). The branches are re-measured
    for each distinct noise setting with the population's own seed (common
    random numbers: only the noise level changes), which costs one
    ``generate`` + ``prepare`` per setting (~10 ms for 1,500 branches).

This module holds the factor table (:func:`default_factors`, its checks),
the bridge from samples to the engine (:func:`factor_problem`,
:func:`factor_values`, :func:`scenarios`) and the scoring of samples
(:func:`evaluate_samples`). Fast factors are evaluated on the scenario axis:
all samples of one noise setting in one engine run. The analyses that use
them (Sobol', Morris) are in :mod:`.gsa`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..model import GeneratorParams, generate
from ..policy import Policy
from .engine import Scenarios, prepare, run
from .sweep import fast_paths, run_batches, scenario_arrays, tidy

__all__ = ["KINDS", "default_factors", "factor_problem", "factor_values", "scenarios", "evaluate_samples"]

KINDS = ("share", "balance", "cut", "cut_gap", "quota", "line", "value", "noise")
# Default noise factors: generator parameters under ``measurement`` (whole numbers flagged).
_NOISE = (("indicator_noise", False), ("survey_size", True))
_COLUMNS = ["name", "path", "kind", "low", "high", "integer", "baseline"]


def default_factors(policy: Policy, params: GeneratorParams | None = None, *,
                    noise: bool = True) -> pd.DataFrame:
    """The default factor set around ``policy`` (and the generator's noise levels).

    Read from the scheme: the satisfaction share ± 0.15 (with a survey); each
    dimension's balance 0.5–1.5 (shares form); for a cuts design the lowest
    cut ± 5 and each gap between cuts ± 5 (at least half the gap); for a quota
    design each level's quota from half of it to 1.5 times it (less, when the
    quotas could add up to more than 1); each designation's score line ± 5;
    with ``noise``, ``measurement.indicator_noise`` and the survey's sample
    size (``measurement.survey_size``) at 0.5–1.5 times their values.
    ``baseline`` holds the value that reproduces the policy (informative:
    sampling uses ``low``, ``high`` and ``integer`` only).

    Examples
    --------
    >>> import branchsim as bs
    >>> f = default_factors(bs.Policy.load(), noise=False)
    >>> f.loc[f.name == "satisfaction_share", ["low", "high"]].round(2).values.tolist()
    [[0.25, 0.55]]
    """
    fast = fast_paths(policy)
    bs = policy.scheme.branch
    rows = []
    for path, (kind, idx) in fast.items():
        if kind == "share":
            s = policy[path]
            rows.append(("satisfaction_share", path, "share", max(s - .15, 0), min(s + .15, 1), False, s))
        elif kind == "dimension":
            rows.append((f"balance_{bs.sheet.group_ids[idx]}", path, "balance", 0.5, 1.5, False, 1.0))
        elif kind == "quota":
            # up to 1.5 times each quota, less when that could add up to more than all the units
            q, total = policy[path], float(bs.rating.quotas.sum())
            rows.append((f"quota_{bs.levels.worst_first[idx + 1]}", path, "quota", q / 2,
                         q * min(1.5, 1.0 / total if total > 0 else 1.5), False, q))
    prev = None
    for path, (kind, idx) in fast.items():
        if kind != "cut":
            continue
        cut = policy[path]
        lv = bs.levels.worst_first[idx + 1]
        if prev is None:
            rows.append((f"cut_{lv}", path, "cut", cut - 5, cut + 5, False, cut))
        else:
            gap = cut - prev
            rows.append((f"gap_{lv}", path, "cut_gap", gap - min(5, gap / 2), gap + 5, False, gap))
        prev = cut
    for path, (kind, idx) in fast.items():     # after the cuts: a factor's row is its column in a design
        if kind == "line":
            w = policy[path]
            rows.append((f"line_{bs.designations[idx].id}", path, "line", w - 5, w + 5, False, w))
    if noise:
        params = GeneratorParams.for_policy(policy) if params is None else params
        measured = params.values["measurement"]
        for key, integer in _NOISE:
            if key == "survey_size" and not bs.survey:
                continue
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
    f["kind"] = f["kind"].replace({"value": "line"})
    fast = fast_paths(policy)
    expect = {"share": "share", "balance": "dimension", "cut": "cut", "cut_gap": "cut", "quota": "quota",
              "line": "line"}
    problems = []
    for r in f.itertuples():
        where = f"factor {r.name!r} ({r.path})"
        if not str(r.name).isidentifier():
            problems.append(f"{where}: the name must be an identifier (it is a column in conditions)")
        if r.kind not in KINDS:
            problems.append(f"{where}: kind {r.kind!r}; allowed: {', '.join(KINDS)}")
        elif not (np.isfinite([r.low, r.high]).all() and r.low < r.high):
            problems.append(f"{where}: needs finite low < high, got {r.low}, {r.high}")
        elif r.kind in expect and fast.get(r.path, (None,))[0] != expect[r.kind]:
            allowed = [p for p, (k, _) in fast.items() if k == expect[r.kind]]
            problems.append(f"{where}: kind {r.kind!r} takes one of {', '.join(allowed) or 'no path of this policy'}"
                            f"; shares take 'share' or 'balance' (never sampled independently), cut points "
                            f"'cut' or 'cut_gap', quotas 'quota', designation lines 'line'")
        elif r.kind == "share" and (r.low < 0 or r.high > 1):
            problems.append(f"{where}: kind 'share' lies within [0, 1]")
        elif r.kind == "balance" and r.low <= 0:
            problems.append(f"{where}: kind 'balance' needs low > 0")
        elif r.kind == "cut_gap" and r.low <= 0:
            problems.append(f"{where}: a gap between cut points must be positive")
        elif r.kind == "quota" and (r.low < 0 or r.high > 1):
            problems.append(f"{where}: kind 'quota' lies within [0, 1]")
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
    prev_lo = prev_hi = -np.inf
    for path, (kind, _) in fast_paths(policy).items():
        if kind != "cut":
            continue
        cut = policy[path]
        row = f[f.path == path]
        if len(row) and row.kind.iloc[0] == "cut_gap":
            if np.isinf(prev_hi):
                raise BranchsimError(f"factor {row.name.iloc[0]!r}: the lowest cut has no cut below it; "
                                     "use kind 'cut'")
            lo_hi = (prev_lo + row.low.iloc[0], prev_hi + row.high.iloc[0])
        else:
            lo_hi = (row.low.iloc[0], row.high.iloc[0]) if len(row) else (cut, cut)
            if lo_hi[0] <= prev_hi:
                raise BranchsimError(f"{path}: its range can reach the cut below it, so samples could break "
                                     "the order; give it kind 'cut_gap' (a positive gap)")
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
    >>> sc.weights.sum(axis=2).round(12).min(), sc.cuts[1, 0].tolist()
    (np.float64(1.0), [75.0, 90.0, 100.0])
    """
    f = _check_factors(factors, policy)
    S = len(values)
    get = {r.path: values[r.name].to_numpy(float) for r in f.itertuples()}
    table = {}
    fast = fast_paths(policy)
    if f.kind.isin(["share", "balance"]).any():
        s_path = "branch.satisfaction_share"
        s = get.get(s_path, np.full(S, policy[s_path]) if s_path in policy else np.zeros(S))
        paths = [p for p, (k, _) in fast.items() if k == "dimension"]
        if paths:
            raw = np.column_stack([policy[p] * get.get(p, np.ones(S)) for p in paths])
            dims = raw * ((1 - s) / raw.sum(axis=1))[:, None]
            table = dict(zip(paths, dims.T))
        if s_path in policy:
            table[s_path] = s
    prev = None
    for p, (kind, _) in fast.items():
        if kind != "cut":
            continue
        fkind = f.kind[f.path == p].iloc[0] if p in get else None
        cur = prev + get[p] if fkind == "cut_gap" else get.get(p, np.full(S, policy[p]))
        if fkind == "cut_gap" and policy.scheme.branch.form == "shares":
            cur = np.minimum(cur, 100.0)   # documented: a cut beyond 100 admits only a perfect score
        if p in get:
            table[p] = cur
        prev = cur
    for p, (kind, _) in fast.items():
        if kind in ("quota", "line") and p in get:
            table[p] = get[p]
    sc = scenario_arrays(policy, pd.DataFrame(table, index=range(S)))
    return Scenarios(sc.weights, sc.cuts, sc.quotas, sc.lines, values.reset_index(drop=True), sc.design)


def _factors_for(pop, policy: Policy, factors) -> pd.DataFrame:
    """The given factors, or the defaults around the population's own generator parameters
    (without noise factors for a population that cannot be re-measured)."""
    if factors is None:
        factors = default_factors(policy, pop.params, noise=pop.seed is not None and pop.params is not None)
    return _check_factors(factors, policy)


def _tidy(out: dict, policy: Policy) -> pd.DataFrame:
    """Outputs of every sample: ``n``, counts per level id and designation, changes, accuracy."""
    frame = tidy(out, pd.DataFrame(index=range(out["counts"].shape[1])), [None], None, policy)
    return frame.reset_index(drop=True)


def _remeasure(policy, seed, n, params, sc, base):
    """Re-measure the branches under ``params`` (same seed) and run the scenarios (executor job).

    An executor gets the policy document: a Policy object does not pickle.
    """
    policy = policy if isinstance(policy, Policy) else Policy(policy)
    prep = prepare(generate(policy, seed=seed, n_branches=n, members=False, params=params, workers=1), policy)
    return run(prep, sc, baseline=base)


def evaluate_samples(pop, policy: Policy, values: pd.DataFrame, factors=None, *, executor=None,
                     progress: bool = False) -> pd.DataFrame:
    """Outcomes of every sample: the factor values, ``n``, counts per level and designation,
    ``changed`` and ``mean_abs_change`` (against the population's levels under ``policy``)
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
    base = prep0.levels.astype(np.int16)
    noise = f[f.kind == "noise"]
    if noise.empty:
        return values.join(_tidy(run_batches(prep0, sc, executor=executor, progress=progress,
                                             baseline=base), policy))
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
    return values.join(_tidy(merged, policy))

