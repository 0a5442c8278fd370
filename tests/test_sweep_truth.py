"""The sweep's accuracy against the truth: true levels include the vetoes the true state triggers."""
from __future__ import annotations

import numpy as np
import pytest

import branchsim as bs
from branchsim import model
from branchsim.evaluate import branch_inputs
from branchsim.sensitivity.engine import prepare

CUT3, CUT4, CUT5 = (f"branch.rating.cuts.{lv}" for lv in ("three_star", "four_star", "five_star"))


@pytest.fixture(scope="module")
def vacated(policy):
    """A generated population in which 15 branches that truly earn the top two levels lose their secretary.

    A vacancy is part of the branch's true state: it caps the true level at the floor and makes
    the branch truly weak, and the measured record (recorded without error) agrees.
    """
    pop = bs.generate(seed=8, n_branches=400, members=False)
    true = bs.evaluate(pop, policy).branches["true_rating"].to_numpy()
    hit = np.flatnonzero(np.isin(true, policy.levels[:2]))[:15]
    assert len(hit) == 15
    b = pop.branches.copy()
    b.loc[b.index[hit], "secretary_in_post"] = 0.0
    return bs.Population(b, seed=pop.seed, params=pop.params), hit


def _accuracy_under(pop, policy, changes: dict) -> float:
    changes = {k: v for k, v in changes.items() if policy.get(k) != v}
    return bs.evaluate(pop, policy.update(changes) if changes else policy).accuracy()


def test_prepared_carries_the_true_vetoes(vacated, policy):
    pop, hit = vacated
    prep = prepare(pop, policy)
    tr = model.truth(pop, policy)
    np.testing.assert_array_equal(prep.truth, tr.components)
    true = tr.outcome_arrays(policy.scheme, branch_inputs(pop.branches, policy.scheme))
    assert (true["vetoes"][hit].any(axis=1)).all()
    assert (prep.truth_cap[hit] == 0).all() and prep.truth_designated[hit, 0].all()
    # Loaded tables have no truth: nothing to compare with.
    loaded = prepare(bs.load_population(bs.data_path("examples"), policy=policy), policy)
    assert loaded.truth is None and loaded.truth_cap is None and loaded.truth_designated is None


def test_baseline_accuracy_is_evaluate_accuracy(vacated, policy):
    pop, hit = vacated
    r = bs.evaluate(pop, policy)
    sw = bs.sweep(pop, policy, {"branch.satisfaction_share": [policy["branch.satisfaction_share"]]},
                  progress=False)
    assert sw["accuracy"].iloc[0] == pytest.approx(r.accuracy(), abs=1e-12)
    # The vacated branches are measured and truly at the floor, so they count as correct; with
    # true levels that ignored the vacancy they would all count as wrong.
    b = r.branches
    floor = policy.levels[-1]
    assert (b["rating"].iloc[hit] == floor).all() and (b["true_rating"].iloc[hit] == floor).all()
    uncapped = bs.rating.cut_levels(b["true_score"].to_numpy(), policy.scheme.branch.rating.cuts[0])
    assert (uncapped[hit] >= 1).all()
    correct = b["rating"].to_numpy() == b["true_rating"].to_numpy()
    assert correct[hit].all()
    assert sw["accuracy"].iloc[0] == pytest.approx(correct.mean(), abs=1e-12)


@pytest.mark.parametrize("grid", [
    {CUT4: [76, 78, 80, 82]},
    {"branch.satisfaction_share": [0.2, 0.3, 0.4], CUT5: [88, 90]},
    {"branch.vetoes.secretary_vacant.cap": ["no_star", "three_star"]},
], ids=["cut", "share-x-cut", "veto-cap"])
def test_scenario_accuracy_is_evaluate_accuracy_under_that_policy(vacated, policy, grid):
    # Each scenario's accuracy is what evaluate reports under the reformed policy, whose true
    # stars are capped by the reformed vetoes.
    pop, _ = vacated
    sw = bs.sweep(pop, policy, grid, progress=False)
    assert len(sw) == int(np.prod([len(v) for v in grid.values()]))
    for _, row in sw.iterrows():
        changes = {k: type(policy.get(k))(row[k]) for k in grid}
        assert row["accuracy"] == pytest.approx(_accuracy_under(pop, policy, changes), abs=1e-12), changes
    if "branch.vetoes.secretary_vacant.cap" in grid:          # a veto that caps less lets hits rate higher
        assert sw["accuracy"].nunique() == 2


def test_accuracy_by_group_is_evaluate_accuracy_per_group(vacated, policy):
    pop, _ = vacated
    sw = bs.sweep(pop, policy, {CUT3: [68, 70]}, by="type", progress=False)
    for _, row in sw.iterrows():
        cut = int(row[CUT3])
        pol = policy if cut == policy[CUT3] else policy.update({CUT3: cut})
        b = bs.evaluate(pop, pol).branches
        b = b[b["type"] == row["type"]]
        assert row["n"] == len(b)
        assert row["accuracy"] == pytest.approx((b["rating"] == b["true_rating"]).mean(), abs=1e-12)
