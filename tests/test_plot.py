"""Plots: every function renders on generated data and draws what the numbers say.

Rendering uses the Agg backend. A missing glyph (a "tofu" box) is an error
here, in both label modes: English always, Chinese where a CJK font exists.
"""
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import branchsim as bs  # noqa: E402
import branchsim.plot as bp  # noqa: E402
from branchsim.sensitivity import default_factors  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error:Glyph .* missing from font:UserWarning")

CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
SHARES = [0.2, 0.3, 0.4, 0.5, 0.6]
Y = ["five_star", "four_star", "three_star", "weak"]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pop():
    return bs.generate(seed=0, n_branches=300, members=False)


@pytest.fixture(scope="module")
def result(pop, policy):
    return bs.evaluate(pop, policy)


@pytest.fixture(scope="module")
def sweep_by_type(pop, policy):
    return bs.sweep(pop, policy, {"branch.satisfaction_share": SHARES}, by="type", progress=False)


@pytest.fixture(scope="module")
def grid(pop, policy):
    return bs.sweep(pop, policy, {"branch.satisfaction_share": [0.3, 0.4, 0.5],
                                  "branch.star_cuts.5": [86, 88, 90, 92]}, progress=False)


@pytest.fixture(scope="module")
def mc(pop, policy):
    return bs.measurement_mc(pop, policy, draws=10, seed=1, progress=False)


@pytest.fixture(scope="module")
def sobol(pop, policy):
    return bs.sobol(pop, policy, default_factors(policy, noise=False), n=16, outputs=("five_star", "weak"),
                    progress=False)


@pytest.fixture(scope="module")
def years():
    """Four years of six branches, one row per branch-year (what a History's ``branches`` holds)."""
    stars = {"a": [5, 5, 4, 4], "b": [4, 5, 5, 3], "c": [3, 3, 0, 0], "d": [3, 4, 4, 4], "e": [0, 0, 3, 3],
             "f": [0, 0, 0, 0]}
    rows = [(y, b, s[y], s[y] == 0 and b == "f") for b, s in stars.items() for y in range(4)]
    return pd.DataFrame(rows, columns=["year", "branch_id", "stars", "weak"])


@pytest.fixture(params=["english", "chinese"])
def mode(request):
    """Both label modes; Chinese only where an installed font draws every term."""
    if request.param == "chinese" and bp.cjk_font() is None:
        pytest.skip("no CJK font installed: Chinese labels cannot be checked here")
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


def title(ax):
    return ax.get_title(loc="left") or ax.get_title()


def bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def has_labels(ax):
    assert title(ax)
    assert ax.get_xlabel() and ax.get_ylabel()


# -- labels and fonts ---------------------------------------------------------------------------
def test_label_english_mode_names_terms_without_chinese():
    bp.use_cjk = False
    try:
        assert bp.label("five_star") == "five-star"
        assert bp.label("weak") == "weak (ruanruo huansan)"
        assert bp.label("weak", wrap=True) == "weak\n(ruanruo huansan)"
        assert bp.label("gap_4") == "gap_4"             # a user's own name comes back unchanged
        assert not bp.cjk_enabled()
    finally:
        bp.use_cjk = "auto"


def test_label_chinese_mode_or_clear_error_without_a_font():
    bp.use_cjk = True
    try:
        if bp.cjk_font() is None:
            with pytest.raises(bs.BranchsimError, match="no installed font"):
                bp.label("five_star")
        else:
            assert bp.label("five_star") == "五星級 (five-star)"
    finally:
        bp.use_cjk = "auto"


def test_auto_mode_follows_the_fonts_that_will_draw_the_label():
    assert bp.use_cjk == "auto"
    # Plain rcParams (DejaVu Sans first, no CJK family): English, whatever is installed.
    with matplotlib.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        assert not bp.cjk_enabled() and bp.label("five_star") == "five-star"
    # The package's own style: Chinese exactly when a CJK font is installed.
    with bp.style():
        assert bp.cjk_enabled() == (bp.cjk_font() is not None)
        assert bp.label("five_star") == ("五星級 (five-star)" if bp.cjk_font() else "five-star")
    if bp.cjk_font():
        # A user's own font list naming the CJK font (as a fallback) gets Chinese too.
        with matplotlib.rc_context({"font.family": ["DejaVu Sans", bp.cjk_font()]}):
            assert bp.label("weak") == "軟弱渙散 (weak)"


def test_drawing_families_resolve_generic_names_to_one_font():
    # Matplotlib draws a generic family with its first installed font only: no per-glyph fallback.
    rc = {"font.family": ["serif", "Noto Sans CJK TC"], "font.serif": ["No Such Serif", "DejaVu Serif", "Times"]}
    assert bp.labels.drawing_families(rc) == ("DejaVu Serif", "Noto Sans CJK TC")
    if bp.cjk_font():
        rc = {"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", bp.cjk_font()]}
        assert bp.labels.drawing_families(rc) == ("DejaVu Sans",) and not bp.labels.fonts_draw(["DejaVu Sans"])
    assert not bp.labels.fonts_draw(["DejaVu Sans"])
    assert not bp.labels.fonts_draw(["No Such Font Family"])


def test_use_cjk_refuses_other_values():
    bp.use_cjk = "yes"
    try:
        with pytest.raises(bs.BranchsimError, match="allowed: 'auto', True or False"):
            bp.label("five_star")
    finally:
        bp.use_cjk = "auto"


def own_figure(tmp_path, styled: bool):
    """A figure of a user's own (a boxplot, as notebook 1 draws) with the package's labels as ticks."""
    cols = ["five_star", "four_star", "three_star", "weak"]
    ctx = bp.style() if styled else matplotlib.rc_context()
    with ctx, warnings.catch_warnings():
        warnings.simplefilter("error")              # "Glyph ... missing from font(s)" is a UserWarning
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.boxplot([[1, 2, 3]] * len(cols), tick_labels=[bp.label(c) for c in cols])
        ax.set_title(bp.label("stars"))
        fig.savefig(tmp_path / "own.png")
    return [t.get_text() for t in ax.get_xticklabels()]


def test_own_figures_never_draw_tofu(tmp_path):
    # With plain rcParams the labels are English; inside bp.style() they follow the installed fonts.
    assert own_figure(tmp_path, styled=False) == ["five-star", "four-star", "three-star", "weak (ruanruo huansan)"]
    shown = own_figure(tmp_path, styled=True)
    assert bool(CJK.search(" ".join(shown))) == (bp.cjk_font() is not None)


@pytest.fixture
def no_cjk_font(monkeypatch):
    """Hide every font that draws the Chinese terms from matplotlib (as on a machine without one)."""
    from matplotlib import font_manager
    from branchsim.plot import labels
    needed = labels._needed_glyphs()
    kept = [e for e in font_manager.fontManager.ttflist if not needed & labels._charmap(e.fname)]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", kept)
    labels._forget_fonts()
    yield
    monkeypatch.undo()
    labels._forget_fonts()


def test_without_a_cjk_font_everything_is_english(no_cjk_font, result, tmp_path):
    assert bp.cjk_font() is None
    assert bp.font_families() == ["DejaVu Sans"]
    with bp.style():
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans"]
        assert bp.label("five_star") == "five-star"
    assert own_figure(tmp_path, styled=True) == ["five-star", "four-star", "three-star", "weak (ruanruo huansan)"]
    texts = render(bp.star_counts(result), tmp_path, "english")
    assert "five-star" in " ".join(texts)
    bp.use_cjk = True
    try:
        with pytest.raises(bs.BranchsimError, match="no installed font"):
            bp.label("five_star")
    finally:
        bp.use_cjk = "auto"


def test_with_a_cjk_font_figures_are_chinese_and_drawn(result, tmp_path):
    if bp.cjk_font() is None:
        pytest.skip("no CJK font installed (the state without one is tested by hiding the fonts)")
    assert bp.font_families() == ["DejaVu Sans", bp.cjk_font()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        texts = render(bp.star_counts(result), tmp_path, "chinese")         # auto mode, no use_cjk set
    assert "五星級\n(five-star)" in texts


def test_the_glyph_check_catches_tofu(tmp_path):
    # The guard every other test relies on: Chinese text in a Latin-only font is an error here.
    fig, ax = plt.subplots()
    ax.set_title("五星級", fontfamily="DejaVu Sans")
    with pytest.raises(UserWarning, match="missing from font"):
        fig.savefig(tmp_path / "tofu.png")


def test_style_is_local_to_each_call(result):
    before = dict(matplotlib.rcParams)
    bp.star_counts(result)
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


# -- star_counts --------------------------------------------------------------------------------
def test_star_counts_bars_beside_scaled_published(result, mode, tmp_path):
    ax = new_ax()
    assert bp.star_counts(result, ax=ax) is ax
    counts = result.star_counts()
    published = counts["published"].dropna()
    assert len(ax.patches) == len(counts) + len(published)
    model, pub = ax.containers
    assert [b.get_height() for b in model] == counts["count"].tolist()
    # 300 of the city's 1,500 branches: the published 41 / 173 / 422 / 19 become a fifth.
    assert np.allclose([b.get_height() for b in pub], published.to_numpy(float) * 300 / 1500)
    assert [t.get_text() for t in ax.get_xticklabels()] == [bp.label(k, wrap=True) for k in counts.index]
    has_labels(ax)
    render(ax, tmp_path, mode)


def test_star_counts_frame_at_city_scale_keeps_published_counts(tmp_path):
    frame = pd.DataFrame({"count": [40, 170, 430, 860, 20], "published": [41, 173, 422, None, 19]},
                         index=["five_star", "four_star", "three_star", "no_star", "weak"])
    ax = bp.star_counts(frame)
    assert [b.get_height() for b in ax.containers[1]] == [41, 173, 422, 19]
    assert len(ax.patches) == 9
    render(ax, tmp_path)


# -- sweep_lines ---------------------------------------------------------------------------------
def test_sweep_lines_one_line_per_series(pop, policy, mode, tmp_path):
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": SHARES}, progress=False)
    ax = new_ax()
    assert bp.sweep_lines(df, y=Y, ax=ax) is ax
    assert len(ax.lines) == len(Y)
    assert [line.get_label() for line in ax.lines] == [bp.label(y) for y in Y]
    five = ax.lines[0]
    assert list(five.get_xdata()) == SHARES and list(five.get_ydata()) == df["five_star"].tolist()
    assert len(ax.collections) == 0                     # no band asked, none in the frame
    has_labels(ax)
    render(ax, tmp_path, mode)


def test_sweep_lines_by_type_small_multiples(sweep_by_type, mode, tmp_path):
    types = sorted(sweep_by_type["type"].unique())
    fig = bp.sweep_lines(sweep_by_type, y=Y, by="type")
    assert isinstance(fig, matplotlib.figure.Figure)
    panels = [a for a in fig.axes if title(a)]
    assert [title(a) for a in panels] == [f"type = {t}" for t in types]
    assert all(len(a.lines) == len(Y) for a in panels)
    assert fig.legends and len(fig.legends[0].get_texts()) == len(Y)
    render(fig, tmp_path, mode)


def test_sweep_lines_by_type_on_one_axes(sweep_by_type, tmp_path):
    ax = new_ax()
    assert bp.sweep_lines(sweep_by_type, y=["five_star", "weak"], by="type", ax=ax) is ax
    assert len(ax.lines) == 2 * sweep_by_type["type"].nunique()
    assert len({line.get_linestyle() for line in ax.lines}) > 1      # groups told apart by style
    render(ax, tmp_path)


def test_sweep_lines_bands_from_a_frame_or_columns(pop, policy, tmp_path):
    df = bs.sweep(pop, policy, {"branch.satisfaction_share": SHARES}, progress=False)
    band = df[["branch.satisfaction_share"]].assign(five_star_lo=df["five_star"] - 2,
                                                    five_star_hi=df["five_star"] + 2,
                                                    weak_lower=df["weak"] - 1, weak_upper=df["weak"] + 1)
    ax = bp.sweep_lines(df, y=["five_star", "weak"], band=band)
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    edge = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert (edge.min(), edge.max()) == (df["five_star"].min() - 2, df["five_star"].max() + 2)
    own = df.assign(weak_lo=df["weak"] - 1, weak_hi=df["weak"] + 1)
    assert len(bp.sweep_lines(own, y=["five_star", "weak"]).collections) == 1
    assert len(bp.sweep_lines(own, y=["five_star", "weak"], band=False).collections) == 0
    with pytest.raises(bs.DataError, match="lower/upper"):
        bp.sweep_lines(df, y=["five_star"], band=df[["branch.satisfaction_share"]])
    render(ax, tmp_path)


def test_sweep_lines_refuses_a_grid_with_other_parameters(grid):
    with pytest.raises(bs.DataError, match="repeats"):
        bp.sweep_lines(grid)
    with pytest.raises(bs.DataError, match="no column"):
        bp.sweep_lines(grid, y=["nonexistent"])


# -- heatmap -------------------------------------------------------------------------------------
def test_heatmap_annotates_every_cell_with_a_colourbar(grid, mode, tmp_path):
    ax = new_ax()
    assert bp.heatmap(grid, "branch.satisfaction_share", "branch.star_cuts.5", "five_star", ax=ax) is ax
    assert len(ax.texts) == len(grid) == 12
    assert ax.images[0].colorbar is not None and len(ax.figure.axes) == 2
    # Cell (row = cut, column = share) holds that grid point's count.
    pivot = grid.pivot(index="branch.star_cuts.5", columns="branch.satisfaction_share", values="five_star")
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert shown == {(i, j): str(v) for (i, j), v in np.ndenumerate(pivot.to_numpy())}
    has_labels(ax)
    render(ax, tmp_path, mode)


def test_heatmap_refuses_repeated_cells(sweep_by_type):
    with pytest.raises(bs.DataError, match="repeat"):
        bp.heatmap(sweep_by_type.assign(one=1), "branch.satisfaction_share", "one", "weak")


# -- transitions ---------------------------------------------------------------------------------
def test_transitions_counts_and_diagonal(pop, policy, mode, tmp_path):
    c = bs.compare(pop, policy, {"branch.satisfaction_share": 0.3})
    ax = new_ax()
    assert bp.transitions(c, ax=ax) is ax
    T = c.transitions
    assert len(ax.texts) == T.size
    assert [t.get_text() for t in ax.texts] == [f"{v:,}" for v in T.to_numpy().ravel()]
    diagonal = [p for p in ax.patches if p.get_gid() == "diagonal"]
    assert [p.get_xy() for p in diagonal] == [(i - .5, i - .5) for i in range(len(T))]
    assert ax.get_ylabel() == bp.label("baseline") and ax.get_xlabel() == bp.label("reform")
    moved = len(c.movers)
    assert ax.get_title(loc="left").startswith(f"{moved} of 300")
    render(ax, tmp_path, mode)


def test_transitions_from_a_history_like_object(tmp_path):
    class Pooled:          # History.transitions is a method returning the pooled crosstab
        def transitions(self):
            return pd.DataFrame([[5, 1], [2, 7]], index=pd.Index([3, 0], name="from"),
                                columns=pd.Index([3, 0], name="to"))
    ax = bp.transitions(Pooled())
    assert len(ax.texts) == 4 and ax.get_ylabel() == "from (year t)"
    assert title(ax) == "3 of 15 branch-years change star"
    render(ax, tmp_path)


# -- score_histogram -----------------------------------------------------------------------------
def cut_lines(ax):
    return {line.get_gid(): float(line.get_xdata()[0]) for line in ax.lines if line.get_gid()}


def test_score_histogram_marks_cuts_and_fragile_branches(pop, policy, mode, tmp_path):
    f = bs.fragility(pop, policy, delta=1.0)
    ax = new_ax()
    assert bp.score_histogram(f, ax=ax) is ax
    assert cut_lines(ax) == {"cut_5": 90.0, "cut_4": 80.0, "cut_3": 70.0, "weak_line": 50.0}
    assert cut_lines(ax) == {**{f"cut_{k}": float(policy[f"branch.star_cuts.{k}"]) for k in (5, 4, 3)},
                             "weak_line": float(policy["branch.weak_below"])}
    rest, fragile = ax.containers
    assert sum(b.get_height() for b in fragile) == f.n_fragile
    assert sum(b.get_height() for b in rest) + f.n_fragile == 300
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{f.n_fragile} within ±1" in legend[1]
    has_labels(ax)
    render(ax, tmp_path, mode)


def test_score_histogram_of_a_result_with_own_delta(pop, policy, result, tmp_path):
    ax = bp.score_histogram(result, delta=2.0)
    fragile = ax.containers[1]
    assert sum(b.get_height() for b in fragile) == bs.fragility(pop, policy, delta=2.0).n_fragile
    reform = policy.update({"branch.star_cuts.5": 88})
    assert cut_lines(bp.score_histogram(result.branches, policy=reform))["cut_5"] == 88.0
    render(ax, tmp_path)


# -- star_probabilities --------------------------------------------------------------------------
def test_star_probabilities_least_certain_branches(mc, mode, tmp_path):
    ax = new_ax()
    assert bp.star_probabilities(mc, n=15, ax=ax) is ax
    p = mc.star_probabilities
    levels = [c for c in p.columns if c.startswith("p_") and c.endswith("star")]
    assert len(ax.patches) == 15 * len(levels)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(p.set_index("branch_id").loc[shown, "p_true"]) == sorted(p["p_true"].nsmallest(15))
    assert shown[0] == p.sort_values("p_true", kind="stable")["branch_id"].iloc[0]
    marks = ax.collections[0].get_offsets()
    assert len(marks) == 15                              # one true-star mark per branch
    # Each mark lies inside its branch's bar (between 0 and 1).
    assert ((marks[:, 0] >= 0) & (marks[:, 0] <= 1)).all()
    assert ax.get_xlabel() and title(ax)
    render(ax, tmp_path, mode)


def test_star_probabilities_by_entropy_and_bad_order(mc, tmp_path):
    ax = bp.star_probabilities(mc.star_probabilities.drop(columns="p_true"), n=5)
    assert len(ax.get_yticklabels()) == 5
    with pytest.raises(bs.DataError, match="order"):
        bp.star_probabilities(mc, order="largest")
    render(ax, tmp_path)


# -- sobol_indices -------------------------------------------------------------------------------
def test_sobol_indices_one_output_bars_with_intervals(sobol, mode, tmp_path):
    ax = new_ax()
    assert bp.sobol_indices(sobol, output="five_star", ax=ax) is ax
    idx = sobol.indices[sobol.indices.output == "five_star"].set_index("factor")
    k = len(idx)
    assert len(ax.patches) == 2 * k
    s1, st = bars(ax)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert np.allclose([b.get_width() for b in st.patches], np.nan_to_num(idx.loc[names, "ST"]))
    assert np.allclose([b.get_width() for b in s1.patches], np.nan_to_num(idx.loc[names, "S1"]))
    assert s1.errorbar is not None and st.errorbar is not None
    assert ax.get_xlabel() and title(ax)
    render(ax, tmp_path, mode)


def test_sobol_indices_several_outputs_one_panel_each(sobol, tmp_path):
    fig = bp.sobol_indices(sobol)
    assert isinstance(fig, matplotlib.figure.Figure)
    with bp.style():                                    # the labels the package's fonts draw
        assert [title(a) for a in fig.axes] == [bp.label(o) for o in ("five_star", "weak")]
    assert all(len(a.patches) == 2 * sobol.problem["num_vars"] for a in fig.axes)
    with pytest.raises(bs.DataError, match="fig="):
        bp.sobol_indices(sobol, ax=new_ax())
    with pytest.raises(bs.DataError, match="allowed"):
        bp.sobol_indices(sobol, output="nonexistent")
    render(fig, tmp_path)


# -- nominal_vs_effective ------------------------------------------------------------------------
def test_nominal_vs_effective_paired_bars(pop, policy, mode, tmp_path):
    e = bs.effective_importance(pop, policy)
    ax = new_ax()
    assert bp.nominal_vs_effective(e, ax=ax) is ax
    assert len(ax.patches) == len(e) * 3
    nominal = bars(ax)[0]
    assert np.allclose([b.get_height() for b in nominal], e["nominal_share"])
    assert [t.get_text() for t in ax.get_xticklabels()] == [bp.label(c, wrap=True) for c in e["component"]]
    assert ax.get_ylabel() and title(ax)
    render(ax, tmp_path, mode)


# -- star_flows ----------------------------------------------------------------------------------
def test_star_flows_bars_and_flows_from_branch_years(years, mode, tmp_path):
    ax = new_ax()
    assert bp.star_flows(years, ax=ax) is ax
    counts = pd.crosstab(years["year"], years["stars"])
    assert len(ax.containers) == counts.shape[1]                     # one bar series per level
    assert all(len(c) == 4 for c in ax.containers)
    # Bars stack from no star up: the tops equal the branches present each year.
    assert [b.get_y() + b.get_height() for b in ax.containers[-1]] == [6.0] * 4
    assert np.allclose([b.get_height() for b in ax.containers[0]], counts[0])
    wide = years.pivot(index="branch_id", columns="year", values="stars")
    pairs = {(t, a, b) for t in range(3) for a, b in zip(wide[t], wide[t + 1])}
    flows = [p for p in ax.patches if p.get_gid() == "flow"]
    assert len(flows) == len(pairs)
    assert list(ax.lines[0].get_ydata()) == [1, 1, 1, 1]               # weak per year
    has_labels(ax)
    render(ax, tmp_path, mode)


def test_star_flows_from_a_history_or_a_count_table(years, tmp_path):
    class HistoryLike:
        branches = years
    ax = bp.star_flows(HistoryLike())
    assert len([p for p in ax.patches if p.get_gid() == "flow"]) > 0
    table = pd.crosstab(years["year"], years["stars"]).rename(columns={5: "five_star", 4: "four_star",
                                                                       3: "three_star", 0: "no_star"})
    ax = bp.star_flows(table)
    assert len(ax.patches) == 4 * 4 and not [p for p in ax.patches if p.get_gid() == "flow"]
    with pytest.raises(bs.DataError, match="branch_id"):
        bp.star_flows(table, flows=True)
    with pytest.raises(bs.DataError, match="count table"):
        bp.star_flows(pd.DataFrame({"x": [1]}))
    render(ax, tmp_path)


def test_no_figure_warns_in_english_mode(result, tmp_path):
    # Belt and braces: every function at once, with all warnings as errors.
    bp.use_cjk = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            render(bp.star_counts(result), tmp_path, "english")
            render(bp.score_histogram(result), tmp_path, "english")
    finally:
        bp.use_cjk = "auto"
