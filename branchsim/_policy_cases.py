"""Reading a policy tests file and building each case's tables (for :mod:`branchsim.policytests`).

The format is ``docs/policy-format.md``, "Policy tests"; what a case leaves
out is filled in as :mod:`branchsim.policytests` describes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PolicyError
from .policy import Policy, read_yaml
from ._schema import _suggest, fact_range, shown
from .scheme import RULE_CODES

if TYPE_CHECKING:
    from ._types import PathLike

TESTS_SCHEMA = "branchsim-policy-tests/1"
_STEPS = {"branch": ("points", "survey_rate", "score", "level", "designations", "vetoes", "consequences"),
          "member": ("points", "record", "score", "grade", "vetoes", "consequences")}
_UNIT_KEYS = {"branch": ("id", "type", "n_members", "level", "facts", "survey", "prev"),
              "member": ("id", "type", "class", "branch", "periods", "facts", "appraisal", "prev")}
_NUMBERS = ("survey_rate", "score", "record")
_SETS = ("designations", "vetoes", "consequences")
_CODES = {v: k for k, v in RULE_CODES.items()}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Ids:
    """The ids a case may name, from the compiled scheme."""

    def __init__(self, policy: Policy):
        s = policy.scheme
        b, m = s.branch, s.member
        self.ids = {
            ("branch", "points"): b.sheet.ids, ("branch", "level"): b.levels.ids,
            ("branch", "designations"): tuple(d.id for d in b.designations),
            ("branch", "vetoes"): b.vetoes.ids,
            ("branch", "consequences"): tuple(c.id for c in s.consequences_of("branch")),
            ("member", "points"): m.sheet.ids if m else (), ("member", "grade"): m.grades.ids if m else (),
            ("member", "vetoes"): m.vetoes.ids if m else (),
            ("member", "consequences"): tuple(c.id for c in s.consequences_of("member"))}


def _problems_of_unit(u, kind: str, where: str, policy: Policy, out: list[str]) -> None:
    s = policy.scheme
    sec = s.branch if kind == "branch" else s.member
    if not isinstance(u, dict):
        out.append(f"{where}: a mapping with {', '.join(_UNIT_KEYS[kind])}")
        return
    for k in u:
        if k not in _UNIT_KEYS[kind]:
            out.append(f"{where}.{k}: unknown key{_suggest(k, _UNIT_KEYS[kind])}; allowed: "
                       f"{', '.join(_UNIT_KEYS[kind])}")
    if "id" not in u:
        out.append(f"{where}: no id")
    if "type" not in u and not (kind == "member" and "branch" in u):
        out.append(f"{where}: no type" + (" (or branch)" if kind == "member" else ""))
    if u.get("type") is not None and str(u["type"]) not in s.branch.types:
        out.append(f"{where}.type: {shown(u['type'])} is not a branch type of policy {policy.name!r}; allowed: "
                   f"{', '.join(s.branch.types)}")
    period_facts = sec.sheet.facts if kind == "member" else ()
    table_facts = sec.facts if kind == "member" else s.branch.facts
    for key, known in (("facts", table_facts), ("periods", period_facts)):
        given = u.get(key) or {}
        if not isinstance(given, dict):
            out.append(f"{where}.{key}: a mapping {{fact: value}}")
            continue
        for f, v in given.items():
            if f not in known:
                out.append(f"{where}.{key}.{f}: not a {'period ' if key == 'periods' else ''}fact of policy "
                           f"{policy.name!r}{_suggest(f, known)}")
            elif key == "periods" and isinstance(v, list):
                if len(v) != sec.periods or not all(_number(x) for x in v):
                    out.append(f"{where}.periods.{f}: {sec.periods} numbers (one per period), or one number "
                               f"for every period; got {shown(v)}")
            elif not _number(v):
                out.append(f"{where}.{key}.{f}: a number; got {shown(v)}")
    prev = u.get("prev")
    if prev is not None:
        from .tables import streak_inputs
        known = streak_inputs(policy)["branches" if kind == "branch" else "members"]
        if not isinstance(prev, dict):
            out.append(f"{where}.prev: a mapping {{id: consecutive years before this one}}; ids of policy "
                       f"{policy.name!r}: {', '.join(known) or 'none (no rule looks back over years)'}")
        else:
            for k, v in prev.items():
                if k not in known:
                    out.append(f"{where}.prev.{k}: not an id whose years a rule counts{_suggest(k, known)}; "
                               f"allowed: {', '.join(known) or 'none'}")
                elif not (_number(v) and v >= 0 and float(v) == int(v)):
                    out.append(f"{where}.prev.{k}: a whole number of years >= 0; got {shown(v)}")
    survey = u.get("survey")
    if kind == "branch" and survey is not None:
        if not s.branch.survey:
            out.append(f"{where}.survey: policy {policy.name!r} has no survey")
        elif not isinstance(survey, dict) or any(a not in s.branch.answers for a in survey) \
                or not all(_number(c) and c >= 0 for c in survey.values()):
            out.append(f"{where}.survey: a mapping {{answer: respondents}}; answers: {', '.join(s.branch.answers)}")
    if kind == "member" and s.member is not None and s.member.classes and u.get("class") not in s.member.classes:
        out.append(f"{where}.class: {shown(u.get('class'))}; allowed: {', '.join(s.member.classes)}")


def _problems_of_expect(exp, kind: str, where: str, ids: _Ids, out: list[str]) -> None:
    if not isinstance(exp, dict):
        out.append(f"{where}: a mapping of steps ({', '.join(_STEPS[kind])})")
        return
    for step, v in exp.items():
        if step not in _STEPS[kind]:
            out.append(f"{where}.{step}: unknown step{_suggest(step, _STEPS[kind])}; allowed for a {kind}: "
                       f"{', '.join(_STEPS[kind])}")
        elif step == "points":
            known = ids.ids[(kind, "points")]
            if not isinstance(v, dict):
                out.append(f"{where}.points: a mapping {{indicator: points}}")
                continue
            for i, p in v.items():
                if i not in known:
                    out.append(f"{where}.points.{i}: not a {kind} indicator{_suggest(i, known)}")
                elif not _number(p):
                    out.append(f"{where}.points.{i}: a number; got {shown(p)}")
        elif step in _NUMBERS:
            if not _number(v):
                out.append(f"{where}.{step}: a number; got {shown(v)}")
        elif step in _SETS:
            known = ids.ids[(kind, step)]
            if not isinstance(v, list) or any(x not in known for x in v):
                out.append(f"{where}.{step}: a list of ids among [{', '.join(known)}]; got {shown(v)}")
        elif not (step == "grade" and v is None) and v not in ids.ids[(kind, step)]:
            out.append(f"{where}.{step}: {shown(v)}; allowed: {', '.join(ids.ids[(kind, step)])}"
                       + (" or null (exempt)" if step == "grade" else ""))


def read_tests(path: PathLike, policy: Policy) -> list[dict]:
    """The cases of a tests file, every problem of the file reported at once (:class:`PolicyError`).

    >>> from branchsim.policy import data_path
    >>> p = Policy.load(data_path("policies", "star_quota.yaml"))
    >>> cases = read_tests(p.companion("tests"), p)
    >>> len(cases) > 3, sorted(cases[0])
    (True, ['branches', 'expect', 'name'])
    """
    where = str(path)
    doc = read_yaml(Path(path), what="policy tests file")
    if not isinstance(doc, dict) or doc.get("schema") != TESTS_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise PolicyError(f"schema: {shown(got)}; a policy tests file starts with 'schema: {TESTS_SCHEMA}'",
                          where=where)
    cases, out, ids, names = doc.get("cases"), [], _Ids(policy), set()
    out += [f"{k}: unknown key; allowed: schema, description, cases" for k in doc
            if k not in ("schema", "description", "cases")]
    if not isinstance(cases, list) or not cases:
        raise PolicyError(out + ["cases: a non-empty list of cases"], where=where)
    for i, case in enumerate(cases):
        at = f"cases[{i}]"
        if not isinstance(case, dict):
            out.append(f"{at}: a mapping with name, branches and/or members, expect")
            continue
        at = f"{at} ({shown(case.get('name'))})"
        allowed = ("name", "description", "tolerance", "branches", "members", "expect")
        out += [f"{at}.{k}: unknown key{_suggest(k, allowed)}; allowed: {', '.join(allowed)}"
                for k in case if k not in allowed]
        if not isinstance(case.get("name"), str) or case["name"] in names:
            out.append(f"{at}.name: a text naming the case, once in the file")
        names.add(case["name"] if isinstance(case.get("name"), str) else None)
        if "tolerance" in case and not (_number(case["tolerance"]) and case["tolerance"] >= 0):
            out.append(f"{at}.tolerance: a number >= 0; got {shown(case['tolerance'])}")
        units = {}
        for kind in ("branch", "member"):
            given = case.get(f"{kind}es" if kind == "branch" else "members") or []
            if not isinstance(given, list):
                out.append(f"{at}.{kind}s: a list")
                continue
            if given and kind == "member" and policy.scheme.member is None:
                out.append(f"{at}.members: policy {policy.name!r} rates branches only")
                continue
            for j, u in enumerate(given):
                _problems_of_unit(u, kind, f"{at}.{kind}{'es' if kind == 'branch' else 's'}[{j}]", policy, out)
                uid = str(u.get("id")) if isinstance(u, dict) else None
                if kind == "member" and isinstance(u, dict) and u.get("branch") is None and case.get("branches"):
                    out.append(f"{at}.members[{j}]: give its branch (one of the case's branches); a branch made "
                               f"for it would change the case's ranks and quotas")
                elif kind == "member" and isinstance(u, dict) and u.get("branch") is not None:
                    owner = next((b for b in case.get("branches") or [] if isinstance(b, dict)
                                  and str(b.get("id")) == str(u["branch"])), None)
                    if owner is None or ("type" in u and str(u["type"]) != str(owner.get("type"))):
                        out.append(f"{at}.members[{j}].branch: {shown(u['branch'])} is not a branch of the case"
                                   + ("" if owner is None else f" of the member's type {u['type']!r}"))
                if uid in units:
                    out.append(f"{at}: unit id {uid!r} given twice")
                units[uid] = kind
        if not units:
            out.append(f"{at}: no branches and no members")
        expect = case.get("expect")
        if not isinstance(expect, dict) or not expect:
            out.append(f"{at}.expect: a mapping {{unit id: expected steps}}")
            continue
        for uid, exp in expect.items():
            if str(uid) not in units:
                out.append(f"{at}.expect.{uid}: not a unit of the case{_suggest(str(uid), units)}")
            else:
                _problems_of_expect(exp, units[str(uid)], f"{at}.expect.{uid}", ids, out)
    if out:
        raise PolicyError(out, where=where)
    return cases


# -- the tables of a case ------------------------------------------------------------------------
def _full_value(sheet, p: int, j: int, periods: int = 1) -> float:
    """The fact that earns indicator ``j`` its full points for profile ``p`` (a year's value / periods).

    >>> from branchsim.policy import data_path
    >>> sheet = Policy.load(data_path("policies", "member_points.yaml")).scheme.member.sheet
    >>> j = sheet.ids.index("study_sessions")          # 2 points a session, at most 12 a year
    >>> _full_value(sheet, 0, j), _full_value(sheet, 0, j, periods=4)
    (6.0, 2.0)
    """
    rule = _CODES[int(sheet.kind[p, j])]
    if rule == "binary":
        return float(sheet.at_least[p, j])
    if rule == "proportion":
        return 1.0
    if rule == "deduction":
        year = sheet.required[p, j]
    elif rule == "per_event" and sheet.per_event[p, j] > 0:
        year = math.ceil(sheet.points[p, j] / sheet.per_event[p, j] - 1e-9)
    else:
        return 0.0
    return float(math.ceil(year / periods - 1e-9)) if periods > 1 else float(year)


def _neutral(entry: dict, rules: list[tuple[float, bool]]) -> float:
    """The lowest value in a declared fact's range at which none of ``rules`` (threshold, at_least) fires."""
    value = max([fact_range(entry)[0]] + [t for t, at_least in rules if not at_least])
    if entry.get("kind") in ("binary", "count"):
        value = math.ceil(value - 1e-9)
    return float(value)


def _declared(section, vetoes, extra: list[tuple[str, float, bool]]) -> dict[str, float]:
    rules: dict[str, list] = {f: [] for f in section.fact_entries}
    for f, t, al in list(zip(vetoes.fact, vetoes.threshold, vetoes.at_least)) + extra:
        if f in rules:
            rules[f].append((float(t), bool(al)))
    return {f: _neutral(e, rules[f]) for f, e in section.fact_entries.items()}


def _tables(case: dict, policy: Policy):
    """The branches, members and member-periods tables of a case (None, None without members)."""
    s = policy.scheme
    bs, ms = s.branch, s.member
    branches = [dict(b) for b in case.get("branches") or []]
    members = case.get("members") or []
    for mem in members:
        bid = f"_{mem.get('type')}"
        if mem.get("branch") is None and not any(str(b["id"]) == bid for b in branches):
            branches.append({"id": bid, "type": mem["type"]})
    extra = [(c.fact, c.value, c.kind == "fact_at_least") for d in bs.designations for c in d.criteria
             if c.kind in ("fact_below", "fact_at_least")]
    extra += list(zip(bs.rating.direct_fact, bs.rating.direct_at_least, [True] * len(bs.rating.direct_ids)))
    neutral = _declared(bs, bs.vetoes, extra)
    owner = {str(mem["id"]): str(mem.get("branch") or f"_{mem['type']}") for mem in members}
    b_rows = []
    for b in branches:
        p = bs.types.index(str(b["type"]))
        n = b.get("n_members", max(sum(o == str(b["id"]) for o in owner.values()), 1,
                                   int(s.structure.start[0]) if s.structure else 1))
        row = {"branch_id": str(b["id"]), "type": str(b["type"]), "n_members": n}
        if s.structure is not None:
            from .scoring import required_level
            row["level"] = b.get("level", s.structure.ids[int(required_level(np.array([n]), s.structure)
                                                              ["level"][0])])
        row.update({f"prev_{k}": v for k, v in (b.get("prev") or {}).items()})
        survey = (b.get("survey") or {bs.answers[0]: 1}) if bs.survey else {}
        row.update({f"survey_{a}": survey.get(a, 0) for a in bs.answers})
        row.update({f: _full_value(bs.sheet, p, j) for j, f in enumerate(bs.sheet.facts)})
        row.update(neutral)
        row.update(b.get("facts") or {})
        b_rows.append(row)
    if not members:
        return pd.DataFrame(b_rows), None, None
    m_neutral = _declared(ms, ms.vetoes, [])
    types = {str(b["id"]): str(b["type"]) for b in branches}
    m_rows, mm_rows = [], []
    for mem in members:
        btype = types[owner[str(mem["id"])]]
        cls = mem.get("class", "member")
        p = ms.types.index(btype) * (len(ms.classes) or 1) + (ms.classes.index(cls) if ms.classes else 0)
        row = {"member_id": str(mem["id"]), "branch_id": owner[str(mem["id"])], "category": cls,
               "appraisal": mem.get("appraisal", 100.0), **m_neutral, **(mem.get("facts") or {})}
        row.update({f"prev_{k}": v for k, v in (mem.get("prev") or {}).items()})
        m_rows.append(row)
        given = mem.get("periods") or {}
        for t in range(ms.periods):
            r = {"member_id": str(mem["id"]), "month": t + 1}
            for j, f in enumerate(ms.sheet.facts):
                v = given.get(f)
                r[f] = v[t] if isinstance(v, list) else v if v is not None else \
                    _full_value(ms.sheet, p, j, ms.periods if ms.accrual == "sum" else 1)
            mm_rows.append(r)
    return pd.DataFrame(b_rows), pd.DataFrame(m_rows), pd.DataFrame(mm_rows)


