"""Figures of one evaluation: counts per level, scores near the cut points, how sure each level is."""
from __future__ import annotations

from typing import TYPE_CHECKING

import math

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import (FRAGILE_COLOUR, PUBLISHED_COLOUR, colour, finish, level_colours, levels_of, new_axes,
                    policy_of, require, styled)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from ..evaluate import Result
    from ..policy import Policy
    from ..sensitivity.mc_result import MonteCarlo
    from ..sensitivity.fragility import Fragility

__all__ = ["level_counts", "star_counts", "score_histogram", "level_probabilities", "star_probabilities",
           "cut_lines"]

_NEUTRAL = "#9e9e9e"


def _published_shown(counts: pd.DataFrame, policy) -> bool:
    """Whether the frame's ``published`` column may be drawn: only beside a population of the published scale."""
    if "published" not in counts or not counts["published"].notna().any():
        return False
    if policy is None:
        return True                    # a plain frame: its published column is the caller's statement
    from .._result import at_published_scale
    levels = [k for k in counts.index if k in levels_of(policy)]
    return at_published_scale(int(counts.loc[levels, "count"].sum()), policy)


@styled
def level_counts(result_or_frame: Result | pd.DataFrame, ax: Axes | None = None, *, policy: Policy | None = None,
                 scale: float | None = None) -> Axes:
    """Branches per level and per designation, beside the published counts (hatched) at their scale.

    Parameters
    ----------
    result_or_frame : Result or DataFrame
        A :class:`~branchsim.Result`, or a frame like ``Result.level_counts()``:
        index the level ids (best first) and designation ids, a ``count``
        column and optionally ``published``.
    ax : matplotlib Axes, optional
    policy : Policy, optional
        Where the levels' names and colours come from; default the result's
        own policy (a plain frame without one is drawn with its ids).
    scale : None
        Kept for callers of the first version; published counts are never
        scaled. They are drawn only when the population is of the scale of
        the scheme's published figures (:func:`branchsim._result.at_published_scale`).

    Returns
    -------
    Axes
        One solid bar per level and designation (``gid`` its id) and one
        hatched bar per published figure (``gid`` ``published_<id>``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> r = bs.evaluate(bs.generate(p, seed=0, n_branches=200, members=False), p)
    >>> ax = bp.level_counts(r)
    >>> len(ax.patches) == len(p.levels) + len(p.scheme.branch.designations)   # 200 branches: no published bars
    True
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(result_or_frame, policy)
    if hasattr(result_or_frame, "level_counts") and hasattr(result_or_frame, "branches"):
        counts = result_or_frame.level_counts()
    elif isinstance(result_or_frame, pd.Series):
        counts = result_or_frame.rename("count").to_frame()
    else:
        counts = result_or_frame
    require(counts, ["count"], "level_counts")
    keys = [str(k) for k in counts.index]
    counts = counts.set_axis(keys)
    levels = levels_of(policy)
    n = float(counts["count"][[k in levels for k in keys]].sum()) if levels else float(counts["count"].sum())
    shown = _published_shown(counts, policy)
    pub = counts["published"].astype("Float64").astype(float) if shown else pd.Series(np.nan, index=keys)
    ax = new_axes(ax, (max(5.0, 0.9 * len(keys) + 2.4), 3.8))
    x = np.arange(len(keys))
    w = 0.38 if shown else 0.7
    bars = ax.bar(x - (w / 2 if shown else 0), counts["count"].to_numpy(float), w,
                  color=[colour(k, policy, i) for i, k in enumerate(keys)], edgecolor="white")
    for b, k in zip(bars, keys):
        b.set_gid(k)
    ax.bar_label(bars, fmt="%d", fontsize=8, padding=2)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=_NEUTRAL, label=label("simulated", policy) + f" (n = {n:,.0f})")]
    if shown:
        m = pub.notna().to_numpy()
        hatched = ax.bar(x[m] + w / 2, pub.to_numpy()[m], w, facecolor="white", edgecolor=PUBLISHED_COLOUR,
                         hatch="////", linewidth=1.0)
        for b, k in zip(hatched, np.array(keys)[m]):
            b.set_gid(f"published_{k}")
        ax.bar_label(hatched, fmt="%.0f", fontsize=8, padding=2, color=PUBLISHED_COLOUR)
        handles.append(Patch(facecolor="white", edgecolor=PUBLISHED_COLOUR, hatch="////",
                             label=label("published", policy)))
    ax.set_xticks(x, [label(k, policy, wrap=True) for k in keys])
    ax.set_ylabel(label("branches", policy))
    ax.set_xlabel(label("level", policy))
    ax.set_title("Levels against the published counts" if shown else "Branches per level")
    ax.margins(y=0.12)
    ax.legend(handles=handles, loc="upper left")
    return finish(ax)


#: The first name of :func:`level_counts` (the first scheme rated in stars).
star_counts = level_counts


def cut_lines(obj: Result | Fragility | pd.DataFrame, policy: Policy | None = None) -> pd.DataFrame:
    """The score lines of a result: each level's cut points (per group) and each designation's score line.

    Parameters
    ----------
    obj : Result, Fragility or DataFrame
        Cut points are read from its ``cut_points`` or ``cuts`` (realised
        thresholds of a relative design), else from the policy's fixed cuts, else (a relative
        design) realised from the frame's ``rating`` and ``score``: the lowest
        score given each level.
    policy : Policy, optional

    Returns
    -------
    DataFrame
        ``kind`` (``cut`` or ``designation``), ``key`` (level or designation
        id), ``group``, ``value``; levels best first.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> lines = cut_lines(bs.evaluate(bs.generate(p, seed=0, n_branches=100, members=False), p))
    >>> sorted(lines["kind"].unique()), lines.loc[lines["kind"] == "cut", "key"].nunique() == len(p.levels) - 1
    (['cut', 'designation'], True)
    """
    policy = policy_of(obj, policy)
    rows = []
    cuts = next((c for c in (getattr(obj, "cut_points", None), getattr(obj, "cuts", None))
                 if isinstance(c, pd.DataFrame)), None)
    frame = getattr(obj, "branches", obj)
    if policy is not None:
        bs = policy.scheme.branch
        r = bs.rating
        if not (isinstance(cuts, pd.DataFrame) and len(cuts)) and r.design == "cuts" and r.cuts is not None:
            above = bs.levels.worst_first[1:]
            cuts = pd.DataFrame([(t, lv, float(r.cuts[p, j])) for p, t in enumerate(bs.types)
                                 for j, lv in enumerate(above)], columns=["group", "level", "cut"])
        if not (isinstance(cuts, pd.DataFrame) and len(cuts)) and isinstance(frame, pd.DataFrame) \
                and {"rating", "score"} <= set(frame.columns):
            low = frame.groupby("rating", sort=False)["score"].min()
            cuts = pd.DataFrame([("all", lv, float(low[lv])) for lv in bs.levels.ids[:-1] if lv in low.index],
                                columns=["group", "level", "cut"])
        for d in bs.designations:
            for c in d.criteria:
                if c.kind == "score_below":
                    rows.append(("designation", d.id, c.id, float(c.value)))
    order = levels_of(policy)
    if isinstance(cuts, pd.DataFrame) and len(cuts):
        cuts = cuts.dropna(subset=["cut"])
        rank = {lv: i for i, lv in enumerate(order)}
        cuts = cuts.assign(_r=cuts["level"].map(lambda lv: rank.get(lv, len(rank))))
        cuts = cuts.sort_values(["_r", "cut", "group"], kind="stable")
        rows = [("cut", lv, str(g), float(v)) for lv, g, v in zip(cuts["level"], cuts["group"], cuts["cut"])] + rows
    return pd.DataFrame(rows, columns=["kind", "key", "group", "value"])


def _near(frame, score: np.ndarray, lines: pd.DataFrame, policy, delta: float) -> np.ndarray:
    """Branches within ±δ of a line: a cut point of their own group (type or peer group), or a score line."""
    r = None if policy is None else policy.scheme.branch.rating
    col = None if r is None else "type" if r.design == "cuts" else r.peer_groups
    own = lines["kind"].eq("cut") & lines["group"].ne("all")
    near = np.zeros(len(score), dtype=bool)
    if col is not None and col in frame and own.any():
        groups = frame[col].astype(str).to_numpy()
        for g, grp in lines[own].groupby("group", sort=False):         # a loop over the few groups
            rows = groups == g
            near[rows] |= (np.abs(score[rows, None] - grp["value"].to_numpy(float)[None, :]) <= delta).any(axis=1)
        lines = lines[~own]
    values = lines["value"].to_numpy(float)
    if len(values):
        near |= (np.abs(score[:, None] - values[None, :]) <= delta).any(axis=1)
    return near


@styled
def score_histogram(result_or_fragility: Result | Fragility | pd.DataFrame, policy: Policy | None = None,
                    delta: float | None = None, ax: Axes | None = None, *, bin_width: float = 1.0) -> Axes:
    """Scores with the design's cut points and the designations' score lines; branches within ±δ highlighted.

    Parameters
    ----------
    result_or_fragility : Result, Fragility or DataFrame
        A :class:`~branchsim.Result`, a :func:`~branchsim.fragility` result,
        or a frame with a ``score`` column.
    policy : Policy, optional
        Where the cut points come from (see :func:`cut_lines`). Default: the
        object's own policy.
    delta : float, optional
        Half-width of the band around each line, in points. Default: the
        Fragility's own δ, else 1.0.
    ax : matplotlib Axes, optional
    bin_width : float
        Histogram bin width in points.

    Returns
    -------
    Axes
        Dashed vertical lines with ``gid`` ``cut_<level>`` (one per distinct
        cut point; several when peer groups have their own) and
        ``<designation>_<criterion>`` for a designation's score line.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> r = bs.evaluate(bs.generate(p, seed=0, n_branches=200, members=False), p)
    >>> ax = bp.score_histogram(r)
    >>> cuts = sorted(float(l.get_xdata()[0]) for l in ax.lines if str(l.get_gid()).startswith("cut_"))
    >>> cuts == sorted(r.cut_points["cut"].unique().tolist())
    True
    >>> matplotlib.pyplot.close(ax.figure)
    """
    obj = result_or_fragility
    frame = getattr(obj, "branches", obj)
    require(frame, ["score"], "score_histogram")
    policy = policy_of(obj, policy)
    own_delta = getattr(obj, "delta", None)
    delta = (own_delta if own_delta is not None else 1.0) if delta is None else float(delta)
    lines = cut_lines(obj, policy).drop_duplicates(["kind", "key", "value"])
    lines = lines[np.isfinite(lines["value"].to_numpy(float))]   # a level no unit of a group reaches: no line
    score = frame["score"].to_numpy(float)
    values = lines["value"].to_numpy(float)
    if "fragile" in frame and own_delta is not None and delta == own_delta:
        fragile = frame["fragile"].to_numpy(bool)
    else:
        fragile = _near(frame, score, cut_lines(obj, policy), policy, delta)
    span = np.concatenate([score[np.isfinite(score)], values - delta, values + delta])
    lo = math.floor(span.min() / bin_width) * bin_width
    hi = math.ceil(span.max() / bin_width) * bin_width
    bins = np.arange(lo, hi + bin_width, bin_width)
    ax = new_axes(ax, (7.0, 3.8))
    for c in np.unique(values):
        ax.axvspan(c - delta, c + delta, color=FRAGILE_COLOUR, alpha=0.08, linewidth=0)
    ax.hist([score[~fragile], score[fragile]], bins=bins, stacked=True, color=[_NEUTRAL, FRAGILE_COLOUR],
            label=[label("branches", policy), f"{label('fragile', policy)}: {int(fragile.sum())} within ±{delta:g}"])
    for (kind, key), grp in lines.groupby(["kind", "key"], sort=False):
        col = colour(key, policy)
        vals = grp["value"].to_numpy(float)
        for v, g in zip(vals, grp["group"]):
            ax.axvline(v, color=col, linestyle="--", linewidth=1.3 if len(vals) == 1 else 0.9,
                       gid=f"cut_{key}" if kind == "cut" else f"{key}_{g}")
        at = f"{vals.min():.4g}" if len(set(vals)) == 1 else f"{vals.min():.4g}–{vals.max():.4g}"
        ax.text(float(np.median(vals)), 1.01, f"{label(key, policy, wrap=True)}\n{at}",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8, color=col,
                linespacing=1.1)
    ax.set_xlabel(label("score", policy))
    ax.set_ylabel(label("branches", policy))
    ax.set_title(f"Scores and cut points ({len(score):,} branches)", pad=44)
    ax.legend(loc="upper right")
    return finish(ax)


def _probability_columns(df: pd.DataFrame, levels: list) -> list[tuple[str, str]]:
    """``(column, level id)`` of the level probabilities, the floor first."""
    if levels:
        out = [(c, lv) for lv in reversed(levels) for c in (lv, f"p_{lv}") if c in df.columns]
    else:
        out = [(c, c[2:]) for c in df.columns if isinstance(c, str) and c.startswith("p_") and c != "p_true"]
    if not out:
        raise DataError("level_probabilities: no level probability columns (a column per level id, or "
                        f"p_<level id>); the frame has {list(df.columns)}", where="plot")
    return out


@styled
def level_probabilities(montecarlo_or_frame: MonteCarlo | pd.DataFrame, n: int = 40, ax: Axes | None = None, *,
                        order: str | None = None, policy: Policy | None = None) -> Axes:
    """Each branch's chance of each level, for the ``n`` branches whose level is least certain.

    Parameters
    ----------
    montecarlo_or_frame : MonteCarlo or DataFrame
        A :func:`~branchsim.measurement_mc` result, or a frame like its level
        probabilities: ``p_<level id>`` (or the level id) per level,
        optionally ``branch_id``, ``true_rating`` and ``p_true``. Without a
        policy, the result's ``levels`` (or, for a frame, every ``p_``
        column but ``p_true``) are the levels.
    n : int
        Branches shown.
    ax : matplotlib Axes, optional
    order : {"p_true", "entropy"}, optional
        Least certain first: lowest chance of the true level (default when
        ``p_true`` is there), or highest entropy of the level distribution.
    policy : Policy, optional
        Levels, names and colours (default: the result's own policy).

    Returns
    -------
    Axes
        One stacked horizontal bar per branch (a patch per branch and level,
        the floor on the left); a black diamond sits in the true level's segment.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> top, floor = p.levels[0], p.levels[-1]
    >>> df = pd.DataFrame({"branch_id": ["A", "B"], "true_rating": [top, floor], f"p_{floor}": [0.2, 0.9],
    ...                    f"p_{top}": [0.8, 0.1], "p_true": [0.8, 0.9]})
    >>> ax = bp.level_probabilities(df, n=2, policy=p)
    >>> len(ax.patches), [t.get_text() for t in ax.get_yticklabels()]    # top first
    (4, ['A', 'B'])
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(montecarlo_or_frame, policy)
    df = montecarlo_or_frame
    for name in ("level_probabilities", "star_probabilities"):
        if isinstance(getattr(df, name, None), pd.DataFrame):
            df = getattr(df, name)
            break
    require(df, [], "level_probabilities")
    known = levels_of(policy) or [str(v) for v in (getattr(montecarlo_or_frame, "levels", None) or [])]
    pcols = _probability_columns(df, known)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"level_probabilities: n must be a whole number >= 1, got {n!r}", where="plot")
    P = df[[c for c, _ in pcols]].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(P > 0, P * np.log(P), 0.0), axis=1)
    order = order or ("p_true" if "p_true" in df else "entropy")
    if order == "p_true":
        require(df, ["p_true"], "level_probabilities(order='p_true')")
        pick = np.lexsort((-entropy, df["p_true"].to_numpy(float)))[:n]
    elif order == "entropy":
        pick = np.argsort(-entropy, kind="stable")[:n]
    else:
        raise DataError(f"level_probabilities: order={order!r}; allowed: 'p_true', 'entropy'", where="plot")
    sub, Ps = df.iloc[pick], P[pick]
    ax = new_axes(ax, (6.4, max(3.0, 0.2 * len(sub) + 1.6)))
    y = np.arange(len(sub))[::-1]                      # the least certain branch on top
    left = np.zeros(len(sub))
    starts = {}
    palette = dict(zip(known or [lv for _, lv in pcols][::-1], level_colours(len(known or pcols))))
    for j, (col, lv) in enumerate(pcols):
        starts[lv] = left.copy()
        ax.barh(y, Ps[:, j], left=left, height=0.8, color=palette[lv],
                edgecolor="white", linewidth=0.4, label=label(lv, policy))
        left = left + Ps[:, j]
    true_col = next((c for c in ("true_rating", "true_level") if c in sub), None)
    if true_col is not None:
        col_of = {lv: j for j, (_, lv) in enumerate(pcols)}
        true = sub[true_col].astype(str).to_numpy()
        ok = np.array([t in col_of for t in true], dtype=bool)
        mid = np.array([starts[t][i] + Ps[i, col_of[t]] / 2 if t in col_of else np.nan
                        for i, t in enumerate(true)])       # at most n branches
        ax.scatter(mid[ok], y[ok], marker="D", s=18, color="black", edgecolor="white", linewidth=0.5,
                   zorder=3, label=label("true_level", policy))
    names = sub["branch_id"].astype(str) if "branch_id" in sub else sub.index.astype(str)
    ax.set_yticks(y, list(names))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(sub) - 0.4)
    ax.set_xlabel(label("probability", policy))
    what = "lowest chance of the true level" if order == "p_true" else "highest entropy"
    ax.set_title(f"Level probabilities: {len(sub)} branches with the {what}")
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h[::-1], lab[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(ax, grid="x")


#: The first name of :func:`level_probabilities`.
star_probabilities = level_probabilities
