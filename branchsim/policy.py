"""The Policy: published evaluation rules as validated, immutable data.

A policy is one YAML file (see ``docs/policy-format.md``). Every parameter
carries its provenance (a quote from the source or an assumption). A reform
is a changed copy made with :meth:`Policy.update`, checked as a whole before
anything changes.
"""
from __future__ import annotations

import copy
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ._schema import SCHEMA, Param, fact_range, semantic_problems, shown, value_problem, walk, _suggest
from .errors import PolicyError

__all__ = ["Policy", "data_path", "fact_range"]

_REFORM_NOTE = "reform: set with Policy.update"


def data_path(*parts: str) -> Path:
    """Path of a file shipped in the package's ``data/`` folder.

    Examples
    --------
    >>> data_path("policies", "baseline.yaml").name
    'baseline.yaml'
    """
    return _data_root().joinpath(*parts)


def _data_root() -> Path:
    # A source checkout (editable install, tests) reads the repository's data/;
    # an installed wheel carries the same files as the package branchsim.data.
    here = Path(__file__).resolve().parent.parent / "data"
    if (here / "policies").is_dir():
        return here
    return _installed_data_root()


def _installed_data_root() -> Path:
    """The folder of the package ``branchsim.data`` (data/ has no __init__.py: a namespace package)."""
    import importlib.util
    spec = importlib.util.find_spec("branchsim.data")
    if spec is None or not spec.submodule_search_locations:
        raise PolicyError("the package data (branchsim.data) is not installed; reinstall branchsim",
                          where="data")
    return Path(list(spec.submodule_search_locations)[0])


def _share_groups(data: dict) -> list[list[str]]:
    """Parameters that must add up to 1, as lists of dotted paths."""
    branch = ["branch.satisfaction_share"] + [
        f"branch.dimensions.{d}.share" for d in data["branch"]["dimensions"]]
    member = ["member.monthly_share", "member.appraisal_share"]
    return [branch, member]


def _normalise_keys(node: Any) -> Any:
    """YAML reads ``5:`` as an int; paths are texts, so keys become str."""
    if isinstance(node, dict):
        return {str(k): _normalise_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normalise_keys(v) for v in node]
    return node


def _check(data: Any, where: str) -> dict:
    """Validate a whole policy document; return its parameters by path."""
    if not isinstance(data, dict):
        raise PolicyError(f"a policy must be a mapping at the top level, got {type(data).__name__}",
                          where=where)
    problems: list[str] = []
    params: dict = {}
    walk(data, SCHEMA, "", problems, params)
    if data.get("schema") not in (None, "branchsim-policy/1") and not problems:
        problems.append(f"schema: {data['schema']!r} is not supported; allowed: branchsim-policy/1")
    try:
        problems += semantic_problems(data)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        # Cross-entry checks need a well-formed structure; the structural
        # problems already found are reported instead.
        if not problems:
            raise
    if problems:
        raise PolicyError(problems, where=where)
    return params


class Policy:
    """An immutable, validated set of evaluation rules.

    Parameters are read by dotted path; :meth:`update` returns a new policy.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> p["branch.satisfaction_share"]
    0.4
    >>> reform = p.update({"branch.satisfaction_share": 0.30})
    >>> round(sum(reform[f"branch.dimensions.{d}.share"] for d in reform.dimensions), 10)
    0.7
    >>> p["branch.satisfaction_share"]          # the original is unchanged
    0.4
    """

    __slots__ = ("_data", "_params", "_where")

    def __init__(self, data: Mapping, *, where: str = "<policy>"):
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a mapping at the top level, got "
                              f"{type(data).__name__}", where=where)
        data = _normalise_keys(copy.deepcopy(dict(data)))
        params = _check(data, where)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_where", where)

    def __setattr__(self, name, value):
        raise AttributeError("Policy is immutable; use policy.update({...}) to make a reform")

    def __reduce__(self):
        # Rebuilt (and re-validated) from its document: picklable for process pools and Dask.
        return (_rebuild, (self._data, self._where))

    # -- loading and saving ------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Policy":
        """Read a policy file; with no argument, the baseline policy.

        Only safe YAML is read: a policy file can never run code.
        """
        path = data_path("policies", "baseline.yaml") if path is None else Path(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy file: {exc.strerror or exc}", where=str(path)) from None
        try:
            # The C-accelerated *safe* loader when PyYAML has it: no object tags, ever.
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise PolicyError(f"not valid YAML: {exc}", where=str(path)) from None
        return cls(data, where=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to ``path`` (atomically); it loads back identically."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        text = yaml.safe_dump(self._data, allow_unicode=True, sort_keys=False, width=100)
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    def to_dict(self) -> dict:
        """A deep copy of the policy document."""
        return copy.deepcopy(self._data)

    # -- reading -----------------------------------------------------------
    def __getitem__(self, path: str) -> Any:
        if path in self._params:
            return copy.deepcopy(self._params[path][1]["value"])
        node: Any = self._data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                hint = _suggest(path, self._params)
                raise PolicyError(f"no parameter or section at this path{hint}", where=path) from None
            node = node[key]
        return copy.deepcopy(node)

    def __contains__(self, path: str) -> bool:
        return path in self._params

    def __eq__(self, other) -> bool:
        return isinstance(other, Policy) and self._data == other._data

    def __hash__(self):
        return hash(yaml.safe_dump(self._data, sort_keys=True))

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def dimensions(self) -> list[str]:
        """Branch dimension ids, in file order."""
        return list(self._data["branch"]["dimensions"])

    @property
    def branch_types(self) -> list[str]:
        return list(self._data["branch"]["types"])

    @property
    def branch_indicators(self) -> dict:
        return copy.deepcopy(self._data["branch"]["indicators"])

    @property
    def member_indicators(self) -> dict:
        return copy.deepcopy(self._data["member"]["indicators"])

    def provenance(self, path: str) -> str:
        """``'quote: ...'`` or ``'assumption: ...'`` for one parameter."""
        if path not in self._params:
            raise PolicyError(f"no parameter at this path{_suggest(path, self._params)}", where=path)
        leaf = self._params[path][1]
        kind = "quote" if "quote" in leaf else "assumption"
        return f"{kind}: {leaf[kind]}"

    def parameters(self) -> pd.DataFrame:
        """Every parameter: path, value, kind of provenance and its text."""
        rows = []
        for path, (_, leaf) in self._params.items():
            kind = "quote" if "quote" in leaf else "assumption"
            rows.append({"path": path, "value": leaf["value"], "provenance": kind, "source": leaf[kind]})
        return pd.DataFrame(rows, columns=["path", "value", "provenance", "source"])

    # -- reforms -----------------------------------------------------------
    def update(self, changes: Mapping[str, Any], *, reason: str | None = None) -> "Policy":
        """Return a new policy with some parameters changed.

        Every path and value is checked before anything changes; an unknown
        path, a wrong type, or a value equal to the current one raises
        :class:`PolicyError` naming the path. When some members of a share
        group change (``branch.satisfaction_share`` with the four
        ``branch.dimensions.*.share``; ``member.monthly_share`` with
        ``member.appraisal_share``), the unchanged members are scaled by one
        common factor so the group adds up to 1 again.

        Parameters
        ----------
        changes : mapping of dotted path to new value
        reason : str, optional
            Recorded as the provenance of the changed parameters.
        """
        if not isinstance(changes, Mapping) or not changes:
            raise PolicyError("update() takes a non-empty mapping {path: new value}", where="update")
        problems = []
        for path, value in changes.items():
            if path not in self._params:
                problems.append(f"{path}: no such parameter{_suggest(path, self._params)}")
                continue
            spec: Param = self._params[path][0]
            value = _plain(value)
            bad = value_problem(spec, value)
            if bad:
                problems.append(f"{path}: {bad}")
            elif value == self._params[path][1]["value"]:
                problems.append(f"{path}: already {value!r}; a change that changes nothing is an error")
        if problems:
            raise PolicyError(problems, where="update")

        data = copy.deepcopy(self._data)
        note = reason or _REFORM_NOTE
        for path, value in changes.items():
            value = _plain(value)
            old = self._params[path][1]["value"]
            _set_leaf(data, path, value, f"{note} (was {old!r})")
        for group in _share_groups(self._data):
            changed = [p for p in group if p in changes]
            if not changed or len(changed) == len(group):
                continue
            rest = [p for p in group if p not in changes]
            target = 1.0 - sum(_leaf(data, p)["value"] for p in changed)
            current = sum(self[p] for p in rest)
            if -1e-12 <= target < 1e-12:     # "exactly 1" up to float rounding: the rest become 0
                target = 0.0
            if target < -1e-12:
                problems.append(f"{', '.join(changed)}: add up to more than 1; allowed: a total of at most 1")
                continue
            if current == 0:
                if target > 1e-12:
                    problems.append(f"{', '.join(rest)}: all 0, cannot be re-normalised to fill {target:g}")
                continue
            factor = target / current
            for p in rest:
                old = self[p]
                _set_leaf(data, p, old * factor if factor else 0.0,
                          f"re-normalised after {', '.join(changed)} changed (was {old!r})")
        if problems:
            raise PolicyError(problems, where="update")
        return Policy(data, where=f"{self._where} (updated)")

    def diff(self, other: "Policy") -> pd.DataFrame:
        """Parameters that differ: one row each with path, old, new, provenance.

        ``old`` is this policy's value, ``new`` the other's; provenance is the
        other policy's (the reform's) provenance of the parameter.
        """
        if not isinstance(other, Policy):
            raise PolicyError(f"diff() takes a Policy, got {type(other).__name__}", where="diff")
        rows = []
        for path in list(self._params) + [p for p in other._params if p not in self._params]:
            a = self._params.get(path, (None, {}))[1].get("value")
            b = other._params.get(path, (None, {}))[1].get("value")
            if a != b or (path in self._params) != (path in other._params):
                src = other if path in other._params else self
                rows.append({"path": path, "old": a, "new": b, "provenance": src.provenance(path)})
        return pd.DataFrame(rows, columns=["path", "old", "new", "provenance"])

    # -- display -------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str]]:
        br, mb = self._data["branch"], self._data["member"]
        dims = ", ".join(f"{d['label'].split(' ')[0]} {d['share']['value']:.0%}"
                         for d in br["dimensions"].values())
        cuts = ", ".join(f"{k}★ ≥ {v['value']:g}" for k, v in sorted(br["star_cuts"].items(), reverse=True))
        grades = ", ".join(f"{g} ≥ {v['value']:g}" for g, v in mb["grade_cuts"].items())
        n_quote = sum("quote" in leaf for _, leaf in self._params.values())
        return [
            ("branch indicators", f"{len(br['indicators'])} in {len(br['dimensions'])} dimensions"),
            ("shares", f"survey {br['satisfaction_share']['value']:.0%}; {dims}"),
            ("branch types", ", ".join(br["types"])),
            ("star cut points", cuts),
            ("weak below", f"{br['weak_below']['value']:g}; vetoes: {', '.join(br.get('vetoes') or {}) or 'none'}"),
            ("member indicators", f"{len(mb['indicators'])} in {len(mb['groups'])} groups"),
            ("member score", f"{mb['monthly_share']['value']:.0%} monthly + {mb['appraisal_share']['value']:.0%} year-end"),
            ("member grades", grades + ", unqualified below"),
            ("parameters", f"{len(self._params)} ({n_quote} quoted, {len(self._params) - n_quote} assumptions)"),
        ]

    @property
    def _shown_where(self) -> str:
        # The file name, not its absolute path: displays (and notebook outputs) stay the same
        # on every checkout.
        return Path(self._where.split(" (")[0]).name + (" (updated)" if "(updated)" in self._where else "") \
            if self._where.startswith(("/", ".")) or "/" in self._where else self._where

    def __repr__(self) -> str:
        lines = [f"Policy {self.name!r} ({self._shown_where})"]
        lines += [f"  {k:<18} {v}" for k, v in self._summary_rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                       for k, v in self._summary_rows())
        return (f"<div><b>Policy {html.escape(self.name)}</b> "
                f"<small>{html.escape(self._shown_where)}</small><table>{rows}</table></div>")


def _rebuild(data: dict, where: str) -> "Policy":
    return Policy(data, where=where)


def _plain(value: Any) -> Any:
    """A new value as a plain Python number: numpy scalars (from linspace, arrays) are unwrapped."""
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _leaf(data: dict, path: str) -> dict:
    node = data
    for key in path.split("."):
        node = node[key]
    return node


def _set_leaf(data: dict, path: str, value: Any, note: str) -> None:
    leaf = _leaf(data, path)
    leaf.pop("quote", None)
    leaf["value"] = value
    leaf["assumption"] = note
