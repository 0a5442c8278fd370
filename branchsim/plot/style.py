"""What every plot function shares: one look (colours, fonts, axes) and its input checks.

Each public plot function runs under :func:`styled` (a ``matplotlib.rc_context``)
so the user's global ``rcParams`` are untouched; :func:`style` is the same
context for a figure of one's own (its fonts draw the Chinese labels); :func:`finish` then fixes the
fonts of an axes the user passed in (axes made outside the context keep the
fonts they were made with, which may lack the Chinese glyphs).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import font_families

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from ..policy import Policy

__all__ = ["style", "FLOOR_COLOUR", "DESIGNATION_COLOURS", "FRAGILE_COLOUR", "PUBLISHED_COLOUR", "level_colours",
           "colour", "policy_of", "levels_of", "designations_of", "styled", "finish", "finish_figure", "new_axes",
           "new_figure", "label_panels", "require"]

P = ParamSpec("P")
R = TypeVar("R")

# Levels: one sequential blue scale over the levels above the floor (darker = better), the floor grey;
# designations (a weak-and-lax list, say): reds.
LEVEL_CMAP = "Blues"
FLOOR_COLOUR = "#bdbdbd"
DESIGNATION_COLOURS = ("#d62728", "#8c1d18", "#ff9896", "#e6550d")
FRAGILE_COLOUR = "#ff7f0e"
PUBLISHED_COLOUR = "#252525"
_OTHER = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def level_colours(n: int) -> list[str]:
    """Colours of ``n`` levels, best first: a sequential blue scale, the floor (last) grey.

    >>> level_colours(3)
    ['#08306b', '#a6cee4', '#bdbdbd']
    >>> len(set(level_colours(12))) == 12
    True
    """
    import matplotlib
    from matplotlib.colors import to_hex
    cmap = matplotlib.colormaps[LEVEL_CMAP]
    above = max(int(n) - 1, 0)
    stops = [0.75] if above == 1 else list(np.linspace(1.0, 0.35, above))
    return [to_hex(cmap(s)) for s in stops[:above]] + ([FLOOR_COLOUR] if n >= 1 else [])


def policy_of(obj, policy=None):
    """The policy a plot reads its scheme from: ``policy``, else the object's own (or its baseline's)."""
    if policy is not None or isinstance(obj, (pd.DataFrame, pd.Series)):
        return policy
    for holder in (obj, getattr(obj, "baseline", None)):
        found = getattr(holder, "policy", None)
        if found is not None and hasattr(found, "scheme"):
            return found
    return None


def levels_of(policy) -> list[str]:
    """The branch level ids of ``policy``, best first (empty without a policy)."""
    return [] if policy is None else list(policy.scheme.branch.levels.ids)


def designations_of(policy) -> list[str]:
    """The designation ids of ``policy`` (empty without a policy)."""
    return [] if policy is None else [d.id for d in policy.scheme.branch.designations]


def colour(key: str, policy: Policy | None = None, i: int = 0) -> str:
    """The colour of a level (by its rank in the scheme), a designation (red) or, else, the ``i``-th other colour.

    A probability column ``p_<id>`` has the colour of ``<id>``.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> colour(p.levels[-1], p), colour("anything", i=1)
    ('#bdbdbd', '#9467bd')
    """
    key = str(key)
    levels, designations = levels_of(policy), designations_of(policy)
    if key not in levels and key not in designations and key.startswith("p_"):
        key = key[2:]
    if key in levels:
        return level_colours(len(levels))[levels.index(key)]
    if key in designations:
        return DESIGNATION_COLOURS[designations.index(key) % len(DESIGNATION_COLOURS)]
    return _OTHER[i % len(_OTHER)]


_RC = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.titlesize": 11,
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.8,
    "axes.unicode_minus": True,
}


def _rc() -> dict:
    fam = font_families()       # named families, not "sans-serif": only a list of names falls back per glyph
    return {**_RC, "font.family": fam, "font.sans-serif": fam}


def style() -> AbstractContextManager[None]:
    """The package's look for a figure of your own: a context manager (``rcParams`` restored on exit).

    Inside it, :func:`branchsim.plot.label` and the figure's fonts agree: the
    font list is DejaVu Sans and, if one is installed, a CJK font, so labels
    are Chinese with English exactly when that font can draw them. Draw (or
    ``plt.show()``) the figure inside the block: text drawn later uses the
    fonts in force then.

    Examples
    --------
    >>> import io
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import branchsim.plot as bp
    >>> with bp.style():
    ...     fig, ax = plt.subplots()
    ...     _ = ax.set_xlabel(bp.label("level"))
    ...     fig.savefig(io.BytesIO())        # no glyph is missing, whichever label was chosen
    >>> plt.close(fig)
    >>> bp.label("level") in ("level", "等次 (level)")
    True
    """
    import matplotlib
    return matplotlib.rc_context(_rc())


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function under the package style (its rcParams restored afterwards)."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with style():
            return func(*args, **kwargs)
    return wrapper


def finish(ax, *, grid: str | None = "y"):
    """Fonts, spines and grid of one axes, whatever rcParams it was made under."""
    from matplotlib.text import Text
    fam = font_families()
    for t in ax.findobj(Text):
        t.set_fontfamily(fam)
    ax.tick_params(labelfontfamily=fam)       # ticks made later, at draw time, too
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.set_axisbelow(True)
    if grid:
        ax.grid(True, axis=grid, color=_RC["grid.color"], linewidth=_RC["grid.linewidth"])
    return ax


def finish_figure(fig):
    """Fonts of the figure-level texts (suptitle, figure legend); returns ``fig``."""
    from matplotlib.text import Text
    fam = font_families()
    for t in fig.findobj(Text):
        t.set_fontfamily(fam)
    return fig


def require(frame, cols, what: str) -> None:
    """Raise a :class:`DataError` naming the columns ``frame`` lacks (and those it has)."""
    if not hasattr(frame, "columns"):
        raise DataError(f"{what}: expected a result object or a DataFrame, got {type(frame).__name__}",
                        where="plot")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: the frame has no column(s) {missing}; it has {list(frame.columns)}",
                        where="plot")


def new_axes(ax, figsize=(6.4, 4.0)):
    """``ax`` itself, or the axes of a new figure (pyplot, so notebooks show it)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def new_figure(fig, n: int, *, ncols: int = 3, panel=(3.6, 3.0), sharex=False, sharey=False):
    """``n`` panels on ``fig`` (a new figure if None): the figure and a flat list of axes."""
    import matplotlib.pyplot as plt
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    if fig is None:
        fig = plt.figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)).ravel()
    for extra in axes[n:]:
        extra.remove()
    for i, a in enumerate(axes[:n]):
        if i + ncols >= n:              # nothing below it: it shows the x tick labels
            a.xaxis.set_tick_params(labelbottom=True)
    return fig, list(axes[:n])


def label_panels(axes, xlabel: str, ylabel: str) -> None:
    """Axis labels on the outer panels only: x on the lowest panel of each column, y on the first column."""
    ncols = axes[0].get_subplotspec().get_gridspec().ncols
    for i, a in enumerate(axes):
        a.set_xlabel(xlabel if i + ncols >= len(axes) else "")
        a.set_ylabel(ylabel if i % ncols == 0 else "")
