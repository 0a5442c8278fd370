"""The exact sweep of one share: counts as step functions, breakpoints and the policy's value marked."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import designations_of, finish, levels_of, new_axes, policy_of, require, styled

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from ..policy import Policy

__all__ = ["exact_sweep"]

_LINESTYLES = ("-", "--", ":", "-.")


@styled
def exact_sweep(table: pd.DataFrame, y: str | Sequence[str] | None = None, by: str | None = None,
                ax: Axes | None = None, *, policy: Policy | None = None) -> Axes:
    """Counts of an exact sweep (:func:`branchsim.exact_sweep`) as step functions of the share.

    Parameters
    ----------
    table : DataFrame
        The exact sweep's table: ``s_from``, ``s_to`` and the count columns.
    y : str or sequence of str, optional
        Columns to draw (default: every level but the floor, and the designations; without a
        policy, the columns between ``n`` and ``changed``).
    by : str, optional
        The table's group column, if it was made with ``by=``: one line style per group.
    ax : matplotlib Axes, optional
    policy : Policy, optional
        Names and colours of the levels and designations.

    Returns
    -------
    Axes
        One step line per column (and group); the breakpoints as ticks along the bottom, the
        policy's value (``table.attrs["baseline"]``) as a dashed vertical line.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> t = pd.DataFrame({"s_from": [0.0, 0.3, 0.6], "s_to": [0.3, 0.6, 1.0], "n": 10, "top": [2, 3, 5],
    ...                   "low": [8, 7, 5], "changed": [1, 0, 2]})
    >>> t.attrs.update(path="branch.satisfaction_share", baseline=0.4)
    >>> ax = bp.exact_sweep(t)
    >>> len(ax.lines)          # two step lines, the breakpoint ticks, the policy's value
    4
    >>> matplotlib.pyplot.close(ax.figure)
    """
    from matplotlib.transforms import blended_transform_factory

    from .style import colour
    require(table, ["s_from", "s_to"] + ([by] if by else []), "exact_sweep")
    ys = _columns(table, y, policy)
    groups = [None] if by is None else list(pd.unique(table[by]))
    if by is None and table["s_from"].duplicated().any():
        raise DataError("exact_sweep: s_from repeats, so the table has groups; pass by= (its group column)",
                        where="plot")
    ax = new_axes(ax)
    breaks = set()
    for g, grp in enumerate(groups):
        sub = table if grp is None else table[table[by] == grp]
        sub = sub.sort_values("s_from", kind="stable")
        edges = np.r_[sub["s_from"].to_numpy(float), 1.0]
        breaks.update(edges[1:-1].tolist())
        for i, col in enumerate(ys):
            v = sub[col].to_numpy(float)
            ax.step(edges, np.r_[v, v[-1]], where="post", color=colour(col, policy, i),
                    linestyle=_LINESTYLES[g % len(_LINESTYLES)],
                    label=label(col, policy) + ("" if grp is None else f" — {grp}"))
    marks = blended_transform_factory(ax.transData, ax.transAxes)
    b = np.array(sorted(breaks))
    ax.plot(b, np.zeros(len(b)), linestyle="none", marker="|", markersize=6, color="#555555", alpha=0.5,
            transform=marks, label=f"breakpoints ({len(b)})")
    base = table.attrs.get("baseline")
    if base is not None:
        ax.axvline(float(base), color="#333333", linestyle="--", linewidth=1.0, label=f"policy value {base:g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(label(table.attrs.get("path", "share"), policy))
    ax.set_ylabel(label("branches", policy))
    ax.legend(loc="best")
    return finish(ax)


def _columns(table: pd.DataFrame, y: str | Sequence[str] | None, policy: Policy | None) -> list[str]:
    if y is not None:
        ys = [y] if isinstance(y, str) else list(y)
    elif levels_of(policy):
        ys = [c for c in levels_of(policy)[:-1] + designations_of(policy) if c in table]
    else:
        cols = [str(c) for c in table.columns]
        ys = cols[cols.index("n") + 1:cols.index("changed")] if "n" in cols and "changed" in cols else []
    if not ys:
        raise DataError("exact_sweep: no count columns found; pass y=", where="plot")
    require(table, ys, "exact_sweep")
    ys = [c for c in ys if table[c].notna().any()]           # a designation the exact sweep leaves NaN
    return ys
