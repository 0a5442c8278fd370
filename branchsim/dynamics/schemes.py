"""Member scoring schemes against the truth: monthly records versus the year-end appraisal.

The source claims that scoring members monthly (80% of the annual score)
curbs the "impression scores" (打印象分、感情分) of a single year-end
appraisal. A scheme is a monthly share ``s``: the annual score is
``s × mean monthly score + (1 - s) × appraisal`` (``s = 0`` is the year-end
appraisal alone). Each scheme re-scores the *same* records, so the
comparison has no sampling noise of its own.

The member's **true score** is the noise-free monthly score (every fact at
its expectation given the member's true quality, see
:func:`branchsim.dynamics.measure.member_true_scores`); the **true grade**
is the grade of that score under the policy's cut points.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..errors import DataError
from ..policy import Policy
from ..scoring import GRADES, compile_member_rules, member_grades
from .history import History
from .measure import annual

__all__ = ["compare_member_schemes"]


def _label(share: float, baseline: float) -> str:
    name = ("year-end appraisal only" if share == 0 else "monthly records only" if share == 1
            else f"monthly {share:.0%} + year-end {1 - share:.0%}")
    return name + (" (policy)" if share == baseline else "")


def compare_member_schemes(data, policy: Policy | None = None,
                           shares: Sequence[float] = (0.8, 0.0, 0.5, 1.0)) -> pd.DataFrame:
    """Bias, rank correlation and misclassification of member scoring schemes.

    Parameters
    ----------
    data : Population or History
        A generated population (its year as generated) or a simulated
        history (every member-year).
    policy : Policy, optional
        The rules to vary (default: the history's policy, else the baseline);
        each scheme is ``policy.update({"member.monthly_share": s})``, the
        appraisal share re-normalising to ``1 - s``.
    shares : sequence of float
        Monthly shares to compare; 0.0 is the year-end appraisal only.

    Returns
    -------
    DataFrame
        One row per scheme, indexed by ``monthly_share``: ``scheme`` (a
        label), ``members`` (unit-years scored), ``bias`` (mean of annual
        minus true score, points), ``rmse``, ``spearman`` (rank correlation
        of the annual score with true quality), ``misclassified`` (share
        whose grade differs from their true grade) and
        ``misclassified_<grade>`` for each true grade (NaN when no member
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
        frame, policy = data.members, data.policy if policy is None else policy
        if frame is None:
            raise DataError("this history has no members; simulate with members=True")
    elif hasattr(data, "members") and hasattr(data, "has_truth"):
        from .simulation import simulate
        frame = simulate(data, policy, years=1, members=True).members
        policy = Policy.load() if policy is None else policy
    else:
        raise DataError(f"compare_member_schemes() takes a Population or a History, got {type(data).__name__}")
    if "true_score" not in frame.columns:
        raise DataError("the members have no truth (true_score); compare schemes on generated data")
    shares = [float(s) for s in shares]
    if not shares:
        raise DataError("shares: give at least one monthly share in [0, 1]")
    current = policy["member.monthly_share"]
    mean, appraisal = frame["monthly_mean"].to_numpy(float), frame["appraisal"].to_numpy(float)
    truth, quality = frame["true_score"].to_numpy(float), frame["true_quality"].to_numpy(float)
    true_grade = member_grades(truth, compile_member_rules(policy))
    per_grade = np.bincount(true_grade, minlength=len(GRADES))
    rows = []
    for s in shares:
        p = policy if s == current else policy.update({"member.monthly_share": s},
                                                      reason=f"member scheme: monthly share {s:g}")
        rules = compile_member_rules(p)
        a = annual(mean, appraisal, rules)
        wrong = member_grades(a, rules) != true_grade
        row = {"monthly_share": s, "scheme": _label(s, current), "members": len(a),
               "bias": float(np.mean(a - truth)), "rmse": float(np.sqrt(np.mean((a - truth) ** 2))),
               "spearman": float(spearmanr(a, quality).statistic), "misclassified": float(wrong.mean())}
        by_grade = np.bincount(true_grade, weights=wrong, minlength=len(GRADES))
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(per_grade > 0, by_grade / per_grade, np.nan)
        row.update({f"misclassified_{g}": float(r) for g, r in zip(GRADES, rates)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("monthly_share")
