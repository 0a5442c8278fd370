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
from .compare import Comparison, compare
from .discovery import Discovery, discover, prim
from .engine import Prepared, Scenarios, prepare
from .factors import default_factors
from .gsa import SensitivityResult, effective_importance, main_effects, morris, sobol, sobol_indices
from .mc_result import MonteCarlo
from .montecarlo import measurement_mc
from .sweep import scenario_arrays, sweep
from .thresholds import Fragility, fit_cut_points, fragility, fragility_curve, policy_with_cuts

__all__ = ["sweep", "scenario_arrays", "prepare", "Prepared", "Scenarios", "compare", "Comparison",
           "fragility", "fragility_curve", "Fragility", "fit_cut_points", "policy_with_cuts",
           "measurement_mc", "MonteCarlo", "discover", "prim", "Discovery", "sobol", "sobol_indices",
           "morris", "SensitivityResult", "default_factors", "effective_importance", "main_effects"]
