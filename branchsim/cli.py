"""The ``branchsim`` command line.

``branchsim`` with no arguments runs the main job on the built-in default
data. Errors from bad input print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from .errors import BranchsimError, DataError
from .evaluate import evaluate_tables
from .explain import explain
from .policy import Policy, data_path

__all__ = ["main"]


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path)
    raise DataError(f"{path}: unsupported file type {suffix!r}; allowed: .csv, .parquet, .xlsx")


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".parquet", ".xlsx"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


def _load_dir(folder: Path) -> tuple[dict, dict]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    tables, names = {}, {}
    for stem in ("branches", "members", "member_months"):
        path = _find(folder, stem)
        if path is None:
            if stem == "branches":
                raise DataError(f"{folder}: no branches.csv, branches.parquet or branches.xlsx")
            tables[stem] = None
            continue
        tables[stem], names[stem] = _read_table(path), str(path)
    return tables, names


def _policy(args) -> Policy:
    return Policy.load(args.policy) if args.policy else Policy.load()


def cmd_evaluate(args) -> int:
    policy = _policy(args)
    folder = Path(args.data) if args.data else data_path("examples")
    tables, names = _load_dir(folder)
    result = evaluate_tables(policy, tables["branches"], tables["members"], tables["member_months"],
                             names=names)
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
    tables, _ = _load_dir(folder)

    steps = explain(policy, SimpleNamespace(**tables), branch_id=args.branch, member_id=args.member)
    with pd.option_context("display.max_colwidth", 90, "display.width", 250, "display.max_rows", 200):
        print(steps.drop(columns="provenance").to_string(index=False))
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
    p = sub.add_parser("policy", help="show a policy; --parameters lists every parameter with provenance")
    p.add_argument("--policy", metavar="FILE")
    p.add_argument("--parameters", action="store_true")
    p.set_defaults(func=cmd_policy)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the main job on the built-in default data
        args = parser.parse_args(["evaluate"])
    try:
        return args.func(args)
    except BranchsimError as exc:
        print(f"branchsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
