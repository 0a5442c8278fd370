"""The fit of a scheme's generator: mean counts over a set of seeds against its published figures.

    python benchmarks/check_calibration.py --seeds 0-59
    python benchmarks/check_calibration.py --seeds 100-159     # independent of the fit
"""
from __future__ import annotations

import argparse

import pandas as pd

import branchsim as bs
from branchsim.calibration import expected_upgrades, targets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-59", help="first-last (inclusive)")
    ap.add_argument("--policy", help="a policy file with its targets file beside it (default: the baseline)")
    args = ap.parse_args(argv)
    lo, hi = (int(x) for x in args.seeds.split("-"))
    policy = bs.Policy.load(args.policy) if args.policy else bs.Policy.load()
    params = bs.GeneratorParams.for_policy(policy)
    rows = []
    for s in range(lo, hi + 1):
        r = bs.evaluate(bs.generate(policy, seed=s, members=False, params=params), policy)
        rows.append({**r.level_counts()["count"].to_dict(), **r.upgrade_counts()["count"].to_dict()})
    mean = pd.DataFrame(rows).mean()
    tgt = targets(policy)["value"]
    out = pd.DataFrame({"published": tgt, "mean": mean.reindex(tgt.index)})
    out["relative_error"] = out["mean"] / out["published"] - 1
    n = int(params.get("scale.n_branches"))
    out["exact_expectation"] = pd.Series(expected_upgrades(params, policy, n))
    print(f"seeds {lo}-{hi} ({hi - lo + 1} cities of {n:,} branches)")
    print(out.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
