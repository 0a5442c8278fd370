"""The scenario axis: many weight vectors and cut-point sets evaluated together.

A population is *prepared* once under a policy (:func:`prepare`): each
branch's components (four dimension fractions and the survey rate), its
veto cap, veto-weak flag and true components. What most "what if"
questions vary — the satisfaction share, the dimension shares, the star cut
points and the weak line — then only enter as arrays shaped by scenario
(:class:`Scenarios`). :func:`run` scores blocks of branches against all
scenarios with one matrix product per block (``(block, 5) @ (5, S)``),
turns scores into stars by comparing with each scenario's cuts, and
accumulates counts, so no Python loop runs over branches or builds a Policy
per scenario, and the ``(branches, scenarios)`` score matrix is never held
whole: memory is bounded by the block size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..policy import Policy
from ..scoring import branch_components, compile_branch_rules, star_levels, type_codes
from ..tables import SURVEY_COLUMNS
from . import _kernels

__all__ = ["Prepared", "Scenarios", "prepare", "run", "BLOCK_ROWS"]

#: Branches scored against all scenarios at once (keeps a block's scores in cache).
BLOCK_ROWS = 512
_DECIMALS = 9


@dataclass(frozen=True)
class Prepared:
    """A population's branches reduced to what the scenario axis needs."""

    components: np.ndarray          # (n, c) measured: dimension fractions, survey rate
    truth: np.ndarray | None        # (n, c) noise-free components, if the population has truth
    type_idx: np.ndarray            # (n,)
    types: tuple[str, ...]
    component_names: tuple[str, ...]
    cap: np.ndarray                 # (n,) star cap from vetoes (5 = none)
    veto_weak: np.ndarray           # (n,) a veto designates the unit weak
    branches: pd.DataFrame          # id, type and the other descriptive columns (for by=)
    truth_cap: np.ndarray | None = None        # (n,) star cap from the true state
    truth_veto_weak: np.ndarray | None = None  # (n,)
    cache: dict = field(default_factory=dict, repr=False, compare=False)   # derived layouts

    @property
    def n(self) -> int:
        return len(self.type_idx)


def prepare(pop, policy: Policy) -> Prepared:
    """Compute once what does not change across weight / cut-point scenarios."""
    from ..model import truth
    rules = compile_branch_rules(policy)
    b = pop.branches
    t = type_codes(b["type"], rules.types, policy.name)
    facts = b[list(rules.indicators.facts)].to_numpy(float)
    _, comp = branch_components(facts, t, b[list(SURVEY_COLUMNS)].to_numpy(float), rules)
    fired = facts[:, rules.veto_indicator] < rules.veto_below
    cap = np.where(fired, rules.veto_max_star, 5).min(axis=1, initial=5).astype(np.int8)
    veto_weak = (fired & rules.veto_weak).any(axis=1)
    keep = [c for c in b.columns if c in ("branch_id", "type", "level", "parent", "n_members")
            or not pd.api.types.is_float_dtype(b[c])]
    tr = truth(pop, policy)
    return Prepared(comp, None if tr is None else tr.components, t, rules.types, rules.components, cap,
                    veto_weak, b[keep].reset_index(drop=True),
                    None if tr is None else tr.cap, None if tr is None else tr.veto_weak)


@dataclass(frozen=True)
class Scenarios:
    """Weights, cut points and weak lines of ``S`` scenarios, plus their parameter table."""

    weights: np.ndarray      # (S, t, c) shares of the 100-point score per type
    levels: np.ndarray       # (L,) star level of each cut, ascending
    cuts: np.ndarray         # (S, L) minimum score of each level
    weak_below: np.ndarray   # (S,)
    table: pd.DataFrame      # one row per scenario: the varied parameters

    def __len__(self) -> int:
        return len(self.weak_below)

    def subset(self, idx) -> "Scenarios":
        return Scenarios(self.weights[idx], self.levels, self.cuts[idx], self.weak_below[idx],
                         self.table.iloc[idx].reset_index(drop=True))

    @classmethod
    def from_policy(cls, policy: Policy) -> "Scenarios":
        rules = compile_branch_rules(policy)
        return cls(rules.weights[None], rules.star_levels, rules.star_cuts[None],
                   np.array([rules.weak_below]), pd.DataFrame(index=[0]))


# Scores are compared on the scale they are rounded to (9 decimals) without
# rounding the whole block: round(x, 9) >= c  <=>  x >= c - 0.5e-9 for cuts
# with at most 9 decimals. This keeps the engine's stars identical to
# branch_outcome's while saving a pass over every block.
_HALF_ULP = 0.5 * 10.0 ** -_DECIMALS


def _scores(comp: np.ndarray, w100: np.ndarray) -> np.ndarray:
    """Unrounded scores ``comp @ (100 w)`` of a block, ``(B, S)``."""
    return comp @ w100


def _stars(scores, cuts, levels, cap):
    """Star levels of a (B, S) score block under per-scenario cuts ``(S, L)``, capped by vetoes."""
    idx = np.zeros(scores.shape, dtype=np.int8)
    for j in range(cuts.shape[1]):
        idx += scores >= cuts[:, j] - _HALF_ULP
    lv = np.concatenate([[0], levels]).astype(np.int8)
    return np.minimum(lv[idx], cap[:, None])


def _count_rows(CT, cap, veto_weak, sc: Scenarios, w100T, block: int):
    """Counts for branches given as columns of ``CT`` (c, m): scenarios along rows, no star matrix.

    ``#(star >= k) = #(score >= c_k and cap >= k)``; the score block is
    ``(S, block)`` so every comparison and count runs along contiguous rows.
    Integer counts: the sum over blocks does not depend on their order.
    """
    S, L = len(sc), len(sc.levels)
    at_least = np.zeros((L, S), dtype=np.int64)
    weak = np.zeros(S, dtype=np.int64)
    score = np.empty((S, block))
    mask = np.empty((S, block), dtype=bool)
    cut_rows = [(sc.cuts[:, j] - _HALF_ULP)[:, None] for j in range(L)]
    weak_row = (sc.weak_below - _HALF_ULP)[:, None]
    for lo in range(0, CT.shape[1], block):
        c = CT[:, lo:lo + block]
        m = c.shape[1]
        s_, g_ = score[:, :m], mask[:, :m]
        np.matmul(w100T, c, out=s_)
        capped = np.flatnonzero(cap[lo:lo + m] < 5)
        for j, level in enumerate(sc.levels):
            np.greater_equal(s_, cut_rows[j], out=g_)
            at_least[j] += np.count_nonzero(g_, axis=1)
            blocked = capped[cap[lo + capped] < level]
            if len(blocked):
                at_least[j] -= np.count_nonzero(g_[:, blocked], axis=1)
        np.less(s_, weak_row, out=g_)
        vw = veto_weak[lo:lo + m]
        weak += np.count_nonzero(g_, axis=1)
        if vw.any():   # a veto-weak branch is weak whatever its score
            weak += int(vw.sum()) - np.count_nonzero(g_[:, vw], axis=1)
    return at_least, weak


def _sorted_layout(prep: Prepared):
    """Branches sorted by type, veto-weak last, then veto cap from none down (cached on ``prep``)."""
    key = "sorted_layout"
    if key not in prep.cache:
        order = np.lexsort((-prep.cap.astype(np.int16), prep.veto_weak, prep.type_idx))
        ct = np.ascontiguousarray(prep.components[order].T)
        prep.cache[key] = (order, ct, ct.astype(np.float32))
    return prep.cache[key]


def _counts_compiled(prep: Prepared, sc: Scenarios, out: dict, weak: bool = True) -> None:
    """Counts with the compiled kernel.

    Branches are sorted by type, then veto-weak last, then by veto cap from
    none down, so for each cut the branches a veto keeps below it form the end
    of their type's run and the kernel simply stops before them. The few
    veto-weak branches are corrected in NumPy afterwards.
    """
    T, L = len(prep.types), len(sc.levels)
    order, ct, ct32 = _sorted_layout(prep)
    t_sorted, cap_sorted, vw_sorted = prep.type_idx[order], prep.cap[order], prep.veto_weak[order]
    starts = np.searchsorted(t_sorted, np.arange(T + 1))
    limits = np.empty((T, L), dtype=np.int64)
    weak_end = np.empty(T, dtype=np.int64)
    for t in range(T):
        a, b = starts[t], starts[t + 1]
        free = a + int(np.count_nonzero(~vw_sorted[a:b]))        # veto-weak rows come after
        weak_end[t] = free
        for j, level in enumerate(sc.levels):
            # rows a..free are sorted by cap, highest first: those with cap >= level lead
            limits[t, j] = a + int(np.count_nonzero(cap_sorted[a:free] >= level))
    cuts = sc.cuts - _HALF_ULP
    weak_line = sc.weak_below - _HALF_ULP if weak else None
    if ct.shape[0] == 5 and L == 3:
        at_least, below = _kernels.count_at_least_53(ct, starts, limits, weak_end, 100.0 * sc.weights, cuts,
                                                     weak_line, ct32)
    else:
        at_least, below = _kernels.count_at_least(ct, starts, limits, weak_end, 100.0 * sc.weights, cuts,
                                                  weak_line)
    vw_rows = np.flatnonzero(prep.veto_weak)
    below += len(vw_rows)                                     # weak whatever their score
    for t in range(T):                                        # veto-weak rows that may still reach a level
        r = vw_rows[prep.type_idx[vw_rows] == t]
        if not len(r):
            continue
        score = prep.components[r] @ (100.0 * sc.weights[:, t, :].T)            # (m, S)
        for j, level in enumerate(sc.levels):
            ok = prep.cap[r] >= level
            if ok.any():
                at_least[:, j] += np.count_nonzero(score[ok] >= cuts[:, j], axis=0)
    n = prep.n
    lv = np.concatenate([[0], sc.levels]).astype(int)
    cum = np.vstack([np.full(len(sc), n), at_least.T, np.zeros(len(sc), dtype=np.int64)])
    for j, level in enumerate(lv):
        out["counts"][0, :, level] += cum[j] - cum[j + 1]
    out["weak"][0] += below if weak else np.nan


def _counts_only(prep: Prepared, sc: Scenarios, out: dict, block_rows: int, workers: int,
                 weak: bool = True) -> None:
    """Fill ``out['counts']`` and ``out['weak']`` (one group) using threads over branch blocks."""
    if _kernels.available():
        _counts_compiled(prep, sc, out, weak)
        return
    jobs = []
    for t in np.unique(prep.type_idx):
        rows = np.flatnonzero(prep.type_idx == t)
        w100T = np.ascontiguousarray(100.0 * sc.weights[:, t, :])            # (S, c)
        step = max(block_rows, -(-len(rows) // max(1, workers)))
        for lo in range(0, len(rows), step):
            r = rows[lo:lo + step]
            jobs.append((np.ascontiguousarray(prep.components[r].T), prep.cap[r], prep.veto_weak[r], w100T))
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:   # numpy releases the GIL in matmul and comparisons
            results = list(pool.map(lambda j: _count_rows(j[0], j[1], j[2], sc, j[3], block_rows), jobs))
    else:
        results = [_count_rows(j[0], j[1], j[2], sc, j[3], block_rows) for j in jobs]
    at_least = sum(r[0] for r in results)
    n_total = sum(len(j[1]) for j in jobs)
    lv = np.concatenate([[0], sc.levels]).astype(int)
    cum = np.vstack([np.full(len(sc), n_total), at_least, np.zeros(len(sc), dtype=np.int64)])
    for j, level in enumerate(lv):
        out["counts"][0, :, level] += cum[j] - cum[j + 1]
    out["weak"][0] += sum(r[1] for r in results)


def run(prep: Prepared, sc: Scenarios, *, groups: np.ndarray | None = None, n_groups: int = 1,
        baseline_stars: np.ndarray | None = None, accuracy: bool = True,
        block_rows: int = BLOCK_ROWS, workers: int = 1, weak: bool = True) -> dict[str, np.ndarray]:
    """Evaluate every scenario on every branch, block by block.

    Returns arrays shaped ``(G, S, ...)`` (``G`` groups; one group without
    ``groups``): ``counts`` (G, S, 6) branches per star level 0–5, ``weak``,
    ``n``; with ``baseline_stars``, ``changed`` and ``abs_change``; with
    truth and ``accuracy``, ``correct`` (measured star = true star) and
    ``true_counts``. Without groups, baseline or accuracy only counts are
    needed and no per-branch star matrix is formed (that path also runs on
    ``workers`` threads; integer counts make the result independent of them;
    ``weak=False`` skips the weak count there, leaving it NaN).
    """
    S = len(sc)
    counts_only = groups is None and baseline_stars is None and not (accuracy and prep.truth is not None)
    groups = np.zeros(prep.n, dtype=np.intp) if groups is None else np.asarray(groups, dtype=np.intp)
    out = {"counts": np.zeros((n_groups, S, 6)), "weak": np.zeros((n_groups, S)),
           "n": np.bincount(groups, minlength=n_groups).astype(float)}
    if baseline_stars is not None:
        out["changed"] = np.zeros((n_groups, S))
        out["abs_change"] = np.zeros((n_groups, S))
    use_truth = accuracy and prep.truth is not None
    if use_truth:
        out["correct"] = np.zeros((n_groups, S))
        out["true_counts"] = np.zeros((n_groups, S, 6))
    if counts_only:
        _counts_only(prep, sc, out, max(block_rows, 1024), workers, weak)
        return out
    for t in np.unique(prep.type_idx):
        w100 = 100.0 * sc.weights[:, t, :].T                        # (c, S)
        rows = np.flatnonzero(prep.type_idx == t)
        for lo in range(0, len(rows), block_rows):
            r = rows[lo:lo + block_rows]
            score = _scores(prep.components[r], w100)
            onehot = np.zeros((n_groups, len(r)))
            onehot[groups[r], np.arange(len(r))] = 1.0
            stars = _stars(score, sc.cuts, sc.levels, prep.cap[r])
            weak = (score < sc.weak_below - _HALF_ULP) | prep.veto_weak[r, None]
            out["weak"] += onehot @ weak
            for level in range(6):
                out["counts"][:, :, level] += onehot @ (stars == level)
            if baseline_stars is not None:
                diff = stars - baseline_stars[r, None].astype(np.int8)
                out["changed"] += onehot @ (diff != 0)
                out["abs_change"] += onehot @ np.abs(diff)
            if use_truth:
                true = _stars(_scores(prep.truth[r], w100), sc.cuts, sc.levels, prep.truth_cap[r])
                out["correct"] += onehot @ (true == stars)
                for level in range(6):
                    out["true_counts"][:, :, level] += onehot @ (true == level)
    return out


def baseline_stars(prep: Prepared, policy: Policy) -> np.ndarray:
    """Stars of every branch under ``policy`` (the reference for changed / abs_change)."""
    rules = compile_branch_rules(policy)
    w = rules.weights[prep.type_idx]
    score = np.round(100.0 * np.einsum("nc,nc->n", prep.components, w), _DECIMALS)
    stars = star_levels(score, rules.star_levels, rules.star_cuts)
    return np.minimum(stars, prep.cap)
