"""The public API is typed (issue 14): mypy passes on the package and on a researcher's typed script,
rejects wrong uses of the public names (so they are not Any), and every public function and method
carries an annotation on each parameter and on its return."""
from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import branchsim as bs

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
#: The public modules: branchsim and the public subpackages / modules it lists, branchsim.plot, and the
#: modules whose classes and helpers a researcher meets (Cities from plausible_cities, as_policy, ...).
PUBLIC_MODULES = ("branchsim", *(f"branchsim.{n}" for n in bs.__all__
                                 if isinstance(getattr(bs, n), types.ModuleType)), "branchsim.plot",
                  "branchsim.plausible", "branchsim.policy", "branchsim.population", "branchsim.national",
                  "branchsim.policytests", "branchsim.streams", "branchsim.tables")


def _mypy(cache: Path, *targets: str) -> tuple[int, str, float]:
    """Run mypy with the repository's mypy.ini; ``(exit code, output, seconds)``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "mypy.ini"),
                           "--cache-dir", str(cache), "--no-color-output", "--no-error-summary", *targets],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory) -> Path:
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    return tmp_path_factory.mktemp("mypy_cache")


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if ": error:" in line]


def test_mypy_passes_on_the_package_and_a_typed_script(mypy_cache):
    code, out, seconds = _mypy(mypy_cache, "branchsim", str(TYPING / "usage.py"))
    print(f"mypy on branchsim and tests/typing/usage.py, cold cache: {seconds:.1f} s")
    assert code == 0 and not _errors(out), f"mypy found errors:\n{out}"


def test_mypy_rejects_wrong_uses_of_the_public_api(mypy_cache):
    """Each line of misuse.py marked ``# error`` is an error, and no other line: the public names have
    real types (a name typed Any would accept all of them)."""
    misuse = TYPING / "misuse.py"
    marked = {i for i, line in enumerate(misuse.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"\S  # error: ", line)}
    assert len(marked) >= 5
    code, out, _ = _mypy(mypy_cache, str(misuse))
    found = {int(m.group(1)) for m in re.finditer(r"misuse\.py:(\d+): error:", out)}
    assert code == 1
    assert found == marked, (f"lines marked '# error' that mypy accepted: {sorted(marked - found)}; "
                             f"errors on unmarked lines: {sorted(found - marked)}\n{out}")


def test_lazily_loaded_names_have_their_types(mypy_cache, tmp_path):
    """``bs.NAME`` (loaded on first use at run time) is the function or class itself for mypy, for every
    lazily loaded name of branchsim and branchsim.sensitivity - not Any, not a same-named submodule."""
    lines = ["import branchsim", "import branchsim.sensitivity"]
    names = [("branchsim", n) for n in bs._WHERE] + [("branchsim.sensitivity", n) for n in bs.sensitivity._WHERE]
    lines += [f"reveal_type({mod}.{n})" for mod, n in names]
    script = tmp_path / "reveal.py"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, _ = _mypy(mypy_cache, str(script))
    revealed = dict(re.findall(r"reveal\.py:(\d+): note: Revealed type is \"(.*)\"", out))
    bad = []
    for i, (mod, n) in enumerate(names, start=3):
        kind = revealed.get(str(i), "<nothing>")
        obj = getattr(importlib.import_module(mod), n)
        want = "def " if inspect.isfunction(obj) else ("def " if inspect.isclass(obj) else None)
        if kind in ("Any", "<nothing>") or "ModuleType" in kind or (want and want not in kind
                                                                      and "Overload" not in kind):
            bad.append(f"{mod}.{n}: {kind}")
    assert code == 0 and not bad, f"names without their real type for mypy: {bad}\n{out}"


def _type_checking_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.ImportFrom):
                    names |= {a.asname or a.name for a in stmt.names}
    return names


@pytest.mark.parametrize("package", ["branchsim", "branchsim.sensitivity"])
def test_every_lazy_name_is_imported_for_type_checkers(package):
    """A name added to a package's ``_WHERE`` needs its ``if TYPE_CHECKING:`` import too (or it is Any)."""
    module = importlib.import_module(package)
    shown = _type_checking_imports(Path(module.__file__))
    missing = sorted(set(module._WHERE) - shown)
    assert not missing, f"{package}: lazily loaded names not imported under TYPE_CHECKING: {missing}"


def _unannotated(func, qualname: str) -> list[str]:
    """``qualname: parameter 'x'`` / ``qualname: return`` for each missing annotation of ``func``."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):         # a builtin without a signature
        return []
    out = [f"{qualname}: parameter {p.name!r}" for p in sig.parameters.values()
           if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and func.__name__ != "__init__":
        out.append(f"{qualname}: return")
    return out


def _class_members(cls: type, qualname: str) -> list[str]:
    """Missing annotations of the public methods and properties (and ``__init__``) a branchsim class
    defines or inherits from another branchsim class."""
    out = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("branchsim"):
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_") and attr != "__init__":
                continue
            where = f"{qualname}.{attr}"
            if isinstance(value, property):
                out += _unannotated(value.fget, where) if value.fget else []
            elif isinstance(value, (staticmethod, classmethod)):
                out += _unannotated(value.__func__, where)
            elif inspect.isfunction(value):
                out += _unannotated(value, where)
    return out


def public_api_missing_annotations(modules=PUBLIC_MODULES) -> list[str]:
    missing, seen = [], set()
    for modname in modules:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                if obj.__module__.startswith("branchsim"):
                    missing += _class_members(obj, f"{modname}.{name}")
            elif callable(obj):
                missing += _unannotated(obj, f"{modname}.{name}")
    return sorted(set(missing))


def test_every_public_function_and_method_is_annotated():
    missing = public_api_missing_annotations()
    assert not missing, "public functions/methods without complete annotations:\n  " + "\n  ".join(missing)


def test_the_annotation_walk_finds_what_is_missing():
    """The walk above reports an unannotated parameter, return and method (it can fail)."""
    def untyped(a, b: int = 0):
        return a

    class Thing:
        def __init__(self, x) -> None: ...

        def method(self, y: int): ...

        @property
        def prop(self): ...

    Thing.__module__ = "branchsim.fake"
    assert _unannotated(untyped, "untyped") == ["untyped: parameter 'a'", "untyped: return"]
    assert sorted(_class_members(Thing, "Thing")) == ["Thing.__init__: parameter 'x'", "Thing.method: return",
                                                      "Thing.prop: return"]
    assert len(PUBLIC_MODULES) >= 6 and "branchsim.sensitivity" in PUBLIC_MODULES


# -- bugs the type check found ---------------------------------------------------------------------

@pytest.mark.parametrize("as_given", [str, Path], ids=["str", "Path"])
def test_published_targets_of_a_policy_given_by_its_path(as_given):
    """``targets`` / ``published_counts`` take a policy file's path like the rest of the API (they
    returned no counts for one: mypy saw ``companion`` looked up on a str)."""
    import shipped
    for name in shipped.POLICIES:
        policy = shipped.load(name)
        path = as_given(shipped.path(name))
        assert bs.targets(path) == bs.targets(policy), name
        expected = bs.published_counts(policy)
        pd_testing = pytest.importorskip("pandas.testing")
        pd_testing.assert_series_equal(bs.published_counts(path), expected)
    assert bs.targets(None) == bs.targets(bs.Policy.load())
    assert len(bs.published_counts(str(shipped.path("baseline")))) > 0


def test_a_figure_with_subfigures_is_saved_from_any_of_its_axes(tmp_path):
    """``branchsim.plot.save`` of an Axes drawn in a subfigure (or of the subfigure) writes the whole
    figure (it was refused as "not a Figure": mypy saw ``Axes.figure`` may be a SubFigure)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import branchsim.plot as bp
    fig = plt.figure(figsize=(4, 2))
    left, right = fig.subfigures(1, 2)
    ax = left.subplots()
    ax.plot([0, 1], [1, 0])
    try:
        whole = bp.save(fig, tmp_path / "whole.png", dpi=50)
        for name, part in (("axes", ax), ("subfigure", right)):
            out = bp.save(part, tmp_path / f"{name}.png", dpi=50)
            assert out.read_bytes() == whole.read_bytes(), name
    finally:
        plt.close(fig)
