"""Policy tests (NAME.tests.yaml): every shipped policy's hand-worked cases pass, and a wrong expectation
is reported at the first step where it diverges, naming the case and the unit."""
from __future__ import annotations

import shutil

import pytest
import yaml

import branchsim as bs
from branchsim.cli import main
from branchsim.policytests import COLUMNS, check_policy, failures, shipped_tests

SHIPPED = shipped_tests()


def test_every_shipped_scheme_has_tests():
    assert {p.stem for p in SHIPPED} >= {"baseline", "star_quota", "member_points"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_policy_tests_pass(path):
    report = check_policy(path)
    assert list(report.columns) == COLUMNS
    assert len(report) > 50
    assert failures(report) == [], "\n".join(failures(report))
    assert report["ok"].all()
    # Every step kind is exercised somewhere in the file.
    kinds = set(report["step"].str.split(".").str[0])
    assert {"points", "score", "level", "designations", "vetoes", "consequences"} <= kinds


def test_member_steps_are_checked():
    report = check_policy(bs.data_path("policies", "member_points.yaml"))
    assert {"record", "grade"} <= set(report["step"])
    exempt = report[(report["unit"] == "old") & (report["step"] == "grade")]
    assert exempt["expected"].isna().all() and exempt["got"].isna().all() and exempt["ok"].all()


# -- a wrong expectation ------------------------------------------------------------------------------------
def copy_with_tests(tmp_path, name: str, edit) -> "bs.Policy":
    """The shipped policy ``name`` with its tests file changed by ``edit(doc)``, in ``tmp_path``."""
    src = bs.data_path("policies", f"{name}.yaml")
    shutil.copy(src, tmp_path / f"{name}.yaml")
    doc = yaml.safe_load(src.with_name(f"{name}.tests.yaml").read_text(encoding="utf-8"))
    edit(doc)
    (tmp_path / f"{name}.tests.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return tmp_path / f"{name}.yaml"


def _case(doc, name):
    return next(c for c in doc["cases"] if c["name"].startswith(name))


def test_a_wrong_score_is_reported_at_the_score(tmp_path):
    # The points are right, the score is off by 0.1: the first step that diverges is the score,
    # and the level that follows from it is still right.
    def edit(doc):
        _case(doc, "deductions, a proportion")["expect"]["b1"]["score"] = 81.9
    path = copy_with_tests(tmp_path, "baseline", edit)
    report = check_policy(path)
    bad = report[~report["ok"]]
    assert bad[["unit", "step"]].values.tolist() == [["b1", "score"]]
    assert failures(report) == ["case 'deductions, a proportion and a type override in an urban community', "
                                "unit b1: score: expected 81.9, got 81.803846"]


def test_a_wrong_point_is_reported_before_the_score(tmp_path):
    # A wrong point of an indicator and, as a consequence written by hand, a wrong score and level:
    # the line names the indicator, the first step.
    def edit(doc):
        exp = _case(doc, "vetoes cap the level")["expect"]["v4"]
        exp["points"]["committee_meetings"] = 2
        exp["score"] = 99.0
        exp["level"] = "four_star"
    report = check_policy(copy_with_tests(tmp_path, "baseline", edit))
    assert failures(report) == ["case 'vetoes cap the level; when several fire the most severe wins', unit v4: "
                                "points.committee_meetings: expected 2, got 1 (and 2 later steps)"]


def test_wrong_designations_and_member_grade(tmp_path):
    def edit(doc):
        _case(doc, "a vacant secretary post")["expect"]["C2"]["designations"] = []
        _case(doc, "one-vote vetoes on members")["expect"]["v3"]["grade"] = "excellent"
    report = check_policy(copy_with_tests(tmp_path, "member_points", edit))
    lines = failures(report)
    assert len(lines) == 2
    assert lines[0].endswith("unit C2: designations: expected [], got [weak]")
    assert lines[1].endswith("unit v3: grade: expected excellent, got qualified")


def test_the_cli_exit_status(tmp_path, capsys):
    assert main(["check-policy", str(bs.data_path("policies", "star_quota.yaml"))]) == 0
    assert capsys.readouterr().out.strip().endswith("all pass")

    def edit(doc):
        _case(doc, "quota over ten branches")["expect"]["a"]["level"] = "four_star"
    path = copy_with_tests(tmp_path, "star_quota", edit)
    assert main(["check-policy", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "1 of" in out[0] and out[1].strip() == ("case 'quota over ten branches of mixed types with distinct "
                                                   "scores', unit a: level: expected four_star, got five_star")


# -- what a case leaves out ------------------------------------------------------------------------------
def write_case(tmp_path, policy_name: str, case: dict):
    src = bs.data_path("policies", f"{policy_name}.yaml")
    shutil.copy(src, tmp_path / f"{policy_name}.yaml")
    doc = {"schema": "branchsim-policy-tests/1", "cases": [case]}
    (tmp_path / f"{policy_name}.tests.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path / f"{policy_name}.yaml"


def test_facts_not_given_earn_full_points_and_declared_facts_fire_nothing(tmp_path):
    # star_quota: no fact given at all — the sheet is full (100; survey: every answer the best), the
    # declared facts (district honour, vacancy months, a major violation) take values that fire
    # nothing; a lone branch is unrated by the quota. member_points: a member with no period facts
    # has a full record (100), an appraisal of 100 by default.
    path = write_case(tmp_path, "star_quota", {"name": "empty", "branches": [{"id": "b", "type": "village"}],
                                               "expect": {"b": {"score": 100, "level": "unrated", "vetoes": [],
                                                                "designations": []}}})
    assert check_policy(path)["ok"].all()
    path = write_case(tmp_path, "member_points", {"name": "m", "members": [
        {"id": "m", "type": "organ", "class": "ordinary"}],
        "expect": {"m": {"record": 100, "score": 100, "grade": "excellent", "vetoes": []}}})
    assert check_policy(path)["ok"].all()


def test_tolerance_per_case(tmp_path):
    case = {"name": "t", "branches": [{"id": "b", "type": "village", "survey": {"satisfied": 20}}],
            "expect": {"b": {"score": 99.99}}}
    assert not check_policy(write_case(tmp_path, "baseline", case))["ok"].all()
    assert check_policy(write_case(tmp_path, "baseline", {**case, "tolerance": 0.05}))["ok"].all()


@pytest.mark.parametrize("case, message", [
    ({"name": "x", "branches": [{"id": "b", "type": "village"}], "expect": {"c": {"score": 1}}},
     "expect.c: not a unit of the case"),
    ({"name": "x", "branches": [{"id": "b", "type": "villa"}], "expect": {"b": {"score": 1}}},
     "type: 'villa' is not a branch type"),
    ({"name": "x", "branches": [{"id": "b", "type": "village", "survey": {"happy": 3}}],
      "expect": {"b": {"score": 1}}}, "survey: a mapping {answer: respondents}"),
    ({"name": "x", "branches": [{"id": "b", "type": "village"}], "expect": {"b": {"vetoes": ["nope"]}}},
     "vetoes: a list of ids"),
    ({"name": "x", "branches": [{"id": "b", "type": "village"}],
      "members": [{"id": "m", "type": "village"}], "expect": {"m": {"grade": "excellent"}}},
     "give its branch"),
    ({"name": "x", "members": [{"id": "m", "type": "village", "periods": {"study_hours": [1, 2]}}],
      "expect": {"m": {"grade": "excellent"}}}, "periods.study_hours: 12 numbers"),
    ({"name": "x", "branches": [{"id": "b", "type": "village"}], "expect": {"b": {"grade": "excellent"}}},
     "b.grade: unknown step"),
])
def test_bad_tests_files_list_every_problem(tmp_path, case, message):
    with pytest.raises(bs.PolicyError) as err:
        check_policy(write_case(tmp_path, "baseline", case))
    assert message in str(err.value) and "baseline.tests.yaml" in str(err.value)


def test_a_policy_without_tests(tmp_path):
    shutil.copy(bs.data_path("policies", "baseline.yaml"), tmp_path / "mine.yaml")
    with pytest.raises(bs.PolicyError, match="no tests file"):
        check_policy(tmp_path / "mine.yaml")
    # A tests file given explicitly runs against any policy (a reform of the same scheme).
    report = check_policy(bs.Policy.load(), bs.data_path("policies", "baseline.tests.yaml"))
    assert report["ok"].all()


@pytest.mark.parametrize("prev, match", [("1", "prev: a mapping"), ("{wek: 1}", "did you mean 'weak'"),
                                         ("{weak: -1}", "whole number")])
def test_a_bad_prev_entry_is_one_clear_error(tmp_path, prev, match):
    # Found writing a scheme from the docs alone: `prev: 1` ended in an internal error.
    policy = tmp_path / "p.yaml"
    policy.write_bytes(bs.data_path("policies", "baseline.yaml").read_bytes())
    (tmp_path / "p.tests.yaml").write_text(
        "schema: branchsim-policy-tests/1\ncases:\n  - name: x\n    branches:\n"
        f"      - {{id: b1, type: village, prev: {prev}}}\n    expect: {{b1: {{level: no_star}}}}\n",
        encoding="utf-8")
    with pytest.raises(bs.PolicyError, match=match):
        bs.check_policy(policy)
