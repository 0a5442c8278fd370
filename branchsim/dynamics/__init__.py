"""Years in sequence: evolving truth, consecutive-years rules, interventions, member schemes.

Everything scheme-specific is read from ``policy.scheme``: its levels,
designations and their criteria, its consequences (with their ``years`` and
``effect``), its interventions (``select``, ``among``, ``count`` or
``coverage``, ``effect``), its member grades, periods and accrual.

* :func:`simulate` — years of a generated population under a policy:
  qualities evolve (``data/dynamics.yaml``), are measured and rated, and
  the consequences and interventions of the policy act on the next year.
* :class:`History` — the result, one row per unit-year, with level and grade
  distributions, transitions, consequence counts and the rules' accuracy.
* :func:`rule_accuracy` — false alarms and misses of the designations and of
  every consecutive-years rule over years and seeds.
* :func:`coverage_grid` — how often those rules fire, and how accurately,
  as the interventions aimed at their condition reach fewer units.
* :func:`replay` — the same rules over a researcher's own yearly tables.
* :func:`compare_member_schemes` — the period record's share versus the
  year-end appraisal, against the truth; :func:`member_scheme_grid` and
  :func:`scheme_reversals` — that comparison over monthly noise and monthly
  impression bias, and where it reverses.

Modules: :mod:`.params` (evolution parameters), :mod:`.evolve` (pure
yearly rules), :mod:`.measure` (seeded measurement per seed block),
:mod:`.outcome` (a year rated, what carries over), :mod:`.frames` (the
History's columns), :mod:`.simulation` (simulate, replay, rule_accuracy),
:mod:`.history`, :mod:`.schemes`, :mod:`.levers`.
"""
from .history import History, pool_accuracy, rate_table
from .levers import coverage_grid
from .params import DynamicsParams
from .schemes import compare_member_schemes, member_scheme_grid, scheme_reversals
from .simulation import replay, rule_accuracy, simulate

__all__ = ["simulate", "replay", "rule_accuracy", "compare_member_schemes", "member_scheme_grid",
           "scheme_reversals", "History", "DynamicsParams", "pool_accuracy", "rate_table", "coverage_grid"]
