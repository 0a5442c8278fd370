"""Design comparison wall time on the default city, against the measurement Monte Carlo alone, in the same run.

:func:`branchsim.compare_designs` on the default city (``generate(seed=0,
members=False)``: 1,500 branches, baseline policy) with five designs —
the baseline's fixed cuts, a quota of the star_quota scheme's shares
(10 / 40 / 30 %), cuts and quota together, k-means over the whole city and
the shipped reform ``baseline_kmeans_by_type`` — and ``--draws`` noise
draws at the default survey sizes (10 and 50 respondents, and the
generator's 25). Reference: :func:`branchsim.measurement_mc` of the same
five designs with the same draws and sizes — the part of the comparison
no design comparison can skip — so the ratio is the cost of everything
else (truth, simulated years, monotonicity, tables). Target: the whole
comparison under a minute on two cores.

    python benchmarks/bench_designs.py [--draws 100] [--branches 1500] [--out FILE]

Results print to the terminal and go to ``--out`` (default
``benchmarks/results/local/designs.json``, which git ignores).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import branchsim as bs


def designs(policy: bs.Policy) -> dict:
    star = bs.Policy.load(bs.data_path("policies", "star_quota.yaml"))
    given = star["branch.rating"]["quotas"]                  # by position: the best level first
    quotas = {lv: dict(given[sq]) for lv, sq in zip(policy.levels[:-1], star.levels[:-1])}
    return {"cuts": policy,
            "quota": {"branch.rating.design": "quota", "branch.rating.quotas": quotas},
            "cuts_and_quota": {"branch.rating.design": "cuts_and_quota", "branch.rating.quotas": quotas},
            "kmeans": {"branch.rating.design": "kmeans"},
            "kmeans_by_type": bs.data_path("reforms", "baseline_kmeans_by_type.yaml")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--branches", type=int, default=None, help="default: the default city's")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "designs.json"),
                    help="where to write the JSON results (default: an untracked file)")
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=0, n_branches=args.branches, members=False)
    d = designs(policy)
    bs.measurement_mc(pop, policy, draws=2, seed=1, progress=False)           # load the compiled kernel
    t0 = time.perf_counter()
    c = bs.compare_designs(pop, d, noise_draws=args.draws, seed=1)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in c.policies.values():
        bs.measurement_mc(pop, p, draws=args.draws, seed=1, survey_sizes=[10, 50], progress=False)
    t_mc = time.perf_counter() - t0
    out = {"branches": len(pop.branches), "designs": list(d), "draws": args.draws,
           "compare_designs_s": round(t_all, 2), "measurement_mc_s": round(t_mc, 2),
           "ratio": round(t_all / t_mc, 2), "target_s": 60, "python": platform.python_version(),
           "machine": platform.machine()}
    print(c.shown().to_string(index=False))
    print(json.dumps(out, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
