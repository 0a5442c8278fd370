"""The scoring arithmetic, worked by hand, and the invariants a researcher relies on.

Baseline maxima used in the hand computations (non-bonus points per dimension,
after the type overrides of data/policies/baseline.yaml):

    village          organisation 25, institution 25, activities 25, role 25
    urban_community  role 21 (industry 0, serve_masses 6)
    government       role 14 (industry 0, governance 0, serve_masses 4)
    institution      role 16 (industry 0, governance 0, serve_masses 6)
    enterprise       role 15 (serve 0, governance 0)

(No override raises a deduction above what its deductions can take away: a fact
of 0 earns 0 points for every type; the policy refuses anything else.)

Each dimension weighs 15 points, the survey 40 (answers count 1 / 0.6 / 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import rating, scoring
from branchsim.evaluate import BranchInputs, branch_consequences, branch_inputs, branch_outcome, member_outcome
from branchsim.policy import fact_range
from branchsim.scheme import Sheet
from branchsim.tables import check_tables
from conftest import EXAMPLES, branch_row, month_row, sheet

SURVEY = ["survey_satisfied", "survey_basic", "survey_dissatisfied"]


def one_indicator(rule, points, **params) -> Sheet:
    return sheet({"rule": rule, "points": points, **params})


def points_of(sh: Sheet, facts) -> list:
    facts = np.asarray(facts, float).reshape(-1, 1)
    return scoring.indicator_points(facts, np.zeros(len(facts), int), sh).ravel().tolist()


def evaluate(policy, rows, members=None, months=None) -> bs.Result:
    m = None if members is None else pd.DataFrame(members)
    mm = None if months is None else pd.DataFrame(months)
    return bs.evaluate_tables(policy, pd.DataFrame(rows), m, mm)


def outcome_of(policy, rows) -> dict:
    """branch_outcome on rows built with branch_row, through the checked table and the compiled scheme."""
    b, _, _ = check_tables(policy, pd.DataFrame(rows))
    return branch_outcome(branch_inputs(b, policy.scheme), policy.scheme)


def outcome_arrays(policy, facts, types, survey) -> dict:
    """branch_outcome on arrays (facts in the sheet's order): levels by id, the weak designation."""
    s = policy.scheme
    values = {f: facts[:, j] for j, f in enumerate(s.branch.sheet.facts)}
    out = branch_outcome(BranchInputs(facts, values, np.asarray(types), survey, {}, None), s)
    out["rating"] = s.branch.levels.id_of(out["level"])
    out["weak"] = out["designations"]["weak"]
    return out


def code(policy, level: str) -> int:
    return policy.scheme.branch.levels.code(level)


WEAK_BELOW = "branch.designations.weak.criteria.low_score.below"


#: Facts that zero the institution dimension: proportions and switches at 0, and every
#: deduction's shortfall from 0 (13 × 0.5, 11 × 0.5, 12 × 0.25) at least its points.
#: A village branch at full marks elsewhere then scores 45 + 40 × satisfaction rate.
NO_INSTITUTION = dict(standards_implemented=0, ledger_items_complete=0, dues_on_time_share=0,
                      appraisal_months=0, org_life_filed_share=0, secretary_reported=0,
                      archive_complete_share=0, admission_procedure_ok=0)


# -- the four rule forms --------------------------------------------------------------
class TestRuleForms:
    def test_binary(self):
        # 4 points if the fact is at least 1, else nothing.
        assert points_of(one_indicator("binary", 4), [0, 0.99, 1, 3]) == [0, 0, 4, 4]
        # at_least 3: met from 3 on.
        assert points_of(one_indicator("binary", 4, at_least=3), [2, 2.99, 3, 7]) == [0, 0, 4, 4]

    def test_deduction(self):
        # 6 points, 12 required, 0.5 off per unit short: 9 held → 6 − 0.5×3 = 4.5;
        # 0 held → 6 − 6 = 0; more than required earns no extra.
        rules = one_indicator("deduction", 6, required=12, per_shortfall=0.5)
        assert points_of(rules, [12, 9, 0, 20, 11.5]) == [6, 4.5, 0, 6, 5.75]

    def test_deduction_floors_at_zero(self):
        # 1 point off per unit short of 12: 7 held → 1; 5 held → 6 − 7 = −1 → 0; 0 → 0.
        rules = one_indicator("deduction", 6, required=12, per_shortfall=1)
        assert points_of(rules, [7, 6, 5, 0]) == [1, 0, 0, 0]

    def test_proportion_is_clipped(self):
        # 4 × clip(fact, 0, 1).
        assert points_of(one_indicator("proportion", 4), [-0.5, 0, 0.25, 1, 1.7]) == [0, 0, 1, 4, 4]

    def test_bonus_is_capped(self):
        # 0.5 per unit, at most 3: 5 units → 2.5; 6 → 3; 100 → 3; negative → 0.
        rules = one_indicator("bonus", 3, per_unit=0.5)
        assert points_of(rules, [0, 1, 5, 6, 100, -4]) == [0, 0.5, 2.5, 3, 3, 0]

    def test_per_event_is_capped(self):
        # 2 points an event, at most 12 a year (每次2分, 全年累計不超過12分): 5 → 10; 6 → 12; 9 → 12.
        assert points_of(one_indicator("per_event", 12, per_event=2), [0, 1, 5, 6, 9, -1]) == [0, 2, 10, 12, 12, 0]

    def test_per_occurrence_floors_at_the_item(self):
        # 6 points, 1 off an occurrence (每次扣1分, 扣完為止): 2 → 4; 6 → 0; 9 → 0.
        assert points_of(one_indicator("per_occurrence", 6, per_occurrence=1), [0, 2, 6, 9]) == [6, 4, 0, 0]

    def test_penalty_takes_off_at_most_its_points(self):
        # 5 off an occurrence, at most 15: 1 → −5; 3 → −15; 4 → −15.
        assert points_of(one_indicator("penalty", 15, per_occurrence=5), [0, 1, 3, 4]) == [0, -5, -15, -15]

    def test_zeroing_sets_its_target_to_zero(self):
        # i0: binary 5 points; i1 zeroes i0 when its fact is at least 1 (發現…的不得分).
        sh = sheet({"rule": "binary", "points": 5}, {"rule": "zeroing", "target": 0})
        pts = scoring.indicator_points(np.array([[1.0, 0], [1, 1], [1, 3], [0, 0]]), np.zeros(4, int), sh)
        assert pts.tolist() == [[5, 0], [0, 0], [0, 0], [0, 0]]
        # The zeroing itself earns nothing and counts nowhere in the maximum.
        assert sh.group_max.tolist() == [[5]]
        at2 = sheet({"rule": "binary", "points": 5}, {"rule": "zeroing", "target": 0, "at_least": 2})
        assert scoring.indicator_points(np.array([[1.0, 1], [1, 2]]), np.zeros(2, int), at2)[:, 0].tolist() == [5, 0]

    def test_rank_competition_ranking_with_ties(self):
        # Places 1–3 earn 10 / 8 / 6, beyond them 1: facts 50, 40, 40, 20, 5 → places 1, 2, 2, 4, 5.
        places = np.tile([10.0, 8, 6, 1], (5, 1))
        assert scoring.rank_points(np.array([50.0, 40, 40, 20, 5]), None, places, True).tolist() == [10, 8, 8, 1, 1]
        # Lowest first: 5 is place 1, 20 place 2, the two 40s place 3, 50 place 5.
        assert scoring.rank_points(np.array([50.0, 40, 40, 20, 5]), None, places, False).tolist() == [1, 6, 6, 8, 10]
        # Within groups: each group has its own first place.
        groups = np.array([0, 0, 1, 1, 1])
        assert scoring.rank_points(np.array([50.0, 40, 40, 20, 20]), groups, places, True).tolist() == [10, 8, 10, 8, 8]


class TestTypeMaxima:
    # Indicators a (binary, 4 points; 0 for profile 1), b (proportion, 6), c (bonus, 1 per unit,
    # cap 3) in group g0; d (deduction, 5 points, 4 required, 2 off per unit short) in g1.
    rules = sheet({"rule": "binary", "points": [4, 0]}, {"rule": "proportion", "points": 6},
                  {"rule": "bonus", "points": 3, "per_unit": 1},
                  {"rule": "deduction", "points": 5, "required": 4, "per_shortfall": 2, "group": 1},
                  profiles=2, groups=("g0", "g1"))

    def fractions(self, facts, types):
        facts = np.asarray(facts, float)
        types = np.asarray(types)
        pts = scoring.indicator_points(facts, types, self.rules)
        got, _, _ = scoring.group_points(pts, types, self.rules)
        return pts, np.clip(got / self.rules.group_max[types], 0, 1)

    def test_group_maximum_excludes_bonus_and_inapplicable(self):
        # g0: type 0 → 4 + 6 = 10 (bonus not counted); type 1 → 0 + 6 = 6. g1: 5.
        assert self.rules.group_max.tolist() == [[10, 5], [6, 5]]

    def test_override_to_zero_makes_the_indicator_worth_nothing(self):
        # Same facts a=1, b=0.5, c=0, d=3 for both types.
        pts, frac = self.fractions([[1, 0.5, 0, 3]] * 2, [0, 1])
        assert pts.tolist() == [[4, 3, 0, 3], [0, 3, 0, 3]]
        # type 0: g0 = (4 + 3) / 10 = 0.7; type 1: g0 = 3 / 6 = 0.5; g1 = (5 − 2) / 5 = 0.6.
        np.testing.assert_allclose(frac, [[0.7, 0.6], [0.5, 0.6]])

    def test_bonus_adds_but_the_dimension_is_capped(self):
        _, frac = self.fractions([[1, 0.5, 2, 4], [1, 0.5, 5, 4], [1, 1, 5, 4]], [0, 0, 0])
        # c=2 → (4 + 3 + 2)/10 = 0.9; c=5 → capped bonus 3 → (4 + 3 + 3)/10 = 1.0;
        # b=1, c=5 → 13/10 → capped at 1.
        assert frac[:, 0].tolist() == pytest.approx([0.9, 1.0, 1.0])
        assert frac[:, 1].tolist() == [1.0, 1.0, 1.0]

    def test_dimension_bonus_cap(self):
        # A bonus cap of 1 on g0: c=2 counts 1 → (4 + 3 + 1)/10 = 0.8.
        pts = scoring.indicator_points(np.array([[1, 0.5, 2, 4.0]]), np.array([0]), self.rules)
        got, scored, bonus = scoring.group_points(pts, np.array([0]), self.rules,
                                                  np.array([[1.0, np.inf], [1.0, np.inf]]))
        assert got.tolist() == [[8, 5]] and scored.tolist() == [[7, 5]] and bonus.tolist() == [[1, 0]]


def test_satisfaction_rate_by_hand(policy):
    values = policy.scheme.branch.answer_values                            # 1, 0.6, 0
    counts = np.array([[14, 5, 1], [0, 0, 3], [2, 2, 1]])
    # (14 + 3)/20 = 0.85; 0; (2 + 1.2)/5 = 0.64
    assert scoring.satisfaction_rate(counts, values).tolist() == pytest.approx([0.85, 0, 0.64])


def test_weighted_scores_one_and_many_scenarios():
    comp = np.array([[1.0, 0.5]])
    assert scoring.weighted_scores(comp, np.array([0.6, 0.4])).tolist() == [80.0]
    # Two scenarios at once: 60 + 20 = 80 and 70 + 15 = 85.
    both = scoring.weighted_scores(comp, np.array([[0.6, 0.7], [0.4, 0.3]]))
    assert both.tolist() == [[80.0, 85.0]]


# -- a whole branch by hand -----------------------------------------------------------------
# A village branch (every dimension max 25) with these shortfalls:
#   organisation: secretary not trained −3, committee incomplete −3, no WeChat group −2,
#     WeChat coverage 0.5 → −1, mobile registration 0.5 → −1,
#     0 reserve cadres → 3 − 1.5×2 = 0 → −3;            25 − 13 = 12 → 15 × 12/25  = 7.2
#   institution: 9 of 13 standards → 5 − 0.5×4 = 3 → −2, dues 0.75 → −1,
#     8 appraisal months → 3 − 0.25×4 = 2 → −1, no two-way report −2;
#                                                        25 − 6 = 19  → 15 × 19/25 = 11.4
#   activities: 8 committee meetings → 4 − 0.5×4 = 2 → −2, 2 lectures → 3 − 2 = 1 → −2;
#                                                        25 − 4 = 21  → 15 × 21/25 = 12.6
#   role: hardship 0.4 → 2 → −3, 20 service cases → 5 − 0.25×4 = 4 → −1,
#     1 industry project → 5 − 2.5 = 2.5 → −2.5, 2 central tasks → 5 − 2.5 = 2.5 → −2.5;
#     bonus: 4 volunteer activities → 2, 1 five-shows activity → 0.5;
#                                              25 − 9 + 2.5 = 18.5  → 15 × 18.5/25 = 11.1
#   survey 14 satisfied, 5 basic, 1 dissatisfied: (14 + 3)/20 = 0.85 → 40 × 0.85 = 34
#   total 7.2 + 11.4 + 12.6 + 11.1 + 34 = 76.3 → three stars, not weak.
WORKED = dict(
    secretary_trained=0, committee_complete=0, wechat_group=0, wechat_member_share=0.5,
    mobile_registered_share=0.5, reserve_cadres=0,
    standards_implemented=9, dues_on_time_share=0.75, appraisal_months=8, secretary_reported=0,
    committee_meetings=8, party_lectures=2,
    hardship_aided_share=0.4, service_cases=20, industry_projects=1, central_task_activities=2,
    volunteer_activities=4, five_shows_activities=1,
)
WORKED_SUBSCORES = [7.2, 11.4, 12.6, 11.1, 34.0]
WORKED_SCORE = 76.3


def worked_row(policy, **extra):
    return branch_row(policy, "W", "village", survey=(14, 5, 1), **{**WORKED, **extra})


class TestWorkedBranch:
    def test_branch_outcome(self, policy):
        out = outcome_of(policy, [worked_row(policy)])
        assert out["subscores"][0].tolist() == pytest.approx(WORKED_SUBSCORES)
        assert out["score"][0] == pytest.approx(WORKED_SCORE, abs=1e-9)
        assert out["level"][0] == code(policy, "three_star") and not out["designations"]["weak"][0]
        assert not out["vetoes"].any()

    def test_evaluate_tables(self, policy):
        b = evaluate(policy, [worked_row(policy)]).branches.iloc[0]
        assert b["score"] == pytest.approx(WORKED_SCORE, abs=1e-9)
        subs = [b[f"sub_{c}"] for c in ("organisation", "institution", "activities", "role",
                                        "satisfaction")]
        assert subs == pytest.approx(WORKED_SUBSCORES)
        assert (b["rating"], b["weak"], b["talk"], b["reorganise"], b["vetoes"]) == ("three_star", False, False,
                                                                                  False, "")

    def test_full_marks_score_100(self, policy):
        out = outcome_of(policy, [branch_row(policy, f"F{i}", type=t) for i, t in enumerate(policy.branch_types)])
        assert out["score"].tolist() == [100.0] * 6
        assert out["level"].tolist() == [code(policy, "five_star")] * 6

    def test_satisfaction_share_reform_by_hand(self, policy):
        # Survey 30%, each dimension 17.5%: 17.5 × (0.48 + 0.76 + 0.84 + 0.74) + 30 × 0.85
        #   = 17.5 × 2.82 + 25.5 = 49.35 + 25.5 = 74.85.
        reform = policy.update({"branch.satisfaction_share": 0.30})
        b = evaluate(reform, [worked_row(policy)]).branches.iloc[0]
        assert b["score"] == pytest.approx(74.85, abs=1e-9)
        assert b["sub_satisfaction"] == pytest.approx(25.5)


class TestTypeOverrides:
    def test_same_facts_different_types(self, policy):
        # Full marks and all answers satisfied, except no industry project: industry_development
        # needs 2 and takes 2.5 off per project short, so it loses its 5 points wherever it applies.
        #   village: role 20/25 → 15 × 20/25 = 12; 45 + 12 + 40 = 97
        #   urban_community: industry not applicable, role 21/21 → 100
        #   enterprise: role 10/15 → 15 × 10/15 = 10; 95
        #   government: industry not applicable, role 14/14 → 100
        types = ["village", "urban_community", "enterprise", "government"]
        rows = [branch_row(policy, f"T{i}", t, industry_projects=0) for i, t in enumerate(types)]
        scores = evaluate(policy, rows).branches["score"].tolist()
        assert scores == pytest.approx([85 + 15 * 20 / 25, 100, 85 + 15 * 10 / 15, 100], abs=1e-9)

    def test_override_changes_the_star(self, policy):
        # Survey 12 satisfied, 8 dissatisfied: 40 × 0.6 = 24; no industry project.
        #   village 45 + 12 + 24 = 81 → 4 stars; urban_community 60 + 24 = 84 → 4;
        #   enterprise 45 + 10 + 24 = 79 → 3 stars.
        rows = [branch_row(policy, f"T{i}", t, survey=(12, 0, 8), industry_projects=0)
                for i, t in enumerate(["village", "urban_community", "enterprise"])]
        b = evaluate(policy, rows).branches
        assert b["score"].tolist() == pytest.approx([81, 84, 79], abs=1e-9)
        assert b["rating"].tolist() == ["four_star", "four_star", "three_star"]

    def test_type_survey_share_renormalises_its_dimensions(self, policy):
        # A type's own survey share of 0.5 leaves 0.5 for the dimensions (0.125 each) for that
        # type only: the worked branch as a village scores 12.5 × 2.82 + 50 × 0.85 = 77.75.
        d = policy.to_dict()
        d["branch"]["types"]["village"]["satisfaction_share"] = {"value": 0.5, "assumption": "test"}
        p = bs.Policy(d)
        rows = [worked_row(policy), {**worked_row(policy), "branch_id": "W2", "type": "social_org"}]
        b = evaluate(p, rows).branches
        assert b["score"].iloc[0] == pytest.approx(77.75, abs=1e-9)
        assert b["score"].iloc[1] == pytest.approx(evaluate(policy, rows).branches["score"].iloc[1])


# -- vetoes, cut points, weak ----------------------------------------------------------------
class TestVetoes:
    def test_vacant_secretary_caps_at_zero_and_designates_weak(self, policy):
        # Full marks except the secretary (−4 of 25): 15 × 21/25 + 45 + 40 = 97.6 → 5 stars
        # before the veto, 0 after; weak though the score is high.
        b = evaluate(policy, [branch_row(policy, secretary_in_post=0)]).branches.iloc[0]
        assert b["score"] == pytest.approx(97.6, abs=1e-9)
        assert (b["rating"], b["weak"], b["talk"], b["vetoes"]) == ("no_star", True, True, "secretary_vacant")

    def test_major_violation_caps_at_zero_and_designates_weak(self, policy):
        b = evaluate(policy, [branch_row(policy, no_major_violation=0)]).branches.iloc[0]
        assert (b["rating"], b["weak"], b["vetoes"]) == ("no_star", True, "major_violation")

    def test_meetings_neglected_caps_at_three_without_weak(self, policy):
        # 5 committee meetings: 4 − 0.5 × 7 = 0.5 points → activities 21.5/25 → 12.9; score 97.9.
        b = evaluate(policy, [branch_row(policy, committee_meetings=5)]).branches.iloc[0]
        assert b["score"] == pytest.approx(97.9, abs=1e-9)
        assert (b["rating"], b["weak"], b["talk"], b["vetoes"]) == ("three_star", False, False, "meetings_neglected")

    def test_veto_threshold_is_strictly_below(self, policy):
        # 6 meetings is not "below 6": no veto.
        b = evaluate(policy, [branch_row(policy, committee_meetings=6)]).branches.iloc[0]
        assert (b["rating"], b["vetoes"]) == ("five_star", "")

    def test_several_vetoes_the_lowest_cap_wins(self, policy):
        b = evaluate(policy, [branch_row(policy, secretary_in_post=0, committee_meetings=0)]).branches
        assert (b["rating"].iloc[0], b["weak"].iloc[0]) == ("no_star", True)
        assert b["vetoes"].iloc[0] == "secretary_vacant,meetings_neglected"

    def test_apply_vetoes_directly(self, policy):
        v = policy.scheme.branch.vetoes
        values = np.ones((3, v.n)) * 12
        values[1, v.fact.index("secretary_in_post")] = 0
        values[2, v.fact.index("committee_meetings")] = 5.99
        fired = rating.veto_fired(values, v)
        top = code(policy, "five_star")
        levels = rating.apply_vetoes(np.array([top] * 3), fired, v)
        assert policy.scheme.branch.levels.id_of(levels).tolist() == ["five_star", "no_star", "three_star"]
        assert fired.sum(axis=1).tolist() == [0, 1, 1]

    def test_a_switched_off_veto_never_fires(self, policy):
        off = policy.update({"branch.vetoes.meetings_neglected.active": {"value": False, "assumption": "test"}})
        b = evaluate(off, [branch_row(policy, committee_meetings=5)]).branches.iloc[0]
        assert (b["rating"], b["vetoes"]) == ("five_star", "")

    def test_force_and_cap_the_most_severe_wins(self, policy):
        # meetings_neglected forces four_star (even a no-star unit gets it); secretary_vacant caps no_star:
        # the lowest level wins.
        d = policy.to_dict()
        v = d["branch"]["vetoes"]["meetings_neglected"]
        del v["cap"]
        v["force"] = "four_star"
        p = bs.Policy(d)
        rows = [branch_row(policy, "A", committee_meetings=5),
                branch_row(policy, "B", committee_meetings=5, survey=(0, 0, 5), **NO_INSTITUTION),
                branch_row(policy, "C", committee_meetings=5, secretary_in_post=0)]
        assert evaluate(p, rows).branches["rating"].tolist() == ["four_star", "four_star", "no_star"]
        # An `at_least` veto fires from its value on.
        d["branch"]["vetoes"]["too_many"] = {"label": "x", "fact": "service_cases",
                                             "at_least": {"value": 30, "assumption": "test"}, "cap": "three_star"}
        p = bs.Policy(d)
        b = evaluate(p, [branch_row(policy, "A", service_cases=29), branch_row(policy, "B", service_cases=30)])
        assert b.branches["vetoes"].tolist() == ["", "too_many"]


class TestCutPoints:
    def test_cut_levels_on_and_around_the_cuts(self):
        scores = np.array([0, 69.999999, 70, 79.99, 80, 89.99, 90, 100])
        got = rating.cut_levels(scores, np.array([70.0, 80, 90]))
        assert got.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]

    def test_cut_levels_with_five_cuts(self):
        got = rating.cut_levels(np.array([10, 20, 45, 94.9, 95]), np.array([20.0, 40, 60, 80, 95]))
        assert got.tolist() == [0, 1, 2, 4, 5]

    def test_cuts_per_unit(self):
        # Per-unit cuts (a type's own cut): 85 reaches 80 but not 90.
        got = rating.cut_levels(np.array([85.0, 85]), np.array([[70.0, 80, 90], [70, 86, 90]]))
        assert got.tolist() == [2, 1]

    @pytest.mark.parametrize("survey, score, level", [
        ((3, 0, 1), 90.0, "five_star"),   # 60 + 40 × 0.75 = 90 exactly
        ((1, 0, 1), 80.0, "four_star"),   # 60 + 40 × 0.5 = 80 exactly
        ((1, 0, 3), 70.0, "three_star"),  # 60 + 40 × 0.25 = 70 exactly
    ])
    def test_score_exactly_on_a_cut_gets_that_level(self, policy, survey, score, level):
        b = evaluate(policy, [branch_row(policy, survey=survey)]).branches.iloc[0]
        assert b["score"] == score          # exactly: no 69.99999999999999
        assert b["rating"] == level

    def test_a_hair_below_the_cut(self, policy):
        # Dues 0.99 costs 0.04 of institution's 25 points: 15 × 24.96/25 = 14.976; 69.976 → no star.
        b = evaluate(policy, [branch_row(policy, survey=(1, 0, 3), dues_on_time_share=0.99)]).branches
        assert b["score"].iloc[0] == pytest.approx(69.976, abs=1e-9)
        assert b["rating"].iloc[0] == "no_star" and not b["weak"].iloc[0]

    def test_cut_set_by_update_to_a_computed_score(self, policy):
        # The worked branch scores 76.3: with the four-star cut at exactly 76.3 it has 4 stars,
        # with the cut at 76.31 it stays at 3.
        on = policy.update({"branch.rating.cuts.four_star": WORKED_SCORE})
        above = policy.update({"branch.rating.cuts.four_star": 76.31})
        assert evaluate(on, [worked_row(policy)]).branches["rating"].iloc[0] == "four_star"
        assert evaluate(above, [worked_row(policy)]).branches["rating"].iloc[0] == "three_star"
        out = outcome_of(on, [worked_row(policy)])
        assert rating.cut_levels(out["score"], on.scheme.branch.rating.cuts[0]).tolist() == [code(on, "four_star")]

    def test_weak_below_the_baseline_cut(self, policy):
        # The baseline designates a branch weak below 50 (an assumption in the policy file).
        assert policy[WEAK_BELOW] == 50
        # Institution dimension at zero, survey 1 satisfied of 8: 15 + 0 + 15 + 15 + 40/8 = 50
        # exactly → not weak (weak is *below* the cut); political birthdays 0.99 instead of 1
        # cost 15 × 0.01/25 = 0.006 → 49.994 → weak.
        rows = [branch_row(policy, "A", survey=(1, 0, 7), **NO_INSTITUTION),
                branch_row(policy, "B", survey=(1, 0, 7), political_birthday_share=0.99,
                           **NO_INSTITUTION)]
        b = evaluate(policy, rows).branches
        assert b["score"].tolist() == pytest.approx([50.0, 49.994], abs=1e-9)
        assert b["weak"].tolist() == [False, True]
        assert b["talk"].tolist() == [False, True]
        assert b["rating"].tolist() == ["no_star", "no_star"]

    def test_weak_cut_follows_the_policy(self, policy):
        # With the cut moved to 60: all dissatisfied, 60 exactly → not weak; with dues 0.99,
        # 60 − 15 × 0.04/25 = 59.976 → weak. Under the baseline cut neither is weak.
        at60 = policy if policy[WEAK_BELOW] == 60 else policy.update({WEAK_BELOW: 60})
        rows = [branch_row(policy, "A", survey=(0, 0, 5)),
                branch_row(policy, "B", survey=(0, 0, 5), dues_on_time_share=0.99)]
        b = evaluate(at60, rows).branches
        assert b["score"].tolist() == pytest.approx([60.0, 59.976], abs=1e-9)
        assert b["weak"].tolist() == [False, True]
        assert b["talk"].tolist() == [False, True]
        assert b["rating"].tolist() == ["no_star", "no_star"]
        base = evaluate(policy, rows).branches
        assert base["weak"].tolist() == [s < policy[WEAK_BELOW] for s in base["score"]]

    def test_weak_is_score_below_the_cut_without_vetoes(self, policy, population):
        facts, types, survey = _arrays(policy, population)
        out = outcome_arrays(policy, facts, types, survey)
        no_veto = ~out["vetoes"].any(axis=1)
        cut = policy[WEAK_BELOW]
        assert (out["weak"][no_veto] == (out["score"][no_veto] < cut)).all()
        assert out["weak"][no_veto].any() and not out["weak"][no_veto].all()   # both sides occur


# -- members ----------------------------------------------------------------------------------
class TestMembers:
    def test_annual_is_eighty_twenty(self, policy):
        ms = policy.scheme.member
        # member 0: record 80, appraisal 50 → 0.8 × 80 + 0.2 × 50 = 74; member 1: 60, 100 → 68.
        got = scoring.annual_scores(np.array([80.0, 60]), np.array([50.0, 100]), ms)
        assert got.tolist() == pytest.approx([74, 68])
        half = policy.update({"member.record_share": 0.5}).scheme.member
        # 0.5 × 80 + 0.5 × 50 = 65; 0.5 × 60 + 0.5 × 100 = 80.
        assert scoring.annual_scores(np.array([80.0, 60]), np.array([50.0, 100]), half).tolist() == \
            pytest.approx([65, 80])

    def test_member_without_months_is_refused(self, policy, examples):
        mm = examples["member_months"]
        mm = mm[mm["member_id"] != "M0002"]
        with pytest.raises(bs.DataError, match="row 2 have no month"):
            bs.evaluate_tables(policy, examples["branches"], examples["members"], mm)

    def test_grades_at_and_around_the_cuts(self, policy):
        ms = policy.scheme.member
        annual = np.array([0, 49.99, 50, 59.99, 60, 74.99, 75, 89.99, 90, 100])
        codes, _ = rating.rate(annual, ms.rating, profile=np.zeros(len(annual), int))
        assert ms.grades.id_of(codes).tolist() == ["unqualified", "unqualified", "warning", "warning", "basic",
                                                   "basic", "qualified", "qualified", "excellent", "excellent"]

    def test_monthly_score_by_hand_with_type_override(self, policy):
        ms = policy.scheme.member
        ent = policy.branch_types.index("enterprise")   # enterprise maximum: 95 points (profile = type)
        facts = pd.DataFrame([
            month_row(policy, "m", 1),                                       # full → 100
            month_row(policy, "m", 2, post_targets_share=0.5),               # −3 of post_role 6
            month_row(policy, "m", 3, zero=True, five_shows_count=5, commendations=1),  # 5 + 2
            month_row(policy, "m", 4, good_deeds=1, commendations=2),        # bonus, capped at 100
            month_row(policy, "m", 5, zero=True),                            # 0
        ])[list(ms.sheet.facts)].to_numpy(float)
        profile = np.full(5, ent)
        got = scoring.record_scores(scoring.indicator_points(facts, profile, ms.sheet), profile, ms)
        assert got.tolist() == pytest.approx([100, 100 * 92 / 95, 100 * 7 / 95, 100, 0])

    def test_through_evaluate_tables(self, policy):
        # One full month (100) and one empty month (0): M = 50.
        #   A: appraisal 50    → 40 + 10    = 50    → warning (exactly on the cut) → mentoring
        #   B: appraisal 49.95 → 40 + 9.99  = 49.99 → unqualified                 → handling
        #   C: one full month only, appraisal 50 → 80 + 10 = 90 → excellent (on the cut)
        #   D: appraisal 100   → 40 + 20    = 60    → basic
        members = [{"member_id": m, "branch_id": "X1", "category": "in_service", "appraisal": a}
                   for m, a in (("A", 50), ("B", 49.95), ("C", 50), ("D", 100))]
        months = [month_row(policy, m, 1) for m in "ABCD"]
        months += [month_row(policy, m, 2, zero=True) for m in "ABD"]
        r = evaluate(policy, [branch_row(policy)], members, months)
        m = r.members.set_index("member_id")
        assert m["periods"].tolist() == [2, 2, 1, 2]
        assert m["record"].tolist() == [50, 50, 100, 50]
        assert m["annual"].tolist() == pytest.approx([50, 49.99, 90, 60], abs=1e-9)
        assert m["grade"].tolist() == ["warning", "unqualified", "excellent", "basic"]
        assert m["mentoring"].tolist() == [True, False, False, False]
        assert m["handling"].tolist() == [False, True, False, False]
        assert r.grade_counts().to_dict() == {"excellent": 1, "qualified": 0, "basic": 1,
                                              "warning": 1, "unqualified": 1}
        # Monthly share 0.5: A 25 + 25 = 50, B 25 + 24.975 = 49.975, C 50 + 25 = 75, D 25 + 50 = 75.
        half = policy.update({"member.record_share": 0.5})
        m = evaluate(half, [branch_row(policy)], members, months).members
        assert m["annual"].tolist() == pytest.approx([50, 49.975, 75, 75], abs=1e-9)
        assert m["grade"].tolist() == ["warning", "unqualified", "qualified", "qualified"]

    def test_member_consequences(self, policy):
        # Records 45, 55, 65, 80, 95 with appraisal = record: unqualified, warning, basic, qualified, excellent.
        s = policy.scheme
        record = np.array([45.0, 55, 65, 80, 95])
        out = member_outcome(record, record, np.zeros(5, int), s.member, s,
                             veto_values=np.zeros((5, 0)))
        assert s.member.grades.id_of(out["grade"]).tolist() == ["unqualified", "warning", "basic", "qualified",
                                                                "excellent"]
        assert out["consequences"]["mentoring"].tolist() == [False, True, False, False, False]
        assert out["consequences"]["handling"].tolist() == [True, False, False, False, False]


# -- consequences and structure -------------------------------------------------------------
class TestConsequences:
    def test_branch_consequences(self, policy):
        weak = np.array([True, True, True, False])
        streaks = {"weak": rating.streak(weak, np.array([0, 1, 5, 4]))}
        out = branch_consequences(policy.scheme, np.zeros(4, np.int8), {"weak": weak}, streaks, {})
        assert out["talk"].tolist() == [True, True, True, False]
        assert out["reorganise"].tolist() == [False, True, True, False]
        assert streaks["weak"].tolist() == [1, 2, 6, 0]

    def test_two_year_rule_through_evaluate_tables(self, policy):
        weak = dict(survey=(0, 0, 5), **NO_INSTITUTION)                  # 45 → weak
        rows = [branch_row(policy, "W1", prev_weak=1, **weak),
                branch_row(policy, "W0", prev_weak=0, **weak),
                branch_row(policy, "OK", prev_weak=3),                    # fine this year
                branch_row(policy, "V1", prev_weak=1, secretary_in_post=0)]  # weak by veto
        b = evaluate(policy, rows).branches.set_index("branch_id")
        assert b["weak"].tolist() == [True, True, False, True]
        assert b["talk"].tolist() == [True, True, False, True]
        assert b["reorganise"].tolist() == [True, False, False, True]
        assert b["weak_streak"].tolist() == [2, 1, 0, 2]
        three = policy.update({"consequences.reorganise.when.years": 3})
        assert not evaluate(three, rows).branches["reorganise"].any()

    def test_consequence_counts(self, policy):
        weak = dict(survey=(0, 0, 5), **NO_INSTITUTION)                  # 45 → weak
        rows = [branch_row(policy, "W1", prev_weak=1, **weak), branch_row(policy, "W0", **weak),
                branch_row(policy, "OK")]
        counts = evaluate(policy, rows).consequence_counts()
        assert counts.to_dict() == {"talk": 2, "reorganise": 1}


class TestStructure:
    def test_required_level_at_each_threshold(self, policy):
        n = np.array([2, 3, 6, 7, 50, 51, 99, 100, 150])
        need = scoring.required_level(n, policy.scheme.structure)
        assert need["level"].tolist() == [0, 0, 0, 0, 0, 1, 1, 2, 2]
        assert need["committee"].tolist() == [False, False, False, True, True, True, True, True, True]
        assert need["below_minimum"].tolist() == [True] + [False] * 8

    def test_thresholds_follow_the_policy(self, policy):
        p = policy.update({"structure.levels.general_branch.from": 40})
        assert scoring.required_level(np.array([39, 40]), p.scheme.structure)["level"].tolist() == [0, 1]

    def test_upgrade_to_column(self, policy):
        cases = [("branch", 50, ""), ("branch", 51, "general_branch"),
                 ("branch", 100, "party_committee"), ("general_branch", 60, ""),
                 ("general_branch", 100, "party_committee"), ("party_committee", 30, ""),
                 ("branch", 2, "")]
        rows = [branch_row(policy, f"S{i}", level=lvl, n_members=n) for i, (lvl, n, _) in enumerate(cases)]
        b = evaluate(policy, rows).branches
        assert b["upgrade_to"].tolist() == [c[2] for c in cases]
        assert b["required_level"].tolist() == ["branch", "general_branch", "party_committee",
                                                "general_branch", "party_committee", "branch", "branch"]
        assert b["below_minimum"].tolist() == [False] * 6 + [True]
        up = bs.Result(b, None, policy).upgrade_counts()["count"]
        assert up.to_dict() == {"upgrade_party_committee": 2, "upgrade_general_branch": 1}


# -- invariants -------------------------------------------------------------------------------------
def perturbed_branches(policy, base: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """n valid branches: random example rows with every fact and survey count perturbed."""
    inds = policy.branch_indicators
    df = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True).copy()
    df["branch_id"] = [f"R{i:04d}" for i in range(n)]
    df["type"] = rng.choice(policy.branch_types, n)
    for ind in inds.values():
        f = ind["fact"]
        if ind["rule"] == "binary":
            df[f] = (rng.random(n) < 0.85).astype(float)
        elif ind["rule"] == "proportion":
            df[f] = np.clip(df[f] + rng.normal(0, 0.3, n), 0, 1)
        else:
            df[f] = np.clip(np.round(df[f] * rng.uniform(0, 1.6, n) + rng.integers(-2, 3, n)),
                            *fact_range(ind))
    for c in SURVEY:
        df[c] = rng.integers(0, 30, n)
    df.loc[df[SURVEY].sum(axis=1) == 0, "survey_satisfied"] = 1
    df["n_members"] = rng.integers(1, 200, n)
    assert set(policy.scheme.branch.sheet.facts) <= set(df.columns)
    return df


def _arrays(policy, df):
    bsch = policy.scheme.branch
    facts = df[list(bsch.sheet.facts)].to_numpy(float)
    types = pd.Categorical(df["type"], categories=bsch.types).codes
    return facts, types, df[SURVEY].to_numpy(float)


@pytest.fixture(scope="module")
def population(policy):
    base = pd.read_csv(EXAMPLES / "branches.csv")
    rng = np.random.default_rng(20240601)
    return pd.concat([base, perturbed_branches(policy, base, rng, 400)], ignore_index=True)


class TestInvariants:
    def test_raising_any_fact_never_lowers_score_or_level(self, policy, population):
        facts, types, survey = _arrays(policy, population)
        before = outcome_arrays(policy, facts, types, survey)
        rng = np.random.default_rng(7)
        checked = 0
        for j, fact in enumerate(policy.scheme.branch.sheet.facts):
            for delta in (0.01, 0.5, 1.0, rng.uniform(0, 20, len(facts))):
                raised = facts.copy()
                raised[:, j] += delta
                after = outcome_arrays(policy, raised, types, survey)
                assert (after["score"] >= before["score"] - 1e-9).all(), fact
                assert (after["level"] >= before["level"]).all(), fact
                assert not (after["weak"] & ~before["weak"]).any(), fact
                assert not (after["vetoes"] & ~before["vetoes"]).any(), fact
                checked += 1
        assert checked == 4 * policy.scheme.branch.sheet.k

    def test_some_raise_does_change_scores(self, policy, population):
        # Guard for the test above: the perturbed population is not all at full marks.
        facts, types, survey = _arrays(policy, population)
        before = outcome_arrays(policy, facts, types, survey)["score"]
        assert (outcome_arrays(policy, facts + 1, types, survey)["score"] > before).sum() > 100

    def test_raising_facts_in_the_example_tables(self, policy, examples):
        # Through evaluate_tables, staying inside the allowed ranges (binary and shares ≤ 1).
        b = examples["branches"]
        before = bs.evaluate_tables(policy, b).branches
        levels = policy.scheme.branch.levels
        for ind in policy.branch_indicators.values():
            f = ind["fact"]
            raised = b.copy()
            cap = fact_range(ind)[1]          # the indicator's plausible range (binary and shares ≤ 1)
            raised[f] = np.minimum(raised[f] + 1, cap)
            after = bs.evaluate_tables(policy, raised).branches
            assert (after["score"] >= before["score"] - 1e-9).all(), f
            assert (after["rating"].map(levels.code) >= before["rating"].map(levels.code)).all(), f

    def test_raising_satisfied_count_never_lowers_the_score(self, policy, population):
        facts, types, survey = _arrays(policy, population)
        before = outcome_arrays(policy, facts, types, survey)
        for extra in (1, 5, 100):
            more = survey.copy()
            more[:, 0] += extra
            after = outcome_arrays(policy, facts, types, more)
            assert (after["score"] >= before["score"] - 1e-9).all()
            assert (after["level"] >= before["level"]).all()
        # Moving one dissatisfied answer to satisfied raises the score where there is one.
        moved = survey.copy()
        has = moved[:, 2] > 0
        moved[has, 2] -= 1
        moved[has, 0] += 1
        after = outcome_arrays(policy, facts, types, moved)["score"]
        assert (after[has] > before["score"][has]).all()

    def test_scores_stay_in_0_100_for_extreme_facts(self, policy):
        bsch = policy.scheme.branch
        rng = np.random.default_rng(99)
        n, k = 2000, bsch.sheet.k
        menu = np.array([-1e9, -3, -0.5, 0, 0.3, 0.999, 1, 2, 12, 50, 1e9])
        facts = np.where(rng.random((n, k)) < 0.5, rng.choice(menu, (n, k)), rng.uniform(-5, 40, (n, k)))
        facts[:2] = [[1e12] * k, [-1e12] * k]                    # all huge, all hugely negative
        survey = rng.integers(0, 10**6, (n, 3)).astype(float)
        survey[:, 0] += 1
        survey[0] = [5, 0, 0]
        survey[1] = [0, 0, 5]
        types = rng.integers(0, len(bsch.types), n)
        out = outcome_arrays(policy, facts, types, survey)
        assert np.isfinite(out["score"]).all()
        assert (out["score"] >= 0).all() and (out["score"] <= 100).all()
        assert out["score"][0] == 100.0
        assert set(np.unique(out["rating"])) <= set(policy.levels)

    def test_level_counts_add_up_to_the_branches(self, policy, population, examples):
        for table in (examples["branches"], population):
            r = bs.evaluate_tables(policy, table)
            counts = r.level_counts()
            assert counts.drop(index="weak")["count"].sum() == len(table)
            assert counts.loc["weak", "count"] == r.branches["weak"].sum()
            assert counts.drop(index="weak")["share"].sum() == pytest.approx(1)

    def test_level_counts_with_more_levels(self, policy, population):
        d = policy.to_dict()
        levels = d["branch"]["levels"]
        floor = levels.pop("no_star")
        levels.update({"two_star": {"label": "二星級"}, "one_star": {"label": "一星級"}, "no_star": floor})
        d["branch"]["rating"]["cuts"]["one_star"] = {"value": 40, "assumption": "test"}
        d["branch"]["rating"]["cuts"]["two_star"] = {"value": 55, "assumption": "test"}
        r = bs.evaluate_tables(bs.Policy(d), population)
        counts = r.level_counts()["count"]
        assert list(counts.index) == ["five_star", "four_star", "three_star", "two_star", "one_star",
                                      "no_star", "weak"]
        assert counts.drop("weak").sum() == len(population)
        assert counts["two_star"] > 0 and counts["one_star"] > 0

    def test_level_counts_add_up_when_a_veto_caps_below_the_cuts(self, policy, examples):
        # A veto's cap must be a level of the policy.
        with pytest.raises(bs.PolicyError, match="meetings_neglected.cap"):
            policy.update({"branch.vetoes.meetings_neglected.cap": "two_star"})
        reform = policy.update({"branch.vetoes.meetings_neglected.cap": "no_star"})
        b = examples["branches"]
        b["committee_meetings"] = 5                    # the veto fires everywhere
        r = bs.evaluate_tables(reform, b)
        assert (r.branches["rating"] == "no_star").all()
        counts = r.level_counts()
        assert counts.loc["no_star", "count"] == len(b)
        assert counts.drop(index="weak")["count"].sum() == len(b)

    def test_evaluation_is_deterministic(self, policy, population):
        a = bs.evaluate_tables(policy, population).branches
        b = bs.evaluate_tables(policy, population.sample(frac=1, random_state=3)).branches
        pd.testing.assert_frame_equal(a.set_index("branch_id").sort_index(),
                                      b.set_index("branch_id").sort_index())
