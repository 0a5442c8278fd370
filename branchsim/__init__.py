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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

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
    "verify": "manifest", "read_manifest": "manifest", "Verification": "manifest",
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

if TYPE_CHECKING:  # the lazily imported names, for type checkers (at run time: __getattr__ below)
    from . import audit, calibration, dynamics, scoring, sensitivity
    from ._result import targets
    from .audit import compare_designs, distances, marginal_points, next_level
    from .calibration import calibrate
    from .dynamics import (History, compare_member_schemes, member_scheme_grid, replay, rule_accuracy,
                           scheme_reversals, simulate)
    from .errors import BranchsimError, DataError, PolicyError
    from .evaluate import Result, evaluate_tables, published_counts
    from .explain import explain
    from .explorer import Explorer, explore
    from .model import GeneratorParams, generate
    from .national import NationalResult, national_run
    from .plausible import plausible_cities
    from .policy import Policy, data_path, load_reform
    from .policytests import check_policy
    from .population import Population, evaluate, load_population
    from .manifest import Verification, read_manifest, verify
    from .report import write_report
    # (from the defining modules: a submodule named like a function, sensitivity.sweep, must not hide it)
    from .sensitivity.compare import compare
    from .sensitivity.discovery import discover
    from .sensitivity.exact import exact_sweep
    from .sensitivity.gsa import effective_importance, morris, sobol
    from .sensitivity.montecarlo import measurement_mc
    from .sensitivity.sweep import sweep
    from .sensitivity.thresholds import fit_cut_points, fragility, fragility_curve, policy_with_cuts

__all__ = ["calibration", "Policy", "BranchsimError", "PolicyError", "DataError", "scoring", "data_path",
           "Result", "evaluate_tables", "published_counts", "explain",
           "GeneratorParams", "generate", "Population", "evaluate", "load_population",
           "sensitivity", "sweep", "exact_sweep", "compare", "fragility", "fragility_curve", "fit_cut_points",
           "policy_with_cuts", "measurement_mc", "national_run", "NationalResult",
           "discover", "sobol", "morris", "effective_importance", "dynamics", "simulate", "History",
           "rule_accuracy", "compare_member_schemes", "member_scheme_grid", "scheme_reversals", "replay",
           "write_report", "explore", "Explorer", "load_reform", "check_policy", "targets", "calibrate",
           "plausible_cities", "audit", "next_level", "distances", "marginal_points", "compare_designs",
           "verify", "read_manifest", "Verification"]


def _lazy(package: str, where: dict[str, str], public: list[str], *,
          submodules: bool = False) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` importing a package's names on first use (``where``: name -> module;
    ``public``: its ``__all__``); used by ``branchsim.sensitivity`` too. A submodule named like a public
    function (``evaluate``, ``sweep``) does not replace the function when it is imported."""
    module = sys.modules[package]
    namespace = vars(module)

    def __getattr__(name: str) -> object:
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
        def __setattr__(self, name: str, value: object) -> None:
            if name in where and isinstance(value, types.ModuleType):
                return                      # the function stays, not its same-named module
            super().__setattr__(name, value)

    module.__class__ = _Package
    return __getattr__, __dir__


def _submodules(module: types.ModuleType) -> set[str]:
    import pkgutil
    return {m.name for m in pkgutil.iter_modules(module.__path__)}


__getattr__, __dir__ = _lazy(__name__, _WHERE, __all__, submodules=True)
