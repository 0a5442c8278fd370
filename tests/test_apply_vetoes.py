"""apply_vetoes against the rule stated unit by unit (cap: at most; force: exactly; the lowest wins)."""
from __future__ import annotations

import numpy as np
import pytest

from branchsim.rating import apply_vetoes
from branchsim.scheme import Vetoes


def _by_hand(codes, fired, effect, level):
    out = []
    for code, row in zip(codes, fired):
        caps = [int(lv) for f, e, lv in zip(row, effect, level) if f and e == "cap"]
        forces = [int(lv) for f, e, lv in zip(row, effect, level) if f and e == "force"]
        if not caps and not forces:
            out.append(int(code))
            continue
        capped = min(int(code), *caps) if caps else np.inf
        out.append(int(min(capped, min(forces) if forces else np.inf)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_apply_vetoes_equals_the_rule_unit_by_unit(seed):
    rng = np.random.default_rng(seed)
    v = int(rng.integers(1, 6))
    effect = tuple(rng.choice(["cap", "force", ""], v))
    level = rng.integers(0, 5, v).astype(np.int8)
    vetoes = Vetoes(tuple(f"v{j}" for j in range(v)), tuple(f"f{j}" for j in range(v)), tuple("x" * v),
                    np.ones(v), np.zeros(v, bool), effect, level, np.ones(v, bool))
    codes = rng.integers(0, 5, 400).astype(np.int8)
    fired = rng.random((400, v)) < 0.3
    got = apply_vetoes(codes, fired, vetoes)
    assert got.dtype == np.int8
    assert got.tolist() == _by_hand(codes, fired, effect, level)


def test_a_force_may_raise_a_level_and_a_cap_never_does():
    vetoes = Vetoes(("c", "f"), ("a", "b"), ("x", "y"), np.ones(2), np.zeros(2, bool), ("cap", "force"),
                    np.array([3, 2], dtype=np.int8), np.ones(2, bool))
    codes = np.array([0, 4, 0, 4], dtype=np.int8)
    fired = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], bool)
    assert apply_vetoes(codes, fired, vetoes).tolist() == [0, 3, 2, 2]
