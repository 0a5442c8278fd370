"""The ``branchsim`` command line.

``branchsim`` with no arguments runs the main job on the built-in default
data. Errors from bad input print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import yaml

from .errors import BranchsimError
from .explain import explain
from .model import generate
from .policy import Policy, data_path
from .population import evaluate, load_population

__all__ = ["main"]


def _policy(args) -> Policy:
    return Policy.load(args.policy) if args.policy else Policy.load()


def cmd_run(args) -> int:
    """The main job: generate the default city, evaluate it, compare with the published figures."""
    policy = _policy(args)
    pop = generate(policy, seed=args.seed)
    result = evaluate(pop, policy)
    print(f"branchsim: generated the default city (seed {args.seed}) and evaluated it under "
          f"policy {policy.name!r}\n")
    print(result.summary())
    print(f"\naccuracy: {result.accuracy():.1%} of branches get the star of their true quality")
    return 0


def cmd_evaluate(args) -> int:
    policy = _policy(args)
    folder = Path(args.data) if args.data else data_path("examples")
    result = evaluate(load_population(folder, policy=policy), policy)
    print(f"branchsim: evaluated {folder} under policy {policy.name!r}\n")
    print(result.summary())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(result.branches, out / "branches.csv")
        if result.members is not None:
            _write_csv(result.members, out / "members.csv")
        print(f"\nper-unit results written to {out}/")
    return 0


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def cmd_explain(args) -> int:
    policy = _policy(args)
    folder = Path(args.data) if args.data else data_path("examples")
    steps = explain(policy, load_population(folder, policy=policy), branch_id=args.branch,
                    member_id=args.member)
    with pd.option_context("display.max_colwidth", 90, "display.width", 250, "display.max_rows", 200):
        print(steps.drop(columns="provenance").to_string(index=False))
    return 0


def cmd_calibrate(args) -> int:
    from .calibration import calibrate
    result = calibrate(_policy(args), seeds=range(args.seeds), maxiter=args.maxiter, write=args.write,
                       progress=True)
    with pd.option_context("display.width", 200):
        print(result.fit.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nfitted:", {k: round(v, 6) for k, v in result.params.values["branch_quality"].items()},
          {k: round(v, 6) for k, v in result.params.values["structure"].items()})
    if args.write:
        print(f"written to {data_path('generator.yaml')}")
    return 0


def cmd_national(args) -> int:
    from .national import national_run
    policy = _policy(args)
    executor, client = None, None
    if args.scheduler:
        try:
            from dask.distributed import Client
        except ImportError:   # Dask is an optional extra
            raise BranchsimError("--scheduler needs Dask: pip install 'branchsim[dask]'") from None
        client = Client(args.scheduler)
        executor = client.get_executor()
    try:
        result = national_run(policy, n_branches=args.branches, n_members=args.members, seed=args.seed,
                              chunk_size=args.chunk_size, out_dir=args.out, resume=args.resume,
                              workers=args.workers, executor=executor, progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
    print(result.summary())
    return 0


def cmd_policy(args) -> int:
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
                        draws=args.draws, progress=args.progress)
    print(f"branchsim: report written to {path.parent}{os.sep} (report.html and CSV tables); open it with\n"
          f"open {path}")
    return 0


def _values(text: str, param: str) -> list:
    """``"0.2,0.3,0.4"`` -> ``[0.2, 0.3, 0.4]`` (each item read as a YAML scalar: numbers, booleans, text)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(t == "" for t in items):
        raise BranchsimError(f"--values for {param}: {text!r} is not a comma-separated list such as 0.2,0.3,0.4")
    try:
        return [yaml.safe_load(t) for t in items]
    except yaml.YAMLError:
        raise BranchsimError(f"--values for {param}: cannot read {text!r}; give numbers such as 0.2,0.3,0.4") \
            from None


def cmd_sweep(args) -> int:
    """Star counts for each value of one or more parameters (a full grid), one CSV row per scenario."""
    from .report import _policy_arg, _population_arg
    from .sensitivity import sweep
    if len(args.param) != len(args.values):
        raise BranchsimError(f"give one --values list per --param: got {len(args.param)} --param and "
                             f"{len(args.values)} --values")
    policy, _ = _policy_arg(args.policy, "--policy")
    grid = {p: _values(v, p) for p, v in zip(args.param, args.values)}
    pop, source = _population_arg(args.data, policy, args.seed, members=False)
    frame = sweep(pop, policy, grid, by=args.by, progress=False)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_csv(frame, out)
    except OSError as exc:
        raise BranchsimError(f"{out}: cannot write ({exc.strerror or exc})") from None
    print(f"branchsim: swept {', '.join(grid)} on {source} under policy {policy.name!r}\n")
    with pd.option_context("display.width", 250, "display.max_rows", 200, "display.max_columns", 30):
        print(frame.to_string(index=False))
    print(f"\nwritten to {out}")
    return 0


COMPARE_FILES = ("star_counts.csv", "transitions.csv", "movers.csv", "newly_weak.csv", "no_longer_weak.csv",
                 "new_consequences.csv", "policy_diff.csv")


def cmd_compare(args) -> int:
    """A reform against the policy: tables written atomically into --out, the summary printed."""
    from ._report_sections import transitions_long
    from .report import _policy_arg, _population_arg, _Staging
    from .sensitivity import compare
    policy, _ = _policy_arg(args.policy, "--policy")
    reform, _ = _policy_arg(args.reform, "--reform")
    with _Staging(args.out, allowed=COMPARE_FILES) as stage:
        pop, source = _population_arg(args.data, policy, args.seed)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchsim",
        description="Test a party-branch scoring-and-rating rule before it is rolled out. "
                    "Start with 'branchsim report --out report' (the README's main job).")
    sub = parser.add_subparsers(dest="command")

    def common(p):
        p.add_argument("--policy", metavar="FILE", help="policy YAML file (default: the baseline)")
        p.add_argument("--data", metavar="DIR",
                       help="folder with branches / members / member_months tables (.csv, .parquet, .xlsx)")

    p = sub.add_parser("run", help="generate the default city, evaluate it, print the outcome "
                                   "(the default with no command)")
    p.add_argument("--policy", metavar="FILE", help="policy YAML file (default: the baseline)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("evaluate", help="score a population's tables: stars, grades, consequences")
    common(p)
    p.add_argument("--out", metavar="DIR", help="also write per-branch and per-member results as CSV")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("explain", help="every rule step for one branch or member")
    common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--branch", metavar="ID")
    g.add_argument("--member", metavar="ID")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("calibrate", help="fit the generator to the published figures (docs/calibration.md)")
    p.add_argument("--policy", metavar="FILE")
    p.add_argument("--seeds", type=int, default=60, help="seeds 0..N-1 estimate the expectation (default 60)")
    p.add_argument("--maxiter", type=int, default=600, help="Nelder-Mead iterations (default 600)")
    p.add_argument("--write", action="store_true", help="store the fitted values in data/generator.yaml")
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("national", help="country-scale run, chunk by chunk, outputs as Parquet (resumable)")
    p.add_argument("--policy", metavar="FILE")
    p.add_argument("--branches", type=int, default=5_200_000, help="branches (default 5,200,000)")
    p.add_argument("--members", type=int, default=99_000_000, help="expected members (default 99,000,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=4096, help="branches per chunk: the memory bound")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (Parquet files, manifest.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--workers", type=int, default=None, help="threads per chunk (default: the cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run chunks on a Dask cluster (tcp://host:8786)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_national)
    p = sub.add_parser("policy", help="show a policy; --parameters lists every parameter with provenance")
    p.add_argument("--policy", metavar="FILE")
    p.add_argument("--parameters", action="store_true")
    p.set_defaults(func=cmd_policy)
    p = sub.add_parser("report", help="the HTML report (figures embedded) and its CSV tables",
                       description="Write report.html (self-contained) and CSV tables into --out: the outcome "
                                   "against the published figures, the satisfaction-share sweep, fragility, "
                                   "measurement uncertainty and, with --reform, the comparison.")
    common(p)
    p.add_argument("--reform", metavar="FILE", help="a reform policy YAML to compare with --policy")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated city and the draws (default 0)")
    p.add_argument("--draws", type=int, default=100, help="measurement Monte Carlo draws (default 100)")
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
    p.add_argument("--seed", type=int, default=0, help="seed of the generated city (default 0)")
    p.add_argument("--out", metavar="FILE.csv", required=True, help="output CSV file")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("compare", help="a reform against the policy: transitions, movers, newly weak",
                       description="Evaluate a population (without --data: the default city generated with "
                                   "--seed) under --policy and --reform; write the tables into --out.")
    common(p)
    p.add_argument("--reform", metavar="FILE", required=True, help="the reform policy YAML")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated city (default 0)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder (created or replaced whole)")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the main job on the built-in default data
        args = parser.parse_args(["run"])
    try:
        return args.func(args)
    except BranchsimError as exc:
        print(f"branchsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # e.g. `branchsim run | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
