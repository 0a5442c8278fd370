"""Why this level? Every rule step for one branch or member, with provenance.

:func:`explain` lays out, for one unit, each step the engine takes: the
facts, each rule with the unit's numbers filled in, what each line adds to
the score, the rating design (the cut points used, realised ones for a
relative design, and why the unit got its level), direct grading, the vetoes,
each designation criterion, the consequences, for a branch what it takes to
reach the next level (:func:`branchsim.next_level`: the cheapest single-fact
moves and combination) and, for a member, the periods, the record, the
appraisal and the grade. Every parameter a step uses is cited
by its dotted path (e.g. ``branch.rating.cuts.<level>``) with its provenance.

Nothing in it is written for one scheme: the steps follow the compiled
:class:`~branchsim.scheme.Scheme` (any levels, rule forms, score form, rating
design, designations and consequences). The numbers are those of
:func:`branchsim.evaluate`: a branch is read off one evaluation of the whole
table (ranks, quotas and clusters depend on the other units), a member is
scored with the engine's functions. The lines of column ``adds`` sum to the
engine's score (the branch's score; the member's annual score, or with
``month=`` that period's record).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from .errors import DataError
from .policy import Policy, as_policy
from .population import Population, load_population
from .tables import check_tables

__all__ = ["explain"]


def _find(ids: pd.Series, wanted: object, column: str, table: str, where: str) -> int:
    """Position of ``wanted`` in an id column; an unknown id names the table and shows valid ids."""
    key = str(wanted)
    hit = np.flatnonzero((ids.astype(str) == key).to_numpy())
    if not len(hit):
        some = ", ".join(str(v) for v in ids.iloc[:3])
        raise DataError(f"{column} {key!r} is not in the {table} table of {where} ({len(ids):,} {table}; "
                        f"ids such as {some})")
    return int(hit[0])


# -- arguments ---------------------------------------------------------------------------------
def _where(pop: Population) -> str:
    seed = pop.seed
    if pop.source == "generated" and seed is not None:
        key = f", spawn key {tuple(seed.spawn_key)}" if getattr(seed, "spawn_key", ()) else ""
        return f"the generated city, seed {getattr(seed, 'entropy', seed)}{key}"
    return f"the folder {pop.source}" if pop.source not in ("", "tables") else "the tables passed in"


def _arguments(data: object, policy: object) -> tuple[Population, object, str]:
    """(tables, policy, description); the old order ``explain(policy, data)`` still works, with a warning."""
    if isinstance(data, Policy):
        if isinstance(policy, Policy) or policy is None:
            raise DataError("explain() takes the population first and the policy second: "
                            "explain(pop, policy, branch_id=...) (pop from generate or load_population)")
        warnings.warn("explain(policy, data) is deprecated and will be removed in the next release; "
                      "call explain(data, policy, branch_id=...) like the other analyses", DeprecationWarning,
                      stacklevel=3)
        data, policy = policy, data
    policy = as_policy(policy, "explain(): policy")
    if isinstance(data, (str, os.PathLike)):
        data = load_population(data, policy=policy)
    if isinstance(data, Population):
        return data, policy, _where(data)
    if isinstance(data, pd.DataFrame):
        b, _, _ = check_tables(policy, data)
        return Population(b, source="tables"), policy, "the branches table passed in"
    raise DataError(f"explain() takes a Population (from generate or load_population), a folder of tables "
                    f"or a branches DataFrame first, got {type(data).__name__}")


def explain(data: Population | str | os.PathLike[str] | pd.DataFrame,
            policy: Policy | str | os.PathLike[str] | None = None, *, branch_id: object = None,
            member_id: object = None,
            month: int | None = None) -> pd.DataFrame:
    """Each rule step for one branch or one member, with parameters and provenance.

    Parameters
    ----------
    data : Population, folder path or DataFrame
        The population (from :func:`branchsim.generate` or
        :func:`branchsim.load_population`), a folder of tables, or a
        branches table (enough to explain a branch).
    policy : Policy, path or None
        The policy (default: the baseline).
    branch_id, member_id : str
        The unit to explain: exactly one of them.
    month : int, optional
        With ``member_id``: explain that period's record alone (a policy
        whose record is the mean of the periods) instead of the year.

    Returns
    -------
    DataFrame
        One row per step: ``step``, ``item``, ``input``, ``result`` (the rule
        with its numbers), ``adds`` (what the line adds to the score; NaN for
        lines that only total or decide), ``parameters`` (``path=value`` of
        every parameter the step uses) and ``provenance`` (``path: quote: …``
        or ``path: assumption: …`` for each of them, joined by `` | ``).
        For a branch the ``adds`` column sums to the branch's score; for a
        member, to the annual score (with ``month=``, to that period's
        record on 100). ``attrs`` holds the totals: ``unit`` (``branch`` or
        ``member``), ``adds_to`` (what the adds sum to, in words),
        ``score``, and ``level`` and ``designations`` (a branch) or
        ``record``, ``annual`` and ``grade`` (a member; None when exempt).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> steps = bs.explain(pop, branch_id="B001")
    >>> steps["step"].iloc[-1], bool(abs(steps["adds"].sum() - steps.attrs["score"]) < 1e-9)
    ('next level', True)
    >>> f"{steps['adds'].sum():.2f}" == steps.set_index("step").loc["score", "result"]
    True
    >>> steps.attrs["level"] == bs.evaluate(pop).branches.set_index("branch_id").loc["B001", "rating"]
    True
    """
    if (branch_id is None) == (member_id is None):
        raise DataError("explain() takes exactly one of branch_id= or member_id=")
    if month is not None and member_id is None:
        raise DataError("explain(): month= goes with member_id= (a branch is scored once a year)")
    pop, policy, where = _arguments(data, policy)
    if branch_id is not None:
        from ._explain_branch import branch_steps
        b = pop.branches
        return branch_steps(policy, b, _find(b["branch_id"], branch_id, "branch_id", "branches", where))
    if policy.scheme.member is None:
        raise DataError(f"policy {policy.name!r} rates branches only (it has no member section): there is no "
                        f"member to explain")
    if pop.members is None or pop.member_months is None:
        raise DataError(f"explaining a member needs the members and member_months tables; {where} has "
                        f"branches only")
    from ._explain_member import member_steps
    k = _find(pop.members["member_id"], member_id, "member_id", "members", where)
    return member_steps(policy, pop.branches, pop.members, pop.member_months, k, month, where)
