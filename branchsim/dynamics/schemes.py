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
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .. import rating as rt
from ..errors import DataError
from ..evaluate import member_profiles
from ..policy import Policy, as_policy
from ..scoring import annual_scores, type_codes
from .history import History

__all__ = ["compare_member_schemes"]


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


def compare_member_schemes(data, policy: Policy | None = None,
                           shares: Sequence[float] = (0.8, 0.0, 0.5, 1.0)) -> pd.DataFrame:
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

    Returns
    -------
    DataFrame
        One row per scheme, indexed by ``record_share``: ``scheme`` (a
        label), ``members`` (graded member-years), ``bias`` (mean of annual
        minus true score, points), ``rmse``, ``spearman`` (rank correlation
        of the annual score with true quality), ``misclassified`` (share
        whose grade differs from their true grade) and
        ``misclassified_<grade>`` for each true grade id (NaN when no member
        truly has it).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=30)
    >>> cmp = compare_member_schemes(pop, shares=(0.8, 0.0))
    >>> bool(cmp.loc[0.0, "misclassified"] > cmp.loc[0.8, "misclassified"])
    True
    """
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
