"""Years in sequence: the consecutive-year rule, interventions, accuracy, member schemes, seeds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import dynamics as dy
from branchsim.dynamics.evolve import latent
from branchsim.errors import BranchsimError, DataError
from conftest import branch_row

# No drift and no shocks: year-to-year changes of quality are the effects alone.
FROZEN = {"branch.persistence": 1.0, "branch.shock_sd": 0.0, "member.persistence": 1.0, "member.shock_sd": 0.0}


@pytest.fixture(scope="module")
def town() -> bs.Population:
    # Three seed blocks of 256 branches, so chunking can split them.
    return bs.generate(seed=11, n_branches=600)


@pytest.fixture(scope="module")
def strict(policy) -> bs.Policy:
    # A weak line under which some branches are truly weak (none are at the baseline's 50).
    return policy.update({"branch.weak_below": 60})


@pytest.fixture(scope="module")
def history(town, strict) -> dy.History:
    return dy.simulate(town, strict, years=4, seed=5)


# -- the consecutive-year rule on hand-built years ------------------------------------
def _year(policy, weak: dict[str, bool]) -> bs.Population:
    """Branches with full marks, except that a weak one has its secretary post vacant (a weak veto)."""
    rows = [branch_row(policy, bid, **({"secretary_in_post": 0} if w else {})) for bid, w in weak.items()]
    return bs.load_population(branches=pd.DataFrame(rows), policy=policy)


def test_reorganisation_fires_after_two_consecutive_weak_years_only(policy):
    y0 = _year(policy, {"both": True, "second": False, "first": False, "never": False})
    y1 = _year(policy, {"both": True, "second": True, "first": False, "never": False})
    b = dy.replay([y0, y1], policy).branches.set_index(["year", "branch_id"])
    assert b["weak"].tolist() == [True, False, False, False, True, True, False, False]
    # After one weak year nobody is reorganised; after two in a row exactly the branch weak in both.
    assert not b.loc[0, "reorganise"].any()
    assert b.loc[1, "reorganise"].to_dict() == {"both": True, "second": False, "first": False, "never": False}
    assert b.loc[1, "weak_streak"].to_dict() == {"both": 2, "second": 1, "first": 0, "never": 0}
    # Every weak branch gets its talk, reorganised or not.
    assert (b["talk"] == b["weak"]).all()


def test_two_weak_years_that_are_not_consecutive_do_not_fire(policy):
    years = [_year(policy, {"gap": True, "late": False}), _year(policy, {"gap": False, "late": True}),
             _year(policy, {"gap": True, "late": True})]
    b = dy.replay(years, policy).branches.set_index(["year", "branch_id"])
    assert b.xs("gap", level="branch_id")["weak"].tolist() == [True, False, True]
    assert not b.xs("gap", level="branch_id")["reorganise"].any()
    assert b.xs("late", level="branch_id")["reorganise"].tolist() == [False, False, True]


def test_the_rule_length_comes_from_the_policy(policy):
    three = policy.update({"consequences.reorganise_after": 3})
    years = [_year(three, {"a": True})] * 2
    assert not dy.replay(years, three).branches["reorganise"].any()
    assert dy.replay(years + [_year(three, {"a": True})], three).branches["reorganise"].tolist() == [False, False, True]


def test_a_branch_weak_the_year_before_the_data_starts_counts(policy):
    row = branch_row(policy, "a", prev_weak=1, secretary_in_post=0)
    pop = bs.load_population(branches=pd.DataFrame([row]), policy=policy)
    assert dy.replay([pop], policy).branches["reorganise"].tolist() == [True]


# -- the rule inside a simulation -----------------------------------------------------------
def test_simulated_reorganisations_follow_the_weak_column(history):
    b = history.branches
    weak = b.pivot(index="branch_id", columns="year", values="weak")
    reorg = b.pivot(index="branch_id", columns="year", values="reorganise")
    expected = weak & weak.shift(1, axis=1, fill_value=False)      # reorganise_after = 2, prev_weak = 0
    assert reorg.sum().sum() > 0
    pd.testing.assert_frame_equal(reorg, expected)
    assert (b["talk"] == b["weak"]).all()


def test_year_zero_is_the_population_as_evaluated(town, strict):
    h = dy.simulate(town, strict, years=1, seed=0)
    r = bs.evaluate(town, strict)
    for col in ("score", "stars", "weak", "true_score", "true_stars", "true_weak", "talk", "reorganise"):
        np.testing.assert_array_equal(h.branches[col].to_numpy(), r.branches[col].to_numpy(), err_msg=col)
    for col in ("annual", "grade", "mentoring", "handling", "appraisal"):
        np.testing.assert_array_equal(h.members[col].to_numpy(), r.members[col].to_numpy(), err_msg=col)


# -- accuracy against the truth ----------------------------------------------------------
def test_without_measurement_noise_there_are_no_false_alarms_or_misses(town, strict):
    exact = dy.simulate(town, strict, years=4, seed=5, noise=False, members=False).accuracy(pooled=True)
    assert exact["reorganisations"] > 0 and exact["truly_weak"] > 0
    assert exact["false_alarms"] == 0 and exact["missed"] == 0 and exact["false_weak"] == 0
    # The same world measured with noise does raise false alarms: the check above can fail.
    noisy = dy.simulate(town, strict, years=4, seed=5, members=False).accuracy(pooled=True)
    assert noisy["false_alarms"] > 0


def test_accuracy_counts_match_their_definitions(history):
    b = history.branches
    acc = history.accuracy()
    assert acc.index.tolist() == [0, 1, 2, 3]
    assert acc["reorganisations"].sum() == b["reorganise"].sum()
    assert acc["false_alarms"].sum() == (b["reorganise"] & ~b["true_weak"]).sum() > 0
    assert acc["missed"].sum() == (b["true_weak"] & ~b["weak"]).sum() > 0
    assert ((b["true_score"] < 60) <= b["true_weak"]).all()
    pooled = history.accuracy(pooled=True)
    assert pooled["false_alarm_rate"] == pytest.approx(acc["false_alarms"].sum() / acc["reorganisations"].sum())


def test_rule_accuracy_over_seeds(town, strict):
    acc = dy.rule_accuracy(town, strict, years=3, seeds=[1, 2])
    assert list(acc[["seed", "year"]].itertuples(index=False, name=None)) == [(s, y) for s in (1, 2) for y in range(3)]
    one = dy.simulate(town, strict, years=3, seed=2, members=False).accuracy()
    np.testing.assert_array_equal(acc.query("seed == 2")["false_alarms"].to_numpy(), one["false_alarms"].to_numpy())
    pooled = dy.rule_accuracy(town, strict, years=3, seeds=[1, 2], pooled=True)
    assert pooled["reorganisations"] == acc["reorganisations"].sum()


# -- evolution, effects and interventions ---------------------------------------------------------
def test_effects_move_next_years_quality_by_their_size(town, policy):
    h = dy.simulate(town, policy, years=2, seed=3, dynamics=FROZEN)
    b0, b1 = (h.branches.query(f"year == {y}").reset_index(drop=True) for y in (0, 1))
    lv = dy.Levers.from_policy(policy)
    expected = (lv.talk * b0["talk"] + lv.reorganise * b0["reorganise"] + lv.rectification_effect * b0["rectified"]
                + lv.training_effect * b0["trained"] + lv.first_secretaries_effect * b0["first_secretary"]
                + lv.instructors_effect * b0["instructor"])
    assert expected.gt(0.02).sum() >= 21                     # the weakest received several
    np.testing.assert_allclose(b1["effect"], expected, atol=1e-12)
    np.testing.assert_allclose(b1["true_quality"], b0["true_quality"] + expected, atol=1e-9)
    # Members follow their branch (slope branch_link) and gain their own effects.
    m0, m1 = (h.members.query(f"year == {y}").reset_index(drop=True) for y in (0, 1))
    link = town.params.get("member_quality.branch_link")
    lift = (b1["true_quality"] - b0["true_quality"]).set_axis(b0["branch_id"]).reindex(m0["branch_id"]).to_numpy()
    own = lv.mentoring * m0["mentoring"] + lv.handling * m0["handling"]
    np.testing.assert_allclose(m1["true_quality"], np.clip(m0["true_quality"] + link * lift + own, 0, 1), atol=1e-9)


def test_interventions_reach_the_published_numbers_of_weakest_units(history, strict):
    b = history.branches
    for year, y in b.groupby("year"):
        score = y["score"].to_numpy()
        assert y["first_secretary"].sum() == 21 and y["instructor"].sum() == 100
        assert score[y["first_secretary"]].max() <= score[~y["first_secretary"]].min()
        assert score[y["instructor"]].max() <= score[~y["instructor"]].min()
        # Rectification: weak units only, the lowest-scoring first, at most 19.
        rect, weak = y["rectified"].to_numpy(), y["weak"].to_numpy()
        assert rect.sum() == min(19, weak.sum()) and not (rect & ~weak).any()
        if rect.sum() < weak.sum():
            assert score[rect].max() <= score[weak & ~rect].min()
    assert b["trained"].all()                                 # full coverage


def test_training_coverage_is_a_drawn_share(town, policy):
    half = policy.update({"interventions.training.coverage": 0.5})
    a = dy.simulate(town, half, years=2, seed=1, members=False).branches
    b = dy.simulate(town, half, years=2, seed=2, members=False).branches
    assert 0.4 < a["trained"].mean() < 0.6
    assert (a["trained"] != b["trained"]).any()


def test_a_policy_without_the_new_sections_simulates_without_effects(town, policy):
    doc = policy.to_dict()
    del doc["interventions"], doc["consequences"]["effects"]
    old = bs.Policy(doc)
    h = dy.simulate(town, old, years=2, seed=3, dynamics=FROZEN)
    assert (h.branches["effect"] == 0).all() and (h.members["effect"] == 0).all()
    assert not h.branches[["rectified", "trained", "first_secretary", "instructor"]].any().any()
    q = h.branches.pivot(index="branch_id", columns="year", values="true_quality")
    np.testing.assert_allclose(q[1], q[0], atol=1e-12)


def test_intervention_sizes_are_the_published_ones(policy):
    for path, value, text in [("interventions.rectification.count", 19, "19"),
                              ("interventions.training.coverage", 1.0, "全覆蓋"),
                              ("interventions.first_secretaries.count", 21, "21"),
                              ("interventions.instructors.count", 100, "100")]:
        assert policy[path] == value
        assert policy.provenance(path).startswith("quote:") and text in policy.provenance(path)
    for path in policy.parameters()["path"]:
        if path.endswith(".effect") or path.startswith("consequences.effects."):
            assert policy.provenance(path).startswith("assumption:")


def test_without_effects_the_calibrated_distribution_is_kept(town, policy):
    doc = policy.to_dict()
    del doc["interventions"], doc["consequences"]["effects"]
    h = dy.simulate(bs.generate(seed=4, n_branches=3000, members=False), bs.Policy(doc), years=6, seed=8)
    q = h.branches.pivot(index="branch_id", columns="year", values="true_quality")
    assert q.mean().max() - q.mean().min() < 0.01
    assert q.std().max() / q.std().min() < 1.1
    # Year-to-year correlation of the latent quality is the persistence (0.8).
    z = latent(q.to_numpy(), town.params.values["branch_quality"])
    assert np.corrcoef(z[:, 0], z[:, 1])[0, 1] == pytest.approx(0.8, abs=0.05)


def test_summaries_add_up(history):
    n = 600
    stars = history.star_distribution()
    assert (stars.drop(columns="weak").sum(axis=1) == n).all()
    assert history.transitions(0, 1).to_numpy().sum() == n
    assert history.transitions().to_numpy().sum() == 3 * n
    assert np.allclose(history.transitions(normalize=True).sum(axis=1).dropna(), 1)
    counts = history.consequence_counts()
    assert counts.loc[1, "reorganise"] == history.branches.query("year == 1")["reorganise"].sum()
    assert (history.grade_distribution().sum(axis=1) == history.members.groupby("year").size()).all()
    assert "Accuracy" in history.summary() and "<table" in history._repr_html_()


# -- member scoring schemes ---------------------------------------------------------------------
def test_year_end_only_with_impression_bias_misclassifies_more(city):
    cmp = dy.compare_member_schemes(city, shares=(0.8, 0.0, 1.0))
    assert cmp.index.tolist() == [0.8, 0.0, 1.0]
    assert cmp.loc[0.0, "misclassified"] > cmp.loc[0.8, "misclassified"] > cmp.loc[1.0, "misclassified"]
    assert cmp.loc[0.0, "spearman"] < cmp.loc[0.8, "spearman"]
    # The appraisal is centred on the member's true score: the impression terms scatter it
    # (larger error) rather than shift it (small bias).
    assert abs(cmp.loc[1.0, "bias"]) < 1 and abs(cmp.loc[0.0, "bias"]) < 1
    assert cmp.loc[0.0, "rmse"] > 2 * cmp.loc[0.8, "rmse"]
    # The impression terms are what hurt the ranking: the same members appraised without them rank better.
    fair = bs.generate(seed=0, params={"member_measurement.impression_halo": 0.0,
                                       "member_measurement.affinity_bias": 0.0})
    np.testing.assert_array_equal(fair.members["true_quality"], city.members["true_quality"])
    assert dy.compare_member_schemes(fair, shares=(0.0,)).loc[0.0, "spearman"] > cmp.loc[0.0, "spearman"] + 0.1


def test_scheme_at_the_policy_share_reproduces_the_grades(history):
    cmp = dy.compare_member_schemes(history, shares=(0.8,))
    m = history.members
    assert cmp.loc[0.8, "members"] == len(m)
    assert cmp.loc[0.8, "misclassified"] == pytest.approx((m["grade"] != m["true_grade"]).mean())
    assert cmp.loc[0.8, "bias"] == pytest.approx((m["annual"] - m["true_score"]).mean())


# -- seeds ------------------------------------------------------------------------------------
def test_same_seed_same_history_whatever_the_chunking(town, strict):
    a = dy.simulate(town, strict, years=3, seed=9)
    b = dy.simulate(town, strict, years=3, seed=9, chunk_size=256, workers=3)
    pd.testing.assert_frame_equal(a.branches, b.branches, check_exact=True)
    pd.testing.assert_frame_equal(a.members, b.members, check_exact=True)
    c = dy.simulate(town, strict, years=3, seed=10)
    assert not np.array_equal(a.branches["score"], c.branches["score"])
    # Year 0 is the population itself, whatever the seed.
    np.testing.assert_array_equal(a.branches.query("year == 0")["score"], c.branches.query("year == 0")["score"])


def test_a_seed_sequence_or_generator_gives_the_int_seeds_history(town):
    a = dy.simulate(town, years=2, seed=4, members=False)
    b = dy.simulate(town, years=2, seed=np.random.SeedSequence(4), members=False)
    pd.testing.assert_frame_equal(a.branches, b.branches, check_exact=True)


# -- errors ----------------------------------------------------------------------------------------
def test_tables_without_truth_point_to_replay():
    pop = bs.load_population(bs.data_path("examples"))
    with pytest.raises(DataError, match="replay"):
        dy.simulate(pop)


@pytest.mark.parametrize("years", [0, 1.5, True])
def test_years_must_be_a_whole_number_from_one(town, years):
    with pytest.raises(DataError, match="years"):
        dy.simulate(town, years=years)


def test_unknown_or_out_of_range_dynamics_parameter(town):
    with pytest.raises(BranchsimError, match="branch.persistance"):
        dy.simulate(town, dynamics={"branch.persistance": 0.5})
    with pytest.raises(BranchsimError, match=r"branch\.persistence: got 1\.5"):
        dy.simulate(town, dynamics={"branch.persistence": 1.5})
