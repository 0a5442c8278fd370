"""Generator parameters (``data/generator.yaml``): loading, reading by path, checked changes."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from pathlib import Path

from ._schema import _finite, shown
from .errors import BranchsimError
from .policy import data_path

__all__ = ["GeneratorParams"]


def _values(node):
    if isinstance(node, dict) and "value" in node:
        return node["value"]
    if isinstance(node, dict):
        return {k: _values(v) for k, v in node.items()}
    return node


@dataclass(frozen=True)
class GeneratorParams:
    """Generator parameters as a nested dict of plain values (``data/generator.yaml``).

    >>> p = GeneratorParams.load()
    >>> p.get("measurement.survey_size")
    25
    """

    values: dict = field(repr=False)
    document: dict = field(repr=False)

    @classmethod
    def load(cls, path=None) -> "GeneratorParams":
        from .errors import PolicyError
        from .policy import read_yaml
        path = data_path("generator.yaml") if path is None else path
        try:    # the same safe reading as a policy: UTF-8, no alias bombs, no duplicate keys
            doc = read_yaml(Path(path), what="generator parameter file")
        except PolicyError as exc:
            raise BranchsimError(str(exc)) from None
        if not isinstance(doc, dict):
            raise BranchsimError(f"{path}: a generator parameter file must be a mapping, "
                                 f"got {type(doc).__name__}")
        values = _values(doc)
        problems = [p for path in _leaf_paths(values) if path != "schema"
                    for p in [_param_problem(path, GeneratorParams(values, doc).get(path))] if p]
        if problems:
            raise BranchsimError(f"{path}: " + "; ".join(problems))
        return cls(values, doc)

    @classmethod
    def for_policy(cls, policy) -> "GeneratorParams":
        """The generator parameters of a scheme: the defaults, overlaid by its ``NAME.generator.yaml``.

        A scheme's file may give only what differs (its branch types' shares
        and sizes, its member classes, calibrated values); the rest is read
        from ``data/generator.yaml``.

        >>> import branchsim as bs
        >>> GeneratorParams.for_policy(bs.Policy.load()) == GeneratorParams.load()
        True
        """
        base = cls.load()
        path = policy.companion("generator") if hasattr(policy, "companion") else None
        if path is None:
            return base
        own = cls.load(path)
        doc = _merged(base.document, own.document)
        for block in ("types", "categories"):          # a scheme's own types replace the defaults'
            if block in own.document:
                doc[block] = copy.deepcopy(own.document[block])
        return cls(_values(doc), doc)

    def get(self, dotted: str):
        node = self.values
        for key in dotted.split("."):
            node = node[key]
        return node

    def with_values(self, changes: dict) -> "GeneratorParams":
        """A copy with some dotted paths set, each checked (unknown path, type, range).

        >>> GeneratorParams.load().with_values({"measurement.survey_size": 40}).get("measurement.survey_size")
        40
        """
        values, doc = copy.deepcopy(self.values), copy.deepcopy(self.document)
        problems = []
        for dotted, v in changes.items():
            *head, last = str(dotted).split(".")
            node, dnode = values, doc
            for key in head:
                if not isinstance(node, dict) or key not in node:
                    node = None
                    break
                node, dnode = node[key], dnode[key]
            if not isinstance(node, dict) or last not in node or isinstance(node[last], dict):
                from ._schema import _suggest
                problems.append(f"{dotted}: no such generator parameter{_suggest(dotted, _leaf_paths(self.values))}")
                continue
            v = v.item() if isinstance(v, np.generic) else v
            bad = _param_problem(dotted, v)
            if bad:
                problems.append(bad)
                continue
            node[last] = v
            if isinstance(dnode[last], dict) and "value" in dnode[last]:
                dnode[last]["value"] = v
            else:
                dnode[last] = v
        if problems:
            raise BranchsimError("generator parameters: " + "; ".join(problems))
        return GeneratorParams(values, doc)


_INTEGER = ("scale.n_branches", "measurement.survey_size")
_SIGNED = ("branch_quality.skew",)
_PROBABILITIES = ("structure.p_underlevel", "state.problem_rate", "member_measurement.impression_halo",
                  "member_measurement.monthly_halo")


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on top, mapping by mapping (fresh copies)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and "value" not in v and isinstance(out.get(k), dict) and "value" not in out[k]:
            out[k] = _merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _leaf_paths(values: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in values.items():
        path = f"{prefix}{k}"
        out += _leaf_paths(v, path + ".") if isinstance(v, dict) else [path]
    return out


def _param_problem(path: str, v) -> str | None:
    """Why a generator parameter value is not allowed, or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
        return f"{path}: got {shown(v)}; allowed: a finite number (at most 1e12 in size)"
    if path in _INTEGER and (not isinstance(v, int) or v < 1):
        return f"{path}: got {shown(v)}; allowed: a whole number >= 1"
    if path not in _SIGNED and v < 0:
        return f"{path}: got {shown(v)}; allowed: a number >= 0"
    if path in _PROBABILITIES and v > 1:
        return f"{path}: got {shown(v)}; allowed: a number in [0, 1]"
    return None


