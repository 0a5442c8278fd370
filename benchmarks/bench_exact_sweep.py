"""The exact one-share sweep against the grid sweep on the same population.

200,000 generated branches (baseline policy, ``bs.generate(seed=0, members=False)``), the
survey share swept two ways in the same run:

(a) ``bs.exact_sweep``: every count for every share in [0, 1] (one row per interval between
    breakpoints);
(b) ``bs.sweep`` over a 1,000-point grid on [0, 1] (the scenario engine, the reference).

Reported: both times (best of ``--repeat``), their ratio, the number of breakpoints, and a check
that the exact table equals the grid sweep at every grid point (the timing of an answer that
disagrees would mean nothing). Each call prepares the population itself, as a user's call does
(most of the exact sweep's time); the two are also timed after one shared preparation
(``engine.prepare``): the exact sweep's events against the engine's 1,000 scenarios with ``changed``
and ``accuracy`` (what ``sweep`` computes).

    python benchmarks/bench_exact_sweep.py [--branches 200000] [--grid 1000] [--path branch.satisfaction_share]
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
from _timing import best_of
from branchsim.sensitivity.engine import prepare
from branchsim.sensitivity.exact import from_prepared
from branchsim.sensitivity.sweep import run_batches, scenario_arrays


def agrees(table, grid_frame, path: str) -> int:
    """Grid points where the exact table's interval differs from the grid sweep (0 expected)."""
    cols = [c for c in table.columns if c not in ("s_from", "s_to") and not table[c].isna().any()]
    idx = np.searchsorted(table["s_from"].to_numpy(), grid_frame[path].to_numpy(float), side="right") - 1
    mine = table[cols].to_numpy(float)[idx]
    theirs = grid_frame[cols].to_numpy(float)
    return int(np.count_nonzero((mine != theirs).any(axis=1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=200_000)
    ap.add_argument("--grid", type=int, default=1000)
    ap.add_argument("--path", default="branch.satisfaction_share")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "exact_sweep.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    t0 = time.perf_counter()
    pop = bs.generate(seed=0, n_branches=args.branches, members=False)
    t_setup = time.perf_counter() - t0
    grid = np.linspace(0.0, 1.0, args.grid)
    bs.sweep(pop, policy, {args.path: grid[:2]}, progress=False)          # load compiled kernels first
    t_exact, table = best_of(args.repeat, lambda: bs.exact_sweep(pop, policy, args.path))
    t_grid, frame = best_of(args.repeat, lambda: bs.sweep(pop, policy, {args.path: grid}, progress=False))
    wrong = agrees(table, frame, args.path)
    # The same two after the population is prepared once (what each adds to the shared preparation).
    prep = prepare(pop, policy)
    sc = scenario_arrays(policy, pd.DataFrame({args.path: grid}))
    base = prep.levels.astype(np.int16)
    t_exact_core, _ = best_of(args.repeat, lambda: from_prepared(prep, policy, args.path))
    t_grid_core, _ = best_of(args.repeat, lambda: run_batches(prep, sc, baseline=base,
                                                              groups=np.zeros(prep.n, dtype=np.intp)))
    res = {"branches": args.branches, "grid": args.grid, "path": args.path, "setup_s": round(t_setup, 2),
           "exact_s": round(t_exact, 3), "grid_sweep_s": round(t_grid, 3),
           "grid_over_exact": round(t_grid / t_exact, 2), "exact_after_prepare_s": round(t_exact_core, 3),
           "grid_after_prepare_s": round(t_grid_core, 3),
           "grid_over_exact_after_prepare": round(t_grid_core / t_exact_core, 2),
           "intervals": len(table),
           "grid_points_disagreeing": wrong, "machine": platform.machine(), "python": platform.python_version()}
    print(f"{args.branches:,} branches; setup {t_setup:.1f} s")
    print(f"exact sweep:      {t_exact:8.3f} s  ({len(table):,} intervals: every share in [0, 1])")
    print(f"sweep, {args.grid:,} points: {t_grid:8.3f} s  -> the exact sweep takes {t_exact / t_grid:.3f}x the grid "
          f"sweep's time ({t_grid / t_exact:.1f}x faster)")
    print(f"after one prepare: exact {t_exact_core:.3f} s, grid {t_grid_core:.3f} s -> "
          f"{t_grid_core / t_exact_core:.1f}x faster")
    print(f"grid points where the two disagree: {wrong}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
