"""The fit of the default generator: mean counts over a set of seeds against the published figures.

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
    args = ap.parse_args(argv)
    lo, hi = (int(x) for x in args.seeds.split("-"))
    policy, params = bs.Policy.load(), bs.GeneratorParams.load()
    rows = []
    for s in range(lo, hi + 1):
        r = bs.evaluate(bs.generate(policy, seed=s, members=False, params=params), policy)
        rows.append({**r.star_counts()["count"].to_dict(), **r.upgrade_counts()["count"].to_dict()})
    mean = pd.DataFrame(rows).mean()
    tgt = targets()["value"]
    out = pd.DataFrame({"published": tgt, "mean": mean.reindex(tgt.index)})
    out["relative_error"] = out["mean"] / out["published"] - 1
    out["exact_expectation"] = pd.Series(expected_upgrades(params, policy, 1500))
    print(f"seeds {lo}-{hi} ({hi - lo + 1} cities of 1,500 branches)")
    print(out.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
