"""Sobol' indices with the noise factors: ``bs.sobol`` against a plain re-generate-and-score loop, same run.

N = 256 base samples (Saltelli, first order), 1,500 generated branches of the default policy, the
default factors *with* the two noise factors (``measurement.indicator_noise`` and
``measurement.survey_size``, 0.5-1.5 times their values) besides the survey share, the dimension
balances, the cuts and the weak line. ``bs.sobol`` re-measures the branches once per distinct noise
setting with common random numbers (``branchsim/sensitivity/_remeasure.py``).

The reference is what an analyst would write without that: SALib's ``sobol.sample``; for each sample
``bs.generate(..., params=...)`` with that sample's noise levels (same seed), ``bs.evaluate`` for the
branches' component scores, then a pandas ``DataFrame.dot`` with the sample's weights, ``pd.cut`` at
its cut points, ``value_counts`` and the weak count (as ``bench_sobol.py``'s reference); then
``sobol.analyze`` per output. It is timed on the first ``--reference-samples`` samples and
extrapolated to all of them (labelled as such); it ignores vetoes and rounding, so it does less than
``bs.sobol``. Both are timed best of ``--repeat``, alternated so load on the shared machine hits both
alike. Target: reference / bs.sobol >= 20 (issue 13).

    python benchmarks/bench_sobol_noise.py [--n 256] [--branches 1500] [--repeat 3]
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


def reference(policy, factors, n, samples, n_branches):
    """The plain loop: (seconds for all samples, extrapolated from ``samples``; seconds for SALib's
    sampling and analysis; the number of samples)."""
    problem, X, t_sample = salib_sample(factors, n)
    values = factor_values(factors, X[:samples])
    noise = factors[factors.kind == "noise"]
    sc, weak_line, levels = pandas_scenarios(policy, factors, values)
    rows = []
    t0 = time.perf_counter()
    for i in range(samples):                                # one sample at a time: generate, score, count
        params = {p: (int(values.at[i, nm]) if whole else float(values.at[i, nm]))
                  for nm, p, whole in zip(noise.name, noise.path, noise.integer)}
        pop = bs.generate(policy, seed=0, n_branches=n_branches, members=False, params=params)
        b = bs.evaluate(pop, policy).branches
        rows.append(pandas_counts(b[[c for c in b.columns if c.startswith("sub_")]], sc, weak_line, levels, i))
    t_loop = time.perf_counter() - t0
    return t_loop / samples * len(X), t_sample + salib_analysis_seconds(problem, rows, len(X)), len(X)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--branches", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference-samples", type=int, default=40)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "sobol_noise.json"))
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    factors = default_factors(policy, pop.params)
    assert (factors.kind == "noise").sum() == 2
    bs.sobol(pop, policy, factors, n=8, progress=False)     # warm-up: compile the kernels
    ours, ref = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = bs.sobol(pop, policy, factors, n=args.n, progress=False)
        ours.append(time.perf_counter() - t0)
        loop, salib, runs = reference(policy, factors, args.n, min(args.reference_samples,
                                                                   args.n * (len(factors) + 2)), args.branches)
        ref.append(loop + salib)
    settings = len(res.samples[list(factors.name[factors.kind == "noise"])].drop_duplicates())
    best, best_ref = min(ours), min(ref)
    out = {"n": args.n, "branches": args.branches, "factors": len(factors), "runs": runs,
           "noise_settings": settings, "sobol_s": best, "reference_s_extrapolated": best_ref,
           "reference_samples": args.reference_samples, "ratio": best_ref / best,
           "sobol_all_s": ours, "reference_all_s": ref, "machine": platform.platform()}
    print(f"bs.sobol with noise factors: N={args.n}, {len(factors)} factors, {runs:,} runs"
          f" ({settings:,} noise settings) on {args.branches:,} branches: "
          f"{best:.2f} s (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"plain generate + evaluate + pandas loop, extrapolated from {args.reference_samples} samples: "
          f"{best_ref:.1f} s (runs: {', '.join(f'{t:.1f}' for t in ref)})")
    print(f"ratio {best_ref / best:.1f}x (target >= 20x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
