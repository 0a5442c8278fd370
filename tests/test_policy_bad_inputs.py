"""Bad policy inputs: each is one PolicyError (or DataError) naming the file, line or parameter path.

A table of hostile or mistaken policy files, updates and values (issue 10): non-UTF-8 and
binary files, YAML alias bombs, recursion, deep nesting, duplicate keys, huge numbers, failed
saves, unrepresentable point totals, reserved fact names, a weak line above the top cut,
deductions that cannot reach zero, and fact ranges. None may end in a traceback of another
exception type, and no message may quote an unbounded value.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np
import pytest

import branchsim as bs
from branchsim import rating, scoring
from branchsim.scheme import RULE_CODES
from branchsim.policy import MAX_BYTES, MAX_DEPTH, MAX_NODES, fact_range

BASELINE = bs.data_path("policies", "baseline.yaml")
TEXT = BASELINE.read_text(encoding="utf-8")
WEAK_BELOW = "branch.designations.weak.criteria.low_score.below"


@pytest.fixture(scope="module")
def policy():
    return bs.Policy.load()


def write(tmp_path: Path, content, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_error(path: Path) -> bs.PolicyError:
    with pytest.raises(bs.PolicyError) as info:
        bs.Policy.load(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg           # names the file
    assert len(msg) < 2000, len(msg)                 # bounded, whatever the file holds
    return info.value


def replaced(old: str, new: str, text: str = TEXT) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- encodings ----------------------------------------------------------------------------------
class TestEncodings:
    def test_random_bytes(self, tmp_path):
        raw = np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes()
        err = load_error(write(tmp_path, raw))
        assert "UTF-8" in str(err)

    def test_latin1(self, tmp_path):
        err = load_error(write(tmp_path, "name: café\n".encode("latin-1")))
        assert "not UTF-8 text (byte 0xe9 on line 1)" in str(err) and "save the file as UTF-8" in str(err)

    def test_gbk(self, tmp_path):
        err = load_error(write(tmp_path, "name: 基層黨支部\n".encode("gbk")))
        assert "not UTF-8 text" in str(err)

    def test_utf16_without_bom(self, tmp_path):
        err = load_error(write(tmp_path, TEXT.encode("utf-16-le")))
        assert "UTF-16 text without a byte-order mark" in str(err)

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])   # both write a byte-order mark
    def test_with_a_byte_order_mark_it_is_read(self, tmp_path, policy, encoding):
        assert bs.Policy.load(write(tmp_path, TEXT.encode(encoding))) == policy

    def test_too_large(self, tmp_path):
        err = load_error(write(tmp_path, TEXT + "#" * MAX_BYTES))
        assert "larger than 4 MiB" in str(err)

    def test_not_valid_yaml_names_the_line(self, tmp_path):
        err = load_error(write(tmp_path, "name: [unclosed\nschema: x\n"))
        assert re.search(r"not valid YAML \(line \d+, column \d+\)", str(err))

    def test_a_folder_or_a_non_path(self, tmp_path):
        assert "is a folder" in str(load_error(tmp_path))
        with pytest.raises(bs.PolicyError, match="takes a file path"):
            bs.Policy.load(123)

    def test_missing_file(self, tmp_path):
        assert "cannot read policy file" in str(load_error(tmp_path / "nope.yaml"))


# -- aliases, recursion, nesting ---------------------------------------------------------------------
def laughs(levels: int, key: str = "notes") -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"{key}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


class TestAliases:
    def test_billion_laughs_is_refused_before_anything_expands(self, tmp_path):
        text = laughs(9)
        assert len(text) < 600
        err = load_error(write(tmp_path, text))
        assert f"expands to more than {MAX_NODES:,} YAML nodes" in str(err)

    def test_an_alias_bomb_in_name_gives_a_short_message(self, tmp_path):
        err = load_error(write(tmp_path, laughs(7, key="name")))
        assert len(str(err)) < 400

    def test_a_small_alias_bomb_in_name_is_quoted_short(self, tmp_path):
        # Under the node bound (9**4 strings), but far too long to quote: the message stays short.
        err = load_error(write(tmp_path, laughs(4, key="name") + TEXT.replace("name: baseline\n", "")))
        line = next(p for p in err.problems if p.startswith("name: expected a text"))
        assert len(line) < 200 and len(str(err)) < 1500

    def test_small_aliases_are_fine(self, tmp_path, policy):
        # An anchor on one provenance text, used again by an alias: an ordinary YAML convenience.
        old = next(x for x in TEXT.splitlines() if x.startswith("          below: {value: 50, assumption: "))
        text = replaced(old, old.replace("assumption: ", "assumption: &why ", 1))
        old = next(x for x in text.splitlines() if x.startswith("  committee_from:"))
        text = replaced(old, "  committee_from: {value: 7, assumption: *why}", text)
        p = bs.Policy.load(write(tmp_path, text))
        assert p["structure.committee_from"] == 7
        assert p.provenance("structure.committee_from") == policy.provenance(WEAK_BELOW)

    @pytest.mark.parametrize("text", ["notes: &r [*r]\n", "a: &a {b: *a}\n"])
    def test_recursion(self, tmp_path, text):
        err = load_error(write(tmp_path, text))
        assert "recursive" in str(err) and "line 1" in str(err)

    def test_flow_list_800_deep(self, tmp_path):
        err = load_error(write(tmp_path, "notes: " + "[" * 800 + "]" * 800 + "\n"))
        assert f"nested more than {MAX_DEPTH} levels deep" in str(err)

    def test_flow_list_deeper_than_yaml_allows(self, tmp_path):
        err = load_error(write(tmp_path, "notes: " + "[" * 20000 + "]" * 20000 + "\n"))
        # libyaml's own limit (a YAML error), or the pure-Python reader's recursion limit
        assert "not valid YAML" in str(err) or f"nested more than {MAX_DEPTH} levels" in str(err)

    def test_a_dict_that_contains_itself(self, policy):
        d = policy.to_dict()
        d["notes"] = d
        with pytest.raises(bs.PolicyError, match="nested more than"):
            bs.Policy(d)

    def test_a_python_alias_bomb(self, policy):
        d, node = policy.to_dict(), ["lol"] * 10
        for _ in range(8):
            node = [node] * 10
        d["notes"] = node
        with pytest.raises(bs.PolicyError, match="more than 100,000 entries"):
            bs.Policy(d)


# -- duplicate keys --------------------------------------------------------------------------------
class TestDuplicateKeys:
    def test_second_satisfaction_share(self, tmp_path):
        text = replaced("  dimensions:\n",
                        '  satisfaction_share: {value: 0.5, assumption: "again"}\n  dimensions:\n')
        lines = [i + 1 for i, x in enumerate(text.splitlines()) if x.startswith("  satisfaction_share:")]
        err = load_error(write(tmp_path, text))
        assert f"branch.satisfaction_share: duplicate key (lines {lines[0]} and {lines[1]})" in str(err)

    def test_nested_duplicate_names_the_path(self, tmp_path):
        err = load_error(write(tmp_path, "branch:\n  types:\n    village: {label: a, label: b}\n"))
        assert "branch.types.village.label: duplicate key (lines 3 and 3)" in str(err)

    def test_keys_equal_after_reading_as_text(self, tmp_path):
        err = load_error(write(tmp_path, "star_cuts:\n  5: 1\n  '5': 2\n"))
        assert "star_cuts.5: duplicate key (lines 2 and 3)" in str(err)


# -- numbers ----------------------------------------------------------------------------------------
HUGE = 10 ** 400


class TestNumbers:
    def test_400_digits_in_a_file(self, tmp_path):
        text = replaced("          below: {value: 50,", f"          below: {{value: {HUGE},")
        err = load_error(write(tmp_path, text))
        assert f"{WEAK_BELOW}: got <a whole number of 401 digits>" in str(err)

    def test_400_digits_in_update(self, policy):
        with pytest.raises(bs.PolicyError, match=r"update: branch\.indicators\.party_lectures\.points: got "
                                                 r"<a whole number of 401 digits>"):
            policy.update({"branch.indicators.party_lectures.points": HUGE})

    @pytest.mark.parametrize("value, shown", [(HUGE, "<a whole number of 401 digits>"), ("a", "'a'"),
                                              (True, "True"), (float("nan"), "nan")])
    def test_bad_sweep_values(self, policy, value, shown):
        pop = bs.generate(policy, seed=2, n_branches=30, members=False)
        with pytest.raises(bs.PolicyError) as info:
            bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3, value]}, progress=False)
        assert str(info.value).startswith(f"sweep: branch.satisfaction_share: got {shown}")

    def test_1e308_points_are_refused(self, policy):
        d = policy.to_dict()
        for iid in ("party_lectures", "general_meetings"):
            d["branch"]["indicators"][iid]["points"]["value"] = 1e308
        with pytest.raises(bs.PolicyError) as info:
            bs.Policy(d)
        assert "branch.indicators.party_lectures.points: got 1e+308" in str(info.value)
        assert "at most 1e+12 in size" in str(info.value)

    def test_point_totals_must_be_representable(self, policy):
        d = policy.to_dict()
        for ind in list(d["branch"]["indicators"].values())[:12]:
            ind["points"]["value"] = 9e11
            if ind["rule"] == "deduction":
                ind["keeps_points_at_zero"] = {"value": True, "assumption": "test"}
        with pytest.raises(bs.PolicyError, match=r"branch\.indicators: the points add up to 1\.08e\+13"):
            bs.Policy(d)

    def test_plain_values_in_messages(self, policy):
        with pytest.raises(bs.PolicyError) as info:
            policy.update({"structure.committee_from": np.float64(1.5), "branch.satisfaction_share": np.int64(-1)})
        msg = str(info.value)
        assert "got 1.5" in msg and "got -1" in msg and "np." not in msg

    def test_numpy_values_in_a_mapping_become_plain(self, policy):
        d = policy.to_dict()
        d["structure"]["committee_from"]["value"] = np.int64(7)
        p = bs.Policy(d)
        assert type(p["structure.committee_from"]) is int and p == policy

    def test_a_very_long_key_is_cut_in_the_message(self, policy):
        d = policy.to_dict()
        d["k" * 100_000] = 1
        with pytest.raises(bs.PolicyError) as info:
            bs.Policy(d)
        assert len(str(info.value)) < 1000

    def test_many_problems_are_listed_up_to_a_bound(self, policy):
        d = policy.to_dict()
        for ind in d["member"]["indicators"].values():
            ind["points"]["value"] = -1
        with pytest.raises(bs.PolicyError) as info:
            bs.Policy(d)
        n = len(info.value.problems)
        assert n > 50
        assert str(info.value).count("\n  - ") == 26 and f"and {n - 25} more" in str(info.value)


# -- saving -----------------------------------------------------------------------------------------
class TestSave:
    def test_into_a_missing_folder(self, policy, tmp_path):
        target = tmp_path / "no" / "p.yaml"
        with pytest.raises(bs.PolicyError, match="does not exist; create it first"):
            policy.save(target)
        assert not (tmp_path / "no").exists()

    def test_into_a_file_as_folder(self, policy, tmp_path):
        (tmp_path / "f").write_text("x", encoding="utf-8")
        with pytest.raises(bs.PolicyError, match="is a file, not a folder"):
            policy.save(tmp_path / "f" / "p.yaml")

    def test_onto_a_folder(self, policy, tmp_path):
        with pytest.raises(bs.PolicyError, match="is a folder"):
            policy.save(tmp_path)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("where", ["write", "replace"])
    def test_a_full_disk_leaves_the_old_file_and_nothing_else(self, policy, tmp_path, monkeypatch, where):
        target = tmp_path / "p.yaml"
        target.write_text("old", encoding="utf-8")

        def full(*a, **k):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if where == "replace":
            monkeypatch.setattr(os, "replace", full)
        else:
            monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(bs.PolicyError, match="cannot write the policy file: No space left on device"):
            policy.save(target)
        assert target.read_text(encoding="utf-8") == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]

    def test_round_trip(self, policy, tmp_path):
        assert bs.Policy.load(policy.save(tmp_path / "p.yaml")) == policy


# -- semantic checks ------------------------------------------------------------------------------------
def refused(policy, edit, match: str):
    d = policy.to_dict()
    edit(d)
    with pytest.raises(bs.PolicyError, match=match):
        bs.Policy(d)


class TestSemantics:
    def test_weak_line_above_the_top_cut(self, policy):
        with pytest.raises(bs.PolicyError, match=re.escape(f"{WEAK_BELOW}: 95 is above the cut of the top level "
                                                            f"five_star (90)")):
            policy.update({WEAK_BELOW: 95})
        assert policy.update({WEAK_BELOW: 90})[WEAK_BELOW] == 90   # at the cut: allowed

    @pytest.mark.parametrize("section, iid, fact", [
        ("branch", "party_lectures", "branch_id"), ("branch", "party_lectures", "n_members"),
        ("branch", "party_lectures", "survey_basic"), ("member", "theory_study", "month"),
        ("member", "theory_study", "member_id"), ("member", "theory_study", "appraisal"),
    ])
    def test_fact_named_like_a_table_column(self, policy, section, iid, fact):
        def edit(d):
            d[section]["indicators"][iid]["fact"] = fact
        refused(policy, edit, rf"{section}\.indicators\.{iid}\.fact: '{fact}' is a column of the")

    def test_reserved_names_come_from_the_data_dictionary(self):
        from branchsim import tables
        from branchsim._checks import reserved_columns
        got = reserved_columns()
        assert {"branch_id", "type", "level", "n_members"} <= got["branch"]
        assert {"member_id", "month"} <= got["member"]
        if hasattr(tables, "RESERVED_COLUMNS"):
            assert got["branch"] == set(tables.RESERVED_COLUMNS["branches"])

    def test_an_override_a_deduction_cannot_take_to_zero(self, policy):
        def edit(d):
            d["branch"]["types"]["village"]["indicators"]["reserve_cadres"]["points"]["value"] = 4
        refused(policy, edit, r"branch\.types\.village\.indicators\.reserve_cadres\.points: 4 points, but "
                              r"per_shortfall × required = 1\.5 × 2 = 3, so a fact of 0 still earns 1 of them")

    def test_the_indicator_itself(self, policy):
        def edit(d):
            d["branch"]["indicators"]["party_lectures"]["per_shortfall"]["value"] = 0.5
        refused(policy, edit, r"branch\.indicators\.party_lectures\.points: 3 points, .* still earns 1 of them")

    def test_declared_on_purpose_it_is_allowed(self, policy):
        d = policy.to_dict()
        d["branch"]["types"]["village"]["indicators"]["reserve_cadres"]["points"]["value"] = 4
        d["branch"]["indicators"]["reserve_cadres"]["keeps_points_at_zero"] = {
            "value": True, "assumption": "a village keeps a point for its pool"}
        p = bs.Policy(d)
        bs_ = p.scheme.branch
        j = bs_.sheet.facts.index("reserve_cadres")
        facts = np.full((1, bs_.sheet.k), 0.0)
        village = bs_.types.index("village")
        assert scoring.indicator_points(facts, np.array([village]), bs_.sheet)[0, j] == 1.0

    def test_keeps_points_at_zero_only_on_deductions(self, policy):
        def edit(d):
            d["branch"]["indicators"]["wechat_group"]["keeps_points_at_zero"] = {"value": True,
                                                                                 "assumption": "x"}
        refused(policy, edit, r"wechat_group\.keeps_points_at_zero: not used by rule 'binary'")

    def test_baseline_deductions_all_reach_zero(self, policy):
        for sheet in (policy.scheme.branch.sheet, policy.scheme.member.sheet):
            profiles = np.arange(len(sheet.profiles))
            pts = scoring.indicator_points(np.zeros((len(profiles), sheet.k)), profiles, sheet)
            bonus_or_deduction = np.isin(sheet.kind, [RULE_CODES["deduction"], RULE_CODES["bonus"]])
            assert (pts[bonus_or_deduction] == 0).all(), sheet.profiles


# -- fact ranges --------------------------------------------------------------------------------------
class TestRanges:
    def test_every_baseline_indicator_declares_one(self, policy):
        for section in (policy.branch_indicators, policy.member_indicators):
            for iid, ind in section.items():
                assert "range" in ind, iid
                assert ("quote" in ind["range"]) != ("assumption" in ind["range"]), iid
                low, high = fact_range(ind)
                assert 0 <= low < high, iid
                if ind["rule"] == "deduction":
                    assert high >= ind["required"]["value"], iid

    def test_the_example_lecture_range(self, policy):
        assert fact_range(policy.branch_indicators["party_lectures"]) == (0.0, 24.0)

    @pytest.mark.parametrize("rule, extra, expected", [
        ("binary", {}, (0.0, 1.0)), ("proportion", {}, (0.0, 1.0)),
        ("deduction", {"required": {"value": 12}}, (0.0, 120.0)),
        ("deduction", {"required": {"value": 0}}, (0.0, 10.0)),
        ("bonus", {"points": {"value": 3}, "per_unit": {"value": 0.5}}, (0.0, 60.0)),
    ])
    def test_defaults_follow_the_rule_form(self, rule, extra, expected):
        assert fact_range({"rule": rule, **extra}) == expected

    @pytest.mark.parametrize("value, match", [
        ([5, 1], r"got \[5, 1\]; allowed: \[low, high\]"), ([0], r"got \[0\]"), ("0-60", r"got '0-60'"),
        ([0, HUGE], r"got \[0, <a whole number"), ([0, float("inf")], r"got \[0, inf\]"),
        ([-1, 5], r"got \[-1, 5\]"),
    ])
    def test_bad_range_values(self, policy, value, match):
        def edit(d):
            d["branch"]["indicators"]["party_lectures"]["range"]["value"] = value
        refused(policy, edit, r"branch\.indicators\.party_lectures\.range: " + match)

    def test_range_needs_provenance(self, policy):
        def edit(d):
            d["branch"]["indicators"]["party_lectures"]["range"] = {"value": [0, 24]}
        refused(policy, edit, r"party_lectures\.range: needs exactly one of 'quote' or 'assumption'")

    def test_binary_range_beyond_one(self, policy):
        def edit(d):
            d["branch"]["indicators"]["wechat_group"]["range"]["value"] = [0, 2]
        refused(policy, edit, r"wechat_group\.range: \[0, 2\] goes beyond 1")

    def test_deduction_range_below_its_requirement(self, policy):
        def edit(d):
            d["branch"]["indicators"]["party_lectures"]["range"]["value"] = [0, 3]
        refused(policy, edit, r"party_lectures\.range: \[0, 3\] ends below required \(4\)")

    def test_a_range_is_not_a_parameter(self, policy):
        assert "branch.indicators.party_lectures.range" not in policy
        assert not policy.parameters()["path"].str.endswith(".range").any()


# -- scores that are not numbers are never rated ------------------------------------------------------------
class TestNonFiniteScores:
    def test_nan_never_gets_the_top_level(self):
        with pytest.raises(bs.DataError, match=r"score is not a finite number in rows 2, 3 \(nan\)"):
            rating.cut_levels(np.array([95.0, np.nan, np.inf]), np.array([70.0, 80, 90]))

    def test_nan_never_gets_a_grade(self, policy):
        ms = policy.scheme.member
        with pytest.raises(bs.DataError, match="score is not a finite number in row 1"):
            rating.rate(np.array([np.nan, 95.0]), ms.rating, profile=np.zeros(2, int))

    def test_nan_never_gets_a_quota_level(self, policy):
        q = policy.update({"branch.rating.design": "quota", "branch.rating.quotas": {
            lv: {"value": 0.2, "assumption": "test"} for lv in policy.levels[:-1]}}).scheme.branch.rating
        with pytest.raises(bs.DataError, match="in row 1"):
            rating.rate(np.array([np.nan, 95.0]), q, profile=np.zeros(2, int))

    def test_through_branch_outcome(self, policy):
        from branchsim.evaluate import BranchInputs, branch_outcome
        s = policy.scheme
        facts = np.ones((2, s.branch.sheet.k)) * 4
        facts[1, s.branch.sheet.facts.index("wechat_member_share")] = np.nan   # a share: NaN points
        values = {f: facts[:, j] for j, f in enumerate(s.branch.sheet.facts)}
        inp = BranchInputs(facts, values, np.zeros(2, int), np.array([[5, 0, 0], [5, 0, 0]]), {}, None)
        with pytest.raises(bs.DataError, match="in row 2"):
            branch_outcome(inp, s)


# -- rounding before the cuts (docs/policy-format.md) --------------------------------------------------------
class TestRounding:
    @pytest.mark.parametrize("below, level", [(1e-12, 1), (1e-10, 1), (1e-9, 0), (1e-6, 0)])
    def test_a_hair_below_a_cut(self, below, level):
        score = scoring.weighted_scores(np.array([[(70 - below) / 100]]), np.array([1.0]))
        assert rating.cut_levels(score.ravel(), np.array([70.0])).tolist() == [level]


# -- the command line reports one line ------------------------------------------------------------------------
def test_cli_policy_on_a_binary_file(tmp_path, capsys):
    from branchsim.cli import main
    raw = np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    path = write(tmp_path, raw, "y.yaml")
    assert main(["policy", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("branchsim: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err
