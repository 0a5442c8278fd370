"""The result of a measurement Monte Carlo: :class:`MonteCarlo` and its summaries.

:func:`~branchsim.sensitivity.montecarlo.measurement_mc` runs the draws and
hands their integer tallies to :func:`_assemble`, which lays them out as
tidy frames (per branch, per survey size and draw, per member); the class
holds them with ``probabilities()``, ``count_summary()``, a plain-text
``summary()`` and a notebook view.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..evaluate import STAR_NAMES
from ..scoring import GRADES

__all__ = ["MonteCarlo"]


class MonteCarlo:
    """Result of :func:`measurement_mc`.

    Attributes
    ----------
    star_probabilities : DataFrame
        One row per branch at the baseline survey size: ``branch_id``,
        ``type``, ``true_score``, ``true_stars``, ``true_weak``, ``p_no_star``
        … ``p_five_star`` (share of draws at each star level; they add up to
        1), ``p_weak``, ``modal_stars`` (the most frequent star, the lower on a
        tie) and ``p_true`` (probability of getting the true star).
    counts : DataFrame
        One row per survey size and draw: branches per star level, ``weak``,
        ``accuracy`` (share whose star equals the true star), ``too_high``,
        ``too_low``, ``false_alarms`` and ``misses`` (counts of branches).
    misclassification : DataFrame
        One row per survey size (see :func:`measurement_mc`).
    member_probabilities, grade_counts : DataFrame or None
        With ``members``: per member, ``p_unqualified`` … ``p_excellent`` and
        ``modal_grade``; per draw, members in each grade.
    survey_sizes : list of int
        Residents asked per branch in each run; ``baseline_size`` is the
        generator's own.
    true_counts : dict
        Each count under the truth (branches per true star, truly weak).
    draws, seed : int, SeedSequence
        What the run used (``seed`` reproduces it).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=100, members=False)
    >>> mc = bs.sensitivity.montecarlo.measurement_mc(pop, draws=10, survey_sizes=[30], progress=False)
    >>> mc.survey_sizes, list(mc.misclassification["survey_size"])
    ([25, 30], [25, 30])
    """

    def __init__(self, star_probabilities, counts, misclassification, member_probabilities, grade_counts,
                 *, probabilities_by_size, true_counts, survey_sizes, baseline_size, draws, seed, members,
                 policy_name):
        self.star_probabilities = star_probabilities
        self.counts = counts
        self.misclassification = misclassification
        self.member_probabilities = member_probabilities
        self.grade_counts = grade_counts
        self._by_size = probabilities_by_size
        self.true_counts = true_counts
        self.survey_sizes = survey_sizes
        self.baseline_size = baseline_size
        self.draws = draws
        self.seed = seed
        self.members = members
        self.policy_name = policy_name

    def probabilities(self, survey_size: int | None = None) -> pd.DataFrame:
        """Per-branch star probabilities for one survey size (default: the baseline)."""
        size = self.baseline_size if survey_size is None else survey_size
        if size not in self._by_size:
            raise BranchsimError(f"survey size {size!r} was not run; run sizes: {self.survey_sizes}")
        return self._by_size[size]

    def count_summary(self) -> pd.DataFrame:
        """Mean, sd and 5/50/95% quantiles of each count over draws, per survey size.

        ``true`` is the count under the true stars (and true weak units).
        """
        cols = [c for c in self.counts.columns if c not in ("survey_size", "draw")]
        long = self.counts.melt(id_vars=["survey_size"], value_vars=cols, var_name="measure")
        g = long.groupby(["survey_size", "measure"], sort=False)["value"]
        out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "q05": g.quantile(0.05),
                            "median": g.median(), "q95": g.quantile(0.95)}).reset_index()
        out.insert(2, "true", out["measure"].map(self.true_counts))
        return out

    def summary(self) -> str:
        """A plain-text summary (what ``print(mc)`` shows)."""
        cs = self.count_summary()
        base = cs[cs["survey_size"] == self.baseline_size].drop(columns="survey_size").set_index("measure")
        parts = [f"Monte Carlo over measurement noise: {len(self.star_probabilities)} branches, "
                 f"{self.draws} draws, policy {self.policy_name!r}, survey sizes {self.survey_sizes} "
                 f"respondents per branch (baseline {self.baseline_size})", "",
                 "Counts at the baseline survey size:", base.round(3).to_string(), "",
                 "Misclassification:", self.misclassification.round(4).to_string(index=False)]
        if self.grade_counts is not None:
            g = self.grade_counts.drop(columns="draw").agg(["mean", "std"]).T.round(1)
            parts += ["", f"Member grades ({self.members} redrawn):", g.to_string()]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        mis = self.misclassification.set_index("survey_size")["misclassified"]
        return (f"<MonteCarlo: {len(self.star_probabilities)} branches × {self.draws} draws; misclassified "
                + ", ".join(f"{v:.1%} at {k} respondents" for k, v in mis.items()) + ">")

    def _repr_html_(self) -> str:
        cs = self.count_summary()
        base = cs[cs["survey_size"] == self.baseline_size].drop(columns="survey_size").set_index("measure")
        blocks = [("Counts (baseline survey size)", base.round(3)),
                  ("Misclassification", self.misclassification.round(4).set_index("survey_size"))]
        if self.grade_counts is not None:
            blocks.append(("Member grades", self.grade_counts.drop(columns="draw").agg(["mean", "std"]).T
                           .round(1)))
        cells = "".join(f"<td style='vertical-align:top;padding-right:1.5em'><i>{t}</i>{df.to_html()}</td>"
                        for t, df in blocks)
        head = (f"<b>MonteCarlo</b> — {len(self.star_probabilities)} branches × {self.draws} draws, policy "
                f"<code>{html.escape(self.policy_name)}</code>")
        return f"<div>{head}<table><tr>{cells}</tr></table></div>"


def _assemble(parts, pop, policy, rules, setup, sizes, base_size, true_score, draws, root, mode) -> MonteCarlo:
    """Tidy frames from the integer tallies of every batch (summed, or laid out by draw)."""
    n = len(setup.q)
    hits, weak_hits = sum(p["hits"] for p in parts), sum(p["weak_hits"] for p in parts)
    per_draw = {k: np.concatenate([p[k] for p in parts], axis=1)
                for k in ("levels", "weak", "too_high", "too_low", "false_alarms", "misses")}
    levels = sorted({0, *rules.star_levels.tolist(), *rules.veto_max_star[rules.veto_max_star < 5].tolist()})
    b = pop.branches
    head = pd.DataFrame({"branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy(),
                         "true_score": true_score, "true_stars": setup.true_stars,
                         "true_weak": setup.true_weak})
    by_size, counts, mis = {}, [], []
    n_fine, n_weak = int((~setup.true_weak).sum()), int(setup.true_weak.sum())
    for j, s in enumerate(sizes):
        f = head.copy()
        for lv in levels:
            f[f"p_{STAR_NAMES[lv]}"] = hits[j, :, lv] / draws
        f["p_weak"] = weak_hits[j] / draws
        f["modal_stars"] = np.argmax(hits[j], axis=1).astype(np.int8)
        f["p_true"] = hits[j, np.arange(n), setup.true_stars] / draws
        by_size[s] = f
        c = pd.DataFrame({"survey_size": s, "draw": np.arange(draws)})
        for lv in levels[::-1]:
            c[STAR_NAMES[lv]] = per_draw["levels"][j, :, lv]
        wrong = per_draw["too_high"][j] + per_draw["too_low"][j]
        c["weak"] = per_draw["weak"][j]
        c["accuracy"] = 1 - wrong / n
        for k in ("too_high", "too_low", "false_alarms", "misses"):
            c[k] = per_draw[k][j]
        counts.append(c)
        total = draws * n
        mis.append({"survey_size": s,
                    "respondents": float(s),
                    "misclassified": wrong.sum() / total,
                    "too_high": per_draw["too_high"][j].sum() / total,
                    "too_low": per_draw["too_low"][j].sum() / total,
                    "false_alarm_rate": per_draw["false_alarms"][j].sum() / (draws * n_fine or np.nan),
                    "miss_rate": per_draw["misses"][j].sum() / (draws * n_weak or np.nan),
                    "truly_fine": n_fine, "truly_weak": n_weak})
    true_counts = {STAR_NAMES[lv]: int((setup.true_stars == lv).sum()) for lv in levels}
    true_counts.update(weak=n_weak, accuracy=1.0, too_high=0, too_low=0, false_alarms=0, misses=0)
    member_p = grade_counts = None
    if mode:
        inv = np.argsort(setup.m["perm"])
        gh = sum(p["grade_hits"] for p in parts)[inv]
        mem = pop.members
        member_p = pd.DataFrame({c: mem[c].to_numpy() for c in ("member_id", "branch_id", "category",
                                                                "true_quality")})
        for g, name in enumerate(GRADES):
            member_p[f"p_{name}"] = gh[:, g] / draws
        member_p["modal_grade"] = np.array(GRADES, dtype=object)[np.argmax(gh, axis=1)]
        grade_counts = pd.DataFrame(np.concatenate([p["grades"] for p in parts]), columns=list(GRADES))
        grade_counts.insert(0, "draw", np.arange(draws))
    return MonteCarlo(by_size[base_size], pd.concat(counts, ignore_index=True), pd.DataFrame(mis), member_p,
                      grade_counts, probabilities_by_size=by_size, true_counts=true_counts, survey_sizes=sizes,
                      baseline_size=base_size, draws=draws, seed=root, members=mode, policy_name=policy.name)
