"""Audits of a scheme: counterfactual moves (what it takes to reach the next level)."""
from .counterfactual import distances, marginal_points, next_level

__all__ = ["next_level", "distances", "marginal_points"]
