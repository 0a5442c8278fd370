"""An interactive policy explorer for JupyterLab (ipywidgets).

Sliders set the satisfaction share, the relative balance of the four
dimensions, the star cut points and the weak line; the star counts, their
chart and the policy diff against the baseline follow on every change. The
sliders describe a reform made with :meth:`Policy.update` (the dimension
shares re-normalised as it does), and the counts come from the scenario
engine (:mod:`branchsim.sensitivity.engine`) on the population prepared
once, so they equal :func:`branchsim.evaluate` under that reform and an
update takes milliseconds on the city. Settings that break a rule (cut
points out of order, ...) show a message instead of raising.

ipywidgets is needed only here, and imported only when an explorer is built.
"""
from __future__ import annotations

import base64
import html
import io
import time

import numpy as np
import pandas as pd

from .errors import BranchsimError, DataError, PolicyError
from .evaluate import STAR_NAMES, at_published_scale, published_counts
from .policy import Policy
from .population import Population
from .sensitivity.engine import Scenarios, prepare, run

__all__ = ["explore", "Explorer"]

SHARE = "branch.satisfaction_share"
WEAK = "branch.weak_below"
_DECIMALS = 6          # slider values are rounded: a browser may send 0.30000000000000004
_TINY = 1e-12          # share changes below this are re-normalisation round-off, not a change
_ERROR_STYLE = ("color:#b71c1c;background:#fdecea;padding:.4em .6em;border-radius:4px;white-space:normal;"
                "overflow-wrap:anywhere;word-break:break-word;box-sizing:border-box;max-width:100%")
#: Widths of the layout (checked in JupyterLab 4 at a 968 px output area): the sliders' column
#: and the counts' column are fixed, so a long message wraps inside its column instead of
#: widening it and pushing the slider readouts out of view.
SLIDER_WIDTH = "27em"
CONTROLS_WIDTH = "28em"
RIGHT_WIDTH = "34em"
BUTTON_WIDTH = "15em"


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError:       # an optional dependency, for notebooks only
        raise BranchsimError("the explorer needs ipywidgets: pip install ipywidgets") from None
    return ipywidgets


def _cell(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else html.escape(str(v))


def _leaf(doc: dict, path: str) -> dict:
    for key in path.split("."):
        doc = doc[key]
    return doc


class Explorer:
    """Sliders over one policy's fast parameters, with live star counts for a population.

    Parameters
    ----------
    pop : Population
    policy : Policy, optional
        The baseline the sliders start from and the diff is taken against
        (default: the baseline policy).

    Attributes
    ----------
    widget : ipywidgets.VBox
        What a notebook displays (``explore`` returns it; ``widget.explorer``
        is this object).
    sliders : dict of str to FloatSlider
        By parameter path (``branch.satisfaction_share``,
        ``branch.star_cuts.5`` …, ``branch.weak_below``) and
        ``balance.<dimension>`` for the dimension balance.
    baseline : Policy
    policy : Policy or None
        The reform the sliders describe; None while they break a rule.
    counts : DataFrame
        Index ``five_star`` … ``no_star``, ``weak``; columns ``count``,
        ``baseline``, ``change``, ``published`` (of the last valid setting;
        the published counts only for a population of the published
        city's scale, see ``branchsim.evaluate.at_published_scale``,
        else empty).
    message : str
        Why the current setting is invalid ('' when it is valid).
    seconds : float
        Duration of the last update (counts, table, chart and diff).

    Examples
    --------
    >>> import branchsim as bs
    >>> ex = Explorer(bs.generate(seed=0, n_branches=200, members=False))
    >>> ex.sliders["branch.satisfaction_share"].value = 0.3
    >>> ex.policy["branch.satisfaction_share"], int(ex.counts["count"].drop("weak").sum())
    (0.3, 200)
    >>> ex.sliders["branch.star_cuts.4"].value = 95          # above the 5-star cut
    >>> ex.policy is None, ex.message.startswith("Cut points out of order")
    (True, True)
    """

    def __init__(self, pop: Population, policy: Policy | None = None):
        w = _ipywidgets()
        if not isinstance(pop, Population):
            raise DataError(f"explore() takes a Population (from generate or load_population), "
                            f"got {type(pop).__name__}")
        policy = Policy.load() if policy is None else policy
        if not isinstance(policy, Policy):
            raise PolicyError(f"policy must be a branchsim.Policy, got {type(policy).__name__}", where="explore")
        self.baseline, self.policy, self.message, self.seconds = policy, policy, "", 0.0
        self.figure = None
        self._prep = prepare(pop, policy)       # components do not depend on the sliders' parameters
        self._dims = [f"branch.dimensions.{d}.share" for d in policy.dimensions]
        base = np.array([policy[p] for p in self._dims])
        self._balance = base / base.sum() if base.sum() > 0 else np.full(len(base), 1 / len(base))
        self._levels = sorted((int(k) for k in policy["branch.star_cuts"]), reverse=True)
        # The published counts only beside a population of the published city's scale.
        self._published = (published_counts() if at_published_scale(len(pop.branches))
                           else pd.Series(dtype="Int64"))
        self._base_counts = self._count(policy)

        def slider(value, lo, hi, step, text, fmt):
            return w.FloatSlider(value=value, min=lo, max=hi, step=step, description=text, readout_format=fmt,
                                 continuous_update=False, style={"description_width": "9em"},
                                 layout=w.Layout(width=SLIDER_WIDTH))
        self._start = {SHARE: policy[SHARE],
                       **{f"balance.{d}": round(float(b), _DECIMALS) for d, b in zip(policy.dimensions,
                                                                                     self._balance)},
                       **{f"branch.star_cuts.{k}": policy[f"branch.star_cuts.{k}"] for k in self._levels},
                       WEAK: policy[WEAK]}
        self.sliders = {}
        for key, value in self._start.items():
            if key.startswith("balance."):
                self.sliders[key] = slider(value, 0, 1, 0.01, key.split(".", 1)[1], ".2f")
            elif key == SHARE:
                self.sliders[key] = slider(value, 0, 1, 0.01, "survey share", ".2f")
            else:
                text = "weak below" if key == WEAK else f"{key.rsplit('.', 1)[1]}★ cut"
                self.sliders[key] = slider(value, 0, 100, 0.5, text, ".1f")
        self.table = w.HTML(layout=w.Layout(width="100%", overflow="auto hidden"))
        self.message_box = w.HTML(layout=w.Layout(width="100%", max_width=RIGHT_WIDTH, overflow="hidden"))
        self.diff_box = w.HTML(layout=w.Layout(max_width="100%", overflow="auto hidden"))
        self.chart = w.Output()
        reset = w.Button(description="Reset to baseline", icon="undo", tooltip="Put every slider back",
                         layout=w.Layout(width=BUTTON_WIDTH, min_width="max-content"))
        self.reset_button = reset
        reset.on_click(lambda _: self.reset())
        balance = w.Accordion([w.VBox([self.sliders[f"balance.{d}"] for d in policy.dimensions])],
                              titles=("Dimension balance (of the non-survey share)",))
        controls = w.VBox([w.HTML("<b>Shares</b>"), self.sliders[SHARE], balance, w.HTML("<b>Cut points</b>"),
                           *(self.sliders[f"branch.star_cuts.{k}"] for k in self._levels), self.sliders[WEAK],
                           reset], layout=w.Layout(width=CONTROLS_WIDTH, flex="0 0 auto"))
        right = w.VBox([w.HTML("<b>Star counts</b>"), self.table, self.message_box],
                       layout=w.Layout(width=RIGHT_WIDTH, max_width=RIGHT_WIDTH, flex="0 0 auto",
                                       margin="0 0 0 2em", overflow="hidden"))
        self.controls, self.right = controls, right
        head = w.HTML(f"<b>Policy explorer</b> — {len(pop.branches):,} branches, baseline policy "
                      f"<code>{html.escape(policy.name)}</code>. Counts follow when a slider is released.")
        # The counts' column goes below the sliders when the output area is narrower than both.
        self.columns = w.HBox([controls, right], layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                                                 max_width="100%"))
        self.widget = w.VBox([head, self.columns, self.chart,
                              w.HTML("<b>Policy diff against the baseline</b>"), self.diff_box])
        self.widget.explorer = self
        self._hold = False
        for s in self.sliders.values():
            s.observe(self._changed, names="value")
        self.update()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- from sliders to a policy ------------------------------------------------------------------
    def _values(self) -> dict:
        return {k: round(float(s.value), _DECIMALS) for k, s in self.sliders.items()}

    def reform(self) -> Policy:
        """The policy the sliders describe (the baseline itself when none moved).

        Raises
        ------
        BranchsimError
            The setting breaks a rule: cut points out of order, all balance
            sliders at 0, or anything :meth:`Policy.update` rejects.
        """
        v, base = self._values(), self.baseline
        changes = {}
        s = v[SHARE]
        if s != base[SHARE]:
            changes[SHARE] = s
        keys = [f"balance.{d}" for d in base.dimensions]
        balance = np.array([v[k] for k in keys])
        if any(v[k] != self._start[k] for k in keys):
            if balance.sum() <= 0:
                raise BranchsimError("The dimension balance sliders are all 0; move at least one above 0.")
            for p, x in zip(self._dims, (1 - s) * balance / balance.sum()):
                if abs(x - base[p]) > _TINY:
                    changes[p] = float(x)
        for p in [f"branch.star_cuts.{k}" for k in self._levels] + [WEAK]:
            if v[p] != base[p]:
                changes[p] = v[p]
        cuts = [(k, v[f"branch.star_cuts.{k}"]) for k in self._levels]          # best first
        for (hi, c_hi), (lo, c_lo) in zip(cuts, cuts[1:]):
            if not c_hi > c_lo:
                raise BranchsimError(f"Cut points out of order: the {hi}★ cut ({c_hi:g}) must be above the "
                                     f"{lo}★ cut ({c_lo:g}). Move the sliders so the cuts rise with the stars.")
        if not changes:
            return base
        return self._snap(base.update(changes, reason="set in the explorer"))

    def _snap(self, reform: Policy) -> Policy:
        """Undo re-normalisation round-off: a share that moved by < 1e-12 keeps the baseline's entry."""
        d = self.baseline.diff(reform)
        tiny = [p for p, a, b in zip(d["path"], d["old"], d["new"])
                if isinstance(a, float) and isinstance(b, float) and abs(a - b) <= _TINY]
        if not tiny:
            return reform
        doc, orig = reform.to_dict(), self.baseline.to_dict()
        for p in tiny:
            parent, key = p.rsplit(".", 1)
            _leaf(doc, parent)[key] = _leaf(orig, parent)[key]
        return Policy(doc, where="explorer")

    # -- counting and display ------------------------------------------------------------------------
    def _count(self, policy: Policy) -> pd.Series:
        out = run(self._prep, Scenarios.from_policy(policy), accuracy=False)
        counts = out["counts"][0, 0].astype(int)
        cut_levels = {int(k) for k in policy["branch.star_cuts"]}
        levels = sorted({0, *cut_levels, *np.flatnonzero(counts).tolist()}, reverse=True)
        s = pd.Series({STAR_NAMES[k]: int(counts[k]) for k in levels}, name="count")
        s["weak"] = int(out["weak"][0, 0])
        return s

    def _frame(self, counts: pd.Series) -> pd.DataFrame:
        df = pd.DataFrame({"count": counts})
        df["baseline"] = self._base_counts.reindex(df.index).fillna(0).astype(int)
        df["change"] = df["count"] - df["baseline"]
        df["published"] = self._published.reindex(df.index).astype("Int64")
        df.index.name = "level"
        return df

    def _changed(self, _change) -> None:
        if not self._hold:
            self.update()

    def reset(self) -> None:
        """Put every slider back at the baseline (one update)."""
        self._hold = True
        try:
            for key, s in self.sliders.items():
                s.value = self._start[key]
        finally:
            self._hold = False
        self.update()

    def update(self) -> None:
        """Recompute counts, table, chart and diff for the sliders' current values."""
        t0 = time.perf_counter()
        try:
            reform = self.reform()
        except BranchsimError as exc:
            self.policy, self.message = None, str(exc)
            self.message_box.value = (f"<div style='{_ERROR_STYLE}'>⚠ {html.escape(self.message)}<br>"
                                      f"<small>The counts are those of the last valid setting.</small></div>")
            self.seconds = time.perf_counter() - t0
            return
        self.policy, self.message, self.message_box.value = reform, "", ""
        self.counts = self._frame(self._count(reform))
        shown = self.counts if self.counts["published"].notna().any() else self.counts.drop(columns="published")
        show = shown.astype(object).where(shown.notna(), "–")
        self.table.value = show.to_html(border=0, justify="right")
        if reform is self.baseline:
            self.diff_box.value = "<i>The sliders are at the baseline: no parameter changed.</i>"
        else:
            d = self.baseline.diff(reform)[["path", "old", "new"]]
            self.diff_box.value = d.to_html(index=False, border=0, formatters={c: _cell for c in ("old", "new")},
                                            escape=False)
        self._draw()
        self.seconds = time.perf_counter() - t0

    def _draw(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from . import plot as bp
        fig = Figure(figsize=(6.4, 3.4), layout="constrained")
        FigureCanvasAgg(fig)
        bp.star_counts(self.counts[["count", "published"]], ax=fig.add_subplot(), scale=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        self.figure = fig
        # Set the Output's content directly: works with any matplotlib backend, and outside a kernel.
        self.chart.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                                        "text/plain": "<star counts chart>"}},)


def explore(pop: Population, policy: Policy | None = None):
    """An interactive explorer of a policy's shares and cut points (a widget for JupyterLab).

    Parameters
    ----------
    pop : Population
        Prepared once; each slider change re-scores it with the scenario
        engine (milliseconds for the 1,500-branch city).
    policy : Policy, optional
        The baseline (default: the baseline policy).

    Returns
    -------
    ipywidgets.VBox
        Sliders, the star-count table and chart, the policy diff. Its
        ``explorer`` attribute is the :class:`Explorer` behind it
        (``.sliders``, ``.policy``, ``.counts``, ``.message``).

    Examples
    --------
    >>> import branchsim as bs
    >>> w = explore(bs.generate(seed=0, n_branches=200, members=False))
    >>> w.explorer.sliders["branch.star_cuts.5"].value = 92
    >>> w.explorer.policy.diff(bs.Policy.load())[["path", "old", "new"]].values.tolist()
    [['branch.star_cuts.5', 92.0, 90]]
    """
    return Explorer(pop, policy).widget
