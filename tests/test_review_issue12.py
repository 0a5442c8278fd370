"""Review of issue 12's new code: bad arguments get one clear error before any work, files are not lost."""
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim.dynamics import coverage_grid
from branchsim.dynamics.history import clopper_pearson, pool_accuracy
from branchsim.params import GeneratorParams

QUICK = dict(scale=300, n_branches=300, seeds=range(2), maxiter=6)


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": 3}, "seeds= takes a list of seeds"),
    ({"seeds": None}, "seeds= takes a list of seeds"),
    ({"seeds": [None]}, r"seeds= must be whole numbers >= 0"),     # fresh entropy: a random objective
    ({"seeds": [1.5]}, r"seeds= must be whole numbers >= 0"),
    ({"seeds": []}, "at least one seed"),
    ({"maxiter": 0}, r"maxiter= .* whole number >= 1, got 0"),     # was: the start values returned as 'fitted'
    ({"maxiter": 2.5}, r"maxiter= .* got 2.5"),
    ({"n_branches": 1.5}, r"n_branches= .* got 1.5"),              # was: cities of 1 branch
    ({"n_branches": "a"}, r"n_branches= .* got 'a'"),
    ({"scale": float("inf")}, r"scale= .* finite number > 0\), got inf"),
    ({"params": "x"}, "params= takes GeneratorParams or a mapping"),
    ({"fit": 5}, "fit= takes a generator parameter's dotted name"),
    ({"fit": [["branch_quality.loc"]]}, "give parameter names"),
])
def test_calibrate_refuses_bad_arguments_in_one_line(kwargs, match):
    args = {**QUICK, **kwargs}
    with pytest.raises(bs.BranchsimError, match=match) as info:
        bs.calibrate(bs.Policy.load(), {"weak": 5}, **args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("targets, match", [
    ({"weak": 301}, r"counts weak=301 exceed the 300 branches"),
    ({"five_star": 200, "four_star": 150}, r"level counts \(five_star, four_star\) add up to 350, more than the 300"),
])
def test_calibrate_refuses_counts_no_city_of_that_scale_can_have(targets, match):
    # before: the fit stopped at a bound and returned parameters matching nothing (relative error -1)
    with pytest.raises(bs.BranchsimError, match=match):
        bs.calibrate(bs.Policy.load(), targets, **QUICK)


def test_calibrate_keeps_the_prior_and_source_of_an_entry_it_refits(tmp_path):
    out = tmp_path / "mine.generator.yaml"
    out.write_text("schema: branchsim-generator/1\nbranch_quality:\n  loc:\n    value: 0.5\n"
                   "    prior: [0.3, 0.7]\n    source: my survey\n  skew: 0.1\n", encoding="utf-8")
    r = bs.calibrate(bs.Policy.load(), {"weak": 5}, out=out, **QUICK)
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    loc = doc["branch_quality"]["loc"]
    assert loc["value"] == pytest.approx(r.params.get("branch_quality.loc"))
    assert loc["prior"] == [0.3, 0.7] and loc["source"] == "my survey" and "calibrated" in loc
    assert doc["branch_quality"]["skew"] == 0.1


@pytest.mark.parametrize("text, match", [
    ("branch_quality: 3\n", r"entry 'branch_quality' is 3, not a mapping"),
    ("branch_quality: {skew: oops}\n", r"branch_quality.skew: got 'oops'"),
])
def test_calibrate_refuses_an_out_file_it_cannot_extend_before_fitting(tmp_path, text, match, monkeypatch):
    out = tmp_path / "odd.yaml"
    out.write_text(text, encoding="utf-8")
    import branchsim.calibration as cal

    def no_fit(*a, **k):
        raise AssertionError("fitted before the output file was checked")
    monkeypatch.setattr(cal, "expected_counts", no_fit)
    with pytest.raises(bs.BranchsimError, match=match):
        bs.calibrate(bs.Policy.load(), {"weak": 5}, out=out, **QUICK)
    assert out.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("kwargs, match", [
    ({"priors": {"foo.bar": (0, 1)}}, r"priors=: 'foo.bar' is not a numeric generator parameter"),
    ({"priors": {"scale.n_branches": (100, 200)}}, r"'scale.n_branches' is a whole number"),
    ({"priors": {"branch_quality": (0, 1)}}, r"'branch_quality' is not a numeric"),
    ({"seeds": 3}, "seeds= takes a list of seeds"),
    ({"params": 3}, "params= takes GeneratorParams"),
    ({"n_branches": "a"}, r"n_branches= .* got 'a'"),
])
def test_plausible_cities_refuses_bad_arguments_before_fitting(kwargs, match, monkeypatch):
    import branchsim.plausible as pl

    def no_fit(*a, **k):
        raise AssertionError("fitted before the arguments were checked")
    monkeypatch.setattr(pl, "calibrate", no_fit)
    args = {"scale": 300, "seeds": range(2), "refine": 1, "tol": 2, **kwargs}
    with pytest.raises(bs.BranchsimError, match=match):
        bs.plausible_cities(bs.Policy.load(), {"weak": 5}, n=1, **args)


def test_prior_ranges_names_an_unknown_parameter():
    with pytest.raises(bs.BranchsimError, match="'nope' is not a numeric generator parameter"):
        bs.plausible.prior_ranges(GeneratorParams.load(), ["nope"], {"nope": (0, 1)})


def test_coverage_grid_takes_one_intervention_id_and_refuses_a_bare_number():
    pop = bs.generate(seed=1, n_branches=120, members=False)
    one = coverage_grid(pop, coverage=(0.5,), interventions="rectification", years=2, seeds=range(1))
    listed = coverage_grid(pop, coverage=(0.5,), interventions=["rectification"], years=2, seeds=range(1))
    pd.testing.assert_frame_equal(one, listed)
    for kwargs, match in [({"coverage": 0.5}, "coverage: got 0.5"), ({"confidence": "x"}, "confidence: got 'x'"),
                          ({"seeds": 3}, "seeds: got 3")]:
        with pytest.raises(bs.DataError, match=match):
            coverage_grid(pop, **{"coverage": (0.5,), "years": 2, "seeds": range(1), **kwargs})


@pytest.mark.parametrize("confidence", ["x", None, True, float("nan"), 1.0])
def test_interval_confidence_that_is_not_a_share_is_one_clear_error(confidence):
    f = pd.DataFrame({"fired_r": [2, 2], "false_alarms_r": [1, 0], "deserved_r": [1, 1], "missed_r": [0, 1]})
    with pytest.raises(bs.DataError, match="confidence: got"):
        pool_accuracy(f, confidence=confidence)
    with pytest.raises(bs.DataError, match="confidence: got"):
        clopper_pearson([1], [2], confidence)


def test_noise_model_errors_name_rows_as_the_table_checks_do():
    tables = bs.load_population(bs.data_path("examples"))
    b = tables.branches.copy()
    b.loc[b.index[0], "reserve_cadres"] = -1.0            # the first data row: row 1, as load_population says
    with pytest.raises(bs.DataError, match=r"column 'reserve_cadres': negative in row 1;"):
        bs.measurement_mc(bs.Population(b), draws=2, progress=False, noise={"count": "poisson"})


def test_centred_defaults_follow_an_edited_generator_file(tmp_path):
    # The centring cache keyed on the values only: a prior added to the scheme's generator file (values
    # unchanged) was not seen again in the same session, so plausible_cities drew from the old priors.
    src = bs.data_path("policies")
    for name in ("member_points.yaml", "member_points.generator.yaml"):
        shutil.copy(src / name, tmp_path / name)
    gen = tmp_path / "member_points.generator.yaml"
    first = GeneratorParams.for_policy(bs.Policy.load(tmp_path / "member_points.yaml"))
    assert bs.plausible.prior_ranges(first, ["branch_quality.scale"])   # a prior from data/generator.yaml
    doc = yaml.safe_load(gen.read_text(encoding="utf-8"))
    scale = first.get("branch_quality.scale")
    doc.setdefault("branch_quality", {})["scale"] = {"value": scale, "prior": [scale / 2, scale * 2]}
    gen.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    again = GeneratorParams.for_policy(bs.Policy.load(tmp_path / "member_points.yaml"))
    assert again.get("branch_quality.scale") == scale
    assert bs.plausible.prior_ranges(again, ["branch_quality.scale"])["branch_quality.scale"] == pytest.approx(
        (scale / 2, scale * 2))


def test_across_cities_refuses_what_is_not_a_function():
    c = bs.plausible_cities(bs.Policy.load(), {"weak": 4}, n=1, scale=200, seeds=range(2), refine=1, tol=2)
    with pytest.raises(bs.BranchsimError, match="analysis must be a function taking a population, got 3"):
        bs.plausible.across_cities(c, 3)
    with pytest.raises(bs.BranchsimError, match="numbers must be a function"):
        bs.plausible.across_cities(c, lambda pop: 1.0, numbers="x")


@pytest.mark.parametrize("noise, match", [
    ({"count": {"model": ["poisson"]}}, r"noise: count: unknown model \['poisson'\]"),
    ({"share": {"model": "binomial", "n": "type"}}, r"column 'type': not a whole number >= 1 in rows 1, 2"),
])
def test_noise_model_of_the_wrong_type_is_one_clear_error(noise, match):
    tables = bs.load_population(bs.data_path("examples"))
    with pytest.raises(bs.BranchsimError, match=match):
        bs.measurement_mc(tables, draws=2, progress=False, noise=noise)


def test_rate_table_from_counts_alone_and_missing_counts_named():
    from branchsim.dynamics.history import rate_table
    counts = pd.Series({"fired_r": 2, "false_alarms_r": 1, "deserved_r": 1, "missed_r": 0})   # no rates
    t = rate_table(counts)
    assert t.loc["false_alarm_rate_r", "rate"] == 0.5 and t.loc["miss_rate_r", "rate"] == 0.0
    with pytest.raises(bs.DataError, match="counts false_w, missed_w, truly_w are missing"):
        rate_table(pd.Series({"designated_w": 3}))
    with pytest.raises(bs.DataError, match="pool_accuracy: counts false_w, missed_w are missing"):
        pool_accuracy(pd.DataFrame({"designated_w": [5, 3], "truly_w": [4, 0]}))


def test_monte_carlo_on_tables_refuses_fractional_survey_counts(tmp_path):
    import shutil
    import pandas as pd
    folder = tmp_path / "tables"
    shutil.copytree(bs.data_path("examples"), folder)
    b = pd.read_csv(folder / "branches.csv")
    col = next(c for c in b.columns if c.startswith("survey_"))
    b[col] = b[col].astype(float)
    b.loc[2, col] = b.loc[2, col] + 0.5
    with pytest.raises(bs.DataError, match=r"not a whole number in row 3"):     # the loader refuses them
        b.to_csv(folder / "branches.csv", index=False)
        bs.load_population(folder)
    tables = bs.Population(b)                                  # tables built in Python skip the loader
    with pytest.raises(bs.DataError, match=r"whole numbers of respondents.*row 3\b"):
        bs.measurement_mc(tables, draws=2, progress=False)


def test_scheme_reversals_skips_missing_cells_and_a_tie_at_the_start():
    from branchsim.dynamics.schemes import scheme_reversals
    g = pd.DataFrame({"month_noise": [0.1] * 4, "monthly_bias": [0.0, 1.0, 2.0, 3.0],
                      "difference": [0.0, -0.1, np.nan, 0.2]})
    row = scheme_reversals(g).loc[0.1]
    assert row["better_at_start"] == "records" and row["between"] == "1-3" and row["better_after"] == "year-end"
    assert row["crossing"] == pytest.approx(1 + 2 * 0.1 / 0.3)
    g["difference"] = [-0.1, np.nan, -0.2, -0.3]                 # records better throughout: no reversal
    assert np.isnan(scheme_reversals(g).loc[0.1, "crossing"])


@pytest.mark.parametrize("kw, match", [({"share": "a"}, "share"), ({"month_noise": 0.1}, "month_noise"),
                                       ({"monthly_bias": ["x"]}, "monthly_bias"),
                                       ({"monthly_bias": (3.0,)}, "at most 2")])
def test_member_scheme_grid_bad_arguments(kw, match):
    from branchsim.dynamics.schemes import member_scheme_grid
    pop = bs.generate(seed=0, n_branches=30)
    with pytest.raises(bs.DataError, match=match):
        member_scheme_grid(pop, **kw)
