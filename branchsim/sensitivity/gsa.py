"""Global sensitivity: which weights, cut points and noise levels drive the outcome.

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

Weight and cut factors are evaluated on the scenario axis: all samples of
one noise setting in one engine run. Cost of :func:`sobol` with ``n=256``
on 1,500 branches: 3,328 scenarios; without noise factors one engine pass
(~0.1 s); with the two default noise factors the Saltelli design has
``4n`` = 1,024 distinct noise settings (~10 s).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..evaluate import STAR_NAMES
from ..model import GeneratorParams, as_seed_sequence, generate
from ..policy import Policy
from ..scoring import compile_branch_rules
from .engine import Scenarios, baseline_stars, prepare, run
from .sweep import run_batches, scenario_arrays

__all__ = ["KINDS", "OUTPUTS", "default_factors", "factor_problem", "factor_values", "scenarios",
           "evaluate_samples", "SensitivityResult", "sobol", "sobol_indices", "morris",
           "morris_indices", "main_effects", "effective_importance"]

KINDS = ("share", "balance", "cut", "cut_gap", "value", "noise")
OUTPUTS = ("five_star", "four_star", "three_star", "weak", "mean_abs_change")
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


def _check_outputs(outputs, pop, policy: Policy) -> list[str]:
    levels = compile_branch_rules(policy).star_levels
    allowed = [STAR_NAMES[lv] for lv in [*sorted(levels, reverse=True), 0]] + \
        ["weak", "changed", "mean_abs_change"] + (["accuracy"] if pop.has_truth else [])
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    bad = [o for o in outputs if o not in allowed]
    if bad or not outputs:
        raise BranchsimError(f"outputs {bad or outputs}: allowed: {', '.join(allowed)}")
    return outputs


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


# -- Sobol' -------------------------------------------------------------------------
def _seed_ints(seed, k: int) -> list[int]:
    """``k`` independent non-zero ints from ``seed`` (SALib treats 0 as 'unseeded')."""
    ss = as_seed_sequence(seed)
    return [int(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i)).generate_state(1)[0]) + 1
            for i in range(k)]


def _outputs_frame(Y, m: int) -> pd.DataFrame:
    Y = Y if isinstance(Y, pd.DataFrame) else pd.DataFrame(np.asarray(Y, float).reshape(m, -1))
    if len(Y) != m:
        raise BranchsimError(f"the model returned {len(Y)} rows for {m} samples")
    if Y.shape[1] == 1 and not isinstance(Y.columns[0], str):
        Y.columns = ["y"]
    return Y.rename(columns=str)


def _analyze_sobol(problem, Y: pd.DataFrame, second_order, conf_level, seed):
    from SALib.analyze import sobol as sa
    rows, s2 = [], []
    for out in Y.columns:
        y = Y[out].to_numpy(float)
        if np.ptp(y) == 0:      # a constant output has no variance to apportion
            S = {k: np.full(problem["num_vars"], np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            S = sa.analyze(problem, y, calc_second_order=second_order, conf_level=conf_level, seed=seed)
        rows.append(pd.DataFrame({"output": out, "factor": problem["names"],
                                  **{k: np.asarray(S[k]) for k in ("S1", "S1_conf", "ST", "ST_conf")}}))
        if second_order and "S2" in S:
            i, j = np.triu_indices(problem["num_vars"], 1)
            s2.append(pd.DataFrame({"output": out, "factor_i": np.array(problem["names"])[i],
                                    "factor_j": np.array(problem["names"])[j],
                                    "S2": S["S2"][i, j], "S2_conf": S["S2_conf"][i, j]}))
    return pd.concat(rows, ignore_index=True), (pd.concat(s2, ignore_index=True) if s2 else None)


def _sobol_run(problem, func, n, seed, conf_level, second_order):
    from SALib.sample import sobol as ss
    if not (isinstance(n, (int, np.integer)) and n >= 2 and n & (n - 1) == 0):
        raise BranchsimError(f"n must be a power of two (Sobol' points are balanced only then); got {n!r}")
    s_sample, s_boot = _seed_ints(seed, 2)
    X = ss.sample(problem, int(n), calc_second_order=second_order, seed=s_sample)
    Y = _outputs_frame(func(X), len(X))
    return X, Y, s_boot, *_analyze_sobol(problem, Y, second_order, conf_level, s_boot)


def sobol_indices(problem: dict, func, n: int = 1024, *, seed=0, conf_level: float = 0.95,
                  second_order: bool = False) -> pd.DataFrame:
    """Sobol' first- and total-order indices of ``func`` over a SALib ``problem``.

    Saltelli sampling (``n (k + 2)`` runs; ``n (2k + 2)`` with
    ``second_order``) and SALib's estimators; ``*_conf`` are bootstrap
    half-widths at ``conf_level``. ``func`` maps samples ``(m, k)`` to
    ``(m,)``, ``(m, p)`` or a DataFrame of named outputs.

    Examples
    --------
    >>> prob = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]]}
    >>> s = sobol_indices(prob, lambda X: X[:, 0] + 0.1 * X[:, 1], n=512)
    >>> s.S1.round(1).tolist()
    [1.0, 0.0]
    """
    return _sobol_run(problem, func, n, seed, conf_level, second_order)[3]


@dataclass(frozen=True, repr=False)
class SensitivityResult:
    """Sobol' indices of the outputs, the samples behind them, and a convergence check."""

    indices: pd.DataFrame          # output, factor, S1, S1_conf, ST, ST_conf
    samples: pd.DataFrame          # factor values and outputs, in Saltelli order
    problem: dict
    outputs: tuple
    second_order: bool = False
    conf_level: float = 0.95
    boot_seed: int = 1
    s2: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        k = self.problem["num_vars"]
        return len(self.samples) // ((2 * k + 2) if self.second_order else (k + 2))

    def convergence(self, ns=None) -> pd.DataFrame:
        """Indices from the first ``n`` base points for each ``n`` in ``ns`` (powers of two).

        A Saltelli design's first ``n`` base points are themselves a design,
        so no new model runs are needed: the indices should settle as ``n`` grows.
        """
        ns = [m for m in (2 ** np.arange(4, 30)) if m <= self.n][-4:] if ns is None else list(ns)
        bad = [m for m in ns if not (m >= 2 and m & (m - 1) == 0 and m <= self.n)]
        if bad:
            raise BranchsimError(f"convergence ns {bad}: each must be a power of two up to n={self.n}")
        k = self.problem["num_vars"]
        step = (2 * k + 2) if self.second_order else (k + 2)
        frames = [_analyze_sobol(self.problem, self.samples[list(self.outputs)].iloc[:m * step],
                                 self.second_order, self.conf_level, self.boot_seed)[0].assign(n=m)
                  for m in ns]
        out = pd.concat(frames, ignore_index=True)
        return out[["n"] + [c for c in out.columns if c != "n"]]

    def __repr__(self) -> str:
        return (f"SensitivityResult: Sobol' indices of {self.problem['num_vars']} factors on "
                f"{len(self.outputs)} outputs, n={self.n} ({len(self.samples):,} runs)\n"
                + self.indices.pivot(index="factor", columns="output", values="ST").round(3).to_string())

    def _repr_html_(self) -> str:
        st = self.indices.pivot(index="factor", columns="output", values="ST").round(3)
        return (f"<p><b>Total-order Sobol' indices</b> (n={self.n}, {len(self.samples):,} runs; "
                f"see <code>.indices</code> for S1 and confidence intervals)</p>" + st.to_html())


def sobol(pop, policy: Policy, factors=None, *, n: int = 256, outputs=OUTPUTS, seed=0,
          conf_level: float = 0.95, second_order: bool = False, progress: bool = True,
          executor=None) -> SensitivityResult:
    """Sobol' indices of the outcome over weights, cut points and noise levels.

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline (``changed`` / ``mean_abs_change`` are against its stars).
    factors : DataFrame, optional
        Default: :func:`default_factors` around the population's generator
        parameters (no noise factors for a loaded population).
    n : int
        Base samples, a power of two: ``n (k + 2)`` scenarios.
    outputs : sequence of str
        Columns of :func:`evaluate_samples` to analyse.

    Returns
    -------
    SensitivityResult
        ``.indices`` is tidy: ``output, factor, S1, S1_conf, ST, ST_conf``;
        ``.convergence(ns)`` re-estimates them on the first ``n`` base points.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> r = sobol(pop, p, default_factors(p, noise=False), n=32, outputs=("weak",), progress=False)
    >>> sorted(r.indices.columns)
    ['S1', 'S1_conf', 'ST', 'ST_conf', 'factor', 'output']
    """
    f = _factors_for(pop, policy, factors)
    outputs = _check_outputs(outputs, pop, policy)
    problem = factor_problem(f)
    frames = []

    def model(X):
        frames.append(evaluate_samples(pop, policy, factor_values(f, X), f, executor=executor,
                                       progress=progress))
        return frames[0][outputs]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, _, boot, idx, s2 = _sobol_run(problem, model, n, seed, conf_level, second_order)
    return SensitivityResult(idx, frames[0], problem, tuple(outputs), second_order, conf_level, boot, s2)


# -- Morris --------------------------------------------------------------------------
def morris_indices(problem: dict, func, trajectories: int = 20, *, levels: int = 4, seed=0,
                   conf_level: float = 0.95) -> pd.DataFrame:
    """Morris elementary effects of ``func``: ``mu, mu_star, mu_star_conf, sigma`` per output.

    Effects are on the normalised scale: ``mu_star`` is the output change
    for a move across a factor's whole range.

    Examples
    --------
    >>> prob = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 10]]}
    >>> morris_indices(prob, lambda X: 3 * X[:, 0], 10).mu_star.round(6).tolist()
    [3.0, 0.0]
    """
    from SALib.analyze import morris as ma
    from SALib.sample import morris as ms
    if not (isinstance(trajectories, (int, np.integer)) and trajectories >= 2
            and isinstance(levels, (int, np.integer)) and levels >= 2):
        raise BranchsimError(f"trajectories and levels must be whole numbers >= 2; got {trajectories!r}, "
                             f"{levels!r}")
    s_sample, s_boot = _seed_ints(seed, 2)
    X = ms.sample(problem, int(trajectories), num_levels=levels, seed=s_sample)
    Y = _outputs_frame(func(X), len(X))
    rows = []
    for out in Y.columns:
        S = ma.analyze(problem, X, Y[out].to_numpy(float), conf_level=conf_level, num_levels=levels,
                       seed=s_boot)
        rows.append(pd.DataFrame({"output": out, "factor": problem["names"],
                                  **{k: np.asarray(S[k], float) for k in ("mu", "mu_star", "mu_star_conf",
                                                                          "sigma")}}))
    return pd.concat(rows, ignore_index=True)


def morris(pop, policy: Policy, factors=None, *, trajectories: int = 20, levels: int = 4,
           outputs=OUTPUTS, seed=0, conf_level: float = 0.95, progress: bool = True,
           executor=None) -> pd.DataFrame:
    """Morris screening of the outcome: ``trajectories × (k + 1)`` scenarios.

    Returns a tidy frame ``output, factor, mu, mu_star, mu_star_conf, sigma``
    (see :func:`morris_indices`; factors as in :func:`sobol`).

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> m = morris(pop, p, default_factors(p, noise=False), trajectories=4, outputs=("weak",),
    ...            progress=False)
    >>> m.loc[m.factor == "weak_below", "mu_star"].item() > 0
    True
    """
    f = _factors_for(pop, policy, factors)
    outputs = _check_outputs(outputs, pop, policy)

    def model(X):
        return evaluate_samples(pop, policy, factor_values(f, X), f, executor=executor,
                                progress=progress)[outputs]

    return morris_indices(factor_problem(f), model, trajectories, levels=levels, seed=seed,
                          conf_level=conf_level)


# -- effective importance ------------------------------------------------------------
def main_effects(X, y, bins: int = 20):
    """Correlation ratios η² = Var(E[y | x_j]) / Var(y), one per column of ``X``.

    ``E[y | x_j]`` is estimated by the mean of ``y`` within quantile bins of
    ``x_j`` (equal values share a bin, so a discrete ``x_j`` with few values
    is conditioned on exactly). The estimator is biased up by about
    ``(bins - 1) / n`` (noise in the bin means) and down by the variation of
    ``E[y | x_j]`` within a bin (≈ ``1 / bins²`` of it for a linear effect).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20000, 2))
    >>> main_effects(X, X[:, 0] + X[:, 1]).round(1).tolist()
    [0.5, 0.5]
    """
    names = list(X.columns) if isinstance(X, pd.DataFrame) else None
    X, y = np.asarray(X, float), np.asarray(y, float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.shape != (len(X),) or len(X) < 2 * bins:
        raise BranchsimError(f"main_effects takes X (n, k) and y (n,) with n >= 2 × bins; got "
                             f"{X.shape}, {y.shape}, bins={bins}")
    vy = y.var()
    out = np.full(X.shape[1], np.nan)
    for j in range(X.shape[1]):     # a loop over factors
        x = X[:, j]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        b = np.searchsorted(edges, x, side="right")
        cnt = np.bincount(b)
        ok = cnt > 0
        means = np.bincount(b, weights=y)[ok] / cnt[ok]
        out[j] = np.sum(cnt[ok] * (means - y.mean()) ** 2) / (len(y) * vy) if vy > 0 else np.nan
    return pd.Series(out, index=names) if names else out


def effective_importance(pop, policy: Policy, *, bins: int = 20) -> pd.DataFrame:
    """Nominal weight of each component beside its effective importance in this population.

    One row per component (the dimensions, then ``satisfaction``):
    ``nominal_share`` (the policy's share); ``linear_share`` =
    Var(w_c x_c) / Σ Var(w_j x_j), what the share would mean if components
    were independent; ``main_effect_score`` and ``main_effect_star``, the
    correlation ratio of the score and of the star level given the component
    (:func:`main_effects`: how much of the spread knowing it alone explains;
    components share the branch's quality, so these overlap and do not add
    up to 1); ``unique_score`` = 1 − R² of the score on the other components
    (what it adds once they are known).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=500, members=False)
    >>> e = effective_importance(pop, bs.Policy.load())
    >>> e.component.tolist()[-1], e.nominal_share.sum().round(6)
    ('satisfaction', np.float64(1.0))
    """
    prep = prepare(pop, policy)
    rules = compile_branch_rules(policy)
    comp = prep.components
    contrib = 100.0 * comp * rules.weights[prep.type_idx]
    score = contrib.sum(axis=1)
    stars = baseline_stars(prep, policy).astype(float)
    nominal = [policy[f"branch.dimensions.{d}.share"] for d in policy.dimensions] \
        + [policy["branch.satisfaction_share"]]
    var = contrib.var(axis=0)
    unique = []
    for j in range(comp.shape[1]):      # a loop over components
        A = np.column_stack([np.ones(len(score)), np.delete(comp, j, axis=1)])
        resid = score - A @ np.linalg.lstsq(A, score, rcond=None)[0]
        unique.append(resid.var() / score.var())
    return pd.DataFrame({"component": list(prep.component_names), "nominal_share": nominal,
                         "linear_share": var / var.sum(),
                         "main_effect_score": main_effects(comp, score, bins),
                         "main_effect_star": main_effects(comp, stars, bins),
                         "unique_score": unique})
