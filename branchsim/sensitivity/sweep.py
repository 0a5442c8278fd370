"""Sweeps: one or several parameters on a grid, as one tidy frame.

The shares (survey and dimensions), the cut points of a cuts design, the
quotas of a quota design and the score lines of designations are *fast*
parameters: they become arrays on the scenario axis and every grid point is
scored in one pass (:mod:`.engine`). Any other parameter (an indicator's
points, a deduction rate, a survey answer value, a veto threshold) or a
structural choice (``branch.rating.design``) changes the units' components or
rules; for those the population is re-prepared once per value, and the fast
parameters are still vectorised within each.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import itertools
import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .._schema import _finite, _is_number
from ..errors import BranchsimError, PolicyError
from ..manifest import recorded
from ..policy import Policy
from ._kernels import _SERIAL_BELOW
from .engine import Scenarios, _line_criteria, prepare, run

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from ..plausible import Cities
    from ..population import Population

__all__ = ["sweep", "scenario_arrays", "is_fast", "run_batches", "fast_paths", "unit_outputs"]


def fast_paths(policy: Policy) -> dict[str, tuple]:
    """The fast parameters of a policy: ``{path: (kind, index)}``.

    Kinds: ``share`` (the survey share), ``dimension`` (a dimension's
    share; index: the dimension), ``cut`` (a level's cut; index: level code −
    1), ``type_cut`` (a type's own cut; index: (type, level code − 1)),
    ``quota`` (a level's quota; index: level code − 1), ``line`` (a
    designation's score line; index: the designation).

    >>> import branchsim as bs
    >>> sorted({kind for kind, _ in fast_paths(bs.Policy.load()).values()})
    ['cut', 'dimension', 'line', 'share', 'type_cut']
    """
    scheme = policy.scheme
    bs = scheme.branch
    out = {}
    if "branch.satisfaction_share" in policy:
        out["branch.satisfaction_share"] = ("share", None)
    if bs.form == "shares":
        for g, d in enumerate(bs.sheet.group_ids):
            out[f"branch.dimensions.{d}.share"] = ("dimension", g)
    above = bs.levels.worst_first[1:]
    r = bs.rating
    if r.design in ("cuts", "cuts_and_quota"):
        for j, lv in enumerate(above):
            out[f"branch.rating.cuts.{lv}"] = ("cut", j)
        if r.design == "cuts":
            for t, tid in enumerate(bs.types):
                for j, lv in enumerate(above):
                    out[f"branch.types.{tid}.rating.cuts.{lv}"] = ("type_cut", (t, j))
    if r.design in ("quota", "cuts_and_quota"):
        for j, lv in enumerate(above):
            out[f"branch.rating.quotas.{lv}"] = ("quota", j)
    for k, (d, c) in enumerate(zip(bs.designations, _line_criteria(scheme))):
        if c is not None:
            out[f"branch.designations.{d.id}.criteria.{c.id}.below"] = ("line", k)
    return out


def is_fast(path: str, policy: Policy) -> bool:
    """Whether a parameter varies on the scenario axis without re-scoring indicators."""
    return path in fast_paths(policy)


def scenario_arrays(policy: Policy, table: pd.DataFrame) -> Scenarios:
    """Weights, cut points, quotas and lines of the scenarios in ``table`` (columns: fast paths).

    Shares follow the re-normalisation rule of :meth:`Policy.update`: the
    shares a scenario does not set are scaled by one common factor so the
    group adds up to 1. Every scenario is checked; the error lists those that
    break a rule (cut points out of order, quotas above 1, a line above the
    top cut).
    """
    scheme = policy.scheme
    bs = scheme.branch
    fast = fast_paths(policy)
    S = len(table)
    problems = []
    for p in table.columns:
        if p not in fast:
            problems.append(f"{p}: not a fast parameter of policy {policy.name!r}")
    weights = _weights(policy, table, problems)
    r = bs.rating
    cuts = None
    if r.cuts is not None and r.design in ("cuts", "cuts_and_quota"):
        cuts = np.tile(r.cuts[None], (S, 1, 1))                         # (S, t, L-1)
        for p in table.columns:
            kind, idx = fast.get(p, (None, None))
            if kind == "cut":
                own = np.array([f"branch.types.{t}.rating.cuts.{bs.levels.worst_first[idx + 1]}" in policy
                                for t in bs.types])
                cuts[:, ~own, idx] = table[p].to_numpy(float)[:, None]
            elif kind == "type_cut":
                cuts[:, idx[0], idx[1]] = table[p].to_numpy(float)
        disorder = (np.diff(cuts, axis=2) <= 0).any(axis=(1, 2))
        if disorder.any():
            problems.append(f"branch.rating.cuts: scenario(s) {np.flatnonzero(disorder)[:5].tolist()} have cut "
                            f"points out of order; allowed: increasing with the level")
    quotas = None
    if r.quotas is not None and r.design in ("quota", "cuts_and_quota"):
        q = np.tile(r.quotas[None], (S, 1))
        for p in table.columns:
            kind, idx = fast.get(p, (None, None))
            if kind == "quota":
                q[:, idx] = table[p].to_numpy(float)
        bad = (q < 0).any(axis=1) | (q.sum(axis=1) > 1 + 1e-9)
        if bad.any():
            problems.append(f"branch.rating.quotas: scenario(s) {np.flatnonzero(bad)[:5].tolist()} have quotas "
                            f"below 0 or adding up to more than 1")
        quotas = np.cumsum(q[:, ::-1], axis=1)[:, ::-1]
    lines = np.tile(np.array([[np.nan if c is None else c.value for c in _line_criteria(scheme)]]), (S, 1)) \
        .reshape(S, len(bs.designations))
    for p in table.columns:
        kind, idx = fast.get(p, (None, None))
        if kind == "line":
            lines[:, idx] = table[p].to_numpy(float)
    if cuts is not None and r.design == "cuts" and lines.size:
        top = cuts[:, :, -1].max(axis=1)
        above = (lines > top[:, None]).any(axis=1)
        if above.any():
            problems.append(f"a designation's score line in scenario(s) {np.flatnonzero(above)[:5].tolist()} lies "
                            f"above the cut of the top level; allowed: at most the top cut")
    if problems:
        raise PolicyError(problems, where="sweep")
    return Scenarios(weights, cuts, quotas, lines, table.reset_index(drop=True), r.design)


def _weights(policy: Policy, table: pd.DataFrame, problems: list) -> np.ndarray:
    """(S, t, c) weights: the shares a scenario sets, the others re-normalised (as Policy.update)."""
    bs = policy.scheme.branch
    S = len(table)
    if bs.form != "shares":
        s = table["branch.satisfaction_share"].to_numpy(float) if "branch.satisfaction_share" in table \
            else None
        w = np.tile(bs.weights[None], (S, 1, 1))
        if s is not None:
            own = np.array([f"branch.types.{t}.satisfaction_share" in policy for t in bs.types])
            w[:, ~own, 0] = (1 - s)[:, None]
            w[:, ~own, 1] = s[:, None]
        return w
    dims = list(bs.sheet.group_ids)
    survey = "branch.satisfaction_share" in policy
    share_paths = [f"branch.dimensions.{d}.share" for d in dims] + (["branch.satisfaction_share"] if survey else [])
    base = np.array([policy[p] for p in share_paths])
    shares = np.tile(base, (S, 1))
    set_mask = np.zeros((S, len(share_paths)), dtype=bool)
    for j, p in enumerate(share_paths):
        if p in table:
            v = table[p].to_numpy(float)
            bad = ~((v >= 0) & (v <= 1))
            if bad.any():
                problems.append(f"{p}: values {sorted(set(v[bad].tolist()))[:5]} outside [0, 1]")
            shares[:, j], set_mask[:, j] = v, True
    if set_mask.any():
        fixed = np.where(set_mask, shares, 0).sum(axis=1)
        rest = np.where(set_mask, 0, base).sum(axis=1)
        all_set = set_mask.all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(rest > 0, (1 - fixed) / rest, 0.0)
        shares = np.where(set_mask, shares, base * factor[:, None])
        over = (fixed > 1 + 1e-9) | (all_set & (np.abs(fixed - 1) > 1e-9)) | (~all_set & (rest == 0)
                                                                             & (np.abs(fixed - 1) > 1e-9))
        if over.any():
            problems.append(f"shares of scenario(s) {np.flatnonzero(over)[:5].tolist()} cannot add up to 1 "
                            f"(set: {[p for p in share_paths if p in table]})")
    weights = np.empty((S, len(bs.types), len(share_paths)))
    nd = len(dims)
    for t, tid in enumerate(bs.types):
        own = f"branch.types.{tid}.satisfaction_share"
        s = np.full(S, policy[own]) if own in policy else (shares[:, -1] if survey else np.zeros(S))
        dim = shares[:, :nd]
        total = dim.sum(axis=1, keepdims=True)
        # Same expression as the scheme's compilation, so a scenario equal to the policy gives
        # bit-identical weights.
        with np.errstate(divide="ignore", invalid="ignore"):
            weights[:, t, :nd] = np.where(total > 0, dim * ((1 - s)[:, None] / total), 0.0)
        if survey:
            weights[:, t, -1] = s
    return weights


def _grid(grid: Mapping[str, Iterable], policy: Policy) -> pd.DataFrame:
    if not isinstance(grid, Mapping) or not grid:
        raise PolicyError("a sweep needs a non-empty mapping {parameter path: values}", where="sweep")
    problems, axes = [], {}
    for path, values in grid.items():
        structural = path not in policy and isinstance(path, str) and policy.get(path) is not None \
            and not isinstance(policy.get(path), dict)
        if path not in policy and not structural:
            from .._schema import _suggest
            problems.append(f"{path}: no such parameter{_suggest(path, policy.parameters()['path'])}")
            continue
        vals = list(np.atleast_1d(np.asarray(values, dtype=object)))
        if not vals:
            problems.append(f"{path}: no values")
        vals = [v.item() if isinstance(v, np.generic) else v for v in vals]
        if not structural:
            # Values that are not plain finite numbers (text, True, a 400-digit integer) are refused
            # here, as Policy.update would; ranges are checked per scenario below.
            odd = [v for v in vals if not (_is_number(v) and _finite(v))]
            bad = [p for p in (policy.value_problem(path, v) for v in odd) if p]
            if bad:
                problems.append(bad[0] + (f" (and {len(bad) - 1} more value(s))" if len(bad) > 1 else ""))
        axes[path] = vals
    if problems:
        raise PolicyError(problems, where="sweep")
    rows = list(itertools.product(*axes.values()))
    return pd.DataFrame(rows, columns=list(axes))


# Scenarios per batch. 256 dates from the NumPy engine and ignores the population's size; the compiled
# kernel runs a call of fewer than ``_kernels._SERIAL_BELOW`` branch-scenarios on one thread (waking its
# threads costs more), so at 1,500 branches every 256-scenario batch (384,000) ran serially. Without an
# executor a batch therefore grows to ~``_BATCH_WORK`` branch-scenarios (the threads get work; a small
# problem is one batch) but never holds fewer than ``_MIN_BATCH`` scenarios, so big work still comes in
# many batches for the progress bar. An executor gets ``_MIN_BATCH``-scenario batches: they are its tasks.
_MIN_BATCH = 256
_BATCH_WORK = 4 * _SERIAL_BELOW


def _batch_size(n_units: int, n_scenarios: int, executor=None) -> int:
    """Scenarios per batch in :func:`run_batches` when ``batch`` is not given.

    >>> _batch_size(1_500, 2_816), _batch_size(1_000_000, 2_816), _batch_size(1_500, 2_816, executor=object())
    (2816, 256, 256)
    """
    if executor is not None:
        return _MIN_BATCH
    n_batches = max(1, n_units * n_scenarios // _BATCH_WORK)
    return max(_MIN_BATCH, -(-n_scenarios // n_batches))


def run_batches(prep, sc: Scenarios, *, executor=None, batch: int | None = None, progress: bool = False,
                **kw) -> dict[str, np.ndarray]:
    """:func:`engine.run` over batches of scenarios, optionally on a ``concurrent.futures`` executor.

    Every scenario is computed independently with the same arithmetic, so the
    result does not depend on the batch size or the executor. ``batch``
    (scenarios per batch) defaults to :func:`_batch_size`.
    """
    if batch is None:
        batch = _batch_size(prep.n, len(sc), executor)
    elif isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise BranchsimError(f"batch (scenarios per batch) must be a whole number >= 1; got {batch!r}")
    starts = list(range(0, len(sc), batch))
    parts = [sc.subset(np.arange(s, min(s + batch, len(sc)))) for s in starts] if len(starts) > 1 else [sc]
    if executor is None:
        results = (run(prep, p, **kw) for p in parts)
    else:
        shared = _shared(executor, prep)
        futures = [executor.submit(run, shared, p, **kw) for p in parts]
        results = (f.result() for f in futures)
    if progress and len(parts) > 1:
        from tqdm.auto import tqdm
        results = tqdm(results, total=len(parts), desc="scenarios", unit="batch")
    results = list(results)
    if len(results) == 1:
        return results[0]
    return {k: (np.concatenate([r[k] for r in results], axis=1) if k != "n" else results[0][k])
            for k in results[0]}


def _shared(executor, prep):
    """What each task gets for the prepared population: on a Dask cluster (``client.get_executor()``)
    a future of it scattered once to every worker, so tasks do not each pickle and ship it (tens of
    MiB for a city); on any other executor the object itself."""
    client = getattr(executor, "_client", None)
    if client is not None and hasattr(client, "scatter"):
        return client.scatter(prep, broadcast=True, hash=False)
    return prep


def tidy(out, table: pd.DataFrame, group_names, by, policy: Policy) -> pd.DataFrame:
    """The engine's arrays as a tidy frame: one row per scenario (and group), counts by level id."""
    bs = policy.scheme.branch
    G, S = out["counts"].shape[:2]
    frames = []
    for g in range(G):
        f = table.copy()
        if by is not None:
            f.insert(0, by, group_names[g])
        n = out["n"][g]
        f["n"] = int(n)
        for code, lv in reversed(list(enumerate(bs.levels.worst_first))):
            f[lv] = out["counts"][g, :, code].astype(int)
        for k, d in enumerate(bs.designations):
            v = out["designated"][g, :, k]
            f[d.id] = v.astype(int) if np.isfinite(v).all() else v
        if "changed" in out:
            f["changed"] = out["changed"][g].astype(int)
            f["mean_abs_change"] = out["abs_change"][g] / n if n else math.nan
        if "correct" in out:
            f["accuracy"] = out["correct"][g] / n if n else math.nan
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


# What each part of a policy can change, by the first part of a parameter's path: ``branch`` changes the
# branches' levels (the engine's outputs); the others change only what a whole evaluation reports.
_UNIT_OUTPUTS = {"member": "member grades", "structure": "organisation upgrades", "consequences": "consequences"}


def unit_outputs(policy: Policy, paths, pop) -> set:
    """The outputs beyond branch levels that a sweep over ``paths`` must report (``member``,
    ``structure``, ``consequences``), refusing a path that changes none of a sweep's outputs.

    A sweep rates one year. A path under ``interventions`` acts only between years, and a member
    parameter on a population without members has nothing to act on: either would give rows that do
    not differ whatever its value (a silent no-op), so it is an error that says so.

    >>> import branchsim as bs
    >>> sorted(unit_outputs(bs.Policy.load(), ["member.record_share"], bs.generate(seed=0, n_branches=20)))
    ['member']
    """
    problems, wanted = [], set()
    for path in paths:
        head = str(path).split(".", 1)[0]
        if head == "branch":
            continue
        if head not in _UNIT_OUTPUTS or (head == "consequences" and ".effect" in str(path)):
            problems.append(f"{path}: changes none of a sweep's outputs (levels, designations, member grades, "
                            f"upgrades, consequences) — a sweep rates one year, and interventions and a consequence's effect act "
                            f"between years; to see its effect over years use "
                            f"bs.simulate or bs.rule_accuracy")
            continue
        members_needed = head == "member" or (head == "consequences" and _member_consequence(policy, path))
        if members_needed and getattr(pop, "members", None) is None:
            problems.append(f"{path}: changes only {'member grades' if head == 'member' else 'member consequences'}, "
                            f"and the population has no members (generate with members=True, or load a "
                            f"members table)")
            continue
        wanted.add(head)
    if problems:
        raise PolicyError(problems, where="sweep")
    return wanted


def _member_consequence(policy: Policy, path: str) -> bool:
    parts = str(path).split(".")
    return len(parts) > 1 and any(c.id == parts[1] and c.unit == "member" for c in policy.scheme.consequences)


def _unit_columns(pop, pol: Policy, wanted: set, base_grades) -> dict:
    """Member grades (and members changed from the baseline, misgraded against the truth), upgrades
    and consequences of one policy, from a whole evaluation (:func:`branchsim.evaluate`)."""
    from ..population import evaluate, member_truth
    r = evaluate(pop, pol)
    out = {}
    if "member" in wanted and r.members is not None:
        for g, v in r.grade_counts().items():
            out[f"grade_{g}"] = int(v)
        grade = r.members["grade"].to_numpy(object)
        out["members_changed"] = int((pd.Series(grade).fillna("") != pd.Series(base_grades).fillna("")).sum())
        true = member_truth(pop, pol)
        if true is not None:
            rated = pd.notna(true) & pd.notna(grade)
            out["misgraded"] = float((grade[rated] != true[rated]).mean()) if rated.any() else math.nan
    if "structure" in wanted:
        for k, v in r.upgrade_counts()["count"].items():
            out[k] = int(v)
        for k in ("committee_needed", "below_minimum"):     # the structure's other findings
            if k in r.branches:
                out[k] = int(r.branches[k].sum())
    if "consequences" in wanted:
        for k, v in r.consequence_counts().items():
            out[f"consequence_{k}"] = int(v)
    return out


@recorded("sweep")
def sweep(pop: Population | None, policy: Policy, grid: Mapping[str, Iterable], *, by: str | None = None,
          executor: Executor | None = None, batch: int | None = None, progress: bool = True,
          cities: Cities | None = None) -> pd.DataFrame:
    """Evaluate a grid of parameter values; one row per scenario (and group).

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline: parameters not in ``grid`` keep its values, and
        ``changed`` / ``mean_abs_change`` compare each scenario with it.
    grid : mapping of parameter path to values
        Several paths make a full grid (their Cartesian product). A path may
        be a parameter or a structural choice such as ``branch.rating.design``.
    by : str, optional
        A branch column (``"type"``, ...) to report per group.
    executor : concurrent.futures.Executor, optional
        Runs batches of scenarios (a process pool, or a Dask client's
        ``get_executor()``); results equal the sequential run.
    batch : int, optional
        Scenarios per batch. Default: 256 with an executor; otherwise
        enough for the compiled kernel's threads (a small grid is one batch).
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        the sweep runs on each city's population and every number comes with
        its mean and interval across cities (:func:`branchsim.plausible.across_cities`).

    Returns
    -------
    DataFrame
        The parameter values, ``n``, the count per level (one column per
        level id, best first), per designation, ``changed`` (branches whose
        level differs from the baseline), ``mean_abs_change`` (levels) and,
        for generated populations, ``accuracy`` (share whose level equals the
        level their true quality earns under that scenario). A path under
        ``member`` adds the members per grade (``grade_<id>``),
        ``members_changed`` (grade differs from the baseline's) and, with the
        truth, ``misgraded`` (share of graded members whose grade differs from
        the one their true score earns); under ``structure``, the upgrades
        (``upgrade_<level>``), ``committee_needed`` and ``below_minimum``;
        under ``consequences``, ``consequence_<id>`` counts.

    Raises
    ------
    PolicyError
        A path that changes none of these outputs (an intervention, a
        consequence's ``effect``: they act between years; a member parameter
        on a population without members): a sweep over it would give
        identical rows, so it is refused (:func:`unit_outputs`).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> df = bs.sweep(pop, bs.Policy.load(), {"branch.satisfaction_share": [0.3, 0.4, 0.5]},
    ...               progress=False)
    >>> int(df.loc[df["branch.satisfaction_share"] == 0.4, "changed"].iloc[0])
    0

    ``{path: "exact"}`` sweeps that one share exactly over [0, 1] (:func:`exact_sweep`).
    """
    if isinstance(grid, Mapping) and any(isinstance(v, str) and v == "exact" for v in grid.values()):
        from .exact import from_grid
        return from_grid(pop, policy, grid, by=by, cities=cities)
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, policy, "sweep")
        return across_cities(cities, sweep, policy, grid, keys=[*grid, by], by=by, executor=executor,
                             batch=batch, progress=False)
    table = _grid(grid, policy)
    wanted = unit_outputs(policy, table.columns, pop)
    fast_of = fast_paths(policy)
    slow = [c for c in table.columns if c not in fast_of]
    fast = [c for c in table.columns if c in fast_of]
    prep0 = prepare(pop, policy)
    base = prep0.levels.astype(np.int16)
    if by is not None and by not in prep0.branches.columns:
        from ..errors import DataError
        raise DataError(f"by={by!r} is not a branch column; allowed: "
                        f"{', '.join(prep0.branches.columns)}")
    codes, names = (pd.factorize(prep0.branches[by], sort=True) if by is not None
                    else (np.zeros(prep0.n, dtype=np.intp), [None]))
    pieces = []
    base_grades = None
    if "member" in wanted:
        from ..population import evaluate
        base_grades = evaluate(pop, policy).members["grade"].to_numpy(object)
    slow_sets = table[slow].drop_duplicates() if slow else pd.DataFrame(index=[0])
    for _, row in slow_sets.iterrows():
        changes = {k: row[k] for k in slow if row[k] != policy.get(k)}
        pol = policy.update(changes) if changes else policy
        prep = prep0 if not changes else prepare(pop, pol)
        mask = np.ones(len(table), dtype=bool)
        for k in slow:
            mask &= (table[k] == row[k]).to_numpy()
        sub = table[mask]
        own_fast = [c for c in fast if c in fast_paths(pol)]
        sc = scenario_arrays(pol, sub[own_fast])
        sc = Scenarios(sc.weights, sc.cuts, sc.quotas, sc.lines, sub.reset_index(drop=True), sc.design)
        out = run_batches(prep, sc, executor=executor, batch=batch, progress=progress,
                          groups=codes, n_groups=len(names), baseline=base)
        piece = tidy(out, sc.table, list(names), by, pol)
        if wanted:            # whole-population outcomes: the same in every group's row
            for k, v in _unit_columns(pop, pol, wanted, base_grades).items():
                piece[k] = v
        pieces.append(piece)
    return pd.concat(pieces, ignore_index=True)
