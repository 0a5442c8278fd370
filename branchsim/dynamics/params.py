"""Parameters of the years: how qualities evolve (``data/dynamics.yaml``).

How qualities evolve is a property of the world, not of the rule, so it lives
in ``data/dynamics.yaml`` beside the generator's parameters. The effects of
consequences and interventions are levers a reform may change, so they live
in the policy (``consequences.<id>.effect``, ``interventions.<id>.effect``,
read from ``policy.scheme``); a policy without them simulates no effects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from ..params import _values
from ..errors import BranchsimError
from ..policy import data_path

if TYPE_CHECKING:
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["DynamicsParams"]

# (path, lowest, highest) of every evolution parameter.
_LIMITS = {"branch.persistence": (0.0, 1.0), "branch.shock_sd": (0.0, None),
           "member.persistence": (0.0, 1.0), "member.shock_sd": (0.0, None)}


@dataclass(frozen=True)
class DynamicsParams:
    """Persistence and yearly shock of branch and member quality.

    Examples
    --------
    >>> p = DynamicsParams.load()
    >>> p.get("branch.persistence")
    0.8
    >>> p.with_values({"branch.persistence": 0.5}).get("branch.persistence")
    0.5
    """

    values: dict = field(repr=False)
    where: str = "data/dynamics.yaml"

    @classmethod
    def load(cls, path: PathLike | None = None) -> DynamicsParams:
        """Read ``data/dynamics.yaml`` (or another file of the same shape)."""
        path = data_path("dynamics.yaml") if path is None else path
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, yaml.YAMLError) as exc:
            raise BranchsimError(f"{path}: cannot read dynamics parameters: {exc}") from None
        return cls(_values(doc), str(path)).checked()

    def get(self, dotted: str) -> Any:
        node = self.values
        for key in dotted.split("."):
            node = node[key]
        return node

    def with_values(self, changes: Mapping[str, float]) -> "DynamicsParams":
        """A copy with some dotted paths changed, e.g. ``{"branch.persistence": 0.5}``."""
        values = copy.deepcopy(self.values)
        for dotted, v in changes.items():
            if dotted not in _LIMITS:
                raise BranchsimError(f"unknown dynamics parameter {dotted!r}; allowed: {', '.join(_LIMITS)}")
            head, last = dotted.split(".")
            values[head][last] = v
        return DynamicsParams(values, f"{self.where} (changed)").checked()

    def checked(self) -> "DynamicsParams":
        problems = []
        for path, (lo, hi) in _LIMITS.items():
            try:
                v = self.get(path)
            except (KeyError, TypeError):
                problems.append(f"{path}: missing")
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo or (hi is not None and v > hi):
                allowed = f"a number in [{lo:g}, {hi:g}]" if hi is not None else f"a number >= {lo:g}"
                problems.append(f"{path}: got {v!r}; allowed: {allowed}")
        if problems:
            raise BranchsimError(f"{self.where}: " + "; ".join(problems))
        return self
