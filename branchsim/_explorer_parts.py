"""The parts of the explorer that follow from the scheme: its sliders, notes and chart.

Nothing here names a scheme: the sliders come from the compiled
:class:`~branchsim.scheme.Scheme` (its score form, survey, dimensions, rating
design, levels and designation lines), the chart's bars from its levels and
designations.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["SHARE", "slider_specs", "overridden", "counts_chart"]

SHARE = "branch.satisfaction_share"
LEVEL_COLOURS = "Blues"
DESIGNATION_COLOUR = "#c62828"
PUBLISHED_COLOUR = "#424242"


def slider_specs(policy, scores: np.ndarray) -> list[tuple[str, str, str, float, float, float, str]]:
    """The sliders a scheme gets: ``(key, group, description, low, high, step, format)`` each.

    ``key`` is a parameter path, or ``balance.<dimension>`` for the balance
    of the dimensions. Nothing here names a scheme: the levels, designations
    and design come from ``policy.scheme``.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> keys = [s[0] for s in slider_specs(p, np.array([50.0]))]
    >>> keys[0], len(keys) == 1 + len(p.dimensions) + p.scheme.branch.levels.n - 1 + 1
    ('branch.satisfaction_share', True)
    """
    bs = policy.scheme.branch
    r, lv = bs.rating, bs.levels
    out = []
    if bs.form == "shares":
        if bs.survey:
            out.append((SHARE, "Shares", "survey share", 0.0, 1.0, 0.01, ".2f"))
        out += [(f"balance.{d}", "Balance", d, 0.0, 1.0, 0.01, ".2f") for d in bs.sheet.group_ids]
    top = max([100.0, float(np.max(scores, initial=0.0))] + [policy[f"branch.rating.cuts.{x}"]
                                                              for x in lv.ids[:-1] if r.cuts is not None])
    top = 10.0 * math.ceil((top + 5.0) / 10.0)
    if r.cuts is not None and r.design in ("cuts", "cuts_and_quota"):
        out += [(f"branch.rating.cuts.{x}", "Cut points", f"{en} cut", 0.0, top, 0.5, ".1f")
                for x, en in zip(lv.ids[:-1], lv.en[:-1])]
    if r.quotas is not None and r.design in ("quota", "cuts_and_quota"):
        out += [(f"branch.rating.quotas.{x}", "Quotas", f"{en} quota", 0.0, 1.0, 0.01, ".2f")
                for x, en in zip(lv.ids[:-1], lv.en[:-1])]
    for d in bs.designations:
        out += [(f"branch.designations.{d.id}.criteria.{c.id}.below", "Designations", f"{d.id} below", 0.0, top,
                 0.5, ".1f") for c in d.criteria if c.kind == "score_below"]
    return out


def extra_specs(policy, params, have) -> list[tuple[str, str, str, float, float, float, str]]:
    """Sliders for ``params`` (paths, or ``{path: (low, high)}``) beyond :func:`slider_specs`' own.

    Only a numeric ``branch.*`` parameter changes what the explorer shows (levels and designations);
    any other path is an error that says so, rather than a slider that moves nothing. Default range:
    0 to twice the value (0 to 1 for a value in [0, 1] whose parameter allows no more).

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> path = next(x for x in p.parameters()["path"] if x.endswith(".per_shortfall"))
    >>> extra_specs(p, [path], [])[0][3:5] == (0.0, 2 * p[path])
    True
    """
    from .errors import PolicyError
    if params is None:
        return []
    if isinstance(params, str) or not isinstance(params, (list, tuple, dict)):
        raise PolicyError(f"params must be a list of parameter paths or a dict {{path: (low, high)}}, got "
                          f"{params!r}", where="explore")
    items = params.items() if isinstance(params, dict) else [(p, None) for p in params]
    out, problems = [], []
    for path, rng in items:
        if path in have:
            continue
        v = policy.get(path) if isinstance(path, str) else None
        if not isinstance(path, str) or path not in policy or isinstance(v, bool) or not isinstance(v, (int, float)):
            problems.append(policy.value_problem(path, 0) if not isinstance(path, str) or path not in policy
                            else f"{path}: not a numeric parameter ({v!r})")
            continue
        if not path.startswith("branch."):
            problems.append(f"{path}: changes nothing the explorer shows (branch levels and designations); "
                            f"sweep it with bs.sweep, which reports member grades, upgrades and consequences")
            continue
        if rng is None:
            lo, hi = (0.0, 1.0) if 0 <= v <= 1 and policy.value_problem(path, 1.5) else (0.0, 2.0 * abs(v) or 1.0)
        elif (isinstance(rng, (list, tuple)) and len(rng) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in rng)
              and rng[0] < rng[1]):
            lo, hi = float(rng[0]), float(rng[1])
        else:
            problems.append(f"{path}: range {rng!r}; give (low, high) with low < high")
            continue
        bad = [b for b in (policy.value_problem(path, lo), policy.value_problem(path, hi)) if b]
        if bad:
            problems.append(bad[0])
            continue
        out.append((path, "More parameters", path.split(".", 2)[-1], lo, hi, (hi - lo) / 100, ".3g"))
    if problems:
        raise PolicyError(problems, where="explore")
    return out


def overridden(policy, keys) -> list[str]:
    """Type overrides a global slider does not move (a type's own cut or survey share)."""
    bs = policy.scheme.branch
    notes = []
    for key in keys:
        if not key.startswith("branch.") or key.startswith("branch.designations."):
            continue
        tail = key[len("branch."):]
        for t in bs.types:
            own = f"branch.types.{t}.{tail}"
            if own in policy:
                notes.append(f"{t} keeps its own {tail} ({policy[own]:g})")
    return notes


def counts_chart(counts: pd.DataFrame, bs, title: str):
    """A figure of the counts per level (best first) and designation, beside the published ones (hatched).

    ``counts`` has the columns ``count`` and ``published`` (NA where none),
    index the level ids then the designation ids; ``bs`` the compiled branch
    scheme whose labels name the bars.

    >>> import branchsim as bs
    >>> scheme = bs.Policy.load().scheme.branch
    >>> ids = list(scheme.levels.ids) + [d.id for d in scheme.designations]
    >>> c = pd.DataFrame({"count": range(len(ids)), "published": pd.array([pd.NA] * len(ids), "Int64")}, index=ids)
    >>> len(counts_chart(c, scheme, "p").axes[0].patches) == len(ids)
    True
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    n_lv = bs.levels.n
    shades = colormaps[LEVEL_COLOURS](np.linspace(0.85, 0.35, n_lv))
    colours = list(shades) + [DESIGNATION_COLOUR] * (len(counts) - n_lv)
    names = list(bs.levels.en) + [d.en for d in bs.designations]
    pub = counts["published"].astype("Float64").astype(float).to_numpy()
    has_pub = bool(np.isfinite(pub).any())
    width = 0.38 if has_pub else 0.7
    x = np.arange(len(counts))
    bars = ax.bar(x - (width / 2 if has_pub else 0), counts["count"].to_numpy(float), width, color=colours,
                  edgecolor="white")
    ax.bar_label(bars, fmt="%d", fontsize=8, padding=2)
    n = int(counts["count"].iloc[:n_lv].sum())
    handles = [Patch(facecolor=shades[n_lv // 2], label=f"this population (n = {n:,})")]
    if has_pub:
        m = np.isfinite(pub)
        hatched = ax.bar(x[m] + width / 2, pub[m], width, facecolor="white", edgecolor=PUBLISHED_COLOUR,
                         hatch="////", linewidth=1.0)
        ax.bar_label(hatched, fmt="%.0f", fontsize=8, padding=2, color=PUBLISHED_COLOUR)
        handles.append(Patch(facecolor="white", edgecolor=PUBLISHED_COLOUR, hatch="////", label="published"))
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("branches")
    ax.set_title(f"Levels and designations under {title}", fontsize=9)
    ax.margins(y=0.12)
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    return fig
