"""The package as installed: every subpackage and data file ships, the public surface imports."""
from __future__ import annotations

import tomllib
from pathlib import Path

import branchsim as bs

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "branchsim").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's package list: {sorted(found - listed)}"
    assert "branchsim.data" in listed


def test_data_files_match_the_package_data_patterns():
    import fnmatch
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "branchsim.data"]
    files = [p.relative_to(ROOT / "data").as_posix() for p in (ROOT / "data").rglob("*") if p.is_file()]
    missed = [f for f in files if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/")
                                          for pat in patterns)]
    assert not missed, f"data files a wheel would leave out: {missed}"


def test_public_names_resolve():
    for name in bs.__all__:
        assert getattr(bs, name) is not None, name
