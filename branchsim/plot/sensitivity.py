"""Figures of what-if analyses: sweeps, two-parameter grids, the transition matrix of a reform."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import (colour, finish, finish_figure, label_panels, level_key, new_axes, new_figure, require,
                    styled)

__all__ = ["sweep_lines", "heatmap", "transitions"]

# Outcomes counted in branches (one y-axis label fits them all).
_COUNTS = {"five_star", "four_star", "three_star", "two_star", "one_star", "no_star", "weak", "changed", "n"}
_BAND_SUFFIXES = (("_lo", "_hi"), ("_lower", "_upper"), ("_low", "_high"))
_LINESTYLES = ("-", "--", ":", "-.")


def _band_columns(frame: pd.DataFrame, ys: list[str]) -> dict[str, tuple[str, str]]:
    """``{y: (lower column, upper column)}`` for the series that have a band in ``frame``."""
    out = {}
    for y in ys:
        for lo, hi in _BAND_SUFFIXES:
            if y + lo in frame and y + hi in frame:
                out[y] = (y + lo, y + hi)
                break
    if len(ys) == 1 and not out:
        for lo, hi in (("lo", "hi"), ("lower", "upper"), ("low", "high")):
            if lo in frame and hi in frame:
                out[ys[0]] = (lo, hi)
                break
    return out


def _bands(frame, band, x, by, ys):
    """The band frame and its columns, from ``band`` (a frame, True, None = auto, or False)."""
    if band is False:
        return None, {}
    source = frame if band is None or band is True else band
    if not isinstance(source, pd.DataFrame):
        raise DataError(f"sweep_lines: band must be a DataFrame, True, False or None, got "
                        f"{type(band).__name__}", where="plot")
    if x not in source and source.index.name == x:
        source = source.reset_index()
    cols = _band_columns(source, ys)
    if band is not None and band is not False and not cols:
        raise DataError(f"sweep_lines: the band frame has no lower/upper columns for {ys} (expected "
                        f"'<y>_lo'/'<y>_hi', '<y>_lower'/'<y>_upper'); it has {list(source.columns)}",
                        where="plot")
    if cols:
        require(source, [x] + ([by] if by else []), "sweep_lines band")
    return source, cols


def _series(ax, sub, x, ys, bsub, bcols, *, linestyle="-", suffix=""):
    if sub[x].duplicated().any():
        raise DataError(f"sweep_lines: {x!r} repeats within a line, so other parameters vary too; keep one "
                        "value of each other parameter (or use heatmap for two)", where="plot")
    sub = sub.sort_values(x)
    for i, y in enumerate(ys):
        col = colour(y, i)
        ax.plot(sub[x], sub[y], color=col, linestyle=linestyle, marker="o", markersize=3,
                label=label(y) + suffix)
        if y in bcols and bsub is not None and len(bsub):
            b = bsub.sort_values(x)
            ax.fill_between(b[x].to_numpy(float), b[bcols[y][0]].to_numpy(float),
                            b[bcols[y][1]].to_numpy(float), color=col, alpha=0.18, linewidth=0)


@styled
def sweep_lines(frame, x: str = "branch.satisfaction_share",
                y=("five_star", "four_star", "three_star", "weak"), by: str | None = None, band=None,
                ax=None, *, fig=None):
    """Outcomes of a sweep against one swept parameter, with optional uncertainty bands.

    Parameters
    ----------
    frame : DataFrame
        A :func:`~branchsim.sweep` result (or any frame with the columns).
    x : str
        The swept parameter's column.
    y : str or sequence of str
        Outcome columns, one line each.
    by : str, optional
        A group column (``"type"``): one panel per group (a Figure), or with
        ``ax`` all groups on that axes, one line style per group.
    band : DataFrame, bool or None
        Shaded bands: a frame with ``x`` (and ``by``) and ``<y>_lo`` /
        ``<y>_hi`` columns (``_lower``/``_upper`` also work; plain ``lo``/``hi``
        for a single ``y``), e.g. Monte Carlo 5–95 % per ``x``. ``None``
        draws bands from such columns of ``frame`` if it has them; ``False``
        draws none.
    ax : matplotlib Axes, optional
    fig : matplotlib Figure, optional
        For the panels of ``by``.

    Returns
    -------
    Axes or Figure
        Axes (one line per ``y``, per group with ``ax``); Figure with ``by``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> df = pd.DataFrame({"branch.satisfaction_share": [0.3, 0.4, 0.5], "five_star": [9, 8, 6],
    ...                    "weak": [3, 4, 6], "weak_lo": [2, 3, 4], "weak_hi": [4, 6, 8]})
    >>> ax = bp.sweep_lines(df, y=["five_star", "weak"])
    >>> len(ax.lines), len(ax.collections)          # two lines, one band
    (2, 1)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    ys = [y] if isinstance(y, str) else list(y)
    require(frame, [x, *ys] + ([by] if by else []), "sweep_lines")
    bframe, bcols = _bands(frame, band, x, by, ys)
    if by is None:
        ax = new_axes(ax)
        _series(ax, frame, x, ys, bframe, bcols)
        axes = [ax]
    else:
        groups = list(pd.unique(frame[by]))
        if ax is not None:
            for g, grp in enumerate(groups):
                bsub = bframe[bframe[by] == grp] if bcols else None
                _series(ax, frame[frame[by] == grp], x, ys, bsub, bcols,
                        linestyle=_LINESTYLES[g % len(_LINESTYLES)], suffix=f" — {grp}")
            axes = [ax]
        else:
            fig, axes = new_figure(fig, len(groups), sharex=True)
            for a, grp in zip(axes, groups):
                bsub = bframe[bframe[by] == grp] if bcols else None
                _series(a, frame[frame[by] == grp], x, ys, bsub, bcols)
                a.set_title(f"{by} = {grp}")
    ylabel = label("branches") if all(c in _COUNTS for c in ys) else ", ".join(map(label, ys))
    if by is not None and ax is None:
        label_panels(axes, label(x), ylabel)
        h, lab = axes[0].get_legend_handles_labels()
        fig.legend(h, lab, loc="outside lower center", ncols=min(len(ys), 4))
        fig.suptitle(f"Sweep of {label(x)} by {by}", x=0.01, ha="left", fontsize=11)
        for a in axes:
            finish(a)
        return finish_figure(fig)
    axes[0].set_xlabel(label(x))
    axes[0].set_ylabel(ylabel)
    axes[0].set_title(f"Outcomes as {label(x)} varies")
    axes[0].legend(fontsize=8 if by else 9)
    return finish(axes[0])


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float, np.integer, np.floating)) else str(v)


def _annotate(ax, Z, im, fmt, texts=None):
    """Write each finite cell's value (or ``texts``), dark or light by the cell's colour."""
    for (i, j), v in np.ndenumerate(Z):          # a loop over the cells of a small grid
        if not np.isfinite(v):
            continue
        r, g, b, _ = im.cmap(im.norm(v))
        light = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(j, i, fmt.format(v) if texts is None else texts[i, j], ha="center", va="center", fontsize=8,
                color="white" if light else "#222222")


@styled
def heatmap(frame, x: str, y: str, value: str, ax=None, *, annotate: bool | None = None,
            fmt: str | None = None, cmap: str = "viridis"):
    """A 2-D grid of a sweep: ``value`` by ``x`` (columns) and ``y`` (rows), annotated.

    Parameters
    ----------
    frame : DataFrame
        One row per grid point (e.g. a two-parameter :func:`~branchsim.sweep`).
    x, y, value : str
        Column names.
    ax : matplotlib Axes, optional
    annotate : bool, optional
        Write each cell's value (default: when the grid has at most 400 cells).
    fmt : str, optional
        Format of the annotations, e.g. ``"{:.2f}"`` (default: whole numbers
        when the values are, else 3 significant digits).
    cmap : str

    Returns
    -------
    Axes
        With a colourbar; one text per finite cell.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> df = pd.DataFrame({"a": [1, 1, 2, 2], "b": [10, 20, 10, 20], "weak": [3, 5, 4, 8]})
    >>> ax = bp.heatmap(df, "a", "b", "weak")
    >>> [t.get_text() for t in ax.texts]
    ['3', '4', '5', '8']
    >>> matplotlib.pyplot.close(ax.figure)
    """
    require(frame, [x, y, value], "heatmap")
    dup = frame.duplicated([x, y])
    if dup.any():
        raise DataError(f"heatmap: {int(dup.sum())} rows repeat an ({x}, {y}) pair; keep one value of every "
                        "other parameter (and one group) first", where="plot")
    grid = frame.pivot(index=y, columns=x, values=value).sort_index().sort_index(axis=1)
    Z = grid.to_numpy(float)
    ax = new_axes(ax, (6.0, 4.4))
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(Z.shape[1]), [_fmt(v) for v in grid.columns])
    ax.set_yticks(range(Z.shape[0]), [_fmt(v) for v in grid.index])
    cbar = ax.figure.colorbar(im, ax=ax, label=label(value))
    if annotate is None:
        annotate = Z.size <= 400
    if annotate:
        finite = Z[np.isfinite(Z)]
        fmt = fmt or ("{:.0f}" if np.allclose(finite, np.round(finite)) else "{:.3g}")
        _annotate(ax, Z, im, fmt)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(label(value))
    finish(cbar.ax, grid=None)
    return finish(ax, grid=None)


# Row and column names of the crosstabs: a Comparison's, and a History's pooled years.
_AXIS_NAMES = {"baseline": "baseline", "reform": "reform", "from": "from (year t)", "to": "to (year t + 1)"}


@styled
def transitions(comparison_or_crosstab, ax=None):
    """The transition matrix: baseline star (rows) against reform star (columns), diagonal boxed.

    Parameters
    ----------
    comparison_or_crosstab : Comparison, History or DataFrame
        A :func:`~branchsim.compare` result (its ``transitions``), a history
        (its pooled year-to-year ``transitions()``), or a square crosstab of
        counts indexed by star level.
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
        Cells coloured by share of their row, annotated with counts (one
        text per cell); the cells that keep their star have a black frame.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> tab = pd.DataFrame([[30, 5], [2, 60]], index=[4, 3], columns=[4, 3])
    >>> ax = bp.transitions(tab)
    >>> len(ax.texts), len([p for p in ax.patches if p.get_gid() == "diagonal"])
    (4, 2)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    tab = getattr(comparison_or_crosstab, "transitions", comparison_or_crosstab)
    if callable(tab):
        tab = tab()
    if not isinstance(tab, pd.DataFrame) or tab.empty:
        raise DataError("transitions takes a Comparison, a History or a non-empty crosstab of counts",
                        where="plot")
    T = tab.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = T / T.sum(axis=1, keepdims=True)
    ax = new_axes(ax, (5.6, 4.6))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    _annotate(ax, share, im, "", texts=np.vectorize(lambda v: f"{v:,.0f}")(T))
    from matplotlib.patches import Rectangle
    for i, r in enumerate(tab.index):
        for j, c in enumerate(tab.columns):      # a few star levels
            if r == c:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black",
                                       linewidth=2.0, gid="diagonal"))
    ax.set_xticks(range(T.shape[1]), [label(level_key(c), wrap=True) for c in tab.columns])
    ax.set_yticks(range(T.shape[0]), [label(level_key(r), wrap=True) for r in tab.index])
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    rows, cols = tab.index.name or "baseline", tab.columns.name or "reform"
    ax.set_ylabel(label(_AXIS_NAMES.get(rows, rows)))
    ax.set_xlabel(label(_AXIS_NAMES.get(cols, cols)))
    keep = sum(T[i, j] for i, r in enumerate(tab.index) for j, c in enumerate(tab.columns) if r == c)
    total = T.sum()
    unit = "branch-years" if rows == "from" else "branches"
    ax.set_title(f"{total - keep:,.0f} of {total:,.0f} {unit} change star", loc="left", pad=4,
                 y=-0.12 if T.shape[0] < 8 else -0.08)
    cbar = ax.figure.colorbar(im, ax=ax, label="share of the row")
    finish(cbar.ax, grid=None)
    return finish(ax, grid=None)
