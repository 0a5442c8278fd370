"""Sweeps: one or several parameters on a grid, as one tidy frame.

Weights, the survey share, star cut points and the weak line are *fast*
parameters: they become arrays on the scenario axis and every grid point is
scored in one pass (:mod:`.engine`). Any other parameter (an indicator's
points, a deduction rate, a survey answer value, a veto threshold) changes
the components themselves; for those the population is re-prepared once per
value, and the fast parameters are still vectorised within each.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import PolicyError
from ..evaluate import STAR_NAMES
from .._schema import _finite, _is_number
from ..policy import Policy
from ..scoring import compile_branch_rules
from .engine import Scenarios, baseline_stars, prepare, run

__all__ = ["sweep", "scenario_arrays", "is_fast", "run_batches"]


def is_fast(path: str) -> bool:
    """Whether a parameter varies on the scenario axis without re-scoring indicators."""
    return (path == "branch.satisfaction_share" or path == "branch.weak_below"
            or (path.startswith("branch.dimensions.") and path.endswith(".share"))
            or path.startswith("branch.star_cuts."))


def scenario_arrays(policy: Policy, table: pd.DataFrame) -> Scenarios:
    """Weights, cuts and weak lines of the scenarios in ``table`` (columns: fast parameter paths).

    Shares follow the re-normalisation rule of :meth:`Policy.update`: the
    shares a scenario does not set are scaled by one common factor so the
    five add up to 1. Every scenario is checked; the error lists those that
    break a rule.
    """
    rules = compile_branch_rules(policy)
    S = len(table)
    dims = list(policy.dimensions)
    share_paths = [f"branch.dimensions.{d}.share" for d in dims] + ["branch.satisfaction_share"]
    base = np.array([policy[p] for p in share_paths])
    shares = np.tile(base, (S, 1))
    set_mask = np.zeros((S, len(share_paths)), dtype=bool)
    problems = []
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
    weights = np.empty((S, len(rules.types), len(share_paths)))
    for t, tid in enumerate(rules.types):
        own = f"branch.types.{tid}.satisfaction_share"
        s = np.full(S, policy[own]) if own in policy else shares[:, -1]
        dim = shares[:, :-1]
        total = dim.sum(axis=1, keepdims=True)
        # Same expression as compile_branch_rules, so a scenario equal to the policy
        # gives bit-identical weights.
        with np.errstate(divide="ignore", invalid="ignore"):
            weights[:, t, :-1] = np.where(total > 0, dim * ((1 - s)[:, None] / total), 0.0)
        weights[:, t, -1] = s
    cuts = np.tile(rules.star_cuts, (S, 1))
    for j, level in enumerate(rules.star_levels):
        p = f"branch.star_cuts.{level}"
        if p in table:
            cuts[:, j] = table[p].to_numpy(float)
    disorder = (np.diff(cuts, axis=1) <= 0).any(axis=1) | (cuts < 0).any(axis=1) | (cuts > 100).any(axis=1)
    if disorder.any():
        problems.append(f"branch.star_cuts: scenario(s) {np.flatnonzero(disorder)[:5].tolist()} have cut "
                        f"points out of order or outside [0, 100]; allowed: increasing with the star level")
    weak = table["branch.weak_below"].to_numpy(float) if "branch.weak_below" in table \
        else np.full(S, rules.weak_below)
    above = weak > cuts.max(axis=1, initial=-np.inf)   # as the policy itself refuses (a top star and weak)
    if len(cuts[0] if S else []) and above.any():
        problems.append(f"branch.weak_below: scenario(s) {np.flatnonzero(above)[:5].tolist()} put the weak "
                        f"line above the highest star cut; allowed: at most the highest cut")
    if problems:
        raise PolicyError(problems, where="sweep")
    return Scenarios(weights, rules.star_levels, cuts, weak, table.reset_index(drop=True))


def _grid(grid: Mapping[str, Iterable], policy: Policy) -> pd.DataFrame:
    if not isinstance(grid, Mapping) or not grid:
        raise PolicyError("a sweep needs a non-empty mapping {parameter path: values}", where="sweep")
    problems, axes = [], {}
    for path, values in grid.items():
        if path not in policy:
            from .._schema import _suggest
            problems.append(f"{path}: no such parameter{_suggest(path, policy.parameters()['path'])}")
            continue
        vals = list(np.atleast_1d(np.asarray(values, dtype=object)))
        if not vals:
            problems.append(f"{path}: no values")
        vals = [v.item() if isinstance(v, np.generic) else v for v in vals]
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


def run_batches(prep, sc: Scenarios, *, executor=None, batch: int = 256, progress: bool = False,
                **kw) -> dict[str, np.ndarray]:
    """:func:`engine.run` over batches of scenarios, optionally on a ``concurrent.futures`` executor.

    Every scenario is computed independently with the same arithmetic, so the
    result does not depend on the batch size or the executor.
    """
    starts = list(range(0, len(sc), batch))
    parts = [sc.subset(np.arange(s, min(s + batch, len(sc)))) for s in starts]
    if executor is None:
        results = (run(prep, p, **kw) for p in parts)
    else:
        futures = [executor.submit(run, prep, p, **kw) for p in parts]
        results = (f.result() for f in futures)
    if progress and len(parts) > 1:
        from tqdm.auto import tqdm
        results = tqdm(results, total=len(parts), desc="scenarios", unit="batch")
    results = list(results)
    return {k: (np.concatenate([r[k] for r in results], axis=1) if k != "n" else results[0][k])
            for k in results[0]}


def _levels(policy: Policy) -> list[int]:
    """Star levels a policy can give, best first: its cut levels, veto caps and no star."""
    rules = compile_branch_rules(policy)
    return sorted({0, *rules.star_levels.tolist(), *rules.veto_max_star[rules.veto_max_star < 5].tolist()},
                  reverse=True)


def _tidy(out, table: pd.DataFrame, group_names, by, levels) -> pd.DataFrame:
    G, S = out["weak"].shape
    frames = []
    for g in range(G):
        f = table.copy()
        if by is not None:
            f.insert(0, by, group_names[g])
        n = out["n"][g]
        f["n"] = int(n)
        for lv in levels:
            f[STAR_NAMES[lv]] = out["counts"][g, :, lv].astype(int)
        f["weak"] = out["weak"][g].astype(int)
        if "changed" in out:
            f["changed"] = out["changed"][g].astype(int)
            f["mean_abs_change"] = out["abs_change"][g] / n if n else math.nan
        if "correct" in out:
            f["accuracy"] = out["correct"][g] / n if n else math.nan
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def sweep(pop, policy: Policy, grid: Mapping[str, Iterable], *, by: str | None = None,
          executor=None, batch: int = 256, progress: bool = True) -> pd.DataFrame:
    """Evaluate a grid of parameter values; one row per scenario (and group).

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline: parameters not in ``grid`` keep its values, and
        ``changed`` / ``mean_abs_change`` compare each scenario with it.
    grid : mapping of parameter path to values
        Several paths make a full grid (their Cartesian product).
    by : str, optional
        A branch column (``"type"``, ``"level"``, ...) to report per group.
    executor : concurrent.futures.Executor, optional
        Runs batches of scenarios (a process pool, or a Dask client's
        ``get_executor()``); results equal the sequential run.

    Returns
    -------
    DataFrame
        The parameter values, ``n``, the count per star level
        (``five_star`` … ``no_star``), ``weak``, ``changed`` (branches whose
        star differs from the baseline), ``mean_abs_change`` (stars) and,
        for generated populations, ``accuracy`` (share whose star equals the
        star their true quality earns under that scenario).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> df = bs.sweep(pop, bs.Policy.load(), {"branch.satisfaction_share": [0.3, 0.4, 0.5]},
    ...               progress=False)
    >>> int(df.loc[df["branch.satisfaction_share"] == 0.4, "changed"].iloc[0])
    0
    """
    table = _grid(grid, policy)
    slow = [c for c in table.columns if not is_fast(c)]
    fast = [c for c in table.columns if is_fast(c)]
    prep0 = prepare(pop, policy)
    base = baseline_stars(prep0, policy)
    if by is not None and by not in prep0.branches.columns:
        from ..errors import DataError
        raise DataError(f"by={by!r} is not a branch column; allowed: "
                        f"{', '.join(prep0.branches.columns)}")
    codes, names = (pd.factorize(prep0.branches[by], sort=True) if by is not None
                    else (np.zeros(prep0.n, dtype=np.intp), [None]))
    pieces = []
    slow_sets = table[slow].drop_duplicates() if slow else pd.DataFrame(index=[0])
    for _, row in slow_sets.iterrows():
        changes = {k: row[k] for k in slow if row[k] != policy[k]}
        pol = policy.update(changes) if changes else policy
        prep = prep0 if not changes else prepare(pop, pol)
        mask = np.ones(len(table), dtype=bool)
        for k in slow:
            mask &= (table[k] == row[k]).to_numpy()
        sub = table[mask]
        sc = scenario_arrays(pol, sub[fast])
        sc = Scenarios(sc.weights, sc.levels, sc.cuts, sc.weak_below, sub.reset_index(drop=True))
        out = run_batches(prep, sc, executor=executor, batch=batch, progress=progress,
                          groups=codes, n_groups=len(names), baseline_stars=base)
        pieces.append(_tidy(out, sc.table, list(names), by, _levels(pol)))
    return pd.concat(pieces, ignore_index=True)
