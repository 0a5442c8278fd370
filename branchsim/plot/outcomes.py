"""Figures of one evaluation: star counts, scores near the cut points, how sure each star is."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import yaml

from ..errors import DataError
from .labels import label
from .style import (FRAGILE_COLOUR, PUBLISHED_COLOUR, STAR_COLOURS, WEAK_COLOUR, colour, finish, level_int,
                    level_key, new_axes, require, styled)

__all__ = ["star_counts", "score_histogram", "star_probabilities"]

_NEUTRAL = "#9e9e9e"


def _published_city() -> float:
    """Branches in the published city (``scale.branches`` of ``data/published.yaml``)."""
    from ..policy import data_path
    doc = yaml.safe_load(data_path("published.yaml").read_text(encoding="utf-8"))
    return float(doc["scale"]["branches"]["value"])


@styled
def star_counts(result_or_frame, ax=None, *, scale: bool | None = None):
    """Branches per star level and weak, beside the published counts (hatched bars).

    Parameters
    ----------
    result_or_frame : Result or DataFrame
        A :class:`~branchsim.Result`, or a frame like ``Result.star_counts()``:
        index the levels (``five_star`` … ``no_star``, ``weak``), a ``count``
        column and optionally ``published``.
    ax : matplotlib Axes, optional
    scale : bool, optional
        Scale the published counts to the population's size (they are
        counts of a city of about 1,500 branches). Default: whenever the
        population's size differs from the city's.

    Returns
    -------
    Axes
        One solid bar per level and one hatched bar per published figure.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import branchsim as bs, branchsim.plot as bp
    >>> r = bs.evaluate(bs.generate(seed=0, n_branches=200, members=False), bs.Policy.load())
    >>> ax = bp.star_counts(r)
    >>> len(ax.patches)              # 5 levels incl. weak, 4 published figures
    9
    >>> matplotlib.pyplot.close(ax.figure)
    """
    if hasattr(result_or_frame, "star_counts") and hasattr(result_or_frame, "branches"):
        counts = result_or_frame.star_counts()
    elif isinstance(result_or_frame, pd.Series):
        counts = result_or_frame.rename("count").to_frame()
    else:
        counts = result_or_frame
    require(counts, ["count"], "star_counts")
    keys = [str(k) for k in counts.index]
    n = float(counts["count"][[level_int(k) is not None for k in keys]].sum())
    pub = (counts["published"].astype("Float64").astype(float) if "published" in counts
           else pd.Series(np.nan, index=counts.index))
    city = _published_city()
    scale = (not math.isclose(n, city)) if scale is None else scale
    if scale and n > 0:
        pub = pub * n / city
    ax = new_axes(ax, (6.4, 3.8))
    x = np.arange(len(keys))
    has_pub = bool(pub.notna().any())
    w = 0.38 if has_pub else 0.7
    model = ax.bar(x - (w / 2 if has_pub else 0), counts["count"].to_numpy(float), w,
                   color=[colour(k) for k in keys], edgecolor="white")
    ax.bar_label(model, fmt="%d", fontsize=8, padding=2)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=_NEUTRAL, label=label("simulated") + f" (n = {n:,.0f})")]
    if has_pub:
        m = pub.notna().to_numpy()
        bars = ax.bar(x[m] + w / 2, pub.to_numpy()[m], w, facecolor="white", edgecolor=PUBLISHED_COLOUR,
                      hatch="////", linewidth=1.0)
        ax.bar_label(bars, fmt="%.0f", fontsize=8, padding=2, color=PUBLISHED_COLOUR)
        what = label("published") + (f", scaled to {n:,.0f} of {city:,.0f} branches" if scale else "")
        handles.append(Patch(facecolor="white", edgecolor=PUBLISHED_COLOUR, hatch="////", label=what))
    ax.set_xticks(x, [label(k, wrap=True) for k in keys])
    ax.set_ylabel(label("branches"))
    ax.set_xlabel(label("stars"))
    ax.set_title("Star ratings against the published counts")
    ax.margins(y=0.12)
    ax.legend(handles=handles, loc="upper left")
    return finish(ax)


def _policy_cuts(policy) -> tuple[dict[int, float], float]:
    cuts = {int(k): float(policy[f"branch.star_cuts.{k}"]) for k in policy["branch.star_cuts"]}
    return dict(sorted(cuts.items(), reverse=True)), float(policy["branch.weak_below"])


@styled
def score_histogram(result_or_fragility, policy=None, delta: float | None = None, ax=None, *,
                    bin_width: float = 1.0):
    """Scores with the star cut points and the weak line; branches within ±δ of one highlighted.

    Parameters
    ----------
    result_or_fragility : Result, Fragility or DataFrame
        A :class:`~branchsim.Result`, a :func:`~branchsim.fragility` result,
        or a frame with a ``score`` column.
    policy : Policy, optional
        Where the cut points come from. Default: the object's own policy
        (the baseline policy for a plain frame).
    delta : float, optional
        Half-width of the band around each cut, in points. Default: the
        Fragility's own δ, else 1.0.
    ax : matplotlib Axes, optional
    bin_width : float
        Histogram bin width in points.

    Returns
    -------
    Axes
        Dashed vertical lines (``gid`` ``"cut_5"`` …, ``"weak_line"``) at the cuts.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import branchsim as bs, branchsim.plot as bp
    >>> pop = bs.generate(seed=0, n_branches=200, members=False)
    >>> ax = bp.score_histogram(bs.fragility(pop, bs.Policy.load(), delta=2))
    >>> sorted(float(line.get_xdata()[0]) for line in ax.lines if line.get_gid())
    [50.0, 70.0, 80.0, 90.0]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    obj = result_or_fragility
    frame = getattr(obj, "branches", obj)
    require(frame, ["score"], "score_histogram")
    policy = policy if policy is not None else getattr(obj, "policy", None)
    if policy is None:
        from ..policy import Policy
        policy = Policy.load()
    own_delta = getattr(obj, "delta", None)
    delta = (own_delta if own_delta is not None else 1.0) if delta is None else float(delta)
    cuts, weak = _policy_cuts(policy)
    score = frame["score"].to_numpy(float)
    lines = np.array([*cuts.values(), weak])
    if "fragile" in frame and own_delta is not None and delta == own_delta:
        fragile = frame["fragile"].to_numpy(bool)
    else:
        fragile = (np.abs(score[:, None] - lines[None, :]) <= delta).any(axis=1)
    lo = math.floor(min(np.nanmin(score), lines.min() - delta) / bin_width) * bin_width
    hi = math.ceil(max(np.nanmax(score), lines.max() + delta) / bin_width) * bin_width
    bins = np.arange(lo, hi + bin_width, bin_width)
    ax = new_axes(ax, (7.0, 3.8))
    for c in lines:
        ax.axvspan(c - delta, c + delta, color=FRAGILE_COLOUR, alpha=0.08, linewidth=0)
    ax.hist([score[~fragile], score[fragile]], bins=bins, stacked=True, color=[_NEUTRAL, FRAGILE_COLOUR],
            label=[label("branches"), f"{label('fragile')}: {int(fragile.sum())} within ±{delta:g}"])
    marks = [(f"cut_{k}", c, STAR_COLOURS[k], label(level_key(k), wrap=True)) for k, c in cuts.items()]
    marks.append(("weak_line", weak, WEAK_COLOUR, label("weak_line", wrap=True)))
    for gid, c, col, text in marks:
        ax.axvline(c, color=col, linestyle="--", linewidth=1.3, gid=gid)
        ax.text(c, 1.01, f"{text}\n{c:g}", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8, color=col, linespacing=1.1)
    ax.set_xlabel(label("score"))
    ax.set_ylabel(label("branches"))
    ax.set_title(f"Scores and cut points ({len(score):,} branches)", pad=44)
    ax.legend(loc="upper right")
    return finish(ax)


@styled
def star_probabilities(montecarlo_or_frame, n: int = 40, ax=None, *, order: str | None = None):
    """Each branch's chance of each star, for the ``n`` branches whose star is least certain.

    Parameters
    ----------
    montecarlo_or_frame : MonteCarlo or DataFrame
        A :func:`~branchsim.measurement_mc` result, or a frame like its
        ``star_probabilities``: ``p_no_star`` … ``p_five_star``, optionally
        ``branch_id``, ``true_stars`` and ``p_true``.
    n : int
        Branches shown.
    ax : matplotlib Axes, optional
    order : {"p_true", "entropy"}, optional
        Least certain first: lowest chance of the true star (default when
        ``p_true`` is there), or highest entropy of the star distribution.

    Returns
    -------
    Axes
        One stacked horizontal bar per branch (a patch per branch and level,
        no star on the left); a black diamond sits in the true star's segment.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> df = pd.DataFrame({"branch_id": ["A", "B"], "true_stars": [3, 0], "p_no_star": [0.2, 0.9],
    ...                    "p_three_star": [0.8, 0.1], "p_true": [0.8, 0.9]})
    >>> ax = bp.star_probabilities(df, n=2)
    >>> len(ax.patches), [t.get_text() for t in ax.get_yticklabels()]    # top first
    (4, ['A', 'B'])
    >>> matplotlib.pyplot.close(ax.figure)
    """
    df = getattr(montecarlo_or_frame, "star_probabilities", montecarlo_or_frame)
    pcols = sorted((c for c in df.columns if c.startswith("p_") and level_int(c[2:]) is not None),
                   key=lambda c: level_int(c[2:]))
    if not pcols:
        raise DataError(f"star_probabilities: no p_<level> columns (p_no_star … p_five_star); the frame "
                        f"has {list(df.columns)}", where="plot")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"star_probabilities: n must be a whole number >= 1, got {n!r}", where="plot")
    P = df[pcols].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(P > 0, P * np.log(P), 0.0), axis=1)
    order = order or ("p_true" if "p_true" in df else "entropy")
    if order == "p_true":
        require(df, ["p_true"], "star_probabilities(order='p_true')")
        pick = np.lexsort((-entropy, df["p_true"].to_numpy(float)))[:n]
    elif order == "entropy":
        pick = np.argsort(-entropy, kind="stable")[:n]
    else:
        raise DataError(f"star_probabilities: order={order!r}; allowed: 'p_true', 'entropy'", where="plot")
    sub, Ps = df.iloc[pick], P[pick]
    ax = new_axes(ax, (6.4, max(3.0, 0.2 * len(sub) + 1.6)))
    y = np.arange(len(sub))[::-1]                      # the least certain branch on top
    left = np.zeros(len(sub))
    starts = {}
    for j, col in enumerate(pcols):
        key = col[2:]
        starts[level_int(key)] = left.copy()
        ax.barh(y, Ps[:, j], left=left, height=0.8, color=colour(key), edgecolor="white", linewidth=0.4,
                label=label(key))
        left = left + Ps[:, j]
    if "true_stars" in sub:
        true = sub["true_stars"].to_numpy(int)
        col_of = {level_int(c[2:]): j for j, c in enumerate(pcols)}
        ok = np.array([t in col_of for t in true])
        mid = np.array([starts[t][i] + Ps[i, col_of[t]] / 2 if t in col_of else np.nan
                        for i, t in enumerate(true)])       # at most n branches
        ax.scatter(mid[ok], y[ok], marker="D", s=18, color="black", edgecolor="white", linewidth=0.5,
                   zorder=3, label=label("true_star"))
    names = sub["branch_id"].astype(str) if "branch_id" in sub else sub.index.astype(str)
    ax.set_yticks(y, list(names))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(sub) - 0.4)
    ax.set_xlabel(label("probability"))
    what = "lowest chance of the true star" if order == "p_true" else "highest entropy"
    ax.set_title(f"Star probabilities: {len(sub)} branches with the {what}")
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h[::-1], lab[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(ax, grid="x")
