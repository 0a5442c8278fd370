"""explain(): every rule step for one unit, for every shipped scheme; the command line.

The checks are the reader's own: each adding line's numbers are recomputed
from the rule as printed and the unit's facts, the lines must add up to the
score :func:`branchsim.evaluate` computes, and the level, designations,
consequences and grade shown must be evaluate's.
"""
from __future__ import annotations

import functools
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import DataError
from branchsim._explain_lines import num
from branchsim._explain_text import adds_note, cells, steps_text
from branchsim.cli import build_parser, main
from conftest import EXAMPLES
from shipped import SCHEMES, assert_no_scheme_names, load

@functools.lru_cache(maxsize=None)
def city(name: str, n: int = 16):
    """A generated city of the scheme small enough to explain every branch and member, and its result."""
    policy = load(name)
    pop = bs.generate(policy, seed=2, n_branches=n)
    return pop, bs.evaluate(pop, policy)


@pytest.fixture(scope="module")
def result(policy):
    t = {k: pd.read_csv(EXAMPLES / f"{k}.csv") for k in ("branches", "members", "member_months")}
    return bs.evaluate_tables(policy, t["branches"], t["members"], t["member_months"])


@pytest.fixture(scope="module")
def example_pop(policy):
    return bs.load_population(EXAMPLES, policy=policy)


@pytest.fixture(scope="module")
def small_city(policy):
    return bs.generate(policy, seed=2, n_branches=6)


def changed(pop, branch_id=None, member=None, **facts):
    """A copy of ``pop`` with some facts of one branch (or member row, or member-period rows) set."""
    b, m, mm = pop.branches.copy(), None if pop.members is None else pop.members.copy(), \
        None if pop.member_months is None else pop.member_months.copy()
    for col, value in facts.items():
        if branch_id is not None:
            b.loc[b["branch_id"] == branch_id, col] = value
        elif col in m.columns:
            m.loc[m["member_id"] == member, col] = value
        else:
            rows = mm["member_id"] == member
            mm.loc[rows, col] = value if np.isscalar(value) else np.asarray(value)[: rows.sum()]
    return bs.Population(b, m, mm, source="tables")


# -- reading what explain prints ------------------------------------------------------------------
_INDICATOR = re.compile(r"^(?:(?:FIRES: \w+ gets 0 points|does not fire); )?(?P<pts>-?[\d.]+) points(?P<mean> a period on average)? \[(?:mean over periods of )?"
                        r"(?P<rule>.+)\]; adds (?P<adds>-?[\d.]+) = (?P<expr>.+)$")
_PATHS = re.compile(r"([A-Za-z0-9_.]+)=")


@functools.lru_cache(maxsize=None)
def _compiled(expr: str):
    return compile(expr.replace("×", "*"), "<shown>", "eval")


def _value(expr: str, fact: float | None = None) -> float:
    """A rule or sum as printed (``×`` for times), evaluated: the reader's own check of the arithmetic."""
    env = {"max": max, "min": min, "clip": lambda x, lo, hi: min(max(x, lo), hi), "fact": fact}
    return eval(_compiled(expr), {"__builtins__": {}}, env)


def rows(steps, step: str) -> pd.DataFrame:
    return steps[steps["step"] == step]


def row_of(steps, step: str, item_start: str) -> pd.Series:
    hit = steps[(steps["step"] == step) & steps["item"].str.startswith(item_start)]
    assert len(hit) == 1, (step, item_start, hit)
    return hit.iloc[0]


def check_lines(steps: pd.DataFrame, total: float, facts) -> set:
    """Every adding line follows from its own formula; the lines add up to ``total`` (to 1e-9).

    ``facts(name)`` gives the values the rule is applied to: one number, or
    a member's period values (the rule is applied to each and averaged).
    Returns the kinds of adding lines seen (``indicator (deduction)``, ``cap``, ...).
    """
    adding = steps[steps["adds"].notna()]
    assert adding["adds"].sum() == pytest.approx(total, abs=1e-9)
    for row in steps.itertuples(index=False):
        if not row.step.startswith("indicator"):
            if row.adds == row.adds:                         # an adding line: its sum as printed
                shown, expr = row.result.split(" = ", 1)
                assert float(shown) == pytest.approx(row.adds, abs=0.005 + 1e-9), row.result
                if "mean over the periods" not in expr:
                    assert _value(expr.split(" (rate")[0]) == pytest.approx(row.adds, abs=0.02), row.result
            continue
        m = _INDICATOR.match(row.result)
        assert m, row.result
        assert float(m["adds"]) == pytest.approx(row.adds, abs=0.005 + 1e-9)
        assert _value(m["expr"]) == pytest.approx(row.adds, abs=0.01)     # rounded points in the sum
        rule = m["rule"]
        if "zeroed by" in rule or rule.startswith(("place ", "FIRES", "does not")) or " gets 0 points" in rule:
            continue                                                         # not an expression in fact
        fact = row.input.split()[1]
        year = re.search(r"over the year (\S+) ", row.input)
        values = [float(year[1])] if year else np.atleast_1d(facts(fact))
        expected = np.mean([_value(rule, float(v)) for v in values])
        assert float(m["pts"]) == pytest.approx(expected, abs=0.005 + 1e-6), (row.item, row.result)
        assert bool(m["mean"]) == (len(values) > 1)
    return set(adding["step"])


def check_branch(steps, policy, ev: pd.Series, pop) -> set:
    """The branch's lines add up to evaluate's score; the level, designations, consequences are evaluate's."""
    b = pop.branches.set_index("branch_id").loc[ev.name]
    kinds = check_lines(steps, ev["score"], lambda f: b[f])
    assert steps.attrs["score"] == pytest.approx(ev["score"], abs=1e-9)
    assert rows(steps, "score")["result"].iloc[0] == f"{ev['score']:.2f}"
    assert rows(steps, "level")["result"].iloc[0].split()[0] == ev["rating"] == steps.attrs["level"]
    scheme = policy.scheme
    for d in scheme.branch.designations:
        shown = row_of(steps, "designation", f"{d.id}:")["result"]
        assert shown.startswith("designated") == bool(ev[d.id]), (ev.name, d.id)
    for c in scheme.consequences_of("branch"):
        assert (row_of(steps, "consequence", f"{c.id}:")["result"] == "follows") == bool(ev[c.id]), c.id
    fired = set(filter(None, str(ev["vetoes"]).split(",")))
    for vid in scheme.branch.vetoes.ids:
        assert row_of(steps, "veto", f"{vid}:")["result"].startswith("FIRES") == (vid in fired), vid
    return kinds


def check_member(steps, policy, ev: pd.Series, pop) -> set:
    mm = pop.member_months
    mine = mm[mm["member_id"] == ev.name].sort_values("month", kind="stable")
    kinds = check_lines(steps, ev["annual"], lambda f: mine[f].to_numpy(float))
    grade = None if pd.isna(ev["grade"]) else ev["grade"]
    assert steps.attrs["grade"] == grade
    assert rows(steps, "grade")["result"].iloc[0].split()[0] == (grade or "not")
    assert float(rows(steps, "record")["result"].iloc[0].split()[0]) == pytest.approx(ev["record"], abs=0.005)
    assert float(rows(steps, "annual score")["result"].iloc[0].split()[0]) == pytest.approx(ev["annual"], abs=0.005)
    annual = rows(steps, "annual score")["result"].iloc[0]
    assert _value(annual.split(" = ")[1]) == pytest.approx(ev["annual"], abs=0.01)
    for c in policy.scheme.consequences_of("member"):
        assert (row_of(steps, "consequence", f"{c.id}:")["result"] == "follows") == bool(ev[c.id]), c.id
    return kinds


def rule_forms(sheet) -> set:
    from branchsim._explain_lines import RULES
    return {f"indicator ({RULES[int(k)]})" for k in np.unique(sheet.kind)}


# -- every unit of every scheme ---------------------------------------------------------------------
class TestEveryUnit:
    """The lines shown add up to the engine's score, and the outcome shown is the engine's."""

    @pytest.mark.parametrize("name", SCHEMES)
    def test_every_branch_of_a_generated_city(self, name):
        policy = load(name)
        pop, res = city(name)
        expected = res.branches.set_index("branch_id")
        kinds = set()
        for branch_id in pop.branches["branch_id"]:
            steps = bs.explain(pop, policy, branch_id=branch_id)
            kinds |= check_branch(steps, policy, expected.loc[branch_id], pop)
        bs_ = policy.scheme.branch
        assert rule_forms(bs_.sheet) <= kinds               # every rule form of the scheme was explained
        assert ("survey" in kinds) == bs_.survey
        assert ("base" in kinds) == (bs_.form == "points")

    @pytest.mark.parametrize("name", [s for s in SCHEMES if load(s).has_members])
    def test_every_member_of_a_generated_city(self, name):
        policy = load(name)
        pop, res = city(name, 8)
        expected = res.members.set_index("member_id")
        kinds = set()
        for member_id in pop.members["member_id"]:
            kinds |= check_member(bs.explain(pop, policy, member_id=member_id), policy, expected.loc[member_id], pop)
        assert rule_forms(policy.scheme.member.sheet) <= kinds and "appraisal" in kinds

    @pytest.mark.parametrize("name", ["baseline", "kmeans_by_type"])
    def test_the_example_tables(self, name):
        policy = load(name)
        pop = bs.load_population(EXAMPLES, policy=policy)
        res = bs.evaluate(pop, policy)
        b, m = res.branches.set_index("branch_id"), res.members.set_index("member_id")
        kinds = set()
        for branch_id in pop.branches["branch_id"]:
            kinds |= check_branch(bs.explain(pop, policy, branch_id=branch_id), policy, b.loc[branch_id], pop)
        assert "cap" in kinds                                 # a dimension's fraction is capped somewhere
        for member_id in pop.members["member_id"]:
            kinds |= check_member(bs.explain(pop, policy, member_id=member_id), policy, m.loc[member_id], pop)

    @pytest.mark.parametrize("design", ["quota", "cuts_and_quota", "hierarchical"])
    def test_other_designs(self, design):
        base = load("baseline")
        quotas = {lv: {"value": q, "assumption": "a test"} for lv, q in zip(base.levels[:-1], (0.05, 0.2, 0.3))}
        policy = base.update({"branch.rating.design": design, **({"branch.rating.quotas": quotas}
                                                                 if "quota" in design else {})})
        pop, _ = city("baseline")
        expected = bs.evaluate(pop, policy).branches.set_index("branch_id")
        for branch_id in pop.branches["branch_id"]:
            check_branch(bs.explain(pop, policy, branch_id=branch_id), policy, expected.loc[branch_id], pop)

    def test_a_relative_member_design(self):
        base = load("member_points")
        quotas = {g: {"value": q, "assumption": "a test"} for g, q in zip(base.grades[:-1], (0.1, 0.4, 0.3))}
        policy = base.update({"member.rating.design": "quota", "member.rating.quotas": quotas})
        pop, _ = city("member_points", 6)
        expected = bs.evaluate(pop, policy).members.set_index("member_id")
        for member_id in pop.members["member_id"]:
            steps = bs.explain(pop, policy, member_id=member_id)
            check_member(steps, policy, expected.loc[member_id], pop)
            if steps.attrs["grade"] is not None:
                assert "(realised)" in rows(steps, "cut points")["result"].iloc[0] or \
                    "realised" in rows(steps, "cut points")["input"].iloc[0]


# -- rule forms, caps and clips ---------------------------------------------------------------------
class TestRuleForms:
    def test_zeroing_shows_which_fact_zeroed_which_item(self):
        policy = load("star_quota")
        pop, _ = city("star_quota")
        bid = pop.branches["branch_id"].iloc[0]
        pop = changed(pop, bid, ad_hoc_motions=1, decisions_unconsulted=0)
        steps = bs.explain(pop, policy, branch_id=bid)
        check_branch(steps, policy, bs.evaluate(pop, policy).branches.set_index("branch_id").loc[bid], pop)
        target = row_of(steps, "indicator (per_occurrence)", "decisions:")
        assert target["result"].startswith("0 points [max(0, 5 - 1 × max(0, fact)); zeroed by ad_hoc_motion "
                                           "(fact ad_hoc_motions = 1)]")
        assert row_of(steps, "indicator (zeroing)", "ad_hoc_motion:")["result"].startswith(
            "FIRES: decisions gets 0 points; 0 points [decisions gets 0 points if fact >= 1]")

    def test_rank_shows_the_place_and_places_beyond_the_listed_earn_otherwise(self):
        policy = load("member_points")
        pop, res = city("member_points", 40)
        b = pop.branches
        group = b["type"].value_counts().index[0]                 # the largest type: more than 5 places
        assert (b["type"] == group).sum() > 6
        places = policy.scheme.branch.sheet.places[0, policy.scheme.branch.sheet.ids.index("service_rank")]
        seen = set()
        for row in b[b["type"] == group].itertuples(index=False):
            steps = bs.explain(pop, policy, branch_id=row.branch_id)
            line = row_of(steps, "indicator (rank)", "service_rank:")
            place = int(re.search(r"\[place (\d+) of (\d+) within type " + group, line["result"])[1])
            better = (b.loc[b["type"] == group, "volunteer_hours_per_member"] > row.volunteer_hours_per_member).sum()
            assert place == 1 + better
            shown = float(line["result"].split()[0])
            assert shown == (places[place - 1] if place <= 5 else policy["branch.indicators.service_rank.otherwise"])
            cited = f"branch.indicators.service_rank.{f'places.{place}' if place <= 5 else 'otherwise'}="
            assert cited in line["parameters"]
            seen.add(place > 5)
        assert seen == {True, False}

    def test_points_form_clip_to_the_floor(self):
        policy = load("star_quota")
        pop, _ = city("star_quota")
        bid = pop.branches["branch_id"].iloc[1]
        low = {f: 0 for f in ("committee_set_up", "committee_meetings", "study_sessions", "theme_party_days",
                              "admission_procedures", "dues_on_time_share", "org_life_meeting_held",
                              "pioneer_post_share", "volunteer_activities", "brand_project", "governance_matters",
                              "honours_received", "experiences_promoted")}
        pop = changed(pop, bid, decisions_unconsulted=50, documents_missing=60, circulars_criticised=10,
                      inspection_problems=20, **low)
        steps = bs.explain(pop, policy, branch_id=bid)
        ev = bs.evaluate(pop, policy).branches.set_index("branch_id").loc[bid]
        check_branch(steps, policy, ev, pop)
        clip = rows(steps, "clip").iloc[0]
        t = policy.scheme.branch.types.index(pop.branches.set_index("branch_id").loc[bid, "type"])
        w = policy.scheme.branch.weights[t, 0]                    # the sheet's share of the score
        sheet = sum(float(a) for a in steps.loc[steps["step"].str.startswith("indicator"), "adds"]) / w
        assert clip["item"] == "the sheet's floor: 0" and clip["adds"] == pytest.approx(-w * sheet)
        assert sheet < 0
        assert "branch.score.floor=0" in clip["parameters"]

    def test_points_form_dimension_cap_and_bonus_cap(self):
        policy = load("star_quota")
        pop, _ = city("star_quota")
        b = pop.branches
        bid = b.loc[b["type"] == "village", "branch_id"].iloc[0]
        pop = changed(pop, bid, pioneer_post_share=1, volunteer_activities=10, brand_project=1, governance_matters=4,
                      honours_received=2, experiences_promoted=3)
        steps = bs.explain(pop, policy, branch_id=bid)
        check_branch(steps, policy, bs.evaluate(pop, policy).branches.set_index("branch_id").loc[bid], pop)
        w = 1 - policy["branch.types.village.satisfaction_share"]
        cap = row_of(steps, "cap", "striving:")
        assert cap["adds"] == pytest.approx(w * (30 - 34)) and "branch.dimensions.striving.cap=30" in cap["parameters"]
        bonus = row_of(steps, "bonus cap", "the sheet's bonus")
        assert bonus["adds"] == pytest.approx(w * (10 - 12)) and "branch.score.bonus_cap=10" in bonus["parameters"]
        survey = rows(steps, "survey").iloc[0]
        assert "branch.types.village.satisfaction_share=0.3" in survey["parameters"]     # the type's own share

    def test_shares_form_a_bonus_above_the_dimension_maximum_is_a_cap_line(self, policy, example_pop):
        # B001 (a village) earns more role points than the dimension's maximum, bonus included: the cap
        # line gives back exactly what the extra points added, and the dimension is at its full share.
        sheet = policy.scheme.branch.sheet
        t, g = policy.scheme.branch.types.index("village"), sheet.group_ids.index("role")
        top, share = sheet.group_max[t, g], policy.scheme.branch.weights[t, g]
        b = example_pop.branches.iloc[[0]]
        pts = bs.scoring.indicator_points(b[list(sheet.facts)].to_numpy(float), [t], sheet)
        got = pts[0, sheet.group == g].sum()
        assert b["branch_id"].iloc[0] == "B001" and got > top            # guard: the cap binds
        steps = bs.explain(example_pop, policy, branch_id="B001")
        cap = row_of(steps, "cap", "role:")
        assert cap["adds"] == pytest.approx(-100 * share * (got - top) / top)
        assert row_of(steps, "dimension", "role:")["result"] == f"{100 * share:.2f} = 100 × {share:.6g} × 1"

    def test_a_type_with_its_own_survey_share(self, policy, example_pop):
        doc = policy.to_dict()
        doc["branch"]["types"]["village"]["satisfaction_share"] = {"value": 0.5, "assumption": "a test"}
        village = bs.Policy(doc)
        expected = bs.evaluate(example_pop, village).branches.set_index("branch_id")
        for branch_id in ("B001", "B003"):            # a village and an urban community
            steps = bs.explain(example_pop, village, branch_id=branch_id)
            check_branch(steps, village, expected.loc[branch_id], example_pop)
            own = "branch.types.village.satisfaction_share"
            assert (own in rows(steps, "survey")["parameters"].iloc[0]) == (branch_id == "B001")
            assert (own in rows(steps, "dimension")["parameters"].iloc[0]) == (branch_id == "B001")

    def test_a_reform(self, policy, example_pop):
        reform = policy.update({"branch.satisfaction_share": 0.3, "branch.survey.answer_values.basic": 0.5})
        expected = bs.evaluate(example_pop, reform).branches.set_index("branch_id")
        for branch_id in example_pop.branches["branch_id"]:
            steps = bs.explain(example_pop, reform, branch_id=branch_id)
            check_branch(steps, reform, expected.loc[branch_id], example_pop)
            survey = rows(steps, "survey")["parameters"].iloc[0]
            assert "branch.satisfaction_share=0.3" in survey and "answer_values.basic=0.5" in survey


# -- rating, direct grading, vetoes, designations -------------------------------------------------
class TestRating:
    @pytest.mark.parametrize("name", SCHEMES)
    def test_the_cut_points_shown_are_those_used(self, name):
        policy = load(name)
        pop, res = city(name)
        r = policy.scheme.branch.rating
        cuts = res.cut_points.set_index(["group", "level"])["cut"]
        for row in res.branches.itertuples(index=False):
            steps = bs.explain(pop, policy, branch_id=row.branch_id)
            line = rows(steps, "cut points").iloc[0]
            group = row.type if r.design == "cuts" or r.peer_groups == "type" else "all"
            for lv in policy.levels[:-1]:
                assert f"{lv} {cuts[(group, lv)]:.2f}" in line["result"], (lv, line["result"])
            if r.design == "cuts":
                assert all(f"rating.cuts.{lv}=" in line["parameters"] for lv in policy.levels[:-1])
            else:
                assert line["result"].endswith("(realised)")

    def test_a_type_override_of_a_cut_is_cited(self):
        policy = load("member_points")
        pop, _ = city("member_points")
        village = pop.branches.loc[pop.branches["type"] == "village", "branch_id"].iloc[0]
        other = pop.branches.loc[pop.branches["type"] != "village", "branch_id"].iloc[0]
        top = policy.levels[0]
        own = f"branch.types.village.rating.cuts.{top}={policy[f'branch.types.village.rating.cuts.{top}']:g}"
        assert own in rows(bs.explain(pop, policy, branch_id=village), "cut points")["parameters"].iloc[0]
        assert own not in rows(bs.explain(pop, policy, branch_id=other), "cut points")["parameters"].iloc[0]

    def test_quota_place_and_counts(self):
        policy = load("star_quota")
        pop, res = city("star_quota")
        n = len(pop.branches)
        scores = res.branches["score"].to_numpy()
        for row in res.branches.itertuples(index=False):
            steps = bs.explain(pop, policy, branch_id=row.branch_id)
            assert f"place {1 + (scores > row.score).sum()} of {n} by score" in \
                rows(steps, "design level")["input"].iloc[0]
        how = rows(steps, "cut points")["input"].iloc[0]
        share = 0.0
        for lv in policy.levels[:-1]:
            share += policy[f"branch.rating.quotas.{lv}"]
            assert f"{lv} the best {int(np.floor(n * share + 1e-9))} = floor({n} × {share:g})" in how

    def test_direct_grading_and_the_most_severe_veto(self):
        policy = load("star_quota")
        pop, _ = city("star_quota")
        bid = pop.branches["branch_id"].iloc[2]
        honoured = changed(pop, bid, district_honour=1, major_violation=0, secretary_vacant_months=0,
                           org_life_meeting_held=1)
        steps = bs.explain(honoured, policy, branch_id=bid)
        check_branch(steps, policy, bs.evaluate(honoured, policy).branches.set_index("branch_id").loc[bid], honoured)
        assert row_of(steps, "direct grading", "district_honour")["result"].startswith(f"FIRES: {policy.levels[0]}")
        assert steps.attrs["level"] == policy.levels[0]
        both = changed(honoured, bid, major_violation=1, org_life_meeting_held=0)     # force the floor, cap below top
        steps = bs.explain(both, policy, branch_id=bid)
        check_branch(steps, policy, bs.evaluate(both, policy).branches.set_index("branch_id").loc[bid], both)
        level = rows(steps, "level").iloc[0]
        assert level["input"].endswith("the most severe wins (major_violation)")
        assert "org_life_missed →" in level["input"] and steps.attrs["level"] == policy.levels[-1]

    def test_a_criterion_over_years(self):
        policy = load("star_quota")
        pop, _ = city("star_quota")
        bid = pop.branches["branch_id"].iloc[3]
        pop = changed(pop, bid, major_violation=1, prev_long_unrated=2)              # unrated a third year
        steps = bs.explain(pop, policy, branch_id=bid)
        ev = bs.evaluate(pop, policy).branches.set_index("branch_id").loc[bid]
        check_branch(steps, policy, ev, pop)
        line = row_of(steps, "criterion", "weak.long_unrated")
        assert line["result"] == "holds; 2 year(s) just before → 3 in a row of the 3 needed"
        assert "weak.criteria.long_unrated.years=3" in line["parameters"]
        assert "long_unrated" in row_of(steps, "designation", "weak:")["result"]

    def test_last_place_within_the_type(self):
        policy = load("member_points")
        pop, res = city("member_points")
        b = res.branches
        for t, group in b.groupby("type"):
            lowest = group.loc[group["score"].idxmin(), "branch_id"]
            line = row_of(bs.explain(pop, policy, branch_id=lowest), "criterion", "weak.last_place")
            assert line["result"] == "holds" and f"within type {t} ({len(group)} branches)" in line["input"]

    def test_reorganise_after_two_years(self, policy, example_pop):
        # B004 is weak and was weak the year before: two in a row → reorganise.
        steps = bs.explain(example_pop, policy, branch_id="B004")
        assert row_of(steps, "consequence", "reorganise:")["result"] == "follows"
        assert "consequences.reorganise.when.years=2" in row_of(steps, "consequence", "reorganise:")["parameters"]


# -- members -------------------------------------------------------------------------------------------
class TestMembers:
    def test_an_exempt_member_is_not_graded(self):
        policy = load("member_points")
        pop, res = city("member_points", 8)
        exempt = res.members.loc[res.members["category"] == "special", "member_id"].iloc[0]
        steps = bs.explain(pop, policy, member_id=exempt)
        grade = rows(steps, "grade").iloc[0]
        assert grade["result"] == "not graded (exempt class)" and grade["parameters"] == \
            "member.classes.special.exempt=true"
        assert steps.attrs["grade"] is None and rows(steps, "consequence")["result"].eq("does not follow").all()

    def test_member_vetoes(self):
        policy = load("member_points")
        pop, _ = city("member_points", 8)
        m = pop.members
        who = m.loc[m["category"] == "ordinary", "member_id"].iloc[0]
        pop = changed(pop, member=who, illegal_organisation=1, dues_paid=[1, 0, 1, 1])
        steps = bs.explain(pop, policy, member_id=who)
        check_member(steps, policy, bs.evaluate(pop, policy).members.set_index("member_id").loc[who], pop)
        assert row_of(steps, "veto", "illegal_organisation:")["result"] == "FIRES: forces unqualified"
        dues = row_of(steps, "veto", "dues_missed:")
        assert dues["input"].startswith("fact dues_paid at its lowest over the 4 periods = 0")
        assert dues["result"].startswith("FIRES: caps the grade at qualified")
        why = rows(steps, "grade")["input"].iloc[0]
        g = policy.grades
        design = why.split(";")[0].split()[1]
        capped = g[max(g.index(design), g.index("qualified"))]              # the cap keeps a lower grade
        assert f"vetoes fired: illegal_organisation → {g[-1]}, dues_missed → {capped}" in why
        assert why.endswith("the most severe wins (illegal_organisation" + (", dues_missed)" if capped == g[-1]
                                                                              else ")"))
        assert steps.attrs["grade"] == policy.grades[-1]

    def test_annual_caps_of_a_sum_accrual(self):
        policy = load("member_points")
        pop, _ = city("member_points", 8)
        who = pop.members.loc[pop.members["category"] == "ordinary", "member_id"].iloc[0]
        pop = changed(pop, member=who, study_sessions_attended=[2, 3, 4, 1], good_deeds=[3, 0, 0, 2],
                      commendations=[1, 0, 1, 0])
        steps = bs.explain(pop, policy, member_id=who)
        check_member(steps, policy, bs.evaluate(pop, policy).members.set_index("member_id").loc[who], pop)
        line = row_of(steps, "indicator (per_event)", "study_sessions:")
        assert line["input"].endswith("over the year 10 (the sum)")
        assert line["result"].startswith("12 points [min(12, 2 × max(0, fact))]")      # 20 capped at 12 a year
        bonus = row_of(steps, "bonus cap", "bonus points count at most 10")
        top = policy.scheme.member.sheet.group_max[0].sum()
        assert bonus["adds"] == pytest.approx(0.8 * 100 * (10 - 16) / top)

    def test_a_class_override_is_cited(self):
        policy = load("member_points")
        pop, _ = city("member_points", 8)
        mobile = pop.members.loc[pop.members["category"] == "mobile", "member_id"].iloc[0]
        line = row_of(bs.explain(pop, policy, member_id=mobile), "indicator (per_event)", "three_meetings:")
        assert "member.classes.mobile.indicators.three_meetings.points=6" in line["parameters"]
        assert "[mean over" not in line["result"] and "min(6, 3 × max(0, fact))" in line["result"]

    def test_one_period(self, policy, example_pop):
        # M0001's March earns more than the maximum: the cap line takes it back to exactly 100.
        steps = bs.explain(example_pop, policy, member_id="M0001", month=3)
        mm = example_pop.member_months
        row = mm[(mm["member_id"] == "M0001") & (mm["month"] == 3)]
        ms = policy.scheme.member
        p = np.array([ms.types.index("village")])
        score = bs.scoring.record_scores(bs.scoring.indicator_points(row[list(ms.sheet.facts)].to_numpy(float), p,
                                                                     ms.sheet), p, ms)[0]
        assert score == 100.0 and steps.attrs["score"] == 100.0
        assert check_lines(steps, score, lambda f: row[f].iloc[0]) >= {"cap"}
        assert rows(steps, "period score")["result"].iloc[0] == "100.00"

    def test_a_month_of_a_sum_accrual_is_refused(self):
        pop, _ = city("member_points", 8)
        with pytest.raises(DataError, match="accrual: sum"):
            bs.explain(pop, load("member_points"), member_id=pop.members["member_id"].iloc[0], month=2)

    def test_a_branch_only_scheme_has_no_member_to_explain(self):
        pop, _ = city("star_quota")
        with pytest.raises(DataError, match="rates branches only"):
            bs.explain(pop, load("star_quota"), member_id="M00000001")

    def test_periods_that_vary_are_shown_each(self, policy, example_pop):
        # study_hours differs month to month: points are the mean of each month's rule, not the rule of the mean.
        steps = bs.explain(example_pop, policy, member_id="M0001")
        line = row_of(steps, "indicator (deduction)", "theory_study")
        hours = example_pop.member_months.query("member_id == 'M0001'").sort_values("month")["study_hours"]
        assert line["input"] == "fact study_hours by period: " + ", ".join(
            f"{mo}: {h:g}" for mo, h in zip(range(1, 13), hours))
        by_rule = np.mean([max(0, 2 - 0.5 * max(0, 4 - h)) for h in hours])
        assert line["result"].startswith(f"{round(by_rule, 2):g} points a period on average")
        assert round(by_rule, 2) != round(max(0, 2 - 0.5 * max(0, 4 - hours.mean())), 2)   # guard


# -- parameters and provenance ------------------------------------------------------------------------
class TestProvenance:
    @pytest.mark.parametrize("name", SCHEMES)
    def test_each_parameter_is_cited_with_its_value_and_provenance(self, name):
        policy = load(name)
        pop, _ = city(name, 8)
        units = [{"branch_id": b} for b in pop.branches["branch_id"].iloc[:3]]
        units += [{"member_id": m} for m in pop.members["member_id"].iloc[:3]] if policy.has_members else []
        several = 0
        for unit in units:
            steps = bs.explain(pop, policy, **unit)
            for row in steps.itertuples(index=False):
                pairs = [pair.split("=") for pair in row.parameters.split(", ")] if row.parameters else []
                for path, shown in pairs:      # plain values: 0.15, true (never np.float64(0.15))
                    assert shown == num(policy[path]), path
                assert (row.provenance.split(" | ") if row.provenance else []) == \
                    [f"{p}: {policy.provenance(p)}" for p, _ in pairs]
                several += len(pairs) > 1
        assert several > 10

    def test_type_override_of_an_indicator(self, policy, example_pop):
        # B003 is an urban community: serve_masses is worth 6 for that type.
        line = row_of(bs.explain(example_pop, policy, branch_id="B003"), "indicator (deduction)", "serve_masses")
        assert "branch.types.urban_community.indicators.serve_masses.points=6" in line["parameters"]
        assert "points [max(0, 6 - " in line["result"]

    def test_rows_with_several_parameters(self, policy, example_pop):
        steps = bs.explain(example_pop, policy, branch_id="B001")
        survey = rows(steps, "survey")["provenance"].iloc[0].split(" | ")
        assert [p.split(":")[0] for p in survey] == [f"branch.survey.answer_values.{a}" for a in
                                                     policy.scheme.branch.answers] + ["branch.satisfaction_share"]
        st = policy.scheme.structure
        assert rows(steps, "structure")["parameters"].iloc[0].count("structure.") == len(st.ids) + 1
        member = bs.explain(example_pop, policy, member_id="M0001")
        annual = rows(member, "annual score")["provenance"].iloc[0].split(" | ")
        assert annual[1] == "member.appraisal_share: " + policy.provenance("member.appraisal_share")
        assert len(rows(member, "cut points")["provenance"].iloc[0].split(" | ")) == len(policy.grades) - 1


# -- arguments and errors -----------------------------------------------------------------------------
class TestArguments:
    def test_population_first_policy_optional(self, policy, example_pop):
        steps = bs.explain(example_pop, branch_id="B002")
        pd.testing.assert_frame_equal(steps, bs.explain(example_pop, policy, branch_id="B002"))
        pd.testing.assert_frame_equal(steps, bs.explain(EXAMPLES, branch_id="B002"))          # a folder
        pd.testing.assert_frame_equal(steps, bs.explain(str(EXAMPLES), policy, branch_id="B002"))
        branches = pd.read_csv(EXAMPLES / "branches.csv")
        before = branches.copy()
        pd.testing.assert_frame_equal(steps, bs.explain(branches, policy, branch_id="B002"))   # a table
        pd.testing.assert_frame_equal(branches, before)                                         # untouched

    def test_policy_as_a_path(self, policy, example_pop, tmp_path):
        top = policy.levels[0]
        path = policy.update({f"branch.rating.cuts.{top}": 99}).save(tmp_path / "p.yaml")
        steps = bs.explain(example_pop, path, branch_id="B001")
        assert f"rating.cuts.{top}=99" in rows(steps, "cut points")["parameters"].iloc[0]
        assert steps.attrs["level"] == bs.evaluate(example_pop, path).branches["rating"].iloc[0]

    def test_old_order_warns_and_gives_the_same_steps(self, policy, example_pop):
        with pytest.warns(DeprecationWarning, match=r"explain\(data, policy"):
            old = bs.explain(policy, example_pop, branch_id="B002")
        pd.testing.assert_frame_equal(old, bs.explain(example_pop, policy, branch_id="B002"))

    def test_wrong_arguments_are_one_clear_error(self, policy, example_pop):
        with pytest.raises(DataError, match="population first and the policy second"):
            bs.explain(policy, policy, branch_id="B001")
        with pytest.raises(DataError, match="population first and the policy second"):
            bs.explain(policy, branch_id="B001")
        with pytest.raises(DataError, match="takes a Population .* got list"):
            bs.explain([1, 2], policy, branch_id="B001")
        with pytest.raises(DataError, match="policy must be a branchsim.Policy.* got dict"):
            bs.explain(example_pop, {"branch": {}}, branch_id="B001")

    def test_branch_table_is_checked(self, policy, examples):
        b = examples["branches"].drop(columns="committee_meetings")
        with pytest.raises(DataError, match="committee_meetings"):
            bs.explain(b, policy, branch_id="B001")

    def test_unknown_ids_name_the_table_and_show_ids(self, policy, example_pop, small_city):
        with pytest.raises(DataError, match=r"'B999' is not in the branches table of the folder .*examples"
                                            r" \(12 branches; ids such as B001, B002, B003\)"):
            bs.explain(example_pop, policy, branch_id="B999")
        with pytest.raises(DataError, match=r"the generated city, seed 2 .*ids such as B000001"):
            bs.explain(small_city, policy, branch_id="B001")
        with pytest.raises(DataError, match=r"member_id 'M9999' is not in the members table .*ids such as M0001"):
            bs.explain(example_pop, policy, member_id="M9999")
        with pytest.raises(DataError, match=r"no record for period 13 .* periods on record: 1, 2, 3"):
            bs.explain(example_pop, policy, member_id="M0001", month=13)

    def test_needs_exactly_one_id(self, policy, example_pop):
        with pytest.raises(DataError, match="exactly one"):
            bs.explain(example_pop, policy)
        with pytest.raises(DataError, match="exactly one"):
            bs.explain(example_pop, policy, branch_id="B001", member_id="M0001")
        with pytest.raises(DataError, match="month= goes with member_id="):
            bs.explain(example_pop, policy, branch_id="B001", month=3)

    def test_member_needs_member_tables(self, policy, examples):
        with pytest.raises(DataError, match="needs the members and member_months tables"):
            bs.explain(examples["branches"], policy, member_id="M0001")
        pop = bs.generate(policy, seed=2, n_branches=5, members=False)
        with pytest.raises(DataError, match="the generated city, seed 2 has branches only"):
            bs.explain(pop, policy, member_id="M00000001")


# -- text and generality --------------------------------------------------------------------------------
class TestText:
    @pytest.mark.parametrize("name", SCHEMES)
    @pytest.mark.parametrize("width", [80, 120])
    def test_the_steps_fit_the_width_in_terminal_cells(self, name, width):
        policy = load(name)
        pop, _ = city(name, 8)
        units = [{"branch_id": pop.branches["branch_id"].iloc[0]}]
        units += [{"member_id": pop.members["member_id"].iloc[0]}] if policy.has_members else []
        for unit in units:
            text = steps_text(bs.explain(pop, policy, **unit), width)
            widths = [cells(line) for line in text.splitlines()]
            assert max(widths) <= width and max(widths) > width - 10      # the width is used, not a fixed 40
            assert any(cells(line) > len(line) for line in text.splitlines())   # CJK labels counted double

    def test_no_scheme_is_named_in_the_code(self):
        """The ids of the shipped schemes' levels, grades, indicators, designations, types and consequences
        appear in no string (docstrings aside)."""
        assert_no_scheme_names(("explain", "_explain_lines", "_explain_branch", "_explain_member", "explorer",
                                "_explorer_parts"))


# -- the command line (runs through cli.py) -----------------------------------------------------------
def _copy_examples(tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLES, folder)
    return folder


def _count_line(out: str, key: str) -> list[str]:
    return next(line for line in out.splitlines() if line.split()[:1] == [key]).split()


class TestCli:
    def test_evaluate_defaults_to_the_example_tables(self, capsys, result):
        assert main(["evaluate"]) == 0
        out = capsys.readouterr().out
        for level, count in result.level_counts()["count"].items():
            assert _count_line(out, level)[1] == str(count), level

    @pytest.mark.parametrize("argv, seed", [([], 0), (["run", "--seed", "1"], 1)],
                             ids=["no-arguments", "run-seed-1"])
    def test_run_generates_and_evaluates_the_city(self, capsys, policy, argv, seed):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"seed {seed}" in out
        expected = bs.evaluate(bs.generate(seed=seed, members=False))
        counts = expected.level_counts()
        assert counts["count"][policy.levels].sum() == 1500
        for level in counts.index:
            line = _count_line(out, level)
            assert line[1] == str(counts.loc[level, "count"]), level
        assert f"accuracy: {expected.accuracy():.1%}" in out

    def test_broken_branches_file(self, tmp_path, capsys):
        folder = _copy_examples(tmp_path)
        b = pd.read_csv(folder / "branches.csv").drop(columns="committee_meetings")
        b.to_csv(folder / "branches.csv", index=False)
        assert main(["evaluate", "--data", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "committee_meetings" in err and str(folder / "branches.csv") in err and "Traceback" not in err

    def test_bad_policy_file(self, tmp_path, capsys, policy):
        bad = tmp_path / "bad.yaml"
        d = policy.to_dict()
        d["branch"]["rating"]["cuts"][policy.levels[1]]["value"] = 95         # above the top level's cut
        bad.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
        assert main(["evaluate", "--policy", str(bad)]) == 2
        assert "branch.rating.cuts" in capsys.readouterr().err

    def test_missing_data_folder(self, tmp_path, capsys):
        assert main(["evaluate", "--data", str(tmp_path / "nowhere")]) == 2
        assert "nowhere" in capsys.readouterr().err

    @pytest.mark.parametrize("text", ["", 'a,b\n1,2,3,4\n"unterminated\n'], ids=["empty", "malformed"])
    def test_unreadable_branches_file(self, tmp_path, capsys, text):
        folder = _copy_examples(tmp_path)
        (folder / "branches.csv").write_text(text, encoding="utf-8")
        assert main(["evaluate", "--data", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("branchsim: error:") and "Traceback" not in err
        assert str(folder / "branches.csv") in err

    def test_evaluate_a_saved_population_folder(self, tmp_path, capsys, policy):
        pop = bs.generate(seed=5, n_branches=60)
        pop.save(tmp_path / "pop")
        assert main(["evaluate", "--data", str(tmp_path / "pop")]) == 0
        out = capsys.readouterr().out
        counts = bs.evaluate(pop).level_counts()
        assert _count_line(out, policy.levels[2])[1] == str(counts.loc[policy.levels[2], "count"])
        assert "60 branches" in out

    def test_policy_parameters(self, capsys, policy):
        assert main(["policy", "--parameters"]) == 0
        out = capsys.readouterr().out
        assert "baseline" in out and "branch.satisfaction_share" in out and "quote" in out
        assert "branch.rating.cuts." in out

    def test_out_writes_per_unit_results(self, tmp_path, capsys, result):
        out = tmp_path / "results"
        assert main(["evaluate", "--out", str(out)]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["branches.csv", "manifest.json", "members.csv"]
        b, m = pd.read_csv(out / "branches.csv"), pd.read_csv(out / "members.csv")
        assert b["branch_id"].tolist() == result.branches["branch_id"].tolist()
        assert b["score"].tolist() == pytest.approx(result.branches["score"].tolist())
        assert b["rating"].tolist() == result.branches["rating"].tolist()
        assert m["grade"].fillna("").tolist() == result.members["grade"].fillna("").tolist()


class TestExplainCli:
    def _run(self, capsys, monkeypatch, argv, columns=80):
        monkeypatch.setenv("COLUMNS", str(columns))
        code = main(["explain", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    @pytest.mark.parametrize("argv", [["--branch", "B001"], ["--member", "M0001"],
                                      ["--member", "M0001", "--month", "3"], ["--branch", "B008", "--provenance"]],
                             ids=["branch", "member", "member-month", "provenance"])
    @pytest.mark.parametrize("columns", [80, 120])
    def test_fits_the_terminal(self, capsys, monkeypatch, argv, columns):
        code, out, _ = self._run(capsys, monkeypatch, argv, columns)
        assert code == 0
        lines = out.splitlines()
        assert len(lines) > 40
        assert max(cells(line) for line in lines) <= columns
        assert max(cells(line) for line in lines) > columns - 10       # the width is used, not a fixed 40

    def test_branch_prints_every_step(self, capsys, monkeypatch, policy, example_pop):
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B001"], columns=100)
        assert code == 0
        steps = bs.explain(example_pop, policy, branch_id="B001")
        flat = " ".join(" ".join(re.sub(r"\s+[+-]\d+\.\d\d$", "", line) for line in out.splitlines()).split())
        pos = 0
        for row in steps.itertuples(index=False):
            pos = flat.index(" ".join(f"{row.step}: {row.item}".split()), pos)        # every step, in order
            assert " ".join(row.result.split()) in flat
            if row.parameters:
                assert " ".join(f"uses {row.parameters}".split()) in flat
        assert f"the lines add up to {steps['adds'].sum():.2f}." in flat
        first = next(line for line in out.splitlines() if line.startswith(f"{steps['step'].iloc[0]}: "))
        assert first.split()[-1] == f"{steps['adds'].iloc[0]:+.2f}"      # the adds at the right edge

    def test_provenance_lists_each_parameter_once(self, capsys, monkeypatch, policy, example_pop):
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B003", "--provenance"], columns=100)
        assert code == 0
        steps = bs.explain(example_pop, policy, branch_id="B003")
        paths = list(dict.fromkeys(p for text in steps["parameters"] for p in _PATHS.findall(text)))
        flat = " ".join(out.split(f"Where each of the {len(paths)} parameters comes from:\n")[1].split())
        for path in paths:
            assert flat.count(f"{path} = ") == 1, path
            assert " ".join(f"{path} = {num(policy[path])} {policy.provenance(path)}".split()) in flat, path

    def test_member(self, capsys, monkeypatch, policy, example_pop):
        code, out, _ = self._run(capsys, monkeypatch, ["--member", "M0001"], columns=250)
        assert code == 0
        steps = bs.explain(example_pop, policy, member_id="M0001")
        assert rows(steps, "annual score")["result"].iloc[0] in out
        assert f"→ {rows(steps, 'grade')['result'].iloc[0]}" in out
        assert adds_note(steps) in " ".join(out.split())          # the adds sum to the annual score

    def test_reads_the_data_folder(self, tmp_path, capsys, monkeypatch, policy):
        # --data is read like `evaluate --data`: a vacant secretary post in the copied tables shows up.
        folder = _copy_examples(tmp_path)
        b = pd.read_csv(folder / "branches.csv")
        b.loc[b["branch_id"] == "B001", "secretary_in_post"] = 0
        b.to_csv(folder / "branches.csv", index=False)
        code, out, _ = self._run(capsys, monkeypatch, ["--data", str(folder), "--branch", "B001"], 250)
        assert code == 0
        assert f"of the tables in {folder}" in out.splitlines()[0]
        steps = bs.explain(folder, policy, branch_id="B001")
        level = rows(steps, "level").iloc[0]
        assert "fact secretary_in_post = 0" in out and "FIRES" in out
        assert f"{level['input']} → {level['result']}" in out and "secretary_vacant" in level["input"]

    def test_a_branch_of_a_generated_city(self, capsys, monkeypatch, policy):
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B000007", "--seed", "3"], 250)
        assert code == 0
        assert "the default city generated with seed 3" in out.splitlines()[0]
        expected = bs.evaluate(bs.generate(policy, seed=3, members=False)).branches.set_index("branch_id")
        assert f"sum of the lines above (column adds) → {expected.loc['B000007', 'score']:.2f}\n" in out
        assert f"→ {expected.loc['B000007', 'rating']} " in out

    @pytest.mark.parametrize("argv, named", [
        (["--branch", "B999"], r"branch_id 'B999' is not in the branches table of the folder \S*examples "
                               r"\(12 branches; ids such as B001, B002, B003\)"),
        (["--branch", "B001", "--seed", "3"], r"not in the branches table of the generated city, seed 3 .*"
                                              r"ids such as B000001"),
        (["--member", "M0001", "--month", "13"], r"no record for period 13"),
        (["--branch", "B001", "--month", "3"], r"month= goes with member_id="),
        (["--branch", "B001", "--seed", "3", "--data", str(EXAMPLES)], r"--data DIR .* or --seed N .* not both"),
    ], ids=["unknown-branch", "unknown-in-generated-city", "unknown-month", "month-of-a-branch", "data-and-seed"])
    def test_bad_input_is_one_line(self, capsys, monkeypatch, argv, named):
        code, out, err = self._run(capsys, monkeypatch, argv)
        assert code == 2
        assert len(err.splitlines()) == 1 and err.startswith("branchsim: error: ")
        assert re.search(named, err), err
        assert "Traceback" not in err

    def test_every_option_has_help(self):
        explain_parser = build_parser()._subparsers._group_actions[0].choices["explain"]
        options = {a.option_strings[0]: a.help for a in explain_parser._actions if a.option_strings}
        for opt in ("--policy", "--data", "--branch", "--member", "--seed", "--month", "--provenance"):
            assert options[opt], opt
