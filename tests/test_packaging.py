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


def test_a_wheel_install_finds_its_data(tmp_path):
    # A wheel has no repository data/ beside the package: the data ship as the package
    # branchsim.data (a namespace package, no __init__.py) and must be found there.
    import subprocess
    import sys
    import zipfile
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("branchsim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("branchsim/data/policies/baseline.yaml", "branchsim/data/generator.yaml",
              "branchsim/data/published.yaml", "branchsim/data/dynamics.yaml",
              "branchsim/data/examples/branches.csv", "branchsim/sensitivity/_kernels.py",
              "branchsim/dynamics/simulation.py", "branchsim/plot/labels.py"):
        assert f in names, f
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    code = ("import branchsim as bs, pathlib; p = bs.Policy.load(); "
            "assert 'site' in str(bs.data_path('policies')), bs.data_path('policies'); "
            "print(p.name, len(bs.load_population(bs.data_path('examples')).branches))")
    import os
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["baseline", "12"]
