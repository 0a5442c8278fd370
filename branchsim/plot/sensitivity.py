"""Figures of what-if analyses: sweeps, two-parameter grids, the transition matrix of a reform."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import (colour, designations_of, finish, finish_figure, label_panels, levels_of, new_axes, new_figure,
                    policy_of, require, styled)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from ..dynamics.history import History
    from ..policy import Policy
    from ..sensitivity.compare import Comparison

__all__ = ["sweep_lines", "heatmap", "transitions"]

# Outcomes counted in branches besides the levels and designations (one y-axis label fits them all).
_COUNTS = {"changed", "n"}
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


def _series(ax, sub, x, ys, bsub, bcols, policy, *, linestyle="-", suffix=""):
    if sub[x].duplicated().any():
        raise DataError(f"sweep_lines: {x!r} repeats within a line, so other parameters vary too; keep one "
                        "value of each other parameter (or use heatmap for two)", where="plot")
    sub = sub.sort_values(x)
    for i, y in enumerate(ys):
        col = colour(y, policy, i)
        ax.plot(sub[x], sub[y], color=col, linestyle=linestyle, marker="o", markersize=3,
                label=label(y, policy) + suffix)
        if y in bcols and bsub is not None and len(bsub):
            b = bsub.sort_values(x)
            ax.fill_between(b[x].to_numpy(float), b[bcols[y][0]].to_numpy(float),
                            b[bcols[y][1]].to_numpy(float), color=col, alpha=0.18, linewidth=0)


def _count_columns(frame) -> list[str]:
    """The count columns of a sweep frame: those between ``n`` and ``changed`` (levels, then designations)."""
    cols = [str(c) for c in frame.columns]
    if "n" in cols and "changed" in cols and cols.index("n") < cols.index("changed"):
        return cols[cols.index("n") + 1:cols.index("changed")]
    return []


def _sweep_defaults(frame, x, y, policy):
    """The swept column (the first parameter path) and the lines (every level but the floor, the designations)."""
    if x is None:
        x = next((str(c) for c in frame.columns if "." in str(c)), None)
        if x is None:
            raise DataError("sweep_lines: no parameter column (a dotted path) in the frame; pass x=", where="plot")
    if y is None:
        levels = levels_of(policy)
        if levels:
            y = [c for c in levels[:-1] + designations_of(policy) if c in frame]
        else:
            y = _count_columns(frame)
        if not y:
            raise DataError("sweep_lines: no level or designation columns found; pass y=", where="plot")
    return x, ([y] if isinstance(y, str) else list(y))


@styled
def sweep_lines(frame: pd.DataFrame, x: str | None = None, y: str | Sequence[str] | None = None,
                by: str | None = None, band: pd.DataFrame | bool | None = None, ax: Axes | None = None, *,
                fig: Figure | None = None, policy: Policy | None = None) -> Axes | Figure:
    """Outcomes of a sweep against one swept parameter, with optional uncertainty bands.

    Parameters
    ----------
    frame : DataFrame
        A :func:`~branchsim.sweep` result (or any frame with the columns).
    x : str, optional
        The swept parameter's column (default: the first dotted path).
    y : str or sequence of str, optional
        Outcome columns, one line each (default: every level of the policy
        but the floor, and the designations; without a policy, the count
        columns between ``n`` and ``changed``).
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
    policy : Policy, optional
        Names and colours of the levels and designations.

    Returns
    -------
    Axes or Figure
        Axes (one line per ``y``, per group with ``ax``); Figure with ``by``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> df = pd.DataFrame({"branch.satisfaction_share": [0.3, 0.4, 0.5], "n": 20, "top": [9, 8, 6],
    ...                    "bottom": [11, 12, 14], "changed": [2, 0, 3], "bottom_lo": [10, 11, 12],
    ...                    "bottom_hi": [12, 14, 16]})
    >>> ax = bp.sweep_lines(df)
    >>> len(ax.lines), len(ax.collections)          # two lines, one band
    (2, 1)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(frame, policy)
    x, ys = _sweep_defaults(frame, x, y, policy)
    require(frame, [x, *ys] + ([by] if by else []), "sweep_lines")
    bframe, bcols = _bands(frame, band, x, by, ys)
    if by is None:
        ax = new_axes(ax)
        _series(ax, frame, x, ys, bframe, bcols, policy)
        axes = [ax]
    else:
        groups = list(pd.unique(frame[by]))
        if ax is not None:
            for g, grp in enumerate(groups):
                bsub = bframe[bframe[by] == grp] if bcols else None
                _series(ax, frame[frame[by] == grp], x, ys, bsub, bcols, policy,
                        linestyle=_LINESTYLES[g % len(_LINESTYLES)], suffix=f" — {grp}")
            axes = [ax]
        else:
            fig, axes = new_figure(fig, len(groups), sharex=True)
            for a, grp in zip(axes, groups):
                bsub = bframe[bframe[by] == grp] if bcols else None
                _series(a, frame[frame[by] == grp], x, ys, bsub, bcols, policy)
                a.set_title(f"{by} = {label(grp, policy, kind=by)}")
    counted = _COUNTS | set(levels_of(policy)) | set(designations_of(policy)) | set(_count_columns(frame))
    ylabel = (label("branches", policy) if all(c in counted for c in ys)
              else ", ".join(label(c, policy) for c in ys))
    if by is not None and ax is None:
        label_panels(axes, label(x, policy), ylabel)
        h, lab = axes[0].get_legend_handles_labels()
        fig.legend(h, lab, loc="outside lower center", ncols=min(len(ys), 4))
        fig.suptitle(f"Sweep of {label(x, policy)} by {by}", x=0.01, ha="left", fontsize=11)
        for a in axes:
            finish(a)
        return finish_figure(fig)
    axes[0].set_xlabel(label(x, policy))
    axes[0].set_ylabel(ylabel)
    axes[0].set_title(f"Outcomes as {label(x, policy)} varies")
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
def heatmap(frame: pd.DataFrame, x: str, y: str, value: str, ax: Axes | None = None, *,
            annotate: bool | None = None, fmt: str | None = None, cmap: str = "viridis",
            policy: Policy | None = None) -> Axes:
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
    policy : Policy, optional
        Names of the levels and designations (and cut or quota paths).

    Returns
    -------
    Axes
        With a colourbar; one text per finite cell.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> df = pd.DataFrame({"a": [1, 1, 2, 2], "b": [10, 20, 10, 20], "count": [3, 5, 4, 8]})
    >>> ax = bp.heatmap(df, "a", "b", "count")
    >>> [t.get_text() for t in ax.texts]
    ['3', '4', '5', '8']
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(frame, policy)
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
    cbar = ax.figure.colorbar(im, ax=ax, label=label(value, policy))
    if annotate is None:
        annotate = Z.size <= 400
    if annotate:
        finite = Z[np.isfinite(Z)]
        fmt = fmt or ("{:.0f}" if np.allclose(finite, np.round(finite)) else "{:.3g}")
        _annotate(ax, Z, im, fmt)
    ax.set_xlabel(label(x, policy))
    ax.set_ylabel(label(y, policy))
    ax.set_title(label(value, policy))
    finish(cbar.ax, grid=None)
    return finish(ax, grid=None)


# Row and column names of the crosstabs: a Comparison's, and a History's pooled years.
_AXIS_NAMES = {"baseline": "baseline", "reform": "reform", "from": "from (year t)", "to": "to (year t + 1)"}


def _crosstab(obj, policy) -> pd.DataFrame:
    """The square crosstab of ``obj`` (a Comparison's, a History's pooled one, or a frame), in the scheme's order."""
    tab = getattr(obj, "transitions", obj)
    if callable(tab):
        tab = tab()
    if not isinstance(tab, pd.DataFrame) or tab.empty:
        raise DataError("transitions takes a Comparison, a History or a non-empty crosstab of counts",
                        where="plot")
    levels = levels_of(policy)
    present = {str(k) for k in (*tab.index, *tab.columns)}
    if levels and present <= set(levels):
        order = [lv for lv in levels if lv in present]       # every level either side has, best first
        names = (tab.index.name, tab.columns.name)
        tab = tab.set_axis([str(k) for k in tab.index], axis=0).set_axis([str(k) for k in tab.columns], axis=1)
        tab = tab.reindex(index=order, columns=order, fill_value=0).rename_axis(index=names[0], columns=names[1])
    return tab


@styled
def transitions(comparison_or_crosstab: Comparison | History | pd.DataFrame, ax: Axes | None = None, *,
                policy: Policy | None = None) -> Axes:
    """The transition matrix: level under the baseline (rows) against the reform (columns), diagonal boxed.

    Parameters
    ----------
    comparison_or_crosstab : Comparison, History or DataFrame
        A :func:`~branchsim.compare` result (its ``transitions``), a history
        (its pooled year-to-year ``transitions()``), or a square crosstab of
        counts indexed by level id.
    ax : matplotlib Axes, optional
    policy : Policy, optional
        Level names and order (default: the comparison's or history's policy).

    Returns
    -------
    Axes
        Cells coloured by share of their row, annotated with counts (one
        text per cell); the cells that keep their level have a black frame.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> a, b = p.levels[0], p.levels[-1]
    >>> tab = pd.DataFrame([[30, 5], [2, 60]], index=[a, b], columns=[a, b])
    >>> ax = bp.transitions(tab, policy=p)
    >>> len(ax.texts), len([q for q in ax.patches if q.get_gid() == "diagonal"])
    (4, 2)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(comparison_or_crosstab, policy)
    tab = _crosstab(comparison_or_crosstab, policy)
    T = tab.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = T / T.sum(axis=1, keepdims=True)
    ax = new_axes(ax, (5.6, 4.6))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    _annotate(ax, share, im, "", texts=np.vectorize(lambda v: f"{v:,.0f}")(T))
    from matplotlib.patches import Rectangle
    for i, r in enumerate(tab.index):
        for j, c in enumerate(tab.columns):      # a few levels
            if str(r) == str(c):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black",
                                       linewidth=2.0, gid="diagonal"))
    ax.set_xticks(range(T.shape[1]), [label(c, policy, wrap=True) for c in tab.columns])
    ax.set_yticks(range(T.shape[0]), [label(r, policy, wrap=True) for r in tab.index])
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    rows, cols = tab.index.name or "baseline", tab.columns.name or "reform"
    ax.set_ylabel(label(_AXIS_NAMES.get(rows, rows), policy))
    ax.set_xlabel(label(_AXIS_NAMES.get(cols, cols), policy))
    keep = sum(T[i, j] for i, r in enumerate(tab.index) for j, c in enumerate(tab.columns) if str(r) == str(c))
    total = T.sum()
    unit = "branch-years" if rows == "from" else "branches"
    ax.set_title(f"{total - keep:,.0f} of {total:,.0f} {unit} change level", loc="left", pad=4,
                 y=-0.12 if T.shape[0] < 8 else -0.08)
    cbar = ax.figure.colorbar(im, ax=ax, label="share of the row")
    finish(cbar.ax, grid=None)
    return finish(ax, grid=None)
