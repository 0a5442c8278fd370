"""The documentation site builds with warnings as errors, and holds what it must (docs/conf.py).

One build of the whole site (``sphinx -W --keep-going -b html docs OUT``, about 15 s) is shared by
the tests of this module; one more builds a copy of the sources holding a broken cross-reference and
must fail on it, and on it alone.
"""
from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import branchsim as bs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NOTEBOOKS = REPO / "notebooks"
PACKAGES = ("sensitivity", "dynamics", "audit", "plot", "calibration", "scoring")


def build(source: Path, out: Path) -> subprocess.CompletedProcess:
    """``python -m sphinx -W --keep-going -b html SOURCE OUT`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(source), str(out)], capture_output=True, text=True, cwd=REPO, timeout=900)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    run = build(DOCS, out)
    assert run.returncode == 0, f"the docs build failed:\n{run.stderr[-6000:]}"
    assert "WARNING" not in run.stderr and "ERROR" not in run.stderr, run.stderr[-6000:]
    return out


class _Tags(HTMLParser):
    """The ``id`` attributes and ``<img src>`` of a page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])


def tags(page: Path) -> _Tags:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def api_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for page in (site / "api").rglob("*.html"):
        ids |= tags(page).ids
    return ids


@pytest.mark.parametrize("name, page", [
    ("evaluate", "branchsim.evaluate"), ("Policy", "branchsim.Policy"), ("sweep", "branchsim.sensitivity.sweep"),
    ("sobol", "branchsim.sensitivity.sobol"), ("write_report", "branchsim.write_report"),
    ("Result", "branchsim.Result"), ("simulate", "branchsim.dynamics.simulate"),
])
def test_key_names_have_their_page(site, name, page):
    html = site / "api" / "generated" / f"{page}.html"
    assert html.exists(), f"no API page for {name}: {html.name}"
    assert page in tags(html).ids, f"{html.name} does not describe {page}"
    # the page renders the docstring: the words of its first line, markup aside
    words = re.findall(r"[A-Za-z]+", inspect.getdoc(getattr(bs, name)).split("\n")[0])
    text = " ".join(re.findall(r"[A-Za-z]+", re.sub(r"<[^>]+>", " ", html.read_text(encoding="utf-8"))))
    assert " ".join(words) in text, f"{html.name}: the docstring's first line is not on the page"


def test_every_public_name_is_documented(site):
    ids = api_ids(site)
    missing = []
    for name in bs.__all__:
        if inspect.ismodule(getattr(bs, name)):
            assert f"module-branchsim.{name}" in ids, f"no page for the module branchsim.{name}"
            continue
        # documented as branchsim.NAME, or once in the public subpackage it comes from
        if f"branchsim.{name}" not in ids and not any(f"branchsim.{p}.{name}" in ids for p in PACKAGES):
            missing.append(name)
    for package in PACKAGES:
        mod = getattr(bs, package)
        missing += [f"{package}.{n}" for n in mod.__all__
                    if not inspect.ismodule(getattr(mod, n)) and f"branchsim.{package}.{n}" not in ids]
    assert not missing, f"public names without an API entry: {missing}"


def test_pages_exist(site):
    for page in ("index", "concepts", "policy-format", "data-dictionary", "calibration", "sensitivity",
                 "notebooks", "changelog", "api/index"):
        assert (site / f"{page}.html").exists(), page
    changelog = (site / "changelog.html").read_text(encoding="utf-8")
    assert f"{bs.__version__}" in changelog


def test_data_dictionary_lists_the_code_columns(site):
    from branchsim.tables import branch_columns, member_month_columns

    text = (site / "data-dictionary.html").read_text(encoding="utf-8")
    for name in ("baseline", "star_quota", "member_points"):
        p = bs.Policy.load(name)
        for c in branch_columns(p) + (member_month_columns(p) if p.has_members else []):
            assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{c.name}</span></code>" in text, \
                (name, c.name)


@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_pages_show_their_committed_figures(site, notebook):
    nb = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))
    figures = sum("image/png" in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code"
                  for o in c.get("outputs", []))
    assert figures > 0, f"{notebook}: no committed figure (were its outputs cleared?)"
    page = site / "notebooks" / notebook.replace(".ipynb", ".html")
    assert page.exists(), page
    images = [src for src in tags(page).images if "_images/" in src]
    assert len(images) >= figures, f"{notebook}: {len(images)} images on the page, {figures} committed"
    for src in images:
        assert (page.parent / src).resolve().is_file(), f"{notebook}: {src} is not in the build"


def test_version_is_the_package_version(site):
    options = (site / "_static" / "documentation_options.js").read_text(encoding="utf-8")
    assert re.search(r"VERSION:\s*'([^']+)'", options).group(1) == bs.__version__
    for page in ("index.html", "api/index.html", "notebooks/01_baseline_city.html"):
        title = re.search(r"<title>(.*?)</title>", (site / page).read_text(encoding="utf-8"), re.S).group(1)
        assert f"branchsim {bs.__version__}" in title, (page, title)


def test_a_broken_reference_fails_the_build(tmp_path):
    """A copy of the sources (same notebooks, changelog) with one reference to a name that does not
    exist: the build fails, and its only warning is that reference."""
    root = tmp_path / "repo"
    shutil.copytree(DOCS, root / "docs", ignore=shutil.ignore_patterns("_build", "_generated", "api",
                                                                         "notebooks", "__pycache__"))
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    shutil.copy(REPO / "CHANGELOG.md", root / "CHANGELOG.md")
    concepts = root / "docs" / "concepts.md"
    concepts.write_text(concepts.read_text(encoding="utf-8")
                        + "\nSee {func}`branchsim.no_such_function` too.\n", encoding="utf-8")
    run = build(root / "docs", tmp_path / "html")
    assert run.returncode != 0
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert len(warnings) == 1 and "branchsim.no_such_function" in warnings[0], run.stderr[-4000:]
