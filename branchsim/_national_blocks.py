"""One seed block of a national run: generated, measured and rated, outcomes only.

Every rule is the scheme's (``policy.scheme``). What a unit's outcome
depends on beyond its own facts — its place among all units (a ``rank``
indicator, a ``last_place`` criterion) or every unit's score (a relative
design: quotas, clustering) — comes from a :class:`Plan` computed first over
the whole population (:func:`plan`, a pass over the branches only: no
member is drawn), so a block is rated exactly as :func:`branchsim.evaluate`
rates the whole population:

* ``rank``: a unit's place is the number of units of its group with a better
  fact; places beyond the listed ones earn the same points, so the plan
  keeps only each group's best ``m - 1`` facts;
* ``last_place``: the plan keeps each group's lowest score;
* relative designs: the plan rates all scores once and keeps the realised
  cut points, which each block then applies as fixed cuts.

Groups (``within``, ``peer_groups``) may be ``type`` or, with a structure,
``level``: the only branch columns a generated national population has.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from . import rating as rt
from .errors import BranchsimError
from .evaluate import BranchInputs, branch_outcome, member_outcome, member_veto_values
from .measurement import _SUB, _scales, member_draws, monthly_facts, period_share
from .truth import truth_arrays
from .model import BLOCK
from .scheme import RULE_CODES, Scheme
from .scoring import (annual_facts, branch_components, indicator_points, record_from_totals, record_scores,
                      required_level, scores_from_components)
from .streams import _MEMBER, _MONTHS, block_stream, uniforms_f32

__all__ = ["Plan", "check_scheme", "plan", "score_block", "kernel_allowed"]

_COLUMNS = ("type", "level")
_NO_COLUMNS = pd.DataFrame()
_FLAG = "__last_place_{}"


def _rank_columns(scheme: Scheme) -> np.ndarray:
    return np.flatnonzero((scheme.branch.sheet.kind == RULE_CODES["rank"]).any(axis=0))


def _last_place(scheme: Scheme) -> list:
    return [c for d in scheme.branch.designations for c in d.criteria if c.kind == "last_place"]


def check_scheme(scheme: Scheme) -> None:
    """Refuse what a chunked run cannot rate, with one line naming it."""
    bs, ms = scheme.branch, scheme.member
    bad = []
    columns = _COLUMNS if scheme.structure is not None else ("type",)
    for j in _rank_columns(scheme):
        if bs.sheet.within[j] not in (None, *columns):
            bad.append(f"indicator {bs.sheet.ids[j]!r} ranks within {bs.sheet.within[j]!r}")
    for c in _last_place(scheme):
        if c.within not in (None, *columns):
            bad.append(f"criterion {c.id!r} takes the last place within {c.within!r}")
    if bs.rating.relative and bs.rating.peer_groups not in (None, "type"):
        bad.append(f"branch.rating: design {bs.rating.design!r} within peer groups {bs.rating.peer_groups!r}")
    if ms is not None and ms.rating.relative:
        bad.append(f"member.rating: design {ms.rating.design!r} needs every member's score first")
    if bad:
        raise BranchsimError(f"national_run: policy {scheme.name!r} cannot be run chunk by chunk: "
                             + "; ".join(bad) + f" (a national population has the branch columns "
                                                f"{', '.join(columns)} only, and no second pass over members)")


@dataclasses.dataclass
class Plan:
    """What every block needs from the whole population (plain arrays: picklable for process pools)."""

    ranks: dict = dataclasses.field(default_factory=dict)     # j -> (measured, true): best m-1 keys per group
    last: dict = dataclasses.field(default_factory=dict)      # criterion id -> (measured, true) lowest score
    cuts: tuple | None = None                                 # (measured, true) cut points per type (T, L-1)


def _group_codes(column, t, level) -> np.ndarray:
    """Group code of each unit: its type, its organisation level, or 0 (``all``)."""
    if column is None:
        return np.zeros(len(t), dtype=np.intp)
    return np.asarray(t if column == "type" else level, dtype=np.intp)


def _n_groups(column, scheme: Scheme) -> int:
    if column is None:
        return 1
    return len(scheme.branch.types) if column == "type" else len(scheme.structure.ids)


def _raw(gen, blk: int) -> dict:
    """A block's branches: structure, measured facts and the truth (no ranks, no rating yet)."""
    struct = gen.structure(blk)
    (t, size, level, q, facts, survey, declared), _ = gen.measure(blk, struct, None)
    tr = truth_arrays(q, t, struct[4], gen.b_off, gen.params, gen.scheme,
                      rank_groups={w: _group_codes(w, t, level) for w in _COLUMNS})
    return {"t": t, "size": size, "level": level, "q": q, "facts": facts, "survey": survey.astype(float),
            "declared": declared, "truth": tr}


def _keys(fact: np.ndarray, high_first: bool) -> np.ndarray:
    return -np.asarray(fact, float) if high_first else np.asarray(fact, float)


def _with_places(pts: np.ndarray, facts: np.ndarray, raw: dict, scheme: Scheme, plan: Plan, which: int):
    """Points with every rank indicator's place counted among all units (zeroing re-applied to them)."""
    sheet, t = scheme.branch.sheet, raw["t"]
    pts = pts.copy()
    cols = _rank_columns(scheme)
    for j in cols:
        codes = _group_codes(sheet.within[j], t, raw["level"])
        best = plan.ranks[int(j)][which]
        key = _keys(facts[:, j], sheet.high_first[j])
        place = np.empty(len(key), dtype=np.intp)
        for g in np.unique(codes):                     # competition ranking: the units with a better fact
            rows = codes == g
            place[rows] = np.searchsorted(best[g], key[rows], side="left")
        m = sheet.places.shape[2]
        got = sheet.places[t, j, np.minimum(place, m - 1)]
        pts[:, j] = np.where(sheet.kind[t, j] == RULE_CODES["rank"], got, pts[:, j])
    for z in np.flatnonzero((sheet.kind == RULE_CODES["zeroing"]).any(axis=0)):
        if sheet.target[z] in cols:
            fired = (sheet.kind[t, z] == RULE_CODES["zeroing"]) & (facts[:, z] >= sheet.at_least[t, z])
            pts[:, sheet.target[z]] = np.where(fired, 0.0, pts[:, sheet.target[z]])
    return pts


def _scores(raw: dict, scheme: Scheme, plan: Plan) -> tuple[dict, dict, dict]:
    """Measured and true scores (with the whole population's ranks) and the facts each reads."""
    bs, t = scheme.branch, raw["t"]
    codes = {w: _group_codes(w, t, raw["level"]) for w in _COLUMNS}
    tr = raw["truth"]
    true_facts = np.column_stack([tr.facts[f] for f in bs.sheet.facts]) if bs.sheet.k else np.zeros((len(t), 0))
    out = []
    for which, (facts, pts, survey) in enumerate(((raw["facts"], None, raw["survey"]),
                                                  (true_facts, tr.points, tr.survey))):
        if pts is None:
            pts = indicator_points(facts, t, bs.sheet, rank_groups=codes)
        if len(_rank_columns(scheme)):
            pts = _with_places(pts, facts, raw, scheme, plan, which)
        comp = tr.components if which == 1 and not len(_rank_columns(scheme)) else \
            branch_components(pts, t, survey, bs)
        out.append(scores_from_components(pts, comp, t, bs))
    values = {f: raw["facts"][:, j] for j, f in enumerate(bs.sheet.facts)}
    values.update(raw["declared"])
    return out[0], out[1], (values, dict(tr.facts), true_facts)


def plan(gen, run) -> Plan:
    """The whole population's ranks, lowest scores and realised cut points (``run``: a map over blocks)."""
    scheme = gen.scheme
    bs = scheme.branch
    p = Plan()
    ranks = _rank_columns(scheme)
    if len(ranks):
        keep = bs.sheet.places.shape[2] - 1            # places beyond these all earn the last column
        best = {int(j): [[np.zeros(0)] * _n_groups(bs.sheet.within[j], scheme)] * 2 for j in ranks}
        for raw in run(lambda b: _raw(gen, b), range(gen.n_blocks)):
            for j in ranks:
                codes = _group_codes(bs.sheet.within[j], raw["t"], raw["level"])
                for which, fact in enumerate((raw["facts"][:, j], raw["truth"].facts[bs.sheet.facts[j]])):
                    key = _keys(fact, bs.sheet.high_first[j])
                    best[int(j)][which] = [np.sort(np.concatenate([old, key[codes == g]]))[:keep]
                                           for g, old in enumerate(best[int(j)][which])]
        p.ranks = {j: tuple(v) for j, v in best.items()}
    last = _last_place(scheme)
    if not last and not bs.rating.relative:
        return p
    parts = list(run(lambda b: _block_scores(gen, b, p), range(gen.n_blocks)))
    t = np.concatenate([x[0] for x in parts])
    level = np.concatenate([x[1] for x in parts])
    for c in last:
        codes = _group_codes(c.within, t, level)
        lows = []
        for which in (2, 3):
            low = np.full(_n_groups(c.within, scheme), np.inf)
            np.minimum.at(low, codes, np.concatenate([x[which] for x in parts]))
            lows.append(low)
        p.last[c.id] = tuple(lows)
    if bs.rating.relative:
        p.cuts = tuple(_realised_cuts(np.concatenate([x[which] for x in parts]), t, bs) for which in (2, 3))
    return p


def _block_scores(gen, blk: int, p: Plan):
    raw = _raw(gen, blk)
    measured, true, _ = _scores(raw, gen.scheme, p)
    return raw["t"], raw["level"], measured["score"], true["score"]


def _realised_cuts(score: np.ndarray, t: np.ndarray, bs) -> np.ndarray:
    """Cut points per type ``(T, L-1)`` a relative design realises on every unit's score."""
    r = bs.rating
    by_type = r.peer_groups == "type"
    names = list(bs.types) if by_type else ["all"]
    _, frame = rt.rate(score, r, profile=t, groups=t if by_type else np.zeros(len(t), dtype=np.intp),
                       group_names=names)
    above = list(r.levels.worst_first[1:])
    table = frame.pivot(index="group", columns="level", values="cut").reindex(index=names, columns=above)
    rows = table.to_numpy(float) if by_type else np.repeat(table.to_numpy(float), len(bs.types), axis=0)
    return np.where(np.isnan(rows), np.inf, rows)


def _rated(scheme: Scheme, p: Plan, which: int) -> Scheme:
    """The scheme with the plan's realised cuts (a fixed-cuts design) and last places read from flag facts."""
    bs = scheme.branch
    rating = bs.rating
    if p.cuts is not None:
        rating = dataclasses.replace(rating, design="cuts", cuts=p.cuts[which])
    designations = tuple(dataclasses.replace(d, criteria=tuple(
        dataclasses.replace(c, kind="fact_at_least", value=1.0, fact=_FLAG.format(c.id))
        if c.kind == "last_place" else c for c in d.criteria)) for d in bs.designations)
    return dataclasses.replace(scheme, branch=dataclasses.replace(bs, rating=rating, designations=designations))


def _outcome(scheme: Scheme, p: Plan, which: int, raw: dict, scores: dict, values: dict, facts, survey) -> dict:
    t = raw["t"]
    values = dict(values)
    for c in _last_place(scheme):
        codes = _group_codes(c.within, t, raw["level"])
        values[_FLAG.format(c.id)] = (scores["score"] <= p.last[c.id][which][codes]).astype(float)
    # No branch column is read: ranks and last places come from the plan, a relative design's cuts are fixed.
    inp = BranchInputs(facts, values, t, survey, {}, _NO_COLUMNS)
    return branch_outcome(inp, _rated(scheme, p, which), scores=scores)


def kernel_allowed(scheme: Scheme) -> bool:
    """Whether the fused compiled period path (:func:`branchsim.sensitivity._kernels.month_points`) applies.

    It draws and scores 12 periods of binary, deduction, proportion and bonus
    facts (the same rule parameters for every profile), averaged (``accrual:
    mean``), without a record bonus cap, and keeps no fact: so no member veto
    may read a period fact.
    """
    ms = scheme.member
    if ms is None or ms.periods != 12 or ms.accrual != "mean" or not np.isnan(ms.bonus_cap):
        return False
    sheet = ms.sheet
    same = all((a == a[:1]).all() for a in (sheet.kind, sheet.required, sheet.per_shortfall, sheet.per_unit,
                                             sheet.at_least))
    binary = sheet.kind[0] == RULE_CODES["binary"]
    at_least_ok = ((sheet.at_least[:, binary] > 0) & (sheet.at_least[:, binary] <= 1)).all()
    return bool(same and np.isin(sheet.kind, (0, 1, 2, 3)).all() and at_least_ok
                and not set(ms.vetoes.fact) & set(sheet.facts))


def _kernel_arrays(gen) -> tuple:
    """The member sheet's arrays in the generator's column order, built once per generator."""
    cached = getattr(gen, "_kernel_arrays", None)
    if cached is None:
        f32 = np.float32
        sheet, order = gen.scheme.member.sheet, gen.order
        sc = _scales(sheet)
        cached = (sheet.kind[0][order].astype(np.int8), sc["required"][order].astype(f32),
                  sc["bonus"][order].astype(f32), f32(gen.params.get("measurement.proportion_noise")),
                  np.ascontiguousarray(sheet.points[:, order]), sheet.per_shortfall[0][order],
                  sheet.required[0][order], sheet.per_unit[0][order])
        gen._kernel_arrays = cached
    return cached


def _records_compiled(gen, rng_mm, base, shock, profile) -> np.ndarray:
    """Record scores (mean of 12 periods) straight from attainment and uniforms (no fact stored)."""
    from .sensitivity import _kernels
    ms = gen.scheme.member
    f32 = np.float32
    k, m = base.shape
    kind, req32, scale32, prop, points, per_shortfall, required, per_unit = _kernel_arrays(gen)
    total = np.empty((12, m))
    piece = min(_SUB, m)
    buf, out = np.empty(k * 12 * piece, dtype=f32), np.empty(12 * piece)   # one piece's uniforms and sums, reused
    for lo in range(0, m, _SUB):
        hi = min(lo + _SUB, m)
        u = uniforms_f32(rng_mm, (k, 12, hi - lo), out=buf[:k * 12 * (hi - lo)])   # = rng_mm.random(..., float32)
        o = out[:12 * (hi - lo)].reshape(12, hi - lo)
        topm = np.ascontiguousarray(points[profile[lo:hi]].T)                   # (k, members), one gather
        _kernels.month_points(np.ascontiguousarray(base[:, lo:hi]), np.ascontiguousarray(shock[:, lo:hi]), u,
                              kind, req32, scale32, prop, topm, per_shortfall, required, per_unit, o)
        total[:, lo:hi] = o
    monthly = record_from_totals(total, profile[None, :], ms)            # (12, m)
    # Summed period by period (each member's 0 + p0 + p1 + ... in period order, as a bincount over the
    # periods would): elementwise additions, so no summation order depends on the machine.
    return monthly.sum(axis=0) / 12


def _records_numpy(gen, rng_mm, base, shock, profile) -> tuple[np.ndarray, dict]:
    """Record scores from the block's period facts (the arithmetic of :func:`branchsim.evaluate`)."""
    ms = gen.scheme.member
    sheet, periods = ms.sheet, ms.periods
    k, m = base.shape
    months = np.empty((k, periods, m), dtype=np.float32)
    monthly_facts(rng_mm, base, shock, sheet, gen.order, np.float32(gen.params.get("measurement.proportion_noise")),
                  months, per_period=period_share(ms))
    months = months[np.argsort(gen.order)]
    rows = months.reshape(k, periods * m).T
    who = np.tile(np.arange(m), periods)
    if ms.accrual == "mean":
        row_profile = profile[who]
        scores = record_scores(indicator_points(rows, row_profile, sheet), row_profile, ms)
        record = np.bincount(who, scores, m) / periods
    else:
        year = annual_facts(rows, who, m, sheet.kind[0])
        record = record_scores(indicator_points(year, profile, sheet), profile, ms)
    read = {}
    for f in set(ms.vetoes.fact) & set(sheet.facts):
        col = np.asarray(rows[:, sheet.facts.index(f)], dtype=float)
        low = np.full(m, np.inf)
        np.minimum.at(low, who, col)
        read[f] = (low, np.bincount(who, col, m))
    return record, read


def _members(gen, blk: int, raw: dict) -> dict:
    scheme = gen.scheme
    ms = scheme.member
    rng_m, rng_mm = block_stream(gen.root, _MEMBER, blk), block_stream(gen.root, _MONTHS, blk)
    owner, mq, cat, appraisal, base, shock = member_draws(rng_m, rng_mm, raw["q"], raw["t"], raw["size"], ms,
                                                          gen.m_off, gen.order, gen.params, gen.cat_cum,
                                                          gen.profile_of)
    profile = np.asarray(gen.profile_of(raw["t"][owner], cat))
    if kernel_allowed(scheme):
        record, read = _records_compiled(gen, rng_mm, base, shock, profile), {}
    else:
        record, read = _records_numpy(gen, rng_mm, base, shock, profile)
    facts = gen.member_facts(blk, mq)
    vv = member_veto_values(ms, facts, read, len(owner))
    out = member_outcome(record, appraisal, profile, ms, scheme, veto_values=vv)
    return {"owner": owner, "mq": mq, "cat": cat, "appraisal": appraisal, "record": record, **out}


def score_block(gen, blk: int, p: Plan) -> dict:
    """Generate, measure and rate one seed block; keep outcomes only."""
    scheme = gen.scheme
    raw = _raw(gen, blk)
    measured, true, (values, true_values, true_facts) = _scores(raw, scheme, p)
    out = _outcome(scheme, p, 0, raw, measured, values, raw["facts"], raw["survey"] if scheme.branch.survey
                   else None)
    tout = _outcome(scheme, p, 1, raw, true, true_values, true_facts, raw["truth"].survey)
    res = {"blk": blk, "raw": raw, "out": out, "true": tout}
    if scheme.structure is not None:
        res["required"] = required_level(raw["size"], scheme.structure)["level"]
    if scheme.member is not None:
        res["members"] = _members(gen, blk, raw)
    res["first"] = blk * BLOCK
    return res
