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


# -- layout (JupyterLab 4 at a 968 px output area) --------------------------------------------------------
def test_columns_have_fixed_widths_and_wrap(ex):
    from branchsim import explorer as mod
    assert ex.controls.layout.width == mod.CONTROLS_WIDTH
    assert ex.right.layout.width == ex.right.layout.max_width == mod.RIGHT_WIDTH
    assert ex.right.layout.overflow == "hidden"
    assert all(s.layout.width == mod.SLIDER_WIDTH for s in ex.sliders.values())
    assert ex.columns.layout.flex_flow == "row wrap"          # the counts go below the sliders if narrow
    # Both columns fit beside each other in 968 px (1em = 13 px in JupyterLab's widgets).
    em = [float(x.removesuffix("em")) for x in (mod.CONTROLS_WIDTH, mod.RIGHT_WIDTH)]
    assert (sum(em) + 2) * 13 < 968
    assert float(mod.SLIDER_WIDTH.removesuffix("em")) <= em[0]


def test_the_reset_button_is_wide_enough_for_its_label(ex):
    layout = ex.reset_button.layout
    assert ex.reset_button.description == "Reset to baseline"
    assert layout.min_width == "max-content"                   # never narrower than its label
    assert float(layout.width.removesuffix("em")) * 13 >= 8 * len(ex.reset_button.description) + 40


def test_a_long_message_wraps_inside_its_column(ex):
    ex.sliders["branch.star_cuts.3"].value = 85.0             # out of order: a long message
    assert ex.message.startswith("Cut points out of order")
    box = ex.message_box
    assert box.layout.max_width == ex.right.layout.width and box.layout.overflow == "hidden"
    for rule in ("white-space:normal", "overflow-wrap:anywhere", "max-width:100%"):
        assert rule in box.value, rule


def test_published_counts_only_beside_a_population_of_the_published_scale(ex, policy):
    assert ex.counts["published"].isna().all()                # 300 branches: not comparable
    assert len(ex.figure.axes[0].patches) == len(ex.counts)   # no hatched published bars
    assert "published" not in ex.table.value
    city = Explorer(bs.generate(policy, seed=0, members=False), policy)
    pub = bs.published_counts()
    assert city.counts.loc["five_star", "published"] == pub["five_star"]
    assert city.counts.loc["weak", "published"] == pub["weak"]
    assert "published" in city.table.value
    assert len(city.figure.axes[0].patches) == len(city.counts) + pub.index.isin(city.counts.index).sum()
