"""The data dictionary of population tables, and the checks that enforce it.

Three tables describe one year of a population (see the README's data
dictionary): ``branches`` (one row per branch), ``members`` (one row per
member) and ``member_months`` (one row per member and month). Which fact
columns they need follows from the policy: every indicator names its fact.

:func:`check_tables` reports every defect at once — missing columns, wrong
types, NaN, values out of range, duplicate ids, members of unknown branches,
unknown branch types — naming the table, column and rows. It never modifies
the caller's frames; it returns checked copies with canonical dtypes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError
from .policy import Policy
from .scoring import STRUCTURE_LEVELS

__all__ = ["Column", "branch_columns", "member_columns", "member_month_columns", "check_tables"]

SURVEY_COLUMNS = ("survey_satisfied", "survey_basic", "survey_dissatisfied")


@dataclass(frozen=True)
class Column:
    """One column of the data dictionary."""

    name: str
    kind: str                      # id | text | int | number | choice
    meaning: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = True
    default: object = None

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = {"int": "a whole number", "number": "a number", "id": "a text id",
                "text": "a text"}.get(self.kind, self.kind)
        if self.lo is not None and self.hi is not None:
            return f"{what} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{what} >= {self.lo:g}"
        return what


def _fact_column(ind: dict) -> Column:
    rule = ind["rule"]
    if rule == "binary":
        return Column(ind["fact"], "number", f"{ind['label']}: 1 if met, 0 if not", 0, 1)
    if rule == "proportion":
        return Column(ind["fact"], "number", f"{ind['label']}: {ind.get('unit', 'share, 0-1')}", 0, 1)
    return Column(ind["fact"], "number", f"{ind['label']}: {ind.get('unit', 'count')}", 0)


def branch_columns(policy: Policy) -> list[Column]:
    """Columns of the branches table under ``policy``."""
    cols = [
        Column("branch_id", "id", "unique id of the branch"),
        Column("type", "choice", "branch type", choices=tuple(policy.branch_types)),
        Column("level", "choice", "current organisation level", choices=STRUCTURE_LEVELS),
        Column("n_members", "int", "number of full members", 0),
        Column("parent", "text", "parent organisation", required=False, default=""),
        Column("prev_weak", "int", "consecutive years designated weak just before this one", 0,
               required=False, default=0),
        Column("survey_satisfied", "int", "survey answers 'satisfied' (滿意)", 0),
        Column("survey_basic", "int", "survey answers 'basically satisfied' (基本滿意)", 0),
        Column("survey_dissatisfied", "int", "survey answers 'dissatisfied' (不滿意)", 0),
        Column("true_quality", "number", "latent true quality (generated populations only)",
               required=False),
    ]
    return cols + [_fact_column(i) for i in policy.branch_indicators.values()]


def member_columns(policy: Policy) -> list[Column]:
    return [
        Column("member_id", "id", "unique id of the member"),
        Column("branch_id", "id", "the member's branch (must be in the branches table)"),
        Column("category", "text", "member category (in_service, retired, mobile, ...)"),
        Column("appraisal", "number", "year-end appraisal score", 0, 100),
        Column("true_quality", "number", "latent true quality (generated populations only)",
               required=False),
    ]


def member_month_columns(policy: Policy) -> list[Column]:
    cols = [
        Column("member_id", "id", "the member (must be in the members table)"),
        Column("month", "int", "month of the record", 1, 12),
    ]
    return cols + [_fact_column(i) for i in policy.member_indicators.values()]


def _rows(mask: np.ndarray, index: pd.Index, limit: int = 8) -> str:
    """Row labels as 1-based data rows (the line after the header is row 1)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(p + 1) for p in pos[:limit])
    more = f" and {len(pos) - limit} more" if len(pos) > limit else ""
    return f"row{'s' if len(pos) > 1 else ''} {shown}{more}"


def _check_frame(df, cols: list[Column], name: str, problems: list[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        problems.append(f"{name}: expected a table (DataFrame or file), got {type(df).__name__}")
        return None
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    known = {c.name for c in cols}
    for col in cols:
        if col.name not in df.columns:
            if col.required:
                problems.append(f"{name}: missing column {col.name!r} ({col.meaning}; {col.allowed()})")
            elif col.default is not None:
                out[col.name] = col.default
            continue
        raw = df[col.name].reset_index(drop=True)
        missing = raw.isna().to_numpy()
        if missing.any() and col.default is not None:   # an empty optional cell means the default
            raw = raw.where(~missing, col.default)
            missing = np.zeros(len(raw), dtype=bool)
        if col.kind in ("id", "text", "choice") and isinstance(raw.dtype, pd.CategoricalDtype) \
                and not missing.any():
            # Keep a categorical (e.g. member_id repeated over months) as one: same values,
            # categories as text, no twelve-fold copies of strings.
            cats = raw.cat.categories.map(str)
            values = pd.Series(pd.Categorical.from_codes(raw.cat.codes, categories=cats))
            if col.choices and not set(cats[np.unique(raw.cat.codes)]) <= set(col.choices):
                bad = ~values.isin(col.choices).to_numpy()
                problems.append(f"{name}, column {col.name!r}: unknown value(s) "
                                f"{sorted(set(values[bad]))[:5]} in {_rows(bad, raw.index)}; "
                                f"allowed: {', '.join(col.choices)}")
            out[col.name] = values
            continue
        if col.kind in ("id", "text", "choice"):
            if missing.any() and col.kind != "text":
                problems.append(f"{name}, column {col.name!r}: empty in {_rows(missing, raw.index)}; "
                                f"a value is required")
            values = raw.astype(object).where(~missing, "" if col.kind == "text" else None)
            values = values.map(lambda v: v if v is None else str(v))
            if col.choices:
                bad = ~values.isin(col.choices).to_numpy() & ~missing
                if bad.any():
                    seen = sorted(set(values[bad]))[:5]
                    problems.append(f"{name}, column {col.name!r}: unknown value(s) {seen} in "
                                    f"{_rows(bad, raw.index)}; allowed: {', '.join(col.choices)}")
            # A plain object array: pandas stores it as its default text dtype,
            # the same as a generated population's id columns.
            out[col.name] = values.to_numpy(dtype=object)
            continue
        num = pd.to_numeric(raw, errors="coerce")
        wrong = num.isna().to_numpy() & ~missing
        if wrong.any():
            seen = [str(v) for v in raw[wrong].unique()[:3]]
            problems.append(f"{name}, column {col.name!r}: not a number in {_rows(wrong, raw.index)} "
                            f"(e.g. {seen}); allowed: {col.allowed()}")
        if missing.any() and col.required:
            problems.append(f"{name}, column {col.name!r}: NaN or empty in {_rows(missing, raw.index)}; "
                            f"a value is required ({col.allowed()})")
        vals = num.to_numpy(dtype=float, na_value=np.nan)
        infinite = np.isinf(vals) | ((np.abs(vals) > 2.0 ** 53) if col.kind == "int" else False)
        if np.any(infinite):
            problems.append(f"{name}, column {col.name!r}: not a finite number in {_rows(infinite, raw.index)} "
                            f"(e.g. {vals[infinite][0]:g}); allowed: {col.allowed()}")
            vals = np.where(infinite, np.nan, vals)
        ok = ~np.isnan(vals)
        if col.kind == "int":
            frac = ok & (vals != np.round(vals))
            if frac.any():
                problems.append(f"{name}, column {col.name!r}: not a whole number in "
                                f"{_rows(frac, raw.index)}; allowed: {col.allowed()}")
        out_of = ok & (((vals < col.lo) if col.lo is not None else False)
                       | ((vals > col.hi) if col.hi is not None else False))
        if np.any(out_of):
            problems.append(f"{name}, column {col.name!r}: out of range in {_rows(out_of, raw.index)} "
                            f"(e.g. {vals[out_of][0]:g}); allowed: {col.allowed()}")
        if col.kind == "int" and ok.all():
            vals = vals.astype(np.int64)
        elif raw.dtype == np.float32:      # keep float32 facts as they came (exact round trip)
            vals = vals.astype(np.float32)
        out[col.name] = vals
    extra = [c for c in df.columns if c not in known]
    for c in extra:  # extra columns are kept (a researcher's own covariates), untouched
        out[c] = df[c].reset_index(drop=True)
    order = [c for c in df.columns if c in out.columns] + [c for c in out.columns if c not in df.columns]
    return out[order]   # the caller's column order, then any defaults added


def _duplicates(df, key: str | list[str], name: str, problems: list[str]) -> None:
    if df is None or any(k not in df.columns for k in np.atleast_1d(key)):
        return
    dup = df.duplicated(key, keep=False).to_numpy()
    if dup.any():
        problems.append(f"{name}, column {key!r}: duplicate ids in {_rows(dup, df.index)}; "
                        f"each must be unique")


def _unknown_refs(df, col: str, known, name: str, target: str, problems: list[str]) -> None:
    if df is None or known is None or col not in df.columns:
        return
    bad = ~df[col].isin(known).to_numpy() & df[col].notna().to_numpy()
    if bad.any():
        seen = sorted(set(df.loc[bad, col]))[:5]
        problems.append(f"{name}, column {col!r}: {seen} not in the {target} table "
                        f"({_rows(bad, df.index)}); every {col} must be one of the {target}")


def check_tables(policy: Policy, branches, members=None, member_months=None, *,
                 names: dict | None = None) -> tuple:
    """Check population tables against the data dictionary; report all defects at once.

    Returns checked copies ``(branches, members, member_months)`` with
    canonical dtypes; ``members`` and ``member_months`` go together (both or
    neither). Raises :class:`DataError` listing every defect. ``names`` maps
    ``"branches"`` etc. to the file each table came from, for the messages.
    """
    names = {"branches": "branches", "members": "members", "member_months": "member_months",
             **(names or {})}
    problems: list[str] = []
    if (members is None) != (member_months is None):
        problems.append("members and member_months go together: pass both or neither")
    b = _check_frame(branches, branch_columns(policy), names["branches"], problems)
    _duplicates(b, "branch_id", names["branches"], problems)
    if b is not None and all(c in b.columns for c in SURVEY_COLUMNS):
        total = b[list(SURVEY_COLUMNS)].sum(axis=1).to_numpy()
        empty = total <= 0
        if empty.any():
            problems.append(f"{names['branches']}: no survey answers in {_rows(empty, b.index)}; "
                            f"survey_satisfied + survey_basic + survey_dissatisfied must be > 0")
    m = mm = None
    if members is not None:
        m = _check_frame(members, member_columns(policy), names["members"], problems)
        _duplicates(m, "member_id", names["members"], problems)
        _unknown_refs(m, "branch_id", None if b is None else set(b["branch_id"]),
                      names["members"], "branches", problems)
    if member_months is not None:
        mm = _check_frame(member_months, member_month_columns(policy), names["member_months"], problems)
        _duplicates(mm, ["member_id", "month"], names["member_months"], problems)
        _unknown_refs(mm, "member_id", None if m is None else set(m["member_id"]),
                      names["member_months"], "members", problems)
        if m is not None and mm is not None and "member_id" in mm.columns:
            none = ~m["member_id"].isin(set(mm["member_id"])).to_numpy()
            if none.any():
                problems.append(f"{names['members']}: {_rows(none, m.index)} have no month in "
                                f"{names['member_months']}; every member needs at least one month")
    if problems:
        raise DataError(problems)
    return b, m, mm
