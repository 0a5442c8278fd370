"""How far the published counts pin the generator down: plausible cities of the baseline, and their cut points.

    python benchmarks/plausible_spread.py --cities 30 --seeds 6

For two sets of targets, the published weak count alone and every published
count, draws plausible cities (branchsim.plausible_cities, at the published
scale) and prints the fitted and drawn parameters' spread across cities and
the cut points that reproduce the published star counts on each city's
population (fit_cut_points(cities=)), with their 5-95% intervals.
docs/calibration.md quotes the output.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

import branchsim as bs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cities", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=6, help="common random numbers: seeds 0..N-1")
    args = ap.parse_args(argv)
    policy = bs.Policy.load()
    published = bs.calibration.target_counts(policy)[0]
    weak = policy.scheme.branch.designations[0].id
    for name, targets in (("weak count only", {weak: float(published[weak])}), ("every published count", None)):
        t = time.perf_counter()
        cities = bs.plausible_cities(policy, targets, n=args.cities, scale=1500, seeds=range(args.seeds))
        took = time.perf_counter() - t
        print(f"\n## {name}: {len(cities)} cities from {cities.details['candidates']} candidates "
              f"({took:.0f} s; seeds 0-{args.seeds - 1})\n")
        cols = [c for c in cities.params.columns if c not in ("seed", "evaluations")]
        print(cities.params[cols].describe().loc[["mean", "std", "min", "max"]]
              .T.round(4).to_string())
        fit = bs.fit_cut_points(None, policy, cities=cities)
        cut = fit[fit["quantity"] == "cut"].set_index("level")[["mean", "sd", "lower", "upper"]]
        print("\ncut points reproducing the published star counts, across cities (5-95%):")
        print(cut.round(2).to_string())
        pd.set_option("display.width", 160)


if __name__ == "__main__":
    main()
