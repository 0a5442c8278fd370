"""Regenerate the README's figure: python docs/make_figures.py [POLICY.yaml]

The report's sweep (the survey share, else the first cut or quota) on the
policy's default population, one panel per branch type; names and colours
from the policy.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402
from branchsim._report_sections import sweep_grid, sweep_parameter  # noqa: E402

out = Path(__file__).parent / "figures"
out.mkdir(exist_ok=True)
policy = bs.Policy.load(sys.argv[1] if len(sys.argv) > 1 else None)
key = sweep_parameter(policy)
pop = bs.generate(policy, seed=0, members=False)
df = bs.sweep(pop, policy, {key: sweep_grid(policy, key)}, by="type", progress=False)
fig = bp.sweep_lines(df, x=key, by="type", policy=policy)
name = "satisfaction_share_by_type.png" if key == "branch.satisfaction_share" else f"{policy.name}_sweep_by_type.png"
fig.savefig(out / name, dpi=90, bbox_inches="tight")
print(out / name)
