"""The HTML report, the report / sweep / compare commands, and the notebook HTML reprs."""
from __future__ import annotations

import contextlib
import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import BranchsimError
from branchsim import _report_sections as sections
from branchsim.cli import main
from branchsim.report import write_report
from conftest import EXAMPLES

SHARE = "branch.satisfaction_share"
BASE_FILES = {"report.html", "outcome.csv", "member_grades.csv", "assumptions.csv",
              "sweep_satisfaction_share.csv", "fragility.csv", "fragility_counts.csv",
              "measurement_uncertainty.csv"}
REFORM_FILES = {"comparison_transitions.csv", "comparison_movers.csv", "policy_diff.csv"}


def _text(html: str) -> str:
    """The page's prose without tags (entities decoded), for matching sentences."""
    import html as h
    return h.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.fixture
def no_figures(monkeypatch):
    """Figures drawn but not rendered to PNG: for tests of folders and arguments, not of content."""
    monkeypatch.setattr(sections, "_png", lambda fig: "")


# -- the default report, as the README's main job runs it -------------------------------------------------
@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    """``branchsim report --out DIR`` on the built-in default: folder and stdout."""
    out = tmp_path_factory.mktemp("default") / "report"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["report", "--out", str(out)])
    assert rc == 0
    return out, buf.getvalue()


class TestDefaultReport:
    def test_runs_with_only_out_and_says_where_to_open_it(self, default_report):
        out, stdout = default_report
        assert f"open {out / 'report.html'}" in stdout
        assert {p.name for p in out.iterdir()} == BASE_FILES

    def test_html_is_self_contained(self, default_report):
        html = (default_report[0] / "report.html").read_text(encoding="utf-8")
        assert html.startswith("<!DOCTYPE html>")
        assert "<script" not in html and "<link" not in html
        assert not re.search(r"""(src|href)=['"](?!data:|#)""", html)      # no external asset at all
        assert html.count("src='data:image/png;base64,") == 4          # outcome, sweep, fragility, MC
        for sid in ("outcome", "members", "assumptions", "sweep", "fragility", "measurement"):
            assert f"<section id='{sid}'>" in html
        assert "<section id='comparison'>" not in html

    def test_outcome_matches_evaluate_and_the_published_figures(self, default_report, city):
        df = pd.read_csv(default_report[0] / "outcome.csv").set_index("measure")
        r = bs.evaluate(city)
        sc, up = r.star_counts(), r.upgrade_counts()
        for level, count in sc["count"].items():
            assert df.loc[level, "count"] == count
        for level, count in up["count"].items():
            assert df.loc[level, "count"] == count
        pub = bs.published_counts()
        assert df.loc[pub.index, "published"].astype(int).tolist() == pub.tolist()
        assert (df.loc[pub.index, "difference"] == df.loc[pub.index, "count"] - pub).all()
        text = _text((default_report[0] / "report.html").read_text(encoding="utf-8"))
        assert f"{sc.loc['five_star', 'count']} five-star (published: 41)" in text
        assert sections.at_published_scale(len(city.branches))

    def test_sweep_rows_agree_with_a_direct_evaluation(self, default_report, city, policy):
        df = pd.read_csv(default_report[0] / "sweep_satisfaction_share.csv")
        assert sorted(df[SHARE].unique()) == pytest.approx(list(sections.SWEEP_SHARES))
        types = sorted(city.branches["type"].unique())
        assert sorted(df["type"].unique()) == sorted(["all", *types])
        total = df[df["type"] == "all"].set_index(SHARE)
        by_type = df[df["type"] != "all"].groupby(SHARE)[["five_star", "weak", "changed", "n"]].sum()
        pd.testing.assert_frame_equal(total[["five_star", "weak", "changed", "n"]], by_type)
        assert total.loc[0.4, "changed"] == 0                                  # the policy itself
        expected = bs.evaluate(city, policy.update({SHARE: 0.3})).star_counts()["count"]
        for level in ("five_star", "four_star", "three_star", "no_star", "weak"):
            assert total.loc[0.3, level] == expected[level], level
        text = _text((default_report[0] / "report.html").read_text(encoding="utf-8"))
        n = int(total.loc[0.3, "changed"])
        assert f"Lowering the survey share from 40% to 30% changes the star of {n} branches" in text

    def test_fragility_tables_are_the_analysis(self, default_report, city, policy):
        out = default_report[0]
        f = bs.fragility(city, policy, delta=1.0)
        per_branch = pd.read_csv(out / "fragility.csv")
        assert len(per_branch) == len(city.branches)
        assert per_branch["fragile"].sum() == f.n_fragile
        counts = pd.read_csv(out / "fragility_counts.csv")
        assert counts["within"].tolist() == f.counts["within"].tolist()
        text = _text((out / "report.html").read_text(encoding="utf-8"))
        assert f"{f.n_fragile} of 1,500 branches" in text

    def test_measurement_uncertainty_is_the_monte_carlo(self, default_report):
        # Equality with measurement_mc is checked on the small report (TestSmallReport); here the
        # city's own: more respondents, fewer wrong stars (common random numbers across sizes).
        df = pd.read_csv(default_report[0] / "measurement_uncertainty.csv")
        assert df["survey_size"].tolist() == [10, 25, 50]
        assert df["misclassified"].iloc[0] > df["misclassified"].iloc[-1]
        text = _text((default_report[0] / "report.html").read_text(encoding="utf-8"))
        b = df.set_index("survey_size").loc[50]
        assert f"(n = {int(b['truly_weak'])} truly weak branches × 100 draws)" in text
        assert f"(n = {int(b['truly_fine']):,} truly fine branches × 100 draws)" in text

    def test_the_rating_assumptions_are_listed(self, default_report, policy):
        d = pd.read_csv(default_report[0] / "assumptions.csv").set_index("path")
        params = policy.parameters()
        assert list(d.index) == params.loc[params["provenance"] == "assumption", "path"].tolist()
        rating = [p for p in d.index if p.startswith(("branch.star_cuts.", "branch.dimensions.",
                                                      "branch.survey.answer_values.", "member.grade_cuts."))]
        assert len(rating) >= 14 and "branch.weak_below" in d.index
        assert d.loc[rating + ["branch.weak_below"], "decides"].all()
        html = (default_report[0] / "report.html").read_text(encoding="utf-8")
        section = html[html.index("<section id='assumptions'>"):]
        section = section[:section.index("</section>")]
        for path, row in d.iterrows():
            assert (f"<td>{path}</td>" in section) == row["decides"], path

    def test_members_are_graded_and_checked_against_the_truth(self, default_report, city_result):
        g = pd.read_csv(default_report[0] / "member_grades.csv").set_index("grade")
        assert g["members"].to_dict() == city_result.grade_counts().to_dict()
        assert g["truly"].sum() == len(city_result.members)
        text = _text((default_report[0] / "report.html").read_text(encoding="utf-8"))
        assert f"{g['misgraded_among_truly'].sum():,} are misgraded" in text


# -- a small saved population: reform, determinism, atomicity ---------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory, policy):
    """A generated population saved as tables (truth included) and a reform file."""
    root = tmp_path_factory.mktemp("small")
    bs.generate(policy, seed=1, n_branches=150).save(root / "pop")
    policy.update({SHARE: 0.3, "branch.star_cuts.4": 78}).save(root / "reform.yaml")
    return root


@pytest.fixture(scope="module")
def small_report(small, tmp_path_factory):
    """One report on the small population with the reform and the two-year rule; shared by the tests."""
    return write_report(tmp_path_factory.mktemp("rep") / "r", data=small / "pop", reform=small / "reform.yaml",
                        draws=5, years=2).parent


class TestSmallReport:
    def test_comparison_section_and_tables(self, small, small_report, policy):
        out = small_report
        assert {p.name for p in out.iterdir()} == BASE_FILES | REFORM_FILES | {"two_year_rule.csv"}
        pop = bs.load_population(small / "pop")
        c = bs.compare(pop, policy, bs.Policy.load(small / "reform.yaml"))
        movers = pd.read_csv(out / "comparison_movers.csv", dtype={"branch_id": str})
        assert movers["branch_id"].tolist() == c.movers["branch_id"].tolist()
        tr = pd.read_csv(out / "comparison_transitions.csv")
        assert tr.loc[tr["type"] == "all", "branches"].sum() == 150
        assert tr.loc[tr["type"] != "all", "branches"].sum() == 150
        diff = pd.read_csv(out / "policy_diff.csv")
        assert {SHARE, "branch.star_cuts.4"} <= set(diff["path"])
        html = (out / "report.html").read_text(encoding="utf-8")
        ch = c.movers["change"]
        assert (f"{len(ch)} of 150 branches ({len(ch) / 150:.1%}) change star: {(ch > 0).sum()} move up "
                f"and {(ch < 0).sum()} down") in _text(html)
        assert "<section id='comparison'>" in html

    def test_measurement_uncertainty_is_the_monte_carlo(self, small, small_report, policy):
        df = pd.read_csv(small_report / "measurement_uncertainty.csv")
        mc = bs.measurement_mc(bs.load_population(small / "pop"), policy, draws=5, seed=0,
                               survey_sizes=[10, 25, 50], progress=False)
        np.testing.assert_allclose(df["misclassified"], mc.misclassification["misclassified"])

    def test_two_runs_are_byte_identical(self, small, small_report, tmp_path):
        b = write_report(tmp_path / "b", data=small / "pop", reform=small / "reform.yaml", draws=5,
                         years=2).parent
        assert sorted(p.name for p in b.iterdir()) == sorted(p.name for p in small_report.iterdir())
        for f in small_report.iterdir():
            assert f.read_bytes() == (b / f.name).read_bytes(), f.name

    def test_published_counts_are_not_shown_beside_a_small_population(self, small_report):
        df = pd.read_csv(small_report / "outcome.csv")
        assert not {"published", "published_scaled", "published_quote"} & set(df.columns)
        text = _text((small_report / "report.html").read_text(encoding="utf-8"))
        assert "This population has 150, so they are not shown" in text
        assert "(published:" not in text

    def test_the_word_assumption_and_every_deciding_parameter(self, small_report, policy):
        html = (small_report / "report.html").read_text(encoding="utf-8")
        assert "Assumptions this outcome depends on" in html and _text(html).count("assumption") >= 3
        d = pd.read_csv(small_report / "assumptions.csv")
        assert set(d["path"]) == set(policy.parameters().query("provenance == 'assumption'")["path"])
        for path in d.loc[d["decides"], "path"]:
            assert f"<td>{path}</td>" in html, path
        effects = d[d["path"].str.startswith(("consequences.effects.", "interventions."))]
        assert len(effects) and not effects["decides"].any()          # they act on later years only

    @pytest.mark.parametrize("path", ["branch.star_cuts.5", "branch.dimensions.role.share",
                                      "branch.indicators.committee_meetings.required", "member.grade_cuts.qualified",
                                      "member.indicators.theory_study.required", "branch.vetoes.major_violation.weak",
                                      "structure.committee_from", "consequences.effects.talk"])
    def test_counts_of_changed_units_are_those_of_a_full_evaluation(self, small, small_report, policy, path):
        d = pd.read_csv(small_report / "assumptions.csv").set_index("path")
        pop = bs.load_population(small / "pop")
        moved = d.loc[path, "moved_to"]
        value = policy[path]
        if isinstance(value, bool):
            moved = moved == "True"
        else:
            moved = float(moved)
            moved = int(moved) if isinstance(value, int) and moved.is_integer() else moved
        a, b = bs.evaluate(pop, policy), bs.evaluate(pop, policy.update({path: moved}))
        cols = ["stars", "weak", "reorganise", "required_level", "committee_needed", "below_minimum"]
        branches = int((a.branches[cols] != b.branches[cols]).any(axis=1).sum())
        members = int((a.members["grade"] != b.members["grade"]).sum())
        assert (d.loc[path, "branches_changed"], d.loc[path, "members_changed"]) == (branches, members)
        assert d.loc[path, "decides"] == bool(branches or members)

    def test_member_truth_is_the_simulation_s(self, small, policy):
        from branchsim._report_members import _member_truth
        from branchsim.dynamics.measure import observed_year
        from branchsim.scoring import GRADES, compile_branch_rules, compile_member_rules, member_grades
        pop = bs.load_population(small / "pop")
        mrules = compile_member_rules(policy)
        cur = observed_year(pop, policy, compile_branch_rules(policy), mrules)
        want = np.array(GRADES, dtype=object)[member_grades(cur["m_true"], mrules)]
        assert (_member_truth(pop, policy) == want).all()

    def test_members_and_their_truth(self, small, small_report, policy):
        g = pd.read_csv(small_report / "member_grades.csv").set_index("grade")
        r = bs.evaluate(bs.load_population(small / "pop"), policy)
        assert g["members"].to_dict() == r.grade_counts().to_dict()
        assert g["truly"].sum() == len(r.members)
        text = _text((small_report / "report.html").read_text(encoding="utf-8"))
        assert re.search(r"Misgrading is most frequent among truly \w+ members: [\d.]+% \(n = \d+ truly", text)

    def test_two_year_rule_section(self, small_report, policy):
        df = pd.read_csv(small_report / "two_year_rule.csv")
        assert len(df) == 10 * 2 and sorted(df["history"].unique()) == list(range(10))
        text = _text((small_report / "report.html").read_text(encoding="utf-8"))
        k = policy["consequences.reorganise_after"]
        assert f"A branch designated weak {k} years in a row is reorganised" in text
        t = df[["truly_weak", "missed"]].sum()
        assert f"(n = {t['truly_weak']:,} truly weak branch-years)" in text
        assert "3,000 branch-years" in text                           # 150 branches x 2 years x 10

    def test_a_reform_equal_to_the_policy_says_nothing_changes(self, tmp_path, policy, no_figures):
        html = write_report(tmp_path / "r", data=EXAMPLES, reform=policy, draws=5)
        assert "nothing changes" in _text(html.read_text(encoding="utf-8"))
        assert pd.read_csv(html.parent / "comparison_movers.csv").empty


@pytest.mark.usefixtures("no_figures")
class TestInputsAndAtomicity:
    def test_tables_without_truth_skip_the_measurement(self, tmp_path):
        html = write_report(tmp_path / "r", data=EXAMPLES, draws=5)
        assert {p.name for p in html.parent.iterdir()} == BASE_FILES - {"measurement_uncertainty.csv"}
        assert "Not available for this population" in _text(html.read_text(encoding="utf-8"))

    def test_an_earlier_report_is_replaced_whole(self, small, tmp_path):
        out = tmp_path / "r"
        write_report(out, data=EXAMPLES, reform=small / "reform.yaml", draws=5)
        write_report(out, data=EXAMPLES, draws=5)
        # no stale comparison tables (tables without truth: no measurement section)
        assert {p.name for p in out.iterdir()} == BASE_FILES - {"measurement_uncertainty.csv"}
        assert _leftovers(tmp_path) == []

    def test_a_failure_midway_leaves_the_earlier_report_untouched(self, tmp_path, monkeypatch):
        out = tmp_path / "r"
        write_report(out, data=EXAMPLES, draws=5)
        before = {p.name: p.read_bytes() for p in out.iterdir()}

        def boom(*args, **kwargs):
            raise BranchsimError("simulated failure")
        monkeypatch.setattr(sections, "fragility", boom)
        with pytest.raises(BranchsimError, match="simulated failure"):
            write_report(out, data=EXAMPLES, draws=5)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert _leftovers(tmp_path) == []

    def test_a_folder_with_other_files_is_refused(self, tmp_path):
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        with pytest.raises(BranchsimError, match="notes.txt"):
            write_report(out, data=EXAMPLES, draws=5)
        assert [p.name for p in out.iterdir()] == ["notes.txt"]

    def test_missing_parent_folders_are_created_and_removed_on_failure(self, tmp_path):
        with pytest.raises(bs.DataError):
            write_report(tmp_path / "a" / "b" / "r", data=tmp_path / "nowhere")
        assert list(tmp_path.iterdir()) == []
        html = write_report(tmp_path / "a" / "b" / "r", data=EXAMPLES, draws=5)
        assert html.exists()

    @pytest.mark.parametrize("kwargs, match", [({"draws": 0}, "draws"), ({"seed": -1}, "seed"),
                                               ({"policy": 3}, "policy"), ({"reform": 3.5}, "reform")])
    def test_bad_arguments(self, tmp_path, kwargs, match):
        with pytest.raises(BranchsimError, match=match):
            write_report(tmp_path / "r", data=EXAMPLES, **kwargs)
        assert list(tmp_path.iterdir()) == []


# -- the command line ---------------------------------------------------------------------------------------
def _bad_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    return ["--policy", str(p)]


def _bad_data(tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLES, folder)
    df = pd.read_csv(folder / "branches.csv")
    df.loc[0, "type"] = "martian"
    df.to_csv(folder / "branches.csv", index=False)
    return ["--data", str(folder)]


def _file_as_parent(tmp_path):
    (tmp_path / "afile").write_text("")
    return ["--out", str(tmp_path / "afile" / "report")]


def _file_as_out(tmp_path):
    (tmp_path / "afile").write_text("")
    return ["--out", str(tmp_path / "afile")]


@pytest.mark.usefixtures("no_figures")
class TestReportCommand:
    @pytest.mark.parametrize("make, match", [
        (lambda t: ["--policy", str(t / "missing.yaml")], "missing.yaml: cannot read policy file"),
        (_bad_yaml, "bad.yaml: not valid YAML"),
        (_bad_data, "column 'type': unknown value(s) ['martian']"),
        (lambda t: ["--reform", str(t / "missing.yaml")], "missing.yaml"),
        (_file_as_parent, "is a file, not a folder"),
        (_file_as_out, "exists and is not a folder"),
        (lambda t: ["--draws", "0"], ("--draws", "must be a whole number >= 1, got 0")),
        (lambda t: ["--years", "0"], ("--years", "must be a whole number >= 1, got 0")),
    ])
    def test_bad_input_is_one_error_and_exit_2(self, tmp_path, capsys, make, match):
        extra = make(tmp_path)
        argv = ["report", *extra] + ([] if "--out" in extra else ["--out", str(tmp_path / "report")])
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("branchsim: error: ")
        for part in ((match,) if isinstance(match, str) else match):
            assert part in captured.err
        assert captured.out == ""
        assert not (tmp_path / "report").exists()
        assert _leftovers(tmp_path) == []

    def test_report_with_data_and_reform(self, small, tmp_path, capsys):
        out = tmp_path / "rep"
        assert main(["report", "--data", str(EXAMPLES), "--reform", str(small / "reform.yaml"),
                     "--draws", "5", "--seed", "3", "--years", "2", "--out", str(out)]) == 0
        assert f"open {out / 'report.html'}" in capsys.readouterr().out
        # tables without truth: no measurement section and no simulated years (the page says why)
        assert {p.name for p in out.iterdir()} == BASE_FILES - {"measurement_uncertainty.csv"} | REFORM_FILES
        assert "simulating later years needs its truth" in _text((out / "report.html").read_text(encoding="utf-8"))


class TestSweepAndCompareCommands:
    def test_sweep_writes_the_sweep_frame(self, small, tmp_path, policy, capsys):
        out = tmp_path / "sweep.csv"
        assert main(["sweep", "--param", SHARE, "--values", "0.2,0.3,0.4", "--by", "type",
                     "--data", str(small / "pop"), "--out", str(out)]) == 0
        got = pd.read_csv(out)
        want = bs.sweep(bs.load_population(small / "pop"), policy, {SHARE: [0.2, 0.3, 0.4]}, by="type",
                        progress=False)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert f"written to {out}" in capsys.readouterr().out

    def test_sweep_grid_of_two_parameters(self, small, tmp_path):
        out = tmp_path / "grid.csv"
        assert main(["sweep", "--param", SHARE, "--values", "0.3,0.4", "--param", "branch.star_cuts.5",
                     "--values", "88,90,92", "--data", str(small / "pop"), "--out", str(out)]) == 0
        assert len(pd.read_csv(out)) == 6

    @pytest.mark.parametrize("argv, match", [
        (["--param", SHARE, "--values", "0.3", "--param", "branch.weak_below"], "one --values list per --param"),
        (["--param", "branch.satisfaction_shar", "--values", "0.3"], "did you mean 'branch.satisfaction_share'"),
        (["--param", SHARE, "--values", "0.3,,0.4"], "comma-separated"),
        (["--param", SHARE, "--values", "0.3", "--by", "colour"], "by='colour'"),
    ])
    def test_sweep_errors(self, small, tmp_path, capsys, argv, match):
        out = tmp_path / "s.csv"
        assert main(["sweep", *argv, "--data", str(small / "pop"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("branchsim: error: ") and match in err
        assert not out.exists()

    def test_compare_writes_its_tables(self, small, tmp_path, policy, capsys):
        out = tmp_path / "cmp"
        assert main(["compare", "--reform", str(small / "reform.yaml"), "--data", str(small / "pop"),
                     "--out", str(out)]) == 0
        from branchsim.cli import COMPARE_FILES
        assert {p.name for p in out.iterdir()} == set(COMPARE_FILES)
        c = bs.compare(bs.load_population(small / "pop"), policy, bs.Policy.load(small / "reform.yaml"))
        assert len(pd.read_csv(out / "movers.csv")) == len(c.movers)
        assert "Branches changing star" in capsys.readouterr().out

    def test_compare_missing_reform_file(self, tmp_path, capsys):
        assert main(["compare", "--reform", str(tmp_path / "no.yaml"), "--out", str(tmp_path / "c")]) == 2
        assert capsys.readouterr().err.startswith("branchsim: error: ")
        assert list(tmp_path.iterdir()) == []


# -- HTML reprs shown in JupyterLab -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reprs(policy):
    pop = bs.generate(policy, seed=4, n_branches=120)
    return {"Policy": policy, "Population": pop, "Result": bs.evaluate(pop, policy),
            "Comparison": bs.compare(pop, policy, {SHARE: 0.3}),
            "Fragility": bs.fragility(pop, policy),
            "MonteCarlo": bs.measurement_mc(pop, policy, draws=5, progress=False)}


@pytest.mark.parametrize("name, expect", [
    ("Policy", "star cut points"), ("Population", "120"), ("Result", "five_star"),
    ("Comparison", SHARE), ("Fragility", "weak line"), ("MonteCarlo", "misclassified")])
def test_repr_html_is_a_table_with_the_content(reprs, name, expect):
    html = reprs[name]._repr_html_()
    assert html.strip() and "<table" in html
    assert expect in html


def test_result_repr_wraps_in_a_narrow_output_area(reprs):
    # The four blocks (stars, grades, structure, consequences) need 1053 px side by side; in a 968 px
    # output area they must wrap rather than be clipped.
    html = reprs["Result"]._repr_html_()
    assert "display:flex;flex-wrap:wrap" in html
    assert html.count("display:block") >= 4                    # the outer table and each block
