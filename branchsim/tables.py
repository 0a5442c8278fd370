"""The data dictionary of population tables, and the checks that enforce it.

Three tables describe one year of a population (see the README's data
dictionary): ``branches`` (one row per branch), ``members`` (one row per
member) and ``member_months`` (one row per member and month). Which fact
columns they need follows from the policy: every indicator names its fact,
and its plausible range (``range`` in the policy, see
``docs/policy-format.md``) bounds the values.

:func:`check_tables` reports every defect at once — missing columns, wrong
types (dates, complex numbers, lists in a cell), NaN, values out of range,
binary facts other than 0 or 1, duplicate ids, members of unknown branches,
unknown branch types — naming the table, column and 1-based rows. It never
modifies the caller's frames. It returns checked frames with canonical
dtypes; a column already in its canonical dtype is *shared* with the input,
not copied (pandas' copy-on-write keeps the two independent), and columns are
checked a slice of rows at a time, so checking a province's tables needs
little memory beyond the tables themselves.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._schema import fact_range
from .errors import DataError
from .policy import Policy

if TYPE_CHECKING:
    from ._types import TableLike

__all__ = ["Column", "branch_columns", "member_columns", "member_month_columns", "check_tables",
           "RESERVED_COLUMNS", "streak_inputs"]

#: Columns of each table that are not facts: an indicator's fact may not take one of these names
#: (nor start with ``survey_`` or ``prev_``: the survey answers and the streaks of years before).
RESERVED_COLUMNS = {
    "branches": ("branch_id", "type", "level", "n_members", "parent", "true_quality"),
    "members": ("member_id", "branch_id", "category", "appraisal", "true_quality"),
    "member_months": ("member_id", "month"),
}
# Rows checked at once: bounds the temporary masks, whatever the table's length.
_SLICE = 1 << 20
_DEFAULT_STR = pd.Series(["a"]).dtype       # pandas' default text dtype


@dataclass(frozen=True)
class Column:
    """One column of the data dictionary.

    >>> Column("meetings", "number", "meetings held", 0, 60).allowed()
    'a number in [0, 60]'
    """

    name: str
    kind: str                      # id | text | int | number | binary | choice
    meaning: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = True
    default: object = None

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind == "binary":
            return "0 or 1"
        what = {"int": "a whole number", "number": "a number", "id": "a text id",
                "text": "a text"}.get(self.kind, self.kind)
        if self.lo is not None and self.hi is not None:
            return f"{what} in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"{what} >= {self.lo:g}"
        return what


def _fact_column(ind: dict) -> Column:
    """The column of an indicator's fact (or of a declared fact: ``kind`` instead of ``rule``)."""
    lo, hi = fact_range(ind)
    name = ind.get("fact") or ind["_name"]
    label = ind.get("label", name)
    binary = ind.get("rule") == "binary" or ind.get("kind") == "binary"
    if binary:
        return Column(name, "binary", f"{label}: 1 if met, 0 if not", 0, 1)
    if ind.get("kind") == "count":
        return Column(name, "number", f"{label}: {ind.get('unit', 'count')}", lo, hi)
    what = "share, 0-1" if ind.get("rule") == "proportion" or ind.get("kind") == "share" else "count"
    return Column(name, "number", f"{label}: {ind.get('unit', what)}", lo, hi)


def streak_inputs(policy: Policy) -> dict[str, list[str]]:
    """Ids whose consecutive years before this one a table may give as ``prev_<id>`` (default 0).

    ``{"branches": [...], "members": [...]}``: the designations, criteria with
    ``years``, and the designations, levels and grades that consequences with
    ``years`` follow (``docs/policy-format.md``).

    >>> import branchsim as bs
    >>> streak_inputs(bs.Policy.load())["branches"]
    ['weak']
    """
    s = policy.scheme
    branch = [d.id for d in s.branch.designations]
    branch += [c.id for d in s.branch.designations for c in d.criteria if c.years > 1]
    branch += [c.target for c in s.consequences_of("branch") if c.years > 1]
    member = [c.target for c in s.consequences_of("member") if c.years > 1]
    return {"branches": list(dict.fromkeys(branch)), "members": list(dict.fromkeys(member))}


def _declared(entries: dict) -> list[Column]:
    return [_fact_column({**e, "_name": f}) for f, e in entries.items()]


def branch_columns(policy: Policy) -> list[Column]:
    """Columns of the branches table under ``policy``.

    >>> import branchsim as bs
    >>> [c.name for c in branch_columns(bs.Policy.load())][:3]
    ['branch_id', 'type', 'level']
    """
    s = policy.scheme
    st = s.structure
    cols = [
        Column("branch_id", "id", "unique id of the branch"),
        Column("type", "choice", "branch type", choices=s.branch.types),
    ]
    if st is not None:
        cols.append(Column("level", "choice", "current organisation level", choices=st.ids))
    cols += [
        Column("n_members", "int", "number of full members", 0, required=st is not None),
        Column("parent", "text", "parent organisation", required=False, default=""),
    ]
    cols += [Column(f"prev_{i}", "int", f"consecutive years {i!r} held just before this one", 0,
                    required=False, default=0) for i in streak_inputs(policy)["branches"]]
    cols += [Column(c, "int", f"survey answers {a!r} ({lab})", 0)
             for c, a, lab in zip(s.branch.survey_columns, s.branch.answers, s.branch.answer_labels)]
    cols.append(Column("true_quality", "number", "latent true quality (generated populations only)",
                       required=False))
    inds = policy.branch_indicators
    return cols + [_fact_column(inds[i]) for i in s.branch.sheet.ids] + _declared(s.branch.fact_entries)


def member_columns(policy: Policy) -> list[Column]:
    """Columns of the members table under ``policy``."""
    ms = policy.scheme.member
    cols = [
        Column("member_id", "id", "unique id of the member"),
        Column("branch_id", "id", "the member's branch (must be in the branches table)"),
        Column("category", "choice" if ms.classes else "text", "member class (category)",
               choices=ms.classes or None),
        Column("appraisal", "number", "year-end appraisal score", 0, 100, required=ms.appraisal_share > 0),
        Column("true_quality", "number", "latent true quality (generated populations only)",
               required=False),
    ]
    cols += [Column(f"prev_{i}", "int", f"consecutive years {i!r} held just before this one", 0,
                    required=False, default=0) for i in streak_inputs(policy)["members"]]
    return cols + _declared(ms.fact_entries)


def member_month_columns(policy: Policy) -> list[Column]:
    """Columns of the member-months (member-period) table under ``policy``."""
    ms = policy.scheme.member
    cols = [
        Column("member_id", "id", "the member (must be in the members table)"),
        Column("month", "int", "period of the record (a month, or a quarter, ...)", 1, ms.periods),
    ]
    inds = policy.member_indicators
    return cols + [_fact_column(inds[i]) for i in ms.sheet.ids]


def _rows(mask_or_positions, limit: int = 8) -> str:
    """Rows as 1-based data rows (the line after the header is row 1).

    Takes a boolean mask or ``(positions, total)`` from :class:`_Hits`.
    """
    if isinstance(mask_or_positions, tuple):
        pos, total = mask_or_positions
    else:
        pos = np.flatnonzero(mask_or_positions)
        total = len(pos)
    shown = ", ".join(str(int(p) + 1) for p in pos[:limit])
    more = f" and {total - limit} more" if total > limit else ""
    return f"row{'s' if total > 1 else ''} {shown}{more}"


def _plain(v) -> str:
    """A value as a researcher would write it (``1``, ``0.5``, ``nan``; never ``np.float64(0.5)``)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


class _Hits:
    """Rows where a condition holds, gathered slice by slice: the first few and the count."""

    def __init__(self, limit: int = 8):
        self.limit, self.total, self.first, self.example = limit, 0, [], None

    def add(self, mask: np.ndarray, start: int, values: np.ndarray | None = None) -> None:
        n = int(np.count_nonzero(mask))
        if not n:
            return
        if len(self.first) < self.limit:
            pos = np.flatnonzero(mask)[: self.limit - len(self.first)]
            if self.example is None and values is not None:
                self.example = values[pos[0]]
            self.first.extend(int(p) + start for p in pos)
        self.total += n

    def __bool__(self) -> bool:
        return self.total > 0

    def rows(self) -> str:
        return _rows((self.first, self.total), limit=self.limit)


def as_frame(obj, name: str, problems: list[str]) -> pd.DataFrame | None:
    """``obj`` as a DataFrame: a DataFrame, a list of records (dicts) or a dict of columns.

    >>> len(as_frame([{"a": 1}, {"a": 2}], "branches", []))
    2
    """
    if isinstance(obj, pd.DataFrame):
        return obj
    try:
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(r, Mapping) for r in obj):
            return pd.DataFrame.from_records(list(obj))
        if isinstance(obj, Mapping):
            return pd.DataFrame(dict(obj))
    except (ValueError, TypeError) as exc:
        problems.append(f"{name}: cannot be made a table ({_plain(exc)})")
        return None
    problems.append(f"{name}: expected a table — a DataFrame, a list of records (dicts), a dict of "
                    f"columns, or a file (.csv, .parquet, .xlsx) — got {type(obj).__name__}")
    return None


def _nonscalar(values: np.ndarray) -> np.ndarray:
    """Cells holding a list, dict, set, tuple or array (object columns only)."""
    return np.fromiter((isinstance(v, (list, dict, set, tuple, np.ndarray)) for v in values),
                       dtype=bool, count=len(values))


def _text_column(raw: pd.Series, col: Column, name: str, problems: list[str]):
    """An id, text or choice column, checked; shared with the input when already canonical."""
    where = f"{name}, column {col.name!r}"
    dtype = raw.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        codes = raw.cat.codes.to_numpy()
        missing = codes < 0
        if missing.any() and col.kind != "text":
            problems.append(f"{where}: empty in {_rows(missing)}; a value is required")
            return raw
        if col.choices:
            used = np.zeros(len(cats), dtype=bool)
            used[np.unique(codes[~missing])] = True
            bad_cats = used & ~pd.Index(cats.map(str)).isin(col.choices)
            if bad_cats.any():
                bad = bad_cats[np.where(missing, 0, codes)] & ~missing
                problems.append(f"{where}: unknown value(s) {sorted(set(map(str, cats[bad_cats])))[:5]} in "
                                f"{_rows(bad)}; allowed: {', '.join(col.choices)}")
        # Kept as a categorical (e.g. member_id repeated over months): one string per id.
        if not missing.any() and (cats.dtype == _DEFAULT_STR or all(isinstance(c, str) for c in cats)):
            return raw
        text = cats.map(str)
        values = pd.Categorical.from_codes(codes, categories=text) if not missing.any() else \
            pd.Series(np.asarray(text, dtype=object)[codes]).where(~missing, "")
        return pd.Series(values)
    if dtype == _DEFAULT_STR and not raw.hasnans:
        if col.choices:
            bad = ~raw.isin(col.choices).to_numpy()
            if bad.any():
                problems.append(f"{where}: unknown value(s) {sorted(set(raw[bad]))[:5]} in {_rows(bad)}; "
                                f"allowed: {', '.join(col.choices)}")
        return raw
    if dtype.kind in "mMc" or isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype, pd.IntervalDtype)):
        problems.append(f"{where}: holds {dtype} values; allowed: {col.allowed()}")
        return raw
    missing = raw.isna().to_numpy()
    if missing.any() and col.kind != "text":
        problems.append(f"{where}: empty in {_rows(missing)}; a value is required")
    obj = raw.to_numpy(dtype=object)
    if dtype == object:
        odd = _nonscalar(obj)
        if odd.any():
            problems.append(f"{where}: a list or dict in {_rows(odd)} (e.g. {_plain(obj[odd][0])}); "
                            f"each cell must hold one {col.allowed()}")
            return np.array([str(v) for v in obj], dtype=object)   # hashable, for the other checks
    values = pd.Series(obj).where(~missing, "" if col.kind == "text" else None)
    values = values.map(lambda v: v if v is None else str(v))
    if col.choices:
        bad = ~values.isin(col.choices).to_numpy() & ~missing
        if bad.any():
            seen = sorted(set(values[bad]))[:5]
            problems.append(f"{where}: unknown value(s) {seen} in {_rows(bad)}; "
                            f"allowed: {', '.join(col.choices)}")
    # A plain object array: pandas stores it as its default text dtype, the same
    # as a generated population's id columns.
    return values.to_numpy(dtype=object)


def _as_numbers(raw: pd.Series, col: Column, where: str, problems: list[str]):
    """The column's values as a NumPy number array, plus the rows that held something else.

    Returns ``(values, wrong, missing)``; ``values`` is the input's own array
    (no copy) when the column is already int or float, else a float64 array.
    ``None`` values when the column cannot be numbers at all (dates, complex, ...).
    """
    dtype = raw.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raw = pd.Series(np.asarray(raw.astype(object)), dtype=object)
        dtype = raw.dtype
    if dtype.kind in "mM" or isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        problems.append(f"{where}: holds dates or times ({dtype}), not numbers; allowed: {col.allowed()}")
        return None, None, None
    if dtype.kind == "c":
        problems.append(f"{where}: holds complex numbers; allowed: {col.allowed()}")
        return None, None, None
    if dtype.kind == "b" or dtype == "boolean":
        if col.kind != "binary":
            problems.append(f"{where}: holds True/False, not numbers; allowed: {col.allowed()}")
            return None, None, None
        missing = raw.isna().to_numpy()
        return raw.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(raw), bool), missing
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return raw.to_numpy(), None, None          # no copy; NaN found slice by slice
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iuf":
        missing = raw.isna().to_numpy()
        return raw.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(raw), bool), missing
    # Text or mixed objects: convert cell by cell, refusing lists, dates and complex numbers.
    obj = raw.to_numpy(dtype=object)
    missing = raw.isna().to_numpy()
    odd = _nonscalar(obj) if dtype == object else np.zeros(len(obj), bool)
    if odd.any():
        problems.append(f"{where}: a list or dict in {_rows(odd)} (e.g. {_plain(obj[odd][0])}); "
                        f"each cell must hold one number ({col.allowed()})")
        return None, None, None
    num = pd.to_numeric(pd.Series(obj, dtype=object), errors="coerce")
    if num.dtype.kind == "c":
        problems.append(f"{where}: holds complex numbers; allowed: {col.allowed()}")
        return None, None, None
    vals = num.to_numpy(dtype=float, na_value=np.nan)
    wrong = np.isnan(vals) & ~missing
    if wrong.any():
        seen = [_plain(v) for v in pd.unique(obj[wrong])[:3]]
        problems.append(f"{where}: not a number in {_rows(wrong)} (e.g. {seen}); allowed: {col.allowed()}")
    return vals, wrong, missing


def _number_column(raw: pd.Series, col: Column, name: str, problems: list[str]):
    """An int, number or binary column, checked a slice at a time; shared when canonical."""
    where = f"{name}, column {col.name!r}"
    vals, wrong, missing = _as_numbers(raw, col, where, problems)
    if vals is None:
        return raw
    n = len(vals)
    is_float = vals.dtype.kind == "f"
    nan, inf, frac, out_of, not01 = _Hits(), _Hits(), _Hits(), _Hits(), _Hits()
    for lo in range(0, n, _SLICE):
        v = vals[lo:lo + _SLICE]
        bad = np.zeros(len(v), dtype=bool)
        if is_float:
            isnan = np.isnan(v)
            if missing is None:          # a float column: NaN is a missing value
                nan.add(isnan, lo)
            else:                        # converted: NaN is missing or not a number (reported)
                nan.add(missing[lo:lo + _SLICE], lo)
            bad |= isnan
            big = np.isinf(v)
            if col.kind == "int":
                big |= np.abs(v) > 2.0 ** 53
            inf.add(big, lo, v)
            bad |= big
            if col.kind == "int":
                with np.errstate(invalid="ignore"):
                    frac.add(~bad & (v != np.round(v)), lo)
        with np.errstate(invalid="ignore"):
            if col.kind == "binary":
                not01.add(~bad & (v != 0) & (v != 1), lo, v)
            else:
                outside = np.zeros(len(v), dtype=bool)
                if col.lo is not None:
                    outside |= v < col.lo
                if col.hi is not None:
                    outside |= v > col.hi
                out_of.add(outside & ~bad, lo, v)
    filled = bool(nan) and col.default is not None    # an empty optional cell means the default
    if nan and not filled and col.required:
        problems.append(f"{where}: NaN or empty in {nan.rows()}; a value is required ({col.allowed()})")
    if inf:
        problems.append(f"{where}: not a finite number in {inf.rows()} (e.g. {_plain(inf.example)}); "
                        f"allowed: {col.allowed()}")
    if frac:
        problems.append(f"{where}: not a whole number in {frac.rows()}; allowed: {col.allowed()}")
    if not01:
        problems.append(f"{where}: a binary fact must be 0 or 1; got {_plain(not01.example)} in "
                        f"{not01.rows()}")
    if out_of:
        problems.append(f"{where}: out of range in {out_of.rows()} (e.g. {_plain(out_of.example)}); "
                        f"allowed: {col.allowed()}")
    if filled:
        vals = np.where(np.isnan(vals), col.default, vals)
    native = missing is None and not filled          # ``vals`` is the input's own array
    if col.kind == "int":
        if native and raw.dtype == np.int64:
            return raw
        if (nan and not filled) or inf or frac:
            return vals
        return vals.astype(np.int64)
    if native and raw.dtype in (np.float64, np.float32):
        return raw                       # float32 facts kept as they came (exact round trip)
    return vals.astype(np.float64, copy=False)


def _check_frame(df, cols: list[Column], name: str, problems: list[str], *,
                 nonempty: bool = False) -> pd.DataFrame | None:
    df = as_frame(df, name, problems)
    if df is None:
        return None
    if isinstance(df.columns, pd.MultiIndex):
        problems.append(f"{name}: columns have {df.columns.nlevels} levels (a MultiIndex); a table needs one "
                        f"row of column names (e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns])")
        return None
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        problems.append(f"{name}: column(s) {sorted(set(map(str, dup)))[:5]} appear more than once; "
                        f"each column name must be unique")
        return None
    if len(df) == 0 and nonempty:
        problems.append(f"{name}: the table has no rows; a population needs at least one branch")
        return None
    out: dict[str, object] = {}
    for col in cols:
        if col.name not in df.columns:
            if col.required:
                problems.append(f"{name}: missing column {col.name!r} ({col.meaning}; {col.allowed()})")
            elif col.default is not None:
                out[col.name] = np.full(len(df), col.default, dtype=object if isinstance(col.default, str)
                                        else np.int64)
            continue
        raw = df[col.name].reset_index(drop=True)          # copy-on-write: no copy
        if col.kind in ("id", "text", "choice"):
            out[col.name] = _text_column(raw, col, name, problems)
        else:
            out[col.name] = _number_column(raw, col, name, problems)
    known = {c.name for c in cols}
    for c in df.columns:   # extra columns are kept (a researcher's own covariates), untouched
        if c not in known:
            out[c] = df[c].reset_index(drop=True)
    order = [c for c in df.columns if c in out] + [c for c in out if c not in df.columns]
    frame = pd.DataFrame({c: out[c] for c in order}, copy=False)
    return frame   # the caller's column order, then any defaults added


def positions(ids: pd.Series, refs: pd.Series) -> np.ndarray:
    """Position of each of ``refs`` in the unique ``ids`` (-1 where absent), as int64.

    A categorical ``refs`` (member ids repeated over twelve months) is looked
    up once per category, not once per row.

    >>> positions(pd.Series(["a", "b"]), pd.Series(["b", "x", "a"])).tolist()
    [1, -1, 0]
    """
    index = pd.Index(ids)
    if isinstance(refs.dtype, pd.CategoricalDtype):
        at = index.get_indexer(refs.cat.categories)
        codes = refs.cat.codes.to_numpy()
        pos = at[codes].astype(np.int64, copy=False)
        if (codes < 0).any():
            pos[codes < 0] = -1
        return pos
    return index.get_indexer(refs).astype(np.int64, copy=False)


def _absent(ids: pd.Series, refs: pd.Series) -> np.ndarray:
    """Where ``refs`` are not among ``ids`` (which may repeat: their duplicates are reported apart)."""
    if ids.is_unique:
        return positions(ids, refs) < 0
    return ~refs.isin(pd.unique(ids)).to_numpy()


def _duplicates(df, key: str, name: str, problems: list[str]) -> None:
    if df is None or key not in df.columns:
        return
    dup = df.duplicated(key, keep=False).to_numpy()
    if dup.any():
        problems.append(f"{name}, column {key!r}: duplicate ids in {_rows(dup)}; each must be unique")


def _month_duplicates(mpos: np.ndarray, month, n_members: int, name: str, problems: list[str],
                      periods: int) -> None:
    """Rows repeating a (member, month): one month at a time, so memory stays per member."""
    hits = _Hits()
    for mo in range(1, periods + 1):
        rows = np.flatnonzero(month == mo)
        who = mpos[rows]
        counts = np.bincount(who[who >= 0], minlength=n_members)
        if counts.max(initial=0) > 1:
            dup = np.zeros(len(month), dtype=bool)
            keep = who >= 0
            dup[rows[keep]] = counts[who[keep]] > 1
            hits.add(dup, 0)
    if hits:
        problems.append(f"{name}, columns ['member_id', 'month']: duplicate (member, month) in "
                        f"{hits.rows()}; each member has at most one row per month")


def check_tables(policy: Policy, branches: TableLike, members: TableLike | None = None,
                 member_months: TableLike | None = None, *,
                 names: dict | None = None) -> tuple:
    """Check population tables against the data dictionary; report all defects at once.

    Returns checked frames ``(branches, members, member_months)`` with
    canonical dtypes; ``members`` and ``member_months`` go together (both or
    neither). A table may be a DataFrame, a list of records (dicts) or a dict
    of columns. Raises :class:`DataError` listing every defect. ``names`` maps
    ``"branches"`` etc. to the file each table came from, for the messages.

    Examples
    --------
    >>> import branchsim as bs, pandas as pd
    >>> b = pd.read_csv(bs.data_path("examples", "branches.csv"))
    >>> checked, _, _ = check_tables(bs.Policy.load(), b)
    >>> len(checked) == len(b), checked is b
    (True, False)
    """
    names = {"branches": "branches", "members": "members", "member_months": "member_months",
             **{k: v for k, v in (names or {}).items() if v}}
    problems: list[str] = []
    if (members is None) != (member_months is None):
        problems.append("members and member_months go together: pass both or neither")
    b = _check_frame(branches, branch_columns(policy), names["branches"], problems, nonempty=True)
    _duplicates(b, "branch_id", names["branches"], problems)
    survey = policy.scheme.branch.survey_columns
    if survey and b is not None and all(c in b.columns and b[c].dtype.kind in "iuf" for c in survey):
        total = sum(b[c].to_numpy(dtype=float) for c in survey)
        empty = total <= 0
        if empty.any():
            problems.append(f"{names['branches']}: no survey answers in {_rows(empty)}; "
                            f"{' + '.join(survey)} must be > 0")
    m = mm = None
    if members is not None and not policy.has_members:
        problems.append(f"{names['members']}: policy {policy.name!r} rates branches only (it has no member "
                        f"section); leave the members tables out")
        members = member_months = None
    if members is not None:
        m = _check_frame(members, member_columns(policy), names["members"], problems)
        _duplicates(m, "member_id", names["members"], problems)
        if m is not None and b is not None and "branch_id" in m.columns and "branch_id" in b.columns:
            bad = _absent(b["branch_id"], m["branch_id"])
            if bad.any():
                seen = sorted(set(map(str, m["branch_id"][bad])))[:5]
                problems.append(f"{names['members']}, column 'branch_id': {seen} not in the branches table "
                                f"({_rows(bad)}); every branch_id must be one of the branches")
    if member_months is not None:
        mm = _check_frame(member_months, member_month_columns(policy), names["member_months"], problems)
        if m is not None and mm is not None and "member_id" in m.columns and "member_id" in mm.columns:
            unique = m["member_id"].is_unique
            mpos = positions(m["member_id"], mm["member_id"]) if unique else None
            unknown = mpos < 0 if unique else _absent(m["member_id"], mm["member_id"])
            if unknown.any():
                seen = sorted(set(map(str, mm["member_id"][unknown].unique()[:50])))[:5]
                problems.append(f"{names['member_months']}, column 'member_id': {seen} not in the members "
                                f"table ({_rows(unknown)}); every member_id must be one of the members")
            if unique:
                none = np.bincount(mpos[~unknown], minlength=len(m)) == 0
                if none.any():
                    problems.append(f"{names['members']}: {_rows(none)} have no month in "
                                    f"{names['member_months']}; every member needs at least one month")
                if "month" in mm.columns and mm["month"].dtype == np.int64:
                    _month_duplicates(mpos, mm["month"].to_numpy(), len(m), names["member_months"], problems,
                                      policy.scheme.member.periods)
        elif mm is not None and "member_id" in mm.columns and "month" in mm.columns:
            dup = mm.duplicated(["member_id", "month"], keep=False).to_numpy()
            if dup.any():
                problems.append(f"{names['member_months']}, columns ['member_id', 'month']: duplicate "
                                f"(member, month) in {_rows(dup)}; each member has at most one row per month")
    if problems:
        raise DataError(problems)
    return b, m, mm
