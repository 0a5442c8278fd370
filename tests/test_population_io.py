"""Population files: save / load round trips, and the loader's defect reports."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import DataError
from conftest import EXAMPLES, TABLES, assert_same_population


@pytest.fixture(scope="module")
def pop():
    """A small generated population (shared: tests copy before changing it)."""
    return bs.generate(seed=3, n_branches=60)


@pytest.fixture
def tables(pop) -> dict:
    return {name: getattr(pop, name).copy(deep=True) for name in TABLES}


def _assert_results_equal(a: bs.Result, b: bs.Result) -> None:
    pd.testing.assert_frame_equal(a.branches, b.branches, check_exact=True)
    pd.testing.assert_frame_equal(a.members, b.members, check_exact=True)


def _write_csv(tables: dict, folder) -> dict:
    folder.mkdir(exist_ok=True)
    paths = {}
    for name, df in tables.items():
        paths[name] = folder / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    return paths


# -- round trips ----------------------------------------------------------------------------------
class TestSaveLoad:
    def test_round_trip_is_exact(self, pop, tmp_path):
        folder = pop.save(tmp_path / "city")
        assert sorted(p.name for p in folder.iterdir()) == [
            "branches.parquet", "member_months.parquet", "members.parquet", "population.yaml"]
        back = bs.load_population(folder)
        assert_same_population(back, pop)          # values and dtypes, truth included
        assert back.has_truth
        assert isinstance(back.member_months["member_id"].dtype, pd.CategoricalDtype)
        assert back.seed.entropy == pop.seed.entropy and back.seed.spawn_key == pop.seed.spawn_key
        assert back.params.values == pop.params.values

    def test_loaded_population_evaluates_the_same(self, pop, tmp_path):
        back = bs.load_population(pop.save(tmp_path / "city"))
        r0, r1 = bs.evaluate(pop), bs.evaluate(back)
        _assert_results_equal(r1, r0)
        assert "true_score" in r1.branches                  # the truth survives the files
        assert r1.accuracy() == r0.accuracy()

    def test_seed_in_the_file_regenerates_the_population(self, pop, tmp_path):
        back = bs.load_population(pop.save(tmp_path / "city"))
        assert_same_population(bs.generate(seed=back.seed, n_branches=len(back.branches),
                                           params=back.params), pop)
        meta = yaml.safe_load((tmp_path / "city" / "population.yaml").read_text(encoding="utf-8"))
        assert int(meta["seed_entropy"]) == 3

    def test_save_replaces_and_leaves_nothing_behind(self, pop, tmp_path):
        bs.generate(seed=4, n_branches=30).save(tmp_path / "city")
        pop.save(tmp_path / "city")
        assert [p.name for p in tmp_path.iterdir()] == ["city"]      # no temporary folder
        assert_same_population(bs.load_population(tmp_path / "city"), pop)

    def test_branch_only_population(self, tmp_path):
        only = bs.generate(seed=2, n_branches=40, members=False)
        back = bs.load_population(only.save(tmp_path / "b"))
        assert back.members is None and back.member_months is None
        pd.testing.assert_frame_equal(back.branches, only.branches, check_exact=True)

    def test_failed_save_keeps_the_previous_folder(self, pop, tmp_path):
        pop.save(tmp_path / "city")
        bad = bs.generate(seed=4, n_branches=30)
        # A column Parquet cannot store: written after branches and members, so the failure
        # comes half-way through the save.
        bad.member_months = bad.member_months.assign(note=[object()] * len(bad.member_months))
        with pytest.raises(Exception):
            bad.save(tmp_path / "city")
        assert [p.name for p in tmp_path.iterdir()] == ["city"]
        assert_same_population(bs.load_population(tmp_path / "city"), pop)

    def test_csv_files_evaluate_to_the_same_outcome(self, pop, tables, tmp_path):
        paths = _write_csv(tables, tmp_path / "csv")
        back = bs.load_population(**paths)
        r0, r1 = bs.evaluate(pop), bs.evaluate(back)
        b0, b1 = r0.branches, r1.branches
        assert b1["branch_id"].tolist() == b0["branch_id"].tolist()
        assert b1["rating"].tolist() == b0["rating"].tolist()
        assert b1["weak"].tolist() == b0["weak"].tolist()
        np.testing.assert_allclose(b1["score"], b0["score"], rtol=1e-6)
        # Monthly facts are float32 in memory, text in the file: the last digits may differ.
        np.testing.assert_allclose(r1.members["annual"], r0.members["annual"], rtol=1e-6)
        assert r1.members["grade"].tolist() == r0.members["grade"].tolist()

    def test_folder_of_csv_files(self, pop, tables, tmp_path):
        _write_csv(tables, tmp_path / "csv")
        back = bs.load_population(tmp_path / "csv")
        assert len(back.branches) == 60 and len(back.members) == len(pop.members)

    def test_excel_and_mixed_formats(self, pop, tables, tmp_path):
        # Branches as Excel (openpyxl), members and months as Parquet.
        tables["branches"].to_excel(tmp_path / "branches.xlsx", index=False)
        tables["members"].to_parquet(tmp_path / "members.parquet", index=False)
        tables["member_months"].to_parquet(tmp_path / "member_months.parquet", index=False)
        back = bs.load_population(branches=tmp_path / "branches.xlsx",
                                  members=str(tmp_path / "members.parquet"),
                                  member_months=tmp_path / "member_months.parquet")
        r0, r1 = bs.evaluate(pop), bs.evaluate(back)
        assert r1.branches["rating"].tolist() == r0.branches["rating"].tolist()
        np.testing.assert_allclose(r1.branches["score"], r0.branches["score"], rtol=1e-9)
        assert r1.members["grade"].tolist() == r0.members["grade"].tolist()

    def test_example_folder(self):
        ex = bs.load_population(bs.data_path("examples"))
        assert (len(ex.branches), len(ex.members)) == (12, 60)
        assert not ex.has_truth and ex.seed is None


# -- defects ------------------------------------------------------------------------------------------
def _put(df: pd.DataFrame, row: int, col: str, value) -> None:
    if isinstance(value, str) and df[col].dtype.kind in "if":
        df[col] = df[col].astype(object)
    df.loc[row, col] = value


# Each case breaks one table; the message must name the column and the 1-based data row.
DEFECTS = {
    "missing column": ("branches", lambda t: t.update(branches=t["branches"].drop(columns="party_lectures")),
                       ["'party_lectures'", "missing column"]),
    "text in a number column": ("branches", lambda t: _put(t["branches"], 2, "general_meetings", "four"),
                                ["'general_meetings'", "row 3", "not a number", "four"]),
    "NaN in a required column": ("branches", lambda t: _put(t["branches"], 4, "survey_basic", np.nan),
                                 ["'survey_basic'", "row 5"]),
    "appraisal 120": ("members", lambda t: _put(t["members"], 3, "appraisal", 120.0),
                      ["'appraisal'", "row 4", "[0, 100]"]),
    "proportion 1.5": ("branches", lambda t: _put(t["branches"], 5, "dues_on_time_share", 1.5),
                       ["'dues_on_time_share'", "row 6", "[0, 1]"]),
    # The first branch listed twice (60 branches: the copy is row 61).
    "duplicate branch_id": ("branches", lambda t: t.update(branches=pd.concat(
                                [t["branches"], t["branches"].iloc[[0]]], ignore_index=True)),
                            ["'branch_id'", "rows 1, 61", "duplicate"]),
    "member of an unknown branch": ("members", lambda t: _put(t["members"], 3, "branch_id", "B999999"),
                                    ["'branch_id'", "B999999", "row 4"]),
    "unknown branch type": ("branches", lambda t: _put(t["branches"], 7, "type", "villag"),
                            ["'type'", "villag", "row 8", "village"]),
}


class TestDefects:
    @pytest.mark.parametrize("case", list(DEFECTS))
    def test_frames(self, tables, case):
        table, breaker, expected = DEFECTS[case]
        breaker(tables)
        with pytest.raises(DataError) as err:
            bs.load_population(**tables)
        # One defect, one problem, naming the table first.
        assert len(err.value.problems) == 1, err.value.problems
        msg = str(err.value)
        assert msg.startswith((f"{table},", f"{table}:")), msg
        for text in expected:
            assert text in msg, (text, msg)

    @pytest.mark.parametrize("case", list(DEFECTS))
    def test_files_are_named(self, tables, tmp_path, case):
        # The broken table comes from a CSV file, the others from DataFrames.
        table, breaker, expected = DEFECTS[case]
        breaker(tables)
        path = tmp_path / f"my_{table}.csv"
        tables[table].to_csv(path, index=False)
        with pytest.raises(DataError) as err:
            bs.load_population(**{**tables, table: path})
        msg = str(err.value)
        assert msg.startswith(f"{path}"), msg
        for text in expected:
            assert text in msg, (text, msg)

    def test_every_defect_is_reported_at_once(self, tables, tmp_path):
        for _, breaker, _ in DEFECTS.values():
            breaker(tables)
        paths = _write_csv(tables, tmp_path)
        with pytest.raises(DataError) as err:
            bs.load_population(**paths)
        problems = err.value.problems
        assert len(problems) >= len(DEFECTS)
        # Each problem names the file it is in.
        for table in ("branches", "members"):
            n = sum(1 for t, _, _ in DEFECTS.values() if t == table)
            assert sum(p.startswith(str(paths[table])) for p in problems) >= n, table
        msg = str(err.value)
        for _, _, expected in DEFECTS.values():
            for text in expected:
                assert text in msg, text

    def test_members_without_months(self, tables):
        with pytest.raises(DataError, match="both or neither"):
            bs.load_population(branches=tables["branches"], members=tables["members"])

    def test_folder_without_branches(self, tables, tmp_path):
        tables["members"].to_csv(tmp_path / "members.csv", index=False)
        with pytest.raises(DataError, match="no branches table") as err:
            bs.load_population(tmp_path)
        assert str(tmp_path) in str(err.value)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataError, match="nowhere"):
            bs.load_population(tmp_path / "nowhere")

    def test_missing_file(self, tmp_path):
        with pytest.raises(DataError, match="no such file") as err:
            bs.load_population(branches=tmp_path / "branches.csv")
        assert str(tmp_path / "branches.csv") in str(err.value)

    def test_unsupported_extension(self, tables, tmp_path):
        path = tmp_path / "branches.txt"
        tables["branches"].to_csv(path, index=False)
        with pytest.raises(DataError, match=r"\.txt") as err:
            bs.load_population(branches=path)
        assert ".csv" in str(err.value)          # says what is allowed

    @pytest.mark.parametrize("text", ["", 'a,b\n1,2,3,4\n"unterminated\n'], ids=["empty", "malformed"])
    def test_unreadable_file(self, tmp_path, text):
        path = tmp_path / "branches.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError) as err:
            bs.load_population(branches=path)
        assert str(path) in str(err.value)

    def test_evaluate_takes_a_population(self, tables):
        with pytest.raises(DataError, match="Population"):
            bs.evaluate(tables["branches"])


# -- the caller's objects ----------------------------------------------------------------------------
class TestInputsUnchanged:
    def test_on_success(self, tables):
        # A non-default index and a categorical id column must come back exactly as they were.
        tables["branches"].index = range(1000, 1000 + len(tables["branches"]))
        snapshot = copy.deepcopy(tables)
        loaded = bs.load_population(**tables)
        for name in TABLES:
            pd.testing.assert_frame_equal(tables[name], snapshot[name], check_exact=True)
        # The loaded tables are copies: changing them leaves the caller's alone.
        loaded.branches.loc[0, "n_members"] = -1
        loaded.member_months.loc[0, "month"] = 99
        for name in TABLES:
            pd.testing.assert_frame_equal(tables[name], snapshot[name], check_exact=True)

    def test_on_failure(self, tables):
        for _, breaker, _ in DEFECTS.values():
            breaker(tables)
        snapshot = copy.deepcopy(tables)
        with pytest.raises(DataError):
            bs.load_population(**tables)
        for name in TABLES:
            pd.testing.assert_frame_equal(tables[name], snapshot[name], check_exact=True)

    def test_generated_population_is_not_changed_by_evaluate(self, pop):
        snapshot = {name: getattr(pop, name).copy(deep=True) for name in TABLES}
        bs.evaluate(pop)
        for name in TABLES:
            pd.testing.assert_frame_equal(getattr(pop, name), snapshot[name], check_exact=True)


def test_example_csv_and_dataframes_agree(policy, examples):
    a = bs.evaluate(bs.load_population(EXAMPLES, policy=policy), policy)
    b = bs.evaluate(bs.load_population(policy=policy, **examples), policy)
    _assert_results_equal(a, b)
