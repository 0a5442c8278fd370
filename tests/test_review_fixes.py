"""Defects found in review, each pinned by the behaviour a user relies on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs


def test_save_refuses_a_folder_with_other_files_and_keeps_them(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    pop = bs.generate(seed=0, n_branches=20, members=False)
    with pytest.raises(bs.DataError, match="notes.txt"):
        pop.save(folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_save_replaces_an_earlier_saved_population(tmp_path):
    folder = tmp_path / "pop"
    bs.generate(seed=0, n_branches=20).save(folder)                  # with members
    branch_only = bs.generate(seed=1, n_branches=30, members=False)
    branch_only.save(folder)                                         # members of the first are removed
    assert sorted(p.name for p in folder.iterdir()) == ["branches.parquet", "population.yaml"]
    pd.testing.assert_frame_equal(bs.load_population(folder).branches, branch_only.branches)


def _custom_type_population():
    doc = bs.Policy.load().to_dict()
    doc["branch"]["types"]["school"] = dict(doc["branch"]["types"]["institution"], label="學校 (school)")
    custom = bs.Policy(doc)
    b = bs.generate(seed=0, n_branches=400, members=False).branches.copy()
    b.loc[b["type"] == "institution", "type"] = "school"
    return custom, bs.load_population(branches=b, policy=custom)


def test_a_type_the_policy_does_not_know_is_an_error_not_another_types_rules():
    custom, pop = _custom_type_population()
    bs.evaluate(pop, custom)                                          # its own policy: fine
    with pytest.raises(bs.DataError, match="school"):
        bs.evaluate(pop, bs.Policy.load())
    from branchsim.sensitivity.engine import prepare
    with pytest.raises(bs.DataError, match="school"):
        prepare(pop, bs.Policy.load())


def test_a_veto_cap_must_be_a_level():
    with pytest.raises(bs.PolicyError, match=r"meetings_neglected\.cap: 'two_star' is not a level"):
        bs.Policy.load().update({"branch.vetoes.meetings_neglected.cap": "two_star"})
    # A cap that is a level gives the same counts on every engine path and in evaluate.
    from branchsim.sensitivity.engine import Scenarios, prepare, run
    p = bs.Policy.load().update({"branch.vetoes.meetings_neglected.cap": "four_star",
                                 "branch.vetoes.meetings_neglected.below": 9})
    pop = bs.generate(seed=2, n_branches=900, members=False)
    prep = prepare(pop, p)
    sc = Scenarios.from_policy(p)
    fast = run(prep, sc, accuracy=False)["counts"][0, 0]
    full = run(prep, sc, groups=np.zeros(prep.n, dtype=int), n_groups=1)["counts"][0, 0]
    np.testing.assert_array_equal(fast, full)
    counts = bs.evaluate(pop, p).level_counts()["count"]
    levels = p.scheme.branch.levels                  # counts by level code: 0 the floor
    assert [int(fast[levels.code(lv)]) for lv in p.levels] == [counts[lv] for lv in p.levels]


@pytest.mark.parametrize("column, value", [("n_members", np.inf), ("survey_satisfied", np.inf),
                                           ("n_members", 1e20), ("committee_meetings", -np.inf)])
def test_infinite_or_huge_numbers_are_reported(column, value):
    b = pd.read_csv(bs.data_path("examples", "branches.csv")).astype({column: float})
    b.loc[1, column] = value
    with pytest.raises(bs.DataError, match=rf"'{column}': not a finite number in row 2"):
        bs.load_population(branches=b)


def test_shares_that_add_up_to_one_leave_the_rest_at_zero():
    p = bs.Policy.load().update({"branch.satisfaction_share": 0.33,
                                 "branch.dimensions.organisation.share": 0.56,
                                 "branch.dimensions.institution.share": 0.11})
    assert p["branch.dimensions.activities.share"] == 0.0 and p["branch.dimensions.role.share"] == 0.0


def test_national_run_with_nothing_run_yet(tmp_path):
    r = bs.national_run(n_branches=300, seed=1, out_dir=tmp_path / "n", max_chunks=0, progress=False)
    assert r.totals["branches"] == 0 and np.isnan(r.accuracy())
    assert int(r.level_counts()["count"].sum()) == 0


@pytest.mark.parametrize("path", ["state.problem_rate", "structure.p_underlevel",
                                  "member_measurement.impression_halo"])
def test_probabilities_above_one_are_refused(path):
    with pytest.raises(bs.BranchsimError, match=rf"{path}: got 1.5; allowed: a number in \[0, 1\]"):
        bs.GeneratorParams.load().with_values({path: 1.5})
