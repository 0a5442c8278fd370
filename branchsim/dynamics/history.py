"""The History of a simulation: tidy unit-year frames and their summaries, named by the scheme.

Accuracy of the rules (exact definitions)
-----------------------------------------
A branch-year is *truly* of a designation ``d`` (``true_<d>``) when the
design, the vetoes and the criteria applied to its true score and state (the
noise-free measurement, see :mod:`.measure`) designate it — the truth of
:func:`branchsim.evaluate`, with the true streaks of the years before. For
each designation ``d``:

* ``designated_<d>``, ``truly_<d>``: designated and truly ``d`` branch-years;
* ``missed_<d>``: truly ``d`` but not designated; ``miss_rate_<d>`` = missed / truly;
* ``false_<d>``: designated but not truly ``d``; ``false_rate_<d>`` = false / designated.

For each branch consequence ``c`` that needs its condition (a designation or
a level) to hold ``years > 1`` years in a row — the consecutive-years rule,
e.g. a reorganisation after two weak years:

* ``fired_<c>``: branch-years in which it was decided;
* ``false_alarms_<c>``: decided for a branch whose condition did *not* truly
  hold in the year it was decided; ``false_alarm_rate_<c>`` = false alarms / fired;
* ``deserved_<c>``: branch-years whose condition truly held that many years
  in a row (the true streak, ``true_<condition>_streak``);
* ``missed_<c>``: deserved but not decided; ``miss_rate_<c>`` = missed / deserved.

Rates are NaN when their denominator is 0; pooled rates divide summed counts.

Confidence intervals (pooled rates)
-----------------------------------
:func:`pool_accuracy` gives each rate ``r`` its exact (Clopper–Pearson)
interval, ``r_low`` and ``r_high`` at ``confidence`` (95% by default), and
``r_n``, the number of events it rests on (its denominator: designations,
truly weak branch-years, decisions or deserved decisions). The interval
treats those events as independent trials with one probability; events of
the same branch in consecutive years, or of one town re-simulated under
several seeds, are not independent, so it is if anything too narrow. With
``r_n = 0`` the rate and its interval are NaN; with few events the interval
is wide (0 of 2 gives 0–0.84), which is the point of reporting it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import html

import numpy as np
import pandas as pd

from ..errors import DataError
from ..policy import Policy

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ..scheme import Consequence
    from ..scheme import Scheme
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["History", "pool_accuracy", "rate_table", "clopper_pearson", "rule_consequences"]

_COUNT_PREFIXES = ("designated_", "truly_", "missed_", "false_", "fired_", "false_alarms_", "deserved_")
_RATE_PREFIXES = ("miss_rate_", "false_rate_", "false_alarm_rate_")


def rule_consequences(scheme: Scheme) -> tuple[Consequence, ...]:
    """Branch consequences whose condition must hold ``years > 1`` years in a row."""
    return tuple(c for c in scheme.consequences_of("branch") if c.years > 1)


def _ratio(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _rate_parts(keys) -> list[tuple[str, str, str]]:
    """``(rate, numerator, denominator)`` for each rate the counts ``keys`` define (ids are distinct across
    designations and consequences: see frames.check_names)."""
    keys = list(keys)
    out = []
    for key in keys:
        if key.startswith("designated_"):
            d = key[len("designated_"):]
            out += [(f"miss_rate_{d}", f"missed_{d}", f"truly_{d}"), (f"false_rate_{d}", f"false_{d}", key)]
    for key in keys:
        if key.startswith("fired_"):
            a = key[len("fired_"):]
            out += [(f"false_alarm_rate_{a}", f"false_alarms_{a}", key),
                    (f"miss_rate_{a}", f"missed_{a}", f"deserved_{a}")]
    return out


def _check_parts(keys, where: str) -> list[tuple[str, str, str]]:
    """The rates' parts, each count they need present: else one DataError naming the missing counts."""
    keys = list(keys)
    parts = _rate_parts(keys)
    missing = sorted({k for _, num, den in parts for k in (num, den) if k not in keys})
    if missing:
        raise DataError(f"{where}: counts {', '.join(missing)} are missing; an accuracy frame has, for each "
                        f"designated_<id>, truly_/missed_/false_<id>, and for each fired_<id>, "
                        f"false_alarms_/deserved_/missed_<id>")
    return parts


def _rates(c: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Rates from the counts."""
    keys = c.index if isinstance(c, pd.Series) else c.columns
    _check_parts(keys, "accuracy")
    out = {rate: _ratio(c[num], c[den]) for rate, num, den in _rate_parts(keys)}
    if isinstance(c, pd.Series):
        return pd.Series({k: float(v) for k, v in out.items()}, dtype=float)
    return pd.DataFrame(out, index=c.index)


def clopper_pearson(k: ArrayLike, n: ArrayLike, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval of a rate ``k / n``: the Clopper–Pearson bounds (NaN where ``n = 0``).

    >>> lo, hi = clopper_pearson([0, 5, 3], [2, 10, 0])
    >>> np.round(lo, 3).tolist(), np.round(hi, 3).tolist()
    ([0.0, 0.187, nan], [0.842, 0.813, nan])
    """
    from scipy.stats import beta
    if (isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.number))
            or not 0 < confidence < 1):
        raise DataError(f"confidence: got {confidence!r}; allowed: a share in (0, 1), e.g. 0.95")
    k, n = np.asarray(k, float), np.asarray(n, float)
    a = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def pool_accuracy(frame: pd.DataFrame, *, confidence: float = 0.95) -> pd.Series:
    """Rates from counts summed over the rows of an accuracy frame (years, seeds), with their intervals.

    Each rate ``r`` comes with ``r_low``, ``r_high`` (Clopper–Pearson at
    ``confidence``) and ``r_n``, the events it rests on (module docstring).

    >>> f = pd.DataFrame({"designated_w": [5, 3], "truly_w": [4, 0], "missed_w": [1, 0], "false_w": [2, 3],
    ...                   "fired_r": [2, 2], "false_alarms_r": [1, 0], "deserved_r": [1, 1], "missed_r": [0, 1]})
    >>> p = pool_accuracy(f)
    >>> p[["miss_rate_w", "false_alarm_rate_r", "miss_rate_r"]].tolist()
    [0.25, 0.25, 0.5]
    >>> p[["miss_rate_r_n", "miss_rate_r_low", "miss_rate_r_high"]].round(3).tolist()
    [2.0, 0.013, 0.987]
    """
    cols = [c for c in frame.columns if isinstance(c, str) and c.startswith(_COUNT_PREFIXES)
            and not c.startswith(_RATE_PREFIXES)]
    total = frame[cols].sum().astype(int)
    parts = _check_parts(total.index, "pool_accuracy")
    low, high = clopper_pearson([total[num] for _, num, _ in parts], [total[den] for _, _, den in parts],
                                confidence)
    extra = {}
    for (rate, _, den), lo, hi in zip(parts, low, high):
        extra.update({f"{rate}_low": float(lo), f"{rate}_high": float(hi), f"{rate}_n": float(total[den])})
    return pd.concat([total, _rates(total), pd.Series(extra, dtype=float)])


def year_zero_once(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of an accuracy frame over ``seed`` and ``year`` with year 0 kept for the first seed only: every
    seed's year 0 is the same population as generated, so pooling it once per seed would count it again."""
    first = frame["seed"].iloc[0]
    return frame[(frame["year"] != 0) | (frame["seed"] == first)]


def rate_table(pooled: pd.Series) -> pd.DataFrame:
    """The rates of a pooled accuracy (:func:`pool_accuracy`) as a table: one row per rate.

    Columns ``events`` (the numerator: misses, false designations, false
    alarms), ``n`` (the events the rate rests on), ``rate``, ``low``, ``high``.

    >>> f = pd.DataFrame({"fired_r": [2, 2], "false_alarms_r": [1, 0], "deserved_r": [1, 1], "missed_r": [0, 1]})
    >>> rate_table(pool_accuracy(f)).round(3).to_dict("index")["false_alarm_rate_r"]
    {'events': 1, 'n': 4, 'rate': 0.25, 'low': 0.006, 'high': 0.806}
    """
    if not isinstance(pooled, pd.Series):
        raise DataError(f"rate_table() takes the Series of pool_accuracy() or rule_accuracy(pooled=True), "
                        f"got {type(pooled).__name__}")
    parts = _check_parts([k for k in pooled.index if isinstance(k, str)], "rate_table()")
    if not parts:
        raise DataError("rate_table(): no designated_<id> or fired_<id> counts in this Series")
    rows = {}
    for rate, num, den in parts:
        lo, hi = (pooled.get(f"{rate}_low"), pooled.get(f"{rate}_high"))
        if lo is None:
            lo, hi = (float(v[0]) for v in clopper_pearson([pooled[num]], [pooled[den]]))
        value = pooled.get(rate)
        value = float(_ratio(pooled[num], pooled[den])) if value is None else float(value)   # counts alone
        rows[rate] = {"events": int(pooled[num]), "n": int(pooled[den]), "rate": value,
                      "low": float(lo), "high": float(hi)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "rate"
    return out


class History:
    """Years of one population under one policy: ``.branches`` and ``.members``, one row per unit-year.

    >>> import branchsim as bs
    >>> h = bs.simulate(bs.generate(seed=0, n_branches=30, members=False), years=2, seed=1)
    >>> sorted(h.branches["year"].unique().tolist())
    [0, 1]

    Decisions recorded in year ``y`` (a column per consequence and per
    intervention, named by its id) are taken on year ``y``'s evaluation and
    act on year ``y + 1``'s true quality; ``effect`` is the attainment a
    unit's quality received at the start of year ``y`` from year ``y - 1``'s
    decisions. The columns are listed in :mod:`branchsim.dynamics.frames`.

    Attributes
    ----------
    branches : DataFrame
    members : DataFrame or None
    policy : Policy
    cut_points : DataFrame
        ``year, group, level, cut``: the cut points each year's rating used
        (realised ones for a relative design, after its guardrail).
    """

    def __init__(self, branches: pd.DataFrame, members: pd.DataFrame | None, policy: Policy, *,
                 seed: Seed = None, noise: bool = True, source: str = "simulate",
                 cut_points: pd.DataFrame | None = None) -> None:
        self.branches = branches
        self.members = members
        self.cut_points = cut_points if cut_points is not None else \
            pd.DataFrame(columns=["year", "group", "level", "cut"])
        self.policy = policy
        self.seed = seed
        self.noise = noise
        self.source = source

    @property
    def scheme(self) -> Scheme:
        return self.policy.scheme

    @property
    def years(self) -> list[int]:
        return sorted(pd.unique(self.branches["year"]).tolist())

    # -- summaries ---------------------------------------------------------------------
    def level_distribution(self) -> pd.DataFrame:
        """Branches per level (columns: level ids, best first) and per designation, per year (rows)."""
        b = self.branches
        bs = self.scheme.branch
        out = pd.crosstab(b["year"], b["rating"]).reindex(columns=list(bs.levels.ids), fill_value=0)
        for d in bs.designations:
            out[d.id] = b.groupby("year")[d.id].sum().astype(int)
        out.columns.name = "level"
        return out

    def star_distribution(self) -> pd.DataFrame:
        """Alias of :meth:`level_distribution` (the first scheme rated in stars)."""
        return self.level_distribution()

    def grade_distribution(self) -> pd.DataFrame:
        """Members per grade (columns: grade ids, best first; ``exempt`` when a class is) per year."""
        if self.members is None:
            return pd.DataFrame()
        m, ms = self.members, self.scheme.member
        out = pd.crosstab(m["year"], m["grade"]).reindex(index=self.years, columns=list(ms.grades.ids),
                                                         fill_value=0)
        if ms.exempt.any():
            out["exempt"] = m["grade"].isna().groupby(m["year"]).sum().astype(int)
        out.columns.name = "grade"
        return out

    def transitions(self, year_from: int | None = None, year_to: int | None = None, *,
                    normalize: bool = False) -> pd.DataFrame:
        """Level transition matrix: level in ``year_from`` (rows) against ``year_to`` (columns), best first.

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
        wide = self.branches.pivot(index="branch_id", columns="year", values="rating")
        a = np.concatenate([wide[y0].to_numpy() for y0, _ in pairs]) if pairs else np.array([], dtype=object)
        b = np.concatenate([wide[y1].to_numpy() for _, y1 in pairs]) if pairs else np.array([], dtype=object)
        keep = ~(pd.isna(a) | pd.isna(b))      # units present in both years
        ids = list(self.scheme.branch.levels.ids)
        out = pd.crosstab(pd.Categorical(a[keep], ids), pd.Categorical(b[keep], ids), rownames=["from"],
                          colnames=["to"], dropna=False).reindex(index=ids, columns=ids, fill_value=0)
        if normalize:
            out = out.div(out.sum(axis=1).replace(0, np.nan), axis=0)
        return out

    def consequence_counts(self) -> pd.DataFrame:
        """How many units each consequence and intervention reached, per year (columns: their ids)."""
        b, s = self.branches, self.scheme
        cols = [c.id for c in s.consequences_of("branch")] + [iv.id for iv in s.interventions if iv.id in b]
        out = b.groupby("year")[cols].sum().astype(int)
        if self.members is not None:
            mc = [c.id for c in s.consequences_of("member")]
            out = out.join(self.members.groupby("year")[mc].sum().astype(int))
        out.columns.name = "consequence"
        return out

    def accuracy(self, *, pooled: bool = False) -> pd.DataFrame | pd.Series:
        """Accuracy of the designations and the consecutive-years rules against the truth.

        One row per year with the counts and rates defined in the module
        docstring; ``pooled=True`` sums the counts over the years first.
        """
        b, s = self.branches, self.scheme
        if "true_rating" not in b.columns:
            raise DataError("accuracy needs the truth: this history has no true columns "
                            "(replayed tables without true_quality); simulate a generated population")
        flags = {"year": b["year"]}
        for d in s.branch.designations:
            got, true = b[d.id].to_numpy(bool), b[f"true_{d.id}"].to_numpy(bool)
            flags.update({f"designated_{d.id}": got, f"truly_{d.id}": true, f"missed_{d.id}": true & ~got,
                          f"false_{d.id}": got & ~true})
        codes = {lv: s.branch.levels.code(lv) for lv in s.branch.levels.ids}
        for c in rule_consequences(s):
            fired = b[c.id].to_numpy(bool)
            if c.kind == "designation":
                held = b[f"true_{c.target}"].to_numpy(bool)
            else:
                true = b["true_rating"].map(codes).to_numpy()
                held = true <= c.code if c.or_below else true == c.code
            deserved = b[f"true_{c.target}_streak"].to_numpy() >= c.years
            flags.update({f"fired_{c.id}": fired, f"false_alarms_{c.id}": fired & ~held,
                          f"deserved_{c.id}": deserved, f"missed_{c.id}": deserved & ~fired})
        counts = pd.DataFrame(flags).groupby("year").sum().astype(int)
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
        blocks = [("Levels", self.level_distribution())]
        if self.members is not None:
            blocks.append(("Member grades", self.grade_distribution()))
        blocks.append(("Consequences and interventions", self.consequence_counts()))
        if "true_rating" in self.branches.columns:
            blocks.append(("Accuracy", self.accuracy()))
        return blocks

    def summary(self) -> str:
        """A plain-text summary (what ``print(history)`` shows)."""
        parts = [f"History: {self._head()}"]
        for title, df in self._blocks():
            parts += ["", f"{title}:", df.to_string(float_format=lambda v: f"{v:.3g}")]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        return f"<History: {self._head()}>"

    def _repr_html_(self) -> str:
        cells = "".join(f"<p><i>{html.escape(t)}</i></p>{df.to_html(float_format=lambda v: f'{v:.3g}')}"
                        for t, df in self._blocks())
        return f"<div><b>History</b> — {html.escape(self._head())}{cells}</div>"
