"""Members in the measurement Monte Carlo: kept or redrawn period records, redrawn appraisals, grades.

Used by :func:`~branchsim.sensitivity.montecarlo.measurement_mc` (see there
for what is held fixed). Members are taken seed block of branches by seed
block (:data:`branchsim.streams.BLOCK`), each block drawing from its own
streams, so the numbers do not depend on batches or executors. Records are
scored as :func:`branchsim.evaluate.evaluate_checked` scores them (the
compiled kernel where it applies: the same numbers bit for bit).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError
from ..evaluate import member_outcome, member_profiles, member_veto_values
from ..measurement import _indicator_offsets, appraise, member_true_scores, monthly_facts, period_share
from ..policy import Policy
from ..scoring import annual_facts, indicator_points, record_from_totals, record_scores
from ..streams import BLOCK

__all__ = ["stream", "member_setup", "member_grades"]

#: Purposes of the members' Monte Carlo streams (the branches' are 8, 9 and 13).
APPRAISAL, MEMBER, MONTHS = 10, 11, 12


def stream(root: np.random.SeedSequence, purpose: int, draw: int, block: int) -> np.random.Generator:
    """The stream of one purpose, draw and seed block: ``SeedSequence(entropy, (*spawn_key, p, d, b))``."""
    key = (*root.spawn_key, purpose, draw, block)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root.entropy, spawn_key=key)))


def _veto_values(ms, m: dict, low: dict, total: dict) -> np.ndarray:
    """Each member veto's value over the year (:func:`branchsim.evaluate.member_veto_values`)."""
    return member_veto_values(ms, m["facts"], {f: (low[f], total[f]) for f in low}, len(m["q"]))


def _period_scores(ms, cols: list, row_profile: np.ndarray) -> np.ndarray:
    """Each period row's record on 100 (``cols``: the fact columns in the sheet's order).

    The compiled kernel where evaluate uses it (the same numbers bit for bit), else the NumPy rules.
    """
    from .. import _month_kernel
    if np.isnan(ms.bonus_cap) and _month_kernel.supports(ms.sheet) and len({c.dtype for c in cols}) == 1:
        points = _month_kernel.row_totals([np.ascontiguousarray(c) for c in cols], ms.sheet,
                                          np.arange(len(row_profile)), row_profile)
        return record_from_totals(points, row_profile, ms)
    return record_scores(indicator_points(np.column_stack(cols), row_profile, ms.sheet), row_profile, ms)


def _records(ms, cols: list, profile: np.ndarray, owner: np.ndarray, n: int, periods: np.ndarray):
    """The year's record of ``n`` members from their period rows (row ``owner``), and veto inputs.

    ``cols`` holds one 1-d column per fact of the sheet, in its order.
    """
    if ms.accrual == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            record = np.bincount(owner, _period_scores(ms, cols, profile[owner]), n) / periods
    else:
        year = annual_facts(np.column_stack(cols), owner, n, ms.sheet.kind[0])
        record = record_scores(indicator_points(year, profile, ms.sheet), profile, ms)
    low, total = {}, {}
    for f in {f for f in ms.vetoes.fact if f in ms.sheet.facts}:
        col = np.asarray(cols[ms.sheet.facts.index(f)], dtype=float)
        low[f] = np.full(n, np.inf)
        np.minimum.at(low[f], owner, col)
        total[f] = np.bincount(owner, col, n)
    return record, low, total


def member_setup(pop, policy: Policy, t: np.ndarray, mode: str) -> dict:
    """The member arrays a draw needs (``t``: the branches' type codes); with ``"appraisal"`` the kept records."""
    ms = policy.scheme.member
    if ms is None:
        raise BranchsimError(f"policy {policy.name!r} rates branches only (it has no member section): "
                             f"members={mode!r} does not apply; run with members=False")
    mem = pop.members
    if mem is None or "true_quality" not in mem.columns or (mode == "appraisal" and pop.member_months is None):
        raise DataError(f"members={mode!r} needs a population generated with members (their true quality "
                        "and period records): generate(..., members=True)")
    bidx = pd.Index(pop.branches["branch_id"]).get_indexer(mem["branch_id"])
    if (bidx < 0).any():
        raise DataError(f"members: rows {list(np.flatnonzero(bidx < 0)[:5])} belong to no branch")
    missing = [f for f in ms.facts if f not in mem.columns]
    if missing:
        raise DataError(f"the members table has no column for member fact(s) {missing[:8]} that policy "
                        f"{policy.name!r} reads")
    profile, class_idx = member_profiles(ms, t[bidx], mem["category"])
    blk = bidx // BLOCK
    perm = np.argsort(blk, kind="stable")
    offsets = _indicator_offsets(pop.seed, ms.sheet, pop.params, 1)
    q = mem["true_quality"].to_numpy(float)
    m = {"q": q, "owner": bidx, "profile": profile, "perm": perm, "offsets": offsets,
         "start": np.searchsorted(blk[perm], np.arange(-(-len(t) // BLOCK) + 1)),
         "true": member_true_scores(q, profile, ms, offsets),
         "facts": {f: mem[f].to_numpy(float) for f in ms.facts},
         "order": np.argsort(ms.sheet.kind[0], kind="stable"), "groups": None, "names": None}
    if ms.rating.relative:                                     # peer groups as evaluate forms them
        if ms.rating.peer_groups == "class" and class_idx is not None:
            m["groups"], m["names"] = class_idx, list(ms.classes)
        elif ms.rating.peer_groups == "type":
            m["groups"], m["names"] = t[bidx], list(ms.types)
    if mode == "appraisal":                                    # the records stay as the population measured them
        mm = pop.member_months
        absent = [f for f in ms.sheet.facts if f not in mm.columns]
        if absent:
            raise DataError(f"member_months has no column for fact(s) {absent[:8]} that policy "
                            f"{policy.name!r} measures")
        owner = pd.Index(mem["member_id"]).get_indexer(mm["member_id"])
        periods = np.bincount(owner, minlength=len(mem))
        m["record"], low, total = _records(ms, [mm[f].to_numpy() for f in ms.sheet.facts], profile, owner,
                                           len(mem), periods)
        m["veto_values"] = _veto_values(ms, m, low, total)
    return m


def _redrawn_records(m: dict, ms, params, root, d: int):
    """Period records of every member drawn again (seed block by seed block): records and veto inputs."""
    f32 = np.float32
    mm = params.values["member_measurement"]
    k, periods, n_all = ms.sheet.k, ms.periods, len(m["q"])
    record = np.empty(n_all)
    vfacts = {f for f in ms.vetoes.fact if f in ms.sheet.facts}
    low, total = ({f: np.empty(n_all) for f in vfacts} for _ in range(2))
    back = np.argsort(m["order"])
    for blk in range(len(m["start"]) - 1):
        idx = m["perm"][m["start"][blk]:m["start"][blk + 1]]
        n = len(idx)
        if n == 0:
            continue
        noise = stream(root, MEMBER, d, blk).standard_normal((k, n), dtype=f32)
        base = m["offsets"].astype(f32)[m["order"], None] + m["q"][idx].astype(f32)[None, :]
        base += f32(mm["indicator_noise"]) * noise
        rng = stream(root, MONTHS, d, blk)
        shock = f32(mm["month_noise"]) * rng.standard_normal((periods, n), dtype=f32)
        months = np.empty((k, periods, n), dtype=f32)
        monthly_facts(rng, base, shock, ms.sheet, m["order"], f32(params.get("measurement.proportion_noise")),
                      months, per_period=period_share(ms))
        rows = months.reshape(k, -1)                            # rows period-major within each fact
        owner = np.tile(np.arange(n), periods)
        rec, lo, tot = _records(ms, [rows[j] for j in back], m["profile"][idx], owner, n, np.full(n, periods))
        record[idx] = rec
        for f in vfacts:
            low[f][idx], total[f][idx] = lo[f], tot[f]
    return record, _veto_values(ms, m, low, total)


def member_grades(m: dict, scheme, params, mode: str, root, d: int) -> np.ndarray:
    """Draw ``d``: every member's grade code (-1: not graded) with the appraisal (and records) drawn again."""
    n_all = len(m["q"])
    z_affinity, z_noise = np.empty(n_all), np.empty(n_all)
    for blk in range(len(m["start"]) - 1):
        idx = m["perm"][m["start"][blk]:m["start"][blk + 1]]
        if len(idx):
            # 打印象分 (the pull towards the branch's standing) follows from the truth;
            # 感情分 (affinity) and the appraisal noise are measurement, redrawn.
            rng = stream(root, APPRAISAL, d, blk)
            z_affinity[idx] = rng.standard_normal(len(idx))
            z_noise[idx] = rng.standard_normal(len(idx))
    appraisal = appraise(m["true"], m["owner"], params, z_affinity, z_noise)
    record, veto_values = (_redrawn_records(m, scheme.member, params, root, d) if mode == "monthly"
                           else (m["record"], m["veto_values"]))
    return member_outcome(record, appraisal, m["profile"], scheme.member, scheme, veto_values=veto_values,
                          groups=m["groups"], group_names=m["names"])["grade"].astype(np.intp)
