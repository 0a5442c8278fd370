"""Member scoring schemes against the truth: the period record's share versus the year-end appraisal.

The seed city claims that scoring members through the year (the record,
80% of the annual score there) curbs the "impression scores" (打印象分、感情分)
of a single year-end appraisal. A scheme is a record share ``s``: the annual
score is ``s × record + (1 - s) × appraisal`` (``s = 0`` is the year-end
appraisal alone; ``policy.update({"member.record_share": s})``, the appraisal
share re-normalising). Each scheme re-grades the *same* records and
appraisals, with the vetoes that fired, so the comparison has no sampling
noise of its own. Exempt members (no grade) are left out.

The member's **true score** is the noise-free record score (every fact at
its expectation given the member's true quality, see
:func:`branchsim.measurement.member_true_scores`); the **true grade** is the
grade of that score under the policy's design (and the vetoes of the
member's true state).

Which scheme wins is not a fact of the rules but of the measurement: it
rests on how noisy the period records are (``member_measurement.month_noise``)
and on whether they carry impression bias too (``monthly_halo``,
``monthly_affinity``; none by default). :func:`member_scheme_grid` re-measures
the same members over a grid of both, and :func:`scheme_reversals` finds
where the conclusion reverses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .. import rating as rt
from ..errors import DataError
from ..evaluate import member_profiles
from ..policy import Policy, as_policy
from ..scoring import annual_scores, type_codes
from .history import History

if TYPE_CHECKING:
    from ..plausible import Cities
    from ..population import Population

__all__ = ["compare_member_schemes", "member_scheme_grid", "scheme_reversals"]


def _label(share: float, current: float) -> str:
    name = ("year-end appraisal only" if share == 0 else "period records only" if share == 1
            else f"records {share:.0%} + year-end {1 - share:.0%}")
    return name + (" (policy)" if share == current else "")


def _fired(text: pd.Series | None, ids, n: int) -> np.ndarray:
    """The vetoes that fired, from the ``vetoes`` column's comma lists."""
    if text is None or not len(ids):
        return np.zeros((n, len(ids)), dtype=bool)
    sets = [set(str(t).split(",")) if isinstance(t, str) and t else set() for t in text]
    return np.array([[v in s for v in ids] for s in sets], dtype=bool).reshape(n, len(ids))


def _grades(annual, profile, ms, fired, groups, names) -> np.ndarray:
    """Grade codes under a member design (as :func:`branchsim.evaluate.member_outcome` rates them)."""
    r = ms.rating
    if r.design == "cuts":
        codes, _ = rt.rate(annual, r, profile=profile, group_names=list(ms.profiles))
    else:
        codes, _ = rt.rate(annual, r, profile=profile, groups=groups, group_names=names or ["all"])
    return rt.apply_vetoes(codes, fired, ms.vetoes) if ms.vetoes.n else codes


def compare_member_schemes(data: Population | History | None, policy: Policy | None = None,
                           shares: Sequence[float] = (0.8, 0.0, 0.5, 1.0), *,
                           generator: Mapping | None = None, cities: Cities | None = None) -> pd.DataFrame:
    """Bias, rank correlation and misgrading of member scoring schemes.

    Parameters
    ----------
    data : Population or History
        A generated population (its year as generated) or a simulated
        history (every member-year).
    policy : Policy or path, optional
        The rules to vary (default: the history's policy, else the baseline);
        each scheme is ``policy.update({"member.record_share": s})``.
    shares : sequence of float
        Record shares to compare; 0.0 is the year-end appraisal only.
    generator : mapping, optional
        Generator parameters to change (dotted paths, e.g.
        ``{"member_measurement.month_noise": 0.3}``): the population is
        generated again under ``policy`` from its own seed and parameters with
        these changes, so the members and their truth are the same and only
        what the changes touch is measured differently. A population only.
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``data``
        None): each city's population is generated with members and
        compared; each number per record share with its mean and interval
        across cities (``policy`` None: the cities').

    Returns
    -------
    DataFrame
        One row per scheme, indexed by ``record_share``: ``scheme`` (a
        label), ``members`` (graded member-years), ``bias`` (mean of annual
        minus true score, points), ``rmse``, ``spearman`` (rank correlation
        of the annual score with true quality), ``misclassified`` (share
        whose grade differs from their true grade) and
        ``misclassified_<grade>`` for each true grade id (NaN when no member
        truly has it). With ``cities``: ``record_share``, ``quantity``,
        ``mean``, ``sd``, ``lower``, ``upper``, ``n_cities``
        (:func:`~branchsim.plausible.across_cities`).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=30)
    >>> cmp = compare_member_schemes(pop, shares=(0.8, 0.0))
    >>> bool(cmp.loc[0.0, "misclassified"] > cmp.loc[0.8, "misclassified"])
    True
    >>> c = bs.plausible_cities(bs.Policy.load(), {"weak": 2}, n=2, scale=100, seeds=range(2), refine=1, tol=2)
    >>> out = compare_member_schemes(None, shares=(0.8, 0.0), cities=c).set_index(["record_share", "quantity"])
    >>> int(out.loc[(0.0, "misclassified"), "n_cities"])
    2
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, data, None if policy is None else as_policy(policy), "compare_member_schemes")
        return across_cities(cities, compare_member_schemes, cities.policy if policy is None else as_policy(policy),
                             shares, keys=["record_share"], numbers=lambda f: f.reset_index(), members=True,
                             generator=generator)
    if generator is not None:
        if not isinstance(generator, Mapping):
            raise DataError(f"generator: a mapping of generator parameters to change (dotted paths), got "
                            f"{type(generator).__name__}")
        data = remeasured(data, policy, generator)
    if isinstance(data, History):
        frame, branches = data.members, data.branches
        policy = data.policy if policy is None else as_policy(policy)
        if frame is None:
            raise DataError("this history has no members; simulate with members=True")
    elif hasattr(data, "members") and hasattr(data, "has_truth"):
        from .simulation import simulate
        policy = as_policy(policy)
        frame, branches = simulate(data, policy, years=1, members=True).members, data.branches
    else:
        raise DataError(f"compare_member_schemes() takes a Population or a History, got {type(data).__name__}")
    if "true_score" not in frame.columns:
        raise DataError("the members have no truth (true_score); compare schemes on generated data")
    shares = [float(s) for s in shares]
    if not shares:
        raise DataError("shares: give at least one record share in [0, 1]")
    ms = policy.scheme.member
    frame = frame[frame["grade"].notna()]                       # exempt members are not graded
    types = branches.drop_duplicates("branch_id").set_index("branch_id")["type"]
    type_idx = type_codes(types.reindex(frame["branch_id"]).to_numpy(), ms.types, policy.name)
    profile, cls = member_profiles(ms, type_idx, frame["category"])
    groups, names = None, None
    if ms.rating.peer_groups == "class" and cls is not None:
        groups, names = cls, list(ms.classes)
    elif ms.rating.peer_groups == "type":
        groups, names = type_idx, list(ms.types)
    fired = _fired(frame["vetoes"] if "vetoes" in frame else None, ms.vetoes.ids, len(frame))
    record, appraisal = frame["record"].to_numpy(float), frame["appraisal"].to_numpy(float)
    truth, quality = frame["true_score"].to_numpy(float), frame["true_quality"].to_numpy(float)
    gcode = {g: ms.grades.code(g) for g in ms.grades.ids}
    true_grade = frame["true_grade"].map(gcode).fillna(-1).to_numpy(np.int64)
    per_grade = np.bincount(true_grade[true_grade >= 0], minlength=ms.grades.n)
    current = ms.record_share
    rows = []
    for s in shares:
        p = policy if s == current else policy.update({"member.record_share": s},
                                                      reason=f"member scheme: record share {s:g}")
        mss = p.scheme.member
        a = annual_scores(record, appraisal, mss)
        wrong = _grades(a, profile, mss, fired, groups, names) != true_grade
        row = {"record_share": s, "scheme": _label(s, current), "members": len(a),
               "bias": float(np.mean(a - truth)), "rmse": float(np.sqrt(np.mean((a - truth) ** 2))),
               "spearman": float(spearmanr(a, quality).statistic), "misclassified": float(wrong.mean())}
        by_grade = np.bincount(true_grade[true_grade >= 0], weights=wrong[true_grade >= 0], minlength=ms.grades.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(per_grade > 0, by_grade / np.maximum(per_grade, 1), np.nan)
        # codes count from the floor: grade ids best first are codes n-1 .. 0
        row.update({f"misclassified_{g}": float(rates[ms.grades.code(g)]) for g in ms.grades.ids})
        rows.append(row)
    return pd.DataFrame(rows).set_index("record_share")


def _check_generated(pop) -> None:
    if not (hasattr(pop, "has_truth") and pop.has_truth and pop.seed is not None and pop.params is not None):
        raise DataError("changing generator parameters needs a generated population (its seed and generator "
                        "parameters), from bs.generate")


def remeasured(pop, policy: Policy | None, changes: Mapping):
    """``pop`` generated again from its seed and generator parameters with ``changes`` (dotted paths)."""
    _check_generated(pop)
    from ..model import generate
    return generate(as_policy(policy), seed=pop.seed, n_branches=len(pop.branches),
                    params=pop.params.with_values(dict(changes)), members=True)


def member_scheme_grid(pop: Population, policy: Policy | None = None, *,
                       month_noise: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.4),
                       monthly_bias: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
                       share: float | None = None) -> pd.DataFrame:
    """The period records' scheme against the year-end appraisal over monthly noise and monthly bias.

    Each cell re-measures the population's members (:func:`compare_member_schemes`
    with ``generator=``: same seed, same members and truth) with the period
    shock ``member_measurement.month_noise`` and a **monthly bias level**
    ``b``: the period records carry ``b`` times the appraisal's impression
    bias, ``monthly_halo = b × impression_halo`` and ``monthly_affinity = b ×
    affinity_bias`` (``b = 0``: unbiased records, the generator's default;
    ``b = 1``: records as biased as the year-end appraisal; above 1, more).

    Parameters
    ----------
    pop : Population
        A generated population with members.
    policy : Policy or path, optional
        Default: the baseline.
    month_noise, monthly_bias : sequence of float
        The grid's axes.
    share : float, optional
        The record share compared with the year-end appraisal (share 0);
        default: the policy's ``member.record_share``.

    Returns
    -------
    DataFrame
        One row per cell: ``month_noise, monthly_bias, monthly_halo,
        monthly_affinity``; ``records`` and ``year_end``, the share of
        members misgraded under each scheme; ``records_rmse``,
        ``year_end_rmse``; ``records_spearman``, ``year_end_spearman`` (rank
        correlation of the annual score with true quality); ``difference`` =
        records − year_end (below 0: the record scheme misgrades fewer);
        ``rank_difference`` = year_end_spearman − records_spearman (below 0:
        the record scheme ranks members closer to their true order; it does
        not depend on where the grade cuts fall); ``better`` (``records``,
        ``year-end`` or ``tie``, by ``difference``).

    Notes
    -----
    Only the period records change from cell to cell (the year-end appraisal,
    its impression bias and the members' truth are drawn from the same
    streams), so ``year_end_spearman`` is the same in every cell, and so is
    ``year_end`` unless member vetoes read facts of the records (then the
    vetoes that fire change with them). Each cell generates
    the population again: about 0.4 s a cell for the default city (1,500
    branches, 32,000 members) on one core.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=60)
    >>> g = member_scheme_grid(pop, month_noise=(0.05,), monthly_bias=(0.0, 2.0))
    >>> g["better"].tolist()
    ['records', 'year-end']
    """
    policy = as_policy(policy)
    if policy.scheme.member is None:
        raise DataError(f"policy {policy.name!r} rates branches only: there are no member schemes to compare")
    share = policy.scheme.member.record_share if share is None else _number("share", share)
    if not 0 < share <= 1:
        raise DataError(f"share: got {share!r}; allowed: a record share in (0, 1] (0 is the year-end appraisal)")
    axes = {}
    for name, values in (("month_noise", month_noise), ("monthly_bias", monthly_bias)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray) or not len(values):
            raise DataError(f"{name}: give a list of at least one number, got {values!r}")
        axes[name] = [_number(name, v) for v in values]
        if any(v < 0 for v in axes[name]):
            raise DataError(f"{name}: got {values!r}; allowed: numbers >= 0")
    month_noise, monthly_bias = axes["month_noise"], axes["monthly_bias"]
    _check_generated(pop)
    params = pop.params
    halo, affinity = params.get("member_measurement.impression_halo"), params.get("member_measurement.affinity_bias")
    if halo > 0 and max(monthly_bias) * halo > 1:
        raise DataError(f"monthly_bias: got {max(monthly_bias):g}; allowed: at most {1 / halo:g} (the records' pull "
                        f"towards the branch, bias x impression_halo {halo:g}, is a share of at most 1)")
    rows = []
    for noise in month_noise:
        for b in monthly_bias:
            change = {"member_measurement.month_noise": float(noise),
                      "member_measurement.monthly_halo": float(b) * halo,
                      "member_measurement.monthly_affinity": float(b) * affinity}
            c = compare_member_schemes(pop, policy, shares=(share, 0.0), generator=change)
            rec, ye = c.loc[share], c.loc[0.0]
            diff = float(rec["misclassified"] - ye["misclassified"])
            rows.append({"month_noise": float(noise), "monthly_bias": float(b),
                         "monthly_halo": change["member_measurement.monthly_halo"],
                         "monthly_affinity": change["member_measurement.monthly_affinity"],
                         "records": float(rec["misclassified"]), "year_end": float(ye["misclassified"]),
                         "records_rmse": float(rec["rmse"]), "year_end_rmse": float(ye["rmse"]),
                         "records_spearman": float(rec["spearman"]), "year_end_spearman": float(ye["spearman"]),
                         "difference": diff, "rank_difference": float(ye["spearman"] - rec["spearman"]),
                         "better": "records" if diff < 0 else "year-end" if diff > 0 else "tie"})
    return pd.DataFrame(rows)


def _number(name: str, v) -> float:
    """``v`` as a finite float, or one DataError naming ``name``."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise DataError(f"{name}: got {v!r}; allowed: a finite number")
    return float(v)


def scheme_reversals(grid: pd.DataFrame, along: str = "monthly_bias", *,
                     measure: str = "misclassified") -> pd.DataFrame:
    """Where the better scheme changes along one axis of :func:`member_scheme_grid`, for each value of the other.

    The crossing is where the difference between the schemes changes sign,
    interpolated linearly between the two grid points around the first
    change; NaN when one scheme is better over the whole axis.

    Parameters
    ----------
    grid : DataFrame
        From :func:`member_scheme_grid`.
    along : {"monthly_bias", "month_noise"}
        The axis to look along.
    measure : {"misclassified", "spearman"}
        Which scheme is better: the one misgrading fewer members
        (``difference``), or the one whose scores rank members closer to
        their true quality (``rank_difference``).

    Returns
    -------
    DataFrame
        Indexed by the other axis: ``better_at_start`` (the better scheme at
        the axis's first value), ``crossing`` (the value of ``along`` where it
        reverses), ``between`` (the grid values around it, text) and
        ``better_after``.

    Examples
    --------
    >>> g = pd.DataFrame({"month_noise": [0.1] * 3, "monthly_bias": [0.0, 1.0, 2.0],
    ...                   "difference": [-0.2, -0.1, 0.1]})
    >>> scheme_reversals(g).loc[0.1, "crossing"].round(3)
    np.float64(1.5)
    >>> g["difference"] = [0.0, np.nan, 0.1]              # a tie, then no answer: no reversal
    >>> scheme_reversals(g).loc[0.1, ["better_at_start", "between"]].tolist()
    ['year-end', '']
    """
    axes = ("month_noise", "monthly_bias")
    measures = {"misclassified": "difference", "spearman": "rank_difference"}
    if along not in axes:
        raise DataError(f"scheme_reversals: along={along!r}; allowed: {', '.join(axes)}")
    if measure not in measures:
        raise DataError(f"scheme_reversals: measure={measure!r}; allowed: {', '.join(measures)}")
    column = measures[measure]
    if not isinstance(grid, pd.DataFrame):
        raise DataError(f"scheme_reversals: grid is the frame of member_scheme_grid(), got {type(grid).__name__}")
    missing = [c for c in (*axes, column) if c not in grid.columns]
    if missing:
        raise DataError(f"scheme_reversals: the grid has no column {', '.join(missing)}; "
                        "pass the frame of member_scheme_grid()")
    other = axes[1 - axes.index(along)]
    label = {True: "records", False: "year-end"}
    rows = {}
    for key, g in grid.sort_values([other, along], kind="stable").groupby(other, sort=True):
        x, d = g[along].to_numpy(float), g[column].to_numpy(float)
        keep = ~np.isnan(d)                       # a cell without an answer is skipped, not read as a change
        x, d = x[keep], d[keep]
        sign = np.sign(d)
        row = {"better_at_start": "tie", "crossing": np.nan, "between": "", "better_after": ""}
        decided = np.flatnonzero(sign != 0)
        if len(decided):                          # the first grid point where one scheme is better
            start = sign[decided[0]]
            row["better_at_start"] = label[bool(start < 0)]
            opposite = np.flatnonzero(sign == -start)
            if len(opposite):                     # the first point where the other one is, and the last
                j = int(opposite[0])              # point before it where the first one still was
                i = int(decided[decided < j][-1])
                row.update(crossing=float(x[i] + (x[j] - x[i]) * d[i] / (d[i] - d[j])),
                           between=f"{x[i]:g}-{x[j]:g}", better_after=label[bool(d[j] < 0)])
        rows[key] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = other
    return out
