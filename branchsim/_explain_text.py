"""The steps of :func:`branchsim.explain` as plain text that fits a terminal.

Columns wrap to the width given (the CLI passes the terminal's); widths are
counted in terminal cells, so a Chinese character takes two.
"""
from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd

from .policy import Policy

__all__ = ["cells", "wrap", "steps_text", "provenance_text", "adds_note"]

_GAP = "  "
_PATH = re.compile(r"([A-Za-z0-9_.]+)=")


def cells(text: str) -> int:
    """Terminal cells ``text`` takes: wide (CJK) characters count two, combining marks none.

    >>> cells("score"), cells("支部書記"), cells("B001: 支部")
    (5, 8, 10)
    """
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - cells(text))
    return fill + text if right else text + fill


def _chunks(word: str, width: int) -> list[str]:
    """A word wider than ``width`` cut into pieces that fit (CJK runs have no spaces to break at)."""
    out, cur = [], ""
    for ch in word:
        if cur and cells(cur + ch) > width:
            out.append(cur)
            cur = ""
        cur += ch
    return out + [cur] if cur else out


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells, broken at spaces where possible.

    >>> wrap("max(0, 4 - 1.5 × max(0, 2 - fact))", 17)
    ['max(0, 4 - 1.5 ×', 'max(0, 2 - fact))']
    >>> wrap("支部書記配備到位", 6)
    ['支部書', '記配備', '到位']
    """
    width = max(1, width)
    lines, cur = [], ""
    for word in str(text).split():
        for piece in (_chunks(word, width) if cells(word) > width else [word]):
            if cur and cells(cur) + 1 + cells(piece) <= width:
                cur += " " + piece
            else:
                if cur:
                    lines.append(cur)
                cur = piece
    return lines + [cur] if cur else lines or [""]


def _hanging(text: str, width: int, first: str = "    ", rest: str = "      ") -> list[str]:
    """``text`` wrapped to ``width`` with a hanging indent: continuation lines sit further in."""
    lines = wrap(text, width - cells(first))
    tail = wrap(" ".join(lines[1:]), width - cells(rest)) if len(lines) > 1 else []
    return [first + lines[0]] + [rest + line for line in tail]


def steps_text(steps: pd.DataFrame, width: int) -> str:
    """The steps as text no wider than ``width`` cells (provenance left out; see provenance_text).

    Each step takes a line ``step: item`` with what it adds to the score at
    the right edge, then, indented, ``input → result`` and the parameters it
    uses.
    """
    width = max(width, 20)
    adds = ["" if isinstance(v, float) and math.isnan(v) else f"{v:+.2f}" for v in steps["adds"]]
    right = max([cells("adds")] + [len(a) for a in adds])
    head = width - right - len(_GAP)
    out = [_pad("step: item", head) + _GAP + _pad("adds", right, right=True)]
    for (step, item, inp, result, params), add in zip(
            steps[["step", "item", "input", "result", "parameters"]].astype(str).itertuples(index=False), adds):
        first = wrap(f"{step}: {item}", head)
        out.append((_pad(first[0], head) + _GAP + _pad(add, right, right=True)).rstrip())
        out += ["  " + line for line in wrap(" ".join(first[1:]), head - 2)] if len(first) > 1 else []
        out += _hanging(f"{inp} → {result}" if inp else result, width)
        if params:
            out += _hanging(f"uses {params}", width)
    return "\n".join(out)


def provenance_text(steps: pd.DataFrame, policy: Policy, width: int) -> str:
    """Each parameter the steps use, once, with its value and where it comes from, wrapped to ``width``."""
    seen: dict[str, None] = {}
    for text in steps["parameters"]:
        for path in _PATH.findall(str(text)):
            seen.setdefault(path, None)
    out = [f"Where each of the {len(seen)} parameters comes from:"]
    for path in seen:
        value = policy[path]
        value = ("true" if value else "false") if isinstance(value, bool) else f"{value:g}" \
            if isinstance(value, (int, float)) else str(value)
        out += wrap(f"{path} = {value}", width)
        out += _hanging(policy.provenance(path), width)
    return "\n".join(out)


def adds_note(steps: pd.DataFrame) -> str:
    """The note under the steps: what the ``adds`` column sums to (``steps.attrs["adds_to"]``) and the sum.

    >>> s = pd.DataFrame({"adds": [1.5, 2.25, float("nan")]})
    >>> s.attrs["adds_to"] = "the annual score"
    >>> adds_note(s)
    'adds: what each line adds to the annual score; the lines add up to 3.75.'
    """
    return (f"adds: what each line adds to {steps.attrs.get('adds_to', 'the score')}; the lines add up to "
            f"{steps['adds'].sum():.2f}.")
