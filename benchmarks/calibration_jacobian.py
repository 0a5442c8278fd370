"""Which generator parameter moves which target: d expected count / d parameter, per scheme.

    python benchmarks/calibration_jacobian.py                   # the three shipped schemes
    python benchmarks/calibration_jacobian.py --seeds 20 --policy tests/data/docs_only/county.yaml

For every count a targets file can hold (each level, each designation, each
``upgrade_<level>``) and every parameter calibrate can fit by default
(branch_quality.*, state.problem_rate with state facts, structure.* with a
structure), the change of the expected count when the parameter moves by one
calibration step (``branchsim.calibration.STEP``; central difference, common
random numbers over the seeds, states averaged out under a fixed-cuts design;
upgrades: their exact expectation), at the scheme's own generator parameters
and scale. A cell near zero: that target says nothing of that parameter.
docs/calibration.md quotes the output.
"""
from __future__ import annotations

import argparse

import pandas as pd

import branchsim as bs
from branchsim.calibration import QUALITY, STEP, expected_counts, expected_upgrades

SHIPPED = ("baseline", "star_quota", "member_points")


def jacobian(policy: bs.Policy, seeds, n: int | None = None) -> pd.DataFrame:
    """Rows: targets; columns: parameters; cells: change of the expected count per calibration step."""
    s = policy.scheme
    params = bs.GeneratorParams.for_policy(policy)
    n = int(params.get("scale.n_branches")) if n is None else n
    names = list(QUALITY[:4]) + (["state.problem_rate"] if s.branch.state_facts else [])
    names += ["structure.p_underlevel", "structure.size_sigma"] if s.structure is not None else []

    def counts(p):
        c = expected_counts(p, policy, seeds, n, smooth=True)
        return pd.concat([c, pd.Series(expected_upgrades(p, policy, n), dtype=float)])

    cols = {}
    for k in names:
        h, v = STEP[k], params.get(k)
        lo = max(v - h, 0.0) if k != "branch_quality.skew" else v - h
        hi = min(v + h, 1.0) if k in ("state.problem_rate", "structure.p_underlevel") else v + h
        cols[k] = (counts(params.with_values({k: hi})) - counts(params.with_values({k: lo}))) * h / (hi - lo)
    out = pd.DataFrame(cols)
    out.attrs["n"], out.attrs["expected"] = n, counts(params)
    return out


def _markdown(table: pd.DataFrame) -> str:
    """A Markdown table (no dependency beyond pandas)."""
    rows = [["target", *table.columns], ["---"] * (len(table.columns) + 1)]
    rows += [[str(i), *(f"{v:g}" for v in r)] for i, r in zip(table.index, table.to_numpy())]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20)")
    ap.add_argument("--policy", action="append", help="a policy file (default: the shipped schemes)")
    args = ap.parse_args(argv)
    policies = ([bs.Policy.load(p) for p in args.policy] if args.policy
                else [bs.Policy.load(bs.data_path("policies", f"{name}.yaml")) for name in SHIPPED])
    for policy in policies:
        j = jacobian(policy, range(args.seeds))
        steps = ", ".join(f"{k.split('.')[-1]} {STEP[k]:g}" for k in j.columns)
        print(f"\n## {policy.name} ({policy.scheme.branch.rating.design} design, {j.attrs['n']:,} branches, "
              f"seeds 0-{args.seeds - 1}; per step: {steps})\n")
        table = j.copy()
        table.insert(0, "expected", j.attrs["expected"].reindex(j.index))
        table.columns = ["expected"] + [c.split(".")[-1] for c in j.columns]
        print(_markdown(table.round(2)))


if __name__ == "__main__":
    main()
