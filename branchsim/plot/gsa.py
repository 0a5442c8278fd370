"""Figures of global sensitivity: Sobol' indices, nominal weights against effective importance."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError
from .labels import label
from .style import (colour, finish, finish_figure, label_panels, level_colours, new_axes, new_figure, policy_of,
                    require, styled)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from ..policy import Policy
    from ..sensitivity.gsa import SensitivityResult

__all__ = ["sobol_indices", "nominal_vs_effective"]


def _sobol_panel(ax, sub, order, xlabel):
    sub = sub.set_index("factor").reindex(order)
    k, h = len(order), 0.38
    pos = np.arange(k)[::-1]

    def col(name):
        return sub[name].to_numpy(float) if name in sub else np.full(k, np.nan)

    dark, light = level_colours(3)[:2]
    for off, name, c in ((h / 2, "S1", light), (-h / 2, "ST", dark)):
        v, e = col(name), col(f"{name}_conf")
        ax.barh(pos + off, np.nan_to_num(v), h, xerr=np.nan_to_num(e), color=c, label=label(name),
                error_kw={"ecolor": "#444444", "capsize": 2, "elinewidth": 0.8})
    if np.isnan(col("ST")).all():
        ax.text(0.5, 0.5, "constant output:\nno variance to apportion", transform=ax.transAxes, ha="center",
                va="center", fontsize=9, color="#555555")
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_yticks(pos, [str(f) for f in order])        # factor names as in the indices frame
    ax.set_xlabel(xlabel)


@styled
def sobol_indices(sensitivity_result_or_frame: SensitivityResult | pd.DataFrame,
                  output: str | Sequence[str] | None = None, ax: Axes | None = None, *,
                  fig: Figure | None = None, policy: Policy | None = None) -> Axes | Figure:
    """First-order (S1) and total-order (ST) Sobol' indices per factor, with confidence intervals.

    Parameters
    ----------
    sensitivity_result_or_frame : SensitivityResult or DataFrame
        A :func:`~branchsim.sobol` result (its ``indices``) or a frame with
        ``factor, S1, ST`` and optionally ``output, S1_conf, ST_conf``.
    output : str or list of str, optional
        Outputs to show (default: all).
    ax : matplotlib Axes, optional
        For a single output.
    fig : matplotlib Figure, optional
        For several outputs: one panel each.
    policy : Policy, optional
        Names of the outputs that are levels or designations (default: the
        result's own policy).

    Returns
    -------
    Axes or Figure
        Two bars per factor; factors ordered by their mean ST, largest on top.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> s = pd.DataFrame({"output": "count", "factor": ["a", "b"], "S1": [0.7, 0.1],
    ...                   "S1_conf": [0.05, 0.02], "ST": [0.8, 0.2], "ST_conf": [0.06, 0.03]})
    >>> ax = bp.sobol_indices(s)
    >>> len(ax.patches), [t.get_text() for t in ax.get_yticklabels()]
    (4, ['a', 'b'])
    >>> matplotlib.pyplot.close(ax.figure)
    """
    policy = policy_of(sensitivity_result_or_frame, policy)
    df = getattr(sensitivity_result_or_frame, "indices", sensitivity_result_or_frame)
    require(df, ["factor", "S1", "ST"], "sobol_indices")
    if "output" not in df:
        df = df.assign(output="output")
    df, outs = select_outputs(df, output, "sobol_indices")
    conf = getattr(sensitivity_result_or_frame, "conf_level", None)
    xlabel = "Sobol' index" + (("" if conf is None else f" (whiskers: {conf:.0%} interval)")
                               if "S1_conf" in df else "")
    mean_st = df.groupby("factor", sort=False)["ST"].mean()
    order = list(mean_st.sort_values(ascending=False, na_position="last", kind="stable").index)
    return factor_panels(df, outs, order, lambda a, sub: _sobol_panel(a, sub, order, xlabel), "Sobol' indices",
                         xlabel, ax, fig, policy, "sobol_indices")


def select_outputs(df: pd.DataFrame, output, what: str) -> tuple[pd.DataFrame, list]:
    """The rows of the requested ``output`` (one name, several, or None: all) and their names."""
    allowed = list(pd.unique(df["output"]))
    outs = allowed if output is None else ([output] if isinstance(output, str) else list(output))
    bad = [o for o in outs if o not in allowed]
    if bad or not outs:
        raise DataError(f"{what}: output(s) {bad or outs}; allowed: {allowed}", where="plot")
    return df[df["output"].isin(outs)], outs


def factor_panels(df, outs, order, draw, title: str, xlabel: str, ax, fig, policy, what: str):
    """One horizontal-bar panel of factors per output (``draw(ax, rows)``): an Axes for one output, a
    Figure with a shared legend for several (then ``ax`` is refused)."""
    if len(outs) == 1:
        ax = new_axes(ax, (6.0, 0.32 * len(order) + 1.6))
        draw(ax, df)
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title}: {label(outs[0], policy)}")
        ax.legend(loc="lower right")
        return finish(ax, grid="x")
    if ax is not None:
        raise DataError(f"{what}: {len(outs)} outputs draw one panel each; pass fig= (or one output=) "
                        "instead of ax=", where="plot")
    fig, axes = new_figure(fig, len(outs), panel=(3.9, 0.3 * len(order) + 1.5), sharey=True)
    for a, o in zip(axes, outs):
        draw(a, df[df["output"] == o])
        a.set_title(label(o, policy))
    label_panels(axes, xlabel, "")
    for a in axes:
        finish(a, grid="x")
    h, lab = axes[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncols=2)
    return finish_figure(fig)


@styled
def nominal_vs_effective(frame: pd.DataFrame, ax: Axes | None = None, *,
                         effective: str | Sequence[str] = ("linear_share", "main_effect_score"),
                         policy: Policy | None = None) -> Axes:
    """Each component's nominal weight beside its effective importance (grouped bars).

    Parameters
    ----------
    frame : DataFrame
        An :func:`~branchsim.effective_importance` result: ``component``,
        ``nominal_share`` and the ``effective`` columns.
    ax : matplotlib Axes, optional
    effective : str or sequence of str
        Importance columns beside the nominal share (``linear_share``,
        ``covariance_share``, ``main_effect_score``, ``main_effect_star``,
        ``unique_score``).
    policy : Policy, optional
        Names of the components (the policy's dimensions).

    Returns
    -------
    Axes
        ``1 + len(effective)`` bars per component (nominal hatched).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import pandas as pd, branchsim.plot as bp
    >>> e = pd.DataFrame({"component": ["sheet", "satisfaction"], "nominal_share": [0.6, 0.4],
    ...                   "linear_share": [0.3, 0.7], "main_effect_score": [0.2, 0.8]})
    >>> len(bp.nominal_vs_effective(e).patches)
    6
    >>> matplotlib.pyplot.close("all")
    """
    eff = [effective] if isinstance(effective, str) else list(effective)
    df = frame.set_index("component") if "component" in frame else frame
    require(df, ["nominal_share", *eff], "nominal_vs_effective")
    comps = [str(c) for c in df.index]
    ax = new_axes(ax, (1.3 * len(comps) + 2.2, 3.8))
    x = np.arange(len(comps))
    w = 0.8 / (1 + len(eff))
    series = [("nominal_share", "white")] + [(c, colour(c, i=i)) for i, c in enumerate(eff)]
    for s, (name, col) in enumerate(series):
        bars = ax.bar(x - 0.4 + w * (s + 0.5), df[name].to_numpy(float), w, color=col, label=label(name, policy),
                      edgecolor="#252525" if s == 0 else "white", hatch="////" if s == 0 else None)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, [label(c, policy, wrap=True) for c in comps])
    ax.set_ylabel("weight / share of variance")
    ax.set_title("Nominal weights and effective importance")
    ax.margins(y=0.1)
    ax.legend(loc="upper left")
    return finish(ax)
