"""The tidy frames of a :class:`~branchsim.dynamics.History`: one row per unit-year, columns named by the scheme.

Branch columns: ``year, branch_id, type``; with the truth ``true_quality,
true_score, true_rating`` (a level id), ``true_<designation>`` and the true
streak of each consecutive-years rule's condition ``true_<id>_streak``; then
``score, rating``, one column per designation, ``<id>_streak`` per streak the
rules keep, one per branch consequence and per intervention, and ``effect``.
Member columns: ``year, member_id, branch_id, category``; with the truth
``true_quality, true_score, true_grade``; ``record, appraisal, annual, grade``
(a grade id; None for an exempt member), ``vetoes`` when the scheme has member
vetoes, one column per member consequence, and ``effect``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..scheme import Scheme
from ..scoring import DECIMALS
from .outcome import streak_ids

__all__ = ["branch_rows", "member_rows", "check_names", "fired_names"]

_BRANCH_FIXED = ("year", "branch_id", "type", "true_quality", "true_score", "true_rating", "score", "rating",
                 "effect")
_MEMBER_FIXED = ("year", "member_id", "branch_id", "category", "true_quality", "true_score", "true_grade",
                 "record", "appraisal", "annual", "grade", "vetoes", "effect")


def _rule_targets(scheme: Scheme) -> list[str]:
    """Conditions of the consecutive-years rules: their true streaks are kept (``true_<id>_streak``)."""
    return list(dict.fromkeys(c.target for c in scheme.consequences_of("branch") if c.years > 1))


def check_names(scheme: Scheme) -> None:
    """Refuse a scheme whose ids would name the same History column twice (one clear line).

    >>> import branchsim as bs
    >>> check_names(bs.Policy.load().scheme)
    """
    bs = scheme.branch
    branch = list(_BRANCH_FIXED) + [d.id for d in bs.designations] + [f"true_{d.id}" for d in bs.designations]
    branch += [f"{i}_streak" for i in streak_ids(scheme)] + [c.id for c in scheme.consequences_of("branch")]
    branch += [iv.id for iv in scheme.interventions] + [f"true_{t}_streak" for t in _rule_targets(scheme)]
    member = list(_MEMBER_FIXED) + [c.id for c in scheme.consequences_of("member")]
    for unit, names in (("branch", branch), ("member", member)):
        twice = sorted(n for n, k in Counter(names).items() if k > 1)
        if twice:
            raise BranchsimError(f"policy {scheme.name!r}: the {unit} columns of a history would name "
                                 f"{', '.join(map(repr, twice))} twice (designations, consequences and "
                                 f"interventions need distinct ids)")


def fired_names(fired: np.ndarray, ids) -> list[str]:
    """Comma lists of the vetoes that fired, one per row (as :class:`branchsim.Result` writes them)."""
    names = np.array(ids, dtype=object)
    return [",".join(names[row]) for row in np.asarray(fired, bool)]


def branch_rows(scheme: Scheme, year, branch_id, types, st: dict, effect=None) -> pd.DataFrame:
    """One year's branch rows from a year's state (arrays in branch order)."""
    bs = scheme.branch
    n = len(st["score"])
    frame = {"year": np.full(n, year, dtype=np.int64), "branch_id": np.asarray(branch_id),
             "type": np.asarray(types)}
    if "true_score" in st:
        frame.update(true_quality=st["q"], true_score=st["true_score"],
                     true_rating=bs.levels.id_of(st["true_level"]))
        frame.update({f"true_{d}": np.asarray(v, bool) for d, v in st["true_designations"].items()})
        frame.update({f"true_{t}_streak": np.asarray(st["true_streaks"][t], np.int64) for t in _rule_targets(scheme)})
    frame.update(score=st["score"], rating=bs.levels.id_of(st["level"]))
    frame.update({d: np.asarray(v, bool) for d, v in st["designations"].items()})
    frame.update({f"{i}_streak": np.asarray(st["streaks"][i], np.int64) for i in streak_ids(scheme)})
    frame.update({c.id: np.asarray(st["consequences"][c.id], bool) for c in scheme.consequences_of("branch")})
    frame.update({k: np.asarray(v, bool) for k, v in st["selected"].items()})
    if effect is not None:
        frame["effect"] = np.asarray(effect, float)
    return pd.DataFrame(frame)


def member_rows(scheme: Scheme, year, members: pd.DataFrame, st: dict, back: np.ndarray | None,
                effect=None) -> pd.DataFrame:
    """One year's member rows (``back`` takes the state's member order to the table's rows)."""
    ms = scheme.member

    def rows(a):
        a = np.asarray(a)
        return a if back is None else a[back]

    frame = {"year": np.full(len(members), year, dtype=np.int64), "member_id": members["member_id"].to_numpy(),
             "branch_id": members["branch_id"].to_numpy(), "category": members["category"].to_numpy()}
    if "m_true" in st:
        frame.update(true_quality=rows(st["qm"]), true_score=rows(st["m_true"]),
                     true_grade=ms.grades.id_of(rows(st["true_grade"])))
    frame.update(record=np.round(rows(st["record"]), DECIMALS), appraisal=rows(st["appraisal"]),
                 annual=rows(st["annual"]), grade=ms.grades.id_of(rows(st["grade"])))
    if ms.vetoes.n:
        text = st.get("m_vetoes_text")
        frame["vetoes"] = rows(text) if text is not None else np.array(fired_names(rows(st["m_vetoes"]),
                                                                                  ms.vetoes.ids), dtype=object)
    frame.update({c.id: rows(st["m_consequences"][c.id]).astype(bool) for c in scheme.consequences_of("member")})
    if effect is not None:
        frame["effect"] = rows(effect)
    return pd.DataFrame(frame)
