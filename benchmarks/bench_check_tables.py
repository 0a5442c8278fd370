"""Memory of checking a province's tables: peak RSS of ``check_tables`` above the tables themselves.

Builds (in a fresh subprocess per measurement) ``--branches`` branches with
about ``--members`` members and their member-months, as a researcher's CSV
export would load them (facts float64, ids as text; ``--float32`` and
``--categorical`` for the layout of a saved generated population), then
resets the process' peak RSS (``/proc/self/clear_refs``) and runs
``check_tables``. Reports the peak RSS, the RSS before the check and the
ratio of the extra memory to the tables' own (``memory_usage(deep=True)``).
With ``--against REV`` the same is measured for ``branchsim/tables.py`` as
it was at git revision REV (e.g. the commit before the column-by-column
checks), in the same run.

    python benchmarks/bench_check_tables.py [--branches 200000] [--members 1000000] [--against c9f8f38]

Results print to the terminal and go to ``--out`` (default
``benchmarks/results/local/check_tables.json``, which git ignores).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n" + r"""
import importlib.util, json, sys, time
import numpy as np
from _memory import reset_peak, rss

n, m, f32, cat, module = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5]
import branchsim as bs
if module:
    spec = importlib.util.spec_from_file_location("branchsim._bench_old_tables", module)
    tables = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tables          # dataclasses look their module up while it loads
    spec.loader.exec_module(tables)
else:
    from branchsim import tables
policy = bs.Policy.load()
pop = bs.generate(policy, seed=0, n_branches=n, n_members=m)
b, mem, mm = pop.branches, pop.members, pop.member_months
if not f32:
    facts = [c for c in mm.columns if c not in ("member_id", "month")]
    mm = mm.astype({c: np.float64 for c in facts})
if not cat:
    mm = mm.assign(member_id=mm["member_id"].astype(str))
del pop
size = sum(int(df.memory_usage(deep=True, index=False).sum()) for df in (b, mem, mm))
before = rss()["VmRSS"]
if not reset_peak():
    sys.exit("cannot reset the peak RSS (/proc/self/clear_refs)")
t0 = time.perf_counter()
out = tables.check_tables(policy, b, mem, mm)
seconds = time.perf_counter() - t0
peak = rss()["VmHWM"]
print(json.dumps({"tables_bytes": size, "rss_before": before, "peak": peak, "seconds": seconds,
                  "member_months": len(mm)}))
"""


def measure(args, module: str = "") -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(args.branches), str(args.members),
                           "1" if args.float32 else "0", "1" if args.categorical else "0", module],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"measurement failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--branches", type=int, default=200_000)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--float32", action="store_true", help="facts as float32 (a saved generated population)")
    ap.add_argument("--categorical", action="store_true", help="member_id of member_months as a categorical")
    ap.add_argument("--against", help="also measure branchsim/tables.py of this git revision")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "check_tables.json"))
    args = ap.parse_args(argv)
    gib = 2.0 ** 30
    runs = {"now": measure(args)}
    if args.against:
        repo = Path(__file__).resolve().parents[1]
        text = subprocess.run(["git", "-C", str(repo), "show", f"{args.against}:branchsim/tables.py"],
                              capture_output=True, text=True, check=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tables_old.py"
            path.write_text(text, encoding="utf-8")
            runs[args.against] = measure(args, str(path))
    for name, r in runs.items():
        extra = r["peak"] - r["rss_before"]
        r["extra_over_tables"] = extra / r["tables_bytes"]
        print(f"{name:>10}: {r['member_months']:,} member-months, tables {r['tables_bytes'] / gib:.2f} GiB; "
              f"check_tables {r['seconds']:.1f} s, peak RSS {r['peak'] / gib:.2f} GiB, "
              f"{extra / gib:.2f} GiB above the tables ({r['extra_over_tables']:.2f}x them)")
    res = {"branches": args.branches, "members": args.members, "float32": args.float32,
           "categorical": args.categorical, "runs": runs, "machine": platform.platform()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
