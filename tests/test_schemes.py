"""The general core on a tiny hand-made scheme (tests/tiny.py): every number worked out by hand.

Score forms (shares, points with base / cap / floor / bonus caps, dimension caps), rule forms in a
policy (rank within a group, zeroing), vetoes (cap, force, the most severe, switched off), direct
grading, every designation criterion (with years), consequences with years, rating designs
(quota with ties and peer groups, kmeans within peer groups, hierarchical, the guardrail), members
(accrual mean and sum, classes and exemption, bonus cap, member vetoes) and Policy.update
(structural changes, new blocks, removals, reform files, names).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from tiny import FULL, P, branches, evaluate
from tiny import policy as tiny_policy

X = ("X", "t1", {"held": 1, "events": 2, "lapses": 2, "extra": 5}, (3, 1, 0))
Y = ("Y", "t2", {"held": 0, "events": 5, "lapses": 9}, (0, 0, 4))


@pytest.fixture(scope="module")
def tiny():
    return tiny_policy()


def row(bid, t="t1", survey=(1, 0, 0), **facts):
    return (bid, t, facts, survey)


# -- score forms ------------------------------------------------------------------------------------
class TestShares:
    def test_by_hand(self, tiny):
        # X: a = (4 + min(6, 2 × 2)) / 10 = 0.8 → 40; b = (5 − 2 + min(2, 5)) / 5 = 1 → 30;
        #    survey (3 + 0.5) / 4 = 0.875 → 17.5; 87.5 → top.
        # Y: a = (0 + 6) / 10 → 30; b = max(0, 5 − 9) / 5 = 0; survey 0 → 30 → low, weak (< 40).
        b = evaluate(tiny, X, Y)
        assert b["score"].tolist() == [87.5, 30.0]
        assert b[["sub_a", "sub_b", "sub_satisfaction"]].loc["X"].tolist() == [40, 30, 17.5]
        assert b["rating"].tolist() == ["top", "low"]
        assert b["weak"].tolist() == [False, True] and b["talk"].tolist() == [False, True]

    def test_dimension_bonus_cap(self, tiny):
        # lapses 4 → 1 point, extra 5 → bonus 2; capped at 1: b = (1 + 1) / 5 = 0.4 → 12 (uncapped: 18).
        case = row("B", lapses=4, extra=5)
        assert evaluate(tiny, case)["sub_b"].iloc[0] == pytest.approx(18)
        capped = tiny.update({"branch.dimensions.b.bonus_cap": P(1)})
        assert evaluate(capped, case)["sub_b"].iloc[0] == pytest.approx(12)


@pytest.fixture(scope="module")
def points(tiny):
    return tiny.update({
        "branch.score.form": "points", "branch.score.base": P(50), "branch.score.cap": P(100),
        "branch.score.floor": P(0), "branch.score.bonus_cap": P(1), "branch.dimensions.a.cap": P(7),
        "branch.indicators.fines": {"label": "fines", "dimension": "b", "fact": "fines", "rule": "penalty",
                                    "points": P(10), "per_occurrence": P(4)}})


class TestPointsForm:
    def rows(self, *cases):
        return [(b, t, {"fines": 0, **f}, s) for b, t, f, s in cases]

    def test_by_hand(self, points):
        # X: a scored 8, capped 7; b scored 3; bonus 2 → the sheet's bonus cap 1; no fines:
        #    sheet 50 + 7 + 3 + 1 = 61; score 0.8 × 61 + 20 × 0.875 = 48.8 + 17.5 = 66.3 → mid.
        # Y: a 6; b 0; fines 3 → −min(10, 12) = −10: sheet 50 + 6 − 10 = 46; 0.8 × 46 = 36.8 → low, weak.
        b = evaluate(points, *self.rows(X, ("Y", "t2", {"held": 0, "events": 5, "lapses": 9, "fines": 3},
                                            (0, 0, 4))))
        assert b["score"].tolist() == pytest.approx([66.3, 36.8], abs=1e-9)
        assert b["rating"].tolist() == ["mid", "low"] and b["weak"].tolist() == [False, True]
        assert points.scheme.branch.components == ("sheet", "satisfaction")

    def test_cap_floor_and_a_dimension_bonus_cap(self, points):
        # Base 95: X's sheet 95 + 7 + 3 + 1 = 106 → the cap 100 → 80 + 17.5 = 97.5.
        assert evaluate(points.update({"branch.score.base": 95}), *self.rows(X))["score"].iloc[0] == 97.5
        # Base 5: nothing earned, fines 3 (−10) → −5 → the floor 0; score 20 × 0.5 = 10.
        z = ("Z", "t1", {"held": 0, "events": 0, "lapses": 5, "fines": 3}, (1, 0, 1))
        assert evaluate(points.update({"branch.score.base": 5}), *self.rows(z))["score"].iloc[0] == 10
        # b's bonus capped at 0.5 before the sheet's cap of 1: sheet 60.5 → 48.4 + 17.5 = 65.9.
        half = points.update({"branch.dimensions.b.bonus_cap": P(0.5)})
        assert evaluate(half, *self.rows(X))["score"].iloc[0] == pytest.approx(65.9, abs=1e-9)


class TestRulesInAPolicy:
    def test_rank_within_the_type_and_beyond_the_listed_places(self, tiny):
        # Places 1 and 2 earn 3 and 2, any other place 0; b's maximum 5 + 3 = 8.
        # t1: A, B 10 hours (both first: 3), C 5 hours (third: 0); t2: D alone (first: 3).
        p = tiny.update({"branch.indicators.rank": {
            "label": "rank", "dimension": "b", "fact": "hours", "rule": "rank", "within": "type",
            "places": {"1": P(3), "2": P(2)}, "otherwise": P(0)}})
        b = evaluate(p, row("A", hours=10), row("B", hours=10), row("C", hours=5), row("D", "t2", hours=1))
        # A, B, D: b full → 100; C: b (5 + 0) / 8 × 30 = 18.75 → 88.75.
        assert b["score"].tolist() == pytest.approx([100, 100, 88.75, 100])

    def test_zeroing(self, tiny):
        # A finding zeroes `held` (4 of a's 10): 50 × 6/10 + 30 + 20 = 80; without: 100.
        p = tiny.update({"branch.indicators.finding": {"label": "finding", "dimension": "a", "fact": "found",
                                                       "rule": "zeroing", "target": "held"}})
        b = evaluate(p, row("A", found=1), row("B", found=0))
        assert b["score"].tolist() == [80, 100]


# -- vetoes and direct grading ---------------------------------------------------------------------------
class TestVetoes:
    def test_cap_force_and_the_most_severe(self, tiny):
        # scandal forces mid (even up from low); with the vacancy (cap low) too, low wins.
        p = tiny.update({"branch.vetoes.scandal": {"label": "scandal", "fact": "scandal", "at_least": P(1),
                                                   "force": "mid"}})
        b = evaluate(p, row("A", scandal=1), row("B", scandal=1, held=0, events=5, lapses=9),
                     row("C", scandal=1, vacant=1), row("D"))
        assert b["rating"].tolist() == ["mid", "mid", "low", "top"]
        assert b["vetoes"].tolist() == ["scandal", "scandal", "vacancy,scandal", ""]
        assert b["weak"].tolist() == [False, False, True, False]        # only the vacancy designates

    def test_switched_off(self, tiny):
        off = tiny.update({"branch.vetoes.vacancy.active": P(False)})
        b = evaluate(off, row("A", vacant=1))
        assert (b["rating"].iloc[0], b["vetoes"].iloc[0], b["weak"].iloc[0]) == ("top", "", False)

    def test_direct_grading_then_vetoes(self, tiny):
        # An honour sets top whatever the score (30); a vacancy still caps it afterwards.
        p = tiny.update({"branch.rating.direct": {"honour": {"label": "honour", "fact": "honour",
                                                             "at_least": P(1), "level": "top"}}})
        low = {"held": 0, "events": 5, "lapses": 9}
        b = evaluate(p, row("A", honour=1, **low), row("B", honour=1, vacant=1), row("C", **low))
        assert b["rating"].tolist() == ["top", "low", "low"]
        assert b["direct"].tolist() == ["honour", "honour", ""]


# -- designations and consequences -------------------------------------------------------------------------
def with_criterion(tiny, cid, criterion):
    return tiny.update({f"branch.designations.weak.criteria.{cid}": criterion})


class TestDesignations:
    def test_survey_below_with_answers(self, tiny):
        # yes + so: A 2 of 4 = 0.5, not below 0.5; B 1 of 4 → weak (score 85, top: a unit can be both).
        p = with_criterion(tiny, "unhappy", {"kind": "survey_below", "below": P(0.5), "answers": ["yes", "so"]})
        b = evaluate(p, row("A", survey=(1, 1, 2)), row("B", survey=(1, 0, 3)))
        assert b["score"].tolist() == [87.5, 85] and b["weak"].tolist() == [False, True]

    def test_survey_below_the_rate(self, tiny):
        p = with_criterion(tiny, "dull", {"kind": "survey_below", "below": P(0.6)})
        b = evaluate(p, row("A", survey=(3, 0, 2)), row("B", survey=(1, 1, 1)))     # rates 0.6, 0.5
        assert b["weak"].tolist() == [False, True]

    def test_fact_below_for_two_years(self, tiny):
        p = with_criterion(tiny, "no_candidates", {"kind": "fact_below", "fact": "candidates", "below": P(1),
                                                   "years": P(2)})
        t = branches(row("A", candidates=0), row("B", candidates=0), row("C", candidates=1)).assign(
            prev_no_candidates=[1, 0, 5])
        b = bs.evaluate_tables(p, t).branches
        assert b["weak"].tolist() == [True, False, False]
        assert b["no_candidates_streak"].tolist() == [2, 1, 0]

    def test_fact_at_least(self, tiny):
        p = with_criterion(tiny, "scandal", {"kind": "fact_at_least", "fact": "scandal", "at_least": P(1)})
        assert evaluate(p, row("A", scandal=1), row("B"))["weak"].tolist() == [True, False]

    def test_last_place_within_the_type_ties_all(self, tiny):
        # t1: A 100, B and C 80 (events 1: a 6/10) tie for last; t2: D alone is its own last place.
        p = with_criterion(tiny, "last", {"kind": "last_place", "within": "type"})
        b = evaluate(p, row("A"), row("B", events=1), row("C", events=1), row("D", "t2"))
        assert b["score"].tolist() == [100, 80, 80, 100]
        assert b["weak"].tolist() == [False, True, True, True]

    def test_level_or_below_for_two_years(self, tiny):
        # mid or below two years running: A 70 (mid) after one year → weak; B 70 first year → not;
        # C 100 (top) → never; D 50 (low, not below 40) after one year → weak.
        p = with_criterion(tiny, "stuck", {"kind": "level", "level": "mid", "or_below": True, "years": P(2)})
        t = branches(row("A", held=0, survey=(1, 0, 1)), row("B", held=0, survey=(1, 0, 1)), row("C"),
                     row("D", held=0, lapses=5)).assign(prev_stuck=[1, 0, 3, 1])
        b = bs.evaluate_tables(p, t).branches
        assert b["score"].tolist() == [70, 70, 100, 50]
        assert b["rating"].tolist() == ["mid", "mid", "top", "low"]
        assert b["weak"].tolist() == [True, False, False, True]


class TestConsequences:
    def test_years_and_levels(self, tiny):
        p = tiny.update({"consequences.plaque": {"label": "plaque", "unit": "branch",
                                                 "when": {"level": "top", "years": P(2)}},
                         "consequences.guidance": {"label": "guidance", "unit": "branch",
                                                   "when": {"level": "mid", "or_below": True}}})
        weak = {"held": 0, "events": 5, "lapses": 9}
        t = branches(row("A"), row("B"), row("C", held=0, survey=(1, 0, 1)), row("W1", survey=(0, 0, 1), **weak),
                     row("W0", survey=(0, 0, 1), **weak)).assign(prev_top=[1, 0, 4, 0, 0], prev_weak=[0, 0, 0, 1, 0])
        b = bs.evaluate_tables(p, t).branches.set_index("branch_id")
        assert b["plaque"].tolist() == [True, False, False, False, False]
        assert b["top_streak"].tolist() == [2, 1, 0, 0, 0]
        assert b["guidance"].tolist() == [False, False, True, True, True]
        assert b["talk"].tolist() == [False, False, False, True, True]
        assert b["reorganise"].tolist() == [False, False, False, True, False]
        counts = bs.Result(b.reset_index(), None, p).consequence_counts()
        assert counts.to_dict() == {"talk": 2, "reorganise": 1, "plaque": 1, "guidance": 3}


# -- rating designs ----------------------------------------------------------------------------------------
QUOTAS = {"branch.rating.design": "quota",
          "branch.rating.quotas": {"top": P(0.25), "mid": P(0.25)}}
#: Scores 100 (survey all yes), 90 (half), 80 (none), 70 (b lost, all yes), 60 (b lost, half).
SCORE = {100: {}, 90: {"survey": (1, 0, 1)}, 80: {"survey": (0, 0, 1)}, 70: {"lapses": 5},
         60: {"lapses": 5, "survey": (1, 0, 1)}, 50: {"lapses": 5, "survey": (0, 0, 1)}}


def scored(bid, score, t="t1"):
    facts = dict(SCORE[score])
    return row(bid, t, survey=facts.pop("survey", (1, 0, 0)), **facts)


class TestQuota:
    def test_ties_at_the_boundary_all_get_the_lower_level(self, tiny):
        # 8 branches: at most 2 top, at most 4 mid or better. Three tie at 100: 3 > 2, none is top;
        # 3 ≤ 4 and with the 90, 4 ≤ 4: mid; the rest low. A quota is never exceeded.
        p = tiny.update(QUOTAS)
        scores = [100, 100, 100, 90, 80, 70, 70, 60]
        r = bs.evaluate_tables(p, branches(*[scored(f"B{i}", s) for i, s in enumerate(scores)]))
        assert r.branches["score"].tolist() == scores
        assert r.branches["rating"].tolist() == ["mid"] * 4 + ["low"] * 4
        cuts = r.cut_points.set_index("level")["cut"]
        assert cuts["mid"] == 90 and cuts["top"] == np.inf
        assert p.name == "tiny[branch.rating.design=quota, branch.rating.quotas=…]"

    def test_within_peer_groups(self, tiny):
        # Each type rated on its own: 4 branches, at most 1 top and 2 mid or better.
        # t1 100 / 90 / 80 / 70 → top, mid, low, low; t2 100 / 100 / 60 / 60 → both 100s mid.
        p = tiny.update({**QUOTAS, "branch.rating.peer_groups": "type"})
        rows = [scored(f"A{s}", s) for s in (100, 90, 80, 70)]
        rows += [scored("B1", 100, "t2"), scored("B2", 100, "t2"), scored("B3", 60, "t2"), scored("B4", 60, "t2")]
        r = bs.evaluate_tables(p, branches(*rows))
        assert r.branches["rating"].tolist() == ["top", "mid", "low", "low", "mid", "mid", "low", "low"]
        assert sorted(set(r.cut_points["group"])) == ["t1", "t2"]

    def test_guardrail_keeps_cuts_near_last_years(self, tiny):
        # Year 1: 100 … 86 (8 branches; survey 10 answers): top cut 98 (2 places), mid cut 94 (4).
        # Year 2: 90 … 80: unguarded top 88, mid 84; kept within 5 of last year's: top 93, mid 89.
        p = tiny.update({**QUOTAS, "branch.rating.guardrail": P(5)})

        def year(scores):
            return branches(*[row(f"B{i}", survey=(int(round((s - 80) / 2)), 0, 10 - int(round((s - 80) / 2))))
                              for i, s in enumerate(scores)])
        last = bs.evaluate_tables(p, year([100, 98, 96, 94, 92, 90, 88, 86]))
        assert last.cut_points.set_index("level")["cut"].to_dict() == {"mid": 94, "top": 98}
        now = bs.evaluate_tables(p, year([90, 88, 86, 84, 82, 80, 80, 80]), previous=last)
        assert now.cut_points.set_index("level")["cut"].to_dict() == {"mid": 89, "top": 93}
        assert now.branches["rating"].tolist() == ["mid"] + ["low"] * 7
        first = bs.evaluate_tables(p, year([90, 88, 86, 84, 82, 80, 80, 80]))       # no last year: no guard
        assert first.branches["rating"].tolist() == ["top", "top", "mid", "mid"] + ["low"] * 4


class TestClustering:
    def test_kmeans_within_peer_groups(self, tiny):
        # t1: 100 / 90 / 80 three times each → cuts 90 and 100; t2: 70 / 60 / 50 → cuts 60 and 70.
        p = tiny.update({"branch.rating.design": "kmeans", "branch.rating.peer_groups": "type"})
        rows = [scored(f"A{s}{i}", s) for s in (100, 90, 80) for i in range(3)]
        rows += [scored(f"B{s}{i}", s, "t2") for s in (70, 60, 50) for i in range(3)]
        r = bs.evaluate_tables(p, branches(*rows))
        assert r.branches["rating"].tolist() == ["top"] * 3 + ["mid"] * 3 + ["low"] * 3 + \
            ["top"] * 3 + ["mid"] * 3 + ["low"] * 3
        cuts = r.cut_points.set_index(["group", "level"])["cut"]
        assert cuts.to_dict() == {("t1", "mid"): 90, ("t1", "top"): 100, ("t2", "mid"): 60, ("t2", "top"): 70}

    def test_hierarchical_mean_over_folds(self, tiny):
        # 100 / 90 / 80 six times each, 9 folds of 2: every fold keeps every score, so each fold's
        # clusters are the three values and the mean cut is exactly 90 and 100.
        p = tiny.update({"branch.rating.design": "hierarchical", "branch.rating.resamples": P(9),
                         "branch.rating.seed": P(3)})
        rows = [scored(f"A{s}{i}", s) for s in (100, 90, 80) for i in range(6)]
        r = bs.evaluate_tables(p, branches(*rows))
        assert r.cut_points.set_index("level")["cut"].to_dict() == {"mid": 90, "top": 100}
        assert r.branches["rating"].tolist() == ["top"] * 6 + ["mid"] * 6 + ["low"] * 6


# -- members -----------------------------------------------------------------------------------------------
def members_tables(rows):
    """Members ``(id, class, appraisal, fraud, [(att, tasks, complaints, deeds) × 4])`` of one branch."""
    m = pd.DataFrame([{"member_id": i, "branch_id": "B", "category": c, "appraisal": a, "fraud": f}
                      for i, c, a, f, _ in rows])
    mm = pd.DataFrame([{"member_id": i, "month": k + 1, "att": p[0], "tasks": p[1], "complaints": p[2],
                        "deeds": p[3]} for i, _, _, _, periods in rows for k, p in enumerate(periods)])
    return branches(row("B")), m, mm


MEMBERS = [
    # m1: periods 15 → 100; 10 → 66.67; 0 + 10 − 2 + bonus 2 = 10 → 66.67;
    #     5 + 5 + bonus min(3, 4) = 13 → 86.67; record 320 / 4 = 80; annual 0.5 × 80 + 0.5 × 60 = 70 → ok → help
    ("m1", "regular", 60, 0, [(1, 2, 0, 0), (1, 1, 0, 0), (0, 2, 1, 1), (1, 1, 0, 3)]),
    # m2 part-time (tasks worth 5: max 10): 5 + 5 each period → 100; annual 100 → good
    ("m2", "part", 100, 0, [(1, 1, 0, 0)] * 4),
    # m3 senior: exempt, never graded
    ("m3", "senior", 10, 0, [(0, 0, 2, 0)] * 4),
    # m4: full record and appraisal (100), but fraud: forced bad → expel
    ("m4", "regular", 100, 1, [(1, 2, 0, 0)] * 4),
    # m5: nothing, two complaints: −4 → 0 each period; annual 0.5 × 80 = 40 → bad → expel
    ("m5", "regular", 80, 0, [(0, 0, 2, 0)] * 4),
]


class TestMembers:
    def test_mean_accrual_classes_exemption_and_vetoes(self, tiny):
        r = bs.evaluate_tables(tiny, *members_tables(MEMBERS))
        m = r.members.set_index("member_id")
        assert m["record"].tolist() == pytest.approx([80, 100, 0, 100, 0], abs=1e-9)
        assert m["annual"].tolist() == pytest.approx([70, 100, 5, 100, 40], abs=1e-9)
        assert [None if pd.isna(g) else g for g in m["grade"]] == ["ok", "good", None, "bad", "bad"]
        assert m["vetoes"].tolist() == ["", "", "", "fraud", ""]
        assert m["help"].tolist() == [True, False, False, False, False]
        assert m["expel"].tolist() == [False, False, False, True, True]
        assert r.grade_counts().to_dict() == {"good": 1, "ok": 1, "bad": 2, "exempt": 1}

    def test_sum_accrual(self, tiny):
        # The year added up first: att met in every period? m1 no (0 in period 3) → 0;
        # tasks 6 → min(10, 30) = 10; complaints 1 → −2; deeds 4 → min(4, 8) = 4, counted 3:
        # 11 / 15 → 73.333…; annual 36.667 + 30 = 66.667 → ok.
        # m2 part: att 1, tasks 4 → min(5, 20) = 5: 10 / 10 → 100.
        p = tiny.update({"member.record.accrual": "sum"})
        m = bs.evaluate_tables(p, *members_tables(MEMBERS[:2])).members
        assert m["record"].tolist() == pytest.approx([1100 / 15, 100], abs=1e-9)
        assert m["annual"].tolist() == pytest.approx([0.5 * 1100 / 15 + 30, 100], abs=1e-9)
        assert m["grade"].tolist() == ["ok", "good"]


# -- Policy.update -----------------------------------------------------------------------------------------
class TestUpdate:
    def test_share_group_renormalised(self, tiny):
        p = tiny.update({"branch.satisfaction_share": 0.4})        # a and b share 0.6 in the ratio 5 : 3
        assert (p["branch.dimensions.a.share"], p["branch.dimensions.b.share"]) == pytest.approx((0.375, 0.225))
        assert p.name == "tiny[branch.satisfaction_share=0.4]"

    def test_a_design_needs_its_block(self, tiny):
        with pytest.raises(bs.PolicyError, match="quotas"):
            tiny.update({"branch.rating.design": "quota"})

    def test_removals(self, tiny):
        # The veto is named by a criterion: removing it alone is refused; with its criterion it is fine.
        with pytest.raises(bs.PolicyError, match="vacancy"):
            tiny.update({"branch.vetoes.vacancy": None})
        # The last veto: the section is removed, not left empty.
        with pytest.raises(bs.PolicyError, match="branch.vetoes: expected a non-empty mapping"):
            tiny.update({"branch.vetoes.vacancy": None, "branch.designations.weak.criteria.vacancy": None})
        p = tiny.update({"branch.vetoes": None, "branch.designations.weak.criteria.vacancy": None})
        assert p.scheme.branch.vetoes.n == 0 and "removed" in p.name
        b = evaluate(p, row("A", vacant=1))
        assert (b["rating"].iloc[0], b["weak"].iloc[0], b["vetoes"].iloc[0]) == ("top", False, "")
        with pytest.raises(bs.PolicyError, match="nothing to remove"):
            tiny.update({"branch.vetoes.nothing": None})

    def test_a_section_is_not_replaced_by_a_value(self, tiny):
        with pytest.raises(bs.PolicyError, match="is a section"):
            tiny.update({"branch.rating": "quota"})

    def test_reform_file_and_names(self, tiny, tmp_path):
        f = tmp_path / "trial.yaml"
        f.write_text("schema: branchsim-reform/1\nname: quota_trial\nchanges:\n"
                     "  branch.rating.design: quota\n  branch.rating.quotas:\n"
                     "    top: {value: 0.25, quote: the trial's text}\n    mid: {value: 0.25, assumption: x}\n"
                     "  branch.rating.cuts.top: 85\n", encoding="utf-8")
        p = tiny.update(f)
        assert p.name == "tiny+quota_trial" and p.scheme.branch.rating.design == "quota"
        assert p.provenance("branch.rating.quotas.top") == "quote: the trial's text"
        assert p.provenance("branch.rating.cuts.top").startswith("assumption: reform quota_trial (was 80")
        assert tiny.update({"branch.satisfaction_share": 0.3}, name="survey_30").name == "tiny+survey_30"
        diff = tiny.diff(p).set_index("path")
        assert diff.loc["branch.rating.cuts.top", "new"] == 85
        assert diff.loc["branch.rating.design", "provenance"] == "structure"
        assert bs.load_reform(f)["changes"]["branch.rating.cuts.top"] == 85
