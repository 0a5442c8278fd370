"""Figures over years: the star distribution and the flows of branches between star levels."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import WEAK_COLOUR, colour, finish, level_int, level_key, new_axes, styled

__all__ = ["star_flows"]


def _counts(frame: pd.DataFrame):
    """Year × level counts (level ints, ascending), weak per year (or None), and whether tidy."""
    if {"year", "stars"} <= set(frame.columns):
        counts = pd.crosstab(frame["year"], frame["stars"].astype(int))
        weak = frame.groupby("year")["weak"].sum() if "weak" in frame else None
        return counts.reindex(columns=sorted(counts.columns)), weak, True
    table = frame.set_index("year") if "year" in frame.columns else frame
    levels = {c: level_int(c) for c in table.columns if level_int(c) is not None}
    if not levels:
        raise DataError("star_flows takes a History, a tidy frame with columns year and stars (and "
                        "branch_id for flows), or a year × level count table (columns five_star … "
                        f"no_star); got columns {list(frame.columns)}", where="plot")
    counts = table[list(levels)].rename(columns=levels)
    weak = table["weak"] if "weak" in table.columns else None
    return counts.reindex(columns=sorted(counts.columns)), weak, False


def _ribbon(x0, a0, a1, x1, b0, b1):
    """A band from ``[a0, a1]`` at ``x0`` to ``[b0, b1]`` at ``x1`` with S-shaped edges."""
    from matplotlib.path import Path
    xm = (x0 + x1) / 2
    verts = [(x0, a0), (xm, a0), (xm, b0), (x1, b0), (x1, b1), (xm, b1), (xm, a1), (x0, a1), (x0, a0)]
    codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4, Path.CURVE4,
             Path.CURVE4, Path.CLOSEPOLY]
    return Path(verts, codes)


def _flows(ax, frame, years, levels, bottoms, pos, width):
    """Ribbons between consecutive years: one per (from, to) pair of levels with branches in it."""
    from matplotlib.patches import PathPatch
    wide = frame.pivot(index="branch_id", columns="year", values="stars")
    for t in range(len(years) - 1):                      # a loop over years
        pair = wide[[years[t], years[t + 1]]].dropna().astype(int)
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
                                           b0, b0 + T[i, j]), facecolor=colour(levels[i]), alpha=0.35,
                                   linewidth=0, gid="flow"))


@styled
def star_flows(history_or_frame, ax=None, *, flows: bool | None = None):
    """Branches per star level in each year (stacked bars), with the flows between years.

    Parameters
    ----------
    history_or_frame : History or DataFrame
        A :class:`~branchsim.dynamics.History` (its ``branches``), a tidy
        frame with one row per branch-year (``year``, ``stars``, optionally
        ``branch_id`` and ``weak``), or a year × level count table like
        ``History.star_distribution()`` (columns ``five_star`` … ``no_star``
        or star numbers, optionally ``weak``).
    ax : matplotlib Axes, optional
    flows : bool, optional
        Draw ribbons from each year's levels to the next year's (needs
        ``branch_id``). Default: whenever the frame has branch ids.

    Returns
    -------
    Axes
        One bar per year and level (no star at the bottom), ribbons with
        ``gid="flow"``, and a red line of weak branches when known.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> h = pd.DataFrame({"year": [0, 0, 0, 1, 1, 1], "branch_id": list("abcabc"),
    ...                   "stars": [5, 3, 0, 5, 0, 0]})
    >>> ax = bp.star_flows(h)
    >>> len(ax.containers), len([p for p in ax.patches if p.get_gid() == "flow"])
    (3, 3)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    frame = getattr(history_or_frame, "branches", history_or_frame)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"star_flows takes a History or a DataFrame, got {type(frame).__name__}",
                        where="plot")
    counts, weak, tidy = _counts(frame)
    can_flow = tidy and "branch_id" in frame.columns
    flows = can_flow and len(counts) > 1 if flows is None else flows
    if flows and not can_flow:
        raise DataError("star_flows(flows=True) needs one row per branch-year with columns year, stars and "
                        "branch_id", where="plot")
    years = list(counts.index)
    levels = list(counts.columns)
    pos = np.arange(len(years), dtype=float)
    width = 0.42 if flows else 0.7
    ax = new_axes(ax, (max(5.0, 1.1 * len(years) + 2.5), 4.0))
    C = counts.to_numpy(float)
    bottoms = np.hstack([np.zeros((len(years), 1)), np.cumsum(C, axis=1)[:, :-1]])   # (years, levels)
    for j, lv in enumerate(levels):
        ax.bar(pos, C[:, j], width, bottom=bottoms[:, j], color=colour(lv), edgecolor="white", linewidth=0.5,
               label=label(level_key(lv)))
    if flows:
        _flows(ax, frame, years, levels, bottoms, pos, width)
    if weak is not None:
        ax.plot(pos, weak.reindex(years).to_numpy(float), color=WEAK_COLOUR, marker="o", markersize=4,
                label=label("weak"))
    ax.set_xticks(pos, [str(y) for y in years])
    ax.set_xlabel(label("year"))
    ax.set_ylabel(label("branches"))
    ax.set_title("Star levels over the years" + (" and flows between them" if flows else ""))
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h[::-1], lab[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(ax)
