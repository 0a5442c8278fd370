"""The argument parser of the ``branchsim`` command line (:mod:`branchsim.cli`).

Imports nothing heavy: ``branchsim --help`` answers at once.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["build"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``branchsim: error:`` line, exit status 2.

    Options are taken only as written in full (no ``--ou`` for ``--out``): a run's manifest records the command
    line, and ``branchsim verify`` finds the output option by its name.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        import re
        where = self.prog.removeprefix("branchsim").strip()
        message = re.sub(r"^argument (-[\w-]+): must", r"\1 must", message)   # "--draws must be ..."
        print(f"branchsim: error: {where + ': ' if where else ''}{message} (see '{self.prog} --help')",
              file=sys.stderr)
        raise SystemExit(2)


def _whole(low: int):
    """An argparse type: a whole number >= ``low``."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {value}")
        return value
    whole.__name__ = f"whole number >= {low}"
    return whole


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


APPLY_HELP = ("a reform file (schema: branchsim-reform/1) applied to --policy before the command runs, e.g. "
              "data/reforms/baseline_kmeans_by_type.yaml: the command then works on the reformed policy")


def policy_options(p) -> None:
    """--policy FILE and --apply FILE: the policy a command works on."""
    p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
    p.add_argument("--apply", metavar="FILE", help=APPLY_HELP)


REFORM_HELP = ("a reform file (schema: branchsim-reform/1, only what changes) or a whole policy file to compare "
               "with --policy")
POLICY_HELP = ("policy YAML file, or the bare name of a policy shipped in data/policies/ (default: the built-in "
               "baseline, data/policies/baseline.yaml)")


def _seed(p, what: str = "the generated city") -> None:
    p.add_argument("--seed", type=_whole(0), default=0, help=f"random seed of {what} (default 0)")


def _next_level(args) -> int:
    from ._commands import next_level_command
    return next_level_command(args)


def _compare_designs(args) -> int:
    from ._commands import compare_designs_command
    return compare_designs_command(args)


def build(commands: dict, debug_env: str, connect_timeout: float) -> argparse.ArgumentParser:
    """The parser; ``commands`` maps each command (``run``, ``migrate-policy``, ...) to its function."""
    from . import __version__
    parser = _Parser(
        prog="branchsim",
        description="Test a party-branch scoring-and-rating rule before it is rolled out. "
                    "Start with 'branchsim report --out report' (the README's main job).",
        epilog=f"Errors print one line and exit with status 2; set {debug_env}=1 to see the traceback "
               f"of an internal error.")
    parser.add_argument("--version", action="version", version=f"branchsim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def common(p):
        policy_options(p)
        p.add_argument("--data", metavar="DIR",
                       help="folder with branches / members / member_months tables (.csv, .parquet, .xlsx); "
                            "default: the built-in example tables when they hold the policy's facts, else the "
                            "default city generated with --seed (evaluate, explain); the default city "
                            "(report, sweep, compare)")
        p.add_argument("--encoding", metavar="NAME", default="utf-8-sig",
                       help="text encoding of CSV tables in --data, e.g. gbk or big5 for Excel exports "
                            "in Chinese (default: UTF-8, with or without a byte-order mark)")

    p = sub.add_parser("run", help="generate the default city, evaluate it, print the outcome "
                                   "(the default with no command)")
    policy_options(p)
    _seed(p)
    p.set_defaults(func=commands["run"])
    p = sub.add_parser("evaluate", help="score a population's tables: levels, grades, consequences")
    common(p)
    _seed(p, "the city generated when the example tables do not fit the policy")
    p.add_argument("--out", metavar="DIR",
                   help="also write branches.csv and members.csv (per-unit results) into this folder, "
                        "created or replaced whole; never the --data folder")
    p.set_defaults(func=commands["evaluate"])
    p = sub.add_parser("explain", help="every rule step for one branch or member",
                       description="Every rule step for one branch or member: the facts, each rule with its "
                                   "numbers, what each line adds to the score, the parameters used. Reads the "
                                   "example tables, --data DIR, or the default city generated with --seed N.")
    common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--branch", metavar="ID", help="the branch_id to explain (e.g. B001 in the example tables, "
                                                  "B000001 in a generated city)")
    g.add_argument("--member", metavar="ID", help="the member_id to explain (e.g. M0001 in the example tables, "
                                                  "M00000001 in a generated city)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="explain a unit of the default city generated with this seed "
                        "(instead of the example tables or --data)")
    p.add_argument("--month", "--period", dest="month", type=int, metavar="P",
                   help="with --member: that period's record alone (a month, a quarter, ...; default: the "
                        "year's record)")
    p.add_argument("--provenance", action="store_true",
                   help="also list where each parameter used comes from (quote or assumption)")
    p.set_defaults(func=commands["explain"])
    p = sub.add_parser("next-level", help="what it takes a branch to reach the next level (branchsim.next_level)",
                       description="The smallest change of each fact alone and the cheapest combination of "
                                   "changes that lift a branch to the next level up (or out of a designation); "
                                   "with --all, the distances of every branch. Reads the example tables, "
                                   "--data DIR, or the default city generated with --seed N.")
    common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--branch", metavar="ID", help="the branch_id (e.g. B006 in the example tables)")
    g.add_argument("--all", action="store_true", help="every branch: one row each (branchsim.distances)")
    p.add_argument("--seed", type=int, metavar="N", help="a branch of the default city generated with this seed")
    p.add_argument("--cost", metavar="FILE", help="a YAML mapping {indicator or fact: cost per step} (default 1)")
    p.add_argument("--goal", default="level", help="with --all: 'level' (default) or a designation to leave")
    p.add_argument("--out", metavar="FILE", help="also write the table to this CSV file")
    p.set_defaults(func=commands.get("next-level") or _next_level)
    p = sub.add_parser("calibrate", help="fit the generator to published figures (docs/calibration.md)")
    policy_options(p)
    p.add_argument("--targets", metavar="FILE",
                   help="a targets file (branchsim-targets/1: counts per level, designation, upgrade_<level>; "
                        "default: the policy's own NAME.targets.yaml)")
    p.add_argument("--scale", type=float, default=None, metavar="N",
                   help="branches the counts refer to (default: the targets file's scale.branches)")
    p.add_argument("--fit", metavar="PARAM", nargs="+", default=None,
                   help="generator parameters to fit (default: as many as the targets identify)")
    p.add_argument("--seeds", type=_whole(1), default=60,
                   help="seeds 0..N-1 estimate the expectation (default 60)")
    p.add_argument("--maxiter", type=_whole(1), default=400,
                   help="evaluations of the expected counts at most (default 400)")
    p.add_argument("--out", "--write", dest="write", metavar="FILE",
                   help="write the fitted values to this generator file of your own (e.g. NAME.generator.yaml "
                        "beside your policy), atomically; a file inside the package is refused")
    p.set_defaults(func=commands["calibrate"])
    p = sub.add_parser("national", help="country-scale run, chunk by chunk, outputs as Parquet (resumable)")
    policy_options(p)
    p.add_argument("--branches", type=_whole(1), default=None,
                   help="branches (default: the national total in data/national.yaml)")
    p.add_argument("--members", type=_whole(1), default=None,
                   help="expected members (default: as many per branch as the national totals in "
                        "data/national.yaml)")
    _seed(p, "the population")
    p.add_argument("--chunk-size", type=_whole(1), default=4096,
                   help="branches per chunk: the memory bound; never changes the numbers (default 4096)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output folder (Parquet files, manifest.json), new or empty, or an earlier run "
                        "to continue with --resume")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--workers", type=_whole(1), default=None, help="threads per chunk (default: the cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run chunks on a Dask cluster (tcp://host:8786)")
    p.add_argument("--connect-timeout", metavar="SECONDS", type=_seconds, default=connect_timeout,
                   help=f"seconds to wait for the --scheduler to answer (default {connect_timeout:g})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=commands["national"])
    p = sub.add_parser("policy", help="show a policy; --parameters lists every parameter with provenance")
    policy_options(p)
    p.add_argument("--parameters", action="store_true",
                   help="also list every parameter: path, value and provenance (a quote or an assumption)")
    p.add_argument("--format", choices=("text", "csv", "md"), default="text",
                   help="the parameter table as text (default), CSV or a Markdown table (csv and md print the "
                        "table alone, for a paper's appendix; they imply --parameters)")
    p.add_argument("--out", metavar="FILE",
                   help="write the parameter table to FILE (atomically) instead of printing it")
    p.set_defaults(func=commands["policy"])
    p = sub.add_parser("report", help="the HTML report (figures embedded) and its CSV tables",
                       description="Write report.html (self-contained) and CSV tables into --out: the outcome "
                                   "against the published figures, the satisfaction-share sweep, fragility, "
                                   "measurement uncertainty and, with --reform, the comparison.")
    common(p)
    p.add_argument("--reform", metavar="FILE", help=REFORM_HELP)
    _seed(p, "the generated city and the draws")
    p.add_argument("--draws", type=_whole(1), default=100, help="measurement Monte Carlo draws (default 100)")
    p.add_argument("--years", type=_whole(1), default=1,
                   help="with 2 or more, add the consecutive-years rule: the branches simulated for this many "
                        "years, 10 histories (default 1: no simulation)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output folder (created; an earlier report there is replaced whole)")
    p.add_argument("--progress", action="store_true", help="show progress over the sections")
    p.add_argument("--labels", choices=("en", "zh", "auto"), default=None,
                   help="the figures' wording: en (English), zh (the source's terms with English, e.g. "
                        "五星級 (five-star)) or auto (the source's terms where the fonts draw them; the default)")
    p.set_defaults(func=commands["report"])
    p = sub.add_parser("sweep", help="level counts over a grid of parameter values, as one CSV",
                       description="Evaluate a grid of parameter values (without --data: the default city "
                                   "generated with --seed); one CSV row per scenario (and group). With --exact "
                                   "PATH instead: one share over [0, 1] exactly, one row per interval.")
    common(p)
    p.add_argument("--param", metavar="PATH", action="append",
                   help="parameter path, e.g. branch.satisfaction_share (repeat for a grid)")
    p.add_argument("--values", metavar="V1,V2,...", action="append",
                   help="comma-separated values of the --param before it, e.g. 0.2,0.3,0.4")
    p.add_argument("--exact", metavar="PATH",
                   help="instead of --param/--values: sweep this share (e.g. branch.satisfaction_share) exactly "
                        "over [0, 1], one row per interval over which no count changes")
    p.add_argument("--by", metavar="COLUMN", help="a branch column to count per group, e.g. type")
    _seed(p)
    p.add_argument("--out", metavar="FILE.csv",
                   help="output CSV file (written atomically; never one of the inputs); required with --param")

    def sweep_command(args, grid=commands["sweep"]):
        from ._commands import sweep_command as run
        return run(args, grid)
    p.set_defaults(func=sweep_command)
    p = sub.add_parser("compare", help="a reform against the policy: transitions, movers, designations",
                       description="Evaluate a population (without --data: the default city generated with "
                                   "--seed) under --policy and --reform; write the tables into --out.")
    common(p)
    p.add_argument("--reform", metavar="FILE", required=True, help=REFORM_HELP)
    _seed(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created or replaced whole)")
    p.set_defaults(func=commands["compare"])
    p = sub.add_parser("compare-designs", help="rating designs side by side: accuracy, stability, monotonicity, "
                                               "types, noise and survey size (branchsim.compare_designs)",
                       description="Generate the default city (--seed) and rate it under each --design; one CSV row "
                                   "per design: accuracy and kappa against the truth, year-to-year changes, "
                                   "monotonicity violations, agreement by type, noise and survey-size "
                                   "misclassification.")
    policy_options(p)
    p.add_argument("--design", metavar="NAME=FILE", action="append", required=True,
                   help="a design to compare: a reform file applied to --policy or a whole policy file (repeat)")
    _seed(p, "the generated city and the draws")
    p.add_argument("--branches", type=_whole(1), default=None, help="branches of the city (default: the generator's)")
    p.add_argument("--draws", type=_whole(2), default=50, help="measurement Monte Carlo draws per design (default 50)")
    p.add_argument("--out", metavar="FILE.csv", help="also write the table to this CSV file (atomically)")
    p.set_defaults(func=commands.get("compare-designs") or _compare_designs)
    p = sub.add_parser("migrate-policy", help="write a policy file of format 1 again in format 2",
                       description="Read OLD (schema: branchsim-policy/1) and write it, migrated to format 2 "
                                   "(docs/policy-format.md), as NEW, atomically.")
    p.add_argument("old", metavar="OLD", help="the format-1 policy file")
    p.add_argument("new", metavar="NEW", help="the format-2 policy file to write (never OLD itself)")
    p.add_argument("--force", action="store_true", help="replace NEW when it exists")
    p.set_defaults(func=commands["migrate-policy"])
    p = sub.add_parser("check-policy", help="run a policy's hand-worked test cases (NAME.tests.yaml)",
                       description="Evaluate each case of the policy's tests file and compare every listed "
                                   "step: points, score, level, designations, vetoes, consequences (members: "
                                   "record, annual score, grade). Exit status 0: all pass; 1: a test fails; "
                                   "2: bad input.")
    p.add_argument("file", metavar="FILE", help="the policy file (its tests: NAME.tests.yaml beside it)")
    p.add_argument("--tests", metavar="FILE", help="a tests file to run instead of NAME.tests.yaml")
    p.set_defaults(func=commands["check-policy"])
    p = sub.add_parser("verify", help="re-run an output from its manifest and say whether every file is identical",
                       description="Read the manifest of an output (DIR/manifest.json, or FILE.manifest.json beside "
                                   "a file), check that its inputs are unchanged, re-run the recorded command into a "
                                   "temporary folder and compare every output file byte for byte. Exit status 0: "
                                   "identical; 1: a file differs; 2: bad input (no manifest, an input changed).")
    p.add_argument("path", metavar="PATH", help="an output folder (report, evaluate/compare --out, national --out) or "
                                                "an output file with its manifest beside it (sweep --out F.csv)")
    p.add_argument("--cwd", metavar="DIR", default=None,
                   help="folder the recorded command's relative paths are read from (default: the one it ran in, "
                        "when it exists)")
    p.set_defaults(func=commands["verify"])
    return parser
