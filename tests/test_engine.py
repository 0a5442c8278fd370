"""The scenario engine: its paths (compiled counts, NumPy counts, per-branch levels) agree with each
other and with evaluate, for every shipped scheme and rating design."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity import _kernels, engine
from branchsim.sensitivity.engine import Scenarios, prepare, run
from branchsim.sensitivity.sweep import fast_paths, scenario_arrays
import shipped


def _quota(policy):
    q = {lv: {"value": v, "assumption": "test"} for lv, v in zip(policy.levels[:-1], (0.05, 0.25, 0.3))}
    return policy.update({"branch.rating.design": "quota", "branch.rating.quotas": q})


# the shipped schemes and the baseline under a quota design
SCHEMES = {**{name: shipped.load(name) for name in shipped.SCHEMES},
           "baseline_quota": _quota(shipped.load("baseline"))}


@pytest.fixture(scope="module")
def setup():
    # Many vetoes (capped and veto-designated branches) so the corrections are exercised.
    policy = bs.Policy.load().update({"branch.vetoes.meetings_neglected.below": 9})
    pop = bs.generate(seed=2, n_branches=1300, members=False, params={"state.problem_rate": 0.05})
    prep = prepare(pop, policy)
    rng = np.random.default_rng(7)
    S = 57
    w = rng.dirichlet(np.ones(5), size=S)
    base = Scenarios.from_policy(policy)
    cuts = np.sort(rng.uniform(55, 95, size=(S, 3)), axis=1)
    cuts[0] = base.cuts[0, 0]
    sc = Scenarios(np.repeat(w[:, None, :], len(prep.types), axis=1),
                   np.repeat(cuts[:, None, :], len(prep.types), axis=1), None,
                   rng.uniform(40, 60, size=(S, 1)), pd.DataFrame(index=range(S)))
    return policy, pop, prep, sc


def test_there_are_capped_and_veto_designated_branches(setup):
    _, _, prep, _ = setup
    L = prep.n_levels
    assert (prep.cap < L - 1).sum() > 50 and prep.designated[:, 0].sum() > 20


def test_compiled_numpy_and_full_paths_agree(setup, monkeypatch):
    _, _, prep, sc = setup
    full = run(prep, sc, groups=np.zeros(prep.n, dtype=int), n_groups=1)   # per-branch levels
    compiled = run(prep, sc, accuracy=False)
    monkeypatch.setattr(_kernels, "available", lambda: False)
    numpy_path = run(prep, sc, accuracy=False)
    for key in ("counts", "designated"):
        np.testing.assert_array_equal(compiled[key], full[key])
        np.testing.assert_array_equal(numpy_path[key], full[key])
    assert (full["counts"].sum(axis=2) == prep.n).all()


@pytest.mark.parametrize("name", list(SCHEMES))
def test_counts_equal_evaluate_at_the_policy_and_paths_agree(name):
    # At the policy's own values the engine's levels are evaluate's (relative designs too: their
    # thresholds are set on the rounded scores), and the compiled and NumPy paths agree on many
    # scenarios of the scheme's fast parameters.
    policy = SCHEMES[name]
    pop = bs.generate(policy, seed=1, n_branches=700, members=False)
    prep = prepare(pop, policy)
    r = bs.evaluate(pop, policy)
    one = run(prep, Scenarios.from_policy(policy), groups=np.zeros(prep.n, int), n_groups=1,
              baseline=prep.levels.astype(np.int16))
    counts = r.level_counts()["count"]
    levels = policy.scheme.branch.levels.worst_first
    assert one["counts"][0, 0].astype(int).tolist() == [int(counts[lv]) for lv in levels]
    for k, d in enumerate(policy.scheme.branch.designations):
        assert one["designated"][0, 0, k] == counts[d.id]
    assert one["changed"][0, 0] == 0
    assert one["correct"][0, 0] / prep.n == pytest.approx(r.accuracy(), abs=1e-12)
    rng = np.random.default_rng(0)
    table = {"branch.satisfaction_share": rng.uniform(0.1, 0.5, 12)}
    for path, (kind, _) in fast_paths(policy).items():
        if kind == "quota":
            table[path] = rng.uniform(0.02, 0.15, 12) if path.endswith(policy.levels[0]) else policy[path]
    sc = scenario_arrays(policy, pd.DataFrame(table))
    a = run(prep, sc, accuracy=False)
    b = run(prep, sc, groups=np.zeros(prep.n, int), n_groups=1, accuracy=False)
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_array_equal(a["designated"], b["designated"])


def test_quota_counts_follow_the_quotas_with_ties_going_lower():
    # Under a quota design without vetoes a level never holds more units than its quota, and a
    # quota equal to the units' count admits them all.
    policy = SCHEMES["baseline_quota"].update({"branch.vetoes": None,
                                               "branch.designations.weak.criteria.secretary_vacant": None,
                                               "branch.designations.weak.criteria.major_violation": None})
    pop = bs.generate(policy, seed=5, n_branches=500, members=False)
    prep = prepare(pop, policy)
    sc = scenario_arrays(policy, pd.DataFrame({"branch.rating.quotas.five_star": [0.0, 0.05, 0.1]}))
    out = run(prep, sc, accuracy=False)["counts"][0]            # (S, L): codes worst first
    top = out[:, -1]
    assert top.tolist() == [0, 25, 50]
    assert (out[:, -2] <= 125).all()


def test_compiled_counts_are_independent_of_threads(setup):
    # The kernels run scenarios on Numba's threads: integer counts do not depend on their number.
    import numba
    _, _, prep, sc = setup
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run(prep, sc, accuracy=False)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run(prep, sc, accuracy=False)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one["counts"], two["counts"])
    np.testing.assert_array_equal(one["designated"], two["designated"])


def test_counts_equal_evaluate_at_a_scenario(setup):
    policy, pop, prep, sc = setup
    s = 0                                            # scenario 0 keeps the policy's cuts
    w = sc.weights[s, 0]
    dims = policy.dimensions
    reform = policy.update({**{f"branch.dimensions.{d}.share": float(w[i]) for i, d in enumerate(dims[:-1])},
                            f"branch.dimensions.{dims[-1]}.share": float(w[len(dims) - 1]),
                            "branch.satisfaction_share": float(w[-1]),
                            "branch.designations.weak.criteria.low_score.below": float(sc.lines[s, 0])})
    expected = bs.evaluate(pop, reform).level_counts()["count"]
    got = run(prep, sc.subset([s]), accuracy=False)
    for code, name in enumerate(policy.scheme.branch.levels.worst_first):
        assert got["counts"][0, 0, code] == expected[name]
    assert got["designated"][0, 0, 0] == expected["weak"]


def test_kernel_is_available():
    # numba is a dependency: the compiled path is the one users run.
    assert _kernels.available()
    assert engine._kernels is _kernels


def test_level_counts_without_the_designations(setup):
    _, _, prep, sc = setup
    both = run(prep, sc, accuracy=False)
    levels = run(prep, sc, accuracy=False, designations=False)
    np.testing.assert_array_equal(levels["counts"], both["counts"])
    assert np.isnan(levels["designated"]).all()


def test_scores_on_a_cut_are_counted_exactly(setup):
    # The float32 fast path recounts in float64 wherever a score is near a cut: put every cut
    # exactly on branch scores and compare with the per-branch (float64) path.
    _, _, prep, sc = setup
    w = sc.weights[:4, prep.type_idx[0]]
    scores = np.round(100 * prep.components[:500] @ w.T, 9)            # (500, 4)
    cuts = np.sort(scores[[10, 20, 30]].T, axis=1)                       # three branch scores per scenario
    ok = (np.diff(cuts, axis=1) > 0).all(axis=1)
    T = len(prep.types)
    on = Scenarios(sc.weights[:4][ok], np.repeat(cuts[ok][:, None, :], T, axis=1), None,
                   np.sort(scores[[40]].T[ok, :1], axis=0), pd.DataFrame(index=range(int(ok.sum()))))
    full = run(prep, on, groups=np.zeros(prep.n, dtype=int), n_groups=1)
    fast = run(prep, on, accuracy=False)
    np.testing.assert_array_equal(fast["counts"], full["counts"])
    np.testing.assert_array_equal(fast["designated"], full["designated"])
