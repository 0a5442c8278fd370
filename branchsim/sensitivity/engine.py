"""The scenario axis: many weight vectors, cut points, quotas and designation lines evaluated together.

A population is *prepared* once under a policy (:func:`prepare`): each
branch's components (the score is ``100 × components @ weights``), the level
its vetoes cap it at, a level fixed by direct grading or a forcing veto, the
designations that hold whatever its score, and the same for its truth. What
most "what if" questions vary — the survey and dimension shares, cut points,
quotas and designation lines — then only enter as arrays shaped by scenario
(:class:`Scenarios`). :func:`run` scores blocks of branches against all
scenarios with one matrix product per block, turns scores into levels with
each scenario's cut points (for a relative design, the thresholds it sets on
that scenario's scores: a quota design is a selection per scenario, a
clustering design a clustering per scenario) and accumulates counts. No
Python loop runs over branches and no Policy is built per scenario; memory
is bounded by the block size.

Level codes count from the floor (0) to the best level (``L - 1``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import rating as rt
from ..evaluate import branch_inputs, branch_outcome
from ..policy import Policy
from . import _kernels

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..population import Population
    from ..scheme import Scheme

__all__ = ["Prepared", "Scenarios", "prepare", "run", "BLOCK_ROWS", "baseline_levels", "unit_cuts"]

#: Branches scored against all scenarios at once (keeps a block's scores in cache).
BLOCK_ROWS = 512
_DECIMALS = 9
# Scores are compared on the scale they are rounded to (9 decimals) without rounding the whole
# block: round(x, 9) >= c  <=>  x >= c - 0.5e-9 for cuts with at most 9 decimals. This keeps the
# engine's levels identical to evaluate's while saving a pass over every block.
_HALF_ULP = 0.5 * 10.0 ** -_DECIMALS


@dataclass(frozen=True)
class Prepared:
    """A population's branches reduced to what the scenario axis needs."""

    policy: Policy
    components: np.ndarray          # (n, c) measured components
    truth: np.ndarray | None        # (n, c) noise-free components, if the population has truth
    type_idx: np.ndarray            # (n,)
    types: tuple[str, ...]
    component_names: tuple[str, ...]
    cap: np.ndarray                 # (n,) highest level code the vetoes allow (L - 1: none)
    fixed: np.ndarray               # (n,) level fixed by direct grading or a forcing veto (-1: none)
    designated: np.ndarray          # (n, D) designations that hold whatever the score
    line_ok: np.ndarray             # (n, D) the unit may be designated by the score line (its years)
    dep_ok: np.ndarray              # (n, C) the same for each other score-dependent criterion
    group: np.ndarray               # (n,) peer group of a relative design (0 without)
    group_names: list
    branches: pd.DataFrame          # id, type and the other descriptive columns (for by=)
    levels: np.ndarray | None = None  # (n,) level codes under the policy (as evaluate gives them)
    within: dict = field(default_factory=dict)   # group codes of the columns last-place criteria rank within
    truth_cap: np.ndarray | None = None
    truth_fixed: np.ndarray | None = None
    truth_designated: np.ndarray | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)   # derived layouts

    @property
    def n(self) -> int:
        return len(self.type_idx)

    @property
    def scheme(self) -> Scheme:
        return self.policy.scheme

    @property
    def n_levels(self) -> int:
        return self.scheme.branch.levels.n


def _line_criteria(scheme):
    """Per designation: its score_below criterion (the one a scenario's line moves), or None."""
    out = []
    for d in scheme.branch.designations:
        lines = [c for c in d.criteria if c.kind == "score_below"]
        out.append(lines[0] if lines else None)
    return out


def _unit_state(outcome: dict, scheme, prev: dict) -> tuple[np.ndarray, ...]:
    """Cap, fixed level, designations that do not depend on the score, and line eligibility."""
    bs = scheme.branch
    L = bs.levels.n
    n = len(outcome["score"])
    fired = outcome["vetoes"]
    vet = bs.vetoes
    cap = np.full(n, L - 1, dtype=np.int8)
    forced = np.full(n, np.iinfo(np.int8).max, dtype=np.int16)
    for j in range(vet.n):
        if vet.effect[j] == "cap":
            cap = np.where(fired[:, j], np.minimum(cap, vet.level[j]), cap)
        elif vet.effect[j] == "force":
            forced = np.where(fired[:, j], np.minimum(forced, vet.level[j]), forced)
    direct = outcome["direct"]
    fixed = np.full(n, -1, dtype=np.int8)
    if direct.size:
        best = np.where(direct, bs.rating.direct_level, -1).max(axis=1)
        fixed = np.where(best >= 0, np.minimum(best, cap), -1).astype(np.int8)
    has_force = forced < np.iinfo(np.int8).max
    if has_force.any():
        # A force gives its level; a cap firing too lowers it, a direct grading never raises it.
        capped_force = np.where(cap < L - 1, np.minimum(forced, cap), forced)
        fixed = np.where(has_force, capped_force, fixed).astype(np.int8)
    D = len(bs.designations)
    designated = np.zeros((n, D), dtype=bool)
    line_ok = np.zeros((n, D), dtype=bool)
    lines = _line_criteria(scheme)
    for k, d in enumerate(bs.designations):
        for c in d.criteria:
            if c is lines[k]:
                line_ok[:, k] = _years_ok(c, prev, n)
            elif c.kind not in _DEPENDENT:
                held = outcome["criteria"][c.id]
                designated[:, k] |= rt.streak(held, prev.get(c.id)) >= c.years
    dep_ok = np.column_stack([_years_ok(c, prev, n) for _, c in _dependent(scheme)]) if _dependent(scheme) \
        else np.zeros((n, 0), dtype=bool)
    return cap, fixed, designated, line_ok, dep_ok


#: Criteria kinds that depend on the score (beside a designation's scenario line).
_DEPENDENT = ("score_below", "level", "last_place")


def _years_ok(c, prev: dict, n: int) -> np.ndarray:
    """Units whose streak of years before lets the criterion hold this year (all when ``years`` is 1)."""
    if c.years <= 1:
        return np.ones(n, dtype=bool)
    return np.asarray(prev.get(c.id, np.zeros(n))) >= c.years - 1


def _dependent(scheme) -> list:
    """``(designation index, criterion)`` of the score-dependent criteria other than the scenario lines."""
    lines = _line_criteria(scheme)
    return [(k, c) for k, d in enumerate(scheme.branch.designations) for c in d.criteria
            if c.kind in _DEPENDENT and c is not lines[k]]


def _score_dependent(scheme) -> bool:
    """Whether some designation criterion other than a score line depends on the score."""
    return bool(_dependent(scheme))


#: Branches from which :func:`prepare` computes the true outcome on a second thread.
_THREADED_FROM = 100_000


def _true_outcome(pop, policy: Policy, inp):
    """The population's :class:`~branchsim.truth.Truth` and its outcome (``None, None`` without truth)."""
    from ..truth import truth
    tr = truth(pop, policy)
    return tr, (None if tr is None else tr.outcome_arrays(policy.scheme, inp))


def prepare(pop: Population, policy: Policy) -> Prepared:
    """Compute once what does not change across the scenarios of weights, cuts, quotas and lines.

    From :data:`_THREADED_FROM` branches the true outcome is computed on a second thread beside the
    measured one (the same numbers: neither writes what the other reads).
    """
    scheme = policy.scheme
    b = pop.branches
    inp = branch_inputs(b, scheme, policy_name=policy.name)
    if len(b) >= _THREADED_FROM:          # the measured and the true outcome side by side (no shared writes)
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(1) as ex:
            job = ex.submit(_true_outcome, pop, policy, inp)
            out = branch_outcome(inp, scheme)
            tr, tout = job.result()
    else:
        out = branch_outcome(inp, scheme)
        tr, tout = _true_outcome(pop, policy, inp)
    cap, fixed, designated, line_ok, dep_ok = _unit_state(out, scheme, inp.prev)
    keep = [c for c, dt in b.dtypes.items() if c in ("branch_id", "type", "level", "parent", "n_members")
            or not pd.api.types.is_float_dtype(dt)]
    peer = scheme.branch.rating.peer_groups
    group, names = inp.codes(peer) if (peer and scheme.branch.rating.relative) else \
        (np.zeros(len(b), dtype=np.intp), ["all"])
    within = {c.within: inp.codes(c.within)[0] for _, c in _dependent(scheme)
              if c.kind == "last_place" and c.within is not None}
    extra = {}
    if tr is not None:
        tcap, tfixed, tdes, _, _ = _unit_state(tout, scheme, inp.prev)
        extra = {"truth_cap": tcap, "truth_fixed": tfixed, "truth_designated": tdes}
    return Prepared(policy, out["components"], None if tr is None else tr.components, inp.type_idx,
                    scheme.branch.types, scheme.branch.components, cap, fixed, designated, line_ok, dep_ok, group,
                    names, b[keep].reset_index(drop=True), out["level"], within, **extra)


@dataclass(frozen=True)
class Scenarios:
    """Weights, cut points, quotas and designation lines of ``S`` scenarios, plus their parameter table."""

    weights: np.ndarray              # (S, t, c) shares of the 100-point score per type
    cuts: np.ndarray | None          # (S, t, L-1) ascending cut points per type (cuts designs)
    quotas: np.ndarray | None        # (S, L-1) cumulative shares allowed at each level or better
    lines: np.ndarray                # (S, D) score line of each designation (NaN: it has none)
    table: pd.DataFrame              # one row per scenario: the varied parameters
    design: str = "cuts"

    def __len__(self) -> int:
        return len(self.weights)

    def subset(self, idx: ArrayLike | slice) -> Scenarios:
        return Scenarios(self.weights[idx], None if self.cuts is None else self.cuts[idx],
                         None if self.quotas is None else self.quotas[idx], self.lines[idx],
                         self.table.iloc[idx].reset_index(drop=True), self.design)

    @classmethod
    def from_policy(cls, policy: Policy) -> "Scenarios":
        bs = policy.scheme.branch
        r = bs.rating
        lines = np.array([[np.nan if c is None else c.value for c in _line_criteria(policy.scheme)]])
        return cls(bs.weights[None], None if r.cuts is None else r.cuts[None],
                   None if r.allowed_shares is None else r.allowed_shares[None], lines.reshape(1, -1),
                   pd.DataFrame(index=[0]), r.design)


def _scores(comp: np.ndarray, w100: np.ndarray) -> np.ndarray:
    """Unrounded scores ``comp @ (100 w)`` of a block, ``(B, S)``: the sum in component order without a
    fused multiply-add, as the compiled kernels sum it (a BLAS product's order and FMA depend on the
    machine, and decide a score that lies on a rounding boundary of the 9th decimal)."""
    return _kernel_scores(comp, w100.T)


def unit_cuts(prep: Prepared, sc: Scenarios, *, truth: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """Cut points of every scenario: ``(table (S, K, L-1), key (n,) into K, shifted)``.

    A cuts design keys the table by type; a relative design sets its
    thresholds on each scenario's scores, rounded as evaluate rounds them (of
    the truth with ``truth=True``), per peer group. ``shifted``: compare the
    unrounded scores with the cuts less half a unit of the 9th decimal (cuts
    designs); otherwise compare the rounded scores with the thresholds.
    """
    r = prep.scheme.branch.rating
    if sc.design == "cuts":
        return sc.cuts, prep.type_idx, True
    comp = prep.truth if truth else prep.components
    key = "truth_thresholds" if truth else "thresholds"
    cached = prep.cache.get(key)
    if cached is not None and cached[0] is sc:
        return cached[1], prep.group, False
    G = len(prep.group_names)
    S = len(sc)
    table = np.empty((S, G, prep.n_levels - 1))
    w100 = 100.0 * sc.weights
    if sc.design == "quota" and _kernels.available():
        # The kernel ranks and ties the scores rounded as evaluate rounds them: its thresholds are
        # the ones evaluate finds (units whose sums differ only beyond the rounding are tied).
        table[:] = _quota_table(prep, sc, comp)
        prep.cache[key] = (sc, table)
        return table, prep.group, False
    for s in range(S):                           # a loop over scenarios, not units
        score = np.round(np.einsum("nc,nc->n", comp, w100[s][prep.type_idx]), _DECIMALS)
        for g in range(G):
            x = score[prep.group == g]
            if not len(x):
                table[s, g] = np.inf
            elif sc.design in ("quota", "cuts_and_quota"):
                table[s, g] = np.maximum.accumulate(rt.quota_thresholds(x, rt.allowed_counts(len(x), sc.quotas[s])))
            else:
                from .. import _clustering
                table[s, g] = _clustering.cluster_cuts(x, prep.n_levels, method=sc.design, trim=r.trim,
                                                       resamples=r.resamples, seed=r.seed)
        if sc.design == "cuts_and_quota":
            table[s] = np.maximum(table[s], (sc.cuts[s, 0] - _HALF_ULP)[None, :])
    prep.cache[key] = (sc, table)
    return table, prep.group, False


def _compared(score: np.ndarray, shifted: bool) -> np.ndarray:
    """Scores as a design compares them: unrounded against shifted cuts, or rounded (relative designs)."""
    return score if shifted else np.round(score, _DECIMALS)


def _kernel_scores(comp: np.ndarray, w100: np.ndarray) -> np.ndarray:
    """Scores ``(m, S)`` summed as the kernels sum them: in component order, no fused multiply-add."""
    out = comp[:, :1] * w100[None, :, 0]
    for k in range(1, comp.shape[1]):
        out = out + comp[:, k:k + 1] * w100[None, :, k]
    return out


def _quota_table(prep: Prepared, sc: Scenarios, comp: np.ndarray) -> np.ndarray:
    """Quota thresholds ``(S, G, L-1)`` of every scenario with the compiled selection kernel."""
    from ._quota import quota_counts
    order = np.lexsort((prep.type_idx, prep.group))
    g_s, t_s = prep.group[order], prep.type_idx[order]
    brk = np.r_[True, (g_s[1:] != g_s[:-1]) | (t_s[1:] != t_s[:-1])]
    starts = np.r_[np.flatnonzero(brk), prep.n].astype(np.int64)
    seg_type, seg_group = t_s[starts[:-1]], g_s[starts[:-1]]
    L1 = prep.n_levels - 1
    limits = np.repeat(starts[1:, None], L1, axis=1)
    G = len(prep.group_names)
    sizes = np.bincount(prep.group, minlength=G)
    allowed = rt.allowed_counts(sizes[None, :, None], sc.quotas[:, None, :])
    thr, _, _ = quota_counts(np.ascontiguousarray(comp[order].T), starts, seg_group.astype(np.intp), limits,
                             starts[1:].copy(), np.ascontiguousarray(100.0 * sc.weights[:, seg_type, :]), allowed)
    return thr


def _levels_block(score, table, key, shifted, cap, fixed) -> np.ndarray:
    """Level codes ``(B, S)`` of a block of scores under per-unit cut points."""
    cuts = table[:, key, :]                                  # (S, B, L-1)
    shift = _HALF_ULP if shifted else 0.0
    codes = np.zeros(score.shape, dtype=np.int8)
    for j in range(cuts.shape[2]):
        codes += score >= (cuts[:, :, j].T - shift)
    codes = np.minimum(codes, cap[:, None])
    return np.where(fixed[:, None] >= 0, fixed[:, None], codes).astype(np.int8)


def run(prep: Prepared, sc: Scenarios, *, groups: np.ndarray | None = None, n_groups: int = 1,
        baseline: np.ndarray | None = None, accuracy: bool = True,
        block_rows: int = BLOCK_ROWS, designations: bool = True) -> dict[str, np.ndarray]:
    """Evaluate every scenario on every branch, block by block.

    Returns arrays shaped ``(G, S, ...)`` (``G`` groups; one group without
    ``groups``): ``counts`` (G, S, L) branches per level code, ``designated``
    (G, S, D), ``n``; with ``baseline`` (each branch's level code under the
    baseline), ``changed`` and ``abs_change``; with truth and ``accuracy``,
    ``correct`` (level = true level) and ``true_counts``. Without groups,
    baseline or accuracy only counts are needed and the compiled kernels count
    without forming a level matrix (on Numba's threads; integer counts make the
    result independent of their number). Otherwise a compiled kernel forms each
    branch's level per scenario and counts the rest from it (the same numbers
    as the NumPy path, which runs without Numba).
    """
    S = len(sc)
    L = prep.n_levels
    D = prep.designated.shape[1]
    counts_only = groups is None and baseline is None and not (accuracy and prep.truth is not None)
    groups = np.zeros(prep.n, dtype=np.intp) if groups is None else np.asarray(groups, dtype=np.intp)
    out = {"counts": np.zeros((n_groups, S, L)), "designated": np.zeros((n_groups, S, D)),
           "n": np.bincount(groups, minlength=n_groups).astype(float)}
    if counts_only and _compiled_counts(prep, sc, out, designations):
        return out
    use_truth = accuracy and prep.truth is not None
    if _kernels.available() and _compiled_units(prep, sc, groups, n_groups, baseline, use_truth, designations, out):
        return out
    if baseline is not None:
        out["changed"] = np.zeros((n_groups, S))
        out["abs_change"] = np.zeros((n_groups, S))
    if use_truth:
        out["correct"] = np.zeros((n_groups, S))
        out["true_counts"] = np.zeros((n_groups, S, L))
    table, key, shifted = unit_cuts(prep, sc)
    if use_truth:
        ttable, tkey, tshifted = unit_cuts(prep, sc, truth=True)
    lines = sc.lines - _HALF_ULP                                     # (S, D)
    dep = _dependent(prep.scheme)
    lowest = _lowest_scores(prep, sc, dep) if designations else {}
    for t in np.unique(prep.type_idx):
        w100 = 100.0 * sc.weights[:, t, :].T                        # (c, S)
        rows = np.flatnonzero(prep.type_idx == t)
        for lo in range(0, len(rows), block_rows):
            r = rows[lo:lo + block_rows]
            score = _scores(prep.components[r], w100)
            onehot = np.zeros((n_groups, len(r)))
            onehot[groups[r], np.arange(len(r))] = 1.0
            levels = _levels_block(_compared(score, shifted), table, key[r], shifted, prep.cap[r], prep.fixed[r])
            for level in range(L):
                out["counts"][:, :, level] += onehot @ (levels == level)
            if designations and D:
                held = [prep.designated[r, k][:, None] | ((score < lines[:, k]) & prep.line_ok[r, k][:, None])
                        for k in range(D)]
                if dep:
                    rounded = np.round(score, _DECIMALS)
                for j, (k, c) in enumerate(dep):
                    ok = prep.dep_ok[r, j][:, None]
                    if c.kind == "score_below":
                        held[k] |= ok & (score < c.value - _HALF_ULP)
                    elif c.kind == "level":
                        held[k] |= ok & ((levels <= c.level) if c.or_below else (levels == c.level))
                    else:                                   # last place: the group's lowest score
                        codes = prep.within[c.within][r] if c.within is not None else np.zeros(len(r), np.intp)
                        held[k] |= ok & (rounded <= lowest[c.within][:, codes].T)
                for k in range(D):
                    out["designated"][:, :, k] += onehot @ held[k]
            if baseline is not None:
                diff = levels.astype(np.int16) - baseline[r, None]
                out["changed"] += onehot @ (diff != 0)
                out["abs_change"] += onehot @ np.abs(diff)
            if use_truth:
                tscore = _scores(prep.truth[r], w100)
                true = _levels_block(_compared(tscore, tshifted), ttable, tkey[r], tshifted, prep.truth_cap[r],
                                     prep.truth_fixed[r])
                out["correct"] += onehot @ (true == levels)
                for level in range(L):
                    out["true_counts"][:, :, level] += onehot @ (true == level)
    if not designations:
        out["designated"][:] = np.nan                 # not counted (as the compiled path leaves them)
    return out


def _lowest_scores(prep: Prepared, sc: Scenarios, dep) -> dict:
    """Lowest rounded score of each group of every last-place criterion, per scenario: ``{within: (S, G)}``."""
    out = {}
    for _, c in dep:
        if c.kind != "last_place" or c.within in out:
            continue
        codes = prep.within[c.within] if c.within is not None else np.zeros(prep.n, dtype=np.intp)
        G = int(codes.max()) + 1 if prep.n else 0
        low = np.full((len(sc), G), np.inf)
        for t in np.unique(prep.type_idx):
            rows = np.flatnonzero(prep.type_idx == t)
            score = np.round(_scores(prep.components[rows], 100.0 * sc.weights[:, t, :].T), _DECIMALS)
            for g in np.unique(codes[rows]):
                low[:, g] = np.minimum(low[:, g], score[codes[rows] == g].min(axis=0))
        out[c.within] = low
    return out


def _compiled_counts(prep: Prepared, sc: Scenarios, out: dict, designations: bool) -> bool:
    """Counts with the compiled kernels, where they apply; False to take the NumPy path.

    Branches are sorted by segment (type, or peer group and type), then with
    the units designated whatever their score last, the units with a fixed
    level before them, and the rest by veto cap from none down: for each level
    the rows a cap keeps below it form the end of their segment's free run and
    the kernel stops before them. Fixed and pre-designated units are added
    afterwards in NumPy.
    """
    if not _kernels.available() or sc.design not in ("cuts", "quota"):
        return False
    D = prep.designated.shape[1]
    if D > 1 or _score_dependent(prep.scheme):
        return False
    layout = _layout(prep, sc.design)
    order, ct, ct32, seg_starts, seg_type, seg_group, limits, weak_end = layout
    L = prep.n_levels
    w100 = 100.0 * sc.weights[:, seg_type, :]                      # (S, segments, c)
    line = None
    if D and designations:
        line = np.ascontiguousarray(np.repeat((sc.lines[:, 0] - _HALF_ULP)[:, None], len(seg_type), axis=1))
        if np.isnan(line).any():
            line = np.where(np.isnan(line), -np.inf, line)
        elig = prep.line_ok[order, 0]
        if not elig.all():
            return False
    in_kernel = False                                   # whether the kernel counted the pre-designated rows
    if sc.design == "cuts":
        cuts = np.ascontiguousarray(sc.cuts[:, seg_type, :] - _HALF_ULP)
        if ct.shape[0] == 5 and L == 4:
            at_least, below = _kernels.count_at_least_53(ct, seg_starts, limits, weak_end, w100, cuts, line, ct32,
                                                         pre_end=_pre_end(prep, sc.design))
            in_kernel = True
        else:
            at_least, below = _kernels.count_at_least(ct, seg_starts, limits, weak_end, w100, cuts, line)
    else:
        from ._quota import quota_counts
        G = len(prep.group_names)
        sizes = np.bincount(prep.group, minlength=G)
        allowed = rt.allowed_counts(sizes[None, :, None], sc.quotas[:, None, :])
        thr, at_least, below = quota_counts(ct, seg_starts, seg_group, limits, weak_end, w100, allowed, line, ct32)
    S = len(sc)
    fixed = prep.fixed[prep.fixed >= 0]
    for level in range(1, L):
        at_least[:, level - 1] += np.count_nonzero(fixed >= level)
    des_rows = np.flatnonzero(prep.designated[:, 0]) if D else np.zeros(0, dtype=np.intp)
    free_des = des_rows[prep.fixed[des_rows] < 0]
    if len(free_des) and not in_kernel:                 # pre-designated units still reach levels by score
        table, key, shifted = unit_cuts(prep, sc) if sc.design == "cuts" else (None, None, None)
        for t in np.unique(prep.type_idx[free_des]):
            r = free_des[prep.type_idx[free_des] == t]
            # the kernels' own sum of the scores (m, S); a quota design's thresholds are such sums, unrounded
            score = _kernel_scores(prep.components[r], 100.0 * sc.weights[:, t, :])
            if sc.design == "cuts":
                levels = _levels_block(score, table, key[r], shifted, prep.cap[r], prep.fixed[r])
            else:
                levels = _levels_block(score, thr, prep.group[r], False, prep.cap[r], prep.fixed[r])
            for level in range(1, L):
                at_least[:, level - 1] += np.count_nonzero(levels >= level, axis=0)
    n = prep.n
    cum = np.vstack([np.full(S, n), at_least.T, np.zeros(S, dtype=np.int64)])
    for level in range(L):
        out["counts"][0, :, level] += cum[level] - cum[level + 1]
    if D:
        out["designated"][0, :, 0] = (below + len(des_rows)) if (line is not None) else np.nan
    return True


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys[::-1])`` (the first key primary; ties in row order) for small non-negative
    integer keys: one stable sort of a combined key, a radix sort when it fits 16 bits.

    >>> a, b = np.array([1, 0, 1, 0]), np.array([0, 1, 0, 0])
    >>> _stable_order(a, b).tolist() == np.lexsort((b, a)).tolist() == [3, 1, 0, 2]
    True
    """
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for k in keys:
        k = np.asarray(k, dtype=np.int64)
        size = int(k.max(initial=0)) + 1
        if (k < 0).any() or combined.max(initial=0) >= (2 ** 62) // max(size, 1):
            return np.lexsort(keys[::-1])
        combined = combined * size + k
    if combined.max(initial=0) < 2 ** 15:
        combined = combined.astype(np.int16)
    return np.argsort(combined, kind="stable")


def _unit_layout(prep: Prepared, key: np.ndarray, groups: np.ndarray, n_groups: int):
    """Rows sorted into segments of one group, threshold row and type, for the per-branch kernel
    (cached on ``prep`` for the last grouping asked for)."""
    cached = prep.cache.get("units")
    if cached is not None and cached[0] is key and cached[1] == n_groups and np.array_equal(cached[2], groups):
        return cached[3]
    order = _stable_order(groups, key, prep.type_idx)
    g_s, k_s, t_s = groups[order], key[order], prep.type_idx[order]
    brk = np.r_[True, (g_s[1:] != g_s[:-1]) | (k_s[1:] != k_s[:-1]) | (t_s[1:] != t_s[:-1])]
    starts = np.r_[np.flatnonzero(brk), prep.n].astype(np.int64)
    first = starts[:-1]
    ct = np.ascontiguousarray(np.take(prep.components, order, axis=0).T)
    has_truth = prep.truth is not None
    tt = np.ascontiguousarray(np.take(prep.truth, order, axis=0).T) if has_truth else ct
    dep = _dependent(prep.scheme)
    within = list(dict.fromkeys(c.within for _, c in dep if c.kind == "last_place"))
    zeros = np.zeros(prep.n, dtype=np.intp)
    last_code = np.array([(prep.within[w] if w is not None else zeros)[order] for w in within],
                         dtype=np.int64).reshape(len(within), prep.n)
    lay = {"order": order, "starts": starts, "seg_t": t_s[first], "seg_key": k_s[first], "seg_g": g_s[first],
           "ct": ct, "ct32": ct.astype(np.float32), "tt": tt, "tt32": tt.astype(np.float32) if has_truth else None,
           "cap": np.ascontiguousarray(prep.cap[order]), "fixed": np.ascontiguousarray(prep.fixed[order]),
           "tcap": np.ascontiguousarray((prep.truth_cap if has_truth else prep.cap)[order]),
           "tfixed": np.ascontiguousarray((prep.truth_fixed if has_truth else prep.fixed)[order]),
           "pre": np.ascontiguousarray(prep.designated[order].T),
           "line_ok": np.ascontiguousarray(prep.line_ok[order].T),
           "dep_ok": np.ascontiguousarray(prep.dep_ok[order].T), "within": within, "last_code": last_code}
    if lay["tt32"] is None:
        lay["tt32"] = lay["ct32"]
    prep.cache["units"] = (key, n_groups, groups.copy(), lay)
    return lay


def _compiled_units(prep: Prepared, sc: Scenarios, groups: np.ndarray, n_groups: int,
                    baseline: np.ndarray | None, use_truth: bool, designations: bool, out: dict) -> bool:
    """:func:`run`'s per-branch statistics with the compiled kernel (:func:`_kernels.unit_stats`).

    The same thresholds as the NumPy path (:func:`unit_cuts`, shifted by half
    a unit of the 9th decimal for a cuts design) and the same criteria; the
    kernel forms each branch's level per scenario and counts.
    """
    S = len(sc)
    L = prep.n_levels
    table, key, shifted = unit_cuts(prep, sc)
    thr = table - _HALF_ULP if shifted else table
    if use_truth:
        ttable, tkey, tshifted = unit_cuts(prep, sc, truth=True)
        assert tkey is key                                   # both keyed by type, or both by peer group
        tthr = ttable - _HALF_ULP if tshifted else ttable
    else:
        tthr, tshifted = thr, shifted
    lay = _unit_layout(prep, key, groups, n_groups)
    order = lay["order"]
    base = np.ascontiguousarray(baseline[order], dtype=np.int16) if baseline is not None \
        else np.zeros(prep.n, dtype=np.int16)
    lines = sc.lines - _HALF_ULP                                     # (S, D)
    lines = np.where(np.isnan(lines), -np.inf, lines)
    dep = _dependent(prep.scheme)
    within = lay["within"]
    lowest = _lowest_scores(prep, sc, dep) if (designations and within) else {}
    width = max([low.shape[1] for low in lowest.values()], default=1)
    last_low = np.full((len(within), S, width), np.inf)
    for p, w in enumerate(within):
        if w in lowest:
            last_low[p, :, :lowest[w].shape[1]] = lowest[w]
    kinds = {"score_below": 0, "last_place": 3}
    dep_k = [k for k, _ in dep]
    dep_kind = [kinds.get(c.kind, 2 if c.kind == "level" and c.or_below else 1) for _, c in dep]
    dep_val = [c.value - _HALF_ULP if c.kind == "score_below" else (c.level if c.kind == "level" else 0.0)
               for _, c in dep]
    last_idx = [within.index(c.within) if c.kind == "last_place" else 0 for _, c in dep]
    at_least, changed, abs_change, correct, t_at_least, designated = _kernels.unit_stats(
        lay["ct"], lay["ct32"], lay["tt"], lay["tt32"], lay["starts"], lay["seg_t"], lay["seg_key"],
        lay["seg_g"], n_groups, lay["cap"], lay["fixed"], base, lay["tcap"], lay["tfixed"],
        100.0 * sc.weights, thr, not shifted, tthr, not tshifted, lines, lay["pre"], lay["line_ok"],
        dep_k, dep_kind, dep_val, lay["dep_ok"], last_idx, last_low, lay["last_code"],
        with_base=baseline is not None, with_truth=use_truth, with_des=designations, decimals=_DECIMALS)
    n_g = out["n"][:, None]

    def counts(cum):
        full = np.concatenate([np.broadcast_to(n_g, (n_groups, S))[:, :, None], cum,
                               np.zeros((n_groups, S, 1))], axis=2)
        return full[:, :, :L] - full[:, :, 1:]

    out["counts"][:] = counts(at_least)
    out["designated"][:] = designated if designations else np.nan
    if baseline is not None:
        out["changed"] = changed.astype(float)
        out["abs_change"] = abs_change.astype(float)
    if use_truth:
        out["correct"] = correct.astype(float)
        out["true_counts"] = counts(t_at_least)
    return True


def _layout(prep: Prepared, design: str):
    """Rows sorted into segments for the kernels (cached on ``prep``)."""
    key = ("layout", design)
    if key in prep.cache:
        return prep.cache[key]
    L = prep.n_levels
    group = prep.group if design != "cuts" else np.zeros(prep.n, dtype=np.intp)
    pre = prep.designated[:, 0] if prep.designated.shape[1] else np.zeros(prep.n, dtype=bool)
    fixed = prep.fixed >= 0
    order = np.lexsort((-prep.cap.astype(np.int16), fixed, pre, prep.type_idx, group))
    g_s, t_s = group[order], prep.type_idx[order]
    seg_break = np.r_[True, (g_s[1:] != g_s[:-1]) | (t_s[1:] != t_s[:-1])]
    seg_starts = np.r_[np.flatnonzero(seg_break), prep.n].astype(np.int64)
    seg_type = t_s[seg_starts[:-1]].astype(np.intp)
    seg_group = g_s[seg_starts[:-1]].astype(np.intp)
    T = len(seg_type)
    limits = np.empty((T, L - 1), dtype=np.int64)
    weak_end = np.empty(T, dtype=np.int64)
    cap_s, fixed_s, pre_s = prep.cap[order], fixed[order], pre[order]
    for s in range(T):
        a, b = seg_starts[s], seg_starts[s + 1]
        free = ~pre_s[a:b] & ~fixed_s[a:b]
        weak_end[s] = a + int(np.count_nonzero(~pre_s[a:b]))
        for j in range(L - 1):
            limits[s, j] = a + int(np.count_nonzero(free & (cap_s[a:b] >= j + 1)))
    ct = np.ascontiguousarray(prep.components[order].T)
    prep.cache[key] = (order, ct, ct.astype(np.float32), seg_starts, seg_type, seg_group, limits, weak_end)
    return prep.cache[key]


def _pre_end(prep: Prepared, design: str) -> np.ndarray:
    """Per segment and level, the end of the rows designated whatever their score (not fixed) that
    level ``j + 1`` may reach: :func:`_layout` puts them right after ``weak_end``, by cap from the
    highest down, so they are ``weak_end .. pre_end[t, j]`` (the kernel counts them for the levels,
    not for the weak line; cached on ``prep``)."""
    key = ("pre_end", design)
    if key not in prep.cache:
        order, _, _, seg_starts, _, _, limits, weak_end = _layout(prep, design)
        pre = prep.designated[order, 0] if prep.designated.shape[1] else np.zeros(prep.n, dtype=bool)
        free_pre = pre & (prep.fixed[order] < 0)
        cap = prep.cap[order]
        pre_end = np.repeat(weak_end[:, None], limits.shape[1], axis=1)
        for t in range(len(weak_end)):
            a, b = seg_starts[t], seg_starts[t + 1]
            for j in range(limits.shape[1]):
                pre_end[t, j] += int(np.count_nonzero(free_pre[a:b] & (cap[a:b] >= j + 1)))
        prep.cache[key] = pre_end
    return prep.cache[key]


def baseline_levels(prep: Prepared) -> np.ndarray:
    """Level code of every branch under the prepared policy (the reference for changed / abs_change).

    These are :func:`branchsim.evaluate`'s levels: for a relative design its
    thresholds on the rounded scores.
    """
    return prep.levels.astype(np.int16)
