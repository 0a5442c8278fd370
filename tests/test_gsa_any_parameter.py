"""GSA over any numeric policy parameter (kind 'param') and structural choices (kind 'choice'), with member
outputs, and refusal of a factor that changes none of the requested outputs (issue 13)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.sensitivity.factors import default_factors, evaluate_samples
from shipped import POLICIES, REFORM, load


def _at(p, changes):
    changes = {k: v for k, v in changes.items() if p.get(k) != v}
    return p.update(changes) if changes else p


@pytest.fixture(scope="module")
def city():
    return bs.generate(seed=5, n_branches=250)


def _numeric_branch_param(p):
    from branchsim.sensitivity.sweep import fast_paths
    fast = set(fast_paths(p))
    df = p.parameters()
    for path in df["path"]:
        if path.startswith("branch.indicators.") and path not in fast and isinstance(p[path], (int, float)) \
                and not isinstance(p[path], bool) and p[path] > 0 and path.endswith(".points"):
            return path
    raise AssertionError("no indicator points in " + p.name)


@pytest.mark.parametrize("name", POLICIES)
def test_a_param_factor_gives_what_evaluate_gives(name):
    p = load(name)
    pop = bs.generate(p, seed=2, n_branches=150, members=False)
    path = _numeric_branch_param(p)
    v0 = float(p[path])
    f = pd.DataFrame([{"name": "pts", "path": path, "kind": "param", "low": v0 / 2, "high": v0 * 2}])
    values = pd.DataFrame({"pts": [v0 / 2, v0, v0 * 2]})
    got = evaluate_samples(pop, p, values, f)
    for v, row in zip(values["pts"], got.itertuples(index=False)):
        counts = bs.evaluate(pop, _at(p, {path: v})).level_counts()["count"]
        for lv in p.scheme.branch.levels.ids:
            assert getattr(row, lv) == counts[lv], (name, path, v, lv)
    assert got["changed"].iloc[1] == 0


def test_a_reform_choice_gives_what_evaluate_gives(city):
    p = bs.Policy.load()
    f = pd.DataFrame([{"name": "design", "path": "reform", "kind": "choice", "low": np.nan, "high": np.nan,
                       "choices": [None, str(REFORM)]}])
    got = evaluate_samples(city, p, pd.DataFrame({"design": [0.0, 1.0]}), f)
    reformed = bs.evaluate(city, p.update(bs.load_reform(REFORM)["changes"])).branches["rating"]
    base = bs.evaluate(city, p).branches["rating"]
    assert got["changed"].tolist() == [0, int((reformed != base).sum())]
    assert got[p.scheme.branch.levels.ids[0]].iloc[1] == int((reformed == p.scheme.branch.levels.ids[0]).sum())


def test_a_member_param_reports_member_outputs(city):
    p = bs.Policy.load()
    f = pd.DataFrame([{"name": "record_share", "path": "member.record_share", "kind": "param",
                       "low": 0.5, "high": 0.9}])
    got = evaluate_samples(city, p, pd.DataFrame({"record_share": [0.5, 0.9]}), f)
    for v, (_, row) in zip([0.5, 0.9], got.iterrows()):
        want = bs.evaluate(city, _at(p, {"member.record_share": v})).grade_counts()
        assert [row[f"grade_{g}"] for g in want.index] == want.tolist()
    r = bs.sobol(city, p, f, n=8, outputs=("grade_excellent", "misgraded"), progress=False)
    assert (r.indices["ST"] > 0.5).all()          # the only factor: it explains (nearly) everything


def test_a_factor_that_changes_no_requested_output_is_refused(city):
    p = bs.Policy.load()
    f = pd.concat([default_factors(p, noise=False).head(1),
                   pd.DataFrame([{"name": "record_share", "path": "member.record_share", "kind": "param",
                                  "low": 0.5, "high": 0.9}])], ignore_index=True)
    with pytest.raises(bs.BranchsimError, match=r"record_share \(member.record_share\) change none of the "
                                                r"requested outputs \(weak\)"):
        bs.sobol(city, p, f, n=8, outputs=("weak",), progress=False)


def test_bad_slow_factors_get_one_clear_message(city):
    p = bs.Policy.load()
    cases = [
        ({"name": "d", "path": "branch.rating.design", "kind": "choice", "low": np.nan, "high": np.nan,
          "choices": ["cuts"]}, "at least two different values"),
        ({"name": "d", "path": "branch.rating.design", "kind": "choice", "low": np.nan, "high": np.nan,
          "choices": ["cuts", "quota"]}, "choice 'quota'"),
        ({"name": "s", "path": "branch.satisfaction_share", "kind": "param", "low": 0.2, "high": 0.5},
         "a fast parameter"),
        ({"name": "x", "path": "branch.no_such", "kind": "param", "low": 0, "high": 1}, "no such parameter"),
    ]
    for row, words in cases:
        with pytest.raises(bs.BranchsimError, match=words):
            evaluate_samples(city, p, pd.DataFrame({row["name"]: [0.0]}), pd.DataFrame([row]))


def test_a_choice_that_leaves_an_output_alone_gets_no_index(city):
    """The k-means reform does not move the weak designation (a score line): its ST for 'weak' is 0,
    and for 'changed' it is the largest."""
    p = bs.Policy.load()
    f = pd.concat([default_factors(p, noise=False).query("kind == 'share'"),
                   pd.DataFrame([{"name": "design", "path": "reform", "kind": "choice", "low": np.nan,
                                  "high": np.nan, "choices": [None, str(REFORM)]}])], ignore_index=True)
    r = bs.sobol(city, p, f, n=32, outputs=("weak", "changed"), progress=False)
    st = r.indices.pivot(index="factor", columns="output", values="ST")
    assert st.loc["design", "weak"] == 0
    assert st["changed"].idxmax() == "design"
