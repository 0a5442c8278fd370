"""A researcher's own tables at province scale: load and evaluate, against the national_run path.

Builds, once, a folder of Parquet tables for ``--branches`` branches with
about ``--members`` members and their member-months (generated in pieces of
``--piece`` branches, each its own seed, written row group by row group, so
building them never holds more than one piece), then in fresh subprocesses:

* ``load``: ``load_population`` of the folder (read and check) — peak RSS;
* ``evaluate``: the loaded population evaluated chunk by chunk — peak RSS
  while evaluating (the peak is reset after loading), time;
* ``national``: ``national_run`` at the same scale, no outputs written —
  peak RSS, time;

and reports, as ratios measured in the same run: evaluate's peak RSS over
the tables' own memory (``DataFrame.memory_usage(deep=True)``; target <= 2),
and evaluate's time and peak against the national run's.

    python benchmarks/bench_evaluate_tables.py [--branches 150000] [--members 3000000]
        [--folder DIR] [--out FILE]

Results print to the terminal and go to ``--out`` (default
``benchmarks/results/local/evaluate_tables.json``, which git ignores); the
folder of tables is a temporary one unless ``--folder`` is given (then it is
reused when it already holds tables of the same scale). Not a test: it needs
several GiB of memory and a few minutes.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n" + r"""
import json, sys, time
import numpy as np
from _memory import reset_peak, rss

stage, folder, n, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import branchsim as bs
res = {"stage": stage}
if stage in ("load", "evaluate"):
    t0 = time.perf_counter()
    pop = bs.load_population(folder)
    res["load_s"] = time.perf_counter() - t0
    res["load_peak"] = rss()["VmHWM"]
    tables = sum(int(df.memory_usage(deep=True, index=False).sum())
                 for df in (pop.branches, pop.members, pop.member_months))
    res.update(tables_bytes=tables, branches=len(pop.branches), members=len(pop.members),
               member_months=len(pop.member_months))
    if stage == "evaluate":
        bs.evaluate(bs.generate(seed=0, n_branches=300))       # compile / load the kernels first
        res["before_evaluate_rss"] = rss()["VmRSS"]
        res["peak_reset"] = reset_peak()
        t0 = time.perf_counter()
        r = bs.evaluate(pop)
        res["evaluate_s"] = time.perf_counter() - t0
        res["evaluate_peak"] = rss()["VmHWM"]
        res["stars"] = r.star_counts()["count"].to_dict()
        res["grades"] = r.grade_counts().to_dict()
else:
    bs.national_run(n_branches=3000, seed=0, progress=False)   # compile the kernels first
    reset_peak()
    t0 = time.perf_counter()
    r = bs.national_run(n_branches=n, n_members=m, seed=0, progress=False)
    res["national_s"] = time.perf_counter() - t0
    res["national_peak"] = rss()["VmHWM"]
    res["national_members"] = r.totals["members"]
print(json.dumps(res))
"""


def build(folder: Path, n_branches: int, n_members: int, piece: int) -> dict:
    """Generate the tables piece by piece (one seed each) into Parquet files; ids made unique."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import branchsim as bs

    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    root = np.random.SeedSequence(2026)
    t0 = time.perf_counter()
    done = 0
    for i, seed in enumerate(root.spawn(-(-n_branches // piece))):
        k = min(piece, n_branches - done)
        pop = bs.generate(seed=seed, n_branches=k, n_members=int(round(n_members * k / n_branches)))
        tag = f"P{i:03d}-"
        b, m, mm = pop.branches.copy(), pop.members.copy(), pop.member_months
        b["branch_id"] = tag + b["branch_id"].astype(str)
        m["branch_id"] = tag + m["branch_id"].astype(str)
        m["member_id"] = tag + m["member_id"].astype(str)
        mm = mm.assign(member_id=mm["member_id"].cat.rename_categories(
            pd_index_prefixed(mm["member_id"].cat.categories, tag)))
        for name, df in (("branches", b), ("members", m), ("member_months", mm)):
            table = pa.Table.from_pandas(df, preserve_index=False)
            if name not in writers:
                writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
            writers[name].write_table(table.cast(writers[name].schema))
        done += k
        del pop, b, m, mm
        print(f"  built {done:,} / {n_branches:,} branches ({time.perf_counter() - t0:.0f} s)", flush=True)
    for w in writers.values():
        w.close()
    info = {"branches": n_branches, "members": n_members, "piece": piece}
    (folder / "bench.json").write_text(json.dumps(info))
    return info


def pd_index_prefixed(categories, tag: str):
    import pandas as pd
    return pd.Index(tag + categories.astype(str))


def stage(name: str, folder: Path, n: int, m: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, name, str(folder), str(n), str(m)],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"stage {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=150_000)
    ap.add_argument("--members", type=int, default=3_000_000)
    ap.add_argument("--piece", type=int, default=25_000, help="branches generated at a time")
    ap.add_argument("--folder", help="where to keep the tables (default: a temporary folder)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "evaluate_tables.json"))
    args = ap.parse_args(argv)
    tmp = None
    if args.folder:
        folder = Path(args.folder)
    else:
        tmp = tempfile.mkdtemp(prefix="bench-evaluate-tables-")
        folder = Path(tmp) / "tables"
    try:
        want = {"branches": args.branches, "members": args.members, "piece": args.piece}
        have = json.loads((folder / "bench.json").read_text()) if (folder / "bench.json").exists() else None
        if have != want:
            if folder.exists():
                shutil.rmtree(folder)
            print(f"building {args.branches:,} branches / ~{args.members:,} members in {folder}", flush=True)
            build(folder, args.branches, args.members, args.piece)
        ev = stage("evaluate", folder, args.branches, args.members)
        nat = stage("national", folder, args.branches, args.members)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    gib = 2.0 ** 30
    tables = ev["tables_bytes"]
    res = {
        **ev, **nat,
        "evaluate_peak_over_tables": ev["evaluate_peak"] / tables,
        "evaluate_extra_over_tables": (ev["evaluate_peak"] - ev["before_evaluate_rss"]) / tables,
        "load_peak_over_tables": ev["load_peak"] / tables,
        "evaluate_time_over_national": ev["evaluate_s"] / nat["national_s"],
        "evaluate_peak_over_national_peak": ev["evaluate_peak"] / nat["national_peak"],
        "machine": platform.platform(),
    }
    print(f"tables: {ev['branches']:,} branches, {ev['members']:,} members, {ev['member_months']:,} "
          f"member-months = {tables / gib:.2f} GiB in memory")
    print(f"load_population: {ev['load_s']:.1f} s, peak RSS {ev['load_peak'] / gib:.2f} GiB "
          f"({res['load_peak_over_tables']:.2f}x the tables)")
    print(f"evaluate: {ev['evaluate_s']:.1f} s, peak RSS {ev['evaluate_peak'] / gib:.2f} GiB = "
          f"{res['evaluate_peak_over_tables']:.2f}x the tables (target <= 2); "
          f"{(ev['evaluate_peak'] - ev['before_evaluate_rss']) / gib:.2f} GiB above the loaded tables")
    print(f"national_run, same scale ({nat['national_members']:,} members), no outputs: "
          f"{nat['national_s']:.1f} s, peak RSS {nat['national_peak'] / gib:.2f} GiB")
    print(f"ratios: evaluate / national_run time {res['evaluate_time_over_national']:.2f}, "
          f"peak RSS {res['evaluate_peak_over_national_peak']:.2f}")
    if not ev.get("peak_reset"):
        print("note: /proc/self/clear_refs not writable; evaluate's peak includes loading")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
