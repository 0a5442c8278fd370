"""The interactive explorer: sliders built from the scheme drive a reform whose counts equal branchsim.evaluate."""
from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import branchsim as bs
from branchsim.explorer import Explorer, explore
from shipped import SCHEMES, load

widgets = pytest.importorskip("ipywidgets")

SHARE = "branch.satisfaction_share"


@functools.lru_cache(maxsize=None)
def population(name: str, n: int = 300):
    return bs.generate(load(name), seed=2, n_branches=n, members=False)


@pytest.fixture
def ex(policy):
    return Explorer(population("baseline"), policy)


def shown_count(ex, level: str) -> int:
    """The count the table widget displays for one level."""
    m = re.search(rf"<th>{level}</th>\s*<td>(-?\d+)</td>", ex.table.value)
    assert m, f"{level} not in the table"
    return int(m.group(1))


def assert_matches_evaluate(ex, pop, policy):
    expected = bs.evaluate(pop, policy).level_counts()["count"]
    assert list(ex.counts.index) == list(expected.index)          # level ids best first, then designations
    for level, count in expected.items():
        assert ex.counts.loc[level, "count"] == count, level
        assert shown_count(ex, level) == count, level


def expected_keys(policy) -> list[str]:
    """The sliders a scheme should get, worked out from the policy file's own entries."""
    br = policy.to_dict()["branch"]
    form = (br.get("score") or {}).get("form", "shares")
    design = br["rating"]["design"]
    keys = []
    if form == "shares":
        keys += [SHARE] if br.get("survey") else []
        keys += [f"balance.{d}" for d in br["dimensions"]]
    if design in ("cuts", "cuts_and_quota"):
        keys += [f"branch.rating.cuts.{lv}" for lv in list(br["levels"])[:-1]]
    if design in ("quota", "cuts_and_quota"):
        keys += [f"branch.rating.quotas.{lv}" for lv in list(br["levels"])[:-1]]
    for did, d in (br.get("designations") or {}).items():
        keys += [f"branch.designations.{did}.criteria.{cid}.below" for cid, c in d["criteria"].items()
                 if c["kind"] == "score_below"]
    return keys


def moved(key: str, slider) -> float:
    """A new value for a slider that keeps the setting valid (a small move, away from the edge)."""
    if key.startswith("balance."):
        return round(slider.value + 0.2, 2)
    if key == SHARE or ".quotas." in key:
        return round(max(slider.value - 0.04, 0.0), 2)
    return slider.value - 1.5                   # a cut point or a designation line: a little lower


# -- every scheme ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMES)
def test_starts_at_the_policy(name):
    policy, pop = load(name), population(name)
    ex = Explorer(pop, policy)
    assert ex.policy is policy and ex.message == ""
    assert_matches_evaluate(ex, pop, policy)
    assert (ex.counts["change"] == 0).all()
    assert "no parameter changed" in ex.diff_box.value
    assert ex.chart.outputs[0]["data"]["image/png"]
    assert list(ex.sliders) == expected_keys(policy)


@pytest.mark.parametrize("name", SCHEMES)
def test_each_slider_gives_the_counts_evaluate_gives(name):
    each_slider(load(name), population(name))


@pytest.mark.parametrize("design", ["quota", "cuts_and_quota", "hierarchical"])
def test_each_slider_under_the_other_designs(design):
    base = load("baseline")
    quotas = {lv: {"value": q, "assumption": "a test"} for lv, q in zip(base.levels[:-1], (0.05, 0.2, 0.3))}
    policy = base.update({"branch.rating.design": design, **({"branch.rating.quotas": quotas}
                                                             if "quota" in design else {})})
    ex = each_slider(policy, population("baseline"))
    assert any(k.startswith("branch.rating.quotas.") for k in ex.sliders) == ("quota" in design)
    assert any(k.startswith("branch.rating.cuts.") for k in ex.sliders) == (design == "cuts_and_quota")


def each_slider(policy, pop) -> Explorer:
    """Move each slider in turn: the counts are evaluate's under the reform Policy.update makes."""
    ex = Explorer(pop, policy)
    base_counts = ex.counts["count"].copy()
    changed_any = False
    for key, slider in ex.sliders.items():
        slider.value = moved(key, slider)
        assert ex.message == "", (key, ex.message)
        assert_matches_evaluate(ex, pop, ex.policy)
        if not key.startswith("balance.") and key != SHARE:
            reform = policy.update({key: slider.value})
            assert reform.diff(ex.policy).empty                        # the reform Policy.update makes
            assert key in ex.diff_box.value
        assert (ex.counts["change"] == ex.counts["count"] - base_counts).all()
        changed_any |= bool((ex.counts["change"] != 0).any())
        ex.reset()
        assert ex.policy is policy
    assert changed_any                                                    # the sliders move the counts
    return ex


@pytest.mark.parametrize("name", SCHEMES)
def test_sliders_are_labelled_by_the_schemes_levels(name):
    policy = load(name)
    ex = Explorer(population(name), policy)
    lv = policy.scheme.branch.levels
    for key, slider in ex.sliders.items():
        if key.startswith(("branch.rating.cuts.", "branch.rating.quotas.")):
            level = key.rsplit(".", 1)[1]
            assert slider.description.startswith(lv.en[lv.ids.index(level)])
            assert slider.value == policy[key]


def test_a_relative_design_re_rates_the_population():
    # Under k-means within type the cut points move with the scores: a new survey share re-clusters.
    policy, pop = load("kmeans_by_type"), population("kmeans_by_type")
    ex = Explorer(pop, policy)
    before = bs.evaluate(pop, policy).cut_points["cut"].to_numpy()
    ex.sliders[SHARE].value = 0.2
    assert_matches_evaluate(ex, pop, policy.update({SHARE: 0.2}))
    assert not np.allclose(bs.evaluate(pop, ex.policy).cut_points["cut"].to_numpy(), before)


def test_quota_sliders_and_their_limit():
    policy, pop = load("star_quota"), population("star_quota")
    ex = Explorer(pop, policy)
    top, second = (f"branch.rating.quotas.{lv}" for lv in policy.levels[:2])
    ex.sliders[top].value = 0.2
    assert_matches_evaluate(ex, pop, policy.update({top: 0.2}))
    ex.sliders[second].value = 0.75                                   # 0.2 + 0.75 + 0.3 > 1
    assert ex.policy is None and ex.message.startswith("The quotas add up to 1.25")
    ex.sliders[second].value = 0.3
    assert ex.message == "" and ex.policy[second] == 0.3


def test_a_type_with_its_own_cut_is_noted():
    policy = load("member_points")
    ex = Explorer(population("member_points"), policy)
    top = policy.levels[0]
    note = f"village keeps its own rating.cuts.{top} ({policy[f'branch.types.village.rating.cuts.{top}']:g})"
    assert any(isinstance(w, widgets.HTML) and note in w.value for w in ex.controls.children)


def test_published_counts_only_beside_a_population_of_the_published_scale():
    policy = load("star_quota")
    small = Explorer(population("star_quota"), policy)
    assert small.counts["published"].isna().all() and "published" not in small.table.value
    assert len(small.figure.axes[0].patches) == len(small.counts)          # no hatched published bars
    scale = bs._result.targets(policy)
    county = Explorer(population("star_quota", int(scale["scale"])), policy)
    for key, value in scale["counts"].items():
        assert county.counts.loc[key, "published"] == value
    assert county.counts["published"].isna().sum() == len(county.counts) - len(scale["counts"])
    assert "published" in county.table.value
    assert len(county.figure.axes[0].patches) == len(county.counts) + len(scale["counts"])


# -- the baseline's shares and cut points ----------------------------------------------------------
def test_explore_returns_a_widget_with_its_explorer(policy):
    w = explore(population("baseline"), policy)
    assert isinstance(w, widgets.Widget)
    assert isinstance(w.explorer, Explorer) and w.explorer.widget is w


def test_balance_sliders_split_the_non_survey_share(ex, policy):
    dims = [f"branch.dimensions.{d}.share" for d in policy.dimensions]
    ex.sliders[SHARE].value = 0.3
    first = f"balance.{policy.dimensions[0]}"
    start = ex.sliders[first].value
    ex.sliders[first].value = 2 * start
    balance = np.array([ex.sliders[f"balance.{d}"].value for d in policy.dimensions])
    shares = [ex.policy[p] for p in dims]
    assert shares == pytest.approx(list(0.7 * balance / balance.sum()), abs=1e-12)
    assert sum(shares) + ex.policy[SHARE] == pytest.approx(1, abs=1e-12)
    assert_matches_evaluate(ex, population("baseline"), ex.policy)


def test_balance_leaves_unmoved_dimensions_out_of_the_diff(ex, policy):
    # The two middle dimensions keep exactly their share: no round-off entry may appear in the diff.
    d = policy.dimensions
    ex.sliders[f"balance.{d[0]}"].value = 0.3
    ex.sliders[f"balance.{d[-1]}"].value = 0.2
    assert list(policy.diff(ex.policy)["path"]) == [f"branch.dimensions.{d[0]}.share",
                                                    f"branch.dimensions.{d[-1]}.share"]


def test_cuts_out_of_order_show_a_message_instead_of_raising(ex, policy):
    lv, en = policy.levels, policy.scheme.branch.levels.en
    mid, low = f"branch.rating.cuts.{lv[1]}", f"branch.rating.cuts.{lv[2]}"
    ex.sliders[SHARE].value = 0.35
    before = ex.counts.copy()
    ex.sliders[low].value = policy[mid] + 5                         # above the level above
    assert ex.policy is None
    assert ex.message.startswith(f"Cut points out of order: the {en[1]} cut ({policy[mid]:g}) must be above the "
                                 f"{en[2]} cut ({policy[mid] + 5:g})")
    assert "Cut points out of order" in ex.message_box.value
    assert ex.counts.equals(before)                                  # the last valid counts stay
    ex.sliders[mid].value = policy[mid] + 8
    assert ex.message == "" and ex.message_box.value == ""
    assert_matches_evaluate(ex, population("baseline"), policy.update(
        {SHARE: 0.35, low: policy[mid] + 5, mid: policy[mid] + 8}))


def test_all_balance_at_zero_shows_a_message(ex, policy):
    for d in policy.dimensions:
        ex.sliders[f"balance.{d}"].value = 0.0
    assert ex.policy is None and "balance" in ex.message


def test_reset_returns_to_the_baseline(ex, policy):
    ex.sliders[SHARE].value = 0.5
    ex.sliders[f"branch.rating.cuts.{policy.levels[0]}"].value = 95.0
    ex.reset()
    assert ex.policy is policy and "no parameter changed" in ex.diff_box.value
    assert_matches_evaluate(ex, population("baseline"), policy)


def test_browser_float_noise_is_rounded_away(ex):
    ex.sliders[SHARE].value = 0.30000000000000004
    assert ex.policy[SHARE] == 0.3


def test_rejects_what_is_not_a_population(policy):
    with pytest.raises(bs.DataError, match="Population"):
        Explorer(bs.evaluate(bs.generate(policy, seed=0, n_branches=20, members=False)))


def test_chart_follows_the_counts(ex, policy):
    ex.sliders[f"branch.rating.cuts.{policy.levels[0]}"].value = 80.5     # many more at the top level
    heights = [p.get_height() for p in ex.figure.axes[0].patches][:len(ex.counts)]
    assert heights == pytest.approx(ex.counts["count"].astype(float).tolist())
    assert heights[0] == ex.counts.loc[policy.levels[0], "count"] > ex.counts.loc[policy.levels[0], "baseline"]


# -- layout (JupyterLab 4 at a 968 px output area) --------------------------------------------------------
def test_columns_have_fixed_widths_and_wrap(ex):
    from branchsim import explorer as mod
    assert ex.controls.layout.width == mod.CONTROLS_WIDTH
    assert ex.right.layout.width == ex.right.layout.max_width == mod.RIGHT_WIDTH
    assert ex.right.layout.overflow == "hidden"
    assert all(s.layout.width == mod.SLIDER_WIDTH for k, s in ex.sliders.items() if not k.startswith("balance."))
    assert ex.columns.layout.flex_flow == "row wrap"          # the counts go below the sliders if narrow
    em = [float(x.removesuffix("em")) for x in (mod.CONTROLS_WIDTH, mod.RIGHT_WIDTH)]
    assert (sum(em) + 2) * 13 < 968
    assert float(mod.SLIDER_WIDTH.removesuffix("em")) <= em[0]


def test_the_counts_column_holds_its_widgets(ex):
    # A percentage width plus the 2 px margin ipywidgets gives each widget is wider than the column,
    # whose overflow is hidden: the right edge is cut off (seen in tests/test_explorer_browser.py).
    for child in ex.right.children:
        assert not (child.layout.width or "").endswith("%"), (child, child.layout.width)


def test_the_balance_sliders_fit_inside_their_accordion(ex):
    # The accordion pads its contents: at the column's width their readouts were cut off by its border
    # (seen in tests/test_explorer_browser.py); they fill its inside, never wider than the others.
    from branchsim import explorer as mod
    balance = [s for k, s in ex.sliders.items() if k.startswith("balance.")]
    assert balance
    accordion = next(c for c in ex.controls.children if isinstance(c, widgets.Accordion))
    assert list(accordion.children[0].children) == balance
    assert all(s.layout.width == "auto" and s.layout.max_width == mod.SLIDER_WIDTH for s in balance)


def test_the_reset_button_is_wide_enough_for_its_label(ex):
    layout = ex.reset_button.layout
    assert ex.reset_button.description == "Reset to baseline"
    assert layout.min_width == "max-content"                   # never narrower than its label
    assert float(layout.width.removesuffix("em")) * 13 >= 8 * len(ex.reset_button.description) + 40


def test_a_long_message_wraps_inside_its_column(ex, policy):
    ex.sliders[f"branch.rating.cuts.{policy.levels[2]}"].value = 85.0     # out of order: a long message
    assert ex.message.startswith("Cut points out of order")
    box = ex.message_box
    assert box.layout.max_width == ex.right.layout.width and box.layout.overflow == "hidden"
    for rule in ("white-space:normal", "overflow-wrap:anywhere", "max-width:100%"):
        assert rule in box.value, rule
