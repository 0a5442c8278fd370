"""Plausible cities (branchsim.plausible): the calibration's own uncertainty, and the analyses' cities=.

Small cities (400 branches), few seeds and few cities keep these tests quick; the method is the same at
any scale (docs/calibration.md, "Plausible cities").
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import calibration
from branchsim.sensitivity.compare import _numbers as compare_numbers
from branchsim.sensitivity.montecarlo import mc_numbers
from branchsim.plausible import Cities, across_cities, plausible_cities, prior_ranges
import shipped

N = 400
SEEDS = range(3)
COUNTY = bs.Policy.load(__import__("pathlib").Path(__file__).parent / "data" / "docs_only" / "county.yaml")


def _targets(policy: bs.Policy, n: int) -> dict:
    """The top level and the first designation at the published rate (baseline: 41 and 19 of 1,500)."""
    return {policy.levels[0]: 41 * n / 1500, policy.scheme.branch.designations[0].id: 19 * n / 1500}


@pytest.fixture(scope="module")
def policy() -> bs.Policy:
    return shipped.load("baseline")


@pytest.fixture(scope="module")
def cities(policy) -> Cities:
    return plausible_cities(policy, _targets(policy, N), n=6, scale=N, seeds=SEEDS)


def test_cities_are_an_ensemble_of_refitted_and_drawn_parameters(cities, policy):
    assert len(cities) == 6 and all(isinstance(p, bs.GeneratorParams) for p in cities)
    assert cities.fitted == ["branch_quality.loc", "branch_quality.scale"]
    assert cities.drawn == ["branch_quality.skew", "branch_quality.tail", "state.problem_rate",
                            "structure.size_sigma", "structure.p_underlevel"]
    frame = cities.params
    assert list(frame.index) == list(range(6)) and frame.index.name == "city"
    assert list(frame.columns) == ["seed", *cities.fitted, *cities.drawn, "fit_error", "evaluations"]
    for i, p in enumerate(cities):
        for k in cities.fitted + cities.drawn:
            assert p.get(k) == frame.loc[i, k], (i, k)
    # Drawn parameters lie in their priors and differ between cities; refitted ones differ too.
    for k, (lo, hi) in cities.details["priors"].items():
        assert frame[k].between(lo, hi).all() and frame[k].nunique() == len(cities), k
    assert frame[cities.fitted].nunique().min() == len(cities)
    text = repr(cities)
    assert text.startswith("Cities: 6 plausible cities of policy 'baseline'") and "5%" in text
    assert "<table" in cities._repr_html_()


def test_each_city_meets_its_replicated_targets(cities, policy):
    t = _targets(policy, N)
    reps = cities.replicates
    assert list(reps.columns) == list(t)
    # Each city's targets are one simulated city's departure from the expectation added to the targets.
    assert reps.nunique().min() >= 2
    assert not np.allclose(reps.to_numpy(), np.array(list(t.values())))
    for i, p in enumerate(cities):
        smooth = "state.problem_rate" in cities.fitted        # states averaged out only when fitted
        e = calibration.expected_counts(p, policy, SEEDS, N, smooth=smooth)[list(t)]
        z = (e - reps.loc[i]).abs() / np.sqrt(np.maximum(reps.loc[i], 1.0))
        assert z.max() <= cities.details["tol"] + 1e-9, (i, z.to_dict())
        assert z.max() == pytest.approx(cities.params.loc[i, "fit_error"], abs=1e-9)


def test_same_seed_same_cities_and_a_smaller_ensemble_is_a_prefix(cities, policy):
    again = plausible_cities(policy, _targets(policy, N), n=3, scale=N, seeds=SEEDS)
    pd.testing.assert_frame_equal(again.params, cities.params.iloc[:3])
    other = plausible_cities(policy, _targets(policy, N), n=3, scale=N, seeds=SEEDS, seed=1)
    assert not np.allclose(other.params["branch_quality.loc"], cities.params["branch_quality.loc"].iloc[:3])


def test_generate_gives_each_citys_population(cities, policy):
    pop = cities.generate(2)
    again = bs.generate(policy, seed=int(cities.params.loc[2, "seed"]), n_branches=N, members=False,
                        params=cities[2])
    pd.testing.assert_frame_equal(pop.branches, again.branches)
    assert len(cities.generate(2, n_branches=50).branches) == 50
    with pytest.raises(bs.BranchsimError, match="not one of the 6 cities"):
        cities.generate(6)


def test_the_spread_shrinks_as_targets_are_added(policy):
    # With the weak count alone the quality distribution's spread and shape come from their priors, so the
    # number of branches at the top level moves far from city to city; adding the top level's count pins
    # it down to what the city-to-city draw leaves.
    n = 600
    top, weak = policy.levels[0], policy.scheme.branch.designations[0].id
    sd = {}
    for name, t in {"weak": {weak: 19 * n / 1500}, "top and weak": _targets(policy, n)}.items():
        c = plausible_cities(policy, t, n=6, scale=n, seeds=range(4))
        out = across_cities(c, lambda pop: bs.evaluate(pop, policy).level_counts()["count"])
        sd[name] = out.set_index("quantity").loc[top, "sd"]
    assert sd["top and weak"] < 0.5 * sd["weak"], sd


@pytest.mark.parametrize("name", [*shipped.POLICIES, "county"])
def test_every_scheme_has_plausible_cities(name):
    policy = COUNTY if name == "county" else shipped.load(name)
    weak = policy.scheme.branch.designations[0].id
    params = bs.GeneratorParams.for_policy(policy)
    expected = calibration.expected_counts(params, policy, range(2), 300)[weak]
    c = plausible_cities(policy, {weak: float(expected)}, n=2, scale=300, seeds=range(2))
    assert c.fitted == ["branch_quality.loc"] and len(c) == 2
    assert (c.params["fit_error"] <= 1.0).all()
    out = bs.fragility(None, policy, cities=c)
    assert {"cut_kind", "quantity", "mean", "lower", "upper", "n_cities"} <= set(out.columns)
    # Without targets every parameter comes from its prior (the shipped composites publish none).
    if name != "baseline":
        prior = plausible_cities(policy, {} if name == "county" else None, n=3, n_branches=200)
        assert prior.fitted == [] and prior.replicates.empty
        for k, (lo, hi) in prior.details["priors"].items():
            assert prior.params[k].between(lo, hi).all(), k
        if name == "star_quota":      # its quota-implied level counts say nothing of the generator
            assert prior.details["ignored"] == list(policy.levels[:3])


def test_priors_are_data_and_can_be_overridden(policy):
    params = bs.GeneratorParams.for_policy(policy)
    r = prior_ranges(params, ["branch_quality.scale", "branch_quality.loc"])
    assert r["branch_quality.scale"] == (0.04, 0.12)          # data/generator.yaml
    loc = params.get("branch_quality.loc")
    assert r["branch_quality.loc"] == pytest.approx((loc - 0.1, loc + 0.1))      # {plus_minus: 0.1}
    c = plausible_cities(policy, {}, n=2, n_branches=100, priors={"measurement.indicator_noise": (0.05, 0.06)})
    assert c.params["measurement.indicator_noise"].between(0.05, 0.06).all()
    for bad, match in [({"branch_quality.scale": (0.2, 0.1)}, "lo < hi"),
                       ({"measurement.survey_size": (10, 20)}, "survey_size"),
                       ({"branch_quality.tail": (7.0, 9.0)}, "outside the parameter's allowed range")]:
        with pytest.raises(bs.BranchsimError, match=match):
            plausible_cities(policy, {}, n=1, n_branches=100, priors=bad)
    with pytest.raises(bs.BranchsimError, match="has no prior range"):
        prior_ranges(params, ["measurement.indicator_noise"])


@pytest.mark.parametrize("bad, match", [({"n": 0}, "n= is the number of cities"), ({"tol": 0}, "tol="),
                                        ({"refine": -1}, "refine="), ({"priors": [1]}, "priors= takes a mapping"),
                                        ({"targets": {"nonsense": 3}}, "not levels, designations")])
def test_bad_arguments_are_refused(policy, bad, match):
    kwargs = {"n": 1, "n_branches": 100, "targets": {}} | bad
    with pytest.raises(bs.BranchsimError, match=match):
        plausible_cities(policy, **kwargs)


def _city0(out: pd.DataFrame, keys: list) -> pd.Series:
    per = out.attrs["per_city"]
    return per[per["city"] == 0].set_index([*keys, "quantity"])["value"]


def test_the_analyses_take_cities(cities, policy):
    pop0 = cities.generate(0)
    cases = {
        "sweep": (lambda: bs.sweep(None, policy, {"branch.satisfaction_share": [0.3, 0.4]}, cities=cities),
                  lambda: bs.sweep(pop0, policy, {"branch.satisfaction_share": [0.3, 0.4]}, progress=False)
                  .set_index("branch.satisfaction_share"), ["branch.satisfaction_share"]),
        "compare": (lambda: bs.compare(None, policy, {"branch.satisfaction_share": 0.3}, cities=cities),
                    lambda: compare_numbers(bs.compare(pop0, policy, {"branch.satisfaction_share": 0.3}))
                    .set_index("level"), ["level"]),
        "fit_cut_points": (lambda: bs.fit_cut_points(None, policy, cities=cities),
                           lambda: bs.fit_cut_points(pop0, policy).set_index("level"), ["level"]),
        "fragility": (lambda: bs.fragility(None, policy, delta=1.0, cities=cities),
                      lambda: bs.fragility(pop0, policy, delta=1.0).counts.set_index("cut_kind"), ["cut_kind"]),
        "rule_accuracy": (lambda: bs.rule_accuracy(None, policy, years=2, seeds=range(1), cities=cities),
                          lambda: bs.rule_accuracy(pop0, policy, years=2, seeds=range(1)).set_index(["seed", "year"]),
                          ["seed", "year"]),
    }
    for name, (with_cities, single, keys) in cases.items():
        out = with_cities()
        assert list(out.columns) == [*keys, "quantity", "mean", "sd", "lower", "upper", "n_cities"], name
        ok = out["n_cities"] > 0
        assert (out.loc[ok, "lower"] <= out.loc[ok, "mean"] + 1e-9).all(), name
        assert (out.loc[ok, "mean"] <= out.loc[ok, "upper"] + 1e-9).all(), name
        assert out["n_cities"].max() == len(cities)
        # City 0's numbers are the analysis on city 0's population.
        mine, frame = _city0(out, keys), single()
        for (*key, q), v in mine.items():
            want = frame.loc[tuple(key) if len(key) > 1 else key[0], q]
            assert (math.isnan(v) and pd.isna(want)) or v == pytest.approx(float(want)), (name, key, q)


def test_intervals_contain_the_single_city_answer(cities, policy):
    # The default city at the default (calibrated) parameters is a plausible city for the top level's count
    # the cities were fitted to: its answers about the top level lie within the range the plausible cities
    # give. (Answers that no target constrains may not: with only two counts the shape of the quality
    # distribution comes from its prior; how many branches score near the weak line, for one, since the
    # designation's count can come from vetoes as well as from low scores.)
    top = policy.levels[0]
    pop = bs.generate(policy, seed=0, n_branches=N, members=False)
    wanted = {top: round(41 * N / 1500)}
    fit = bs.fit_cut_points(None, policy, wanted, cities=cities).query("quantity == 'cut'").set_index("level")
    single = bs.fit_cut_points(pop, policy, wanted).set_index("level")["cut"]
    frag = bs.fragility(None, policy, cities=cities).query("quantity == 'within'").set_index("cut_kind")
    one = bs.fragility(pop, policy).counts.set_index("cut_kind")["within"]
    one = one[[top]]
    assert len(single) == 1
    for name, out, answer in (("cut", fit, single), ("within", frag, one)):
        for key, v in answer.items():
            assert out.loc[key, "lower"] <= v <= out.loc[key, "upper"], (name, key, v, out.loc[key].to_dict())


def test_bad_cities_are_refused(cities, policy):
    pop = cities.generate(0)
    with pytest.raises(bs.BranchsimError, match="cities= takes the ensemble of bs.plausible_cities"):
        bs.fragility(None, policy, cities=[cities[0]])
    with pytest.raises(bs.BranchsimError, match="give a population or cities="):
        bs.fit_cut_points(pop, policy, cities=cities)
    with pytest.raises(bs.BranchsimError, match="drawn for policy 'baseline'"):
        bs.sweep(None, shipped.load("member_points"), {"branch.satisfaction_share": [0.3]}, cities=cities)
    with pytest.raises(bs.BranchsimError, match="interval= is a probability"):
        across_cities(cities, lambda p: 1.0, interval=1.5)


def _more_cases(policy, pop):
    """measurement_mc, effective_importance, compare_member_schemes: (with cities=, on one population, keys)."""
    return {
        "measurement_mc": (lambda c: bs.measurement_mc(None, policy, draws=10, seed=1, survey_sizes=[10], cities=c,
                                                       progress=False),
                           lambda: mc_numbers(bs.measurement_mc(pop, policy, draws=10, seed=1, survey_sizes=[10],
                                                                progress=False)).set_index("survey_size"),
                           ["survey_size"]),
        "effective_importance": (lambda c: bs.effective_importance(None, policy, cities=c),
                                 lambda: bs.effective_importance(pop, policy).set_index("component"), ["component"]),
        "compare_member_schemes": (lambda c: bs.compare_member_schemes(None, policy, (0.8, 0.0), cities=c),
                                   lambda: bs.compare_member_schemes(pop, policy, (0.8, 0.0)), ["record_share"]),
    }


def test_measurement_importance_and_member_schemes_take_cities(cities, policy):
    pop0 = cities.generate(0, members=True)
    for name, (with_cities, single, keys) in _more_cases(policy, pop0).items():
        out = with_cities(cities)
        assert list(out.columns) == [*keys, "quantity", "mean", "sd", "lower", "upper", "n_cities"], name
        assert (out["lower"] <= out["mean"] + 1e-9).all() and (out["mean"] <= out["upper"] + 1e-9).all(), name
        assert out["n_cities"].max() == len(cities), name
        mine, frame = _city0(out, keys), single()
        assert len(mine) > 5, name
        for (key, q), v in mine.items():
            want = frame.loc[key, q]
            assert (math.isnan(v) and pd.isna(want)) or v == pytest.approx(float(want)), (name, key, q)


def test_their_intervals_contain_or_come_near_the_default_citys_answer(cities, policy):
    # The default city (default parameters, seed 0) against the plausible cities' interval for the headline
    # numbers: misclassification and the weak designation's false alarms, the survey's covariance share,
    # the members' misgrading under each scheme. The member generator is not calibrated (the cities differ in
    # their branches' quality only), so "near": within one interval width of the interval.
    pop = bs.generate(policy, seed=0, n_branches=N, members=True)
    cases = _more_cases(policy, pop)
    weak = policy.scheme.branch.designations[0].id
    wanted = {"measurement_mc": [(25, "misclassified"), (10, "misclassified"), (25, "mean_p_true"),
                                 (25, f"{weak}_false_alarm_share")],
              "effective_importance": [("satisfaction", "covariance_share"), ("satisfaction", "linear_share")],
              "compare_member_schemes": [(0.8, "misclassified"), (0.0, "misclassified"), (0.0, "spearman")]}
    for name, (with_cities, single, keys) in cases.items():
        out, one = with_cities(cities).set_index([*keys, "quantity"]), single()
        for key, q in wanted[name]:
            lo, hi, v = out.loc[(key, q), "lower"], out.loc[(key, q), "upper"], float(one.loc[key, q])
            assert hi > lo, (name, key, q)
            assert lo - (hi - lo) <= v <= hi + (hi - lo), (name, key, q, v, lo, hi)


def test_bad_cities_are_refused_by_these_too(cities, policy):
    pop = cities.generate(0, members=True)
    with pytest.raises(bs.BranchsimError, match="measurement_mc: cities= takes the ensemble of bs.plausible_cities"):
        bs.measurement_mc(None, policy, cities=[cities[0]])
    with pytest.raises(bs.BranchsimError, match="effective_importance: give a population or cities="):
        bs.effective_importance(pop, policy, cities=cities)
    with pytest.raises(bs.BranchsimError, match="compare_member_schemes: the cities were drawn for policy 'baseline'"):
        bs.compare_member_schemes(None, shipped.load("member_points"), cities=cities)
    with pytest.raises(bs.BranchsimError, match="plausible city 0 .*survey_sizes entries"):
        bs.measurement_mc(None, policy, draws=2, survey_sizes=[0], cities=cities, progress=False)


def test_across_cities_is_independent_of_the_order_of_cities(cities):
    out = across_cities(cities, lambda pop: pop.branches["true_quality"].describe()[["mean", "std"]])
    per = out.attrs["per_city"]
    for q, g in per.groupby("quantity"):
        v = g["value"].to_numpy()
        row = out.set_index("quantity").loc[q]
        assert row["mean"] == np.mean(np.sort(v)) and row["n_cities"] == len(cities)
        assert row["lower"] == np.quantile(v[::-1], 0.05) and row["upper"] == np.quantile(v, 0.95)


def test_no_scheme_names_in_the_code():
    shipped.assert_no_scheme_names(("plausible", "calibration"))


def test_summaries_concatenate_and_keep_every_citys_values():
    # pandas copies attrs on slicing and compares them on concatenation: the per-city frame must survive both
    from branchsim.plausible import across_cities, plausible_cities as pc
    cities = pc(bs.Policy.load(), {"weak": 19}, n=3, scale=1500, n_branches=300, seeds=range(2))
    out = across_cities(cities, lambda pop: pd.Series({"a": 1.0 + len(pop.branches), "b": 2.0}))
    both = pd.concat([out.iloc[:1], out.iloc[1:]])
    assert both.equals(out) and both.attrs["per_city"].equals(out.attrs["per_city"])
    other = across_cities(cities, lambda pop: pd.Series({"c": 3.0}))
    assert "per_city" not in pd.concat([out, other]).attrs          # two summaries: not one city frame
