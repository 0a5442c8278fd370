"""Audits of a scheme: counterfactual moves (what it takes to reach the next level); rating designs compared."""
from .counterfactual import distances, marginal_points, next_level
from .designs import DesignComparison, compare_designs, monotonicity

__all__ = ["next_level", "distances", "marginal_points", "compare_designs", "DesignComparison", "monotonicity"]
