"""branchsim: test a branch scoring-and-rating rule before it is rolled out.

Policy as data (:class:`Policy`), populations of branches and members,
vectorised scoring (:mod:`branchsim.scoring`), and the analyses built on
them.
"""
from . import scoring
from .errors import BranchsimError, DataError, PolicyError
from .evaluate import Result, evaluate_tables, published_counts
from .explain import explain
from .model import GeneratorParams, generate
from .population import Population, evaluate, load_population
from . import sensitivity
from .sensitivity import sweep
from .policy import Policy, data_path

__all__ = ["Policy", "BranchsimError", "PolicyError", "DataError", "scoring", "data_path",
           "Result", "evaluate_tables", "published_counts", "explain",
           "GeneratorParams", "generate", "Population", "evaluate", "load_population",
           "sensitivity", "sweep"]
__version__ = "0.1.0"
