"""Sobol' indices over weights and cut points: ``bs.sobol`` against a plain SALib + pandas loop, same run.

N = 256 base samples (Saltelli, first order), 1,500 generated branches of the default policy, the
default factors without noise (the survey share, each dimension's balance, the lowest cut and the gaps
between cuts, the weak line). The reference is what an analyst would write without branchsim: SALib's
``saltelli.sample``; for each sample a pandas ``DataFrame.dot`` of the branches' component scores with
that sample's weights, ``pd.cut`` at its cut points, ``value_counts`` and the weak count; then
``sobol.analyze`` per output. It is timed on the first ``--reference-samples`` samples and
extrapolated (labelled as such); it ignores vetoes and rounding, so it does less than ``bs.sobol``.
Both are timed best of ``--repeat``, alternated so load on the shared machine hits both alike.
Target: reference / bs.sobol >= 60 (the issue's). ``bs.sobol`` draws SALib's points and computes SALib's
estimators for all outputs in one vectorised pass (equal to ``sobol.analyze`` to ~1e-15, see
tests/test_sobol_fast.py); the reference calls ``sobol.analyze`` once per output.

    python benchmarks/bench_sobol.py [--n 256] [--branches 1500]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import branchsim as bs
from branchsim.sensitivity.factors import default_factors, factor_values

from _sobol_reference import pandas_counts, pandas_scenarios, salib_analysis_seconds, salib_sample


def reference(result, policy, factors, n, samples):
    """The plain loop: (seconds for all samples, extrapolated from ``samples``; seconds for SALib's
    sampling and analysis; the number of samples)."""
    problem, X, t_sample = salib_sample(factors, n)
    b = result.branches
    comp = b[[c for c in b.columns if c.startswith("sub_")]]
    sc, weak_line, levels = pandas_scenarios(policy, factors, factor_values(factors, X[:samples]))
    t0 = time.perf_counter()
    rows = [pandas_counts(comp, sc, weak_line, levels, i) for i in range(samples)]   # one sample at a time
    t_loop = time.perf_counter() - t0
    return t_loop / samples * len(X), t_sample + salib_analysis_seconds(problem, rows, len(X)), len(X)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--branches", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference-samples", type=int, default=300)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "sobol.json"))
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    factors = default_factors(policy, noise=False)
    result = bs.evaluate(pop, policy)
    bs.sobol(pop, policy, factors, n=args.n, progress=False)  # warm-up: compile the kernels this size uses
    ours, ref = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        bs.sobol(pop, policy, factors, n=args.n, progress=False)
        ours.append(time.perf_counter() - t0)
        loop, salib, runs = reference(result, policy, factors, args.n, min(args.reference_samples,
                                                                             args.n * (len(factors) + 2)))
        ref.append(loop + salib)
    best, best_ref = min(ours), min(ref)
    out = {"n": args.n, "branches": args.branches, "factors": len(factors), "runs": runs,
           "sobol_s": best, "reference_s_extrapolated": best_ref, "ratio": best_ref / best,
           "sobol_all_s": ours, "reference_all_s": ref, "machine": platform.platform()}
    print(f"bs.sobol: N={args.n}, {len(factors)} factors, {runs:,} runs on {args.branches:,} branches: "
          f"{best:.2f} s (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"plain SALib + pandas loop, extrapolated from {args.reference_samples} samples: {best_ref:.1f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in ref)})")
    print(f"ratio {best_ref / best:.1f}x (target >= 60x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
