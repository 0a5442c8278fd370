"""Noise factors re-measured with common random numbers (``sensitivity/_remeasure.py``).

The reference is the slow way: generate the population again with the
setting's generator parameters (same seed) and score it. The indicator facts
use the population's own draws, so they equal the re-generated facts exactly;
the survey keeps a fixed, nested list of respondents, so its counts agree with
a re-generated survey in distribution only (checked against the expected
counts and, through the levels, weak counts and accuracy, over many seeds).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.evaluate import branch_outcome
from branchsim.measurement import survey_probabilities
from branchsim.sensitivity import factors as fmod
from branchsim.sensitivity import _remeasure
from branchsim.sensitivity._remeasure import Remeasure
from branchsim.sensitivity.engine import prepare, run
from branchsim.sensitivity.gsa import default_factors, evaluate_samples, scenarios
from branchsim.streams import _BRANCH, BLOCK, block_stream
import shipped

N = 500


def _noise(policy, params):
    f = default_factors(policy, params)
    return f, f[f.kind == "noise"].reset_index(drop=True)


def _values(noise: pd.DataFrame, settings) -> pd.DataFrame:
    return pd.DataFrame(settings, columns=list(noise.name))


def _regenerated(policy, pop, changes: dict, f, values_row):
    """Levels, weak count and accuracy of the population generated again under ``changes`` (the reference)."""
    params = pop.params.with_values({f"measurement.{k}": v for k, v in changes.items()})
    base = prepare(pop, policy).levels.astype(np.int16)
    return fmod._remeasure(policy, pop.seed, len(pop.branches), params, scenarios(policy, f, values_row), base)


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_indicator_facts_equal_a_regenerated_population(name):
    p = shipped.load(name)
    pop = bs.generate(p, seed=7, n_branches=300, members=False)
    crn = Remeasure(pop, p, max_survey=40)
    names = [p.scheme.branch.sheet.facts[j] for j in crn.measured]
    assert names, "every shipped scheme measures some indicator"
    for noise, prop in ((0.02, 0.1), (0.13, 0.25), (0.3, 0.0)):
        changes = {"indicator_noise": noise, "proportion_noise": prop}
        again = bs.generate(p, seed=7, n_branches=300, members=False,
                            params={f"measurement.{k}": v for k, v in changes.items()})
        np.testing.assert_array_equal(crn.facts(changes)["facts"], again.branches[names].to_numpy(float))
    batch = crn.facts_batch([{"indicator_noise": 0.02}, {"indicator_noise": 0.3}])     # one array pass
    np.testing.assert_array_equal(batch[1], crn.facts({"indicator_noise": 0.3})["facts"])


def test_survey_respondents_are_nested_and_keep_the_population_answers(policy):
    pop = bs.generate(policy, seed=2, n_branches=N, members=False)
    m0 = pop.params.get("measurement.survey_size")
    crn = Remeasure(pop, policy, max_survey=2 * m0)
    own = pop.branches[list(policy.scheme.branch.survey_columns)].to_numpy(float)
    np.testing.assert_array_equal(crn.facts({})["survey"], own)
    prev = crn.facts({"survey_size": 1})["survey"]
    assert (prev.sum(axis=1) == 1).all()
    for m in range(2, 2 * m0 + 1):            # a bigger survey adds exactly one respondent per branch
        cur = crn.facts({"survey_size": m})["survey"]
        step = cur - prev
        assert (step >= 0).all() and (step.sum(axis=1) == 1).all()
        prev = cur
    # A larger set of respondents drawn does not change the first ones.
    wide = Remeasure(pop, policy, max_survey=3 * m0)
    for m in (5, m0 + 3, 2 * m0):
        np.testing.assert_array_equal(wide.facts({"survey_size": m})["survey"], crn.facts({"survey_size": m})["survey"])


@pytest.mark.parametrize("size", [8, 40])
def test_survey_counts_have_the_expected_multinomial_means(policy, size):
    # Given each branch's survey mood (the population's own, re-drawn here from its stream),
    # answers are multinomial(size, probs): summed over branches and 12 seeds the counts per
    # answer have mean size × Σ probs and variance size × Σ p (1 - p). 4 sd bounds them.
    bs_ = policy.scheme.branch
    m = bs.generate(policy, seed=0, n_branches=10, members=False).params.values["measurement"]
    got, mean, var = 0.0, 0.0, 0.0
    for seed in range(12):
        pop = bs.generate(policy, seed=seed, n_branches=N, members=False)
        q = pop.branches["true_quality"].to_numpy()
        k = bs_.sheet.k
        mood = np.concatenate([(lambda r: (r.standard_normal((min(BLOCK, N - b * BLOCK), k)),
                                           r.random((min(BLOCK, N - b * BLOCK), k)),
                                           r.standard_normal(min(BLOCK, N - b * BLOCK)))[2])(
            block_stream(pop.seed, _BRANCH, b)) for b in range(-(-N // BLOCK))])
        probs = survey_probabilities(np.clip(q + m["survey_generosity"] + m["survey_shock"] * mood, 0, 1),
                                     bs_.answer_values)
        probs /= probs.sum(axis=1, keepdims=True)
        got = got + Remeasure(pop, policy, max_survey=size).facts({"survey_size": size})["survey"].sum(axis=0)
        mean = mean + size * probs.sum(axis=0)
        var = var + size * (probs * (1 - probs)).sum(axis=0)
    assert (np.abs(got - mean) <= 4 * np.sqrt(var)).all(), (got, mean, np.sqrt(var))


def test_levels_weak_and_accuracy_agree_with_regeneration(policy):
    # Paired over 12 seeds: the CRN path and a re-generated population share the indicator draws and the
    # survey mood and differ only in which respondents answer. At the population's survey size they are
    # the same draws (equal outcomes); at other sizes the mean paired difference of each level count, the
    # weak count and the accuracy lies within 3 standard errors (+ 0.5 branch, + 0.001 accuracy).
    f, noise = _noise(policy, bs.generate(policy, seed=0, n_branches=10, members=False).params)
    m0 = int(noise.set_index("name").baseline["survey_size"])
    settings = [(0.12, m0), (0.05, m0 - 10), (0.11, m0 + 12), (0.08, 13)]
    values = _values(noise, settings)
    diffs = []
    for seed in range(12):
        pop = bs.generate(policy, seed=seed, n_branches=N, members=False)
        out = evaluate_samples(pop, policy, values, noise)
        for i, (s, m) in enumerate(settings):
            ref = _regenerated(policy, pop, {"indicator_noise": s, "survey_size": m}, noise, values.iloc[[i]])
            row = np.r_[ref["counts"][0, 0], ref["designated"][0, 0], ref["correct"][0, 0] / N]
            ours = np.r_[out.loc[i, list(policy.levels)].to_numpy(float)[::-1],
                         out.loc[i, [d.id for d in policy.scheme.branch.designations]].to_numpy(float),
                         out.loc[i, "accuracy"]]
            if m == m0:
                np.testing.assert_allclose(ours, row, atol=1e-12)
            diffs.append((i, ours - row))
    for i in range(1, len(settings)):
        d = np.array([x for j, x in diffs if j == i])
        se = d.std(axis=0, ddof=1) / np.sqrt(len(d))
        slack = np.r_[np.full(d.shape[1] - 1, 0.5), 0.001]
        assert (np.abs(d.mean(axis=0)) <= 3 * se + slack).all(), (settings[i], d.mean(axis=0), se)


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_the_population_noise_setting_gives_the_population_own_outcomes(name):
    p = shipped.load(name)
    pop = bs.generate(p, seed=5, n_branches=400, members=False)
    f, noise = _noise(p, pop.params)
    base = noise.set_index("name").baseline
    values = _values(noise, [base.tolist()])
    out = evaluate_samples(pop, p, values, noise)
    # The reference: the engine on the population as it is (no re-measurement).
    prep = prepare(pop, p)
    ref = run(prep, scenarios(p, noise, values), baseline=prep.levels.astype(np.int16))
    assert out.changed.iloc[0] == ref["changed"][0, 0]
    assert out[list(p.levels)].iloc[0].tolist() == ref["counts"][0, 0][::-1].tolist()
    assert out.accuracy.iloc[0] == ref["correct"][0, 0] / len(pop.branches)
    if name == "baseline":      # here the engine's levels are evaluate's (see the report for star_quota)
        counts = bs.evaluate(pop, p).branches["rating"].value_counts()
        assert out.changed.iloc[0] == 0
        assert out[list(p.levels)].iloc[0].tolist() == [counts.get(lv, 0) for lv in p.levels]


def test_outcomes_do_not_depend_on_batches_chunks_or_executor(policy, monkeypatch):
    pop = bs.generate(policy, seed=1, n_branches=N, members=False)
    f = default_factors(policy, pop.params)
    rng = np.random.default_rng(0)
    values = pd.DataFrame({r.name: (rng.integers(r.low, r.high + 1, 9) if r.integer else
                                    rng.uniform(r.low, r.high, 9)) for r in f.itertuples()})
    values.loc[3, "survey_size"] = f.set_index("name").high["survey_size"]     # the largest only in batch 1
    whole = evaluate_samples(pop, policy, values, f)
    pd.testing.assert_frame_equal(whole, evaluate_samples(pop, policy, values, f))       # reproducible
    parts = pd.concat([evaluate_samples(pop, policy, values.iloc[:5], f),
                       evaluate_samples(pop, policy, values.iloc[5:], f)], ignore_index=True)
    pd.testing.assert_frame_equal(parts, whole)
    monkeypatch.setattr(_remeasure, "CHUNK", 2)
    with ThreadPoolExecutor(2) as ex:
        pd.testing.assert_frame_equal(evaluate_samples(pop, policy, values, f, executor=ex), whole)


def test_more_indicator_noise_moves_more_branches(policy):
    # In expectation over seeds: the further the indicator noise from 0, the more branches take another
    # level than without it (the same draws, scaled); the branches whose level differs from the
    # population's (measured at its own 0.08) grow with the distance from 0.08; at the largest noise
    # fewer levels are right than without noise.
    f, noise = _noise(policy, bs.generate(policy, seed=0, n_branches=10, members=False).params)
    m0 = int(noise.set_index("name").baseline["survey_size"])
    grid = [0.0, 0.04, 0.08, 0.16, 0.32]
    values = _values(noise, [(s, m0) for s in grid])
    acc, changed, moved = np.zeros(len(grid)), np.zeros(len(grid)), np.zeros(len(grid))
    for seed in range(4):
        pop = bs.generate(policy, seed=seed, n_branches=N, members=False)
        out = evaluate_samples(pop, policy, values, noise)
        acc += out.accuracy.to_numpy()
        changed += out.changed.to_numpy()
        crn = Remeasure(pop, policy)
        levels = [branch_outcome(crn.inputs_for(**crn.facts({"indicator_noise": s}), scheme=policy.scheme),
                                 policy.scheme)["level"] for s in grid]
        moved += [(lv != levels[0]).sum() for lv in levels]
    assert (np.diff(moved) > 0).all(), moved
    assert changed[2] == 0 and changed[2] < changed[3] < changed[4] and changed[2] < changed[1] < changed[0]
    assert acc[-1] < acc[0], acc


def test_refusals_and_the_regeneration_path(policy, tmp_path):
    pop = bs.generate(policy, seed=3, n_branches=200, members=False)
    f, noise = _noise(policy, pop.params)
    values = _values(noise, [noise.baseline.tolist()])
    loaded = bs.Population(pop.branches.copy())
    with pytest.raises(bs.BranchsimError, match="no seed"):
        evaluate_samples(loaded, policy, values, noise)
    edited = bs.Population(pop.branches.copy(), seed=pop.seed, params=pop.params)
    col = policy.scheme.branch.sheet.facts[Remeasure(pop, policy).measured[0]]
    edited.branches[col] = edited.branches[col].to_numpy()[::-1]
    with pytest.raises(bs.BranchsimError, match="cannot be re-measured"):
        evaluate_samples(edited, policy, values, noise)
    # A noise factor outside the common-random-number keys re-generates the population per setting.
    shock = pd.DataFrame([("survey_shock", "measurement.survey_shock", "noise", 0.0, 0.1)],
                         columns=["name", "path", "kind", "low", "high"])
    out = evaluate_samples(pop, policy, pd.DataFrame({"survey_shock": [pop.params.get("measurement.survey_shock"),
                                                                       0.1]}), shock)
    assert out.changed.iloc[0] == 0 and out.changed.iloc[1] > 0


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_noise_with_a_param_factor_equals_regeneration_under_the_changed_policy(name):
    # Indicator noise alone (the survey at the population's size): the CRN facts are the re-generated ones,
    # so under each sampled points value the outcomes equal re-generating and rating under that policy.
    p = shipped.load(name)
    pop = bs.generate(p, seed=4, n_branches=200, members=False)
    path = next(r for r in p.parameters()["path"] if r.startswith("branch.indicators.") and r.endswith(".points")
                and isinstance(p[r], (int, float)) and not isinstance(p[r], bool) and p[r] > 0)
    v0, s0 = float(p[path]), pop.params.get("measurement.indicator_noise")
    f = pd.DataFrame([{"name": "pts", "path": path, "kind": "param", "low": v0 / 2, "high": v0 * 2},
                      {"name": "indicator_noise", "path": "measurement.indicator_noise", "kind": "noise",
                       "low": s0 / 2, "high": 2 * s0}])
    values = pd.DataFrame({"pts": [v0 / 2, v0, v0 * 2, v0 / 2], "indicator_noise": [s0, 2 * s0, s0 / 2, s0 / 2]})
    got = evaluate_samples(pop, p, values, f)
    base = prepare(pop, p).levels.astype(np.int16)
    for i, (v, s) in enumerate(zip(values.pts, values.indicator_noise)):
        pol = p.update({path: v}) if v != v0 else p
        ref = fmod._remeasure(p, pop.seed, 200, pop.params.with_values({"measurement.indicator_noise": s}),
                              scenarios(pol, f, values.iloc[[i]]), base, pol)
        assert got.loc[i, list(p.levels)].tolist() == ref["counts"][0, 0][::-1].tolist(), (name, v, s)
        assert got.loc[i, "changed"] == ref["changed"][0, 0]
