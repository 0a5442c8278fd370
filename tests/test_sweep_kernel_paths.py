"""The sweep's statistics on the compiled path: each branch's level per scenario formed in the kernel
(:func:`branchsim.sensitivity._kernels.unit_stats`) gives the NumPy path's numbers exactly — counts
per group, designations, ``changed`` / ``abs_change`` against the baseline, ``correct`` and the true
counts — on every shipped scheme, and evaluate's numbers at a reform worked out branch by branch."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity import _kernels, engine
from branchsim.sensitivity.engine import Scenarios, prepare, run
from branchsim.sensitivity.sweep import fast_paths, scenario_arrays
import shipped

KEYS = ("counts", "designated", "n", "changed", "abs_change", "correct", "true_counts")


def _quota(policy):
    q = {lv: {"value": v, "assumption": "test"} for lv, v in zip(policy.levels[:-1], (0.05, 0.25, 0.3))}
    return policy.update({"branch.rating.design": "quota", "branch.rating.quotas": q})


SCHEMES = {**{name: shipped.load(name) for name in shipped.SCHEMES},
           "baseline_quota": _quota(shipped.load("baseline"))}


def _numpy_path(monkeypatch, *args, **kw):
    """run's NumPy path (per-block level matrices) with the same thresholds."""
    with monkeypatch.context() as m:
        m.setattr(engine, "_compiled_units", lambda *a, **k: False)
        return run(*args, **kw)


def _grid(policy, S, rng):
    """Scenarios over every kind of fast parameter the scheme has (shares, cuts, quotas, lines)."""
    table = {}
    levels = policy.scheme.branch.levels.worst_first
    for path, (kind, idx) in fast_paths(policy).items():
        if kind == "share":
            table[path] = rng.uniform(0.05, 0.6, S)
        elif kind == "type_cut" and idx[0] == 0:
            base = policy.scheme.branch.rating.cuts[idx[0], idx[1]]      # the type's cut (own or shared)
            table[path] = base + rng.uniform(-3, 3, S) if idx[1] < len(levels) - 2 else np.full(S, base)
        elif kind == "quota" and idx == len(levels) - 2:
            table[path] = rng.uniform(0.02, 0.15, S)
        elif kind == "line":
            table[path] = policy[path] + rng.uniform(-5, 0, S)
    return scenario_arrays(policy, pd.DataFrame(table))


@pytest.fixture(scope="module", params=list(SCHEMES))
def case(request):
    policy = SCHEMES[request.param]
    pop = bs.generate(policy, seed=4, n_branches=900, members=False, params={"state.problem_rate": 0.05})
    prep = prepare(pop, policy)
    sc = _grid(policy, 21, np.random.default_rng(3))
    return request.param, policy, pop, prep, sc


@pytest.mark.parametrize("by", [None, "type", "random"])
def test_compiled_and_numpy_paths_agree_exactly(case, by, monkeypatch):
    name, policy, _, prep, sc = case
    if by is None:
        groups, G = np.zeros(prep.n, dtype=np.intp), 1
    elif by == "random":                                 # groups that cut across types (5; one empty)
        groups, G = np.random.default_rng(0).integers(0, 4, prep.n), 5
    else:
        groups, names = pd.factorize(prep.branches[by], sort=True)
        G = len(names)
    kw = dict(groups=groups, n_groups=G, baseline=prep.levels.astype(np.int16))
    slow = _numpy_path(monkeypatch, prep, sc, **kw)
    for below in (0, 10 ** 12):                          # the kernel on Numba's threads, then on this one
        monkeypatch.setattr(_kernels, "_SERIAL_BELOW", below)
        fast = run(prep, sc, **kw)
        assert sorted(fast) == sorted(slow) == sorted(KEYS)
        for key in KEYS:
            np.testing.assert_array_equal(fast[key], slow[key], err_msg=f"{name}: {key}")
    assert (fast["counts"].sum(axis=2) == fast["n"][:, None]).all()
    assert (fast["true_counts"].sum(axis=2) == fast["n"][:, None]).all()
    assert fast["changed"].sum() > 0 and fast["designated"].sum() > 0
    # without the truth, the baseline or the designations the other numbers do not move
    part = run(prep, sc, groups=groups, n_groups=G, accuracy=False, designations=False)
    np.testing.assert_array_equal(part["counts"], fast["counts"])
    assert np.isnan(part["designated"]).all() and "changed" not in part and "correct" not in part


def test_statistics_equal_evaluate_branch_by_branch_at_a_reform():
    # changed / abs_change / correct worked out from evaluate's own ratings of every branch
    policy = shipped.load("baseline")
    pop = bs.generate(policy, seed=6, n_branches=800, members=False, params={"state.problem_rate": 0.05})
    prep = prepare(pop, policy)
    reform = {"branch.satisfaction_share": 0.45, "branch.rating.cuts.four_star": 78.5,
              "branch.designations.weak.criteria.low_score.below": 55.0}
    code = {lv: k for k, lv in enumerate(policy.scheme.branch.levels.worst_first)}
    before = bs.evaluate(pop, policy).branches["rating"].map(code).to_numpy()
    after = bs.evaluate(pop, policy.update(reform)).branches
    level = after["rating"].map(code).to_numpy()
    true = after["true_rating"].map(code).to_numpy()
    groups, names = pd.factorize(prep.branches["type"], sort=True)
    sc = scenario_arrays(policy, pd.DataFrame({k: [v] for k, v in reform.items()}))
    out = run(prep, sc, groups=groups, n_groups=len(names), baseline=before.astype(np.int16))
    for g in range(len(names)):
        rows = groups == g
        assert out["changed"][g, 0] == np.count_nonzero(level[rows] != before[rows])
        assert out["abs_change"][g, 0] == np.abs(level[rows] - before[rows]).sum()
        assert out["correct"][g, 0] == np.count_nonzero(level[rows] == true[rows])
        assert out["counts"][g, 0].tolist() == np.bincount(level[rows], minlength=len(code)).tolist()
        assert out["true_counts"][g, 0].tolist() == np.bincount(true[rows], minlength=len(code)).tolist()
        assert out["designated"][g, 0, 0] == after["weak"].to_numpy()[rows].sum()


@pytest.mark.parametrize("name", ["baseline", "member_points"])
def test_scores_on_the_thresholds_are_decided_exactly(name, monkeypatch):
    # Cuts and lines put on branch scores (the float32 pass cannot decide them): the blocks are
    # recounted in float64 and agree with the NumPy path.
    policy = SCHEMES[name]
    pop = bs.generate(policy, seed=2, n_branches=600, members=False)
    prep = prepare(pop, policy)
    sc = _grid(policy, 6, np.random.default_rng(1))
    t = int(np.bincount(prep.type_idx).argmax())
    scores = np.round(prep.components[prep.type_idx == t] @ (100 * sc.weights[:, t]).T, 9)   # (m, S)
    L1 = sc.cuts.shape[2]
    cuts = np.sort(scores[[5, 20, 40, 60][:L1]].T, axis=1)
    ok = (np.diff(cuts, axis=1) > 0).all(axis=1)
    lines = np.where(np.isnan(sc.lines), np.nan, scores[[7]].T)
    on = Scenarios(sc.weights[ok], np.repeat(cuts[ok][:, None, :], len(prep.types), axis=1), None, lines[ok],
                   pd.DataFrame(index=range(int(ok.sum()))))
    kw = dict(groups=np.zeros(prep.n, dtype=np.intp), n_groups=1, baseline=prep.levels.astype(np.int16))
    fast = run(prep, on, **kw)
    slow = _numpy_path(monkeypatch, prep, on, **kw)
    for key in KEYS:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)


def test_statistics_do_not_depend_on_the_thread_count(case, monkeypatch):
    import numba
    _, _, _, prep, sc = case
    monkeypatch.setattr(_kernels, "_SERIAL_BELOW", 0)        # the parallel kernel, however small the call
    groups, names = pd.factorize(prep.branches["type"], sort=True)
    kw = dict(groups=groups, n_groups=len(names), baseline=prep.levels.astype(np.int16))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run(prep, sc, **kw)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run(prep, sc, **kw)
    finally:
        numba.set_num_threads(before)
    for key in KEYS:
        np.testing.assert_array_equal(one[key], two[key])


def test_public_sweep_gives_the_numpy_paths_frame(monkeypatch):
    policy = shipped.load("star_quota")
    pop = bs.generate(policy, seed=9, n_branches=500, members=False)
    grid = {"branch.satisfaction_share": [0.1, 0.3, 0.5]}
    fast = bs.sweep(pop, policy, grid, by="type", progress=False)
    with monkeypatch.context() as m:
        m.setattr(engine, "_compiled_units", lambda *a, **k: False)
        slow = bs.sweep(pop, policy, grid, by="type", progress=False)
    pd.testing.assert_frame_equal(fast, slow)
    assert {"changed", "mean_abs_change", "accuracy"} <= set(fast.columns)


def test_sweep_without_numba_gives_the_same_frame(monkeypatch):
    # the fallback for a machine without Numba: a cuts design's thresholds do not involve a kernel
    policy = shipped.load("baseline")
    pop = bs.generate(policy, seed=9, n_branches=500, members=False)
    grid = {"branch.satisfaction_share": [0.1, 0.3, 0.5], "branch.rating.cuts.four_star": [78.0, 80.0]}
    fast = bs.sweep(pop, policy, grid, by="type", progress=False)
    assert _kernels.available()
    with monkeypatch.context() as m:
        m.setattr(_kernels, "available", lambda: False)
        slow = bs.sweep(pop, policy, grid, by="type", progress=False)
    pd.testing.assert_frame_equal(fast, slow)
