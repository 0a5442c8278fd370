"""What the steps of :func:`branchsim.explain` are made of: lines, numbers, parameter paths, rules.

A :class:`Lines` collects the steps of one unit; every step names the
parameters it uses by their dotted path (format 2), and the path is the one
the value really comes from for the unit: a class's override, else its
type's, else the section's default (:func:`first`). The rule of an indicator
is written out with the unit's own numbers (:func:`rule_text`), as an
expression in ``fact`` wherever the rule form is one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .scheme import RULE_CODES, Levels, Sheet

__all__ = ["COLUMNS", "Lines", "num", "pts", "first", "indicator_path", "rule_text", "level_text",
           "cut_text", "by_period", "veto_effect", "vetoes_text"]

COLUMNS = ["step", "item", "input", "result", "adds", "parameters", "provenance"]
RULES = {code: rule for rule, code in RULE_CODES.items()}
#: The parameters each rule form reads besides ``points`` (their names in the policy file).
RULE_PARAMS = {"binary": ("at_least",), "deduction": ("required", "per_shortfall"), "proportion": (),
               "per_event": ("per_event",), "per_occurrence": ("per_occurrence",), "bonus": ("per_unit",),
               "penalty": ("per_occurrence",), "zeroing": ("at_least",), "rank": ()}


def num(x) -> str:
    """A plain number or switch: ``3``, ``0.25``, ``true`` (never ``np.float64(3.0)``).

    >>> num(3.0), num(0.25), num(True), num(np.float64(1.5))
    ('3', '0.25', 'true', '1.5')
    """
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    return f"{float(x):g}"


def pts(x) -> str:
    """Points as shown: two decimals at most (``4``, ``2.5``, ``1.83``).

    >>> pts(4.0), pts(1.8333), pts(-0.5)
    ('4', '1.83', '-0.5')
    """
    return f"{round(float(x), 2) + 0.0:g}"


def first(policy, candidates) -> str | None:
    """The first of ``candidates`` that is a parameter of ``policy`` (None: none is).

    >>> import branchsim as bs
    >>> first(bs.Policy.load(), ["branch.types.village.satisfaction_share", "branch.satisfaction_share"])
    'branch.satisfaction_share'
    """
    return next((p for p in candidates if p in policy), None)


def indicator_path(policy, section: str, overrides, iid: str, name: str) -> str | None:
    """Where the unit's value of an indicator parameter comes from (``overrides``: most specific first)."""
    return first(policy, [f"{o}.indicators.{iid}.{name}" for o in overrides] + [f"{section}.indicators.{iid}.{name}"])


class Lines:
    """The steps of one unit, each citing the parameters it uses with their provenance."""

    def __init__(self, policy):
        self.policy = policy
        self.rows: list[dict] = []

    def add(self, step: str, item: str, input: str = "", result: str = "", adds: float = np.nan,
            paths=()) -> None:
        p = self.policy
        paths = list(dict.fromkeys(x for x in paths if x))
        self.rows.append({"step": step, "item": item, "input": input, "result": result, "adds": float(adds),
                          "parameters": ", ".join(f"{x}={num(p[x])}" for x in paths),
                          "provenance": " | ".join(f"{x}: {p.provenance(x)}" for x in paths)})

    def frame(self, **attrs) -> pd.DataFrame:
        out = pd.DataFrame(self.rows, columns=COLUMNS)
        out.attrs.update(attrs)
        return out


#: Each rule form as an expression in ``fact`` (``×`` for times), as scoring.indicator_points computes it.
_RULE_TEXT = {"binary": "{top} if fact >= {at_least} else 0",
              "deduction": "max(0, {top} - {per_shortfall} × max(0, {required} - fact))",
              "proportion": "{top} × clip(fact, 0, 1)",
              "per_event": "min({top}, {per_event} × max(0, fact))",
              "per_occurrence": "max(0, {top} - {per_occurrence} × max(0, fact))",
              "bonus": "min({top}, {per_unit} × max(0, fact))",
              "penalty": "-min({top}, {per_occurrence} × max(0, fact))",
              "zeroing": "{target} gets 0 points if fact >= {at_least}"}
_RULE_NUMBERS = ("at_least", "per_shortfall", "required", "per_event", "per_occurrence", "per_unit")


def rule_text(sheet: Sheet, p: int, j: int) -> str:
    """Indicator ``j``'s rule for profile ``p`` with its numbers, as an expression in ``fact``.

    >>> import branchsim as bs
    >>> sheet = bs.Policy.load().scheme.branch.sheet
    >>> rule_text(sheet, 0, sheet.facts.index("committee_meetings"))
    'max(0, 4 - 0.5 × max(0, 12 - fact))'
    """
    rule = RULES[int(sheet.kind[p, j])]
    if rule in _RULE_TEXT:
        values = {name: num(getattr(sheet, name)[p, j]) for name in _RULE_NUMBERS}
        return _RULE_TEXT[rule].format(top=num(sheet.points[p, j]), target=sheet.ids[sheet.target[j]], **values)
    places = sheet.places[p, j]
    shown = " / ".join(num(v) for v in places[:-1]) if len(places) > 1 else num(places[0])
    return f"places 1-{max(len(places) - 1, 1)} earn {shown}, later places {num(sheet.otherwise[p, j])}"


def level_text(levels: Levels, code: int) -> str:
    """A level id with its label: ``four_star (四星級, four-star)``; ``not rated`` for a negative code."""
    if code < 0:
        return "not rated"
    i = levels.ids[levels.n - 1 - int(code)]
    label, en = levels.labels[levels.n - 1 - int(code)], levels.en[levels.n - 1 - int(code)]
    return f"{i} ({label}" + (f", {en})" if en != label else ")")


def _apart(score: float, cut: float) -> int:
    """Decimals (2 to 9) that show a score and a cut as different numbers when they differ."""
    for d in range(2, 10):
        if round(score, d) != round(cut, d) or score == cut:
            return d
    return 9


def cut_text(levels: Levels, cuts, score: float) -> tuple[int, str]:
    """The level code a score reaches by ascending cuts ``(L-1,)`` and why, in words.

    >>> import branchsim as bs
    >>> lv = bs.Policy.load().scheme.branch.levels
    >>> cut_text(lv, np.array([70.0, 80.0, 90.0]), 79.999)[1].replace(lv.ids[2], "L1").replace(lv.ids[1], "L2")
    'score 79.999 reaches the cut of L1 (70) and is below the cut of L2 (80)'
    """
    above = levels.worst_first[1:]
    cuts = np.asarray(cuts, float)
    code = int(np.searchsorted(cuts, score, side="right"))
    near = [c for c in (code - 1, code) if 0 <= c < len(above)]
    d = max([2] + [_apart(score, float(cuts[c])) for c in near if np.isfinite(cuts[c])])

    def dec(x: float) -> str:
        return f"{x:.{d}f}".rstrip("0").rstrip(".") if np.isfinite(x) else num(x)

    parts = []
    if code > 0:
        parts.append(f"reaches the cut of {above[code - 1]} ({dec(cuts[code - 1])})")
    if code < len(above):
        parts.append(f"is below the cut of {above[code]} ({dec(cuts[code])})")
    return code, f"score {dec(score)} " + " and ".join(parts)


def by_period(periods: np.ndarray, values: np.ndarray, fmt=num) -> str:
    """Values of the periods in words: ``= 4 in all 12 periods`` or ``by period: 1: 4, 2: 3, ...``.

    >>> by_period(np.array([1, 2]), np.array([4.0, 4.0])), by_period(np.array([1, 2]), np.array([4.0, 3.0]))
    ('= 4 in all 2 periods', 'by period: 1: 4, 2: 3')
    """
    if len(values) > 1 and np.all(values == values[0]):
        return f"= {fmt(values[0])} in all {len(values)} periods"
    return "by period: " + ", ".join(f"{int(mo)}: {fmt(v)}" for mo, v in zip(periods, values))


def veto_effect(levels: Levels, vetoes, k: int) -> str:
    """What veto ``k`` does when it fires: ``caps the level at <id>``, ``forces <id>`` or nothing."""
    if not vetoes.effect[k]:
        return "read by designations only"
    lv = levels.ids[levels.n - 1 - int(vetoes.level[k])]
    return f"caps the level at {lv}" if vetoes.effect[k] == "cap" else f"forces {lv}"


def vetoes_text(levels: Levels, vetoes, fired, code: int) -> str:
    """Which fired vetoes give which level from ``code``, and which wins (the lowest: the most severe).

    >>> import branchsim as bs
    >>> lv = bs.Policy.load().scheme.branch.levels
    >>> v = bs.scheme.Vetoes(("a", "b"), ("a", "b"), ("x", "y"), np.array([1., 1]), np.array([False, False]),
    ...                      ("cap", "force"), np.array([2, 0], dtype=np.int8), np.array([True, True]))
    >>> vetoes_text(lv, v, np.array([True, True]), 3).replace(lv.ids[1], "L2").replace(lv.ids[3], "L0")
    'vetoes fired: a → L2, b → L0; the most severe wins (b)'
    """
    got = {vid: min(code, int(vetoes.level[k])) if vetoes.effect[k] == "cap" else int(vetoes.level[k])
           for k, vid in enumerate(vetoes.ids) if fired[k] and vetoes.effect[k]}
    if not got:
        return "no veto changes it" if vetoes.n else ""
    worst = min(got.values())
    return ("vetoes fired: " + ", ".join(f"{k} → {levels.ids[levels.n - 1 - c]}" for k, c in got.items())
            + f"; the most severe wins ({', '.join(k for k, c in got.items() if c == worst)})")
