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
from branchsim.sensitivity.montecarlo import MC_BLOCK, measurement_mc
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


@pytest.mark.parametrize("block", [MC_BLOCK, 128], ids=["one_block", "three_blocks"])
def test_a_draw_is_the_measurement_model_rated_by_the_policy(scheme, block, monkeypatch):
    """Draw 0 rebuilt from the documented streams and rated by bs.evaluate gives the same levels.

    A relative design re-rates the whole population: the rebuilt table is evaluated as a whole. With seed
    blocks of 128 branches the 300 branches read three blocks' streams.
    """
    import branchsim.sensitivity.montecarlo as mcmod
    monkeypatch.setattr(mcmod, "MC_BLOCK", block)
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
    for blk in range(-(-len(b) // block)):
        r = slice(blk * block, min(len(b), (blk + 1) * block))
        stream = lambda purpose: np.random.default_rng(  # noqa: E731
            np.random.SeedSequence(root.entropy, spawn_key=(purpose, 0, blk)))
        facts = branch_block(stream(16), q[r], t[r], size[r], no_survey, off, prm, state[r])[0]
        b.loc[b.index[r], list(scheme_.sheet.facts)] = facts
        b.loc[b.index[r], list(scheme_.survey_columns)] = _survey(stream(17), q[r], size[r], prm, scheme_)
        for f, col in declared_facts(stream(18), q[r], scheme_, prm, state[r]).items():
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


# -- the baseline's numbers against the format-1 implementation ------------------------------
def test_baseline_agrees_with_the_format_1_implementation():
    """The branches' draws come from the Monte Carlo's own seed blocks (MC_BLOCK branches, purposes 16-18)
    since the compiled kernel; the format-1 engine drew from the generator's 256-branch blocks (purposes 8, 9,
    13). The draws differ; their distribution must not. Against its golden tallies (12 draws per survey size):
    every per-draw count's old mean lies within 4.5 standard errors of the new (240 draws), each branch's 12
    old draws agree with the new probabilities (expected level correlated above 0.9; the old draws at the
    true level, binomial(12, p_true) if nothing changed: their chi-square over branches within its 99.9% range), and members' grades, whose
    streams did not change, are still equal bit for bit."""
    from scipy import stats
    old = pd.read_csv(GOLDEN / "branches.csv")
    counts = pd.read_csv(GOLDEN / "counts.csv")
    pop = bs.generate(seed=3, n_branches=300, members=False)
    res = measurement_mc(pop, draws=240, seed=7, survey_sizes=[10, 60], progress=False)
    assert res.survey_sizes == sorted(old["survey_size"].unique().tolist())
    renamed = res.counts.rename(columns={"weak_false_alarms": "false_alarms", "weak_misses": "misses"})
    cols = [c for c in counts.columns if c not in ("survey_size", "draw")]
    steps = np.arange(len(res.levels))
    for size in res.survey_sizes:
        new, was = renamed.loc[renamed["survey_size"] == size, cols], counts.loc[counts["survey_size"] == size, cols]
        var = new.var(ddof=1)
        z = (was.mean() - new.mean()) / np.sqrt(var / len(was) + var / len(new) + 1e-12)
        assert (z.abs() < 4.5).all(), f"{size}: {z.round(2).to_dict()}"
        p = res.probabilities(size)
        o = old[old["survey_size"] == size].reset_index(drop=True)
        assert (p["branch_id"] == o["branch_id"]).all() and (p["true_rating"] == o["true_rating"]).all()
        probs, tallies = p[[f"p_{lv}" for lv in res.levels]].to_numpy(), o[res.levels].to_numpy()
        assert (tallies.sum(axis=1) == 12).all()
        assert np.corrcoef(probs @ steps, tallies @ steps / 12)[0, 1] > 0.9
        true_code = np.array([res.levels.index(v) for v in p["true_rating"]])
        # the number of old draws at the true level, binomial(12, p_true) per branch: a chi-square over branches
        pt = p["p_true"].clip(1e-3, 1 - 1e-3).to_numpy()
        k = tallies[np.arange(len(p)), true_code]
        chi2 = (((k - 12 * pt) ** 2) / (12 * pt * (1 - pt))).sum()
        assert stats.chi2.ppf(0.0005, len(p)) < chi2 < stats.chi2.ppf(0.9995, len(p)), chi2
    for mode, seed, draws in (("appraisal", 6, 6), ("monthly", 4, 4)):
        popm = bs.generate(seed=seed, n_branches=40)
        m = measurement_mc(popm, draws=draws, seed=2, members=mode, progress=False, batch=3)
        om = pd.read_csv(GOLDEN / f"members_{mode}.csv")
        assert (m.member_probabilities["member_id"] == om["member_id"]).all()
        for g in m.grades:
            np.testing.assert_array_equal((m.member_probabilities[f"p_{g}"] * draws).round().astype(int), om[g],
                                          err_msg=f"{mode} {g}")


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
def test_truth_without_its_generator_is_refused(pop):
    stripped = bs.Population(pop.branches)                  # true_quality, but no seed or parameters
    with pytest.raises(bs.DataError, match="seed and generator parameters"):
        measurement_mc(stripped, draws=2, progress=False)
    with pytest.raises(bs.DataError, match="takes a Population"):
        measurement_mc(pop.branches, draws=2, progress=False)


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


# -- loaded tables: redrawn around what was observed ----------------------------------------
from branchsim.sensitivity import _mc_tables  # noqa: E402

#: A noise model for any scheme, by kind of fact.
KIND_NOISE = {"binary": {"model": "flip", "p": 0.05}, "count": "poisson",
              "share": {"model": "binomial", "n": "n_members"}, "number": {"model": "normal", "sd": 5}}


def written_tables(p, pop, folder) -> bs.Population:
    """The generated branches without their truth, written as CSV and loaded back as a researcher's tables."""
    pop.branches.drop(columns=["true_quality"]).to_csv(folder / "branches.csv", index=False)
    return bs.load_population(folder, policy=p)


def mimic_noise(p) -> dict:
    """A declared noise model close to the generator's measurement (attainment noise 0.08 around quality)."""
    from branchsim.measurement import _scales
    b = p.scheme.branch
    kinds, sc = _mc_tables.fact_kinds(b), _scales(b.sheet)
    out = {}
    for j, f in enumerate(b.sheet.facts):
        code, kind = int(b.sheet.kind[0, j]), kinds[f]
        if f in b.state_facts:
            continue
        if kind == "binary":
            out[f] = {"model": "flip", "p": 0.1}
        elif kind == "share":
            out[f] = {"model": "normal", "sd": 0.085}
        elif kind == "count":
            n = {1: sc["required"], 3: sc["bonus"], 4: sc["per_event"]}.get(code, sc["occurrences"])[j]
            out[f] = {"model": "binomial", "n": int(np.ceil(n))}
    return out


@pytest.fixture(scope="module", params=[*shipped.POLICIES, "docs_only"])
def on_tables(request, tmp_path_factory):
    p = bs.Policy.load(Path(__file__).parent / "data" / "docs_only" / "county.yaml") \
        if request.param == "docs_only" else shipped.load(request.param)
    pop = bs.generate(p, seed=5, n_branches=300, members=False)
    tables = written_tables(p, pop, tmp_path_factory.mktemp(request.param))
    mc = measurement_mc(tables, p, draws=30, seed=3, progress=False, batch=7, noise=KIND_NOISE)
    return p, tables, mc


def test_tables_probabilities_sum_to_one_and_compare_with_the_observed_level(on_tables):
    p, tables, mc = on_tables
    assert not tables.has_truth and mc.reference == "observed"
    lp = mc.level_probabilities
    n = len(tables.branches)
    pcols = [f"p_{lv}" for lv in p.levels]
    np.testing.assert_allclose(lp[pcols].sum(axis=1), 1.0)
    seen = bs.evaluate(tables, p).branches
    np.testing.assert_array_equal(lp["observed_rating"], seen["rating"])
    np.testing.assert_array_equal(lp["observed_score"], seen["score"])
    probs = lp[pcols].to_numpy()
    np.testing.assert_array_equal(lp["p_observed"], probs[np.arange(n), [p.levels.index(v) for v in seen["rating"]]])
    for d in mc.designations:
        np.testing.assert_array_equal(lp[f"observed_{d}"], seen[d])
        assert lp[f"p_{d}"].between(0, 1).all()
        assert {f"{d}_gained", f"{d}_lost"} <= set(mc.counts.columns)
    mis = mc.misclassification.iloc[0]
    assert mis["survey_size"] == "observed"
    np.testing.assert_allclose(mis["misclassified"], 1 - lp["p_observed"].mean())
    np.testing.assert_allclose(mc.counts["agreement"].mean(), lp["p_observed"].mean())
    assert (mc.counts[list(p.levels)].sum(axis=1) == n).all()
    assert 0 < mis["misclassified"] < 0.6                       # the declared noise moves some levels
    assert "redraw gives a level other than the tables' own" in mc.summary()
    assert repr(mc).startswith("<MonteCarlo on observed tables")
    assert "observed" in mc.count_summary().columns and "true_rating" not in lp.columns


def test_tables_draws_do_not_depend_on_batches_or_executor(on_tables):
    p, tables, mc = on_tables
    again = measurement_mc(tables, p, draws=30, seed=3, progress=False, batch=1, noise=KIND_NOISE)
    assert_same(mc, again)
    with ThreadPoolExecutor(2) as ex:
        assert_same(mc, measurement_mc(tables, p, draws=30, seed=3, progress=False, batch=30, noise=KIND_NOISE,
                                       executor=ex))
    other = measurement_mc(tables, p, draws=30, seed=4, progress=False, batch=7, noise=KIND_NOISE)
    assert not other.counts["agreement"].equals(mc.counts["agreement"])


def test_tables_without_noise_hold_the_facts_and_redraw_the_survey(on_tables):
    p, tables, _ = on_tables
    mc = measurement_mc(tables, p, draws=20, seed=1, progress=False)
    assert mc.noise == []
    if not p.scheme.branch.survey:                  # nothing varies: every draw gives the observed level
        assert (mc.level_probabilities["p_observed"] == 1).all()
        assert mc.misclassification["misclassified"].iloc[0] == 0
    else:
        assert (mc.level_probabilities["p_observed"] < 1).any()


@pytest.mark.parametrize("name", ["baseline", "star_quota"])
def test_tables_from_generate_agree_with_the_generated_path(name, tmp_path):
    """Both paths estimate how measurement noise spreads each branch over levels, from the same population:
    one around the truth, the other around the one measurement written to the tables (so wider by up to √2).
    Agreement: the expected share at each level within 0.03, the per-branch expected level (probability-
    weighted level index) correlated above 0.8, and the expected misclassification (vs truth; vs the observed
    level) within 0.05. The same tables with their rows' measurements shuffled fail the correlation."""
    p = shipped.load(name)
    pop = bs.generate(p, seed=5, n_branches=600, members=False)
    gen = measurement_mc(pop, p, draws=100, seed=1, progress=False)
    tables = written_tables(p, pop, tmp_path)
    obs = measurement_mc(tables, p, draws=100, seed=1, progress=False, noise=mimic_noise(p))
    cols, steps = [f"p_{lv}" for lv in p.levels], np.arange(len(p.levels))
    g, o = gen.level_probabilities[cols].to_numpy(), obs.level_probabilities[cols].to_numpy()
    np.testing.assert_allclose(o.mean(axis=0), g.mean(axis=0), atol=0.03)
    assert np.corrcoef(g @ steps, o @ steps)[0, 1] > 0.8
    assert abs(obs.misclassification["misclassified"].iloc[0] - gen.misclassification["misclassified"].iloc[0]) \
        < 0.05
    shuffled = tables.branches.copy()
    measured = [c for c in shuffled.columns if c not in ("branch_id", "type", "level", "n_members", "parent")]
    shuffled[measured] = shuffled[measured].sample(frac=1, random_state=0).to_numpy()
    wrong = measurement_mc(bs.Population(shuffled), p, draws=20, seed=1, progress=False, noise=mimic_noise(p))
    assert np.corrcoef(g @ steps, wrong.level_probabilities[cols].to_numpy() @ steps)[0, 1] < 0.3


def test_survey_redraw_is_dirichlet_multinomial():
    counts = np.array([[20, 5, 0], [3, 3, 3], [0, 0, 0]])
    rng = np.random.default_rng(0)
    got = np.stack([_mc_tables.redraw_survey(rng, counts, 0.5) for _ in range(4000)])
    np.testing.assert_array_equal(got.sum(axis=2), np.broadcast_to(counts.sum(axis=1), (4000, 3)))
    # E[answers] = N (c + prior) / (N + a prior); the variance exceeds the multinomial's (the shares vary too)
    expected = counts.sum(axis=1, keepdims=True) * (counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 1.5)
    np.testing.assert_allclose(got[:, :2].mean(axis=0), expected[:2], atol=0.15)
    share = (counts[0] + 0.5) / 26.5
    assert got[:, 0, 0].var() > 1.5 * 25 * share[0] * (1 - share[0])
    assert (got[:, 0, 2] > 0).mean() > 0.05                # an answer nobody gave can be given


def test_noise_models_draw_what_they_say(pop):
    b = pop.branches.drop(columns="true_quality").copy()
    policy = bs.Policy.load()
    scheme = policy.scheme.branch
    models, _ = _mc_tables.noise_model({"secretary_trained": {"model": "flip", "p": 0.2}, "committee_meetings":
                                        "poisson", "dues_on_time_share": {"model": "binomial", "n": 40},
                                        "share": {"model": "normal", "sd": 0.05}, "binary": {"model": "flip",
                                                                                             "p": 0.5}},
                                       scheme, b.columns, "baseline")
    by = {m.fact: m for m in models}
    assert by["secretary_trained"].value == 0.2 and by["dues_on_time_share"].model == "binomial"
    assert by["mobile_registered_share"].model == "normal"
    assert not set(scheme.state_facts) & set(by)           # a kind's model leaves the state facts alone
    prep = _mc_tables.prepare(models, b)
    rng = np.random.default_rng(1)
    kinds = _mc_tables.fact_kinds(scheme)
    draws = [_mc_tables.redraw_facts(rng, prep, kinds) for _ in range(200)]
    flip = np.mean([d["secretary_trained"] != b["secretary_trained"].to_numpy() for d in draws])
    assert abs(flip - 0.2) < 0.02
    pois = np.stack([d["committee_meetings"] for d in draws])
    np.testing.assert_allclose(pois.mean(), b["committee_meetings"].mean(), rtol=0.02)
    share = np.stack([d["dues_on_time_share"] for d in draws])
    assert np.allclose(share * 40, np.round(share * 40)) and abs(share.mean() - b["dues_on_time_share"].mean()) < 0.01
    named, _ = _mc_tables.noise_model({"binary": {"model": "flip", "p": 0.1}, "secretary_in_post":
                                       {"model": "flip", "p": 0.1}}, scheme, b.columns, "baseline")
    assert "secretary_in_post" in {m.fact for m in named}  # named, a state fact is redrawn


@pytest.mark.parametrize("noise, match", [
    ({"no_such_fact": "poisson"}, "'no_such_fact' is neither a fact of policy 'baseline' nor a kind"),
    ({"count": "gaussian"}, "count: unknown model 'gaussian'; allowed: fixed, flip"),
    ({"count": {"model": "flip", "p": 0.1}}, "model 'flip' applies to binary facts"),
    ({"committee_meetings": "normal"}, "committee_meetings: model 'normal' applies to share and number"),
    ({"binary": {"model": "flip"}}, "binary: model 'flip' needs 'p'"),
    ({"binary": {"model": "flip", "p": 1.5}}, "p must be a number between 0 and 1"),
    ({"share": {"model": "binomial", "n": "no_column"}}, "n='no_column' is not a column"),
    ({"share": {"model": "binomial", "n": 0}}, "n must be a whole number >= 1"),
    ({"count": {"model": "poisson", "rate": 2}}, "takes no parameter, not 'rate'"),
    ({"count": 3}, "a model is a name or a mapping"),
    (["count"], "noise must be a mapping"),
    ({"facts": ["count"]}, "facts must be a mapping"),
    ("/no/such/noise.yaml", "no such file"),
])
def test_bad_noise_models_say_what_is_allowed(noise, match):
    tables = bs.load_population(bs.data_path("examples"))
    with pytest.raises(bs.BranchsimError, match=match):
        measurement_mc(tables, draws=2, progress=False, noise=noise)


def test_noise_model_that_does_not_fit_the_data_names_column_and_rows():
    tables = bs.load_population(bs.data_path("examples"))
    with pytest.raises(bs.DataError, match=r"column 'committee_meetings': negative or above n in rows? \d"):
        measurement_mc(tables, draws=2, progress=False, noise={"committee_meetings": {"model": "binomial", "n": 2}})
    b = tables.branches.copy()
    b.loc[3, "secretary_trained"] = 2
    with pytest.raises(bs.DataError, match=r"column 'secretary_trained': not 0 or 1 in row 4;"):
        measurement_mc(bs.Population(b), draws=2, progress=False, noise={"binary": {"model": "flip", "p": 0.1}})


def test_noise_file_and_survey_prior(tmp_path):
    tables = bs.load_population(bs.data_path("examples"))
    f = tmp_path / "noise.yaml"
    f.write_text("survey_prior: 2\nfacts:\n  count: poisson\n", encoding="utf-8")
    a = measurement_mc(tables, draws=20, seed=2, progress=False, noise=f)
    b = measurement_mc(tables, draws=20, seed=2, progress=False, noise={"count": "poisson"}, survey_prior=2)
    assert_same(a, b)
    assert a.survey_prior == 2.0 and {m.model for m in a.noise} == {"poisson"}
    jeffreys = measurement_mc(tables, draws=20, seed=2, progress=False, noise={"count": "poisson"})
    assert jeffreys.survey_prior == 0.5 and not jeffreys.counts.equals(a.counts)
    with pytest.raises(bs.BranchsimError, match="survey_prior is given twice"):
        measurement_mc(tables, draws=2, progress=False, noise=f, survey_prior=1)
    with pytest.raises(bs.BranchsimError, match="survey_prior must be a number > 0"):
        measurement_mc(tables, draws=2, progress=False, survey_prior=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"members": True}, "needs a generated population"),
    ({"survey_sizes": [30]}, "keeps its observed number of respondents"),
    ({"params": {"measurement.survey_shock": 0}}, "declare the measurement noise"),
    ({"draws": 0}, "draws"),
])
def test_tables_refuse_what_needs_the_truth(kwargs, match):
    tables = bs.load_population(bs.data_path("examples"))
    with pytest.raises(bs.BranchsimError, match=match):
        measurement_mc(tables, progress=False, **{"draws": 2, **kwargs})


def test_noise_on_a_generated_population_is_refused(pop):
    with pytest.raises(bs.BranchsimError, match="noise and survey_prior apply to loaded tables"):
        measurement_mc(pop, draws=2, progress=False, noise={"count": "poisson"})


def test_survey_prior_on_a_scheme_without_survey_is_refused():
    p = bs.Policy.load(Path(__file__).parent / "data" / "docs_only" / "county.yaml")
    pop = bs.generate(p, seed=1, n_branches=20, members=False)
    with pytest.raises(bs.BranchsimError, match="has no survey: survey_prior does not apply"):
        measurement_mc(bs.Population(pop.branches.drop(columns="true_quality")), p, draws=2, progress=False,
                       survey_prior=1.0)


# -- the compiled kernel and stacked draws --------------------------------------------------
def test_kernel_facts_and_points_are_the_numpy_measurement_bit_for_bit(scheme):
    from branchsim.scoring import branch_components, indicator_points
    from branchsim.sensitivity import _mc_kernel
    p, pop, _ = scheme
    b = p.scheme.branch
    if not _mc_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    q = pop.branches["true_quality"].to_numpy()
    t = pd.Categorical(pop.branches["type"], categories=b.types).codes.astype(np.intp)
    state = np.column_stack([_state_column(pop.branches, b, f) for f in b.state_facts]) if b.state_facts \
        else np.zeros((len(q), 0))
    off = _indicator_offsets(pop.seed, b.sheet, pop.params, 0)
    survey = rng.integers(0, 20, (len(q), len(b.answers)))
    survey[:, 0] += 1
    seed = np.random.SeedSequence(9)
    facts, _ = branch_block(np.random.default_rng(seed), q, t, None, dataclasses.replace(b, answers=()), off,
                            pop.params, state)
    g = np.random.default_rng(seed)
    z, u = g.standard_normal((len(q), b.sheet.k)), g.random((len(q), b.sheet.k))
    m = pop.params.values["measurement"]
    fused = _mc_kernel.fuses_components(b)
    kf, kp, kc = _mc_kernel.facts_points(q, t, off, m["indicator_noise"], m["proportion_noise"], z, u, state,
                                         survey if b.survey else None, _mc_kernel.sheet_arrays(b, b.state_facts),
                                         fused)
    np.testing.assert_array_equal(kf, facts)
    pts = indicator_points(facts, t, b.sheet, rank_groups={"type": t})
    # zeroing and rank, and the items a zeroing rule may zero, are set by NumPy afterwards
    plain = ~np.isin(b.sheet.kind[t], [7, 8])
    for j in np.flatnonzero((b.sheet.kind == 7).any(axis=0)):
        plain[:, b.sheet.target[j]] = False
    assert plain.mean() > 0.5
    np.testing.assert_array_equal(kp[plain], pts[plain])
    assert fused or p.name != "baseline"                         # the default city's sheet is fused
    if fused:
        np.testing.assert_allclose(kc, branch_components(pts, t, survey, b), rtol=1e-14, atol=0)


def test_stacking_and_the_numpy_path_give_the_same_numbers(scheme, monkeypatch):
    """Draws are measured and rated in stacks of STACK_ROWS rows; neither the stack size nor the compiled
    kernel changes a number."""
    import branchsim.sensitivity.montecarlo as mcmod
    from branchsim.sensitivity import _mc_kernel
    p, pop, mc = scheme
    monkeypatch.setattr(mcmod, "STACK_ROWS", 1)                  # one draw at a time
    one = measurement_mc(pop, p, draws=10, seed=11, progress=False, survey_sizes=[60], batch=4,
                         members=p.has_members)
    assert_same(mc, one)
    monkeypatch.setattr(mcmod, "STACK_ROWS", 2 * len(pop.branches) + 1)
    monkeypatch.setattr(_mc_kernel, "available", lambda: False)
    assert_same(mc, measurement_mc(pop, p, draws=10, seed=11, progress=False, survey_sizes=[60], batch=10,
                                   members=p.has_members))
