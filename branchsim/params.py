"""Generator parameters (``data/generator.yaml``): loading, reading by path, checked changes."""
from __future__ import annotations

from typing import TYPE_CHECKING

import copy
from dataclasses import dataclass, field

import numpy as np

from pathlib import Path

from ._schema import _finite, shown
from .errors import BranchsimError
from .policy import data_path

if TYPE_CHECKING:
    from typing import Any
    from ._types import PathLike, PolicyLike, Seed

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
    def load(cls, path: PathLike | None = None) -> GeneratorParams:
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
        problems = [p for path in _leaf_paths(values) if path not in _TEXT
                    for p in [_param_problem(path, GeneratorParams(values, doc).get(path))] if p]
        if problems:
            raise BranchsimError(f"{path}: " + "; ".join(problems))
        return cls(values, doc)

    @classmethod
    def for_policy(cls, policy: PolicyLike) -> GeneratorParams:
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
        own = cls.load(path) if path is not None else None
        out = base
        if own is not None:
            doc = _merged(base.document, own.document)
            for block in ("types", "categories"):          # a scheme's own types replace the defaults'
                if block in own.document:
                    doc[block] = copy.deepcopy(own.document[block])
            out = cls(_values(doc), doc)
        own_loc = own is not None and "loc" in (own.values.get("branch_quality") or {})
        if not own_loc and hasattr(policy, "scheme") and _base_name(policy.name) != base.document.get(
                "calibrated_for"):
            out = _centred(out, policy)
        return out

    def get(self, dotted: str) -> Any:
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


_TEXT = ("schema", "calibrated_for")      # top-level entries that are not parameters
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


def document_leaf(document: dict, path: str) -> object:
    """The entry at a dotted ``path`` of a generator document (``{value, calibrated|quote|assumption, prior}``
    or a plain value), or None."""
    node: object = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


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




def numeric_value(params: "GeneratorParams", name) -> float | None:
    """The value of generator parameter ``name`` if it is a number (not a bool), else None (also: no such path).

    >>> numeric_value(GeneratorParams.load(), "branch_quality.loc") is not None, numeric_value(GeneratorParams.load(), "x")
    (True, None)
    """
    if not isinstance(name, str):
        return None
    try:
        v = params.get(name)
    except (KeyError, TypeError):
        return None
    return None if isinstance(v, bool) or not isinstance(v, (int, float)) else v


def _base_name(name: str) -> str:
    """A policy's name without what a reform added (``baseline[...]``, ``baseline+reform`` → ``baseline``)."""
    return str(name).split("[")[0].split("+")[0]


_CENTRED: dict = {}
_GRID = 128      # quality quantiles per branch type in the centring


def _centred(params: GeneratorParams, policy) -> GeneratorParams:
    """``params`` with ``branch_quality.loc`` set so a typical branch of ``policy`` scores ``typical_score``.

    The default generator's quality location was calibrated to one scheme
    (``calibrated_for`` in ``data/generator.yaml``); on another scheme's sheet
    it can put most branches under the pass mark. A scheme that gives no
    ``branch_quality.loc`` of its own gets the location at which the typical
    branch sits mid-way between the lowest and the highest cut point of its
    type: the median, over the quality distribution and the branch types by
    their shares, of the true score minus that mid-point is 0 (every
    indicator at its difficulty offset of the generator file, every state in
    order). A design without cut points (quotas, clustering) aims the median
    true score at ``uncalibrated.typical_score`` × 100 instead. A sensible
    population before any calibration, not a calibrated one. The shape (scale, skew,
    tail) is the default's. Kept per policy and parameters.

    >>> import branchsim as bs
    >>> p = bs.Policy.load(bs.data_path("policies", "member_points.yaml"))     # its file gives no location
    >>> g = GeneratorParams.for_policy(p)
    >>> g.document["branch_quality"]["loc"]["assumption"].startswith("centred"), g.get("branch_quality.loc") > 0.5
    (True, True)
    >>> GeneratorParams.for_policy(bs.Policy.load()) == GeneratorParams.load()   # the calibrated scheme's own
    True
    """
    from scipy import optimize, stats
    from .measurement import _quality, _type_table
    from .truth import truth_arrays
    from .scoring import scores_from_components
    # The document too: it carries the priors (plausible_cities) and notes, which the values do not.
    key = (hash(policy), repr(params.values), repr(params.document))
    if key in _CENTRED:
        return _CENTRED[key]
    scheme = policy.scheme
    bs = scheme.branch
    _, share, _ = _type_table(params, bs)
    target = np.full(len(bs.types), 100.0 * params.get("uncalibrated.typical_score"))
    cuts = bs.rating.cuts
    if cuts is not None and bs.rating.design in ("cuts", "cuts_and_quota"):
        for i in range(len(bs.types)):
            c = cuts[min(i, len(cuts) - 1)]
            c = c[np.isfinite(c)]
            if len(c):
                target[i] = (c.min() + c.max()) / 2
    z = stats.norm.ppf((np.arange(_GRID) + 0.5) / _GRID)          # quality quantiles, the same for each type
    t = np.repeat(np.arange(len(bs.types)), _GRID)
    weight = np.repeat(share, _GRID) / _GRID
    given = params.values.get("facts") or {}
    offsets = np.array([float((given.get(f) or {}).get("offset", 0.0)) for f in bs.sheet.facts])
    state = np.ones((len(t), len(bs.state_facts)))
    shape = dict(params.values["branch_quality"])

    def median_gap(loc: float) -> float:
        tr = truth_arrays(_quality(np.tile(z, len(bs.types)), {**shape, "loc": loc}), t, state, offsets, params,
                          scheme)
        gap = scores_from_components(tr.points, tr.components, t, bs)["score"] - target[t]
        order = np.argsort(gap, kind="stable")
        return float(gap[order][np.searchsorted(np.cumsum(weight[order]), 0.5)])

    lo, hi = -1.0, 2.0
    g_lo, g_hi = median_gap(lo), median_gap(hi)
    loc = lo if g_lo >= 0 else hi if g_hi <= 0 else optimize.brentq(median_gap, lo, hi, xtol=1e-6)
    note = (f"centred (no location of scheme {policy.name!r}'s own): the median branch sits mid-way between "
            f"the lowest and highest cut point (or at uncalibrated.typical_score without cut points)")
    out = params.with_values({"branch_quality.loc": round(float(loc), 6)})
    out.document["branch_quality"]["loc"] = {"value": out.values["branch_quality"]["loc"], "assumption": note}
    if len(_CENTRED) > 64:
        _CENTRED.clear()
    _CENTRED[key] = out
    return out
