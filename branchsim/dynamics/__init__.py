"""Years in sequence: evolving truth, consecutive-year rules, interventions, member schemes.

* :func:`simulate` — years of a generated population under a policy:
  qualities evolve (``data/dynamics.yaml``), are measured and scored, and
  the consequences and interventions of the policy act on the next year.
* :class:`History` — the result, one row per unit-year, with star
  distributions, transitions, consequence counts and the rule's accuracy.
* :func:`rule_accuracy` — false alarms and misses of the reorganisation rule
  over years and seeds.
* :func:`replay` — the same rules over a researcher's own yearly tables.
* :func:`compare_member_schemes` — monthly records versus the year-end
  appraisal, against the truth.

Modules: :mod:`.params` (parameters and levers), :mod:`.evolve` (pure
yearly rules), :mod:`.measure` (seeded measurement per seed block),
:mod:`.simulation` (simulate, replay, rule_accuracy), :mod:`.history`, :mod:`.schemes`.
"""
from .history import History, pool_accuracy
from .params import DynamicsParams, Levers
from .schemes import compare_member_schemes
from .simulation import replay, rule_accuracy, simulate

__all__ = ["simulate", "replay", "rule_accuracy", "compare_member_schemes", "History",
           "DynamicsParams", "Levers", "pool_accuracy"]
