"""The generator is calibrated to each scheme's published figures (its targets file).

The seed city (shared/seed/000_ccd209e4c601e2c4.txt, Dujiangyan c. 2018) publishes, for about
1,500 branches: 41 five-star (五星級), 173 four-star (四星級) and 422 three-star (三星級)
party organisations, 19 weak and lax organisations rectified (軟弱渙散), 79 community
(general) branches upgraded to party committees and 115 branches upgraded to general
branches (data/policies/baseline.targets.yaml). The default generator is calibrated so that
the *baseline* policy reproduces these counts *in expectation*: the mean over the calibration
seeds 0..59 of the default city's counts must lie within 5% of each published figure. (Counts
vary a lot between cities — each draws its own indicator difficulties — so a 20-seed mean of
the weak count has a standard error of about 8% on its own; the calibration sample is 60
seeds; see docs/calibration.md for the fit on independent seeds.)

The other shipped schemes publish no count the generator can be fitted to (star_quota's level
counts are set by its quotas; member_points publishes none): calibrating them is refused with
one line saying why. A scheme with counts of its own is fitted to them, whatever its ids.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import calibration
from branchsim.model import GeneratorParams
from conftest import SEED
import shipped

PUBLISHED = {"five_star": 41, "four_star": 173, "three_star": 422, "weak": 19,
             "upgrade_party_committee": 79, "upgrade_general_branch": 115}
STARS = ("five_star", "four_star", "three_star", "weak")
UPGRADES = ("upgrade_party_committee", "upgrade_general_branch")


@pytest.fixture(scope="module")
def city_means() -> pd.Series:
    """Mean level, weak and upgrade counts of the default city over seeds 0..59."""
    rows = []
    for s in range(60):
        r = bs.evaluate(bs.generate(seed=s, members=False))
        rows.append({**r.level_counts()["count"].to_dict(), **r.upgrade_counts()["count"].to_dict()})
    return pd.DataFrame(rows).mean()


def test_targets_are_the_published_counts():
    t = calibration.targets()
    assert t["value"].to_dict() == PUBLISHED
    for key, value in PUBLISHED.items():
        assert str(value) in t.loc[key, "quote"], key
    # The same figures stand beside every outcome.
    assert bs.published_counts().to_dict() == PUBLISHED


@pytest.mark.skipif(not SEED.exists(), reason="shared/seed is not next to the repository")
def test_target_quotes_are_verbatim_in_the_source():
    text = SEED.read_text(encoding="utf-8")
    quotes = calibration.targets()["quote"]
    assert len(quotes) == 6
    assert [k for k, q in quotes.items() if q not in text] == []


@pytest.mark.parametrize("level", STARS + UPGRADES)
def test_default_city_reproduces_the_published_count_on_average(city_means, level):
    assert city_means[level] == pytest.approx(PUBLISHED[level], rel=0.05), city_means.to_dict()


def test_level_counts_add_up(city_means, policy):
    assert city_means[list(policy.levels)].sum() == pytest.approx(1500)


def test_expected_upgrades_match_the_simulation(city_means, policy):
    expected = calibration.expected_upgrades(GeneratorParams.load(), policy, 1500)
    assert set(expected) == set(UPGRADES)
    for key in UPGRADES:
        # The exact expectation against a 60-seed mean (standard error ~1-2 units).
        assert city_means[key] == pytest.approx(expected[key], rel=0.10), key


def test_no_upgrades_when_no_unit_is_below_its_level(policy):
    params = GeneratorParams.load().with_values({"structure.p_underlevel": 0.0})
    assert calibration.expected_upgrades(params, policy, 1500) == {k: 0.0 for k in UPGRADES}
    r = bs.evaluate(bs.generate(seed=0, members=False, params=params))
    assert (r.upgrade_counts()["count"] == 0).all()
    assert (r.branches["level"] == r.branches["required_level"]).all()


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_expected_counts_are_the_schemes_and_add_up(name):
    policy = shipped.load(name)
    s = policy.scheme
    params = GeneratorParams.for_policy(policy)
    drawn = calibration.expected_counts(params, policy, range(2), 300)
    smooth = calibration.expected_counts(params, policy, range(2), 300, smooth=True)
    ids = list(s.branch.levels.ids) + [d.id for d in s.branch.designations]
    assert list(drawn.index) == ids and list(smooth.index) == ids
    assert drawn[list(s.branch.levels.ids)].sum() == pytest.approx(300)
    assert smooth[list(s.branch.levels.ids)].sum() == pytest.approx(300)
    # One evaluation by hand: the mean of seed 0 alone is its own counts.
    one = bs.evaluate(bs.generate(policy, seed=0, n_branches=300, members=False, params=params), policy)
    assert calibration.expected_counts(params, policy, [0], 300).to_dict() == \
        one.level_counts()["count"].astype(float).to_dict()
    if s.branch.rating.design == "cuts" and s.branch.state_facts:
        # averaged states differ from drawn ones, but not by much over a whole population
        assert (smooth - drawn).abs().max() < 0.05 * 300


def test_smoothing_averages_the_states_exactly(policy):
    # With states that never go wrong, smoothing changes nothing: the same counts as drawn.
    params = GeneratorParams.load().with_values({"state.problem_rate": 0.0})
    assert calibration.expected_counts(params, policy, [3], 300, smooth=True).to_dict() == \
        calibration.expected_counts(params, policy, [3], 300).to_dict()


def _objective(params, policy, seeds, n) -> float:
    """Sum of squared relative errors of the four star targets (scaled to n branches)."""
    counts = calibration.expected_counts(params, policy, seeds, n)
    return sum((counts[k] / (PUBLISHED[k] * n / 1500) - 1) ** 2 for k in STARS)


def test_calibrate_moves_towards_the_targets(policy):
    # Start well away from the fitted values; a short run must already fit better.
    default = GeneratorParams.load()
    start = default.with_values({"branch_quality.loc": default.get("branch_quality.loc") + 0.05})
    seeds, n = range(3), 600
    before = _objective(start, policy, seeds, n)
    result = calibration.calibrate(policy, seeds=seeds, n_branches=n, params=start, maxiter=15)
    after = _objective(result.params, policy, seeds, n)
    assert after < 0.5 * before, (before, after)
    # The fit reports what the fitted parameters achieve, against targets scaled to n.
    fit = result.fit
    assert list(fit.columns) == ["target", "achieved", "relative_error", "identified_by"]
    assert set(fit.index) == set(PUBLISHED)
    assert fit.loc["three_star", "target"] == pytest.approx(422 * n / 1500)
    assert (fit.loc[list(STARS), "relative_error"] ** 2).sum() == pytest.approx(after)
    pd.testing.assert_series_equal(
        fit.loc[list(STARS), "achieved"],
        calibration.expected_counts(result.params, policy, seeds, n)[list(STARS)],
        check_names=False)
    # The input parameters are not changed by the fit.
    assert start.get("branch_quality.loc") == pytest.approx(default.get("branch_quality.loc") + 0.05)
    assert "CalibrationResult" in repr(result) and "<table" in result._repr_html_()


@pytest.mark.parametrize("name, why", [("star_quota", "set by the 'quota' design's quotas"),
                                       ("member_points", "no published counts")])
def test_a_scheme_without_fittable_targets_is_refused(name, why):
    with pytest.raises(bs.BranchsimError, match=why):
        calibration.calibrate(shipped.load(name), seeds=range(1), maxiter=1)


def test_the_kmeans_reform_is_fitted_to_its_base_targets():
    reform = shipped.load("kmeans_by_type")
    result = calibration.calibrate(reform, seeds=range(1), n_branches=300, maxiter=2)
    assert set(result.fit.index) == set(PUBLISHED)
    assert result.fit.loc["five_star", "target"] == pytest.approx(41 * 300 / 1500)


def _own_scheme(tmp_path, counts: dict) -> bs.Policy:
    """member_points copied beside a targets file of its own."""
    shutil.copy(shipped.path("member_points"), tmp_path / "mine.yaml")
    doc = {"schema": "branchsim-targets/1", "source": "test",
           "scale": {"branches": {"value": 300, "assumption": "test"}},
           "counts": {k: {"value": v, "assumption": "test"} for k, v in counts.items()}}
    (tmp_path / "mine.targets.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return bs.Policy.load(tmp_path / "mine.yaml")


def test_a_scheme_is_fitted_to_its_own_ids(tmp_path):
    policy = _own_scheme(tmp_path, {"advanced": 60, "weak": 15})
    params = GeneratorParams.for_policy(policy)
    start = params.with_values({"branch_quality.loc": params.get("branch_quality.loc") - 0.05})
    result = calibration.calibrate(policy, seeds=range(2), n_branches=300, params=start, maxiter=12)
    assert list(result.fit.index) == ["advanced", "weak"]
    before = calibration.expected_counts(start, policy, range(2), 300)
    after = result.fit["achieved"]
    assert abs(after["advanced"] - 60) < abs(before["advanced"] - 60)


def test_unknown_target_ids_are_refused(tmp_path):
    policy = _own_scheme(tmp_path, {"advanced": 60, "five_star": 3})
    with pytest.raises(bs.BranchsimError, match=r"mine\.targets\.yaml.*'five_star'.*allowed: advanced"):
        calibration.calibrate(policy, seeds=range(1), maxiter=1)


def test_write_goes_to_a_file_of_the_users_never_into_the_package(tmp_path, policy):
    original = bs.data_path("generator.yaml").read_bytes()
    for bad, match in [(True, "takes the path"), (bs.data_path("generator.yaml"), "inside the installed package"),
                       (bs.data_path("policies", "x.generator.yaml"), "inside the installed package")]:
        with pytest.raises(bs.BranchsimError, match=match):
            calibration.calibrate(policy, seeds=range(1), n_branches=300, maxiter=1, write=bad)
    assert bs.data_path("generator.yaml").read_bytes() == original
    assert not bs.data_path("policies", "x.generator.yaml").exists()
    out = tmp_path / "fit" / "mine.generator.yaml"
    out.parent.mkdir()
    out.write_text("schema: branchsim-generator/1\nmeasurement:\n  survey_size: {value: 30, assumption: mine}\n",
                   encoding="utf-8")
    result = calibration.calibrate(policy, seeds=range(1), n_branches=300, maxiter=2, write=out)
    written = GeneratorParams.load(out)
    assert result.fitted                                          # what was fitted is what is written
    for key in result.fitted:
        assert written.get(key) == pytest.approx(result.params.get(key), abs=1e-9), key
    assert written.get("measurement.survey_size") == 30            # the file's other entries are kept
    assert [p.name for p in out.parent.iterdir()] == ["mine.generator.yaml"]    # no temporary file left


COUNTY = shipped.PACKAGE.parent / "tests" / "data" / "docs_only" / "county.yaml"


def test_a_scheme_of_new_type_names_without_a_survey_calibrates_to_its_own_targets(tmp_path):
    # The docs-only county (its own levels, three dimensions, no survey), with branch types named as no
    # generator file names them (hamlet, workshop: equal shares, median size), generates; its
    # targets are the expected counts at known parameters (mean over 20 seeds); calibration started from
    # other parameters reaches them within 5% in expectation over the same 20 seeds, and the fitted
    # city is evaluated with its accuracy against the truth.
    text = COUNTY.read_text(encoding="utf-8").replace("    village:\n", "    hamlet:\n") \
        .replace("    enterprise:\n", "    workshop:\n")
    (tmp_path / "renamed.yaml").write_text(text, encoding="utf-8")
    policy = bs.Policy.load(tmp_path / "renamed.yaml")
    assert not policy.scheme.branch.survey and set(policy.branch_types) == {"hamlet", "workshop"}
    n, seeds = 500, range(20)
    truth = GeneratorParams.for_policy(policy)
    targets = calibration.expected_counts(truth, policy, seeds, n)
    start = truth.with_values({"branch_quality.loc": truth.get("branch_quality.loc") + 0.03,
                               "branch_quality.scale": truth.get("branch_quality.scale") * 1.25})
    before = calibration.expected_counts(start, policy, seeds, n)
    assert ((before / targets - 1).abs() > 0.05).any()            # the start does not already fit
    result = calibration.calibrate(policy, targets.to_dict(), scale=n, seeds=seeds, params=start)
    assert result.fitted == ["branch_quality.loc", "branch_quality.scale", "branch_quality.skew",
                             "branch_quality.tail"]
    achieved = calibration.expected_counts(result.params, policy, seeds, n)
    assert ((achieved / targets - 1).abs() <= 0.05).all(), (achieved / targets - 1).to_dict()
    r = bs.evaluate(bs.generate(policy, seed=0, n_branches=n, members=False, params=result.params), policy)
    b = r.branches
    assert set(b["true_rating"].dropna()) <= set(policy.levels)
    assert r.accuracy() == pytest.approx(float((b["rating"] == b["true_rating"]).mean()))
    assert 0.3 < r.accuracy() < 1.0
