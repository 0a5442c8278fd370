"""Sphinx configuration of branchsim's documentation site.

Build (from the repository root)::

    .venv/bin/python -m sphinx -W -b html docs docs/_build/html

Three things are generated into the source folder at build time (all git-ignored, rewritten only when
their content changes, so incremental builds stay incremental):

* ``docs/notebooks/``: copies of ``../notebooks/*.ipynb``, rendered by myst-nb with their committed
  outputs (never executed);
* ``docs/api/``: one page per public package listing its ``__all__`` (autosummary writes the pages of
  the objects into ``docs/api/generated/``);
* ``docs/_generated/``: the data dictionary's tables, from :mod:`branchsim.tables` and the national
  codebook.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import branchsim  # noqa: E402

import _site  # noqa: E402  (docs/_site.py: the generated pages)

project = "branchsim"
author = "the branchsim authors"
copyright = "the branchsim authors"
version = release = branchsim.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
]

root_doc = "index"
exclude_patterns = ["_build", "_templates", "_generated", "figures", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
# Broken references to Python objects are warnings too (so, with -W, errors); outside packages'
# types named in docstrings and signatures are not documented here.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|pandas|pd|matplotlib|mpl|scipy|SALib|dask|concurrent|collections|typing|pathlib|"
               r"os|datetime|numba|pyarrow|yaml|ipywidgets|IPython)(\..*)?"),
]

# API reference: autosummary writes one page per object; numpydoc renders the docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"           # the numpydoc sections give the types; signatures stay readable
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # members are listed by the class template (_templates)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# Notebooks: their committed outputs, never executed.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 4
suppress_warnings: list[str] = []

html_theme = "alabaster"
html_title = f"branchsim {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Test a scoring-and-rating rule for party branches before it is rolled out.",
    "fixed_sidebar": False,
}


def _generate(app, config) -> None:
    _site.copy_notebooks(ROOT / "notebooks", HERE / "notebooks")
    _site.write_api_pages(HERE / "api")
    _site.write_data_dictionary(HERE / "_generated")


def setup(app):
    app.connect("config-inited", _generate)
    app.connect("missing-reference", _site.resolve_alias)
    return {"parallel_read_safe": True}
