"""branchsim: test a branch scoring-and-rating rule before it is rolled out.

Policy as data (:class:`Policy`), populations of branches and members,
vectorised scoring (:mod:`branchsim.scoring`), and the analyses built on
them.

The public names below are imported on first use (PEP 562), so that
``import branchsim`` and the command line's ``--help`` stay light: pandas,
SciPy, Numba and pyarrow load only when something needs them.
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> the module that defines it
_WHERE = {
    "BranchsimError": "errors", "DataError": "errors", "PolicyError": "errors",
    "Result": "evaluate", "evaluate_tables": "evaluate", "published_counts": "evaluate",
    "explain": "explain",
    "GeneratorParams": "model", "generate": "model",
    "Population": "population", "evaluate": "population", "load_population": "population",
    "NationalResult": "national", "national_run": "national",
    "Explorer": "explorer", "explore": "explorer",
    "write_report": "report",
    "History": "dynamics", "compare_member_schemes": "dynamics", "replay": "dynamics",
    "rule_accuracy": "dynamics", "simulate": "dynamics", "member_scheme_grid": "dynamics",
    "scheme_reversals": "dynamics",
    "compare": "sensitivity", "discover": "sensitivity", "effective_importance": "sensitivity",
    "fit_cut_points": "sensitivity", "fragility": "sensitivity", "fragility_curve": "sensitivity",
    "measurement_mc": "sensitivity", "morris": "sensitivity", "policy_with_cuts": "sensitivity",
    "sobol": "sensitivity", "sweep": "sensitivity", "exact_sweep": "sensitivity",
    "Policy": "policy", "data_path": "policy", "load_reform": "policy",
    "check_policy": "policytests", "targets": "_result", "calibrate": "calibration",
    "plausible_cities": "plausible",
    "next_level": "audit", "distances": "audit", "marginal_points": "audit", "compare_designs": "audit",
}

__all__ = ["calibration", "Policy", "BranchsimError", "PolicyError", "DataError", "scoring", "data_path",
           "Result", "evaluate_tables", "published_counts", "explain",
           "GeneratorParams", "generate", "Population", "evaluate", "load_population",
           "sensitivity", "sweep", "exact_sweep", "compare", "fragility", "fragility_curve", "fit_cut_points",
           "policy_with_cuts", "measurement_mc", "national_run", "NationalResult",
           "discover", "sobol", "morris", "effective_importance", "dynamics", "simulate", "History",
           "rule_accuracy", "compare_member_schemes", "member_scheme_grid", "scheme_reversals", "replay",
           "write_report", "explore", "Explorer", "load_reform", "check_policy", "targets", "calibrate",
           "plausible_cities", "audit", "next_level", "distances", "marginal_points", "compare_designs"]


def _lazy(package: str, where: dict[str, str], public: list[str], *, submodules: bool = False):
    """``(__getattr__, __dir__)`` importing a package's names on first use (``where``: name -> module;
    ``public``: its ``__all__``); used by ``branchsim.sensitivity`` too. A submodule named like a public
    function (``evaluate``, ``sweep``) does not replace the function when it is imported."""
    module = sys.modules[package]
    namespace = vars(module)

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f".{where[name]}", package), name)
        elif submodules and not name.startswith("__") and name in _submodules(module):
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    class _Package(types.ModuleType):
        def __setattr__(self, name, value):
            if name in where and isinstance(value, types.ModuleType):
                return                      # the function stays, not its same-named module
            super().__setattr__(name, value)

    module.__class__ = _Package
    return __getattr__, __dir__


def _submodules(module) -> set[str]:
    import pkgutil
    return {m.name for m in pkgutil.iter_modules(module.__path__)}


__getattr__, __dir__ = _lazy(__name__, _WHERE, __all__, submodules=True)
