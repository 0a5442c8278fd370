"""The Policy: the baseline's published figures, reforms, diffs, files and validation."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import PolicyError
from conftest import SEED

DIMENSION_NAMES = ("組織建設", "制度建設", "支部活動", "作用發揮")
BRANCH_TYPES = ("village", "urban_community", "government", "institution", "enterprise", "social_org")
WEAK_BELOW = "branch.designations.weak.criteria.low_score.below"
DIM_SHARES = [f"branch.dimensions.{d}.share" for d in ("organisation", "institution", "activities", "role")]


def _quotes(node, path=""):
    """Every (path, text) under a key named 'quote', anywhere in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "quote":
                yield path, value
            else:
                yield from _quotes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _quotes(value, f"{path}[{i}]")


def _write(tmp_path, data, name="policy.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _load_error(tmp_path, data) -> PolicyError:
    with pytest.raises(PolicyError) as err:
        bs.Policy.load(_write(tmp_path, data))
    return err.value


# -- the baseline ------------------------------------------------------------------
class TestBaseline:
    def test_four_dimensions_with_the_original_names(self, policy):
        assert len(policy.dimensions) == 4
        labels = [policy[f"branch.dimensions.{d}.label"] for d in policy.dimensions]
        for label, name in zip(labels, DIMENSION_NAMES):
            assert name in label

    def test_indicator_counts(self, policy):
        # Source: "30余項考核指標" for branches, "50條左右" for members, in the 4 groups of 四講四有.
        assert len(policy.branch_indicators) >= 30
        assert 45 <= len(policy.member_indicators) <= 55
        assert len(policy["member.groups"]) == 4
        assert {i["group"] for i in policy.member_indicators.values()} == set(policy["member.groups"])

    def test_every_dimension_has_indicators(self, policy):
        used = {i["dimension"] for i in policy.branch_indicators.values()}
        assert used == set(policy.dimensions)

    def test_six_branch_types(self, policy):
        assert tuple(policy.branch_types) == BRANCH_TYPES

    def test_published_figures_are_quoted(self, policy):
        assert policy["branch.satisfaction_share"] == pytest.approx(0.40)
        prov = policy.provenance("branch.satisfaction_share")
        assert prov.startswith("quote:") and "40%" in prov
        assert policy["member.record_share"] == pytest.approx(0.80)
        assert policy.provenance("member.record_share").startswith("quote:")
        assert "80%" in policy.provenance("member.record_share")
        assert policy["consequences.reorganise.when.years"] == 2
        assert policy.provenance("consequences.reorganise.when.years").startswith("quote:")

    def test_shares_add_up_to_one(self, policy):
        assert policy["branch.satisfaction_share"] + sum(policy[p] for p in DIM_SHARES) == pytest.approx(1)
        assert policy["member.record_share"] + policy["member.appraisal_share"] == pytest.approx(1)

    def test_every_parameter_has_provenance(self, policy):
        params = policy.parameters()
        assert list(params.columns) == ["path", "value", "provenance", "source"]
        assert len(params) > 100
        assert params["path"].is_unique
        assert set(params["provenance"]) == {"quote", "assumption"}
        assert params["source"].map(lambda s: isinstance(s, str) and s.strip() != "").all()

    @pytest.mark.skipif(not SEED.exists(), reason="shared/seed is not next to the repository")
    def test_every_quote_is_verbatim_in_the_seed(self, policy):
        seed = SEED.read_text(encoding="utf-8")
        quotes = list(_quotes(policy.to_dict()))
        assert len(quotes) >= 5  # the parameter quotes and the consequence actions
        missing = [(path, q) for path, q in quotes if q not in seed]
        assert missing == []

    def test_all_four_rule_forms_among_branch_indicators(self, policy):
        rules = {i["rule"] for i in policy.branch_indicators.values()}
        assert rules == {"binary", "deduction", "proportion", "bonus"}

    def test_vetoes_name_branch_indicators(self, policy):
        vetoes = policy["branch.vetoes"]
        assert {"secretary_vacant", "meetings_neglected"} <= set(vetoes)
        for v in vetoes.values():
            assert v["indicator"] in policy.branch_indicators


# -- reading ------------------------------------------------------------------------
def test_read_by_dotted_path(policy):
    assert policy["branch.satisfaction_share"] == 0.4
    assert policy["branch.rating.cuts.three_star"] == 70
    assert "branch.satisfaction_share" in policy
    # A section comes back as a copy: changing it does not change the policy.
    section = policy["branch.rating.cuts"]
    section["three_star"]["value"] = 1
    assert policy["branch.rating.cuts.three_star"] == 70


def test_unknown_path_names_the_path(policy):
    with pytest.raises(PolicyError, match=r"branch\.no_such_thing"):
        policy["branch.no_such_thing"]


def test_policy_is_immutable(policy):
    with pytest.raises(AttributeError):
        policy.name = "other"


# -- update (a reform) --------------------------------------------------------------
class TestUpdate:
    def test_returns_a_new_policy_and_leaves_the_original(self, policy):
        before = policy.to_dict()
        old = policy[WEAK_BELOW]
        reform = policy.update({WEAK_BELOW: old + 5})
        assert reform[WEAK_BELOW] == old + 5
        assert policy[WEAK_BELOW] == old
        assert policy.to_dict() == before
        assert reform != policy

    def test_satisfaction_share_renormalises_dimensions(self, policy):
        reform = policy.update({"branch.satisfaction_share": 0.30})
        assert reform["branch.satisfaction_share"] == 0.30
        for path in DIM_SHARES:
            # Each dimension keeps its proportion: old × 0.7 / 0.6 (0.15 → 0.175).
            assert reform[path] == pytest.approx(policy[path] * 0.7 / 0.6)
            assert reform[path] == pytest.approx(0.175)
        total = reform["branch.satisfaction_share"] + sum(reform[p] for p in DIM_SHARES)
        assert total == pytest.approx(1.0, abs=1e-12)

    def test_renormalisation_keeps_unequal_proportions(self, policy):
        # Dimensions 0.25, 0.15, 0.15, 0.15 (survey 0.30 after re-normalising 0.40 × 0.75/0.85);
        # then the survey goes to 0.5: the four dimensions share 0.5 in the ratio 25:15:15:15.
        step = policy.update({"branch.dimensions.organisation.share": 0.25})
        assert step["branch.satisfaction_share"] == pytest.approx(0.40 * 0.75 / 0.85)
        reform = step.update({"branch.satisfaction_share": 0.5})
        expected = np.array([0.25, 0.15 * 0.75 / 0.85, 0.15 * 0.75 / 0.85, 0.15 * 0.75 / 0.85])
        expected *= 0.5 / expected.sum()
        assert [reform[p] for p in DIM_SHARES] == pytest.approx(expected.tolist())

    def test_monthly_share_renormalises_appraisal_share(self, policy):
        reform = policy.update({"member.record_share": 0.6})
        assert reform["member.appraisal_share"] == pytest.approx(0.4)

    def test_whole_share_group_not_adding_to_one_is_refused(self, policy):
        with pytest.raises(PolicyError, match="record_share"):
            policy.update({"member.record_share": 0.5, "member.appraisal_share": 0.4})

    def test_whole_share_group_adding_to_one_is_accepted(self, policy):
        reform = policy.update({"member.record_share": 0.5, "member.appraisal_share": 0.5})
        assert (reform["member.record_share"], reform["member.appraisal_share"]) == (0.5, 0.5)

    def test_typo_names_the_path_and_suggests_the_right_one(self, policy):
        with pytest.raises(PolicyError) as err:
            policy.update({"branch.satisfacton_share": 0.3})
        msg = str(err.value)
        assert "satisfacton_share" in msg and "branch" in msg
        assert "did you mean 'satisfaction_share'" in msg
        with pytest.raises(PolicyError) as err:
            policy.update({"branch.rating.cutz.five_star": 92})     # under a section that does not exist
        assert "branch.rating.cutz.five_star: no such parameter or section" in str(err.value)
        assert "did you mean 'branch.rating.cuts" in str(err.value)

    @pytest.mark.parametrize("value", ["0.3", True, None, [0.3]])
    def test_wrong_type_is_refused(self, policy, value):
        with pytest.raises(PolicyError, match=r"branch\.satisfaction_share"):
            policy.update({"branch.satisfaction_share": value})

    def test_number_for_a_switch_is_refused(self, policy):
        reform = policy.update({"branch.vetoes.secretary_vacant.active": {"value": True, "assumption": "a switch"}}) \
            if "branch.vetoes.secretary_vacant.active" not in policy else policy
        with pytest.raises(PolicyError, match=r"branch\.vetoes\.secretary_vacant\.active"):
            reform.update({"branch.vetoes.secretary_vacant.active": 0})

    def test_fractional_value_for_a_whole_number_is_refused(self, policy):
        with pytest.raises(PolicyError, match=r"consequences\.reorganise\.when\.years"):
            policy.update({"consequences.reorganise.when.years": 2.5})

    def test_negative_points_are_refused(self, policy):
        with pytest.raises(PolicyError, match=r"branch\.indicators\.committee_meetings\.points"):
            policy.update({"branch.indicators.committee_meetings.points": -1})

    @pytest.mark.parametrize("value", [1.5, -0.1, math.nan, math.inf])
    def test_share_out_of_range_is_refused(self, policy, value):
        with pytest.raises(PolicyError, match=r"branch\.satisfaction_share"):
            policy.update({"branch.satisfaction_share": value})

    def test_a_change_that_changes_nothing_is_refused(self, policy):
        with pytest.raises(PolicyError, match="changes nothing") as err:
            policy.update({"branch.satisfaction_share": 0.4})
        assert "branch.satisfaction_share" in str(err.value)

    def test_empty_update_is_refused(self, policy):
        with pytest.raises(PolicyError):
            policy.update({})

    def test_atomic_one_good_one_bad_key(self, policy):
        before = policy.to_dict()
        with pytest.raises(PolicyError) as err:
            policy.update({"branch.satisfaction_share": 0.3, WEAK_BELOW: "high"})
        assert WEAK_BELOW in str(err.value)
        assert policy.to_dict() == before
        assert policy["branch.satisfaction_share"] == 0.4

    def test_every_bad_key_is_reported(self, policy):
        with pytest.raises(PolicyError) as err:
            policy.update({WEAK_BELOW: "low", "branch.nosuch.share": 0.3,
                           "branch.rating.cuts.three_star": 70})
        assert len(err.value.problems) == 3

    def test_update_that_breaks_cut_order_is_refused(self, policy):
        with pytest.raises(PolicyError, match=r"branch\.rating\.cuts"):
            policy.update({"branch.rating.cuts.four_star": 95})

    def test_reason_is_recorded_as_provenance(self, policy):
        old = policy[WEAK_BELOW]
        reform = policy.update({WEAK_BELOW: old + 5}, reason="pilot 2025")
        prov = reform.provenance(WEAK_BELOW)
        # The reason, and the value it replaced.
        assert prov.startswith("assumption:") and "pilot 2025" in prov and f"{old:g}" in prov

    def test_errors_belong_to_the_package_family(self, policy):
        with pytest.raises(bs.BranchsimError):
            policy.update({"nope": 1})
        assert issubclass(PolicyError, bs.BranchsimError)
        assert issubclass(bs.DataError, bs.BranchsimError)

    def test_numpy_integer_is_a_number(self, policy):
        new = policy[WEAK_BELOW] + 5
        reform = policy.update({WEAK_BELOW: np.int64(new)})
        assert reform[WEAK_BELOW] == new
        # Stored as a plain Python number, so the policy can be saved as YAML.
        assert type(reform[WEAK_BELOW]) in (int, float)

    def test_update_with_numpy_float_saves_and_loads_back(self, policy, tmp_path):
        share = np.linspace(0.3, 0.5, 3)[0]      # how a sweep produces values: np.float64(0.3)
        reform = policy.update({"branch.satisfaction_share": share})
        assert type(reform["branch.satisfaction_share"]) is float
        back = bs.Policy.load(reform.save(tmp_path / "reform.yaml"))
        assert back == reform
        assert back["branch.satisfaction_share"] == 0.3


# -- diff ---------------------------------------------------------------------------
class TestDiff:
    def test_diff_lists_exactly_the_changed_paths(self, policy):
        reform = policy.update({"branch.satisfaction_share": 0.30})
        d = policy.diff(reform)
        assert list(d.columns) == ["path", "old", "new", "provenance"]
        assert set(d["path"]) == {"branch.satisfaction_share", *DIM_SHARES}
        row = d.set_index("path").loc["branch.satisfaction_share"]
        assert (row["old"], row["new"]) == (0.4, 0.3)
        for path in DIM_SHARES:
            r = d.set_index("path").loc[path]
            assert r["old"] == 0.15 and r["new"] == pytest.approx(0.175)
            assert "re-normalised" in r["provenance"]

    def test_diff_against_itself_is_empty(self, policy):
        d = policy.diff(policy)
        assert d.empty
        assert list(d.columns) == ["path", "old", "new", "provenance"]

    def test_diff_is_directional(self, policy):
        old = policy[WEAK_BELOW]
        reform = policy.update({WEAK_BELOW: old + 5})
        back = reform.diff(policy).set_index("path")
        assert back.loc[WEAK_BELOW, "old"] == old + 5
        assert back.loc[WEAK_BELOW, "new"] == old

    def test_diff_takes_a_policy(self, policy):
        with pytest.raises(PolicyError):
            policy.diff({WEAK_BELOW: 50})


# -- save / load --------------------------------------------------------------------
class TestSaveLoad:
    def test_round_trip(self, policy, tmp_path):
        path = policy.save(tmp_path / "copy.yaml")
        back = bs.Policy.load(path)
        assert back == policy
        pd.testing.assert_frame_equal(back.parameters(), policy.parameters())
        assert not [p for p in tmp_path.iterdir() if p.name != "copy.yaml"]  # no temp file left

    def test_updated_policy_keeps_the_update(self, policy, tmp_path):
        reform = policy.update({"branch.satisfaction_share": 0.30, "branch.rating.cuts.five_star": 92})
        back = bs.Policy.load(reform.save(tmp_path / "reform.yaml"))
        assert back == reform
        assert back["branch.satisfaction_share"] == 0.30
        assert back["branch.rating.cuts.five_star"] == 92
        assert back.provenance("branch.rating.cuts.five_star") == reform.provenance("branch.rating.cuts.five_star")
        assert policy.diff(back).equals(policy.diff(reform))

    def test_missing_file(self, tmp_path):
        with pytest.raises(PolicyError, match="nothere.yaml"):
            bs.Policy.load(tmp_path / "nothere.yaml")


# -- validation of files --------------------------------------------------------------
class TestValidation:
    def test_unknown_key_in_a_section(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["satisfaction_shar"] = {"value": 0.4, "assumption": "typo"}
        err = _load_error(tmp_path, d)
        msg = str(err)
        assert "satisfaction_shar'" in msg and "branch" in msg and "'satisfaction_share'" in msg  # suggests
        assert str(tmp_path / "policy.yaml") in msg                              # names the file

    def test_star_cuts_out_of_order(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["rating"]["cuts"]["four_star"]["value"] = 95   # 4 stars above 5 stars (90)
        assert "branch.rating.cuts" in str(_load_error(tmp_path, d))

    def test_shares_not_adding_to_one(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["satisfaction_share"]["value"] = 0.5   # 0.5 + 4 × 0.15 = 1.1
        msg = str(_load_error(tmp_path, d))
        assert "satisfaction_share" in msg and "1.1" in msg

    def test_negative_points(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["indicators"]["dues_on_time"]["points"]["value"] = -2
        assert "branch.indicators.dues_on_time.points" in str(_load_error(tmp_path, d))

    def test_veto_naming_an_unknown_indicator(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["vetoes"]["secretary_vacant"]["indicator"] = "secretary_in_pots"
        msg = str(_load_error(tmp_path, d))
        assert "branch.vetoes.secretary_vacant.indicator" in msg
        assert "secretary_in_post" in msg   # the suggestion

    def test_parameter_without_provenance(self, policy, tmp_path):
        d = policy.to_dict()
        del d["branch"]["designations"]["weak"]["criteria"]["low_score"]["below"]["assumption"]
        msg = str(_load_error(tmp_path, d))
        assert WEAK_BELOW in msg and "provenance" in msg

    def test_parameter_with_both_quote_and_assumption(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["designations"]["weak"]["criteria"]["low_score"]["below"]["quote"] = "60分"
        assert WEAK_BELOW in str(_load_error(tmp_path, d))

    def test_empty_provenance(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["designations"]["weak"]["criteria"]["low_score"]["below"]["assumption"] = "  "
        assert WEAK_BELOW + ".assumption" in str(_load_error(tmp_path, d))

    def test_rule_missing_its_parameters(self, policy, tmp_path):
        d = policy.to_dict()
        del d["branch"]["indicators"]["committee_meetings"]["per_shortfall"]
        msg = str(_load_error(tmp_path, d))
        assert "branch.indicators.committee_meetings.per_shortfall" in msg and "missing" in msg

    def test_unknown_rule_name(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["indicators"]["committee_meetings"]["rule"] = "deducton"
        msg = str(_load_error(tmp_path, d))
        assert "branch.indicators.committee_meetings.rule" in msg and "deduction" in msg

    def test_invalid_yaml(self, tmp_path):
        path = tmp_path / "broken.yaml"
        path.write_text("branch: {satisfaction_share: [0.4\nname: x\n", encoding="utf-8")
        with pytest.raises(PolicyError, match="YAML"):
            bs.Policy.load(path)

    @pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just a sentence\n"],
                             ids=["empty", "list", "scalar"])
    def test_not_a_mapping(self, tmp_path, text):
        path = tmp_path / "odd.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError, match="mapping"):
            bs.Policy.load(path)

    def test_python_tags_are_never_run(self, policy, tmp_path):
        marker = tmp_path / "ran"
        text = yaml.safe_dump(policy.to_dict(), allow_unicode=True, sort_keys=False)
        text = text.replace("name: baseline",
                            f'name: !!python/object/apply:os.system ["touch {marker}"]', 1)
        assert "!!python/object/apply:os.system" in text
        path = tmp_path / "evil.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError):
            bs.Policy.load(path)
        assert not marker.exists()

    def test_several_defects_are_all_reported(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["rating"]["cuts"]["four_star"]["value"] = 95                               # cut order
        d["member"]["record_share"]["value"] = 0.7                               # shares 0.9
        d["branch"]["vetoes"]["secretary_vacant"]["indicator"] = "secretary"     # unknown indicator
        err = _load_error(tmp_path, d)
        assert len(err.problems) >= 3
        msg = str(err)
        for where in ("branch.rating.cuts", "member", "branch.vetoes.secretary_vacant.indicator"):
            assert where in msg

    def test_several_structural_defects_are_all_reported(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["indicators"]["committee_meetings"]["points"]["value"] = -1
        del d["member"]["rating"]["cuts"]["basic"]["assumption"]
        d["structure"]["extra"] = 1
        err = _load_error(tmp_path, d)
        assert len(err.problems) >= 3

    def test_value_and_cross_entry_defects_are_reported_together(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["indicators"]["committee_meetings"]["points"]["value"] = -1    # a value out of range
        d["branch"]["rating"]["cuts"]["four_star"]["value"] = 95                    # cut order
        err = _load_error(tmp_path, d)
        assert len(err.problems) >= 2
        msg = str(err)
        assert "branch.indicators.committee_meetings.points" in msg and "branch.rating.cuts" in msg

    def test_policy_error_is_a_branchsim_error(self, policy, tmp_path):
        d = policy.to_dict()
        d["branch"]["designations"]["weak"]["criteria"]["low_score"]["below"]["value"] = 200
        with pytest.raises(bs.BranchsimError):
            bs.Policy.load(_write(tmp_path, d))


# -- display ------------------------------------------------------------------------
def test_repr_mentions_name_and_cut_points(policy):
    for text in (repr(policy), policy._repr_html_()):
        assert "baseline" in text
        for cut in ("90", "80", "70"):
            assert cut in text
        assert "five_star ≥ 90" in text


def test_repr_follows_an_update(policy):
    reform = policy.update({"branch.rating.cuts.five_star": 93})
    assert "five_star ≥ 93" in repr(reform)
    assert "five_star ≥ 93" in reform._repr_html_()


# -- the format is documented --------------------------------------------------------
def test_every_indicator_key_is_documented():
    from pathlib import Path

    from branchsim._schema import _indicator
    doc = (Path(__file__).resolve().parent.parent / "docs" / "policy-format.md").read_text(encoding="utf-8")
    for key in set(_indicator("dimension")) | set(_indicator("group")):
        assert f"`{key}`" in doc or f"{key}:" in doc or f"`{key}." in doc, key
    for topic in ("Rounding before the cut points", "Reading a policy file", "`range`",
                  "`keeps_points_at_zero`", "fact_range"):
        assert topic in doc, topic
