"""Levers of the consecutive-years rules: how far the interventions reach decides how often the rules fire.

A rule such as "reorganise after two weak years" fires only for a unit
that is designated two years running. An intervention aimed at the units so
designated (the seed city rectifies every weak branch, ``select: lowest``
among the weak designation) lifts them before the second year, so the rule
"almost never fires" — a consequence of assuming that every such unit is
reached, not a property of the rule. :func:`coverage_grid` makes that reach
a lever: each intervention's ``coverage`` (the share of the units it aims
at that it reaches, lowest scores first) is set to each value in turn, and
the rules' decisions, false alarms and misses are counted over years and
seeds, with their intervals (:func:`branchsim.dynamics.pool_accuracy`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..policy import Policy, as_policy
from .history import pool_accuracy, rule_consequences, year_zero_once
from .simulation import simulate

if TYPE_CHECKING:
    from collections.abc import Hashable
    from ..scheme import Scheme
    from typing import Any
    from ..population import Population

__all__ = ["aimed_interventions", "coverage_grid"]


def aimed_interventions(scheme: Scheme) -> tuple[str, ...]:
    """Ids of the interventions aimed at the condition of a consecutive-years rule.

    Those whose ``among`` is the designation (or level) a branch consequence
    with ``years > 1`` waits for.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> ids = aimed_interventions(p.scheme)
    >>> [iv.among for iv in p.scheme.interventions if iv.id in ids] == [c.target for c in rule_consequences(p.scheme)]
    True
    """
    conditions = {(c.kind, c.target) for c in rule_consequences(scheme)}
    return tuple(iv.id for iv in scheme.interventions if (iv.among_kind, iv.among) in conditions)


def coverage_grid(pop: Population, policy: Policy | None = None, coverage: Sequence[float] = (1.0, 0.75, 0.5, 0.25), *,
                  interventions: Iterable[str] | None = None, years: int = 5, seeds: Iterable = range(5),
                  confidence: float = 0.95, **kwargs: Any) -> pd.DataFrame:
    """How often the consecutive-years rules fire, and how accurately, as the interventions reach fewer units.

    Parameters
    ----------
    pop : Population
        A generated population (as for :func:`~branchsim.dynamics.simulate`).
    policy : Policy or path, optional
        Default: the baseline.
    coverage : sequence of float
        Values of ``interventions.<id>.coverage``, each in [0, 1] (1: every
        unit aimed at is reached, up to the intervention's ``count``).
    interventions : iterable of str, optional
        Intervention ids to vary (default: :func:`aimed_interventions`, those
        aimed at a consecutive-years rule's condition).
    years, seeds, confidence
        As for :func:`~branchsim.dynamics.rule_accuracy`; other keywords
        (``noise``, ``dynamics``, ...) go to ``simulate``.

    Returns
    -------
    DataFrame
        One row per coverage: ``coverage``, ``branch_years`` (pooled; year 0,
        the same under every seed, once), ``reached_<id>`` (units each
        intervention reached) and the pooled counts, rates, intervals
        (``<rate>_low``, ``<rate>_high``) and events (``<rate>_n``) of
        :func:`~branchsim.dynamics.pool_accuracy`, e.g.
        ``fired_<rule>``, ``false_alarm_rate_<rule>``, ``miss_rate_<rule>``.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=300, members=False)
    >>> g = coverage_grid(pop, coverage=(1.0, 0.0), years=3, seeds=range(2))
    >>> g["coverage"].tolist(), bool(g["reached_rectification"].iloc[1] == 0)
    ([1.0, 0.0], True)
    """
    policy = as_policy(policy)
    scheme = policy.scheme
    rules = rule_consequences(scheme)
    if not rules:
        raise DataError(f"coverage_grid: policy {policy.name!r} has no consecutive-years rule (a branch "
                        "consequence with years > 1) to measure")
    if isinstance(interventions, str):                 # one id, not its letters
        interventions = (interventions,)
    ids = tuple(aimed_interventions(scheme) if interventions is None else interventions)
    known = [iv.id for iv in scheme.interventions]
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise DataError(f"coverage_grid: interventions {unknown}; allowed: {', '.join(known) or 'none'}")
    if not ids:
        raise DataError(f"coverage_grid: policy {policy.name!r} has no intervention aimed at "
                        f"{', '.join(sorted({c.target for c in rules}))}; name them with interventions=")
    if not isinstance(seeds, Iterable) or isinstance(seeds, str):
        raise DataError(f"coverage_grid: seeds: got {seeds!r}; allowed: a list of seeds, e.g. range(5)")
    seeds = list(seeds)
    if not seeds:
        raise DataError("coverage_grid: seeds: give at least one seed")
    if not isinstance(coverage, Iterable) or isinstance(coverage, str):
        raise DataError(f"coverage_grid: coverage: got {coverage!r}; allowed: one or more shares in [0, 1], "
                        f"e.g. (1.0, 0.5)")
    coverage = list(coverage)
    bad = [c for c in coverage if isinstance(c, bool) or not isinstance(c, (int, float, np.number)) or not 0 <= c <= 1]
    if bad or not coverage:
        raise DataError(f"coverage_grid: coverage: got {coverage!r}; allowed: one or more shares in [0, 1]")
    coverage = [float(c) for c in coverage]
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.number)) or not 0 < confidence < 1:
        raise DataError(f"coverage_grid: confidence: got {confidence!r}; allowed: a share in (0, 1), e.g. 0.95")
    rows = []
    for c in coverage:
        change = {"value": c, "assumption": f"coverage grid: the share of the units aimed at reached, {c:g}"}
        p = policy.update({f"interventions.{i}.coverage": dict(change) for i in ids}, reason=f"coverage {c:g}")
        frames = []
        for s in seeds:
            h = simulate(pop, p, years=years, seed=s, members=False, **kwargs)
            acc = h.accuracy().join(h.branches.groupby("year")[list(ids)].sum().add_prefix("reached_"))
            frames.append(acc.reset_index().assign(seed=s))
        out = year_zero_once(pd.concat(frames, ignore_index=True))
        row: dict[Hashable, object] = {"coverage": c, "branch_years": int(len(out)) * len(pop.branches)}
        row.update({f"reached_{i}": int(out[f"reached_{i}"].sum()) for i in ids})
        row.update(pool_accuracy(out, confidence=confidence).to_dict())
        rows.append(row)
    return pd.DataFrame(rows)
