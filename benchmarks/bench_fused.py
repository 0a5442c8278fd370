"""The engine's counting against a plain fused float32 kernel of our own, in the same run.

The reference (``fused``, below) is what one writes in thirty lines with Numba: one ``prange``
over groups of scenarios, rows in cache-sized blocks, each branch's five-term float32 score
compared with the three cuts and the weak line, its level lowered to its veto cap (or set to its
fixed level), and the counts summed. It has no guard band, so where a score lies within float32's
error of a cut it may count the branch on the wrong side; the engine decides those exactly.

Timed (best of ``--repeat``, the two alternated so load on the shared machine hits both alike):

(a) the engine's counting, ``engine.run(prep, sc, accuracy=False, designations=False)`` as
    ``bench_sweep.py`` times it, against ``fused`` without the weak line;
(b) the same with designations (the weak line counted) against ``fused`` with it;
(c) the bare kernel :func:`branchsim.sensitivity._kernels.count_at_least_53` on the engine's sorted
    rows against ``fused`` (no weak line): the kernel without ``run``'s NumPy around it.

Both count on the same branches (the engine's row order, components as float32 (5, n)) and the
same 1,000 Dirichlet weight vectors as ``bench_sweep.py``. Their counts are compared per scenario:
they may differ only by branch-scenarios whose exact score lies within ``_EPS`` of a cut or line
(the number of those is reported). Target: engine / fused >= 0.7x.

    python benchmarks/bench_fused.py [--branches 1000000] [--scenarios 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numba
import numpy as np
import pandas as pd

import branchsim as bs
from _timing import best_of
from branchsim.sensitivity import _kernels
from branchsim.sensitivity.engine import _HALF_ULP, Scenarios, _layout, prepare, run


@numba.njit(parallel=True, fastmath=True, cache=True, boundscheck=False)
def fused(ct32, starts, seg_type, capf, fixedf, weakf, w32, cuts32, line32, with_weak):
    """At least level j+1 (S, 3) and below the weak line (S,), float32, no guard band."""
    S = w32.shape[0]
    at_least = np.zeros((S, 3), dtype=np.int64)
    weak = np.zeros(S, dtype=np.int64)
    per_task, rows = 8, 4096
    zero, one, two = np.float32(0), np.float32(1), np.float32(2)
    for q in numba.prange((S + per_task - 1) // per_task):
        for g in range(len(starts) - 1):
            t = seg_type[g]
            for r0 in range(starts[g], starts[g + 1], rows):
                r1 = min(r0 + rows, starts[g + 1])
                # 1-D views: indexing ct32[k, r0 + i] would keep LLVM from vectorizing the loop
                v0, v1, v2, v3, v4 = ct32[0, r0:r1], ct32[1, r0:r1], ct32[2, r0:r1], ct32[3, r0:r1], ct32[4, r0:r1]
                cap, fix, wk = capf[r0:r1], fixedf[r0:r1], weakf[r0:r1]
                for s in range(q * per_task, min(S, (q + 1) * per_task)):
                    w0, w1, w2, w3, w4 = w32[s, t, 0], w32[s, t, 1], w32[s, t, 2], w32[s, t, 3], w32[s, t, 4]
                    c0, c1, c2, wl = cuts32[s, t, 0], cuts32[s, t, 1], cuts32[s, t, 2], line32[s, t]
                    n0 = n1 = n2 = nw = zero
                    for i in range(r1 - r0):
                        x = v0[i] * w0 + v1[i] * w1 + v2[i] * w2 + v3[i] * w3 + v4[i] * w4
                        lv = min((one if x >= c0 else zero) + (one if x >= c1 else zero) + (one if x >= c2 else zero),
                                 cap[i])
                        lv = fix[i] if fix[i] >= zero else lv     # a fixed level (-1: none)
                        n0 += one if lv > zero else zero
                        n1 += one if lv > one else zero
                        n2 += one if lv > two else zero
                        if with_weak:
                            nw += wk[i] if x < wl else zero
                    at_least[s, 0] += np.int64(n0)
                    at_least[s, 1] += np.int64(n1)
                    at_least[s, 2] += np.int64(n2)
                    weak[s] += np.int64(nw)
    return at_least, weak


@numba.njit(parallel=True, cache=True, boundscheck=False)
def near_counts(ct, starts, seg_type, w100, cuts, line, eps):   # pragma: no cover - compiled
    """Branch-scenarios whose exact (float64) score lies within eps of a cut (S,) or the line (S,)."""
    S = w100.shape[0]
    near_cut = np.zeros(S, dtype=np.int64)
    near_line = np.zeros(S, dtype=np.int64)
    for s in numba.prange(S):
        for g in range(len(starts) - 1):
            t = seg_type[g]
            w = w100[s, t]
            for i in range(starts[g], starts[g + 1]):
                x = ct[0, i] * w[0] + ct[1, i] * w[1] + ct[2, i] * w[2] + ct[3, i] * w[3] + ct[4, i] * w[4]
                for j in range(3):
                    near_cut[s] += abs(x - cuts[s, t, j]) < eps
                near_line[s] += abs(x - line[s, t]) < eps
    return near_cut, near_line


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=1_000_000)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "fused.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)

    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    prep = prepare(pop, policy)
    S = args.scenarios
    w = np.random.default_rng(1).dirichlet(np.ones(5), size=S)             # as bench_sweep.py
    base = Scenarios.from_policy(policy)
    T, L = len(prep.types), prep.n_levels
    if prep.components.shape[1] != 5 or L != 4 or prep.designated.shape[1] != 1:
        raise SystemExit("the reference kernel takes five components, four levels and one designation")
    sc = Scenarios(np.repeat(w[:, None, :], T, axis=1), np.repeat(base.cuts, S, axis=0), None,
                   np.repeat(base.lines, S, axis=0), pd.DataFrame(index=range(S)), "cuts")

    # The engine's sorted rows (its layout is cached on prep, so neither side pays for sorting).
    order, ct, ct32, starts, seg_type, _, limits, weak_end = _layout(prep, "cuts")
    pre = prep.designated[order, 0]
    capf = prep.cap[order].astype(np.float32)
    fixedf = prep.fixed[order].astype(np.float32)
    weakf = (~pre).astype(np.float32)
    w100 = np.ascontiguousarray(100.0 * sc.weights[:, seg_type, :])       # (S, segments, 5)
    cuts = np.ascontiguousarray(sc.cuts[:, seg_type, :] - _HALF_ULP)
    line = np.ascontiguousarray(np.repeat((sc.lines[:, 0] - _HALF_ULP)[:, None], len(seg_type), axis=1))
    seg_index = np.arange(len(seg_type), dtype=np.int64)                  # w100 and cuts are per segment
    w32, cuts32, line32 = w100.astype(np.float32), cuts.astype(np.float32), line.astype(np.float32)

    def ref(with_weak):
        return fused(ct32, starts, seg_index, capf, fixedf, weakf, w32, cuts32, line32, with_weak)

    def engine_counts(designations):
        return run(prep, sc, accuracy=False, designations=designations)

    def bare():
        return _kernels.count_at_least_53(ct, starts, limits, weak_end, w100, cuts, None, ct32)

    for f in (lambda: ref(False), lambda: ref(True), lambda: engine_counts(False), lambda: engine_counts(True),
              bare):
        f()                                                               # compiled / loaded before timing
    t = {k: np.inf for k in ("engine", "engine_des", "bare", "fused", "fused_weak")}
    for _ in range(args.repeat):
        for key, f in (("engine", lambda: engine_counts(False)), ("fused", lambda: ref(False)),
                       ("engine_des", lambda: engine_counts(True)), ("fused_weak", lambda: ref(True)),
                       ("bare", bare)):
            t[key] = min(t[key], best_of(1, f)[0])

    # agreement: the engine's exact counts against the reference's float32 ones
    out = engine_counts(True)
    cum = np.cumsum(out["counts"][0][:, ::-1], axis=1)[:, ::-1]           # at least level j, j = 0..3
    eng_at_least = cum[:, 1:].astype(np.int64)
    eng_weak = out["designated"][0, :, 0].astype(np.int64) - int(pre.sum())
    ref_at_least, ref_weak = ref(True)
    near_cut, near_line = near_counts(ct, starts, seg_index, w100, cuts, line, float(_kernels._EPS))
    d_lv = np.abs(ref_at_least - eng_at_least).sum(axis=1)
    d_weak = np.abs(ref_weak - eng_weak)
    assert (d_lv <= near_cut).all() and (d_weak <= near_line).all(), "differences beyond the guard band"

    n = prep.n
    res = {"branches": n, "scenarios": S, "engine_s": t["engine"], "fused_s": t["fused"],
           "engine_designations_s": t["engine_des"], "fused_weak_s": t["fused_weak"],
           "kernel53_s": t["bare"],
           "ratio_engine_vs_fused": t["fused"] / t["engine"],
           "ratio_engine_designations_vs_fused_weak": t["fused_weak"] / t["engine_des"],
           "ratio_kernel53_vs_fused": t["fused"] / t["bare"],
           "scenarios_with_differences": int(np.count_nonzero(d_lv + d_weak)),
           "level_count_differences": int(d_lv.sum()), "weak_count_differences": int(d_weak.sum()),
           "branch_scenarios_near_a_cut": int(near_cut.sum()), "near_the_line": int(near_line.sum()),
           "threads": numba.get_num_threads(), "machine": platform.platform(), "numpy": np.__version__,
           "numba": numba.__version__}
    print(f"{n:,} branches x {S:,} scenarios; {numba.get_num_threads()} threads; best of {args.repeat}, alternated")
    print(f"(a) engine counts:            {t['engine']:7.3f} s   fused float32: {t['fused']:7.3f} s  -> "
          f"{t['fused'] / t['engine']:.2f}x (target >= 0.7x)")
    print(f"(b) with the weak line:       {t['engine_des']:7.3f} s   fused float32: {t['fused_weak']:7.3f} s  -> "
          f"{t['fused_weak'] / t['engine_des']:.2f}x")
    print(f"(c) count_at_least_53 alone:  {t['bare']:7.3f} s   -> {t['fused'] / t['bare']:.2f}x")
    print(f"counts: {res['scenarios_with_differences']} of {S} scenarios differ ({res['level_count_differences']} "
          f"level counts, {res['weak_count_differences']} weak counts off), all within the "
          f"{res['branch_scenarios_near_a_cut']:,} branch-scenarios near a cut and "
          f"{res['near_the_line']:,} near the line (|exact score - cut| < {_kernels._EPS})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
