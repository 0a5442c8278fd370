"""Generation throughput against NumPy's raw random fill, measured in the same run.

Throughput is member-month-indicator values per second of a whole
``branchsim.generate`` call (branches, survey, members, monthly records and
the DataFrames), compared with ``Generator.random`` filling the same number of
values (float64, NumPy's default, and float32, the dtype the generator draws
monthly records in). Best of ``--repeat`` runs each. Target: ratio >= 0.5.

    python benchmarks/bench_generate.py [--branches 1500] [--repeat 5] [--out FILE]

Results print to the terminal and go to ``--out``: by default
``benchmarks/results/local/generate.json``, which git ignores, so a run
never changes a tracked file. To update the committed figures on purpose,
pass ``--out benchmarks/results/generate.json`` and commit it.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import branchsim as bs


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "generate.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches)
    k = len(policy.member_indicators)
    n_values = len(pop.member_months) * k
    t_gen = best_of(lambda: bs.generate(policy, seed=0, n_branches=args.branches), args.repeat)
    rng = np.random.default_rng(0)
    t_f64 = best_of(lambda: rng.random(n_values), args.repeat)
    t_f32 = best_of(lambda: rng.random(n_values, dtype=np.float32), args.repeat)
    res = {
        "branches": args.branches, "members": len(pop.members), "values": n_values,
        "generate_s": t_gen, "fill_f64_s": t_f64, "fill_f32_s": t_f32,
        "generate_values_per_s": n_values / t_gen,
        "ratio_vs_fill_f64": t_f64 / t_gen, "ratio_vs_fill_f32": t_f32 / t_gen,
        "machine": platform.platform(), "numpy": np.__version__,
    }
    print(f"values (member-month-indicator): {n_values:,}")
    print(f"generate: {t_gen:.3f} s  -> {n_values / t_gen / 1e6:.1f} M values/s")
    print(f"raw fill float64: {t_f64:.3f} s ({n_values / t_f64 / 1e6:.1f} M/s); "
          f"float32: {t_f32:.3f} s ({n_values / t_f32 / 1e6:.1f} M/s)")
    print(f"ratio generate / raw fill: {res['ratio_vs_fill_f64']:.2f} (float64), "
          f"{res['ratio_vs_fill_f32']:.2f} (float32); target >= 0.5")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
