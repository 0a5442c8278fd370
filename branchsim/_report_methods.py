"""The report's methods appendix: the rules and their provenance, and where the population came from."""
from __future__ import annotations

import pandas as pd

from ._report_sections import Section
from .params import _leaf_paths
from .policy import Policy

__all__ = ["methods", "manifest_section"]


def _generator_rows(pop) -> pd.DataFrame:
    """Every numeric generator parameter of a generated population (``path``, ``value``)."""
    params = pop.params
    rows = []
    for path in _leaf_paths(params.values):
        v = params.get(path)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append((path, v))
    return pd.DataFrame(rows, columns=["path", "value"])


def methods(pop, policy: Policy) -> Section:
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
        s.table(gen, "Generator parameters of the population (methods_generator.csv)")
        s.tables["methods_generator.csv"] = gen
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
