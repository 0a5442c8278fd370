"""Policy tests: cases worked out by hand (``NAME.tests.yaml``), run against the engine.

A policy's tests file (``docs/policy-format.md``, "Policy tests") lists small
cases: a few branches and members with the facts that matter, and what the
source's rules say follows — each indicator's points, the score, the level,
the designations, the vetoes and the consequences (members: the record, the
annual score, the grade). :func:`check_policy` builds each case's tables,
evaluates them with :func:`~branchsim.evaluate.evaluate_tables` and compares
step by step. Nothing here computes a rule itself: the points come from the
engine's own functions, everything else from the evaluation's result.

What a case does not give:

* an indicator's fact takes the value that earns the indicator's full points
  for the unit's type (and class): binary ``at_least``, deduction
  ``required``, proportion 1, per_event the events that reach the cap, any
  other rule 0; with ``accrual: sum`` each period holds its share of the
  year's value (rounded up);
* a declared fact (``branch.facts``, ``member.facts``) takes the lowest value
  of its range at which no veto, criterion or direct grading reading it fires;
* the survey: every respondent gives the best answer; a member's appraisal: 100;
  ``n_members``: the branch's members in the case (at least the structure's
  minimum); a structure's ``level``: the one its size calls for;
* a member without ``branch`` belongs to a branch made for it (full facts;
  allowed only in cases without branches, so it cannot change their ranks).

Extensions of the format the shipped files use: ``prev: {id: n}`` on a branch
or member (the ``prev_<id>`` column: consecutive years before this one),
``survey_rate`` in a branch's expectation, ``points`` and ``vetoes`` in a
member's (``points`` of a year: with ``accrual: sum`` scored once on the
year's facts, with ``mean`` the mean of the periods' points), ``grade: null``
for an exempt member.

Examples
--------
>>> report = check_policy(data_path("policies", "baseline.yaml"))
>>> bool(report["ok"].all()), failures(report)
(True, [])
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ._policy_cases import _NUMBERS, _SETS, _STEPS, TESTS_SCHEMA, _Ids, _tables, read_tests
from .errors import DataError, PolicyError
from .policy import Policy, as_policy, data_path
from .scheme import SURVEY_COMPONENT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any
    from collections.abc import Mapping
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["check_policy", "failures", "read_tests", "shipped_tests", "TESTS_SCHEMA", "DEFAULT_TOLERANCE",
           "COLUMNS"]

#: Numbers (points, rates, scores, records) agree when they differ by at most this (6 decimals).
DEFAULT_TOLERANCE = 1e-6
#: Columns of the report of :func:`check_policy`.
COLUMNS = ["case", "unit", "step", "expected", "got", "ok"]


# -- running a case ------------------------------------------------------------------------------
def _outcomes(case: dict, policy: Policy) -> dict[str, dict]:
    """What the engine gives each unit of a case: ``{unit id: {step: value}}``."""
    from .evaluate import branch_inputs, branch_outcome, evaluate_tables, member_profiles
    from .scoring import annual_facts, indicator_points, type_codes
    from .tables import check_tables, positions
    s = policy.scheme
    bs, ms = s.branch, s.member
    tables = _tables(case, policy)
    try:
        result = evaluate_tables(policy, *tables)
        b, m, mm = check_tables(policy, *tables)
    except DataError as exc:
        raise PolicyError([f"case {case['name']!r}: the case's tables: {p}" for p in exc.problems],
                          where="policy tests") from None
    inp = branch_inputs(b, s)
    out = branch_outcome(inp, s)
    got: dict[str, dict] = {}
    rows = result.branches
    survey = bs.components.index(SURVEY_COMPONENT) if bs.survey else None
    for i, bid in enumerate(rows["branch_id"]):
        got[bid] = {"points": dict(zip(bs.sheet.ids, out["points"][i].tolist())),
                    "survey_rate": None if survey is None else float(out["components"][i, survey]),
                    "score": float(rows["score"].iat[i]), "level": rows["rating"].iat[i],
                    "designations": [d.id for d in bs.designations if rows[d.id].iat[i]],
                    "vetoes": [v for v in str(rows["vetoes"].iat[i]).split(",") if v],
                    "consequences": [c.id for c in s.consequences_of("branch") if rows[c.id].iat[i]]}
    if m is None:
        return got
    profile, _ = member_profiles(ms, type_codes(b["type"], ms.types)[positions(b["branch_id"], m["branch_id"])],
                                 m["category"])
    who = positions(m["member_id"], mm["member_id"])
    facts = mm[list(ms.sheet.facts)].to_numpy(float)
    if ms.accrual == "sum":
        points = indicator_points(annual_facts(facts, who, len(m), ms.sheet.kind[0]), profile, ms.sheet)
    else:
        per = indicator_points(facts, profile[who], ms.sheet)
        points = np.stack([np.bincount(who, per[:, j], len(m)) for j in range(ms.sheet.k)], axis=1) \
            / np.bincount(who, minlength=len(m))[:, None]
    rows = result.members
    for i, mid in enumerate(rows["member_id"]):
        got[mid] = {"points": dict(zip(ms.sheet.ids, points[i].tolist())), "record": float(rows["record"].iat[i]),
                    "score": float(rows["annual"].iat[i]), "grade": rows["grade"].iat[i],
                    "vetoes": [v for v in str(rows["vetoes"].iat[i]).split(",") if v] if "vetoes" in rows else [],
                    "consequences": [c.id for c in s.consequences_of("member") if rows[c.id].iat[i]]}
    return got


def _steps(kind: str, expected: dict, got: dict, order: dict,
           tol: float) -> Iterator[tuple[str, Any, Any, bool]]:
    """``(step, expected, got, ok)`` for each step an expectation lists, in the order of the rules."""
    for step in _STEPS[kind]:
        if step not in expected:
            continue
        if step == "points":
            for ind in order[(kind, "points")]:
                if ind in expected["points"]:
                    e, g = float(expected["points"][ind]), got["points"][ind]
                    yield f"points.{ind}", e, g, abs(g - e) <= tol
        elif step in _NUMBERS:
            e, g = float(expected[step]), got[step]
            yield step, e, g, g is not None and abs(g - e) <= tol
        elif step in _SETS:
            known = order[(kind, step)]
            e_set = ",".join(x for x in known if x in expected[step])
            g_set = ",".join(x for x in known if x in got[step])
            yield step, e_set, g_set, e_set == g_set and len(set(expected[step])) == len(expected[step])
        else:
            e, g = expected[step], got[step]
            g = None if g is None or (isinstance(g, float) and math.isnan(g)) else g
            yield step, e, g, e == g


def check_policy(policy: PolicyLike, tests: PathLike | Mapping | None = None) -> pd.DataFrame:
    """Run a policy's test cases; one row per checked step of every unit.

    Parameters
    ----------
    policy : Policy or path of a policy file
    tests : path of a tests file, optional
        Default: ``NAME.tests.yaml`` beside the policy file.

    Returns
    -------
    DataFrame with columns ``case``, ``unit``, ``step``, ``expected``,
    ``got`` and ``ok``; numbers agree within the case's ``tolerance``
    (default :data:`DEFAULT_TOLERANCE`), sets of ids (designations, vetoes,
    consequences, written as comma lists in the rules' order) exactly.
    :func:`failures` words the first divergence of each failing unit.

    Raises
    ------
    PolicyError
        The policy or its tests file is invalid (every problem listed), or
        there is no tests file.

    Examples
    --------
    >>> report = check_policy(data_path("policies", "star_quota.yaml"))
    >>> list(report.columns), int(report["case"].nunique()) > 3
    (['case', 'unit', 'step', 'expected', 'got', 'ok'], True)
    """
    policy = as_policy(policy)
    path = Path(tests) if tests is not None else policy.companion("tests")
    if path is None:
        where = str(policy._path) if policy._path is not None else "check_policy"
        raise PolicyError(f"policy {policy.name!r} has no tests file (NAME.tests.yaml beside the policy file); "
                          f"give one", where=where)
    cases = read_tests(path, policy)
    order = _Ids(policy).ids
    rows = []
    for case in cases:
        got = _outcomes(case, policy)
        tol = float(case.get("tolerance", DEFAULT_TOLERANCE))
        kinds = {str(u["id"]): k for k in ("branch", "member")
                 for u in case.get("branches" if k == "branch" else "members") or []}
        for uid, expected in case["expect"].items():
            for step, e, g, ok in _steps(kinds[str(uid)], expected, got[str(uid)], order, tol):
                rows.append((case["name"], str(uid), step, e, g, bool(ok)))
    return pd.DataFrame(rows, columns=COLUMNS)


def _shown(step: str, v: object) -> str:
    if step in _SETS:
        return f"[{v.replace(',', ', ')}]"
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{round(v, 6):.6f}".rstrip("0").rstrip(".")
    return str(v)


def failures(report: pd.DataFrame) -> list[str]:
    """One line per failing unit: its case, the unit and the first step where it diverged.

    >>> r = pd.DataFrame([("c", "b1", "points.x", 2.0, 2.0, True), ("c", "b1", "score", 90.0, 89.5, False),
    ...                   ("c", "b1", "level", "top", "mid", False)], columns=COLUMNS)
    >>> failures(r)
    ["case 'c', unit b1: score: expected 90, got 89.5 (and 1 later step)"]
    """
    lines = []
    bad = report[~report["ok"]]
    for (case, unit), steps in bad.groupby(["case", "unit"], sort=False):
        first = steps.iloc[0]
        later = len(steps) - 1
        step = first["step"]
        more = f" (and {later} later step{'s' * (later > 1)})" if later else ""
        lines.append(f"case {case!r}, unit {unit}: {step}: expected {_shown(step, first['expected'])}, got "
                     f"{_shown(step, first['got'])}{more}")
    return lines


def shipped_tests() -> list[Path]:
    """The shipped policies that have a tests file (``data/policies/*.tests.yaml``).

    >>> [p.name for p in shipped_tests()][:1]
    ['baseline.yaml']
    """
    return [p.with_name(p.name.replace(".tests.yaml", ".yaml"))
            for p in sorted(data_path("policies").glob("*.tests.yaml"))]
