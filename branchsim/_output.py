"""Writing outputs: atomically, never over an input, nothing left behind on failure.

Every file and folder that the command line and :func:`~branchsim.write_report`
write goes through these helpers:

* a folder is built as a hidden sibling (``.NAME.tmp-PID-TAG``) and renamed
  into place at the end (:class:`_Staging`), so a reader never finds half a
  report; an earlier output there is replaced whole, and a folder holding
  files the writer did not make is refused;
* a single file is written to a hidden sibling and renamed over the target
  (:func:`atomic_file`);
* an output that is, or would replace, one of the run's inputs (the data
  folder, its tables, a policy file) is refused before anything is computed
  (:func:`refuse_inputs`);
* a failure (a full disk, a read-only folder, an interrupt) removes the
  temporary files and any folder the writer created, and becomes one
  :class:`~branchsim.BranchsimError` naming the path.

Staging folders left by a killed process (whose PID no longer runs) are
removed by the next writer of the same output.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

from .errors import BranchsimError

__all__ = ["atomic_file", "refuse_inputs", "data_inputs", "cannot_write"]

#: Files a data folder can hold that :func:`~branchsim.load_population` reads.
_TABLE_STEMS = ("branches", "members", "member_months")
_META = "population.yaml"


def cannot_write(path, exc: OSError, what: str = "cannot write", *,
                 label: str | None = None) -> BranchsimError:
    """One error naming the path (as ``label``, e.g. ``--out DIR``) and the system's reason.

    The file the system names is added when it is not ``path`` itself, e.g.
    ``--out r: cannot write (No space left on device: r/.tmp/outcome.csv)``.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = re.search(r"\[errno (\d+)\]", reason, re.I)     # pyarrow: "... Detail: [errno 28] ..."
    if not exc.strerror and code:
        reason = os.strerror(int(code.group(1)))
    name = getattr(exc, "filename", None)
    same = (name is None or os.path.abspath(os.fsdecode(name)) == os.path.abspath(os.fspath(path))
            or os.path.basename(os.fsdecode(name)).startswith(f".{Path(path).name}."))   # our temporary
    return BranchsimError(f"{label or path}: {what} ({reason}{'' if same else f': {os.fsdecode(name)}'})")


def _at(flag: str, path) -> str:
    """``--out PATH`` on the command line, ``PATH`` from Python."""
    return f"{flag} {path}" if flag else f"{path}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # exists, owned by someone else
        return True
    return True


def _remove_stale(parent: Path, name: str) -> None:
    """Remove ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` left by processes that no longer run."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(tmp|old)-(\d+)-[0-9a-f]+$")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(2))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()


def _resolved(p) -> Path:
    return Path(os.path.abspath(Path(p).expanduser())).resolve()


def data_inputs(folder) -> list[Path]:
    """The files of a data folder that loading it reads (its tables and ``population.yaml``)."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        entries = []
    return [folder] + sorted(p for p in entries
                             if p.name == _META or (p.stem in _TABLE_STEMS and p.suffix))


def refuse_inputs(out, inputs, *, flag: str = "") -> None:
    """Refuse an ``out`` that is one of ``inputs`` or a folder holding one of them.

    ``inputs`` are paths (None is skipped): files, and folders whose loaded
    files (:func:`data_inputs`) count too. Replacing ``out`` must never
    replace a researcher's own data.

    Examples
    --------
    >>> from branchsim._output import refuse_inputs
    >>> refuse_inputs("results", ["data/examples"])        # a different folder: fine
    >>> try:
    ...     refuse_inputs("data/examples/", ["data/examples"], flag="--out")
    ... except Exception as err:
    ...     print(str(err).split(";")[0])
    --out data/examples/: is an input of this run (data/examples)
    """
    target = _resolved(out)
    for given in inputs:
        if given is None:
            continue
        for path in (data_inputs(given) if Path(given).is_dir() else [Path(given)]):
            p = _resolved(path)
            if p == target or target in p.parents:
                what = "is" if p == target else "holds"
                raise BranchsimError(f"{_at(flag, out)}: {what} an input of this run ({path}); writing there "
                                     f"would replace it, so give another {flag or 'output'}")


@contextlib.contextmanager
def atomic_file(path, *, flag: str = ""):
    """Write one file atomically: yields a temporary path beside ``path``, renamed over it on success.

    On any error the temporary file (and any folder created for it) is
    removed; an :class:`OSError` becomes a :class:`~branchsim.BranchsimError`
    naming ``path``. A ``path`` that is a folder is refused.

    Examples
    --------
    >>> import os, tempfile
    >>> from branchsim._output import atomic_file
    >>> d = tempfile.mkdtemp()
    >>> with atomic_file(os.path.join(d, "a.csv")) as tmp:
    ...     _ = tmp.write_text("x\\n")
    >>> sorted(os.listdir(d))
    ['a.csv']
    """
    path = Path(path)
    if path.is_dir():
        raise BranchsimError(f"{_at(flag, path)}: is a folder; give a file name (e.g. {path / 'out.csv'})")
    parent = Path(os.path.abspath(path)).parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    _remove_stale(parent, path.name)
    tmp = parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(path, exc, label=_at(flag, path)) from None
        try:
            yield tmp
            os.replace(tmp, path)
        except OSError as exc:
            raise cannot_write(path, exc, label=_at(flag, path)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _remove_created(created)
        raise


def _remove_created(created: list[Path]) -> None:
    """Remove folders this writer created (nearest first), only while they are empty."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            break


def _check_out(out: Path, allowed, *, flag: str = "", writer: str = "a report") -> None:
    """Refuse an ``out`` that is a file, or a folder holding files this writer did not make."""
    if out.exists() and not out.is_dir():
        raise BranchsimError(f"{_at(flag, out)}: exists and is not a folder; give a new or empty folder")
    if out.is_dir():
        try:
            names = [p.name for p in out.iterdir()]
        except OSError as exc:
            raise cannot_write(out, exc, "cannot read the folder", label=_at(flag, out)) from None
        foreign = sorted(n for n in names if n not in allowed)
        if foreign:
            raise BranchsimError(f"{_at(flag, out)}: holds files {writer} did not write ({', '.join(foreign[:5])}"
                                 f"{', ...' if len(foreign) > 5 else ''}); it would be replaced whole, so give "
                                 f"a new or empty folder")


class _Staging:
    """A temporary folder beside ``out`` that becomes ``out`` on :meth:`commit`.

    Used as a context manager: on an error (an :class:`OSError` such as a full
    disk becomes a :class:`~branchsim.BranchsimError` naming ``out``) the
    temporary folder and any parent folder it had to create are removed and
    ``out`` is left as it was. ``inputs`` (paths) are refused as ``out``
    (:func:`refuse_inputs`).

    Examples
    --------
    >>> import os, tempfile
    >>> from branchsim._output import _Staging
    >>> d = tempfile.mkdtemp()
    >>> with _Staging(os.path.join(d, "out"), allowed={"a.txt"}) as stage:
    ...     stage.write_text("a.txt", "hello\\n")
    ...     _ = stage.commit()
    >>> sorted(os.listdir(d)), sorted(os.listdir(os.path.join(d, "out")))
    (['out'], ['a.txt'])
    """

    def __init__(self, out: str | os.PathLike, allowed, *, inputs=(), flag: str = "",
                 writer: str = "a report"):
        self.out = Path(out)
        self.flag = flag
        refuse_inputs(self.out, inputs, flag=flag)
        _check_out(self.out, set(allowed) | {"manifest.json"}, flag=flag, writer=writer)
        parent = self.out.absolute().parent
        self._created = [p for p in (parent, *parent.parents) if not p.exists()]
        base = parent.parents[len(self._created) - 1] if self._created else parent
        if not base.is_dir():
            raise BranchsimError(f"{_at(flag, self.out)}: cannot write here, {base} is a file, not a folder")
        _remove_stale(parent, self.out.name)
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp = parent / f".{self.out.name}.tmp-{tag}"
        self._old = parent / f".{self.out.name}.old-{tag}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir()
        except OSError as exc:
            self._cleanup()
            raise cannot_write(self.out, exc, label=_at(self.flag, self.out)) from None

    def __enter__(self) -> "_Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._cleanup(failed=exc_type is not None)
        if isinstance(exc, OSError):
            raise cannot_write(self.out, exc, "cannot write the output", label=_at(self.flag, self.out)) from None

    def write_csv(self, name: str, df, *, index: bool = False) -> None:
        df.to_csv(self.tmp / name, index=index, lineterminator="\n")

    def write_text(self, name: str, text: str) -> None:
        (self.tmp / name).write_text(text, encoding="utf-8", newline="\n")

    def write_manifest(self, manifest: dict) -> None:
        """Write ``manifest.json`` (:mod:`branchsim.manifest`) recording the SHA-256 of every file written so far."""
        from .manifest import MANIFEST, dumps, with_outputs
        files = [(p.name, p) for p in self.tmp.iterdir() if p.is_file() and p.name != MANIFEST]
        self.write_text(MANIFEST, dumps(with_outputs(manifest, files)))

    def commit(self) -> Path:
        """Move the finished folder into place (replacing an earlier one whole)."""
        if self.out.exists():
            os.rename(self.out, self._old)
            try:
                os.rename(self.tmp, self.out)
            except OSError:
                os.rename(self._old, self.out)
                raise
            shutil.rmtree(self._old, ignore_errors=True)
        else:
            os.rename(self.tmp, self.out)
        return self.out

    def _cleanup(self, failed: bool = True) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
        if failed:
            _remove_created(self._created)
