"""explain(): every rule step for one unit; the command line."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import DataError
from branchsim.cli import main
from conftest import EXAMPLES


@pytest.fixture(scope="module")
def result(policy):
    t = {k: pd.read_csv(EXAMPLES / f"{k}.csv") for k in ("branches", "members", "member_months")}
    return bs.evaluate_tables(policy, t["branches"], t["members"], t["member_months"])


# -- explain ----------------------------------------------------------------------------------------
class TestExplainBranch:
    @pytest.mark.parametrize("branch_id", ["B001", "B004", "B008"])
    def test_has_every_step(self, policy, examples, branch_id):
        steps = bs.explain(policy, examples["branches"], branch_id=branch_id)
        assert list(steps.columns) == ["step", "item", "input", "result", "parameters", "provenance"]
        ind = steps[steps["step"].str.startswith("indicator")]
        assert len(ind) == len(policy.branch_indicators)
        assert [i.split(":")[0] for i in ind["item"]] == list(policy.branch_indicators)
        dims = steps[steps["step"] == "dimension"]
        assert [i.split(":")[0] for i in dims["item"]] == policy.dimensions
        vetoes = steps[steps["step"] == "veto"]
        assert [i.split(":")[0] for i in vetoes["item"]] == list(policy["branch.vetoes"])
        for step in ("satisfaction survey", "score", "star (before vetoes)", "stars", "weak",
                     "consequence", "structure"):
            assert (steps["step"] == step).sum() == 1, step
        # Every parameter-driven step names where its parameter comes from.
        param_steps = steps[steps["parameters"] != ""]
        assert param_steps["provenance"].str.match(r"^(quote|assumption): ").all()

    def test_agrees_with_evaluate_tables(self, policy, examples, result):
        by_id = result.branches.set_index("branch_id")
        for branch_id in by_id.index:
            steps = bs.explain(policy, examples["branches"], branch_id=branch_id).set_index("step")
            assert float(steps.loc["score", "result"]) == pytest.approx(by_id.loc[branch_id, "score"],
                                                                         abs=0.005)
            assert int(steps.loc["stars", "result"]) == by_id.loc[branch_id, "stars"]
            assert (steps.loc["weak", "result"] == "weak") == by_id.loc[branch_id, "weak"]

    def test_vetoed_weak_branch(self, policy, examples):
        # B008's secretary post is vacant: the veto fires and the branch is weak.
        steps = bs.explain(policy, examples["branches"], branch_id="B008").set_index("item")
        assert steps.loc[steps.index.str.startswith("secretary_vacant"), "result"].iloc[0].startswith("FIRES")
        assert steps.set_index("step", drop=False).loc["stars", "result"] == "0"

    def test_reorganise_shows_in_consequence(self, policy, examples):
        # B004 is weak and was weak the year before: two in a row → reorganise.
        steps = bs.explain(policy, examples["branches"], branch_id="B004").set_index("step")
        assert steps.loc["consequence", "result"].startswith("reorganise")

    def test_type_override_is_cited(self, policy, examples):
        # B003 is an urban community: serve_masses is worth 6 for that type.
        steps = bs.explain(policy, examples["branches"], branch_id="B003")
        row = steps[steps["item"].str.startswith("serve_masses")].iloc[0]
        assert "branch.types.urban_community.indicators.serve_masses.points=6" in row["parameters"]

    def test_unknown_branch(self, policy, examples):
        with pytest.raises(DataError, match="B999"):
            bs.explain(policy, examples["branches"], branch_id="B999")

    def test_needs_exactly_one_id(self, policy, examples):
        with pytest.raises(DataError):
            bs.explain(policy, examples["branches"])
        with pytest.raises(DataError):
            bs.explain(policy, examples["branches"], branch_id="B001", member_id="M0001")


class TestExplainMember:
    def test_member_steps_agree_with_evaluate(self, policy, examples, result):
        data = SimpleNamespace(**examples)
        members = result.members.set_index("member_id")
        for member_id in ("M0001", "M0002", members.index[-1]):
            steps = bs.explain(policy, data, member_id=member_id).set_index("step")
            assert (steps.index.str.startswith("indicator")).sum() == len(policy.member_indicators)
            assert steps.loc["grade", "result"] == members.loc[member_id, "grade"]
            annual = float(steps.loc["annual score", "result"].split(" = ")[0])
            assert annual == pytest.approx(members.loc[member_id, "annual"], abs=0.005)

    def test_consequence_for_a_warning_member(self, policy, examples, result):
        m = result.members
        warned = m.loc[m["grade"] == "warning", "member_id"]
        assert len(warned) >= 1      # the examples include a warning-grade member
        steps = bs.explain(policy, SimpleNamespace(**examples), member_id=warned.iloc[0])
        assert steps.set_index("step").loc["consequence", "result"].startswith("mentoring")

    def test_unknown_member(self, policy, examples):
        with pytest.raises(DataError, match="M9999"):
            bs.explain(policy, SimpleNamespace(**examples), member_id="M9999")

    def test_member_needs_member_tables(self, policy, examples):
        with pytest.raises(DataError):
            bs.explain(policy, examples["branches"], member_id="M0001")


class TestExplainPopulation:
    def test_loaded_folder(self, policy, result):
        pop = bs.load_population(EXAMPLES, policy=policy)
        steps = bs.explain(policy, pop, member_id="M0002").set_index("step")
        assert steps.loc["grade", "result"] == result.members.set_index("member_id").loc["M0002", "grade"]

    def test_generated_population_agrees_with_evaluate(self, policy):
        pop = bs.generate(policy, seed=11, n_branches=40)
        r = bs.evaluate(pop, policy)
        b = r.branches.iloc[7]
        steps = bs.explain(policy, pop, branch_id=b["branch_id"]).set_index("step")
        assert float(steps.loc["score", "result"]) == pytest.approx(b["score"], abs=0.005)
        assert int(steps.loc["stars", "result"]) == b["stars"]
        m = r.members.iloc[100]
        steps = bs.explain(policy, pop, member_id=m["member_id"]).set_index("step")
        assert steps.loc["grade", "result"] == m["grade"]
        annual = float(steps.loc["annual score", "result"].split(" = ")[0])
        assert annual == pytest.approx(m["annual"], abs=0.005)


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

    def test_explain_branch(self, capsys, policy, examples):
        # The printed steps are bs.explain's steps for the example tables (the default folder).
        assert main(["explain", "--branch", "B001"]) == 0
        out = capsys.readouterr().out
        assert "secretary_in_post" in out and "structure" in out
        steps = bs.explain(policy, examples["branches"], branch_id="B001")
        assert "provenance" not in out.splitlines()[0]         # provenance is left out of the print
        # One printed line per step, in order, each with its result.
        lines = out.splitlines()[1:]
        assert len(lines) == len(steps)
        for line, (step, result) in zip(lines, steps[["step", "result"]].itertuples(index=False)):
            assert line.strip().startswith(step) and result[:60] in line, (step, result)

    def test_explain_member(self, capsys, policy):
        assert main(["explain", "--member", "M0001"]) == 0
        out = capsys.readouterr().out
        assert "annual score" in out
        steps = bs.explain(policy, bs.load_population(EXAMPLES, policy=policy),
                           member_id="M0001").set_index("step")
        assert steps.loc["annual score", "result"] in out
        assert steps.loc["grade", "result"] in out

    def test_explain_reads_the_data_folder(self, tmp_path, capsys, policy, result):
        # --data is read like `evaluate --data`: a vacant secretary post in the copied tables shows up.
        folder = _copy_examples(tmp_path)
        b = pd.read_csv(folder / "branches.csv")
        b.loc[b["branch_id"] == "B001", "secretary_in_post"] = 0
        b.to_csv(folder / "branches.csv", index=False)
        assert main(["explain", "--data", str(folder), "--branch", "B001"]) == 0
        out = capsys.readouterr().out
        assert "fact secretary_in_post = 0" in out and "FIRES" in out
        lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
        assert lines["stars"][-1] == "0"                          # final star: capped at 0
        assert lines["weak"][-2:] == ["weak", f"branch.weak_below={policy['branch.weak_below']:g}"]
        # The untouched example prints the branch as evaluate scores it, no veto firing.
        assert main(["explain", "--branch", "B001"]) == 0
        out = capsys.readouterr().out
        lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
        b001 = result.branches.set_index("branch_id").loc["B001"]
        assert b001["stars"] > 0 and lines["stars"][-1] == str(b001["stars"])
        assert "FIRES" not in out

    def test_explain_unknown_branch(self, capsys):
        assert main(["explain", "--branch", "B999"]) == 2
        err = capsys.readouterr().err
        assert "B999" in err and "Traceback" not in err

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
