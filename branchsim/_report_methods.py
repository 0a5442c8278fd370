"""The report's methods appendix: the rules and their provenance, and where the population came from."""
from __future__ import annotations

import pandas as pd

from ._report_sections import Section
from .params import _leaf_paths, document_leaf
from .policy import Policy

__all__ = ["methods", "manifest_section"]


_KINDS = ("calibrated", "quote", "assumption")


def _generator_rows(pop) -> pd.DataFrame:
    """Every numeric generator parameter of a generated population: ``path``, ``value``, ``provenance``
    (calibrated, quote or assumption, as its generator file says; ``unstated`` for a plain number) and
    ``source`` (its text)."""
    params = pop.params
    rows = []
    for path in _leaf_paths(params.values):
        v = params.get(path)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            leaf = document_leaf(params.document, path)
            entry = leaf if isinstance(leaf, dict) else {}
            kind = next((k for k in _KINDS if k in entry), None)
            rows.append((path, v, kind or "unstated", str(entry[kind]) if kind else ""))
    return pd.DataFrame(rows, columns=["path", "value", "provenance", "source"])


def calibration_fit(pop, policy: Policy, result) -> pd.DataFrame:
    """The scheme's published counts beside this population's, as shares of branches (any scale).

    One row per target the evaluation counts (a level or a designation):
    ``target``, ``published`` (the count), ``published_share`` (of the
    targets' scale), ``population`` (this population's count),
    ``population_share`` and ``difference`` (population minus published
    share, in percentage points). Empty without a targets file.
    """
    from ._result import targets
    t = targets(policy)
    counts = result.level_counts()["count"]
    rows = []
    scale = t.get("scale")
    for key, published in t["counts"].items():
        if key not in counts.index or not scale:
            continue
        share, mine = published / scale, counts[key] / max(len(pop.branches), 1)
        rows.append((key, published, share, int(counts[key]), mine, 100.0 * (mine - share)))
    return pd.DataFrame(rows, columns=["target", "published", "published_share", "population", "population_share",
                                       "difference"])


def methods(pop, policy: Policy, result=None) -> Section:
    """A methods appendix: every rule parameter with its provenance, and the population's source.

    The rules are ``policy.parameters()`` (a quote of the source or a stated
    assumption, each with its text); a generated population adds its seed,
    the scheme its generator was calibrated for and every generator
    parameter; loaded tables say so.
    """
    s = Section("methods", "Methods appendix")
    table = policy.parameters()
    counts = table["provenance"].value_counts()
    s.p(f"The rules applied are those of policy {policy.name!r}: {len(table)} parameters, "
        + ", ".join(f"{n} {kind}" for kind, n in counts.items())
        + " (a quote of the source, or an assumption where the source is silent; the source's words or the "
          "assumption's reason are given for each). The section on assumptions above shows which of them the "
          "outcome depends on.")
    s.table(table, "Every rule parameter, its value and provenance (methods_parameters.csv)")
    s.tables["methods_parameters.csv"] = table
    if pop.seed is not None and pop.params is not None:
        gen = _generator_rows(pop)
        fitted = pop.params.values.get("calibrated_for")
        seed = getattr(pop.seed, "entropy", pop.seed)
        s.p(f"The population was generated: {len(pop.branches):,} branches from seed {seed}, with the "
            f"generator parameters below"
            + (" (calibrated to this scheme's published counts)" if fitted == policy.name else
               " (not calibrated to this scheme's counts: `branchsim calibrate` fits them)")
            + ". Each branch's truth is its measurement model at its expectation: the figures' accuracy is "
              "against it.")
        s.table(gen.drop(columns="source"), "Generator parameters of the population, each with its provenance "
                "(methods_generator.csv, which also holds each one's text)")
        s.tables["methods_generator.csv"] = gen
        fitted_rows = gen[gen["provenance"] == "calibrated"]
        if len(fitted_rows):
            s.p(f"{len(fitted_rows)} of these parameters were calibrated (`branchsim calibrate`, docs/calibration.md): "
                + ", ".join(fitted_rows["path"]) + ". The others are assumptions or quotes of the source, or plain "
                "numbers of the generator file (unstated), as the table says.")
        else:
            s.p("None of these parameters was calibrated to published counts: they are assumptions or quotes of "
                "the source, as the table says.")
        if result is not None:
            fit = calibration_fit(pop, policy, result)
            if len(fit):
                worst = fit.loc[fit["difference"].abs().idxmax()]
                s.p(f"The calibration's fit on this population: each published count beside this population's, "
                    f"as shares of branches (so any scale compares). The largest gap is {worst['target']}: "
                    f"{worst['population_share']:.1%} here against {worst['published_share']:.1%} published "
                    f"({worst['difference']:+.1f} points). One population is one draw: the calibration fits the "
                    f"expectation over seeds, so a single seed differs by its sampling noise.")
                s.table(fit, "Published counts against this population's (methods_calibration.csv)")
                s.tables["methods_calibration.csv"] = fit
            else:
                s.p("The scheme publishes no count this evaluation gives (its targets file holds none), so there "
                    "is no fit to show: the generator's values are as the table above says.")
    else:
        s.p(f"The population was loaded from the researcher's tables ({len(pop.branches):,} branches): no "
            "generator and no truth, so no accuracy is reported.")
    return s


def manifest_section(record: dict) -> Section:
    """The run's manifest (:mod:`branchsim.manifest`): what produced this report, as ``manifest.json`` records it."""
    from .manifest import shown_rows
    s = Section("manifest", "Manifest")
    s.p("What produced this report, as recorded in manifest.json beside it (which also holds the SHA-256 of every "
        "file of the report, the policy as data and every generator parameter). `branchsim verify` on this folder "
        "runs it again and reports whether every file comes out identical.")
    s.table(pd.DataFrame(shown_rows(record), columns=["field", "value"]), "The run's manifest")
    return s
