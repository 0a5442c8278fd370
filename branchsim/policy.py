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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from ._checks import semantic_problems
from ._migrate import FORMAT_2, is_format_1, migrate
from ._schema import SCHEMA, fact_range, shown, value_problem, walk, _suggest
from .errors import DataError, PolicyError

if TYPE_CHECKING:
    from .scheme import Scheme

__all__ = ["Policy", "data_path", "fact_range", "load_reform", "as_policy", "policy_path"]

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
    """Parameters that must add up to 1, as lists of dotted paths (docs/policy-format.md)."""
    groups = []
    br = data.get("branch") or {}
    if (br.get("score") or {}).get("form", "shares") == "shares":
        branch = (["branch.satisfaction_share"] if "satisfaction_share" in br else []) + [
            f"branch.dimensions.{d}.share" for d, v in (br.get("dimensions") or {}).items()
            if isinstance(v, dict) and "share" in v]
        groups.append(branch)
    if isinstance(data.get("member"), dict):
        groups.append(["member.record_share", "member.appraisal_share"])
    return groups


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
    """Validate a whole (format-2) policy document; return its parameters by path."""
    if not isinstance(data, dict):
        raise PolicyError(f"a policy must be a mapping at the top level, got {type(data).__name__}",
                          where=where)
    if data.get("schema") != FORMAT_2:
        raise PolicyError(f"schema: {shown(data.get('schema'))} is not supported; allowed: {FORMAT_2} (or "
                          f"branchsim-policy/1, migrated on reading)", where=where)
    problems: list[str] = []
    params: dict = {}
    walk(data, SCHEMA, "", problems, params)
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
    """An immutable, validated set of evaluation rules (a scheme as data).

    Parameters are read by dotted path; :meth:`update` returns a new policy.
    Files of format 1 are migrated to format 2 on reading.

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
    >>> reform.name
    'baseline[branch.satisfaction_share=0.3]'
    """

    __slots__ = ("_data", "_params", "_where", "_path", "_format", "_scheme")
    _data: dict[str, Any]
    _params: dict[str, Any]
    _where: str
    _path: Path | None
    _format: int
    _scheme: Scheme | None

    def __init__(self, data: Mapping, *, where: str = "<policy>", path: str | os.PathLike | None = None):
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a mapping at the top level, got "
                              f"{type(data).__name__}", where=where)
        data = _normalise_keys(data, where)
        fmt = 2
        if is_format_1(data):
            data, fmt = _normalise_keys(migrate(data), where), 1
        params = _check(data, where)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_path", None if path is None else Path(path))
        object.__setattr__(self, "_format", fmt)
        object.__setattr__(self, "_scheme", None)

    def __setattr__(self, name, value):
        raise AttributeError("Policy is immutable; use policy.update({...}) to make a reform")

    def __reduce__(self):
        # Rebuilt (and re-validated) from its document: picklable for process pools and Dask.
        return (_rebuild, (self._data, self._where, None if self._path is None else str(self._path)))

    # -- loading and saving ------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Policy":
        """Read a policy file; with no argument, the baseline policy.

        Only safe YAML is read: a policy file can never run code. The file
        must be UTF-8 text (a UTF-8 or UTF-16 byte-order mark is accepted);
        duplicate keys, recursive aliases, alias expansion beyond
        ``MAX_NODES`` nodes and nesting deeper than ``MAX_DEPTH`` levels are
        refused with a :class:`PolicyError` naming the file and line. A file
        of format 1 is migrated to format 2. A bare name that is not a file
        (``"star_quota"``) loads the shipped policy of that name.

        Examples
        --------
        >>> Policy.load("star_quota").name == Policy.load(data_path("policies", "star_quota.yaml")).name
        True
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
        >>> _ = f.write_text("name: a\\nname: b\\n", encoding="utf-8")
        >>> try:
        ...     Policy.load(f)
        ... except PolicyError as err:
        ...     print(str(err).split(": ", 1)[1])
        name: duplicate key (lines 1 and 2); each key may appear once
        """
        path = policy_path("baseline") if path is None else path
        if not isinstance(path, (str, os.PathLike)):
            raise PolicyError(f"Policy.load takes a file path, got {type(path).__name__}", where="Policy.load")
        path = _shipped_or_file(path)
        return cls(read_yaml(path), where=str(path), path=path)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to ``path`` (atomically, in format 2); it loads back identically.

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
        """A deep copy of the policy document (format 2)."""
        return copy.deepcopy(self._data)

    def companion(self, kind: str) -> Path | None:
        """The file ``NAME.<kind>.yaml`` beside the policy file (``tests``, ``targets``, ``generator``).

        ``None`` when the policy was not read from a file or has no such file;
        a reform has its base policy's companions.

        >>> Policy.load().companion("targets").name
        'baseline.targets.yaml'
        """
        if self._path is None:
            return None
        stem = self._path.name[:-len(self._path.suffix)] if self._path.suffix else self._path.name
        found = self._path.with_name(f"{stem}.{kind}.yaml")
        return found if found.is_file() else None

    # -- reading -----------------------------------------------------------
    def __getitem__(self, path: str) -> Any:
        if not isinstance(path, str):
            raise PolicyError(f"a parameter path is a dotted text such as 'branch.satisfaction_share', got "
                              f"{shown(path)}", where="policy[...]")
        if path in self._params:
            value = self._params[path][1]["value"]
            return value if isinstance(value, (int, float, str, bool)) else copy.deepcopy(value)
        node = _find(self._data, path)
        if node is _MISSING:
            hint = _suggest(path, list(self._params) + _structural_paths(self._data))
            raise PolicyError(f"no parameter or section at this path{hint}", where=path) from None
        return copy.deepcopy(node)

    def get(self, path: str, default: Any = None) -> Any:
        """``policy[path]``, or ``default`` when the policy has nothing at ``path``.

        >>> Policy.load().get("branch.no_such_entry", 0)
        0
        """
        if path in self._params:
            return self[path]
        node = _find(self._data, path) if isinstance(path, str) else _MISSING
        return default if node is _MISSING else copy.deepcopy(node)

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
    def scheme(self) -> Scheme:
        """The compiled :class:`~branchsim.scheme.Scheme` (built on first use, then kept)."""
        if self._scheme is None:
            from .scheme import compile_scheme
            object.__setattr__(self, "_scheme", compile_scheme(self))
        return self._scheme

    @property
    def source_format(self) -> int:
        """The format of the document it was made from (1: migrated on reading)."""
        return self._format

    @property
    def dimensions(self) -> list[str]:
        """Branch dimension ids, in file order."""
        return list(self._data["branch"]["dimensions"])

    @property
    def branch_types(self) -> list[str]:
        return list(self._data["branch"]["types"])

    @property
    def levels(self) -> list[str]:
        """The branch rating's level ids, best first (the last is the floor)."""
        return list(self._data["branch"]["levels"])

    @property
    def grades(self) -> list[str]:
        """The member grades' ids, best first (empty without a member section)."""
        return list((self._data.get("member") or {}).get("grades") or {})

    @property
    def has_members(self) -> bool:
        return isinstance(self._data.get("member"), dict)

    @property
    def has_survey(self) -> bool:
        return self._data["branch"].get("survey") is not None

    @property
    def branch_indicators(self) -> dict:
        return copy.deepcopy(self._data["branch"]["indicators"])

    @property
    def member_indicators(self) -> dict:
        return copy.deepcopy((self._data.get("member") or {}).get("indicators") or {})

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
    def update(self, changes: Mapping[str, Any] | str | os.PathLike, *, reason: str | None = None,
               name: str | None = None) -> "Policy":
        """Return a new policy with some entries changed (a reform).

        ``changes`` maps dotted paths to new values, or is the path of a
        reform file (``docs/policy-format.md``, "Reforms"). A path may name
        a parameter (its new value), a structural choice (e.g.
        ``branch.rating.design``), a new entry under an existing section (its
        full content, parameters with provenance) or an optional entry to
        remove (``None``). Every path is checked and the whole result
        validated before anything changes; an unknown path, a wrong value or a
        change that changes nothing raises :class:`PolicyError` naming the
        path. When some members of a share group change
        (``branch.satisfaction_share`` with the ``branch.dimensions.*.share``;
        ``member.record_share`` with ``member.appraisal_share``), the
        unchanged members are scaled by one common factor so the group adds up
        to 1 again.

        Parameters
        ----------
        changes : mapping of dotted path to new value, or a reform file's path
        reason : str, optional
            Recorded as the provenance of the changed parameters.
        name : str, optional
            Name of the reform: the new policy is ``NAME+REFORM``. By default
            a reform file's ``name``, else the changes themselves
            (``baseline[branch.satisfaction_share=0.3]``).
        """
        if isinstance(changes, (str, os.PathLike)):
            reform = load_reform(changes)
            changes, name = reform["changes"], name or reform["name"]
            reason = reason or (f"reform {reform['name']}" if reform["name"] else None)
        if not isinstance(changes, Mapping) or not changes:
            raise PolicyError("update() takes a non-empty mapping {path: new value} or the path of a reform "
                              "file", where="update")
        problems = []
        data = copy.deepcopy(self._data)
        note = reason or _REFORM_NOTE
        changed_params = []
        for path, value in changes.items():
            bad = self._change(data, path, value, note)
            if bad:
                problems.append(bad)
            elif path in self._params:
                changed_params.append(path)
        if problems:
            raise PolicyError(problems, where="update")
        for group in _share_groups(data):
            changed = [p for p in group if p in changed_params]
            if not changed or len(changed) == len(group):
                continue
            rest = [p for p in group if p not in changed]
            target = 1.0 - sum(_leaf(data, p)["value"] for p in changed)
            current = sum(_leaf(data, p)["value"] for p in rest)
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
                old = _leaf(data, p)["value"]
                _set_leaf(data, p, old * factor if factor else 0.0,
                          f"re-normalised after {', '.join(changed)} changed (was {shown(old)})")
        if problems:
            raise PolicyError(problems, where="update")
        data["name"] = _reform_name(self.name, changes, name)
        return Policy(data, where=f"{self._where} (updated)", path=self._path)

    def _change(self, data: dict, path: str, value: Any, note: str) -> str | None:
        """Apply one change to ``data`` (a copy); the reason it cannot be applied, or None."""
        if not isinstance(path, str) or not path:
            return f"{shown(path)}: a path is a dotted text such as 'branch.satisfaction_share'"
        if path in self._params:
            bad = self.value_problem(path, value)
            if bad:
                return bad
            if _plain(value) == self._params[path][1]["value"]:
                return f"{path}: already {shown(_plain(value))}; a change that changes nothing is an error"
            old = self._params[path][1]["value"]
            given = value if isinstance(value, dict) else {}
            leaf = _leaf(data, path)
            leaf.pop("quote", None)
            leaf.pop("assumption", None)
            leaf["value"] = _plain(value)
            prov = {k: given[k] for k in ("quote", "assumption") if k in given}
            leaf.update(prov or {"assumption": f"{note} (was {shown(old)})"})
            return None
        *head, last = path.split(".")
        parent = _find(data, ".".join(head)) if head else data
        if not isinstance(parent, dict):
            return (f"{path}: no such parameter or section{_suggest(path, list(self._params) + _structural_paths(self._data))}")
        value = _normalise_keys(value, path) if isinstance(value, Mapping) else _plain(value)
        if value is None:
            if last not in parent:
                return f"{path}: nothing to remove{_suggest(path, _structural_paths(self._data))}"
            del parent[last]
            return None
        if last in parent and parent[last] == value:
            return f"{path}: already {shown(value)}; a change that changes nothing is an error"
        if last in parent and isinstance(parent[last], dict) and not isinstance(value, dict):
            return (f"{path}: is a section; give its full new content (a mapping), or change the parameters "
                    f"inside it{_suggest(path + '.', self._params)}")
        parent[last] = value
        return None

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
        """Entries that differ: one row each with path, old, new, provenance.

        ``old`` is this policy's value, ``new`` the other's; provenance is the
        other policy's (the reform's) provenance of a parameter, or
        ``structure`` for a structural choice (a design, a removed veto, ...).
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
        for path, a, b in _structural_diff(self._data, other._data):
            rows.append({"path": path, "old": a, "new": b, "provenance": "structure"})
        return pd.DataFrame(rows, columns=["path", "old", "new", "provenance"])

    # -- display -------------------------------------------------------------
    def _summary_rows(self) -> list[tuple[str, str]]:
        br = self._data["branch"]
        form = (br.get("score") or {}).get("form", "shares")
        dims = ", ".join(f"{d['label'].split(' ')[0]}" + (f" {d['share']['value']:.0%}" if "share" in d else "")
                         for d in br["dimensions"].values())
        survey = f"survey {br['satisfaction_share']['value']:.0%}; " if "satisfaction_share" in br else "no survey; "
        rating = br["rating"]
        design = rating["design"] + (f" within {rating['peer_groups']}" if rating.get("peer_groups") and rating["design"] != "cuts" else "")
        levels = br["levels"]
        if rating.get("cuts") and rating["design"] in ("cuts", "cuts_and_quota"):
            cuts = ", ".join(f"{lv} ≥ {rating['cuts'][lv]['value']:g}" for lv in levels if lv in rating["cuts"])
            own = [t for t, d in br["types"].items() if ((d or {}).get("rating") or {}).get("cuts")]
            design += f" ({cuts}" + (f"; own cuts for {', '.join(own)})" if own else ")")
        if rating.get("quotas") and rating["design"] in ("quota", "cuts_and_quota"):
            design += " (" + ", ".join(f"{lv} {rating['quotas'][lv]['value']:.0%}" for lv in levels
                                       if lv in rating["quotas"]) + ")"
        n_quote = sum("quote" in leaf for _, leaf in self._params.values())
        rows = [
            ("branch levels", " > ".join(levels)),
            ("branch indicators", f"{len(br['indicators'])} in {len(br['dimensions'])} dimensions ({form})"),
            ("shares", survey + dims),
            ("branch types", ", ".join(br["types"])),
            ("rating", design),
        ]
        des = br.get("designations") or {}
        rows.append(("designations", "; ".join(f"{d}: {len(v['criteria'])} criteria" for d, v in des.items())
                     or "none"))
        rows.append(("vetoes", ", ".join(br.get("vetoes") or {}) or "none"))
        mb = self._data.get("member")
        if isinstance(mb, dict):
            rows += [
                ("member grades", " > ".join(mb["grades"])),
                ("member indicators", f"{len(mb['indicators'])} in {len(mb['groups'])} groups"),
                ("member score", f"{mb['record_share']['value']:.0%} record ({mb['record']['periods']} periods, "
                                 f"{mb['record']['accrual']}) + {mb['appraisal_share']['value']:.0%} appraisal"),
            ]
        rows.append(("consequences", ", ".join(self._data.get("consequences") or {}) or "none"))
        rows.append(("parameters", f"{len(self._params)} ({n_quote} quoted, {len(self._params) - n_quote} "
                                   f"assumptions)"))
        return rows

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


def shipped_policies() -> list[str]:
    """Names of the policies shipped in ``data/policies/`` (what ``Policy.load(NAME)`` accepts).

    >>> "baseline" in shipped_policies()
    True
    """
    return sorted(p.name[:-5] for p in data_path("policies").glob("*.yaml") if p.name.count(".") == 1)


def _shipped_or_file(path) -> Path:
    """``path``, or the shipped policy of that name when ``path`` is a bare name that is not a file.

    A file of that name in the working folder wins; a bare name that is neither is refused naming the
    shipped policies.
    """
    p = Path(path)
    bare = isinstance(path, str) and p.suffix == "" and len(p.parts) == 1
    if not bare or p.exists():
        return p
    if p.name in shipped_policies():
        return policy_path(p.name)
    raise PolicyError(f"no policy file or shipped policy of this name; shipped: {', '.join(shipped_policies())}"
                      f" (or give the path of a policy file)", where=str(path))


def policy_path(name: str) -> Path:
    """The shipped policy file ``data/policies/NAME.yaml``.

    >>> policy_path("baseline").name
    'baseline.yaml'
    """
    return data_path("policies", f"{name}.yaml")


def as_policy(policy: Policy | str | os.PathLike[str] | None, where: str = "policy") -> Policy:
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


REFORM_SCHEMA = "branchsim-reform/1"


def load_reform(path: str | os.PathLike) -> dict:
    """Read a reform file: ``{"name": ..., "description": ..., "changes": {path: value}}``.

    A reform file holds only what changes (``docs/policy-format.md``,
    "Reforms"). A whole policy file is accepted too: its changes are every
    parameter and structural entry (compare it with :meth:`Policy.diff`).

    >>> r = load_reform(data_path("reforms", "baseline_kmeans_by_type.yaml"))
    >>> sorted(r["changes"])
    ['branch.rating.design', 'branch.rating.peer_groups']
    """
    where = str(path)
    doc = read_yaml(Path(path), what="reform file")
    if not isinstance(doc, dict):
        raise PolicyError(f"a reform file is a mapping with 'changes', got {type(doc).__name__}", where=where)
    if doc.get("schema") != REFORM_SCHEMA:
        raise PolicyError(f"schema: {shown(doc.get('schema'))}; a reform file starts with 'schema: "
                          f"{REFORM_SCHEMA}' (a whole policy is read with Policy.load)", where=where)
    unknown = set(doc) - {"schema", "name", "description", "changes"}
    problems = [f"{k}: unknown key; allowed: schema, name, description, changes" for k in sorted(map(str, unknown))]
    changes = doc.get("changes")
    if not isinstance(changes, dict) or not changes:
        problems.append("changes: a non-empty mapping {dotted path: new value}")
    name = doc.get("name")
    if name is not None and not (isinstance(name, str) and name.replace("-", "_").isidentifier()):
        problems.append(f"name: {shown(name)}; allowed: an id (letters, digits, _ or -)")
    if problems:
        raise PolicyError(problems, where=where)
    return {"name": name, "description": doc.get("description"), "changes": changes}


def _reform_name(base: str, changes: Mapping, name: str | None) -> str:
    """``base+name``, or ``base[path=value, ...]`` (shortened) for unnamed changes."""
    if name:
        return f"{base}+{name}"
    parts = []
    for path, value in changes.items():
        v = _plain(value)
        shown_v = "removed" if v is None else ("…" if isinstance(v, (dict, list)) else f"{v:g}"
                                               if isinstance(v, float) else str(v))
        parts.append(f"{path}={shown_v}")
    text = ", ".join(parts)
    return f"{base}[{text if len(text) <= 120 else text[:117] + '...'}]"


_MISSING = object()


def _find(data: Any, path: str) -> Any:
    node = data
    for key in path.split(".") if path else []:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _structural_paths(data: dict, prefix: str = "", depth: int = 0) -> list[str]:
    """Paths of the structural entries (texts, lists, sections) of a document, for hints."""
    out = []
    if not isinstance(data, dict) or depth > 6:
        return out
    for k, v in data.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and "value" not in v:
            out.append(path)
            out += _structural_paths(v, path + ".", depth + 1)
        elif not isinstance(v, dict):
            out.append(path)
    return out


def _structural_diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Differences outside parameter values: texts, lists, added and removed entries."""
    if isinstance(a, dict) and isinstance(b, dict):
        if "value" in a and "value" in b:
            return []                            # a parameter: reported by value
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append((sub, "present", None))
            elif k not in a:
                out.append((sub, None, "added"))
            elif k not in ("label", "en", "description", "source", "name", "quote", "assumption"):
                out += _structural_diff(a[k], b[k], sub)
        return out
    return [] if a == b else [(path, a, b)]


def _rebuild(data: dict, where: str, path: str | None = None) -> "Policy":
    return Policy(data, where=where, path=path)


def _plain(value: Any) -> Any:
    """A new value as a plain Python number: numpy scalars (from linspace, arrays) are unwrapped."""
    if isinstance(value, dict) and "value" in value:
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
