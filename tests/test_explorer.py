"""The interactive explorer: sliders drive a reform whose counts equal branchsim.evaluate."""
from __future__ import annotations

import re

import numpy as np
import pytest

import branchsim as bs
from branchsim.explorer import Explorer, explore

widgets = pytest.importorskip("ipywidgets")

SHARE = "branch.satisfaction_share"
DIMS = [f"branch.dimensions.{d}.share" for d in ("organisation", "institution", "activities", "role")]


@pytest.fixture(scope="module")
def pop(policy):
    return bs.generate(policy, seed=2, n_branches=300, members=False)


@pytest.fixture
def ex(pop, policy):
    return Explorer(pop, policy)


def shown_count(ex, level: str) -> int:
    """The count the table widget displays for one level."""
    m = re.search(rf"<th>{level}</th>\s*<td>(-?\d+)</td>", ex.table.value)
    assert m, f"{level} not in the table"
    return int(m.group(1))


def assert_matches_evaluate(ex, pop, policy_expected=None):
    expected = bs.evaluate(pop, policy_expected if policy_expected is not None else ex.policy).star_counts()
    for level, count in expected["count"].items():
        assert ex.counts.loc[level, "count"] == count, level
        assert shown_count(ex, level) == count, level


def test_starts_at_the_baseline(ex, pop, policy):
    assert ex.policy is policy and ex.message == ""
    assert_matches_evaluate(ex, pop, policy)
    assert (ex.counts["change"] == 0).all()
    assert "no parameter changed" in ex.diff_box.value
    assert ex.chart.outputs[0]["data"]["image/png"]


def test_explore_returns_a_widget_with_its_explorer(pop):
    w = explore(pop)
    assert isinstance(w, widgets.Widget)
    assert isinstance(w.explorer, Explorer) and w.explorer.widget is w


@pytest.mark.parametrize("changes", [
    {SHARE: 0.3},
    {SHARE: 0.55},
    {"branch.star_cuts.4": 78.0},
    {"branch.star_cuts.5": 85.0, "branch.star_cuts.3": 65.5},
    {"branch.weak_below": 55.0},
    {SHARE: 0.25, "branch.star_cuts.4": 82.5, "branch.weak_below": 45.0},
])
def test_sliders_make_the_reform_policy_update_makes(ex, pop, policy, changes):
    for path, value in changes.items():
        ex.sliders[path].value = value
    reform = policy.update(changes)
    assert ex.message == ""
    assert reform.diff(ex.policy).empty                          # the same values, shares re-normalised
    assert_matches_evaluate(ex, pop, reform)
    assert set(policy.diff(ex.policy)["path"]) == set(policy.diff(reform)["path"])
    for path in changes:
        assert path in ex.diff_box.value
    change = ex.counts["count"] - bs.evaluate(pop, policy).star_counts()["count"]
    assert (ex.counts["change"] == change).all()


def test_balance_sliders_split_the_non_survey_share(ex, pop, policy):
    ex.sliders[SHARE].value = 0.3
    ex.sliders["balance.organisation"].value = 0.5             # others stay at 0.25: sum of balance 1.25
    shares = [ex.policy[p] for p in DIMS]
    assert shares == pytest.approx([0.7 * 0.5 / 1.25] + [0.7 * 0.25 / 1.25] * 3, abs=1e-12)
    assert sum(shares) + ex.policy[SHARE] == pytest.approx(1, abs=1e-12)
    assert_matches_evaluate(ex, pop)


def test_balance_leaves_unmoved_dimensions_out_of_the_diff(ex, policy):
    # institution and activities keep exactly 0.15: no round-off entry may appear in the diff.
    ex.sliders["balance.organisation"].value = 0.3
    ex.sliders["balance.role"].value = 0.2
    assert list(policy.diff(ex.policy)["path"]) == [DIMS[0], DIMS[3]]
    assert ex.policy[DIMS[0]] == pytest.approx(0.18) and ex.policy[DIMS[3]] == pytest.approx(0.12)


def test_cuts_out_of_order_show_a_message_instead_of_raising(ex, pop, policy):
    ex.sliders[SHARE].value = 0.35
    before = ex.counts.copy()
    ex.sliders["branch.star_cuts.3"].value = 85.0             # above the 4-star cut (80)
    assert ex.policy is None
    assert ex.message.startswith("Cut points out of order: the 4★ cut (80) must be above the 3★ cut (85)")
    assert "Cut points out of order" in ex.message_box.value
    assert ex.counts.equals(before)                            # the last valid counts stay
    ex.sliders["branch.star_cuts.4"].value = 88.0             # valid again: 90 > 88 > 85
    assert ex.message == "" and ex.message_box.value == ""
    assert_matches_evaluate(ex, pop, policy.update({SHARE: 0.35, "branch.star_cuts.3": 85.0,
                                                    "branch.star_cuts.4": 88.0}))


def test_all_balance_at_zero_shows_a_message(ex):
    for d in ("organisation", "institution", "activities", "role"):
        ex.sliders[f"balance.{d}"].value = 0.0
    assert ex.policy is None and "balance" in ex.message


def test_reset_returns_to_the_baseline(ex, pop, policy):
    ex.sliders[SHARE].value = 0.5
    ex.sliders["branch.star_cuts.5"].value = 95.0
    ex.reset()
    assert ex.policy is policy
    assert "no parameter changed" in ex.diff_box.value
    assert_matches_evaluate(ex, pop, policy)


def test_browser_float_noise_is_rounded_away(ex, policy):
    ex.sliders[SHARE].value = 0.30000000000000004
    assert ex.policy[SHARE] == 0.3


def test_rejects_what_is_not_a_population(policy):
    with pytest.raises(bs.DataError, match="Population"):
        Explorer(bs.evaluate(bs.generate(policy, seed=0, n_branches=20, members=False)))


def test_chart_follows_the_counts(ex):
    ex.sliders["branch.star_cuts.5"].value = 80.5             # many more five-star branches
    ax = ex.figure.axes[0]
    heights = [p.get_height() for p in ax.patches][:len(ex.counts)]
    assert heights == pytest.approx(ex.counts["count"].astype(float).tolist())
    assert np.isclose(heights[0], ex.counts.loc["five_star", "count"])
