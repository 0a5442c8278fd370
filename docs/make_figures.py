"""Regenerate the README's figure: python docs/make_figures.py"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402

out = Path(__file__).parent / "figures"
out.mkdir(exist_ok=True)
policy = bs.Policy.load()
pop = bs.generate(policy, seed=0, members=False)
df = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]},
              by="type", progress=False)
fig = bp.sweep_lines(df, by="type")
fig.savefig(out / "satisfaction_share_by_type.png", dpi=90, bbox_inches="tight")
print(out / "satisfaction_share_by_type.png")
