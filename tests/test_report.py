"""The HTML report, for every shipped scheme: its sections, its names, its folder and its command.

Sections are checked one by one against the analyses they report (the
outcome, members and assumptions need only :func:`branchsim.evaluate`);
whole reports are written for each scheme and must name its levels in its
own terms and nothing of another scheme.
"""
from __future__ import annotations

import contextlib
import html as H
import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import BranchsimError
from branchsim import _report_compare as compared, _report_members as more, _report_sections as sections
from branchsim._result import targets
from branchsim.cli import main
from branchsim.report import REPORT_FILES, write_report
from conftest import EXAMPLES
import shipped


def _text(page: str) -> str:
    """The page's prose without tags (entities decoded), for matching sentences."""
    return H.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _html(section) -> str:
    return _text("".join(section.blocks))


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def _names(p) -> set[str]:
    """Every level and designation name of a scheme, in its source's language and in English."""
    lv = p.scheme.branch.levels
    out = set(lv.labels) | set(lv.en)
    for d in p.scheme.branch.designations:
        out |= {d.label, d.en}
    return out


@pytest.fixture(scope="module", params=shipped.SCHEMES)
def case(request):
    """A shipped scheme, a small generated population of it (members when it rates them) and its evaluation."""
    p = shipped.load(request.param)
    pop = bs.generate(p, seed=1, n_branches=100)
    return request.param, p, pop, bs.evaluate(pop, p)


@pytest.fixture
def no_figures(monkeypatch):
    """Figures drawn but not rendered to PNG: for tests of folders and arguments, not of content."""
    monkeypatch.setattr(sections, "_png", lambda fig: "")


@pytest.fixture
def quick(monkeypatch, no_figures):
    """The analyses beyond the evaluation replaced by empty sections: for tests of the folder and the command."""
    for module, name in ((sections, "sweep"), (sections, "fragility"), (more, "assumptions")):
        monkeypatch.setattr(module, name, lambda pop, policy, _n=name: sections.Section(_n, _n))
    monkeypatch.setattr(compared, "measurement", lambda pop, policy, **kw: sections.Section("measurement", "m"))


# -- the outcome ---------------------------------------------------------------------------------------
def test_outcome_names_every_level_in_the_scheme_s_terms(case):
    name, p, pop, r = case
    s = sections.outcome(pop, p, r)
    text = _html(s)
    lv = p.scheme.branch.levels
    for label, en, lid in zip(lv.labels, lv.en, lv.ids):
        assert f"{r.level_counts().loc[lid, 'count']} {en} ({label})" in text
    df = s.tables["outcome.csv"].set_index("measure")
    counts = r.level_counts()["count"]
    assert df.loc[counts.index, "count"].tolist() == counts.tolist()
    assert set(df.loc[counts.index, "kind"]) <= {"level", "designation"}
    for c, k in r.consequence_counts().items():
        if c in df.index:
            assert df.loc[c, "count"] == k
    assert "published" not in df                           # 100 branches: never beside the published figures


def test_outcome_beside_the_targets_only_at_their_scale():
    p = shipped.load("star_quota")
    t = targets(p)
    pop = bs.generate(p, seed=2, n_branches=int(t["scale"]), members=False)
    s = sections.outcome(pop, p)
    df = s.tables["outcome.csv"].set_index("measure")
    for key, value in t["counts"].items():
        assert df.loc[key, "published"] == value
        assert df.loc[key, "difference"] == df.loc[key, "count"] - value
    assert f"(published: {t['counts'][p.levels[0]]:,.0f})" in _html(s)
    small = sections.outcome(bs.generate(p, seed=2, n_branches=200, members=False), p)
    assert "published" not in small.tables["outcome.csv"] and "(published:" not in _html(small)
    assert "This population has 200, so they are not shown" in _html(small)


def test_a_scheme_without_published_counts_says_so(case):
    name, p, pop, r = case
    if targets(p)["counts"]:
        pytest.skip("the scheme publishes counts")
    html = _html(sections.outcome(pop, p, r))
    assert "No published counts are shown" in html
    assert ("its targets file holds none" if p.companion("targets") else "it has no targets file") in html


# -- members ---------------------------------------------------------------------------------------------
def test_members_grades_exempt_and_truth(case):
    name, p, pop, r = case
    s = more.members(pop, p, r)
    if not p.has_members:
        assert "rates branches only" in _html(s) and not s.tables
        return
    g = s.tables["member_grades.csv"].set_index("grade")
    assert g["members"].to_dict() == r.grade_counts().to_dict()
    graded = g.drop("exempt", errors="ignore")
    assert list(graded.index) == list(p.scheme.member.grades.ids)
    exempt = int(r.members["grade"].isna().sum())
    assert ("exempt" in g.index) == bool(exempt)
    if exempt:
        assert f"{exempt:,} members belong to a class exempt from grading" in _html(s)
    true = more.member_truth(pop, p)
    assert graded["truly"].sum() == int(pd.notna(true).sum()) == len(r.members) - exempt
    wrong = int(((r.members["grade"].to_numpy(object) != true) & pd.notna(true)).sum())
    assert f"{wrong:,} are misgraded" in _html(s)
    for gid, en in zip(p.scheme.member.grades.ids, p.scheme.member.grades.en):
        assert en in _html(s), gid


# -- assumptions -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def decided(case):
    name, p, pop, r = case
    return more.assumptions(pop, p)


def test_every_assumption_is_listed_and_the_deciding_ones_shown(case, decided):
    name, p, pop, r = case
    d = decided.tables["assumptions.csv"]
    params = p.parameters()
    assert d["path"].tolist() == params.loc[params["provenance"] == "assumption", "path"].tolist()
    page = "".join(decided.blocks)
    for path, decides in zip(d["path"], d["decides"]):
        assert (f"<td>{path}</td>" in page) == decides, path
    effects = d[d["path"].str.endswith(".effect")]
    assert len(effects) and not effects["decides"].any()              # they act on later years only
    assert d["decides"].any()


def test_units_changed_are_those_of_a_full_evaluation(case, decided):
    """The shortcuts (one section compiled, member records re-scored by indicator) give evaluate's counts."""
    name, p, pop, r = case
    d = decided.tables["assumptions.csv"]
    dec = d[d["decides"]]
    picks = pd.concat([dec[~dec["path"].str.startswith("member.")].head(3),
                       dec[dec["path"].str.startswith("member.")].head(3)])
    assert len(picks)
    designations = [x.id for x in p.scheme.branch.designations]
    for row in picks.itertuples():
        value = p[row.path]
        moved = row.moved_to
        moved = (moved == "True" or moved is True) if isinstance(value, bool) else \
            int(moved) if isinstance(value, int) and float(moved).is_integer() else float(moved)
        a, b = r, bs.evaluate(pop, p.update({row.path: moved}))
        cols = ["rating", *designations, *[c.id for c in p.scheme.consequences_of("branch")]]
        cols += [c for c in ("required_level", "committee_needed", "below_minimum") if c in a.branches]
        branches = int((a.branches[cols] != b.branches[cols]).any(axis=1).sum())
        members = 0
        if a.members is not None:
            mcols = ["grade", *[c.id for c in p.scheme.consequences_of("member")]]
            members = int((a.members[mcols].astype(object).fillna("-")
                           != b.members[mcols].astype(object).fillna("-")).any(axis=1).sum())
        assert (row.branches_changed, row.members_changed) == (branches, members), row.path


# -- the sweep, fragility, measurement, years, comparison ----------------------------------------------
@pytest.mark.parametrize("name, expect", [("baseline", "branch.satisfaction_share"),
                                          ("kmeans_by_type", "branch.satisfaction_share"),
                                          ("star_quota", "branch.rating.quotas.{top}"),
                                          ("member_points", "branch.rating.cuts.{top}")])
def test_the_swept_parameter(name, expect):
    p = shipped.load(name)
    key = sections.sweep_parameter(p)
    assert key == expect.format(top=p.levels[0])
    grid = sections.sweep_grid(p, key)
    assert round(float(p[key]), 6) in grid and len(grid) >= 5 and grid == sorted(grid)
    for v in grid:
        if v != round(float(p[key]), 6):
            p.update({key: v})                                  # every value is a policy the package accepts


def test_the_sweep_section_reports_the_sweep(case):
    name, p, pop, r = case
    s = sections.sweep(pop, p)
    key = sections.sweep_parameter(p)
    df = s.tables["sweep.csv"]
    total = df[df["type"] == "all"].set_index(key)
    assert total.loc[round(float(p[key]), 6), "changed"] == 0          # the policy itself
    by_type = df[df["type"] != "all"].groupby(key)[["changed", "n"]].sum()
    pd.testing.assert_frame_equal(total[["changed", "n"]], by_type, check_dtype=False)
    assert f"The parameter swept is {key}" in _html(s)


def test_fragility_section_is_the_analysis(case):
    name, p, pop, r = case
    s = sections.fragility(pop, p)
    f = bs.fragility(pop, p, delta=sections.FRAGILITY_DELTA)
    assert s.tables["fragility.csv"]["fragile"].sum() == f.n_fragile
    assert f"{f.n_fragile} of {len(pop.branches)} branches" in _html(s)
    assert ("neighbour" in _html(s)) == p.scheme.branch.rating.relative


def test_measurement_section_is_the_monte_carlo(case):
    name, p, pop, r = case
    sizes = (10, 25) if p.has_survey else ()
    s = compared.measurement(pop, p, draws=3, seed=0, sizes=sizes)
    mc = bs.measurement_mc(pop, p, draws=3, seed=0, survey_sizes=list(sizes) or None, progress=False)
    np.testing.assert_allclose(s.tables["measurement_uncertainty.csv"]["misclassified"],
                               mc.misclassification["misclassified"])
    for d in p.scheme.branch.designations:
        assert f"{d.en} ({d.label}): a branch the truth does not designate" in _html(s)


def test_consecutive_years_rules(case):
    name, p, pop, r = case
    rules = [c for c in p.scheme.consequences_of("branch") if c.years > 1]
    s = more.consecutive_years(pop, p, years=2, seed=0)
    if not rules:
        assert "no consequence has 'years' above 1" in _html(s) and not s.tables
        return
    df = s.tables["consecutive_years.csv"]
    assert len(df) == sections.HISTORIES * 2 * len(rules)
    assert sorted(df["history"].unique()) == list(range(sections.HISTORIES))
    for c in rules:
        assert f"{c.years} years in a row (consequences.{c.id}.when.years = {c.years})" in _html(s)
    assert (df["false_alarms"] <= df["fired"]).all()


def test_comparison_with_a_reform_file():
    p = shipped.load("baseline")
    pop = bs.generate(p, seed=3, n_branches=100, members=False)
    reform, src = __import__("branchsim.report", fromlist=["_reform_arg"])._reform_arg(shipped.REFORM, p)
    assert reform.name == p.name + "+kmeans_by_type"
    s = compared.comparison(pop, p, reform, src)
    c = bs.compare(pop, p, reform)
    assert s.tables["comparison_movers.csv"]["branch_id"].tolist() == c.movers["branch_id"].tolist()
    tr = s.tables["comparison_transitions.csv"]
    assert tr.loc[tr["type"] == "all", "branches"].sum() == 100
    assert "changes 0 parameter(s) and 2 structural choice(s)" in _html(s)
    assert f"{len(c.movers)} of 100 branches" in _html(s)
    same = compared.comparison(pop, p, p)
    assert "nothing changes" in _html(same)


# -- whole reports ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_of(case, tmp_path_factory):
    name, p, pop, r = case
    out = write_report(tmp_path_factory.mktemp(name) / "report", policy=p, data=pop, draws=3, years=2)
    return out


def test_a_report_of_each_scheme(case, report_of):
    name, p, pop, r = case
    page = report_of.read_text(encoding="utf-8")
    text = _text(page)
    for term in _names(p):
        assert term in text, term
    files = {f.name for f in report_of.parent.iterdir()}
    assert files <= set(REPORT_FILES)
    assert ("member_grades.csv" in files) == p.has_members
    assert ("consecutive_years.csv" in files) == any(c.years > 1 for c in p.scheme.consequences_of("branch"))
    assert page.count("src='data:image/png;base64,") == 4          # outcome, sweep, fragility, MC


@pytest.mark.parametrize("name", ["star_quota", "member_points"])
def test_no_name_or_figure_of_the_seed_city_beside_another_scheme(name, tmp_path):
    p, base = shipped.load(name), bs.Policy.load()
    foreign = _names(base) - _names(p)
    assert foreign
    pop = bs.generate(p, seed=4, n_branches=int(targets(p)["scale"]), members=False)
    text = _text(write_report(tmp_path / "r", policy=p, data=pop, draws=2).read_text(encoding="utf-8"))
    for term in foreign:
        assert not re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text), term
    assert targets(base)["source"] not in text
    assert "(published: 41)" not in text and "1,500 branches" not in text


def test_two_runs_are_byte_identical(tmp_path):
    p = shipped.load("star_quota")
    pop = bs.generate(p, seed=5, n_branches=80)
    a = write_report(tmp_path / "a", policy=p, data=pop, draws=2).parent
    b = write_report(tmp_path / "b", policy=p, data=pop, draws=2).parent
    assert sorted(f.name for f in a.iterdir()) == sorted(f.name for f in b.iterdir())
    for f in a.iterdir():
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name


# -- the folder: atomic, refused when foreign, bad arguments -------------------------------------------
@pytest.mark.usefixtures("quick")
class TestFolder:
    def test_an_earlier_report_is_replaced_whole(self, tmp_path):
        out = tmp_path / "r"
        write_report(out, data=EXAMPLES, reform=shipped.REFORM, draws=2)
        assert "comparison_movers.csv" in {p.name for p in out.iterdir()}
        write_report(out, data=EXAMPLES, draws=2)
        assert not [p for p in out.iterdir() if p.name.startswith("comparison_")]
        assert _leftovers(tmp_path) == []

    def test_a_failure_midway_leaves_the_earlier_report_untouched(self, tmp_path, monkeypatch):
        out = tmp_path / "r"
        write_report(out, data=EXAMPLES, draws=2)
        before = {p.name: p.read_bytes() for p in out.iterdir()}

        def boom(*args, **kwargs):
            raise BranchsimError("simulated failure")
        monkeypatch.setattr(sections, "fragility", boom)
        with pytest.raises(BranchsimError, match="simulated failure"):
            write_report(out, data=EXAMPLES, draws=2)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert _leftovers(tmp_path) == []

    def test_tables_without_truth_skip_measurement_and_years(self, tmp_path, monkeypatch):
        monkeypatch.undo()                               # the real measurement section says why it is empty
        monkeypatch.setattr(sections, "_png", lambda fig: "")
        for module, name in ((sections, "sweep"), (sections, "fragility"), (more, "assumptions")):
            monkeypatch.setattr(module, name, lambda pop, policy, _n=name: sections.Section(_n, _n))
        page = write_report(tmp_path / "r", data=EXAMPLES, draws=2, years=2).read_text(encoding="utf-8")
        assert "Not available for this population" in _text(page)
        assert "simulating later years needs its truth" in _text(page)

    def test_a_folder_with_other_files_is_refused(self, tmp_path):
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        with pytest.raises(BranchsimError, match="notes.txt"):
            write_report(out, data=EXAMPLES, draws=2)
        assert [p.name for p in out.iterdir()] == ["notes.txt"]

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


@pytest.mark.usefixtures("quick")
class TestReportCommand:
    @pytest.mark.parametrize("make, match", [
        (lambda t: ["--policy", str(t / "missing.yaml")], "missing.yaml"),
        (_bad_yaml, "bad.yaml: not valid YAML"),
        (_bad_data, "martian"),
        (lambda t: ["--reform", str(t / "missing.yaml")], "missing.yaml"),
        (lambda t: ["--draws", "0"], "--draws"),
        (lambda t: ["--years", "0"], "--years"),
    ])
    def test_bad_input_is_one_error_and_exit_2(self, tmp_path, capsys, make, match):
        argv = ["report", *make(tmp_path), "--out", str(tmp_path / "report")]
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("branchsim: error: ") and match in captured.err
        assert "Traceback" not in captured.err and captured.out == ""
        assert not (tmp_path / "report").exists() and _leftovers(tmp_path) == []

    @pytest.mark.parametrize("name", ["star_quota", "member_points"])
    def test_report_of_a_shipped_scheme_with_its_names(self, name, tmp_path):
        out = tmp_path / "rep"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["report", "--policy", str(shipped.path(name)), "--draws", "2",
                       "--out", str(out)])
        assert rc == 0 and f"open {out / 'report.html'}" in buf.getvalue()
        text = _text((out / "report.html").read_text(encoding="utf-8"))
        for term in _names(shipped.load(name)):
            assert term in text, term

    def test_report_with_a_reform_file(self, tmp_path, capsys):
        out = tmp_path / "rep"
        assert main(["report", "--data", str(EXAMPLES), "--reform", str(shipped.REFORM), "--draws", "2", "--out",
                     str(out)]) == 0
        names = {p.name for p in out.iterdir()}
        assert {"comparison_transitions.csv", "comparison_movers.csv", "policy_diff.csv"} <= names
        diff = pd.read_csv(out / "policy_diff.csv")
        assert set(diff["path"]) == {"branch.rating.design", "branch.rating.peer_groups"}


def test_the_methods_appendix_lists_every_rule_and_the_population(case, report_of):
    name, p, pop, r = case
    folder = report_of.parent
    params = pd.read_csv(folder / "methods_parameters.csv", keep_default_na=False)
    assert params["path"].tolist() == p.parameters()["path"].tolist()
    assert set(params["provenance"]) <= {"quote", "assumption"}
    text = _text(report_of.read_text(encoding="utf-8"))
    assert "Methods appendix" in text and f"{len(params)} parameters" in text
    if pop.seed is not None:
        gen = pd.read_csv(folder / "methods_generator.csv")
        assert gen.set_index("path")["value"].to_dict()["measurement.indicator_noise"] == \
            pytest.approx(pop.params.get("measurement.indicator_noise"))
        assert f"from seed {pop.seed.entropy if hasattr(pop.seed, 'entropy') else pop.seed}" in text
        # each generator parameter's provenance, as its generator file gives it
        kinds = gen.set_index("path")["provenance"].to_dict()
        assert set(kinds.values()) <= {"calibrated", "quote", "assumption", "unstated"}
        loc = pop.params.document["branch_quality"]["loc"]
        assert kinds["branch_quality.loc"] == next(k for k in ("calibrated", "quote", "assumption") if k in loc)
        calibrated = gen[gen["provenance"] == "calibrated"]
        assert (f"{len(calibrated)} of these parameters were calibrated" in text) == (len(calibrated) > 0)
        # the calibration's fit: each published count beside this population's
        published = {k: v for k, v in targets(p)["counts"].items() if k in r.level_counts().index}
        if published:
            fit = pd.read_csv(folder / "methods_calibration.csv").set_index("target")
            assert fit["published"].to_dict() == published
            counts = r.level_counts()["count"]
            assert fit["population"].to_dict() == {k: int(counts[k]) for k in published}
            assert fit["difference"].to_numpy() == pytest.approx(
                100 * (fit["population"] / len(pop.branches) - fit["published"] / targets(p)["scale"]))
        else:
            assert not (folder / "methods_calibration.csv").exists() and "no fit to show" in text
    else:
        assert not (folder / "methods_generator.csv").exists() and "loaded from" in text


def test_cut_text_of_levels_no_unit_of_a_group_reaches():
    """k-means within types on the 12 example branches: most types have no four- or five-star cut (+inf); the
    prose says so instead of printing 'from inf' (and no NaN warning from inf - inf)."""
    p = bs.Policy.load().update(shipped.REFORM)
    r = bs.evaluate(bs.load_population(EXAMPLES, policy=p), p)
    cuts = r.cut_points
    assert np.isinf(cuts["cut"]).any() and np.isfinite(cuts["cut"]).any()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        text = sections.cut_text(cuts, p)
    assert "inf" not in text
    for lv in p.levels:
        values = cuts.loc[cuts["level"] == lv, "cut"].to_numpy(float)
        if len(values) and np.isinf(values).all():
            assert f"{sections.name(lv, p)} reached by no unit" in text
        elif np.isinf(values).any():
            assert f"(reached in no unit of {int(np.isinf(values).sum())} group" in text
