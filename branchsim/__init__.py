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
    "rule_accuracy": "dynamics", "simulate": "dynamics",
    "compare": "sensitivity", "discover": "sensitivity", "effective_importance": "sensitivity",
    "fit_cut_points": "sensitivity", "fragility": "sensitivity", "fragility_curve": "sensitivity",
    "measurement_mc": "sensitivity", "morris": "sensitivity", "policy_with_cuts": "sensitivity",
    "sobol": "sensitivity", "sweep": "sensitivity",
    "Policy": "policy", "data_path": "policy", "load_reform": "policy",
    "check_policy": "policytests", "targets": "_result",
}
_MODULES = ("calibration", "scoring", "dynamics", "sensitivity")

__all__ = ["calibration", "Policy", "BranchsimError", "PolicyError", "DataError", "scoring", "data_path",
           "Result", "evaluate_tables", "published_counts", "explain",
           "GeneratorParams", "generate", "Population", "evaluate", "load_population",
           "sensitivity", "sweep", "compare", "fragility", "fragility_curve", "fit_cut_points",
           "policy_with_cuts", "measurement_mc", "national_run", "NationalResult",
           "discover", "sobol", "morris", "effective_importance", "dynamics", "simulate", "History",
           "rule_accuracy", "compare_member_schemes", "replay", "write_report", "explore", "Explorer",
           "load_reform", "check_policy", "targets"]


def _submodules() -> set[str]:
    import pkgutil
    return {m.name for m in pkgutil.iter_modules(__path__)}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    elif name in _MODULES or (not name.startswith("__") and name in _submodules()):
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps the functions ``evaluate`` and ``explain`` when their same-named modules are imported.

    Importing a submodule binds it as an attribute of the package; for the
    two modules named like a public function, the function must stay.
    """

    def __setattr__(self, name, value):
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _Package
