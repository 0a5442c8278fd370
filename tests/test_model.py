"""Generated populations: exact reproducibility, plausibility, truth versus measurement, display."""
from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim import model, rating
from branchsim.evaluate import branch_inputs
from branchsim.truth import Truth, true_components, truth
from branchsim.model import GeneratorParams
from conftest import TABLES, assert_same_population

#: The baseline's state facts (``state: true``): drawn with a branch's truth, recorded without error.
STATE_FACTS = list(bs.Policy.load().scheme.branch.state_facts)
WEAK_BELOW = "branch.designations.weak.criteria.low_score.below"

TYPES = ("village", "urban_community", "government", "institution", "enterprise", "social_org")
CATEGORIES = {"in_service", "retired", "farmer", "mobile"}
SURVEY = ["survey_satisfied", "survey_basic", "survey_dissatisfied"]
#: Every source of measurement noise off, and surveys so large that sampling noise vanishes.
NOISE_OFF = {"measurement.indicator_noise": 0, "measurement.survey_shock": 0,
             "measurement.proportion_noise": 0, "measurement.survey_size": 2000}
#: Secretary vacancies and major violations common enough to find some in a few hundred branches.
VACANCIES = {"state.problem_rate": 0.15}


def _survey_total(pop) -> np.ndarray:
    return pop.branches[SURVEY].sum(axis=1).to_numpy()


# -- reproducibility -------------------------------------------------------------------------------
class TestSeeds:
    def test_same_seed_same_population(self):
        assert_same_population(bs.generate(seed=7, n_branches=300), bs.generate(seed=7, n_branches=300))

    def test_different_seed_different_population(self):
        a, b = bs.generate(seed=7, n_branches=300), bs.generate(seed=8, n_branches=300)
        for name in TABLES:
            assert not getattr(a, name).equals(getattr(b, name)), name
        # Not a shuffle or a shift: the truth differs branch by branch and member by member.
        assert (a.branches["true_quality"] != b.branches["true_quality"]).mean() > 0.99
        assert not np.isin(a.branches["true_quality"], b.branches["true_quality"]).any()

    @pytest.mark.parametrize("form", [np.random.SeedSequence(5), np.random.default_rng(5),
                                      np.int64(5)], ids=["SeedSequence", "Generator", "np.int64"])
    def test_seed_forms_agree(self, form):
        # An int, the SeedSequence it stands for and a Generator seeded with it draw the same city.
        assert_same_population(bs.generate(seed=form, n_branches=150), bs.generate(seed=5, n_branches=150))

    def test_population_records_its_seed(self):
        pop = bs.generate(seed=12, n_branches=50)
        assert pop.seed.entropy == 12
        # An unseeded population records the entropy it drew, so it can be drawn again.
        fresh = bs.generate(seed=None, n_branches=50)
        assert_same_population(fresh, bs.generate(seed=fresh.seed, n_branches=50))
        assert not fresh.branches.equals(bs.generate(seed=None, n_branches=50).branches)

    @pytest.mark.parametrize("seed", ["3", 1.5, True, [1, 2], np.random.RandomState(1)],
                             ids=["str", "float", "bool", "list", "RandomState"])
    def test_invalid_seed(self, seed):
        with pytest.raises(bs.BranchsimError, match="seed"):
            bs.generate(seed=seed, n_branches=10)

    @pytest.mark.parametrize("seed", [-1, np.int64(-5)], ids=["int", "np.int64"])
    def test_negative_seed_is_a_branchsim_error(self, seed):
        with pytest.raises(bs.BranchsimError, match=r"seed.*non-negative.*got -\d"):
            bs.generate(seed=seed, n_branches=10)

    def test_branch_only_population_has_the_same_branches(self):
        # Members are drawn from their own streams: skipping them changes no branch.
        full, only = bs.generate(seed=9, n_branches=300), bs.generate(seed=9, n_branches=300, members=False)
        pd.testing.assert_frame_equal(full.branches, only.branches, check_exact=True)
        assert only.members is None and only.member_months is None


@pytest.fixture(scope="module")
def reference():
    return bs.generate(seed=4, n_branches=700, workers=1)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("chunk_size", [256, 300, 10_000])
def test_chunk_size_and_workers_change_nothing(reference, chunk_size, workers):
    # 700 branches are three seed blocks (256, 256, 188): one, two or all blocks per chunk.
    pop = bs.generate(seed=4, n_branches=700, chunk_size=chunk_size, workers=workers)
    assert_same_population(pop, reference)


@pytest.mark.parametrize("kwargs", [dict(n_branches=0), dict(n_branches=-3), dict(chunk_size=0),
                                    dict(workers=0), dict(workers=1.5)])
def test_invalid_sizes(kwargs):
    with pytest.raises(bs.BranchsimError):
        bs.generate(seed=1, **{"n_branches": 10, **kwargs})


@pytest.mark.parametrize("n", [2.5, "10", True], ids=["float", "str", "bool"])
def test_non_integer_n_branches_is_refused(n):
    with pytest.raises(bs.BranchsimError, match=f"n_branches.*{re.escape(repr(n))}"):
        bs.generate(seed=1, n_branches=n)


def test_integer_n_branches_of_any_integer_type():
    assert len(bs.generate(seed=1, n_branches=np.int64(12), members=False).branches) == 12


class TestParams:
    def test_unknown_parameter_names_the_path(self):
        with pytest.raises(bs.BranchsimError, match=r"measurement\.survey_sise.*did you mean "
                                                    r"'measurement\.survey_size'"):
            bs.generate(seed=1, n_branches=10, params={"measurement.survey_sise": 5})

    @pytest.mark.parametrize("old", ["measurement.survey_members", "measurement.survey_residents"])
    def test_removed_survey_parameters_are_refused(self, old):
        # The survey size is one number now; the old names must not be silently ignored.
        assert "survey_members" not in GeneratorParams.load().values["measurement"]
        with pytest.raises(bs.BranchsimError, match=re.escape(old)):
            bs.generate(seed=1, n_branches=10, params={old: 5})

    def test_unknown_section_names_the_path(self):
        with pytest.raises(bs.BranchsimError, match=r"measurment\.survey_size"):
            bs.generate(seed=1, n_branches=10, params={"measurment.survey_size": 5})

    @pytest.mark.parametrize("value", [-20, "ten"], ids=["negative", "text"])
    def test_invalid_value_names_the_path(self, value):
        with pytest.raises(bs.BranchsimError, match=r"measurement\.survey_size.*allowed"):
            bs.generate(seed=1, n_branches=10, params={"measurement.survey_size": value})

    def test_override_changes_only_what_it_names(self):
        base = bs.generate(seed=2, n_branches=200, members=False)
        more = bs.generate(seed=2, n_branches=200, members=False, params={"measurement.survey_size": 5})
        assert (_survey_total(base) == base.params.get("measurement.survey_size")).all()
        assert (_survey_total(more) == 5).all()
        # Structure, truth and the branch's state come from their own streams: untouched by a
        # survey change, and so are the indicator facts (drawn before the survey).
        cols = ["branch_id", "type", "level", "n_members", "true_quality", *STATE_FACTS]
        pd.testing.assert_frame_equal(base.branches[cols], more.branches[cols])
        facts = [ind["fact"] for ind in bs.Policy.load().branch_indicators.values()]
        pd.testing.assert_frame_equal(base.branches[facts], more.branches[facts])
        assert not base.branches[SURVEY].equals(more.branches[SURVEY])
        assert more.params.get("measurement.survey_size") == 5


@pytest.fixture(scope="module")
def params() -> GeneratorParams:
    return GeneratorParams.load()


class TestWithValues:
    """GeneratorParams.with_values checks every change before anything changes."""

    @pytest.mark.parametrize("path", ["nowhere", "nowhere.at_all", "measurement",
                                      "measurement.survey_size.value", "types.village.share.value",
                                      "types.nowhere.share", "branch_quality.loc.x.y", ""],
                             ids=["top", "top-nested", "section", "below-a-leaf", "below-a-leaf-deep",
                                  "middle", "deeper", "empty"])
    def test_unknown_path_at_any_level(self, params, path):
        with pytest.raises(bs.BranchsimError, match=f"{re.escape(path)}: no such generator parameter"):
            params.with_values({path: 1})

    @pytest.mark.parametrize("value", ["0.1", None, True, [0.1], {"value": 0.1}, float("nan"),
                                       float("inf")],
                             ids=["text", "None", "bool", "list", "dict", "nan", "inf"])
    def test_non_numbers_are_refused(self, params, value):
        with pytest.raises(bs.BranchsimError, match=r"measurement\.indicator_noise: got .*a finite number"):
            params.with_values({"measurement.indicator_noise": value})

    @pytest.mark.parametrize("path", ["measurement.indicator_noise", "measurement.survey_size",
                                      "scale.n_branches", "branch_quality.loc", "types.village.share",
                                      "member_measurement.impression_halo"])
    def test_negatives_are_refused(self, params, path):
        # Counts (n_branches, survey_size) must be at least 1; everything else at least 0.
        low = "1" if path in ("measurement.survey_size", "scale.n_branches") else "0"
        with pytest.raises(bs.BranchsimError, match=f"{re.escape(path)}: got -1.*>= {low}"):
            params.with_values({path: -1})

    def test_skew_may_be_negative(self, params):
        # The skew of the quality distribution is signed: a negative one skews it the other way.
        p = params.with_values({"branch_quality.skew": -0.5})
        assert p.get("branch_quality.skew") == -0.5
        left = bs.generate(seed=3, n_branches=500, members=False, params=p).branches["true_quality"]
        right = bs.generate(seed=3, n_branches=500, members=False,
                            params={"branch_quality.skew": 0.5}).branches["true_quality"]
        assert left.skew() < 0 < right.skew()

    @pytest.mark.parametrize("path", ["scale.n_branches", "measurement.survey_size"])
    @pytest.mark.parametrize("value", [2.5, 1e-3, np.float64(20.5)], ids=["2.5", "0.001", "np.float64"])
    def test_counts_must_be_whole_numbers(self, params, path, value):
        with pytest.raises(bs.BranchsimError, match=f"{re.escape(path)}: got .*a whole number"):
            params.with_values({path: value})

    def test_other_parameters_may_be_fractions(self, params):
        assert params.with_values({"scale.mean_size": 20.5}).get("scale.mean_size") == 20.5

    def test_numpy_numbers_are_plain_values(self, params):
        p = params.with_values({"measurement.survey_size": np.int64(30),
                                "measurement.indicator_noise": np.float32(0.25)})
        assert p.get("measurement.survey_size") == 30 and type(p.get("measurement.survey_size")) is int
        assert p.get("measurement.indicator_noise") == pytest.approx(0.25)
        # The document (values with their provenance) carries the new value too.
        assert p.document["measurement"]["survey_size"]["value"] == 30

    def test_all_problems_reported_and_nothing_changed(self, params):
        before = copy.deepcopy(params.values)
        change = {"measurement.survey_size": 40, "measurement.no_such": 1, "scale.n_branches": -3}
        with pytest.raises(bs.BranchsimError) as info:
            params.with_values(change)
        # One message names every bad path; the good change is not applied anywhere.
        assert "measurement.no_such" in str(info.value) and "scale.n_branches" in str(info.value)
        assert "measurement.survey_size" not in str(info.value)
        assert params.values == before
        assert change == {"measurement.survey_size": 40, "measurement.no_such": 1, "scale.n_branches": -3}
        # A valid change gives a copy; the original is untouched.
        new = params.with_values({"measurement.survey_size": 40})
        assert new.get("measurement.survey_size") == 40 and params.values == before

    def test_loading_a_file_checks_its_values(self, tmp_path):
        text = GeneratorParams.load().document
        doc = copy.deepcopy(text)
        doc["measurement"]["indicator_noise"]["value"] = -0.5
        bad = tmp_path / "generator.yaml"
        bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        with pytest.raises(bs.BranchsimError, match=r"generator\.yaml.*measurement\.indicator_noise"):
            GeneratorParams.load(bad)

    def test_whole_valued_float_counts_are_refused_up_front(self, params):
        # n_branches = 300.0 is refused by with_values itself (not later by generate()).
        with pytest.raises(bs.BranchsimError, match=r"scale\.n_branches: got 300\.0.*whole number"):
            params.with_values({"scale.n_branches": 300.0})
        assert len(bs.generate(seed=1, members=False, params=params.with_values({"scale.n_branches": 300}))
                   .branches) == 300

    def test_survey_size_zero_is_refused(self, params):
        with pytest.raises(bs.BranchsimError, match="measurement.survey_size"):
            params.with_values({"measurement.survey_size": 0})


# -- plausibility of the default city ----------------------------------------------------------------
class TestCity:
    def test_members_match_branch_sizes(self, city):
        b, m = city.branches, city.members
        assert len(b) == 1500
        assert b["n_members"].sum() == len(m)
        assert m["branch_id"].isin(b["branch_id"]).all()
        per_branch = m["branch_id"].value_counts().reindex(b["branch_id"], fill_value=0)
        assert (per_branch.to_numpy() == b["n_members"].to_numpy()).all()
        assert b["branch_id"].is_unique and m["member_id"].is_unique

    def test_city_size_is_the_published_order(self, city):
        # ~21 members per branch: about 32,000 members for 1,500 branches (the quiz figure).
        assert 0.9 * 21.33 < city.branches["n_members"].mean() < 1.1 * 21.33
        assert (city.branches["n_members"] >= 3).all()     # the minimum for a branch

    def test_twelve_months_per_member(self, city):
        mm, m = city.member_months, city.members
        assert isinstance(mm["member_id"].dtype, pd.CategoricalDtype)
        assert len(mm) == 12 * len(m)
        counts = mm["member_id"].value_counts()
        assert (counts == 12).all() and set(counts.index) == set(m["member_id"])
        months = mm.groupby("member_id", observed=True)["month"].agg(lambda s: tuple(sorted(s)))
        assert (months == tuple(range(1, 13))).all()

    def test_types_and_categories(self, city):
        assert set(city.branches["type"]) == set(TYPES)
        assert set(city.members["category"]) == CATEGORIES
        assert set(city.branches["level"]) <= set(bs.Policy.load().scheme.structure.ids)
        # Village members are mostly farmers, government members mostly in service.
        cat = city.members.merge(city.branches[["branch_id", "type"]], on="branch_id")
        top = cat.groupby("type")["category"].agg(lambda s: s.value_counts().index[0])
        assert top["village"] == "farmer" and top["government"] == "in_service"

    def test_tables_pass_the_data_dictionary(self, city, policy):
        # The loader's checks (types, ranges, ids, references) raise nothing.
        loaded = bs.load_population(branches=city.branches, members=city.members,
                                    member_months=city.member_months, policy=policy)
        assert len(loaded.branches) == 1500 and len(loaded.member_months) == len(city.member_months)

    def test_facts_have_their_rule_form(self, city, policy):
        for table, inds in ((city.branches, policy.branch_indicators),
                            (city.member_months, policy.member_indicators)):
            for ind in inds.values():
                v = table[ind["fact"]].to_numpy(float)
                assert (v >= 0).all(), ind["fact"]
                if ind["rule"] == "binary":
                    assert set(np.unique(v)) <= {0.0, 1.0}, ind["fact"]
                elif ind["rule"] == "proportion":
                    assert (v <= 1).all(), ind["fact"]
                else:                                   # counts are whole numbers
                    assert (v == np.round(v)).all(), ind["fact"]
        assert city.members["appraisal"].between(0, 100).all()
        assert city.members["true_quality"].between(0, 1).all()

    def test_survey_sizes(self, city):
        # Every branch, small or large, gets exactly survey_size answers (members and residents).
        size = city.params.get("measurement.survey_size")
        assert size == int(size) and 20 <= size <= 30        # SPEC: samples of 20-30
        total = _survey_total(city)
        assert (total == size).all()
        assert all(city.branches[c].dtype.kind == "i" for c in SURVEY)
        # The answers are drawn: branches differ in their mix, and better branches are happier.
        assert city.branches["survey_satisfied"].nunique() > 5
        rate = city.branches["survey_satisfied"] / total
        assert np.corrcoef(rate, city.branches["true_quality"])[0, 1] > 0.3

    @pytest.mark.parametrize("size", [1, 3, 40])
    def test_survey_size_override(self, size):
        pop = bs.generate(seed=0, n_branches=300, members=False, params={"measurement.survey_size": size})
        assert (_survey_total(pop) == size).all()
        assert pop.params.get("measurement.survey_size") == size


# -- truth versus measurement -----------------------------------------------------------------------
class TestTruth:
    def test_truth_columns(self, city, city_result, policy):
        b = city_result.branches
        for col in ("score", "true_score", "true_rating", "true_weak", "true_quality"):
            assert col in b, col
        assert city.has_truth
        s = policy.scheme
        inp = branch_inputs(city.branches, s)
        out = truth(city, policy).outcome_arrays(s, inp)
        # The true level: the cut of the true score, capped by the vetoes the true state triggers;
        # truly weak: below the weak line, or a true veto that designates weak.
        design = rating.cut_levels(b["true_score"].to_numpy(), s.branch.rating.cuts[inp.type_idx])
        assert (out["design"] == design).all()
        capped = rating.apply_vetoes(design, out["vetoes"], s.branch.vetoes)
        assert (b["true_rating"].to_numpy() == s.branch.levels.id_of(capped)).all()
        weak_vetoes = [c.veto for d in s.branch.designations for c in d.criteria if c.kind == "veto"]
        veto_weak = out["vetoes"][:, weak_vetoes].any(axis=1)
        assert (b["true_weak"] == ((b["true_score"] < policy[WEAK_BELOW]) | veto_weak)).all()
        assert veto_weak.any()                                       # the vetoes do act on the truth
        assert b["true_score"].between(0, 100).all()
        np.testing.assert_array_equal(out["components"], true_components(city, policy))

    def test_truth_outcome_is_what_evaluate_reports(self, city, city_result, policy):
        s = policy.scheme
        tr = truth(city, policy)
        assert isinstance(tr, Truth)
        n = len(city.branches)
        assert tr.components.shape == (n, len(policy.dimensions) + 1)
        out = tr.outcome(s, branch_inputs(city.branches, s))
        assert set(out) == {"true_score", "true_rating", "true_weak"}
        for k, v in out.items():
            np.testing.assert_array_equal(v, city_result.branches[k].to_numpy(), err_msg=k)
        # No truth for tables without it.
        assert truth(bs.load_population(bs.data_path("examples"), policy=policy), policy) is None
        assert true_components(bs.load_population(bs.data_path("examples"), policy=policy), policy) is None

    def test_score_tracks_true_score(self, city_result):
        b = city_result.branches
        assert np.corrcoef(b["score"], b["true_score"])[0, 1] > 0.7
        # ...and the truth itself: higher latent quality, higher true score.
        assert np.corrcoef(b["true_quality"], b["true_score"])[0, 1] > 0.9

    def test_accuracy_and_confusion_agree(self, city_result):
        acc = city_result.accuracy()
        conf = city_result.confusion()
        assert conf.to_numpy().sum() == 1500
        diag = sum(conf.loc[k, k] for k in conf.index if k in conf.columns)
        assert acc == pytest.approx(diag / 1500)
        assert 0.5 < acc < 1

    def test_without_noise_accuracy_rises(self, city_result):
        noisy = city_result.accuracy()
        clean = bs.evaluate(bs.generate(seed=0, members=False, params=NOISE_OFF)).accuracy()
        assert clean > noisy + 0.08, (clean, noisy)


@pytest.fixture(scope="module")
def pop() -> "bs.Population":
    """600 branches with vacancies and violations common enough to study."""
    return bs.generate(seed=3, n_branches=600, members=False, params=VACANCIES)


class TestState:
    """A vacant secretary post or a major violation is part of what a branch truly is."""

    def test_state_facts_are_recorded_as_drawn(self, pop):
        b = pop.branches
        for fact in STATE_FACTS:
            assert set(np.unique(b[fact])) == {0.0, 1.0}, fact
        # A vacancy or a violation is likelier the weaker the branch.
        q = b["true_quality"]
        for fact in STATE_FACTS:
            assert q[b[fact] == 0].mean() < q[b[fact] == 1].mean() - 0.02, fact
        weak_half = q < q.median()
        assert (b.loc[weak_half, STATE_FACTS] == 0).to_numpy().sum() \
            > 2 * (b.loc[~weak_half, STATE_FACTS] == 0).to_numpy().sum()

    def test_vacancy_means_no_star_and_truly_weak(self, pop, policy):
        r = bs.evaluate(pop, policy).branches
        vacant = (pop.branches["secretary_in_post"] == 0).to_numpy()
        assert vacant.sum() >= 5
        assert (r.loc[vacant, "true_rating"] == "no_star").all() and r.loc[vacant, "true_weak"].all()
        # Recorded without error, the measured record agrees: the veto fires there too.
        assert (r.loc[vacant, "rating"] == "no_star").all() and r.loc[vacant, "weak"].all()
        # Whatever the true score says: vacant branches above the weak line are truly weak too.
        assert (r.loc[vacant, "true_score"] >= policy[WEAK_BELOW]).any()

    def test_one_branch_with_its_post_vacated(self, policy):
        # The same branch, only its secretary post vacated: truth moves to no star and weak.
        pop = bs.generate(seed=8, n_branches=60, members=False)
        before = bs.evaluate(pop, policy).branches
        i = int(np.argmax(before["true_score"].to_numpy()))
        assert before.loc[i, "true_rating"] != "no_star" and not before.loc[i, "true_weak"]
        b = pop.branches.copy()
        b.loc[i, "secretary_in_post"] = 0.0
        after = bs.evaluate(bs.Population(b, seed=pop.seed, params=pop.params), policy).branches
        assert after.loc[i, "true_rating"] == "no_star" and after.loc[i, "true_weak"]
        assert after.loc[i, "true_score"] < before.loc[i, "true_score"]      # its points are lost
        others = np.arange(len(b)) != i
        for col in ("true_score", "true_rating", "true_weak"):
            np.testing.assert_array_equal(after.loc[others, col], before.loc[others, col], err_msg=col)

    def test_measurement_draws_do_not_change_the_state(self, pop):
        noisier = bs.generate(seed=3, n_branches=600, members=False,
                              params={**VACANCIES, "measurement.indicator_noise": 0.2})
        a, b = pop.branches, noisier.branches
        pd.testing.assert_frame_equal(a[["true_quality", *STATE_FACTS]], b[["true_quality", *STATE_FACTS]])
        other = [ind["fact"] for ind in bs.Policy.load().branch_indicators.values()
                 if ind["fact"] not in STATE_FACTS]
        changed = (a[other] != b[other]).any(axis=0)
        assert changed.mean() > 0.8, changed[~changed]
        assert (a[other] != b[other]).to_numpy().mean() > 0.1

    def test_state_does_not_depend_on_members_or_chunks(self, pop):
        again = bs.generate(seed=3, n_branches=600, chunk_size=256, workers=2, params=VACANCIES)
        pd.testing.assert_frame_equal(again.branches[list(STATE_FACTS)], pop.branches[list(STATE_FACTS)])

    def test_no_truth_for_tables_without_it(self, policy):
        r = bs.evaluate(bs.load_population(bs.data_path("examples"), policy=policy))
        assert np.isnan(r.accuracy())
        assert r.confusion().empty
        assert "true_score" not in r.branches

    def test_appraisal_has_the_impression_halo(self, city):
        # 打印象分: the year-end appraisal is the member's true score pulled towards the standing
        # of its branch (the mean true score of its members) by impression_halo, plus affinity
        # and noise. Centred: no shift of level, and the pull's slope is the halo parameter.
        from branchsim.measurement import _indicator_offsets, member_true_scores
        def errors(pop):
            ms = bs.Policy.load().scheme.member
            t = pd.Categorical(pop.branches.set_index("branch_id").loc[pop.members["branch_id"], "type"],
                               categories=ms.types).codes          # the profile: the type (no classes)
            off = _indicator_offsets(pop.seed, ms.sheet, pop.params, 1)
            true = member_true_scores(pop.members["true_quality"].to_numpy(), t, ms, off)
            standing = pd.Series(true).groupby(pop.members["branch_id"].to_numpy()).transform("mean").to_numpy()
            inside = pop.members["appraisal"].between(0, 100, inclusive="neither").to_numpy()
            return (pop.members["appraisal"].to_numpy() - true)[inside], (standing - true)[inside]
        error, pull = errors(city)
        assert abs(error.mean()) < 0.5
        halo = city.params.get("member_measurement.impression_halo")
        assert np.polyfit(pull, error, 1)[0] == pytest.approx(halo, abs=0.1)   # clipping at 100 biases a little
        off = bs.generate(seed=0, params={"member_measurement.impression_halo": 0.0})
        e0, p0 = errors(off)
        assert abs(np.polyfit(p0, e0, 1)[0]) < 0.1


# -- display --------------------------------------------------------------------------------------
class TestDisplay:
    def test_result_summary_and_html(self, city_result):
        text = city_result.summary()
        assert "published" in text and "five_star" in text and "1500 branches" in text
        assert str(city_result) == text
        page = city_result._repr_html_()
        assert page.count("<table") >= 2 and "five_star" in page and "published" in page

    def test_population_repr(self, city):
        text = repr(city)
        assert "branches" in text and "1,500" in text
        assert "members" in text and f"{len(city.members):,}" in text
        assert "truth" in text
        page = city._repr_html_()
        assert "<table" in page and "1,500" in page and "members" in page

    def test_branch_only_population_repr(self):
        pop = bs.generate(seed=1, n_branches=40, members=False)
        assert "40" in repr(pop) and "members" not in repr(pop)
        assert "<table" in pop._repr_html_()


@pytest.mark.parametrize("before", [0, 1, 2, 7])        # an odd count leaves half a 64-bit word buffered
@pytest.mark.parametrize("shape", [0, 1, 2, 5, (3, 12, 9), (50, 12, 1024)])
def test_fast_float32_uniforms_are_numpys_bit_for_bit(before, shape):
    from branchsim.streams import uniforms_f32
    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    for g in (ours, numpys):
        g.standard_normal(before, dtype=np.float32)      # a ziggurat leaves the buffer in any state
        g.random(before, dtype=np.float32)
    got, want = uniforms_f32(ours, shape), numpys.random(shape, dtype=np.float32)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    # ... and the stream goes on exactly as NumPy's would, in 32-bit and in 64-bit draws
    assert np.array_equal(ours.random(3, dtype=np.float32), numpys.random(3, dtype=np.float32))
    assert np.array_equal(ours.random(3), numpys.random(3))


def test_fast_float32_uniforms_fall_back_for_other_bit_generators():
    from branchsim.streams import uniforms_f32
    a, b = np.random.Generator(np.random.MT19937(4)), np.random.Generator(np.random.MT19937(4))
    assert np.array_equal(uniforms_f32(a, 9), b.random(9, dtype=np.float32))


@pytest.mark.parametrize("name", ["baseline", "star_quota", "member_points"])
def test_truth_by_column_equals_the_select_form(name, monkeypatch):
    """truth_arrays evaluates each column's own rule form when the sheet has one per column; the
    numbers are those of the general np.select form, bit for bit."""
    from branchsim.scheme import Sheet
    p = bs.Policy.load(bs.data_path("policies", f"{name}.yaml"))
    pop = bs.generate(p, seed=7, n_branches=400, members=False)
    fast = truth(pop, p)
    if not p.scheme.branch.sheet.uniform:
        pytest.skip(f"{name}: rule forms differ by type, so the general form is the one used")
    monkeypatch.setattr(Sheet, "uniform", property(lambda self: False))
    general = truth(pop, p)
    assert np.array_equal(fast.points, general.points) and np.array_equal(fast.components, general.components)
    assert all(np.array_equal(fast.facts[k], general.facts[k]) for k in general.facts)
