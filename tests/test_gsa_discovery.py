"""Global sensitivity (Sobol', Morris, main effects) and scenario discovery (PRIM).

Known answers: main effects of a weighted sum of independent components,
Sobol' indices of the Ishigami function, a PRIM box planted in uniform
data. Invariants: weights sum to one and cut points stay ordered in every
sampled scenario; the same seed gives the same indices.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity.discovery import discover, prim
from branchsim.sensitivity.gsa import (default_factors, evaluate_samples, factor_problem,
                                       factor_values, main_effects, morris, scenarios, sobol,
                                       sobol_indices)
import shipped

ISHIGAMI = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def ishigami(X, a=7.0, b=0.1):
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


@pytest.fixture(scope="module")
def pop(policy):
    return bs.generate(policy, seed=3, n_branches=600, members=False)


@pytest.fixture(scope="module")
def fast(policy):
    return default_factors(policy, noise=False)


# -- main effects ---------------------------------------------------------------------
def test_main_effects_of_a_weighted_sum_are_the_linear_shares():
    # y = Σ w_i x_i, x_i independent uniform with sd σ_i: η²_i = w_i²σ_i² / Σ w²σ².
    # With n = 20000 and 20 bins the estimator's sd is about 0.005 (its
    # binning bias for a uniform x is 1/400 of the share), so 0.02 is 4 sd.
    rng = np.random.default_rng(11)
    sigma, w = np.array([1.0, 2.0, 0.5, 3.0]), np.array([1.0, 0.5, 2.0, 0.3])
    X = rng.uniform(-np.sqrt(3), np.sqrt(3), (20000, 4)) * sigma
    expected = w ** 2 * sigma ** 2 / np.sum(w ** 2 * sigma ** 2)
    np.testing.assert_allclose(main_effects(X, X @ w), expected, atol=0.02)


def test_main_effects_of_an_irrelevant_input_is_near_zero_and_of_a_discrete_cause_exact():
    rng = np.random.default_rng(5)
    X = rng.random((5000, 2))
    assert main_effects(X[:, 1:], X[:, 0])[0] < 0.01
    # equal values share a bin, so a cause with 3 values is conditioned on exactly
    k = rng.integers(0, 3, 5000).astype(float)
    assert main_effects(k, np.array([0.0, 5.0, 1.0])[k.astype(int)])[0] == pytest.approx(1.0)


def test_main_effects_rejects_mismatched_shapes():
    with pytest.raises(bs.BranchsimError, match="main_effects"):
        main_effects(np.zeros((100, 2)), np.zeros(99))


def test_effective_importance_reports_every_component(pop, policy):
    from branchsim.sensitivity.gsa import effective_importance
    e = effective_importance(pop, policy)
    assert e.component.tolist() == policy.dimensions + ["satisfaction"]
    assert e.nominal_share.sum() == pytest.approx(1.0)
    assert e.linear_share.sum() == pytest.approx(1.0)
    cols = ["main_effect_score", "main_effect_level", "unique_score"]
    assert ((e[cols] >= 0) & (e[cols] <= 1)).all().all()


# -- Sobol' -----------------------------------------------------------------------------
def test_sobol_indices_of_ishigami_match_the_known_values():
    s = sobol_indices(ISHIGAMI, ishigami, 2048, seed=1)
    # bootstrap intervals; a small floor for the exactly-zero S1 of x3
    assert (np.abs(s.S1 - ISHIGAMI_S1) <= np.maximum(s.S1_conf, 0.01)).all()
    assert (np.abs(s.ST - ISHIGAMI_ST) <= np.maximum(s.ST_conf, 0.01)).all()


def test_sobol_indices_are_reproducible_from_the_seed():
    a = sobol_indices(ISHIGAMI, ishigami, 256, seed=4)
    pd.testing.assert_frame_equal(a, sobol_indices(ISHIGAMI, ishigami, 256, seed=4))
    pd.testing.assert_frame_equal(a, sobol_indices(ISHIGAMI, ishigami, 256,
                                                   seed=np.random.SeedSequence(4)))
    assert not a.equals(sobol_indices(ISHIGAMI, ishigami, 256, seed=5))


def test_sobol_n_must_be_a_power_of_two():
    with pytest.raises(bs.BranchsimError, match="power of two"):
        sobol_indices(ISHIGAMI, ishigami, 300)


def test_sobol_on_a_population(pop, policy, fast):
    r = sobol(pop, policy, fast, n=256, outputs=("weak", "three_star"), progress=False, seed=2)
    st = r.indices.set_index(["output", "factor"])
    sat = st.loc[("weak", "satisfaction_share")]
    assert sat.ST > 0.01 and sat.ST > sat.ST_conf            # the survey share matters for weakness
    for cut in ("cut_three_star", "gap_four_star", "gap_five_star"):   # cut points never decide weakness
        assert st.loc[("weak", cut), "ST"] == 0
    assert st.loc[("three_star", "line_weak"), "ST"] == 0     # nor the weak line a level
    again = sobol(pop, policy, fast, n=256, outputs=("weak", "three_star"), progress=False, seed=2)
    pd.testing.assert_frame_equal(r.indices, again.indices)


def test_convergence_reanalyses_prefixes_of_the_same_runs(pop, policy, fast):
    r = sobol(pop, policy, fast, n=128, outputs=("weak",), progress=False)
    c = r.convergence((32, 64, 128))
    assert sorted(c.n.unique()) == [32, 64, 128]
    last = c[c.n == 128].drop(columns="n").reset_index(drop=True)
    pd.testing.assert_frame_equal(last, r.indices)
    with pytest.raises(bs.BranchsimError, match="power of two"):
        r.convergence((48,))


def test_unknown_output_is_refused_with_the_allowed_names(pop, policy, fast):
    with pytest.raises(bs.BranchsimError, match="allowed: .*weak"):
        sobol(pop, policy, fast, n=16, outputs=("weakness",), progress=False)


# -- factors --------------------------------------------------------------------------
def test_sampled_weights_sum_to_one_and_cuts_stay_ordered(policy):
    f = default_factors(policy)
    from SALib.sample import sobol as salib_sobol
    X = salib_sobol.sample(factor_problem(f), 256, calc_second_order=False, seed=1)
    sc = scenarios(policy, f, factor_values(f, X))
    np.testing.assert_allclose(sc.weights.sum(axis=2), 1.0, atol=1e-12)   # per scenario and type
    assert (sc.weights >= 0).all()
    assert (np.diff(sc.cuts, axis=2) > 0).all() and (sc.cuts <= 100).all()
    whole = f[f.integer]                                   # the survey's sample size
    assert len(whole) == 1
    size = factor_values(f, X)[whole.name.iloc[0]]
    assert (size == size.round()).all() and size.between(whole.low.iloc[0], whole.high.iloc[0]).all()
    assert size.nunique() == whole.high.iloc[0] - whole.low.iloc[0] + 1


def test_factors_that_would_sample_shares_independently_are_refused(policy):
    bad = pd.DataFrame([("role_share", "branch.dimensions.role.share", "value", 0.1, 0.2)],
                       columns=["name", "path", "kind", "low", "high"])
    with pytest.raises(bs.BranchsimError, match="never sampled independently"):
        scenarios(policy, bad, pd.DataFrame({"role_share": [0.15]}))


def test_overlapping_absolute_cut_ranges_are_refused(policy):
    bad = pd.DataFrame([("c3", "branch.rating.cuts.three_star", "cut", 60, 85)],
                       columns=["name", "path", "kind", "low", "high"])
    with pytest.raises(bs.BranchsimError, match="cut_gap"):
        scenarios(policy, bad, pd.DataFrame({"c3": [70.0]}))


def test_remeasuring_at_the_population_noise_changes_nothing(pop, policy):
    # Common random numbers: the same seed and noise level reproduce the branches.
    f = default_factors(policy, pop.params)
    base = pd.DataFrame([f.set_index("name").baseline.to_dict()])
    values = pd.concat([base, base.assign(indicator_noise=1.5 * base.indicator_noise)], ignore_index=True)
    out = evaluate_samples(pop, policy, values, f)
    assert out.changed.iloc[0] == 0 and out.changed.iloc[1] > 0


def test_an_executor_gives_the_same_outcomes(pop, policy):
    from concurrent.futures import ProcessPoolExecutor
    f = default_factors(policy, pop.params)
    from SALib.sample import morris as salib_morris
    values = factor_values(f, salib_morris.sample(factor_problem(f), 2, seed=3))
    with ProcessPoolExecutor(2) as ex:
        pd.testing.assert_frame_equal(evaluate_samples(pop, policy, values, f, executor=ex),
                                      evaluate_samples(pop, policy, values, f))


def test_morris_gives_a_finite_mu_star_for_every_factor(pop, policy):
    m = morris(pop, policy, trajectories=6, outputs=("weak", "mean_abs_change"), progress=False)
    f = default_factors(policy)
    assert len(m) == 2 * len(f) and set(m.factor) == set(f.name)
    assert np.isfinite(m.mu_star).all() and (m.mu_star >= 0).all()
    weak = m[m.output == "weak"].set_index("factor")
    assert weak.loc["line_weak", "mu_star"] > 0 and weak.loc["cut_three_star", "mu_star"] == 0


# -- PRIM -------------------------------------------------------------------------------
def test_prim_recovers_a_planted_box():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.random((4000, 4)), columns=["x1", "x2", "x3", "x4"])
    d = prim(X, ((X.x1 > 0.7) & (X.x2 < 0.4)).to_numpy())
    box = d.box.set_index("factor")
    assert box.loc["x1", "low"] == pytest.approx(0.7, abs=0.05)
    assert box.loc["x2", "high"] == pytest.approx(0.4, abs=0.05)
    assert box.restricted.tolist() == [True, True, False, False]
    assert d.density > 0.9 and d.coverage > 0.8
    traj = d.trajectory
    assert traj.support.is_monotonic_decreasing and traj.coverage.is_monotonic_decreasing
    assert traj.support.iloc[-1] >= 0.05
    assert "x1 ≥" in d.summary() and "x2 ≤" in d.summary() and "x3" not in d.summary()


def test_prim_threshold_picks_the_largest_box_that_reaches_it():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.random((3000, 2)), columns=["a", "b"])
    y = rng.random(3000) < X.a.to_numpy()            # the condition gets likelier with a
    d = prim(X, y, threshold=0.8, simplify=False)
    ok = d.trajectory[d.trajectory.density >= 0.8]
    assert d.step == ok.step.iloc[0] and d.density >= 0.8


def test_discover_on_a_population(pop, policy):
    def many_weak(frame):
        return (frame.weak > frame.weak.median()).to_numpy()
    d = discover(pop, policy, many_weak, n=1000, progress=False)
    assert d.density > d.base_rate and d.box.restricted.any()
    assert d.box.set_index("factor").loc["line_weak", "restricted"]
    # the same as a string condition, and the same seed gives the same box
    cut = float(np.median(d.samples.weak / d.samples.n))
    e = discover(pop, policy, f"weak / n > {cut}", n=1000, progress=False)
    assert e.density > e.base_rate
    pd.testing.assert_frame_equal(e.box, discover(pop, policy, f"weak / n > {cut}", n=1000,
                                                  progress=False).box)


@pytest.mark.parametrize("condition", ["weakness / n > 0.03", "weak / n >", "weak + 1"])
def test_invalid_condition_is_a_branchsim_error(pop, policy, condition):
    with pytest.raises(bs.BranchsimError, match="condition"):
        discover(pop, policy, condition, n=100, progress=False)


# -- every shipped scheme -----------------------------------------------------------------
@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_sobol_morris_and_prim_run_on_every_scheme(name):
    # The factors and outputs come from the scheme: its levels, designations and fast
    # parameters (a quota design's quotas, a cuts design's cuts); every sampled scenario is
    # scored, and the indices and boxes are finite.
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=2, n_branches=200, members=False)
    f = default_factors(policy, noise=False)
    kinds = set(f.kind)
    design = policy.scheme.branch.rating.design
    assert ("quota" in kinds) == (design == "quota") and ("cut" in kinds) == (design == "cuts")
    s = sobol(pop, policy, f, n=16, progress=False)
    assert set(s.indices.output) == set(policy.levels[:-1]) | {d.id for d in policy.scheme.branch.designations} \
        | {"mean_abs_change"}
    m = morris(pop, policy, f, trajectories=3, progress=False)
    assert np.isfinite(m.mu_star).all()
    top = policy.levels[0]
    d = discover(pop, policy, f"{top} / n > {float(s.samples[top].median() / 200)}", f, n=200, progress=False)
    assert 0 <= d.coverage <= 1 and len(d.samples) == 200
