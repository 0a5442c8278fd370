"""The History of a simulation: tidy unit-year frames and their summaries.

Accuracy of the consequence rules (exact definitions)
-----------------------------------------------------
A branch-year is *truly weak* (``true_weak``) when its true score (the
noise-free score, see :mod:`.measure`) is below ``branch.weak_below`` or its
true state triggers a weak veto (a vacant secretary post, a major
violation) — the truth of :func:`branchsim.evaluate`.

* ``false_alarm_rate`` = reorganisations of branches *not* truly weak in the
  year the reorganisation is decided / all reorganisations;
* ``miss_rate`` = truly weak branch-years *not* designated weak / truly weak
  branch-years (an unqualified branch that escaped its talk and its streak);
* ``false_weak_rate`` = designated-weak branch-years not truly weak /
  designated-weak branch-years.

Rates are NaN when their denominator is 0; pooled rates divide summed counts.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..errors import DataError
from ..evaluate import STAR_NAMES
from ..policy import Policy
from ..scoring import GRADES

__all__ = ["History", "pool_accuracy"]

_BRANCH_EVENTS = ("talk", "reorganise", "rectified", "trained", "first_secretary", "instructor")
_MEMBER_EVENTS = ("mentoring", "handling")
_COUNTS = {"reorganise": "reorganisations", "false_alarm": "false_alarms", "true_weak": "truly_weak",
           "missed": "missed", "weak": "designated_weak", "false_weak": "false_weak"}


def pool_accuracy(frame: pd.DataFrame) -> pd.Series:
    """Rates from counts summed over the rows of an accuracy frame (years, seeds).

    >>> f = pd.DataFrame({"reorganisations": [2, 2], "false_alarms": [1, 0], "truly_weak": [4, 0],
    ...                   "missed": [1, 0], "designated_weak": [5, 3], "false_weak": [2, 3]})
    >>> pool_accuracy(f)[["false_alarm_rate", "miss_rate"]].tolist()
    [0.25, 0.25]
    """
    total = frame[list(_COUNTS.values())].sum().astype(int)
    return pd.concat([total, _rates(total)])


def _rates(c) -> pd.Series | pd.DataFrame:
    def ratio(a, b):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)
    out = {"false_alarm_rate": ratio(c["false_alarms"], c["reorganisations"]),
           "miss_rate": ratio(c["missed"], c["truly_weak"]),
           "false_weak_rate": ratio(c["false_weak"], c["designated_weak"])}
    if isinstance(c, pd.Series):
        return pd.Series({k: float(v) for k, v in out.items()})
    return pd.DataFrame(out, index=c.index)


class History:
    """Years of one population under one policy: ``.branches`` and ``.members``, one row per unit-year.

    >>> import branchsim as bs
    >>> h = bs.simulate(bs.generate(seed=0, n_branches=30, members=False), years=2, seed=1)
    >>> sorted(h.branches["year"].unique().tolist())
    [0, 1]

    Decisions recorded in year ``y`` (``talk``, ``reorganise``,
    ``rectified``, ``trained``, ``first_secretary``, ``instructor``,
    ``mentoring``, ``handling``) are taken on year ``y``'s evaluation and act
    on year ``y + 1``'s true quality; ``effect`` is the attainment a unit's
    quality received at the start of year ``y`` from year ``y - 1``'s decisions.

    Attributes
    ----------
    branches : DataFrame
        ``year, branch_id, type, true_quality, true_score, true_stars,
        true_weak, score, stars, weak, weak_streak`` and the decisions.
    members : DataFrame or None
        ``year, member_id, branch_id, true_quality, true_score, true_grade,
        monthly_mean, appraisal, annual, grade, mentoring, handling, effect``.
    policy : Policy
    """

    def __init__(self, branches: pd.DataFrame, members: pd.DataFrame | None, policy: Policy, *,
                 seed=None, noise: bool = True, source: str = "simulate"):
        self.branches = branches
        self.members = members
        self.policy = policy
        self.seed = seed
        self.noise = noise
        self.source = source

    @property
    def years(self) -> list[int]:
        return sorted(pd.unique(self.branches["year"]).tolist())

    def _levels(self) -> list[int]:
        cut = {int(k) for k in self.policy["branch.star_cuts"]}
        return sorted({0, *cut, *(int(s) for s in pd.unique(self.branches["stars"]))}, reverse=True)

    # -- summaries ---------------------------------------------------------------------
    def star_distribution(self) -> pd.DataFrame:
        """Branches per star level (columns, best first) and designated weak, per year (rows)."""
        b = self.branches
        out = pd.crosstab(b["year"], b["stars"]).reindex(columns=self._levels(), fill_value=0)
        out.columns = [STAR_NAMES[k] for k in out.columns]
        out["weak"] = b.groupby("year")["weak"].sum()
        out.columns.name = "level"
        return out

    def grade_distribution(self) -> pd.DataFrame:
        """Members per grade (columns, best first) per year; empty without members."""
        if self.members is None:
            return pd.DataFrame()
        m = self.members
        out = pd.crosstab(m["year"], m["grade"]).reindex(columns=list(GRADES)[::-1], fill_value=0)
        out.columns.name = "grade"
        return out

    def transitions(self, year_from: int | None = None, year_to: int | None = None, *,
                    normalize: bool = False) -> pd.DataFrame:
        """Star transition matrix: stars in ``year_from`` (rows) against ``year_to`` (columns).

        With no years, every pair of consecutive years is pooled; with only
        ``year_from``, the next year. ``normalize=True`` gives row shares.
        """
        years = self.years
        if year_from is None:
            pairs = list(zip(years[:-1], years[1:]))
        else:
            year_to = year_from + 1 if year_to is None else year_to
            missing = [y for y in (year_from, year_to) if y not in years]
            if missing:
                raise DataError(f"transitions: no year {missing}; allowed: {years}")
            pairs = [(year_from, year_to)]
        wide = self.branches.pivot(index="branch_id", columns="year", values="stars")
        a = np.concatenate([wide[y0].to_numpy() for y0, _ in pairs]) if pairs else np.array([])
        b = np.concatenate([wide[y1].to_numpy() for _, y1 in pairs]) if pairs else np.array([])
        keep = ~(pd.isna(a) | pd.isna(b))      # units present in both years
        levels = self._levels()
        out = pd.crosstab(pd.Series(a[keep].astype(int), name="from"), pd.Series(b[keep].astype(int), name="to"))
        out = out.reindex(index=levels, columns=levels, fill_value=0)
        if normalize:
            out = out.div(out.sum(axis=1).replace(0, np.nan), axis=0)
        return out

    def consequence_counts(self) -> pd.DataFrame:
        """How many units each consequence and intervention reached, per year."""
        b = self.branches
        cols = [c for c in _BRANCH_EVENTS if c in b.columns]
        out = b.groupby("year")[cols].sum().astype(int)
        if self.members is not None:
            out = out.join(self.members.groupby("year")[list(_MEMBER_EVENTS)].sum().astype(int))
        out.columns.name = "consequence"
        return out

    def accuracy(self, *, pooled: bool = False) -> pd.DataFrame | pd.Series:
        """Accuracy of the weak designation and the reorganisation rule against the truth.

        One row per year with the counts and rates defined in the module
        docstring; ``pooled=True`` sums the counts over the years first.
        """
        b = self.branches
        if "true_weak" not in b.columns:
            raise DataError("accuracy needs the truth: this history has no true_weak "
                            "(replayed tables without true_quality); simulate a generated population")
        flags = pd.DataFrame({"year": b["year"], "reorganise": b["reorganise"],
                              "false_alarm": b["reorganise"] & ~b["true_weak"], "true_weak": b["true_weak"],
                              "missed": b["true_weak"] & ~b["weak"], "weak": b["weak"],
                              "false_weak": b["weak"] & ~b["true_weak"]})
        counts = flags.groupby("year").sum().astype(int).rename(columns=_COUNTS)
        if pooled:
            return pool_accuracy(counts)
        return counts.join(_rates(counts))

    # -- display --------------------------------------------------------------------------
    def _head(self) -> str:
        n_b = self.branches["branch_id"].nunique()
        members = "" if self.members is None else f", {self.members['member_id'].nunique():,} members"
        return (f"{len(self.years)} years × {n_b:,} branches{members}; policy {self.policy.name!r}"
                + ("" if self.noise else "; measurement without noise"))

    def _blocks(self) -> list[tuple[str, pd.DataFrame]]:
        blocks = [("Stars", self.star_distribution())]
        if self.members is not None:
            blocks.append(("Member grades", self.grade_distribution()))
        blocks.append(("Consequences and interventions", self.consequence_counts()))
        if "true_weak" in self.branches.columns:
            blocks.append(("Accuracy", self.accuracy()))
        return blocks

    def summary(self) -> str:
        """A plain-text summary (what ``print(history)`` shows)."""
        parts = [f"History: {self._head()}"]
        for title, df in self._blocks():
            parts += ["", f"{title}:", df.to_string()]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        return f"<History: {self._head()}>"

    def _repr_html_(self) -> str:
        cells = "".join(f"<p><i>{html.escape(t)}</i></p>{df.to_html(float_format=lambda v: f'{v:.3g}')}"
                        for t, df in self._blocks())
        return f"<div><b>History</b> — {html.escape(self._head())}{cells}</div>"
