"""The explorer takes sliders for any numeric branch parameter and refuses one that moves nothing it shows."""
from __future__ import annotations

import pandas as pd
import pytest

import branchsim as bs
from shipped import POLICIES, load

pytest.importorskip("ipywidgets")


def _points_path(p):
    df = p.parameters()
    return next(x for x in df["path"] if x.startswith("branch.indicators.") and x.endswith(".points")
                and p[x] > 0)


@pytest.mark.parametrize("name", POLICIES)
def test_a_points_slider_gives_what_evaluate_gives(name):
    p = load(name)
    pop = bs.generate(p, seed=3, n_branches=200, members=False)
    path = _points_path(p)
    ex = bs.Explorer(pop, p, params=[path])
    assert path in ex.sliders
    base = ex.counts["count"].copy()
    moved = []
    for v in (0.0, 2 * p[path]):
        ex.sliders[path].value = v
        assert ex.message == "" and ex.policy[path] == v
        want = bs.evaluate(pop, p.update({path: v})).level_counts()["count"]
        assert ex.counts["count"].reindex(want.index).tolist() == want.tolist()
        moved.append(ex.counts["count"].tolist() != base.tolist())
    assert any(moved)                  # the slider re-scores: not a silent no-op
    ex.reset()
    assert ex.counts["count"].tolist() == base.tolist()


def test_a_slider_that_moves_nothing_shown_is_refused():
    p = bs.Policy.load()
    pop = bs.generate(seed=3, n_branches=60, members=False)
    with pytest.raises(bs.PolicyError, match="member.record_share: changes nothing the explorer shows"):
        bs.Explorer(pop, p, params=["member.record_share"])
    with pytest.raises(bs.PolicyError, match="no such parameter"):
        bs.Explorer(pop, p, params=["branch.nope"])
    with pytest.raises(bs.PolicyError, match="give \\(low, high\\)"):
        bs.Explorer(pop, p, params={_points_path(p): (5, 1)})
    with pytest.raises(bs.PolicyError, match="list of parameter paths"):
        bs.Explorer(pop, p, params="branch.satisfaction_share")


def test_what_does_it_take_follows_the_sliders():
    pop = bs.load_population(bs.data_path("examples"))
    p = bs.Policy.load()
    ex = bs.Explorer(pop, p)
    top_cut = f"branch.rating.cuts.{p.levels[1]}"
    ex.sliders[top_cut].value = p[top_cut] - 3                 # the next level is nearer under the sliders
    got = ex.next_level("B006")
    want = bs.next_level(pop, ex.policy, "B006")
    assert ex.policy is not p
    pd.testing.assert_frame_equal(got, want)
    ex.show_next_level("B006")
    singles = want[(want["move"] == "single") & want["change"].notna()]
    assert all(f in ex.next_box.value for f in singles["fact"].head(3))
    ex.sliders[top_cut].value = 99                             # breaks the order: the last valid setting is used
    assert ex.policy is None
    pd.testing.assert_frame_equal(ex.next_level("B006"), want)
    ex.show_next_level("NOPE")
    assert "NOPE" in ex.next_box.value and "⚠" in ex.next_box.value
