"""branchsim: test a branch scoring-and-rating rule before it is rolled out.

Policy as data (:class:`Policy`), populations of branches and members,
vectorised scoring (:mod:`branchsim.scoring`), and the analyses built on
them.
"""
from . import calibration, scoring
from .errors import BranchsimError, DataError, PolicyError
from .evaluate import Result, evaluate_tables, published_counts
from .explain import explain
from .model import GeneratorParams, generate
from .population import Population, evaluate, load_population
from .national import NationalResult, national_run
from .explorer import Explorer, explore
from .report import write_report
from . import dynamics
from .dynamics import History, compare_member_schemes, replay, rule_accuracy, simulate
from . import sensitivity
from .sensitivity import (compare, discover, effective_importance, fit_cut_points, fragility,
                          fragility_curve, measurement_mc, morris, policy_with_cuts, sobol, sweep)
from .policy import Policy, data_path

__all__ = ["calibration", "Policy", "BranchsimError", "PolicyError", "DataError", "scoring", "data_path",
           "Result", "evaluate_tables", "published_counts", "explain",
           "GeneratorParams", "generate", "Population", "evaluate", "load_population",
           "sensitivity", "sweep", "compare", "fragility", "fragility_curve", "fit_cut_points",
           "policy_with_cuts", "measurement_mc", "national_run", "NationalResult",
           "discover", "sobol", "morris", "effective_importance", "dynamics", "simulate", "History",
           "rule_accuracy", "compare_member_schemes", "replay", "write_report", "explore", "Explorer"]
__version__ = "0.1.0"
