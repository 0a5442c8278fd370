"""Uses of branchsim's public API that are wrong: mypy must reject each line marked ``# error``.

tests/test_typing.py checks that mypy reports an error on exactly these lines (so the public names are
typed, not Any, and the check can fail).
"""
from __future__ import annotations

import pandas as pd

import branchsim as bs


def misuse(pop: bs.Population, policy: bs.Policy) -> None:
    result = bs.evaluate(pop, policy)
    n: int = result.level_counts()  # error: a DataFrame is not an int
    bs.evaluate(policy, pop)  # error: arguments swapped
    bs.generate(policy, seed=0, n_branches="500")  # error: n_branches is an int
    frame: pd.DataFrame = bs.Policy.load()  # error: a Policy is not a DataFrame
    bs.sweep(pop, policy, [0.2, 0.3])  # error: the grid maps parameter paths to values
    bs.sensitivity.sobol(pop, policy, n="many")  # error: n is an int
    name: int = policy.name  # error: a policy's name is a str
    print(n, frame, name)
