"""The ``branchsim`` command line.

``branchsim`` with no arguments runs the main job on the built-in default
data. Bad input prints one line, ``branchsim: error: ...``, naming what is
wrong and where, and exits with status 2; nothing half-written is left
behind, and no output ever replaces an input. An unexpected failure (a bug)
prints one ``branchsim: internal error: ...`` line and exits with status 1;
set ``BRANCHSIM_DEBUG=1`` to see its traceback.

This module imports nothing heavy: each command imports what it needs, so
``branchsim --help`` and ``--version`` answer at once.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from .errors import BranchsimError

__all__ = ["main"]

#: Environment variable: when set, an internal error shows its traceback.
DEBUG_ENV = "BRANCHSIM_DEBUG"
#: Seconds to wait for a Dask scheduler (``national --scheduler``) before giving up.
CONNECT_TIMEOUT = 10.0
EVALUATE_FILES = ("branches.csv", "members.csv")


def _policy(args):
    from .policy import Policy
    return Policy.load(args.policy) if args.policy else Policy.load()


def cmd_run(args) -> int:
    """The main job: generate the default city, evaluate it, compare with the published figures."""
    from .model import generate
    from .population import evaluate
    policy = _policy(args)
    pop = generate(policy, seed=args.seed)
    result = evaluate(pop, policy)
    print(f"branchsim: generated the default city (seed {args.seed}) and evaluated it under "
          f"policy {policy.name!r}\n")
    print(result.summary())
    print(f"\naccuracy: {result.accuracy():.1%} of branches get the star of their true quality")
    return 0


def cmd_evaluate(args) -> int:
    """Evaluate a folder of tables; with --out, the per-unit results (the folder written atomically)."""
    from ._output import _Staging
    from .policy import data_path
    from .population import evaluate, load_population
    policy = _policy(args)
    folder = Path(args.data) if args.data else data_path("examples")
    stage = (_Staging(args.out, EVALUATE_FILES, inputs=[folder, args.policy], flag="--out",
                      writer="evaluate") if args.out else None)
    with stage or contextlib.nullcontext():
        result = evaluate(load_population(folder, policy=policy, encoding=args.encoding), policy)
        if stage is not None:
            stage.write_csv("branches.csv", result.branches)
            if result.members is not None:
                stage.write_csv("members.csv", result.members)
            out = stage.commit()
    print(f"branchsim: evaluated {folder} under policy {policy.name!r}\n")
    print(result.summary())
    if stage is not None:
        print(f"\nper-unit results written to {out}{os.sep}")
    return 0


def cmd_explain(args) -> int:
    """Every rule step for one unit of the example tables, of --data DIR or of the city of --seed N."""
    import shutil
    from .explain import explain
    from .policy import data_path
    from .population import load_population
    from ._explain_text import provenance_text, steps_text, wrap
    from .report import _population_arg
    if args.data is not None and args.seed is not None:
        raise BranchsimError("explain: give --data DIR (your tables) or --seed N (the generated default city), "
                             "not both")
    policy = _policy(args)
    if args.seed is not None:
        pop, source = _population_arg(None, policy, args.seed, members=args.member is not None)
    else:
        folder = Path(args.data) if args.data else data_path("examples")
        pop, source = load_population(folder, policy=policy, encoding=args.encoding), f"the tables in {folder}"
    steps = explain(pop, policy, branch_id=args.branch, member_id=args.member, month=args.month)
    width = shutil.get_terminal_size().columns
    unit = f"branch {args.branch}" if args.branch is not None else f"member {args.member}" + (
        f", month {args.month}" if args.month is not None else "")
    total = ("the score" if args.branch is not None else "the monthly score" if args.month is not None
             else "the mean monthly score")
    print("\n".join(wrap(f"branchsim: {unit} of {source} under policy {policy.name!r}", width)) + "\n")
    print(steps_text(steps, width))
    notes = [f"adds: what each line adds to {total}; the lines add up to {steps['adds'].sum():.2f}."]
    if not args.provenance:
        notes.append("Run with --provenance to see where each parameter comes from.")
    print("\n" + "\n".join(line for note in notes for line in wrap(note, width)))
    if args.provenance:
        print("\n" + provenance_text(steps, policy, width))
    return 0


def cmd_calibrate(args) -> int:
    import pandas as pd
    from .calibration import calibrate
    from .policy import data_path
    result = calibrate(_policy(args), seeds=range(args.seeds), maxiter=args.maxiter, write=args.write,
                       progress=True)
    with pd.option_context("display.width", 200):
        print(result.fit.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nfitted:", {k: round(v, 6) for k, v in result.params.values["branch_quality"].items()},
          {k: round(v, 6) for k, v in result.params.values["structure"].items()})
    if args.write:
        print(f"written to {data_path('generator.yaml')}")
    return 0


def _national_scale() -> tuple[int, int]:
    """The default branches and members of a national run (``data/national.yaml``)."""
    import yaml
    path = _data_root() / "national.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        return int(doc["branches"]["value"]), int(doc["members"]["value"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise BranchsimError(f"{path}: cannot read the national scale ({exc}); reinstall branchsim") from None


def _data_root() -> Path:
    # The package's data folder without importing branchsim.policy (and pandas with it).
    here = Path(__file__).resolve().parent.parent / "data"
    if (here / "policies").is_dir():
        return here
    import importlib.util
    spec = importlib.util.find_spec("branchsim.data")
    return Path(next(iter(spec.submodule_search_locations))) if spec else here


def default_members(branches: int) -> int:
    """Members of a national run of ``branches`` branches at the national ratio (``data/national.yaml``)."""
    n_b, n_m = _national_scale()
    return round(branches * n_m / n_b)


def _dask_client(address: str, timeout: float):
    try:
        from dask.distributed import Client
    except ImportError:   # Dask is an optional extra
        raise BranchsimError("--scheduler needs Dask: pip install 'branchsim[dask]'") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise BranchsimError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s "
                             f"({exc}); start one there or check the address (--connect-timeout sets "
                             f"the wait)") from None
    except (ValueError, TypeError) as exc:
        raise BranchsimError(f"--scheduler {address}: not a scheduler address ({exc}); give one such as "
                             f"tcp://host:8786") from None


def cmd_national(args) -> int:
    from ._run_folder import _CLI_NAMES
    from .national import _national_run
    branches = args.branches if args.branches is not None else _national_scale()[0]
    members = args.members if args.members is not None else default_members(branches)
    policy = _policy(args)
    client = _dask_client(args.scheduler, args.connect_timeout) if args.scheduler else None
    try:
        result = _national_run(policy, names=_CLI_NAMES, n_branches=branches, n_members=members,
                               seed=args.seed, chunk_size=args.chunk_size, out_dir=args.out,
                               resume=args.resume, workers=args.workers,
                               executor=None if client is None else client.get_executor(),
                               progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
    print(result.summary())
    return 0


def cmd_policy(args) -> int:
    import pandas as pd
    policy = _policy(args)
    print(repr(policy))
    if args.parameters:
        with pd.option_context("display.max_colwidth", 70, "display.width", 250, "display.max_rows", 1000):
            print(policy.parameters().to_string(index=False))
    return 0


def cmd_report(args) -> int:
    """The HTML report and its CSV tables, written atomically into --out."""
    from .report import write_report
    path = write_report(args.out, policy=args.policy, data=args.data, reform=args.reform, seed=args.seed,
                        draws=args.draws, years=args.years, progress=args.progress,
                        encoding=args.encoding)
    print(f"branchsim: report written to {path.parent}{os.sep} (report.html and CSV tables); open it with\n"
          f"open {path}")
    return 0


def _number(text: str):
    """A number as written (``2``, ``0.25``, ``1e-3``), or None."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def _values(text: str, param: str, policy=None) -> list:
    """``"0.2,0.3,0.4"`` -> ``[0.2, 0.3, 0.4]``.

    Where the parameter's current value is a number, every item must be a
    finite number (``True``, ``abc`` or ``nan`` are refused, naming the item);
    otherwise each item is read as a YAML scalar.
    """
    import math

    import yaml
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(t == "" for t in items):
        raise BranchsimError(f"--values for {param}: {text!r} is not a comma-separated list such as 0.2,0.3,0.4")
    try:
        current = policy[param] if policy is not None and param in policy else None
    except BranchsimError:
        current = None          # not a parameter: sweep names it
    numeric = isinstance(current, (int, float)) and not isinstance(current, bool)
    values = []
    for i, t in enumerate(items, 1):
        if numeric:
            v = _number(t)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise BranchsimError(f"--values for {param}: item {i} of {len(items)}, {t!r}, is not a finite "
                                     f"number; give numbers such as 0.2,0.3,0.4")
        else:
            try:
                v = yaml.safe_load(t)
            except yaml.YAMLError:
                raise BranchsimError(f"--values for {param}: cannot read item {i} of {len(items)}, {t!r}; give "
                                     f"values such as 0.2,0.3,0.4") from None
        values.append(v)
    return values


def _check_file_out(out: Path) -> None:
    """Refuse, before any work, an output file that is a folder or sits under a file."""
    if out.is_dir():
        raise BranchsimError(f"--out {out}: is a folder; give a file name such as {out / 'sweep.csv'}")
    for p in Path(os.path.abspath(out)).parents:
        if p.exists():
            if not p.is_dir():
                raise BranchsimError(f"--out {out}: cannot write here, {p} is a file, not a folder")
            break


def cmd_sweep(args) -> int:
    """Star counts for each value of one or more parameters (a full grid), one CSV row per scenario."""
    import pandas as pd

    from ._output import atomic_file, refuse_inputs
    from .report import _policy_arg, _population_arg
    from .sensitivity import sweep
    if len(args.param) != len(args.values):
        raise BranchsimError(f"give one --values list per --param: got {len(args.param)} --param and "
                             f"{len(args.values)} --values")
    policy, _ = _policy_arg(args.policy, "--policy")
    grid = {p: _values(v, p, policy) for p, v in zip(args.param, args.values)}
    out = Path(args.out)
    refuse_inputs(out, [args.policy, args.data], flag="--out")
    _check_file_out(out)
    pop, source = _population_arg(args.data, policy, args.seed, members=False, encoding=args.encoding)
    frame = sweep(pop, policy, grid, by=args.by, progress=False)
    with atomic_file(out, flag="--out") as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    print(f"branchsim: swept {', '.join(grid)} on {source} under policy {policy.name!r}\n")
    with pd.option_context("display.width", 250, "display.max_rows", 200, "display.max_columns", 30):
        print(frame.to_string(index=False))
    print(f"\nwritten to {out}")
    return 0


COMPARE_FILES = ("star_counts.csv", "transitions.csv", "movers.csv", "newly_weak.csv", "no_longer_weak.csv",
                 "new_consequences.csv", "policy_diff.csv")


def cmd_compare(args) -> int:
    """A reform against the policy: tables written atomically into --out, the summary printed."""
    from ._output import _Staging
    from ._report_sections import transitions_long
    from .report import _policy_arg, _population_arg
    from .sensitivity import compare
    policy, _ = _policy_arg(args.policy, "--policy")
    reform, _ = _policy_arg(args.reform, "--reform")
    with _Staging(args.out, COMPARE_FILES, inputs=[args.data, args.policy, args.reform], flag="--out",
                  writer="compare") as stage:
        pop, source = _population_arg(args.data, policy, args.seed, encoding=args.encoding)
        c = compare(pop, policy, reform)
        tables = {"star_counts.csv": c.star_counts().reset_index(), "transitions.csv": transitions_long(c),
                  "movers.csv": c.movers, "newly_weak.csv": c.newly_weak, "no_longer_weak.csv": c.no_longer_weak,
                  "new_consequences.csv": c.new_consequences, "policy_diff.csv": c.diff}
        for name, df in tables.items():
            stage.write_csv(name, df)
        out = stage.commit()
    print(f"branchsim: compared {args.reform} with policy {policy.name!r} on {source}\n")
    print(c.summary())
    print(f"\ntables written to {out}{os.sep}")
    return 0


# -- the parser ---------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``branchsim: error:`` line, exit status 2."""

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


POLICY_HELP = "policy YAML file (default: the built-in baseline, data/policies/baseline.yaml)"


def _seed(p, what: str = "the generated city") -> None:
    p.add_argument("--seed", type=_whole(0), default=0, help=f"random seed of {what} (default 0)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(
        prog="branchsim",
        description="Test a party-branch scoring-and-rating rule before it is rolled out. "
                    "Start with 'branchsim report --out report' (the README's main job).",
        epilog=f"Errors print one line and exit with status 2; set {DEBUG_ENV}=1 to see the traceback "
               f"of an internal error.")
    parser.add_argument("--version", action="version", version=f"branchsim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def common(p):
        p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
        p.add_argument("--data", metavar="DIR",
                       help="folder with branches / members / member_months tables (.csv, .parquet, .xlsx); "
                            "default: the built-in example tables (evaluate, explain) or the default city "
                            "generated with --seed (report, sweep, compare)")
        p.add_argument("--encoding", metavar="NAME", default="utf-8-sig",
                       help="text encoding of CSV tables in --data, e.g. gbk or big5 for Excel exports "
                            "in Chinese (default: UTF-8, with or without a byte-order mark)")

    p = sub.add_parser("run", help="generate the default city, evaluate it, print the outcome "
                                   "(the default with no command)")
    p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
    _seed(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("evaluate", help="score a population's tables: stars, grades, consequences")
    common(p)
    p.add_argument("--out", metavar="DIR",
                   help="also write branches.csv and members.csv (per-unit results) into this folder, "
                        "created or replaced whole; never the --data folder")
    p.set_defaults(func=cmd_evaluate)
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
    p.add_argument("--month", type=int, metavar="M", help="with --member: that month's record alone "
                                                          "(default: the mean over the year)")
    p.add_argument("--provenance", action="store_true",
                   help="also list where each parameter used comes from (quote or assumption)")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("calibrate", help="fit the generator to the published figures (docs/calibration.md)")
    p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
    p.add_argument("--seeds", type=_whole(1), default=60,
                   help="seeds 0..N-1 estimate the expectation (default 60)")
    p.add_argument("--maxiter", type=_whole(1), default=600, help="Nelder-Mead iterations (default 600)")
    p.add_argument("--write", action="store_true", help="store the fitted values in data/generator.yaml")
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("national", help="country-scale run, chunk by chunk, outputs as Parquet (resumable)")
    p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
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
    p.add_argument("--connect-timeout", metavar="SECONDS", type=_seconds, default=CONNECT_TIMEOUT,
                   help=f"seconds to wait for the --scheduler to answer (default {CONNECT_TIMEOUT:g})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_national)
    p = sub.add_parser("policy", help="show a policy; --parameters lists every parameter with provenance")
    p.add_argument("--policy", metavar="FILE", help=POLICY_HELP)
    p.add_argument("--parameters", action="store_true",
                   help="also list every parameter: path, value and provenance (a quote or an assumption)")
    p.set_defaults(func=cmd_policy)
    p = sub.add_parser("report", help="the HTML report (figures embedded) and its CSV tables",
                       description="Write report.html (self-contained) and CSV tables into --out: the outcome "
                                   "against the published figures, the satisfaction-share sweep, fragility, "
                                   "measurement uncertainty and, with --reform, the comparison.")
    common(p)
    p.add_argument("--reform", metavar="FILE", help="a reform policy YAML to compare with --policy")
    _seed(p, "the generated city and the draws")
    p.add_argument("--draws", type=_whole(1), default=100, help="measurement Monte Carlo draws (default 100)")
    p.add_argument("--years", type=_whole(1), default=1,
                   help="with 2 or more, add the consecutive-years rule: the branches simulated for this many "
                        "years, 10 histories (default 1: no simulation)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output folder (created; an earlier report there is replaced whole)")
    p.add_argument("--progress", action="store_true", help="show progress over the sections")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("sweep", help="star counts over a grid of parameter values, as one CSV",
                       description="Evaluate a grid of parameter values (without --data: the default city "
                                   "generated with --seed); one CSV row per scenario (and group).")
    common(p)
    p.add_argument("--param", metavar="PATH", action="append", required=True,
                   help="parameter path, e.g. branch.satisfaction_share (repeat for a grid)")
    p.add_argument("--values", metavar="V1,V2,...", action="append", required=True,
                   help="comma-separated values of the --param before it, e.g. 0.2,0.3,0.4")
    p.add_argument("--by", metavar="COLUMN", help="a branch column to count per group, e.g. type")
    _seed(p)
    p.add_argument("--out", metavar="FILE.csv", required=True,
                   help="output CSV file (written atomically; never one of the inputs)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("compare", help="a reform against the policy: transitions, movers, newly weak",
                       description="Evaluate a population (without --data: the default city generated with "
                                   "--seed) under --policy and --reform; write the tables into --out.")
    common(p)
    p.add_argument("--reform", metavar="FILE", required=True, help="the reform policy YAML")
    _seed(p)
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created or replaced whole)")
    p.set_defaults(func=cmd_compare)
    return parser


# -- running a command --------------------------------------------------------------------------------
def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _os_error(exc: OSError) -> str:
    """An operating-system error as one line naming the path."""
    reason = exc.strerror or _one_line(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, getattr(exc, "filename2", None)) if p is not None]
    return f"{' -> '.join(map(str, paths))}: {reason}" if paths else reason


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM ends the command like an interrupt: temporary files are removed on the way out."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _error_line(exc: BranchsimError) -> str:
    """One line for the terminal: an error listing several problems joins them with '; '."""
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        head = f"{exc.where}: " if getattr(exc, "where", "") else ""
        listed = problems[:25]
        more = f"; ... and {len(problems) - len(listed)} more" if len(problems) > len(listed) else ""
        return head + f"{len(problems)} problems: " + "; ".join(" ".join(p.split()) for p in listed) + more
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for bad input, 1 for an internal error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:  # the main job on the built-in default data
            args = parser.parse_args(["run"])
    except SystemExit as exc:    # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _terminate_as_exit():
            return args.func(args)
    except BranchsimError as exc:
        print(f"branchsim: error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # e.g. `branchsim run | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:     # Ctrl-C or SIGTERM: temporary files were removed on the way out
        print(f"branchsim: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130
    except OSError as exc:    # last resort: a file the command could not read or write
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"branchsim: error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("branchsim: error: out of memory; try a smaller population or --chunk-size", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"branchsim: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in branchsim; run "
              f"again with {DEBUG_ENV}=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
