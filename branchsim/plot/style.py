"""What every plot function shares: one look (colours, fonts, axes) and its input checks.

Each public plot function runs under :func:`styled` (a ``matplotlib.rc_context``)
so the user's global ``rcParams`` are untouched; :func:`style` is the same
context for a figure of one's own (its fonts draw the Chinese labels); :func:`finish` then fixes the
fonts of an axes the user passed in (axes made outside the context keep the
fonts they were made with, which may lack the Chinese glyphs).
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import DataError
from ..evaluate import STAR_NAMES
from .labels import font_families

__all__ = ["style", "STAR_COLOURS", "WEAK_COLOUR", "FRAGILE_COLOUR", "PUBLISHED_COLOUR", "level_key", "level_int",
           "colour", "styled", "finish", "finish_figure", "new_axes", "new_figure", "label_panels", "require"]

# Stars: one sequential blue scale (darker = more stars); weak designation: red.
STAR_COLOURS = {5: "#08306b", 4: "#2171b5", 3: "#6baed6", 2: "#9ecae1", 1: "#c6dbef", 0: "#bdbdbd"}
WEAK_COLOUR = "#d62728"
FRAGILE_COLOUR = "#ff7f0e"
PUBLISHED_COLOUR = "#252525"
_OTHER = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_NAME_TO_LEVEL = {v: k for k, v in STAR_NAMES.items()}

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


def level_key(level) -> str:
    """``5`` / ``"5"`` / ``"five_star"`` -> ``"five_star"`` (other names unchanged)."""
    try:
        return STAR_NAMES[int(level)]
    except (TypeError, ValueError, KeyError):
        return str(level)


def level_int(name) -> int | None:
    """``"five_star"`` / ``5`` -> 5; None for anything that is not a star level."""
    if name in _NAME_TO_LEVEL:
        return _NAME_TO_LEVEL[name]
    try:
        v = int(name)
    except (TypeError, ValueError):
        return None
    return v if v in STAR_NAMES else None


def colour(key, i: int = 0) -> str:
    """The colour of a star level or ``weak``; the ``i``-th other colour for anything else."""
    lv = level_int(key)
    if lv is not None:
        return STAR_COLOURS[lv]
    if key in ("weak", "p_weak"):
        return WEAK_COLOUR
    return _OTHER[i % len(_OTHER)]


def _rc() -> dict:
    fam = font_families()       # named families, not "sans-serif": only a list of names falls back per glyph
    return {**_RC, "font.family": fam, "font.sans-serif": fam}


def style():
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
    ...     _ = ax.set_xlabel(bp.label("stars"))
    ...     fig.savefig(io.BytesIO())        # no glyph is missing, whichever label was chosen
    >>> plt.close(fig)
    >>> bp.label("stars") in ("star level", "星級 (star level)")
    True
    """
    import matplotlib
    return matplotlib.rc_context(_rc())


def styled(func):
    """Run a plot function under the package style (its rcParams restored afterwards)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
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
