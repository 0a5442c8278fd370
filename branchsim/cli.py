"""The ``branchsim`` command line.

``branchsim`` with no arguments runs the main job on the built-in default
data. Bad input prints one line, ``branchsim: error: ...``, naming what is
wrong and where, and exits with status 2; nothing half-written is left
behind, and no output ever replaces an input. An unexpected failure (a bug)
prints one ``branchsim: internal error: ...`` line and exits with status 1;
set ``BRANCHSIM_DEBUG=1`` to see its traceback. ``check-policy`` also exits
with status 1 when one of the policy's test cases fails.

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
EVALUATE_FILES = ("branches.csv", "members.csv", "manifest.json")


def _policy(args):
    """The policy of ``--policy`` (default: the baseline), read before any heavy import: a bad file is
    reported at once, whatever the command."""
    from .policy import Policy
    policy = Policy.load(args.policy) if args.policy else Policy.load()
    if getattr(args, "apply", None):
        from ._commands import reform_policy
        policy = reform_policy(args.apply, policy, flag="--apply")
    return policy


def _manifest(command: str, args, policy, pop, *, reform=None, reform_file=None, seeds=None, inputs=()) -> dict:
    """The manifest of a command's output (:mod:`branchsim.manifest`): the command line is recorded by ``main``."""
    from .manifest import build
    generated = pop is not None and pop.seed is not None
    seed = getattr(args, "seed", None)
    return build(command, policy=policy, policy_given=args.policy, population=pop, reform=reform,
                 reform_given=reform_file, inputs=[getattr(args, "apply", None), *inputs],
                 seeds=seeds if seeds is not None else ({"population": seed} if generated and seed is not None
                                                        else {}))


def _reform(args, policy):
    from ._commands import reform_policy
    return reform_policy(args.reform, policy)


def cmd_run(args) -> int:
    """The main job: generate the default city, evaluate it, compare with the published figures."""
    policy = _policy(args)
    from .model import generate
    from .population import evaluate
    pop = generate(policy, seed=args.seed)
    result = evaluate(pop, policy)
    print(f"branchsim: generated the default city (seed {args.seed}) and evaluated it under "
          f"policy {policy.name!r}\n")
    print(result.summary())
    print(f"\naccuracy: {result.accuracy():.1%} of branches get the level their true quality earns")
    return 0


def _population(args, policy, *, members: bool = True):
    """``--data DIR``, or the example tables when they fit the policy, else the city of ``--seed``."""
    from .population import load_population
    if args.data:
        return load_population(Path(args.data), policy=policy, encoding=args.encoding), f"the tables in {args.data}"
    from ._commands import default_population
    return default_population(policy, args.seed or 0, members=members, encoding=args.encoding)


def _city(args, policy, *, members: bool = True):
    """``--data DIR``, or (without it) the default city generated with ``--seed``."""
    if args.data:
        from .population import load_population
        return load_population(Path(args.data), policy=policy, encoding=args.encoding), f"tables in {args.data}"
    from .model import generate
    return generate(policy, seed=args.seed, members=members), f"the default city generated with seed {args.seed}"


def cmd_evaluate(args) -> int:
    """Evaluate a folder of tables; with --out, the per-unit results (the folder written atomically)."""
    policy = _policy(args)
    from ._output import _Staging
    from .policy import data_path
    from .population import evaluate
    folder = Path(args.data) if args.data else data_path("examples")
    stage = (_Staging(args.out, EVALUATE_FILES, inputs=[folder, args.policy, args.apply], flag="--out",
                      writer="evaluate") if args.out else None)
    with stage or contextlib.nullcontext():
        pop, source = _population(args, policy)
        result = evaluate(pop, policy)
        if stage is not None:
            stage.write_csv("branches.csv", result.branches)
            if result.members is not None:
                stage.write_csv("members.csv", result.members)
            stage.write_manifest(_manifest("evaluate", args, policy, pop))
            out = stage.commit()
    print(f"branchsim: evaluated {source} under policy {policy.name!r}\n")
    print(result.summary())
    if stage is not None:
        print(f"\nper-unit results written to {out}{os.sep}")
    return 0


def cmd_explain(args) -> int:
    """Every rule step for one unit of the example tables, of --data DIR or of the city of --seed N."""
    if args.data is not None and args.seed is not None:
        raise BranchsimError("explain: give --data DIR (your tables) or --seed N (the generated default city), "
                             "not both")
    policy = _policy(args)
    import shutil
    from .explain import explain
    from ._explain_text import adds_note, provenance_text, steps_text, wrap
    if args.seed is not None:
        from .model import generate
        pop = generate(policy, seed=args.seed, members=args.member is not None)
        source = f"the default city generated with seed {args.seed}"
    else:
        pop, source = _population(args, policy, members=args.member is not None)
    steps = explain(pop, policy, branch_id=args.branch, member_id=args.member, month=args.month)
    width = shutil.get_terminal_size().columns
    unit = f"branch {args.branch}" if args.branch is not None else f"member {args.member}" + (
        f", period {args.month}" if args.month is not None else "")
    print("\n".join(wrap(f"branchsim: {unit} of {source} under policy {policy.name!r}", width)) + "\n")
    print(steps_text(steps, width))
    notes = [adds_note(steps)]
    if not args.provenance:
        notes.append("Run with --provenance to see where each parameter comes from.")
    print("\n" + "\n".join(line for note in notes for line in wrap(note, width)))
    if args.provenance:
        print("\n" + provenance_text(steps, policy, width))
    return 0


def cmd_calibrate(args) -> int:
    policy = _policy(args)
    import pandas as pd
    from .calibration import calibrate
    result = calibrate(policy, args.targets, scale=args.scale, fit=args.fit, seeds=range(args.seeds),
                       maxiter=args.maxiter, out=args.write, progress=True)
    with pd.option_context("display.width", 200):
        print(result.fit.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nfitted: " + ", ".join(f"{k} = {result.params.get(k):.6g}" for k in result.fitted))
    if args.write:
        print(f"written to {args.write}")
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
    policy = _policy(args)
    from ._run_folder import _CLI_NAMES
    from .national import _national_run
    branches = args.branches if args.branches is not None else _national_scale()[0]
    members = args.members if args.members is not None else default_members(branches)
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
    """The policy's summary; with --parameters (or --format csv / md) every parameter with provenance."""
    policy = _policy(args)
    import pandas as pd
    out = Path(args.out) if args.out else None
    if out is not None:
        if not (args.parameters or args.format != "text"):
            raise BranchsimError("--out writes the parameter table: give --parameters (or --format csv / md)")
        from ._commands import check_file_out
        from ._output import refuse_inputs
        refuse_inputs(out, [args.policy, args.apply], flag="--out")
        check_file_out(out, f"parameters.{'txt' if args.format == 'text' else args.format}")
    table = policy.parameters() if (args.parameters or args.format != "text") else None
    if args.format == "text":
        with pd.option_context("display.max_colwidth", 70, "display.width", 250, "display.max_rows", 1000):
            text = None if table is None else table.to_string(index=False) + "\n"
    elif args.format == "csv":
        text = table.to_csv(index=False, lineterminator="\n")
    else:
        from ._commands import markdown_table
        text = markdown_table(table)
    if out is not None:
        from .manifest import write_file
        write_file(out, lambda tmp: tmp.write_text(text, encoding="utf-8"), _manifest("policy", args, policy, None),
                   flag="--out")
        print(f"branchsim: {len(table)} parameters of policy {policy.name!r} written to {out}")
        return 0
    if args.format == "text":
        print(repr(policy))
        tests = policy.companion("tests")
        if tests is not None:
            print(f"  {'tests':<18} {tests.name} (branchsim check-policy)")
    if text is not None:
        print(text, end="")
    return 0


def cmd_report(args) -> int:
    """The HTML report and its CSV tables, written atomically into --out."""
    policy = _policy(args)
    reform = _reform(args, policy) if args.reform else None
    from .report import write_report
    # the reform was read above (its errors come first); the report names the file it came from
    path = write_report(args.out, policy=policy if args.apply else (args.policy or policy), data=args.data,
                        reform=args.reform if reform is not None else None, seed=args.seed,
                        draws=args.draws, years=args.years, progress=args.progress, encoding=args.encoding,
                        labels=args.labels)
    print(f"branchsim: report written to {path.parent}{os.sep} (report.html and CSV tables); open it with\n"
          f"open {path}")
    return 0


def cmd_verify(args) -> int:
    """Re-run an output from its manifest; 0 when every file comes out identical, 1 when one differs."""
    from .manifest import verify
    v = verify(args.path, cwd=args.cwd)
    m = v.manifest
    how = " ".join(m["command_line"]["argv"]) if m.get("command_line") else f"{m['command']}(...) from Python"
    print(f"branchsim: verified {args.path}: re-ran {how}")
    print(v.summary())
    return 0 if v.identical else 1


def cmd_migrate_policy(args) -> int:
    """A format-1 policy file written again in format 2 (atomically; an existing file only with --force)."""
    from ._commands import migrate_policy
    policy = migrate_policy(args.old, args.new, force=args.force)
    print(f"branchsim: {args.old} (format 1) migrated to format 2 as {args.new}: policy {policy.name!r}, "
          f"levels {' > '.join(policy.levels)}")
    return 0


def cmd_check_policy(args) -> int:
    """A policy's hand-worked test cases run against the engine: 0 all pass, 1 a test fails."""
    from ._commands import check_policy_text
    code, text = check_policy_text(args.file, args.tests)
    print(text)
    return code


def cmd_sweep(args) -> int:
    """Level counts for each value of one or more parameters (a full grid), one CSV row per scenario."""
    if len(args.param) != len(args.values):
        raise BranchsimError(f"give one --values list per --param: got {len(args.param)} --param and "
                             f"{len(args.values)} --values")
    policy = _policy(args)
    from ._commands import check_file_out, sweep_values
    grid = {p: sweep_values(v, p, policy) for p, v in zip(args.param, args.values)}
    out = Path(args.out)
    from ._output import refuse_inputs
    refuse_inputs(out, [args.policy, args.apply, args.data], flag="--out")
    check_file_out(out)
    from .sensitivity import sweep
    pop, source = _city(args, policy, members=False)
    frame = sweep(pop, policy, grid, by=args.by, progress=False)
    import pandas as pd
    from .manifest import write_csv
    write_csv(out, frame, _manifest("sweep", args, policy, pop), flag="--out")
    print(f"branchsim: swept {', '.join(grid)} on {source} under policy {policy.name!r}\n")
    with pd.option_context("display.width", 250, "display.max_rows", 200, "display.max_columns", 30):
        print(frame.to_string(index=False))
    print(f"\nwritten to {out}")
    return 0


def cmd_compare(args) -> int:
    """A reform against the policy: tables written atomically into --out, the summary printed."""
    policy = _policy(args)
    reform = _reform(args, policy)
    from ._commands import COMPARE_FILES, comparison_tables
    from ._output import _Staging
    from .sensitivity import compare
    with _Staging(args.out, COMPARE_FILES, inputs=[args.data, args.policy, args.apply, args.reform], flag="--out",
                  writer="compare") as stage:
        pop, source = _city(args, policy)
        c = compare(pop, policy, reform)
        for name, df in comparison_tables(c).items():
            stage.write_csv(name, df)
        stage.write_manifest(_manifest("compare", args, policy, pop, reform=reform, reform_file=args.reform))
        out = stage.commit()
    print(f"branchsim: compared {reform.name!r} ({args.reform}) with policy {policy.name!r} on {source}\n")
    print(c.summary())
    print(f"\ntables written to {out}{os.sep}")
    return 0


# -- the parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (:mod:`branchsim._cli_parser`), each command bound to its ``cmd_*`` here."""
    from ._cli_parser import build
    names = ("run", "evaluate", "explain", "calibrate", "national", "policy", "report", "sweep", "compare",
             "migrate-policy", "check-policy", "verify")
    here = globals()
    return build({n: here[f"cmd_{n.replace('-', '_')}"] for n in names}, DEBUG_ENV, CONNECT_TIMEOUT)


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
    from .manifest import COMMAND_LINE
    token = COMMAND_LINE.set(list(sys.argv[1:] if argv is None else argv))   # recorded in every output's manifest
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
    finally:
        COMMAND_LINE.reset(token)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
