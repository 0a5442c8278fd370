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
    with pytest.raises(DataError, match="month_noise: give a list"):
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
    assert [c.get_gid() for c in ax.collections if c.get_gid()] == ["boundary"]
    matplotlib.pyplot.close(ax.figure)
    ax = bp.scheme_grid(g, measure="spearman")
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.5, 0.75])
    matplotlib.pyplot.close(ax.figure)
    with pytest.raises(DataError, match="measure"):
        bp.scheme_grid(g, measure="rmse")


def test_no_scheme_names_in_the_modules_of_these_findings():
    shipped.assert_no_scheme_names(("schemes", "simulation", "history", "levers"), "dynamics")
    shipped.assert_no_scheme_names(("schemes",), "plot")


# -- the two-year rule: intervals, events, and the coverage lever -------------------------------------
def test_clopper_pearson_matches_the_exact_binomial_interval():
    from scipy.stats import binomtest
    from branchsim.dynamics.history import clopper_pearson
    k, n = np.array([0, 1, 5, 9, 2]), np.array([2, 9, 10, 9, 40])
    low, high = clopper_pearson(k, n, 0.9)
    for i in range(len(k)):
        ci = binomtest(int(k[i]), int(n[i])).proportion_ci(confidence_level=0.9, method="exact")
        assert (low[i], high[i]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # closed forms at the edges: 0 of n has upper bound 1 - (α/2)^(1/n); n of n lower bound (α/2)^(1/n)
    assert high[0] == pytest.approx(1 - 0.05 ** 0.5) and low[3] == pytest.approx(0.05 ** (1 / 9))
    lo, hi = clopper_pearson([0], [0])
    assert np.isnan(lo[0]) and np.isnan(hi[0])
    with pytest.raises(DataError, match="confidence"):
        clopper_pearson([1], [2], 1.5)


@pytest.fixture(scope="module")
def strict_town():
    """600 branches with the weak line at 60 (many weak designations) and no lowest-first help but the one
    aimed at the weak (rectification), so its reach is the only lever."""
    policy = shipped.load("baseline")
    weak = policy.scheme.branch.designations[0]
    line = next(c for c in weak.criteria if c.kind == "score_below")
    aimed = dy_levers().aimed_interventions(policy.scheme)
    change = {f"branch.designations.{weak.id}.criteria.{line.id}.below": 60}
    change.update({f"interventions.{iv.id}.count": 0 if iv.id not in aimed else 600
                   for iv in policy.scheme.interventions if iv.select == "lowest"})     # no cap on the aimed
    return SimpleNamespace(policy=policy.update(change), pop=bs.generate(policy, seed=11, n_branches=600,
                                                                        members=False), aimed=aimed)


def dy_levers():
    from branchsim.dynamics import levers
    return levers


def test_pooled_rule_accuracy_has_intervals_and_events_and_counts_year_zero_once(strict_town):
    t = strict_town
    acc = bs.rule_accuracy(t.pop, t.policy, years=3, seeds=[1, 2])
    pooled = bs.rule_accuracy(t.pop, t.policy, years=3, seeds=[1, 2], pooled=True)
    year0 = acc[acc["year"] == 0]
    # year 0 is the population as generated: the same under both seeds, counted once
    assert year0["designated_weak"].nunique() == 1 and year0["designated_weak"].iloc[0] > 0
    assert pooled["designated_weak"] == acc["designated_weak"].sum() - year0["designated_weak"].iloc[0]
    table = bs.dynamics.rate_table(pooled)
    assert set(table.index) == {"miss_rate_weak", "false_rate_weak", "false_alarm_rate_reorganise",
                                "miss_rate_reorganise"}
    row = table.loc["false_alarm_rate_reorganise"]
    assert row["n"] == pooled["fired_reorganise"] == pooled["false_alarm_rate_reorganise_n"] > 0
    assert row["events"] == pooled["false_alarms_reorganise"]
    assert row["rate"] == pytest.approx(row["events"] / row["n"]) and row["low"] <= row["rate"] <= row["high"]
    wide = bs.rule_accuracy(t.pop, t.policy, years=3, seeds=[1, 2], pooled=True, confidence=0.99)
    assert wide["false_rate_weak_low"] < pooled["false_rate_weak_low"] < pooled["false_rate_weak_high"] \
        < wide["false_rate_weak_high"]


def test_rectification_coverage_is_a_lever_of_the_two_year_rule(strict_town):
    t = strict_town
    assert t.aimed == ("rectification",)
    g = dy_levers().coverage_grid(t.pop, t.policy, coverage=(1.0, 0.5, 0.0), years=4, seeds=range(3))
    reached = g["reached_rectification"].to_numpy()
    assert reached[0] > reached[1] > reached[2] == 0
    fired = g["fired_reorganise"].to_numpy()
    assert fired[0] < fired[2]                       # rectifying every weak unit is what keeps the rule quiet
    for rate in ("false_alarm_rate_reorganise", "miss_rate_reorganise", "false_rate_weak"):
        ok = g[f"{rate}_n"] > 0
        assert ((g[f"{rate}_low"] <= g[rate]) & (g[rate] <= g[f"{rate}_high"]))[ok].all()
    assert (g["fired_reorganise"] == g["false_alarm_rate_reorganise_n"]).all()
    assert (g["branch_years"] == (1 + 3 * 3) * 600).all()    # year 0 once, years 1-3 under each seed
    again = dy_levers().coverage_grid(t.pop, t.policy, coverage=(0.5,), years=4, seeds=range(3))
    pd.testing.assert_series_equal(again.iloc[0], g.iloc[1], check_names=False)


@pytest.mark.parametrize("scheme", shipped.SCHEMES)
def test_coverage_grid_on_every_shipped_scheme(scheme):
    policy = shipped.load(scheme)
    levers = dy_levers()
    rules = bs.dynamics.history.rule_consequences(policy.scheme)
    aimed = levers.aimed_interventions(policy.scheme)
    pop = bs.generate(policy, seed=2, n_branches=256, members=False)
    if not rules:
        with pytest.raises(DataError, match="no consecutive-years rule"):
            levers.coverage_grid(pop, policy, years=2, seeds=[0])
    elif not aimed:
        with pytest.raises(DataError, match=f"no intervention aimed at {rules[0].target}"):
            levers.coverage_grid(pop, policy, years=2, seeds=[0])
    else:
        g = levers.coverage_grid(pop, policy, coverage=(1.0, 0.0), years=2, seeds=[0])
        assert g["coverage"].tolist() == [1.0, 0.0] and (g[[f"reached_{i}" for i in aimed]].iloc[1] == 0).all()
        for c in rules:
            assert {f"fired_{c.id}", f"false_alarm_rate_{c.id}_high", f"miss_rate_{c.id}_n"} <= set(g.columns)
        with pytest.raises(DataError, match="interventions"):
            levers.coverage_grid(pop, policy, interventions=["nope"], years=2, seeds=[0])
        for bad in ((1.5,), ("x",), ()):
            with pytest.raises(DataError, match="coverage_grid: coverage"):
                levers.coverage_grid(pop, policy, bad, years=2, seeds=[0])
        with pytest.raises(DataError, match="confidence"):
            levers.coverage_grid(pop, policy, confidence=2, years=2, seeds=[0])


# -- the survey's effective weight ---------------------------------------------------------------------
@pytest.mark.parametrize("scheme", shipped.SCHEMES)
def test_covariance_shares_add_up_to_one_and_match_a_hand_computation(scheme):
    policy = shipped.load(scheme)
    pop = bs.generate(policy, seed=0, n_branches=400, members=False)
    e = bs.effective_importance(pop, policy).set_index("component")
    assert e["covariance_share"].sum() == pytest.approx(1.0, abs=1e-12)
    b = bs.evaluate(pop, policy).branches
    parts = b[[f"sub_{c}" for c in e.index]].to_numpy(float)        # each component's points, as evaluated
    total = parts.sum(axis=1)
    for j, c in enumerate(e.index):
        by_hand = np.cov(parts[:, j], total)[0, 1] / np.var(total, ddof=1)
        assert e.loc[c, "covariance_share"] == pytest.approx(by_hand, abs=1e-6)
        rest = total - parts[:, j]
        assert e.loc[c, "correlation_rest"] == pytest.approx(np.corrcoef(parts[:, j], rest)[0, 1], abs=1e-6)
        assert e.loc[c, "linear_share"] == pytest.approx(parts[:, j].var() / parts.var(axis=0).sum(), abs=1e-6)


def test_the_survey_weighs_less_than_its_linear_share_because_it_moves_with_the_dimensions():
    """The finding rests on the survey and the dimensions both following the branch's true quality
    (correlation about 0.6 on the default city). Changing that assumption — a survey driven mostly by
    the branch's mood (``measurement.survey_shock`` 0.05 → 0.3) — weakens the correlation, and the
    survey's covariance share moves towards its linear share."""
    policy = shipped.load("baseline")
    pop = bs.generate(policy, seed=0, members=False)
    survey = policy.scheme.branch.components[-1]
    base = bs.effective_importance(pop, policy).set_index("component").loc[survey]
    assert 0.5 < base["correlation_rest"] < 0.75
    assert base["covariance_share"] < base["linear_share"] - 0.1
    assert base["nominal_share"] < base["covariance_share"] < base["linear_share"]
    moody = bs.generate(policy, seed=0, members=False,
                        params=pop.params.with_values({"measurement.survey_shock": 0.3}))
    mood = bs.effective_importance(moody, policy).set_index("component").loc[survey]
    assert mood["correlation_rest"] < base["correlation_rest"] / 2
    assert mood["linear_share"] - mood["covariance_share"] < base["linear_share"] - base["covariance_share"]


def test_rate_table_from_counts_alone_and_bad_input():
    from branchsim.dynamics import rate_table
    counts = pd.Series({"fired_r": 4, "false_alarms_r": 1, "deserved_r": 0, "missed_r": 0,
                        "false_alarm_rate_r": 0.25, "miss_rate_r": np.nan})
    t = rate_table(counts)              # no interval in the Series: computed from the counts
    full = rate_table(bs.dynamics.pool_accuracy(counts.drop(["false_alarm_rate_r", "miss_rate_r"]).to_frame().T))
    pd.testing.assert_frame_equal(t, full)
    assert t.loc["miss_rate_r", "n"] == 0 and np.isnan(t.loc["miss_rate_r", "low"])
    with pytest.raises(DataError, match="rate_table"):
        rate_table(counts.to_frame())
    with pytest.raises(DataError, match="no designated_"):
        rate_table(pd.Series({"x": 1}))
