"""Plots: every function draws what the numbers say, for every shipped scheme, with the scheme's names.

Rendering uses the Agg backend. A missing glyph (a "tofu" box) is an error
here, in both label modes: English always, the source's terms where a CJK
font exists. Plots are checked on hand-made tidy frames of each scheme
(levels and designations from the policy) and on evaluations of it.
"""
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402
from branchsim._result import at_published_scale, targets  # noqa: E402
from branchsim.plot.style import FLOOR_COLOUR  # noqa: E402
import shipped  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error:Glyph .* missing from font:UserWarning")

CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
SHARE = "branch.satisfaction_share"


@pytest.fixture(scope="module", params=shipped.SCHEMES)
def scheme(request):
    """A shipped scheme and a small evaluation of it."""
    p = shipped.load(request.param)
    r = bs.evaluate(bs.generate(p, seed=0, n_branches=160, members=False), p)
    return p, r


@pytest.fixture(params=["english", "chinese"])
def mode(request):
    """Both label modes; the source's terms only where an installed font draws them."""
    if request.param == "chinese" and bp.cjk_font() is None:
        pytest.skip("no CJK font installed: the source's terms cannot be drawn here")
    bp.use_cjk = request.param == "chinese"
    yield request.param
    bp.use_cjk = "auto"


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def new_ax():
    return plt.subplots(layout="constrained")[1]


def render(obj, tmp_path, mode=None):
    """Draw and save ``obj``'s figure (glyph warnings are errors); return every text shown."""
    fig = obj if isinstance(obj, matplotlib.figure.Figure) else obj.figure
    out = tmp_path / "figure.png"
    fig.savefig(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    if mode == "english":
        assert not [t for t in texts if CJK.search(t)], "English mode drew Chinese text"
    elif mode == "chinese":
        assert any(CJK.search(t) for t in texts), "Chinese mode drew no Chinese term"
    return texts


def levels_and_designations(p):
    return list(p.levels), [d.id for d in p.scheme.branch.designations]


# -- names and colours come from the scheme ----------------------------------------------------
def test_no_scheme_names_in_the_figure_vocabulary():
    for name in shipped.SCHEMES:
        p = shipped.load(name)
        levels, designations = levels_and_designations(p)
        assert not set(bp.labels.TERMS) & set(levels + designations + p.branch_types), name


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_labels_are_the_scheme_s_english_in_english_mode(name):
    p = shipped.load(name)
    lv = p.scheme.branch.levels
    bp.use_cjk = False
    try:
        assert [bp.label(i, p) for i in lv.ids] == list(lv.en)
        for d in p.scheme.branch.designations:
            assert bp.label(d.id, p) == d.en
        assert bp.label("my_column", p) == "my_column"
    finally:
        bp.use_cjk = "auto"


def test_source_terms_with_english_when_the_fonts_draw_them(monkeypatch):
    # The composition of a label in Chinese mode, whatever fonts this machine has.
    p = shipped.load("star_quota")
    lv = p.scheme.branch.levels
    monkeypatch.setattr(bp.labels, "cjk_enabled", lambda: True)
    monkeypatch.setattr(bp.labels, "fonts_draw", lambda families=None, text=None: True)
    assert bp.label(lv.ids[-1], p) == f"{lv.labels[-1]} ({lv.en[-1]})"
    assert bp.label(lv.ids[0], p, wrap=True) == f"{lv.labels[0]}\n({lv.en[0]})"
    # A glyph the fonts lack: English, never tofu.
    monkeypatch.setattr(bp.labels, "fonts_draw", lambda families=None, text=None: text is None)
    assert bp.label(lv.ids[0], p) == lv.en[0]


def test_a_type_named_like_a_dimension_keeps_its_own_label():
    p = shipped.load("baseline")
    clash = sorted(set(p.branch_types) & set(p.dimensions))
    assert clash, "the baseline has a type and a dimension of the same id"
    bp.use_cjk = False
    try:
        t = p._data["branch"]["types"][clash[0]]["label"]
        assert bp.label(clash[0], p, kind="type") in t
        assert bp.label(clash[0], p, kind="type") != bp.label(clash[0], p, kind="dimension")
    finally:
        bp.use_cjk = "auto"


@pytest.mark.parametrize("n", [2, 3, 4, 6, 9])
def test_level_colours_distinct_best_darkest_floor_grey(n):
    colours = bp.level_colours(n)
    assert len(colours) == n and len(set(colours)) == n
    assert colours[-1] == FLOOR_COLOUR
    lum = [sum(matplotlib.colors.to_rgb(c)) for c in colours[:-1]]
    assert lum == sorted(lum)                       # darker the better the level


def test_use_cjk_refuses_other_values():
    bp.use_cjk = "yes"
    try:
        with pytest.raises(bs.BranchsimError, match="allowed: 'auto', True or False"):
            bp.label("score")
    finally:
        bp.use_cjk = "auto"


def test_auto_mode_follows_the_fonts_that_will_draw_the_label():
    bp.use_cjk = "auto"                             # (the autouse fixture restores English afterwards)
    p = shipped.load("baseline")
    en = p.scheme.branch.levels.en[0]
    with matplotlib.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        assert not bp.cjk_enabled() and bp.label(p.levels[0], p) == en
    with bp.style():
        assert bp.cjk_enabled() == (bp.cjk_font() is not None)


def test_drawing_families_resolve_generic_names_to_one_font():
    rc = {"font.family": ["serif", "Noto Sans CJK TC"], "font.serif": ["No Such Serif", "DejaVu Serif", "Times"]}
    assert bp.labels.drawing_families(rc) == ("DejaVu Serif", "Noto Sans CJK TC")
    assert not bp.labels.fonts_draw(["DejaVu Sans"])
    assert bp.labels.fonts_draw(["DejaVu Sans"], "five-star")


def test_the_glyph_check_catches_tofu(tmp_path):
    fig, ax = plt.subplots()
    ax.set_title("五星級", fontfamily="DejaVu Sans")
    with pytest.raises(UserWarning, match="missing from font"):
        fig.savefig(tmp_path / "tofu.png")


def test_style_is_local_to_each_call(scheme):
    before = dict(matplotlib.rcParams)
    bp.level_counts(scheme[1])
    assert {k for k in before if before[k] != dict(matplotlib.rcParams)[k]} == set()


# -- level counts ---------------------------------------------------------------------------------
def test_level_counts_one_bar_per_level_and_designation(scheme, mode, tmp_path):
    p, r = scheme
    levels, designations = levels_and_designations(p)
    ax = new_ax()
    assert bp.level_counts(r, ax=ax) is ax
    bars = {b.get_gid(): b for b in ax.patches}
    assert list(bars) == levels + designations               # 160 branches: no published bars
    counts = r.level_counts()["count"]
    assert [bars[k].get_height() for k in counts.index] == counts.tolist()
    colours = [matplotlib.colors.to_hex(bars[k].get_facecolor()) for k in levels]
    assert len(set(colours)) == len(levels) and colours == bp.level_colours(len(levels))
    assert all(matplotlib.colors.to_hex(bars[d].get_facecolor()) not in colours for d in designations)
    assert [t.get_text() for t in ax.get_xticklabels()] == [bp.label(k, p, wrap=True) for k in counts.index]
    render(ax, tmp_path, mode)


def test_star_counts_is_an_alias():
    assert bp.star_counts is bp.level_counts


@pytest.mark.parametrize("name", ["baseline", "star_quota"])
def test_published_counts_only_at_the_published_scale(name, tmp_path):
    p = shipped.load(name)
    t = targets(p)
    at_scale = int(t["scale"])
    assert at_published_scale(at_scale, p) and not at_published_scale(at_scale // 2, p)
    frame = pd.DataFrame({"count": 1, "published": pd.Series(t["counts"])}).reindex(
        list(p.levels) + [d.id for d in p.scheme.branch.designations])
    frame["count"] = at_scale // (2 * len(p.levels))        # half the published scale
    off = bp.level_counts(frame, policy=p)
    assert not [b for b in off.patches if str(b.get_gid()).startswith("published_")]
    frame["count"] = 0
    frame.loc[p.levels[-1], "count"] = at_scale               # the published scale
    on = bp.level_counts(frame, policy=p)
    shown = {b.get_gid()[10:]: b.get_height() for b in on.patches if str(b.get_gid()).startswith("published_")}
    assert shown == {k: v for k, v in t["counts"].items() if k in frame.index}
    render(on, tmp_path)


def test_published_bars_of_a_result_at_scale(tmp_path):
    p = shipped.load("star_quota")
    r = bs.evaluate(bs.generate(p, seed=0, n_branches=int(targets(p)["scale"]), members=False), p)
    ax = bp.level_counts(r)
    pub = [b for b in ax.patches if str(b.get_gid()).startswith("published_")]
    assert [b.get_height() for b in pub] == [targets(p)["counts"][lv] for lv in p.levels if lv in targets(p)["counts"]]
    render(ax, tmp_path)


# -- score histogram -----------------------------------------------------------------------------
def cut_lines(ax):
    return sorted((str(line.get_gid()), float(line.get_xdata()[0])) for line in ax.lines if line.get_gid())


def test_score_histogram_marks_the_design_s_cut_points(scheme, mode, tmp_path):
    p, r = scheme
    ax = new_ax()
    assert bp.score_histogram(r, ax=ax) is ax
    lines = cut_lines(ax)
    cuts = r.cut_points.drop_duplicates(["level", "cut"])
    assert sorted((g, v) for g, v in lines if g.startswith("cut_")) == sorted(
        (f"cut_{lv}", float(c)) for lv, c in zip(cuts["level"], cuts["cut"]))
    score_lines = [(d.id, c) for d in p.scheme.branch.designations for c in d.criteria if c.kind == "score_below"]
    assert sorted((g, v) for g, v in lines if not g.startswith("cut_")) == sorted(
        (f"{d}_{c.id}", c.value) for d, c in score_lines)
    rest, fragile = ax.containers
    assert sum(b.get_height() for b in rest) + sum(b.get_height() for b in fragile) == len(r.branches)
    # Highlighted: within ±1 of a cut of the branch's own group (type or peer group) or of a score line.
    rating = p.scheme.branch.rating
    col = "type" if rating.design == "cuts" else rating.peer_groups
    b = r.branches
    own = b[col].astype(str) if col else pd.Series("all", index=b.index)
    near = np.zeros(len(b), dtype=bool)
    for g, grp in r.cut_points.groupby("group"):
        rows = (own == g).to_numpy()
        near[rows] |= (np.abs(b["score"].to_numpy()[rows, None] - grp["cut"].to_numpy()[None, :]) <= 1).any(axis=1)
    for _, c in score_lines:
        near |= np.abs(b["score"].to_numpy() - c.value) <= 1
    assert sum(bar.get_height() for bar in fragile) == near.sum()
    render(ax, tmp_path, mode)


def test_score_histogram_of_a_plain_frame_realises_relative_cuts():
    p = shipped.load("star_quota")
    frame = pd.DataFrame({"score": [95.0, 80, 70, 60, 50], "rating": list(p.levels) + [p.levels[-1]]})
    lines = dict(cut_lines(bp.score_histogram(frame, policy=p)))
    assert lines[f"cut_{p.levels[0]}"] == 95.0 and lines[f"cut_{p.levels[2]}"] == 70.0


# -- level probabilities -------------------------------------------------------------------------
def probabilities(p, n=6, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(len(p.levels)), size=n)
    df = pd.DataFrame(P, columns=[f"p_{lv}" for lv in p.levels])
    df.insert(0, "branch_id", [f"B{i}" for i in range(n)])
    df["true_rating"] = [p.levels[i % len(p.levels)] for i in range(n)]
    df["p_true"] = [P[i, i % len(p.levels)] for i in range(n)]
    for d in p.scheme.branch.designations:
        df[f"p_{d.id}"] = 0.5                        # a designation column is not a level
    return df


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_level_probabilities_one_segment_per_level(name, tmp_path):
    p = shipped.load(name)
    df = probabilities(p)
    ax = bp.level_probabilities(df, n=4, policy=p)
    assert len(ax.patches) == 4 * len(p.levels)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == df.sort_values("p_true", kind="stable")["branch_id"].head(4).tolist()
    assert len(ax.collections[0].get_offsets()) == 4        # one true-level mark per branch
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(bp.label(lv, p) for lv in p.levels) <= set(legend)
    assert bp.star_probabilities is bp.level_probabilities
    with pytest.raises(bs.DataError, match="order"):
        bp.level_probabilities(df, policy=p, order="largest")
    render(ax, tmp_path)


# -- sweeps, grids, transitions, flows ------------------------------------------------------------
def sweep_frame(p, by=None):
    """A tidy sweep frame as the sweep returns it: parameter, n, levels best first, designations, changed, ..."""
    levels, designations = levels_and_designations(p)
    rows = []
    for g in ([None] if by is None else p.branch_types[:3]):
        for k, v in enumerate([0.3, 0.4, 0.5]):
            row = {SHARE: v, "n": 100}
            row.update({lv: 10 * (i + 1) + k for i, lv in enumerate(levels)})
            row.update({d: 3 + k for d in designations})
            row.update(changed=5 * k, mean_abs_change=0.1 * k, accuracy=0.7 + 0.01 * k)
            rows.append(row if g is None else {"type": g, **row})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_sweep_lines_every_level_but_the_floor_and_the_designations(name, tmp_path):
    p = shipped.load(name)
    levels, designations = levels_and_designations(p)
    df = sweep_frame(p)
    ax = bp.sweep_lines(df, policy=p)
    want = levels[:-1] + designations
    assert [line.get_label() for line in ax.lines] == [bp.label(y, p) for y in want]
    assert list(ax.lines[0].get_ydata()) == df[levels[0]].tolist()
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in ax.lines]
    assert len(set(colours)) == len(want)
    # Without a policy: the count columns between n and changed.
    assert len(bp.sweep_lines(df).lines) == len(levels) + len(designations)
    render(ax, tmp_path)


def test_sweep_lines_by_type_small_multiples(tmp_path):
    p = shipped.load("star_quota")
    df = sweep_frame(p, by="type")
    fig = bp.sweep_lines(df, by="type", policy=p)
    panels = [a for a in fig.axes if a.get_title(loc="left") or a.get_title()]
    assert len(panels) == 3 and fig.legends
    with pytest.raises(bs.DataError, match="no column"):
        bp.sweep_lines(df, y=["nonexistent"], policy=p)
    render(fig, tmp_path)


def test_heatmap_annotates_every_cell(tmp_path):
    df = pd.DataFrame({"a": [1, 1, 2, 2], "b": [10, 20, 10, 20], "count": [3, 5, 4, 8]})
    ax = bp.heatmap(df, "a", "b", "count")
    assert [t.get_text() for t in ax.texts] == ["3", "4", "5", "8"]
    with pytest.raises(bs.DataError, match="repeat"):
        bp.heatmap(pd.concat([df, df]), "a", "b", "count")
    render(ax, tmp_path)


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_transitions_in_the_scheme_s_levels(name, tmp_path):
    p = shipped.load(name)
    levels = list(p.levels)
    T = np.arange(len(levels) ** 2).reshape(len(levels), -1) + 1
    tab = pd.DataFrame(T, index=levels[::-1], columns=levels[::-1])      # any order in, best first out
    ax = bp.transitions(tab, policy=p)
    assert [t.get_text() for t in ax.get_yticklabels()] == [bp.label(lv, p, wrap=True) for lv in levels]
    assert len(ax.texts) == T.size
    diagonal = [q for q in ax.patches if q.get_gid() == "diagonal"]
    assert len(diagonal) == len(levels)
    assert ax.get_title(loc="left") == f"{T.sum() - np.trace(T):,} of {T.sum():,} branches change level"
    render(ax, tmp_path)


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_level_flows_bars_flows_and_designations(name, tmp_path):
    p = shipped.load(name)
    levels, designations = levels_and_designations(p)
    rng = np.random.default_rng(1)
    rows = [(y, f"b{i}", levels[rng.integers(len(levels))], bool(rng.integers(2))) for i in range(12)
            for y in range(3)]
    h = pd.DataFrame(rows, columns=["year", "branch_id", "rating", "flag"])
    for d in designations:
        h[d] = h["flag"]
    ax = bp.level_flows(h.drop(columns="flag"), policy=p)
    present = [lv for lv in levels if lv in set(h["rating"])]
    series = [c for c in ax.containers]
    assert [c.get_label() for c in series] == [bp.label(lv, p) for lv in present[::-1]]   # floor at the bottom
    tops = np.sum([[b.get_height() for b in c] for c in series], axis=0)
    assert tops.tolist() == [12.0] * 3
    assert [line.get_gid() for line in ax.lines] == designations
    assert [p_.get_gid() for p_ in ax.patches].count("flow") > 0
    assert bp.star_flows is bp.level_flows
    with pytest.raises(bs.DataError, match="count table"):
        bp.level_flows(pd.DataFrame({"x": [1]}), policy=p)
    render(ax, tmp_path)


def test_sobol_and_nominal_bars(tmp_path):
    p = shipped.load("member_points")
    s = pd.DataFrame({"output": p.levels[0], "factor": ["a", "b"], "S1": [0.7, 0.1], "S1_conf": [0.05, 0.02],
                      "ST": [0.8, 0.2], "ST_conf": [0.06, 0.03]})
    ax = bp.sobol_indices(s, policy=p)
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    bp.use_cjk = False
    try:
        assert ax.get_title(loc="left") == f"Sobol' indices: {bp.label(p.levels[0], p)}"
    finally:
        bp.use_cjk = "auto"
    e = pd.DataFrame({"component": ["sheet", "satisfaction"], "nominal_share": [0.8, 0.2],
                      "linear_share": [0.3, 0.7], "main_effect_score": [0.2, 0.8]})
    ax2 = bp.nominal_vs_effective(e, policy=p)
    assert len(ax2.patches) == 6
    render(ax, tmp_path)


def test_no_figure_warns_in_english_mode(scheme, tmp_path):
    bp.use_cjk = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            render(bp.level_counts(scheme[1]), tmp_path, "english")
            render(bp.score_histogram(scheme[1]), tmp_path, "english")
    finally:
        bp.use_cjk = "auto"


def test_the_font_pip_installs_draws_the_chinese_labels():
    # a machine with nothing but pip: the dependency's Noto Sans CJK font is registered with matplotlib
    # directly (no font cache), chosen, and a figure labelled in Chinese draws without missing glyphs
    if not bp.labels.pip_fonts():
        pytest.skip("the CJK font package (branchsim.plot.labels.PIP_FONT_PACKAGES) is not installed here")
    assert bp.cjk_font() is not None
    bp.use_cjk = True
    p = shipped.load("baseline")
    with bp.style():
        text = bp.label(p.levels[0], p)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
        fig, ax = plt.subplots()
        ax.set_title(text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # "Glyph ... missing from font(s)" would raise
            fig.canvas.draw()
        plt.close(fig)


def test_score_histogram_with_a_level_no_unit_of_a_group_reaches():
    """k-means within types on 12 branches: each type has one or two branches, so its upper cuts are +inf
    (no branch reaches those levels); the figure draws the finite cuts and skips the others (it raised
    OverflowError, and so did `branchsim report --apply` of that reform on the example tables)."""
    p = bs.Policy.load().update(bs.data_path("reforms", "baseline_kmeans_by_type.yaml"))
    r = bs.evaluate(bs.load_population(bs.data_path("examples"), policy=p), p)
    assert np.isinf(r.cut_points["cut"]).any()
    ax = bp.score_histogram(r)
    drawn = [l.get_xdata()[0] for l in ax.lines]
    assert drawn and np.isfinite(drawn).all()
    finite = r.cut_points.loc[np.isfinite(r.cut_points["cut"]), "cut"]
    assert all(np.isclose(drawn, c).any() for c in finite)        # every cut a branch reaches is drawn
    plt.close(ax.figure)
