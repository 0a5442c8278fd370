"""Monte Carlo over measurement noise, with the truth held fixed.

A generated population knows each branch's true quality. Here the
*measurement* is drawn again many times — indicator facts and survey answers
of every branch, optionally members' year-end appraisals (and monthly
records) — while type, size, true quality and the indicators' difficulty
offsets stay those of the population. Each draw is scored with the policy's
vectorised rules (:func:`branchsim.scoring.branch_outcome`), which gives the
probability of each star per branch, the distribution of star counts and how
often noise alone misclassifies a branch, for one or several survey sizes.

Streams: draw ``d`` of seed block ``b`` (:data:`branchsim.model.BLOCK`
branches) and purpose ``p`` uses
``SeedSequence(entropy, spawn_key=(*spawn_key, p, d, b))`` of the ``seed``
given, so the numbers do not depend on the batch size, the branch chunking
or the executor. Every survey size reuses the draw's survey stream (common
random numbers), so sizes differ by the sample, not by luck.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError
from ..model import (BLOCK, GeneratorParams, _branch_block, _indicator_offsets, _monthly_facts, _survey,
                     as_seed_sequence, STATE_FACTS)
from ..model import truth as model_truth
from ..measurement import appraise, member_true_scores
from ..policy import Policy
from ..scoring import (annual_scores, branch_outcome, compile_branch_rules, compile_member_rules,
                       member_grades, monthly_scores, type_codes)
from .mc_result import MonteCarlo, _assemble  # noqa: F401  (MonteCarlo re-exported: moved to .mc_result)

__all__ = ["measurement_mc", "MonteCarlo"]

# Purposes of the Monte Carlo streams (the generator uses 0-4 with two-part keys).
_FACTS, _SURVEY, _APPRAISAL, _MEMBER, _MONTHS = 8, 9, 10, 11, 12
_ROWS = 1 << 15  # branch-draws scored at once (memory only, never the numbers)
#: Generator parameters a Monte Carlo may change: the measurement, not the truth.
MEASUREMENT_PARAMS = tuple(f"measurement.{k}" for k in (
    "indicator_noise", "proportion_noise", "survey_shock", "survey_generosity",
    "survey_size",)) + ("member_measurement.",)


def _stream(root: np.random.SeedSequence, purpose: int, draw: int, block: int) -> np.random.Generator:
    key = (*root.spawn_key, purpose, draw, block)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root.entropy, spawn_key=key)))


@dataclass(frozen=True)
class _Setup:
    """Everything a batch of draws needs (plain arrays: cheap to send to a worker)."""

    q: np.ndarray
    t: np.ndarray
    size: np.ndarray
    offsets: np.ndarray
    state: np.ndarray        # state facts (vacancy, violation): part of the truth, kept fixed
    rules: object
    params: tuple            # one GeneratorParams per survey size
    true_stars: np.ndarray
    true_weak: np.ndarray
    members: str | None = None           # None, "appraisal" or "monthly"
    m: dict | None = None                # member arrays, sorted by seed block


def _branch_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    n, k, B = len(s.q), len(s.rules.indicators.ids), stop - first
    per_chunk = max(1, _ROWS // (B * BLOCK)) * BLOCK
    for lo in range(0, n, per_chunk):
        hi = min(n, lo + per_chunk)
        facts = np.empty((B, hi - lo, k))
        survey = np.empty((len(s.params), B, hi - lo, 3), dtype=np.int64)
        for i, d in enumerate(range(first, stop)):
            for blo in range(lo, hi, BLOCK):
                blk, r = blo // BLOCK, slice(blo, min(hi, blo + BLOCK))
                rr = slice(r.start - lo, r.stop - lo)
                facts[i, rr] = _branch_block(_stream(root, _FACTS, d, blk), s.q[r], s.t[r], s.size[r],
                                             s.rules, s.offsets, s.params[0], s.state[r])[0]
                for j, p in enumerate(s.params):   # same stream for every size: common random numbers
                    survey[j, i, rr] = _survey(_stream(root, _SURVEY, d, blk), s.q[r], s.size[r], p)
        tt = np.tile(s.t[lo:hi], B)
        true = np.tile(s.true_stars[lo:hi], B)
        true_weak = np.tile(s.true_weak[lo:hi], B)
        unit = np.tile(np.arange(hi - lo), B)
        draw = np.repeat(np.arange(B), hi - lo)
        for j in range(len(s.params)):
            o = branch_outcome(facts.reshape(-1, k), tt, survey[j].reshape(-1, 3), s.rules)
            stars, weak = o["stars"].astype(np.intp), o["weak"]
            out["hits"][j, lo:hi] += np.bincount(unit * 6 + stars, minlength=(hi - lo) * 6).reshape(-1, 6)
            out["weak_hits"][j, lo:hi] += np.bincount(unit, weights=weak, minlength=hi - lo).astype(np.int64)
            out["levels"][j] += np.bincount(draw * 6 + stars, minlength=B * 6).reshape(B, 6)
            for name, flag in (("weak", weak), ("too_high", stars > true), ("too_low", stars < true),
                               ("false_alarms", weak & ~true_weak), ("misses", ~weak & true_weak)):
                out[name][j] += np.bincount(draw, weights=flag, minlength=B).astype(np.int64)


def _monthly_means(s: _Setup, root, d: int, blk: int, r: slice) -> np.ndarray:
    """Twelve redrawn monthly records of the members ``r`` of seed block ``blk``, as mean scores."""
    m, mm, f32 = s.m, s.params[0].values["member_measurement"], np.float32
    mrules, q, n = m["rules"], m["q"][r], r.stop - r.start
    k = len(mrules.indicators.ids)
    noise = _stream(root, _MEMBER, d, blk).standard_normal((k, n), dtype=f32)
    base = m["offsets"].astype(f32)[m["order"], None] + q.astype(f32)[None, :]
    base += f32(mm["indicator_noise"]) * noise
    rng = _stream(root, _MONTHS, d, blk)
    shock = f32(mm["month_noise"]) * rng.standard_normal((12, n), dtype=f32)
    months = np.empty((k, 12, n), dtype=f32)
    _monthly_facts(rng, base, shock, mrules.indicators, m["order"],
                   f32(s.params[0].get("measurement.proportion_noise")), months)
    facts = months.reshape(k, -1).T[:, np.argsort(m["order"])]     # rows month-major, policy's fact order
    monthly = monthly_scores(facts, np.tile(m["t"][r], 12), mrules)
    return np.bincount(np.tile(np.arange(n), 12), monthly, n) / 12


def _member_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    m = s.m
    for i, d in enumerate(range(first, stop)):
        grades = np.empty(len(m["q"]), dtype=np.intp)
        for blk in range(len(m["start"]) - 1):
            r = slice(m["start"][blk], m["start"][blk + 1])
            n = r.stop - r.start
            if n == 0:
                continue
            rng = _stream(root, _APPRAISAL, d, blk)
            # 打印象分 (the pull towards the branch's standing) follows from the truth;
            # 感情分 (affinity) and the appraisal noise are measurement, redrawn.
            z_affinity = rng.standard_normal(n)
            appraisal = appraise(m["true"][r], m["owner"][r], s.params[0], z_affinity, rng.standard_normal(n))
            mean = _monthly_means(s, root, d, blk, r) if s.members == "monthly" else m["monthly_mean"][r]
            grades[r] = member_grades(annual_scores(mean, np.arange(n), n, appraisal, m["rules"]), m["rules"])
        out["grade_hits"] += np.bincount(np.arange(len(grades)) * 5 + grades,
                                         minlength=len(grades) * 5).reshape(-1, 5)
        out["grades"][i] = np.bincount(grades, minlength=5)


def _run_batch(s: _Setup, root: np.random.SeedSequence, first: int, stop: int) -> dict:
    """Draws ``first`` … ``stop - 1``: integer tallies only, so batches add up exactly."""
    S, n, B = len(s.params), len(s.q), stop - first
    out = {"hits": np.zeros((S, n, 6), np.int64), "weak_hits": np.zeros((S, n), np.int64),
           "levels": np.zeros((S, B, 6), np.int64)}
    out.update({k: np.zeros((S, B), np.int64) for k in ("weak", "too_high", "too_low", "false_alarms",
                                                         "misses")})
    _branch_part(s, root, first, stop, out)
    if s.members:
        out["grade_hits"] = np.zeros((len(s.m["q"]), 5), np.int64)
        out["grades"] = np.zeros((B, 5), np.int64)
        _member_part(s, root, first, stop, out)
    return out


def _flat(d: dict, pre: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{pre}{k}.") if isinstance(v, dict) else {pre + k: v})
    return out


def _resolve_params(pop, params) -> GeneratorParams:
    """The population's generator parameters with measurement changes only (the truth is kept)."""
    base = pop.params
    if params is None:
        return base
    if isinstance(params, dict):
        try:
            new = base.with_values(params)
        except KeyError as exc:
            raise BranchsimError(f"params: unknown generator parameter {exc}") from None
        changed = list(params)
    elif isinstance(params, GeneratorParams):
        new, old, got = params, _flat(base.values), _flat(params.values)
        changed = sorted(k for k in old.keys() | got.keys() if old.get(k) != got.get(k))
    else:
        raise BranchsimError(f"params must be a dict of dotted generator paths or GeneratorParams, "
                             f"got {type(params).__name__}")
    bad = [k for k in changed if not any(k == a or (a.endswith(".") and k.startswith(a))
                                         for a in MEASUREMENT_PARAMS)]
    if bad:
        raise BranchsimError(f"params: {bad[:5]} describe the truth, which a measurement Monte Carlo holds "
                             f"fixed; allowed: {', '.join(MEASUREMENT_PARAMS)}*")
    return new


def _member_setup(pop, policy, q, t, mode) -> dict:
    mem = pop.members
    if mem is None or "true_quality" not in mem.columns or (mode == "appraisal" and pop.member_months is None):
        raise DataError(f"members={mode!r} needs a population generated with members (their true quality "
                        "and monthly records): generate(..., members=True)")
    mrules = compile_member_rules(policy)
    bidx = pd.Index(pop.branches["branch_id"]).get_indexer(mem["branch_id"])
    if (bidx < 0).any():
        raise DataError(f"members: rows {list(np.flatnonzero(bidx < 0)[:5])} belong to no branch")
    blk = bidx // BLOCK
    perm = np.argsort(blk, kind="stable")
    m = {"rules": mrules, "perm": perm, "q": mem["true_quality"].to_numpy(float)[perm],
         "qb": q[bidx][perm], "t": t[bidx][perm], "owner": bidx[perm],
         "start": np.searchsorted(blk[perm], np.arange(-(-len(q) // BLOCK) + 1))}
    offsets = _indicator_offsets(pop.seed, mrules.indicators, pop.params.get("measurement.indicator_spread"), 1)
    m["true"] = member_true_scores(m["q"], m["t"], mrules, offsets)
    if mode == "monthly":
        m["offsets"] = _indicator_offsets(pop.seed, mrules.indicators,
                                          pop.params.get("measurement.indicator_spread"), 1)
        m["order"] = np.argsort(mrules.indicators.kind, kind="stable")
    else:
        mm = pop.member_months
        missing = [f for f in mrules.indicators.facts if f not in mm.columns]
        if missing:
            raise DataError(f"member_months has no column for fact(s) {missing[:8]} that policy "
                            f"{policy.name!r} measures")
        idx = pd.Index(mem["member_id"]).get_indexer(mm["member_id"])
        monthly = monthly_scores(mm[list(mrules.indicators.facts)].to_numpy(float), t[bidx][idx], mrules)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(idx, monthly, len(mem)) / np.bincount(idx, minlength=len(mem))
        m["monthly_mean"] = mean[perm]
    return m


def _whole(x, what: str, low: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise BranchsimError(f"{what} must be a whole number >= {low}, got {x!r}")
    return int(x)


def measurement_mc(pop, policy: Policy | None = None, *, draws: int = 200, seed=0,
                   survey_sizes=None, params: dict | GeneratorParams | None = None,
                   members: bool | str = False, executor=None, progress: bool = True,
                   batch: int = 20) -> MonteCarlo:
    """Monte Carlo over measurement noise with the truth held fixed.

    Each draw measures every branch again from its true quality: indicator
    facts (including the veto facts) and survey answers, with the
    population's own indicator offsets (part of the truth). Branch type,
    size and true quality never change. The draw is scored with the
    policy's rules and compared with the star and weak designation the
    branch's true quality earns (``true_stars``, ``true_weak`` of
    :func:`branchsim.evaluate`).

    Parameters
    ----------
    pop : Population
        A generated population (it carries the truth: ``true_quality``, its
        seed and generator parameters).
    policy : Policy, optional
        Rules to score with (default: the baseline).
    draws : int
        Measurement draws.
    seed : int, SeedSequence or Generator
        Seed of the draws; the same seed gives identical results whatever
        ``batch`` or ``executor``.
    survey_sizes : list of int, optional
        Respondents per branch (``measurement.survey_size``, members and
        residents). The baseline size — the generator's, after ``params`` —
        is always run, added if missing.
    params : dict or GeneratorParams, optional
        Measurement parameters changed from the population's own, e.g.
        ``{"measurement.survey_shock": 0}``. Only ``measurement.*_noise``,
        ``survey_*`` and ``member_measurement.*`` may change: the truth is fixed.
    members : bool or {"appraisal", "monthly"}
        ``True`` (= ``"appraisal"``) redraws members' year-end appraisals
        only: the impression halo (打印象分, from the member's and the
        branch's true quality) stays, the affinity term (感情分) and the
        appraisal noise are redrawn, and the monthly records stay as measured
        in the population. ``"monthly"`` also redraws the twelve monthly
        records (each member's indicator deviations, month shocks and ~50
        facts a month); scoring them makes a draw roughly a hundred times
        slower than a branch-only draw (about 0.4 s per draw for the city's
        32,000 members on one core). Either gives per-member grade
        probabilities.
    executor : concurrent.futures.Executor, optional
        Runs batches of draws (a process pool, or ``client.get_executor()``
        of Dask); results equal the sequential run.
    progress : bool
        Show a progress bar over draws (notebook or terminal).
    batch : int
        Draws per task; changes memory and scheduling, never the numbers.

    Returns
    -------
    MonteCarlo
        ``star_probabilities`` (per branch), ``counts`` (per survey size and
        draw), ``count_summary()``, ``misclassification`` (per survey size:
        ``misclassified``, ``too_high`` and ``too_low`` as shares of
        branch-draws whose star differs from the true star;
        ``false_alarm_rate``, the share of draws in which a branch whose true
        score reaches the weak line is designated weak; ``miss_rate``, the
        share in which a truly weak branch is not), and with ``members``
        ``member_probabilities`` and ``grade_counts``.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=200, members=False)
    >>> mc = measurement_mc(pop, draws=20, seed=1, progress=False)
    >>> p = mc.star_probabilities.filter(regex="^p_.*star$")
    >>> bool(p.sum(axis=1).round(9).eq(1).all()), len(mc.counts)
    (True, 20)
    """
    if not getattr(pop, "has_truth", False) or getattr(pop, "params", None) is None or pop.seed is None:
        raise DataError("measurement_mc needs the truth: a population from branchsim.generate() (with "
                        "true_quality, its seed and generator parameters); loaded tables without truth "
                        "cannot be redrawn")
    policy = Policy.load() if policy is None else policy
    if not isinstance(policy, Policy):
        raise BranchsimError(f"policy must be a branchsim.Policy, got {type(policy).__name__}")
    draws, batch = _whole(draws, "draws", 1), _whole(batch, "batch", 1)
    if members is None or members is False:
        mode = None
    elif members is True or members in ("appraisal", "monthly"):
        mode = "monthly" if members == "monthly" else "appraisal"
    else:
        raise BranchsimError(f"members must be False, True, 'appraisal' or 'monthly', got {members!r}")
    root = as_seed_sequence(seed)
    prm = _resolve_params(pop, params)
    base_size = int(prm.get("measurement.survey_size"))
    asked = [] if survey_sizes is None else np.atleast_1d(np.asarray(survey_sizes, dtype=object)).tolist()
    sizes = sorted({base_size, *(_whole(s, "survey_sizes entries", 1) for s in asked)})
    rules = compile_branch_rules(policy)
    b = pop.branches
    t = type_codes(b["type"], rules.types, policy.name)
    q, size = b["true_quality"].to_numpy(float), b["n_members"].to_numpy(np.int64)
    truth = pop.params  # offsets and true components come from the population's own parameters
    offsets = _indicator_offsets(pop.seed, rules.indicators, truth.get("measurement.indicator_spread"), 0)
    true = model_truth(pop, policy).outcome(rules, t)
    true_score, true_stars, true_weak = true["true_score"], true["true_stars"], true["true_weak"]
    state = np.column_stack([b[f].to_numpy(float) if f in b.columns else np.ones(len(b))
                             for f in STATE_FACTS])
    setup = _Setup(q, t, size, offsets, state, rules,
                   tuple(prm.with_values({"measurement.survey_size": s}) for s in sizes),
                   true_stars, true_weak, mode, _member_setup(pop, policy, q, t, mode) if mode else None)

    spans = [(lo, min(draws, lo + batch)) for lo in range(0, draws, batch)]
    if executor is None:
        results = (_run_batch(setup, root, lo, hi) for lo, hi in spans)
    else:
        futures = [executor.submit(_run_batch, setup, root, lo, hi) for lo, hi in spans]
        results = (f.result() for f in futures)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=draws, desc="measurement MC", unit="draw")
    parts = []
    for r in results:
        parts.append(r)
        if bar is not None:
            bar.update(r["levels"].shape[1])
    if bar is not None:
        bar.close()
    return _assemble(parts, pop, policy, rules, setup, sizes, base_size, true_score, draws, root, mode)
