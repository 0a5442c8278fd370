"""explain(): every rule step for one unit; the command line."""
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
from branchsim._explain_text import cells
from branchsim.cli import build_parser, main
from conftest import EXAMPLES


@pytest.fixture(scope="module")
def result(policy):
    t = {k: pd.read_csv(EXAMPLES / f"{k}.csv") for k in ("branches", "members", "member_months")}
    return bs.evaluate_tables(policy, t["branches"], t["members"], t["member_months"])


# -- explain ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def example_pop(policy):
    return bs.load_population(EXAMPLES, policy=policy)


@pytest.fixture(scope="module")
def small_city(policy):
    """A generated city small enough to explain every branch and member."""
    return bs.generate(policy, seed=2, n_branches=6)


_INDICATOR = re.compile(r"^(?P<pts>[\d.]+) points(?P<mean> a month on average)? "
                        r"\[(?:mean over months of )?(?P<rule>.+)\]; adds (?P<adds>-?[\d.]+) = (?P<expr>.+)$")
_PATHS = re.compile(r"([A-Za-z0-9_.]+)=")


@functools.lru_cache(maxsize=None)
def _compiled(expr: str):
    return compile(expr.replace("×", "*"), "<shown>", "eval")


def _value(expr: str, fact: float | None = None) -> float:
    """A rule or sum as printed (``×`` for times), evaluated: the reader's own check of the arithmetic."""
    env = {"max": max, "min": min, "clip": lambda x, lo, hi: min(max(x, lo), hi), "fact": fact}
    return eval(_compiled(expr), {"__builtins__": {}}, env)


def _check_lines(steps: pd.DataFrame, total: float, facts: dict) -> set:
    """Every line: its points follow from its own formula; the lines that add sum to ``total``.

    ``facts`` maps each fact column to the value (or, for a member's year, the monthly values) the
    rule is applied to. Returns the kinds of adding lines seen (e.g. ``{"indicator", "cap"}``).
    """
    adding = steps[steps["adds"].notna()]
    assert adding["adds"].sum() == pytest.approx(total, abs=1e-9)
    for row in steps.itertuples(index=False):
        if row.step.startswith("indicator"):
            m = _INDICATOR.match(row.result)
            assert m, row.result
            fact = row.input.split()[1]
            values = np.atleast_1d(facts[fact])
            expected = np.mean([_value(m["rule"], float(v)) for v in values])
            assert float(m["pts"]) == pytest.approx(expected, abs=0.005 + 1e-9), (row.item, row.result)
            assert bool(m["mean"]) == (len(values) > 1)
            assert float(m["adds"]) == pytest.approx(row.adds, abs=0.005 + 1e-9)
            assert _value(m["expr"]) == pytest.approx(row.adds, abs=0.01)   # rounded points in the sum
        elif row.step in ("dimension", "satisfaction survey", "cap") and " = " in row.result:
            shown, expr = row.result.split(" = ", 1)
            expr = expr.split(" (rate")[0]
            if "mean over" not in expr:
                assert _value(expr) == pytest.approx(float(shown), abs=0.01), row.result
            if row.step != "dimension":
                assert float(shown) == pytest.approx(row.adds, abs=0.005 + 1e-9)
    return {s.split(" ")[0] for s in adding["step"]}


def _plain(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def _member_facts(pop, policy, member_id):
    mm = pop.member_months
    mine = mm[(mm["member_id"] == member_id).to_numpy()].sort_values("month", kind="stable")
    return {i["fact"]: mine[i["fact"]].to_numpy(float) for i in policy.member_indicators.values()}


class TestExplainAddsUp:
    """The lines shown add up to the engine's score, and each line follows from its own formula."""

    @pytest.mark.parametrize("which", ["examples", "generated"])
    def test_every_branch(self, policy, example_pop, small_city, which):
        pop = example_pop if which == "examples" else small_city
        expected = bs.evaluate(pop, policy).branches.set_index("branch_id")
        kinds = set()
        for row in pop.branches.itertuples(index=False):
            steps = bs.explain(pop, policy, branch_id=row.branch_id)
            facts = {i["fact"]: getattr(row, i["fact"]) for i in policy.branch_indicators.values()}
            kinds |= _check_lines(steps, expected.loc[row.branch_id, "score"], facts)
            assert float(steps.set_index("step").loc["score", "result"]) == \
                pytest.approx(expected.loc[row.branch_id, "score"], abs=0.005)
        assert {"indicator", "cap", "satisfaction"} <= kinds          # a dimension cap bound somewhere

    @pytest.mark.parametrize("which", ["examples", "generated"])
    def test_every_member(self, policy, example_pop, small_city, which):
        pop = example_pop if which == "examples" else small_city
        expected = bs.evaluate(pop, policy).members.set_index("member_id")
        kinds = set()
        for member_id in pop.members["member_id"]:
            steps = bs.explain(pop, policy, member_id=member_id)
            kinds |= _check_lines(steps, expected.loc[member_id, "monthly_mean"],
                                  _member_facts(pop, policy, member_id))
            by_step = steps.set_index("step")
            assert by_step.loc["grade", "result"] == expected.loc[member_id, "grade"]
            annual = by_step.loc["annual score", "result"]
            assert float(annual.split(" = ")[0]) == pytest.approx(expected.loc[member_id, "annual"], abs=0.005)
            assert _value(annual.split(" = ")[1]) == pytest.approx(expected.loc[member_id, "annual"], abs=0.01)
        assert {"indicator", "cap"} <= kinds                          # the cap at 100 bound somewhere

    def test_one_month(self, policy, example_pop):
        # M0001's March earns more than the maximum: the cap line takes it back to exactly 100.
        steps = bs.explain(example_pop, policy, member_id="M0001", month=3)
        mm = example_pop.member_months
        row = mm[(mm["member_id"] == "M0001") & (mm["month"] == 3)]
        rules = bs.scoring.compile_member_rules(policy)
        t = np.array([rules.types.index("village")])
        score = bs.scoring.monthly_scores(row[list(rules.indicators.facts)].to_numpy(float), t, rules)[0]
        facts = {f: row[f].iloc[0] for f in rules.indicators.facts}
        assert _check_lines(steps, score, facts) == {"indicator", "cap"}
        assert score == 100.0
        cap = steps[steps["step"] == "cap"].iloc[0]
        assert cap["adds"] < 0 and cap["result"].startswith(f"{cap['adds']:.2f} = 100 - ")

    def test_a_bonus_above_the_dimension_maximum_is_a_cap_line(self, policy, example_pop):
        # B001 (a village) earns more role points than the dimension's maximum, bonus included: the cap
        # line gives back exactly what the extra points added, and the dimension is at its full share.
        rules = bs.scoring.compile_branch_rules(policy)
        t, g = rules.types.index("village"), policy.dimensions.index("role")
        top, share = rules.indicators.group_max[t, g], rules.weights[t, g]
        b = example_pop.branches.iloc[[0]]
        pts = bs.scoring.indicator_points(b[list(rules.indicators.facts)].to_numpy(float), [t], rules.indicators)
        got = pts[0, rules.indicators.group == g].sum()
        assert b["branch_id"].iloc[0] == "B001" and got > top            # guard: the cap binds
        steps = bs.explain(example_pop, policy, branch_id="B001")
        cap = steps[steps["step"] == "cap"]
        assert cap["item"].tolist() == [f"role: at most {top:g} points"]
        assert cap["adds"].iloc[0] == pytest.approx(-100 * share * (got - top) / top)
        dims = steps[steps["step"] == "dimension"]
        role = dims.set_index(dims["item"].str.split(":").str[0]).loc["role"]
        assert role["result"] == f"{100 * share:.2f} = 100 × {share:.4g} × min(1, {got:g}/{top:g})"


    def test_a_type_with_its_own_survey_share(self, policy, example_pop):
        # Villages weigh the survey at 50%: the dimension shares are re-scaled for them, and the rows that
        # use the re-scaled weights cite both the dimension share and the village's survey share.
        doc = policy.to_dict()
        doc["branch"]["types"]["village"]["satisfaction_share"] = {"value": 0.5, "assumption": "a test"}
        village = bs.Policy(doc)
        expected = bs.evaluate(example_pop, village).branches.set_index("branch_id")
        for branch_id in ("B001", "B003"):            # a village and an urban community
            steps = bs.explain(example_pop, village, branch_id=branch_id)
            row = example_pop.branches.set_index("branch_id").loc[branch_id]
            facts = {i["fact"]: row[i["fact"]] for i in policy.branch_indicators.values()}
            _check_lines(steps, expected.loc[branch_id, "score"], facts)
            by_step = steps.set_index("step")
            own = "branch.types.village.satisfaction_share"
            assert (own in by_step.loc["satisfaction survey", "parameters"]) == (branch_id == "B001")
            assert (own in steps[steps["step"] == "dimension"]["parameters"].iloc[0]) == (branch_id == "B001")
        assert expected.loc["B001", "score"] != bs.evaluate(example_pop, policy).branches["score"].iloc[0]

    def test_a_reform(self, policy, example_pop):
        reform = policy.update({"branch.satisfaction_share": 0.3, "branch.survey.answer_values.basic": 0.5})
        expected = bs.evaluate(example_pop, reform).branches.set_index("branch_id")
        for row in example_pop.branches.itertuples(index=False):
            steps = bs.explain(example_pop, reform, branch_id=row.branch_id)
            facts = {i["fact"]: getattr(row, i["fact"]) for i in reform.branch_indicators.values()}
            _check_lines(steps, expected.loc[row.branch_id, "score"], facts)
            survey = steps.set_index("step").loc["satisfaction survey", "parameters"]
            assert "branch.satisfaction_share=0.3" in survey and "answer_values.basic=0.5" in survey


class TestExplainBranch:
    @pytest.mark.parametrize("branch_id", ["B001", "B004", "B008"])
    def test_has_every_step(self, policy, example_pop, branch_id):
        steps = bs.explain(example_pop, policy, branch_id=branch_id)
        assert list(steps.columns) == ["step", "item", "input", "result", "adds", "parameters", "provenance"]
        ind = steps[steps["step"].str.startswith("indicator")]
        assert sorted(i.split(":")[0] for i in ind["item"]) == sorted(policy.branch_indicators)
        dims = steps[steps["step"] == "dimension"]
        assert [i.split(":")[0] for i in dims["item"]] == policy.dimensions
        # Each dimension's indicators come just before its line.
        start = 0
        for pos, dim in zip(dims.index, policy.dimensions):
            block = steps.loc[start:pos - 1]
            block = block[block["step"].str.startswith("indicator")]
            assert {policy.branch_indicators[i.split(":")[0]]["dimension"] for i in block["item"]} == {dim}
            start = pos + 1
        vetoes = steps[steps["step"] == "veto"]
        assert [i.split(":")[0] for i in vetoes["item"]] == list(policy["branch.vetoes"])
        for step in ("satisfaction survey", "score", "star (before vetoes)", "stars", "weak",
                     "consequence", "structure"):
            assert (steps["step"] == step).sum() == 1, step

    @pytest.mark.parametrize("unit", [{"branch_id": "B003"}, {"member_id": "M0002"}])
    def test_each_parameter_has_its_provenance(self, policy, example_pop, unit):
        steps = bs.explain(example_pop, policy, **unit)
        several = 0
        for row in steps.itertuples(index=False):
            pairs = [pair.split("=") for pair in row.parameters.split(", ")] if row.parameters else []
            paths = [p for p, _ in pairs]
            for p, shown in pairs:      # plain values: 0.15, true (never np.float64(0.15))
                assert shown == _plain(policy[p]), p
            cited = row.provenance.split(" | ") if row.provenance else []
            assert cited == [f"{p}: {policy.provenance(p)}" for p in paths], row.step
            several += len(paths) > 1
        assert several > 10      # indicator rows use the points and the rule's other numbers

    def test_rows_with_several_parameters(self, policy, example_pop):
        steps = bs.explain(example_pop, policy, branch_id="B001").set_index("step")
        survey = steps.loc["satisfaction survey", "provenance"].split(" | ")
        assert [p.split(":")[0] for p in survey] == [
            "branch.survey.answer_values.satisfied", "branch.survey.answer_values.basic",
            "branch.survey.answer_values.dissatisfied", "branch.satisfaction_share"]
        assert survey[-1] == "branch.satisfaction_share: " + policy.provenance("branch.satisfaction_share")
        assert steps.loc["structure", "parameters"].count("structure.") == 4
        member = bs.explain(example_pop, policy, member_id="M0001").set_index("step")
        assert member.loc["annual score", "provenance"].split(" | ")[1] == \
            "member.appraisal_share: " + policy.provenance("member.appraisal_share")
        assert len(member.loc["grade", "provenance"].split(" | ")) == len(policy["member.grade_cuts"])

    def test_vetoed_weak_branch(self, policy, example_pop):
        # B008's secretary post is vacant: the veto fires (citing its cap and weak rule) and the branch is weak.
        steps = bs.explain(example_pop, policy, branch_id="B008")
        veto = steps[steps["item"].str.startswith("secretary_vacant")].iloc[0]
        assert veto["result"].startswith("FIRES")
        assert "branch.vetoes.secretary_vacant.max_star=0" in veto["parameters"]
        by_step = steps.set_index("step")
        assert by_step.loc["stars", "result"] == "0"
        assert by_step.loc["weak", "result"] == "weak"
        assert "branch.vetoes.secretary_vacant.weak=true" in by_step.loc["weak", "parameters"]

    def test_reorganise_shows_in_consequence(self, policy, example_pop):
        # B004 is weak and was weak the year before: two in a row → reorganise.
        steps = bs.explain(example_pop, policy, branch_id="B004").set_index("step")
        assert steps.loc["consequence", "result"].startswith("reorganise")

    def test_type_override_is_cited(self, policy, example_pop):
        # B003 is an urban community: serve_masses is worth 6 for that type.
        steps = bs.explain(example_pop, policy, branch_id="B003")
        row = steps[steps["item"].str.startswith("serve_masses")].iloc[0]
        assert "branch.types.urban_community.indicators.serve_masses.points=6" in row["parameters"]
        assert "points [max(0, 6 - " in row["result"]          # the type's 6 points in the formula

    def test_unknown_branch_names_the_table_and_shows_ids(self, policy, example_pop, small_city):
        with pytest.raises(DataError, match=r"'B999' is not in the branches table of the folder .*examples"
                                            r" \(12 branches; ids such as B001, B002, B003\)"):
            bs.explain(example_pop, policy, branch_id="B999")
        with pytest.raises(DataError, match=r"the generated city, seed 2 .*ids such as B000001"):
            bs.explain(small_city, policy, branch_id="B001")

    def test_needs_exactly_one_id(self, policy, example_pop):
        with pytest.raises(DataError, match="exactly one"):
            bs.explain(example_pop, policy)
        with pytest.raises(DataError, match="exactly one"):
            bs.explain(example_pop, policy, branch_id="B001", member_id="M0001")
        with pytest.raises(DataError, match="month= goes with member_id="):
            bs.explain(example_pop, policy, branch_id="B001", month=3)


class TestExplainArguments:
    """explain(pop, policy, ...) like every other analysis; the old order for one release."""

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
        path = policy.update({"branch.star_cuts.5": 95}).save(tmp_path / "p.yaml")
        steps = bs.explain(example_pop, path, branch_id="B001").set_index("step")
        assert steps.loc["star (before vetoes)", "result"].startswith("4 stars")

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


class TestExplainMember:
    def test_consequence_for_a_warning_member(self, policy, example_pop, result):
        m = result.members
        warned = m.loc[m["grade"] == "warning", "member_id"]
        assert len(warned) >= 1      # the examples include a warning-grade member
        steps = bs.explain(example_pop, policy, member_id=warned.iloc[0])
        assert steps.set_index("step").loc["consequence", "result"].startswith("mentoring")

    def test_a_member_whose_facts_vary_shows_each_month(self, policy, example_pop):
        # study_hours differs month to month: points are the mean of each month's rule, not the rule of the mean.
        steps = bs.explain(example_pop, policy, member_id="M0001")
        row = steps[steps["item"].str.startswith("theory_study")].iloc[0]
        hours = _member_facts(example_pop, policy, "M0001")["study_hours"]
        assert row["input"] == "fact study_hours by month: " + ", ".join(
            f"{mo}: {h:g}" for mo, h in zip(range(1, 13), hours))
        by_rule = np.mean([max(0, 2 - 0.5 * max(0, 4 - h)) for h in hours])
        assert row["result"].startswith(f"{round(by_rule, 2):g} points a month on average")
        assert round(by_rule, 2) != round(max(0, 2 - 0.5 * max(0, 4 - hours.mean())), 2)   # guard

    def test_unknown_member_and_month(self, policy, example_pop):
        with pytest.raises(DataError, match=r"member_id 'M9999' is not in the members table .*ids such as M0001"):
            bs.explain(example_pop, policy, member_id="M9999")
        with pytest.raises(DataError, match=r"no record for month 13 .* months on record: 1, 2, 3"):
            bs.explain(example_pop, policy, member_id="M0001", month=13)

    def test_member_needs_member_tables(self, policy, examples):
        with pytest.raises(DataError, match="needs the members and member_months tables"):
            bs.explain(examples["branches"], policy, member_id="M0001")
        pop = bs.generate(policy, seed=2, n_branches=5, members=False)
        with pytest.raises(DataError, match="the generated city, seed 2 has branches only"):
            bs.explain(pop, policy, member_id="M00000001")


# -- the command line -----------------------------------------------------------------------------
def _copy_examples(tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLES, folder)
    return folder


class TestCli:
    def test_evaluate_defaults_to_the_example_tables(self, capsys, result):
        assert main(["evaluate"]) == 0
        out = capsys.readouterr().out
        assert "Stars:" in out and "five_star" in out and "weak" in out
        for level, row in result.star_counts().iterrows():
            line = next(line for line in out.splitlines() if line.split()[:1] == [level])
            assert line.split()[1] == str(row["count"]), level

    @pytest.mark.parametrize("argv, seed", [([], 0), (["run", "--seed", "1"], 1)],
                             ids=["no-arguments", "run-seed-1"])
    def test_run_generates_and_evaluates_the_city(self, capsys, argv, seed):
        # With no arguments the main job runs: generate the default city (seed 0), evaluate it,
        # print star counts beside the published figures and the accuracy against the truth.
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"seed {seed}" in out
        # Branch draws do not depend on whether members are drawn, so a branch-only population
        # gives the same counts.
        expected = bs.evaluate(bs.generate(seed=seed, members=False))
        counts = expected.star_counts()
        assert counts["count"].drop("weak").sum() == 1500
        for level in ("five_star", "four_star", "three_star", "weak"):
            line = next(line for line in out.splitlines() if line.split()[:1] == [level]).split()
            assert line[1] == str(counts.loc[level, "count"]), level
            assert line[3] == str(counts.loc[level, "published"]), level     # the published figure
        assert f"accuracy: {expected.accuracy():.1%}" in out

    def test_broken_branches_file(self, tmp_path, capsys):
        folder = _copy_examples(tmp_path)
        b = pd.read_csv(folder / "branches.csv").drop(columns="committee_meetings")
        b.to_csv(folder / "branches.csv", index=False)
        assert main(["evaluate", "--data", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "committee_meetings" in err
        assert str(folder / "branches.csv") in err        # names the file
        assert "Traceback" not in err

    def test_bad_policy_file(self, tmp_path, capsys):
        bad = tmp_path / "bad.yaml"
        d = bs.Policy.load().to_dict()
        d["branch"]["star_cuts"]["4"]["value"] = 95
        bad.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
        assert main(["evaluate", "--policy", str(bad)]) == 2
        assert "branch.star_cuts" in capsys.readouterr().err

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
        assert str(folder / "branches.csv") in err        # names the file

    def test_evaluate_a_saved_population_folder(self, tmp_path, capsys):
        # A folder written by Population.save (Parquet) is read through load_population.
        pop = bs.generate(seed=5, n_branches=60)
        pop.save(tmp_path / "pop")
        assert main(["evaluate", "--data", str(tmp_path / "pop")]) == 0
        out = capsys.readouterr().out
        counts = bs.evaluate(pop).star_counts()
        line = next(line for line in out.splitlines() if line.split()[:1] == ["three_star"]).split()
        assert line[1] == str(counts.loc["three_star", "count"])
        assert "60 branches" in out

    def test_policy_parameters(self, capsys, policy):
        assert main(["policy", "--parameters"]) == 0
        out = capsys.readouterr().out
        assert "baseline" in out
        assert "branch.satisfaction_share" in out and "quote" in out
        assert "structure.party_committee_from" in out

    def test_out_writes_per_unit_results(self, tmp_path, capsys, result):
        out = tmp_path / "results"
        assert main(["evaluate", "--out", str(out)]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["branches.csv", "members.csv"]
        b = pd.read_csv(out / "branches.csv")
        m = pd.read_csv(out / "members.csv")
        assert b["branch_id"].tolist() == result.branches["branch_id"].tolist()
        assert b["score"].tolist() == pytest.approx(result.branches["score"].tolist())
        assert b["stars"].tolist() == result.branches["stars"].tolist()
        assert m["grade"].tolist() == result.members["grade"].tolist()


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
        # Wrapping aside, and without the adds at the right edge of each step's first line.
        flat = " ".join(re.sub(r"\s+[+-]\d+\.\d\d$", "", line) for line in out.splitlines()).split()
        flat = " ".join(flat)
        pos = 0
        for row in steps.itertuples(index=False):
            head = " ".join(f"{row.step}: {row.item}".split())
            pos = flat.index(head, pos)        # every step, in order
            assert " ".join(row.result.split()) in flat
            if row.parameters:
                assert " ".join(f"uses {row.parameters}".split()) in flat
        assert "provenance" not in out.splitlines()[0]
        assert f"the lines add up to {steps['adds'].sum():.2f}." in flat
        # The adds column is at the right edge of each step's first line.
        first = next(line for line in out.splitlines() if line.startswith("indicator (binary): secretary_in_post"))
        assert first.split()[-1] == f"{steps['adds'].iloc[0]:+.2f}"

    def test_provenance_lists_each_parameter_once(self, capsys, monkeypatch, policy, example_pop):
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B003", "--provenance"], columns=100)
        assert code == 0
        steps = bs.explain(example_pop, policy, branch_id="B003")
        paths = list(dict.fromkeys(p for text in steps["parameters"] for p in _PATHS.findall(text)))
        section = out.split(f"Where each of the {len(paths)} parameters comes from:\n")[1]
        flat = " ".join(section.split())
        for path in paths:
            assert flat.count(f"{path} = ") == 1, path
            assert " ".join(f"{path} = {_plain(policy[path])} {policy.provenance(path)}".split()) in flat, path

    def test_member(self, capsys, monkeypatch, policy, example_pop):
        code, out, _ = self._run(capsys, monkeypatch, ["--member", "M0001"], columns=250)
        assert code == 0
        steps = bs.explain(example_pop, policy, member_id="M0001").set_index("step")
        assert steps.loc["annual score", "result"] in out
        assert f"→ {steps.loc['grade', 'result']}" in out
        assert f"the lines add up to {steps['adds'].sum():.2f}." in out

    def test_reads_the_data_folder(self, tmp_path, capsys, monkeypatch, policy, result):
        # --data is read like `evaluate --data`: a vacant secretary post in the copied tables shows up.
        folder = _copy_examples(tmp_path)
        b = pd.read_csv(folder / "branches.csv")
        b.loc[b["branch_id"] == "B001", "secretary_in_post"] = 0
        b.to_csv(folder / "branches.csv", index=False)
        code, out, _ = self._run(capsys, monkeypatch, ["--data", str(folder), "--branch", "B001"], 200)
        assert code == 0
        assert f"of the tables in {folder}" in out.splitlines()[0]
        assert "fact secretary_in_post = 0" in out and "FIRES" in out
        assert "\n    5 before vetoes; capped by secretary_vacant → 0\n" in out
        # The untouched example prints the branch as evaluate scores it, no veto firing.
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B001"], 200)
        b001 = result.branches.set_index("branch_id").loc["B001"]
        assert b001["stars"] > 0 and f"no veto fires → {b001['stars']}\n" in out
        assert "FIRES" not in out

    def test_a_branch_of_a_generated_city(self, capsys, monkeypatch, policy):
        # --seed N explains a branch of the default city generated with seed N (as sweep and compare use it).
        code, out, _ = self._run(capsys, monkeypatch, ["--branch", "B000007", "--seed", "3"], 120)
        assert code == 0
        assert "the default city generated with seed 3" in out.splitlines()[0]
        expected = bs.evaluate(bs.generate(policy, seed=3, members=False)).branches.set_index("branch_id")
        assert f"sum of the lines above (column adds) → {expected.loc['B000007', 'score']:.2f}\n" in out
        assert f"→ {expected.loc['B000007', 'stars']}\n" in out

    @pytest.mark.parametrize("argv, named", [
        (["--branch", "B999"], r"branch_id 'B999' is not in the branches table of the folder \S*examples "
                               r"\(12 branches; ids such as B001, B002, B003\)"),
        (["--branch", "B001", "--seed", "3"], r"not in the branches table of the generated city, seed 3 .*"
                                              r"ids such as B000001"),
        (["--member", "M0001", "--month", "13"], r"no record for month 13"),
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
