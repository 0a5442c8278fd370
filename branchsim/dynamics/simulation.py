"""Years in sequence: evolve, measure, score, apply the consequences and interventions.

Year 0 is the population as generated (its own measurements, rated as
:func:`branchsim.evaluate` rates them). For each later year ``y``:

1. the decisions of year ``y - 1`` add their effects (``consequences.<id>.effect``
   and ``interventions.<id>.effect`` of the policy) and the qualities evolve
   (:mod:`.evolve`, parameters in ``data/dynamics.yaml``);
2. facts, survey answers, period records and appraisals are drawn afresh
   from the new qualities with the generator's measurement model, for the
   scheme's indicators, answers, periods and facts;
3. everything is rated with the core's rules on the whole population:
   relative designs rate each year on that year's scores, a design's
   guardrail reads last year's cut points, and the streaks of every
   designation, criterion and level with ``years`` carry over, so a
   consequence with ``years: N`` fires after N years in a row (an N + 1-th
   year in a row fires it again: the rule is read literally);
4. consequences follow from the rules; each intervention reaches the
   lowest-scoring units ``among`` those it names — its ``coverage`` share of
   them (all by default), at most ``count`` — or, ``select: random``, a drawn
   ``coverage`` share of them. Counts are absolute, as the policy states them
   (the published city's): for a population of another size, scale them with
   ``policy.update({"interventions.<id>.count": ...})``; a coverage share
   scales by itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import pandas as pd

from ..errors import DataError
from ..evaluate import evaluate_checked
from ..truth import truth
from ..model import BLOCK, _workers, as_seed_sequence
from ..policy import Policy, as_policy
from .evolve import branch_effects, member_effects
from .frames import branch_rows, check_names, member_rows
from .history import History, pool_accuracy, year_zero_once
from .measure import Context, uniforms, year_chunk
from .outcome import Carry, from_result, interventions, score_year, streak_ids, with_truth, year_zero
from .params import DynamicsParams

if TYPE_CHECKING:
    from typing import Any
    from ..plausible import Cities
    from ..population import Population
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["simulate", "replay", "rule_accuracy"]


def _check_pop(pop, policy: Policy, members: bool | None) -> bool:
    if not all(hasattr(pop, a) for a in ("branches", "members", "seed", "params", "has_truth")):
        raise DataError(f"simulate() takes a Population (from bs.generate), got {type(pop).__name__}")
    if not pop.has_truth or pop.seed is None or pop.params is None:
        raise DataError("simulate() needs a generated population (true_quality, its seed and generator "
                        "parameters) to evolve and re-measure; use bs.generate(...) or a population "
                        "saved from it. For your own yearly tables, use replay().")
    rated = policy.scheme.member is not None
    if members is None:
        members = pop.members is not None and rated
    if members and not rated:
        raise DataError(f"members=True but policy {policy.name!r} rates branches only; pass members=False")
    if members and (pop.members is None or "true_quality" not in pop.members.columns):
        raise DataError("members=True but the population has no members with true_quality; "
                        "generate with members=True or pass members=False")
    return bool(members)


def _prev(frame: pd.DataFrame, perm=None) -> dict:
    out = {c[5:]: frame[c].to_numpy() for c in frame.columns if isinstance(c, str) and c.startswith("prev_")}
    return out if perm is None else {k: v[perm] for k, v in out.items()}


def _concat(parts: list[dict]) -> dict:
    out = {}
    for key, first in parts[0].items():
        if isinstance(first, dict):
            out[key] = {k: np.concatenate([p[key][k] for p in parts]) for k in first}
        elif first.ndim == 2:
            out[key] = np.vstack([p[key] for p in parts])
        else:
            out[key] = np.concatenate([p[key] for p in parts])
    return out


def simulate(pop: Population, policy: Policy | None = None, *, years: int = 5, seed: Seed = 0, noise: bool = True,
             members: bool | None = None, dynamics: DynamicsParams | Mapping | None = None,
             chunk_size: int = 32 * BLOCK, workers: int | None = None, progress: bool = False) -> History:
    """Simulate years of evaluation, consequences and interventions on a generated population.

    Parameters
    ----------
    pop : Population
        A generated population (:func:`branchsim.generate`, under the same
        policy): its truth, seed and generator parameters drive the evolution
        and the measurement.
    policy : Policy or path, optional
        Rules, consequences and interventions (default: the baseline).
    years : int
        Years in the history, year 0 (the population as generated) included.
    seed : int, SeedSequence or Generator
        Seed of the years; the same seed gives the same history.
    noise : bool
        ``False`` measures every unit at its expectation: score, level and
        designations *are* the true ones (vetoes included), and the
        year-end appraisal keeps only its systematic impression halo.
    members : bool, optional
        Simulate members too (default: when the population has them and the
        policy rates members).
    dynamics : DynamicsParams or dict, optional
        Persistence and shocks (default ``data/dynamics.yaml``); a dict of
        dotted paths changes some, e.g. ``{"branch.persistence": 0.5}``.
    chunk_size, workers : int
        Branches measured at once (whole seed blocks) and threads; they
        change memory and speed, never the numbers.
    progress : bool
        Show a progress bar over years.

    Returns
    -------
    History

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=30)
    >>> h = bs.dynamics.simulate(pop, years=3, seed=2)
    >>> h.branches.groupby("year").size().tolist()
    [30, 30, 30]
    >>> h.level_distribution()[list(h.policy.levels)].sum(axis=1).tolist()
    [30, 30, 30]
    """
    policy = as_policy(policy)
    members = _check_pop(pop, policy, members)
    if isinstance(years, bool) or not isinstance(years, (int, np.integer)) or years < 1:
        raise DataError(f"years must be a whole number >= 1 (year 0 is the population itself); got {years!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive whole number; got {chunk_size!r}")
    check_names(policy.scheme)
    dyn = DynamicsParams.load() if dynamics is None else dynamics
    if isinstance(dyn, Mapping):
        dyn = DynamicsParams.load().with_values(dyn)
    root = as_seed_sequence(seed)
    ctx = Context.build(pop, policy, root, dyn, bool(noise), members)
    scheme = ctx.scheme
    per_chunk = max(1, -(-int(chunk_size) // BLOCK))
    chunks = [range(b, min(b + per_chunk, ctx.n_blocks)) for b in range(0, ctx.n_blocks, per_chunk)]
    n_workers = _workers(workers)
    steps = range(int(years))
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="simulate", unit="year")
    back = np.argsort(ctx.m_perm) if members else None       # sorted by branch -> the table's row order
    n_m = len(ctx.m_perm) if members else 0
    b_rows, m_rows, cuts = [], [], []
    carry = Carry(prev=_prev(pop.branches), true_prev=_prev(pop.branches),
                  m_prev=_prev(pop.members, ctx.m_perm) if members else {})
    state = None
    with ThreadPoolExecutor(n_workers) if n_workers > 1 else nullcontext() as pool:
        run = pool.map if pool is not None else map
        for year in steps:
            eff_b, eff_m = np.zeros(ctx.n_branches), np.zeros(n_m)
            if year == 0 and ctx.noise:                      # the population's own measurements
                st = year_zero(ctx, pop, carry, int(chunk_size))
            else:
                if year == 0:                                # measured without noise, nothing evolves
                    qb = pop.branches["true_quality"].to_numpy(float)
                    qm = pop.members["true_quality"].to_numpy(float)[ctx.m_perm] if members else None
                    effects = (None, None)
                else:
                    qb, qm = state["q"], state.get("qm")
                    eff_b = branch_effects(scheme, state["consequences"], state["selected"], ctx.n_branches)
                    if members:
                        eff_m = member_effects(scheme, state["m_consequences"], n_m)
                    effects = (eff_b, eff_m if members else None)
                parts = list(run(lambda blocks: year_chunk(ctx, year, blocks, qb, qm, *effects), chunks))
                st = score_year(ctx, _concat(parts), carry)
            st["selected"] = interventions(scheme, st, lambda j: uniforms(ctx, year, j))
            carry = carry.after(st)
            cuts.append(_year_cuts(year, st["cuts"]))
            b_rows.append(branch_rows(scheme, year, pop.branches["branch_id"], pop.branches["type"], st, eff_b))
            if members:
                m_rows.append(member_rows(scheme, year, pop.members, st, back, eff_m))
            state = st
    return History(pd.concat(b_rows, ignore_index=True),
                   pd.concat(m_rows, ignore_index=True) if members else None,
                   policy, seed=root, noise=bool(noise), cut_points=pd.concat(cuts, ignore_index=True))


def _year_cuts(year, cuts: pd.DataFrame) -> pd.DataFrame:
    out = cuts.reset_index(drop=True).copy()
    out.insert(0, "year", year)
    return out


def _carried(ids: pd.Series, carried: dict[str, pd.Series], frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``prev_<id>`` of the units known last year set to their carried streaks."""
    out = frame.copy()
    for key, last in carried.items():
        own = out[f"prev_{key}"].to_numpy(float) if f"prev_{key}" in out.columns else np.zeros(len(out))
        known = last.reindex(ids.to_numpy()).to_numpy(float)
        out[f"prev_{key}"] = np.where(np.isnan(known), own, known).astype(np.int64)
    return out


def replay(populations: Iterable | Mapping, policy: Policy | None = None) -> History:
    """Apply the rules to observed years in sequence (a researcher's own yearly tables).

    Each population is rated as :func:`branchsim.evaluate` would, with last
    year's :class:`~branchsim.Result` as ``previous`` (a design's guardrail);
    the streaks carry over by ``branch_id`` (members by ``member_id``; a unit
    new in a year starts from its own ``prev_<id>`` columns), so the
    consecutive-years rules fire as they would in practice. Interventions
    that select the lowest scores are recorded (they follow from the
    scores); random ones, being drawn, are not. Nothing is drawn: a replay has
    no seed. A generated population (with truth) also gets the true columns.

    Parameters
    ----------
    populations : sequence of Population, or mapping year -> Population
        Years in order; a sequence is numbered 0, 1, ...
    policy : Policy or path, optional

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> h = replay([pop, pop])           # the same tables two years running
    >>> h.branches.groupby("year")["weak"].sum().tolist()
    [2, 2]
    >>> h.branches.groupby("year")["reorganise"].sum().tolist()   # one was weak the year before too
    [1, 2]
    """
    policy = as_policy(policy)
    scheme = policy.scheme
    check_names(scheme)
    items = list(populations.items()) if isinstance(populations, Mapping) else list(enumerate(populations))
    if not items:
        raise DataError("replay() needs at least one population")
    b_rows, m_rows, cuts = [], [], []
    carry_b: dict = {}
    carry_true: dict = {}
    carry_m: dict = {}
    last = last_true = None
    for year, pop in items:
        ids = pop.branches["branch_id"]
        b = _carried(ids, carry_b, pop.branches)
        rated = scheme.member is not None and pop.members is not None and pop.member_months is not None
        m = _carried(pop.members["member_id"], carry_m, pop.members) if rated else None
        res = evaluate_checked(policy, b, m, pop.member_months if rated else None, previous=last)
        tr = truth(pop, policy)
        members = rated and tr is not None and "true_quality" in pop.members.columns
        if tr is not None:
            ctx = Context.build(pop, policy, None, None, True, members)
            back = np.argsort(ctx.m_perm) if members else None
            true_prev = _prev(_carried(ids, carry_true, pop.branches))
            st = with_truth(ctx, from_result(res, scheme, ctx.m_perm), pop,
                            Carry(true_prev=true_prev, true_cuts=last_true,
                                  m_prev=_prev(m, ctx.m_perm) if members else {}))
            carry_true = {k: pd.Series(v, index=ids.to_numpy()) for k, v in st["true_streaks"].items()}
            last_true = st["true_cuts"]
        else:
            st, back = from_result(res, scheme), None
        st["selected"] = interventions(scheme, st)
        carry_b = {k: pd.Series(st["streaks"][k], index=ids.to_numpy()) for k in streak_ids(scheme)}
        last = res
        cuts.append(_year_cuts(year, res.cut_points))
        b_rows.append(branch_rows(scheme, year, ids, pop.branches["type"], st))
        if rated:
            grades = _member_streak_frame(scheme, st, m, back)
            carry_m = {k: pd.Series(v, index=m["member_id"].to_numpy()) for k, v in grades.items()}
            m_rows.append(member_rows(scheme, year, m, st, back))
    members = pd.concat(m_rows, ignore_index=True) if len(m_rows) == len(items) else None
    return History(pd.concat(b_rows, ignore_index=True), members, policy, noise=True, source="replay",
                   cut_points=pd.concat(cuts, ignore_index=True))


def _member_streak_frame(scheme, st: dict, m: pd.DataFrame, back) -> dict:
    """Member streaks of the year in the table's row order (for carrying by member_id)."""
    from .outcome import _member_streaks
    grade = st["grade"] if back is None else st["grade"][back]
    prev = _prev(m)
    graded = grade >= 0
    return _member_streaks(scheme, grade, graded, prev)


def rule_accuracy(pop: Population | None, policy: Policy | None = None, *, years: int = 5,
                  seeds: Iterable = range(5), pooled: bool = False, confidence: float = 0.95,
                  cities: Cities | None = None, **kwargs: Any) -> pd.DataFrame | pd.Series:
    """Accuracy of the designations and the consecutive-years rules over years and seeds.

    Simulates the branches (members are not needed: their consequences do
    not feed back on branches) once per seed from the same year-0
    population, and reports the counts and rates of :meth:`History.accuracy`
    (definitions in :mod:`branchsim.dynamics.history`).

    Parameters
    ----------
    pop, policy, years
        As for :func:`simulate`; further keywords (``noise``, ``dynamics``,
        ``workers``, ...) are passed on.
    seeds : iterable of seeds
    pooled : bool
        Return one Series of counts summed over seeds and years, their rates,
        and each rate's Clopper–Pearson interval and number of events
        (:func:`~branchsim.dynamics.pool_accuracy`). Year 0, the population
        as generated and the same under every seed, is counted once.
    confidence : float
        Of the pooled intervals.
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        each count and rate with its mean and interval across cities.

    Returns
    -------
    DataFrame
        One row per seed and year: ``seed, year`` and the counts and rates
        (or, pooled, a Series; :func:`~branchsim.dynamics.rate_table` lays
        its rates out as a table).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=30, members=False)
    >>> acc = rule_accuracy(pop, years=3, seeds=range(2))
    >>> acc[["seed", "year"]].shape, int(acc["fired_reorganise"].sum()) >= 0
    ((6, 2), True)
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, policy, "rule_accuracy")
        return across_cities(cities, rule_accuracy, cities.policy if policy is None else policy, keys=["seed", "year"], years=years, seeds=list(seeds),
                             pooled=pooled, confidence=confidence, **kwargs)
    frames = []
    for s in seeds:
        acc = simulate(pop, policy, years=years, seed=s, members=False, **kwargs).accuracy().reset_index()
        acc.insert(0, "seed", s)
        frames.append(acc)
    if not frames:
        raise DataError("rule_accuracy() needs at least one seed")
    out = pd.concat(frames, ignore_index=True)
    if not pooled:
        return out
    return pool_accuracy(year_zero_once(out), confidence=confidence)
