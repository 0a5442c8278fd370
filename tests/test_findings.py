"""The notebooks' findings tested against a change of the assumption they rest on.

* Member scoring schemes: the period record beats the year-end appraisal only
  while the records are less noisy and less biased than the appraisal; the
  comparison reverses when the monthly impression bias is set above the
  year-end one (and, for the baseline, at monthly noise 0.3 even unbiased).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.dynamics import member_scheme_grid, scheme_reversals
from branchsim.errors import DataError
import shipped

MEMBER_SCHEMES = [s for s in shipped.SCHEMES if shipped.load(s).scheme.member is not None]
NOISE, BIAS = (0.05, 0.3), (0.0, 1.0, 2.0)


# -- member schemes across monthly noise and monthly bias ---------------------------------------------
@pytest.fixture(scope="module", params=MEMBER_SCHEMES)
def grid(request) -> SimpleNamespace:
    """A town of 300 branches under one scheme with members, over a 2 × 3 grid of monthly noise and bias."""
    policy = shipped.load(request.param)
    pop = bs.generate(policy, seed=3, n_branches=300)
    return SimpleNamespace(name=request.param, policy=policy, pop=pop,
                           grid=member_scheme_grid(pop, policy, month_noise=NOISE, monthly_bias=BIAS))


def _cell(g: pd.DataFrame, noise: float, bias: float) -> pd.Series:
    return g.set_index(["month_noise", "monthly_bias"]).loc[(noise, bias)]


def test_the_grid_runs_for_every_scheme_with_members_and_only_the_records_change(grid):
    g = grid.grid
    assert len(g) == len(NOISE) * len(BIAS)
    assert list(g[["month_noise", "monthly_bias"]].itertuples(index=False, name=None)) == \
        [(n, b) for n in NOISE for b in BIAS]
    halo = grid.pop.params.get("member_measurement.impression_halo")
    np.testing.assert_allclose(g["monthly_halo"], g["monthly_bias"] * halo)
    # the appraisal, its bias and the truth are drawn from the same streams in every cell (the grades of
    # the year-end scheme move only where vetoes read facts of the records)
    assert g["year_end_spearman"].nunique() == 1
    assert (g["year_end"].nunique() == 1) == (not grid.policy.scheme.member.vetoes.n)
    assert g["records"].nunique() == len(g)
    np.testing.assert_allclose(g["difference"], g["records"] - g["year_end"])
    np.testing.assert_allclose(g["rank_difference"], g["year_end_spearman"] - g["records_spearman"])
    assert (g["better"] == np.where(g["difference"] < 0, "records", "year-end")).all()


def test_the_grid_is_reproducible(grid):
    again = member_scheme_grid(grid.pop, grid.policy, month_noise=NOISE[:1], monthly_bias=BIAS[:2])
    pd.testing.assert_frame_equal(again, grid.grid.iloc[:2].reset_index(drop=True), check_exact=True)


def test_records_lose_their_edge_as_their_bias_and_noise_grow(grid):
    g = grid.grid
    for noise in NOISE:
        for col in ("difference", "rank_difference"):
            d = [_cell(g, noise, b)[col] for b in BIAS]
            assert d[0] < d[1] < d[2], (noise, col, d)
    for b in BIAS:
        assert _cell(g, NOISE[0], b)["rank_difference"] < _cell(g, NOISE[1], b)["rank_difference"]


def test_the_comparison_reverses_when_the_monthly_bias_is_above_the_year_end_bias(grid):
    g = grid.grid
    low = _cell(g, NOISE[0], 0.0)
    # unbiased, low-noise records rank members closer to their true quality, on every scheme
    assert low["rank_difference"] < 0
    # records twice as biased as the year-end appraisal: the year-end wins, on every scheme and either measure
    high = _cell(g, NOISE[0], 2.0)
    assert high["rank_difference"] > 0 and high["difference"] > 0
    rev = scheme_reversals(g, measure="spearman")
    assert rev.loc[NOISE[0], "better_at_start"] == "records" and rev.loc[NOISE[0], "better_after"] == "year-end"
    assert 0 < rev.loc[NOISE[0], "crossing"] < 2


def test_the_reversal_of_the_seed_city_scheme():
    """Baseline (records 80%, monthly, ``accrual: mean``), by the share misgraded.

    Unbiased records at the default noise (0.05) misgrade far fewer members;
    the comparison reverses just above the year-end appraisal's own bias
    (b ≈ 1.1) and, with unbiased records, between monthly noise 0.2 and 0.3.
    """
    policy = shipped.load("baseline")
    pop = bs.generate(policy, seed=3, n_branches=300)
    g = member_scheme_grid(pop, policy, month_noise=(0.05, 0.2, 0.3), monthly_bias=(0.0, 1.0, 1.5))
    assert _cell(g, 0.05, 0.0)["difference"] < -0.1
    by_bias = scheme_reversals(g)
    assert by_bias.loc[0.05, "between"] == "1-1.5" and 1 < by_bias.loc[0.05, "crossing"] < 1.5
    assert by_bias.loc[0.3, "better_at_start"] == "year-end" and np.isnan(by_bias.loc[0.3, "crossing"])
    by_noise = scheme_reversals(g, along="month_noise")
    assert by_noise.loc[0.0, "between"] == "0.2-0.3" and by_noise.loc[0.0, "better_after"] == "year-end"
    # the crossing is the linear interpolation of the two cells around it
    d0, d1 = _cell(g, 0.05, 1.0)["difference"], _cell(g, 0.05, 1.5)["difference"]
    assert by_bias.loc[0.05, "crossing"] == pytest.approx(1.0 + 0.5 * d0 / (d0 - d1))


def test_summed_quarterly_records_misgrade_more_even_unbiased():
    """member_points (quarterly facts summed over the year): the records rank members better
    unbiased, yet misgrade more than the year-end appraisal at every cell, because the summed
    record sits below the noise-free truth (the expectation of each fact) by several points —
    the grade cuts, not the ranking, decide. A finding about that scheme's measurement, kept."""
    policy = shipped.load("member_points")
    pop = bs.generate(policy, seed=3, n_branches=300)
    g = member_scheme_grid(pop, policy, month_noise=(0.05,), monthly_bias=(0.0,))
    assert g.loc[0, "rank_difference"] < 0 < g.loc[0, "difference"]
    cmp = bs.compare_member_schemes(pop, policy, shares=(1.0, 0.0))
    assert cmp.loc[1.0, "bias"] < -2 and abs(cmp.loc[0.0, "bias"]) < 1


def test_member_scheme_grid_bad_inputs():
    town = bs.generate(seed=3, n_branches=30)
    with pytest.raises(DataError, match="rates branches only"):
        member_scheme_grid(town, shipped.load("star_quota"))
    with pytest.raises(DataError, match="share"):
        member_scheme_grid(town, share=0)
    with pytest.raises(DataError, match="month_noise and monthly_bias"):
        member_scheme_grid(town, month_noise=())
    loaded = bs.load_population(bs.data_path("examples"))
    with pytest.raises(DataError, match="generated population"):
        member_scheme_grid(loaded)
    g = pd.DataFrame({"month_noise": [0.1], "monthly_bias": [0.0], "difference": [0.1]})
    with pytest.raises(DataError, match="along"):
        scheme_reversals(g, along="noise")
    with pytest.raises(DataError, match="measure"):
        scheme_reversals(g, measure="rmse")
    with pytest.raises(DataError, match="rank_difference"):
        scheme_reversals(g, measure="spearman")


def test_top_level_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    import branchsim.plot as bp
    assert bs.member_scheme_grid is member_scheme_grid and bs.scheme_reversals is scheme_reversals
    g = pd.DataFrame({"month_noise": [0.1, 0.1, 0.3, 0.3], "monthly_bias": [0.0, 2.0, 0.0, 2.0],
                      "difference": [-0.2, 0.2, 0.1, 0.3], "rank_difference": [-0.1, 0.1, -0.3, 0.1]})
    ax = bp.scheme_grid(g)
    line, = [ln for ln in ax.get_lines() if ln.get_gid() == "crossing"]
    assert line.get_xdata().tolist() == [0.5] and line.get_ydata().tolist() == [0]   # row 0.3 never crosses
    assert len(ax.texts) == 4
    matplotlib.pyplot.close(ax.figure)
    ax = bp.scheme_grid(g, measure="spearman")
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.5, 0.75])
    matplotlib.pyplot.close(ax.figure)
    with pytest.raises(DataError, match="measure"):
        bp.scheme_grid(g, measure="rmse")


def test_no_scheme_names_in_the_modules_of_these_findings():
    shipped.assert_no_scheme_names(("schemes", "simulation", "history"), "dynamics")
    shipped.assert_no_scheme_names(("schemes",), "plot")
