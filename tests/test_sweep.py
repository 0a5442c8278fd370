"""Sweeps: worked by hand on a tiny table, equal to evaluate at the baseline, executors change nothing."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs


@pytest.fixture(scope="module")
def policy():
    return bs.Policy.load()


@pytest.fixture(scope="module")
def pop():
    return bs.generate(seed=11, n_branches=900, members=False)


def test_sweep_at_the_baseline_equals_evaluate(pop, policy):
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3, 0.4]}, progress=False)
    row = df[df["branch.satisfaction_share"] == 0.4].iloc[0]
    counts = bs.evaluate(pop, policy).star_counts()["count"]
    for level in counts.index:
        assert row[level] == counts[level], level
    assert row["changed"] == 0 and row["mean_abs_change"] == 0
    assert row["accuracy"] == pytest.approx(bs.evaluate(pop, policy).accuracy())


def test_each_scenario_equals_evaluate_under_its_policy(pop, policy):
    grid = {"branch.satisfaction_share": [0.25, 0.55], "branch.star_cuts.5": [86.0, 92.0]}
    df = bs.sweep(pop, policy, grid, progress=False)
    base = bs.evaluate(pop, policy).branches["stars"].to_numpy()
    for _, row in df.iterrows():
        reform = policy.update({k: float(row[k]) for k in grid})
        r = bs.evaluate(pop, reform)
        counts = r.star_counts()["count"]
        for level in counts.index:
            assert row[level] == counts[level]
        assert row["changed"] == int((r.branches["stars"].to_numpy() != base).sum())
        assert row["accuracy"] == pytest.approx(r.accuracy())


def test_a_sweep_worked_by_hand_on_five_branches(policy):
    # Five branches whose components are set directly: full marks in every dimension, and a
    # survey rate chosen per branch. Score = 100 * (0.6 * 1 + 0.4 * rate) at the baseline and
    # 100 * (0.7 * 1 + 0.3 * rate) with the survey at 30%.
    ex = pd.read_csv(bs.data_path("examples", "branches.csv"))
    rows = ex[ex["type"] == "government"].iloc[[0]].copy()
    rules = bs.scoring.compile_branch_rules(policy)
    for i, fact in enumerate(rules.indicators.facts):      # every indicator at full marks
        kind = rules.indicators.kind[i]
        rows[fact] = 1.0 if kind in (0, 2) else (rules.indicators.required[i] if kind == 1 else 0.0)
    rates = [1.0, 0.8, 0.6, 0.4, 0.2]                       # all satisfied ... 1 in 5 satisfied
    table = pd.concat([rows] * 5, ignore_index=True)
    table["branch_id"] = [f"H{i}" for i in range(5)]
    table["survey_satisfied"] = [int(r * 10) for r in rates]
    table["survey_basic"] = 0
    table["survey_dissatisfied"] = [10 - int(r * 10) for r in rates]
    pop = bs.load_population(branches=table, policy=policy)
    # baseline: 100, 92, 84, 76, 68 -> stars 5, 5, 4, 3, 0
    # survey 30%: 100, 94, 88, 82, 76 -> stars 5, 5, 4, 4, 3
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.4, 0.3]}, progress=False)
    first, second = df.iloc[0], df.iloc[1]
    assert (first["five_star"], first["four_star"], first["three_star"], first["no_star"]) == (2, 1, 1, 1)
    assert (second["five_star"], second["four_star"], second["three_star"], second["no_star"]) == (2, 2, 1, 0)
    assert second["changed"] == 2 and second["mean_abs_change"] == pytest.approx((1 + 3) / 5)


def test_by_group_sums_to_the_whole(pop, policy):
    grid = {"branch.satisfaction_share": [0.2, 0.4, 0.6]}
    whole = bs.sweep(pop, policy, grid, progress=False)
    by = bs.sweep(pop, policy, grid, by="type", progress=False)
    summed = by.groupby("branch.satisfaction_share")[["n", "five_star", "weak", "changed"]].sum()
    pd.testing.assert_frame_equal(summed.reset_index(drop=True),
                                  whole[["n", "five_star", "weak", "changed"]].reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.parametrize("make", [lambda: ProcessPoolExecutor(2), lambda: ThreadPoolExecutor(3)],
                         ids=["processes", "threads"])
def test_executor_equals_sequential(pop, policy, make):
    grid = {"branch.satisfaction_share": np.linspace(0.2, 0.6, 9), "branch.star_cuts.4": [78.0, 80.0, 82.0]}
    seq = bs.sweep(pop, policy, grid, progress=False)
    with make() as ex:
        par = bs.sweep(pop, policy, grid, executor=ex, batch=4, progress=False)
    pd.testing.assert_frame_equal(seq, par)


def test_dask_executor_equals_sequential(pop, policy):
    distributed = pytest.importorskip("dask.distributed")
    grid = {"branch.satisfaction_share": np.linspace(0.2, 0.6, 5)}
    seq = bs.sweep(pop, policy, grid, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        par = bs.sweep(pop, policy, grid, executor=client.get_executor(), batch=2, progress=False)
    pd.testing.assert_frame_equal(seq, par)


@pytest.mark.parametrize("grid, match", [
    ({"branch.satisfacton_share": [0.3]}, "satisfaction_share"),
    ({"branch.satisfaction_share": [1.4]}, "outside"),
    ({"branch.star_cuts.4": [95.0]}, "out of order"),
    ({}, "non-empty"),
])
def test_bad_grids(pop, policy, grid, match):
    with pytest.raises(bs.PolicyError, match=match):
        bs.sweep(pop, policy, grid, progress=False)


def test_unknown_group_column(pop, policy):
    with pytest.raises(bs.DataError, match="by="):
        bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3]}, by="colour", progress=False)
