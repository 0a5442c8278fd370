"""A table of bad inputs to the loader: each ends in the package's own DataError, one line naming
the file or table, the column and the 1-based rows, with plain values -- never a KeyError,
TypeError, UnicodeDecodeError or a silent acceptance -- and nothing the caller passed is changed."""
from __future__ import annotations

import datetime
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import DataError

from conftest import EXAMPLES

FACT_BINARY = "secretary_in_post"          # a binary branch fact of the baseline
FACT_COUNT = "party_lectures"              # a deduction (count) branch fact


def _tables():
    return {n: pd.read_csv(EXAMPLES / f"{n}.csv") for n in ("branches", "members", "member_months")}


def _folder(tmp_path, tables=None, fmt="csv", **write):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, df in (tables or _tables()).items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False, **write)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def _refused(*args, **kwargs) -> DataError:
    snap = {k: v.copy(deep=True) for k, v in kwargs.items() if isinstance(v, pd.DataFrame)}
    with pytest.raises(DataError) as err:
        bs.load_population(*args, **kwargs)
    for k, v in snap.items():                      # the caller's frames are never modified
        pd.testing.assert_frame_equal(kwargs[k], v)
    msg = str(err.value)
    assert "Traceback" not in msg and not re.search(r"np\.(int|float)\d+\(", msg), msg
    return err.value


def _one_line(err: DataError, *texts):
    msg = str(err)
    assert len(err.problems) == 1 and "\n" not in msg, msg
    for t in texts:
        assert t in msg, (t, msg)


# -- tables given as DataFrames --------------------------------------------------------------
def _with(name, change):
    def build(tmp_path):
        t = _tables()
        t[name] = change(t[name].copy())
        return {k: t[k] for k in t}
    return build


def _put(df, row, col, value):
    df[col] = df[col].astype(object)
    df.at[row, col] = value
    return df


FRAME_CASES = {
    "no branch_id column": (_with("branches", lambda b: b.drop(columns="branch_id")),
                            ["branches", "missing column 'branch_id'"]),
    "no member_id column in members": (_with("members", lambda m: m.drop(columns="member_id")),
                                       ["members", "missing column 'member_id'"]),
    "no member_id column in member_months": (_with("member_months", lambda m: m.drop(columns="member_id")),
                                             ["member_months", "missing column 'member_id'"]),
    "MultiIndex columns": (_with("branches", lambda b: b.set_axis(
        pd.MultiIndex.from_arrays([b.columns, b.columns]), axis=1)), ["branches", "MultiIndex"]),
    "a column twice": (_with("branches", lambda b: pd.concat([b, b[["n_members"]]], axis=1)),
                       ["branches", "'n_members'", "more than once"]),
    "a list in a count": (_with("branches", lambda b: _put(b, 2, FACT_COUNT, [1, 2])),
                          ["branches", f"'{FACT_COUNT}'", "list or dict", "row 3"]),
    "a dict in a share": (_with("members", lambda m: _put(m, 0, "appraisal", {"a": 1})),
                          ["members", "'appraisal'", "list or dict", "row 1"]),
    "a list in an id": (_with("branches", lambda b: _put(b, 1, "branch_id", ["B002"])),
                        ["branches", "'branch_id'", "list or dict", "row 2"]),
    "dates as counts": (_with("branches", lambda b: b.assign(
        n_members=pd.to_datetime("2024-01-01") + pd.to_timedelta(b["n_members"], unit="D"))),
        ["branches", "'n_members'", "dates or times"]),
    "timedeltas as counts": (_with("branches", lambda b: b.assign(
        **{FACT_COUNT: pd.to_timedelta(b[FACT_COUNT], unit="s")})), ["branches", FACT_COUNT, "dates or times"]),
    "date objects as counts": (_with("branches", lambda b: _put(b, 4, FACT_COUNT, datetime.date(2024, 1, 1))),
                               ["branches", FACT_COUNT, "not a number", "row 5", "2024-01-01"]),
    "complex counts": (_with("branches", lambda b: b.assign(**{FACT_COUNT: b[FACT_COUNT] + 1j})),
                       ["branches", FACT_COUNT, "complex"]),
    "True/False as a count": (_with("branches", lambda b: b.assign(n_members=b["n_members"] > 5)),
                              ["branches", "'n_members'", "True/False"]),
    "binary fact 0.5": (_with("branches", lambda b: b.assign(**{FACT_BINARY: b[FACT_BINARY].astype(float)})
                              .pipe(lambda d: d.__setitem__((FACT_BINARY), d[FACT_BINARY].where(
                                  d.index != 3, 0.5)) or d)),
                        ["branches", FACT_BINARY, "0 or 1", "0.5", "row 4"]),
    "binary fact 0.99": (_with("member_months", lambda mm: mm.assign(
        online_quiz_taken=mm["online_quiz_taken"].astype(float).where(mm.index != 6, 0.99))),
        ["member_months", "online_quiz_taken", "0 or 1", "0.99", "row 7"]),
    "1e9 lectures in a year": (_with("branches", lambda b: b.assign(
        **{FACT_COUNT: b[FACT_COUNT].astype(float).where(b.index != 2, 1e9)})),
        ["branches", FACT_COUNT, "out of range", "row 3", "1e+09", "allowed: a number in [0, "]),
    "no branches": (_with("branches", lambda b: b.iloc[:0]), ["branches", "no rows"]),
}


@pytest.mark.parametrize("case", list(FRAME_CASES))
def test_frames_refused_naming_the_place(tmp_path, case):
    build, texts = FRAME_CASES[case]
    t = build(tmp_path)
    if case == "no branches":
        err = _refused(branches=t["branches"])
    else:
        err = _refused(branches=t["branches"], members=t["members"], member_months=t["member_months"])
    msg = str(err)
    for text in texts:
        assert text in msg, (text, msg)
    if case not in ("no branch_id column", "a list in an id"):   # those also orphan members
        _one_line(err)


def test_a_range_in_the_policy_bounds_the_fact(policy):
    b = _tables()["branches"]
    tight = policy.to_dict()
    tight["branch"]["indicators"]["party_lectures"]["range"] = {"value": [0, 5], "assumption": "test"}
    tight = bs.Policy(tight)
    over = b[FACT_COUNT] > 5
    if over.any():
        err = _refused(branches=b, policy=tight)
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(over)[:8])
        _one_line(err, FACT_COUNT, "allowed: a number in [0, 5]", f"row{'s' if over.sum() > 1 else ''} {rows}")
    wide = b.assign(**{FACT_COUNT: b[FACT_COUNT].clip(upper=5)})
    assert len(bs.load_population(branches=wide, policy=tight).branches) == len(b)


def test_binary_facts_of_0_and_1_as_bools_are_accepted():
    b = _tables()["branches"]
    pop = bs.load_population(branches=b.assign(**{FACT_BINARY: b[FACT_BINARY] == 1}))
    assert pop.branches[FACT_BINARY].tolist() == b[FACT_BINARY].astype(float).tolist()


def test_records_and_dicts_of_columns_are_tables():
    t = _tables()
    ref = bs.evaluate(bs.load_population(**t))
    for form in (lambda d: d.to_dict("records"), lambda d: d.to_dict("list")):
        got = bs.evaluate(bs.load_population(**{k: form(v) for k, v in t.items()}))
        pd.testing.assert_frame_equal(got.branches, ref.branches)
        pd.testing.assert_frame_equal(got.members, ref.members)


def test_a_table_of_another_kind_says_what_to_pass():
    err = _refused(branches=np.zeros((3, 3)))
    _one_line(err, "branches", "DataFrame", "list of records", "ndarray")


def test_a_policy_path_is_read(tmp_path, policy):
    path = bs.data_path("policies", "baseline.yaml")
    pop = bs.load_population(EXAMPLES, policy=str(path))
    assert len(pop.branches) == 12
    assert bs.evaluate(pop, str(path)).branches.equals(bs.evaluate(pop, policy).branches)
    gen = bs.generate(policy=path, seed=1, n_branches=30, members=False)
    assert gen.branches.equals(bs.generate(policy, seed=1, n_branches=30, members=False).branches)
    with pytest.raises(bs.BranchsimError, match="Policy or the path"):
        bs.load_population(EXAMPLES, policy=42)


def test_a_shared_column_is_not_copied_and_stays_independent():
    t = _tables()
    m = t["member_months"].astype({"study_hours": np.float32})
    pop = bs.load_population(branches=t["branches"], members=t["members"], member_months=m)
    assert np.shares_memory(pop.member_months["study_hours"].to_numpy(), m["study_hours"].to_numpy())
    before = pop.member_months["study_hours"].copy()
    m.loc[0, "study_hours"] = 99.0                 # the caller edits its frame afterwards ...
    pd.testing.assert_series_equal(pop.member_months["study_hours"], before)   # ... the population keeps its own


# -- files and folders ----------------------------------------------------------------------
def test_semicolon_and_tab_separated_csv(tmp_path):
    for sep, word in ((";", "semicolons"), ("\t", "tabs")):
        folder = tmp_path / word
        folder.mkdir()
        _tables()["branches"].to_csv(folder / "branches.csv", sep=sep, index=False)
        _one_line(_refused(folder), "branches.csv", word, "comma-separated")


def test_duplicated_csv_header(tmp_path):
    folder = _folder(tmp_path)
    text = (folder / "branches.csv").read_text(encoding="utf-8").splitlines()
    head = text[0].split(",")
    text[0] = ",".join(head[:-1] + ["n_members"])            # the last column's name repeats n_members
    (folder / "branches.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    _one_line(_refused(folder), "branches.csv", "'n_members' in columns 4, " + str(len(head)), "once")


def test_duplicated_excel_header(tmp_path):
    pytest.importorskip("openpyxl")
    b = _tables()["branches"]
    b.columns = list(b.columns[:-1]) + ["type"]
    b.to_excel(tmp_path / "branches.xlsx", index=False)
    _one_line(_refused(branches=tmp_path / "branches.xlsx"), "branches.xlsx", "'type'", "once")


@pytest.mark.parametrize("encoding", ["gbk", "big5"])
def test_gbk_and_big5_csv(tmp_path, encoding):
    t = _tables()
    t["members"]["category"] = np.where(t["members"].index % 2, "在職黨員", "離退休黨員")
    folder = _folder(tmp_path, t, encoding=encoding)
    err = _refused(folder)
    _one_line(err, ".csv: is not UTF-8 text", "encoding='gbk'", "save it as UTF-8")
    pop = bs.load_population(folder, encoding=encoding)
    assert set(pop.members["category"]) == {"在職黨員", "離退休黨員"}
    with pytest.raises(DataError, match="encoding='nope'"):
        bs.load_population(folder, encoding="nope")


def test_utf16_csv_says_which_encoding(tmp_path):
    folder = _folder(tmp_path, encoding="utf-16")
    _one_line(_refused(folder), "is not UTF-8 text", "encoding='utf-16'")
    assert len(bs.load_population(folder, encoding="utf-16").branches) == 12


def test_utf8_with_bom_is_read(tmp_path):
    folder = _folder(tmp_path, encoding="utf-8-sig")
    assert (folder / "branches.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    pop = bs.load_population(folder)
    assert pop.branches.columns[0] == "branch_id"


def test_two_formats_of_one_table_are_ambiguous(tmp_path):
    folder = _folder(tmp_path)
    b = _tables()["branches"]
    b.loc[0, "n_members"] += 1
    b.to_parquet(folder / "branches.parquet", index=False)
    _one_line(_refused(folder), "branches.parquet and branches.csv", "keep one")


def test_parquet_folder_loads_the_same(tmp_path):
    ref = bs.load_population(EXAMPLES)
    pop = bs.load_population(_folder(tmp_path, fmt="parquet"))
    pd.testing.assert_frame_equal(pop.branches, ref.branches)
    pd.testing.assert_frame_equal(pop.member_months, ref.member_months)


META_CASES = {
    "seed_entropy abc": ("seed_entropy: abc\nseed_spawn_key: []\n", "seed_entropy: 'abc'"),
    "a list": ("- 1\n- 2\n", "must be a mapping"),
    "bad YAML": ("source: [unclosed\n", "not valid YAML"),
    "no seed_spawn_key": ("seed_entropy: 12345\n", "seed_spawn_key: missing"),
    "spawn key of text": ("seed_entropy: 1\nseed_spawn_key: [a]\n", "seed_spawn_key"),
    "generator not a mapping": ("generator: 3\n", "generator: must be a mapping"),
    "generator without its keys": ("generator: {scale: 1}\n", "generator: not the generator parameters"),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_malformed_population_yaml(tmp_path, case):
    text, expected = META_CASES[case]
    folder = _folder(tmp_path)
    (folder / "population.yaml").write_text(text, encoding="utf-8")
    err = _refused(folder)
    assert "population.yaml" in str(err) and expected in str(err), str(err)


def test_a_saved_population_yaml_round_trips(tmp_path):
    pop = bs.generate(seed=7, n_branches=40)
    pop.save(tmp_path / "p")
    meta = yaml.safe_load((tmp_path / "p" / "population.yaml").read_text(encoding="utf-8"))
    assert isinstance(meta["seed_entropy"], str)
    back = bs.load_population(tmp_path / "p")
    assert back.seed.entropy == pop.seed.entropy and back.params is not None


def test_missing_folder_and_file(tmp_path):
    _one_line(_refused(tmp_path / "nope"), "nope", "no such folder")
    _one_line(_refused(branches=tmp_path / "nope.csv"), "nope.csv", "no such file")
    (tmp_path / "dir.csv").mkdir()
    _one_line(_refused(branches=tmp_path / "dir.csv"), "dir.csv", "folder")
    shutil.copy(EXAMPLES / "branches.csv", tmp_path / "b.txt")
    _one_line(_refused(branches=tmp_path / "b.txt"), "b.txt", "unsupported file type")
