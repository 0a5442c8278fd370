"""Format 1 → format 2: the baseline's results unchanged.

tests/data/baseline_v1.yaml is the format-1 baseline (``git show a54fae5:data/policies/baseline.yaml``).
It must migrate to a policy whose parameters equal the shipped format-2 baseline's, and evaluate
identically: tests/data/golden_v1 holds the old engine's evaluate outputs on data/examples and on
``generate(seed=0, n_branches=400)``; every column is compared (old ``stars`` 5/4/3/0 ↔ ``rating``
level ids by the format-1 vocabulary, ``monthly_mean`` ↔ ``record``, ``months`` ↔ ``periods``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim.cli import main

HERE = Path(__file__).resolve().parent
V1 = HERE / "data" / "baseline_v1.yaml"
GOLDEN = HERE / "data" / "golden_v1"
RENAMED = {"stars": "rating", "true_stars": "true_rating", "monthly_mean": "record", "months": "periods"}


@pytest.fixture(scope="module")
def migrated() -> bs.Policy:
    return bs.Policy.load(V1)


@pytest.fixture(scope="module")
def star_ids() -> dict:
    voc = yaml.safe_load(bs.data_path("formats", "policy-v1.yaml").read_text(encoding="utf-8"))
    return {int(k): v["id"] for k, v in voc["star_levels"].items()}


def old_frame(df: pd.DataFrame, star_ids: dict) -> pd.DataFrame:
    df = df.rename(columns=RENAMED)
    for col in ("rating", "true_rating"):
        if col in df:
            df[col] = df[col].map(star_ids)
    return df


def assert_same_columns(old: pd.DataFrame, new: pd.DataFrame, what: str) -> None:
    assert set(old.columns) == set(new.columns), (what, set(old.columns) ^ set(new.columns))
    assert len(old) == len(new)
    for col in old.columns:
        a, b = old[col].to_numpy(), new[col].to_numpy()
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: {col}")
        elif a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
            # Sums of points: the golden files were written with the order of additions a matrix product
            # chose on that machine's BLAS; the engine now adds in column order (scoring.ordered_product),
            # the same on every machine. So a few units in the last place, no more.
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=4 * np.finfo(float).eps, atol=0,
                                       err_msg=f"{what}: {col}")
        else:
            text = [["" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x) for x in v]
                    for v in (a, b)]
            assert text[0] == text[1], f"{what}: {col}"


def test_the_file_is_format_1(migrated):
    assert "schema: branchsim-policy/1" in V1.read_text(encoding="utf-8")
    assert migrated.source_format == 1


def test_parameters_equal_the_shipped_baseline(migrated):
    base = bs.Policy.load()
    a = migrated.parameters().set_index("path")["value"]
    b = base.parameters().set_index("path")["value"]
    assert a.index.tolist() == b.index.tolist()
    assert a.tolist() == b.tolist()
    # Structure: the same levels, grades, designations, consequences and state facts.
    assert migrated.levels == base.levels and migrated.grades == base.grades
    s, t = migrated.scheme, base.scheme
    assert s.branch.state_facts == t.branch.state_facts
    assert [d.criteria for d in s.branch.designations] == [d.criteria for d in t.branch.designations]
    assert s.consequences == t.consequences and s.interventions == t.interventions
    # What differs is text only (a quote on the designation).
    assert set(base.diff(migrated)["provenance"]) <= {"structure"}


@pytest.mark.parametrize("which", ["migrated", "shipped"])
def test_example_tables_evaluate_as_the_old_engine(which, migrated, star_ids):
    policy = migrated if which == "migrated" else bs.Policy.load()
    r = bs.evaluate(bs.load_population(bs.data_path("examples"), policy=policy), policy)
    old_b = old_frame(pd.read_csv(GOLDEN / "examples_branches.csv", keep_default_na=False), star_ids)
    old_m = old_frame(pd.read_csv(GOLDEN / "examples_members.csv", keep_default_na=False), star_ids)
    assert_same_columns(old_b, r.branches, "branches")
    assert_same_columns(old_m, r.members, "members")


@pytest.fixture(scope="module")
def city400():
    return bs.generate(seed=0, n_branches=400)


def test_the_generated_city_is_the_old_one(city400):
    old = pd.read_parquet(GOLDEN / "city400_pop_branches.parquet")
    pd.testing.assert_frame_equal(city400.branches[old.columns].reset_index(drop=True), old, check_dtype=False)
    sums = pd.read_csv(GOLDEN / "city400_member_month_sums.csv", index_col=0)["sum"]
    got = city400.member_months[sums.index].to_numpy(np.float64).sum(axis=0)
    np.testing.assert_array_equal(got, sums.to_numpy())


@pytest.mark.parametrize("which", ["migrated", "shipped"])
def test_generated_city_evaluates_as_the_old_engine(which, migrated, star_ids, city400):
    policy = migrated if which == "migrated" else bs.Policy.load()
    r = bs.evaluate(city400, policy)
    assert_same_columns(old_frame(pd.read_parquet(GOLDEN / "city400_branches.parquet"), star_ids), r.branches,
                        "branches")
    assert_same_columns(old_frame(pd.read_parquet(GOLDEN / "city400_members.parquet"), star_ids), r.members,
                        "members")


def test_the_migrated_city_generates_as_the_old_one(migrated, city400):
    # The migrated file draws the same population (its state facts are marked as format 1 had them).
    again = bs.generate(migrated, seed=0, n_branches=400)
    pd.testing.assert_frame_equal(again.branches, city400.branches)


def test_migrate_policy_writes_format_2(tmp_path, capsys, migrated):
    out = tmp_path / "baseline2.yaml"
    assert main(["migrate-policy", str(V1), str(out)]) == 0
    assert "format 2" in capsys.readouterr().out
    written = bs.Policy.load(out)
    assert written.source_format == 2 and written == migrated
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["schema"] == "branchsim-policy/2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline2.yaml"]     # nothing else left
    # An existing file is replaced only with --force (atomically).
    out.write_text("mine\n", encoding="utf-8")
    assert main(["migrate-policy", str(V1), str(out)]) == 2
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert main(["migrate-policy", str(V1), str(out), "--force"]) == 0
    assert bs.Policy.load(out) == migrated
