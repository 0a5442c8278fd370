"""Sweeps report what a parameter changes (member grades, upgrades, consequences), and refuse a parameter
that changes none of their outputs instead of returning identical rows (issue 13)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.population import member_truth


def _at(p, path, value):
    """The policy with ``path`` at ``value`` (itself when it already is)."""
    return p if p[path] == value else p.update({path: value})
from shipped import SCHEMES, load


@pytest.fixture(scope="module")
def city():
    return bs.generate(seed=3, n_branches=200)


def test_a_member_parameter_moves_member_grades_as_evaluate_does(city):
    p = bs.Policy.load()
    df = bs.sweep(city, p, {"member.record_share": [0.6, 0.8]}, progress=False)
    for share, row in zip([0.6, 0.8], df.itertuples(index=False)):
        pol = _at(p, "member.record_share", share)
        r = bs.evaluate(city, pol)
        want = r.grade_counts()
        got = pd.Series({g: getattr(row, f"grade_{g}") for g in want.index})
        assert got.tolist() == want.tolist()
        true = member_truth(city, pol)
        grade = r.members["grade"].to_numpy(object)
        ok = pd.notna(true) & pd.notna(grade)
        assert row.misgraded == pytest.approx((grade[ok] != true[ok]).mean())
    base = p["member.record_share"]
    assert df.loc[df["member.record_share"] == base, "members_changed"].item() == 0
    assert df.loc[df["member.record_share"] != base, "members_changed"].item() > 0
    # the rows differ: the parameter is not a silent no-op
    assert (df.filter(like="grade_").diff().iloc[1] != 0).any()


def test_structure_and_consequence_parameters_report_their_outputs(city):
    p = bs.Policy.load()
    df = bs.sweep(city, p, {"structure.committee_from": [40, 50]}, progress=False)
    for v, got in zip([40, 50], df["committee_needed"]):
        assert got == int(bs.evaluate(city, _at(p, "structure.committee_from", v)).branches["committee_needed"].sum())
    df = bs.sweep(city, p, {"consequences.reorganise.when.years": [1, 2]}, progress=False)
    for v, got in zip([1, 2], df["consequence_reorganise"]):
        want = bs.evaluate(city, _at(p, "consequences.reorganise.when.years", v)).consequence_counts()
        assert got == want["reorganise"]


@pytest.mark.parametrize("path, value, words", [
    ("interventions.training.coverage", 0.5, "changes none of a sweep's outputs"),
    ("consequences.talk.effect", 0.1, "act between years"),
])
def test_a_parameter_that_changes_no_output_is_refused(city, path, value, words):
    p = bs.Policy.load()
    if path not in p:
        path = next(q for q in p.parameters()["path"] if q.startswith(path.split(".")[0]))
    with pytest.raises(bs.PolicyError, match=words) as e:
        bs.sweep(city, p, {path: [value, value * 2]}, progress=False)
    assert path in str(e.value)


def test_a_member_parameter_without_members_is_refused():
    pop = bs.generate(seed=3, n_branches=50, members=False)
    with pytest.raises(bs.PolicyError, match="member.record_share: changes only member grades, and the "
                                             "population has no members"):
        bs.sweep(pop, bs.Policy.load(), {"member.record_share": [0.6, 0.8]}, progress=False)


@pytest.mark.parametrize("name", SCHEMES)
def test_every_member_scheme_sweeps_a_member_share(name):
    p = load(name)
    if not p.has_members:
        pytest.skip(f"{name} rates branches only")
    pop = bs.generate(p, seed=1, n_branches=120)
    path = "member.record_share"
    lo, hi = 0.5, 0.9
    df = bs.sweep(pop, p, {path: [lo, hi]}, progress=False)
    grades = df.filter(like="grade_")
    assert grades.shape[1] == p.scheme.member.grades.n + bool(p.scheme.member.exempt.any())
    assert (grades.iloc[0] != grades.iloc[1]).any()
    assert np.array_equal(grades.iloc[1].to_numpy(), bs.evaluate(pop, _at(p, path, hi)).grade_counts().to_numpy())


def test_cli_refuses_a_no_op_sweep_in_one_line(tmp_path, capsys):
    from branchsim.cli import main
    code = main(["sweep", "--param", "consequences.talk.effect", "--values", "0.1,0.2",
                 "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("branchsim: error:") and "act between years" in err[0]
    assert not (tmp_path / "s.csv").exists()
