"""Rating designs compared (branchsim.audit.designs): monotonicity worked by hand, accuracy and kappa against an
independent computation, every shipped scheme, the plot, the command line and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.audit.designs import _improved, compare_designs, monotonicity
from branchsim.cli import main

import tiny

SHIPPED = ("baseline", "star_quota", "member_points")


def _shipped(name):
    return bs.Policy.load(bs.data_path("policies", f"{name}.yaml"))


# -- monotonicity -------------------------------------------------------------------------------------
# The tiny policy's score is 100 × (0.5 frac_a + 0.3 frac_b + 0.2 survey), frac_a = (4 held + 2 events) / 10,
# frac_b = 1 (no lapses; extra at its cap), survey = yes / 20: score = 50 + 10 events + 20 survey.
#   A 52 (events 0, yes 2), B 73 (1, 13), C 82 (2, 12), D 84 (2, 14), E 88 (2, 18).
# k-means, 3 levels, starts from the medians of the quantile groups [52, 73], [82, 84], [88]: 62.5, 83, 88.
#   73 is nearer 83 (10 < 10.5): {52} {73, 82, 84} {88} -> centres 52, 79.67, 88;
#   84 is nearer 88 (4 < 4.33): {52} {73, 82} {84, 88} -> 52, 77.5, 86;
#   82 is nearer 86 (4 < 4.5):  {52} {73} {82, 84, 88} -> 52, 73, 84.67; stable. C (82) is top.
# C alone improved by 1% of each fact's range: events 2 -> 2.3 (range 0-30: +0.6 points, frac_a +0.06),
#   extra 2 -> 2.2 (dimension b already full): C scores 85. Quantile groups [52, 73], [84, 85], [88]:
#   62.5, 84.5, 88; 73 is nearer 62.5 (10.5 < 11.5): {52, 73} {84, 85} {88} -> 62.5, 84.5, 88; stable.
#   C (85) is mid: it improved on every indicator and dropped a level (D, not improved, drops too).
ROWS = [("A", "t1", {"events": 0}, (2, 0, 18)), ("B", "t1", {"events": 1}, (13, 0, 7)),
        ("C", "t1", {"events": 2, "extra": 2}, (12, 0, 8)), ("D", "t1", {"events": 2}, (14, 0, 6)),
        ("E", "t1", {"events": 2}, (18, 0, 2))]


def _tiny_pop(policy, rows=ROWS):
    return bs.load_population(branches=tiny.branches(*rows), policy=policy)


def test_kmeans_drops_a_branch_that_improved_on_every_indicator():
    p = tiny.policy().update({"branch.rating.design": "kmeans"})
    pop = _tiny_pop(p)
    before = tiny.evaluate(p, *ROWS)
    assert before["score"].round(9).tolist() == [52, 73, 82, 84, 88]
    assert before["rating"].tolist() == ["low", "mid", "top", "top", "top"]
    v = monotonicity(pop, p, step=0.01, units=["C"])
    assert len(v) == 1
    assert v.iloc[0][["branch_id", "score", "improved_score", "rating", "improved_rating"]].tolist() == \
        ["C", 82.0, pytest.approx(85.0), "top", "mid"]


def test_fixed_cuts_cannot_violate():
    p = tiny.policy()                                  # cuts 80 / 60
    assert len(monotonicity(_tiny_pop(p), p, step=0.01, units=["C"])) == 0
    assert len(monotonicity(_tiny_pop(p), p, step=0.2)) == 0
    pop = bs.generate(seed=4, n_branches=150, members=False)
    assert len(monotonicity(pop, bs.Policy.load(), step=0.05)) == 0


def test_improvement_moves_each_fact_the_way_that_earns_points_within_its_range():
    p = tiny.policy()
    b = tiny.branches(("X", "t1", {"events": 2, "lapses": 3, "held": 0}, (1, 0, 0)),
                      ("Y", "t1", {"events": 30, "lapses": 0}, (1, 0, 0)),
                      ("Z", "t1", {"events": 1, "lapses": 3}, (1, 0, 0)))
    out = _improved(b, p, 0.1, np.array([True, True, False]))
    # ranges: events 0-30 (+3), lapses 0-50 (per_occurrence: down 5, not below 0), held 0-1 (+0.1)
    assert out["events"].tolist() == [5, 30, 1]
    assert out["lapses"].tolist() == [0, 0, 3]
    assert out["held"].tolist() == [0.1, 1, 1]
    assert b["events"].tolist() == [2, 30, 1]          # the input is not modified


# -- accuracy against an independent computation ------------------------------------------------------
def _kappa_by_hand(true, measured):
    ids = sorted(set(true) | set(measured))
    n = len(true)
    po = sum(t == m for t, m in zip(true, measured)) / n
    pe = sum((list(true).count(i) / n) * (list(measured).count(i) / n) for i in ids)
    return (po - pe) / (1 - pe)


def test_accuracy_kappa_confusion_and_types_match_an_independent_computation():
    pop = bs.generate(seed=2, n_branches=160, members=False)
    p = bs.Policy.load()
    k = bs.data_path("reforms", "baseline_kmeans_by_type.yaml")
    c = compare_designs(pop, {"cuts": p, "kmeans": k}, noise_draws=3, survey_sizes=[10], seed=5)
    assert c.table["design"].tolist() == ["cuts", "kmeans"]
    for name, policy in (("cuts", p), ("kmeans", p.update(k))):
        r = bs.evaluate(pop, policy).branches
        true, meas = r["true_rating"].tolist(), r["rating"].tolist()
        row = c.table.set_index("design").loc[name]
        assert row["accuracy"] == pytest.approx(np.mean([t == m for t, m in zip(true, meas)]))
        assert row["kappa"] == pytest.approx(_kappa_by_hand(true, meas))
        conf = c.confusion[c.confusion["design"] == name]
        for (t, m), n in pd.Series(list(zip(true, meas))).value_counts().items():
            assert conf[(conf["true"] == t) & (conf["measured"] == m)]["branches"].item() == n
        assert conf["branches"].sum() == len(r)
        by = c.by_type[c.by_type["design"] == name].set_index("type")
        for t in ("village", "government"):
            sub = r[r["type"] == t]
            levels = set(sub["rating"]) | set(sub["true_rating"])
            tvd = 0.5 * sum(abs((sub["rating"] == lv).mean() - (sub["true_rating"] == lv).mean()) for lv in levels)
            assert by.loc[t, "tvd"] == pytest.approx(tvd)
        assert row["type_tvd_max"] == pytest.approx(by["tvd"].max())


def test_year_to_year_changes_are_those_of_the_simulated_years():
    pop = bs.generate(seed=3, n_branches=120, members=False)
    p = bs.Policy.load()
    c = compare_designs(pop, {"cuts": p}, noise_draws=2, survey_sizes=[10], seed=9)
    years_seed = np.random.SeedSequence(9).spawn(2)[0]
    h = bs.simulate(pop, p, years=2, seed=years_seed, members=False).branches
    y0, y1 = h[h["year"] == 0].set_index("branch_id"), h[h["year"] == 1].set_index("branch_id")
    same = y0["true_rating"] == y1.loc[y0.index, "true_rating"]
    moved = (y0["rating"] != y1.loc[y0.index, "rating"]) & same
    row = c.table.iloc[0]
    assert row["year_units"] == same.sum()
    assert row["year_changed"] == pytest.approx(moved.sum() / same.sum())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scheme_runs(name):
    p = _shipped(name)
    pop = bs.generate(p, seed=1, n_branches=80, members=False)
    kmeans = {"branch.rating.design": "kmeans"}
    kmeans.update({f"branch.types.{t}.rating": None for t in p.branch_types      # per-type cuts: cuts designs only
                   if "rating" in (p[f"branch.types.{t}"] or {})})
    c = compare_designs(pop, {"own": p, "kmeans": kmeans}, policy=p,
                        noise_draws=3, survey_sizes=[10], seed=1)
    t = c.table
    assert t["rating"].tolist()[1] == "kmeans"
    assert t[["accuracy", "noise_flip", "type_tvd_max"]].apply(lambda s: s.between(0, 1)).all().all()
    assert (c.confusion.groupby("design")["branches"].sum() == 80).all()
    assert set(c.confusion["true"]) <= set(p.levels)


def test_noise_columns_agree_with_the_monte_carlo():
    pop = bs.generate(seed=5, n_branches=100, members=False)
    p = bs.Policy.load()
    c = compare_designs(pop, {"cuts": p}, noise_draws=6, survey_sizes=[10, 50], seed=2)
    mc = bs.measurement_mc(pop, p, draws=6, seed=np.random.SeedSequence(2).spawn(2)[1], survey_sizes=[10, 50],
                           progress=False)
    P = mc.level_probabilities[[f"p_{lv}" for lv in p.levels]].to_numpy()
    row = c.table.iloc[0]
    assert row["noise_changed"] == pytest.approx(np.mean([max(r) < 1 for r in P]))
    mis = mc.misclassification.set_index("survey_size")["misclassified"]
    assert [row["misclassified_10"], row["misclassified_25"], row["misclassified_50"]] == \
        pytest.approx([mis[10], mis[25], mis[50]])


def test_across_plausible_cities_every_number_has_an_interval():
    p = bs.Policy.load()
    cities = bs.plausible_cities(p, {"weak": 5}, n=2, scale=150, seeds=range(2), refine=1, tol=2)
    out = compare_designs(cities, {"cuts": p}, noise_draws=2, survey_sizes=[10])
    acc = out[(out["design"] == "cuts") & (out["quantity"] == "accuracy")]
    assert len(acc) == 1 and acc["n_cities"].item() == 2
    assert (out["lower"] <= out["upper"]).all()
    import matplotlib
    matplotlib.use("Agg")
    import branchsim.plot as bp
    fig = bp.design_comparison(out)                  # the bars carry their interval across cities
    assert fig.axes[0].get_title(loc="left").startswith("Accuracy") and len(fig.axes[0].collections) == 1
    matplotlib.pyplot.close(fig)


# -- plot, command line, bad input ----------------------------------------------------------------------
def test_the_plot_draws(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import branchsim.plot as bp
    pop = bs.generate(seed=0, n_branches=60, members=False)
    c = compare_designs(pop, {"cuts": bs.Policy.load(), "kmeans": {"branch.rating.design": "kmeans"}},
                        noise_draws=2, survey_sizes=[10])
    fig = bp.design_comparison(c)
    fig.savefig(tmp_path / "designs.png")
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 7
    assert len(visible[0].patches) == 2
    matplotlib.pyplot.close(fig)
    with pytest.raises(bs.DataError, match="nonexistent"):
        bp.design_comparison(c.table, panels=["nonexistent"])


def test_cli_writes_one_row_per_design(tmp_path, capsys):
    out = tmp_path / "designs.csv"
    code = main(["compare-designs", "--design", f"own={bs.data_path('policies', 'baseline.yaml')}",
                 "--design", f"k={bs.data_path('reforms', 'baseline_kmeans_by_type.yaml')}",
                 "--branches", "60", "--draws", "2", "--out", str(out)])
    assert code == 0
    t = pd.read_csv(out)
    assert t["design"].tolist() == ["own", "k"] and t["branches"].tolist() == [60, 60]
    assert "written to" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--design", "own"], ["NAME=FILE"]),
    (["--design", "a=nofile.yaml"], ["nofile.yaml", "no such file"]),
    (["--design", "a=X", "--design", "a=X"], ["twice"]),
    (["--design", "a=X", "--draws", "1"], ["--draws"]),
    (["--design", "a=X"], ["design 'a'", "mapping"]),                    # not a policy or reform file
    (["--design", "a=REFORM"], ["design 'a'", "bad_reform.yaml", "nonsense", "allowed"]),
    (["--design", "a=REFORM", "--out", "TMP"], ["--out", "is a folder", "designs.csv"]),
])
def test_cli_bad_input_is_one_error_line(argv, words, tmp_path, capsys):
    policy = tmp_path / "X"
    policy.write_text("x", encoding="utf-8")
    reform = tmp_path / "bad_reform.yaml"
    reform.write_text("schema: branchsim-reform/1\nchanges:\n  branch.rating.design: nonsense\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    argv = [a.replace("=X", f"={policy}").replace("=REFORM", f"={reform}").replace("TMP", str(tmp_path / "folder"))
            for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["compare-designs", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("branchsim: error:")
    assert all(w in err[0] for w in words), err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before            # nothing written


def test_bad_arguments_are_clear_errors():
    pop = bs.generate(seed=0, n_branches=30, members=False)
    p = bs.Policy.load()
    with pytest.raises(bs.BranchsimError, match="non-empty mapping"):
        compare_designs(pop, [p])
    with pytest.raises(bs.BranchsimError, match="design 'x'.*no_such_path"):
        compare_designs(pop, {"x": {"branch.no_such_path": 1}})
    with pytest.raises(bs.DataError, match="survey_sizes"):
        compare_designs(pop, {"cuts": p}, survey_sizes=[10, 0])
    assert compare_designs(pop, {"cuts": p}, noise_draws=2, survey_sizes=10).survey["survey_size"].tolist() == [10, 25]
    with pytest.raises(bs.DataError, match="noise_draws"):
        compare_designs(pop, {"cuts": p}, noise_draws=1)
    with pytest.raises(bs.DataError, match="no truth"):
        compare_designs(bs.load_population(bs.data_path("examples")), {"cuts": p})
    with pytest.raises(bs.BranchsimError, match="design 'other'"):     # a scheme whose facts the city lacks
        compare_designs(pop, {"other": _shipped("star_quota")}, noise_draws=2)
    with pytest.raises(bs.DataError, match="units"):
        monotonicity(pop, p, units=["NOPE"])
