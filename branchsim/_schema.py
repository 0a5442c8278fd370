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
#: Rule forms of an indicator (docs/policy-format.md, "Rule forms").
RULES = ("binary", "deduction", "proportion", "per_event", "per_occurrence", "rank", "bonus", "penalty",
         "zeroing")
#: Parameters each rule form needs, and those it may have besides.
RULE_PARAMS = {
    "binary": ("points",),
    "deduction": ("points", "required", "per_shortfall"),
    "proportion": ("points",),
    "per_event": ("points", "per_event"),
    "per_occurrence": ("points", "per_occurrence"),
    "rank": ("places",),
    "bonus": ("points", "per_unit"),
    "penalty": ("points", "per_occurrence"),
    "zeroing": ("target",),
}
RULE_OPTIONS = {
    "binary": ("at_least",),
    "deduction": ("keeps_points_at_zero",),
    "rank": ("otherwise", "within", "order"),
    "zeroing": ("at_least",),
}
#: Every key an indicator's rule may use (needed or optional, over all forms).
RULE_KEYS = tuple(sorted({k for v in RULE_PARAMS.values() for k in v} | {k for v in RULE_OPTIONS.values() for k in v}))
#: Rule forms whose points do not count in the maximum (added on top, taken off, or none).
EXTRA_RULES = ("bonus", "penalty", "zeroing")
DESIGNS = ("cuts", "quota", "cuts_and_quota", "kmeans", "hierarchical")
CRITERIA = ("score_below", "survey_below", "veto", "fact_below", "fact_at_least", "last_place", "level")
FACT_KINDS = ("binary", "count", "share", "number")
SCORE_FORMS = ("shares", "points")
ACCRUALS = ("mean", "sum")


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
    """A plain text (an id, a label); ``choices`` restricts it."""

    optional: bool = False
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Plain:
    """A plain (non-parameter) value: ``bool``, ``int`` (``lo``..) or a list of texts."""

    kind: str = "bool"    # bool | int | texts
    optional: bool = False
    lo: int | None = None


@dataclass(frozen=True)
class Many:
    """A mapping from user-chosen ids (checked to be identifiers) to one sub-schema."""

    item: Any
    optional: bool = False
    ids: bool = True      # keys must be identifiers (False: e.g. the places of a rank rule, 1, 2, ...)


class Block(dict):
    """A fixed-key block (a dict of sub-schemas); ``Block(..., optional=True)`` may be absent."""

    def __init__(self, *args, optional: bool = False, **kw):
        super().__init__(*args, **kw)
        self.optional = optional


@dataclass(frozen=True)
class Range:
    """A fact's plausible range: ``{value: [low, high], quote|assumption: ...}``.

    Not a parameter of the rules (no rule reads it, ``update`` and sweeps do not
    change it): a bound on the data, checked when tables are loaded.
    """

    optional: bool = False


_LEVEL = Block({"label": Text(), "en": Text(optional=True)})
_WHY = {"quote": Text(optional=True), "assumption": Text(optional=True)}   # provenance of a structural entry


def _indicator(group_key: str, *, overlay: bool = False) -> Block:
    """One indicator; as an ``overlay`` (a type's or class's override) every key is optional."""
    keys = {
        "label": Text(optional=overlay), "en": Text(optional=True), group_key: Text(optional=overlay),
        "fact": Text(optional=overlay), "unit": Text(optional=True), "rule": Text(choices=RULES, optional=overlay),
        "points": Param(lo=0, optional=True), "required": Param(lo=0, optional=True),
        "per_shortfall": Param(lo=0, optional=True), "per_unit": Param(lo=0, optional=True),
        "per_event": Param(lo=0, optional=True), "per_occurrence": Param(lo=0, optional=True),
        "at_least": Param(optional=True), "target": Text(optional=True),
        "places": Many(Param(lo=0), optional=True, ids=False), "otherwise": Param(lo=0, optional=True),
        "within": Text(optional=True), "order": Text(choices=("high_first", "low_first"), optional=True),
        # Plausible values of the fact (checked on loaded tables); provenance like a parameter.
        "range": Range(optional=True),
        # Deduction rules: true when a zero fact may keep points on purpose.
        "keeps_points_at_zero": Param(kind="bool", optional=True),
        # The fact describes the unit's state (drawn with the truth, recorded without error).
        "state": Plain("bool", optional=True),
    }
    if overlay:
        for k in ("label", "en", group_key, "fact", "unit", "range", "state"):
            keys.pop(k)
    return Block(keys, optional=overlay)


_FACT = Block({"label": Text(), "en": Text(optional=True), "unit": Text(optional=True),
               "kind": Text(choices=FACT_KINDS), "range": Range(optional=True),
               "state": Plain("bool", optional=True)})
_RATING = Block({
    "design": Text(choices=DESIGNS),
    "cuts": Many(Param(), optional=True),
    "quotas": Many(Param(lo=0, hi=1), optional=True),
    "peer_groups": Text(optional=True),
    "trim": Param(kind="bool", optional=True),
    "resamples": Param(kind="int", lo=1, hi=1000, optional=True),
    "seed": Param(kind="int", lo=0, optional=True),
    "guardrail": Param(lo=0, optional=True),
    "direct": Many(Block({"label": Text(), "en": Text(optional=True), "fact": Text(),
                          "at_least": Param(), "level": Text(), **_WHY}), optional=True),
})
_VETO = Block({"label": Text(), "en": Text(optional=True), "fact": Text(optional=True),
               "indicator": Text(optional=True), "below": Param(optional=True), "at_least": Param(optional=True),
               "cap": Text(optional=True), "force": Text(optional=True),
               "active": Param(kind="bool", optional=True), **_WHY})
_CRITERION = Block({"kind": Text(choices=CRITERIA), "below": Param(optional=True),
                    "at_least": Param(optional=True), "veto": Text(optional=True), "fact": Text(optional=True),
                    "answers": Plain("texts", optional=True), "within": Text(optional=True),
                    "level": Text(optional=True), "or_below": Plain("bool", optional=True),
                    "years": Param(kind="int", lo=1, hi=100, optional=True), **_WHY})
_SCORE = Block({"form": Text(choices=SCORE_FORMS, optional=True), "base": Param(optional=True),
                "cap": Param(optional=True), "floor": Param(optional=True),
                "bonus_cap": Param(lo=0, optional=True)}, optional=True)
_DIMENSION = Block({"label": Text(), "en": Text(optional=True), "share": Param(lo=0, hi=1, optional=True),
                    "cap": Param(lo=0, optional=True), "bonus_cap": Param(lo=0, optional=True)})
_BRANCH_TYPE = Block({
    "label": Text(), "en": Text(optional=True),
    "satisfaction_share": Param(lo=0, hi=1, optional=True),
    "dimensions": Many(Block({"share": Param(lo=0, hi=1, optional=True), "cap": Param(lo=0, optional=True),
                              "bonus_cap": Param(lo=0, optional=True)}), optional=True),
    "indicators": Many(_indicator("dimension", overlay=True), optional=True),
    "rating": Block({"cuts": Many(Param(), optional=True)}, optional=True),
})
_MEMBER_OVERLAY = {
    "label": Text(optional=True), "en": Text(optional=True),
    "indicators": Many(_indicator("group", overlay=True), optional=True),
    "rating": Block({"cuts": Many(Param(), optional=True)}, optional=True),
}
_WHEN = Block({"designation": Text(optional=True), "level": Text(optional=True), "grade": Text(optional=True),
               "or_below": Plain("bool", optional=True), "years": Param(kind="int", lo=1, hi=100, optional=True)})

SCHEMA: dict = {
    "schema": Text(),
    "name": Text(),
    "description": Text(optional=True),
    "source": Text(optional=True),
    "branch": Block({
        "levels": Many(_LEVEL),
        "score": _SCORE,
        "satisfaction_share": Param(lo=0, hi=1, optional=True),
        "dimensions": Many(_DIMENSION),
        "survey": Block({"answer_values": Many(Param(lo=0, hi=1)),
                         "answer_labels": Many(Text(), optional=True)}, optional=True),
        "indicators": Many(_indicator("dimension")),
        "facts": Many(_FACT, optional=True),
        "types": Many(_BRANCH_TYPE),
        "rating": _RATING,
        "vetoes": Many(_VETO, optional=True),
        "designations": Many(Block({"label": Text(), "en": Text(optional=True), **_WHY,
                                    "criteria": Many(_CRITERION)}), optional=True),
    }),
    "member": Block({
        "grades": Many(_LEVEL),
        "record": Block({"periods": Plain("int", lo=1), "accrual": Text(choices=ACCRUALS)}),
        "record_share": Param(lo=0, hi=1),
        "appraisal_share": Param(lo=0, hi=1),
        "score": Block({"cap": Param(lo=0, optional=True), "bonus_cap": Param(lo=0, optional=True)},
                       optional=True),
        "groups": Many(Block({"label": Text(), "en": Text(optional=True)})),
        "indicators": Many(_indicator("group")),
        "facts": Many(_FACT, optional=True),
        "types": Many(Block(_MEMBER_OVERLAY), optional=True),
        "classes": Many(Block({**_MEMBER_OVERLAY, "label": Text(),
                               "exempt": Param(kind="bool", optional=True)}), optional=True),
        "rating": _RATING,
        "vetoes": Many(_VETO, optional=True),
    }, optional=True),
    "consequences": Many(Block({"label": Text(), "en": Text(optional=True), **_WHY,
                                "unit": Text(choices=("branch", "member")), "when": _WHEN,
                                "effect": Param(lo=-1, hi=1, optional=True)}), optional=True),
    # Interventions simulated year by year (branchsim.dynamics).
    "interventions": Many(Block({"label": Text(), "en": Text(optional=True), **_WHY,
                                 "select": Text(choices=("lowest", "random")),
                                 "among": Block({"designation": Text(optional=True),
                                                 "level": Text(optional=True),
                                                 "or_below": Plain("bool", optional=True)}, optional=True),
                                 "count": Param(kind="int", lo=0, optional=True),
                                 "coverage": Param(lo=0, hi=1, optional=True),
                                 "effect": Param(lo=-1, hi=1)}), optional=True),
    "structure": Block({
        "levels": Many(Block({"label": Text(), "en": Text(optional=True), "from": Param(kind="int", lo=1)})),
        "committee_from": Param(kind="int", lo=1, optional=True),
    }, optional=True),
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
    """The plausible range ``(low, high)`` of an indicator's (or a declared fact's) values.

    ``ind`` is one indicator of a policy (``policy["branch.indicators"][id]``)
    or a declared fact (``branch.facts``). Its ``range`` entry when it has one;
    otherwise derived from the rule form (or the fact's ``kind``): ``binary``
    and ``proportion`` facts (binary and share facts) are in [0, 1]; counts in
    [0, 10 × what earns full points (or takes them all)], at least [0, 10].
    Loaded tables are refused when a fact lies outside it.

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
    rule = ind.get("rule") or {"binary": "binary", "share": "proportion"}.get(ind.get("kind"))
    if rule in ("binary", "proportion"):
        return 0.0, 1.0
    if rule == "rank" or ind.get("kind") == "number":
        return 0.0, MAX_NUMBER
    if rule == "deduction":
        full = _val(ind, "required", default=1) or 1
    else:
        rate = _val(ind, {"bonus": "per_unit", "per_event": "per_event"}.get(rule, "per_occurrence"), default=0)
        rate = rate if _is_number(rate) else 0
        points = _val(ind, "points", default=1)
        full = math.ceil(points / rate) if rate > 0 and _is_number(points) else 1
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


def is_id(key: Any) -> bool:
    """Whether ``key`` may be an id (of a level, indicator, type, ...): letters, digits, ``_``.

    >>> is_id("five_star"), is_id("村"), is_id("2x"), is_id("a b")
    (True, True, False, False)
    """
    return isinstance(key, str) and key.isidentifier()


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
        if not isinstance(node, str) or not node.strip():
            problems.append(f"{where}: expected a text, got {shown(node)}")
        elif spec.choices and node not in spec.choices:
            problems.append(f"{where}: {shown(node)} is not allowed{_suggest(node, spec.choices)}; "
                            f"allowed: {', '.join(spec.choices)}")
        return
    if isinstance(spec, Plain):
        if spec.kind == "bool" and not isinstance(node, bool):
            problems.append(f"{where}: got {shown(node)}; allowed: true or false")
        elif spec.kind == "int" and (isinstance(node, bool) or not isinstance(node, int)
                                     or (spec.lo is not None and node < spec.lo) or abs(node) > MAX_NUMBER):
            problems.append(f"{where}: got {shown(node)}; allowed: a whole number"
                            + (f" >= {spec.lo}" if spec.lo is not None else ""))
        elif spec.kind == "texts" and (not isinstance(node, list) or not node
                                       or not all(isinstance(x, str) for x in node)):
            problems.append(f"{where}: got {shown(node)}; allowed: a list of texts such as [a, b]")
        return
    if isinstance(spec, Many):
        if not isinstance(node, dict) or not node:
            problems.append(f"{where}: expected a non-empty mapping of ids, got {shown(node)}")
            return
        for key, sub in node.items():
            if spec.ids and not is_id(key):
                problems.append(f"{where}: {shown(key)} is not an id; ids are letters, digits and _, "
                                f"starting with a letter")
                continue
            walk(sub, spec.item, f"{path}.{key}", problems, params)
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


