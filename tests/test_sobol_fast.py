"""bs.sobol's fast path: one vectorised analysis of all outputs, SALib's sampling without its per-row
loop, batches sized for the kernel's threads. Each is checked against SALib's own functions or the
engine run another way (an independent route), never against stored outputs of the code itself."""
import warnings

import numpy as np
import pandas as pd
import pytest
from SALib.analyze import sobol as sa
from SALib.sample import sobol as ss

import branchsim as bs
from branchsim.errors import BranchsimError
from branchsim.sensitivity import gsa
from branchsim.sensitivity._kernels import _SERIAL_BELOW
from branchsim.sensitivity.engine import prepare
from branchsim.sensitivity.factors import default_factors, evaluate_samples, factor_problem, factor_values
from branchsim.sensitivity.factors import scenarios
from branchsim.sensitivity.sweep import _batch_size as batch_size, run_batches

PROB = {"num_vars": 4, "names": ["a", "b", "c", "d"], "bounds": [[0, 1], [0, 2], [-1, 1], [0, 5]]}


def _salib(problem, Y, second_order, seed):
    """sa.analyze on each column: {output: dict of arrays}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c: sa.analyze(problem, Y[c].to_numpy(float), calc_second_order=second_order, seed=seed)
                for c in Y.columns}


def _outputs(X):
    """Outputs of several kinds: smooth, interacting, stepped, constant, and one whose A and B rows
    are constant (only the mixed rows vary: analyze's estimators give 0 there)."""
    y_ab_only = np.zeros(len(X))                       # the caller makes its mixed rows vary
    return pd.DataFrame({"lin": X[:, 0] + 0.3 * X[:, 1], "inter": np.sin(X[:, 0]) * X[:, 3] ** 2 + X[:, 2],
                         "steps": np.floor(X[:, 3]) + (X[:, 1] > 1), "const": np.full(len(X), 3.0),
                         "ab_only": y_ab_only})


def _check_against_salib(problem, Y, second_order, seed, tol=1e-12):
    idx, s2 = gsa._analyze_sobol(problem, Y, second_order, 0.95, seed)
    ref = _salib(problem, Y, second_order, seed)
    D = problem["num_vars"]
    i, j = np.triu_indices(D, 1)
    assert idx.output.tolist() == [c for c in Y.columns for _ in range(D)]
    assert idx.factor.tolist() == list(problem["names"]) * Y.shape[1]
    for c in Y.columns:
        got = idx[idx.output == c]
        if np.ptp(Y[c].to_numpy()) == 0:      # a constant output: NaN rows, no second-order rows
            assert got[["S1", "S1_conf", "ST", "ST_conf"]].isna().all().all()
            assert s2 is None or c not in set(s2.output)
            continue
        for k in ("S1", "S1_conf", "ST", "ST_conf"):
            np.testing.assert_allclose(got[k].to_numpy(), ref[c][k], rtol=0, atol=tol, err_msg=f"{c} {k}")
        if second_order:
            g2 = s2[s2.output == c]
            assert g2.factor_i.tolist() == [problem["names"][a] for a in i]
            assert g2.factor_j.tolist() == [problem["names"][b] for b in j]
            for k in ("S2", "S2_conf"):
                np.testing.assert_allclose(g2[k].to_numpy(), ref[c][k][i, j], rtol=0, atol=tol,
                                           err_msg=f"{c} {k}")
    if not second_order:
        assert s2 is None


@pytest.mark.parametrize("second_order", [False, True])
@pytest.mark.parametrize("seed,n", [(1, 64), (7, 256), (2 ** 31 + 5, 128)])
def test_analysis_equals_salib_analyze(second_order, seed, n):
    X = ss.sample(PROB, n, calc_second_order=second_order, seed=seed)
    Y = _outputs(X)
    step = 2 * 4 + 2 if second_order else 4 + 2
    ab = Y["ab_only"].to_numpy().copy()
    ab[1::step] = np.arange(len(ab[1::step]))          # only the first mixed row varies
    Y["ab_only"] = ab
    _check_against_salib(PROB, Y, second_order, seed)
    idx = gsa._analyze_sobol(PROB, Y, second_order, 0.95, seed)[0]
    assert (idx.loc[idx.output == "ab_only", "S1"] == 0).all()     # analyze's zeros, not NaN


def test_analysis_matches_hand_worked_linear_model():
    # y = x0 + 2 x1 with x0, x1 uniform on [0, 1]: S1 = ST = (1, 4) / 5 in the limit
    prob = {"num_vars": 2, "names": ["x0", "x1"], "bounds": [[0, 1], [0, 1]]}
    X = ss.sample(prob, 4096, calc_second_order=False, seed=3)
    idx = gsa._analyze_sobol(prob, pd.DataFrame({"y": X[:, 0] + 2 * X[:, 1]}), False, 0.95, 3)[0]
    np.testing.assert_allclose(idx.S1, [0.2, 0.8], atol=0.02)
    np.testing.assert_allclose(idx.ST, [0.2, 0.8], atol=0.02)


def test_analysis_refuses_a_partial_block_and_a_bad_level():
    with pytest.raises(BranchsimError, match="Saltelli blocks"):
        gsa._analyze_sobol(PROB, pd.DataFrame({"y": np.arange(13.0)}), False, 0.95, 1)
    with pytest.raises(BranchsimError, match="conf_level"):
        gsa.sobol_indices(PROB, lambda X: X[:, 0], n=8, conf_level=95)


@pytest.mark.parametrize("second_order", [False, True])
@pytest.mark.parametrize("seed", [1, 99, 123456789])
def test_sampling_equals_salib_sample(second_order, seed):
    for n in (2, 64, 512):
        np.testing.assert_array_equal(gsa._saltelli(PROB, n, second_order, seed),
                                      ss.sample(PROB, n, calc_second_order=second_order, seed=seed))
    grouped = {**PROB, "groups": ["g1", "g1", "g2", "g2"]}
    np.testing.assert_array_equal(gsa._saltelli(grouped, 16, second_order, seed),
                                  ss.sample(grouped, 16, calc_second_order=second_order, seed=seed))


@pytest.fixture(scope="module")
def city():
    p = bs.Policy.load()
    return p, bs.generate(p, seed=0, n_branches=400, members=False)


@pytest.mark.parametrize("second_order", [False, True])
def test_sobol_equals_salib_on_evaluate_samples(city, second_order):
    """The independent route: SALib's sampler, evaluate_samples, then sa.analyze per output."""
    p, pop = city
    f = default_factors(p, noise=False)
    r = bs.sobol(pop, p, f, n=32, seed=5, second_order=second_order, progress=False)
    problem = factor_problem(f)
    s_sample, s_boot = gsa._seed_ints(5, 2)
    X = ss.sample(problem, 32, calc_second_order=second_order, seed=s_sample)
    values = factor_values(f, X)
    Y = evaluate_samples(pop, p, values, f)[list(r.outputs)]
    pd.testing.assert_frame_equal(r.samples[list(values.columns)], values)
    pd.testing.assert_frame_equal(r.samples[list(r.outputs)].reset_index(drop=True), Y, check_dtype=False)
    assert r.boot_seed == s_boot
    ref = _salib(problem, Y, second_order, s_boot)
    for c in r.outputs:
        got = r.indices[r.indices.output == c]
        for k in ("S1", "S1_conf", "ST", "ST_conf"):
            np.testing.assert_allclose(got[k].to_numpy(), ref[c][k], rtol=0, atol=1e-12)
    assert (r.s2 is not None) == second_order


def test_convergence_reanalyses_the_prefix(city):
    p, pop = city
    f = default_factors(p, noise=False)
    r = bs.sobol(pop, p, f, n=32, outputs=("weak", "mean_abs_change"), progress=False)
    conv = r.convergence([8, 32])
    assert conv.n.tolist() == [8] * 18 + [32] * 18
    step = len(f) + 2
    ref = _salib(r.problem, r.samples[list(r.outputs)].iloc[:8 * step], False, r.boot_seed)
    got = conv[(conv.n == 8) & (conv.output == "weak")]
    np.testing.assert_allclose(got.ST.to_numpy(), ref["weak"]["ST"], rtol=0, atol=1e-12)
    full = conv[conv.n == 32].drop(columns="n").reset_index(drop=True)
    pd.testing.assert_frame_equal(full, r.indices)


@pytest.mark.parametrize("scheme", ["baseline", "star_quota", "member_points"])
def test_batches_do_not_change_the_counts(scheme):
    p = bs.Policy.load(scheme)
    pop = bs.generate(p, seed=1, n_branches=1_500, members=False)
    f = default_factors(p, noise=False)
    n = 64               # n (k + 2) scenarios x 1,500 branches > _SERIAL_BELOW: the automatic batch runs
    while n * (len(f) + 2) * 1_500 < _SERIAL_BELOW:    # on the kernel's threads, batches of 7 on this one
        n *= 2
    values = factor_values(f, ss.sample(factor_problem(f), n, calc_second_order=False, seed=2))
    assert batch_size(1_500, len(values)) == len(values)
    prep = prepare(pop, p)
    sc = scenarios(p, f, values)
    base = prep.levels.astype(np.int16)
    one = run_batches(prep, sc, baseline=base)              # automatic: one batch here
    many = run_batches(prep, sc, batch=7, baseline=base, progress=True)
    assert one.keys() == many.keys()
    for k in one:
        np.testing.assert_array_equal(one[k], many[k], err_msg=k)
    for bad in (0, 2.5, "8"):
        with pytest.raises(BranchsimError, match="batch"):
            run_batches(prep, sc, batch=bad)


def test_batch_size_gives_the_threads_work_and_big_work_many_batches():
    assert batch_size(1_500, 2_816) == 2_816               # 4.2M branch-scenarios: one batch
    assert batch_size(1_500, 20_000) == 2_858              # 30M: 7 batches of ceil(20000 / 7)
    assert batch_size(1_000_000, 2_816) == 256             # a city: never fewer than 256 scenarios
    assert batch_size(1_500, 100) == 256                   # small: one batch of all 100
    assert batch_size(1_500, 20_000, executor=object()) == 256     # an executor's tasks


def test_sobol_indices_leaves_the_models_frame_as_it_was():
    seen = []

    def model(X):
        seen.append(pd.DataFrame({0: X[:, 0] + 0.5 * X[:, 1]}))
        return seen[-1]

    s = gsa.sobol_indices(PROB, model, n=16)
    assert s.output.unique().tolist() == ["y"]
    assert seen[0].columns.tolist() == [0]
