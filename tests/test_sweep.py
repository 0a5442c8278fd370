"""Sweeps: worked by hand on a tiny table, equal to evaluate for every shipped scheme, executors change nothing."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
import shipped


@pytest.fixture(scope="module")
def policy():
    return bs.Policy.load()


@pytest.fixture(scope="module")
def pop():
    return bs.generate(seed=11, n_branches=900, members=False)


def _grid_of(policy):
    """Two values of two fast parameters of the scheme (survey share and a cut, quota or line)."""
    from branchsim.sensitivity.sweep import fast_paths
    fast = fast_paths(policy)
    grid = {"branch.satisfaction_share": [round(policy["branch.satisfaction_share"] - 0.1, 2),
                                          policy["branch.satisfaction_share"]]}
    for path, (kind, _) in fast.items():
        if kind in ("cut", "quota", "line") and path not in grid:
            v = policy[path]
            grid[path] = [v, round(v * 0.9 if kind == "quota" else v - 2, 6)]
            break
    return grid


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_every_scenario_equals_evaluate_in_every_scheme(name):
    # Each row of a sweep equals evaluate under the policy updated to that row's values: every
    # level, every designation, the changed count and the accuracy.
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=4, n_branches=400, members=False)
    grid = _grid_of(policy)
    df = bs.sweep(pop, policy, grid, progress=False)
    base = bs.evaluate(pop, policy).branches["rating"].to_numpy()
    ids = list(policy.levels) + [d.id for d in policy.scheme.branch.designations]
    for _, row in df.iterrows():
        changes = {k: float(row[k]) for k in grid if float(row[k]) != policy[k]}
        reform = policy.update(changes) if changes else policy
        r = bs.evaluate(pop, reform)
        counts = r.level_counts()["count"]
        assert [int(row[i]) for i in ids] == [int(counts[i]) for i in ids], (name, changes)
        assert row["changed"] == int((r.branches["rating"].to_numpy() != base).sum())
        assert row["accuracy"] == pytest.approx(r.accuracy())


def test_a_design_switch_is_a_sweep_axis(pop, policy):
    # A structural choice (the rating design) sweeps like a parameter: each value re-prepares.
    kmeans = shipped.load("kmeans_by_type")
    df = bs.sweep(pop, kmeans, {"branch.rating.design": ["kmeans", "cuts"],
                                "branch.satisfaction_share": [0.4]}, progress=False)
    assert df["branch.rating.design"].tolist() == ["kmeans", "cuts"]
    cuts = bs.evaluate(pop, policy).level_counts()["count"]
    assert [int(df.iloc[1][lv]) for lv in policy.levels] == [int(cuts[lv]) for lv in policy.levels]


def test_sweep_at_the_baseline_equals_evaluate(pop, policy):
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3, 0.4]}, progress=False)
    row = df[df["branch.satisfaction_share"] == 0.4].iloc[0]
    counts = bs.evaluate(pop, policy).level_counts()["count"]
    for level in counts.index:
        assert row[level] == counts[level], level
    assert row["changed"] == 0 and row["mean_abs_change"] == 0
    assert row["accuracy"] == pytest.approx(bs.evaluate(pop, policy).accuracy())


def test_a_sweep_worked_by_hand_on_five_branches(policy):
    # Five branches whose components are set directly: full marks in every dimension, and a
    # survey rate chosen per branch. Score = 100 * (0.6 * 1 + 0.4 * rate) at the baseline and
    # 100 * (0.7 * 1 + 0.3 * rate) with the survey at 30%.
    ex = pd.read_csv(bs.data_path("examples", "branches.csv"))
    rows = ex[ex["type"] == "government"].iloc[[0]].copy()
    sheet = policy.scheme.branch.sheet
    for i, fact in enumerate(sheet.facts):                  # every indicator at full marks
        kind = sheet.kind[0, i]
        rows[fact] = 1.0 if kind in (0, 2) else (sheet.required[0, i] if kind == 1 else 0.0)
    rates = [1.0, 0.8, 0.6, 0.4, 0.2]                       # all satisfied ... 1 in 5 satisfied
    table = pd.concat([rows] * 5, ignore_index=True)
    table["branch_id"] = [f"H{i}" for i in range(5)]
    table["survey_satisfied"] = [int(r * 10) for r in rates]
    table["survey_basic"] = 0
    table["survey_dissatisfied"] = [10 - int(r * 10) for r in rates]
    pop = bs.load_population(branches=table, policy=policy)
    # baseline: 100, 92, 84, 76, 68 -> levels (cuts 90/80/70) top, top, 2nd, 3rd, floor
    # survey 30%: 100, 94, 88, 82, 76 -> top, top, 2nd, 2nd, 3rd
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": [0.4, 0.3]}, progress=False)
    first, second = df.iloc[0], df.iloc[1]
    levels = list(policy.levels)                            # best first
    assert [first[lv] for lv in levels] == [2, 1, 1, 1]
    assert [second[lv] for lv in levels] == [2, 2, 1, 0]
    # two branches move up one level each (3rd -> 2nd, floor -> 3rd)
    assert second["changed"] == 2 and second["mean_abs_change"] == pytest.approx((1 + 1) / 5)


def test_by_group_sums_to_the_whole(pop, policy):
    grid = {"branch.satisfaction_share": [0.2, 0.4, 0.6]}
    whole = bs.sweep(pop, policy, grid, progress=False)
    by = bs.sweep(pop, policy, grid, by="type", progress=False)
    cols = ["n", *policy.levels, "weak", "changed"]
    summed = by.groupby("branch.satisfaction_share")[cols].sum()
    pd.testing.assert_frame_equal(summed.reset_index(drop=True), whole[cols].reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.parametrize("make", [lambda: ProcessPoolExecutor(2), lambda: ThreadPoolExecutor(3)],
                         ids=["processes", "threads"])
def test_executor_equals_sequential(pop, policy, make):
    grid = {"branch.satisfaction_share": np.linspace(0.2, 0.6, 9),
            f"branch.rating.cuts.{policy.levels[1]}": [78.0, 80.0, 82.0]}
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
        scattered, real = [], client.scatter
        client.scatter = lambda data, **kw: scattered.append(kw) or real(data, **kw)
        par = bs.sweep(pop, policy, grid, executor=client.get_executor(), batch=2, progress=False)
    pd.testing.assert_frame_equal(seq, par)
    assert len(scattered) == 1 and scattered[0]["broadcast"]   # the population once, not with each of 3 tasks


@pytest.mark.parametrize("grid, match", [
    ({"branch.satisfacton_share": [0.3]}, "satisfaction_share"),
    ({"branch.satisfaction_share": [1.4]}, "outside"),
    ({"branch.rating.cuts.four_star": [95.0]}, "out of order"),
    ({"branch.star_cuts.4": [80.0]}, "no such parameter"),
    ({}, "non-empty"),
])
def test_bad_grids(pop, policy, grid, match):
    with pytest.raises(bs.PolicyError, match=match):
        bs.sweep(pop, policy, grid, progress=False)


def test_unknown_group_column(pop, policy):
    with pytest.raises(bs.DataError, match="by="):
        bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3]}, by="colour", progress=False)
