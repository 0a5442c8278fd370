"""Points of loaded member-month records in one compiled pass (Numba).

:func:`branchsim.scoring.monthly_scores` converts a whole member-month table
to float64, builds a points matrix and a maximum-points matrix of the same
size and sums the points: three float64 copies of the table. This kernel
reads each fact where it lies (a column of the caller's frame, any float or
int dtype, rows picked by index) and keeps one row of points at a time.

The arithmetic is that of :func:`branchsim.scoring.indicator_points`, in
float64, and the row sum adds the points in the order NumPy's pairwise
``sum(axis=1)`` does (eight partial sums over blocks of 128, see
``numpy/_core/src/umath/loops_utils.h.src``), so the totals are bit for bit
those of the NumPy path (tested). Without Numba the caller uses that path.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; NumPy remains the fallback
    numba = None

__all__ = ["available", "supports", "row_totals", "points_matrix", "prepare", "fact_list", "MAX_K"]

#: Indicators a row may have for the kernel (NumPy sums longer rows in several blocks).
MAX_K = 128


def available() -> bool:
    return numba is not None


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _pairwise(a, lo, n):   # pragma: no cover - compiled
        # NumPy's pairwise summation of a[lo:lo + n] (float64, unit stride) for n <= 128,
        # where it is one block: eight partial sums, combined pairwise, then the rest.
        if n < 8:
            res = 0.0
            for i in range(n):
                res += a[lo + i]
            return res
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]   # 8 <= n <= MAX_K
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        end = n - n % 8
        while i < end:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res

    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _points(f, kd, t, req, ps, pu, al):   # pragma: no cover - compiled
        # numpy's maximum(a, b) is ``a if (a >= b or isnan(a)) else b``; minimum likewise.
        if kd == 0:                                  # np.where(f >= at_least, t, 0)
            return t if f >= al else 0.0
        if kd == 1:                                  # max(t - ps * max(req - f, 0), 0)
            d = req - f
            d = d if not d < 0.0 else 0.0
            x = t - ps * d
            return x if not x < 0.0 else 0.0
        if kd == 2:                                  # t * clip(f, 0, 1), as NumPy's clip loop
            c = f if (np.isnan(f) or f > 0.0) else 0.0
            c = c if (np.isnan(c) or c < 1.0) else 1.0
            return t * c
        g = f if not f < 0.0 else 0.0
        y = pu * g                                   # pu: per_unit, per_event or per_occurrence
        if kd == 3 or kd == 4:                       # min(t, pu * max(f, 0))
            return t if t <= y else y
        if kd == 5:                                  # max(t - pu * max(f, 0), 0)
            x = t - y
            return x if not x < 0.0 else 0.0
        return -(t if t <= y else y)                 # 6: -min(t, pu * max(f, 0))

    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _row_totals(cols, kind, top, required, per_shortfall, rate, at_least, rows, row_type,
                    out):  # pragma: no cover
        k = len(cols)
        n = len(rows)
        block = 512
        pts = np.empty((block, k))
        for b0 in range(0, n, block):
            m = min(block, n - b0)
            for j in range(k):           # one column at a time: each read is a forward stream
                col = cols[j]
                for i in range(m):
                    r = rows[b0 + i]
                    p = row_type[b0 + i]
                    pts[i, j] = _points(np.float64(col[r]), kind[p, j], top[p, j], required[p, j],
                                        per_shortfall[p, j], rate[p, j], at_least[p, j])
            flat = pts.reshape(-1)
            for i in range(m):
                out[b0 + i] = _pairwise(flat, i * k, k)


    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _points_rows(facts, kind, top, required, per_shortfall, rate, at_least, row_type,
                     out):  # pragma: no cover
        n, k = facts.shape
        for i in range(n):
            p = row_type[i]
            for j in range(k):
                out[i, j] = _points(np.float64(facts[i, j]), kind[p, j], top[p, j], required[p, j],
                                    per_shortfall[p, j], rate[p, j], at_least[p, j])


def points_matrix(facts: np.ndarray, row_type: np.ndarray, sheet, *, prepared=None) -> np.ndarray:
    """Points ``(n, k)`` of every row's indicators, equal to
    :func:`branchsim.scoring.indicator_points` for a sheet the kernel :func:`supports` (element by
    element the same arithmetic, in one pass: no ``(n, k)`` temporaries per rule form or gathered
    per-type parameters)."""
    facts = np.ascontiguousarray(facts, dtype=np.float64)
    out = np.empty(facts.shape)
    if facts.size:
        _points_rows(facts, *(prepare(sheet) if prepared is None else prepared),
                     np.asarray(row_type, dtype=np.intp), out)
    return out


#: Rule codes the kernel computes (zeroing and rank need other columns or other units).
KERNEL_CODES = (0, 1, 2, 3, 4, 5, 6)


def supports(sheet) -> bool:
    """Whether the kernel computes this sheet's points (rule forms, number of indicators)."""
    return available() and 0 < sheet.k <= MAX_K and bool(np.isin(sheet.kind, KERNEL_CODES).all())


def fact_list(cols):
    """The fact columns as the kernel takes them: one typed list (one compiled version per dtype).

    Columns must be 1-d, contiguous and of one dtype; at most :data:`MAX_K`.
    """
    from numba.typed import List
    if len(cols) > MAX_K:
        raise ValueError(f"the compiled kernel sums at most {MAX_K} indicators a row; got {len(cols)}")
    out = List()
    for c in cols:
        out.append(c)
    return out


def row_totals(cols, sheet, rows: np.ndarray, row_type: np.ndarray, *, prepared=None) -> np.ndarray:
    """Sum of the points of every row in ``rows``, shape ``(len(rows),)`` float64.

    ``cols`` are the fact columns (1-d contiguous arrays of one dtype, or
    :func:`fact_list` of them) in the order of ``sheet.facts``; ``rows``
    the row positions to score; ``row_type`` each row's profile code. Equal to
    ``indicator_points(facts[rows], row_type, sheet).sum(axis=1)``.
    ``prepared`` is :func:`prepare` of ``sheet`` (computed here when not given).
    """
    if not hasattr(cols, "_numba_type_"):
        cols = fact_list(cols)
    out = np.empty(len(rows))
    if len(rows) and len(cols):
        _row_totals(cols, *(prepare(sheet) if prepared is None else prepared),
                    np.asarray(rows, dtype=np.int64), np.asarray(row_type, dtype=np.intp), out)
    else:
        out[:] = 0.0
    return out


def prepare(sheet) -> tuple:
    """The rule arrays the kernel takes, built once for many calls (all per profile, ``(P, k)``)."""
    kind = sheet.kind
    rate = np.where(kind == 3, sheet.per_unit, np.where(kind == 4, sheet.per_event, sheet.per_occurrence))
    return tuple(np.ascontiguousarray(a, dtype=d) for a, d in (
        (kind, np.int8), (sheet.points, float), (sheet.required, float), (sheet.per_shortfall, float),
        (rate, float), (sheet.at_least, float)))


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _group_rows(x, cols, groups, out):   # pragma: no cover - compiled
        for i in range(x.shape[0]):          # each (row, group) adds its columns in increasing order
            for t in range(len(cols)):
                out[i, groups[t]] += x[i, cols[t]]


def group_sums(x: np.ndarray, cols: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[:, g]`` = the columns ``cols[t]`` of ``x`` whose ``groups[t] == g``, added in the order given,
    row by row: the same additions in the same order as :func:`branchsim.scoring.ordered_product`'s
    NumPy loop (tested), in one pass over the rows."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros((x.shape[0], n_groups))
    if x.size:
        _group_rows(x, np.asarray(cols, np.intp), np.asarray(groups, np.intp), out)
    return out
