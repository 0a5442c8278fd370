"""An interactive policy explorer for JupyterLab (ipywidgets).

The sliders are built from the scheme: the survey share (a ``shares`` score
with a survey), the balance of the dimensions (``shares`` form), the cut
point of each level (a design with cuts), the quota of each level (a design
with quotas) and the ``score_below`` line of each designation criterion. The
counts per level and designation, their chart and the policy diff against the
starting policy follow on every change.

The sliders describe a reform made with :meth:`Policy.update` (the shares
re-normalised as it does), and the counts are those of
:func:`branchsim.evaluate` under it: the population's points and score
components are computed once (no slider changes them), and each change
weighs them with the reform's shares and runs the engine's own
:func:`~branchsim.evaluate.branch_outcome`: relative designs (quotas,
clustering) re-rate the whole population, vetoes, direct grading and
designations follow. Settings that break a rule (cut points out of order,
quotas above 1, ...) show a message instead of raising.

ipywidgets is needed only here, and imported only when an explorer is built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import base64
import html
import io
import time

import numpy as np
import pandas as pd

from ._explorer_parts import SHARE, counts_chart, extra_specs, overridden, slider_specs
from ._result import at_published_scale, targets
from .errors import BranchsimError, DataError
from .evaluate import branch_inputs, branch_outcome
from .policy import Policy, as_policy
from .population import Population
from .scoring import branch_scores, scores_from_components

if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any
    from collections.abc import Iterable

__all__ = ["explore", "Explorer"]

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


def _ipywidgets() -> ModuleType:
    try:
        import ipywidgets
    except ImportError:       # an optional dependency, for notebooks only
        raise BranchsimError("the explorer needs ipywidgets: pip install ipywidgets") from None
    return ipywidgets


def _cell(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else html.escape(str(v))


def _leaf(doc: dict, path: str) -> dict:
    for key in path.split("."):
        doc = doc[key]
    return doc


class Explorer:
    """Sliders over one policy's shares, cut points, quotas and designation lines, with live counts.

    Parameters
    ----------
    pop : Population
    policy : Policy or path, optional
        The policy the sliders start from and the diff is taken against
        (default: the baseline policy).

    Attributes
    ----------
    widget : ipywidgets.VBox
        What a notebook displays (``explore`` returns it; ``widget.explorer``
        is this object).
    sliders : dict of str to FloatSlider
        By parameter path (see :func:`slider_specs`) and
        ``balance.<dimension>`` for the balance of the dimensions.
    baseline : Policy
    policy : Policy or None
        The reform the sliders describe; None while they break a rule.
    counts : DataFrame
        Index the level ids (best first), then the designation ids; columns
        ``count``, ``baseline``, ``change``, ``published`` (of the last valid
        setting; the published counts of the scheme's targets file only for a
        population of the published scale, else empty).
    message : str
        Why the current setting is invalid ('' when it is valid).
    seconds : float
        Duration of the last update (counts, table, chart and diff).

    Examples
    --------
    >>> import branchsim as bs
    >>> ex = Explorer(bs.generate(seed=0, n_branches=200, members=False))
    >>> ex.sliders["branch.satisfaction_share"].value = 0.3
    >>> levels = ex.baseline.levels
    >>> ex.policy["branch.satisfaction_share"], int(ex.counts["count"][levels].sum())
    (0.3, 200)
    >>> ex.sliders[f"branch.rating.cuts.{levels[1]}"].value = 95          # above the top level's cut
    >>> ex.policy is None, ex.message.startswith("Cut points out of order")
    (True, True)
    """

    policy: Policy | None    # the sliders' policy; None while their setting breaks a rule (see message)

    def __init__(self, pop: Population, policy: Policy | None = None,
                 params: Iterable[str] | None = None) -> None:
        w = _ipywidgets()
        if not isinstance(pop, Population):
            raise DataError(f"explore() takes a Population (from generate or load_population), "
                            f"got {type(pop).__name__}")
        policy = as_policy(policy, "explore(): policy")
        self.baseline, self.policy, self.message, self.seconds = policy, policy, "", 0.0
        self.pop = pop
        self.figure = None
        scheme = policy.scheme
        bs = scheme.branch
        # No slider changes the points or the score components: computed once, weighed on each change.
        self._inp = branch_inputs(pop.branches, scheme, policy_name=policy.name)
        rank_groups = {c: self._inp.codes(c)[0] for c in {x for x in bs.sheet.within if x is not None}}
        first = branch_scores(self._inp.facts, self._inp.type_idx, self._inp.survey, bs, rank_groups=rank_groups)
        self._points, self._components = first["points"], first["components"]
        self._dims = [f"branch.dimensions.{d}.share" for d in bs.sheet.group_ids] if bs.form == "shares" else []
        base = np.array([policy[p] for p in self._dims])
        self._balance = base / base.sum() if base.sum() > 0 else np.full(len(base), 1 / max(len(base), 1))
        t = targets(policy)
        # The published counts only beside a population of the published scale.
        self._published = (pd.Series(t["counts"], dtype=float) if at_published_scale(len(pop.branches),
                                                                                      city=t["scale"])
                           else pd.Series(dtype=float))
        self._extra = []               # sliders for slow parameters (set below; the baseline needs none)
        self._base_counts = self._count(policy)
        specs = slider_specs(policy, first["score"])
        self._extra = extra_specs(policy, params, [k for k, *_ in specs])
        specs += self._extra
        self._rescored: dict = {}      # slow parameters' values -> (points, components) re-scored under them
        self._start = {}
        self.sliders = {}
        for key, group, text, lo, hi, step, fmt in specs:
            value = round(float(self._balance[self._dims.index(f"branch.dimensions.{key[8:]}.share")]), _DECIMALS) \
                if key.startswith("balance.") else policy[key]
            self._start[key] = value
            self.sliders[key] = w.FloatSlider(value=value, min=lo, max=hi, step=step, description=text,
                                              readout_format=fmt, continuous_update=False,
                                              style={"description_width": "9em"}, layout=w.Layout(width=SLIDER_WIDTH))
        # Width "auto" fills the column: "100%" plus the margin ipywidgets gives every widget (2 px a
        # side) spills past the column, which clips the table's scroll bar and the message's edge.
        self.table = w.HTML(layout=w.Layout(width="auto", overflow="auto hidden"))
        self.message_box = w.HTML(layout=w.Layout(width="auto", max_width=RIGHT_WIDTH, overflow="hidden"))
        self.diff_box = w.HTML(layout=w.Layout(max_width="100%", overflow="auto hidden"))
        self.chart = w.Output()
        reset = w.Button(description="Reset to baseline", icon="undo", tooltip="Put every slider back",
                         layout=w.Layout(width=BUTTON_WIDTH, min_width="max-content"))
        self.reset_button = reset
        reset.on_click(lambda _: self.reset())
        self.controls = w.VBox(self._groups(w, specs) + [reset],
                               layout=w.Layout(width=CONTROLS_WIDTH, flex="0 0 auto"))
        self.right = w.VBox([w.HTML("<b>Counts per level and designation</b>"), self.table, self.message_box],
                            layout=w.Layout(width=RIGHT_WIDTH, max_width=RIGHT_WIDTH, flex="0 0 auto",
                                            margin="0 0 0 2em", overflow="hidden"))
        head = w.HTML(f"<b>Policy explorer</b> — {len(pop.branches):,} branches, policy "
                      f"<code>{html.escape(policy.name)}</code> ({html.escape(bs.rating.design)} design). "
                      f"Counts follow when a slider is released.")
        # The counts' column goes below the sliders when the output area is narrower than both.
        self.columns = w.HBox([self.controls, self.right],
                              layout=w.Layout(flex_flow="row wrap", align_items="flex-start", max_width="100%"))
        # "What does it take?": one branch's cheapest moves to the next level under the current setting.
        self.branch_box = w.Text(placeholder="branch id", description="Branch", layout=w.Layout(width="16em"))
        ask = w.Button(description="What does it take?", icon="question",
                       tooltip="The smallest change of each fact, and the cheapest combination, that lifts the "
                               "branch to the next level (or out of a designation) under the sliders' setting",
                       layout=w.Layout(width="max-content"))
        self.next_box = w.HTML(layout=w.Layout(max_width="100%", overflow="auto hidden"))
        ask.on_click(lambda _: self.show_next_level(self.branch_box.value))
        self.widget = w.VBox([head, self.columns, self.chart,
                              w.HTML("<b>Policy diff against the baseline</b>"), self.diff_box,
                              w.HTML("<b>What does a branch need for the next level?</b>"),
                              w.HBox([self.branch_box, ask]), self.next_box])
        self.widget.explorer = self
        self._hold = False
        for s in self.sliders.values():
            s.observe(self._changed, names="value")
        self.update()

    def _groups(self, w: ModuleType, specs: list) -> list:
        """The sliders under a header per group; the balance in a collapsible box; notes on type overrides."""
        out, seen = [], []
        for key, group, *_ in specs:
            if group not in seen:
                seen.append(group)
        for group in seen:
            keys = [k for k, g, *_ in specs if g == group]
            boxes = [self.sliders[k] for k in keys]
            if group == "Balance":
                # The accordion pads its contents: sliders of the column's width would have their
                # readouts cut off by its border, so these fill its inside instead.
                for s in boxes:
                    s.layout.width, s.layout.max_width = "auto", SLIDER_WIDTH
                out.append(w.Accordion([w.VBox(boxes)], titles=("Dimension balance (of the non-survey share)",)))
                continue
            out.append(w.HTML(f"<b>{group}</b>"))
            out += boxes
            notes = overridden(self.baseline, keys)
            if notes:
                out.append(w.HTML("<small>" + html.escape("; ".join(notes)) + "</small>"))
        return out

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- from sliders to a policy ------------------------------------------------------------------
    def _values(self) -> dict:
        return {k: round(float(s.value), _DECIMALS) for k, s in self.sliders.items()}

    def _check(self, v: dict) -> None:
        """Friendly messages for the settings a slider can break (Policy.update checks the rest)."""
        lv = self.baseline.scheme.branch.levels
        cuts = [(en, v[f"branch.rating.cuts.{x}"]) for x, en in zip(lv.ids[:-1], lv.en[:-1])
                if f"branch.rating.cuts.{x}" in v]                                  # best first
        for (hi, c_hi), (lo, c_lo) in zip(cuts, cuts[1:]):
            if not c_hi > c_lo:
                raise BranchsimError(f"Cut points out of order: the {hi} cut ({c_hi:g}) must be above the {lo} cut "
                                     f"({c_lo:g}). Move the sliders so the cuts rise with the levels.")
        quotas = [v[k] for k in v if k.startswith("branch.rating.quotas.")]
        if quotas and sum(quotas) > 1 + _TINY:
            raise BranchsimError(f"The quotas add up to {sum(quotas):.2f}, more than all the branches; lower some "
                                 f"so they add up to at most 1.")

    def reform(self) -> Policy:
        """The policy the sliders describe (the baseline itself when none moved).

        Raises
        ------
        BranchsimError
            The setting breaks a rule: cut points out of order, quotas above
            1, all balance sliders at 0, or anything :meth:`Policy.update`
            rejects.
        """
        v, base = self._values(), self.baseline
        self._check(v)
        changes = {}
        s = v.get(SHARE)
        if s is not None and s != base[SHARE]:
            changes[SHARE] = s
        keys = [k for k in v if k.startswith("balance.")]
        if any(v[k] != self._start[k] for k in keys):
            balance = np.array([v[k] for k in keys])
            if balance.sum() <= 0:
                raise BranchsimError("The dimension balance sliders are all 0; move at least one above 0.")
            rest = 1 - (s if s is not None else base.get(SHARE, 0.0))
            for p, x in zip(self._dims, rest * balance / balance.sum()):
                if abs(x - base[p]) > _TINY:
                    changes[p] = float(x)
        for k, value in v.items():
            if not k.startswith("balance.") and k != SHARE and value != base[k]:
                changes[k] = value
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
    def outcome(self, policy: Policy) -> dict:
        """:func:`~branchsim.evaluate.branch_outcome` of the population under ``policy`` (a slider setting).

        The components computed once are weighed with the policy's shares
        exactly as :func:`~branchsim.scoring.branch_scores` does, so the
        outcome is the one :func:`branchsim.evaluate` gives.
        """
        scheme = policy.scheme
        points, components = self._points, self._components
        slow = tuple(policy[k] for k, *_ in self._extra)
        if slow and slow != tuple(self.baseline[k] for k, *_ in self._extra):
            if slow not in self._rescored:   # points and components change: re-score under this policy
                bs = scheme.branch
                groups = {c: self._inp.codes(c)[0] for c in {x for x in bs.sheet.within if x is not None}}
                r = branch_scores(self._inp.facts, self._inp.type_idx, self._inp.survey, bs, rank_groups=groups)
                if len(self._rescored) > 32:
                    self._rescored.clear()
                self._rescored[slow] = (r["points"], r["components"])
            points, components = self._rescored[slow]
        scores = scores_from_components(points, components, self._inp.type_idx, scheme.branch)
        return branch_outcome(self._inp, scheme, scores=scores)

    def _count(self, policy: Policy) -> pd.Series:
        out = self.outcome(policy)
        bs = policy.scheme.branch
        counts = np.bincount(out["level"].astype(np.intp), minlength=bs.levels.n)
        s = {lv: int(counts[bs.levels.code(lv)]) for lv in bs.levels.ids}
        s.update({d.id: int(out["designations"][d.id].sum()) for d in bs.designations})
        return pd.Series(s, name="count", dtype=np.int64)

    def _frame(self, counts: pd.Series) -> pd.DataFrame:
        df = pd.DataFrame({"count": counts})
        df["baseline"] = self._base_counts.reindex(df.index).fillna(0).astype(int)
        df["change"] = df["count"] - df["baseline"]
        df["published"] = self._published.reindex(df.index).astype("Int64")
        df.index.name = "level"
        return df

    def _changed(self, _change: object) -> None:
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
        self._last_valid = reform
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

    def next_level(self, branch_id: object, *, cost: dict | None = None) -> pd.DataFrame:
        """:func:`branchsim.next_level` of one branch under the sliders' current policy (the last valid
        setting's, when the current one breaks a rule)."""
        from .audit import next_level
        return next_level(self.pop, self.policy or self._last_valid, branch_id, cost=cost)

    def show_next_level(self, branch_id: object) -> None:
        """Fill the explorer's answer box with :meth:`next_level` of ``branch_id`` (a message on a bad id)."""
        try:
            moves = self.next_level(str(branch_id).strip())
        except BranchsimError as exc:
            self.next_box.value = f"<div style='{_ERROR_STYLE}'>⚠ {html.escape(str(exc))}</div>"
            return
        a = moves.attrs
        single = moves[(moves["move"] == "single") & moves["change"].notna()].sort_values(["goal", "cost", "fact"])
        lines = [f"Branch <code>{html.escape(str(a['branch_id']))}</code>: score {a['score']:.2f}, level "
                 f"<b>{html.escape(str(a['level']))}</b>."]
        for goal in a["goals"]:
            cost = a["combination_cost"].get(goal)
            lines.append(f"To reach <b>{html.escape(str(goal))}</b>: cheapest combination costs "
                         + ("no combination within the facts' ranges" if cost is None or cost != cost
                            else f"{cost:g}") + ".")
        shown = single.groupby("goal", sort=False).head(5)[["goal", "fact", "change", "steps", "cost"]]
        self.next_box.value = "<br>".join(lines) + shown.to_html(index=False, border=0, float_format="{:g}".format)

    def _draw(self) -> None:
        self.figure = fig = counts_chart(self.counts, self.baseline.scheme.branch,
                                         (self.policy or self.baseline).name)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        # Set the Output's content directly: works with any matplotlib backend, and outside a kernel.
        self.chart.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                                        "text/plain": "<level counts chart>"}},)


def explore(pop: Population, policy: Policy | None = None, params: Iterable[str] | None = None) -> Explorer:
    """An interactive explorer of a policy's shares, cut points, quotas and lines (a widget for JupyterLab).

    Parameters
    ----------
    pop : Population
        Scored once; each slider change re-weighs and re-rates it with the
        engine's own rating code (milliseconds for a city of branches).
    policy : Policy or path, optional
        The starting policy (default: the baseline policy).
    params : list of paths, or dict {path: (low, high)}, optional
        More sliders, for any numeric branch parameter (an indicator's
        points, a deduction rate, a survey answer value, a veto threshold):
        the branches are re-scored under each new value (cached). A path that
        changes nothing the explorer shows (member, structure, consequence or
        intervention parameters) is refused, as is a non-numeric one.

    Returns
    -------
    ipywidgets.VBox
        Sliders, the table and chart of counts per level and designation,
        the policy diff. Its ``explorer`` attribute is the :class:`Explorer`
        behind it (``.sliders``, ``.policy``, ``.counts``, ``.message``).

    Examples
    --------
    >>> import branchsim as bs
    >>> w = explore(bs.generate(seed=0, n_branches=200, members=False))
    >>> top = f"branch.rating.cuts.{w.explorer.baseline.levels[0]}"
    >>> w.explorer.sliders[top].value = 92
    >>> w.explorer.policy.diff(bs.Policy.load())[["path", "old", "new"]].values.tolist() == [[top, 92.0, 90]]
    True
    """
    return Explorer(pop, policy, params).widget
