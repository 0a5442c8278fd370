"""The member scoring schemes' comparison over monthly noise and monthly bias, with where it reverses."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .sensitivity import _annotate, _fmt
from .style import finish, new_axes, require, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["scheme_grid"]

_MEASURES = {"misclassified": ("difference", "misgraded: records − year-end"),
             "spearman": ("rank_difference", "rank correlation with truth: year-end − records")}


@styled
def scheme_grid(grid: pd.DataFrame, ax: Axes | None = None, *, measure: str = "misclassified",
                annotate: bool = True) -> Axes:
    """Heatmap of the record scheme minus the year-end appraisal, with the line where the better one changes.

    Parameters
    ----------
    grid : DataFrame
        From :func:`branchsim.dynamics.member_scheme_grid`: monthly bias
        (columns of the map) by monthly noise (rows).
    ax : matplotlib Axes, optional
    measure : {"misclassified", "spearman"}
        ``difference`` (share misgraded, records − year-end) or
        ``rank_difference`` (rank correlation with true quality, year-end −
        records). Below 0 (blue): the record scheme is better.
    annotate : bool
        Write each cell's value.

    Returns
    -------
    Axes
        With a colourbar; the crossing of each row (where the sign changes
        along the monthly bias, as :func:`branchsim.dynamics.scheme_reversals`
        finds it) is marked ``x`` (a line of markers, gid ``"crossing"``); on
        a grid of at least 2 × 2 with both signs, a dashed contour (gid
        ``"boundary"``) follows the tie between cells in both directions.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> g = pd.DataFrame({"month_noise": [0.1, 0.1, 0.3, 0.3], "monthly_bias": [0.0, 2.0, 0.0, 2.0],
    ...                   "difference": [-0.2, 0.2, -0.1, 0.3]})
    >>> ax = bp.scheme_grid(g)
    >>> [round(float(x), 2) for x in ax.get_lines()[0].get_xdata()]     # column positions of the crossings
    [0.5, 0.25]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    from matplotlib.colors import TwoSlopeNorm

    from ..dynamics.schemes import scheme_reversals
    if measure not in _MEASURES:
        raise DataError(f"scheme_grid: measure={measure!r}; allowed: {', '.join(_MEASURES)}", where="plot")
    column, title = _MEASURES[measure]
    require(grid, ["month_noise", "monthly_bias", column], "scheme_grid")
    table = grid.pivot(index="month_noise", columns="monthly_bias", values=column).sort_index().sort_index(axis=1)
    Z = table.to_numpy(float)
    finite = Z[np.isfinite(Z)]
    span = float(np.max(np.abs(finite))) if finite.size and np.max(np.abs(finite)) > 0 else 1.0
    ax = new_axes(ax, (6.0, 4.0))
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap="RdBu_r", interpolation="nearest",
                   norm=TwoSlopeNorm(0.0, -span, span))
    ax.set_xticks(range(Z.shape[1]), [_fmt(v) for v in table.columns])
    ax.set_yticks(range(Z.shape[0]), [_fmt(v) for v in table.index])
    cbar = ax.figure.colorbar(im, ax=ax, label=title)
    if annotate:
        _annotate(ax, Z, im, "{:+.3f}")
    if min(Z.shape) >= 2 and np.nanmin(Z) < 0 < np.nanmax(Z):       # where the schemes tie, between cells
        ax.contour(np.arange(Z.shape[1]), np.arange(Z.shape[0]), Z, levels=[0.0], colors="k",
                   linewidths=1.0, linestyles="--").set_gid("boundary")
    cross = scheme_reversals(grid, along="monthly_bias", measure=measure)["crossing"].reindex(table.index)
    rows = np.flatnonzero(cross.notna().to_numpy())
    if len(rows):
        xs = np.interp(cross.to_numpy(float)[rows], table.columns.to_numpy(float), np.arange(Z.shape[1]))
        ax.plot(xs, rows, color="k", marker="x", markersize=8, lw=0, gid="crossing",
                label="schemes cross (along the bias)")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(0, -0.14), fontsize=8)
    ax.set_xlabel("monthly bias (× the year-end appraisal's)")
    ax.set_ylabel("monthly noise")
    ax.set_title(f"Records against the year-end appraisal ({title})", fontsize=10)
    finish(cbar.ax, grid=None)
    return finish(ax, grid=None)
