"""The result of a measurement Monte Carlo: :class:`MonteCarlo` and its summaries.

:func:`~branchsim.sensitivity.montecarlo.measurement_mc` runs the draws and
hands their integer tallies to :func:`assemble`, which lays them out as
tidy frames (per branch, per survey size and draw, per member) named by the
scheme's own ids: a column ``p_<level id>`` per level (best first), one
``p_<designation>`` per designation, ``p_<grade id>`` per member grade. The
class holds them with ``probabilities()``, ``confusion()``,
``count_summary()``, a plain-text ``summary()`` and a notebook view.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import html

import numpy as np
import pandas as pd

from ..errors import BranchsimError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["MonteCarlo", "assemble"]


class MonteCarlo:
    """Result of :func:`~branchsim.sensitivity.montecarlo.measurement_mc`.

    Attributes
    ----------
    level_probabilities : DataFrame
        One row per branch at the baseline survey size: ``branch_id``,
        ``type``, ``true_score``, ``true_rating``, ``true_<designation>``,
        ``p_<level id>`` for every level, best first (the share of draws at
        that level; they add up to 1), ``p_<designation>`` (the share of draws
        designated), ``modal_rating`` (the most frequent level, the lower on a
        tie) and ``p_true`` (the probability of the true level; ``1 - p_true``
        is the branch's expected misclassification). ``star_probabilities``
        is an alias.
    counts : DataFrame
        One row per survey size and draw: branches per level id, per
        designation id, ``accuracy`` (share whose level equals the true
        level), ``too_high``, ``too_low`` (counts of branches), and
        ``<designation>_false_alarms``, ``<designation>_misses``.
    misclassification : DataFrame
        One row per survey size: ``misclassified``, ``too_high`` and
        ``too_low`` as shares of branch-draws whose level differs from the
        true level.
    designation_errors : DataFrame
        One row per survey size and designation: ``truly`` and ``truly_not``
        (branches the truth designates or not), ``false_alarm_rate`` (share
        of draws in which a branch the truth does not designate is
        designated) and ``miss_rate`` (the reverse).
    member_probabilities, grade_counts : DataFrame or None
        With ``members``: per member, ``graded`` (False for an exempt class),
        ``p_<grade id>`` best first (NaN when not graded) and ``modal_grade``;
        per draw, members at each grade.
    levels, designations, grades : list of str
        The scheme's level ids (best first), designation ids, grade ids.
    survey_sizes : list of int
        Respondents per branch in each run; ``baseline_size`` is the
        generator's own.
    true_counts : dict
        Each count under the truth (branches per true level, truly designated).
    draws, seed
        What the run used (``seed`` reproduces it).
    reference : {"truth", "observed"}
        What a draw is compared with. ``"observed"`` (a run on loaded
        tables, which have no truth): the level the tables give. The
        columns above are then named ``observed_score``,
        ``observed_rating``, ``observed_<designation>``, ``p_observed``
        (``1 - p_observed``: the probability that a redraw gives another
        level — how firmly the data fix the branch's level, not an
        accuracy); ``counts`` has ``agreement`` and
        ``<designation>_gained`` / ``_lost`` (designated in a draw but not in
        the tables, and the reverse); ``designation_errors`` has
        ``observed``, ``observed_not``, ``gained_rate``, ``lost_rate``; the
        only survey size is ``"observed"`` (each branch's own respondents;
        ``misclassification["respondents"]`` is their mean).
    noise, survey_prior
        On loaded tables: the facts' declared noise (``FactNoise`` of each
        fact that varies) and the Dirichlet prior per answer.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=100, members=False)
    >>> mc = bs.sensitivity.montecarlo.measurement_mc(pop, draws=10, survey_sizes=[30], progress=False)
    >>> mc.survey_sizes, list(mc.misclassification["survey_size"])
    ([25, 30], [25, 30])
    >>> int(mc.confusion().to_numpy().sum().round()) == len(pop.branches)
    True
    """

    def __init__(self, level_probabilities: pd.DataFrame, counts: pd.DataFrame, misclassification: pd.DataFrame,
                 designation_errors: pd.DataFrame, member_probabilities: pd.DataFrame | None,
                 grade_counts: pd.DataFrame | None, *, probabilities_by_size: dict[Any, pd.DataFrame],
                 confusions: dict[Any, pd.DataFrame], true_counts: Mapping[str, float], survey_sizes: list,
                 baseline_size: Any, draws: int, seed: Seed, members: bool | str, policy_name: str,
                 levels: list[str], designations: list[str], grades: list[str], reference: str = "truth",
                 noise: list | None = None, survey_prior: float | None = None) -> None:
        self.level_probabilities = level_probabilities
        self.counts = counts
        self.misclassification = misclassification
        self.designation_errors = designation_errors
        self.member_probabilities = member_probabilities
        self.grade_counts = grade_counts
        self._by_size = probabilities_by_size
        self._confusions = confusions
        self.true_counts = true_counts
        self.survey_sizes = survey_sizes
        self.baseline_size = baseline_size
        self.draws = draws
        self.seed = seed
        self.members = members
        self.policy_name = policy_name
        self.levels, self.designations, self.grades = levels, designations, grades
        self.reference, self.noise, self.survey_prior = reference, noise or [], survey_prior

    @property
    def star_probabilities(self) -> pd.DataFrame:
        """Alias of ``level_probabilities`` (the first scheme rated in stars)."""
        return self.level_probabilities

    def _size(self, survey_size: Any) -> Any:
        size = self.baseline_size if survey_size is None else survey_size
        if size not in self._by_size:
            raise BranchsimError(f"survey size {size!r} was not run; run sizes: {self.survey_sizes}")
        return size

    def probabilities(self, survey_size: int | None = None) -> pd.DataFrame:
        """Per-branch level probabilities for one survey size (default: the baseline)."""
        return self._by_size[self._size(survey_size)]

    def confusion(self, survey_size: int | None = None) -> pd.DataFrame:
        """Expected branches per draw by true level (rows) and measured level (columns), best first.

        The diagonal holds the branches rated at their true level; the rest,
        summed, is the expected number misclassified in a draw.
        """
        return self._confusions[self._size(survey_size)]

    def count_summary(self) -> pd.DataFrame:
        """Mean, sd and 5/50/95% quantiles of each count over draws, per survey size.

        ``true`` is the count under the truth (true levels, true designations);
        on loaded tables the column is ``observed``: the count the tables give.
        """
        cols = [c for c in self.counts.columns if c not in ("survey_size", "draw")]
        long = self.counts.melt(id_vars=["survey_size"], value_vars=cols, var_name="measure")
        g = long.groupby(["survey_size", "measure"], sort=False)["value"]
        out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "q05": g.quantile(0.05),
                            "median": g.median(), "q95": g.quantile(0.95)}).reset_index()
        out.insert(2, "true" if self.reference == "truth" else "observed", out["measure"].map(self.true_counts))
        return out

    def _base_counts(self) -> pd.DataFrame:
        cs = self.count_summary()
        return cs[cs["survey_size"] == self.baseline_size].drop(columns="survey_size").set_index("measure")

    def _grade_table(self) -> pd.DataFrame:
        return self.grade_counts.drop(columns="draw").agg(["mean", "std"]).T.round(1)

    def summary(self) -> str:
        """A plain-text summary (what ``print(mc)`` shows)."""
        if self.reference == "truth":
            head = [f"Monte Carlo over measurement noise: {len(self.level_probabilities)} branches, "
                    f"{self.draws} draws, policy {self.policy_name!r}, survey sizes {self.survey_sizes} "
                    f"respondents per branch (baseline {self.baseline_size})"]
        else:
            varied = ", ".join(f"{m.fact} ({m.model})" for m in self.noise[:6]) + (", …" if len(self.noise) > 6
                                                                                    else "")
            head = [f"Monte Carlo on the tables as observed: {len(self.level_probabilities)} branches, "
                    f"{self.draws} draws, policy {self.policy_name!r}",
                    ("survey redrawn from each branch's answers (Dirichlet-multinomial, prior "
                     f"{self.survey_prior} per answer); " if self.survey_prior is not None else "")
                    + f"facts redrawn: {varied or 'none (all held as observed)'}",
                    "Misclassified: the probability that a redraw gives a level other than the tables' own "
                    "(no truth: how firmly the data fix the level, not an accuracy)"]
        parts = [*head, "", "Counts at the baseline survey size:" if self.reference == "truth" else "Counts:",
                 self._base_counts().round(3).to_string(), "",
                 "Misclassification:", self.misclassification.round(4).to_string(index=False)]
        if len(self.designation_errors):
            parts += ["", "Designations:", self.designation_errors.round(4).to_string(index=False)]
        if self.grade_counts is not None:
            parts += ["", f"Member grades ({self.members} redrawn):", self._grade_table().to_string()]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        mis = self.misclassification.set_index("survey_size")["misclassified"]
        if self.reference == "observed":
            return (f"<MonteCarlo on observed tables: {len(self.level_probabilities)} branches × {self.draws} "
                    f"draws; a redraw changes the level {mis.iloc[0]:.1%} of the time>")
        return (f"<MonteCarlo: {len(self.level_probabilities)} branches × {self.draws} draws; misclassified "
                + ", ".join(f"{v:.1%} at {k} respondents" for k, v in mis.items()) + ">")

    def _repr_html_(self) -> str:
        blocks = [("Counts (baseline survey size)", self._base_counts().round(3)),
                  ("Misclassification", self.misclassification.round(4).set_index("survey_size"))]
        if len(self.designation_errors):
            blocks.append(("Designations", self.designation_errors.round(4).set_index(["survey_size",
                                                                                       "designation"])))
        if self.grade_counts is not None:
            blocks.append(("Member grades", self._grade_table()))
        cells = "".join(f"<td style='vertical-align:top;padding-right:1.5em'><i>{t}</i>{df.to_html()}</td>"
                        for t, df in blocks)
        head = (f"<b>MonteCarlo</b> — {len(self.level_probabilities)} branches × {self.draws} draws, policy "
                f"<code>{html.escape(self.policy_name)}</code>")
        return f"<div>{head}<table><tr>{cells}</tr></table></div>"


def _joined(parts: Sequence[Mapping[str, np.ndarray]], key: str) -> np.ndarray:
    return np.concatenate([p[key] for p in parts], axis=1)


#: The survey size of a run on loaded tables: each branch's observed respondents.
OBSERVED = "observed"

#: Column names by what a draw is compared with: the truth, or the level the tables give.
_LABELS = {"truth": dict(ref="true", p="p_true", accuracy="accuracy", alarms="false_alarms", misses="misses",
                         truly="truly", truly_not="truly_not", alarm_rate="false_alarm_rate",
                         miss_rate="miss_rate"),
           "observed": dict(ref="observed", p="p_observed", accuracy="agreement", alarms="gained", misses="lost",
                            truly="observed", truly_not="observed_not", alarm_rate="gained_rate",
                            miss_rate="lost_rate")}


def assemble(parts, pop, policy, setup, *, sizes, base_size, true_score, draws, root, mode, reference="truth",
             respondents=None, noise=None, prior=None) -> MonteCarlo:
    """Tidy frames from the integer tallies of every batch (summed, or laid out by draw).

    ``reference`` ``"truth"`` compares each draw with the truth (``true_*``
    columns); ``"observed"`` with the level the loaded tables give
    (``observed_*`` columns, ``p_observed``, ``agreement``, designations
    ``gained`` and ``lost``).
    """
    lab = _LABELS[reference]
    bs = setup.scheme.branch
    lv = bs.levels
    L, n = lv.n, len(setup.true_level)
    best_first = np.arange(L)[::-1]                       # codes of lv.ids, in order
    des = [x.id for x in bs.designations]
    hits = sum(p["hits"] for p in parts)
    dhits = sum(p["designated_hits"] for p in parts)
    levels, designated = _joined(parts, "levels"), _joined(parts, "designated")
    too_high, too_low = _joined(parts, "too_high"), _joined(parts, "too_low")
    alarms, misses = _joined(parts, "false_alarms"), _joined(parts, "misses")
    true_level, true_des = setup.true_level, setup.true_designated
    b = pop.branches
    ref = lab["ref"]
    head = pd.DataFrame({"branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy(),
                         f"{ref}_score": true_score, f"{ref}_rating": lv.id_of(true_level)})
    for k, d in enumerate(des):
        head[f"{ref}_{d}"] = true_des[:, k]
    truly = true_des.sum(axis=0)
    by_size, confusions, counts, mis, des_err = {}, {}, [], [], []
    total = draws * n
    for j, s in enumerate(sizes):
        f = head.copy()
        for code, name in zip(best_first, lv.ids):
            f[f"p_{name}"] = hits[j, :, code] / draws
        for k, d in enumerate(des):
            f[f"p_{d}"] = dhits[j, :, k] / draws
        f["modal_rating"] = lv.id_of(np.argmax(hits[j], axis=1))     # argmax: the lower level on a tie
        f[lab["p"]] = hits[j, np.arange(n), true_level] / draws
        by_size[s] = f
        conf = np.stack([hits[j][true_level == c].sum(axis=0) for c in best_first])[:, best_first] / draws
        confusions[s] = pd.DataFrame(conf, index=pd.Index(lv.ids, name=ref),
                                     columns=pd.Index(lv.ids, name="measured"))
        c = pd.DataFrame({"survey_size": s, "draw": np.arange(draws)})
        for code, name in zip(best_first, lv.ids):
            c[name] = levels[j, :, code]
        for k, d in enumerate(des):
            c[d] = designated[j, :, k]
        wrong = too_high[j] + too_low[j]
        c[lab["accuracy"]] = 1 - wrong / n
        c["too_high"], c["too_low"] = too_high[j], too_low[j]
        for k, d in enumerate(des):
            c[f"{d}_{lab['alarms']}"], c[f"{d}_{lab['misses']}"] = alarms[j, :, k], misses[j, :, k]
        counts.append(c)
        mis.append({"survey_size": s, "respondents": float(s) if respondents is None else respondents,
                    "misclassified": wrong.sum() / total,
                    "too_high": too_high[j].sum() / total, "too_low": too_low[j].sum() / total})
        for k, d in enumerate(des):
            fine = n - int(truly[k])
            des_err.append({"survey_size": s, "designation": d, lab["truly"]: int(truly[k]), lab["truly_not"]: fine,
                            lab["alarm_rate"]: alarms[j, :, k].sum() / (draws * fine) if fine else np.nan,
                            lab["miss_rate"]: misses[j, :, k].sum() / (draws * truly[k]) if truly[k] else np.nan})
    true_counts = {name: int((true_level == code).sum()) for code, name in zip(best_first, lv.ids)}
    true_counts.update({d: int(truly[k]) for k, d in enumerate(des)})
    true_counts.update({lab["accuracy"]: 1.0, "too_high": 0, "too_low": 0})
    true_counts.update({f"{d}_{lab[e]}": 0 for d in des for e in ("alarms", "misses")})
    member_p = grade_counts = None
    grades = []
    if mode:
        ms = setup.scheme.member
        grades = list(ms.grades.ids)
        gbest = np.arange(ms.grades.n)[::-1]
        gh = sum(p["grade_hits"] for p in parts)
        graded = gh.sum(axis=1) > 0
        mem = pop.members
        member_p = pd.DataFrame({c: mem[c].to_numpy() for c in ("member_id", "branch_id", "category",
                                                                "true_quality")})
        member_p["graded"] = graded
        for code, name in zip(gbest, grades):
            member_p[f"p_{name}"] = np.where(graded, gh[:, code] / draws, np.nan)
        member_p["modal_grade"] = np.where(graded, ms.grades.id_of(np.argmax(gh, axis=1)), None)
        grade_counts = pd.DataFrame(np.concatenate([p["grades"] for p in parts])[:, gbest], columns=grades)
        grade_counts.insert(0, "draw", np.arange(draws))
    return MonteCarlo(by_size[base_size], pd.concat(counts, ignore_index=True), pd.DataFrame(mis),
                      pd.DataFrame(des_err, columns=["survey_size", "designation", lab["truly"], lab["truly_not"],
                                                     lab["alarm_rate"], lab["miss_rate"]]),
                      member_p, grade_counts, probabilities_by_size=by_size, confusions=confusions,
                      true_counts=true_counts, survey_sizes=sizes, baseline_size=base_size, draws=draws, seed=root,
                      members=mode, policy_name=policy.name, levels=list(lv.ids), designations=des, grades=grades,
                      reference=reference, noise=noise, survey_prior=prior)
