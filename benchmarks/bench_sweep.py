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

    python benchmarks/bench_sweep.py [--branches 1000000] [--scenarios 1000]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import branchsim as bs
from branchsim.sensitivity.engine import Scenarios, prepare, run


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
    sc = Scenarios(np.repeat(w[:, None, :], len(prep.types), axis=1), base.levels,
                   np.repeat(base.cuts, S, axis=0), np.repeat(base.weak_below, S),
                   pd.DataFrame(index=range(S)))
    n = prep.n

    # Star counts only (the weak designation is not a star; the pandas loop does not count it either).
    run(prep, sc.subset(np.arange(2)), accuracy=False, weak=False)   # load the compiled kernels
    t_engine = np.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = run(prep, sc, accuracy=False, weak=False)
        t_engine = min(t_engine, time.perf_counter() - t0)
    assert np.allclose(out["counts"].sum(axis=2), n)

    comp = pd.DataFrame(prep.components, columns=list(prep.component_names))
    cap = pd.Series(prep.cap)
    bins = [-np.inf, *base.cuts[0], np.inf]
    labels = [0, *base.levels]
    k = min(args.pandas_scenarios, S)
    t0 = time.perf_counter()
    pandas_counts = []
    for s in range(k):
        score = comp.dot(w[s]) * 100
        stars = pd.cut(score, bins=bins, right=False, labels=labels).astype(int)
        stars = stars.where(stars <= cap, cap)
        pandas_counts.append(stars.value_counts().reindex(range(6), fill_value=0).to_numpy())
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

    rate = n * S / t_engine
    res = {"branches": n, "scenarios": S, "setup_s": t_setup, "engine_s": t_engine,
           "pandas_s_extrapolated": t_pandas, "pandas_scenarios_timed": k, "matmul_s": t_matmul,
           "engine_branch_scenarios_per_s": rate,
           "speedup_vs_pandas": t_pandas / t_engine, "ratio_vs_matmul": t_matmul / t_engine,
           "pandas_counts_agree_within_ties": float(agree),
           "machine": platform.platform(), "numpy": np.__version__, "pandas": pd.__version__}
    print(f"{n:,} branches x {S:,} scenarios ({n * S:.2e} branch-scenarios); setup {t_setup:.1f} s")
    print(f"engine:        {t_engine:8.2f} s  {rate / 1e6:8.1f} M branch-scenarios/s")
    print(f"pandas loop:   {t_pandas:8.2f} s  (timed {k} scenarios, extrapolated)  "
          f"-> engine is {t_pandas / t_engine:.1f}x faster (target >= 20x)")
    print(f"bare matmul:   {t_matmul:8.2f} s  -> engine runs at {t_matmul / t_engine:.2f}x the bare "
          f"product (target >= 0.5x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
