"""Sensitivity analysis and threshold validation.

* :func:`sweep` — a grid of parameter values, one tidy row per scenario;
* :func:`compare` — a reform against a baseline: transitions, movers, diff;
* :func:`fragility`, :func:`fragility_curve`, :func:`fit_cut_points` —
  thresholds before rollout;
* :func:`discover` — scenario discovery (PRIM boxes);
* :func:`measurement_mc` — Monte Carlo over measurement noise;
* :func:`sobol`, :func:`morris`, :func:`effective_importance` — global
  sensitivity.

The scenario axis (:mod:`.engine`) evaluates many weight vectors and
cut-point sets together.
"""
from .engine import Prepared, Scenarios, prepare
from .sweep import scenario_arrays, sweep

__all__ = ["sweep", "scenario_arrays", "prepare", "Prepared", "Scenarios"]
