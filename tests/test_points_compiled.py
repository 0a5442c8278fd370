"""indicator_points' compiled pass equals its NumPy path element for element, on every shipped scheme."""
from __future__ import annotations

import numpy as np
import pytest

import branchsim as bs
from branchsim import _month_kernel, scoring
from branchsim.sensitivity.engine import prepare

import shipped


def _numpy_points(facts, profile, sheet):
    """indicator_points with the compiled pass switched off."""
    old = scoring._COMPILED_FROM
    scoring._COMPILED_FROM = np.inf
    try:
        return scoring.indicator_points(facts, profile, sheet)
    finally:
        scoring._COMPILED_FROM = old


def _sheets():
    for name in shipped.POLICIES:
        scheme = bs.Policy.load(name).scheme
        yield name, "branch", scheme.branch.sheet
        if scheme.member is not None:
            yield name, "member", scheme.member.sheet


@pytest.mark.parametrize("name, section, sheet", list(_sheets()), ids=lambda x: x if isinstance(x, str) else "")
def test_compiled_points_equal_numpy(name, section, sheet):
    if not _month_kernel.supports(sheet):
        pytest.skip(f"{name} {section}: a rule form the compiled pass does not take (rank or zeroing)")
    rng = np.random.default_rng(7)
    n = 3000
    P = sheet.points.shape[0]
    profile = rng.integers(0, P, n)
    # facts around each rule's range: negative, zero, fractions, whole counts, far above, and exact
    # thresholds (at_least, required) where >= and max(., 0) decide
    facts = rng.choice([-2.0, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0, 7.0, 40.0, 1e6], size=(n, sheet.k))
    facts += rng.random((n, sheet.k)) * (rng.random((n, sheet.k)) < 0.3)
    on = rng.random((n, sheet.k)) < 0.1
    facts[on] = np.broadcast_to(sheet.at_least[profile], facts.shape)[on]
    on = rng.random((n, sheet.k)) < 0.1
    facts[on] = np.broadcast_to(sheet.required[profile], facts.shape)[on]
    got = scoring.indicator_points(facts, profile, sheet)
    want = _numpy_points(facts, profile, sheet)
    assert got.shape == want.shape == (n, sheet.k)
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).all()


def test_the_engine_prepares_the_same_components_either_way():
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=3, n_branches=2000, members=False)
    fast = prepare(pop, policy)
    old = scoring._COMPILED_FROM
    scoring._COMPILED_FROM = np.inf
    try:
        slow = prepare(pop, policy)
    finally:
        scoring._COMPILED_FROM = old
    np.testing.assert_array_equal(fast.components, slow.components)
    np.testing.assert_array_equal(fast.levels, slow.levels)


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_compiled_truth_equals_numpy(name):
    from branchsim import truth as tr
    policy = bs.Policy.load(name)
    if not policy.scheme.branch.sheet.uniform:
        pytest.skip(f"{name}: a type changes a rule form (the truth's np.select path)")
    pop = bs.generate(policy, seed=4, n_branches=3000, members=False)
    fast = tr.truth(pop, policy)
    old = tr._COMPILED_FROM
    tr._COMPILED_FROM = np.inf
    try:
        slow = tr.truth(pop, policy)
    finally:
        tr._COMPILED_FROM = old
    np.testing.assert_array_equal(fast.points, slow.points)
    np.testing.assert_array_equal(fast.components, slow.components)
    assert fast.facts.keys() == slow.facts.keys()
    for f in fast.facts:
        np.testing.assert_array_equal(fast.facts[f], slow.facts[f], err_msg=f)


def test_compiled_truth_equals_numpy_by_hand_on_edges():
    # attainments at and beyond 0 and 1 (clip), state columns, every rule form of the baseline sheet
    from branchsim import _truth_kernel, truth as tr
    from branchsim.measurement import _scales
    sheet = bs.Policy.load().scheme.branch.sheet
    rng = np.random.default_rng(2)
    n = 500
    q = rng.choice([-0.5, 0.0, 0.3, 0.5, 0.999, 1.0, 1.7], n) + rng.random(n) * (rng.random(n) < 0.5)
    off = rng.normal(0, 0.2, sheet.k)
    t = rng.integers(0, sheet.points.shape[0], n)
    fixed = {1: (rng.random(n) < 0.5).astype(float), 4: np.ones(n)}
    got = _truth_kernel.expected(q, off, fixed, t, sheet, _scales(sheet))
    old = tr._COMPILED_FROM
    tr._COMPILED_FROM = np.inf
    try:
        want = tr._expected_by_column(q, off, fixed, t, sheet, _scales(sheet))
    finally:
        tr._COMPILED_FROM = old
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].flags["C_CONTIGUOUS"]
