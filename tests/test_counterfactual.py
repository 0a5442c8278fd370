"""Counterfactual moves (branchsim.audit): every proposed change re-checked with the engine.

The hand-worked cases use the tiny policy (tests/tiny.py): score = 100 × (0.5 × frac_a + 0.3 × frac_b
+ 0.2 × survey rate), frac_a = (held 4 + 2 an event, at most 6) / 10, frac_b = (5 − 1 a lapse + extra,
clipped to 1) / 5; cuts top 80, mid 60; weak below 40 or with a vacancy (which also caps at low).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
import shipped
import tiny
from branchsim.audit import counterfactual as cf


def _tiny_pop():
    return tiny.branches(
        ("X", "t1", {"events": 1}, (5, 0, 5)),                                 # 30 + 30 + 10 = 70: mid
        ("Y", "t1", {"held": 0, "events": 0, "lapses": 5}, (10, 0, 0)),        # 0 + 0 + 20 = 20: low, weak
        ("Z", "t2", {"vacant": 1}, (10, 0, 0)),                                # 100 but vetoed: low, weak
    )


def _single(moves, goal):
    return moves[(moves["move"] == "single") & (moves["goal"] == goal)].set_index("fact")


def test_hand_worked_next_level_by_one_event():
    # X scores 70; top needs 80; an event adds 100 × 0.5 × 2/10 = 10: one event, exactly at the cut.
    moves = bs.next_level(_tiny_pop(), tiny.policy(), "X")
    assert moves.attrs["level"] == "mid" and moves.attrs["goals"] == ["top"]
    s = _single(moves, "top")
    assert s.loc["events", "change"] == 1 and s.loc["events", "level_after"] == "top"
    # held is met, lapses are 0, frac_b is full (the bonus cannot lift it), vacant only hurts, the
    # other declared facts are read by nothing: no change of them alone suffices
    for fact in ("held", "lapses", "extra", "vacant", "scandal", "honour", "candidates"):
        assert np.isnan(s.loc[fact, "change"]), fact
    combo = moves[moves["move"] == "combination"]
    assert combo.set_index("fact")["change"].to_dict() == {"events": 1.0}
    assert moves.attrs["combination_cost"]["top"] == 1 and moves.attrs["verified"]["top"]


def test_hand_worked_out_of_weak_and_cheapest_combination():
    # Y scores 20, weak below 40: +20 needed. held +20 at once; an event +10 (two); a lapse fewer
    # +100 × 0.3 × 1/5 = 6 (four: 24); extra +6 a unit but at most 2 points (12): not enough.
    moves = bs.next_level(_tiny_pop(), tiny.policy(), "Y")
    assert moves.attrs["goals"] == ["mid", "not weak"]
    s = _single(moves, "not weak")
    assert s.loc["held", "change"] == 1 and s.loc["events", "change"] == 2 and s.loc["lapses", "change"] == -4
    assert np.isnan(s.loc["extra", "change"])
    # mid (60) needs +40: no fact alone (held 40, events at most 50, lapses at most 50);
    # by steps at cost 1: held (20 a step), events (10), lapses and extra (6): held + 2 events = 3
    assert _single(moves, "mid")["change"].isna().all()
    combo = moves[(moves["move"] == "combination") & (moves["goal"] == "mid")]
    assert combo.set_index("fact")["change"].to_dict() == {"held": 1.0, "events": 2.0}
    assert moves.attrs["combination_cost"]["mid"] == 3
    # held at 5 a step: 3 events (30) + two steps of lapses or extra (12) cost 5 < held + 2 events (7)
    dear = bs.next_level(_tiny_pop(), tiny.policy(), "Y", cost={"held": 5})
    assert dear.attrs["combination_cost"]["mid"] == 5
    assert "held" not in set(dear.loc[(dear["move"] == "combination") & (dear["goal"] == "mid"), "fact"])


def test_hand_worked_veto_lifted_by_one_flip():
    # Z has full points (score 100) but a vacancy: capped at low and weak. Filling it: top, not weak.
    moves = bs.next_level(_tiny_pop(), tiny.policy(), "Z")
    s = _single(moves, "mid")
    assert s.loc["vacant", "change"] == -1 and s.loc["vacant", "level_after"] == "top"
    assert _single(moves, "not weak").loc["vacant", "change"] == -1
    assert s.drop("vacant")["change"].isna().all()


# -- every shipped scheme: the engine agrees -----------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _city(name):
    pol = shipped.load(name)
    return pol, bs.generate(pol, seed=3, n_branches=40, members=False)


def _outcome(pol, branches, bid, changes):
    b = branches.copy()
    row = b.index[b["branch_id"] == bid][0]
    for fact, value in changes.items():
        b.loc[row, fact] = value
    out = bs.evaluate_tables(pol, b).branches.set_index("branch_id").loc[bid]
    return out


def _reached(pol, out, goal):
    levels = list(pol.scheme.branch.levels.ids)
    if goal.startswith("not "):
        return not bool(out[goal[4:]])
    return levels.index(out["rating"]) <= levels.index(goal)


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_every_move_reaches_the_goal_and_one_step_less_does_not(name):
    pol, pop = _city(name)
    table = bs.distances(pop, pol, combination=False)
    picked = table.loc[table["goal"] != "none"]
    ids = list(picked.loc[picked["best_fact"].notna(), "branch_id"][:3])       # a fact alone suffices
    ids += list(picked.loc[picked["best_fact"].isna(), "branch_id"][:2])       # only a combination
    weak = pol.scheme.branch.designations[0].id
    designated = bs.evaluate(pop, pol).branches.set_index("branch_id")[weak]
    ids += [b for b in designated.index[designated.to_numpy()][:2] if b not in ids]
    checked = 0
    for bid in ids:
        moves = bs.next_level(pop, pol, bid)
        for goal in moves.attrs["goals"]:
            single = moves[(moves["move"] == "single") & (moves["goal"] == goal)].dropna(subset=["change"])
            for _, m in single.iterrows():
                assert _reached(pol, _outcome(pol, pop.branches, bid, {m["fact"]: m["new_value"]}), goal), \
                    (bid, goal, m["fact"])
                less = m["new_value"] - np.sign(m["change"]) * m["step"]
                if m["kind"] == "rank" or abs(m["change"]) > m["step"] / 2:
                    if m["kind"] != "rank" or np.sign(less - m["current"]) == np.sign(m["change"]):
                        assert not _reached(pol, _outcome(pol, pop.branches, bid, {m["fact"]: less}), goal), \
                            (bid, goal, m["fact"], "one step less")
                if m["kind"] in ("count", "binary"):
                    assert float(m["change"]).is_integer()
                lo_hi = m["new_value"]
                assert lo_hi >= 0 and (m["kind"] not in ("binary", "share") or lo_hi <= 1)
                checked += 1
            combo = moves[(moves["move"] == "combination") & (moves["goal"] == goal)]
            if len(combo):
                assert moves.attrs["verified"][goal]
                changes = dict(zip(combo["fact"], combo["new_value"]))
                assert _reached(pol, _outcome(pol, pop.branches, bid, changes), goal), (bid, goal, changes)
                # no single move is cheaper than the cheapest combination
                assert moves.attrs["combination_cost"][goal] <= single["cost"].min() + 1e-9 if len(single) else True
    assert checked > 0


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_distances_table_and_summary(name):
    pol, pop = _city(name)
    table = bs.distances(pop, pol)
    assert list(table["branch_id"]) == list(pop.branches["branch_id"])
    with_goal = table["goal"] != "none"
    s = table.attrs["summary"]
    assert s["branches"] == int(with_goal.sum())
    assert s["one_step"] == int((with_goal & (table["best_steps"] == 1)).sum()) or s["one_step"] >= int(
        (with_goal & (table["best_steps"] == 1)).sum())
    assert sum(s["one_step_by_level"].values()) == s["one_step"]
    assert table.loc[with_goal & table["best_fact"].notna(), "combination_cost"].le(
        table.loc[with_goal & table["best_fact"].notna(), "best_cost"] + 1e-9).all()
    assert table.loc[with_goal & table["combination_cost"].notna(), "verified"].all()


def test_quota_design_matches_re_rating():
    # star_quota rates by quota: the others' scores held, the new score must beat the one holding the
    # quota's last place; the engine re-rates the whole table and must agree (checked above); here the
    # thresholds are those of rating.quota_thresholds on the table with the branch left out
    pol, pop = _city("star_quota")
    ctx = cf._Context(pop, pol)
    thr, strict = ctx.thresholds
    assert strict.all()
    s = ctx.out["score"]
    a = bs.rating.allowed_counts(ctx.n, pol.scheme.branch.rating.allowed_shares) if hasattr(bs, "rating") else None
    from branchsim import rating as rt
    a = rt.allowed_counts(ctx.n, pol.scheme.branch.rating.allowed_shares)
    i = int(np.argmin(s))
    others = np.sort(np.delete(s, i))[::-1]
    assert np.allclose(thr[i], np.maximum.accumulate(others[a - 1]))


def test_marginal_points_by_hand():
    m = bs.marginal_points(tiny.policy()).set_index(["type", "indicator"])
    # an event: 2 points of 10 in a (share 0.5): 100 × 0.5 × 2/10 = 10 score points
    assert m.loc[("t1", "events"), "score_per_step"] == 10
    assert m.loc[("t1", "lapses"), "score_per_step"] == 6 and m.loc[("t1", "lapses"), "direction"] == -1
    assert m.loc[("t1", "held"), "score_per_step"] == 20
    first = bs.marginal_points(tiny.policy()).groupby("type").head(1)
    assert set(first["indicator"]) == {"held"}
    pop = _tiny_pop()
    g = bs.marginal_points(tiny.policy(), pop).set_index(["type", "indicator"])
    # X (events 1 → 2: +10) and Y (events 0 → 1: +10) are t1; held moves only Y (0 → 1: +20)
    assert g.loc[("t1", "events"), "mean_gain"] == 10 and g.loc[("t1", "held"), "share_moved"] == 0.5


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_marginal_points_every_scheme(name):
    pol, pop = _city(name)
    m = bs.marginal_points(pol, pop)
    assert set(m["type"]) == set(pol.scheme.branch.types)
    assert (m["share_moved"].between(0, 1)).all()


def test_bad_inputs_are_one_clear_error():
    pop, pol = _tiny_pop(), tiny.policy()
    with pytest.raises(bs.DataError, match="branch_id 'nope' is not in the branches table"):
        bs.next_level(pop, pol, "nope")
    with pytest.raises(bs.DataError, match="cost: 'meetings' is not an indicator or fact"):
        bs.next_level(pop, pol, "X", cost={"meetings": 1})
    with pytest.raises(bs.DataError, match="must be a number >= 0"):
        bs.next_level(pop, pol, "X", cost={"events": -1})
    with pytest.raises(bs.DataError, match="goal must be 'level' or a designation"):
        bs.distances(pop, pol, goal="nothing")
    before = pop.copy()
    bs.distances(pop, pol)
    pd.testing.assert_frame_equal(pop, before)


def test_fixed_fact_is_never_moved():
    moves = bs.next_level(_tiny_pop(), tiny.policy(), "Y", cost={"held": float("inf")})
    assert "held" not in set(moves.loc[moves["move"] == "combination", "fact"])


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_plot_counterfactual_distances_draws(name, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import branchsim.plot as bp
    pol, pop = _city(name)
    table = bs.distances(pop, pol)
    ax = bp.counterfactual_distances(table, policy=pol)
    with_goal = table[table["goal"] != "none"]
    heights = {}
    for p in ax.patches:
        heights.setdefault(p.get_gid(), []).append(p.get_height())
    # every branch with a goal is counted once, in its current level's bars
    for lv, n in with_goal["level"].value_counts().items():
        assert sum(heights[f"level:{lv}"]) == n
    ax.figure.savefig(tmp_path / "d.png")
    plt.close(ax.figure)
    with pytest.raises(bs.DataError, match="measure"):
        bp.counterfactual_distances(table, measure="nope")


# -- the command line -------------------------------------------------------------------------------------
def _cli(argv, capsys):
    from branchsim.cli import main
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_next_level_branch_and_all(capsys, tmp_path):
    code, out, err = _cli(["next-level", "--branch", "B006", "--out", tmp_path / "b.csv"], capsys)
    assert code == 0, err
    written = pd.read_csv(tmp_path / "b.csv")
    pop = bs.load_population(bs.data_path("examples"))
    expected = bs.next_level(pop, None, "B006")
    assert list(written["fact"]) == list(expected["fact"]) and "cheapest combination, cost 1" in out
    (tmp_path / "c.yaml").write_text("secretary_trained: .inf\norg_life_meetings: 3\n")
    code, out, err = _cli(["next-level", "--all", "--cost", tmp_path / "c.yaml", "--out", tmp_path / "a.csv"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "a.csv")
    assert len(table) == len(pop.branches) and "one step of some fact away" in out
    b006 = table.set_index("branch_id").loc["B006"]
    assert b006["best_fact"] != "secretary_trained" and "secretary_trained" not in str(b006["combination"])


@pytest.mark.parametrize("argv, names", [
    (["next-level", "--branch", "B999"], ["B999", "branches table"]),
    (["next-level", "--branch", "B006", "--all"], ["--all", "not allowed with"]),
    (["next-level"], ["--branch", "--all"]),
    (["next-level", "--all", "--goal", "nothing"], ["goal", "nothing"]),
    (["next-level", "--branch", "B006", "--cost", "COST"], ["COST", "meetings_held"]),
    (["next-level", "--branch", "B006", "--cost", "LIST"], ["LIST", "mapping"]),
    (["next-level", "--branch", "B006", "--cost", "MISSING"], ["MISSING"]),
    (["next-level", "--all", "--out", "DIR"], ["--out", "folder"]),
])
def test_cli_next_level_bad_input_is_one_error_line(argv, names, capsys, tmp_path):
    files = {"COST": "meetings_held: 1\n", "LIST": "[1, 2]\n"}
    for k, text in files.items():
        (tmp_path / f"{k}.yaml").write_text(text)
    sub = {"COST": tmp_path / "COST.yaml", "LIST": tmp_path / "LIST.yaml", "MISSING": tmp_path / "none.yaml",
           "DIR": tmp_path}
    argv = [sub.get(a, a) for a in argv]
    names = [str(sub[n]) if n in sub else n for n in names]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _cli(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("branchsim: error: "), err
    for n in names:
        assert n in err, (n, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_clustering_design_holds_the_realised_cuts():
    # k-means cuts move when the table is re-clustered, so a move is judged against the population's
    # realised cuts: the engine's score of the changed table, rated by the original cuts, reaches the goal
    from branchsim import rating as rt
    pol = shipped.load("kmeans_by_type")
    pop = bs.generate(pol, seed=5, n_branches=60, members=False)
    first = bs.evaluate(pop, pol)
    cuts = first.cut_points.set_index(["group", "level"])["cut"]
    above = pol.scheme.branch.levels.worst_first[1:]
    table = bs.distances(pop, pol, combination=False)
    moved = table.dropna(subset=["best_fact"])
    assert len(moved) > 0
    facts = pop.branches.set_index("branch_id")
    for row in moved.iloc[:8].itertuples():
        out = _outcome(pol, pop.branches, row.branch_id,
                       {row.best_fact: facts.loc[row.branch_id, row.best_fact] + row.best_change})
        group_cuts = np.array([cuts[(row.type, lv)] for lv in above])
        design = int(rt.cut_levels(np.array([out["score"]]), group_cuts)[0])
        assert design >= pol.scheme.branch.levels.code(row.goal), row
