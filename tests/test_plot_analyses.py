"""Plots of the analyses without one before (branchsim.plot.analyses): each drawn from a small run of its
analysis, checked against the analysis' own numbers (or numbers worked out here), plus one bad input each."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import beta  # noqa: E402

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402
from branchsim.sensitivity.factors import default_factors  # noqa: E402
import shipped  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error:Glyph .* missing from font:UserWarning")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def base():
    p = shipped.load("baseline")
    return p, bs.generate(p, seed=0, n_branches=300, members=False)


def drawn(obj, tmp_path):
    """Save the figure (a missing glyph is an error) and return it."""
    fig = obj if isinstance(obj, matplotlib.figure.Figure) else obj.figure
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5000
    return fig


def by_gid(patches, prefix):
    return {p.get_gid()[len(prefix):]: p for p in patches if str(p.get_gid()).startswith(prefix)}


def test_no_scheme_names_in_the_module():
    shipped.assert_no_scheme_names(["analyses"], "plot")


# -- morris --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def morris_frame(base):
    p, pop = base
    return bs.morris(pop, p, default_factors(p, noise=False), trajectories=4, outputs=("weak", "changed"),
                     progress=False)


def test_morris_two_bars_per_factor_at_mu_star_and_sigma(morris_frame, tmp_path):
    m = morris_frame[morris_frame.output == "weak"]
    ax = bp.morris(morris_frame, output="weak")
    drawn(ax, tmp_path)
    mu, sd = by_gid(ax.patches, "mu_star:"), by_gid(ax.patches, "sigma:")
    assert set(mu) == set(sd) == set(m.factor) and len(ax.patches) == 2 * len(m)
    for r in m.itertuples():
        assert mu[r.factor].get_width() == pytest.approx(r.mu_star)
        assert sd[r.factor].get_width() == pytest.approx(r.sigma)
    # largest mu_star on top; equal ones by name
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    expected = sorted(m.itertuples(), key=lambda r: (-round(r.mu_star, 9), r.factor))
    assert ticks == [r.factor for r in expected]
    assert "interval" in ax.get_xlabel()
    # whiskers: one error segment per factor, as long as the interval
    segs = [s for c in ax.collections for s in c.get_segments()]
    assert sorted(round(abs(s[1][0] - s[0][0]), 9) for s in segs) == \
        sorted(round(2 * v, 9) for v in m.mu_star_conf)


def test_morris_several_outputs_one_panel_each(morris_frame, tmp_path):
    fig = bp.morris(morris_frame)
    drawn(fig, tmp_path)
    assert len(fig.axes) == 2
    assert all(len(a.patches) == 2 * morris_frame.factor.nunique() for a in fig.axes)


def test_morris_bad_input_names_the_missing_column(morris_frame):
    with pytest.raises(bs.BranchsimError, match="sigma"):
        bp.morris(morris_frame.drop(columns="sigma"))
    with pytest.raises(bs.BranchsimError, match="nope"):
        bp.morris(morris_frame, output="nope")


# -- PRIM ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def discovery(base):
    p, pop = base
    return bs.discover(pop, p, "weak / n > 0.03", n=300, progress=False)


def test_prim_boxes_one_box_per_restricted_factor_at_its_place(discovery, tmp_path):
    box = discovery.box
    ax = bp.prim_boxes(discovery)
    drawn(ax, tmp_path)
    boxes, full = by_gid(ax.patches, "box:"), by_gid(ax.patches, "full:")
    restricted = box[box.restricted]
    assert len(restricted) > 0 and set(boxes) == set(full) == set(restricted.factor)
    for r in restricted.itertuples():
        span = r.full_high - r.full_low
        assert boxes[r.factor].get_x() == pytest.approx((r.low - r.full_low) / span)
        assert boxes[r.factor].get_width() == pytest.approx((r.high - r.low) / span)
    title = ax.get_title(loc="left")
    assert f"density {discovery.density:.0%}" in title and f"coverage {discovery.coverage:.0%}" in title
    assert len(by_gid(bp.prim_boxes(discovery, all_factors=True).patches, "box:")) == len(box)


def test_prim_boxes_bad_input(discovery):
    with pytest.raises(bs.BranchsimError, match="full_high"):
        bp.prim_boxes(discovery.box.drop(columns="full_high"))
    with pytest.raises(bs.BranchsimError, match="DataFrame"):
        bp.prim_boxes([1, 2])


# -- fragility curve -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", shipped.POLICIES)
def test_fragility_curve_a_line_per_boundary(name, tmp_path):
    p = shipped.load(name)
    pop = bs.generate(p, seed=2, n_branches=200, members=False)
    fc = bs.fragility_curve(pop, p, shares=[0.2, 0.35, 0.5])
    ax = bp.fragility_curve(fc, policy=p)
    drawn(ax, tmp_path)
    within = [c for c in fc.columns if c.startswith("within_")]
    assert len(ax.lines) == 1 + len(within) == 1 + len(p.levels) - 1 + \
        sum(c.startswith("within_") and "." in c for c in fc.columns)
    lines = {ln.get_gid(): ln for ln in ax.lines}
    assert lines["fragile"].get_ydata().tolist() == fc.fragile.tolist()
    for c in within:
        assert lines[c].get_ydata().tolist() == fc[c].tolist()
    assert ax.get_xlabel() == bp.label("satisfaction_share", p)
    shares = bp.fragility_curve(fc, y="share_fragile", policy=p)
    assert len(shares.lines) == 1 and np.allclose(shares.lines[0].get_ydata(), fc.share_fragile)


def test_fragility_curve_by_group_one_line_each(base, tmp_path):
    p, pop = base
    fc = bs.fragility_curve(pop, p, shares=[0.3, 0.5], by="type")
    ax = bp.fragility_curve(fc, policy=p)
    drawn(ax, tmp_path)
    assert len(ax.lines) == fc["type"].nunique()
    assert sum(ln.get_ydata().sum() for ln in ax.lines) == fc.fragile.sum()


def test_fragility_curve_bad_input(base):
    p, pop = base
    fc = bs.fragility_curve(pop, p, shares=[0.3, 0.5])
    with pytest.raises(bs.BranchsimError, match="share_fragile"):
        bp.fragility_curve(fc.drop(columns="share_fragile"))
    with pytest.raises(bs.BranchsimError, match="y="):
        bp.fragility_curve(fc, y="n")


# -- cut-point fit -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(base):
    p, pop = base
    designation = p.scheme.branch.designations[0].id
    fit = bs.fit_cut_points(pop, p, {**dict(zip(p.levels[:-1], [5, 20, 60])), designation: 10})
    return p, pop, fit


def test_cut_point_fit_ranges_over_the_score_histogram(fitted, tmp_path):
    p, pop, fit = fitted
    result = bs.evaluate(pop, p)
    ax = bp.cut_point_fit(fit, scores=result, policy=p)
    drawn(ax, tmp_path)
    ranges = by_gid(ax.patches, "range:")
    cuts = {ln.get_gid()[4:]: ln.get_xdata()[0] for ln in ax.lines if str(ln.get_gid()).startswith("cut:")}
    assert set(ranges) == set(cuts) == set(fit.level) and len(fit) == len(p.levels)      # 3 cuts + the line
    assert [cuts[lv] for lv in fit.level] == fit.cut.tolist()
    for r in fit.itertuples():
        span = ranges[r.level]
        assert span.get_x() == pytest.approx(r.low) and span.get_x() + span.get_width() == pytest.approx(r.high)
        assert r.low < r.cut <= r.high
    hist = [q for q in ax.patches if q.get_gid() == "scores"]
    assert sum(q.get_height() for q in hist) == len(pop.branches)
    assert ax.get_xlabel() == bp.label("score", p) and ax.get_ylabel() == bp.label("branches", p)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith(bp.label(fit.level[0], p)) and "5 branches" in legend[0]


def test_cut_point_fit_ranges_alone_without_scores(fitted, tmp_path):
    p, pop, fit = fitted
    ax = bp.cut_point_fit(fit, policy=p)
    drawn(ax, tmp_path)
    ranges = by_gid(ax.patches, "range:")
    assert list(ranges) == list(fit.level)
    for r in fit.itertuples():
        assert ranges[r.level].get_x() == pytest.approx(r.low)
        assert ranges[r.level].get_x() + ranges[r.level].get_width() == pytest.approx(r.high)
    assert [t.get_text() for t in ax.get_yticklabels()] == [bp.label(lv, p, wrap=True) for lv in fit.level]


@pytest.mark.parametrize("name", [n for n in shipped.POLICIES if shipped.load(n).scheme.branch.rating.design == "cuts"])
def test_cut_point_fit_every_cuts_scheme(name, tmp_path):
    p = shipped.load(name)
    pop = bs.generate(p, seed=3, n_branches=300, members=False)
    targets = {lv: 30 * (i + 1) for i, lv in enumerate(p.levels[:-1])}
    lines = {d.id: 8 for d in p.scheme.branch.designations if any(c.kind == "score_below" for c in d.criteria)}
    fit = bs.fit_cut_points(pop, p, {**targets, **lines})
    ax = bp.cut_point_fit(fit, bs.evaluate(pop, p).branches["score"], policy=p)
    drawn(ax, tmp_path)
    assert list(by_gid(ax.patches, "range:")) == list(fit.level) == [*targets, *lines]
    cuts = [ln.get_xdata()[0] for ln in ax.lines if str(ln.get_gid()).startswith("cut:")]
    assert cuts == fit.cut.tolist()
    assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == [bp.label(lv, p) for lv in fit.level]


def test_cut_point_fit_bad_input(fitted):
    p, pop, fit = fitted
    with pytest.raises(bs.BranchsimError, match="'high'"):
        bp.cut_point_fit(fit.drop(columns="high"))
    with pytest.raises(bs.BranchsimError, match="scores"):
        bp.cut_point_fit(fit, scores=[1.0, np.nan])


# -- member schemes ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[n for n in shipped.POLICIES if shipped.load(n).grades])
def schemes(request):
    p = shipped.load(request.param)
    pop = bs.generate(p, seed=1, n_branches=30)
    return p, bs.compare_member_schemes(pop, p, shares=(0.8, 0.0, 0.5))


def test_member_schemes_one_bar_per_scheme_at_its_value(schemes, tmp_path):
    p, cmp = schemes
    fig = bp.member_schemes(cmp, policy=p)
    drawn(fig, tmp_path)
    assert len(fig.axes) == 4
    for a, q in zip(fig.axes[:3], ("bias", "spearman", "misclassified")):
        bars = by_gid(a.patches, f"{q}:")
        assert list(bars) == [f"{s:g}" for s in cmp.index]
        assert [b.get_height() for b in bars.values()] == pytest.approx(cmp[q].tolist())
    grades = list(p.grades)
    per_grade = fig.axes[3].patches
    assert len(per_grade) == len(grades) * len(cmp)
    shown = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert shown == [bp.label(g, p, kind="grade") for g in grades]
    assert f"{int(cmp.members.iloc[0]):,} graded member-years" in fig._suptitle.get_text()


def test_member_schemes_across_cities_whiskers_from_the_intervals(tmp_path):
    rows = []
    for s, (m, lo, hi) in {0.8: (0.15, 0.1, 0.2), 0.0: (0.4, 0.3, 0.55)}.items():
        for q, k in (("bias", 1.0), ("spearman", 2.0), ("misclassified", 1.0)):
            rows.append({"record_share": s, "quantity": q, "mean": m * k, "sd": 0.0, "lower": lo * k,
                         "upper": hi * k, "n_cities": 3})
    fig = bp.member_schemes(pd.DataFrame(rows))
    drawn(fig, tmp_path)
    assert len(fig.axes) == 3
    segs = [s for c in fig.axes[2].collections for s in c.get_segments()]
    assert sorted((round(s[0][1], 9), round(s[1][1], 9)) for s in segs) == [(0.1, 0.2), (0.3, 0.55)]


def test_member_schemes_bad_input(schemes):
    p, cmp = schemes
    with pytest.raises(bs.BranchsimError, match="spearman"):
        bp.member_schemes(cmp.drop(columns="spearman"))


# -- rule accuracy -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def accuracy():
    p = shipped.load("baseline")
    pop = bs.generate(p, seed=1, n_branches=200, members=False)
    return p, bs.rule_accuracy(pop, p, years=3, seeds=range(2))


def cp(k, n, conf=0.95):
    a = (1 - conf) / 2
    return (0.0 if k == 0 else beta.ppf(a, k, n - k + 1)), (1.0 if k == n else beta.ppf(1 - a, k + 1, n - k))


def test_rule_accuracy_per_year_rates_and_intervals_from_the_counts(accuracy, tmp_path):
    p, acc = accuracy
    ax = bp.rule_accuracy(acc, policy=p)
    drawn(ax, tmp_path)
    d = p.scheme.branch.designations[0].id
    lines = {ln.get_gid()[5:]: ln for ln in ax.lines if str(ln.get_gid()).startswith("rate:")}
    rates = [c for c in acc.columns if c.startswith(("miss_rate_", "false_rate_", "false_alarm_rate_"))]
    assert set(lines) == set(rates)
    once = acc[(acc.year != 0) | (acc.seed == acc.seed.iloc[0])]       # year 0 is the same under every seed
    per_year = once.groupby("year")[[f"false_{d}", f"designated_{d}"]].sum()
    k, n = per_year[f"false_{d}"].to_numpy(), per_year[f"designated_{d}"].to_numpy()
    line = lines[f"false_rate_{d}"]
    assert np.round(line.get_xdata()).tolist() == per_year.index.tolist()
    expected = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    np.testing.assert_allclose(line.get_ydata(), expected)
    segs = [c for c in ax.containers if c.lines[0] is line][0].lines[2][0].get_segments()
    for (x, lo), (_, hi), kk, nn in zip(*zip(*[(s[0], s[1]) for s in segs]), k, n):
        assert (lo, hi) == pytest.approx(cp(kk, nn))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.endswith(f"({k.sum()}/{n.sum()})") for t in legend)
    assert ax.get_xlabel() == bp.label("year", p)


def test_rule_accuracy_pooled_a_bar_per_rate_with_its_events(accuracy, tmp_path):
    p, acc = accuracy
    pooled = bs.dynamics.pool_accuracy(acc[(acc.year != 0) | (acc.seed == 0)])
    ax = bp.rule_accuracy(pooled, policy=p)
    drawn(ax, tmp_path)
    bars = by_gid(ax.patches, "rate:")
    rates = [r for r in pooled.index if r.startswith(("miss_rate_", "false_rate_", "false_alarm_rate_"))
             and not r.endswith(("_low", "_high", "_n"))]
    assert list(bars) == rates
    for r in rates:
        assert bars[r].get_width() == pytest.approx(np.nan_to_num(pooled[r]))
    d = p.scheme.branch.designations[0].id
    assert f"{int(pooled[f'false_{d}'])}/{int(pooled[f'designated_{d}'])}" in [t.get_text() for t in ax.texts]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert f"{bp.label(d, p)}: misses" in labels


def test_rule_accuracy_bad_input(accuracy):
    p, acc = accuracy
    with pytest.raises(bs.BranchsimError, match="'year'"):
        bp.rule_accuracy(acc.drop(columns="year"))
    with pytest.raises(bs.BranchsimError, match="nope"):
        bp.rule_accuracy(acc, rates="nope")
    with pytest.raises(bs.BranchsimError, match="missing"):
        bp.rule_accuracy(acc.drop(columns=[c for c in acc.columns if c.startswith("truly_")]))
    across = pd.DataFrame({"seed": 0, "year": [0, 1], "quantity": "fired_x", "mean": 1.0, "lower": 0.0,
                           "upper": 2.0})
    with pytest.raises(bs.BranchsimError, match="cities"):
        bp.rule_accuracy(across)
