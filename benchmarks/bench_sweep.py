"""Scenario-axis throughput: branches × random weight vectors, counting stars per scenario.

1,000,000 branches × 1,000 random weight vectors over the five components
(four dimensions + satisfaction, Dirichlet-distributed so each sums to 1),
counting branches per star level per scenario. Reported as branch-scenarios
per second, against two references measured in the same run:

(a) a pandas loop over scenarios on the same data (score column, ``pd.cut``,
    ``value_counts``) — timed on the first ``--pandas-scenarios`` scenarios
    and reported per branch-scenario;
(b) the bare matrix product of the same shapes (engine and product: best of ``--repeat``), ``(n, 5) @ (5, S)`` in
    float64, written into a preallocated buffer of ``--ref-rows`` rows at a
    time (the whole product, 8 GB, is not held at once).

Targets: >= 20x (a) and >= 0.5x (b). The engine is called once on two scenarios first, so
the compiled kernels are loaded (Numba compiles them once and caches them) before timing.

The quota case: the same branches and weights under a quota design (10 % of the branches at
the top level, 40 % at the next, 30 % at the one below: cumulative shares 0.8 / 0.5 / 0.1),
where every scenario's thresholds are found from its own scores. Timed against the fixed-cut
counting of the same run, twice: the engine (``run`` with the quota design against ``run``
with the policy's cuts) and the bare kernels on the same sorted rows
(:func:`branchsim.sensitivity._quota.quota_counts` against
:func:`branchsim.sensitivity._kernels.count_at_least_53`). Target: the quota kernel at
>= 0.3x the fixed-cut kernel's throughput.

    python benchmarks/bench_sweep.py [--branches 1000000] [--scenarios 1000]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

import branchsim as bs
from _timing import best_of
from branchsim.sensitivity import _kernels
from branchsim.sensitivity._quota import quota_counts
from branchsim.sensitivity.engine import Scenarios, prepare, run

#: Cumulative shares of the quota case: at most 80 % at the lowest level above the floor or
#: better, 50 % at the next or better, 10 % at the top.
QUOTAS = (0.8, 0.5, 0.1)


def kernel_layout(prep):
    """Rows sorted by type, then veto cap from none down, as the kernels read them.

    Returns ``(ct, ct32, starts, limits)``: for each type and level
    above the floor, ``limits`` ends the rows whose cap lets them reach it.
    """
    order = np.lexsort((-prep.cap.astype(np.int16), prep.type_idx))
    t_sorted, cap_sorted = prep.type_idx[order], prep.cap[order]
    T, L = len(prep.types), prep.n_levels
    starts = np.searchsorted(t_sorted, np.arange(T + 1)).astype(np.int64)
    limits = np.array([[starts[t] + np.count_nonzero(cap_sorted[starts[t]:starts[t + 1]] >= level)
                        for level in range(1, L)] for t in range(T)], dtype=np.int64).reshape(T, L - 1)
    ct = np.ascontiguousarray(prep.components[order].T)
    return ct, ct.astype(np.float32), starts, limits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=1_000_000)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--pandas-scenarios", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (engine and matmul)")
    ap.add_argument("--ref-rows", type=int, default=65_536)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "sweep.json"),
                    help="where to write the JSON results (default: an untracked file; name benchmarks/results/sweep.json to update the committed figures)")
    args = ap.parse_args(argv)

    policy = bs.Policy.load()
    t0 = time.perf_counter()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    prep = prepare(pop, policy)
    t_setup = time.perf_counter() - t0
    S = args.scenarios
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(5), size=S)                                  # (S, 5), rows sum to 1
    base = Scenarios.from_policy(policy)
    T, L = len(prep.types), prep.n_levels
    sc = Scenarios(np.repeat(w[:, None, :], T, axis=1), np.repeat(base.cuts, S, axis=0), None,
                   np.repeat(base.lines, S, axis=0), pd.DataFrame(index=range(S)), "cuts")
    quotas = np.array(QUOTAS) if L - 1 == len(QUOTAS) else np.linspace(0.8, 0.1, L - 1)
    sq = Scenarios(sc.weights, None, np.repeat(quotas[None], S, axis=0), sc.lines, sc.table, "quota")
    n = prep.n

    # Level counts only (designations are not levels; the pandas loop does not count them either).
    run(prep, sc.subset(np.arange(2)), accuracy=False, designations=False)   # load the compiled kernels
    t_engine, out = best_of(args.repeat, lambda: run(prep, sc, accuracy=False, designations=False))
    assert np.allclose(out["counts"].sum(axis=2), n)

    comp = pd.DataFrame(prep.components, columns=list(prep.component_names))
    cap = pd.Series(prep.cap)
    if not (base.cuts[0] == base.cuts[0, :1]).all():
        raise SystemExit("the pandas reference takes one set of cuts for every type")
    bins = [-np.inf, *base.cuts[0, 0], np.inf]
    labels = list(range(L))
    k = min(args.pandas_scenarios, S)
    t0 = time.perf_counter()
    pandas_counts = []
    for s in range(k):
        score = comp.dot(w[s]) * 100
        stars = pd.cut(score, bins=bins, right=False, labels=labels).astype(int)
        stars = stars.where(stars <= cap, cap)
        pandas_counts.append(stars.value_counts().reindex(range(L), fill_value=0).to_numpy())
    t_pandas = (time.perf_counter() - t0) / k * S                          # extrapolated to S scenarios
    agree = np.mean([np.abs(pc - out["counts"][0, s]).max() <= 2 for s, pc in enumerate(pandas_counts)])

    W = w.T.copy()
    C = prep.components
    buf = np.empty((args.ref_rows, S))
    t_matmul = np.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for lo in range(0, n, args.ref_rows):
            c = C[lo:lo + args.ref_rows]
            np.matmul(c, W, out=buf[:len(c)])
        t_matmul = min(t_matmul, time.perf_counter() - t0)

    # The quota design: the engine, then the bare kernels on the same sorted rows and weights.
    run(prep, sq.subset(np.arange(2)), accuracy=False, designations=False)
    t_engine_quota, out_q = best_of(args.repeat, lambda: run(prep, sq, accuracy=False, designations=False))
    assert np.allclose(out_q["counts"].sum(axis=2), n)
    ct, ct32, starts, limits = kernel_layout(prep)
    w100 = np.ascontiguousarray(100.0 * sc.weights)                       # (S, T, c)
    cuts = np.ascontiguousarray(sc.cuts)                                  # (S, T, L-1)
    allowed = np.floor(n * quotas + 1e-9).astype(np.int64)[None, None, :].repeat(S, axis=0)   # (S, 1, L-1)
    seg_group = np.zeros(T, dtype=np.int64)
    kernel53 = ct.shape[0] == 5 and L - 1 == 3
    fixed_kernel = _kernels.count_at_least_53 if kernel53 else _kernels.count_at_least

    def fixed(k=S):
        return fixed_kernel(ct, starts, limits, starts[1:], w100[:k], cuts[:k], None,
                            *((ct32,) if kernel53 else ()))

    def quota(k=S):
        return quota_counts(ct, starts, seg_group, limits, starts[1:], w100[:k], allowed[:k], None, ct32)

    fixed(2), quota(2)                               # compiled before timing
    t_fixed = t_quota = np.inf
    for _ in range(args.repeat):                     # alternated, so load on the machine hits both alike
        t_fixed = min(t_fixed, best_of(1, fixed)[0])
        t_quota = min(t_quota, best_of(1, quota)[0])
    _, at_least, _ = quota()
    assert (at_least <= allowed[:, 0, :]).all()      # a quota is never exceeded

    rate = n * S / t_engine
    res = {"branches": n, "scenarios": S, "setup_s": t_setup, "engine_s": t_engine,
           "pandas_s_extrapolated": t_pandas, "pandas_scenarios_timed": k, "matmul_s": t_matmul,
           "engine_branch_scenarios_per_s": rate,
           "speedup_vs_pandas": t_pandas / t_engine, "ratio_vs_matmul": t_matmul / t_engine,
           "pandas_counts_agree_within_ties": float(agree),
           "quota_shares": quotas.tolist(), "engine_quota_s": t_engine_quota,
           "quota_engine_ratio": t_engine / t_engine_quota,
           "fixed_kernel": fixed_kernel.__name__, "fixed_kernel_s": t_fixed, "quota_kernel_s": t_quota,
           "quota_kernel_ratio": t_fixed / t_quota,
           "quota_kernel_branch_scenarios_per_s": n * S / t_quota,
           "threads": numba.get_num_threads(),
           "machine": platform.platform(), "numpy": np.__version__, "pandas": pd.__version__}
    print(f"{n:,} branches x {S:,} scenarios ({n * S:.2e} branch-scenarios); setup {t_setup:.1f} s")
    print(f"engine:        {t_engine:8.2f} s  {rate / 1e6:8.1f} M branch-scenarios/s")
    print(f"pandas loop:   {t_pandas:8.2f} s  (timed {k} scenarios, extrapolated)  "
          f"-> engine is {t_pandas / t_engine:.1f}x faster (target >= 20x)")
    print(f"bare matmul:   {t_matmul:8.2f} s  -> engine runs at {t_matmul / t_engine:.2f}x the bare "
          f"product (target >= 0.5x)")
    print(f"quota engine:  {t_engine_quota:8.2f} s  -> {t_engine / t_engine_quota:.2f}x the fixed-cut engine's "
          f"throughput")
    print(f"quota kernel:  {t_quota:8.2f} s  against {fixed_kernel.__name__} {t_fixed:.2f} s -> "
          f"{t_fixed / t_quota:.2f}x its throughput (target >= 0.3x; {numba.get_num_threads()} threads)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
