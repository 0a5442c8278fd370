"""Run manifests: what produced an output, and :func:`verify` to re-run it.

Every output records a manifest (a JSON-able dict, schema
``branchsim-manifest/1``):

* ``branchsim``: the version; ``versions``: Python, NumPy, pandas, SciPy,
  SALib, Numba, pyarrow, scikit-learn, matplotlib; ``platform``;
* ``policy`` (and ``reform``): its name, the SHA-256 of its content (the
  policy as data, whatever file or object it came from), the file it was read
  from and the document itself, so the run can be repeated without the file;
* ``population``: generated (seed, branches, members and every generator
  parameter, with their hash), loaded (each file read and its SHA-256) or
  plausible cities (how many, their size, the hash of their parameters);
  a file shipped with branchsim is named by its place in ``data/``, so
  another install finds it;
* ``seeds``: every seed the analysis drew from;
* ``command``: the command line (``branchsim ...``) and its working folder,
  or the Python call; ``outputs``: the SHA-256 of every file written.

Where the manifest goes:

* a folder written by the command line or :func:`~branchsim.write_report`
  (``report``, ``evaluate --out``, ``compare --out``, ``national --out``)
  holds it as ``manifest.json``; a single file (``sweep``,
  ``compare-designs``, ``next-level`` and ``policy --out F``) has it
  beside, as ``F.manifest.json``, written together with the file;
* a :class:`~branchsim.Result` has it as ``.manifest``, as do the results of
  :func:`~branchsim.sobol`, :func:`~branchsim.compare`,
  :func:`~branchsim.fragility` and :func:`~branchsim.measurement_mc`; the
  frames of :func:`~branchsim.sweep`, :func:`~branchsim.exact_sweep` and
  :func:`~branchsim.morris` in ``.attrs["manifest"]``;
* the report shows it in its "Manifest" section (without the machine's
  versions and platform, which are in ``manifest.json``: the same run on
  another machine writes the same page).

``branchsim verify DIR`` (:func:`verify`) re-runs the recorded command into a
temporary folder and compares every output file, byte for byte.
"""
from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ParamSpec, TypeVar

from .errors import BranchsimError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCHEMA", "MANIFEST", "build", "read_manifest", "verify", "Verification", "manifest_path"]

P = ParamSpec("P")
R = TypeVar("R")

SCHEMA = "branchsim-manifest/1"
#: The manifest's file name in an output folder; beside a single output file it is ``NAME.manifest.json``.
MANIFEST = "manifest.json"
#: Libraries whose versions a manifest records (distribution names).
LIBRARIES = ("numpy", "pandas", "scipy", "SALib", "numba", "pyarrow", "scikit-learn", "matplotlib", "PyYAML")
#: The command line being run (set by :func:`branchsim.cli.main`): recorded in every manifest made meanwhile.
COMMAND_LINE: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("branchsim_argv", default=None)
#: Options of the command line naming an output (replaced by a temporary path when verifying).
OUT_OPTIONS = ("--out", "--write")


# -- parts of a manifest -------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _canonical(doc: Any) -> str:
    # key order kept: a policy's indicators, levels and types are ordered, and the order is part of the rules
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256_doc(doc: Any) -> str:
    """The SHA-256 of a JSON-able document as compact JSON (key order kept): the same content, the same hash."""
    return hashlib.sha256(_canonical(doc).encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """The versions of branchsim, Python and the numerical libraries, and the platform."""
    from importlib import metadata

    from . import __version__
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"branchsim": __version__, "versions": versions,
            "platform": {"system": platform.system(), "release": platform.release(),
                         "machine": platform.machine(), "python_implementation": platform.python_implementation(),
                         "platform": platform.platform()}}


def shipped_name(path: str | os.PathLike[str]) -> str | None:
    """A file shipped in the package's ``data/`` folder as its name there (``policies/baseline.yaml``), else None:
    a manifest records shipped inputs by that name, so another install (another path) can verify the run."""
    from .policy import data_path
    try:
        return Path(os.path.abspath(path)).resolve().relative_to(data_path().resolve()).as_posix()
    except ValueError:
        return None


def _located(rec: dict[str, Any], cwd: Path) -> Path:
    """Where a recorded input is now: a shipped file in this install's ``data/``, else its path (from ``cwd``)."""
    from .policy import data_path
    if rec.get("shipped"):
        return data_path(*rec["shipped"].split("/"))
    p = Path(rec["path"])
    return p if p.is_absolute() else cwd / p


def _shown_path(rec: dict[str, Any]) -> str:
    return f"{rec['shipped']} (shipped with branchsim)" if rec.get("shipped") else str(rec["path"])


def policy_record(policy, given: Any = None) -> dict[str, Any]:
    """A policy's name, content hash, document, and the file it was read from (``given`` a path)."""
    doc = getattr(policy, "_data", None)     # read only (json below): no deep copy
    text = _canonical(policy.to_dict() if doc is None else doc)     # once: hashed, and read back as the document
    record = {"name": policy.name, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "file": None,
              "file_sha256": None}
    own = getattr(policy, "_path", None)         # the file the policy was read from (a shipped name resolved)
    path = (given if isinstance(given, (str, os.PathLike)) and Path(given).is_file() else
            own if own is not None and Path(own).is_file() else None)
    if path is not None:
        record["file"] = os.fspath(path)
        record["shipped"] = shipped_name(path)
        record["file_sha256"] = sha256_file(path)
    record["document"] = json.loads(text)
    return record


def given(arg: Any) -> str | None:
    """How a policy argument was given, for a re-run: None (the default), a path, or ``"<object>"``."""
    if arg is None:
        return None
    return os.fspath(arg) if isinstance(arg, (str, os.PathLike)) else "<object>"


def _policy_again(arg: str | None, record: dict[str, Any] | None, cwd: Path | None = None):
    """The policy argument of a re-run: as it was given (a path, the default; a shipped file found in this
    install), or rebuilt from its document."""
    if record is None or arg is None:
        return arg
    cwd = cwd or Path(os.getcwd())
    if arg != "<object>":
        return os.fspath(_located(record | {"path": arg}, cwd)) if record.get("shipped") else arg
    from .policy import Policy
    where = _located(record | {"path": record["file"]}, cwd) if record.get("file") else None
    return Policy(record["document"], path=where if where is not None and where.is_file() else None)


def file_records(paths) -> list[dict[str, Any]]:
    """``path``, ``bytes`` and ``sha256`` of each file (folders are skipped)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            out.append({"path": os.fspath(p), "shipped": shipped_name(p), "bytes": p.stat().st_size,
                        "sha256": sha256_file(p)})
    return out


def population_record(pop) -> dict[str, Any]:
    """Where a population came from: generated (seed, size, generator parameters) or loaded (files, hashes)."""
    if pop is None:
        return {"source": None}
    rec: dict[str, Any] = {"branches": int(len(pop.branches)),
                           "members": None if pop.members is None else int(len(pop.members))}
    if pop.seed is not None and pop.params is not None:
        seed = pop.seed
        rec.update(source="generated", seed=str(getattr(seed, "entropy", seed)),
                   spawn_key=list(getattr(seed, "spawn_key", ())),
                   generator_sha256=sha256_doc(pop.params.document), generator=pop.params.document)
    else:
        rec.update(source="tables", description=str(pop.source))
    rec["files"] = list(getattr(pop, "inputs", None) or [])       # the files it was loaded from, if any
    return rec


def build(command: str, *, policy=None, policy_given: Any = None, population=None, reform=None,
          reform_given: Any = None, seeds: dict[str, Any] | None = None,
          arguments: dict[str, Any] | None = None, inputs=()) -> dict[str, Any]:
    """A manifest for an output of ``command`` (a CLI command or a Python function's name).

    ``policy_given`` / ``reform_given``: what the caller passed (a path is
    recorded as the file read); ``arguments``: the call's other arguments
    (JSON-able); ``inputs``: other files read (their hashes are recorded).
    The command line being run, if any (:data:`COMMAND_LINE`), is recorded
    with the working folder.

    Examples
    --------
    >>> import branchsim as bs
    >>> m = build("evaluate", policy=bs.Policy.load())
    >>> m["schema"], m["policy"]["name"], len(m["policy"]["sha256"])
    ('branchsim-manifest/1', 'baseline', 64)
    """
    env = environment()
    argv = COMMAND_LINE.get()
    return {"schema": SCHEMA, "branchsim": env["branchsim"], "command": command,
            "command_line": None if argv is None else {"argv": ["branchsim", *argv]}, "cwd": os.getcwd(),
            "arguments": dict(arguments or {}),
            "policy": None if policy is None else policy_record(policy, policy_given),
            "reform": None if reform is None else policy_record(reform, reform_given),
            "population": population_record(population),
            "inputs": file_records(p for p in inputs if p is not None),
            "seeds": dict(seeds or {}), "versions": env["versions"], "platform": env["platform"]}


def light(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the documents (policy, generator parameters): small enough to hang on every result
    (``DataFrame.attrs``, ``.manifest``). The hashes stay."""
    out = dict(manifest)
    for key in ("policy", "reform"):
        if out.get(key):
            out[key] = {k: v for k, v in out[key].items() if k != "document"}
    if out.get("population"):
        out["population"] = {k: v for k, v in out["population"].items() if k != "generator"}
    return out


def _plain(value: Any, depth: int = 0) -> Any:
    """An argument as JSON: numbers, text, lists and mappings as they are; anything else by its type's name."""
    import numpy as np
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if depth < 3 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if depth < 3 and isinstance(value, (list, tuple, range, np.ndarray)) and len(value) <= 1000:
        return [_plain(v, depth + 1) for v in value]
    return f"<{type(value).__name__}>"


#: Set while a recorded analysis runs: the analyses it calls (per city, per design) record nothing themselves.
_RECORDING: contextvars.ContextVar[bool] = contextvars.ContextVar("branchsim_recording", default=False)


class Manifest(dict):
    """A manifest attached to a result: a dict that pandas' ``attrs`` propagation does not copy (every frame
    derived from a result would otherwise deep-copy it)."""

    def __copy__(self) -> "Manifest":
        return self

    def __deepcopy__(self, memo: dict) -> "Manifest":
        return self


def cities_record(cities: Any) -> dict[str, Any]:
    """The population of an analysis over plausible cities: how many, their size, and the hash of their
    parameter table (each city's generator parameters and seed)."""
    import pandas as pd
    params = getattr(cities, "params", None)
    digest = (hashlib.sha256(pd.util.hash_pandas_object(params, index=True).to_numpy().tobytes()).hexdigest()
              if isinstance(params, pd.DataFrame) else None)
    return {"source": "plausible cities", "cities": len(cities), "branches": getattr(cities, "n_branches", None),
            "fitted": list(getattr(cities, "fitted", [])), "drawn": list(getattr(cities, "drawn", [])),
            "params_sha256": digest, "files": []}


def recorded(command: str, *, full: bool = False, policy_arg: str = "policy",
             reform_arg: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a public analysis so that what it returns records its manifest.

    A DataFrame gets it in ``.attrs["manifest"]``, any other object as
    ``.manifest``; ``full`` keeps the documents (policy, generator), else
    :func:`light`. The arguments ``pop`` and ``policy_arg`` (and
    ``reform_arg``) are recorded as the population's source and the policies;
    the others as JSON (``executor``, ``progress`` and ``cities`` are left out).
    """
    skip = {"pop", policy_arg, reform_arg, "executor", "progress", "cities"}

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        import inspect
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _RECORDING.get():        # called by another recorded analysis (per city, say): its caller records
                return fn(*args, **kwargs)
            token = _RECORDING.set(True)
            try:
                out = fn(*args, **kwargs)
            finally:
                _RECORDING.reset(token)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return out
            bound.apply_defaults()
            from .policy import Policy, as_policy
            given = bound.arguments.get(policy_arg)
            reform_given = bound.arguments.get(reform_arg) if reform_arg else None
            policy = reform = None
            held = getattr(out, "policy", None)      # the policy the result holds: not read a second time
            try:                        # the call succeeded; a manifest never makes it fail
                policy = (given if isinstance(given, Policy) else held if isinstance(held, Policy) else
                          as_policy(given))
                reform = (reform_given if isinstance(reform_given, Policy) or reform_given is None else
                          getattr(getattr(out, "reform", None), "policy", None) or policy.update(reform_given))
            except Exception:
                pass
            m = build(command, policy=policy, policy_given=given, reform=reform, reform_given=reform_given,
                      population=bound.arguments.get("pop"),
                      arguments={k: _plain(v) for k, v in bound.arguments.items() if k not in skip},
                      seeds={k: _plain(v) for k, v in bound.arguments.items() if k == "seed"})
            cities = bound.arguments.get("cities")
            if cities is not None:
                m["population"] = cities_record(cities)
            m = Manifest(m if full else light(m))
            import pandas as pd
            if isinstance(out, pd.DataFrame):
                out.attrs["manifest"] = m
            else:
                try:
                    setattr(out, "manifest", m)
                except AttributeError:          # a frozen dataclass with a manifest field
                    if hasattr(out, "manifest"):
                        object.__setattr__(out, "manifest", m)
            return out
        return wrapper
    return decorate


def with_outputs(manifest: dict[str, Any], files) -> dict[str, Any]:
    """The manifest with ``outputs``: ``{name: sha256}`` of each written file (``(name, path)`` pairs)."""
    return {**manifest, "outputs": {name: sha256_file(path) for name, path in sorted(files)}}


def dumps(manifest: dict[str, Any]) -> str:
    """The manifest as the JSON text written to disk (UTF-8, key order kept, one trailing newline)."""
    return json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n"


def write_file(path: str | os.PathLike[str], write: Callable[[Path], Any], manifest: dict[str, Any], *,
               flag: str = "") -> Path:
    """Write one output file and its manifest beside it (``NAME.manifest.json``), both or neither.

    ``write(tmp)`` writes the file to a temporary path; the manifest (with
    that file's SHA-256) is written to another, and both are renamed into
    place only when both are complete: a failure (a full disk) leaves the
    earlier file and manifest as they were.
    """
    from ._output import atomic_file
    path = Path(path)
    side = manifest_path(path)
    with atomic_file(path, flag=flag) as tmp:
        write(Path(tmp))
        try:
            with atomic_file(side) as stmp:
                Path(stmp).write_text(dumps(with_outputs(manifest, [(path.name, tmp)])), encoding="utf-8",
                                      newline="\n")
        except BranchsimError as exc:
            raise BranchsimError(f"{flag + ' ' if flag else ''}{path}: cannot write its manifest ({exc})") from None
    return side


def write_csv(path: str | os.PathLike[str], frame: Any, manifest: dict[str, Any], *, flag: str = "") -> Path:
    """A table as CSV (no index, ``\\n`` line ends) with its manifest beside it: :func:`write_file`."""
    return write_file(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"), manifest, flag=flag)


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """Where the manifest of an output is: ``DIR/manifest.json`` for a folder, ``FILE.manifest.json`` beside a
    file; a manifest's own path is returned as it is."""
    p = Path(path)
    if p.is_dir():
        return p / MANIFEST
    if p.name.endswith(".manifest.json") or p.name == MANIFEST:
        return p
    return p.with_name(p.name + ".manifest.json")


def shown_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The manifest as ``(field, value)`` rows for a report: no output hashes (the report is one of them)."""
    pol, ref, pop = manifest.get("policy") or {}, manifest.get("reform"), manifest.get("population") or {}
    rows = [("branchsim", str(manifest.get("branchsim")))]
    cl = manifest.get("command_line")
    if cl:
        rows.append(("command line", " ".join(_shown_argv(cl["argv"]))))
    else:
        rows.append(("call", f"{manifest.get('command')}("
                     + ", ".join(f"{k}={v!r}" for k, v in sorted(manifest.get("arguments", {}).items())) + ")"))
    for key, rec in (("policy", pol), ("reform", ref)):
        if rec:
            rows.append((key, f"{rec['name']!r}, content sha256 {rec['sha256']}"
                         + (f"; file {_shown_path(rec | {'path': rec['file']})} (sha256 {rec['file_sha256']})"
                            if rec.get("file") else "")))
    if pop.get("source") == "generated":
        rows.append(("population", f"generated from seed {pop['seed']}: {pop['branches']} branches, "
                     f"{pop['members'] if pop['members'] is not None else 'no'} members; generator parameters "
                     f"sha256 {pop['generator_sha256']}"))
    elif pop.get("source") == "tables":
        files = "; ".join(f"{_shown_path(f)} (sha256 {f['sha256']})" for f in pop.get("files", [])) \
            or "objects in memory"
        rows.append(("population", f"loaded: {pop['branches']} branches; {files}"))
    for f in manifest.get("inputs", []):
        rows.append(("input", f"{_shown_path(f)} (sha256 {f['sha256']})"))
    if manifest.get("seeds"):
        rows.append(("seeds", ", ".join(f"{k} {v}" for k, v in sorted(manifest["seeds"].items()))))
    # The machine (library versions, platform) is in manifest.json only: on the page it would make the same
    # run on another machine, or after an unrelated upgrade, read as a different report.
    rows.append(("environment", "Python and library versions and the platform: manifest.json beside this file"))
    return rows


def _with_out(argv: list[str], value: str) -> tuple[list[str], bool]:
    """The command line with the output option's value replaced by ``value``, and whether it names one."""
    out, skip, found = [], False, False
    for a in argv:
        if skip:
            out.append(value)
            skip, found = False, True
        elif a in OUT_OPTIONS:
            out.append(a)
            skip = True
        elif any(a.startswith(o + "=") for o in OUT_OPTIONS):
            out.append(a.split("=", 1)[0] + "=" + value)
            found = True
        else:
            out.append(a)
    return out, found


def _shown_argv(argv: list[str]) -> list[str]:
    """The command line with the output named as ``OUT`` (the same command into another folder reads the same)."""
    return _with_out(argv, "OUT")[0]


# -- reading and verifying -----------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an output folder or file (or a manifest file), checked.

    Raises
    ------
    BranchsimError
        No manifest there, or not a readable branchsim manifest (one line naming the file).
    """
    p = manifest_path(path)
    if not Path(path).exists():
        raise BranchsimError(f"{path}: no such file or folder")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BranchsimError(f"{path}: holds no manifest ({p.name}); give an output folder of branchsim report, "
                             f"evaluate --out, compare --out or national --out, or a file with NAME.manifest.json "
                             f"beside it (sweep --out)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BranchsimError(f"{p}: cannot read the manifest ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BranchsimError(f"{p}: damaged (not valid JSON at line {exc.lineno}, column {exc.colno})") from None
    if isinstance(doc, dict) and isinstance(doc.get("run"), dict):      # a national run's folder manifest
        doc = doc["run"]
    elif isinstance(doc, dict) and isinstance(doc.get("done"), list) and isinstance(doc.get("chunks"), int):
        raise BranchsimError(f"{p}: the national run there is not finished ({len(doc['done'])} of {doc['chunks']} "
                             f"chunks): finish it with --resume, then verify it")
    if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA):
        raise BranchsimError(f"{p}: not a branchsim run manifest (schema {SCHEMA} expected)")
    for key, kind in (("command", str), ("outputs", dict)):
        if not isinstance(doc.get(key), kind):
            raise BranchsimError(f"{p}: damaged ({key!r} missing or not a {kind.__name__})")
    return doc


class Verification:
    """What :func:`verify` found: a row per output file, and whether all are identical.

    Attributes
    ----------
    identical : bool
        Every recorded output was re-made byte for byte.
    files : pandas.DataFrame
        ``file``, ``recorded`` (SHA-256 in the manifest), ``on_disk`` (the
        file there now), ``rerun`` (the re-run's) and ``status``
        (``identical``, ``differs``, ``changed on disk``, ``missing``).
    environment : list of str
        How this machine differs from the one that wrote the output
        (versions, platform): a reason a re-run may differ.
    """

    def __init__(self, files: pd.DataFrame, environment: list[str], manifest: dict[str, Any]) -> None:
        self.files = files
        self.environment = environment
        self.manifest = manifest
        self.identical = bool(len(files)) and bool((files["status"] == "identical").all())

    def summary(self) -> str:
        """Lines for the terminal: the verdict, each file that is not identical, the environment differences."""
        n = len(self.files)
        bad = self.files[self.files["status"] != "identical"]
        head = (f"identical: {'the output was' if n == 1 else f'all {n} outputs were'} made again byte for byte"
                if self.identical else f"NOT identical: {len(bad)} of {n} output{'s' if n > 1 else ''} differ")
        lines = [head] + [f"  {r.file}: {r.status}" for r in bad.itertuples()]
        if self.environment:
            lines.append("this machine differs from the one that wrote the outputs: " + "; ".join(self.environment))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Verification: {'identical' if self.identical else 'not identical'}, {len(self.files)} files>"


def _environment_changes(manifest: dict[str, Any]) -> list[str]:
    env = environment()
    out = []
    if manifest.get("branchsim") != env["branchsim"]:
        out.append(f"branchsim {manifest.get('branchsim')} -> {env['branchsim']}")
    for k, v in env["versions"].items():
        old = (manifest.get("versions") or {}).get(k)
        if old != v:
            out.append(f"{k} {old} -> {v}")
    old = (manifest.get("platform") or {}).get("platform")
    if old != env["platform"]["platform"]:
        out.append(f"platform {old} -> {env['platform']['platform']}")
    return out


def _check_inputs(manifest: dict[str, Any], cwd: Path) -> None:
    """Refuse to re-run when a recorded input file is gone or changed (the re-run would not be the same run)."""
    records = list(manifest.get("inputs", []))
    python_args = {} if manifest.get("command_line") else (manifest.get("arguments") or {})
    for key in ("policy", "reform"):
        rec = manifest.get(key)
        if python_args.get(key) == "<object>":
            continue        # a Policy object: the re-run rebuilds it from the document in the manifest
        if rec and rec.get("file") and rec.get("file_sha256"):
            records.append({"path": rec["file"], "shipped": rec.get("shipped"), "sha256": rec["file_sha256"]})
    pop = manifest.get("population") or {}
    records += list(pop.get("files", []))
    for rec in records:
        p = _located(rec, cwd)
        if not p.is_file():
            where = "" if rec.get("shipped") or Path(rec["path"]).is_absolute() else \
                f" (looked in {cwd}; --cwd DIR names the folder the command ran in)"
            raise BranchsimError(f"cannot re-run: input {_shown_path(rec)} is not there{where}")
        if sha256_file(p) != rec["sha256"]:
            raise BranchsimError(f"cannot re-run: input {_shown_path(rec)} has changed since the run "
                                 f"(its sha256 differs from the manifest's)")


def _same_inputs(old: dict[str, Any], new: dict[str, Any]) -> None:
    """The re-run read the run's rules and data: the same policy and reform content, generator parameters and
    loaded files (an input not named in the manifest, such as an --apply file, shows here)."""
    checks = [("policy", lambda m: (m.get("policy") or {}).get("sha256")),
              ("reform", lambda m: (m.get("reform") or {}).get("sha256")),
              ("generator parameters", lambda m: (m.get("population") or {}).get("generator_sha256")),
              ("population tables",
               lambda m: sorted(f["sha256"] for f in (m.get("population") or {}).get("files", [])))]
    for what, read in checks:
        if read(old) != read(new):
            raise BranchsimError(f"cannot verify: the re-run read another {what} than the run (its content hash "
                                 f"differs from the manifest's): an input changed since the run")


def _rerun_argv(argv: list[str], out: Path) -> list[str]:
    """The recorded command's arguments (``branchsim`` dropped) writing into ``out``."""
    new, found = _with_out(argv[1:], os.fspath(out))
    if not found:
        raise BranchsimError("cannot re-run: the recorded command line names no --out")
    return new


def _rerun(manifest: dict[str, Any], target: Path, single_file: str | None, *, cwd: Path) -> None:
    """Make the outputs again into ``target`` (a folder, or the file ``target / single_file``)."""
    out = target / single_file if single_file else target / "out"
    cl = manifest.get("command_line")
    if cl:
        import contextlib
        import io

        from .cli import main
        from .plot.labels import use_labels
        argv = _rerun_argv(list(cl["argv"]), out)
        labels = (manifest.get("arguments") or {}).get("labels")
        old, err = os.getcwd(), io.StringIO()
        os.chdir(cwd)
        try:    # in this process, with the figures' wording in force when it ran (a Python setting, say)
            with use_labels(labels or "auto"), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            os.chdir(old)
        if code != 0:
            last = (err.getvalue().strip().splitlines() or ["(no message)"])[-1]
            last = last.removeprefix("branchsim: error: ")
            raise BranchsimError(f"cannot re-run: the recorded command failed: {last}")
        return
    args = dict(manifest.get("arguments") or {})
    if manifest["command"] == "write_report":
        from .report import write_report
        if args.pop("population_object", False):
            raise BranchsimError("cannot re-run: the report's population was passed as an object; re-run your "
                                 "script (the manifest records its source and hashes)")
        policy = _policy_again(args.pop("policy", None), manifest.get("policy"), cwd)
        reform = _policy_again(args.pop("reform", None), manifest.get("reform"), cwd)
        old = os.getcwd()
        os.chdir(cwd)
        try:
            write_report(out, policy=policy, reform=reform, **args)
        finally:
            os.chdir(old)
        return
    if manifest["command"] == "national":
        import numpy as np

        from .national import national_run
        from .params import GeneratorParams, _values
        seed = args["seed"]
        doc = args["params"]
        national_run(_policy_again("<object>", manifest.get("policy"), cwd), n_branches=args["branches"],
                     n_members=args["members"], chunk_size=args["chunk_size"],
                     seed=np.random.SeedSequence(int(seed["entropy"]), spawn_key=tuple(seed["spawn_key"])),
                     params=GeneratorParams(_values(doc), doc), out_dir=out, progress=False)
        return
    raise BranchsimError(f"cannot re-run: no command line recorded for {manifest['command']!r} (made from Python)")


def verify(path: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None) -> Verification:
    """Re-run an output from its manifest and compare every file, byte for byte.

    Parameters
    ----------
    path : path
        An output folder (holding ``manifest.json``), an output file (with
        ``FILE.manifest.json`` beside it) or a manifest file.
    cwd : path, optional
        The folder relative paths of the recorded command are read from
        (default: the folder the command ran in, when it still exists, else
        the current folder).

    Returns
    -------
    Verification
        ``.identical`` and a row per output file. The outputs on disk are
        compared with the manifest too, so an edited output is reported.

    Raises
    ------
    BranchsimError
        No readable manifest; an input recorded in it is gone or changed; the
        output was made from Python with an object that cannot be rebuilt.
    """
    import pandas as pd
    where = Path(path)
    manifest = read_manifest(where)
    mpath = manifest_path(where)
    single = None if mpath.name == MANIFEST else mpath.name[: -len(".manifest.json")]
    folder = mpath.parent
    recorded_cwd = Path(manifest.get("cwd") or os.getcwd())
    run_cwd = Path(cwd) if cwd is not None else (recorded_cwd if recorded_cwd.is_dir() else Path(os.getcwd()))
    _check_inputs(manifest, run_cwd)
    with tempfile.TemporaryDirectory(prefix="branchsim-verify-") as tmp:
        _rerun(manifest, Path(tmp), single, cwd=run_cwd)
        made = Path(tmp) / single if single else Path(tmp) / "out"
        _same_inputs(manifest, read_manifest(made))
        rows = []
        for name, recorded in sorted(manifest["outputs"].items()):
            disk = folder / name
            again = made if single else made / name
            on_disk = sha256_file(disk) if disk.is_file() else None
            rerun = sha256_file(again) if again.is_file() else None
            status = ("missing" if rerun is None else "differs" if rerun != recorded else
                      "changed on disk" if on_disk != recorded else "identical")
            rows.append((name, recorded, on_disk, rerun, status))
    files = pd.DataFrame(rows, columns=["file", "recorded", "on_disk", "rerun", "status"])
    return Verification(files, _environment_changes(manifest), manifest)
