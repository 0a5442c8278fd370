"""The shipped schemes, for tests run on each of them (not a test module: imported by tests).

``SCHEMES``: the three shipped policies (``POLICIES``, files ``data/policies/NAME.yaml``) and the
baseline under the reform ``data/reforms/baseline_kmeans_by_type.yaml`` (``"kmeans_by_type"``).
A policy is immutable, so :func:`load` hands every test the same instance.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import branchsim as bs

POLICIES = ("baseline", "star_quota", "member_points")
REFORM = bs.data_path("reforms", "baseline_kmeans_by_type.yaml")
SCHEMES = (*POLICIES, "kmeans_by_type")
PACKAGE = Path(bs.__file__).parent


def path(name: str) -> Path:
    """The policy file of a shipped policy."""
    return bs.data_path("policies", f"{name}.yaml")


@functools.lru_cache(maxsize=None)
def load(name: str) -> bs.Policy:
    """A shipped scheme by its name in ``SCHEMES``."""
    if name == "kmeans_by_type":
        return load("baseline").update(REFORM)
    return bs.Policy.load(path(name))


def assert_no_scheme_names(modules, folder: str = "") -> None:
    """No string of these modules of the package (in its ``folder``; docstrings aside) holds an id of
    the shipped policies' levels, grades, indicators, designations, branch types or consequences."""
    names = set()
    for s in POLICIES:
        p = load(s)
        names |= set(p.levels) | set(p.grades) | set(p.branch_indicators) | set(p.member_indicators)
        names |= {d.id for d in p.scheme.branch.designations} | set(p.branch_types)
        names |= {c.id for c in p.scheme.consequences}
    names -= {"all", "type", "level", "basic", "organ"}
    for module in modules:
        tree = ast.parse((PACKAGE / folder / f"{module}.py").read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef,
                ast.ClassDef)) and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
                assert not words & names, (module, node.value)
