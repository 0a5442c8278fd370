"""Population tables: every defect reported at once, naming table, column and 1-based rows;
the caller's frames never modified."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import DataError


def _run(policy, tables):
    """evaluate_tables, asserting the caller's frames are unchanged whether it succeeds or not."""
    before = {k: (None if v is None else v.copy(deep=True)) for k, v in tables.items()}
    try:
        return bs.evaluate_tables(policy, tables["branches"], tables.get("members"),
                                  tables.get("member_months"))
    finally:
        for k, v in tables.items():
            if v is not None:
                pd.testing.assert_frame_equal(v, before[k])


def _error(policy, tables) -> DataError:
    with pytest.raises(DataError) as err:
        _run(policy, tables)
    assert isinstance(err.value, bs.BranchsimError)
    return err.value


def _set(df, row, col, value):
    """Put a value of any type into df (0-based row) without pandas refusing the dtype."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        df[col] = df[col].astype(object)
    elif df[col].dtype.kind in "iub" and not float(value).is_integer():
        df[col] = df[col].astype(float)
    df.loc[row, col] = value


def test_examples_are_valid(policy, examples):
    r = _run(policy, examples)
    assert len(r.branches) == len(examples["branches"])
    assert len(r.members) == len(examples["members"])


# Each case: table, how to break it, and what the message must contain. Rows in messages are
# 1-based data rows: the frame's 0-based row 2 is "row 3".
CASES = {
    "missing column": ("branches", lambda t: t.update(branches=t["branches"].drop(columns="committee_meetings")),
                       ["branches", "committee_meetings", "missing column"]),
    "non-numeric": ("branches", lambda t: _set(t["branches"], 2, "general_meetings", "four"),
                    ["branches", "general_meetings", "row 3", "not a number"]),
    "NaN in a required column": ("branches", lambda t: _set(t["branches"], 1, "survey_basic", np.nan),
                                 ["branches", "survey_basic", "row 2"]),
    "proportion above 1": ("branches", lambda t: _set(t["branches"], 4, "dues_on_time_share", 1.2),
                           ["branches", "dues_on_time_share", "row 5", "[0, 1]"]),
    "binary above 1": ("branches", lambda t: _set(t["branches"], 0, "secretary_in_post", 2),
                       ["branches", "secretary_in_post", "row 1"]),
    "negative count": ("branches", lambda t: _set(t["branches"], 5, "party_lectures", -1),
                       ["branches", "party_lectures", "row 6", "in [0, "]),
    "fractional member count": ("branches", lambda t: _set(t["branches"], 3, "n_members", 12.5),
                                ["branches", "n_members", "row 4", "whole number"]),
    "appraisal above 100": ("members", lambda t: _set(t["members"], 3, "appraisal", 101),
                            ["members", "appraisal", "row 4", "[0, 100]"]),
    "duplicate branch_id": ("branches", lambda t: _set(t["branches"], 6, "branch_id", "B001"),
                            ["branches", "branch_id", "rows 1, 7", "duplicate"]),
    "empty branch_id": ("branches", lambda t: _set(t["branches"], 2, "branch_id", np.nan),
                        ["branches", "branch_id", "row 3"]),
    "duplicate member month": ("member_months",
                               lambda t: t.update(member_months=pd.concat(
                                   [t["member_months"], t["member_months"].iloc[[0]]],
                                   ignore_index=True)),
                               ["member_months", "member_id", "month", "duplicate", "rows 1, 721"]),
    "member of an unknown branch": ("members", lambda t: _set(t["members"], 4, "branch_id", "B999"),
                                    ["members", "branch_id", "B999", "row 5", "branches"]),
    "month of an unknown member": ("member_months", lambda t: _set(t["member_months"], 0, "member_id", "M9999"),
                                   ["member_months", "member_id", "M9999", "row 1"]),
    "unknown branch type": ("branches", lambda t: _set(t["branches"], 7, "type", "villag"),
                            ["branches", "type", "villag", "row 8", "village"]),
    "unknown level": ("branches", lambda t: _set(t["branches"], 7, "level", "committee"),
                      ["branches", "level", "row 8", "party_committee"]),
    "month 13": ("member_months", lambda t: _set(t["member_months"], 0, "month", 13),
                 ["member_months", "month", "row 1", "[1, 12]"]),
    "member without months": ("members",
                              lambda t: t.update(member_months=t["member_months"][
                                  t["member_months"]["member_id"] != "M0010"]),
                              ["members", "row 10", "member_months"]),
    "zero survey answers": ("branches",
                            lambda t: [_set(t["branches"], 8, c, 0) for c in
                                       ("survey_satisfied", "survey_basic", "survey_dissatisfied")],
                            ["branches", "row 9", "survey_satisfied"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_defect_is_named(policy, examples, case):
    _table, breaker, expected = CASES[case]
    breaker(examples)
    err = _error(policy, examples)
    # One defect, one problem -- except a broken branch id, which also orphans that branch's
    # members (they are then reported as members of an unknown branch).
    assert len(err.problems) == (2 if "branch_id" in case else 1), err.problems
    msg = str(err)
    for text in expected:
        assert text in msg, (text, msg)


def test_rows_are_positions_not_index_labels(policy, examples):
    # A filtered frame keeps its old index labels; messages count data rows from 1.
    b = examples["branches"].iloc[[3, 5, 7]].copy()
    _set(b, b.index[1], "dues_on_time_share", 1.5)
    err = _error(policy, {"branches": b})
    assert "row 2" in str(err) and "row 6" not in str(err)


def test_several_defects_in_one_error(policy, examples):
    b, m, mm = examples["branches"], examples["members"], examples["member_months"]
    b = examples["branches"] = b.drop(columns="committee_meetings")    # 1 missing column
    _set(b, 2, "general_meetings", "abc")                                # 2 non-numeric
    _set(b, 1, "survey_basic", np.nan)                                   # 3 NaN
    _set(b, 4, "dues_on_time_share", 1.2)                                # 4 proportion > 1
    _set(b, 5, "party_lectures", -1)                                     # 5 negative count
    _set(b, 7, "type", "villag")                                         # 6 unknown type
    _set(b, 8, "survey_satisfied", 0)                                    # 7 no survey answers
    _set(b, 8, "survey_basic", 0)
    _set(b, 8, "survey_dissatisfied", 0)
    _set(b, 10, "branch_id", "B001")                                     # 8 duplicate id
    _set(m, 3, "appraisal", 101)                                         # 9 appraisal > 100
    _set(m, 12, "branch_id", "B999")                                     # 10 unknown branch
    _set(mm, 0, "month", 13)                                             # 11 month 13
    examples["member_months"] = mm[mm["member_id"] != "M0002"]          # 12 member without months
    tables = dict(examples)
    err = _error(policy, tables)
    assert len(err.problems) >= 12
    msg = str(err)
    for text in ("committee_meetings", "general_meetings", "survey_basic", "dues_on_time_share",
                 "party_lectures", "villag", "no survey answers", "duplicate", "appraisal",
                 "B999", "'month'", "no month"):
        assert text in msg, text


def test_many_bad_rows_are_summarised(policy, examples):
    b = pd.concat([examples["branches"]] * 2, ignore_index=True)
    b["branch_id"] = [f"B{i:03d}" for i in range(len(b))]
    b["dues_on_time_share"] = 2.0
    msg = str(_error(policy, {"branches": b}))
    assert "rows 1, 2, 3, 4, 5, 6, 7, 8 and 16 more" in msg


def test_members_and_months_go_together(policy, examples):
    with pytest.raises(DataError, match="both or neither"):
        bs.evaluate_tables(policy, examples["branches"], examples["members"])


def test_not_a_table(policy):
    with pytest.raises(DataError, match="branches"):
        bs.evaluate_tables(policy, {"branch_id": ["B1"]})


def test_check_tables_returns_checked_copies(policy, examples):
    b, m, mm = bs.tables.check_tables(policy, examples["branches"], examples["members"],
                                      examples["member_months"])
    assert b is not examples["branches"]
    assert b["n_members"].dtype == np.int64
    assert b["prev_weak"].tolist() == examples["branches"]["prev_weak"].tolist()
    # prev_weak and parent are optional: defaults fill them in.
    b2, _, _ = bs.tables.check_tables(policy, examples["branches"].drop(columns=["prev_weak", "parent"]))
    assert b2["prev_weak"].tolist() == [0] * len(b2)
    assert b2["parent"].tolist() == [""] * len(b2)


def test_extra_columns_are_kept_and_untouched(policy, examples):
    b = examples["branches"]
    b["district"] = "灌口"
    checked, _, _ = bs.tables.check_tables(policy, b)
    assert checked["district"].tolist() == b["district"].tolist()


def test_input_frames_unchanged_on_success(policy, examples):
    # Non-default index and integer ids: the caller's frames must come back exactly as they were.
    b = examples["branches"].set_axis(range(100, 100 + len(examples["branches"])))
    tables = {"branches": b, "members": examples["members"], "member_months": examples["member_months"]}
    snapshot = copy.deepcopy(tables)
    r = _run(policy, tables)
    for k in tables:
        pd.testing.assert_frame_equal(tables[k], snapshot[k])
    # ...and results are not views of the input: changing a result leaves the input alone.
    r.branches.loc[0, "n_members"] = -1
    pd.testing.assert_frame_equal(b, snapshot["branches"])


def test_empty_prev_weak_cell_takes_the_default(policy, examples):
    b = examples["branches"]
    _set(b, 3, "prev_weak", np.nan)     # B004: weak this year, weak the year before
    r = bs.evaluate_tables(policy, b)
    # The empty cell means the default 0: a first weak year, a talk but no reorganisation.
    assert r.branches["weak"].iloc[3]
    assert r.branches["weak_streak"].tolist()[3] == 1
    assert r.branches["talk"].iloc[3] and not r.branches["reorganise"].iloc[3]
    with_value = bs.evaluate_tables(policy, examples["branches"].assign(prev_weak=lambda d: d["prev_weak"]
                                                                         .fillna(1)))
    assert with_value.branches["reorganise"].iloc[3]      # guard: the filled value matters
    steps = bs.explain(b, policy, branch_id="B004").set_index("step")
    cons = steps.loc[["consequence"]]
    assert dict(zip(cons["item"].str.split(":").str[0], cons["result"])) == {"talk": "follows",
                                                                              "reorganise": "does not follow"}


def test_column_order_of_the_caller_is_kept(policy, examples):
    b = examples["branches"]
    shuffled = b[list(reversed(b.columns))]
    checked, _, _ = bs.tables.check_tables(policy, shuffled)
    assert list(checked.columns) == list(shuffled.columns)
    # Defaults for absent optional columns come after the caller's columns.
    short = b.drop(columns=["prev_weak", "parent"])
    checked, _, _ = bs.tables.check_tables(policy, short)
    assert list(checked.columns[:len(short.columns)]) == list(short.columns)
    assert set(checked.columns[len(short.columns):]) == {"prev_weak", "parent"}


def test_categorical_ids_stay_categorical(policy, examples):
    mm = examples["member_months"]
    mm["member_id"] = mm["member_id"].astype("category")
    b = examples["branches"].assign(type=lambda d: d["type"].astype("category"))
    before = mm.copy(deep=True)
    cb, cm, cmm = bs.tables.check_tables(policy, b, examples["members"], mm)
    assert isinstance(cmm["member_id"].dtype, pd.CategoricalDtype)
    assert cmm["member_id"].astype(str).tolist() == before["member_id"].astype(str).tolist()
    assert isinstance(cb["type"].dtype, pd.CategoricalDtype)
    assert cb["type"].astype(str).tolist() == examples["branches"]["type"].tolist()
    pd.testing.assert_frame_equal(mm, before)
    # And the evaluation is the same as with plain text ids.
    plain = bs.evaluate_tables(policy, examples["branches"], examples["members"],
                               examples["member_months"].assign(member_id=lambda d: d["member_id"].astype(str)))
    cat = bs.evaluate_tables(policy, b, examples["members"], mm)
    pd.testing.assert_frame_equal(plain.members, cat.members)
    assert plain.branches["rating"].tolist() == cat.branches["rating"].tolist()


def test_unknown_value_in_a_categorical_type_column(policy, examples):
    b = examples["branches"]
    b["type"] = b["type"].replace({"village": "villag"}).astype("category")
    err = _error(policy, {"branches": b})
    assert "villag" in str(err) and "'type'" in str(err)
