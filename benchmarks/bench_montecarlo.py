"""Measurement Monte Carlo throughput against NumPy drawing the same random values, in the same run.

1,000 replications (``draws``) of :func:`branchsim.measurement_mc` on the
default city (``generate(seed=0)``: 1,500 branches, baseline policy):
every draw redraws each branch's indicator facts (a normal and a uniform
per branch and indicator) and survey answers (a normal mood shock per
branch, then the respondents' answers), and rates the whole city. Reference:
the time NumPy takes to draw the same random values with the same
distributions — ``standard_normal`` for the normals, ``random`` for the
uniforms, ``multinomial`` of the same number of respondents for the
answers (float64, one ``Generator``, in pieces of ``--piece`` draws so that
memory stays bounded) — measured in the same run. Best of ``--repeat``
each. Target: Monte Carlo time ≤ 2× the reference.

The Monte Carlo is called once on two draws first, so the compiled kernel
is loaded (Numba compiles it once and caches it) before timing.

    python benchmarks/bench_montecarlo.py [--draws 1000] [--branches 1500] [--repeat 3] [--out FILE]

Results print to the terminal and go to ``--out``: by default
``benchmarks/results/local/montecarlo.json``, which git ignores. To update
the committed figures on purpose, pass ``--out benchmarks/results/montecarlo.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import branchsim as bs
from branchsim.measurement import survey_probabilities


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best_of(fn, repeat: int) -> tuple[float, list]:
    """The shortest of ``repeat`` timed calls, and every call's time (their spread)."""
    runs = [timed(fn) for _ in range(repeat)]
    return min(runs), runs


def reference(n: int, k: int, draws: int, size: int, answer_values, piece: int, rng) -> None:
    """NumPy drawing what ``draws`` Monte Carlo draws draw: normals, uniforms, survey answers."""
    probs = survey_probabilities(np.linspace(0.3, 1.0, n), answer_values)
    probs /= probs.sum(axis=1, keepdims=True)
    for lo in range(0, draws, piece):
        d = min(piece, draws - lo)
        rng.standard_normal(d * n * k + d * n)
        rng.random(d * n * k)
        rng.multinomial(np.full(d * n, size), np.tile(probs, (d, 1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--branches", type=int, default=None, help="default: the default city's")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--piece", type=int, default=50, help="draws per NumPy call in the reference")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "montecarlo.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    b = policy.scheme.branch
    n, k = len(pop.branches), b.sheet.k
    size = int(pop.params.get("measurement.survey_size"))
    bs.measurement_mc(pop, policy, draws=2, seed=1, progress=False)           # load the compiled kernel
    t_mc, runs_mc = best_of(lambda: bs.measurement_mc(pop, policy, draws=args.draws, seed=1, progress=False),
                            args.repeat)
    rng = np.random.default_rng(0)
    t_ref, runs_ref = best_of(lambda: reference(n, k, args.draws, size, b.answer_values, args.piece, rng),
                              args.repeat)
    values = args.draws * n * (2 * k + 1 + size)
    res = {"draws": args.draws, "branches": n, "indicators": k, "respondents": size,
           "normals": args.draws * n * (k + 1), "uniforms": args.draws * n * k,
           "answers": args.draws * n * size, "montecarlo_s": t_mc, "reference_s": t_ref,
           "montecarlo_runs_s": runs_mc, "reference_runs_s": runs_ref, "ratio_mc_over_reference": t_mc / t_ref,
           "machine": platform.platform(), "numpy": np.__version__}
    print(f"{args.draws} draws × {n} branches × {k} indicators (+ survey shock, {size} answers each): "
          f"{values / 1e6:.0f} M random values")
    print(f"measurement_mc: {t_mc:.3f} s (runs: {', '.join(f'{t:.3f}' for t in runs_mc)})")
    print(f"NumPy drawing the same values: {t_ref:.3f} s (runs: {', '.join(f'{t:.3f}' for t in runs_ref)})")
    print(f"ratio Monte Carlo / reference: {t_mc / t_ref:.2f}× (target <= 2×)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
