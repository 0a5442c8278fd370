"""Thresholds before rollout: how fragile is a level, and which cuts fit the counts.

* :func:`fragility` — each branch's signed margin to its nearest level
  boundary (a fixed cut, a realised cut of a relative design, or a
  designation's score line) and how many branches sit within ±δ of one;
* :func:`fragility_curve` — that count as the satisfaction share varies;
* :func:`fit_cut_points` — the cut points of a fixed-cut design that
  reproduce target counts (by default the scheme's published counts, scaled
  to the population), with the whole range of cut points that reproduces
  them; :func:`policy_with_cuts` turns a fit into a policy.

Scores, levels and realised cuts come from the core
(:func:`branchsim.evaluate.branch_outcome`), so a margin of 0 means "exactly
on the boundary".

This module gathers them: :func:`fragility`, :func:`fragility_curve` and
:class:`Fragility` live in :mod:`.fragility`; :func:`fit_cut_points` and
:func:`policy_with_cuts` in :mod:`.cutpoints`.
"""
from .cutpoints import fit_cut_points, policy_with_cuts  # noqa: F401  (re-exported)
from .fragility import Fragility, fragility, fragility_curve  # noqa: F401  (re-exported)

__all__ = ["Fragility", "fragility", "fragility_curve", "fit_cut_points", "policy_with_cuts"]
