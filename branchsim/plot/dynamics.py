"""Figures over years: the level distribution and the flows of branches between levels."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import colour, designations_of, finish, level_colours, levels_of, new_axes, policy_of, styled

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.path import Path as MplPath
    from matplotlib.axes import Axes
    from ..dynamics.history import History
    from ..policy import Policy

__all__ = ["level_flows", "star_flows"]

_LEVEL_COLUMNS = ("rating", "level_id")


def _counts(frame: pd.DataFrame,
            policy: Policy | None) -> tuple[pd.DataFrame, pd.DataFrame | None, str | None]:
    """Year × level counts (columns worst first), designation counts per year, the level column (or None)."""
    levels = levels_of(policy)
    designations = [d for d in designations_of(policy) if d in frame.columns]
    col = next((c for c in _LEVEL_COLUMNS if c in frame.columns), None)
    if "year" in frame.columns and col is not None:
        present = [str(v) for v in pd.unique(frame[col].dropna())]
        order = [lv for lv in levels if lv in present] if levels and set(present) <= set(levels) \
            else sorted(present)
        counts = pd.crosstab(frame["year"], frame[col].astype(str)).reindex(columns=order, fill_value=0)
        marks = frame.groupby("year")[designations].sum() if designations else None
        return counts[order[::-1]] if levels else counts, marks, col
    table = frame.set_index("year") if "year" in frame.columns else frame
    cols = [lv for lv in reversed(levels) if lv in table.columns]
    if not cols:
        raise DataError("level_flows takes a History, a tidy frame with columns year and rating (and branch_id "
                        "for flows), or a year × level count table with a policy (columns its level ids); got "
                        f"columns {list(frame.columns)}", where="plot")
    marks = table[designations] if designations else None
    return table[cols], marks, None


def _ribbon(x0: float, a0: float, a1: float, x1: float, b0: float, b1: float) -> MplPath:
    """A band from ``[a0, a1]`` at ``x0`` to ``[b0, b1]`` at ``x1`` with S-shaped edges."""
    from matplotlib.path import Path
    xm = (x0 + x1) / 2
    verts = [(x0, a0), (xm, a0), (xm, b0), (x1, b0), (x1, b1), (xm, b1), (xm, a1), (x0, a1), (x0, a0)]
    codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4, Path.CURVE4,
             Path.CURVE4, Path.CLOSEPOLY]
    return Path(verts, codes)


def _flows(ax: Axes, frame: pd.DataFrame, col: str | None, years: list, levels: list[str], bottoms: np.ndarray,
           pos: np.ndarray, width: float, colours: Sequence[str]) -> None:
    """Ribbons between consecutive years: one per (from, to) pair of levels with branches in it."""
    from matplotlib.patches import PathPatch
    wide = frame.pivot(index="branch_id", columns="year", values=col)
    for t in range(len(years) - 1):                      # a loop over years
        pair = wide[[years[t], years[t + 1]]].dropna().astype(str)
        T = pd.crosstab(pair[years[t]], pair[years[t + 1]]).reindex(index=levels, columns=levels,
                                                                      fill_value=0).to_numpy()
        out_base, in_base = bottoms[t], bottoms[t + 1]
        # Sources stack their outflows by destination; destinations their inflows by source.
        in_off = np.vstack([np.zeros(len(levels)), np.cumsum(T, axis=0)[:-1]])
        out_off = np.hstack([np.zeros((len(levels), 1)), np.cumsum(T, axis=1)[:, :-1]])
        for i, j in zip(*np.nonzero(T)):                 # at most levels² ribbons
            a0 = out_base[i] + out_off[i, j]
            b0 = in_base[j] + in_off[i, j]
            ax.add_patch(PathPatch(_ribbon(pos[t] + width / 2, a0, a0 + T[i, j], pos[t + 1] - width / 2,
                                           b0, b0 + T[i, j]), facecolor=colours[i], alpha=0.35,
                                   linewidth=0, gid="flow"))


@styled
def level_flows(history_or_frame: History | pd.DataFrame, ax: Axes | None = None, *, flows: bool | None = None,
                policy: Policy | None = None) -> Axes:
    """Branches per level in each year (stacked bars), with the flows between years.

    Parameters
    ----------
    history_or_frame : History or DataFrame
        A :class:`~branchsim.dynamics.History` (its ``branches``), a tidy
        frame with one row per branch-year (``year``, ``rating`` — the level
        id —, optionally ``branch_id`` and one boolean column per
        designation), or a year × level count table (columns the level ids).
    ax : matplotlib Axes, optional
    flows : bool, optional
        Draw ribbons from each year's levels to the next year's (needs
        ``branch_id``). Default: whenever the frame has branch ids.
    policy : Policy, optional
        Levels (their order, names and colours) and designations; default the
        history's own. Without one, a tidy frame's levels are drawn in sorted order.

    Returns
    -------
    Axes
        One bar per year and level (the floor at the bottom), ribbons with
        ``gid="flow"``, and a red line per designation when known.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> top, floor = p.levels[0], p.levels[-1]
    >>> h = pd.DataFrame({"year": [0, 0, 0, 1, 1, 1], "branch_id": list("abcabc"),
    ...                   "rating": [top, p.levels[1], floor, top, floor, floor]})
    >>> ax = bp.level_flows(h, policy=p)
    >>> len(ax.containers), len([q for q in ax.patches if q.get_gid() == "flow"])
    (3, 3)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(history_or_frame, policy)
    frame = getattr(history_or_frame, "branches", history_or_frame)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"level_flows takes a History or a DataFrame, got {type(frame).__name__}",
                        where="plot")
    counts, marks, col = _counts(frame, policy)
    can_flow = col is not None and "branch_id" in frame.columns
    flows = can_flow and len(counts) > 1 if flows is None else flows
    if flows and not can_flow:
        raise DataError("level_flows(flows=True) needs one row per branch-year with columns year, rating and "
                        "branch_id", where="plot")
    years = list(counts.index)
    levels = [str(c) for c in counts.columns]                       # the floor first
    colours = ([colour(lv, policy) for lv in levels] if levels_of(policy)
               else level_colours(len(levels))[::-1])
    pos = np.arange(len(years), dtype=float)
    width = 0.42 if flows else 0.7
    ax = new_axes(ax, (max(5.0, 1.1 * len(years) + 2.5), 4.0))
    C = counts.to_numpy(float)
    bottoms = np.hstack([np.zeros((len(years), 1)), np.cumsum(C, axis=1)[:, :-1]])   # (years, levels)
    for j, lv in enumerate(levels):
        ax.bar(pos, C[:, j], width, bottom=bottoms[:, j], color=colours[j], edgecolor="white", linewidth=0.5,
               label=label(lv, policy), gid=lv)
    if flows:
        _flows(ax, frame, col, years, levels, bottoms, pos, width, colours)
    for d in ([] if marks is None else marks.columns):
        ax.plot(pos, marks[d].reindex(years).to_numpy(float), color=colour(d, policy), marker="o", markersize=4,
                label=label(d, policy), gid=d)
    ax.set_xticks(pos, [str(y) for y in years])
    ax.set_xlabel(label("year", policy))
    ax.set_ylabel(label("branches", policy))
    ax.set_title("Levels over the years" + (" and flows between them" if flows else ""))
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h[::-1], lab[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(ax)


#: The first name of :func:`level_flows`.
star_flows = level_flows
