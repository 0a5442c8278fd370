"""The truth's expected points and facts in one compiled pass (Numba).

:func:`branchsim.truth._expected_by_column` evaluates, column by column, each
indicator's expected points and fact at the attainment ``clip(q + offset, 0,
1)`` (or a state fact's value). This kernel does the same arithmetic element
by element (NumPy's ``clip``, ``maximum``, ``minimum`` and ``rint`` as their
loops compute them, no fused multiply-add), writing the points row by row
into a row-major ``(n, k)`` array (no transpose afterwards) and the facts into
``(k, n)`` rows. Without Numba the caller keeps the NumPy path.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; NumPy remains the fallback
    numba = None

__all__ = ["available", "expected"]

#: Rows per block (the block's points, row-major, stay in cache while its columns are written).
_BLOCK = 256


def available() -> bool:
    return numba is not None


if numba is not None:
    @numba.njit(nogil=True, cache=True, error_model="numpy")
    def _expected(q, off, fixed_at, fixed_cols, t, code, top, per_shortfall, required, scale, pts,
                  facts):   # pragma: no cover - compiled
        n = len(q)
        k = len(off)
        for i0 in range(0, n, _BLOCK):               # a block of rows, a column at a time: every write
            for j in range(k):                        # to ``facts`` is a forward run
                for i in range(i0, min(n, i0 + _BLOCK)):
                    ti = t[i]
                    if fixed_at[j] >= 0:
                        p = fixed_cols[fixed_at[j], i]
                    else:                               # np.clip(q + off, 0, 1), as NumPy's clip loop
                        x = q[i] + off[j]
                        p = x if (np.isnan(x) or x > 0.0) else 0.0
                        p = p if (np.isnan(p) or p < 1.0) else 1.0
                    c = code[j]
                    tp = top[ti, j]
                    if c == 1:                          # max(top - ps * (req * (1 - p)), 0)
                        y = tp - per_shortfall[ti, j] * (required[ti, j] * (1.0 - p))
                        v = y if (y >= 0.0 or np.isnan(y)) else 0.0
                    elif c == 0 or c == 2 or c == 4 or c == 5:
                        v = tp * p
                    elif c == 3:                        # min(top, min(2 p, 1) * top)
                        m = 2.0 * p
                        m = m if (m <= 1.0 or np.isnan(m)) else 1.0
                        y = m * tp
                        v = tp if (tp <= y or np.isnan(tp)) else y
                    elif c == 6:
                        v = -tp * (1.0 - p)
                    else:
                        v = 0.0
                    pts[i, j] = v
                    if c == 0:
                        facts[j, i] = np.rint(p)
                    elif c == 2:
                        facts[j, i] = p
                    elif c == 5 or c == 6:
                        facts[j, i] = scale[j] * (1.0 - p)
                    elif c == 1 or c == 3 or c == 4 or c == 7:
                        facts[j, i] = scale[j] * p
                    else:
                        facts[j, i] = 100.0 * p


def expected(q, offsets, fixed: dict, t, sheet, sc: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(points (n, k) row-major, facts (n, k) as the transpose of (k, n) rows)`` of a sheet with one
    rule form per column: :func:`branchsim.truth._expected_by_column`'s numbers."""
    n, k = len(q), len(offsets)
    code = np.ascontiguousarray(sheet.kind[0], dtype=np.int64)
    scale = np.zeros(k)
    for c, key in ((1, "required"), (3, "bonus"), (4, "per_event"), (5, "occurrences"), (6, "occurrences")):
        scale[code == c] = np.asarray(sc[key], float)[code == c]
    scale[code == 7] = 0.0
    fixed_at = np.full(k, -1, dtype=np.int64)
    cols = np.zeros((max(len(fixed), 1), n))
    for m, (j, col) in enumerate(sorted(fixed.items())):
        fixed_at[j] = m
        cols[m] = col
    pts, facts = np.empty((n, k)), np.empty((k, n))
    _expected(np.ascontiguousarray(q, dtype=np.float64), np.ascontiguousarray(offsets, dtype=np.float64),
              fixed_at, cols, np.asarray(t, dtype=np.intp), code, np.ascontiguousarray(sheet.points, float),
              np.ascontiguousarray(sheet.per_shortfall, float), np.ascontiguousarray(sheet.required, float),
              scale, pts, facts)
    return pts, facts.T
