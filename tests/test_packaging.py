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


SHIPPED = ("branchsim/data/policies/baseline.yaml", "branchsim/data/generator.yaml",
           "branchsim/data/policies/baseline.tests.yaml", "branchsim/data/policies/baseline.targets.yaml",
           "branchsim/data/policies/star_quota.yaml", "branchsim/data/policies/member_points.tests.yaml",
           "branchsim/data/formats/policy-v1.yaml", "branchsim/data/reforms/baseline_kmeans_by_type.yaml",
           "branchsim/policytests.py",
           "branchsim/data/policies/star_quota.generator.yaml", "branchsim/data/dynamics.yaml",
           "branchsim/data/examples/branches.csv", "branchsim/sensitivity/_kernels.py",
           "branchsim/dynamics/simulation.py", "branchsim/plot/labels.py")


def _stage_as_a_wheel_would(dest: Path) -> set[str]:
    """Lay the package out as a wheel installs it into ``dest``; return the files (relative paths).

    A wheel's purelib is exactly what setuptools' ``build_py`` writes from the project's own
    configuration (packages, package-dir, package-data): running that command with the
    environment's setuptools gives the installed layout in about a second, without a pip
    subprocess, an isolated build environment or an install. Where setuptools cannot be
    imported (a Python >= 3.12 venv has none), a real wheel is built with pip and unpacked.
    """
    import subprocess
    import sys
    import zipfile
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"   # what build_py stands for
    have_setuptools = subprocess.run([sys.executable, "-c", "import setuptools"], capture_output=True).returncode == 0
    if have_setuptools:
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", "import setuptools; setuptools.setup()", "-q",
                              "build_py", "--build-lib", str(dest)], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
    else:
        dist = dest.parent / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                       check=True, capture_output=True)
        with zipfile.ZipFile(next(dist.glob("branchsim-*.whl"))) as whl:
            whl.extractall(dest)            # a pure-Python wheel: unpacking is installing
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}


def test_an_installed_copy_finds_its_data(tmp_path):
    # A wheel has no repository data/ beside the package: the data ship as the package
    # branchsim.data (a namespace package, no __init__.py) and must be found there.
    import os
    import subprocess
    import sys
    site = tmp_path / "site"
    names = _stage_as_a_wheel_would(site)
    for f in SHIPPED:
        assert f in names, f
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "benchmarks/"))]
    assert "branchsim/py.typed" in names                        # PEP 561: the package's hints are used
    py = {p.relative_to(ROOT).as_posix() for p in (ROOT / "branchsim").rglob("*.py")}
    assert py <= names, f"modules left out: {sorted(py - names)}"
    code = ("import branchsim as bs, pathlib, sys; p = bs.Policy.load(); site = pathlib.Path(sys.argv[1]); "
            "assert pathlib.Path(bs.__file__).is_relative_to(site), bs.__file__; "
            "assert bs.data_path('policies').is_relative_to(site), bs.data_path('policies'); "
            "print(p.name, len(bs.load_population(bs.data_path('examples')).branches), "
            "bool(bs.check_policy(p)['ok'].all()))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["baseline", "12", "True"]     # the tests file ships beside the policy


def test_the_version_is_defined_once_and_agrees(capsys):
    # pyproject reads it from branchsim/__init__.py; the installed metadata, --version and the
    # changelog's newest entry say the same
    import importlib.metadata
    import re

    import branchsim
    from branchsim.cli import main
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", branchsim.__version__)
    assert importlib.metadata.version("branchsim") == branchsim.__version__
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.split() == ["branchsim", branchsim.__version__]
    heads = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), flags=re.M)
    assert heads and heads[0] == branchsim.__version__
