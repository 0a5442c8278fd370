"""compare, fragility, fragility_curve and fit_cut_points, on tables whose scores are known.

Hand-built village branches (baseline policy, survey of 10 answers worth
1 / 0.6 / 0; each dimension 15 points, the survey 40):

    full marks elsewhere:            score = 60 + 4 × satisfied + 2.4 × basic
    institution dimension at zero:   score = 45 + 4 × satisfied + 2.4 × basic

    id  facts            survey (s, b, d)  score   stars  nearest cut (margin)
    A   full             (8, 0, 2)         92      5      90 (+2)
    B   full             (7, 1, 2)         90.4    5      90 (+0.4)
    C   full             (5, 0, 5)         80      4      80 (0)
    D   full             (4, 1, 5)         78.4    3      80 (-1.6)
    E   no institution   (6, 0, 4)         69      0      70 (-1)
    F   no institution   (1, 0, 9)         49      0      weak line 50 (-1)
    G   no institution   (2, 0, 8)         53      0      weak line 50 (+3)
    H   secretary vacant (10, 0, 0)        85 + 15 × 21/25 = 97.6, capped at 0 by the veto
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity.compare import Comparison, compare
from branchsim.sensitivity.thresholds import (Fragility, fit_cut_points, fragility, fragility_curve,
                                              policy_with_cuts)
from conftest import EXAMPLES, branch_row

#: Facts that zero the institution dimension (every deduction's shortfall exceeds its points).
NO_INSTITUTION = dict(standards_implemented=0, ledger_items_complete=0, dues_on_time_share=0,
                      appraisal_months=0, org_life_filed_share=0, secretary_reported=0,
                      archive_complete_share=0, admission_procedure_ok=0)

HAND = {  # id: (survey, extra facts, score)
    "A": ((8, 0, 2), {}, 92.0),
    "B": ((7, 1, 2), {}, 90.4),
    "C": ((5, 0, 5), {}, 80.0),
    "D": ((4, 1, 5), {}, 78.4),
    "E": ((6, 0, 4), NO_INSTITUTION, 69.0),
    "F": ((1, 0, 9), NO_INSTITUTION, 49.0),
    "G": ((2, 0, 8), NO_INSTITUTION, 53.0),
    "H": ((10, 0, 0), {"secretary_in_post": 0}, 85 + 15 * 21 / 25),
}
TOP = ["five_star", "four_star", "three_star"]


def hand_pop(policy, ids=tuple(HAND), extra=()) -> bs.Population:
    rows = [branch_row(policy, i, survey=HAND[i][0], **HAND[i][1]) for i in ids]
    rows += [branch_row(policy, i, survey=s, **f) for i, s, f in extra]
    return bs.load_population(branches=pd.DataFrame(rows), policy=policy)


@pytest.fixture(scope="module")
def hand(policy):
    return hand_pop(policy)


@pytest.fixture(scope="module")
def examples_pop(policy):
    return bs.load_population(EXAMPLES, policy=policy)


@pytest.fixture(scope="module")
def city_branches():
    return bs.generate(seed=11, n_branches=1500, members=False)


def test_hand_table_scores_are_what_the_docstring_says(hand, policy):
    r = bs.evaluate(hand, policy).branches.set_index("branch_id")
    assert r["score"].to_dict() == pytest.approx({i: v[2] for i, v in HAND.items()}, abs=1e-9)
    assert r["stars"].to_dict() == {"A": 5, "B": 5, "C": 4, "D": 3, "E": 0, "F": 0, "G": 0, "H": 0}


# -- compare ---------------------------------------------------------------------------
def test_compare_with_itself_changes_nothing(examples_pop, policy):
    c = compare(examples_pop, policy, policy)
    stars = bs.evaluate(examples_pop, policy).branches["stars"]
    t = c.transitions
    assert list(t.index) == list(t.columns) == sorted(stars.unique(), reverse=True)
    assert (t.to_numpy() == np.diag(np.diag(t.to_numpy()))).all()
    assert dict(zip(t.index, np.diag(t.to_numpy()))) == stars.value_counts().to_dict()
    assert c.movers.empty and c.newly_weak.empty and c.no_longer_weak.empty
    assert c.new_consequences.empty and c.lifted_consequences.empty
    assert c.members_changed is not None and c.members_changed.empty
    assert c.diff.empty and c.is_identity
    assert "0 change star" in repr(c)


def test_compare_moved_cut_and_weak_line_worked_by_hand(examples_pop, policy):
    # B006 (79.02) and B011 (78.65) are three-star; a 4-star cut at 78 lifts both.
    # B012 (52.44) is the only branch between 50 and 55: newly weak, so a talk
    # (no reorganisation: it was not weak the year before).
    base = bs.evaluate(examples_pop, policy).branches
    lifted = base[(base["stars"] == 3) & (base["score"] >= 78)]["branch_id"].tolist()
    assert lifted == ["B006", "B011"]
    c = compare(examples_pop, policy, policy.update({"branch.star_cuts.4": 78, "branch.weak_below": 55}))
    assert c.movers[["branch_id", "old_stars", "new_stars", "change"]].values.tolist() == \
        [["B006", 3, 4, 1], ["B011", 3, 4, 1]]
    assert c.movers["old_score"].tolist() == c.movers["new_score"].tolist()   # only the cut moved
    expected = pd.DataFrame([[4, 0, 0, 0], [0, 1, 0, 0], [0, 2, 1, 0], [0, 0, 0, 4]],
                            index=[5, 4, 3, 0], columns=[5, 4, 3, 0])
    assert (c.transitions.to_numpy() == expected.to_numpy()).all()
    assert list(c.transitions.index) == [5, 4, 3, 0]
    assert c.newly_weak["branch_id"].tolist() == ["B012"] and c.no_longer_weak.empty
    assert c.new_consequences.values.tolist() == [["branch", "B012", "B012", "talk"]]
    assert sorted(c.diff["path"]) == ["branch.star_cuts.4", "branch.weak_below"]
    assert c.members_changed.empty
    by_type = c.transitions_by_type
    assert int(by_type.loc[("government", 3), 4]) == 1 and int(by_type.loc[("social_org", 3), 4]) == 1
    assert (by_type.groupby(level="baseline").sum().reindex([5, 4, 3, 0]).to_numpy()
            == c.transitions.to_numpy()).all()


def test_compare_member_grades_and_consequences(examples_pop, policy):
    # basic from 60 to 63: members at [60, 63) drop to warning (mentoring);
    # warning from 50 to 55: members at [50, 55) drop to unqualified (handling).
    m = bs.evaluate(examples_pop, policy).members
    to_warning = m[(m["annual"] >= 60) & (m["annual"] < 63)]["member_id"].tolist()
    to_unqualified = m[(m["annual"] >= 50) & (m["annual"] < 55)]["member_id"].tolist()
    assert to_warning and to_unqualified
    c = compare(examples_pop, policy, {"member.grade_cuts.basic": 63, "member.grade_cuts.warning": 55})
    got = c.members_changed.set_index("member_id")
    assert sorted(got.index) == sorted(to_warning + to_unqualified)
    assert set(got.loc[to_warning, "old_grade"]) == {"basic"} and set(got.loc[to_warning, "new_grade"]) == {"warning"}
    assert set(got.loc[to_unqualified, "new_grade"]) == {"unqualified"}
    new = c.new_consequences
    assert sorted(new[new["consequence"] == "mentoring"]["id"]) == sorted(to_warning)
    assert sorted(new[new["consequence"] == "handling"]["id"]) == sorted(to_unqualified)
    assert set(new["unit"]) == {"member"}
    assert sorted(c.lifted_consequences["id"]) == sorted(to_unqualified)   # no longer mentored
    assert c.movers.empty and c.transitions.to_numpy().trace() == 12


def test_compare_satisfaction_share_reform_matches_two_evaluations(city_branches, policy):
    reform = policy.update({"branch.satisfaction_share": 0.3})
    c = compare(city_branches, policy, reform)
    old = bs.evaluate(city_branches, policy).branches
    new = bs.evaluate(city_branches, reform).branches
    moved = old["stars"].to_numpy() != new["stars"].to_numpy()
    assert moved.sum() > 0
    assert c.movers["branch_id"].tolist() == old["branch_id"][moved].tolist()
    assert (c.movers["change"] == new["stars"][moved].to_numpy() - old["stars"][moved].to_numpy()).all()
    t = c.transitions
    assert int(t.to_numpy().sum()) == len(city_branches.branches)
    assert t.sum(axis=1).to_dict() == old["stars"].value_counts().reindex(t.index, fill_value=0).to_dict()
    assert t.sum(axis=0).to_dict() == new["stars"].value_counts().reindex(t.columns, fill_value=0).to_dict()
    assert int(t.to_numpy().sum() - np.trace(t.to_numpy())) == moved.sum()
    weak_now = new["weak"].to_numpy() & ~old["weak"].to_numpy()
    assert c.newly_weak["branch_id"].tolist() == old["branch_id"][weak_now].tolist()
    assert sorted(c.diff["path"]) == sorted(["branch.satisfaction_share"]
                                            + [f"branch.dimensions.{d}.share" for d in policy.dimensions])
    assert int(c.transitions_by_type.to_numpy().sum()) == len(city_branches.branches)
    assert c.members_changed is None
    # the sweep counts the same branches as changing star
    sw = bs.sweep(city_branches, policy, {"branch.satisfaction_share": [0.3]}, progress=False)
    assert int(sw["changed"].iloc[0]) == len(c.movers)


def test_compare_display(examples_pop, policy):
    c = compare(examples_pop, policy, {"branch.star_cuts.4": 78})
    assert repr(c).startswith("<Comparison: 12 branches, 1 parameter(s) changed; 2 change star (2 up, 0 down)")
    assert "branch.star_cuts.4" in c.summary() and "Transitions" in c.summary()
    assert "branch.star_cuts.4" in c._repr_html_() and "<table" in c._repr_html_()
    sc = c.star_counts()
    assert sc.loc["four_star", "change"] == 2 and sc.loc["three_star", "change"] == -2


def test_compare_rejects_wrong_arguments(examples_pop, policy):
    with pytest.raises(bs.DataError, match="Population"):
        compare(pd.DataFrame(), policy, policy)
    with pytest.raises(bs.PolicyError, match="baseline must be a branchsim.Policy"):
        compare(examples_pop, "baseline.yaml", policy)
    with pytest.raises(bs.PolicyError, match="reform must be"):
        compare(examples_pop, policy, 0.3)
    with pytest.raises(bs.PolicyError, match="star_cuts.4"):   # a change that changes nothing
        compare(examples_pop, policy, {"branch.star_cuts.4": 80})


# -- fragility ---------------------------------------------------------------------------
def test_fragility_margins_and_counts_by_hand(hand, policy):
    f = fragility(hand, policy, delta=1.0)
    assert isinstance(f, Fragility)
    b = f.branches.set_index("branch_id")
    assert b["margin"].to_dict() == pytest.approx(
        {"A": 2, "B": 0.4, "C": 0, "D": -1.6, "E": -1, "F": -1, "G": 3, "H": HAND["H"][2] - 90}, abs=1e-9)
    assert b["cut_kind"].to_dict() == {"A": "5-star cut", "B": "5-star cut", "C": "4-star cut",
                                       "D": "4-star cut", "E": "3-star cut", "F": "weak line",
                                       "G": "weak line", "H": "5-star cut"}
    assert b["nearest_cut"].tolist() == [90, 90, 80, 80, 70, 50, 50, 90]
    assert sorted(b.index[b["fragile"]]) == ["B", "C", "E", "F"]        # |margin| <= 1, ends included
    assert b["veto_capped"].to_dict() == {i: i == "H" for i in HAND}
    counts = f.counts.set_index("cut_kind")
    assert counts["within"].to_dict() == {"5-star cut": 1, "4-star cut": 1, "3-star cut": 1,
                                          "weak line": 1, "any cut": 4}
    assert counts.loc["any cut", "below"] == 2 and counts.loc["any cut", "at_or_above"] == 2
    assert f.n_fragile == 4 and "4 of 8" in repr(f)


def test_fragility_wider_band_counts_each_cut(hand, policy):
    counts = fragility(hand, policy, delta=2.0).counts.set_index("cut_kind")["within"].to_dict()
    # A (+2) joins the 5-star cut, D (-1.6) the 4-star cut
    assert counts == {"5-star cut": 2, "4-star cut": 2, "3-star cut": 1, "weak line": 1, "any cut": 6}


def test_fragility_with_cuts_set_by_update(hand, policy):
    # A five-star cut at 92.5 sits 0.5 above A (92) and 2.1 above B (90.4);
    # a three-star cut at 67 sits 2 below E (69).
    p = policy.update({"branch.star_cuts.5": 92.5, "branch.star_cuts.3": 67})
    f = fragility(hand, p, delta=1.0)
    b = f.branches.set_index("branch_id")
    assert b.loc["A", "margin"] == pytest.approx(-0.5) and b.loc["A", "fragile"]
    assert b.loc["B", "margin"] == pytest.approx(-2.1) and not b.loc["B", "fragile"]
    assert b.loc["E", "margin"] == pytest.approx(2.0) and b.loc["E", "nearest_cut"] == 67
    assert not b.loc["E", "fragile"]
    assert sorted(b.index[b["fragile"]]) == ["A", "C", "F"]
    assert f.counts.set_index("cut_kind")["within"].to_dict() == {
        "5-star cut": 1, "4-star cut": 1, "3-star cut": 0, "weak line": 1, "any cut": 3}


def test_fragility_rejects_bad_delta(hand, policy):
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(bs.BranchsimError, match="delta"):
            fragility(hand, policy, delta=bad)


def test_fragility_curve_by_hand(hand, policy):
    # At share s the full-marks branches score 100(1 - s) + 100 s × rate and the
    # others 75(1 - s) + 100 s × rate: only E (70.5) is within 1 at 0.3, only A (90) at 0.5.
    df = fragility_curve(hand, policy, shares=[0.3, 0.4, 0.5])
    assert df["fragile"].tolist() == [1, 4, 1]
    assert df.loc[0, "within_3_star"] == 1 and df.loc[2, "within_5_star"] == 1
    base = fragility(hand, policy).counts.set_index("cut_kind")["within"]
    row = df.iloc[1]
    assert [row["within_5_star"], row["within_4_star"], row["within_3_star"], row["within_weak_line"]] == \
        [base["5-star cut"], base["4-star cut"], base["3-star cut"], base["weak line"]]
    assert df["n"].tolist() == [8, 8, 8]


def test_fragility_curve_at_the_policy_share_equals_fragility(city_branches, policy):
    f = fragility(city_branches, policy, delta=1.5)
    df = fragility_curve(city_branches, policy, shares=[0.25, policy["branch.satisfaction_share"], 0.55], delta=1.5)
    assert df.loc[1, "fragile"] == f.n_fragile > 0
    by = fragility_curve(city_branches, policy, shares=[policy["branch.satisfaction_share"]], delta=1.5, by="type")
    expected = f.branches.groupby("type")["fragile"].sum()
    assert by.set_index("type")["fragile"].to_dict() == expected.to_dict()
    assert by["n"].sum() == len(city_branches.branches)


def test_fragility_curve_rejects_bad_input(hand, policy):
    with pytest.raises(bs.PolicyError, match="satisfaction_share"):
        fragility_curve(hand, policy, shares=[0.4, 1.5])
    with pytest.raises(bs.DataError, match="not a branch column"):
        fragility_curve(hand, policy, by="colour")
    with pytest.raises(bs.BranchsimError, match="empty"):
        fragility_curve(hand, policy, shares=[])


# -- fit_cut_points ----------------------------------------------------------------------
def test_fit_by_hand(hand, policy):
    # Branches that can reach a star (H is capped at 0), best first:
    # 92, 90.4, 80, 78.4, 69, 53, 49. One five-star: (90.4, 92]; three at four or
    # more: (78.4, 80]; four at three or more: (69, 78.4].
    fit = fit_cut_points(hand, policy, {5: 1, 4: 2, 3: 1})
    assert fit["level"].tolist() == [5, 4, 3]
    assert fit["low"].tolist() == pytest.approx([90.4, 78.4, 69.0])
    assert fit["high"].tolist() == pytest.approx([92.0, 80.0, 78.4])
    assert fit["cut"].tolist() == pytest.approx([91.2, 79.2, 73.7])
    assert fit["achieved"].tolist() == [1, 2, 1] and fit["exact"].all()
    high = fit_cut_points(hand, policy, {5: 1, 4: 2, 3: 1}, tie_break="high")
    assert high["cut"].tolist() == pytest.approx([92.0, 80.0, 78.4])


def test_fit_reproduces_published_counts(city_branches, policy):
    fit = fit_cut_points(city_branches, policy)
    assert fit["target"].tolist() == [41, 173, 422]
    assert fit["exact"].all(), fit
    fitted = policy_with_cuts(policy, fit)
    counts = bs.evaluate(city_branches, fitted).star_counts()["count"]
    assert counts[TOP].tolist() == [41, 173, 422]
    assert sorted(policy.diff(fitted)["path"]) == [f"branch.star_cuts.{k}" for k in (3, 4, 5)]
    assert "fit_cut_points" in fitted.provenance("branch.star_cuts.5")


def test_fit_other_targets_and_every_cut_in_the_range(city_branches, policy):
    targets = {5: 75, 4: 150, 3: 500}
    fit = fit_cut_points(city_branches, policy, targets)
    assert fit["exact"].all(), fit
    base = dict(zip(fit["level"], fit["cut"]))
    for _, row in fit.iterrows():
        eps = min(1e-6, (row["high"] - row["low"]) / 2)
        for cut in (row["low"] + eps, row["high"]):
            p = policy.update({f"branch.star_cuts.{k}": float(cut if k == row["level"] else c)
                               for k, c in base.items()})
            counts = bs.evaluate(city_branches, p).star_counts()["count"]
            assert counts[TOP].tolist() == [75, 150, 500], (row["level"], cut)
    # just outside the range the count changes
    row = fit.iloc[0]
    p = policy.update({"branch.star_cuts.5": float(row["low"])} |
                      {f"branch.star_cuts.{k}": float(c) for k, c in base.items() if k != 5})
    assert bs.evaluate(city_branches, p).star_counts().loc["five_star", "count"] > 75


def test_fit_default_targets_scale_half_up(policy):
    pop = bs.generate(seed=5, n_branches=750, members=False)
    fit = fit_cut_points(pop, policy)
    assert fit["target"].tolist() == [21, 87, 211]      # 20.5, 86.5, 211 of 750


def test_fit_tied_scores_report_the_nearest_count(policy):
    # Two branches tie at 92 on top: one five-star branch cannot be had; 0 and 2
    # are equally near and the fewer wins. Cumulative counts below stay exact.
    pop = hand_pop(policy, extra=[("A2", (8, 0, 2), {})])
    fit = fit_cut_points(pop, policy, {5: 1, 4: 2})
    five, four = fit.iloc[0], fit.iloc[1]
    assert not five["exact"] and five["achieved"] == 0 and "unreachable" in five["note"]
    assert five["low"] == pytest.approx(92.0) and five["high"] == 100.0
    assert four["achieved"] == 3 and not four["exact"]          # 3 at 4+ stars, none at 5
    assert bs.evaluate(pop, policy_with_cuts(policy, fit)).star_counts().loc["four_star", "count"] == 3


def test_fit_target_too_large_is_an_error(hand, city_branches, policy):
    with pytest.raises(bs.BranchsimError, match="1501 branches wanted at 5 stars or more, but only"):
        fit_cut_points(city_branches, policy, {5: 1501})
    with pytest.raises(bs.BranchsimError, match=r"only 7 of 8 can reach it \(1 are capped"):
        fit_cut_points(hand, policy, {5: 8})


def test_fit_out_of_order_ranges_are_an_error(policy):
    # V neglects committee meetings (capped at 3 stars) yet scores best: one
    # three-star-or-better branch needs a 3-star cut above A's 92, one five-star
    # branch a 5-star cut at most 92.
    pop = hand_pop(policy, extra=[("V", (10, 0, 0), {"committee_meetings": 5})])
    assert bs.evaluate(pop, policy).branches.set_index("branch_id").loc["V", "score"] > 92
    with pytest.raises(bs.BranchsimError, match="no increasing set of cut points"):
        fit_cut_points(pop, policy, {5: 1, 4: 0, 3: 0})


def test_fit_rejects_malformed_targets(hand, policy):
    with pytest.raises(bs.BranchsimError, match="without a gap"):
        fit_cut_points(hand, policy, {5: 1, 3: 2})
    with pytest.raises(bs.PolicyError, match="2 stars, which has no cut point"):
        fit_cut_points(hand, policy, {5: 1, 4: 1, 3: 1, 2: 1})
    with pytest.raises(bs.BranchsimError, match="whole number"):
        fit_cut_points(hand, policy, {5: -1})
    with pytest.raises(bs.BranchsimError, match="tie_break"):
        fit_cut_points(hand, policy, {5: 1}, tie_break="low")


def test_policy_with_cuts_is_the_policy_when_nothing_changes(hand, policy):
    fit = pd.DataFrame({"level": [5, 4, 3], "target": [1, 1, 1], "cut": [90.0, 80.0, 70.0]})
    assert policy_with_cuts(policy, fit) is policy
