"""The generator is calibrated to the published figures of the source.

The source (shared/seed/000_ccd209e4c601e2c4.txt, Dujiangyan c. 2018) publishes, for about
1,500 branches: 41 five-star (五星級), 173 four-star (四星級) and 422 three-star (三星級)
party organisations, 19 weak and lax organisations rectified (軟弱渙散), 79 community
(general) branches upgraded to party committees and 115 branches upgraded to general
branches. The default generator is calibrated so that the *baseline* policy reproduces these
counts *in expectation*: the mean over the calibration seeds 0..59 of the default city's
counts must lie within 5% of each published figure. (The issue asked for 20 seeds; counts vary
a lot between cities — each draws its own indicator difficulties — so a 20-seed mean of the
weak count has a standard error of about 8% on its own, and "within 5%" over 20 seeds would
be a coin flip for a correctly calibrated generator. The calibration sample is 60 seeds; see
docs/calibration.md for the fit on independent seeds.)
"""
from __future__ import annotations

import pandas as pd
import pytest

import branchsim as bs
from branchsim import calibration
from branchsim.model import GeneratorParams
from conftest import SEED

PUBLISHED = {"five_star": 41, "four_star": 173, "three_star": 422, "weak": 19,
             "upgrade_party_committee": 79, "upgrade_general_branch": 115}
STARS = ("five_star", "four_star", "three_star", "weak")
UPGRADES = ("upgrade_party_committee", "upgrade_general_branch")


@pytest.fixture(scope="module")
def city_means() -> pd.Series:
    """Mean star, weak and upgrade counts of the default city over seeds 0..59."""
    rows = []
    for s in range(60):
        r = bs.evaluate(bs.generate(seed=s, members=False))
        rows.append({**r.star_counts()["count"].to_dict(), **r.upgrade_counts()["count"].to_dict()})
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


def test_star_counts_add_up(city_means):
    levels = [k for k in city_means.index if k not in ("weak", *UPGRADES)]
    assert city_means[levels].sum() == pytest.approx(1500)


def test_expected_upgrades_match_the_simulation(city_means, policy):
    expected = calibration.expected_upgrades(GeneratorParams.load(), policy, 1500)
    assert set(expected) == set(UPGRADES)
    for key in UPGRADES:
        # The exact expectation against a 20-seed mean (standard error ~1-2 units).
        assert city_means[key] == pytest.approx(expected[key], rel=0.10), key


def test_no_upgrades_when_no_unit_is_below_its_level(policy):
    params = GeneratorParams.load().with_values({"structure.p_underlevel": 0.0})
    assert calibration.expected_upgrades(params, policy, 1500) == {k: 0.0 for k in UPGRADES}
    r = bs.evaluate(bs.generate(seed=0, members=False, params=params))
    assert (r.upgrade_counts()["count"] == 0).all()
    assert (r.branches["level"] == r.branches["required_level"]).all()


def _objective(params, policy, seeds, n) -> float:
    """Sum of squared relative errors of the four star targets (scaled to n branches)."""
    counts = calibration.expected_counts(params, policy, seeds, n)
    return sum((counts[k] / (PUBLISHED[k] * n / 1500) - 1) ** 2 for k in STARS)


def test_calibrate_moves_towards_the_targets(policy):
    # Start well away from the fitted values; a short run must already fit better.
    shipped = GeneratorParams.load()
    start = shipped.with_values({"branch_quality.loc": shipped.get("branch_quality.loc") + 0.05})
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
    assert start.get("branch_quality.loc") == pytest.approx(shipped.get("branch_quality.loc") + 0.05)
    assert "CalibrationResult" in repr(result) and "<table" in result._repr_html_()
