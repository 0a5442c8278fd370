"""The shape of a policy file, and the checks that walk it.

The schema is plain data (nested dicts of small spec objects) so the same
walk both validates a file and lists its parameters by dotted path. The
semantic checks that span several entries (shares adding up, cut points in
order, vetoes naming indicators) live in :func:`semantic_problems`.
"""
from __future__ import annotations

import difflib
import math
import reprlib
from dataclasses import dataclass
from typing import Any

PROVENANCE_KEYS = ("quote", "assumption")
RULES = ("binary", "deduction", "proportion", "bonus")
RULE_PARAMS = {
    "binary": (),
    "deduction": ("required", "per_shortfall"),
    "proportion": (),
    "bonus": ("per_unit",),
}
GRADES = ("excellent", "qualified", "basic", "warning")  # unqualified is below warning
ANSWERS = ("satisfied", "basic", "dissatisfied")
ACTIONS = ("talk", "reorganise", "mentoring", "handling")
STAR_KEYS = ("1", "2", "3", "4", "5")


@dataclass(frozen=True)
class Param:
    """A parameter leaf: ``{value: ..., quote|assumption: ...}``."""

    kind: str = "number"  # number | int | bool
    lo: float | None = None
    hi: float | None = None
    optional: bool = False

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        what = "a whole number" if self.kind == "int" else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{what} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{what} >= {self.lo:g}"
        return what


@dataclass(frozen=True)
class Text:
    optional: bool = False
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Many:
    """A mapping from user-chosen ids (or a fixed key set) to one sub-schema."""

    item: Any
    keys: tuple[str, ...] | None = None
    optional: bool = False


class OptionalBlock(dict):
    """A fixed-key block that may be absent (walked like a plain dict when present).

    Used for sections added after the first policy files were written
    (``interventions``, ``consequences.effects``), so older files still load.
    """

    optional = True


@dataclass(frozen=True)
class Range:
    """A fact's plausible range: ``{value: [low, high], quote|assumption: ...}``.

    Not a parameter of the rules (no rule reads it, ``update`` and sweeps do not
    change it): a bound on the data, checked when tables are loaded.
    """

    optional: bool = False


@dataclass(frozen=True)
class Opt:
    """An optional fixed-key block."""

    block: dict


def _indicator(group_key: str) -> dict:
    return {
        "label": Text(),
        group_key: Text(),
        "fact": Text(),
        "unit": Text(optional=True),
        "rule": Text(choices=RULES),
        "points": Param(lo=0),
        "required": Param(lo=0, optional=True),
        "per_shortfall": Param(lo=0, optional=True),
        "per_unit": Param(lo=0, optional=True),
        # Plausible values of the fact (checked on loaded tables); provenance like a parameter.
        "range": Range(optional=True),
        # Deduction rules: true when a zero fact may keep points on purpose (default: the
        # deductions must be able to take the indicator to 0 for every branch type).
        "keeps_points_at_zero": Param(kind="bool", optional=True),
    }


_TYPE_OVERRIDE = Many({"points": Param(lo=0)}, optional=True)

SCHEMA: dict = {
    "schema": Text(),
    "name": Text(),
    "description": Text(optional=True),
    "source": Text(optional=True),
    "branch": {
        "satisfaction_share": Param(lo=0, hi=1),
        "dimensions": Many({"label": Text(), "share": Param(lo=0, hi=1)}),
        "survey": {"answer_values": Many(Param(lo=0, hi=1), keys=ANSWERS)},
        "indicators": Many(_indicator("dimension")),
        "types": Many({
            "label": Text(),
            "satisfaction_share": Param(lo=0, hi=1, optional=True),
            "indicators": _TYPE_OVERRIDE,
        }),
        "star_cuts": Many(Param(lo=0, hi=100), keys=STAR_KEYS),
        "weak_below": Param(lo=0, hi=100),
        "vetoes": Many({
            "label": Text(),
            "indicator": Text(),
            "below": Param(),
            "max_star": Param(kind="int", lo=0, hi=5),
            "weak": Param(kind="bool"),
        }, optional=True),
    },
    "member": {
        "monthly_share": Param(lo=0, hi=1),
        "appraisal_share": Param(lo=0, hi=1),
        "groups": Many({"label": Text()}),
        "indicators": Many(_indicator("group")),
        "types": Many({"label": Text(optional=True), "indicators": _TYPE_OVERRIDE}, optional=True),
        "grade_cuts": Many(Param(lo=0, hi=100), keys=GRADES),
    },
    "consequences": {
        "reorganise_after": Param(kind="int", lo=1),
        "actions": Many({"label": Text(), "quote": Text()}, keys=ACTIONS),
        # Effect of each consequence on the true quality (attainment scale), used by dynamics.
        "effects": OptionalBlock({a: Param(lo=-1, hi=1) for a in ACTIONS}),
    },
    # Interventions simulated year by year (branchsim.dynamics); each may be left out.
    "interventions": OptionalBlock({
        "rectification": OptionalBlock({"label": Text(), "count": Param(kind="int", lo=0),
                                        "effect": Param(lo=-1, hi=1)}),
        "training": OptionalBlock({"label": Text(), "coverage": Param(lo=0, hi=1),
                                   "effect": Param(lo=-1, hi=1)}),
        "first_secretaries": OptionalBlock({"label": Text(), "count": Param(kind="int", lo=0),
                                            "effect": Param(lo=-1, hi=1)}),
        "instructors": OptionalBlock({"label": Text(), "count": Param(kind="int", lo=0),
                                      "effect": Param(lo=-1, hi=1)}),
    }),
    "structure": {
        "min_members": Param(kind="int", lo=1),
        "committee_from": Param(kind="int", lo=1),
        "general_branch_from": Param(kind="int", lo=1),
        "party_committee_from": Param(kind="int", lo=1),
    },
}


#: Largest magnitude of any number in a policy: points, counts and thresholds far below it
#: keep every sum exact enough and finite (1e308 points overflowed a dimension total to inf).
MAX_NUMBER = 1e12
#: Longest text of a value quoted in an error message.
MAX_SHOWN = 80


class _PlainRepr(reprlib.Repr):
    """A bounded repr of plain values: numpy scalars shown as Python numbers."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 2, 4, 6, 6
        self.maxstring, self.maxother, self.maxlong = 60, 60, 24

    def repr1(self, x, level):
        if hasattr(x, "item") and type(x).__module__ == "numpy" and getattr(x, "ndim", 1) == 0:
            x = x.item()
        return super().repr1(x, level)

    def repr_int(self, x, level):
        text = repr(x) if x.bit_length() < 80 else f"{'-' if x < 0 else ''}<a whole number of " \
            f"{len(str(abs(x))) if x.bit_length() < 20000 else 'thousands of'} digits>"
        return text


_REPR = _PlainRepr()


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A value as quoted in an error message: plain (``1``, not ``np.int64(1)``) and short.

    >>> import numpy as np
    >>> shown(np.int64(1)), shown(np.float64("nan")), len(shown("x" * 200))
    ('1', 'nan', 60)
    >>> shown(10 ** 400)
    '<a whole number of 401 digits>'
    """
    try:
        text = _REPR.repr(value)
    except Exception:               # an object whose repr fails: name its type only
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """``math.isfinite`` for any int or float, huge ints included (no OverflowError)."""
    try:
        return math.isfinite(value) and abs(value) <= MAX_NUMBER
    except OverflowError:
        return False


def fact_range(ind: dict) -> tuple[float, float]:
    """The plausible range ``(low, high)`` of an indicator's fact.

    ``ind`` is one indicator of a policy (``policy.branch_indicators[id]``).
    Its ``range`` entry when it has one; otherwise derived from the rule form:
    ``binary`` and ``proportion`` facts are in [0, 1]; a ``deduction`` count
    in [0, 10 × required] (at least 10); a ``bonus`` count in
    [0, 10 × the units that reach the cap] (at least 10). Loaded tables are
    refused when a fact lies outside it (see ``docs/policy-format.md``).

    Examples
    --------
    >>> fact_range({"rule": "binary"}), fact_range({"rule": "deduction", "required": {"value": 4}})
    ((0.0, 1.0), (0.0, 40.0))
    >>> fact_range({"rule": "bonus", "points": {"value": 4}, "per_unit": {"value": 2}})
    (0.0, 20.0)
    """
    given = ind.get("range")
    if isinstance(given, dict) and range_problem(given.get("value")) is None:
        low, high = given["value"]
        return float(low), float(high)
    rule = ind.get("rule")
    if rule in ("binary", "proportion"):
        return 0.0, 1.0
    if rule == "deduction":
        full = _val(ind, "required", default=1) or 1
    else:
        per_unit = _val(ind, "per_unit", default=0) or 0
        full = math.ceil(_val(ind, "points", default=1) / per_unit) if per_unit > 0 else 1
    return 0.0, float(max(10.0, 10.0 * full))


def _suggest(key: str, allowed) -> str:
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def value_problem(spec: Param, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec``, or None when it does.

    >>> value_problem(Param(lo=0), 10 ** 400)
    'got <a whole number of 401 digits>; allowed: a number >= 0 (numbers in a policy are at most 1e+12 in size)'
    """
    if spec.kind == "bool":
        return None if isinstance(value, bool) else f"got {shown(value)}; allowed: {spec.describe()}"
    if not _is_number(value):
        return f"got {shown(value)} ({type(value).__name__}); allowed: {spec.describe()}"
    if not _finite(value):
        huge = not isinstance(value, float) or math.isfinite(value)
        return f"got {shown(value)}; allowed: {spec.describe()}" + (
            f" (numbers in a policy are at most {MAX_NUMBER:g} in size)" if huge else "")
    if spec.kind == "int" and float(value) != int(value):
        return f"got {shown(value)}; allowed: {spec.describe()}"
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        return f"got {shown(value)}; allowed: {spec.describe()}"
    return None


def _provenance_problems(node: dict, where: str, problems: list[str]) -> None:
    prov = [k for k in PROVENANCE_KEYS if k in node]
    if len(prov) != 1:
        problems.append(f"{where}: needs exactly one of 'quote' or 'assumption' (its provenance)")
    elif not isinstance(node[prov[0]], str) or not node[prov[0]].strip():
        problems.append(f"{where}.{prov[0]}: must be a non-empty text")


def range_problem(value: Any) -> str | None:
    """Why ``value`` is not a fact range ``[low, high]``, or None when it is.

    >>> range_problem([0, 60]) is None
    True
    >>> range_problem([5, 1])
    'got [5, 1]; allowed: [low, high] with 0 <= low <= high <= 1e+12'
    """
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(_is_number(v) and _finite(v) for v in value)
          and 0 <= value[0] <= value[1] <= MAX_NUMBER)
    return None if ok else f"got {shown(value)}; allowed: [low, high] with 0 <= low <= high <= {MAX_NUMBER:g}"


def walk(node: Any, spec: Any, path: str, problems: list[str], params: dict) -> None:
    """Check ``node`` against ``spec``; record parameters as ``params[path] = (spec, leaf)``."""
    where = path or "<top>"
    if isinstance(spec, (Range, Param)):
        what = ("a fact range must be a mapping with 'value: [low, high]' and" if isinstance(spec, Range)
                else "a parameter must be a mapping with 'value' and")
        if not isinstance(node, dict) or "value" not in node:
            problems.append(f"{where}: {what} 'quote' or 'assumption'; got {shown(node)}")
            return
        extra = set(node) - {"value", *PROVENANCE_KEYS}
        if extra:
            problems.append(f"{where}: unknown key(s) {sorted(map(str, extra))}; allowed: value, quote, assumption")
        _provenance_problems(node, where, problems)
        bad = range_problem(node["value"]) if isinstance(spec, Range) else value_problem(spec, node["value"])
        if bad:
            problems.append(f"{where}: {bad}")
        if isinstance(spec, Param):
            params[path] = (spec, node)
        return
    if isinstance(spec, Text):
        if not isinstance(node, str):
            problems.append(f"{where}: expected a text, got {shown(node)}")
        elif spec.choices and node not in spec.choices:
            problems.append(f"{where}: {shown(node)} is not allowed{_suggest(node, spec.choices)}; "
                            f"allowed: {', '.join(spec.choices)}")
        return
    if isinstance(spec, Many):
        if not isinstance(node, dict) or not node:
            problems.append(f"{where}: expected a non-empty mapping of ids, got {shown(node)}")
            return
        for key, sub in node.items():
            if spec.keys is not None and str(key) not in spec.keys:
                problems.append(f"{where}: unknown key {shown(key)}{_suggest(key, spec.keys)}; "
                                f"allowed: {', '.join(spec.keys)}")
                continue
            walk(sub, spec.item, f"{path}.{key}", problems, params)
        if spec.keys is not None and spec.keys in (GRADES, ACTIONS, ANSWERS):
            missing = [k for k in spec.keys if k not in {str(k2) for k2 in node}]
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
        return
    if isinstance(spec, dict):
        if not isinstance(node, dict):
            problems.append(f"{where}: expected a mapping, got {shown(node)}")
            return
        for key in node:
            if key not in spec:
                problems.append(f"{where}: unknown key {shown(key)}{_suggest(key, spec)}; "
                                f"allowed: {', '.join(spec)}")
        for key, sub in spec.items():
            sub_path = f"{path}.{key}" if path else key
            if key not in node:
                if not getattr(sub, "optional", False):
                    problems.append(f"{sub_path}: missing")
                continue
            walk(node[key], sub, sub_path, problems, params)
        return
    raise TypeError(f"bad schema entry at {where}: {spec!r}")  # pragma: no cover


def _val(node: dict, *keys, default=None):
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return default
        node = node[k]
    return node["value"] if isinstance(node, dict) and "value" in node else node


def _indicator_problems(inds: dict, group_key: str, groups: dict, path: str) -> list[str]:
    out = []
    facts: dict[str, str] = {}
    for iid, ind in inds.items():
        if not isinstance(ind, dict):
            continue
        if ind.get(group_key) not in groups:
            out.append(f"{path}.{iid}.{group_key}: {shown(ind.get(group_key))} is not one of "
                       f"{', '.join(groups)}{_suggest(ind.get(group_key), groups)}")
        rule = ind.get("rule")
        for p in RULE_PARAMS.get(rule, ()):
            if p not in ind:
                out.append(f"{path}.{iid}.{p}: missing (rule {rule!r} needs {', '.join(RULE_PARAMS[rule])})")
        for p in ("required", "per_shortfall", "per_unit"):
            if p in ind and rule in RULE_PARAMS and p not in RULE_PARAMS[rule]:
                out.append(f"{path}.{iid}.{p}: not used by rule {rule!r}; allowed: "
                           f"{', '.join(RULE_PARAMS[rule]) or 'no extra parameters'}")
        fact = ind.get("fact")
        if fact in facts:
            out.append(f"{path}.{iid}.fact: {shown(fact)} is already the fact of {facts[fact]}")
        facts[fact] = iid
    return out


def _type_problems(section: dict, group_key: str, path: str) -> list[str]:
    """Overrides name known indicators; every weighted group keeps positive maximum points."""
    out = []
    inds = section.get("indicators") or {}
    groups = section.get("dimensions" if group_key == "dimension" else "groups") or {}
    for tid, tdef in (section.get("types") or {}).items():
        over = (tdef or {}).get("indicators") or {}
        for iid in over:
            if iid not in inds:
                out.append(f"{path}.types.{tid}.indicators.{iid}: no such indicator"
                           f"{_suggest(iid, inds)}")
        for gid in groups:
            share = _val(groups[gid], "share", default=1.0)
            total = sum(
                _val(over.get(iid, ind), "points", default=0) or 0
                for iid, ind in inds.items()
                if isinstance(ind, dict) and ind.get(group_key) == gid and ind.get("rule") != "bonus"
            )
            if share and total <= 0:
                out.append(f"{path}.types.{tid}: {group_key} {gid!r} has no points left "
                           f"(all its indicators are 0 for this type)")
    return out


def reserved_columns() -> dict[str, set[str]]:
    """Table columns a fact may not be named after: ``{"branch": {...}, "member": {...}}``.

    Read from the data dictionary in :mod:`branchsim.tables` (the fixed
    columns of the branches table; of the members and member-months tables),
    so the two lists cannot drift apart.

    >>> sorted(reserved_columns()["member"])[:3]
    ['appraisal', 'branch_id', 'category']
    """
    from . import tables        # imported here: tables imports policy, which imports this module
    given = tables.RESERVED_COLUMNS     # {table name: column names}
    return {"branch": set(given["branches"]), "member": set(given["members"]) | set(given["member_months"])}


def _reserved_problems(inds: dict, reserved: set[str], table: str, path: str) -> list[str]:
    out = []
    for iid, ind in inds.items():
        fact = ind.get("fact") if isinstance(ind, dict) else None
        if fact in reserved:
            out.append(f"{path}.{iid}.fact: {shown(fact)} is a column of the {table} table itself; "
                       f"name the fact otherwise (reserved: {', '.join(sorted(reserved))})")
    return out


def _deduction_problems(section: dict, path: str) -> list[str]:
    """A deduction must be able to take its indicator to 0 (for every type), unless declared."""
    out = []
    inds = section.get("indicators") or {}
    types = section.get("types") or {}
    for iid, ind in inds.items():
        keeps = ind.get("keeps_points_at_zero")
        if ind.get("rule") != "deduction":
            if keeps is not None:
                out.append(f"{path}.indicators.{iid}.keeps_points_at_zero: only deduction rules have it "
                           f"(this one is {shown(ind.get('rule'))})")
            continue
        if _val(ind, "keeps_points_at_zero", default=False) is True:
            continue
        if not all(_is_number(_val(ind, k)) for k in ("points", "required", "per_shortfall")):
            continue                    # reported as missing or wrong by the other checks
        lost = _val(ind, "per_shortfall", default=0) * _val(ind, "required", default=0)
        tops = [(f"{path}.indicators.{iid}.points", _val(ind, "points", default=0))]
        tops += [(f"{path}.types.{tid}.indicators.{iid}.points",
                  _val(((tdef or {}).get("indicators") or {})[iid], "points", default=0))
                 for tid, tdef in types.items() if iid in (((tdef or {}).get("indicators")) or {})]
        for where, top in tops:
            if not _is_number(top):
                continue
            if top - lost > 1e-9:
                out.append(f"{where}: {top:g} points, but per_shortfall × required = "
                           f"{_val(ind, 'per_shortfall'):g} × {_val(ind, 'required'):g} = {lost:g}, so a fact of 0 "
                           f"still earns {top - lost:g} of them; raise {path}.indicators.{iid}.per_shortfall to at "
                           f"least {top / _val(ind, 'required'):g} if that is not meant"
                           if _val(ind, "required") else
                           f"{where}: {top:g} points, but required is 0, so a fact of 0 earns full points")
                if not out[-1].endswith("full points"):
                    out[-1] += f", or set {path}.indicators.{iid}.keeps_points_at_zero to true if it is"
    return out


def _range_problems(inds: dict, path: str) -> list[str]:
    out = []
    for iid, ind in inds.items():
        given = ind.get("range")
        if isinstance(given, dict) and ind.get("rule") in ("binary", "proportion") \
                and range_problem(given.get("value")) is None and given["value"][1] > 1:
            out.append(f"{path}.{iid}.range: {shown(given['value'])} goes beyond 1; a {ind['rule']} fact "
                       f"is in [0, 1]")
        elif isinstance(given, dict) and ind.get("rule") == "deduction" and range_problem(given.get("value")) \
                is None and _is_number(_val(ind, "required")) and given["value"][1] < _val(ind, "required"):
            out.append(f"{path}.{iid}.range: {shown(given['value'])} ends below required "
                       f"({_val(ind, 'required'):g}): no unit could earn full points; allowed: a high end "
                       f"of at least {_val(ind, 'required'):g}")
    return out


def _sum_problems(section: dict, group_key: str, path: str) -> list[str]:
    """Point totals (per group and for the whole sheet, bonuses included) must be representable."""
    out = []
    inds = section.get("indicators") or {}
    types = {"": {}} | {t: ((d or {}).get("indicators") or {}) for t, d in (section.get("types") or {}).items()}
    for tid, over in types.items():
        totals: dict[str, float] = {}
        for iid, ind in inds.items():
            pts = _val(over.get(iid, ind), "points", default=0)
            if _is_number(pts) and _finite(pts):
                totals[str(ind.get(group_key))] = totals.get(str(ind.get(group_key)), 0.0) + float(pts)
        where = f"{path}.types.{tid}" if tid else f"{path}.indicators"
        sheet = sum(totals.values())
        if not math.isfinite(sheet) or sheet > MAX_NUMBER:
            big = max(totals, key=lambda g: totals[g])
            out.append(f"{where}: the points add up to {sheet:g} ({group_key} {shown(big)}: {totals[big]:g}); "
                       f"allowed: totals of at most {MAX_NUMBER:g} per score sheet")
    return out


def semantic_problems(data: dict) -> list[str]:
    """Checks that span several entries; run only on a structurally valid file."""
    out: list[str] = []
    br, mb = data["branch"], data["member"]
    reserved = reserved_columns()
    out += _reserved_problems(br["indicators"], reserved["branch"], "branches", "branch.indicators")
    out += _reserved_problems(mb["indicators"], reserved["member"], "members or member_months",
                              "member.indicators")
    out += _deduction_problems(br, "branch")
    out += _deduction_problems(mb, "member")
    out += _range_problems(br["indicators"], "branch.indicators")
    out += _range_problems(mb["indicators"], "member.indicators")
    out += _sum_problems(br, "dimension", "branch")
    out += _sum_problems(mb, "group", "member")
    shares = [_val(br, "satisfaction_share")] + [
        _val(d, "share") for d in br["dimensions"].values()]
    if abs(sum(shares) - 1.0) > 1e-9:
        out.append("branch: satisfaction_share + dimensions.*.share add up to "
                   f"{sum(shares):.6g}; they must add up to 1 (the score is on 100 points)")
    ms = _val(mb, "monthly_share") + _val(mb, "appraisal_share")
    if abs(ms - 1.0) > 1e-9:
        out.append(f"member: monthly_share + appraisal_share add up to {ms:.6g}; they must add up to 1")
    out += _indicator_problems(br["indicators"], "dimension", br["dimensions"], "branch.indicators")
    out += _indicator_problems(mb["indicators"], "group", mb["groups"], "member.indicators")
    branch_facts = {i.get("fact") for i in br["indicators"].values()}
    clash = branch_facts & {i.get("fact") for i in mb["indicators"].values()}
    if clash:
        out.append(f"member.indicators: fact column(s) {sorted(clash)} are also branch facts; use other names")
    out += _type_problems(br, "dimension", "branch")
    out += _type_problems(mb, "group", "member")
    unknown_types = set(mb.get("types") or {}) - set(br["types"])
    for t in sorted(unknown_types):
        out.append(f"member.types.{t}: not a branch type; allowed: {', '.join(br['types'])}")
    cuts = sorted((int(k), _val(v)) for k, v in br["star_cuts"].items())
    for (k1, c1), (k2, c2) in zip(cuts, cuts[1:]):
        if not c2 > c1:
            out.append(f"branch.star_cuts: cut for {k2} stars ({c2}) must be above the cut for "
                       f"{k1} stars ({c1})")
    if cuts and _val(br, "weak_below") > cuts[-1][1]:
        out.append(f"branch.weak_below: {_val(br, 'weak_below'):g} is above the cut for {cuts[-1][0]} stars "
                   f"({cuts[-1][1]:g}): a branch could be rated {cuts[-1][0]} stars and weak at once; allowed: "
                   f"at most {cuts[-1][1]:g}")
    grades = [(g, _val(mb["grade_cuts"][g])) for g in GRADES if g in mb["grade_cuts"]]
    for (g1, c1), (g2, c2) in zip(grades, grades[1:]):
        if not c1 > c2:
            out.append(f"member.grade_cuts: {g1} ({c1}) must be above {g2} ({c2})")
    levels = {0, *(int(k) for k in br["star_cuts"])}
    for vid, veto in (br.get("vetoes") or {}).items():
        cap = _val(veto, "max_star")
        if cap is not None and cap != 5 and cap not in levels:
            out.append(f"branch.vetoes.{vid}.max_star: {cap} is not a star level of this policy; allowed: "
                       f"{', '.join(str(v) for v in sorted(levels | {5}))} (0 = no star, 5 = no cap)")
        if veto.get("indicator") not in br["indicators"]:
            out.append(f"branch.vetoes.{vid}.indicator: {shown(veto.get('indicator'))} is not a branch "
                       f"indicator{_suggest(veto.get('indicator'), br['indicators'])}")
    st = data["structure"]
    order = ["min_members", "committee_from", "general_branch_from", "party_committee_from"]
    vals = [_val(st, k) for k in order]
    for (k1, v1), (k2, v2) in zip(zip(order, vals), list(zip(order, vals))[1:]):
        if not v2 > v1:
            out.append(f"structure.{k2} ({v2}) must be above structure.{k1} ({v1})")
    return out
