"""One year of measurement and scoring, in seed blocks, with the generator's measurement model.

Every random number of year ``y`` comes from the stream of ``(seed, year,
purpose, seed block)``: ``SeedSequence(entropy, spawn_key=(*key, YEARS, y))``
spawns per purpose and per block of :data:`~branchsim.model.BLOCK` branches
exactly as :func:`branchsim.model.generate` does, so the numbers never depend
on the processing chunk size or the number of threads.

Truth, for branches and members alike, is the score a unit would get if every
fact were measured at its expectation given its true quality (the
measurement model without noise): for branches
:func:`branchsim.model.truth_arrays` (its state facts — a vacant secretary
post, a major violation — and the vetoes they trigger included), for members
the noise-free monthly score (:func:`member_true_scores`).

A branch's state facts are drawn afresh each year from that year's quality
with the generator's rule (a vacancy is likelier the weaker the branch) and,
like the generator's, recorded without error.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pandas as pd

from ..errors import DataError
from ..measurement import appraise, member_true_scores
from ..model import (BLOCK, STATE_FACTS, GeneratorParams, state_facts, _branch_block,
                     _indicator_offsets, _monthly_facts, block_stream, truth, truth_arrays)
from ..policy import Policy
from ..scoring import (BranchRules, MemberRules, annual_scores, branch_outcome, compile_branch_rules,
                       compile_member_rules, monthly_scores, type_codes)
from .evolve import evolve_branches, evolve_members, member_level
from .params import DynamicsParams, Levers

__all__ = ["Context", "year_seed", "member_true_scores", "observed_year", "year_chunk", "training"]

#: Spawn-key component of the years (the generator's purposes are 0..4 on the root seed).
YEARS = 7
_B_SHOCK, _M_SHOCK, _TRAINING, _B_MEASURE, _M_APPRAISAL, _M_MONTHS, _B_STATE = range(7)


def year_seed(root: np.random.SeedSequence, year: int) -> np.random.SeedSequence:
    """The seed of one simulated year; :func:`branchsim.model.block_stream` spawns from it."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, YEARS, int(year)))


@dataclass(frozen=True)
class Context:
    """What stays fixed across the years of one simulation (arrays in branch order)."""

    policy: Policy
    brules: BranchRules
    mrules: MemberRules
    params: GeneratorParams
    dyn: DynamicsParams
    levers: Levers
    root: np.random.SeedSequence        # the simulation's seed
    pop_seed: np.random.SeedSequence    # the population's (indicator difficulty offsets)
    noise: bool
    type_idx: np.ndarray                # (n_b,) branch type codes
    size: np.ndarray                    # (n_b,) members per branch (the generator's size)
    b_off: np.ndarray
    state0: np.ndarray                  # (n_b, len(STATE_FACTS)) the population's state facts
    # members, sorted by branch (stable); None for a branch-only simulation
    m_perm: np.ndarray | None = None    # sorted position -> row of pop.members
    m_owner: np.ndarray | None = None   # (n_m,) branch index of each sorted member
    m_bounds: np.ndarray | None = None  # (n_blocks + 1,) first sorted member of each seed block
    m_off: np.ndarray | None = None
    m_order: np.ndarray | None = None   # member fact columns grouped by rule form (generator layout)

    @property
    def n_branches(self) -> int:
        return len(self.type_idx)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_branches // BLOCK)

    @classmethod
    def build(cls, pop, policy: Policy, root, dyn: DynamicsParams, noise: bool, members: bool) -> "Context":
        brules, mrules = compile_branch_rules(policy), compile_member_rules(policy)
        params = pop.params
        m = params.values["measurement"]
        b = pop.branches
        type_idx = type_codes(b["type"], brules.types, policy.name)
        size = b["n_members"].to_numpy(np.int64)
        kw = {}
        if members:
            owner = pd.Index(b["branch_id"]).get_indexer(pop.members["branch_id"])
            if (owner < 0).any():
                raise DataError("members.branch_id: some members belong to no branch of the population")
            perm = np.argsort(owner, kind="stable")
            kw = {"m_perm": perm, "m_owner": owner[perm],
                  "m_bounds": np.searchsorted(owner[perm], np.arange(0, -(-len(b) // BLOCK) + 1) * BLOCK),
                  "m_off": _indicator_offsets(pop.seed, mrules.indicators, m["indicator_spread"],
                                              1),
                  "m_order": np.argsort(mrules.indicators.kind, kind="stable")}
        state0 = np.column_stack([b[f].to_numpy(float) if f in b.columns else np.ones(len(b))
                                  for f in STATE_FACTS])
        return cls(policy, brules, mrules, params, dyn, Levers.from_policy(policy), root, pop.seed, noise,
                   type_idx, size,
                   _indicator_offsets(pop.seed, brules.indicators, m["indicator_spread"], 0),
                   state0, **kw)

    # -- truth ----------------------------------------------------------------------
    def branch_truth(self, q: np.ndarray, type_idx: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
        """``true_score``, ``true_stars``, ``true_weak`` (true vetoes included)."""
        return truth_arrays(q, type_idx, state, self.b_off, self.params, self.brules).outcome(self.brules, type_idx)

    def member_true_scores(self, q: np.ndarray, type_idx: np.ndarray) -> np.ndarray:
        return member_true_scores(q, type_idx, self.mrules, self.m_off)


def _appraisal(rng, true_score: np.ndarray, branch: np.ndarray, params) -> np.ndarray:
    """Year-end appraisal as the generator draws it (:func:`branchsim.measurement.appraise`).

    Without ``rng`` (no measurement noise) only the systematic impression pull remains.
    """
    if rng is None:
        return appraise(true_score, branch, params)
    z_affinity = rng.standard_normal(len(true_score))
    return appraise(true_score, branch, params, z_affinity, rng.standard_normal(len(true_score)))


def _member_block(ctx: Context, ys, blk: int, q: np.ndarray, branch: np.ndarray, type_idx: np.ndarray,
                  true_score: np.ndarray):
    """Twelve monthly records and the appraisal of one seed block's members → (monthly mean, appraisal)."""
    f32 = np.float32
    mm = ctx.params.values["member_measurement"]
    ind = ctx.mrules.indicators
    n, k = len(q), len(ind.ids)
    rng = block_stream(ys, _M_MONTHS, blk)
    base = ctx.m_off.astype(f32)[ctx.m_order, None] + q.astype(f32)[None, :] \
        + f32(mm["indicator_noise"]) * rng.standard_normal((k, n), dtype=f32)
    shock = f32(mm["month_noise"]) * rng.standard_normal((12, n), dtype=f32)
    out = np.empty((k, 12, n), dtype=f32)
    _monthly_facts(rng, base, shock, ind, ctx.m_order, f32(ctx.params.get("measurement.proportion_noise")), out)
    back = np.argsort(ctx.m_order)                       # generator layout -> the policy's fact order
    total = np.zeros(n)
    for month in range(12):                              # month by month: a small working set
        total += monthly_scores(out[back, month, :].T, type_idx, ctx.mrules)
    return total / 12, _appraisal(block_stream(ys, _M_APPRAISAL, blk), true_score, branch, ctx.params)


def _state_facts(rng, q: np.ndarray, params: GeneratorParams) -> np.ndarray:
    """State facts ``(n, len(STATE_FACTS))``, 1 = in order, drawn as the generator draws them."""
    return state_facts(rng, q, params)


def training(ctx: Context, year: int) -> np.ndarray:
    """Branches whose secretary is trained after this year's evaluation (a coverage share, drawn)."""
    cov = ctx.levers.training_coverage
    if cov <= 0:
        return np.zeros(ctx.n_branches, dtype=bool)
    if cov >= 1:
        return np.ones(ctx.n_branches, dtype=bool)
    ys = year_seed(ctx.root, year)
    u = np.concatenate([block_stream(ys, _TRAINING, blk).random(_block_len(ctx, blk))
                        for blk in range(ctx.n_blocks)])
    return u < cov


def _block_len(ctx: Context, blk: int) -> int:
    return min(ctx.n_branches, (blk + 1) * BLOCK) - blk * BLOCK


def year_chunk(ctx: Context, year: int, blocks: range, qb_prev: np.ndarray, qm_prev: np.ndarray | None,
               eff_b: np.ndarray | None, eff_m: np.ndarray | None) -> dict[str, np.ndarray]:
    """Evolve (when effects are given), measure and score the branches and members of some seed blocks.

    ``qb_prev`` and ``qm_prev`` are whole-population arrays (members in
    sorted order); the chunk reads its own slices. Returns the chunk's
    branch arrays (``q``, ``true_score``, ``true_stars``, ``true_weak``,
    ``score``, ``stars``, ``weak``) and member arrays (``qm``, ``m_true``,
    ``monthly_mean``, ``appraisal``).
    """
    ys = year_seed(ctx.root, year)
    bq = ctx.params.values["branch_quality"]
    lo, hi = blocks.start * BLOCK, min(blocks.stop * BLOCK, ctx.n_branches)
    lens = [_block_len(ctx, blk) for blk in blocks]
    edges = np.cumsum([0] + lens)
    t = ctx.type_idx[lo:hi]
    q_prev = qb_prev[lo:hi]
    if eff_b is None:                                    # year 0: the population's own truth
        q, state = q_prev, ctx.state0[lo:hi]
    else:
        shock = np.concatenate([block_stream(ys, _B_SHOCK, blk).standard_normal(n) for blk, n in zip(blocks, lens)])
        q = evolve_branches(q_prev, shock, eff_b[lo:hi], bq, ctx.dyn.get("branch.persistence"),
                            ctx.dyn.get("branch.shock_sd"))
        state = np.vstack([_state_facts(block_stream(ys, _B_STATE, blk), q[a:b], ctx.params)
                           for blk, a, b in zip(blocks, edges[:-1], edges[1:])])
    out = {"q": q, **ctx.branch_truth(q, t, state)}
    rules = ctx.brules
    if ctx.noise:
        parts = [_branch_block(block_stream(ys, _B_MEASURE, blk), q[a:b], t[a:b], ctx.size[lo + a:lo + b],
                               rules, ctx.b_off, ctx.params, state[a:b])
                 for blk, a, b in zip(blocks, edges[:-1], edges[1:])]
        res = branch_outcome(np.vstack([f for f, _ in parts]), t, np.vstack([s for _, s in parts]), rules)
        out.update(score=res["score"], stars=res["stars"], weak=res["weak"])
    else:                                                # measured exactly: the truth, vetoes included
        out.update(score=out["true_score"], stars=out["true_stars"], weak=out["true_weak"])
    if qm_prev is None:
        return out
    mq = ctx.params.values["member_quality"]
    bloc = bq["loc"]
    ms, me = ctx.m_bounds[blocks.start], ctx.m_bounds[blocks.stop]
    owner = ctx.m_owner[ms:me] - lo
    if eff_m is None:
        qm = qm_prev[ms:me]
    else:
        shock = np.concatenate([block_stream(ys, _M_SHOCK, blk).standard_normal(
            ctx.m_bounds[blk + 1] - ctx.m_bounds[blk]) for blk in blocks])
        qm = evolve_members(qm_prev[ms:me], member_level(q_prev[owner], mq, bloc), member_level(q[owner], mq, bloc),
                            shock, eff_m[ms:me], ctx.dyn.get("member.persistence"),
                            ctx.dyn.get("member.shock_sd"), mq["sd"])
    mt = t[owner]
    m_true = ctx.member_true_scores(qm, mt)
    if ctx.noise:
        means, appraisals = [], []
        for blk in blocks:
            a, b = ctx.m_bounds[blk] - ms, ctx.m_bounds[blk + 1] - ms
            mean, appr = _member_block(ctx, ys, blk, qm[a:b], owner[a:b], mt[a:b], m_true[a:b])
            means.append(mean)
            appraisals.append(appr)
        monthly_mean, appraisal = np.concatenate(means), np.concatenate(appraisals)
    else:
        monthly_mean = m_true
        appraisal = _appraisal(None, m_true, owner, ctx.params)
    out.update(qm=qm, m_true=m_true, monthly_mean=monthly_mean, appraisal=appraisal)
    return out


def observed_year(pop, policy: Policy, brules: BranchRules, mrules: MemberRules | None) -> dict:
    """Score a population's own measurements (its year as generated or loaded).

    The arithmetic of :func:`branchsim.evaluate` on the same columns; truth
    (``true_score``, ``true_stars``, ``true_weak``, member ``m_true``) when the
    population was generated.
    Members come back in the population's row order.
    """
    b = pop.branches
    missing = [f for f in brules.indicators.facts if f not in b.columns]
    if mrules is not None:
        missing += [f for f in mrules.indicators.facts if f not in pop.member_months.columns]
    if missing:
        raise DataError(f"the population has no column for fact(s) {missing[:8]} that policy "
                        f"{policy.name!r} measures; generate or load it with this policy's indicators")
    t = type_codes(b["type"], brules.types, policy.name)
    survey = b[["survey_satisfied", "survey_basic", "survey_dissatisfied"]].to_numpy(float)
    res = branch_outcome(b[list(brules.indicators.facts)].to_numpy(float), t, survey, brules)
    out = {"score": res["score"], "stars": res["stars"], "weak": res["weak"]}
    tr = truth(pop, policy)
    if tr is not None:
        out["q"] = b["true_quality"].to_numpy(float)
        out.update(tr.outcome(brules, t))
    if mrules is None:
        return out
    m, mm = pop.members, pop.member_months
    owner = pd.Index(b["branch_id"]).get_indexer(m["branch_id"])
    idx = pd.Index(m["member_id"]).get_indexer(mm["member_id"])
    monthly = monthly_scores(mm[list(mrules.indicators.facts)].to_numpy(float), t[owner][idx], mrules)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["monthly_mean"] = np.bincount(idx, monthly, len(m)) / np.bincount(idx, minlength=len(m))
    out["appraisal"] = m["appraisal"].to_numpy(float)
    if tr is not None and "true_quality" in m.columns:
        prm = pop.params.values["measurement"]
        off = _indicator_offsets(pop.seed, mrules.indicators, prm["indicator_spread"], 1)
        out["qm"] = m["true_quality"].to_numpy(float)
        out["m_true"] = member_true_scores(out["qm"], t[owner], mrules, off)
    return out


def annual(monthly_mean: np.ndarray, appraisal: np.ndarray, rules: MemberRules) -> np.ndarray:
    """Annual scores from each member's monthly mean and appraisal (the scoring module's arithmetic)."""
    n = len(monthly_mean)
    return annual_scores(monthly_mean, np.arange(n), n, appraisal, rules)
