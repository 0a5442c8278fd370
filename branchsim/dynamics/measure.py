"""One year of measurement, in seed blocks, with the generator's measurement model.

Every random number of year ``y`` comes from the stream of ``(seed, year,
purpose, seed block)``: ``SeedSequence(entropy, spawn_key=(*key, YEARS, y))``
spawns per purpose and per block of :data:`~branchsim.model.BLOCK` branches
exactly as :func:`branchsim.model.generate` does, so the numbers never depend
on the processing chunk size or the number of threads.

What is measured is the scheme's (``policy.scheme``): its branch indicators,
survey answers and declared facts; its member indicators over ``periods``
records, added up by its ``accrual``; the member facts its vetoes read.

Truth, for branches and members alike, is the score a unit would get if every
fact were measured at its expectation given its true quality (the
measurement model without noise): for branches
:func:`branchsim.truth.truth_arrays` (its state facts — a vacant
secretary post, a major violation — and the vetoes they trigger included),
for members the noise-free record score
(:func:`branchsim.measurement.member_true_scores`).

A unit's state facts are drawn afresh each year from that year's quality
with the generator's rule (a problem is likelier the weaker the unit) and,
like the generator's, recorded without error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _month_kernel
from ..errors import DataError
from ..evaluate import member_profiles, member_veto_values
from ..measurement import (_indicator_offsets, _state_column, appraise, branch_block, declared_facts,
                           member_true_scores, monthly_facts, period_share, record_quality, state_facts)
from ..model import BLOCK, GeneratorParams, block_stream
from ..policy import Policy
from ..scheme import Scheme
from ..scoring import annual_facts, indicator_points, record_from_totals, record_scores, type_codes
from .evolve import evolve_branches, evolve_members, member_level
from .params import DynamicsParams

__all__ = ["Context", "year_seed", "year_chunk", "uniforms"]

#: Spawn-key component of the years (the generator's purposes are 0..6 on the root seed).
YEARS = 7
(_B_SHOCK, _M_SHOCK, _RANDOM, _B_MEASURE, _M_APPRAISAL, _M_MONTHS, _B_STATE, _B_DECLARED,
 _M_DECLARED) = range(9)
#: The j-th random intervention (j >= 1, in the policy's order) draws from purpose ``_MORE_RANDOM + j``;
#: the first from ``_RANDOM`` (the stream format 1's training coverage used).
_MORE_RANDOM = 16


def year_seed(root: np.random.SeedSequence, year: int) -> np.random.SeedSequence:
    """The seed of one simulated year; :func:`branchsim.model.block_stream` spawns from it."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, YEARS, int(year)))


def _fixed_columns(b: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """Branch columns that do not change over the years (for peer groups, ranks and places within groups)."""
    bs = scheme.branch
    moving = set(bs.facts) | set(bs.survey_columns) | {"true_quality"}
    return b[[c for c in b.columns if c not in moving and not str(c).startswith("prev_")]]


@dataclass(frozen=True)
class Context:
    """What stays fixed across the years of one simulation (arrays in branch order)."""

    policy: Policy
    scheme: Scheme
    params: GeneratorParams
    dyn: DynamicsParams
    root: np.random.SeedSequence        # the simulation's seed
    noise: bool
    type_idx: np.ndarray                # (n_b,) branch type codes
    size: np.ndarray                    # (n_b,) members per branch (the generator's size)
    b_off: np.ndarray                   # (k,) branch indicator difficulty offsets (the population's)
    state0: np.ndarray                  # (n_b, s) the population's state facts, 1 = in order
    columns: pd.DataFrame               # fixed branch columns (type, level, ...)
    # members, sorted by branch (stable); None for a branch-only simulation
    m_perm: np.ndarray | None = None    # sorted position -> row of pop.members
    m_owner: np.ndarray | None = None   # (n_m,) branch index of each sorted member
    m_bounds: np.ndarray | None = None  # (n_blocks + 1,) first sorted member of each seed block
    m_off: np.ndarray | None = None     # (k_m,) member indicator offsets
    m_order: np.ndarray | None = None   # member fact columns grouped by rule form (generator layout)
    m_profile: np.ndarray | None = None  # (n_m,) each sorted member's profile (type, or type and class)
    m_class: np.ndarray | None = None   # (n_m,) class codes (None without classes)
    m_facts0: dict | None = None        # the population's member facts (sorted order)

    @property
    def n_branches(self) -> int:
        return len(self.type_idx)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_branches // BLOCK)

    @property
    def members(self) -> bool:
        return self.m_perm is not None

    @classmethod
    def build(cls, pop, policy: Policy, root, dyn: DynamicsParams, noise: bool, members: bool) -> "Context":
        scheme = policy.scheme
        bs = scheme.branch
        params = pop.params
        b = pop.branches
        type_idx = type_codes(b["type"], bs.types, policy.name)
        size = b["n_members"].to_numpy(np.int64)
        state0 = np.column_stack([_state_column(b, bs, f) for f in bs.state_facts]) if bs.state_facts \
            else np.zeros((len(b), 0))
        kw = {}
        if members:
            ms = scheme.member
            m = pop.members
            owner = pd.Index(b["branch_id"]).get_indexer(m["branch_id"])
            if (owner < 0).any():
                raise DataError("members.branch_id: some members belong to no branch of the population")
            perm = np.argsort(owner, kind="stable")
            profile, klass = member_profiles(ms, type_idx[owner], m["category"])
            missing = [f for f in ms.facts if f not in m.columns]
            if missing:
                raise DataError(f"the members table has no column for member fact(s) {missing[:8]} that policy "
                                f"{policy.name!r} reads; generate it with this policy")
            kw = {"m_perm": perm, "m_owner": owner[perm],
                  "m_bounds": np.searchsorted(owner[perm], np.arange(0, -(-len(b) // BLOCK) + 1) * BLOCK),
                  "m_off": _indicator_offsets(pop.seed, ms.sheet, pop.params, 1),
                  "m_order": np.argsort(ms.sheet.kind[0], kind="stable"),
                  "m_profile": np.asarray(profile)[perm], "m_class": None if klass is None else klass[perm],
                  "m_facts0": {f: m[f].to_numpy(float)[perm] for f in ms.facts}}
        return cls(policy, scheme, params, dyn, root, noise, type_idx, size,
                   _indicator_offsets(pop.seed, bs.sheet, pop.params, 0), state0, _fixed_columns(b, scheme), **kw)

    def member_groups(self) -> tuple[np.ndarray | None, list | None]:
        """Peer groups of a relative member design (by branch type or member class), as evaluate sets them."""
        ms = self.scheme.member
        if ms.rating.design == "cuts":
            return None, None
        if ms.rating.peer_groups == "class" and self.m_class is not None:
            return self.m_class, list(ms.classes)
        if ms.rating.peer_groups == "type":
            return self.type_idx[self.m_owner], list(ms.types)
        return None, None


def _block_len(ctx: Context, blk: int) -> int:
    return min(ctx.n_branches, (blk + 1) * BLOCK) - blk * BLOCK


def uniforms(ctx: Context, year: int, j: int) -> np.ndarray:
    """One uniform per branch for the ``j``-th random intervention of a year (seed block by seed block)."""
    ys = year_seed(ctx.root, year)
    purpose = _RANDOM if j == 0 else _MORE_RANDOM + j
    return np.concatenate([block_stream(ys, purpose, blk).random(_block_len(ctx, blk))
                           for blk in range(ctx.n_blocks)])


def _appraisal(rng, true_score: np.ndarray, branch: np.ndarray, params) -> tuple[np.ndarray, np.ndarray | None]:
    """Year-end appraisal as the generator draws it (:func:`branchsim.measurement.appraise`), and its
    affinity draws (which the period records share when they carry affinity too).

    Without ``rng`` (no measurement noise) only the systematic impression pull remains.
    """
    if rng is None:
        return appraise(true_score, branch, params), None
    z_affinity = rng.standard_normal(len(true_score))
    return appraise(true_score, branch, params, z_affinity, rng.standard_normal(len(true_score))), z_affinity


def _records(ctx: Context, rng, q: np.ndarray, profile: np.ndarray, branch: np.ndarray,
             z_affinity: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """One seed block's period records → (the year's record score, {period fact: (lowest, sum)}).

    The records measure :func:`~branchsim.measurement.record_quality` (the
    true quality unless the generator gives the records impression bias).
    """
    f32 = np.float32
    ms = ctx.scheme.member
    sheet = ms.sheet
    mm = ctx.params.values["member_measurement"]
    n, k, periods = len(q), sheet.k, ms.periods
    seen = record_quality(q, branch, ctx.params, z_affinity)
    base = ctx.m_off.astype(f32)[ctx.m_order, None] + seen.astype(f32)[None, :] \
        + f32(mm["indicator_noise"]) * rng.standard_normal((k, n), dtype=f32)
    shock = f32(mm["month_noise"]) * rng.standard_normal((periods, n), dtype=f32)
    out = np.empty((k, periods, n), dtype=f32)
    monthly_facts(rng, base, shock, sheet, ctx.m_order, f32(ctx.params.get("measurement.proportion_noise")), out,
                  per_period=period_share(ms))
    out = out[np.argsort(ctx.m_order)]                   # generator layout -> the policy's fact order
    who = np.tile(np.arange(n), periods)                 # rows period by period, as a generated table's
    if ms.accrual == "mean" and np.isnan(ms.bonus_cap) and _month_kernel.supports(sheet):
        # evaluate()'s compiled path: the same totals as the NumPy one, bit for bit
        row_profile = profile[who]
        points = _month_kernel.row_totals([out[j].reshape(-1) for j in range(k)], sheet, np.arange(len(who)),
                                          row_profile)
        record = np.bincount(who, record_from_totals(points, row_profile, ms), n) / periods
    elif ms.accrual == "mean":
        total = np.zeros(n)
        for p in range(periods):                         # period by period: a small working set
            total += record_scores(indicator_points(out[:, p, :].T, profile, sheet), profile, ms)
        record = total / periods
    else:                                                # the year's facts, scored once
        year = annual_facts(out.reshape(k, periods * n).T, who, n, sheet.kind[0])
        record = record_scores(indicator_points(year, profile, sheet), profile, ms)
    read = {}
    for fact in set(ms.vetoes.fact) & set(sheet.facts):
        col = out[sheet.facts.index(fact)].astype(float)
        total = np.zeros(n)
        for p in range(periods):
            total += col[p]
        read[fact] = (col.min(axis=0), total)
    return record, read


def _member_facts(ctx: Context, rng, qm: np.ndarray) -> dict[str, np.ndarray]:
    """The member facts the scheme declares, drawn as the generator draws them (NaN: not measured)."""
    ms = ctx.scheme.member
    if not ms.fact_entries:
        return {}
    mq = ctx.params.values["member_quality"]
    drawn = declared_facts(rng, qm, ms, ctx.params, z=(qm - mq["loc"]) / mq["sd"])
    if not ctx.noise:                                    # only the members' state is part of the truth
        drawn = {f: v if ms.fact_entries[f].get("state") else np.full(len(qm), np.nan) for f, v in drawn.items()}
    return drawn


def year_chunk(ctx: Context, year: int, blocks: range, qb_prev: np.ndarray, qm_prev: np.ndarray | None,
               eff_b: np.ndarray | None, eff_m: np.ndarray | None) -> dict[str, np.ndarray]:
    """Evolve (when effects are given), then measure the branches and members of some seed blocks.

    ``qb_prev`` and ``qm_prev`` are whole-population arrays (members in
    sorted order); the chunk reads its own slices. Without effects (year 0)
    the qualities and states are the population's. Returns the chunk's
    branch arrays (``q``, ``state``, and with noise ``facts``, ``survey``,
    ``declared``) and member arrays (``qm``, ``m_true``, ``record``,
    ``appraisal``, ``veto_values``, ``m_facts``).
    """
    bs = ctx.scheme.branch
    ys = year_seed(ctx.root, year)
    bq = ctx.params.values["branch_quality"]
    lo, hi = blocks.start * BLOCK, min(blocks.stop * BLOCK, ctx.n_branches)
    lens = [_block_len(ctx, blk) for blk in blocks]
    edges = np.cumsum([0] + lens)
    spans = list(zip(blocks, edges[:-1], edges[1:]))
    t = ctx.type_idx[lo:hi]
    q_prev = qb_prev[lo:hi]
    if eff_b is None:                                    # year 0: the population's own truth
        q, state = q_prev, ctx.state0[lo:hi]
    else:
        shock = np.concatenate([block_stream(ys, _B_SHOCK, blk).standard_normal(n) for blk, n in zip(blocks, lens)])
        q = evolve_branches(q_prev, shock, eff_b[lo:hi], bq, ctx.dyn.get("branch.persistence"),
                            ctx.dyn.get("branch.shock_sd"))
        n_state = len(bs.state_facts)
        state = np.vstack([state_facts(block_stream(ys, _B_STATE, blk), q[a:b], ctx.params, n_state)
                           for blk, a, b in spans])
    out = {"q": q, "state": state}
    if ctx.noise:
        parts = [branch_block(block_stream(ys, _B_MEASURE, blk), q[a:b], t[a:b], ctx.size[lo + a:lo + b],
                              bs, ctx.b_off, ctx.params, state[a:b]) for blk, a, b in spans]
        out["facts"] = np.vstack([f for f, _ in parts])
        out["survey"] = np.vstack([s for _, s in parts]).astype(float)
        decl = [declared_facts(block_stream(ys, _B_DECLARED, blk), q[a:b], bs, ctx.params, state[a:b])
                for blk, a, b in spans] if bs.fact_entries else []
        out["declared"] = {f: np.concatenate([d[f] for d in decl]) for f in bs.fact_entries}
    if qm_prev is None:
        return out
    mq = ctx.params.values["member_quality"]
    bloc = bq["loc"]
    ms_, me = ctx.m_bounds[blocks.start], ctx.m_bounds[blocks.stop]
    owner = ctx.m_owner[ms_:me] - lo
    profile = ctx.m_profile[ms_:me]
    if eff_m is None:
        qm = qm_prev[ms_:me]
    else:
        shock = np.concatenate([block_stream(ys, _M_SHOCK, blk).standard_normal(
            ctx.m_bounds[blk + 1] - ctx.m_bounds[blk]) for blk in blocks])
        qm = evolve_members(qm_prev[ms_:me], member_level(q_prev[owner], mq, bloc), member_level(q[owner], mq, bloc),
                            shock, eff_m[ms_:me], ctx.dyn.get("member.persistence"),
                            ctx.dyn.get("member.shock_sd"), mq["sd"])
    m_true = member_true_scores(qm, profile, ctx.scheme.member, ctx.m_off)
    pieces = {"record": [], "appraisal": [], "veto_values": [], "m_facts": []}
    for blk in blocks:
        a, b = ctx.m_bounds[blk] - ms_, ctx.m_bounds[blk + 1] - ms_
        if eff_m is None:
            facts = {f: v[ms_ + a:ms_ + b] for f, v in ctx.m_facts0.items()}
        else:
            facts = _member_facts(ctx, block_stream(ys, _M_DECLARED, blk), qm[a:b])
        if ctx.noise:   # the appraisal's own stream first: its affinity draws may bias the records too
            appraisal, z_affinity = _appraisal(block_stream(ys, _M_APPRAISAL, blk), m_true[a:b], owner[a:b],
                                               ctx.params)
            record, read = _records(ctx, block_stream(ys, _M_MONTHS, blk), qm[a:b], profile[a:b], owner[a:b],
                                    z_affinity)
        else:
            record, read = m_true[a:b], {}
            appraisal, _ = _appraisal(None, m_true[a:b], owner[a:b], ctx.params)
        for key, v in (("record", record), ("appraisal", appraisal),
                       ("veto_values", member_veto_values(ctx.scheme.member, facts, read, b - a)), ("m_facts", facts)):
            pieces[key].append(v)
    out.update(qm=qm, m_true=m_true, record=np.concatenate(pieces["record"]),
               appraisal=np.concatenate(pieces["appraisal"]), veto_values=np.vstack(pieces["veto_values"]),
               m_facts={f: np.concatenate([p[f] for p in pieces["m_facts"]]) for f in ctx.scheme.member.facts})
    return out
