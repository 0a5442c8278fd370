"""The public sweep against the engine's own counting kernel, on the same scenarios in the same run.

``bs.sweep(pop, policy, {"branch.satisfaction_share": 1,000 values})`` on 1,000,000 generated
branches of the default policy reports, per scenario, the counts per level, the designations,
``changed`` / ``mean_abs_change`` against the policy and the accuracy against the truth. Timed
against, in the same run (best of ``--repeat`` each, alternated so load on the shared machine hits
both alike):

(a) the engine's counting kernel on the same scenarios (``engine.run(prep, sc, accuracy=False,
    designations=False)``: level counts only, no level per branch), the reference the brief names;
(b) the same plus :func:`~branchsim.sensitivity.engine.prepare` (which ``sweep`` runs once per call:
    the branches' components, vetoes and truth), i.e. what counting alone costs a caller;
(c) the sweep's engine part alone: ``engine.run`` with the sweep's arguments (groups, baseline,
    accuracy, designations) against (a);
(d) the NumPy path of (c) (per-block level matrices, what ``sweep`` ran before), timed on the first
    ``--numpy-scenarios`` scenarios and extrapolated.

Target: (a) / sweep >= 0.5 (the issue's). Also printed: (c) / sweep, the sweep against its engine
computing the same outputs (what ``prepare`` and the public layer add).

    python benchmarks/bench_sweep_public.py [--branches 1000000] [--scenarios 1000]
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
from branchsim.sensitivity import engine
from branchsim.sensitivity.engine import prepare, run
from branchsim.sensitivity.sweep import run_batches, scenario_arrays

SHARE = "branch.satisfaction_share"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=1_000_000)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--numpy-scenarios", type=int, default=8)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "sweep_public.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)

    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    S = args.scenarios
    values = np.linspace(0.05, 0.95, S)
    grid = {SHARE: values}
    prep = prepare(pop, policy)
    sc = scenario_arrays(policy, pd.DataFrame(grid))
    base = prep.levels.astype(np.int16)
    groups = np.zeros(prep.n, dtype=np.intp)
    stats = dict(groups=groups, n_groups=1, baseline=base)

    # compiled before timing (Numba caches the kernels on disk)
    run(prep, sc.subset(np.arange(2)), accuracy=False, designations=False)
    run(prep, sc.subset(np.arange(2)), **stats)
    bs.sweep(bs.generate(policy, seed=1, n_branches=200, members=False), policy, {SHARE: values[:3]},
             progress=False)

    t_sweep = t_kernel = t_prep = t_engine = np.inf
    for _ in range(args.repeat):
        t, frame = timed(lambda: bs.sweep(pop, policy, grid, progress=False))
        t_sweep = min(t_sweep, t)
        t_prep = min(t_prep, timed(lambda: prepare(pop, policy))[0])
        t, counts = timed(lambda: run(prep, sc, accuracy=False, designations=False))
        t_kernel = min(t_kernel, t)
        t, full = timed(lambda: run_batches(prep, sc, **stats))          # as sweep batches them (256)
        t_engine = min(t_engine, t)
    assert len(frame) == S
    np.testing.assert_array_equal(full["counts"], counts["counts"])
    levels = policy.scheme.branch.levels.worst_first
    np.testing.assert_array_equal(frame[list(levels)].to_numpy(), counts["counts"][0].astype(int))

    k = min(args.numpy_scenarios, S)
    sub = sc.subset(np.arange(k))
    orig = engine._compiled_units
    engine._compiled_units = lambda *a, **kw: False
    try:
        t_numpy_k, slow = timed(lambda: run(prep, sub, **stats))
    finally:
        engine._compiled_units = orig
    fast = run(prep, sub, **stats)
    for key in slow:
        np.testing.assert_array_equal(fast[key], slow[key])
    t_numpy = t_numpy_k / k * S

    res = {"branches": prep.n, "scenarios": S, "sweep_s": t_sweep, "kernel_counts_s": t_kernel,
           "prepare_s": t_prep, "engine_stats_s": t_engine, "numpy_stats_s_extrapolated": t_numpy,
           "numpy_scenarios_timed": k,
           "ratio_kernel_vs_sweep": t_kernel / t_sweep,
           "ratio_prepare_plus_kernel_vs_sweep": (t_prep + t_kernel) / t_sweep,
           "ratio_kernel_vs_engine_stats": t_kernel / t_engine,
           "ratio_engine_stats_vs_sweep": t_engine / t_sweep,
           "speedup_engine_stats_vs_numpy": t_numpy / t_engine,
           "threads": numba.get_num_threads(), "machine": platform.platform(), "numpy": np.__version__}
    print(f"{prep.n:,} branches x {S:,} share values; {numba.get_num_threads()} threads; best of {args.repeat}")
    print(f"bs.sweep (public, incl. prepare):  {t_sweep:8.2f} s")
    print(f"(a) engine counting kernel:        {t_kernel:8.2f} s  -> kernel / sweep = {t_kernel / t_sweep:.2f}x "
          f"(target >= 0.5x)")
    print(f"(b) prepare + (a):                 {t_prep + t_kernel:8.2f} s  (prepare {t_prep:.2f} s) -> "
          f"{(t_prep + t_kernel) / t_sweep:.2f}x")
    print(f"(c) sweep's engine part (stats):   {t_engine:8.2f} s  -> kernel / engine part = "
          f"{t_kernel / t_engine:.2f}x; engine part / sweep = {t_engine / t_sweep:.2f}x (the sweep against "
          f"its engine computing the same outputs)")
    print(f"(d) NumPy path of (c):             {t_numpy:8.2f} s  (timed {k} scenarios, extrapolated) -> "
          f"compiled is {t_numpy / t_engine:.1f}x faster")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
