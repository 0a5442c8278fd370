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
import importlib
import types

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
    "scenario_arrays": "sweep", "sweep": "sweep",
    "Fragility": "thresholds", "fit_cut_points": "thresholds", "fragility": "thresholds",
    "fragility_curve": "thresholds", "policy_with_cuts": "thresholds",
}

__all__ = ["sweep", "scenario_arrays", "prepare", "Prepared", "Scenarios", "compare", "Comparison",
           "fragility", "fragility_curve", "Fragility", "fit_cut_points", "policy_with_cuts",
           "measurement_mc", "MonteCarlo", "discover", "prim", "Discovery", "sobol", "sobol_indices",
           "morris", "SensitivityResult", "default_factors", "effective_importance", "main_effects"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps the functions named like their modules (``sweep``, ``compare``) when a submodule is imported.

    Importing a submodule binds it as an attribute of the package; for the
    modules named like a public function, the function must stay.
    """

    def __setattr__(self, name, value):
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _Package
