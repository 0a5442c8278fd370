"""The HTML report: one self-contained page and its CSV tables for one policy.

:func:`write_report` evaluates a population under a policy and writes
``report.html`` (figures embedded as PNG, styles inline, no external files)
beside CSV tables of every number it shows, for any scheme: the outcome
(beside the scheme's published figures when the population is of their
scale), the members' grades, the assumptions the outcome depends on, a
sweep (the survey share, else the first cut or quota), fragility near the
level boundaries, measurement uncertainty, with ``years`` >= 2 the
consecutive-years rules and, with a reform, the comparison. Every name
shown comes from the policy. The page's prose is generated from the numbers, and
nothing volatile (no date, no timing, no absolute path the caller did not
give) enters it: two runs with the same arguments write byte-identical files.

The folder is built next to ``out_dir`` and moved into place at the end,
so a reader never finds a half-written report.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from . import _output, _report_methods, manifest, _report_compare as compared, _report_members as more
from . import _report_sections as sections
from ._report_sections import _n
from ._result import at_published_scale, targets
from .errors import BranchsimError
from .policy import Policy, as_policy
from .population import Population, evaluate, load_population

__all__ = ["write_report", "REPORT_FILES"]

#: Every file a report folder can hold (a folder with anything else is not replaced).
REPORT_FILES = ("report.html", "outcome.csv", "member_grades.csv", "assumptions.csv", "sweep.csv",
                "fragility.csv", "fragility_counts.csv", "measurement_uncertainty.csv",
                "measurement_designations.csv", "consecutive_years.csv", "comparison_transitions.csv",
                "comparison_movers.csv", "comparison_designations.csv", "policy_diff.csv",
                "methods_parameters.csv", "methods_generator.csv", "methods_calibration.csv", "manifest.json")
SURVEY_SIZES = (10, 25, 50)


def _policy_arg(policy, what: str) -> tuple[Policy, str]:
    """A Policy from a Policy, a YAML path or None (the baseline), and how to describe it."""
    source = ("built-in baseline (data/policies/baseline.yaml)" if policy is None else
              "Policy object" if isinstance(policy, Policy) else
              f"file {os.fspath(policy)}" if isinstance(policy, (str, os.PathLike)) else "")
    return as_policy(policy, what), source


def _reform_arg(reform, policy: Policy) -> tuple[Policy, str]:
    """The reformed policy: a Policy, a reform file (``schema: branchsim-reform/1``, applied to ``policy``)
    or a whole policy file; and how to describe it."""
    if isinstance(reform, Policy):
        return reform, "Policy object"
    if isinstance(reform, (str, os.PathLike)):
        from ._commands import reform_policy
        return reform_policy(reform, policy, flag="reform"), f"file {os.fspath(reform)}"
    raise BranchsimError(f"reform must be a branchsim.Policy or the path of a reform or policy file, got "
                         f"{type(reform).__name__}")


def _population_arg(data, policy: Policy, seed, *, members: bool = True,
                    encoding: str = "utf-8-sig") -> tuple[Population, str]:
    """The population: a folder of tables, a Population, or (None) the default city of ``seed``."""
    from .model import generate
    if data is None:
        pop = generate(policy, seed=seed, members=members)
        return pop, f"the default city generated with seed {seed}"
    if isinstance(data, Population):
        return data, f"Population object ({data.source})"
    if isinstance(data, (str, os.PathLike)):
        return load_population(data, policy=policy, encoding=encoding), f"tables in {os.fspath(data)}"
    raise BranchsimError(f"data must be a folder of tables, a Population or None (the default city), "
                         f"got {type(data).__name__}")


def _whole(x, what: str, low: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise BranchsimError(f"{what} must be a whole number >= {low}, got {x!r}")
    return int(x)


# -- writing a folder atomically (branchsim._output) ------------------------------------------
class _Staging(_output._Staging):
    """The report's staging folder: :class:`branchsim._output._Staging` allowing :data:`REPORT_FILES`."""

    def __init__(self, out, allowed=REPORT_FILES, **kwargs):
        super().__init__(out, allowed, **kwargs)


_check_out = _output._check_out


# -- the page -----------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",sans-serif;color:#222;max-width:1000px;margin:2em auto;padding:0 1.2em;line-height:1.5}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;
padding-bottom:.2em}table.t,table.run{border-collapse:collapse;font-size:.88em;margin:.3em 0 1em}
table.t th,table.t td,table.run th,table.run td{padding:.25em .7em;border-bottom:1px solid #e5e5e5;
text-align:right;vertical-align:top}table.t th{background:#f6f6f6}table.run th,table.run td{text-align:left}
table.t td:first-child{text-align:left}.tw{overflow-x:auto}.cap{font-style:italic;margin:.8em 0 .2em;color:#444}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.88em;color:#555}
nav ol{margin:.3em 0}footer{margin-top:3em;font-size:.85em;color:#666}code{background:#f3f3f3;padding:0 .2em}
"""


def _page(policy: Policy, run: list, parts: list, published: bool) -> str:
    """The whole HTML document: what was run, a contents list, the sections."""
    esc = html.escape
    runrows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in run)
    source = f" Published figures: {esc(published)}, as quoted in the outcome table." if published else ""
    nav = "".join(f"<li><a href='#{s.id}'>{esc(s.title)}</a></li>" for s in parts)
    body = "".join(f"<section id='{s.id}'><h2>{esc(s.title)}</h2>{''.join(s.blocks)}</section>"
                   for s in parts)
    intro = ("This report rates party branches under one policy and asks how far their levels depend on "
             "its choices: the assumptions it rests on, one parameter swept, the boundaries between levels and "
             "the noise of measurement. "
             "Every number shown is in the CSV tables beside this file, and running the same command again "
             "writes identical files.")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>branchsim report: {esc(policy.name)}</title><style>{_CSS}</style></head><body>"
            f"<h1>branchsim report: policy '{esc(policy.name)}'</h1><p>{esc(intro)}</p>"
            f"<h2 id='run'>What was run</h2><table class='run'>{runrows}</table>"
            f"<nav><b>Contents</b><ol>{nav}</ol></nav>{body}"
            f"<footer>Written by branchsim.{source}"
            "</footer></body></html>\n")


# -- what was run ------------------------------------------------------------------------------------
def _run_rows(policy, policy_src, pop, pop_src, reform, reform_src, seed, draws, sizes, files,
             years: int = 1) -> list:
    """The rows of 'What was run': policy, population, truth, reform, seed, draws, years, version, tables."""
    from . import __version__
    n_members = f", {_n(len(pop.members))} members" if pop.members is not None else " (no members)"
    survey = (f"{_n(draws)} per survey size ({', '.join(map(str, sizes))} respondents and the generator's own)"
              if sizes else f"{_n(draws)} (the scheme has no survey)")
    return [("policy", f"'{policy.name}' — {policy_src}"),
            ("population", f"{pop_src}: {_n(len(pop.branches))} branches{n_members}"),
            ("truth known", "yes (generated: true quality per branch)" if pop.has_truth else "no"),
            ("reform", f"'{reform.name}' — {reform_src}" if reform is not None else "none"),
            ("seed", str(seed)),
            ("measurement draws", survey),
            ("years simulated", "1 (no simulation)" if years < 2 else
             f"{years} (the consecutive-years rules, {sections.HISTORIES} histories)"
             if any(c.years > 1 for c in policy.scheme.consequences) else
             f"none: --years {years} asks for the rules over consecutive years, and this scheme has none"),
            ("branchsim", __version__),
            ("tables (CSV, beside this file)", ", ".join(files))]


# -- the report ---------------------------------------------------------------------------------------
def write_report(out_dir: str | os.PathLike, *, policy: Policy | str | os.PathLike | None = None,
                 data: str | os.PathLike | Population | None = None,
                 reform: Policy | str | os.PathLike | None = None, seed: int = 0, draws: int = 100,
                 years: int = 1, progress: bool = False, encoding: str = "utf-8-sig",
                 labels: str | None = None) -> Path:
    """Write the HTML report and its CSV tables into ``out_dir``, for any scheme.

    Parameters
    ----------
    out_dir : path
        Folder to write (created; an earlier report there is replaced whole).
        A folder holding files other than a report's is refused.
    policy : Policy or path, optional
        The rules (a :class:`~branchsim.Policy` or a YAML file); default the
        baseline.
    data : path or Population, optional
        A folder of tables (:func:`~branchsim.load_population`); default the
        default population of the policy generated with ``seed``.
    reform : Policy or path, optional
        A changed policy to compare with ``policy``: a Policy, a reform file
        (``schema: branchsim-reform/1``, applied to ``policy`` with
        :meth:`Policy.update`) or a whole policy file.
    seed : int
        Seed of the generated population and of the measurement draws.
    draws : int
        Measurement Monte Carlo draws (per survey size: 10, 25, 50 respondents
        and the generator's own, when the scheme has a survey).
    years : int
        With 2 or more, add the consecutive-years rules (each branch
        consequence whose condition must hold ``years`` in a row): the
        branches simulated for ``years`` years, 10 independent histories
        (generated populations only). Default 1: one year, no simulation.
    progress : bool
        Print a progress bar over the sections (stderr).
    encoding : str
        Text encoding of CSV tables in ``data`` (e.g. ``"gbk"``); see :func:`load_population`.
    labels : {"en", "zh", "auto"}, optional
        The figures' wording: English, the source's terms with English, or
        the source's terms where the fonts draw them (default: the setting of
        ``branchsim.plot.use_cjk``, "auto" unless changed; see
        :class:`branchsim.plot.use_labels`). Recorded in the manifest.

    Returns
    -------
    Path
        ``out_dir/report.html``. Beside it: ``outcome.csv``,
        ``member_grades.csv`` (with members), ``assumptions.csv`` (every
        assumed parameter and whether it decides the outcome), ``sweep.csv``
        (the swept parameter is its first column), ``fragility.csv`` (per
        branch), ``fragility_counts.csv``, ``measurement_uncertainty.csv`` and
        ``measurement_designations.csv`` (only when the population carries its
        truth), ``consecutive_years.csv`` (with ``years`` >= 2 and such a
        rule) and, with a reform, ``comparison_transitions.csv``,
        ``comparison_movers.csv``, ``comparison_designations.csv`` and
        ``policy_diff.csv``.

    Raises
    ------
    BranchsimError
        Bad input (policy file, data folder, arguments) or an ``out_dir``
        that cannot be written; nothing is left behind.

    Examples
    --------
    >>> import branchsim as bs
    >>> from branchsim.report import write_report
    >>> path = write_report("report", draws=50)              # doctest: +SKIP
    >>> path.name                                            # doctest: +SKIP
    'report.html'
    """
    pol, pol_src = _policy_arg(policy, "policy")
    ref, ref_src = (None, "") if reform is None else _reform_arg(reform, pol)
    seed = _whole(seed, "seed", 0)
    draws = _whole(draws, "draws", 1)
    years = _whole(years, "years", 1)
    from .plot.labels import check_labels, labels_mode, use_labels
    labels = labels_mode() if labels is None else check_labels(labels)
    sizes = SURVEY_SIZES if pol.has_survey else ()
    with _Staging(out_dir) as stage, use_labels(labels):
        pop, pop_src = _population_arg(data, pol, seed, encoding=encoding)
        res = {}

        def outcome():
            res["r"] = evaluate(pop, pol)
            return sections.outcome(pop, pol, res["r"])
        steps = [("outcome", outcome),
                 ("members", lambda: more.members(pop, pol, res["r"])),
                 ("assumptions", lambda: more.assumptions(pop, pol)),
                 ("sweep", lambda: sections.sweep(pop, pol)),
                 ("fragility", lambda: sections.fragility(pop, pol)),
                 ("measurement", lambda: compared.measurement(pop, pol, draws=draws, seed=seed, sizes=sizes))]
        if years >= 2:
            steps.append(("consecutive_years", lambda: more.consecutive_years(pop, pol, years=years, seed=seed)))
        if ref is not None:
            steps.append(("comparison", lambda: compared.comparison(pop, pol, ref, ref_src)))
        steps.append(("methods", lambda: _report_methods.methods(pop, pol, res["r"])))
        record = manifest.build("write_report", policy=pol, policy_given=policy, population=pop, reform=ref,
                                reform_given=reform, seeds={"population": seed, "measurement draws": seed},
                                arguments={"policy": manifest.given(policy), "reform": manifest.given(reform),
                                           "data": None if data is None or isinstance(data, Population)
                                           else os.fspath(data), "population_object": isinstance(data, Population),
                                           "seed": seed, "draws": draws, "years": years, "encoding": encoding,
                                           "labels": labels})
        steps.append(("manifest", lambda: _report_methods.manifest_section(record)))
        from tqdm.auto import tqdm
        built = [make() for _, make in tqdm(steps, desc="report", unit="section", disable=not progress)]
        files = [name for s in built for name in s.tables]
        run = _run_rows(pol, pol_src, pop, pop_src, ref, ref_src, seed, draws, sizes, files, years)
        for s in built:
            for name, df in s.tables.items():
                stage.write_csv(name, df)
        t = targets(pol)
        shown = bool(t["counts"]) and at_published_scale(len(pop.branches), city=t["scale"])
        stage.write_text("report.html", _page(pol, run, built, (t["source"] or "the scheme's targets file")
                                              if shown else None))
        stage.write_manifest(record)
        out = stage.commit()
    return out / "report.html"
