"""Shared fixtures: the baseline policy, the example tables, and tiny hand-built tables.

The helpers build rows where every indicator earns its full points, so a test
can knock down one or two facts and work the score out by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.scheme import RULE_CODES, Sheet

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "data" / "examples"
SEED = REPO.parent / "shared" / "seed" / "000_ccd209e4c601e2c4.txt"


@pytest.fixture(autouse=True)
def _english_labels():
    """Figures label in English unless a test asks for the source's terms (``bp.use_cjk = True`` or its
    own fixture): tests that read label text then hold on a machine with or without a CJK font (one
    ships as a dependency: branchsim.plot.labels.PIP_FONT_PACKAGES)."""
    import branchsim.plot as bp
    before = getattr(bp, "use_cjk", "auto")
    bp.use_cjk = False
    yield
    bp.use_cjk = before


@pytest.fixture(scope="session")
def policy() -> bs.Policy:
    # Policy is immutable, so one instance can be shared by every test.
    return bs.Policy.load()


@pytest.fixture(scope="session")
def _examples() -> dict:
    return {name: pd.read_csv(EXAMPLES / f"{name}.csv")
            for name in ("branches", "members", "member_months")}


@pytest.fixture
def examples(_examples) -> dict:
    """Fresh copies of the example tables (a test may modify its own copy)."""
    return {k: v.copy(deep=True) for k, v in _examples.items()}


def full_facts(indicators: dict) -> dict:
    """Facts that earn every indicator its full points and no bonus."""
    out = {}
    for ind in indicators.values():
        rule = ind["rule"]
        if rule in ("binary", "proportion"):
            out[ind["fact"]] = 1.0
        elif rule == "deduction":
            out[ind["fact"]] = ind["required"]["value"]
        else:  # bonus: none earned
            out[ind["fact"]] = 0.0
    return out


def branch_row(policy: bs.Policy, branch_id: str = "X1", type: str = "village", *,
               survey=(10, 0, 0), n_members: int = 20, level: str = "branch",
               prev_weak: int = 0, **facts) -> dict:
    """One branches-table row: full marks, all survey answers satisfied, unless overridden."""
    row = {"branch_id": branch_id, "type": type, "level": level, "n_members": n_members,
           "prev_weak": prev_weak, "survey_satisfied": survey[0], "survey_basic": survey[1],
           "survey_dissatisfied": survey[2]}
    row.update(full_facts(policy.branch_indicators))
    unknown = set(facts) - set(row)
    assert not unknown, f"not a branch fact: {unknown}"
    row.update(facts)
    return row


def month_row(policy: bs.Policy, member_id: str, month: int, *, zero: bool = False, **facts) -> dict:
    """One member_months row: full marks (monthly score 100), or all facts 0 (score 0)."""
    base = full_facts(policy.member_indicators)
    if zero:
        base = {k: 0.0 for k in base}
    unknown = set(facts) - set(base)
    assert not unknown, f"not a member fact: {unknown}"
    base.update(facts)
    return {"member_id": member_id, "month": month, **base}


def sheet(*inds, profiles: int = 1, groups=("g",)) -> Sheet:
    """A compiled sheet of hand-made indicators: each a dict with ``rule``, ``group`` (index) and the
    rule's parameters; a parameter given as a list holds one value per profile."""
    k = len(inds)

    def arr(key, default=0.0):
        out = np.full((profiles, k), float(default))
        for j, ind in enumerate(inds):
            if key in ind:
                out[:, j] = ind[key]
        return out
    return Sheet(ids=tuple(f"i{j}" for j in range(k)), facts=tuple(f"f{j}" for j in range(k)),
                 labels=tuple(f"i{j}" for j in range(k)), group_ids=tuple(groups),
                 group=np.array([ind.get("group", 0) for ind in inds], dtype=np.intp),
                 profiles=tuple(f"p{i}" for i in range(profiles)),
                 kind=np.array([[RULE_CODES[ind["rule"]] for ind in inds]] * profiles, dtype=np.int8),
                 points=arr("points"), required=arr("required"), per_shortfall=arr("per_shortfall"),
                 per_unit=arr("per_unit"), per_event=arr("per_event"), per_occurrence=arr("per_occurrence"),
                 at_least=arr("at_least", 1.0), target=np.array([ind.get("target", -1) for ind in inds]),
                 places=np.zeros((profiles, k, 1)), otherwise=arr("otherwise"), within=(None,) * k,
                 high_first=np.ones(k, dtype=bool), state=np.zeros(k, dtype=bool),
                 ranges=np.tile([0.0, 1e12], (k, 1)))


# -- generated populations --------------------------------------------------------------
TABLES = ("branches", "members", "member_months")


def assert_same_population(a, b) -> None:
    """All three tables identical: values, dtypes, column order, index."""
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


@pytest.fixture(scope="session")
def city() -> "bs.Population":
    """The default city (1,500 branches, ~32,000 members), seed 0. Shared: do not modify."""
    return bs.generate(seed=0)


@pytest.fixture(scope="session")
def city_result(city) -> "bs.Result":
    return bs.evaluate(city)


# -- the narrowed-dispatch run (tests/test_platform.py) ------------------------------------
NARROWED = "test_platform.py::test_notebooks_and_doctests_under_narrowed_dispatch"


@pytest.hookimpl(trylast=True)             # after -k / -m deselection: only when the test will run
def pytest_collection_modifyitems(session, config, items):
    """Start the second, narrowed-dispatch run of the notebooks now and wait for it last.

    It runs in a subprocess beside the rest of the suite (the machine's second
    core), so it adds little to the suite's wall time; its test goes to the end.
    """
    waiting = [i for i in items if i.nodeid.endswith(NARROWED)]
    if not waiting or config.getoption("collectonly"):
        return
    items[:] = [i for i in items if i not in waiting] + waiting
    module = waiting[0].module
    config.add_cleanup(module.stop)
    module.start()
