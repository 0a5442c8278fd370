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

from ._schema import SCHEMA, fact_range, semantic_problems, shown, value_problem, walk, _suggest
from .errors import DataError, PolicyError

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


#: Longest policy file read (bytes); the baseline is about 60 kB.
MAX_BYTES = 4 * 1024 * 1024
#: Most YAML nodes a policy may expand to (aliases included); the baseline has about 3,000.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists; the baseline nests 6 levels.
MAX_DEPTH = 32

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _decode(raw: bytes, where: str, what: str = "policy file") -> str:
    """The text of a policy file: UTF-8, or UTF-8/UTF-16 with a byte-order mark."""
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom):].decode(enc)
            except UnicodeDecodeError as exc:
                raise PolicyError(f"not valid {enc.upper()} text (bad bytes at byte {exc.start + len(bom)}); "
                                  f"a {what} must be UTF-8 text", where=where) from None
    head = raw[:8192]
    if b"\x00" in head:
        if len(head) >= 4 and (head[1::2].count(0) > 0.9 * len(head[1::2]) or
                               head[0::2].count(0) > 0.9 * len(head[0::2])):
            raise PolicyError("UTF-16 text without a byte-order mark; save the file as UTF-8",
                              where=where)
        raise PolicyError(f"not a text file (it contains NUL bytes); a {what} must be UTF-8 YAML text",
                          where=where)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise PolicyError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as "
                          f"UTF-8 (e.g. from an editor's 'Save with encoding' menu)", where=where) from None


def _line(node) -> int:
    return node.start_mark.line + 1


def _check_nodes(root, where: str) -> None:
    """Refuse recursion, excessive alias expansion, deep nesting and duplicate keys, before construction.

    Walks the composed YAML node graph without recursion; the expanded size
    of a shared node (an anchor used by aliases) is counted once per use.
    """
    from yaml.nodes import ScalarNode, SequenceNode
    size: dict[int, int] = {}
    on_path: set[int] = set()
    # Stack entries: (node, key path, depth, children done?)
    stack = [(root, "", 1, False)]
    while stack:
        node, path, depth, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            kids = node.value if isinstance(node, SequenceNode) else \
                [n for kv in node.value for n in kv]
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            if size[nid] > MAX_NODES:
                raise PolicyError(f"{path or '<top>'} (line {_line(node)}): expands to more than {MAX_NODES:,} "
                                  f"YAML nodes (aliases *name repeat their anchor); a policy is far smaller",
                                  where=where)
            continue
        if nid in on_path:
            raise PolicyError(f"{path or '<top>'} (line {_line(node)}): an alias refers to a node that "
                              f"contains it (a recursive structure); allowed: plain nested values",
                              where=where)
        if nid in size or isinstance(node, ScalarNode):
            size.setdefault(nid, 1)
            continue
        if depth > MAX_DEPTH:
            raise PolicyError(f"{path or '<top>'} (line {_line(node)}): nested more than {MAX_DEPTH} levels "
                              f"deep; a policy nests about 6", where=where)
        on_path.add(nid)
        stack.append((node, path, depth, True))
        if isinstance(node, SequenceNode):
            for i, child in enumerate(node.value):
                stack.append((child, f"{path}[{i}]" if len(path) < 60 else path, depth + 1, False))
            continue
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            if isinstance(knode, ScalarNode):
                if knode.tag == "tag:yaml.org,2002:merge":
                    key = "<<"
                else:
                    key = knode.value
                    if key in seen:
                        raise PolicyError(f"{shown_path(path, key)}: duplicate key (lines {seen[key]} and "
                                          f"{_line(knode)}); each key may appear once", where=where)
                    seen[key] = _line(knode)
            else:
                key = "?"
            stack.append((knode, path, depth + 1, False))
            stack.append((vnode, shown_path(path, key), depth + 1, False))


def shown_path(path: str, key: str) -> str:
    """``path.key`` with an overlong key shortened (paths appear in messages); a path of more
    than about 200 characters is not extended further."""
    if len(path) > 200:
        return path
    key = key if len(key) <= 60 else key[:57] + "..."
    return f"{path}.{key}" if path else key


def read_yaml(path: Path, what: str = "policy file") -> Any:
    """Safely read a YAML file: size, encoding, aliases, nesting and duplicate keys checked.

    Raises :class:`PolicyError` naming the file (and the line where YAML gives one).
    """
    where = str(path)
    try:
        if path.is_dir():
            raise PolicyError(f"is a folder, not a {what}", where=where)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"cannot read {what}: {exc.strerror or exc}", where=where) from None
    if len(raw) > MAX_BYTES:
        raise PolicyError(f"larger than {MAX_BYTES // 1024 ** 2} MiB; a {what} is a few tens of kB",
                          where=where)
    text = _decode(raw, where, what)
    # The C-accelerated *safe* loader when PyYAML has it: no object tags, ever.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"not valid YAML{at}: {shown_text(what)}", where=where) from None
    except RecursionError:
        raise PolicyError(f"nested more than {MAX_DEPTH} levels deep (too deep to read); a policy nests "
                          f"about 6", where=where) from None
    finally:
        loader.dispose()


def shown_text(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _share_groups(data: dict) -> list[list[str]]:
    """Parameters that must add up to 1, as lists of dotted paths."""
    branch = ["branch.satisfaction_share"] + [
        f"branch.dimensions.{d}.share" for d in data["branch"]["dimensions"]]
    member = ["member.monthly_share", "member.appraisal_share"]
    return [branch, member]


def _normalise_keys(node: Any, where: str = "<policy>") -> Any:
    """A fresh copy with str keys (YAML reads ``5:`` as an int; paths are texts) and plain numbers.

    Refuses a structure nested deeper than ``MAX_DEPTH`` (a dict that contains
    itself included) or larger than ``MAX_NODES`` nodes (shared sub-dicts count
    once per use).
    """
    count = [0]

    def copy_of(n: Any, depth: int, path: str) -> Any:
        count[0] += 1
        if count[0] > MAX_NODES:
            raise PolicyError(f"more than {MAX_NODES:,} entries (is a part shared many times over?); "
                              f"a policy is far smaller", where=where)
        if isinstance(n, (dict, list, tuple)) and depth > MAX_DEPTH:
            raise PolicyError(f"{path or '<top>'}: nested more than {MAX_DEPTH} levels deep (does it contain "
                              f"itself?); a policy nests about 6", where=where)
        if isinstance(n, Mapping):
            return {str(k): copy_of(v, depth + 1, shown_path(path, str(k))) for k, v in n.items()}
        if isinstance(n, (list, tuple)):
            return [copy_of(v, depth + 1, f"{path}[{i}]" if len(path) < 60 else path) for i, v in enumerate(n)]
        if isinstance(n, np.generic):
            return n.item()
        if n is None or isinstance(n, (str, int, float)):      # immutable: no copy needed
            return n
        return copy.deepcopy(n)

    return copy_of(node, 1, "")


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
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError):
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
        data = _normalise_keys(data, where)
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

        Only safe YAML is read: a policy file can never run code. The file
        must be UTF-8 text (a UTF-8 or UTF-16 byte-order mark is accepted);
        duplicate keys, recursive aliases, alias expansion beyond
        ``MAX_NODES`` nodes and nesting deeper than ``MAX_DEPTH`` levels are
        refused with a :class:`PolicyError` naming the file and line.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
        >>> _ = f.write_text("name: a\\nname: b\\n", encoding="utf-8")
        >>> try:
        ...     Policy.load(f)
        ... except PolicyError as err:
        ...     print(str(err).split(": ", 1)[1])
        name: duplicate key (lines 1 and 2); each key may appear once
        """
        path = data_path("policies", "baseline.yaml") if path is None else path
        if not isinstance(path, (str, os.PathLike)):
            raise PolicyError(f"Policy.load takes a file path, got {type(path).__name__}", where="Policy.load")
        path = Path(path)
        return cls(read_yaml(path), where=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to ``path`` (atomically); it loads back identically.

        The folder must exist and ``path`` must not be a folder; a failed
        write (a full disk) leaves no file behind and the old file, if any,
        unchanged.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise PolicyError(f"Policy.save takes a file path, got {type(path).__name__}", where="Policy.save")
        path = Path(path)
        if path.is_dir():
            raise PolicyError("is a folder; give a file name such as policy.yaml", where=str(path))
        if not path.parent.is_dir():
            what = "is a file, not a folder" if path.parent.exists() else "does not exist; create it first"
            raise PolicyError(f"{str(path.parent)!r} {what}", where=str(path))
        text = yaml.safe_dump(self._data, allow_unicode=True, sort_keys=False, width=100)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise PolicyError(f"cannot write the policy file: {exc.strerror or exc}", where=str(path)) from None
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass
        return path

    def to_dict(self) -> dict:
        """A deep copy of the policy document."""
        return copy.deepcopy(self._data)

    # -- reading -----------------------------------------------------------
    def __getitem__(self, path: str) -> Any:
        if not isinstance(path, str):
            raise PolicyError(f"a parameter path is a dotted text such as 'branch.weak_below', got "
                              f"{shown(path)}", where="policy[...]")
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
        return isinstance(path, str) and path in self._params

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
        if not isinstance(path, str) or path not in self._params:
            raise PolicyError(f"no parameter at this path{_suggest(path, self._params)}",
                              where=path if isinstance(path, str) else shown(path))
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
            bad = self.value_problem(path, value)
            if bad:
                problems.append(bad)
            elif _plain(value) == self._params[path][1]["value"]:
                problems.append(f"{path}: already {shown(_plain(value))}; a change that changes nothing is an error")
        if problems:
            raise PolicyError(problems, where="update")

        data = copy.deepcopy(self._data)
        note = reason or _REFORM_NOTE
        for path, value in changes.items():
            value = _plain(value)
            old = self._params[path][1]["value"]
            _set_leaf(data, path, value, f"{note} (was {shown(old)})")
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
                          f"re-normalised after {', '.join(changed)} changed (was {shown(old)})")
        if problems:
            raise PolicyError(problems, where="update")
        return Policy(data, where=f"{self._where} (updated)")

    def value_problem(self, path: str, value: Any) -> str | None:
        """Why ``value`` cannot be the value of parameter ``path``, or None when it can.

        The same check :meth:`update` makes on each value (type, range, finite
        and at most ``1e12`` in size), for callers that check many values at
        once, e.g. the grid of a sweep. Numpy scalars count as their Python value.

        >>> p = Policy.load()
        >>> p.value_problem("branch.satisfaction_share", 10 ** 400)
        'branch.satisfaction_share: got <a whole number of 401 digits>; allowed: a number in [0, 1] (numbers in a policy are at most 1e+12 in size)'
        >>> p.value_problem("branch.satisfaction_share", True)
        'branch.satisfaction_share: got True (bool); allowed: a number in [0, 1]'
        >>> p.value_problem("branch.satisfaction_share", 0.3) is None
        True
        """
        if not isinstance(path, str) or path not in self._params:
            return (f"{shown(path) if not isinstance(path, str) else shown_text(path, 100)}: "
                    f"no such parameter{_suggest(path, self._params)}")
        bad = value_problem(self._params[path][0], _plain(value))
        return f"{path}: {bad}" if bad else None

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


def as_policy(policy, where: str = "policy") -> "Policy":
    """``policy`` as a :class:`Policy`: None (the baseline), a Policy, or the path of a policy file.

    >>> as_policy(None).name == Policy.load().name
    True
    """
    if policy is None:
        return Policy.load()
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, (str, os.PathLike)):
        return Policy.load(policy)
    raise DataError(f"{where} must be a branchsim.Policy or the path of a policy file (.yaml) (None: the "
                    f"baseline), got {type(policy).__name__}")


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
