"""The exact one-share sweep: breakpoints worked by hand, equal to sweep at and around every breakpoint
and at random shares in every shipped scheme where it applies, a clear error where it does not, the
plot and the command line."""
from __future__ import annotations

import zlib

import matplotlib
import numpy as np
import pandas as pd
import pytest

import branchsim as bs
import shipped
import tiny
from branchsim.cli import main
from branchsim.sensitivity.sweep import fast_paths

matplotlib.use("Agg")

SHARE = "branch.satisfaction_share"
HALF = 0.5e-9          # a score reaches a cut c once it rounds (9 decimals) to c: unrounded c - 0.5e-9
MARGIN = 5e-13         # breakpoints sit this far past that point, in the direction the score moves


def row_at(table: pd.DataFrame, s: float) -> pd.Series:
    """The table's row whose interval [s_from, s_to) holds s (the last interval holds 1)."""
    i = np.searchsorted(table["s_from"].to_numpy(), s, side="right") - 1
    return table.iloc[i]


def compare_columns(table):
    return [c for c in table.columns if c not in ("s_from", "s_to") and not table[c].isna().any()]


# -- a table worked by hand ----------------------------------------------------------------------------
# Tiny policy: score = 100 × (0.5 a + 0.3 b + 0.2 survey); cuts top 80, mid 60; weak below 40 or with the
# vacancy veto (which also caps at low). With the survey share s the dimension shares become
# 0.5 (1 - s) / 0.8 and 0.3 (1 - s) / 0.8, so score(s) = 100 × ((1 - s) × (0.625 a + 0.375 b) + s × survey).
HAND = [
    ("B1", "t1", {}, (1, 0, 1)),                                  # a 1, b 1, survey 0.5: 100 - 50 s
    ("B2", "t1", {"held": 0}, (1, 0, 0)),                         # a 0.6, b 1, survey 1: 75 + 25 s
    ("B3", "t1", {"events": 0, "lapses": 5}, (1, 0, 1)),          # a 0.4, b 0, survey 0.5: 25 + 25 s
    ("B4", "t2", {"vacant": 1}, (1, 0, 0)),                       # 100, capped at low, weak by the veto
    ("B5", "t2", {"held": 0, "events": 0}, (1, 0, 0)),            # a 0, b 1, survey 1: 37.5 + 62.5 s
]


def _up(a, b, c):
    """Where a rising score a + b s reaches the cut c (rounded), placed MARGIN past."""
    return (c - HALF + MARGIN - a) / b


def _down(a, b, c):
    """Where a falling score a + b s rounds below c."""
    return (c - HALF - MARGIN - a) / b


def test_breakpoints_and_counts_worked_by_hand():
    p = tiny.policy()
    pop = bs.load_population(branches=tiny.branches(*HAND), policy=p)
    t = bs.exact_sweep(pop, p, SHARE)
    expected = [
        (0.0, 1, 1, 3, 3),
        (_up(37.5, 62.5, 40), 1, 1, 3, 2),     # B5 leaves weak (score 40 at s = 0.04)
        (_up(75, 25, 80), 2, 0, 3, 2),         # B2 reaches top (80 at s = 0.2)
        (_up(37.5, 62.5, 60), 2, 1, 2, 2),     # B5 reaches mid (60 at s = 0.36)
        (_down(100, -50, 80), 1, 2, 2, 2),     # B1 falls to mid (80 at s = 0.4)
        (_up(25, 25, 40), 1, 2, 2, 1),         # B3 leaves weak (40 at s = 0.6)
        (_up(37.5, 62.5, 80), 2, 1, 2, 1),     # B5 reaches top (80 at s = 0.68)
        (_down(100, -50, 60), 2, 0, 3, 1),     # B1 falls to low (60 at s = 0.8)
    ]
    assert len(t) == len(expected)
    np.testing.assert_allclose(t["s_from"], [e[0] for e in expected], rtol=0, atol=1e-15)
    assert t["s_from"].iloc[1] < 0.04 < t["s_from"].iloc[2]          # rounding moves 0.04 down by 8e-12
    assert t["s_to"].tolist() == t["s_from"].tolist()[1:] + [1.0]
    assert t[["top", "mid", "low", "weak"]].values.tolist() == [list(e[1:]) for e in expected]
    assert (t["n"] == 5).all()
    # The policy's share is 0.2: B2 is top there (80 rounds to 80), so nothing has changed in that row.
    # Levels at 0.2: B1 top, B2 top, B3 low, B4 low, B5 low; B2 is mid before 0.2 - 2e-11, B5 mid/top
    # and B1 mid/low later.
    assert t["changed"].tolist() == [1, 1, 0, 1, 2, 2, 2, 2]
    assert t.attrs["path"] == SHARE and t.attrs["baseline"] == 0.2
    assert "accuracy" not in t                                          # tables have no truth


def test_hand_table_agrees_with_sweep_at_and_around_each_breakpoint():
    p = tiny.policy()
    pop = bs.load_population(branches=tiny.branches(*HAND), policy=p)
    t = bs.exact_sweep(pop, p, SHARE)
    b = t["s_from"].to_numpy()[1:]
    points = np.r_[b, b - 0.737e-9, b + 0.737e-9, 0.0, 1.0, 0.04, 0.2, 0.4]
    _assert_agrees(pop, p, SHARE, t, points)


# -- equal to sweep in every scheme where it applies ---------------------------------------------------
def _assert_agrees(pop, policy, path, t, points, by=None):
    points = np.unique(np.clip(points, 0.0, 1.0))
    df = bs.sweep(pop, policy, {path: points}, by=by, progress=False)
    cols = compare_columns(t)
    groups = [None] if by is None else sorted(t[by].unique())
    for g in groups:
        tg = t if g is None else t[t[by] == g]
        dg = df if g is None else df[df[by] == g]
        for _, row in dg.iterrows():
            mine = row_at(tg, row[path])
            bad = {c: (mine[c], row[c]) for c in cols if mine[c] != row[c]}
            assert not bad, (path, g, row[path], bad)


def _probe_points(t, rng):
    """Every breakpoint, a point just either side of it (inside its neighbours), random shares.

    The offset, 0.737e-9, is no round multiple of 1e-9: with a whole-number slope, a share 1e-9 from
    a breakpoint on a rounding boundary lies on another rounding boundary, where any evaluation is
    decided by the last bit of the sum."""
    b = t["s_from"].to_numpy()[1:]
    b = b[b > 0]
    gaps = np.diff(np.r_[0.0, b, 1.0])
    below = b - np.minimum(0.737e-9, gaps[:-1] / 2)
    above = b + np.minimum(0.737e-9, gaps[1:] / 2)
    return np.r_[b, below, above, rng.random(40), 0.0, 1.0]


def _applicable():
    cases = []
    for name in shipped.SCHEMES:
        p = shipped.load(name)
        if p.scheme.branch.rating.design != "cuts":
            continue
        cases += [(name, path) for path, (kind, _) in fast_paths(p).items() if kind in ("share", "dimension")]
    return cases


@pytest.mark.parametrize("name,path", _applicable())
def test_equal_to_sweep_at_every_breakpoint_in_every_scheme(name, path):
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=4, n_branches=400, members=False)
    t = bs.exact_sweep(pop, policy, path)
    assert len(t) > 50                                       # hundreds of branches cross something
    levels = list(policy.levels)
    assert (t[levels].sum(axis=1) == 400).all()
    assert row_at(t, policy[path])["changed"] == 0
    _assert_agrees(pop, policy, path, t, _probe_points(t, np.random.default_rng(zlib.crc32(path.encode()))))


@pytest.mark.parametrize("name,path", _applicable()[:1] + [p for p in _applicable() if p[0] != "baseline"][:1])
def test_equal_to_sweep_on_a_fine_grid(name, path):
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=9, n_branches=300, members=False)
    t = bs.sweep(pop, policy, {path: "exact"})               # the dispatch in sweep
    _assert_agrees(pop, policy, path, t, np.linspace(0, 1, 401))


def test_per_type_share_and_by_group():
    # A type with its own survey share: its weights are a ratio of linear functions of a dimension
    # share, constant in the survey share until it is 1 (where the dimensions have nothing left).
    doc = tiny.document()
    doc["branch"]["types"]["t2"]["satisfaction_share"] = tiny.P(0.5)
    p = bs.Policy(doc)
    rng = np.random.default_rng(1)
    rows = [(f"b{i}", ("t1", "t2")[i % 2],
             {"held": int(rng.integers(0, 2)), "events": int(rng.integers(0, 4)), "lapses": int(rng.integers(0, 6)),
              "extra": int(rng.integers(0, 3)), "vacant": int(rng.random() < 0.1)},
             tuple(int(x) for x in rng.integers(0, 10, 3))) for i in range(200)]
    pop = bs.load_population(branches=tiny.branches(*rows), policy=p)
    for path in (SHARE, "branch.dimensions.a.share", "branch.dimensions.b.share"):
        t = bs.exact_sweep(pop, p, path)
        _assert_agrees(pop, p, path, t, _probe_points(t, rng))
    t = bs.exact_sweep(pop, p, "branch.dimensions.a.share", by="type")
    assert sorted(t["type"].unique()) == ["t1", "t2"]
    _assert_agrees(pop, p, "branch.dimensions.a.share", t, rng.random(30), by="type")
    whole = bs.exact_sweep(pop, p, "branch.dimensions.a.share")
    for s in rng.random(10):                                  # the groups add up to the whole
        assert sum(row_at(t[t["type"] == g], s)["top"] for g in ("t1", "t2")) == row_at(whole, s)["top"]


def test_last_place_worked_by_hand():
    # "lag" designates the lowest score of each type. t1: B1 100 - 50 s, B2 75 + 25 s, B3 25 + 25 s:
    # B3 is lowest throughout. t2: B4 100 (cap and veto do not change its score), B5 37.5 + 62.5 s:
    # B5 is lowest throughout, B4 never. Under the sweep's shares the t1 group has no corner; put B1's
    # line under B3's: B6 (t1, a 0, b 0, survey 1): 100 s crosses B3's 25 + 25 s at s = 1/3 exactly
    # (scores 33.33...: the two round alike for a stretch of 1e-9 / 75 either side).
    doc = tiny.document()
    doc["branch"]["designations"]["lag"] = {"label": "lag", "criteria": {
        "last": {"kind": "last_place", "within": "type"}}}
    p = bs.Policy(doc)
    rows = HAND + [("B6", "t1", {"held": 0, "events": 0, "lapses": 5}, (1, 0, 0))]
    pop = bs.load_population(branches=tiny.branches(*rows), policy=p)
    t = bs.exact_sweep(pop, p, SHARE)
    assert t.attrs["not_exact"] == {}
    assert row_at(t, 0.1)["lag"] == 2 and row_at(t, 0.5)["lag"] == 2          # B6 then B3, and B5
    around = t[(t["s_from"] > 1 / 3 - 1e-8) & (t["s_from"] < 1 / 3 + 1e-8)]
    assert len(around) >= 2 and around["lag"].max() == 3                      # both tied for last: 3
    tied = around[around["lag"] == 3]
    assert 1 / 3 - 2e-11 < tied["s_from"].min() and tied["s_to"].max() < 1 / 3 + 2e-11
    b = t["s_from"].to_numpy()[1:]
    gaps = np.diff(np.r_[0.0, b, 1.0])
    _assert_agrees(pop, p, SHARE, t, np.r_[b, b - gaps[:-1] / 2, np.linspace(0, 1, 101)])


def test_last_place_with_another_score_criterion_is_left_nan_with_the_reason():
    # Last place together with a score line in one designation: its count is not the sum of two
    # separate streams, so it is left NaN, saying why; the levels stay exact.
    doc = tiny.document()
    doc["branch"]["designations"]["weak"]["criteria"]["last"] = {"kind": "last_place", "within": "type"}
    p = bs.Policy(doc)
    pop = bs.load_population(branches=tiny.branches(*HAND), policy=p)
    t = bs.exact_sweep(pop, p, SHARE)
    assert list(t.attrs["not_exact"]) == ["weak"] and "last-place" in t.attrs["not_exact"]["weak"]
    assert t["weak"].isna().all() and t[["top", "mid", "low"]].notna().all().all()
    _assert_agrees(pop, p, SHARE, t, np.linspace(0, 1, 41))


# -- where it does not apply ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,why", [("star_quota", "quota"), ("kmeans_by_type", "clusters")])
def test_relative_designs_are_refused_with_the_reason(name, why):
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=1, n_branches=50, members=False)
    with pytest.raises(bs.PolicyError, match=f"(?s)branch.rating.design.*{why}.*needs the 'cuts' design"):
        bs.sweep(pop, policy, {SHARE: "exact"})


def test_a_path_that_is_not_a_share_is_refused():
    policy = bs.Policy.load()
    pop = bs.generate(seed=1, n_branches=50, members=False)
    with pytest.raises(bs.PolicyError, match="branch.rating.cuts.five_star: not a share"):
        bs.exact_sweep(pop, policy, "branch.rating.cuts.five_star")
    with pytest.raises(bs.PolicyError, match="no such parameter"):
        bs.exact_sweep(pop, policy, "branch.satisfaction_shar")
    with pytest.raises(bs.PolicyError, match="one share alone"):
        bs.sweep(pop, policy, {SHARE: "exact", "branch.rating.cuts.five_star": [90]})


# -- plot and command line -----------------------------------------------------------------------------
def test_plot_draws(tmp_path):
    import branchsim.plot as bp
    p = tiny.policy()
    pop = bs.load_population(branches=tiny.branches(*HAND), policy=p)
    t = bs.exact_sweep(pop, p, SHARE)
    ax = bp.exact_sweep(t, policy=p)
    ticks = [line for line in ax.lines if line.get_marker() == "|"]
    assert len(ticks) == 1 and len(ticks[0].get_xdata()) == len(t) - 1
    assert any(list(line.get_xdata()) == [0.2, 0.2] for line in ax.lines)       # the policy's value
    ax.figure.savefig(tmp_path / "exact.png")
    assert (tmp_path / "exact.png").stat().st_size > 5000
    matplotlib.pyplot.close(ax.figure)


def test_cli_exact_sweep(capsys, tmp_path):
    out = tmp_path / "exact.csv"
    code = main(["sweep", "--exact", SHARE, "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and f"swept {SHARE} exactly" in text
    t = pd.read_csv(out)
    assert t["s_from"].iloc[0] == 0 and t["s_to"].iloc[-1] == 1
    assert (t["s_to"].iloc[:-1].to_numpy() == t["s_from"].iloc[1:].to_numpy()).all()


def test_cli_exact_sweep_bad_path(capsys, tmp_path):
    code = main(["sweep", "--exact", "branch.rating.cuts.five_star", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("branchsim: error: ") and "branch.rating.cuts.five_star: not a share" in err
    assert not list(tmp_path.iterdir())


def test_no_scheme_names_in_the_new_modules():
    shipped.assert_no_scheme_names(("exact",), "sensitivity")
    shipped.assert_no_scheme_names(("exact",), "plot")
