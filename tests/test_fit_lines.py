"""fit_cut_points fits a designation's score line (the weak line) as it fits the cut points (issue 13)."""
from __future__ import annotations

import numpy as np
import pytest

import branchsim as bs
from shipped import load

LINE = "branch.designations.weak.criteria.low_score.below"


def _weak(pop, p, value):
    q = p if p[LINE] == value else p.update({LINE: value})
    return int(bs.evaluate(pop, q).branches["weak"].sum())


@pytest.mark.parametrize("name, n, target", [("baseline", 400, 15), ("star_quota", 400, 12)])
def test_the_fitted_line_designates_the_target_and_its_range_is_exact(name, n, target):
    p = load(name)
    pop = bs.generate(p, seed=4, n_branches=n, members=False)
    fit = bs.fit_cut_points(pop, p, {"weak": target})
    row = fit.set_index("level").loc["weak"]
    assert row["exact"] and row["achieved"] == target
    assert _weak(pop, bs.policy_with_cuts(p, fit), row["cut"]) == target
    # every line in (low, high] gives the target; just outside it does not
    assert _weak(pop, p, float(row["high"])) == target
    assert _weak(pop, p, float(np.nextafter(row["low"], np.inf))) == target
    assert _weak(pop, p, float(row["low"])) < target
    cuts = p.scheme.branch.rating.cuts
    if cuts is None or row["high"] < cuts[:, -1].max():
        assert _weak(pop, p, float(np.nextafter(row["high"], np.inf))) > target


def test_cuts_and_the_weak_line_together():
    p = bs.Policy.load()
    pop = bs.generate(seed=1, n_branches=655, members=False)
    targets = {"five_star": 41, "four_star": 173, "three_star": 400, "weak": 30}
    fit = bs.fit_cut_points(pop, p, targets)
    assert fit["level"].tolist() == list(targets) and fit["exact"].all()
    counts = bs.evaluate(pop, bs.policy_with_cuts(p, fit)).level_counts()["count"]
    assert {k: int(counts[k]) for k in targets} == targets


def test_a_hand_worked_line():
    """The example tables: the weak line that designates exactly the two lowest-scoring branches the line
    decides lies between the second and third lowest of their scores."""
    pop = bs.load_population(bs.data_path("examples"))
    p = bs.Policy.load()
    r = bs.evaluate(pop, p.update({LINE: float(p.scheme.branch.rating.cuts[:, -1].max())}))
    low_line = bs.evaluate(pop, p.update({LINE: -1.0})).branches["weak"].to_numpy()
    decided = r.branches["weak"].to_numpy() & ~low_line
    e = np.sort(r.branches.loc[decided, "score"].to_numpy())
    want = int(low_line.sum()) + 2
    fit = bs.fit_cut_points(pop, p, {"weak": want}).set_index("level").loc["weak"]
    assert (fit["low"], fit["high"]) == (e[1], e[2])
    assert e[1] < fit["cut"] <= e[2]


def test_bad_line_targets_get_one_clear_message():
    mp = load("member_points")
    pop = bs.generate(mp, seed=0, n_branches=60, members=False)
    with pytest.raises(bs.BranchsimError, match="'weak' has no score line to fit"):
        bs.fit_cut_points(pop, mp, {"weak": 3})
    p = bs.Policy.load()
    pop = bs.generate(seed=0, n_branches=60, members=False)
    with pytest.raises(bs.BranchsimError, match="not a whole number"):
        bs.fit_cut_points(pop, p, {"weak": -1})
    with pytest.raises(bs.BranchsimError, match="targets cannot be met"):
        bs.fit_cut_points(pop, p, {"weak": 61})
