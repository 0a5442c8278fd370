"""Monte Carlo over measurement noise: every shipped scheme, truth fixed, draws reproducible, noise behaves."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.measurement import _indicator_offsets, _state_column, _survey, branch_block, declared_facts
from branchsim.sensitivity.montecarlo import measurement_mc
from branchsim.streams import BLOCK
import shipped

GOLDEN = Path(__file__).parent / "data" / "mc_golden_v1"
ZERO_NOISE = {"measurement.indicator_noise": 0, "measurement.survey_shock": 0,
              "measurement.proportion_noise": 0, "measurement.survey_size": 100_000}


@pytest.fixture(scope="module", params=shipped.SCHEMES)
def scheme(request):
    """(policy, population of 300 branches — two seed blocks — with members, a run of 10 draws)."""
    p = shipped.load(request.param)
    pop = bs.generate(p, seed=5, n_branches=300, members=p.has_members)
    mc = measurement_mc(pop, p, draws=10, seed=11, progress=False, survey_sizes=[60], batch=4,
                        members=p.has_members)
    return p, pop, mc


@pytest.fixture(scope="module")
def pop():
    return bs.generate(seed=5, n_branches=300, members=False)


@pytest.fixture(scope="module")
def mc(pop):
    return measurement_mc(pop, draws=60, seed=11, progress=False)


@pytest.fixture(scope="module")
def pop_members():
    return bs.generate(seed=6, n_branches=40)


def frames(result):
    out = [result.level_probabilities, result.counts, result.misclassification, result.designation_errors]
    if result.member_probabilities is not None:
        out += [result.member_probabilities, result.grade_counts]
    return out


def assert_same(a, b):
    for x, y in zip(frames(a), frames(b), strict=True):
        pd.testing.assert_frame_equal(x, y)


# -- every shipped scheme -------------------------------------------------------------------
def test_probabilities_are_named_by_level_id_and_sum_to_one(scheme):
    p, pop, mc = scheme
    n = len(pop.branches)
    assert mc.levels == list(p.levels) and mc.designations == [d.id for d in p.scheme.branch.designations]
    pcols = [f"p_{lv}" for lv in p.levels]
    for size in mc.survey_sizes:
        lp = mc.probabilities(size)
        assert [c for c in lp.columns if c.startswith("p_") and c[2:] in p.levels] == pcols
        np.testing.assert_allclose(lp[pcols].sum(axis=1), 1.0)
        probs = lp[pcols].to_numpy()
        assert set(lp["modal_rating"]) <= set(p.levels)
        # the modal level has the highest probability, the lower level on a tie
        np.testing.assert_array_equal(probs[np.arange(n), [p.levels.index(v) for v in lp["modal_rating"]]],
                                      probs.max(axis=1))
        np.testing.assert_array_equal(lp["p_true"],
                                      probs[np.arange(n), [p.levels.index(v) for v in lp["true_rating"]]])
        c = mc.counts[mc.counts["survey_size"] == size]
        assert (c[list(p.levels)].sum(axis=1) == n).all() and len(c) == mc.draws
        np.testing.assert_allclose(c[list(p.levels)].mean().to_numpy(), probs.sum(axis=0))
        for d in mc.designations:
            np.testing.assert_allclose(c[d].mean(), lp[f"p_{d}"].sum())
        np.testing.assert_allclose(c["accuracy"], 1 - (c["too_high"] + c["too_low"]) / n)
        conf = mc.confusion(size)
        assert list(conf.index) == list(conf.columns) == list(p.levels)
        np.testing.assert_allclose(conf.to_numpy().sum(), n)
        np.testing.assert_allclose(np.trace(conf.to_numpy()) / n, c["accuracy"].mean())
        np.testing.assert_allclose(conf.sum(axis=1).to_numpy(),
                                   lp["true_rating"].value_counts().reindex(p.levels, fill_value=0).to_numpy())
        mis = mc.misclassification.set_index("survey_size").loc[size]
        np.testing.assert_allclose(mis["misclassified"], 1 - lp["p_true"].mean())


def test_truth_is_held_fixed(scheme):
    p, pop, mc = scheme
    truth = bs.evaluate(pop, p).branches
    lp = mc.level_probabilities
    assert (lp["branch_id"] == truth["branch_id"]).all()
    np.testing.assert_array_equal(lp["true_rating"], truth["true_rating"])
    np.testing.assert_array_equal(lp["true_score"], truth["true_score"])
    for d in mc.designations:
        np.testing.assert_array_equal(lp[f"true_{d}"], truth[f"true_{d}"])
    cs = mc.count_summary().set_index(["survey_size", "measure"])
    for lv in p.levels:
        assert cs.loc[(mc.baseline_size, lv), "true"] == (truth["true_rating"] == lv).sum()
    errs = mc.designation_errors
    for d in mc.designations:
        assert (errs.loc[errs["designation"] == d, "truly"] == truth[f"true_{d}"].sum()).all()


def test_batches_and_reruns_give_the_same_numbers(scheme):
    p, pop, mc = scheme
    again = measurement_mc(pop, p, draws=10, seed=11, progress=False, survey_sizes=[60], batch=10,
                           members=p.has_members)
    assert_same(mc, again)
    short = measurement_mc(pop, p, draws=3, seed=11, progress=False, survey_sizes=[60], batch=2)
    pd.testing.assert_frame_equal(short.counts[short.counts["draw"] < 3].reset_index(drop=True),
                                  mc.counts.groupby("survey_size").head(3).reset_index(drop=True))


def test_a_draw_is_the_measurement_model_rated_by_the_policy(scheme):
    """Draw 0 rebuilt from the documented streams and rated by bs.evaluate gives the same levels.

    A relative design re-rates the whole population: the rebuilt table is evaluated as a whole.
    """
    p, pop, _ = scheme
    one = measurement_mc(pop, p, draws=1, seed=4, progress=False)
    scheme_ = p.scheme.branch
    b = pop.branches.copy()
    prm = pop.params
    off = _indicator_offsets(pop.seed, scheme_.sheet, prm, 0)
    t = pd.Categorical(b["type"], categories=scheme_.types).codes
    q, size = b["true_quality"].to_numpy(), b["n_members"].to_numpy()
    state = np.column_stack([_state_column(b, scheme_, f) for f in scheme_.state_facts]) \
        if scheme_.state_facts else np.zeros((len(b), 0))
    no_survey = dataclasses.replace(scheme_, answers=())   # facts on their own stream, as documented
    root = np.random.SeedSequence(4)
    for blk in range(-(-len(b) // BLOCK)):
        r = slice(blk * BLOCK, min(len(b), (blk + 1) * BLOCK))
        stream = lambda purpose: np.random.default_rng(  # noqa: E731
            np.random.SeedSequence(root.entropy, spawn_key=(purpose, 0, blk)))
        facts = branch_block(stream(8), q[r], t[r], size[r], no_survey, off, prm, state[r])[0]
        b.loc[b.index[r], list(scheme_.sheet.facts)] = facts
        b.loc[b.index[r], list(scheme_.survey_columns)] = _survey(stream(9), q[r], size[r], prm, scheme_)
        for f, col in declared_facts(stream(13), q[r], scheme_, prm, state[r]).items():
            b.loc[b.index[r], f] = col
    redrawn = bs.evaluate(bs.Population(b, seed=pop.seed, params=prm), p).branches
    np.testing.assert_array_equal(one.level_probabilities["modal_rating"], redrawn["rating"])
    for d in one.designations:
        np.testing.assert_array_equal(one.level_probabilities[f"p_{d}"], redrawn[d].astype(float))
    # The draw is a new measurement (not the population's own), with the same state.
    state_cols = list(scheme_.state_facts)
    measured = [f for f in scheme_.sheet.facts if f not in state_cols]
    assert (b[measured].to_numpy() != pop.branches[measured].to_numpy()).mean() > 0.1
    pd.testing.assert_frame_equal(b[state_cols], pop.branches[state_cols], check_dtype=False)


def test_members_grades_for_member_schemes(scheme):
    p, pop, mc = scheme
    if not p.has_members:
        assert mc.member_probabilities is None
        with pytest.raises(bs.BranchsimError, match="rates branches only"):
            measurement_mc(pop, p, draws=1, progress=False, members=True)
        return
    mp = mc.member_probabilities
    gcols = [f"p_{g}" for g in p.grades]
    assert mc.grades == list(p.grades) and (mp["member_id"] == pop.members["member_id"]).all()
    graded = mp["graded"].to_numpy()
    exempt = bs.evaluate(pop, p).members["grade"].isna().to_numpy()
    np.testing.assert_array_equal(graded, ~exempt)          # an exempt class is never graded
    np.testing.assert_allclose(mp.loc[graded, gcols].sum(axis=1), 1.0)
    assert mp.loc[~graded, gcols].isna().all().all() and mp.loc[~graded, "modal_grade"].isna().all()
    assert (mc.grade_counts[list(p.grades)].sum(axis=1) == graded.sum()).all()
    assert 0 < (mp.loc[graded, gcols].max(axis=1) < 1).mean()   # some members' grades are uncertain
    assert "appraisal redrawn" in mc.summary()


def test_member_period_records_redrawn_for_every_member_scheme():
    for name in ("baseline", "member_points"):
        p = shipped.load(name)
        popm = bs.generate(p, seed=6, n_branches=30)
        a = measurement_mc(popm, p, draws=3, seed=1, progress=False, members="monthly", batch=1)
        b = measurement_mc(popm, p, draws=3, seed=1, progress=False, members="monthly", batch=3)
        pd.testing.assert_frame_equal(a.member_probabilities, b.member_probabilities)
        pd.testing.assert_frame_equal(a.grade_counts, b.grade_counts)
        graded = a.member_probabilities["graded"]
        assert (a.grade_counts[list(p.grades)].sum(axis=1) == graded.sum()).all()
        appraisal = measurement_mc(popm, p, draws=3, seed=1, progress=False, members=True)
        assert not a.grade_counts.equals(appraisal.grade_counts)
        assert "monthly redrawn" in a.summary()


# -- the baseline's numbers are those of the format-1 implementation ------------------------
def test_baseline_numbers_equal_the_format_1_implementation():
    old = pd.read_csv(GOLDEN / "branches.csv")
    pop = bs.generate(seed=3, n_branches=300, members=False)
    res = measurement_mc(pop, draws=12, seed=7, survey_sizes=[10, 60], progress=False, batch=5)
    assert res.survey_sizes == sorted(old["survey_size"].unique().tolist())
    for size in res.survey_sizes:
        p = res.probabilities(size)
        o = old[old["survey_size"] == size].reset_index(drop=True)
        assert (p["branch_id"] == o["branch_id"]).all() and (p["true_rating"] == o["true_rating"]).all()
        assert (p["true_weak"].astype(int) == o["true_weak"]).all()
        for col in res.levels + ["weak"]:
            np.testing.assert_array_equal((p[f"p_{col}"] * 12).round().astype(int), o[col], err_msg=f"{size} {col}")
    counts = pd.read_csv(GOLDEN / "counts.csv")
    renamed = res.counts.rename(columns={"weak_false_alarms": "false_alarms", "weak_misses": "misses"})
    pd.testing.assert_frame_equal(renamed[counts.columns], counts, check_dtype=False)
    for mode, seed, draws in (("appraisal", 6, 6), ("monthly", 4, 4)):
        popm = bs.generate(seed=seed, n_branches=40)
        m = measurement_mc(popm, draws=draws, seed=2, members=mode, progress=False, batch=3)
        om, ob = pd.read_csv(GOLDEN / f"members_{mode}.csv"), pd.read_csv(GOLDEN / f"branches_{mode}.csv")
        assert (m.member_probabilities["member_id"] == om["member_id"]).all()
        for g in m.grades:
            np.testing.assert_array_equal((m.member_probabilities[f"p_{g}"] * draws).round().astype(int), om[g],
                                          err_msg=f"{mode} {g}")
        for lv in m.levels:
            np.testing.assert_array_equal((m.level_probabilities[f"p_{lv}"] * draws).round().astype(int), ob[lv])


# -- reproducibility on the baseline ------------------------------------------------------
def test_same_seed_same_result_and_other_seed_differs(pop, mc):
    assert_same(mc, measurement_mc(pop, draws=60, seed=11, progress=False))
    other = measurement_mc(pop, draws=60, seed=12, progress=False)
    assert not other.counts[mc.levels].equals(mc.counts[mc.levels])


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
    assert_same(a, measurement_mc(pop, draws=5, seed=np.random.SeedSequence(3), progress=False))
    assert_same(a, measurement_mc(pop, draws=5, seed=np.random.default_rng(3), progress=False))


def test_state_facts_are_held_fixed():
    """A vacancy is what the branch is: every draw keeps it, so its veto fires in every draw."""
    p = bs.Policy.load()
    popv = bs.generate(p, seed=5, n_branches=300, members=False, params={"state.problem_rate": 0.15})
    res = measurement_mc(popv, p, draws=40, seed=3, progress=False, survey_sizes=[5, 100])
    b, floor = popv.branches, p.levels[-1]
    out = np.column_stack([_state_column(b, p.scheme.branch, f) == 0 for f in p.scheme.branch.state_facts])
    hit = out.any(axis=1)
    assert out.sum(axis=0).min() >= 5
    truth = bs.evaluate(popv, p).branches
    assert (truth.loc[hit, "rating"] == floor).all()
    for size in res.survey_sizes:
        lp = res.probabilities(size)
        assert (lp.loc[hit, "true_rating"] == floor).all() and (lp.loc[hit, f"p_{floor}"] == 1).all()
        assert (lp.loc[hit, "p_true"] == 1).all()
        for d in res.designations:
            assert (lp.loc[hit & lp[f"true_{d}"], f"p_{d}"] == 1).all()
    assert (res.level_probabilities.loc[~hit, "p_true"] < 1).any()   # noise still moves the others


# -- how noise behaves ------------------------------------------------------------------
def test_without_measurement_noise_levels_concentrate(pop, mc, policy):
    quiet = measurement_mc(pop, draws=60, seed=11, progress=False, params=ZERO_NOISE)
    lp = quiet.level_probabilities
    cuts = np.array([policy[f"branch.rating.cuts.{lv}"] for lv in policy.levels[:-1]])
    far = np.abs(lp["true_score"].to_numpy()[:, None] - cuts).min(axis=1) > 5
    assert far.sum() > 50
    # Only the met/not-met and rounding draws of single facts remain.
    assert lp.loc[far, "p_true"].mean() > 0.99 and lp.loc[far, "p_true"].min() >= 0.9
    assert mc.level_probabilities.loc[far, "p_true"].mean() < 0.98
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
    errs = res.designation_errors.set_index("survey_size")
    assert errs.loc[5, "false_alarm_rate"] >= errs.loc[100, "false_alarm_rate"]
    np.testing.assert_allclose(mis["misclassified"], mis["too_high"] + mis["too_low"])
    np.testing.assert_array_equal(mis["respondents"], mis.index.to_numpy())
    # Each size is its own run: adding sizes does not change the baseline size's numbers.
    base = measurement_mc(pop, draws=60, seed=2, progress=False)
    pd.testing.assert_frame_equal(res.probabilities(base_size), base.level_probabilities)
    with pytest.raises(bs.BranchsimError, match="not run"):
        res.probabilities(7)


def test_survey_size_param_sets_the_baseline(pop):
    res = measurement_mc(pop, draws=20, seed=2, progress=False, params={"measurement.survey_size": 40})
    assert res.survey_sizes == [40] and res.baseline_size == 40
    both = measurement_mc(pop, draws=20, seed=2, progress=False, survey_sizes=[40])
    pd.testing.assert_frame_equal(both.probabilities(40), res.level_probabilities)


def test_member_appraisal_noise_off_makes_grades_certain(pop_members):
    sure = measurement_mc(pop_members, draws=5, seed=1, progress=False, members="appraisal",
                          params={"member_measurement.affinity_bias": 0, "member_measurement.appraisal_noise": 0})
    gcols = [f"p_{g}" for g in sure.grades]
    assert (sure.member_probabilities[gcols].max(axis=1) == 1).all()


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
    ({"params": {"measurement.survey_size": 2.5}}, r"measurement\.survey_size: got 2\.5"),
    ({"params": {"measurement.indicator_noise": -0.1}}, r"measurement\.indicator_noise: got -0\.1"),
    ({"params": lambda pop: pop.params.with_values({"branch_quality.tail": 2.0})}, "branch_quality.tail"),
    ({"params": [1]}, "params must be"),
    ({"draws": 0}, "draws"),
    ({"batch": 2.5}, "batch"),
    ({"survey_sizes": [0]}, "survey_sizes.*>= 1"),
    ({"survey_sizes": [2.5]}, "survey_sizes"),
    ({"survey_sizes": ["10"]}, "survey_sizes"),
    ({"members": "daily"}, "members"),
])
def test_bad_arguments_say_what_is_allowed(pop, kwargs, match):
    kwargs = {k: v(pop) if callable(v) else v for k, v in kwargs.items()}
    with pytest.raises(bs.BranchsimError, match=match):
        measurement_mc(pop, progress=False, **{"draws": 2, **kwargs})


def test_a_population_of_another_scheme_is_refused(pop):
    with pytest.raises(bs.DataError, match="not types of policy 'star_quota'|no column"):
        measurement_mc(pop, shipped.load("star_quota"), draws=1, progress=False)


def test_summary_and_html(mc):
    text = mc.summary()
    assert "300 branches, 60 draws" in text and "Misclassification" in text and "Designations" in text
    html = mc._repr_html_()
    assert mc.levels[0] in html and "<table" in html
    assert repr(mc).startswith("<MonteCarlo: 300 branches")
    assert mc.star_probabilities is mc.level_probabilities
    cs = mc.count_summary()
    row = cs[(cs["measure"] == mc.levels[1])].iloc[0]
    assert row["mean"] == pytest.approx(mc.counts[mc.levels[1]].mean())
    assert row["q05"] <= row["median"] <= row["q95"]


@pytest.mark.parametrize("name", ["baseline", "member_points"])
def test_kept_records_with_the_population_appraisal_give_the_evaluated_grades(name):
    """members="appraisal" keeps the records evaluate computes: with the population's own appraisal, the
    member rules give evaluate's grades (exempt members none)."""
    from branchsim.evaluate import member_outcome
    from branchsim.sensitivity._mc_members import member_setup
    p = shipped.load(name)
    popm = bs.generate(p, seed=8, n_branches=30)
    t = pd.Categorical(popm.branches["type"], categories=p.scheme.branch.types).codes.astype(np.intp)
    m = member_setup(popm, p, t, "appraisal")
    ev = bs.evaluate(popm, p).members
    np.testing.assert_allclose(m["record"], ev["record"], rtol=0, atol=1e-9)
    out = member_outcome(m["record"], popm.members["appraisal"].to_numpy(float), m["profile"], p.scheme.member,
                         p.scheme, veto_values=m["veto_values"], groups=m["groups"], group_names=m["names"])
    got = pd.Series(p.scheme.member.grades.id_of(out["grade"])).fillna("exempt")
    assert got.tolist() == ev["grade"].fillna("exempt").tolist()
