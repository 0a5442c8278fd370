"""A researcher's script, written against branchsim's public API with type annotations.

tests/test_typing.py type-checks this file with mypy (it is never run): every public name used here must
have a real type (not Any) that agrees with how it is used. The ``check`` helper below states the types.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

import branchsim as bs
import branchsim.plot as bp
from branchsim.sensitivity import Comparison, Fragility, MonteCarlo


def check(policy_file: Path, out: Path) -> None:
    policy: bs.Policy = bs.Policy.load(policy_file)
    baseline: bs.Policy = bs.Policy.load()
    levels: list[str] = policy.levels
    params: pd.DataFrame = policy.parameters()
    reform: bs.Policy = policy.update({"branch.satisfaction_share": 0.3}, reason="a lower survey share")

    pop: bs.Population = bs.generate(policy, seed=0, n_branches=500, members=False)
    own: bs.Population = bs.load_population(out / "tables", policy=policy)
    saved: Path = pop.save(out / "population")

    result: bs.Result = bs.evaluate(pop, policy)
    counts: pd.DataFrame = result.level_counts()
    branches: pd.DataFrame = result.branches
    accuracy: float = result.accuracy()
    text: str = result.summary()
    published: pd.Series = bs.published_counts(policy)
    tables: bs.Result = bs.evaluate_tables(policy, own.branches, own.members, own.member_months)

    comparison: Comparison = bs.compare(pop, baseline, reform)
    moved: pd.DataFrame = comparison.transitions
    grid: pd.DataFrame = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.2, 0.3, 0.4]}, by="type")
    exact: pd.DataFrame = bs.exact_sweep(pop, policy, "branch.satisfaction_share")
    fragile: Fragility = bs.fragility(pop, policy, delta=1.0)
    noise: MonteCarlo = bs.measurement_mc(pop, policy, draws=10, seed=1, progress=False)
    probabilities: pd.DataFrame = noise.level_probabilities

    steps: pd.DataFrame = bs.explain(pop, policy, branch_id=str(branches["branch_id"].iloc[0]))
    history: bs.History = bs.simulate(pop, policy, years=3, seed=2)
    ax: Axes = bp.level_counts(result)
    figure_path: Path = bp.save(ax, out / "counts.png", dpi=150)
    ids: np.ndarray = bs.scoring.type_codes(branches["type"], tuple(policy.scheme.branch.types))
    try:
        bs.Policy.load(out / "missing.yaml")
    except bs.PolicyError as err:
        problems: list[str] = err.problems
    print(levels, params, saved, counts, accuracy, text, published, tables, moved, grid, exact, fragile,
          probabilities, steps, history, figure_path, ids, problems)
