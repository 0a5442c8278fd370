"""Sums of points in a fixed order (scoring.ordered_product): the subscores a user sees are the same bits on
every CPU and BLAS build, and the compiled pass adds exactly as the NumPy loop does."""
from __future__ import annotations

import numpy as np
import pytest

from branchsim import scoring


def _loop(x, w):
    """The definition, written out: for each group, its columns added left to right from 0."""
    out = np.zeros((x.shape[0], w.shape[1]))
    for g in range(w.shape[1]):
        for j in range(w.shape[0]):
            if w[j, g]:
                out[:, g] = out[:, g] + x[:, j] * w[j, g] if w[j, g] != 1 else out[:, g] + x[:, j]
    return out


@pytest.fixture
def awkward():
    """Rows where the order of additions shows: 1e16 + 1 - 1e16 is 0 or 1 depending on it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 9)) * 10.0 ** rng.integers(-3, 17, size=(600, 9))
    x[:, :3] = [1e16, 1.0, -1e16]
    w = np.zeros((9, 3))
    w[np.arange(9), [0, 0, 0, 1, 2, 1, 2, 1, 2]] = 1.0
    return x, w


@pytest.mark.parametrize("compiled", [True, False])
def test_the_order_is_columns_left_to_right(awkward, compiled, monkeypatch):
    x, w = awkward
    monkeypatch.setattr(scoring, "_COMPILED_FROM", 1 if compiled else 10 ** 9)
    got = scoring.ordered_product(x, w)
    np.testing.assert_array_equal(got, _loop(x, w))
    assert (got[:, 0] == 0.0).all()                     # (1e16 + 1) - 1e16: the 1 is lost in this order
    reversed_order = _loop(x[:, ::-1], w[::-1])
    assert not np.array_equal(got, reversed_order)       # another order gives other bits: the test can fail


def test_weights_other_than_one_and_a_vector(awkward):
    x, w = awkward
    v = np.array([0.5, 1.0, 0.25, 0.0, 3.0, 1.0, 1.0, 0.1, 2.0])
    np.testing.assert_array_equal(scoring.ordered_product(x, v), _loop(x, v[:, None])[:, 0])

