"""Loaded tables are evaluated chunk by chunk of branches (members and their months together) on a
compiled kernel: the Result tables are identical -- bit for bit -- to the whole-table NumPy
computation, whatever the chunk size, and the kernel's points equal scoring.indicator_points."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import _month_kernel, rating
from branchsim.evaluate import member_profiles
from branchsim.scoring import annual_scores, indicator_points, record_scores, type_codes
from branchsim.tables import positions

from conftest import EXAMPLES, sheet


def _whole_table_members(policy, b, m, mm) -> pd.DataFrame:
    """The member frame as evaluate computed it before chunking: whole columns, NumPy only."""
    ms = policy.scheme.member
    member_type = type_codes(b["type"], ms.types)[positions(b["branch_id"], m["branch_id"])]
    profile, _ = member_profiles(ms, member_type, m["category"])
    member_idx = positions(m["member_id"], mm["member_id"])
    facts = mm[list(ms.sheet.facts)].to_numpy(dtype=float)
    rows = profile[member_idx]
    monthly = record_scores(indicator_points(facts, rows, ms.sheet), rows, ms)
    periods = np.bincount(member_idx, minlength=len(m))
    record = np.bincount(member_idx, monthly, len(m)) / periods
    annual = annual_scores(record, m["appraisal"].to_numpy(float), ms)
    grade, _ = rating.rate(annual, ms.rating, profile=profile)
    return pd.DataFrame({"member_id": m["member_id"].to_numpy(), "periods": periods,
                         "record": np.round(record, 9), "annual": annual, "grade": ms.grades.id_of(grade)})


def _assert_same(result, reference):
    got = result.members[reference.columns]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), reference, check_exact=True)


@pytest.fixture(scope="module")
def city():
    return bs.generate(seed=11, n_branches=300)


@pytest.mark.parametrize("chunk", [1, 2, 5, None, 10 ** 6])
def test_example_tables_identical_for_every_chunk_size(policy, chunk):
    t = {n: pd.read_csv(EXAMPLES / f"{n}.csv") for n in ("branches", "members", "member_months")}
    ref = _whole_table_members(policy, *bs.tables.check_tables(policy, t["branches"], t["members"],
                                                                t["member_months"]))
    r = bs.evaluate_tables(policy, t["branches"], t["members"], t["member_months"], chunk_size=chunk)
    _assert_same(r, ref)
    one = bs.evaluate_tables(policy, t["branches"], t["members"], t["member_months"], chunk_size=10 ** 6)
    pd.testing.assert_frame_equal(r.branches, one.branches, check_exact=True)
    pd.testing.assert_frame_equal(r.members, one.members, check_exact=True)


@pytest.mark.parametrize("chunk", [1, 3, 64, 10 ** 6])
def test_generated_city_identical_for_every_chunk_size(policy, city, chunk):
    ref = _whole_table_members(policy, city.branches, city.members, city.member_months)
    r = bs.evaluate(city, policy, chunk_size=chunk)
    _assert_same(r, ref)
    one = bs.evaluate(city, policy, chunk_size=len(city.branches))
    pd.testing.assert_frame_equal(r.branches, one.branches, check_exact=True)
    pd.testing.assert_frame_equal(r.members, one.members, check_exact=True)


def test_shuffled_rows_give_the_same_members(policy, city):
    # A researcher's table in any row order: the same member outcomes (row order within a member
    # decides the summation order, so each member's months keep their order here).
    rng = np.random.default_rng(0)
    mm = city.member_months
    order = np.argsort(rng.permutation(len(city.members))[mm["member_id"].cat.codes.to_numpy()], kind="stable")
    shuffled = mm.iloc[order].reset_index(drop=True)
    members = city.members.sample(frac=1, random_state=1).reset_index(drop=True)
    r = bs.evaluate_tables(policy, city.branches, members, shuffled, chunk_size=7)
    ref = _whole_table_members(policy, city.branches, members, shuffled)
    _assert_same(r, ref)


def test_numpy_fallback_is_identical(policy, city, monkeypatch):
    compiled = bs.evaluate(city, policy, chunk_size=50)
    monkeypatch.setattr(_month_kernel, "available", lambda: False)
    fallback = bs.evaluate(city, policy, chunk_size=50)
    pd.testing.assert_frame_equal(compiled.members, fallback.members, check_exact=True)


@pytest.mark.skipif(not _month_kernel.available(), reason="needs numba")
@pytest.mark.parametrize("k", [1, 3, 7, 8, 9, 50, 128])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_equals_indicator_points_sum(k, dtype):
    # Random rules of every form the kernel takes and facts (including values outside every rule's
    # range and exact zeros):
    # the kernel's totals equal NumPy's points summed with sum(axis=1), bit for bit.
    rng = np.random.default_rng(k)
    t = 3
    rules_ = rng.choice(["binary", "deduction", "proportion", "bonus", "per_event", "per_occurrence",
                         "penalty"], k)
    rules = sheet(*[{"rule": r, "points": rng.uniform(0, 7, t).round(2), "required": rng.integers(1, 13),
                     "per_shortfall": round(rng.uniform(0, 2), 3), "per_unit": round(rng.uniform(0, 3), 3),
                     "per_event": round(rng.uniform(0, 3), 3), "per_occurrence": round(rng.uniform(0, 3), 3),
                     "at_least": rng.integers(1, 3)} for r in rules_], profiles=t)
    n = 3000
    facts = (rng.uniform(-2, 15, (n, k)) * (rng.random((n, k)) > 0.1)).astype(dtype)
    rows = np.sort(rng.choice(n, 1700, replace=False))
    row_type = rng.integers(0, t, len(rows))
    cols = tuple(np.ascontiguousarray(facts[:, j]) for j in range(k))
    got = _month_kernel.row_totals(cols, rules, rows, row_type)
    want = indicator_points(facts[rows], row_type, rules).sum(axis=1)
    assert np.array_equal(got, want)


def test_kernel_refuses_more_indicators_than_one_numpy_block():
    # Longer rows are summed by NumPy in several blocks: evaluate uses the NumPy path for them.
    with pytest.raises(ValueError, match="at most 128"):
        _month_kernel.fact_list([np.zeros(2)] * 129)


def test_chunk_size_must_be_a_positive_whole_number(policy, city):
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(bs.DataError, match="chunk_size"):
            bs.evaluate(city, policy, chunk_size=bad)
