"""compare, fragility, fragility_curve and fit_cut_points: hand-built tables and every shipped scheme.

Hand-built village branches (baseline policy, survey of 10 answers worth
1 / 0.6 / 0; each dimension 15 points, the survey 40):

    full marks elsewhere:            score = 60 + 4 × satisfied + 2.4 × basic
    institution dimension at zero:   score = 45 + 4 × satisfied + 2.4 × basic

    id  facts            survey (s, b, d)  score   level       nearest cut (margin)
    A   full             (8, 0, 2)         92      five_star   90 (+2)
    B   full             (7, 1, 2)         90.4    five_star   90 (+0.4)
    C   full             (5, 0, 5)         80      four_star   80 (0)
    D   full             (4, 1, 5)         78.4    three_star  80 (-1.6)
    E   no institution   (6, 0, 4)         69      no_star     70 (-1)
    F   no institution   (1, 0, 9)         49      no_star     weak line 50 (-1)
    G   no institution   (2, 0, 8)         53      no_star     weak line 50 (+3)
    H   secretary vacant (10, 0, 0)        85 + 15 × 21/25 = 97.6, capped at no_star by the veto

Under quotas of 25% per level (2 of 8 branches each; H keeps its place):
realised cuts five 92 (best below 90.4), four 80 (78.4), three 69 (53).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.evaluate import branch_inputs, branch_outcome
from branchsim.scheme import RULE_CODES
from branchsim.sensitivity.compare import Comparison, compare
from branchsim.sensitivity.thresholds import (Fragility, fit_cut_points, fragility, fragility_curve,
                                              policy_with_cuts)
from conftest import EXAMPLES, branch_row
import shipped

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


def full_row(policy, branch_id: str, type: str, answers: dict) -> dict:
    """A branch earning every indicator's full points, no bonus and no penalty, under any scheme."""
    bs_ = policy.scheme.branch
    sh, p = bs_.sheet, bs_.types.index(type)
    row = {"branch_id": branch_id, "type": type, "n_members": 20}
    for j, fact in enumerate(sh.facts):
        kind = sh.kind[p, j]
        row[fact] = (sh.at_least[p, j] if kind == RULE_CODES["binary"] else sh.required[p, j]
                     if kind == RULE_CODES["deduction"] else 1.0 if kind == RULE_CODES["proportion"]
                     else math.ceil(sh.points[p, j] / sh.per_event[p, j]) if kind == RULE_CODES["per_event"]
                     else 0.0)
    for fact in bs_.fact_entries:                     # declared facts: nothing fires
        row[fact] = 0.0
    row.update({f"survey_{a}": answers.get(a, 0) for a in bs_.answers})
    return row


@pytest.fixture(scope="module")
def hand(policy):
    return hand_pop(policy)


@pytest.fixture(scope="module")
def hand_quota(policy):
    return policy.update({"branch.rating.design": "quota",
                          "branch.rating.quotas": {lv: {"value": 0.25, "assumption": "test"} for lv in TOP}})


@pytest.fixture(scope="module")
def examples_pop(policy):
    return bs.load_population(EXAMPLES, policy=policy)


@pytest.fixture(scope="module")
def city_branches():
    return bs.generate(seed=11, n_branches=1500, members=False)


@pytest.fixture(scope="module", params=shipped.SCHEMES)
def scheme(request):
    """(policy, a generated population of 240 branches with members) for each shipped scheme."""
    p = shipped.load(request.param)
    return p, bs.generate(p, seed=3, n_branches=240, members=p.has_members)


def test_hand_table_scores_are_what_the_docstring_says(hand, policy):
    r = bs.evaluate(hand, policy).branches.set_index("branch_id")
    assert r["score"].to_dict() == pytest.approx({i: v[2] for i, v in HAND.items()}, abs=1e-9)
    assert r["rating"].to_dict() == {"A": "five_star", "B": "five_star", "C": "four_star", "D": "three_star",
                                     "E": "no_star", "F": "no_star", "G": "no_star", "H": "no_star"}


# -- compare ---------------------------------------------------------------------------
def test_compare_with_itself_is_the_identity(scheme):
    p, pop = scheme
    c = compare(pop, p, p)
    assert isinstance(c, Comparison) and c.reform is c.baseline          # one evaluation serves both
    rating = bs.evaluate(pop, p).branches["rating"]
    t = c.transitions
    assert list(t.index) == list(t.columns) == list(p.levels)
    assert (t.to_numpy() == np.diag(np.diag(t.to_numpy()))).all()
    assert dict(zip(t.index, np.diag(t.to_numpy()))) == rating.value_counts().reindex(p.levels, fill_value=0) \
        .to_dict()
    assert c.movers.empty and c.newly_designated.empty and c.no_longer_designated.empty
    assert c.new_consequences.empty and c.lifted_consequences.empty
    assert c.diff.empty and c.is_identity
    assert (c.members_changed is not None) == p.has_members
    assert f"{p.name} → {p.name}" in c.summary() and "identity" in c.summary()
    assert "0 change level" in repr(c)


def test_a_reform_transitions_add_up_to_the_population(scheme):
    p, pop = scheme
    reform = p.update({"branch.satisfaction_share": 0.3})
    c = compare(pop, p, {"branch.satisfaction_share": 0.3})
    old, new = bs.evaluate(pop, p).branches, bs.evaluate(pop, reform).branches
    t = c.transitions
    assert int(t.to_numpy().sum()) == len(pop.branches)
    assert t.sum(axis=1).to_dict() == old["rating"].value_counts().reindex(p.levels, fill_value=0).to_dict()
    assert t.sum(axis=0).to_dict() == new["rating"].value_counts().reindex(p.levels, fill_value=0).to_dict()
    moved = old["rating"].to_numpy() != new["rating"].to_numpy()
    assert moved.any()
    assert int(t.to_numpy().sum() - np.trace(t.to_numpy())) == moved.sum() == len(c.movers)
    assert c.movers["branch_id"].tolist() == old["branch_id"][moved].tolist()
    code = {lv: len(p.levels) - 1 - i for i, lv in enumerate(p.levels)}
    assert (c.movers["change"] == c.movers["new_rating"].map(code) - c.movers["old_rating"].map(code)).all()
    assert int(c.transitions_by_type.to_numpy().sum()) == len(pop.branches)
    assert (c.transitions_by_type.groupby(level="baseline", sort=False).sum().to_numpy() == t.to_numpy()).all()
    assert c.by_type()["movers"].sum() == len(c.movers)
    for d in c.designations:                        # every designation, newly and no longer
        gained = new[d].to_numpy() & ~old[d].to_numpy()
        assert c.newly_designated.loc[c.newly_designated["designation"] == d, "branch_id"].tolist() == \
            old["branch_id"][gained].tolist()
        lost = old[d].to_numpy() & ~new[d].to_numpy()
        assert int((c.no_longer_designated["designation"] == d).sum()) == lost.sum()
    for cons in p.scheme.consequences_of("branch"):  # any consequence id
        hit = new[cons.id].to_numpy() & ~old[cons.id].to_numpy()
        got = c.new_consequences[c.new_consequences["consequence"] == cons.id]["id"].tolist()
        assert got == old["branch_id"][hit].tolist()
    assert f"{p.name} → {reform.name}" in c.summary() and not c.is_identity
    assert "branch.satisfaction_share" in set(c.diff["path"])


def test_compare_a_named_reform_file(examples_pop, policy, tmp_path):
    path = tmp_path / "survey_30.yaml"
    path.write_text("schema: branchsim-reform/1\nname: survey_30\nchanges:\n  branch.satisfaction_share: 0.3\n",
                    encoding="utf-8")
    c = compare(examples_pop, policy, path)
    assert c.reform.policy.name == "baseline+survey_30"
    assert "baseline → baseline+survey_30" in c.summary()
    km = compare(examples_pop, policy, shipped.REFORM)
    assert km.reform.policy.scheme.branch.rating.design == "kmeans"
    assert int(km.transitions.to_numpy().sum()) == 12


def test_compare_moved_cut_and_weak_line_worked_by_hand(examples_pop, policy):
    # B006 (79.02) and B011 (78.65) are three-star; a four-star cut at 78 lifts both.
    # B012 (52.44) is the only branch between 50 and 55: newly weak, so a talk
    # (no reorganisation: it was not weak the year before).
    base = bs.evaluate(examples_pop, policy).branches
    lifted = base[(base["rating"] == "three_star") & (base["score"] >= 78)]["branch_id"].tolist()
    assert lifted == ["B006", "B011"]
    c = compare(examples_pop, policy, policy.update({"branch.rating.cuts.four_star": 78,
                                                     "branch.designations.weak.criteria.low_score.below": 55}))
    assert c.movers[["branch_id", "old_rating", "new_rating", "change"]].values.tolist() == \
        [["B006", "three_star", "four_star", 1], ["B011", "three_star", "four_star", 1]]
    assert c.movers["old_score"].tolist() == c.movers["new_score"].tolist()   # only the cut moved
    expected = np.array([[4, 0, 0, 0], [0, 1, 0, 0], [0, 2, 1, 0], [0, 0, 0, 4]])
    assert (c.transitions.to_numpy() == expected).all() and list(c.transitions.index) == list(policy.levels)
    nd = c.newly_designated
    assert nd[["designation", "branch_id"]].values.tolist() == [["weak", "B012"]] and c.no_longer_designated.empty
    assert c.new_consequences.values.tolist() == [["branch", "B012", "B012", "talk"]]
    assert sorted(c.diff["path"]) == ["branch.designations.weak.criteria.low_score.below",
                                      "branch.rating.cuts.four_star"]
    assert c.members_changed.empty
    by_type = c.transitions_by_type
    assert int(by_type.loc[("government", "three_star"), "four_star"]) == 1
    assert int(by_type.loc[("social_org", "three_star"), "four_star"]) == 1
    bt = c.by_type()
    assert bt["up"].sum() == 2 and bt["newly_weak"].sum() == 1 and bt["down"].sum() == 0


def test_compare_member_grades_and_consequences(examples_pop, policy):
    # basic from 60 to 63: members at [60, 63) drop to warning (mentoring);
    # warning from 50 to 55: members at [50, 55) drop to unqualified (handling).
    m = bs.evaluate(examples_pop, policy).members
    to_warning = m[(m["annual"] >= 60) & (m["annual"] < 63)]["member_id"].tolist()
    to_unqualified = m[(m["annual"] >= 50) & (m["annual"] < 55)]["member_id"].tolist()
    assert to_warning and to_unqualified
    c = compare(examples_pop, policy, {"member.rating.cuts.basic": 63, "member.rating.cuts.warning": 55})
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


def test_compare_member_points_member_cut(scheme):
    p, pop = scheme
    if not p.has_members:
        pytest.skip("a branch-only scheme")
    grade = p.grades[1]
    c = compare(pop, p, {f"member.rating.cuts.{grade}": float(p[f"member.rating.cuts.{grade}"]) + 3})
    old = bs.evaluate(pop, p).members
    cut = float(p[f"member.rating.cuts.{grade}"])
    band = old[(old["grade"] == grade) & (old["annual"] < cut + 3)]
    assert len(band) and sorted(c.members_changed["member_id"]) == sorted(band["member_id"])
    assert c.members_changed["old_grade"].eq(grade).all() and c.movers.empty


def test_compare_display(examples_pop, policy):
    c = compare(examples_pop, policy, {"branch.rating.cuts.four_star": 78})
    assert repr(c).startswith("<Comparison baseline → baseline[branch.rating.cuts.four_star=78]: 12 branches, "
                              "1 parameter(s) changed; 2 change level (2 up, 0 down)")
    assert "branch.rating.cuts.four_star" in c.summary() and "Transitions" in c.summary()
    assert "branch.rating.cuts.four_star" in c._repr_html_() and "<table" in c._repr_html_()
    lc = c.level_counts()
    assert lc.loc["four_star", "change"] == 2 and lc.loc["three_star", "change"] == -2


def test_compare_rejects_wrong_arguments(examples_pop, policy):
    with pytest.raises(bs.DataError, match="Population"):
        compare(pd.DataFrame(), policy, policy)
    with pytest.raises(bs.PolicyError, match="baseline must be a branchsim.Policy"):
        compare(examples_pop, "baseline.yaml", policy)
    with pytest.raises(bs.PolicyError, match="reform must be"):
        compare(examples_pop, policy, 0.3)
    with pytest.raises(bs.PolicyError, match="cuts.four_star"):   # a change that changes nothing
        compare(examples_pop, policy, {"branch.rating.cuts.four_star": 80})


# -- fragility ---------------------------------------------------------------------------
def test_fragility_margins_and_counts_by_hand(hand, policy):
    f = fragility(hand, policy, delta=1.0)
    assert isinstance(f, Fragility) and f.design == "cuts"
    b = f.branches.set_index("branch_id")
    assert b["margin"].to_dict() == pytest.approx(
        {"A": 2, "B": 0.4, "C": 0, "D": -1.6, "E": -1, "F": -1, "G": 3, "H": HAND["H"][2] - 90}, abs=1e-9)
    assert b["cut_kind"].to_dict() == {"A": "five_star", "B": "five_star", "C": "four_star", "D": "four_star",
                                       "E": "three_star", "F": "weak.low_score", "G": "weak.low_score",
                                       "H": "five_star"}
    assert b["nearest_cut"].tolist() == [90, 90, 80, 80, 70, 50, 50, 90]
    assert sorted(b.index[b["fragile"]]) == ["B", "C", "E", "F"]        # |margin| <= 1, ends included
    assert b["overridden"].to_dict() == {i: i == "H" for i in HAND}
    counts = f.counts.set_index("cut_kind")
    assert counts["within"].to_dict() == {"five_star": 1, "four_star": 1, "three_star": 1, "weak.low_score": 1,
                                          "any cut": 4}
    assert counts.loc["any cut", "below"] == 2 and counts.loc["any cut", "at_or_above"] == 2
    assert f.n_fragile == 4 and "4 of 8" in repr(f)


def test_fragility_wider_band_counts_each_cut(hand, policy):
    counts = fragility(hand, policy, delta=2.0).counts.set_index("cut_kind")["within"].to_dict()
    # A (+2) joins the five-star cut, D (-1.6) the four-star cut
    assert counts == {"five_star": 2, "four_star": 2, "three_star": 1, "weak.low_score": 1, "any cut": 6}


def test_fragility_with_cuts_set_by_update(hand, policy):
    # A five-star cut at 92.5 sits 0.5 above A (92) and 2.1 above B (90.4);
    # a three-star cut at 67 sits 2 below E (69).
    p = policy.update({"branch.rating.cuts.five_star": 92.5, "branch.rating.cuts.three_star": 67})
    b = fragility(hand, p, delta=1.0).branches.set_index("branch_id")
    assert b.loc["A", "margin"] == pytest.approx(-0.5) and b.loc["A", "fragile"]
    assert b.loc["B", "margin"] == pytest.approx(-2.1) and not b.loc["B", "fragile"]
    assert b.loc["E", "margin"] == pytest.approx(2.0) and b.loc["E", "nearest_cut"] == 67
    assert sorted(b.index[b["fragile"]]) == ["A", "C", "F"]


def test_quota_fragility_by_hand(hand, hand_quota):
    """Realised cuts 92 / 80 / 69; a unit's margin is to the neighbour it would swap level with."""
    f = fragility(hand, hand_quota, delta=2.0)
    assert f.design == "quota" and "swap" in f.definition
    cuts = f.cuts.set_index("level")
    assert cuts.loc[TOP, "cut"].tolist() == pytest.approx([92.0, 80.0, 69.0])
    assert cuts.loc[TOP, "below"].tolist() == pytest.approx([90.4, 78.4, 53.0])
    b = f.branches.set_index("branch_id")
    assert b["rating"].to_dict() == {"H": "no_star", "A": "five_star", "B": "four_star", "C": "four_star",
                                     "D": "three_star", "E": "three_star", "G": "no_star", "F": "no_star"}
    assert b["margin"].to_dict() == pytest.approx(
        {"A": 1.6, "B": -1.6, "C": 1.6, "D": -1.6, "E": -11, "F": -1, "G": 3, "H": HAND["H"][2] - 90.4}, abs=1e-9)
    assert b["cut_kind"].to_dict() == {"A": "five_star", "B": "five_star", "C": "four_star", "D": "four_star",
                                       "E": "four_star", "F": "weak.low_score", "G": "weak.low_score",
                                       "H": "five_star"}
    # E sits 1 point below the fixed cut of 70, but 16 points ahead of G (the best unit below it) under
    # the quota and 11 below C (the last four-star): not fragile.
    assert sorted(b.index[b["fragile"]]) == ["A", "B", "C", "D", "F"]


def test_star_quota_fragility_on_a_hand_made_population():
    """Ten branches with full sheets, g = 0 … 9 of 10 answers 'good' (the rest the worst): 80 + 2g.

    Quotas 10 / 40 / 30 %: one five-star (g 9), four at four stars or better (g 5-8), …
    """
    p = shipped.load("star_quota")
    best, worst = p.scheme.branch.answers[0], p.scheme.branch.answers[-1]
    rows = [full_row(p, f"Q{g}", "community", {best: g, worst: 10 - g}) for g in range(10)]
    pop = bs.load_population(branches=pd.DataFrame(rows), policy=p)
    scores = bs.evaluate(pop, p).branches["score"].to_numpy()
    assert scores == pytest.approx(80 + 2 * np.arange(10))
    f = fragility(pop, p, delta=2.0)
    b = f.branches
    assert b["rating"].tolist() == ["unrated"] * 2 + ["three_star"] * 3 + ["four_star"] * 4 + ["five_star"]
    assert b["margin"].tolist() == pytest.approx([-4, -2, 2, -4, -2, 2, 4, -4, -2, 2])   # g 7: 4 below g 9
    assert b.loc[b["fragile"], "branch_id"].tolist() == ["Q1", "Q2", "Q4", "Q5", "Q8", "Q9"]
    assert not fragility(pop, p, delta=1.9).branches["fragile"].any()


def _design_and_lines(pop, policy, score=None):
    """Design levels and the held score lines of every branch, with the scores given (re-rated)."""
    inp = branch_inputs(pop.branches, policy.scheme)
    base = branch_outcome(inp, policy.scheme)
    if score is not None:
        base = branch_outcome(inp, policy.scheme, scores={**{k: base[k] for k in ("points", "components",
                                                                                   "subscores")},
                                                           "score": np.round(score, 9)})
    lines = [c.id for d in policy.scheme.branch.designations for c in d.criteria if c.kind == "score_below"]
    held = [base["criteria"][c] for c in lines]
    return base["design"], np.column_stack(held) if held else np.zeros((len(base["design"]), 0), dtype=bool)


@pytest.mark.parametrize("name", ["baseline", "star_quota", "member_points"])
def test_a_branch_far_from_every_boundary_is_not_fragile(name):
    """Moving a non-fragile branch by ±δ (others fixed) keeps its level; crossing its margin changes it."""
    p = shipped.load(name)
    pop = bs.generate(p, seed=4, n_branches=160, members=False)
    delta = 1.0
    f = fragility(pop, p, delta=delta).branches
    score = f["score"].to_numpy()
    design, lines = _design_and_lines(pop, p, score)
    rng = np.random.default_rng(0)
    far = np.flatnonzero(~f["fragile"].to_numpy())
    near = np.flatnonzero(f["fragile"].to_numpy())
    assert len(far) > 20 and len(near) > 3
    for i in rng.choice(far, 12, replace=False):
        for step in (-delta, delta):
            moved = score.copy()
            moved[i] += step
            d2, l2 = _design_and_lines(pop, p, moved)
            assert d2[i] == design[i] and (l2[i] == lines[i]).all(), (i, step, f.iloc[i].to_dict())
    for i in near[:8]:
        m = f["margin"].iloc[i]
        moved = score.copy()
        moved[i] += -m - 1e-6 if m >= 0 else -m + 1e-6
        d2, l2 = _design_and_lines(pop, p, moved)
        assert d2[i] != design[i] or (l2[i] != lines[i]).any(), (i, f.iloc[i].to_dict())


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_fragility_uses_the_realised_cuts(name):
    p = shipped.load(name)
    pop = bs.generate(p, seed=5, n_branches=200, members=False)
    r = bs.evaluate(pop, p)
    f = fragility(pop, p, delta=1.5)
    pd.testing.assert_frame_equal(f.cuts[["group", "level", "cut"]], r.cut_points[["group", "level", "cut"]])
    b = f.branches
    assert (b["fragile"] == (b["margin"].abs() <= 1.5)).all() and f.n_fragile == b["fragile"].sum()
    assert (b["rating"] == r.branches["rating"]).all() and (b["score"] == r.branches["score"]).all()
    assert set(b["cut_kind"]) <= set(p.levels[:-1]) | {f"{d.id}.{c.id}" for d in p.scheme.branch.designations
                                                        for c in d.criteria}
    if p.scheme.branch.rating.relative:                  # below a realised cut: the distance to it
        groups = b["type"] if p.scheme.branch.rating.peer_groups == "type" else pd.Series("all", index=b.index)
        cut = r.cut_points.set_index(["group", "level"])["cut"]
        below = b["margin"] < 0
        levels = b["cut_kind"].isin(p.levels[:-1])
        for i in np.flatnonzero(below & levels)[:20]:
            row = b.iloc[i]
            assert row["margin"] == pytest.approx(row["score"] - cut[(groups.iloc[i], row["cut_kind"])])


def test_fragility_rejects_bad_delta(hand, policy):
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(bs.BranchsimError, match="delta"):
            fragility(hand, policy, delta=bad)


def test_fragility_curve_by_hand(hand, policy):
    # At share s the full-marks branches score 100(1 - s) + 100 s × rate and the
    # others 75(1 - s) + 100 s × rate: only E (70.5) is within 1 at 0.3, only A (90) at 0.5.
    df = fragility_curve(hand, policy, shares=[0.3, 0.4, 0.5])
    assert df["fragile"].tolist() == [1, 4, 1]
    assert df.loc[0, "within_three_star"] == 1 and df.loc[2, "within_five_star"] == 1
    base = fragility(hand, policy).counts.set_index("cut_kind")["within"]
    row = df.iloc[1]
    assert [row[f"within_{k}"] for k in base.index[:-1]] == base.iloc[:-1].tolist()
    assert df["n"].tolist() == [8, 8, 8]


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_fragility_curve_at_the_policy_share_equals_fragility(name):
    p = shipped.load(name)
    pop = bs.generate(p, seed=6, n_branches=200, members=False)
    f = fragility(pop, p, delta=1.5)
    share = p["branch.satisfaction_share"]
    df = fragility_curve(pop, p, shares=[0.1, share, 0.5], delta=1.5)
    assert df.loc[1, "fragile"] == f.n_fragile > 0
    by = fragility_curve(pop, p, shares=[share], delta=1.5, by="type")
    assert by.set_index("type")["fragile"].to_dict() == f.branches.groupby("type")["fragile"].sum().to_dict()
    assert by["n"].sum() == len(pop.branches)


def test_fragility_curve_rejects_bad_input(hand, policy):
    with pytest.raises(bs.PolicyError, match="satisfaction_share"):
        fragility_curve(hand, policy, shares=[0.4, 1.5])
    with pytest.raises(bs.DataError, match="not a branch column"):
        fragility_curve(hand, policy, by="colour")
    with pytest.raises(bs.BranchsimError, match="empty"):
        fragility_curve(hand, policy, shares=[])


# -- fit_cut_points ----------------------------------------------------------------------
def test_fit_by_hand(hand, policy):
    # Branches that can reach a star (H is capped), best first:
    # 92, 90.4, 80, 78.4, 69, 53, 49. One five-star: (90.4, 92]; three at four or
    # more: (78.4, 80]; four at three or more: (69, 78.4].
    fit = fit_cut_points(hand, policy, {"five_star": 1, "four_star": 2, "three_star": 1})
    assert fit["level"].tolist() == TOP
    assert fit["low"].tolist() == pytest.approx([90.4, 78.4, 69.0])
    assert fit["high"].tolist() == pytest.approx([92.0, 80.0, 78.4])
    assert fit["cut"].tolist() == pytest.approx([91.2, 79.2, 73.7])
    assert fit["achieved"].tolist() == [1, 2, 1] and fit["exact"].all()
    high = fit_cut_points(hand, policy, {"five_star": 1, "four_star": 2, "three_star": 1}, tie_break="high")
    assert high["cut"].tolist() == pytest.approx([92.0, 80.0, 78.4])


def test_fit_reproduces_published_counts(city_branches, policy):
    fit = fit_cut_points(city_branches, policy)
    published = bs.evaluate(city_branches, policy).level_counts()["published"]
    assert fit["target"].tolist() == published[TOP].tolist() == [41, 173, 422]
    assert fit["exact"].all(), fit
    fitted = policy_with_cuts(policy, fit)
    counts = bs.evaluate(city_branches, fitted).level_counts()["count"]
    assert counts[TOP].tolist() == [41, 173, 422]
    assert sorted(policy.diff(fitted)["path"]) == sorted(f"branch.rating.cuts.{k}" for k in TOP)
    assert "fit_cut_points" in fitted.provenance("branch.rating.cuts.five_star")


def test_fit_other_targets_and_every_cut_in_the_range(city_branches, policy):
    targets = {"five_star": 75, "four_star": 150, "three_star": 500}
    fit = fit_cut_points(city_branches, policy, targets)
    assert fit["exact"].all(), fit
    base = dict(zip(fit["level"], fit["cut"]))
    for _, row in fit.iterrows():
        eps = min(1e-6, (row["high"] - row["low"]) / 2)
        for cut in (row["low"] + eps, row["high"]):
            p = policy.update({f"branch.rating.cuts.{k}": float(cut if k == row["level"] else c)
                               for k, c in base.items()})
            counts = bs.evaluate(city_branches, p).level_counts()["count"]
            assert counts[TOP].tolist() == [75, 150, 500], (row["level"], cut)
    row = fit.iloc[0]                                   # just outside the range the count changes
    p = policy.update({"branch.rating.cuts.five_star": float(row["low"])} |
                      {f"branch.rating.cuts.{k}": float(c) for k, c in base.items() if k != "five_star"})
    assert bs.evaluate(city_branches, p).level_counts().loc["five_star", "count"] > 75


def test_fit_default_targets_scale_half_up(policy):
    pop = bs.generate(seed=5, n_branches=750, members=False)
    assert fit_cut_points(pop, policy)["target"].tolist() == [21, 87, 211]      # 20.5, 86.5, 211 of 750


def test_fit_any_number_of_levels_and_type_cuts():
    """member_points: three levels, village's own cut for the top level is kept."""
    p = shipped.load("member_points")
    pop = bs.generate(p, seed=7, n_branches=600, members=False)
    with pytest.raises(bs.BranchsimError, match="publishes no counts"):
        fit_cut_points(pop, p)
    top = p.levels[0]
    want = int(bs.evaluate(pop, p.update({f"branch.rating.cuts.{top}": 96.5})).level_counts().loc[top, "count"])
    assert want != bs.evaluate(pop, p).level_counts().loc[top, "count"]
    fit = fit_cut_points(pop, p, {top: want})       # a count some cut gives: met exactly
    assert fit["level"].tolist() == [top] and fit["achieved"].tolist() == [want] and fit["exact"].all()
    fitted = policy_with_cuts(p, fit)
    assert bs.evaluate(pop, fitted).level_counts().loc[top, "count"] == want
    assert fitted.scheme.branch.rating.cuts[p.scheme.branch.types.index("village"), -1] == \
        p.scheme.branch.rating.cuts[p.scheme.branch.types.index("village"), -1]


@pytest.mark.parametrize("name, match", [("star_quota", "quotas are the targets"),
                                         ("kmeans_by_type", "'kmeans' design, which sets its own cut points")])
def test_fit_refuses_a_relative_design(name, match):
    p = shipped.load(name)
    pop = bs.generate(p, seed=1, n_branches=100, members=False)
    with pytest.raises(bs.BranchsimError, match=match):
        fit_cut_points(pop, p)


def test_fit_tied_scores_report_the_nearest_count(policy):
    # Two branches tie at 92 on top: one five-star branch cannot be had; 0 and 2
    # are equally near and the fewer wins. Cumulative counts below stay exact.
    pop = hand_pop(policy, extra=[("A2", (8, 0, 2), {})])
    fit = fit_cut_points(pop, policy, {"five_star": 1, "four_star": 2})
    five, four = fit.iloc[0], fit.iloc[1]
    assert not five["exact"] and five["achieved"] == 0 and "unreachable" in five["note"]
    assert five["low"] == pytest.approx(92.0) and five["high"] == 100.0
    assert four["achieved"] == 3 and not four["exact"]          # 3 at four stars or better, none at five
    assert bs.evaluate(pop, policy_with_cuts(policy, fit)).level_counts().loc["four_star", "count"] == 3


def test_fit_target_too_large_is_an_error(hand, city_branches, policy):
    with pytest.raises(bs.BranchsimError, match="1501 branches wanted at five_star or better, but the cut decides "
                                                "for only"):
        fit_cut_points(city_branches, policy, {"five_star": 1501})
    with pytest.raises(bs.BranchsimError, match=r"only 7 of 8 \(1 are kept below five_star by a veto\)"):
        fit_cut_points(hand, policy, {"five_star": 8})


def test_fit_out_of_order_ranges_are_an_error(policy):
    # V neglects committee meetings (capped at three stars) yet scores best: one
    # three-star-or-better branch needs a three-star cut above A's 92, one five-star
    # branch a five-star cut at most 92.
    pop = hand_pop(policy, extra=[("V", (10, 0, 0), {"committee_meetings": 5})])
    assert bs.evaluate(pop, policy).branches.set_index("branch_id").loc["V", "score"] > 92
    with pytest.raises(bs.BranchsimError, match="no increasing set of cut points"):
        fit_cut_points(pop, policy, {"five_star": 1, "four_star": 0, "three_star": 0})


def test_fit_rejects_malformed_targets(hand, policy):
    with pytest.raises(bs.BranchsimError, match="without a gap"):
        fit_cut_points(hand, policy, {"five_star": 1, "three_star": 2})
    with pytest.raises(bs.PolicyError, match="'two_star', which is not a level"):
        fit_cut_points(hand, policy, {"five_star": 1, "two_star": 1})
    with pytest.raises(bs.PolicyError, match="the floor"):
        fit_cut_points(hand, policy, {"five_star": 1, "four_star": 1, "three_star": 1, "no_star": 1})
    with pytest.raises(bs.BranchsimError, match="whole number"):
        fit_cut_points(hand, policy, {"five_star": -1})
    with pytest.raises(bs.BranchsimError, match="tie_break"):
        fit_cut_points(hand, policy, {"five_star": 1}, tie_break="low")


def test_policy_with_cuts_is_the_policy_when_nothing_changes(policy):
    fit = pd.DataFrame({"level": TOP, "target": [1, 1, 1], "cut": [90.0, 80.0, 70.0]})
    assert policy_with_cuts(policy, fit) is policy
    with pytest.raises(bs.PolicyError, match="no cut point"):
        policy_with_cuts(policy, pd.DataFrame({"level": ["no_star"], "cut": [10.0]}))


def test_no_scheme_is_named_in_the_code():
    """The ids of the shipped schemes' levels, grades, indicators, designations, types and consequences
    appear in no string of these modules (docstrings aside)."""
    shipped.assert_no_scheme_names(("montecarlo", "mc_result", "compare", "fragility", "cutpoints", "thresholds"),
                                   "sensitivity")
