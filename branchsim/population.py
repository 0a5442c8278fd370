"""The Population container, its files, and evaluation of a population.

A population is three tidy tables (see the README's data dictionary):
``branches``, ``members`` and ``member_months``. Generated populations keep
their truth (``true_quality``) beside the measurements, so every analysis
can report accuracy. :func:`load_population` reads a researcher's own tables
(CSV, Parquet, Excel or DataFrames) and reports every defect at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import csv
import html
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import DataError
from .manifest import recorded
from .evaluate import Result, evaluate_checked
from .policy import Policy, as_policy
from .tables import check_tables

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping
    from ._types import TableLike
    from .params import GeneratorParams
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["Population", "load_population", "evaluate"]

_TABLES = ("branches", "members", "member_months")


class Population:
    """Branches, members and member-month records of one year.

    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=40)
    >>> pop.has_truth, len(pop.member_months) == 12 * len(pop.members)
    (True, True)

    Attributes
    ----------
    branches, members, member_months : DataFrame
        ``members`` and ``member_months`` are None for a branch-only population.
    seed : SeedSequence or None
        The seed a generated population was drawn from.
    """

    def __init__(self, branches: pd.DataFrame, members: pd.DataFrame | None = None,
                 member_months: pd.DataFrame | None = None, *, seed: np.random.SeedSequence | None = None,
                 params: GeneratorParams | None = None, source: str = "") -> None:
        self.branches = branches
        self.members = members
        self.member_months = member_months
        self.seed = seed
        self.params = params
        self.source = source or ("generated" if seed is not None else "tables")
        #: The files the tables were read from (``path``, ``bytes``, ``sha256``), for run manifests.
        self.inputs: list[dict] = []

    @property
    def has_truth(self) -> bool:
        return "true_quality" in self.branches.columns

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the tables as Parquet (plus ``population.yaml``) into ``folder``.

        Every file is written to a temporary folder first and then moved into
        place, so a reader never sees half a file. ``folder`` must be new,
        empty, or hold a saved population (whose files are replaced); a folder
        with other files is refused rather than touched. ``load_population``
        gives back identical tables, truth included.
        """
        folder = Path(folder)
        own = {f"{name}.parquet" for name in _TABLES} | {"population.yaml"}
        if folder.exists():
            if not folder.is_dir():
                raise DataError(f"{folder}: exists and is not a folder")
            others = sorted(p.name for p in folder.iterdir() if p.name not in own)
            if others:
                raise DataError(f"{folder}: holds other files ({', '.join(others[:5])}); save a population "
                                f"into a new or empty folder, or one that holds only a saved population")
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            for name in _TABLES:
                df = getattr(self, name)
                if df is not None:
                    df.to_parquet(tmp / f"{name}.parquet", index=False)
            meta = {"source": self.source,
                    "seed_entropy": None if self.seed is None else str(self.seed.entropy),
                    "seed_spawn_key": None if self.seed is None else list(self.seed.spawn_key),
                    "generator": None if self.params is None else self.params.document}
            (tmp / "population.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False),
                                                 encoding="utf-8")
            folder.mkdir(parents=True, exist_ok=True)
            for name in own:                  # one file at a time, each replaced atomically
                if (tmp / name).exists():
                    os.replace(tmp / name, folder / name)
                elif (folder / name).exists():   # e.g. members of an earlier save, now branch-only
                    (folder / name).unlink()
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return folder

    def _summary(self) -> list[tuple[str, str]]:
        b = self.branches
        rows = [("branches", f"{len(b):,}"),
                ("types", ", ".join(f"{k} {v}" for k, v in b["type"].value_counts().items()))]
        if self.members is not None:
            rows += [("members", f"{len(self.members):,} ({len(self.member_months):,} member-months)"),
                     ("categories", ", ".join(f"{k} {v}" for k, v in
                                              self.members["category"].value_counts().items()))]
        rows += [("source", self.source), ("truth", "yes (true_quality)" if self.has_truth else "no")]
        return rows

    def __repr__(self) -> str:
        return "Population\n" + "\n".join(f"  {k:<11} {v}" for k, v in self._summary())

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._summary())
        return f"<div><b>Population</b><table>{rows}</table></div>"


def _find(folder: Path, name: str) -> Path | None:
    """``folder/name.{parquet,csv,xlsx}``; two of them at once is ambiguous, and refused."""
    found = [folder / f"{name}{suffix}" for suffix in (".parquet", ".csv", ".xlsx", ".xls")
             if (folder / f"{name}{suffix}").exists()]
    if len(found) > 1:
        raise DataError(f"{folder}: holds both {' and '.join(p.name for p in found)}; keep one {name} table "
                        f"(which one to read would be a guess)")
    return found[0] if found else None


def _csv_header(path: Path, encoding: str) -> list[str]:
    """The header line of a CSV file, read as text (pandas would rename a repeated name silently)."""
    with open(path, newline="", encoding=encoding) as fh:
        return next(csv.reader(fh), [])


def _read_csv(path: Path, encoding: str) -> pd.DataFrame:
    header = _csv_header(path, encoding)
    if len(header) == 1:
        for sep, what in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                raise DataError(f"{path}: the columns are separated by {what} (header "
                                f"{header[0][:60]!r}); a .csv table must be comma-separated: save it "
                                f"again with commas (in Excel: CSV UTF-8, comma delimited)")
    _refuse_repeated(path, header)
    return pd.read_csv(path, encoding=encoding)


def _refuse_repeated(path: Path, header: Iterable[object]) -> None:
    names = [str(h).strip() for h in header]
    seen = sorted({n for n in names if names.count(n) > 1})
    if seen:
        cols = "; ".join(f"{n!r} in columns {', '.join(str(i + 1) for i, h in enumerate(names) if h == n)}"
                         for n in seen[:5])
        raise DataError(f"{path}: the header repeats {cols}; each column name must appear once")


def _read_excel(path: Path, encoding: str) -> pd.DataFrame:
    _refuse_repeated(path, pd.read_excel(path, header=None, nrows=1).iloc[0].tolist()
                     if path.stat().st_size else [])
    return pd.read_excel(path)


def _read_parquet(path: Path, encoding: str) -> pd.DataFrame:
    import pyarrow.parquet as pq
    names = pq.read_schema(path).names
    _refuse_repeated(path, names)
    # One block per column, and Arrow's buffers freed as the columns are made:
    # a large table needs about its own size to load, not twice.
    return pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True)


_READERS = {".csv": _read_csv, ".parquet": _read_parquet, ".xlsx": _read_excel, ".xls": _read_excel}


def _read(obj: TableLike | None, name: str, folder: Path | None,
          encoding: str = "utf-8-sig") -> tuple[object, str | None]:
    """A table from a DataFrame, records, a file path, or ``folder/name.{parquet,csv,xlsx}``."""
    if obj is None and folder is not None:
        obj = _find(folder, name)
        if obj is None:
            return None, None
    if not isinstance(obj, (str, os.PathLike)):
        return obj, name            # a DataFrame, records or a dict of columns: checked by check_tables
    path = Path(obj)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; allowed: .csv, .parquet, .xlsx")
    if not path.is_file():
        raise DataError(f"{path}: {'is a folder, not a table file' if path.is_dir() else 'no such file'}")
    try:
        return reader(path, encoding), str(path)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        utf8 = encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8")
        hint = ("save it as UTF-8, or pass encoding='gbk' (or 'big5', 'gb18030': the encoding it was "
                "saved in; on the command line --encoding gbk)" if utf8
                else "pass the encoding it was saved in, or save it as UTF-8")
        shown = "UTF-8" if utf8 else encoding
        with open(path, "rb") as fh:
            if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):     # Excel's "Unicode text" export
                hint = "it is UTF-16 (Excel's 'Unicode text'): pass encoding='utf-16' (--encoding utf-16), or save it as CSV UTF-8"
        raise DataError(f"{path}: is not {shown} text (byte 0x{exc.object[exc.start]:02x} at byte "
                        f"{exc.start}); {hint}") from None
    except LookupError:
        raise DataError(f"encoding={encoding!r}: not a text encoding Python knows (e.g. 'utf-8', 'gbk', "
                        f"'big5')") from None
    except Exception as exc:  # a reader's own error, reported with the file name
        raise DataError(f"{path}: cannot be read as {path.suffix} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def _whole(value: object) -> int | None:
    """A whole number >= 0 from YAML (an int, or digits as text as ``save`` writes), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _read_meta(path: Path) -> tuple:
    """``(seed, params, source)`` from a saved population's ``population.yaml``, checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text; it is written by Population.save") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise DataError(f"{path}: not valid YAML{at}; it is written by Population.save") from None
    except RecursionError:
        raise DataError(f"{path}: nested too deep to be a population.yaml") from None
    meta = {} if meta is None else meta
    keys = "source, seed_entropy, seed_spawn_key, generator"
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must be a mapping ({keys}); got a {type(meta).__name__}")
    problems = []
    seed = None
    entropy = meta.get("seed_entropy")
    if entropy is not None:
        spawn = meta.get("seed_spawn_key")
        if _whole(entropy) is None:
            problems.append(f"seed_entropy: {str(entropy)[:40]!r} is not a whole number >= 0")
        if "seed_spawn_key" not in meta:
            problems.append("seed_spawn_key: missing; a seed needs its spawn key (a list of whole numbers, "
                            "[] for a root seed)")
        elif not isinstance(spawn, list) or any(_whole(k) is None for k in spawn):
            problems.append(f"seed_spawn_key: {str(spawn)[:40]!r} is not a list of whole numbers >= 0")
        if not problems:
            seed = np.random.SeedSequence(_whole(entropy), spawn_key=tuple(_whole(k) for k in spawn))
    source = meta.get("source")
    if source is not None and not isinstance(source, str):
        problems.append(f"source: must be a text, got {type(source).__name__}")
    params = None
    doc = meta.get("generator")
    if doc is not None and not isinstance(doc, dict):
        problems.append(f"generator: must be a mapping of generator parameters, got {type(doc).__name__}")
    elif doc:
        problems += _generator_problems(doc)
        if not problems:
            from .params import GeneratorParams, _values
            params = GeneratorParams(_values(doc), doc)
    if problems:
        raise DataError(problems, where=str(path))
    return seed, params, source


#: Generator blocks whose entries name a scheme's own types, classes and facts (any names).
_OPEN_BLOCKS = ("types.", "categories.", "facts.")


def _generator_problems(doc: dict) -> list[str]:
    """Why a saved ``generator`` block is not a full set of generator parameters (empty if it is)."""
    from .params import _TEXT, GeneratorParams, _leaf_paths, _param_problem, _values
    try:
        values = _values(doc)
        got = {p for p in _leaf_paths(values) if p not in _TEXT}
    except (AttributeError, TypeError, KeyError):
        return ["generator: not the generator parameters Population.save writes"]
    want = {p for p in _leaf_paths(GeneratorParams.load().values) if p not in _TEXT
            and not p.startswith(_OPEN_BLOCKS)}
    known = want | {p for p in got if p.startswith(_OPEN_BLOCKS)}
    out = []
    if want - got:
        out.append(f"generator: not the generator parameters Population.save writes (missing "
                   f"{', '.join(sorted(want - got)[:3])}{' ...' if len(want - got) > 3 else ''})")
    if got - known:
        out.append(f"generator: unknown parameter(s) {', '.join(sorted(got - known)[:3])}")
    if not out:
        params = GeneratorParams(values, doc)
        out += [f"generator.{p}" for p in (_param_problem(path, params.get(path)) for path in sorted(got)) if p]
    return out


def load_population(folder: PathLike | None = None, *, branches: TableLike | None = None,
                    members: TableLike | None = None, member_months: TableLike | None = None,
                    policy: Policy | str | os.PathLike | None = None,
                    encoding: str = "utf-8-sig") -> Population:
    """Load a researcher's tables (folder, files or DataFrames) and check them.

    Every defect — a missing column, a wrong type, NaN where a value is
    required, values out of range, duplicate ids, a member of an unknown
    branch, an unknown branch type — is reported in one :class:`DataError`
    naming file, column, rows and what is allowed. The caller's objects are
    never modified.

    Parameters
    ----------
    folder : path, optional
        A folder holding ``branches`` (and ``members`` and ``member_months``)
        as ``.parquet``, ``.csv`` or ``.xlsx``, one file per table (two
        formats of one table is refused as ambiguous), and optionally the
        ``population.yaml`` that :meth:`Population.save` writes.
    branches, members, member_months : DataFrame, list of dicts, dict of columns or path, optional
        Tables given one by one (instead of, or overriding, the folder's).
    policy : Policy or path, optional
        The rules whose facts the tables must hold (default: the baseline);
        a path is read with :meth:`Policy.load`.
    encoding : str
        Text encoding of CSV files. The default reads UTF-8, with or without
        a byte-order mark; an Excel export on a Chinese-language system is
        often ``"gbk"`` (mainland) or ``"big5"`` (Taiwan, Hong Kong). A file
        that is not in ``encoding`` is refused with a message saying so. CSV
        columns must be separated by commas.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> len(pop.branches), len(pop.members)
    (12, 60)
    """
    given_policy, policy = policy, as_policy(policy)
    if not isinstance(encoding, str):
        raise DataError(f"encoding must be a text such as 'utf-8' or 'gbk', got {type(encoding).__name__}")
    folder = None if folder is None else Path(folder)
    if folder is not None and not folder.is_dir():
        raise DataError(f"{folder}: {'no such folder' if not folder.exists() else 'not a folder'}")
    b, nb = _read(branches, "branches", folder, encoding)
    if b is None:
        raise DataError(f"{folder}: no branches table (branches.parquet, .csv or .xlsx)")
    m, nm = _read(members, "members", folder, encoding)
    mm, nmm = _read(member_months, "member_months", folder, encoding)
    try:
        b, m, mm = check_tables(policy, b, m, mm, names={"branches": nb, "members": nm or "members",
                                                          "member_months": nmm or "member_months"})
    except DataError as exc:
        if given_policy is not None:
            raise
        # The tables were checked against the default policy: its facts decide the columns, so say so.
        problems = list(exc.problems)
        problems[-1] += (f" (checked against the default policy {policy.name!r}: pass policy= for another "
                         f"scheme's tables)")
        raise DataError(problems, where=exc.where) from None
    seed = params = None
    source = str(folder) if folder is not None else "tables"
    meta_path = folder / "population.yaml" if folder is not None else None
    if meta_path is not None and meta_path.exists():
        seed, params, given = _read_meta(meta_path)
        source = given or source
    pop = Population(b, m, mm, seed=seed, params=params, source=source)
    from .manifest import file_records        # the files read, with their hashes: a run's manifest records them
    pop.inputs = file_records([p for p in (nb, nm, nmm, meta_path) if isinstance(p, (str, os.PathLike))
                               and Path(p).is_file()])
    return pop


@recorded("evaluate", full=True)
def evaluate(pop: Population, policy: Policy | str | os.PathLike | None = None, *,
             chunk_size: int | None = None, previous: Result | None = None) -> Result:
    """Evaluate a population under a policy (default: the baseline; a path is read as a policy file).

    Returns a :class:`Result` with per-branch and per-member frames, counts
    per level (beside the scheme's published figures at their scale), grades
    and consequences. ``chunk_size`` branches (with their members and
    member-periods) are scored at a time: a memory bound that never changes a
    number. ``previous`` (last year's :class:`Result`) gives a design's
    guardrail last year's cut points.

    Examples
    --------
    >>> import branchsim as bs
    >>> r = bs.evaluate(bs.generate(seed=3, n_branches=200))
    >>> int(r.level_counts().loc[r.policy.levels, "count"].sum())
    200
    """
    if not isinstance(pop, Population):
        raise DataError(f"evaluate() takes a Population (from generate or load_population), "
                        f"got {type(pop).__name__}")
    policy = as_policy(policy)
    from .truth import truth
    return evaluate_checked(policy, pop.branches, pop.members, pop.member_months,
                            truth=truth(pop, policy), chunk_size=chunk_size, previous=previous)


def member_truth(pop: Population, policy: Policy) -> np.ndarray | None:
    """The grade each member's true score earns (None without the truth; None for an exempt member).

    The true score is the member's record with every fact at its expectation
    (:func:`branchsim.measurement.member_true_scores`), taken as its appraisal
    too; member vetoes fire on the state facts of the members table only, as
    :func:`branchsim.dynamics.simulate` grades the truth.
    """
    m = pop.members
    if not (pop.has_truth and pop.params is not None and pop.seed is not None and m is not None
            and "true_quality" in m.columns and policy.has_members):
        return None
    from .evaluate import member_outcome, member_profiles
    from .measurement import _indicator_offsets, member_true_scores
    from .scoring import type_codes
    from .tables import positions
    scheme = policy.scheme
    ms = scheme.member
    b = pop.branches
    branch_type = type_codes(b["type"], ms.types, policy.name)
    mb = positions(b["branch_id"], m["branch_id"])
    profile, class_idx = member_profiles(ms, branch_type[mb], m["category"])
    off = _indicator_offsets(pop.seed, ms.sheet, pop.params, 1)
    true = member_true_scores(m["true_quality"].to_numpy(float), profile, ms, off)
    state = [f for f, e in ms.fact_entries.items() if e.get("state")]
    veto = [m[f].to_numpy(float) if f in state and f in m.columns else np.full(len(m), np.nan)
            for f in ms.vetoes.fact]
    groups = names = None
    if ms.rating.design != "cuts" and ms.rating.peer_groups == "class" and class_idx is not None:
        groups, names = class_idx, list(ms.classes)
    elif ms.rating.design != "cuts" and ms.rating.peer_groups == "type":
        groups, names = branch_type[mb], list(ms.types)
    out = member_outcome(true, true, profile, ms, scheme,
                         veto_values=np.column_stack(veto) if veto else np.zeros((len(m), 0)),
                         groups=groups, group_names=names)
    return ms.grades.id_of(out["grade"])
