"""Figures of the audits (:mod:`branchsim.audit`): distances to the next level."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import colour, finish, levels_of, new_axes, require, styled

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from ..audit.designs import DesignComparison
    from ..policy import Policy

__all__ = ["counterfactual_distances", "design_comparison"]

#: Distance bins (upper edges, inclusive) of :func:`counterfactual_distances`; beyond the last: "more".
_EDGES = (1, 2, 3, 5, 10)


def _bin_names() -> list[str]:
    names, low = [], 0
    for e in _EDGES:
        names.append(str(e) if e == low + 1 else f"{low + 1:g}–{e:g}")
        low = e
    return names + [f">{_EDGES[-1]}", "none"]


@styled
def counterfactual_distances(table: pd.DataFrame, ax: Axes | None = None, *, policy: Policy | None = None,
                             measure: str | None = None) -> Axes:
    """How far branches are from the next level, by their current level: grouped bars of counts.

    Parameters
    ----------
    table : DataFrame
        From :func:`branchsim.distances` (columns ``level``, ``goal`` and the
        measure). Branches without a goal (``goal == "none"``: the top level,
        or not designated) are left out.
    ax : matplotlib Axes, optional
    policy : Policy, optional
        Colours and labels of the levels (the table's order otherwise).
    measure : str, optional
        ``"combination_cost"`` (default when the table has it: the cheapest
        combination's cost) or ``"best_steps"`` (the smallest single-fact move
        in steps). Bins 1, 2, 3, 4–5, 6–10, more, and "none" (no move found;
        a cost below 1 falls in the first bin).

    Returns
    -------
    Axes
        One bar group per bin, one bar per current level (gid ``"level:<id>"``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> t = pd.DataFrame({"level": ["b", "b", "c", "a"], "goal": ["a", "a", "b", "none"],
    ...                   "best_steps": [1.0, 4.0, float("nan"), float("nan")]})
    >>> ax = bp.counterfactual_distances(t, measure="best_steps")
    >>> [int(p.get_height()) for p in ax.patches if p.get_gid() == "level:b"][:4]
    [1, 0, 0, 1]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    measure = measure or ("combination_cost" if "combination_cost" in getattr(table, "columns", ()) else "best_steps")
    if measure not in ("combination_cost", "best_steps", "best_cost"):
        raise DataError(f"counterfactual_distances: measure={measure!r}; allowed: combination_cost, best_steps, "
                        f"best_cost", where="plot")
    require(table, ["level", "goal", measure], "counterfactual_distances")
    t = table[table["goal"].astype(str) != "none"]
    value = pd.to_numeric(t[measure], errors="coerce").to_numpy(float)
    names = _bin_names()
    idx = np.where(np.isnan(value), len(names) - 1,
                   np.searchsorted(np.asarray(_EDGES, float), np.ceil(np.nan_to_num(value) - 1e-9), side="left"))
    order = [lv for lv in levels_of(policy) if lv in set(t["level"])] or list(dict.fromkeys(t["level"]))
    ax = new_axes(ax, (6.4, 3.8))
    width = 0.8 / max(len(order), 1)
    x = np.arange(len(names))
    for k, lv in enumerate(order):
        counts = np.bincount(idx[(t["level"] == lv).to_numpy()], minlength=len(names))
        bars = ax.bar(x - 0.4 + width * (k + 0.5), counts, width, color=colour(lv, policy, k),
                      label=label(lv, policy), edgecolor="white", linewidth=0.5)
        for b in bars:
            b.set_gid(f"level:{lv}")
    ax.set_xticks(x, names)
    what = "cost of the cheapest combination" if measure == "combination_cost" else \
        "steps of the smallest single-fact move" if measure == "best_steps" else "cost of the cheapest single move"
    ax.set_xlabel(what)
    ax.set_ylabel("branches")
    ax.set_title("Distance to the next level, by current level")
    if order:
        ax.legend(title="current level")
    return finish(ax)


# -- design comparison (branchsim.compare_designs) ------------------------------------------------------
#: Panels of :func:`design_comparison`: column -> title (a share, higher better only for the first two).
DESIGN_PANELS = {"accuracy": "Accuracy (share at the true level)", "kappa": "Cohen's kappa",
                 "year_changed": "Changed level, truth unchanged",
                 "monotonicity_share": "Dropped after improving (share)",
                 "type_tvd_max": "Largest TV distance by type", "noise_flip": "Two noise draws disagree"}


def _design_long(table: DesignComparison | pd.DataFrame) -> pd.DataFrame:
    """``design, quantity, value, lower, upper`` from a DesignComparison, its table or the cities frame."""
    frame = getattr(table, "table", table)
    require(frame, ["design"], "design_comparison")
    if {"quantity", "mean"} <= set(frame.columns):          # across cities: already long, with intervals
        out = frame.rename(columns={"mean": "value"})
        for c in ("lower", "upper"):
            if c not in out:
                out[c] = np.nan
        return out[["design", "quantity", "value", "lower", "upper"]]
    cols = [c for c in frame.columns if c != "design" and pd.api.types.is_numeric_dtype(frame[c])]
    out = frame.melt(id_vars=["design"], value_vars=cols, var_name="quantity", value_name="value")
    return out.assign(lower=np.nan, upper=np.nan)


@styled
def design_comparison(table: DesignComparison | pd.DataFrame, fig: Figure | None = None, *,
                      panels: Sequence[str] | None = None) -> Figure:
    """Rating designs side by side: one panel per measure, one bar per design; misclassification by survey size.

    Parameters
    ----------
    table : DesignComparison or DataFrame
        From :func:`branchsim.compare_designs`: the result, its ``table``, or
        (plausible cities) its frame of ``design``, ``quantity``, ``mean``,
        ``lower``, ``upper`` — then each bar has its interval across cities.
    fig : matplotlib Figure, optional
    panels : list of str, optional
        Columns to draw (default: those of :data:`DESIGN_PANELS` present).
        The last panel is misclassification against respondents per branch
        (``misclassified_<n>``), one line per design, when the table has it.

    Returns
    -------
    Figure

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> t = pd.DataFrame({"design": ["cuts", "kmeans"], "accuracy": [0.8, 0.64], "kappa": [0.62, 0.5],
    ...                   "misclassified_10": [0.25, 0.42], "misclassified_25": [0.2, 0.36]})
    >>> fig = bp.design_comparison(t)
    >>> [a.get_title(loc="left") for a in fig.axes]
    ['Accuracy (share at the true level)', "Cohen's kappa", 'Misclassified by survey size']
    >>> matplotlib.pyplot.close(fig)
    """
    from .style import finish_figure, new_figure
    long = _design_long(table)
    designs = list(dict.fromkeys(long["design"]))
    have = set(long["quantity"])
    panels = [p for p in DESIGN_PANELS if p in have] if panels is None else list(panels)
    unknown = [p for p in panels if p not in have]
    if unknown:
        raise DataError(f"design_comparison: no column(s) {unknown} in the table; it has {sorted(have)}",
                        where="plot")
    sized = sorted((q for q in have if q.startswith("misclassified_") and q.split("_", 1)[1].isdigit()),
                   key=lambda q: int(q.split("_", 1)[1]))
    fig, axes = new_figure(fig, len(panels) + bool(sized), ncols=4, panel=(3.4, 2.5))
    y = np.arange(len(designs))
    for ax, p in zip(axes, panels):
        rows = long[long["quantity"] == p].set_index("design").reindex(designs)
        v = rows["value"].to_numpy(float)
        lo, hi = rows["lower"].to_numpy(float), rows["upper"].to_numpy(float)
        err = np.vstack([v - lo, hi - v]) if np.isfinite(lo).any() else None
        ax.barh(y, v, xerr=err, color=[colour(d, None, i) for i, d in enumerate(designs)], height=0.6,
                error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_yticks(y, designs)
        ax.invert_yaxis()
        ax.set_title(DESIGN_PANELS.get(p, p), fontsize=9)
        finish(ax, grid="x")
    if sized:
        ax = axes[len(panels)]
        n = [int(q.split("_", 1)[1]) for q in sized]
        for i, d in enumerate(designs):
            rows = long[(long["design"] == d)].set_index("quantity").reindex(sized)
            ax.plot(n, rows["value"].to_numpy(float), marker="o", markersize=3, color=colour(d, None, i), label=d)
            if np.isfinite(rows["lower"].to_numpy(float)).any():
                ax.fill_between(n, rows["lower"].to_numpy(float), rows["upper"].to_numpy(float),
                                color=colour(d, None, i), alpha=0.15, linewidth=0)
        ax.set_xlabel("respondents per branch")
        ax.set_title("Misclassified by survey size", fontsize=9)
        ax.legend(fontsize=7)
        finish(ax)
    for ax in axes[len(panels) + bool(sized):]:
        ax.set_visible(False)
    return finish_figure(fig)
