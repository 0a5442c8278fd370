"""Country scale: a fixed fraction of the national run, extrapolated; Dask against one process.

Runs ``national_run`` on ``--fraction`` of 5,200,000 branches / 99,000,000
members (default 1%) in a fresh subprocess and reports:

* wall time, and the full-scale time extrapolated linearly (the work is
  chunk by chunk, so it scales with the number of chunks) — labelled as such;
* peak RSS of that process (chunked: it does not grow with the scale; the
  run at half the fraction is measured too, to show it);
* throughput in member-month-indicator values per second against NumPy's raw
  random fill (float64, in 20-million-value pieces) of the same number of
  values, measured in the same run (target >= 0.5);
* the same fraction on a 2-worker Dask LocalCluster against the single
  process (ratio of wall times; both write the same Parquet outputs).

    python benchmarks/bench_national.py [--fraction 0.01] [--chunk-size 4096]
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL_BRANCHES, FULL_MEMBERS = 5_200_000, 99_000_000

CHILD = r"""
import json, resource, sys, time
import branchsim as bs
n, m, chunk, out, dask = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
t0 = time.perf_counter()
if dask:
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as client:
        t0 = time.perf_counter()   # cluster start-up excluded
        r = bs.national_run(n_branches=n, n_members=m, seed=0, chunk_size=chunk, out_dir=out,
                            executor=client.get_executor(), progress=False)
else:
    r = bs.national_run(n_branches=n, n_members=m, seed=0, chunk_size=chunk, out_dir=out, progress=False)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "members": r.totals["members"], "branches": r.totals["branches"],
                  "values": r.totals["members"] * r.settings["member_periods"] * r.settings["member_indicators"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "level_counts": r.totals["levels"], "designations": r.totals["designations"]}))
"""


def child(n, m, chunk, dask=False):
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(m), str(chunk), str(Path(tmp) / "o"),
                              "1" if dask else "0"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fill_time(n_values: int, piece: int = 20_000_000) -> float:
    rng = np.random.default_rng(0)
    buf = np.empty(piece)
    t0 = time.perf_counter()
    for lo in range(0, n_values, piece):
        rng.random(out=buf[:min(piece, n_values - lo)])
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--chunk-size", type=int, default=4096)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "local" / "national.json"),
                    help="where to write the JSON results (default: an untracked file; name benchmarks/results/national.json to update the committed figures)")
    args = ap.parse_args(argv)
    n = int(FULL_BRANCHES * args.fraction)
    m = int(FULL_MEMBERS * args.fraction)
    half = child(n // 2, m // 2, args.chunk_size)
    run = child(n, m, args.chunk_size)
    t_fill = fill_time(run["values"])
    res = {"fraction": args.fraction, "branches": run["branches"], "members": run["members"],
           "values": run["values"], "chunk_size": args.chunk_size, "wall_s": run["wall_s"],
           "wall_s_extrapolated_full_scale": run["wall_s"] / args.fraction,
           "peak_rss_mib": run["peak_rss_mib"], "peak_rss_mib_half_fraction": half["peak_rss_mib"],
           "values_per_s": run["values"] / run["wall_s"], "fill_values_per_s": run["values"] / t_fill,
           "ratio_vs_fill": t_fill / run["wall_s"],
           "machine": platform.platform(), "cpus": len(__import__("os").sched_getaffinity(0))}
    print(f"fraction {args.fraction:.2%}: {run['branches']:,} branches, {run['members']:,} members, "
          f"{run['values']:.3e} member-period-indicator values")
    print(f"wall {run['wall_s']:.1f} s -> full scale about {res['wall_s_extrapolated_full_scale'] / 60:.0f} min "
          f"(extrapolated linearly from this fraction)")
    print(f"peak RSS {run['peak_rss_mib']:.0f} MiB (half the fraction: {half['peak_rss_mib']:.0f} MiB)")
    print(f"throughput {res['values_per_s'] / 1e6:.0f} M values/s; raw fill {res['fill_values_per_s'] / 1e6:.0f} "
          f"M values/s; ratio {res['ratio_vs_fill']:.2f} (target >= 0.5)")
    if not args.no_dask:
        d = child(n, m, args.chunk_size, dask=True)
        res["dask_wall_s"] = d["wall_s"]
        res["dask_vs_single_process"] = run["wall_s"] / d["wall_s"]
        res["dask_same_counts"] = d["level_counts"] == run["level_counts"] and d["designations"] == run["designations"]
        print(f"Dask LocalCluster (2 workers x 1 thread): {d['wall_s']:.1f} s; single process "
              f"(2 threads): {run['wall_s']:.1f} s; speed ratio {res['dask_vs_single_process']:.2f}; "
              f"same counts: {res['dask_same_counts']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
