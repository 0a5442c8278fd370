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
``param``
    any other numeric policy parameter (an indicator's points, a deduction
    rate, a survey answer value, a veto threshold, a member share, a
    structure's size line ...). It changes the units' points or rules, so
    the population is re-prepared once per distinct sampled value (a
    continuous ``param`` factor costs one ``prepare`` per sample: give it
    ``integer`` or use few samples on large populations); the fast factors
    stay vectorised within each value.
``choice``
    a structural or categorical choice (``branch.rating.design``, a veto on
    or off, peer grouping): a ``choices`` column lists its values, each a
    value of ``path``, a mapping of changes (a design with its own
    settings), or, with path ``reform``, a reform file (``None``: the
    policy itself). Method:
    the factor is sampled as a uniform index over the choices (bounds
    ``[0, K)``, floored), so each choice has probability ``1/K`` and the
    factors stay independent, which is all the Saltelli/Jansen estimators
    need: S1 and ST of a choice are the shares of output variance due to
    which choice is made (the order of the choices does not matter to them;
    Morris' elementary effects of a choice do depend on it, so read them
    as screening only). Fast factors must apply under every choice.
``noise``
    a generator parameter (``measurement.*``). The branches are re-measured
    for each distinct noise setting with common random numbers: for
    ``indicator_noise``, ``proportion_noise`` and ``survey_size`` the
    population's own draws rescaled and a nested list of respondents
    (:mod:`._remeasure`; the truth is kept, ~3 ms per setting on 1,500
    branches); any other ``measurement.*`` path generates the branches again
    with the population's seed (one ``generate`` + ``prepare`` per setting).

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
from ._remeasure import CRN_KEYS, CrnOut, Remeasure, crn_jobs
from .sweep import fast_paths, run_batches, scenario_arrays, tidy

__all__ = ["KINDS", "default_factors", "factor_problem", "factor_values", "scenarios", "evaluate_samples"]

KINDS = ("share", "balance", "cut", "cut_gap", "quota", "line", "value", "noise", "param", "choice")
SLOW = ("param", "choice")          # kinds that re-prepare the population per distinct value
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
    f = _choice_bounds(f)
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
        elif r.kind == "choice":
            problems += _slow_problems(r, where, policy, fast)
        elif not (np.isfinite([r.low, r.high]).all() and r.low < r.high):
            problems.append(f"{where}: needs finite low < high, got {r.low}, {r.high}")
        elif r.kind in expect and fast.get(r.path, (None,))[0] != expect[r.kind]:
            allowed = [p for p, (k, _) in fast.items() if k == expect[r.kind]]
            problems.append(f"{where}: kind {r.kind!r} takes one of {', '.join(allowed) or 'no path of this policy'}"
                            f"; shares take 'share' or 'balance' (never sampled independently), cut points "
                            f"'cut' or 'cut_gap', quotas 'quota', designation lines 'line'")
        elif r.kind == "param":
            problems += _slow_problems(r, where, policy, fast)
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


def _choice_bounds(f: pd.DataFrame) -> pd.DataFrame:
    """A ``choice`` factor is an index over its ``choices``: low 0, high K - 1, whole numbers."""
    if "kind" not in f or not (f["kind"] == "choice").any():
        return f
    if "choices" not in f:
        raise BranchsimError("factors: kind 'choice' needs a 'choices' column (the list of values)")
    f["low"], f["high"] = f["low"].astype(float), f["high"].astype(float)
    for i in np.flatnonzero((f["kind"] == "choice").to_numpy()):
        c = f.at[i, "choices"]
        k = len(c) if isinstance(c, (list, tuple)) else 0
        f.at[i, "low"], f.at[i, "high"], f.at[i, "integer"] = 0.0, float(max(k - 1, 0)) if k > 1 else np.nan, True
    return f


def _slow_problems(r, where: str, policy: Policy, fast: dict) -> list:
    """Why a ``param`` or ``choice`` factor cannot vary its path under ``policy`` (empty: it can)."""
    if r.kind == "param" and r.path in fast:
        return [f"{where}: a fast parameter; give it its own kind ({fast[r.path][0]!r} paths take "
                f"'share'/'balance', 'cut'/'cut_gap', 'quota' or 'line')"]
    if r.kind == "param":
        if r.path not in policy:
            return [policy.value_problem(r.path, r.low) or f"{where}: not a numeric parameter"]
        return [p for p in (policy.value_problem(r.path, r.low), policy.value_problem(r.path, r.high)) if p]
    choices = r.choices if isinstance(r.choices, (list, tuple)) else None
    if choices is None or len(choices) < 2 or len({repr(c) for c in choices}) < len(choices):
        return [f"{where}: kind 'choice' needs a list of at least two different values in 'choices'"]
    out = []
    for c in choices:
        try:
            _update(policy, _choice_changes(r, c))
        except BranchsimError as e:
            out.append(f"{where}: choice {c!r}: {str(e).splitlines()[0]}")
    return out


def _update(policy: Policy, changes: dict) -> Policy:
    """``policy`` with ``changes`` (those equal to its values left out: an update must change something)."""
    changes = {k: v for k, v in changes.items() if policy.get(k) != v}
    return policy.update(changes) if changes else policy


def slow_changes(factors: pd.DataFrame, row) -> dict:
    """The policy changes of one sample's ``param`` / ``choice`` values (a choice's index → its value)."""
    out = {}
    for r in factors.itertuples():
        if r.kind == "param":
            v = float(row[r.name])
            out[r.path] = int(v) if r.integer else v
        elif r.kind == "choice":
            out.update(_choice_changes(r, r.choices[int(row[r.name])]))
    return out


def changed_paths(factors: pd.DataFrame) -> list:
    """Every parameter path the ``param`` / ``choice`` factors can change (a choice's changes included)."""
    out = []
    for r in factors.itertuples():
        if r.kind == "param":
            out.append(r.path)
        elif r.kind == "choice":
            for c in r.choices:
                out += [k for k in _choice_changes(r, c) if k not in out]
    return out


def _choice_changes(r, value) -> dict:
    """A choice's changes: its path set to the value; or, for a value that is a mapping of changes or
    (path ``reform``) a reform file, those changes (a rating design with its own settings)."""
    if isinstance(value, dict):
        return dict(value)
    if r.path == "reform":
        from ..policy import load_reform
        return {} if value in (None, "", "baseline") else load_reform(value)["changes"]
    return {r.path: value}


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


def scenarios(policy: Policy, factors: pd.DataFrame, values: pd.DataFrame, *, _checked: bool = False) -> Scenarios:
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
    f = factors if _checked else _check_factors(factors, policy)   # _checked: by the caller, for this policy
    f = f[~f.kind.isin(SLOW)]
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


def _remeasure(policy, seed, n, params, sc, base, rated=None):
    """Re-measure the branches under ``params`` (same seed), rate them under ``rated`` (default:
    ``policy``) and run the scenarios (executor job).

    An executor gets policy documents: a Policy object does not pickle.
    """
    policy = policy if isinstance(policy, Policy) else Policy(policy)
    rated = policy if rated is None else rated if isinstance(rated, Policy) else Policy(rated)
    prep = prepare(generate(policy, seed=seed, n_branches=n, members=False, params=params, workers=1), rated)
    return run(prep, sc, baseline=base)


def evaluate_samples(pop, policy: Policy, values: pd.DataFrame, factors=None, *, executor=None,
                     progress: bool = False, _checked: bool = False) -> pd.DataFrame:
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
    f = factors if _checked else _factors_for(pop, policy, factors)    # _checked: sobol / morris did
    missing = [c for c in f.name if c not in values]
    if missing:
        raise BranchsimError(f"samples lack factor column(s) {missing}")
    values = values[list(f.name)].reset_index(drop=True)
    sc = scenarios(policy, f, values, _checked=True)
    prep0 = prepare(pop, policy)
    base = prep0.levels.astype(np.int16)
    noise = f[f.kind == "noise"]
    slow = f[f.kind.isin(SLOW)]
    if noise.empty and slow.empty:
        return values.join(_tidy(run_batches(prep0, sc, executor=executor, progress=progress,
                                             baseline=base), policy))
    n = len(pop.branches)
    crn = None
    if not noise.empty:
        if pop.seed is None or pop.params is None:
            raise BranchsimError("noise factors re-measure a generated population; this one has no seed "
                                 "or generator parameters (drop the 'noise' rows of the factors)")
        if all(p.startswith("measurement.") and p.split(".", 1)[1] in CRN_KEYS for p in noise.path):
            size = [values[nm].max() for nm, p in zip(noise.name, noise.path) if p.endswith(".survey_size")]
            crn = Remeasure(pop, policy, max_survey=int(size[0]) if size else None)   # checks it reproduces pop
        else:
            again = prepare(generate(policy, seed=pop.seed, n_branches=n, members=False, params=pop.params),
                            policy)
            if not np.allclose(again.components, prep0.components):
                raise BranchsimError("the population cannot be re-measured: generating with its seed and "
                                     "parameters does not reproduce its branches (another policy or a changed "
                                     "table?); drop the noise factors")
    from .sweep import _unit_columns, unit_outputs
    wanted = unit_outputs(policy, changed_paths(slow), pop)
    base_grades = None
    if "member" in wanted:
        from ..population import evaluate
        base_grades = evaluate(pop, policy).members["grade"].to_numpy(object)
    keys = values[list(noise.name) + list(slow.name)]
    groups = keys.groupby(list(keys.columns), sort=False).indices
    jobs, shared = [], {}
    for key, idx in groups.items():   # a loop over noise settings and slow values, never over branches
        row = dict(zip(keys.columns, np.atleast_1d(key)))
        pol = _update(policy, slow_changes(slow, row)) if not slow.empty else policy
        try:      # under the policy itself its rows of the scenarios built once (checked once)
            sub = sc.subset(idx) if pol is policy else scenarios(pol, f, values.iloc[idx])
        except BranchsimError as e:
            raise BranchsimError(f"under {slow_changes(slow, row)}: {e}") from None
        if noise.empty:
            jobs.append((idx, pol, ("prepared", pol, sub)))
            continue
        changes = {p: (int(row[nm]) if i else float(row[nm])) for nm, p, i in zip(noise.name, noise.path,
                                                                                 noise.integer)}
        if crn is not None:           # settings of one rated policy share its prepared truth
            slot = shared.setdefault(repr(sorted(slow_changes(slow, row).items())) if not slow.empty else "",
                                     (pol, []))
            slot[1].append((idx, {p.split(".", 1)[1]: v for p, v in changes.items()}, sub))
            continue
        args = (policy.to_dict() if executor else policy, pop.seed, n, pop.params.with_values(changes),
                sub, base, (pol.to_dict() if executor else pol) if pol is not policy else None)
        jobs.append((idx, pol, executor.submit(_remeasure, *args) if executor else args))
    for pol, settings in shared.values():
        jobs += crn_jobs(crn, pop, policy, pol, settings, base, executor)
    if progress:
        from tqdm.auto import tqdm
        jobs = tqdm(jobs, desc="settings", unit="setting")
    merged, extra = {}, {}
    for idx, pol, job in jobs:
        if isinstance(job, tuple) and job[0] == "prepared":
            out = run(prep0 if pol is policy else prepare(pop, pol), job[2], baseline=base)
        elif isinstance(job, CrnOut):
            out = job.get()
        else:
            out = job.result() if executor else _remeasure(*job)
        for k, v in out.items():
            if k != "n":
                merged.setdefault(k, np.zeros((1, len(values)) + v.shape[2:]))[:, idx] = v
        merged["n"] = out["n"]
        if wanted:
            for k, v in _unit_columns(pop, pol, wanted, base_grades).items():
                extra.setdefault(k, np.full(len(values), np.nan))[idx] = v
    frame = values.join(_tidy(merged, policy))
    for k, v in extra.items():
        frame[k] = v
    return frame
