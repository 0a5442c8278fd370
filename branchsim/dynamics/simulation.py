"""Years in sequence: evolve, measure, score, apply the consequences and interventions.

Year 0 is the population as generated (its own measurements, scored under
the policy). For each later year ``y``:

1. the decisions of year ``y - 1`` add their effects (``consequences.effects``
   and ``interventions.*.effect`` of the policy) and the qualities evolve
   (:mod:`.evolve`, parameters in ``data/dynamics.yaml``);
2. facts, survey answers, monthly records and appraisals are drawn afresh
   from the new qualities with the generator's measurement model;
3. everything is scored with :mod:`branchsim.scoring`; the streak of
   consecutive weak years carries over, so ``consequences.reorganise_after``
   weak years in a row trigger a reorganisation (a third weak year in a row
   triggers another: the rule is read literally);
4. talks, reorganisations, mentoring and handling follow from the rules;
   rectification, first secretaries and instructors go to the lowest-scoring
   units; a ``coverage`` share of secretaries is trained.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model import BLOCK, _workers, as_seed_sequence
from ..policy import Policy
from ..scoring import (GRADES, branch_consequences, compile_branch_rules, compile_member_rules,
                       member_consequences, member_grades)
from .evolve import branch_effects, member_effects, targets
from .history import History, pool_accuracy
from .measure import Context, annual, observed_year, training, year_chunk
from .params import DynamicsParams, Levers

__all__ = ["simulate", "replay", "rule_accuracy"]

_BRANCH_OUT = ("q", "true_score", "true_stars", "true_weak", "score", "stars", "weak")
_MEMBER_OUT = ("qm", "m_true", "monthly_mean", "appraisal")


def _check_pop(pop, members: bool | None) -> bool:
    if not all(hasattr(pop, a) for a in ("branches", "members", "seed", "params", "has_truth")):
        raise DataError(f"simulate() takes a Population (from bs.generate), got {type(pop).__name__}")
    if not pop.has_truth or pop.seed is None or pop.params is None:
        raise DataError("simulate() needs a generated population (true_quality, its seed and generator "
                        "parameters) to evolve and re-measure; use bs.generate(...) or a population "
                        "saved from it. For your own yearly tables, use replay().")
    if members is None:
        members = pop.members is not None
    if members and (pop.members is None or "true_quality" not in pop.members.columns):
        raise DataError("members=True but the population has no members with true_quality; "
                        "generate with members=True or pass members=False")
    return bool(members)


def simulate(pop, policy: Policy | None = None, *, years: int = 5, seed=0, noise: bool = True,
             members: bool | None = None, dynamics: DynamicsParams | Mapping | None = None,
             chunk_size: int = 32 * BLOCK, workers: int | None = None, progress: bool = False) -> History:
    """Simulate years of evaluation, consequences and interventions on a generated population.

    Parameters
    ----------
    pop : Population
        A generated population (:func:`branchsim.generate`): its truth, seed
        and generator parameters drive the evolution and the measurement.
    policy : Policy, optional
        Rules, consequence effects and interventions (default: the baseline).
    years : int
        Years in the history, year 0 (the population as generated) included.
    seed : int, SeedSequence or Generator
        Seed of the years; the same seed gives the same history.
    noise : bool
        ``False`` measures every unit at its expectation: score, stars and
        weak designation *are* the true ones (vetoes included), and the
        year-end appraisal keeps only its systematic impression halo.
    members : bool, optional
        Simulate members too (default: when the population has them).
    dynamics : DynamicsParams or dict, optional
        Persistence and shocks (default ``data/dynamics.yaml``); a dict of
        dotted paths changes some, e.g. ``{"branch.persistence": 0.5}``.
    chunk_size, workers : int
        Branches processed at once (whole seed blocks) and threads; they
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
    >>> h.star_distribution().sum(axis=1).sub(h.star_distribution()["weak"]).tolist()
    [30, 30, 30]
    """
    members = _check_pop(pop, members)
    policy = Policy.load() if policy is None else policy
    if not isinstance(policy, Policy):
        raise DataError(f"policy must be a branchsim.Policy, got {type(policy).__name__}")
    if isinstance(years, bool) or not isinstance(years, (int, np.integer)) or years < 1:
        raise DataError(f"years must be a whole number >= 1 (year 0 is the population itself); got {years!r}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive whole number; got {chunk_size!r}")
    dyn = DynamicsParams.load() if dynamics is None else dynamics
    if isinstance(dyn, Mapping):
        dyn = DynamicsParams.load().with_values(dyn)
    root = as_seed_sequence(seed)
    ctx = Context.build(pop, policy, root, dyn, bool(noise), members)
    per_chunk = max(1, -(-int(chunk_size) // BLOCK))
    chunks = [range(b, min(b + per_chunk, ctx.n_blocks)) for b in range(0, ctx.n_blocks, per_chunk)]
    n_workers = _workers(workers)

    steps = range(int(years))
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="simulate", unit="year")
    b_rows, m_rows = [], []
    state = None
    with ThreadPoolExecutor(n_workers) if n_workers > 1 else nullcontext() as pool:
        run = pool.map if pool is not None else map
        for year in steps:
            cur, eff_b, eff_m = _year(ctx, pop, year, state, run, chunks, members)
            streak_before = (pop.branches["prev_weak"].to_numpy() if year == 0 else state["weak_streak"])
            state = _decide(ctx, year, cur, streak_before, members)
            b_rows.append(_branch_rows(pop, year, state, eff_b))
            if members:
                m_rows.append(_member_rows(pop, ctx, year, state, eff_m))
    return History(pd.concat(b_rows, ignore_index=True),
                   pd.concat(m_rows, ignore_index=True) if members else None,
                   policy, seed=root, noise=bool(noise))


def _year(ctx: Context, pop, year: int, state: dict | None, run, chunks: list[range], members: bool):
    """One year's qualities, measurements and scores, and the effects its qualities received."""
    eff_m = None
    if year == 0:
        eff_b = np.zeros(ctx.n_branches)
        if members:
            eff_m = np.zeros(len(ctx.m_perm))
        if ctx.noise:                           # the population's own measurements
            cur = observed_year(pop, ctx.policy, ctx.brules, ctx.mrules if members else None)
            if members:                         # internal member order: sorted by branch
                cur.update({k: cur[k][ctx.m_perm] for k in _MEMBER_OUT})
            return cur, eff_b, eff_m
        qb = pop.branches["true_quality"].to_numpy(float)
        qm = pop.members["true_quality"].to_numpy(float)[ctx.m_perm] if members else None
        effects = (None, None)                  # no evolution: year 0 measured without noise
    else:
        qb, qm = state["q"], state.get("qm")
        eff_b = branch_effects(state, ctx.levers)
        if members:
            eff_m = member_effects(state["mentoring"], state["handling"], ctx.levers)
        effects = (eff_b, eff_m)
    parts = list(run(lambda blocks: year_chunk(ctx, year, blocks, qb, qm, *effects), chunks))
    keys = _BRANCH_OUT + (_MEMBER_OUT if members else ())
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}, eff_b, eff_m


def _decide(ctx: Context, year: int, cur: dict, streak_before, members: bool) -> dict:
    """The year's consequences and interventions from its scores (pure, whole population)."""
    rules = ctx.brules
    talk, reorganise, streak = branch_consequences(cur["weak"], streak_before, rules.reorganise_after)
    state = dict(cur, talk=talk, reorganise=reorganise, weak_streak=streak,
                 trained=training(ctx, year), **targets(cur["score"], cur["weak"], ctx.levers))
    if members:
        state["annual"] = annual(cur["monthly_mean"], cur["appraisal"], ctx.mrules)
        state["grade"] = member_grades(state["annual"], ctx.mrules)
        state["true_grade"] = member_grades(cur["m_true"], ctx.mrules)
        state["mentoring"], state["handling"] = member_consequences(state["grade"])
    return state


def _branch_rows(pop, year: int, s: dict, effect) -> pd.DataFrame:
    b = pop.branches
    return pd.DataFrame({
        "year": np.full(len(b), year, dtype=np.int64), "branch_id": b["branch_id"].to_numpy(),
        "type": b["type"].to_numpy(), "true_quality": s["q"], "true_score": s["true_score"],
        "true_stars": s["true_stars"], "true_weak": s["true_weak"], "score": s["score"],
        "stars": s["stars"], "weak": s["weak"], "weak_streak": s["weak_streak"], "talk": s["talk"],
        "reorganise": s["reorganise"], "rectified": s["rectified"], "trained": s["trained"],
        "first_secretary": s["first_secretary"], "instructor": s["instructor"], "effect": effect})


def _member_rows(pop, ctx: Context, year: int, s: dict, effect) -> pd.DataFrame:
    m = pop.members
    back = np.argsort(ctx.m_perm)             # sorted by branch -> the population's row order
    grades = np.array(GRADES, dtype=object)
    return pd.DataFrame({
        "year": np.full(len(m), year, dtype=np.int64), "member_id": m["member_id"].to_numpy(),
        "branch_id": m["branch_id"].to_numpy(), "true_quality": s["qm"][back],
        "true_score": s["m_true"][back], "true_grade": grades[s["true_grade"][back]],
        "monthly_mean": s["monthly_mean"][back], "appraisal": s["appraisal"][back],
        "annual": s["annual"][back], "grade": grades[s["grade"][back]],
        "mentoring": s["mentoring"][back], "handling": s["handling"][back], "effect": effect[back]})


def replay(populations: Iterable | Mapping, policy: Policy | None = None) -> History:
    """Apply the rules to observed years in sequence (a researcher's own yearly tables).

    Each population is scored as :func:`branchsim.evaluate` would; the streak
    of weak years carries over by ``branch_id`` (a branch new in a year
    starts from its ``prev_weak`` column), so the consecutive-year rule fires
    as it would in practice. Targeted interventions are recorded (they follow
    from the scores); training, being a random share, is not. Nothing is
    drawn: a replay has no seed.

    Parameters
    ----------
    populations : sequence of Population, or mapping year -> Population
        Years in order; a sequence is numbered 0, 1, ...
    policy : Policy, optional

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
    policy = Policy.load() if policy is None else policy
    items = list(populations.items()) if isinstance(populations, Mapping) else list(enumerate(populations))
    if not items:
        raise DataError("replay() needs at least one population")
    brules = compile_branch_rules(policy)
    mrules = compile_member_rules(policy)
    levers = Levers.from_policy(policy)
    b_rows, m_rows = [], []
    prev = pd.Series(dtype=float)
    for year, pop in items:
        b = pop.branches
        with_members = pop.members is not None and pop.member_months is not None
        cur = observed_year(pop, policy, brules, mrules if with_members else None)
        before = prev.reindex(b["branch_id"]).to_numpy()
        before = np.where(np.isnan(before), b["prev_weak"].to_numpy(float), before).astype(np.int64)
        talk, reorganise, streak = branch_consequences(cur["weak"], before, brules.reorganise_after)
        prev = pd.Series(streak, index=b["branch_id"].to_numpy())
        frame = {"year": year, "branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy()}
        if "true_score" in cur:
            frame.update(true_quality=cur["q"], true_score=cur["true_score"], true_stars=cur["true_stars"],
                         true_weak=cur["true_weak"])
        frame.update(score=cur["score"], stars=cur["stars"], weak=cur["weak"], weak_streak=streak,
                     talk=talk, reorganise=reorganise, **targets(cur["score"], cur["weak"], levers))
        b_rows.append(pd.DataFrame(frame))
        if with_members:
            m = pop.members
            a = annual(cur["monthly_mean"], cur["appraisal"], mrules)
            g = member_grades(a, mrules)
            mentoring, handling = member_consequences(g)
            mf = {"year": year, "member_id": m["member_id"].to_numpy(), "branch_id": m["branch_id"].to_numpy()}
            if "m_true" in cur:
                mf.update(true_quality=cur["qm"], true_score=cur["m_true"],
                          true_grade=np.array(GRADES, dtype=object)[member_grades(cur["m_true"], mrules)])
            mf.update(monthly_mean=cur["monthly_mean"], appraisal=cur["appraisal"], annual=a,
                      grade=np.array(GRADES, dtype=object)[g], mentoring=mentoring, handling=handling)
            m_rows.append(pd.DataFrame(mf))
    members = pd.concat(m_rows, ignore_index=True) if len(m_rows) == len(items) else None
    return History(pd.concat(b_rows, ignore_index=True), members, policy, noise=True, source="replay")


def rule_accuracy(pop, policy: Policy | None = None, *, years: int = 5, seeds: Iterable = range(5),
                  pooled: bool = False, **kwargs) -> pd.DataFrame | pd.Series:
    """Accuracy of the weak designation and the reorganisation rule over years and seeds.

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
        Return one Series of counts summed over seeds and years, and their rates.

    Returns
    -------
    DataFrame
        One row per seed and year: ``seed, year`` and the counts and rates.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=30, members=False)
    >>> acc = rule_accuracy(pop, years=3, seeds=range(2))
    >>> acc[["seed", "year"]].shape, int(acc["reorganisations"].sum()) >= 0
    ((6, 2), True)
    """
    frames = []
    for s in seeds:
        acc = simulate(pop, policy, years=years, seed=s, members=False, **kwargs).accuracy().reset_index()
        acc.insert(0, "seed", s)
        frames.append(acc)
    if not frames:
        raise DataError("rule_accuracy() needs at least one seed")
    out = pd.concat(frames, ignore_index=True)
    return pool_accuracy(out) if pooled else out
