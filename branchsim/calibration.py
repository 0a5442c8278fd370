"""Fit the generator to the published figures (``data/published.yaml``).

Two parts, each identified by its own targets:

* **structure** — the branch-size spread ``structure.size_sigma`` and the
  probability that a unit sits one level below what its size calls for,
  ``structure.p_underlevel``, are fitted to the 79 upgrades to a party
  committee and 115 to a general branch. Their expectation is computed
  exactly from the log-normal size model (no simulation noise).
* **quality** — ``branch_quality.loc`` (where scores sit), ``scale``
  (spread: the 4-star and 5-star counts), ``skew`` (right skew: many 60–70
  scores, few below 50), ``tail`` (tail weight) and
  ``state.problem_rate`` (how often a typical branch has a vacant secretary
  post or a major violation, which make it weak: the weak count beside the
  lower tail) are fitted to
  41 five-star, 173 four-star, 422 three-star and 19 weak units. The
  expected counts are estimated as the mean over a fixed set of seeds at city
  scale with common random numbers, so the objective is deterministic, and
  with the state vetoes averaged out exactly (``expected_counts(smooth=True)``)
  so the fit cannot chase the vacancies of particular seeds; Nelder–Mead
  minimises the sum of squared relative errors. Counts vary a lot from city
  to city (each city draws its own indicator difficulties), so the seed set
  must be large: 60 seeds by default.

``calibrate(write=True)`` stores the fitted values in ``data/generator.yaml``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from scipy import optimize, stats

from .evaluate import STAR_NAMES
from .model import GeneratorParams, _type_table, generate, size_median
from .policy import Policy, data_path
from .population import evaluate

__all__ = ["calibrate", "targets", "expected_upgrades", "expected_counts", "CalibrationResult"]

QUALITY = ("branch_quality.loc", "branch_quality.scale", "branch_quality.skew", "branch_quality.tail",
           "state.problem_rate")
_STEPS = (0.03, 0.02, 0.3, 0.2, 0.002)   # initial Nelder-Mead simplex
STRUCTURE = ("structure.size_sigma", "structure.p_underlevel")
STAR_TARGETS = ("five_star", "four_star", "three_star", "weak")


def targets() -> pd.DataFrame:
    """Calibration targets with their quotes (``data/published.yaml``)."""
    doc = yaml.safe_load(data_path("published.yaml").read_text(encoding="utf-8"))
    rows = [{"target": k, "value": v["value"], "quote": v["quote"]} for k, v in doc["counts"].items()]
    return pd.DataFrame(rows).set_index("target")


def expected_upgrades(params: GeneratorParams, policy: Policy, n_branches: int) -> dict[str, float]:
    """Exact expected number of units to upgrade, from the size model."""
    _, share, mult = _type_table(params, policy)
    sigma = params.get("structure.size_sigma")
    p_under = params.get("structure.p_underlevel")
    median = size_median(params, policy)
    gb, pc = policy["structure.general_branch_from"], policy["structure.party_committee_from"]

    def p_at_least(k):  # sizes are rounded: size >= k  <=>  draw >= k - 0.5
        return stats.norm.sf(np.log((k - 0.5) / (median * mult)) / sigma)

    p_pc, p_gb = p_at_least(pc), p_at_least(gb) - p_at_least(pc)
    return {"upgrade_party_committee": float(n_branches * p_under * share @ p_pc),
            "upgrade_general_branch": float(n_branches * p_under * share @ p_gb)}


def expected_counts(params: GeneratorParams, policy: Policy, seeds, n_branches: int, *,
                    smooth: bool = False) -> pd.Series:
    """Mean star and weak counts over ``seeds`` (branch-only populations).

    With ``smooth=True`` the state facts (a vacant secretary post, a major
    violation) are averaged out exactly instead of drawn: each branch counts
    with its probability of a state problem (:func:`model.state_problem_probability`).
    That removes their Bernoulli noise from the calibration objective, so the
    fit cannot tune ``state.problem_rate`` to the particular vacancies of the
    calibration seeds (the counts are the same in expectation).
    """
    from .model import STATE_FACTS, state_problem_probability
    rows = []
    for s in seeds:
        pop = generate(policy, seed=s, n_branches=n_branches, members=False, params=params)
        if not smooth:
            rows.append(evaluate(pop, policy).star_counts()["count"])
            continue
        facts = [f for f in STATE_FACTS if f in pop.branches.columns]
        pop.branches[facts] = 1.0                     # in order: the veto is added in expectation
        b = evaluate(pop, policy).branches
        p_veto = state_problem_probability(b["true_quality"].to_numpy(), params)
        keep = 1.0 - p_veto
        counts = {STAR_NAMES[lv]: float((keep * (b["stars"].to_numpy() == lv)).sum())
                  for lv in (5, 4, 3, 2, 1, 0)}
        counts["no_star"] += float(p_veto.sum())
        counts["weak"] = float((keep * b["weak"].to_numpy()).sum() + p_veto.sum())
        rows.append(pd.Series(counts))
    out = pd.DataFrame(rows).mean()
    return out.loc[[c for c in out.index if out[c] > 0 or c in ("no_star", "weak")]]


class CalibrationResult:
    """Fitted parameters and the fit: achieved versus target."""

    def __init__(self, params: GeneratorParams, fit: pd.DataFrame, details: dict):
        self.params, self.fit, self.details = params, fit, details

    def __repr__(self) -> str:
        return "CalibrationResult\n" + self.fit.to_string()

    def _repr_html_(self) -> str:
        return "<b>CalibrationResult</b>" + self.fit.to_html()


def _fit_structure(params, policy, n, tgt):
    def resid(x):
        p = params.with_values({"structure.size_sigma": float(x[0]), "structure.p_underlevel": float(x[1])})
        e = expected_upgrades(p, policy, n)
        return [e[k] / tgt[k] - 1 for k in ("upgrade_party_committee", "upgrade_general_branch")]

    x0 = [params.get(k) for k in STRUCTURE]
    sol = optimize.least_squares(resid, x0, bounds=([0.2, 0.0], [2.5, 1.0]))
    return params.with_values(dict(zip(STRUCTURE, map(float, sol.x))))


def calibrate(policy: Policy | None = None, *, seeds=range(60), n_branches: int | None = None,
              params: GeneratorParams | None = None, maxiter: int = 400, write: bool = False,
              progress: bool = False) -> CalibrationResult:
    """Fit the generator so the baseline policy's *expected* outcome matches the published figures.

    Parameters
    ----------
    seeds : iterable of int
        Seeds whose mean outcome estimates the expectation (common random numbers).
    maxiter : int
        Nelder–Mead iterations for the quality part.
    write : bool
        Store the fitted values in ``data/generator.yaml``.

    Returns
    -------
    CalibrationResult
        ``.params`` (fitted), ``.fit`` (target, achieved, relative error,
        identified by which parameters).
    """
    policy = Policy.load() if policy is None else policy
    params = GeneratorParams.load() if params is None else params
    n = int(params.get("scale.n_branches") if n_branches is None else n_branches)
    seeds = list(seeds)
    tgt = targets()["value"].astype(float) * n / params.get("scale.n_branches")
    params = _fit_structure(params, policy, n, tgt)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=maxiter, desc="calibrate")

    def loss(x):
        if x[1] <= 0 or x[3] <= 0.2 or not 0 <= x[4] <= 0.2:
            return 1e6
        p = params.with_values(dict(zip(QUALITY, map(float, x))))
        c = expected_counts(p, policy, seeds, n, smooth=True)
        if bar is not None:
            bar.update(1)
        return float(sum((c[k] / tgt[k] - 1) ** 2 for k in STAR_TARGETS))

    x0 = np.array([params.get(k) for k in QUALITY])
    simplex = np.vstack([x0, x0 + np.diag(_STEPS)])
    sol = optimize.minimize(loss, x0, method="Nelder-Mead",
                            options={"maxiter": maxiter, "xatol": 1e-4, "fatol": 1e-7,
                                     "initial_simplex": simplex})
    if bar is not None:
        bar.close()
    params = params.with_values(dict(zip(QUALITY, map(float, sol.x))))
    achieved = expected_counts(params, policy, seeds, n).to_dict()
    achieved.update(expected_upgrades(params, policy, n))
    ident = {**{k: "branch_quality.loc, scale, skew" for k in ("five_star", "four_star", "three_star")},
             "weak": "branch_quality.tail, state.problem_rate (vacancies, violations)",
             "upgrade_party_committee": "structure.size_sigma, p_underlevel",
             "upgrade_general_branch": "structure.size_sigma, p_underlevel"}
    fit = pd.DataFrame({"target": tgt, "achieved": pd.Series(achieved)}).loc[list(ident)]
    fit["relative_error"] = fit["achieved"] / fit["target"] - 1
    fit["identified_by"] = pd.Series(ident)
    if write:
        _write(params)
    return CalibrationResult(params, fit, {"optimizer": sol, "seeds": seeds, "n_branches": n})


def _write(params: GeneratorParams) -> None:
    """Store fitted values in data/generator.yaml, keeping its comments and layout."""
    path = data_path("generator.yaml")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    section = None
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            section = line.strip()[:-1]
        key = line.strip().split(":", 1)[0]
        dotted = f"{section}.{key}"
        if dotted in QUALITY + STRUCTURE and "value:" in line:
            head, rest = line.split("value:", 1)
            tail = rest.split(",", 1)[1]
            lines[i] = f"{head}value: {params.get(dotted):.6g},{tail}"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
