"""Which rating design to roll out: several designs side by side on one population (or across cities).

:func:`compare_designs` rates one generated population (it carries the
truth) under each design and measures, per design: accuracy against the
truth, year-to-year stability, monotonicity, agreement across branch types
and sensitivity to measurement noise and survey size. :func:`monotonicity`
is the monotonicity check on its own (it needs no truth).

The truth of a design is the design applied to the noise-free scores (the
``true_rating`` of :func:`branchsim.evaluate`): under a relative design
(quota, clustering) a branch's true level depends on the other branches'
true scores too. Every design sees the same draws (common random numbers:
one seed per purpose, the same for each design), so differences between
designs are not differences of luck.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, overload

import html
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError, PolicyError
from ..policy import REFORM_SCHEMA, Policy, as_policy, read_yaml

if TYPE_CHECKING:
    from collections.abc import Iterable
    from ..evaluate import Result
    from ..plausible import Cities
    from ..population import Population
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["DesignComparison", "compare_designs", "design_policies", "monotonicity"]

#: Rule forms whose points fall as their fact rises (per_occurrence, penalty, zeroing).
_LOWER_IS_BETTER = (5, 6, 7)
_RANK = 8


def _again(exc: BranchsimError, text: str) -> BranchsimError:
    """``exc``'s class with the message ``text`` (the family's base when the class takes other arguments)."""
    try:
        return type(exc)(text)
    except TypeError:
        return BranchsimError(text)


def design_policies(designs: Mapping, policy: Policy) -> dict[str, Policy]:
    """Each design as a Policy: a Policy as it is, ``{path: value}`` or a reform file applied to ``policy``,
    a whole policy file loaded.

    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> d = design_policies({"own": p, "k": {"branch.rating.design": "kmeans"}}, p)
    >>> d["k"].scheme.branch.rating.design, d["own"] is p
    ('kmeans', True)
    """
    if not isinstance(designs, Mapping) or not designs:
        raise BranchsimError(f"compare_designs: designs must be a non-empty mapping {{name: Policy, reform file, "
                             f"policy file or {{path: value}}}}, got {type(designs).__name__}")
    out = {}
    for name, d in designs.items():
        if not isinstance(name, str) or not name.strip():
            raise BranchsimError(f"compare_designs: a design's name must be a non-empty text, got {name!r}")
        try:
            if isinstance(d, Policy):
                out[name] = d
            elif isinstance(d, Mapping):
                out[name] = policy.update(d, name=name)
            elif isinstance(d, (str, os.PathLike)):
                doc = read_yaml(Path(d), what="reform or policy file")
                reform = isinstance(doc, dict) and doc.get("schema") == REFORM_SCHEMA
                out[name] = policy.update(d) if reform else Policy.load(d)
            else:
                raise PolicyError(f"a Policy, a reform or policy file's path, or a mapping {{path: value}}, got "
                                  f"{type(d).__name__}")
        except BranchsimError as exc:
            where = f" ({d})" if isinstance(d, (str, os.PathLike)) and str(d) not in str(exc) else ""
            raise _again(exc, f"design {name!r}{where}: {exc}") from None
    return out


# -- monotonicity ------------------------------------------------------------------------------------
def _improved(b: pd.DataFrame, policy: Policy, step: float, mask: np.ndarray) -> pd.DataFrame:
    """A copy of ``b`` whose rows in ``mask`` have every indicator fact moved ``step`` of its range the way
    that earns more points (down for per_occurrence, penalty, zeroing and low-first ranks), within the range."""
    from .._schema import MAX_NUMBER
    from ..scoring import type_codes
    sheet = policy.scheme.branch.sheet
    kind = sheet.kind[type_codes(b["type"], policy.scheme.branch.types, policy.name)]      # (n, k)
    sign = np.where(np.isin(kind, _LOWER_IS_BETTER) | ((kind == _RANK) & ~sheet.high_first), -1, 1)
    out = b.copy()
    for fact in dict.fromkeys(sheet.facts):          # a loop over the indicators' facts, not over units
        cols = [j for j, f in enumerate(sheet.facts) if f == fact]
        s = sign[:, cols]
        way = np.where((s == s[:, :1]).all(axis=1), s[:, 0], 0) * mask     # indicators disagreeing: left as is
        lo, hi = sheet.ranges[cols[0]]
        f = b[fact].to_numpy(float)
        width = hi - lo if hi < MAX_NUMBER else max(float(np.ptp(f)) if len(f) else 0.0, 1.0)
        d = step * width
        out[fact] = np.where(way > 0, np.maximum(f, np.minimum(f + d, hi)),
                             np.where(way < 0, np.minimum(f, np.maximum(f - d, lo)), f))
    return out


def _codes(levels, ids) -> np.ndarray:
    """Level codes (0 the floor) of level ids; -1 where a unit is not rated."""
    code = {lv: levels.code(lv) for lv in levels.ids}
    return np.array([code.get(v, -1) for v in ids], dtype=np.int64)


def monotonicity(pop: Population, policy: PolicyLike = None, *, step: float = 0.01,
                 units: Iterable[object] | None = None, before: Result | None = None) -> pd.DataFrame:
    """Branches that improve on every indicator and still drop a level.

    Every indicator fact of each improved branch moves ``step`` of its
    range (``range`` in the policy; for a rank's unbounded fact, the spread
    of the branches' values) in the direction that earns more points, within
    the range (a fact already at its best stays). The survey is left as it
    is. The whole population is then rated again, so a relative design
    (quota, clustering) moves its cut points; a branch improved and rated
    below its level before is a violation. Fixed cut points cannot violate.

    Parameters
    ----------
    pop : Population
    policy : Policy or path, optional
        Default: the baseline.
    step : float
        Share of each fact's range (0 < step <= 1).
    units : list of branch_id, optional
        Improve only these branches (default: every branch at once).
    before : Result, optional
        The population's evaluation under ``policy``, when already at hand.

    Returns
    -------
    DataFrame
        One row per violation, in the table's row order: ``branch_id``,
        ``type``, ``score``, ``improved_score``, ``rating``, ``improved_rating``.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=100, members=False)
    >>> len(monotonicity(pop, bs.Policy.load()))          # fixed cut points
    0
    """
    from ..evaluate import evaluate_checked
    from ..population import Population
    if not isinstance(pop, Population):
        raise DataError(f"monotonicity: takes a Population, got {type(pop).__name__}")
    policy = as_policy(policy)
    if isinstance(step, bool) or not isinstance(step, (int, float, np.number)) or not 0 < step <= 1:
        raise DataError(f"monotonicity: step is a share of each fact's range in (0, 1], got {step!r}")
    b = pop.branches
    ids = b["branch_id"].to_numpy()
    if units is None:
        mask = np.ones(len(b), dtype=bool)
    else:
        units = [units] if isinstance(units, str) else list(units)
        unknown = sorted({str(u) for u in units} - {str(i) for i in ids})
        if unknown:
            raise DataError(f"monotonicity: units {unknown[:5]} are not branch ids of the population")
        mask = pd.Index(units).astype(str).get_indexer(ids.astype(str)) >= 0
    r0 = before if before is not None else evaluate_checked(policy, b, pop.members, pop.member_months)
    r1 = evaluate_checked(policy, _improved(b, policy, step, mask), pop.members, pop.member_months)
    lv = policy.scheme.branch.levels
    c0, c1 = _codes(lv, r0.branches["rating"]), _codes(lv, r1.branches["rating"])
    drop = mask & (c0 >= 0) & (c1 >= 0) & (c1 < c0)
    return pd.DataFrame({"branch_id": ids[drop], "type": b["type"].to_numpy()[drop],
                         "score": r0.branches["score"].to_numpy()[drop],
                         "improved_score": r1.branches["score"].to_numpy()[drop],
                         "rating": r0.branches["rating"].to_numpy()[drop],
                         "improved_rating": r1.branches["rating"].to_numpy()[drop]})


# -- the comparison ----------------------------------------------------------------------------------
#: Columns of :attr:`DesignComparison.table` that are not numbers (dropped across cities).
_TEXT = ("design", "policy", "rating", "monotonicity_examples")


class DesignComparison:
    """Result of :func:`compare_designs` on one population.

    Attributes
    ----------
    table : DataFrame
        One row per design (the order given): ``design``, ``policy`` (its
        name), ``rating`` (the design, ``by <column>`` for peer groups),
        ``branches``; ``accuracy`` (share rated at the true level),
        ``kappa`` (Cohen's kappa of measured against true levels),
        ``too_high``, ``too_low`` (shares); ``year_changed`` (share of the
        ``year_units`` branches whose true level is the same in years 0 and
        1 of :func:`branchsim.simulate` that change measured level);
        ``monotonicity_violations`` (count), ``monotonicity_share`` and
        ``monotonicity_examples`` (up to three branch ids) of
        :func:`monotonicity`; ``type_tvd_max`` and ``type_tvd_mean``
        (largest and branch-weighted mean over types of the total variation
        distance between the type's measured and true level distributions);
        ``noise_changed`` (share of branches whose level is not the same in
        every noise draw), ``noise_flip`` (chance two independent draws give
        a branch different levels, ``1 - sum p_level^2`` averaged) and
        ``misclassified_<n>`` (share of branch-draws off the true level with
        ``n`` respondents per branch) from :func:`branchsim.measurement_mc`.
    confusion : DataFrame
        ``design``, ``true``, ``measured`` (level ids, best first), ``branches``.
    by_type : DataFrame
        ``design``, ``type``, ``branches``, ``accuracy``, ``tvd``.
    violations : DataFrame
        ``design`` and the columns of :func:`monotonicity`, every violation.
    survey : DataFrame
        ``design`` and ``measurement_mc``'s misclassification per survey size.
    policies : dict
        Design name -> the Policy rated.
    """

    def __init__(self, table: pd.DataFrame, confusion: pd.DataFrame, by_type: pd.DataFrame,
                 violations: pd.DataFrame, survey: pd.DataFrame, policies: dict[str, Policy], *, draws: int,
                 seed: Seed, step: float) -> None:
        self.table, self.confusion, self.by_type = table, confusion, by_type
        self.violations, self.survey, self.policies = violations, survey, policies
        self.draws, self.seed, self.step = draws, seed, step

    def shown(self, decimals: int = 3) -> pd.DataFrame:
        """The table with its shares rounded (what ``print`` and the notebook view show)."""
        return self.table.round(decimals)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 40):
            return (f"DesignComparison: {len(self.table)} designs, {self.draws} noise draws\n"
                    + self.shown().to_string(index=False))

    def _repr_html_(self) -> str:
        return (f"<b>DesignComparison</b> — {len(self.table)} designs, {self.draws} noise draws"
                + self.shown().to_html(index=False))


def _rating_name(policy: Policy) -> str:
    r = policy.scheme.branch.rating
    peer = f" by {r.peer_groups}" if r.peer_groups and r.design != "cuts" else ""
    guard = "" if np.isnan(r.guardrail) else f", guardrail {r.guardrail:g}"
    return f"{r.design}{peer}{guard}"


def _kappa(true: np.ndarray, measured: np.ndarray, n_levels: int) -> float:
    from sklearn.metrics import cohen_kappa_score
    with warnings.catch_warnings():             # one level only: kappa is undefined (NaN), not an error
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(true, measured, labels=list(range(n_levels))))


def _accuracy_parts(name, p, result):
    """Accuracy, kappa, the confusion matrix and the agreement by type of one evaluation."""
    lv = p.scheme.branch.levels
    b = result.branches
    true, meas = _codes(lv, b["true_rating"]), _codes(lv, b["rating"])
    n = len(b)
    row = {"accuracy": float(np.mean(true == meas)) if n else np.nan,
           "kappa": _kappa(true, meas, lv.n),
           "too_high": float(np.mean(meas > true)) if n else np.nan,
           "too_low": float(np.mean(meas < true)) if n else np.nan}
    cat = lambda v: pd.Categorical(v, categories=list(lv.ids))   # noqa: E731
    tab = pd.crosstab(cat(b["true_rating"]), cat(b["rating"]), dropna=False).reindex(
        index=list(lv.ids), columns=list(lv.ids), fill_value=0)
    conf = pd.DataFrame({"design": name, "true": np.repeat(list(lv.ids), lv.n),
                         "measured": np.tile(list(lv.ids), lv.n), "branches": tab.to_numpy().ravel()})
    types = [t for t in p.branch_types if (b["type"] == t).any()]
    tcat = pd.Categorical(b["type"], categories=types)
    m_share = pd.crosstab(tcat, cat(b["rating"]), dropna=False, normalize="index")
    t_share = pd.crosstab(tcat, cat(b["true_rating"]), dropna=False, normalize="index")
    tvd = 0.5 * np.abs(m_share.to_numpy() - t_share.to_numpy()).sum(axis=1)
    counts = b["type"].value_counts().reindex(types).to_numpy()
    right = pd.Series(true == meas).groupby(tcat, observed=False).mean().reindex(types).to_numpy()
    by_type = pd.DataFrame({"design": name, "type": types, "branches": counts, "accuracy": right, "tvd": tvd})
    row["type_tvd_max"] = float(tvd.max()) if len(tvd) else np.nan
    row["type_tvd_mean"] = float(np.sum(tvd * counts) / counts.sum()) if len(tvd) else np.nan
    return row, conf, by_type


def _year_to_year(pop, p, seed) -> dict:
    """Share of branches whose measured level changes from year 0 to 1 while their true level stays."""
    from ..dynamics import simulate
    h = simulate(pop, p, years=2, seed=seed, members=False).branches
    y0 = h[h["year"] == 0].set_index("branch_id")
    y1 = h[h["year"] == 1].set_index("branch_id").reindex(y0.index)
    same = (y0["true_rating"].to_numpy(object) == y1["true_rating"].to_numpy(object))
    changed = y0["rating"].to_numpy(object) != y1["rating"].to_numpy(object)
    return {"year_changed": float((changed & same).sum() / same.sum()) if same.any() else np.nan,
            "year_units": int(same.sum())}


def _noise(name, pop, p, seed, draws, sizes):
    """Noise and survey-size sensitivity from the measurement Monte Carlo."""
    from ..sensitivity import measurement_mc
    mc = measurement_mc(pop, p, draws=draws, seed=seed, survey_sizes=list(sizes) if sizes and p.has_survey
                        else None, progress=False)
    lv = p.scheme.branch.levels
    P = mc.level_probabilities[[f"p_{i}" for i in lv.ids]].to_numpy(float)
    row = {"noise_changed": float(np.mean(P.max(axis=1) < 1)) if len(P) else np.nan,
           "noise_flip": float(np.mean(1 - (P * P).sum(axis=1))) if len(P) else np.nan}
    mis = mc.misclassification
    row.update({f"misclassified_{s}": float(v) for s, v in zip(mis["survey_size"], mis["misclassified"])})
    return row, mis.assign(design=name)[["design", *mis.columns]]


def _check_args(noise_draws, survey_sizes, step) -> list | None:
    """The arguments checked; the survey sizes as a list (None: none)."""
    whole = lambda v: not isinstance(v, bool) and isinstance(v, (int, np.integer))   # noqa: E731
    if not whole(noise_draws) or noise_draws < 2:
        raise DataError(f"compare_designs: noise_draws must be a whole number >= 2, got {noise_draws!r}")
    if survey_sizes is not None:
        sizes = [survey_sizes] if whole(survey_sizes) else survey_sizes
        if not isinstance(sizes, (list, tuple)) or not all(whole(s) and s >= 1 for s in sizes):
            raise DataError(f"compare_designs: survey_sizes must be a list of whole numbers >= 1 (respondents "
                            f"per branch), got {survey_sizes!r}")
        survey_sizes = [int(s) for s in sizes]
    if isinstance(step, bool) or not isinstance(step, (int, float, np.number)) or not 0 < step <= 1:
        raise DataError(f"compare_designs: step is a share of each fact's range in (0, 1], got {step!r}")
    return survey_sizes


@overload
def compare_designs(pop_or_cities: Population, designs: Mapping, *, policy: PolicyLike = None,
                    noise_draws: int = 50, survey_sizes: Iterable[int] = (10, 50), seed: Seed = 0,
                    step: float = 0.01) -> DesignComparison: ...
@overload
def compare_designs(pop_or_cities: Cities, designs: Mapping, *, policy: PolicyLike = None,
                    noise_draws: int = 50, survey_sizes: Iterable[int] = (10, 50), seed: Seed = 0,
                    step: float = 0.01) -> pd.DataFrame: ...


def compare_designs(pop_or_cities: Population | Cities, designs: Mapping, *, policy: PolicyLike = None,
                    noise_draws: int = 50, survey_sizes: Iterable[int] = (10, 50), seed: Seed = 0,
                    step: float = 0.01) -> DesignComparison | pd.DataFrame:
    """Rate one population under several rating designs and measure what matters for a roll-out.

    Parameters
    ----------
    pop_or_cities : Population or Cities
        A generated population (it carries the truth), or plausible cities
        (:func:`branchsim.plausible_cities`): then every number comes with its
        interval across cities (:func:`~branchsim.plausible.across_cities`).
    designs : mapping
        Name -> a :class:`~branchsim.Policy`, a reform file's path or a
        ``{path: value}`` mapping (applied to ``policy``), or a whole policy
        file's path. Each must rate the population's facts and types.
    policy : Policy or path, optional
        What reforms apply to (default: the cities' policy, else the baseline).
    noise_draws : int
        Draws of the measurement Monte Carlo per design.
    survey_sizes : list of int
        Respondents per branch for the misclassification columns (the
        generator's own size is always run); ignored for a design without a survey.
    seed : int, SeedSequence or Generator
        One root: its first child seeds the two simulated years, its second
        the noise draws; every design uses the same two.
    step : float
        Improvement of every indicator fact, as a share of its range, in the
        monotonicity check (:func:`monotonicity`; every branch at once).

    Returns
    -------
    DesignComparison
        ``.table`` (one row per design), ``.confusion``, ``.by_type``,
        ``.violations``, ``.survey``. With cities: a DataFrame, one row per
        design and quantity (``mean``, ``sd``, ``lower``, ``upper``, ``n_cities``).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=120, members=False)
    >>> c = bs.compare_designs(pop, {"cuts": bs.Policy.load(), "quota": {"branch.rating.design": "quota",
    ...     "branch.rating.quotas": {lv: {"value": 0.2, "assumption": "example"} for lv in ("five_star",
    ...     "four_star", "three_star")}}}, noise_draws=5, survey_sizes=[10])
    >>> c.table[["design", "rating"]].values.tolist()
    [['cuts', 'cuts'], ['quota', 'quota']]
    >>> int(c.table.loc[0, "monotonicity_violations"])      # fixed cuts never drop an improved branch
    0
    >>> int(c.confusion.query("design == 'cuts'")["branches"].sum())
    120
    """
    from ..plausible import Cities
    from ..population import Population, evaluate
    from ..streams import as_seed_sequence
    survey_sizes = _check_args(noise_draws, survey_sizes, step)
    if isinstance(pop_or_cities, Cities):
        from ..plausible import across_cities
        base = pop_or_cities.policy if policy is None else as_policy(policy)
        resolved = design_policies(designs, base)
        return across_cities(pop_or_cities, compare_designs, resolved, policy=base, noise_draws=noise_draws,
                             survey_sizes=survey_sizes, seed=seed, step=step, keys=["design"],
                             numbers=lambda c: c.table.drop(columns=[k for k in _TEXT if k != "design"]))
    pop = pop_or_cities
    if not isinstance(pop, Population):
        raise DataError(f"compare_designs: takes a Population (from generate) or plausible cities, got "
                        f"{type(pop).__name__}")
    if not pop.has_truth or pop.seed is None or pop.params is None:
        raise DataError("compare_designs: the population has no truth (true_quality, its seed and generator "
                        "parameters); accuracy needs a generated population (bs.generate)")
    base = as_policy(policy)
    resolved = design_policies(designs, base)
    years_seed, noise_seed = as_seed_sequence(seed).spawn(2)
    rows, confs, types, viols, surveys = [], [], [], [], []
    for name, p in resolved.items():                  # a loop over the few designs
        try:
            result = evaluate(pop, p)
            acc, conf, by_type = _accuracy_parts(name, p, result)
            v = monotonicity(pop, p, step=step, before=result)
            noise, survey = _noise(name, pop, p, noise_seed, noise_draws, survey_sizes)
            row = {"design": name, "policy": p.name, "rating": _rating_name(p), "branches": len(result.branches),
                   **acc, **_year_to_year(pop, p, years_seed),
                   "monotonicity_violations": len(v), "monotonicity_share": len(v) / max(len(result.branches), 1),
                   "monotonicity_examples": ", ".join(map(str, v["branch_id"].head(3))),
                   "type_tvd_max": acc.pop("type_tvd_max"), "type_tvd_mean": acc.pop("type_tvd_mean"), **noise}
        except BranchsimError as exc:
            raise _again(exc, f"design {name!r}: {exc}") from None
        rows.append(row)
        confs.append(conf)
        types.append(by_type)
        viols.append(v.assign(design=name)[["design", *v.columns]])
        surveys.append(survey)
    table = pd.DataFrame(rows)
    lead = ["design", "policy", "rating", "branches", "accuracy", "kappa", "too_high", "too_low", "year_changed",
            "year_units", "monotonicity_violations", "monotonicity_share", "monotonicity_examples",
            "type_tvd_max", "type_tvd_mean", "noise_changed", "noise_flip"]
    sized = sorted((c for c in table.columns if c.startswith("misclassified_")), key=lambda c: int(c.split("_")[1]))
    return DesignComparison(table[lead + sized], pd.concat(confs, ignore_index=True),
                            pd.concat(types, ignore_index=True), pd.concat(viols, ignore_index=True),
                            pd.concat(surveys, ignore_index=True), resolved, draws=noise_draws, seed=seed, step=step)
