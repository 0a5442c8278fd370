"""Thresholds before rollout: how fragile is a star, and which cuts fit the counts.

* :func:`fragility` — each branch's signed margin to its nearest cut point
  (a star cut or the weak line) and how many branches sit within ±δ of one;
* :func:`fragility_curve` — that count as the satisfaction share varies,
  all shares scored with one matrix product per block of branches;
* :func:`fit_cut_points` — star cut points that reproduce target counts
  (by default the published 41 / 173 / 422), with the whole range of cut
  points that reproduces them; :func:`policy_with_cuts` turns a fit into a
  policy.

Scores come from the engine's prepared components (:func:`.engine.prepare`)
and the policy's compiled weights, with the same arithmetic as
:func:`branchsim.evaluate`, so a margin of 0 means "exactly on the cut".

This module gathers them: :func:`fragility`, :func:`fragility_curve` and
:class:`Fragility` live in :mod:`.fragility`; :func:`fit_cut_points` and
:func:`policy_with_cuts` in :mod:`.cutpoints`.
"""
from .cutpoints import fit_cut_points, policy_with_cuts  # noqa: F401  (re-exported)
from .fragility import Fragility, fragility, fragility_curve  # noqa: F401  (re-exported)

__all__ = ["Fragility", "fragility", "fragility_curve", "fit_cut_points", "policy_with_cuts"]
