"""The Population container, its files, and evaluation of a population.

A population is three tidy tables (see the README's data dictionary):
``branches``, ``members`` and ``member_months``. Generated populations keep
their truth (``true_quality``) beside the measurements, so every analysis
can report accuracy. :func:`load_population` reads a researcher's own tables
(CSV, Parquet, Excel or DataFrames) and reports every defect at once.
"""
from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import DataError
from .evaluate import Result, evaluate_checked
from .policy import Policy
from .tables import check_tables

__all__ = ["Population", "load_population", "evaluate"]

_TABLES = ("branches", "members", "member_months")
_READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".xlsx": pd.read_excel,
            ".xls": pd.read_excel}


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
                 member_months: pd.DataFrame | None = None, *, seed=None, params=None, source: str = ""):
        self.branches = branches
        self.members = members
        self.member_months = member_months
        self.seed = seed
        self.params = params
        self.source = source or ("generated" if seed is not None else "tables")

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


def _read(obj, name: str, folder: Path | None):
    """A table from a DataFrame, a file path, or ``folder/name.{parquet,csv,xlsx}``."""
    if obj is None and folder is not None:
        for suffix in (".parquet", ".csv", ".xlsx"):
            if (folder / f"{name}{suffix}").exists():
                obj = folder / f"{name}{suffix}"
                break
        else:
            return None, None
    if obj is None or isinstance(obj, pd.DataFrame):
        return obj, name
    path = Path(obj)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; allowed: .csv, .parquet, .xlsx")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        return reader(path), str(path)
    except Exception as exc:  # a reader's own error, reported with the file name
        raise DataError(f"{path}: cannot be read as {path.suffix} ({type(exc).__name__}: {exc})") from None


def load_population(folder=None, *, branches=None, members=None, member_months=None,
                    policy: Policy | None = None) -> Population:
    """Load a researcher's tables (folder, files or DataFrames) and check them.

    Every defect — a missing column, a wrong type, NaN where a value is
    required, values out of range, duplicate ids, a member of an unknown
    branch, an unknown branch type — is reported in one :class:`DataError`
    naming file, column, rows and what is allowed. The caller's objects are
    never modified.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.load_population(bs.data_path("examples"))
    >>> len(pop.branches), len(pop.members)
    (12, 60)
    """
    policy = Policy.load() if policy is None else policy
    folder = None if folder is None else Path(folder)
    if folder is not None and not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    b, nb = _read(branches, "branches", folder)
    if b is None:
        raise DataError(f"{folder}: no branches table (branches.parquet, .csv or .xlsx)")
    m, nm = _read(members, "members", folder)
    mm, nmm = _read(member_months, "member_months", folder)
    b, m, mm = check_tables(policy, b, m, mm, names={"branches": nb, "members": nm or "members",
                                                      "member_months": nmm or "member_months"})
    seed = None
    meta_path = folder / "population.yaml" if folder is not None else None
    params = None
    source = str(folder) if folder is not None else "tables"
    if meta_path is not None and meta_path.exists():
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        if meta.get("seed_entropy") is not None:
            seed = np.random.SeedSequence(int(meta["seed_entropy"]), spawn_key=tuple(meta["seed_spawn_key"]))
        if meta.get("generator"):
            from .model import GeneratorParams, _values
            params = GeneratorParams(_values(meta["generator"]), meta["generator"])
        source = meta.get("source", source)
    return Population(b, m, mm, seed=seed, params=params, source=source)


def evaluate(pop: Population, policy: Policy | None = None) -> Result:
    """Evaluate a population under a policy (default: the baseline).

    Returns a :class:`Result` with per-branch and per-member frames, star
    counts beside the published figures, grades and consequences.

    Examples
    --------
    >>> import branchsim as bs
    >>> r = bs.evaluate(bs.generate(seed=3, n_branches=200))
    >>> int(r.star_counts().drop("weak")["count"].sum())
    200
    """
    if not isinstance(pop, Population):
        raise DataError(f"evaluate() takes a Population (from generate or load_population), "
                        f"got {type(pop).__name__}")
    policy = Policy.load() if policy is None else policy
    if not isinstance(policy, Policy):
        raise DataError(f"policy must be a branchsim.Policy, got {type(policy).__name__}")
    from .model import truth
    return evaluate_checked(policy, pop.branches, pop.members, pop.member_months,
                            truth=truth(pop, policy))
