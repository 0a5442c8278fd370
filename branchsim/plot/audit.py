"""Figures of the audits (:mod:`branchsim.audit`): distances to the next level."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import colour, finish, levels_of, new_axes, require, styled

__all__ = ["counterfactual_distances"]

#: Distance bins (upper edges, inclusive) of :func:`counterfactual_distances`; beyond the last: "more".
_EDGES = (1, 2, 3, 5, 10)


def _bin_names() -> list[str]:
    names, low = [], 0
    for e in _EDGES:
        names.append(str(e) if e == low + 1 else f"{low + 1:g}–{e:g}")
        low = e
    return names + [f">{_EDGES[-1]}", "none"]


@styled
def counterfactual_distances(table: pd.DataFrame, ax=None, *, policy=None, measure: str | None = None):
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
