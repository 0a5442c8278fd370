"""The output folder of a national run: locked, checked, cleaned up on failure.

:func:`branchsim.national_run` writes chunk by chunk into one folder. This
module keeps that folder sound: one run at a time (``.lock``, an advisory
``flock``), a ``manifest.json`` read with checks (a damaged one is an error
naming it), temporary files of killed runs removed on resume, and a fresh
run that fails before finishing a chunk leaving nothing behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from ._output import cannot_write
from .errors import BranchsimError

__all__ = ["_RunFolder", "_atomic", "_API_NAMES", "_CLI_NAMES"]


@contextlib.contextmanager
def _atomic(path: Path):
    """A temporary name beside ``path``, renamed over it at the end; removed on any failure."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise



#: How messages name the run's settings: the keywords of :func:`national_run`, or the command's flags.
_API_NAMES = {"resume": "resume=True", "out": "out_dir", "branches": "n_branches", "members": "n_members",
              "chunk": "chunk_size", "workers": "workers"}
_CLI_NAMES = {"resume": "--resume", "out": "--out", "branches": "--branches", "members": "--members",
              "chunk": "--chunk-size", "workers": "--workers"}

_SUBDIRS = ("branches", "members", "summaries")
_MANIFEST, _LOCK = "manifest.json", ".lock"
_STALE = re.compile(r"^\.(chunk-\d{6}\.(parquet|json)|[a-z_]+\.json)\.tmp-\d+$")


class _RunFolder:
    """The output folder of a national run: locked, checked, its manifest kept; cleaned up on failure.

    Opening it takes ``out/.lock`` (refused if another run holds it), reads
    and checks ``manifest.json`` (resume rules, same settings), removes
    temporary files a killed run left and writes the manifest. Closing it
    after a failure removes everything a fresh run created if no chunk was
    finished, and otherwise keeps the finished chunks for a resume.
    """

    def __init__(self, out: Path, settings: dict, n_chunks: int, resume: bool, names: dict,
                 extra: dict | None = None):
        self.out, self.settings, self.n_chunks, self.names = out, settings, n_chunks, names
        self.extra = dict(extra or {})        # small JSON files beside the manifest (e.g. codebook.json)
        self.run: dict | None = None          # the run's provenance (branchsim.manifest), once it is complete
        self.at = f"{names['out']} {out}"
        if out.exists() and not out.is_dir():
            raise BranchsimError(f"{self.at}: exists and is not a folder; give a new or empty folder")
        absolute = Path(os.path.abspath(out))
        self._created = [p for p in (absolute, *absolute.parents) if not p.exists()]
        self._made: list[Path] = []          # what this run added inside an existing folder
        self._fd = None
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._remove_created()
            raise cannot_write(self.out, exc, label=self.at) from None
        try:
            self._lock()
            self.done, self.fresh = self._read(resume)
            self._remove_stale()
            for sub in _SUBDIRS:
                if not (out / sub).is_dir():
                    (out / sub).mkdir()
                    self._made.append(out / sub)
            if not (out / _MANIFEST).exists():
                self._made.append(out / _MANIFEST)
            for name, doc in self.extra.items():
                if not (out / name).exists():
                    self._made.append(out / name)
                with _atomic(out / name) as tmp:
                    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
            self.write_manifest()
        except BaseException as exc:
            self.done = set()
            self.close(failed=True)
            if isinstance(exc, OSError):
                raise cannot_write(self.out, exc, label=self.at) from None
            raise

    # -- the lock ----------------------------------------------------------------------------------------
    def _lock(self) -> None:
        import fcntl
        path = self.out / _LOCK
        for _ in range(10):
            existed = path.exists()
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise BranchsimError(f"{self.at}: another national run is writing there (it holds {path}); "
                                     f"wait for it to finish, or stop it, then run again with "
                                     f"{self.names['resume']}") from None
            except OSError:
                os.close(fd)
                raise
            try:                      # the holder may have removed the file as we opened it: retry
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                if not existed:
                    self._made.append(path)
                return
            os.close(fd)
        raise BranchsimError(f"{self.at}: cannot take {path}; another run keeps replacing it")

    def _unlock(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                (self.out / _LOCK).unlink()     # while still holding it (see _lock)
            os.close(self._fd)
            self._fd = None

    # -- the manifest ------------------------------------------------------------------------------------
    def _read(self, resume: bool) -> tuple[set, bool]:
        """The chunks already finished, and whether this run starts afresh."""
        out, names = self.out, self.names
        manifest = out / _MANIFEST
        if not manifest.exists():
            foreign = sorted(p.name for p in out.iterdir()
                             if p.name not in (*_SUBDIRS, _LOCK, *self.extra) and not _STALE.match(p.name))
            if foreign:
                raise BranchsimError(f"{self.at}: holds files a national run did not write "
                                     f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                                     f"give a new or empty folder")
            return set(), True
        old = _read_manifest(manifest, names)
        done = {i for i in old["done"] if i < self.n_chunks and self._finished(i)}
        if not done:                         # nothing finished: nothing to keep, start afresh
            return set(), True
        if not resume:
            raise BranchsimError(f"{self.at}: already holds a national run ({len(done)} of {old['chunks']} "
                                 f"chunks finished); pass {names['resume']} to continue it, or choose a new "
                                 f"or empty folder")
        if old["settings"] != self.settings:
            changed = [k for k in self.settings if old["settings"].get(k) != self.settings[k]]
            raise BranchsimError(f"{self.at}: the run there used different settings ({', '.join(changed)}); "
                                 f"{names['resume']} needs the same seed, scale, chunk size, policy and "
                                 f"parameters")
        return done, False

    def _finished(self, i: int) -> bool:
        """Chunk ``i`` has both Parquet files and a readable summary."""
        name = f"chunk-{i:06d}"
        if not all((self.out / sub / f"{name}.parquet").is_file() for sub in ("branches", "members")):
            return False
        try:
            summary = json.loads((self.out / "summaries" / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(summary, dict) and "branches" in summary

    def _remove_stale(self) -> None:
        """Temporary files of killed runs (this run holds the lock: no one else is writing)."""
        for folder in (self.out, *(self.out / sub for sub in _SUBDIRS)):
            if folder.is_dir():
                for p in folder.iterdir():
                    if _STALE.match(p.name):
                        p.unlink()

    def write_manifest(self) -> None:
        with _atomic(self.out / _MANIFEST) as tmp:
            doc = {"settings": self.settings, "chunks": self.n_chunks, "done": sorted(self.done)}
            if self.run is not None:
                doc["run"] = self.run
            tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")

    def complete(self, manifest: dict) -> None:
        """Every chunk is finished: record the run's manifest with the SHA-256 of every file in the folder."""
        from .manifest import with_outputs
        files = sorted((p.relative_to(self.out).as_posix(), p) for p in self.out.rglob("*")
                       if p.is_file() and p.name not in (_MANIFEST, _LOCK) and not _STALE.match(p.name))
        self.run = with_outputs(manifest, files)
        self.write_manifest()

    def finished(self, index: int) -> None:
        self.done.add(index)
        self.write_manifest()

    # -- closing -----------------------------------------------------------------------------------------
    def close(self, failed: bool) -> None:
        """Release the lock; after a failure that finished no chunk, remove what this run created."""
        if failed and not self.done:
            for p in reversed(self._made):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                elif p.name != _LOCK:
                    with contextlib.suppress(OSError):
                        p.unlink()
        self._unlock()
        if failed and not self.done:
            self._remove_created()

    def _remove_created(self) -> None:
        for p in self._created:             # nearest first; only folders left empty
            try:
                p.rmdir()
            except OSError:
                break

    def fault(self, exc: BaseException) -> BaseException | None:
        """What to raise for a failure while chunks run (None: re-raise ``exc`` as it is).

        A full disk or an unwritable folder becomes one error; an interrupt
        stays an interrupt, saying what was kept.
        """
        kept = (f"{len(self.done)} of {self.n_chunks} chunks are finished there; run again with "
                f"{self.names['resume']} to continue" if self.done else "nothing was kept")
        if isinstance(exc, KeyboardInterrupt):
            return KeyboardInterrupt(f"{self.at}: {kept}")
        if not isinstance(exc, OSError):
            return None
        return BranchsimError(f"{cannot_write(self.out, exc, 'cannot write the run', label=self.at)}; {kept}")


def _read_manifest(path: Path, names: dict) -> dict:
    """``manifest.json``, checked: a damaged one is an error naming it, never a ``JSONDecodeError``."""
    afresh = f"it cannot be resumed: start again without {names['resume']} in a new or empty folder"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise cannot_write(path, exc, "cannot read the manifest") from None
    except UnicodeDecodeError:
        raise BranchsimError(f"{path}: damaged (not text); {afresh}") from None
    except json.JSONDecodeError as exc:
        raise BranchsimError(f"{path}: damaged (not valid JSON at line {exc.lineno}, column {exc.colno}: cut "
                             f"short?); {afresh}") from None
    ok = (isinstance(doc, dict) and isinstance(doc.get("settings"), dict)
          and isinstance(doc.get("chunks"), int) and isinstance(doc.get("done"), list)
          and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in doc["done"]))
    if not ok:
        raise BranchsimError(f"{path}: damaged (not the manifest of a national run: needs settings, chunks "
                             f"and done); {afresh}")
    return doc
