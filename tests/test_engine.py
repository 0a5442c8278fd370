"""The scenario engine: its three paths (compiled counts, NumPy counts, per-branch stars) agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity import _kernels, engine
from branchsim.sensitivity.engine import Scenarios, prepare, run


@pytest.fixture(scope="module")
def setup():
    # Many vetoes (capped and veto-weak branches) so the corrections are exercised.
    policy = bs.Policy.load().update({"branch.vetoes.meetings_neglected.below": 9})
    pop = bs.generate(seed=2, n_branches=1300, members=False, params={"state.problem_rate": 0.05})
    prep = prepare(pop, policy)
    rng = np.random.default_rng(7)
    S = 57
    w = rng.dirichlet(np.ones(5), size=S)
    base = Scenarios.from_policy(policy)
    cuts = np.sort(rng.uniform(55, 95, size=(S, 3)), axis=1)
    cuts[0] = base.cuts[0]
    sc = Scenarios(np.repeat(w[:, None, :], len(prep.types), axis=1), base.levels, cuts,
                   rng.uniform(40, 60, size=S), pd.DataFrame(index=range(S)))
    return policy, pop, prep, sc


def test_there_are_capped_and_veto_weak_branches(setup):
    _, _, prep, _ = setup
    assert (prep.cap < 5).sum() > 50 and prep.veto_weak.sum() > 20


def test_compiled_numpy_and_full_paths_agree(setup, monkeypatch):
    _, _, prep, sc = setup
    full = run(prep, sc, groups=np.zeros(prep.n, dtype=int), n_groups=1)   # per-branch stars
    compiled = run(prep, sc, accuracy=False)
    monkeypatch.setattr(_kernels, "available", lambda: False)
    numpy_path = run(prep, sc, accuracy=False)
    for key in ("counts", "weak"):
        np.testing.assert_array_equal(compiled[key], full[key])
        np.testing.assert_array_equal(numpy_path[key], full[key])
    assert (full["counts"].sum(axis=2) == prep.n).all()


def test_numpy_path_is_independent_of_threads(setup, monkeypatch):
    _, _, prep, sc = setup
    monkeypatch.setattr(_kernels, "available", lambda: False)
    one = run(prep, sc, accuracy=False, workers=1)
    three = run(prep, sc, accuracy=False, workers=3)
    np.testing.assert_array_equal(one["counts"], three["counts"])


def test_counts_equal_evaluate_at_a_scenario(setup):
    policy, pop, prep, sc = setup
    s = 0                                            # scenario 0 keeps the policy's cuts
    w = sc.weights[s, 0]
    dims = policy.dimensions
    reform = policy.update({**{f"branch.dimensions.{d}.share": float(w[i]) for i, d in enumerate(dims[:-1])},
                            f"branch.dimensions.{dims[-1]}.share": float(w[len(dims) - 1]),
                            "branch.satisfaction_share": float(w[-1]),
                            "branch.weak_below": float(sc.weak_below[s])})
    expected = bs.evaluate(pop, reform).star_counts()["count"]
    got = run(prep, sc.subset([s]), accuracy=False)
    for level, name in ((5, "five_star"), (4, "four_star"), (3, "three_star"), (0, "no_star")):
        assert got["counts"][0, 0, level] == expected[name]
    assert got["weak"][0, 0] == expected["weak"]


def test_kernel_is_available():
    # numba is a dependency: the compiled path is the one users run.
    assert _kernels.available()
    assert engine._kernels is _kernels


def test_star_counts_without_the_weak_count(setup):
    _, _, prep, sc = setup
    both = run(prep, sc, accuracy=False)
    stars = run(prep, sc, accuracy=False, weak=False)
    np.testing.assert_array_equal(stars["counts"], both["counts"])
    assert np.isnan(stars["weak"]).all()


def test_scores_on_a_cut_are_counted_exactly(setup):
    # The float32 fast path recounts in float64 wherever a score is near a cut: put every cut
    # exactly on branch scores and compare with the per-branch (float64) path.
    _, _, prep, sc = setup
    w = sc.weights[:4, prep.type_idx[0]]
    scores = np.round(100 * prep.components[:500] @ w.T, 9)            # (500, 4)
    cuts = np.sort(scores[[10, 20, 30]].T, axis=1)                       # three branch scores per scenario
    ok = (np.diff(cuts, axis=1) > 0).all(axis=1)
    on = Scenarios(sc.weights[:4][ok], sc.levels, cuts[ok], np.sort(scores[[40]].T[ok, 0]),
                   pd.DataFrame(index=range(int(ok.sum()))))
    full = run(prep, on, groups=np.zeros(prep.n, dtype=int), n_groups=1)
    fast = run(prep, on, accuracy=False)
    np.testing.assert_array_equal(fast["counts"], full["counts"])
    np.testing.assert_array_equal(fast["weak"], full["weak"])
