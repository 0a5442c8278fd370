"""The plain SALib + pandas loop the Sobol' benchmarks time ``bs.sobol`` against (shared by
``bench_sobol.py`` and ``bench_sobol_noise.py``; run them as ``python benchmarks/NAME.py``)."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from branchsim.sensitivity.factors import factor_problem, scenarios


def salib_sample(factors, n: int):
    """SALib's Saltelli sample of the factors: ``(problem, X, seconds)``."""
    from SALib.sample import sobol as ss
    problem = factor_problem(factors)
    t0 = time.perf_counter()
    X = ss.sample(problem, n, calc_second_order=False, seed=1)
    return problem, X, time.perf_counter() - t0


def pandas_scenarios(policy, factors, values):
    """Weights, cuts and weak line of each sample, and the level ids best first."""
    sc = scenarios(policy, factors, values)
    weak_line = sc.lines[:, 0] if sc.lines.size else np.full(len(values), -np.inf)
    return sc, weak_line, list(policy.scheme.branch.levels.ids)


def pandas_counts(comp: pd.DataFrame, sc, weak_line, levels, i: int) -> list:
    """Sample ``i`` scored as a pandas loop scores it: ``DataFrame.dot``, ``pd.cut``, ``value_counts``
    and the weak count (no vetoes, no rounding: less than ``bs.sobol`` does)."""
    score = comp.dot(pd.Series(sc.weights[i, 0] * 100, index=comp.columns))
    lv = pd.cut(score, [-np.inf, *sc.cuts[i, 0].tolist(), np.inf], right=False, labels=levels[::-1])
    counts = lv.value_counts()
    return [int(counts[x]) for x in levels[:-1]] + [int((score < weak_line[i]).sum())]


def salib_analysis_seconds(problem, rows, runs: int) -> float:
    """Seconds for SALib's ``sobol.analyze`` of every output column over ``runs`` runs (the timed
    rows resized to the whole design: the analysis cost is the point, not the values)."""
    from SALib.analyze import sobol as sa
    Y = np.array(rows, float)
    t0 = time.perf_counter()
    Yfull = np.resize(Y, (runs, Y.shape[1]))
    with warnings.catch_warnings():                        # a column of the resized values may be constant
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in range(Y.shape[1]):
            sa.analyze(problem, Yfull[:, j], calc_second_order=False, print_to_console=False, seed=1)
    return time.perf_counter() - t0
