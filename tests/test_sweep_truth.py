"""The sweep's accuracy against the truth: true stars include the vetoes the true state triggers."""
from __future__ import annotations

import numpy as np
import pytest

import branchsim as bs
from branchsim import model, scoring
from branchsim.sensitivity.engine import prepare


@pytest.fixture(scope="module")
def vacated(policy):
    """A generated population in which 15 branches that truly earn 4 or 5 stars lose their secretary.

    A vacancy is part of the branch's true state: it caps the true star at 0 and makes the
    branch truly weak, and the measured record (recorded without error) agrees.
    """
    pop = bs.generate(seed=8, n_branches=400, members=False)
    stars = bs.evaluate(pop, policy).branches["true_stars"].to_numpy()
    hit = np.flatnonzero(stars >= 4)[:15]
    assert len(hit) == 15
    b = pop.branches.copy()
    b.loc[b.index[hit], "secretary_in_post"] = 0.0
    return bs.Population(b, seed=pop.seed, params=pop.params), hit


def _accuracy_under(pop, policy, changes: dict) -> float:
    changes = {k: v for k, v in changes.items() if policy[k] != v}
    return bs.evaluate(pop, policy.update(changes) if changes else policy).accuracy()


def test_prepared_carries_the_true_vetoes(vacated, policy):
    pop, hit = vacated
    prep = prepare(pop, policy)
    tr = model.truth(pop, policy)
    np.testing.assert_array_equal(prep.truth, tr.components)
    np.testing.assert_array_equal(prep.truth_cap, tr.cap)
    np.testing.assert_array_equal(prep.truth_veto_weak, tr.veto_weak)
    assert (prep.truth_cap[hit] == 0).all() and prep.truth_veto_weak[hit].all()
    # Loaded tables have no truth: nothing to compare with.
    loaded = prepare(bs.load_population(bs.data_path("examples"), policy=policy), policy)
    assert loaded.truth is None and loaded.truth_cap is None and loaded.truth_veto_weak is None


def test_baseline_accuracy_is_evaluate_accuracy(vacated, policy):
    pop, hit = vacated
    r = bs.evaluate(pop, policy)
    sw = bs.sweep(pop, policy, {"branch.satisfaction_share": [policy["branch.satisfaction_share"]]},
                  progress=False)
    assert sw["accuracy"].iloc[0] == pytest.approx(r.accuracy(), abs=1e-12)
    # The vacated branches are measured and truly at no star, so they count as correct; with
    # true stars that ignored the vacancy they would all count as wrong.
    b = r.branches
    assert (b["stars"].iloc[hit] == 0).all() and (b["true_stars"].iloc[hit] == 0).all()
    rules = scoring.compile_branch_rules(policy)
    uncapped = scoring.star_levels(b["true_score"].to_numpy(), rules.star_levels, rules.star_cuts)
    assert (uncapped[hit] >= 3).all()
    correct = b["stars"].to_numpy() == b["true_stars"].to_numpy()
    assert correct[hit].all()
    assert sw["accuracy"].iloc[0] == pytest.approx(correct.mean(), abs=1e-12)


@pytest.mark.parametrize("grid", [
    {"branch.star_cuts.4": [76, 78, 80, 82]},
    {"branch.satisfaction_share": [0.2, 0.3, 0.4], "branch.star_cuts.5": [88, 90]},
    {"branch.vetoes.secretary_vacant.max_star": [0, 3]},
], ids=["cut", "share-x-cut", "veto-cap"])
def test_scenario_accuracy_is_evaluate_accuracy_under_that_policy(vacated, policy, grid):
    # Each scenario's accuracy is what evaluate reports under the reformed policy, whose true
    # stars are capped by the reformed vetoes.
    pop, _ = vacated
    sw = bs.sweep(pop, policy, grid, progress=False)
    assert len(sw) == int(np.prod([len(v) for v in grid.values()]))
    for _, row in sw.iterrows():
        changes = {k: type(policy[k])(row[k]) for k in grid}
        assert row["accuracy"] == pytest.approx(_accuracy_under(pop, policy, changes), abs=1e-12), changes


def test_accuracy_by_group_is_evaluate_accuracy_per_group(vacated, policy):
    pop, _ = vacated
    sw = bs.sweep(pop, policy, {"branch.star_cuts.3": [68, 70]}, by="type", progress=False)
    for _, row in sw.iterrows():
        cut = int(row["branch.star_cuts.3"])
        pol = policy if cut == policy["branch.star_cuts.3"] else policy.update({"branch.star_cuts.3": cut})
        b = bs.evaluate(pop, pol).branches
        b = b[b["type"] == row["type"]]
        assert row["n"] == len(b)
        assert row["accuracy"] == pytest.approx((b["stars"] == b["true_stars"]).mean(), abs=1e-12)
