"""The ``branchsim`` command line.

``branchsim`` with no arguments runs the main job on the built-in default
data. Errors from bad input print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")

    def common(p):
        p.add_argument("--policy", metavar="FILE", help="policy YAML file (default: the baseline)")
        p.add_argument("--data", metavar="DIR",
                       help="folder with branches / members / member_months tables (.csv, .parquet, .xlsx)")

    p = sub.add_parser("run", help="the main job: generate the default city and evaluate it")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
