"""Figures of the screening, discovery, fitting and accuracy analyses, one function per analysis.

* :func:`morris` — :func:`branchsim.morris`: μ* (with its interval) and σ per factor;
* :func:`prim_boxes` — :func:`branchsim.discover`: the PRIM box within each factor's range;
* :func:`fragility_curve` — :func:`branchsim.fragility_curve`: branches near a boundary against the survey share;
* :func:`cut_point_fit` — :func:`branchsim.fit_cut_points`: each fitted cut and its range, over the scores;
* :func:`member_schemes` — :func:`branchsim.compare_member_schemes`: bias, rank correlation, misgrading;
* :func:`rule_accuracy` — :func:`branchsim.rule_accuracy`: misses and false alarms with their
  Clopper–Pearson intervals and the events they rest on, per year or pooled per rule.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import textwrap

import numpy as np
import pandas as pd

from ..errors import DataError
from .gsa import factor_panels, select_outputs
from .labels import label
from .style import (PUBLISHED_COLOUR, colour, finish, finish_figure, level_colours, new_axes,
                    new_figure, policy_of, require, styled)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike
    from ..evaluate import Result
    from ..policy import Policy
    from ..sensitivity.discovery import Discovery

__all__ = ["morris", "prim_boxes", "fragility_curve", "cut_point_fit", "member_schemes", "rule_accuracy"]

_ERR = {"ecolor": "#444444", "capsize": 2, "elinewidth": 0.8}


def _order(values: pd.Series) -> list:
    """Index of ``values`` largest first; ties (after rounding away summation noise) by name."""
    key = pd.DataFrame({"v": np.round(values.to_numpy(float), 9), "k": [str(i) for i in values.index]},
                       index=values.index)
    return list(key.sort_values(["v", "k"], ascending=[False, True], na_position="last", kind="stable").index)


# -- Morris screening ----------------------------------------------------------------------------
def _morris_panel(ax, sub, order):
    sub = sub.set_index("factor").reindex(order)
    k, h = len(order), 0.38
    pos = np.arange(k)[::-1]
    dark, light = level_colours(3)[:2]
    conf = sub["mu_star_conf"].to_numpy(float) if "mu_star_conf" in sub else None
    for off, name, text, c, err in ((h / 2, "mu_star", "μ* (mean |effect|)", dark, conf),
                                    (-h / 2, "sigma", "σ (spread of effects)", light, None)):
        bars = ax.barh(pos + off, np.nan_to_num(sub[name].to_numpy(float)), h, color=c, label=text,
                       xerr=None if err is None else np.nan_to_num(err), error_kw=_ERR)
        for b, f in zip(bars, order):
            b.set_gid(f"{name}:{f}")
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_yticks(pos, [str(f) for f in order])


@styled
def morris(frame: pd.DataFrame, output: str | Sequence[str] | None = None, ax: Axes | None = None, *,
           fig: Figure | None = None, policy: Policy | None = None) -> Axes | Figure:
    """Morris screening: μ* (whiskers: its confidence interval) and σ of each factor's elementary effects.

    Parameters
    ----------
    frame : DataFrame
        A :func:`~branchsim.morris` result: ``factor, mu_star, sigma`` and
        optionally ``output, mu_star_conf``.
    output : str or list of str, optional
        Outputs to show (default: all); one panel each.
    ax : matplotlib Axes, optional
        For a single output.
    fig : matplotlib Figure, optional
        For several outputs.
    policy : Policy, optional
        Names of outputs that are levels or designations.

    Returns
    -------
    Axes or Figure
        Two bars per factor (gids ``mu_star:<factor>``, ``sigma:<factor>``),
        factors by mean μ* over the outputs, largest on top.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> m = pd.DataFrame({"output": "count", "factor": ["a", "b"], "mu_star": [1.0, 4.0],
    ...                   "mu_star_conf": [0.5, 1.0], "sigma": [0.2, 3.0]})
    >>> ax = bp.morris(m)
    >>> len(ax.patches), [t.get_text() for t in ax.get_yticklabels()]
    (4, ['b', 'a'])
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(frame, policy)
    require(frame, ["factor", "mu_star", "sigma"], "morris")
    df = frame if "output" in frame else frame.assign(output="output")
    df, outs = select_outputs(df, output, "morris")
    if df.duplicated(["output", "factor"]).any():
        raise DataError("morris: a factor repeats within an output; pass one Morris result", where="plot")
    order = _order(df.groupby("factor", sort=False)["mu_star"].mean())
    xlabel = "elementary effect" + (" (whiskers: μ* interval)" if "mu_star_conf" in df else "")
    return factor_panels(df, outs, order, lambda a, sub: _morris_panel(a, sub, order), "Morris screening",
                         xlabel, ax, fig, policy, "morris")


# -- PRIM boxes ----------------------------------------------------------------------------------
@styled
def prim_boxes(discovery: Discovery | pd.DataFrame, ax: Axes | None = None, *, all_factors: bool = False) -> Axes:
    """A PRIM box: each restricted factor's box drawn within its full range, with density and coverage.

    Parameters
    ----------
    discovery : Discovery or DataFrame
        A :func:`~branchsim.discover` (or :func:`~branchsim.sensitivity.discovery.prim`)
        result, or its ``.box`` frame (``factor, low, high, full_low,
        full_high`` and optionally ``restricted``).
    ax : matplotlib Axes, optional
    all_factors : bool
        Draw the unrestricted factors too (their box fills the range).

    Returns
    -------
    Axes
        Per factor a grey bar (its full range, gid ``full:<factor>``) and the
        box on it (gid ``box:<factor>``), on a 0–1 scale of the range, the
        box's ends written beside it; the title gives the box's density,
        coverage and support and the base rate (from a Discovery).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> box = pd.DataFrame({"factor": ["a", "b"], "low": [0.6, 0.0], "high": [1.0, 10.0],
    ...                     "restricted": [True, False], "full_low": [0.0, 0.0], "full_high": [1.0, 10.0]})
    >>> ax = bp.prim_boxes(box)
    >>> [(p.get_gid(), round(float(p.get_x()), 2), round(float(p.get_width()), 2)) for p in ax.patches]
    [('full:a', 0.0, 1.0), ('box:a', 0.6, 0.4)]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    box = getattr(discovery, "box", discovery)
    require(box, ["factor", "low", "high", "full_low", "full_high"], "prim_boxes")
    vals = box[["low", "high", "full_low", "full_high"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(vals).all():
        raise DataError("prim_boxes: low, high, full_low and full_high must be finite numbers", where="plot")
    lo, hi, flo, fhi = vals.T
    restricted = box["restricted"].to_numpy(bool) if "restricted" in box else (lo > flo) | (hi < fhi)
    keep = np.ones(len(box), bool) if all_factors else restricted
    span = np.where(fhi > flo, fhi - flo, 1.0)
    a, b = (lo - flo) / span, (hi - flo) / span
    rows = np.flatnonzero(keep)
    ax = new_axes(ax, (6.4, 0.42 * max(len(rows), 1) + 1.6))
    pos = np.arange(len(rows))[::-1]
    names = [str(f) for f in box["factor"]]
    for y, i in zip(pos, rows):                  # a loop over the few factors
        ax.barh(y, 1.0, 0.55, color="#eeeeee", edgecolor="#bbbbbb", gid=f"full:{names[i]}")
        ax.barh(y, b[i] - a[i], 0.55, left=a[i], color=colour("box", i=1 if restricted[i] else 6),
                gid=f"box:{names[i]}")
        ax.text(a[i], y + 0.33, f"{lo[i]:.4g}", ha="center", va="bottom", fontsize=8)
        ax.text(b[i], y + 0.33, f"{hi[i]:.4g}", ha="center", va="bottom", fontsize=8)
    if not len(rows):
        ax.text(0.5, 0.5, "no factor restricted: no box beats the whole space", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="#555555")
    ax.set_yticks(pos, [names[i] for i in rows])
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.1)
    ax.set_xlabel("position within the factor's sampled range (0 = low end, 1 = high end)")
    if hasattr(discovery, "density"):
        ax.set_title(f"Box where {discovery.label}\ndensity {discovery.density:.0%}, coverage "
                     f"{discovery.coverage:.0%}, support {discovery.support:.0%} (base rate {discovery.base_rate:.0%})")
    else:
        ax.set_title("PRIM box")
    return finish(ax, grid="x")


# -- fragility curve -----------------------------------------------------------------------------
_FRAGILITY = ("satisfaction_share", "n", "fragile", "share_fragile")


def _boundary_label(kind: str, policy) -> str:
    """``<level> cut`` for a level's boundary, ``<designation> line`` for a designation's (``<id>.<criterion>``)."""
    head = kind.split(".", 1)[0]
    return f"{label(head, policy)} line" if "." in kind else label(f"branch.rating.cuts.{kind}", policy)


@styled
def fragility_curve(frame: pd.DataFrame, ax: Axes | None = None, *, y: str = "fragile", boundaries: bool = True,
                    policy: Policy | None = None) -> Axes:
    """Branches within ±δ of a level boundary as the survey share varies, per boundary.

    Parameters
    ----------
    frame : DataFrame
        A :func:`~branchsim.fragility_curve` result: ``satisfaction_share,
        n, fragile, share_fragile``, ``within_<boundary>`` and, with ``by=``,
        the group column.
    ax : matplotlib Axes, optional
    y : {"fragile", "share_fragile"}
        Count of branches or their share.
    boundaries : bool
        With ``y="fragile"`` and no groups: one dashed line per boundary
        (``within_<boundary>``), coloured by its level.
    policy : Policy, optional
        Names and colours of the levels and designations.

    Returns
    -------
    Axes
        One solid line of ``y`` (per group), dashed lines per boundary.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> f = pd.DataFrame({"satisfaction_share": [0.2, 0.4], "n": 50, "fragile": [7, 9],
    ...                   "share_fragile": [0.14, 0.18], "within_top": [3, 5], "within_mid": [4, 5]})
    >>> ax = bp.fragility_curve(f)
    >>> [l.get_ydata().tolist() for l in ax.lines]
    [[7, 9], [3, 5], [4, 5]]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(frame, policy)
    require(frame, list(_FRAGILITY), "fragility_curve")
    if y not in ("fragile", "share_fragile"):
        raise DataError(f"fragility_curve: y={y!r}; allowed: 'fragile', 'share_fragile'", where="plot")
    within = [str(c) for c in frame.columns if str(c).startswith("within_")]
    extra = [c for c in frame.columns if c not in _FRAGILITY and str(c) not in within]
    if len(extra) > 1:
        raise DataError(f"fragility_curve: one group column expected besides the curve's, got {extra}",
                        where="plot")
    by = extra[0] if extra else None
    x = "satisfaction_share"
    ax = new_axes(ax)
    groups = list(pd.unique(frame[by])) if by else [None]
    for i, g in enumerate(groups):
        sub = frame if g is None else frame[frame[by] == g]
        if sub[x].duplicated().any():
            raise DataError(f"fragility_curve: {x} repeats within a curve; pass one fragility_curve result",
                            where="plot")
        sub = sub.sort_values(x, kind="stable")
        name = label(y, policy) if g is None else label(g, policy, kind=by)
        ax.plot(sub[x], sub[y], marker="o", markersize=3, gid=f"{y}:{g}" if by else y,
                color=PUBLISHED_COLOUR if g is None else colour(g, policy, i), label=name)
        if g is None and boundaries and y == "fragile":
            for j, col in enumerate(within):
                kind = col[len("within_"):]
                ax.plot(sub[x], sub[col], linestyle="--", marker=".", gid=col,
                        color=colour(kind.split(".", 1)[0], policy, j), label=_boundary_label(kind, policy))
    ax.set_xlabel(label("satisfaction_share", policy))
    ax.set_ylabel(label("share_fragile" if y == "share_fragile" else "fragile", policy)
                  + ("" if y == "share_fragile" else f" ({label('branches', policy)})"))
    n = pd.unique(frame["n"]) if by is None else []
    ax.set_title("Branches near a boundary as the survey share varies"
                 + (f" (of {int(n[0]):,})" if len(n) == 1 else ""))
    ax.legend(title=label(by, policy) if by else None)
    return finish(ax)


# -- cut-point fit -------------------------------------------------------------------------------
def _scores(scores) -> np.ndarray:
    if hasattr(scores, "branches") and "score" in getattr(scores.branches, "columns", ()):
        scores = scores.branches["score"]
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"cut_point_fit: scores must be numbers (or a Result with a score column), got "
                        f"{type(scores).__name__}", where="plot") from None
    if s.ndim != 1 or not s.size or not np.isfinite(s).all():
        raise DataError(f"cut_point_fit: scores must be a non-empty 1-D array of finite numbers; got shape "
                        f"{s.shape}", where="plot")
    return s


@styled
def cut_point_fit(fit: pd.DataFrame, scores: Result | ArrayLike | None = None, ax: Axes | None = None, *,
                  bins: int = 40, policy: Policy | None = None) -> Axes:
    """Fitted cut points and the range ``(low, high]`` of each that gives the same counts, over the scores.

    Parameters
    ----------
    fit : DataFrame
        A :func:`~branchsim.fit_cut_points` result: ``level, cut, low, high``
        (and ``target``, ``achieved``), one row per level and designation line.
    scores : Result or array-like, optional
        The scores the fit was made on (a :func:`~branchsim.evaluate` result
        of the same population, or its ``branches["score"]``): drawn as a
        histogram under the ranges. The fit itself holds no scores; without
        them the ranges are drawn alone, one row each.
    ax : matplotlib Axes, optional
    bins : int
        Of the histogram.
    policy : Policy, optional
        Names and colours of the levels and designations.

    Returns
    -------
    Axes
        Per fitted row a range (gid ``range:<level>``; a range open below
        starts at the axis' left edge) and its cut (a line, gid
        ``cut:<level>``); the legend gives the cut, the range and the
        achieved count against the target.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> fit = pd.DataFrame({"level": ["top", "mid"], "target": [2, 3], "cut": [90.0, 80.0],
    ...                     "low": [88.0, 77.0], "high": [92.0, 82.0], "achieved": [2, 3]})
    >>> ax = bp.cut_point_fit(fit, scores=[70, 78, 81, 85, 89, 93, 95])
    >>> [float(l.get_xdata()[0]) for l in ax.lines if l.get_gid().startswith("cut:")]
    [90.0, 80.0]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(fit, policy)
    require(fit, ["level", "cut", "low", "high"], "cut_point_fit")
    num = fit[["cut", "low", "high"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if np.isnan(num).any() or not np.isfinite(num[:, [0, 2]]).all():
        raise DataError("cut_point_fit: cut and high must be finite numbers and low a number or -inf (a frame "
                        "of fit_cut_points(..., cities=) holds intervals across cities: plot one city's fit)",
                        where="plot")
    cut, low, high = num.T
    s = None if scores is None else _scores(scores)
    finite = np.concatenate([cut, high, low[np.isfinite(low)], [] if s is None else s])
    pad = 0.05 * max(float(finite.max() - finite.min()), 1.0)
    left = float(finite.min()) - pad
    lo = np.where(np.isfinite(low), low, left)
    ax = new_axes(ax, (6.4, 4.0) if s is not None else (6.4, 0.7 * len(fit) + 1.8))
    if s is not None:
        ax.hist(s, bins=bins, color="#d9d9d9", edgecolor="white", linewidth=0.4, gid="scores")
    levels = [str(v) for v in fit["level"]]
    for i, lv in enumerate(levels):              # a loop over the few fitted levels
        c = colour(lv, policy, i)
        counts = ""
        if "target" in fit and "achieved" in fit:
            t, a = int(fit["target"].iloc[i]), int(fit["achieved"].iloc[i])
            counts = f", {a} branches" if a == t else f", {a} branches (target {t})"
        text = f"{label(lv, policy)}: {cut[i]:g} in ({low[i]:.4g}, {high[i]:.4g}]{counts}"
        if s is not None:
            ax.axvspan(lo[i], high[i], color=c, alpha=0.3, linewidth=0, gid=f"range:{lv}")
            ax.axvline(cut[i], color=c, linewidth=1.6, gid=f"cut:{lv}", label=text)
        else:
            y = len(levels) - 1 - i
            ax.barh(y, high[i] - lo[i], 0.5, left=lo[i], color=c, alpha=0.45, gid=f"range:{lv}")
            ax.plot([cut[i], cut[i]], [y - 0.35, y + 0.35], color=c, linewidth=2.2, gid=f"cut:{lv}", label=text)
    if s is None:
        ax.set_yticks(np.arange(len(levels))[::-1], [label(lv, policy, wrap=True) for lv in levels])
        ax.set_ylim(-0.7, len(levels) - 0.3)
    else:
        ax.set_ylabel(label("branches", policy))
    ax.set_xlim(left=left)
    ax.set_xlabel(label("score", policy))
    ax.set_title("Fitted cut points and the range giving the same counts")
    if s is None:          # the rows name the levels: the legend (cuts, ranges, counts) goes below
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), fontsize=8)
    else:
        ax.legend(loc="upper left", fontsize=8)
    return finish(ax, grid="y" if s is not None else "x")


# -- member scoring schemes ----------------------------------------------------------------------
_SCHEME_PANELS = (("bias", "bias (annual − true score, points)"),
                  ("spearman", "rank correlation with true quality"),
                  ("misclassified", "share of members misgraded"))


def _scheme_table(frame) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Means per record share (columns: quantities), and the lower and upper bounds of a cities frame."""
    if not isinstance(frame, pd.DataFrame):
        require(frame, ["record_share"], "member_schemes")
    df = frame.reset_index() if "record_share" not in frame.columns and frame.index.name == "record_share" \
        else frame
    if {"quantity", "mean"} <= set(df.columns):             # across cities: long format
        require(df, ["record_share", "quantity", "mean", "lower", "upper"], "member_schemes")
        wide = {k: df.pivot(index="record_share", columns="quantity", values=k) for k in ("mean", "lower", "upper")}
        order = list(pd.unique(df["record_share"]))
        mean, lower, upper = (wide[k].reindex(order) for k in ("mean", "lower", "upper"))
        require(mean, [q for q, _ in _SCHEME_PANELS], "member_schemes")
        return mean, lower, upper
    require(df, ["record_share"] + [q for q, _ in _SCHEME_PANELS], "member_schemes")
    if df["record_share"].duplicated().any():
        raise DataError("member_schemes: a record share repeats; pass one compare_member_schemes result",
                        where="plot")
    return df.set_index("record_share"), None, None


def _scheme_names(mean: pd.DataFrame) -> list[str]:
    """Tick labels of the schemes: their ``scheme`` text, else the record share."""
    return [textwrap.fill(str(mean.loc[s, "scheme"]) if "scheme" in mean else f"record share {float(s):g}", 16)
            for s in mean.index]


@styled
def member_schemes(frame: pd.DataFrame, fig: Figure | None = None, *, policy: Policy | None = None) -> Figure:
    """Member scoring schemes side by side: bias, rank correlation, misgrading (overall and by true grade).

    Parameters
    ----------
    frame : DataFrame
        A :func:`~branchsim.compare_member_schemes` result: one row per
        record share with ``bias, spearman, misclassified`` (and ``scheme``,
        ``members``, ``misclassified_<grade>``); or its ``cities=`` frame
        (``record_share, quantity, mean, lower, upper``), whose intervals
        across cities become whiskers.
    fig : matplotlib Figure, optional
    policy : Policy, optional
        Names of the grades (their order and colours come from the frame's
        ``misclassified_<grade>`` columns, best first).

    Returns
    -------
    Figure
        Three panels with one bar per scheme (gid ``<quantity>:<record
        share>``), and a fourth with one bar per scheme and true grade when
        the frame has them; the suptitle gives the graded member-years.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> cmp = pd.DataFrame({"record_share": [0.8, 0.0], "members": 400, "bias": [-0.2, 0.4],
    ...                     "spearman": [0.95, 0.8], "misclassified": [0.15, 0.4]}).set_index("record_share")
    >>> fig = bp.member_schemes(cmp)
    >>> [round(float(p.get_height()), 2) for p in fig.axes[2].patches]
    [0.15, 0.4]
    >>> matplotlib.pyplot.close(fig)
    """
    mean, lower, upper = _scheme_table(frame)
    grades = [str(c)[len("misclassified_"):] for c in mean.columns if str(c).startswith("misclassified_")]
    fig, axes = new_figure(fig, len(_SCHEME_PANELS) + bool(grades), ncols=2, panel=(4.2, 3.2))
    shares = list(mean.index)
    x = np.arange(len(shares))
    names = _scheme_names(mean)
    for a, (q, text) in zip(axes, _SCHEME_PANELS):
        v = mean[q].to_numpy(float)
        err = None
        if lower is not None:
            err = np.abs(np.vstack([v - lower[q].to_numpy(float), upper[q].to_numpy(float) - v]))
        bars = a.bar(x, v, 0.6, yerr=err, error_kw=_ERR, color=[colour("scheme", i=i) for i in range(len(shares))])
        for b, s in zip(bars, shares):
            b.set_gid(f"{q}:{float(s):g}")
        a.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
        a.axhline(0, color="#444444", linewidth=0.8)
        a.set_xticks(x, names, fontsize=7)
        a.set_title(text, fontsize=10)
        a.margins(y=0.15)
        finish(a)
    if grades:
        a = axes[-1]
        w = 0.8 / len(grades)
        cols = level_colours(len(grades))
        for j, g in enumerate(grades):
            v = mean[f"misclassified_{g}"].to_numpy(float)
            bars = a.bar(x - 0.4 + w * (j + 0.5), np.nan_to_num(v), w, color=cols[j],
                         label=label(g, policy, kind="grade"))
            for b, s in zip(bars, shares):
                b.set_gid(f"misclassified_{g}:{float(s):g}")
        a.set_xticks(x, names, fontsize=7)
        a.set_title("misgraded, by true grade", fontsize=10)
        a.legend(fontsize=7, ncols=2)
        finish(a)
    members = pd.unique(mean["members"]) if "members" in mean else []
    fig.suptitle("Member scoring schemes" + (f" ({float(members[0]):,.0f} graded member-years each)"
                                             if len(members) == 1 else "")
                 + (" — whiskers: interval across cities" if lower is not None else ""),
                 x=0.01, ha="left", fontsize=11)
    return finish_figure(fig)


# -- rule accuracy -------------------------------------------------------------------------------
_RATE_WORDS = (("false_alarm_rate_", "false alarms"), ("false_rate_", "false designations"),
               ("miss_rate_", "misses"))


def _rate_label(rate: str, policy) -> str:
    for prefix, words in _RATE_WORDS:
        if rate.startswith(prefix):
            return f"{label(rate[len(prefix):], policy)}: {words}"
    return rate


def _rate_key(rate: str) -> str:
    return next((rate[len(p):] for p, _ in _RATE_WORDS if rate.startswith(p)), rate)


def _named(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`rate_table` with its index (the rate's name) as the column ``name``."""
    return table.rename_axis("name").reset_index() if "name" not in table.columns else table


def _per_year(frame: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Rates per year pooled over seeds (year 0 once: it is the same population under every seed)."""
    from ..dynamics.history import pool_accuracy, rate_table, year_zero_once
    df = frame.reset_index() if "year" not in frame.columns and frame.index.name == "year" else frame
    if "seed" in df and len(df):
        df = year_zero_once(df)
    tables = [_named(rate_table(pool_accuracy(rows, confidence=confidence))).assign(year=year)
              for year, rows in df.groupby("year", sort=True)]          # a loop over the few years
    if not tables:
        raise DataError("rule_accuracy: the frame has no rows", where="plot")
    return pd.concat(tables, ignore_index=True)


@styled
def rule_accuracy(accuracy: pd.DataFrame | pd.Series, ax: Axes | None = None, *,
                  rates: str | Sequence[str] | None = None, confidence: float = 0.95,
                  policy: Policy | None = None) -> Axes:
    """Misses and false alarms of the designations and consecutive-years rules, with exact intervals.

    Parameters
    ----------
    accuracy : DataFrame or Series
        A :func:`~branchsim.rule_accuracy` result: per seed and year (one
        point per year, counts pooled over seeds, year 0 once), or pooled
        (``pooled=True``: a Series; or its :func:`~branchsim.dynamics.rate_table`):
        one bar per rate.
    ax : matplotlib Axes, optional
    rates : str or list of str, optional
        Rates to show (``miss_rate_<id>``, ``false_rate_<id>``,
        ``false_alarm_rate_<id>``; default: all).
    confidence : float
        Of the Clopper–Pearson intervals per year (a pooled input keeps its own).
    policy : Policy, optional
        Names and colours of the designations and consequences.

    Returns
    -------
    Axes
        Per year: a line per rate with whiskers (gid ``rate:<rate>``; misses
        dashed; the rates of one year a little apart), the legend giving its events over all years; pooled: a bar
        per rate (gid ``rate:<rate>``; misses hatched) with whiskers,
        labelled ``events/n``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> pooled = pd.Series({"fired_r": 4, "false_alarms_r": 1, "deserved_r": 2, "missed_r": 1})
    >>> ax = bp.rule_accuracy(pooled)
    >>> [(round(float(p.get_width()), 2), p.get_gid()) for p in ax.patches]
    [(0.25, 'rate:false_alarm_rate_r'), (0.5, 'rate:miss_rate_r')]
    >>> [t.get_text() for t in ax.texts]
    ['1/4', '1/2']
    >>> matplotlib.pyplot.close(ax.figure)
    """
    from ..dynamics.history import rate_table
    policy = policy_of(accuracy, policy)
    pooled_cols = {"events", "n", "rate", "low", "high"}
    if isinstance(accuracy, pd.Series):
        table, yearly = _named(rate_table(accuracy)), False
    elif isinstance(accuracy, pd.DataFrame) and pooled_cols <= set(accuracy.columns):
        table, yearly = _named(accuracy), False
    else:
        if isinstance(accuracy, pd.DataFrame) and "quantity" in accuracy.columns:
            raise DataError("rule_accuracy: this frame (rule_accuracy(cities=)) holds each rate's spread across "
                            "cities, not counts to pool; plot one city's rule_accuracy, or its pooled Series",
                            where="plot")
        if not (isinstance(accuracy, pd.DataFrame) and accuracy.index.name == "year"):
            require(accuracy, ["year"], "rule_accuracy (a frame per year; or a pooled Series, or its rate_table)")
        table, yearly = _per_year(accuracy, confidence), True
    names = list(pd.unique(table["name"]))
    chosen = names if rates is None else ([rates] if isinstance(rates, str) else list(rates))
    bad = [r for r in chosen if r not in names]
    if bad or not chosen:
        raise DataError(f"rule_accuracy: rate(s) {bad or chosen}; allowed: {names}", where="plot")
    ax = new_axes(ax, (6.4, 4.6 + 0.2 * len(chosen)) if yearly else (7.0, 0.45 * len(chosen) + 1.8))
    if yearly:
        for i, r in enumerate(chosen):
            sub = table[table["name"] == r].sort_values("year", kind="stable")
            v = sub["rate"].to_numpy(float)
            err = np.abs(np.vstack([v - sub["low"].to_numpy(float), sub["high"].to_numpy(float) - v]))
            dodge = 0.06 * (i - (len(chosen) - 1) / 2)            # whiskers of one year side by side
            miss = r.startswith("miss_rate_")
            drawn = ax.errorbar(sub["year"].to_numpy(float) + dodge, v, yerr=err, marker="o", markersize=4,
                                capsize=2, color=colour(_rate_key(r), policy, i), linestyle="--" if miss else "-",
                                markerfacecolor="white" if miss else None,
                                label=f"{_rate_label(r, policy)} "
                                      f"({int(sub['events'].sum())}/{int(sub['n'].sum())})")
            drawn.lines[0].set_gid(f"rate:{r}")           # the data line (not its caps)
        ax.set_xlabel(label("year", policy))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(f"rate (whiskers: {confidence:.0%} Clopper–Pearson)")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=8, title="(events / trials over the years)", title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(0.0, -0.16))
        ax.set_title("Accuracy of the rules by year")
        return finish(ax)
    sub = table.set_index("name").loc[chosen]
    pos = np.arange(len(chosen))[::-1]
    v = sub["rate"].to_numpy(float)
    err = np.nan_to_num(np.abs(np.vstack([v - sub["low"].to_numpy(float), sub["high"].to_numpy(float) - v])))
    bars = ax.barh(pos, np.nan_to_num(v), 0.6, xerr=err, error_kw=_ERR,
                   color=[colour(_rate_key(r), policy, i) for i, r in enumerate(chosen)])
    for b, r, p, (ev, n) in zip(bars, chosen, pos, sub[["events", "n"]].to_numpy(int)):
        b.set_gid(f"rate:{r}")
        if r.startswith("miss_rate_"):
            b.set_hatch("///")
        ax.text(1.02, p, f"{ev}/{n}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yticks(pos, [_rate_label(r, policy) for r in chosen])
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate (whiskers: Clopper–Pearson interval)\nright: events / trials")
    ax.set_title("Accuracy of the rules, pooled")
    return finish(ax, grid="x")
