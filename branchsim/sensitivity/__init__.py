"""Sensitivity analysis and threshold validation.

* :func:`sweep` — a grid of parameter values, one tidy row per scenario;
* :func:`exact_sweep` — one share over [0, 1] exactly, one row per interval;
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
from typing import TYPE_CHECKING

from .. import _lazy

# public name -> the module that defines it (imported on first use, PEP 562: the compiled kernels
# and the engine can be imported without the analyses)
_WHERE = {
    "Comparison": "compare", "compare": "compare",
    "Discovery": "discovery", "discover": "discovery", "prim": "discovery",
    "Prepared": "engine", "Scenarios": "engine", "prepare": "engine",
    "default_factors": "factors",
    "SensitivityResult": "gsa", "effective_importance": "gsa", "main_effects": "gsa", "morris": "gsa",
    "sobol": "gsa", "sobol_indices": "gsa",
    "MonteCarlo": "mc_result", "measurement_mc": "montecarlo",
    "scenario_arrays": "sweep", "sweep": "sweep", "exact_sweep": "exact",
    "Fragility": "thresholds", "fit_cut_points": "thresholds", "fragility": "thresholds",
    "fragility_curve": "thresholds", "policy_with_cuts": "thresholds",
}

if TYPE_CHECKING:  # the lazily imported names, for type checkers (at run time: __getattr__ below)
    from .compare import Comparison, compare
    from .discovery import Discovery, discover, prim
    from .engine import Prepared, Scenarios, prepare
    from .exact import exact_sweep
    from .factors import default_factors
    from .gsa import SensitivityResult, effective_importance, main_effects, morris, sobol, sobol_indices
    from .mc_result import MonteCarlo
    from .montecarlo import measurement_mc
    from .sweep import scenario_arrays, sweep
    from .thresholds import Fragility, fit_cut_points, fragility, fragility_curve, policy_with_cuts

__all__ = ["sweep", "exact_sweep", "scenario_arrays", "prepare", "Prepared", "Scenarios", "compare", "Comparison",
           "fragility", "fragility_curve", "Fragility", "fit_cut_points", "policy_with_cuts",
           "measurement_mc", "MonteCarlo", "discover", "prim", "Discovery", "sobol", "sobol_indices",
           "morris", "SensitivityResult", "default_factors", "effective_importance", "main_effects"]


__getattr__, __dir__ = _lazy(__name__, _WHERE, __all__)
