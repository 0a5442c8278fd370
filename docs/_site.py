"""Pages of the documentation generated at build time (called from ``docs/conf.py``).

Everything written here is git-ignored and rewritten only when its content changes (an unchanged
file keeps its time stamp, so Sphinx's incremental build does not re-read it).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import tempfile
from pathlib import Path

import branchsim

#: The public packages of the API reference, in the order of its pages.
PACKAGES = ["branchsim", "branchsim.sensitivity", "branchsim.dynamics", "branchsim.audit", "branchsim.plot",
            "branchsim.calibration", "branchsim.scoring"]
#: What each page of the API reference is about (its title).
TITLES = {
    "branchsim": "branchsim: the top-level names",
    "branchsim.sensitivity": "branchsim.sensitivity: sweeps, comparisons, thresholds, Monte Carlo, GSA",
    "branchsim.dynamics": "branchsim.dynamics: years in sequence",
    "branchsim.audit": "branchsim.audit: counterfactuals and rating designs",
    "branchsim.plot": "branchsim.plot: figures",
    "branchsim.calibration": "branchsim.calibration: fitting the generator",
    "branchsim.scoring": "branchsim.scoring: facts to points to scores",
}


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (atomically) unless it already holds exactly that."""
    data = text.encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        _replace(path, data)


def copy_notebooks(src: Path, dst: Path) -> None:
    """Copy ``src/*.ipynb`` into ``dst`` (changed ones only) and drop copies whose source is gone."""
    dst.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in src.glob("*.ipynb")}
    for name in sorted(names):
        a, b = src / name, dst / name
        data = a.read_bytes()
        if not b.exists() or b.read_bytes() != data:
            _replace(b, data)
    for stale in dst.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()


# --- the API reference -------------------------------------------------------------------------------

def _public(package: str) -> list[tuple[str, object]]:
    """``(name, object)`` of a package's ``__all__``, submodules left out."""
    mod = importlib.import_module(package)
    return [(n, getattr(mod, n)) for n in mod.__all__ if not inspect.ismodule(getattr(mod, n))]


def canonical_names() -> dict[int, str]:
    """``id(object) -> the name it is documented under``.

    An object of a public subpackage is documented there (``branchsim.sensitivity.sweep``), once; the
    top-level page links to it. Everything else in ``branchsim.__all__`` is documented as
    ``branchsim.NAME``.
    """
    out: dict[int, str] = {}
    for package in PACKAGES[1:]:
        for name, obj in _public(package):
            out.setdefault(id(obj), f"{package}.{name}")
    for name, obj in _public("branchsim"):
        out.setdefault(id(obj), f"branchsim.{name}")
    return out


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "Exceptions" if issubclass(obj, BaseException) else "Classes"
    if callable(obj):
        return "Functions"
    return "Data"


def _autosummary(names: list[str], toctree: bool) -> list[str]:
    lines = [".. autosummary::"]
    if toctree:
        lines.append("   :toctree: generated")
    lines.append("")
    lines += [f"   {n}" for n in names]
    return lines + [""]


def api_page(package: str, canon: dict[int, str]) -> str:
    """The reST of one package's page: its docstring, then its public names by kind."""
    title = TITLES[package]
    lines = [title, "=" * len(title), "", f".. automodule:: {package}", "   :no-members:", "",
             f".. currentmodule:: {package}", ""]
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for name, obj in _public(package):
        here, elsewhere = groups.setdefault(_kind(obj), ([], []))
        full = canon[id(obj)]
        if full.rpartition(".")[0] == package:      # here (or an alias of a name documented here)
            here.append(name)
        else:
            elsewhere.append(f"~{full.removeprefix('branchsim.')}")
    for kind in ("Functions", "Classes", "Exceptions", "Data"):
        if kind not in groups:
            continue
        here, elsewhere = groups[kind]
        lines += [kind, "-" * len(kind), ""]
        if here:
            lines += _autosummary(here, toctree=True)
        if elsewhere:
            lines += ["Documented in their subpackage:", ""] + _autosummary(elsewhere, toctree=False)
    return "\n".join(lines)


def write_api_pages(folder: Path) -> None:
    """``folder/index.rst`` and one page per public package (generated from the packages' ``__all__``)."""
    canon = canonical_names()
    toc = [f"   {p}" for p in PACKAGES]
    index = ["API reference", "=============", "",
             f"The public API of branchsim {branchsim.__version__}: every name of ``branchsim.__all__`` and",
             "of the public subpackages, from their numpydoc docstrings. A name the top level re-exports from",
             "a subpackage (``branchsim.sweep`` is ``branchsim.sensitivity.sweep``) is documented once, in",
             "its subpackage.", "", ".. toctree::", "   :maxdepth: 1", "", *toc, ""]
    write_if_changed(folder / "index.rst", "\n".join(index))
    for package in PACKAGES:
        write_if_changed(folder / f"{package}.rst", api_page(package, canon))


def _submodule(obj, name: str) -> bool:
    """Whether ``name`` is a submodule of the package ``obj``."""
    if not (inspect.ismodule(obj) and hasattr(obj, "__path__")):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _get(dotted: str):
    """The object a dotted ``branchsim...`` name names (imported as needed); ``KeyError`` if none.

    Attributes first, then modules: ``branchsim.evaluate`` is the function, and
    ``branchsim.evaluate.CHUNK_BRANCHES`` is found in the module the function hides.
    """
    parts = dotted.split(".")
    if parts[0] != "branchsim":
        raise KeyError(dotted)
    for modules_first in (False, True):
        obj = importlib.import_module("branchsim")
        for i, part in enumerate(parts[1:], start=1):
            name = ".".join(parts[:i + 1])
            if modules_first and _submodule(obj, name):
                obj = importlib.import_module(name)
            elif hasattr(obj, part):
                obj = getattr(obj, part)
            elif _submodule(obj, name):
                obj = importlib.import_module(name)
            else:
                break
        else:
            return obj
    raise KeyError(dotted)


def _documented(dotted: str, objects) -> str | None:
    """The documented name of what ``dotted`` names: its deepest prefix with a canonical name, plus
    the rest of the path (``branchsim.sensitivity.gsa.sobol`` -> ``branchsim.sensitivity.sobol``)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = _get(".".join(parts[:i]))
        except KeyError:
            continue
        if id(obj) in _CANON:
            name = ".".join([_CANON[id(obj)], *parts[i:]])
            if name in objects:
                return name
    return None


_CANON: dict[int, str] = {}


def resolve_alias(app, env, node, contnode):
    """``missing-reference``: resolve what Sphinx's own lookup missed, or leave it broken.

    A docstring is read in the context of the page that documents it (``branchsim.sweep``'s in
    ``branchsim.sensitivity``), not of the module that defines it, and an object is documented under
    one name. So a Python name is looked up, in turn, in the class and module of the reference, the
    module defining the page's object, ``branchsim``, and as written. One naming a documented object
    under another name (``branchsim.sweep`` for ``branchsim.sensitivity.sweep``) links to it; one
    naming an existing object that the reference does not document (a private helper or module)
    renders as code without a link. A name that names nothing stays a broken reference: a warning,
    so an error under ``-W``.
    """
    if node.get("refdomain") != "py":
        return None
    if not _CANON:
        _CANON.update(canonical_names())
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    prefixes = [f"{module}.{cls}" if module and cls else "", module]
    page = node.get("refdoc", "").rsplit("/", 1)[-1]
    try:
        obj = _get(page)
    except KeyError:
        obj = None
    if obj is not None:
        if inspect.isclass(obj):
            prefixes.append(f"{obj.__module__}.{obj.__qualname__}")
        if getattr(obj, "__module__", None):
            prefixes.append(obj.__module__)
    prefixes.append("branchsim")
    candidates = [f"{p}.{target}" for p in prefixes if p] + [target]
    py = env.get_domain("py")
    for full in candidates:
        name = _documented(full, py.objects)
        if name is not None:
            new = node.deepcopy()
            new["reftarget"] = name
            new["refspecific"] = False
            return py.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], name, new, contnode)
    for full in candidates:
        try:
            _get(full)
        except KeyError:
            continue
        return contnode
    return None


# --- the data dictionary ---------------------------------------------------------------------------

def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out + [""]


def _input_rows(columns) -> list[list[str]]:
    rows = []
    for c in columns:
        default = "empty" if c.default == "" else c.default
        need = "yes" if c.required else ("no" if c.default is None else f"no (default {default})")
        rows.append([f"`{c.name}`", c.meaning, c.allowed(), need])
    return rows


def _output_meaning(col: str, scheme, policy) -> str:
    """What a column of ``Result.branches`` or ``Result.members`` holds (from the scheme's ids)."""
    bs = scheme.branch
    designations = {d.id for d in bs.designations}
    consequences = {c.id for c in scheme.consequences}
    fixed = {
        "branch_id": "the branch's id", "member_id": "the member's id",
        "type": "branch type", "level": "current organisation level",
        "n_members": "number of full members", "category": "member class",
        "score": "the branch's score", "rating": "the level the branch is rated (level id)",
        "vetoes": "the ids of the vetoes that fired, comma-separated (empty: none)",
        "direct": "the ids of the direct gradings that fired, comma-separated (empty: none)",
        "required_level": "the organisation level the branch's membership requires",
        "upgrade_to": "the level the branch must be upgraded to (empty: none)",
        "committee_needed": "whether its membership requires a committee",
        "below_minimum": "whether its membership is below the structure's minimum",
        "true_quality": "latent true quality (generated populations only)",
        "true_score": "the score the branch's true quality deserves",
        "true_rating": "the level the branch's true quality deserves",
        "periods": "number of period records of the member", "record": "the member's period record score",
        "appraisal": "year-end appraisal score", "annual": "the member's annual score",
        "grade": "the member's grade (grade id; empty for an exempt member)",
    }
    if col in fixed:
        return fixed[col]
    if col in ("branch_index", "member_index"):
        return f"the {col[:-6]}'s position in the national population, from 0"
    if col.startswith("veto_") and col[5:] in bs.vetoes.ids:
        return f"the veto `{col[5:]}` fired (true/false)"
    if col.startswith("sub_") and col[4:] in bs.components:
        return f"points of the component `{col[4:]}` in the score"
    if col in designations:
        return f"designated `{col}` (true/false)"
    if col.startswith("true_") and col[5:] in designations:
        return f"designated `{col[5:]}` by the true quality (true/false)"
    if col in consequences:
        return f"the consequence `{col}` applies (true/false)"
    if col.endswith("_streak"):
        return f"consecutive years `{col[:-7]}` held, this one included"
    from sphinx.util import logging
    logging.getLogger(__name__).warning(f"data dictionary: the output column {col!r} of {policy.name!r} has no "
                                        "description (docs/_site.py, _output_meaning)")
    return ""


def _output_rows(frame, scheme, policy, coded=()) -> list[list[str]]:
    return [[f"`{c}`", str(frame[c].dtype),
             _output_meaning(c, scheme, policy) + (" (integer code)" if c in coded else "")] for c in frame.columns]


def data_dictionary() -> str:
    """The generated part of the data dictionary, as MyST Markdown."""
    import warnings

    import pandas as pd

    import branchsim as bs
    from branchsim._national_outputs import codebook
    from branchsim.tables import branch_columns, member_columns, member_month_columns

    out: list[str] = []
    names = sorted(p.name[:-len(".yaml")] for p in bs.data_path("policies").glob("*.yaml")
                   if p.name.count(".") == 1)
    for name in names:
        policy = bs.Policy.load(name)
        out += [f"# `{name}` (`data/policies/{name}.yaml`)", ""]
        header = ["column", "meaning", "allowed", "required"]
        out += ["**Input: branches**", ""] + _table(header, _input_rows(branch_columns(policy)))
        if policy.has_members:
            out += ["**Input: members**", ""] + _table(header, _input_rows(member_columns(policy)))
            out += ["**Input: member_months**", ""] + _table(header, _input_rows(member_month_columns(policy)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bs.evaluate(bs.generate(policy, seed=0, n_branches=40), policy)
        out += ["**Output: `Result.branches`** (a generated population: with its truth)", ""]
        out += _table(["column", "dtype", "meaning"], _output_rows(result.branches, policy.scheme, policy))
        if result.members is not None:
            out += ["**Output: `Result.members`**", ""]
            out += _table(["column", "dtype", "meaning"], _output_rows(result.members, policy.scheme, policy))
        cb = codebook(policy)
        with tempfile.TemporaryDirectory() as folder:
            bs.national_run(policy, n_branches=40, n_members=400 if policy.has_members else None, seed=0,
                            out_dir=folder, progress=False)
            for table in ("branches", "members"):
                parquet = Path(folder) / table / "chunk-000000.parquet"
                frame = pd.read_parquet(parquet) if parquet.exists() else None
                if frame is not None and len(frame.columns) > 1:
                    out += [f"**Output of a national run: `{table}/*.parquet`** (integer codes: `codebook.json`,"
                            " below)", ""]
                    out += _table(["column", "dtype", "meaning"], _output_rows(frame, policy.scheme, policy, cb["columns"]))
        rows = [[f"`{col}`", ", ".join(f"{k} = {'(exempt)' if v is None else v}" for k, v in codes.items())]
                for col, codes in cb["columns"].items()]
        out += ["**National outputs: integer codes** (`codebook.json`)", ""]
        out += _table(["column", "codes"], rows)
    return "\n".join(out)


def write_data_dictionary(folder: Path) -> None:
    write_if_changed(folder / "data_dictionary_tables.md", data_dictionary())
