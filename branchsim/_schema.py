"""The shape of a policy file, and the checks that walk it.

The schema is plain data (nested dicts of small spec objects) so the same
walk both validates a file and lists its parameters by dotted path. The
semantic checks that span several entries (shares adding up, cut points in
order, vetoes naming indicators) live in :func:`semantic_problems`.
"""
from __future__ import annotations

import difflib
import math
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


def _suggest(key: str, allowed) -> str:
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def value_problem(spec: Param, value: Any) -> str | None:
    """Why ``value`` does not fit ``spec``, or None when it does."""
    if spec.kind == "bool":
        return None if isinstance(value, bool) else f"got {value!r}; allowed: {spec.describe()}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"got {value!r} ({type(value).__name__}); allowed: {spec.describe()}"
    if not math.isfinite(value):
        return f"got {value!r}; allowed: {spec.describe()}"
    if spec.kind == "int" and float(value) != int(value):
        return f"got {value!r}; allowed: {spec.describe()}"
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        return f"got {value!r}; allowed: {spec.describe()}"
    return None


def walk(node: Any, spec: Any, path: str, problems: list[str], params: dict) -> None:
    """Check ``node`` against ``spec``; record parameters as ``params[path] = (spec, leaf)``."""
    where = path or "<top>"
    if isinstance(spec, Param):
        if not isinstance(node, dict) or "value" not in node:
            problems.append(f"{where}: a parameter must be a mapping with 'value' and "
                            f"'quote' or 'assumption'; got {node!r}")
            return
        extra = set(node) - {"value", *PROVENANCE_KEYS}
        if extra:
            problems.append(f"{where}: unknown key(s) {sorted(extra)}; allowed: value, quote, assumption")
        prov = [k for k in PROVENANCE_KEYS if k in node]
        if len(prov) != 1:
            problems.append(f"{where}: needs exactly one of 'quote' or 'assumption' (its provenance)")
        elif not isinstance(node[prov[0]], str) or not node[prov[0]].strip():
            problems.append(f"{where}.{prov[0]}: must be a non-empty text")
        bad = value_problem(spec, node["value"])
        if bad:
            problems.append(f"{where}: {bad}")
        params[path] = (spec, node)
        return
    if isinstance(spec, Text):
        if not isinstance(node, str):
            problems.append(f"{where}: expected a text, got {node!r}")
        elif spec.choices and node not in spec.choices:
            problems.append(f"{where}: {node!r} is not allowed{_suggest(node, spec.choices)}; "
                            f"allowed: {', '.join(spec.choices)}")
        return
    if isinstance(spec, Many):
        if not isinstance(node, dict) or not node:
            problems.append(f"{where}: expected a non-empty mapping of ids, got {node!r}")
            return
        for key, sub in node.items():
            if spec.keys is not None and str(key) not in spec.keys:
                problems.append(f"{where}: unknown key {key!r}{_suggest(key, spec.keys)}; "
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
            problems.append(f"{where}: expected a mapping, got {node!r}")
            return
        for key in node:
            if key not in spec:
                problems.append(f"{where}: unknown key {key!r}{_suggest(key, spec)}; "
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
            out.append(f"{path}.{iid}.{group_key}: {ind.get(group_key)!r} is not one of "
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
            out.append(f"{path}.{iid}.fact: {fact!r} is already the fact of {facts[fact]}")
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


def semantic_problems(data: dict) -> list[str]:
    """Checks that span several entries; run only on a structurally valid file."""
    out: list[str] = []
    br, mb = data["branch"], data["member"]
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
            out.append(f"branch.vetoes.{vid}.indicator: {veto.get('indicator')!r} is not a branch "
                       f"indicator{_suggest(veto.get('indicator'), br['indicators'])}")
    st = data["structure"]
    order = ["min_members", "committee_from", "general_branch_from", "party_committee_from"]
    vals = [_val(st, k) for k in order]
    for (k1, v1), (k2, v2) in zip(zip(order, vals), list(zip(order, vals))[1:]):
        if not v2 > v1:
            out.append(f"structure.{k2} ({v2}) must be above structure.{k1} ({v1})")
    return out
