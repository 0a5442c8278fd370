"""Country-scale runs: chunk by chunk, bit-identical whatever the chunking, workers or executor."""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim.cli import main

N = 1100   # five seed blocks of 256 (the last one partial)


def _outputs(folder):
    return (pd.read_parquet(folder / "branches"), pd.read_parquet(folder / "members"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("national") / "ref"
    result = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, workers=1, progress=False)
    return result, out


def test_outputs_cover_every_unit(reference):
    result, out = reference
    branches, members = _outputs(out)
    assert len(branches) == N and branches["branch_index"].tolist() == list(range(N))
    assert members["member_index"].tolist() == list(range(len(members)))
    assert int(branches["n_members"].sum()) == len(members) == result.totals["members"]
    assert sum(result.totals["stars"]) == N
    # Each member's branch exists and sizes agree.
    per_branch = members.groupby("branch_index").size().reindex(range(N), fill_value=0)
    assert (per_branch.to_numpy() == branches["n_members"].to_numpy()).all()


@pytest.mark.parametrize("chunk_size", [256, 700, 10_000])
def test_chunk_size_changes_nothing(reference, tmp_path, chunk_size):
    result, ref = reference
    other = bs.national_run(n_branches=N, seed=3, chunk_size=chunk_size, out_dir=tmp_path / "o",
                            progress=False)
    for a, b in zip(_outputs(ref), _outputs(tmp_path / "o")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == result.totals


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_count_changes_nothing(reference, tmp_path, workers):
    _, ref = reference
    bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=tmp_path / "w", workers=workers,
                    progress=False)
    for a, b in zip(_outputs(ref), _outputs(tmp_path / "w")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_process_pool_equals_local(reference, tmp_path):
    result, ref = reference
    with ProcessPoolExecutor(2) as pool:
        other = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=tmp_path / "p",
                                executor=pool, progress=False)
    for a, b in zip(_outputs(ref), _outputs(tmp_path / "p")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == result.totals


def test_dask_local_cluster_equals_local(reference, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    result, ref = reference
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        other = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=tmp_path / "d",
                                executor=client.get_executor(), progress=False)
    for a, b in zip(_outputs(ref), _outputs(tmp_path / "d")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == result.totals


def test_same_numbers_as_evaluate():
    # The national path scores blocks without building frames; it must agree with evaluate().
    result = bs.national_run(n_branches=600, seed=8, progress=False)
    ev = bs.evaluate(bs.generate(seed=8, n_branches=600))
    counts = ev.star_counts()["count"]
    national = result.star_counts()["count"]
    assert national.drop("weak").to_dict() == counts.drop("weak").to_dict()
    assert national["weak"] == counts["weak"]
    assert result.grade_counts().to_dict() == ev.grade_counts().to_dict()
    assert result.accuracy() == pytest.approx(ev.accuracy())


def test_resume_after_interruption_gives_the_uninterrupted_outputs(reference, tmp_path):
    result, ref = reference
    out = tmp_path / "r"
    first = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=1, progress=False)
    assert first.chunks_run == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["done"] == [0] and manifest["chunks"] == 3
    # Simulate a crash mid-chunk: a stray temporary file must not count as done.
    (out / "branches" / ".chunk-000001.parquet.tmp-1").write_bytes(b"partial")
    second = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)
    assert second.chunks_run == 2                       # chunk 0 was not redone
    assert second.totals == result.totals
    for a, b in zip(_outputs(ref), _outputs(out)):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_existing_run_needs_resume_and_the_same_settings(reference, tmp_path):
    out = tmp_path / "s"
    bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=1, progress=False)
    with pytest.raises(bs.BranchsimError, match="resume=True"):
        bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, progress=False)
    with pytest.raises(bs.BranchsimError, match="seed_entropy"):
        bs.national_run(n_branches=N, seed=4, chunk_size=512, out_dir=out, resume=True, progress=False)
    with pytest.raises(bs.BranchsimError, match="inputs_sha256"):
        bs.national_run(bs.Policy.load().update({"branch.weak_below": 45}), n_branches=N, seed=3,
                        chunk_size=512, out_dir=out, resume=True, progress=False)


def test_n_members_sets_the_scale():
    result = bs.national_run(n_branches=2000, n_members=80_000, seed=1, progress=False)
    assert result.totals["members"] == pytest.approx(80_000, rel=0.05)
    with pytest.raises(bs.BranchsimError, match="n_members"):
        bs.national_run(n_branches=2000, n_members=100, progress=False)


@pytest.mark.parametrize("kwargs", [dict(n_branches=0), dict(n_branches=2.5), dict(chunk_size=0)])
def test_invalid_sizes(kwargs):
    with pytest.raises(bs.BranchsimError):
        bs.national_run(**{"n_branches": 100, **kwargs}, progress=False)


def test_peak_memory_stays_bounded(tmp_path):
    # A scaled run (24,000 branches, ~0.5 million members, ~3.7e8 monthly values) in a fresh
    # process: with 2,048-branch chunks peak RSS stays far below the 4 GiB budget. The bound
    # here is loose on purpose (timing and exact memory belong to benchmarks/).
    code = ("import resource, branchsim as bs\n"
            f"bs.national_run(n_branches=24_000, seed=0, chunk_size=2048, out_dir=r'{tmp_path / 'm'}', "
            "progress=False)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_mib = int(out.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1536, f"peak RSS {peak_mib:.0f} MiB"


def test_cli_national_writes_and_resumes(tmp_path, capsys):
    args = ["national", "--branches", "600", "--members", "13000", "--chunk-size", "256",
            "--out", str(tmp_path / "c"), "--quiet"]
    assert main(args) == 0
    assert "600 branches" in capsys.readouterr().out
    assert main(args) == 2                                  # exists: needs --resume
    assert "resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    branches, members = _outputs(tmp_path / "c")
    assert len(branches) == 600 and np.isfinite(members["annual"]).all()
