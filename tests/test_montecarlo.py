"""Monte Carlo over measurement noise: truth fixed, draws reproducible, noise behaves."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.model import BLOCK, STATE_FACTS, _branch_block, _indicator_offsets, _survey
from branchsim.scoring import compile_branch_rules
from branchsim.sensitivity import montecarlo
from branchsim.sensitivity.montecarlo import measurement_mc

STAR_P = ["p_no_star", "p_three_star", "p_four_star", "p_five_star"]
STARS = ["five_star", "four_star", "three_star", "no_star"]
ZERO_NOISE = {"measurement.indicator_noise": 0, "measurement.survey_shock": 0,
              "measurement.proportion_noise": 0, "measurement.survey_size": 100_000}


@pytest.fixture(scope="module")
def pop():
    # 300 branches span two seed blocks, so block streams and chunking are exercised.
    return bs.generate(seed=5, n_branches=300, members=False)


@pytest.fixture(scope="module")
def mc(pop):
    return measurement_mc(pop, draws=60, seed=11, progress=False)


@pytest.fixture(scope="module")
def pop_vacancies():
    # Secretary vacancies and major violations common enough to find some in 300 branches.
    return bs.generate(seed=5, n_branches=300, members=False, params={"state.problem_rate": 0.15})


@pytest.fixture(scope="module")
def pop_members():
    return bs.generate(seed=6, n_branches=40)


def frames(result):
    return [result.star_probabilities, result.counts, result.misclassification]


def assert_same(a, b):
    for x, y in zip(frames(a), frames(b)):
        pd.testing.assert_frame_equal(x, y)


# -- reproducibility -------------------------------------------------------------------
def test_same_seed_same_result_and_other_seed_differs(pop, mc):
    assert_same(mc, measurement_mc(pop, draws=60, seed=11, progress=False))
    other = measurement_mc(pop, draws=60, seed=12, progress=False)
    assert not other.counts[STARS].equals(mc.counts[STARS])


@pytest.mark.parametrize("batch", [1, 7, 60])
def test_batch_size_does_not_change_results(pop, mc, batch):
    assert_same(mc, measurement_mc(pop, draws=60, seed=11, progress=False, batch=batch))


def test_branch_chunking_does_not_change_results(pop, mc, monkeypatch):
    # One seed block of branches per chunk instead of all 300 at once.
    monkeypatch.setattr(montecarlo, "_ROWS", BLOCK)
    assert_same(mc, measurement_mc(pop, draws=60, seed=11, progress=False, batch=7))


@pytest.mark.parametrize("make", [lambda: ThreadPoolExecutor(2), lambda: ProcessPoolExecutor(2)],
                         ids=["threads", "processes"])
def test_executor_gives_the_sequential_result(pop, mc, make):
    with make() as ex:
        got = measurement_mc(pop, draws=60, seed=11, progress=False, executor=ex, batch=13)
    assert_same(mc, got)


def test_dask_executor_gives_the_sequential_result(pop, mc):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        got = measurement_mc(pop, draws=60, seed=11, progress=False, executor=client.get_executor(),
                             batch=25)
    assert_same(mc, got)


def test_seed_accepts_seedsequence_and_generator(pop):
    a = measurement_mc(pop, draws=5, seed=3, progress=False)
    b = measurement_mc(pop, draws=5, seed=np.random.SeedSequence(3), progress=False)
    c = measurement_mc(pop, draws=5, seed=np.random.default_rng(3), progress=False)
    assert_same(a, b)
    assert_same(a, c)


def test_a_longer_run_extends_a_shorter_one(pop, mc):
    # Draw d uses its own stream, so the first 20 of 60 draws are the 20-draw run.
    short = measurement_mc(pop, draws=20, seed=11, progress=False)
    pd.testing.assert_frame_equal(short.counts, mc.counts.iloc[:20].reset_index(drop=True))


# -- invariants ------------------------------------------------------------------------
def test_probabilities_sum_to_one_and_counts_to_n(pop, mc):
    sp = mc.star_probabilities
    np.testing.assert_allclose(sp[STAR_P].sum(axis=1), 1.0)
    assert (mc.counts[STARS].sum(axis=1) == len(pop.branches)).all()
    assert len(mc.counts) == 60 and (mc.counts["draw"] == np.arange(60)).all()
    # p_true is the probability of the true star; the modal star the most probable one
    p = sp[STAR_P].to_numpy()
    level_col = {0: 0, 3: 1, 4: 2, 5: 3}
    np.testing.assert_array_equal(sp["p_true"], p[np.arange(len(sp)), sp["true_stars"].map(level_col)])
    np.testing.assert_array_equal(sp["modal_stars"], np.array([0, 3, 4, 5])[p.argmax(axis=1)])
    # per-draw tallies agree with each other
    c = mc.counts
    np.testing.assert_allclose(c["accuracy"], 1 - (c["too_high"] + c["too_low"]) / len(pop.branches))
    # mean count over draws = sum over branches of the star probabilities
    np.testing.assert_allclose(c["five_star"].mean(), sp["p_five_star"].sum())
    np.testing.assert_allclose(c["weak"].mean(), sp["p_weak"].sum())


def test_truth_is_held_fixed(pop, mc):
    truth = bs.evaluate(pop).branches
    sp = mc.star_probabilities
    np.testing.assert_array_equal(sp["true_stars"], truth["true_stars"])
    np.testing.assert_array_equal(sp["true_score"], truth["true_score"])
    np.testing.assert_array_equal(sp["true_weak"], truth["true_weak"])
    assert (sp["branch_id"] == truth["branch_id"]).all()
    cs = mc.count_summary().set_index("measure")
    assert cs.loc["five_star", "true"] == (truth["true_stars"] == 5).sum()
    # The population itself is not touched by the draws.
    before = pop.branches.copy(deep=True)
    measurement_mc(pop, draws=3, seed=1, progress=False)
    pd.testing.assert_frame_equal(pop.branches, before)


@pytest.mark.parametrize("which", ["pop", "pop_vacancies"])
def test_a_draw_is_the_measurement_model_scored_by_the_policy(which, request):
    """Draw 0 rebuilt from the documented streams and scored by bs.evaluate gives the same stars."""
    pop = request.getfixturevalue(which)
    mc1 = measurement_mc(pop, draws=1, seed=4, progress=False)
    rules = compile_branch_rules(bs.Policy.load())
    b = pop.branches.copy()
    prm, m = pop.params, pop.params.values["measurement"]
    off = _indicator_offsets(pop.seed, rules.indicators, m["indicator_spread"], 0)
    t = pd.Categorical(b["type"], categories=rules.types).codes
    q, size = b["true_quality"].to_numpy(), b["n_members"].to_numpy()
    state = b[list(STATE_FACTS)].to_numpy(float)      # the branch's state: part of the truth
    root = np.random.SeedSequence(4)
    for blk in range(-(-len(b) // BLOCK)):
        r = slice(blk * BLOCK, min(len(b), (blk + 1) * BLOCK))
        stream = lambda purpose: np.random.default_rng(  # noqa: E731
            np.random.SeedSequence(root.entropy, spawn_key=(purpose, 0, blk)))
        facts = _branch_block(stream(8), q[r], t[r], size[r], rules, off, prm, state[r])[0]
        survey = _survey(stream(9), q[r], size[r], prm)
        b.loc[b.index[r], list(rules.indicators.facts)] = facts
        b.loc[b.index[r], ["survey_satisfied", "survey_basic", "survey_dissatisfied"]] = survey
    redrawn = bs.evaluate(bs.Population(b, seed=pop.seed, params=prm)).branches
    np.testing.assert_array_equal(mc1.star_probabilities["modal_stars"], redrawn["stars"])
    np.testing.assert_array_equal(mc1.star_probabilities["p_weak"], redrawn["weak"].astype(float))
    # The draw is a new measurement (not the population's own), with the same state.
    measured = [f for f in rules.indicators.facts if f not in STATE_FACTS]
    assert (b[measured].to_numpy() != pop.branches[measured].to_numpy()).mean() > 0.1
    pd.testing.assert_frame_equal(b[list(STATE_FACTS)], pop.branches[list(STATE_FACTS)])


def test_state_facts_are_held_fixed(pop_vacancies):
    """A vacancy is what the branch is: every draw keeps it, so the veto fires in every draw."""
    res = measurement_mc(pop_vacancies, draws=40, seed=3, progress=False, survey_sizes=[5, 100])
    b = pop_vacancies.branches
    vacant = (b["secretary_in_post"] == 0).to_numpy()
    violation = (b["no_major_violation"] == 0).to_numpy()
    assert vacant.sum() >= 5 and violation.sum() >= 5
    for size in res.survey_sizes:
        sp = res.probabilities(size)
        for hit in (vacant, violation):
            assert (sp.loc[hit, "true_stars"] == 0).all() and sp.loc[hit, "true_weak"].all()
            assert (sp.loc[hit, "p_weak"] == 1).all() and (sp.loc[hit, "p_no_star"] == 1).all()
            assert (sp.loc[hit, "p_true"] == 1).all()
    # Noise still moves the other branches: not every branch is certain.
    sp = res.star_probabilities
    in_order = ~(vacant | violation)
    assert (sp.loc[in_order, "p_true"] < 1).any()
    # Weak designations from the state are never missed, so misses come from scores alone.
    truly = res.misclassification.set_index("survey_size")["truly_weak"]
    assert (truly == sp["true_weak"].sum()).all() and (truly >= (vacant | violation).sum()).all()
    assert (res.counts["weak"] >= (vacant | violation).sum()).all()


# -- how noise behaves ------------------------------------------------------------------
def test_without_measurement_noise_stars_concentrate(pop, mc):
    quiet = measurement_mc(pop, draws=60, seed=11, progress=False, params=ZERO_NOISE)
    sp = quiet.star_probabilities
    cuts = np.array([70.0, 80.0, 90.0])
    far = np.abs(sp["true_score"].to_numpy()[:, None] - cuts).min(axis=1) > 5
    assert far.sum() > 50
    # Only the met/not-met and rounding draws of single facts remain.
    assert sp.loc[far, "p_true"].mean() > 0.99 and sp.loc[far, "p_true"].min() >= 0.9
    assert mc.star_probabilities.loc[far, "p_true"].mean() < 0.98
    assert quiet.misclassification["misclassified"].iloc[0] < 0.6 * mc.misclassification["misclassified"].iloc[0]


def test_larger_survey_misclassifies_less(pop):
    base_size = pop.params.get("measurement.survey_size")
    assert 5 < base_size < 100
    res = measurement_mc(pop, draws=60, seed=2, progress=False, survey_sizes=[100, 5])
    mis = res.misclassification.set_index("survey_size")
    assert list(mis.index) == [5, base_size, 100]           # the baseline size is always run
    assert res.survey_sizes == [5, base_size, 100] and res.baseline_size == base_size
    assert mis.loc[5, "misclassified"] > mis.loc[base_size, "misclassified"] > mis.loc[100, "misclassified"]
    assert mis.loc[100, "misclassified"] < mis.loc[5, "misclassified"] - 0.03
    assert mis.loc[5, "false_alarm_rate"] >= mis.loc[100, "false_alarm_rate"]
    np.testing.assert_allclose(mis["misclassified"], mis["too_high"] + mis["too_low"])
    # The size is the number of respondents per branch, members and residents alike.
    np.testing.assert_array_equal(mis["respondents"], mis.index.to_numpy())
    # Each size is its own run: adding sizes does not change the baseline size's numbers.
    base = measurement_mc(pop, draws=60, seed=2, progress=False)
    pd.testing.assert_frame_equal(res.probabilities(base_size), base.star_probabilities)
    pd.testing.assert_frame_equal(res.star_probabilities, base.star_probabilities)
    with pytest.raises(bs.BranchsimError, match="not run"):
        res.probabilities(7)


def test_survey_size_param_sets_the_baseline(pop):
    # params={"measurement.survey_size": s} is the same run as asking for size s: one stream.
    res = measurement_mc(pop, draws=20, seed=2, progress=False, params={"measurement.survey_size": 40})
    assert res.survey_sizes == [40] and res.baseline_size == 40
    both = measurement_mc(pop, draws=20, seed=2, progress=False, survey_sizes=[40])
    pd.testing.assert_frame_equal(both.probabilities(40), res.star_probabilities)
    assert res.misclassification["respondents"].tolist() == [40]


def test_summary_calls_sizes_respondents(pop):
    res = measurement_mc(pop, draws=2, seed=2, progress=False, survey_sizes=[5])
    assert "residents" not in res.summary() and "residents" not in repr(res)


# -- members ----------------------------------------------------------------------------
def test_member_appraisals_redrawn(pop_members):
    res = measurement_mc(pop_members, draws=15, seed=1, progress=False, members=True)
    mp = res.member_probabilities
    grades = ["p_unqualified", "p_warning", "p_basic", "p_qualified", "p_excellent"]
    assert (mp["member_id"] == pop_members.members["member_id"]).all()
    np.testing.assert_allclose(mp[grades].sum(axis=1), 1.0)
    assert (res.grade_counts.drop(columns="draw").sum(axis=1) == len(pop_members.members)).all()
    assert 0 < (mp[grades].max(axis=1) < 1).mean()        # some members' grades are uncertain
    # Without affinity and appraisal noise the appraisal is fixed by the truth: every grade is certain.
    sure = measurement_mc(pop_members, draws=5, seed=1, progress=False, members="appraisal",
                          params={"member_measurement.affinity_bias": 0,
                                  "member_measurement.appraisal_noise": 0})
    assert (sure.member_probabilities[grades].max(axis=1) == 1).all()


def test_member_monthly_records_redrawn_reproducibly(pop_members):
    a = measurement_mc(pop_members, draws=4, seed=1, progress=False, members="monthly", batch=1)
    b = measurement_mc(pop_members, draws=4, seed=1, progress=False, members="monthly", batch=4)
    pd.testing.assert_frame_equal(a.member_probabilities, b.member_probabilities)
    pd.testing.assert_frame_equal(a.grade_counts, b.grade_counts)
    assert (a.grade_counts.drop(columns="draw").sum(axis=1) == len(pop_members.members)).all()
    appraisal = measurement_mc(pop_members, draws=4, seed=1, progress=False, members=True)
    assert not a.grade_counts.equals(appraisal.grade_counts)
    assert "monthly redrawn" in a.summary()


# -- errors and display -------------------------------------------------------------------
def test_population_without_truth_is_refused(pop):
    loaded = bs.load_population(bs.data_path("examples"))
    with pytest.raises(bs.DataError, match="truth"):
        measurement_mc(loaded, draws=2, progress=False)
    stripped = bs.Population(pop.branches.drop(columns="true_quality"), seed=pop.seed, params=pop.params)
    with pytest.raises(bs.DataError, match="truth"):
        measurement_mc(stripped, draws=2, progress=False)


def test_members_need_a_population_with_members(pop):
    with pytest.raises(bs.DataError, match="members"):
        measurement_mc(pop, draws=2, progress=False, members=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"params": {"branch_quality.loc": 0.6}}, "truth"),
    ({"params": {"measurement.indicator_spread": 0.1}}, "truth"),
    ({"params": {"state.problem_rate": 0.3}}, "truth"),     # the state is part of the truth
    ({"params": {"measurement.no_such": 1}}, r"measurement\.no_such: no such generator parameter"),
    ({"params": {"nowhere.at_all": 1}}, r"nowhere\.at_all: no such generator parameter"),
    ({"params": {"measurement.survey_residents": 5}}, r"measurement\.survey_residents: no such"),
    ({"params": {"measurement.survey_size": 2.5}}, r"measurement\.survey_size: got 2\.5"),
    ({"params": {"measurement.indicator_noise": -0.1}}, r"measurement\.indicator_noise: got -0\.1"),
    ({"params": lambda pop: pop.params.with_values({"branch_quality.tail": 2.0})}, "branch_quality.tail"),
    ({"draws": 0}, "draws"),
    ({"batch": 2.5}, "batch"),
    ({"survey_sizes": [-1]}, "survey_sizes"),
    ({"survey_sizes": [0]}, "survey_sizes.*>= 1"),
    ({"survey_sizes": [2.5]}, "survey_sizes"),
    ({"survey_sizes": ["10"]}, "survey_sizes"),
    ({"members": "daily"}, "members"),
])
def test_bad_arguments_say_what_is_allowed(pop, kwargs, match):
    kwargs = {k: v(pop) if callable(v) else v for k, v in kwargs.items()}
    with pytest.raises(bs.BranchsimError, match=match):
        measurement_mc(pop, progress=False, **{"draws": 2, **kwargs})


def test_params_as_generator_params_equal_the_dict(pop):
    change = {"measurement.survey_shock": 0.0}
    a = measurement_mc(pop, draws=5, seed=1, progress=False, params=change)
    b = measurement_mc(pop, draws=5, seed=1, progress=False, params=pop.params.with_values(change))
    assert_same(a, b)
    assert not a.counts.equals(measurement_mc(pop, draws=5, seed=1, progress=False).counts)


def test_summary_and_html(mc):
    text = mc.summary()
    assert "300 branches, 60 draws" in text and "Misclassification" in text
    assert "five_star" in mc._repr_html_() and "<table" in mc._repr_html_()
    assert repr(mc).startswith("<MonteCarlo: 300 branches")
    cs = mc.count_summary()
    row = cs[(cs["measure"] == "four_star")].iloc[0]
    assert row["mean"] == pytest.approx(mc.counts["four_star"].mean())
    assert row["q05"] <= row["median"] <= row["q95"]
