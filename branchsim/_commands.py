"""The work behind some commands of :mod:`branchsim.cli` (imported only when a command runs).

A reform given on the command line (:func:`reform_policy`), the tables
``compare`` writes (:func:`comparison_tables`), the population a command
reads by default (:func:`default_population`), ``migrate-policy``
(:func:`migrate_policy`), ``check-policy`` (:func:`check_policy_text`) and the arguments of
``sweep`` (:func:`sweep_values`, :func:`check_file_out`).
Everything scheme-specific (levels, designations) is read from the policies.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BranchsimError, DataError, PolicyError
from .policy import REFORM_SCHEMA, Policy, _reform_name, data_path, read_yaml
from ._schema import shown

__all__ = ["reform_policy", "comparison_tables", "default_population", "migrate_policy", "check_policy_text",
           "sweep_values", "check_file_out", "sweep_command", "COMPARE_FILES"]

#: Files ``branchsim compare`` writes into its output folder.
COMPARE_FILES = ("level_counts.csv", "transitions.csv", "movers.csv", "designations.csv",
                 "new_consequences.csv", "policy_diff.csv", "manifest.json")


def reform_policy(path, base: Policy, flag: str = "--reform") -> Policy:
    """The policy a ``--reform FILE`` makes of ``base``: a reform file applied, or a whole policy file.

    A reform file (``schema: branchsim-reform/1``) is applied with
    :meth:`Policy.update` (named ``base+NAME`` or after its changes). A
    whole policy file named like ``base`` is renamed after what differs
    (``base[path=value, ...]``), so a comparison never reads "baseline →
    baseline".

    >>> base = Policy.load()
    >>> reform_policy(data_path("reforms", "baseline_kmeans_by_type.yaml"), base).name == base.name + "+kmeans_by_type"
    True
    """
    where = str(path)
    doc = read_yaml(Path(path), what="reform or policy file")
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema == REFORM_SCHEMA:
        try:
            return base.update(path)
        except PolicyError as exc:          # name the reform file, not "update"
            raise PolicyError(exc.problems, where=where) from None
    if not (isinstance(schema, str) and schema.startswith("branchsim-policy/")):
        raise PolicyError(f"schema: {shown(schema)}; {flag} takes a reform file (schema: {REFORM_SCHEMA}) or a "
                          f"whole policy file (schema: branchsim-policy/2)", where=where)
    whole = Policy(doc, where=where, path=path)
    if whole.name != base.name:
        return whole
    diff = base.diff(whole)
    changes = {row.path: row.new for row in diff.itertuples()}
    data = whole.to_dict()
    data["name"] = _reform_name(base.name, changes, None) if changes else f"{base.name}[unchanged]"
    return Policy(data, where=where, path=path)


def _levels(c) -> list[str]:
    out = list(c.baseline.policy.levels)
    return out + [lv for lv in c.reform.policy.levels if lv not in out]


def comparison_tables(c) -> dict[str, pd.DataFrame]:
    """The tables of a :class:`~branchsim.sensitivity.compare.Comparison` that ``compare`` writes.

    ``level_counts.csv`` (level and designation ids: baseline, reform,
    change), ``transitions.csv`` (type — ``all`` first —, baseline level,
    reform level, branches, every pair of levels), ``movers.csv``,
    ``designations.csv`` (one row per branch and designation that changed),
    ``new_consequences.csv`` and ``policy_diff.csv``.
    """
    old, new = c.baseline.branches, c.reform.branches
    a, b = c.baseline.level_counts()["count"], c.reform.level_counts()["count"]
    counts = pd.DataFrame({"baseline": a, "reform": b}).reindex(list(a.index) + [i for i in b.index
                                                                                 if i not in a.index])
    counts = counts.fillna(0).astype("int64")
    counts["change"] = counts["reform"] - counts["baseline"]
    counts.index.name = "level"
    levels = _levels(c)
    parts = []
    for kind, rows in [("all", slice(None))] + [(t, (old["type"] == t).to_numpy())
                                                  for t in c.baseline.policy.branch_types
                                                  if (old["type"] == t).any()]:
        tab = pd.crosstab(pd.Categorical(old["rating"][rows], levels), pd.Categorical(new["rating"][rows], levels),
                          dropna=False).reindex(index=levels, columns=levels, fill_value=0)
        tab.index.name, tab.columns.name = "baseline", "reform"
        parts.append(tab.stack().rename("branches").reset_index().assign(type=kind))
    transitions = pd.concat(parts, ignore_index=True)[["type", "baseline", "reform", "branches"]]
    designated = []
    ids = [d.id for d in c.baseline.scheme.branch.designations]
    ids += [d.id for d in c.reform.scheme.branch.designations if d.id not in ids]
    for d in ids:
        was = old[d].to_numpy(bool) if d in old else np.zeros(len(old), dtype=bool)
        now = new[d].to_numpy(bool) if d in new else np.zeros(len(new), dtype=bool)
        moved = was != now
        designated.append(pd.DataFrame({
            "branch_id": old["branch_id"].to_numpy()[moved], "type": old["type"].to_numpy()[moved],
            "designation": d, "baseline": was[moved], "reform": now[moved],
            "old_score": old["score"].to_numpy()[moved], "new_score": new["score"].to_numpy()[moved],
            "old_rating": old["rating"].to_numpy()[moved], "new_rating": new["rating"].to_numpy()[moved],
            "vetoes": new["vetoes"].to_numpy()[moved]}))
    columns = ["branch_id", "type", "designation", "baseline", "reform", "old_score", "new_score", "old_rating",
               "new_rating", "vetoes"]
    designations = pd.concat(designated, ignore_index=True) if designated else pd.DataFrame(columns=columns)
    return {"level_counts.csv": counts.reset_index(), "transitions.csv": transitions, "movers.csv": c.movers,
            "designations.csv": designations, "new_consequences.csv": c.new_consequences,
            "policy_diff.csv": c.diff}


def default_population(policy: Policy, seed: int, *, members: bool = True, encoding: str = "utf-8-sig"):
    """The population a command reads without ``--data``: the example tables when they fit the policy,
    else the default city generated with ``seed``; and how to describe it.

    The example tables (``data/examples``) hold the facts of the policy they
    were written for; a policy whose types or facts they lack is evaluated on
    its own generated city instead.
    """
    from .population import load_population
    folder = data_path("examples")
    try:
        return load_population(folder, policy=policy, encoding=encoding), f"the example tables in {folder}"
    except DataError:
        from .model import generate
        pop = generate(policy, seed=seed, members=members)
        return pop, (f"the default city generated with seed {seed} (the example tables do not hold the facts "
                     f"of policy {policy.name!r})")


def migrate_policy(old, new, *, force: bool = False) -> Policy:
    """Write a format-1 policy file ``old`` migrated to format 2 as ``new`` (atomically).

    An existing ``new`` is refused unless ``force``; ``new`` may never be
    ``old`` itself. Returns the migrated policy (which loads back equal).
    """
    from ._output import refuse_inputs
    refuse_inputs(new, [old])
    policy = Policy.load(old)
    if policy.source_format != 1:
        raise PolicyError(f"already format {policy.source_format} (schema: branchsim-policy/2); nothing to "
                          f"migrate", where=str(old))
    new = Path(new)
    if new.is_dir():
        raise BranchsimError(f"{new}: is a folder; give the name of the new policy file")
    if os.path.lexists(new) and not force:
        raise BranchsimError(f"{new}: exists; give another file name, or --force to replace it")
    policy.save(new)
    return policy


def check_policy_text(path, tests=None) -> tuple[int, str]:
    """Run a policy's tests: the exit status (0 all pass, 1 a test fails) and the lines to print."""
    from .policytests import check_policy, failures
    try:
        policy = Policy.load(path)
    except PolicyError as exc:
        if str(path).endswith(".tests.yaml"):
            raise PolicyError(exc.problems + ["this is a tests file: give the policy file it belongs to "
                                              "(NAME.yaml beside it)"], where=exc.where) from None
        raise
    report = check_policy(policy, tests)
    units = report.groupby(["case", "unit"], sort=False).ngroups
    where = tests if tests is not None else policy.companion("tests")
    head = (f"branchsim: policy {policy.name!r}, tests {where}: {report['case'].nunique()} cases, {units} units, "
            f"{len(report)} steps checked")
    bad = failures(report)
    if not bad:
        return 0, head + ": all pass"
    return 1, "\n".join([head + f": {len(bad)} of {units} units fail (the first step where each diverged)"]
                        + [f"  {line}" for line in bad])


# -- sweep's arguments -------------------------------------------------------------------------------
def _number(text: str):
    """A number as written (``2``, ``0.25``, ``1e-3``), or None."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def sweep_values(text: str, param: str, policy=None) -> list:
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


def sweep_command(args, grid_command) -> int:
    """``branchsim sweep``: the grid (``--param``/``--values``, :func:`grid_command`) or ``--exact PATH``."""
    if args.exact is None:
        missing = [flag for flag, v in (("--param", args.param), ("--values", args.values), ("--out", args.out))
                   if not v]
        if missing:
            raise BranchsimError(f"sweep: give {', '.join(missing)} (a grid: --param PATH --values V1,V2 --out "
                                 f"FILE.csv) or --exact PATH")
        return grid_command(args)
    if args.param or args.values:
        raise BranchsimError(f"sweep: --exact {args.exact} sweeps that one share alone; give --exact or "
                             f"--param/--values, not both")
    from .cli import _city, _policy
    from .sensitivity.exact import _check, exact_sweep
    policy = _policy(args)
    _check(policy, args.exact)                           # before the city is generated or read
    out = Path(args.out) if args.out else None
    if out is not None:
        from ._output import refuse_inputs
        refuse_inputs(out, [args.policy, args.apply, args.data], flag="--out")
        check_file_out(out)
    pop, source = _city(args, policy, members=False)
    frame = exact_sweep(pop, policy, args.exact, by=args.by)
    if out is not None:
        from .cli import _manifest
        from .manifest import write_csv
        write_csv(out, frame, _manifest("sweep", args, policy, pop), flag="--out")
    print(f"branchsim: swept {args.exact} exactly over [0, 1] on {source} under policy {policy.name!r} "
          f"(policy value {frame.attrs['baseline']:g}): {len(frame)} intervals\n")
    with pd.option_context("display.width", 250, "display.max_rows", 40, "display.max_columns", 30):
        print(frame.to_string(index=False, max_rows=40))
    for d, why in frame.attrs["not_exact"].items():
        print(f"\n{d}: {why}")
    if out is not None:
        print(f"\nwritten to {out}")
    return 0


def check_file_out(out: Path, example: str = "sweep.csv") -> None:
    """Refuse, before any work, an output file that is a folder, sits under a file, or is named like a
    manifest (its own manifest, ``NAME.manifest.json``, is written beside it)."""
    if out.name == "manifest.json" or out.name.endswith(".manifest.json"):
        raise BranchsimError(f"--out {out}: a name for manifests (branchsim writes NAME.manifest.json beside an "
                             f"output); give another name such as {out.with_name(example)}")
    if out.is_dir():
        raise BranchsimError(f"--out {out}: is a folder; give a file name such as {out / example}")
    for p in Path(os.path.abspath(out)).parents:
        if p.exists():
            if not p.is_dir():
                raise BranchsimError(f"--out {out}: cannot write here, {p} is a file, not a folder")
            break


def next_level_command(args) -> int:
    """``branchsim next-level``: one branch's moves (``--branch``) or every branch's distances (``--all``)."""
    from .audit.counterfactual import distances, next_level
    from .cli import _policy, _population
    if args.data is not None and args.seed is not None:
        raise BranchsimError("next-level: give --data DIR (your tables) or --seed N (the generated default city), "
                             "not both")
    policy = _policy(args)
    cost = None
    if args.cost:
        cost = read_yaml(Path(args.cost), what="cost file")
        if not isinstance(cost, dict):
            raise DataError(f"{args.cost}: a cost file is a mapping {{indicator or fact: cost per step}}, "
                            f"got {type(cost).__name__}")
    if args.out:
        if Path(args.out).is_dir():
            raise BranchsimError(f"--out {args.out}: is a folder; give a file name such as "
                                 f"{Path(args.out) / 'next_level.csv'}")
        check_file_out(Path(args.out))
    if cost is not None:
        from .audit.counterfactual import check_cost
        try:
            check_cost(policy, cost)
        except DataError as exc:
            raise DataError(f"{args.cost}: {exc}") from None
    if args.seed is not None:
        from .model import generate
        pop, source = generate(policy, seed=args.seed, members=False), f"the default city of seed {args.seed}"
    else:
        pop, source = _population(args, policy, members=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        if args.all:
            table = distances(pop, policy, cost=cost, goal=args.goal)
            s = table.attrs["summary"]
            print(f"branchsim: distances to the next level of {source} under policy {policy.name!r}\n")
            print(table.drop(columns=["combination"]).to_string(index=False, float_format=lambda x: f"{x:.6g}"))
            print(f"\n{s['one_step']} of {s['branches']} branches with a goal are one step of some fact away; "
                  "by level: " + ", ".join(f"{k} {v}" for k, v in s["one_step_by_level"].items()))
        else:
            table = next_level(pop, policy, args.branch, cost=cost)
            a = table.attrs
            print(f"branchsim: branch {a['branch_id']} of {source} under policy {policy.name!r}: {a['level']}, "
                  f"score {a['score']:.2f}\n")
            if not a["goals"]:
                print("at the top level and not designated: nothing to reach")
            for goal in a["goals"]:
                rows = table[(table["goal"] == goal)].dropna(subset=["change"])
                single = rows[rows["move"] == "single"].sort_values(["cost", "steps", "fact"], kind="stable")
                print(f"to {goal}: one fact alone")
                print(single[["fact", "current", "new_value", "steps", "cost"]].to_string(index=False)
                      if len(single) else "  no fact alone suffices")
                combo = rows[rows["move"] == "combination"]
                print(f"to {goal}: cheapest combination, cost {a['combination_cost'][goal]:g}"
                      + ("" if a["verified"][goal] else " (not verified)"))
                print(combo[["fact", "current", "new_value", "steps", "cost"]].to_string(index=False)
                      if len(combo) else "  none found")
                print()
    if args.out:
        from .cli import _manifest
        from .manifest import write_csv
        write_csv(args.out, table, _manifest("next-level", args, policy, pop, inputs=[args.cost]), flag="--out")
        print(f"table written to {args.out}")
    return 0


def compare_designs_command(args) -> int:
    """``branchsim compare-designs``: the default city rated under each ``--design NAME=FILE``; one row each."""
    from .cli import _policy
    designs = {}
    for spec in args.design:
        name, eq, path = spec.partition("=")
        name = name.strip()
        if not eq or not name.strip() or not path.strip():
            raise BranchsimError(f"--design {spec!r}: give NAME=FILE, e.g. kmeans=data/reforms/"
                                 f"baseline_kmeans_by_type.yaml (a reform file or a whole policy file)")
        if name in designs:
            raise BranchsimError(f"--design {spec!r}: the name {name!r} is given twice; give each design its own name")
        if not Path(path).is_file():
            what = "is a folder" if Path(path).is_dir() else "no such file"
            raise BranchsimError(f"--design {spec!r}: {path}: {what}")
        designs[name] = path
    policy = _policy(args)
    out = Path(args.out) if args.out else None
    if out is not None:
        from ._output import refuse_inputs
        refuse_inputs(out, [args.policy, args.apply, *designs.values()], flag="--out")
        if out.is_dir():
            raise BranchsimError(f"--out {out}: is a folder; give a file name such as {out / 'designs.csv'}")
        check_file_out(out)
    from .audit.designs import compare_designs, design_policies
    design_policies(designs, policy)                     # every design read before the city is generated
    from .model import generate
    pop = generate(policy, seed=args.seed, members=False, **({"n_branches": args.branches} if args.branches else {}))
    c = compare_designs(pop, designs, policy=policy, noise_draws=args.draws, seed=args.seed)
    if out is not None:
        from .cli import _manifest
        from .manifest import write_csv
        write_csv(out, c.table, _manifest("compare-designs", args, policy, pop, inputs=list(designs.values()),
                                          seeds={"population": args.seed, "noise draws": args.seed}), flag="--out")
    print(f"branchsim: {len(designs)} rating designs on the default city generated with seed {args.seed} "
          f"({len(pop.branches)} branches) under policy {policy.name!r}, {args.draws} noise draws\n")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(c.shown().T.to_string(header=False))
    if out is not None:
        print(f"\nwritten to {out}")
    return 0


def markdown_table(frame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (``|`` in a cell escaped, newlines as spaces).

    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"path": ["a.b"], "value": [0.4], "source": ["x | y"]})), end="")
    | path | value | source |
    |---|---|---|
    | a.b | 0.4 | x \\| y |
    """
    def cell(v) -> str:
        return ("" if v is None or (isinstance(v, float) and v != v) else str(v)).replace("|", "\\|") \
            .replace("\r", " ").replace("\n", " ")
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
