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
    # In-process workers: the Dask executor path without starting processes (pickling to other
    # processes is what test_process_pool_equals_local checks).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
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
    # Simulate a crash mid-chunk: stray temporary files must not count as done, and are removed.
    stray = [out / "branches" / ".chunk-000001.parquet.tmp-1", out / "members" / ".chunk-000001.parquet.tmp-7",
             out / "summaries" / ".chunk-000001.json.tmp-7", out / ".manifest.json.tmp-7"]
    for p in stray:
        p.write_bytes(b"partial")
    second = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)
    assert second.chunks_run == 2                       # chunk 0 was not redone
    assert not any(p.exists() for p in stray)
    assert sorted(p.name for p in out.rglob(".*")) == []          # no lock file left either
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
    # A scaled run in a fresh process (8,000 branches, ~150,000 members: ~1e8 monthly values, 0.4 GB as
    # float32) in 1,024-branch chunks: the memory it adds over a warmed-up process stays well below what
    # holding the monthly records would need. Exact memory and timing belong to benchmarks/.
    code = ("import resource, branchsim as bs\n"
            "bs.national_run(n_branches=300, seed=0, progress=False)\n"          # imports, compiled kernels
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"r = bs.national_run(n_branches=8_000, seed=0, chunk_size=1024, out_dir=r'{tmp_path / 'm'}', "
            "progress=False)\n"
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print(before, after, r.totals['members'] * 12 * r.settings['member_indicators'] * 4 // 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, monthly_kib = map(int, out.stdout.split()[-3:])
    assert monthly_kib > 300 * 1024                       # the records would need > 300 MiB
    assert after - before < monthly_kib / 3, f"grew {(after - before) / 1024:.0f} MiB"


def test_cli_national_writes_and_resumes(tmp_path, capsys):
    args = ["national", "--branches", "600", "--members", "13000", "--chunk-size", "256",
            "--out", str(tmp_path / "c"), "--quiet"]
    assert main(args) == 0
    assert "600 branches" in capsys.readouterr().out
    assert main(args) == 2                                  # exists: needs --resume (the flag, not Python)
    err = capsys.readouterr().err
    assert "--resume" in err and "resume=True" not in err
    assert main(args + ["--resume"]) == 0
    branches, members = _outputs(tmp_path / "c")
    assert len(branches) == 600 and np.isfinite(members["annual"]).all()


# -- faults of the output folder --------------------------------------------------------------------------
def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(bs.BranchsimError, match="exists and is not a folder"):
        bs.national_run(n_branches=300, out_dir=tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_text() == "keep"


@pytest.mark.parametrize("kwargs", [dict(workers=0), dict(n_members=10), dict(chunk_size=0)])
def test_bad_settings_leave_nothing(tmp_path, kwargs):
    with pytest.raises(bs.BranchsimError):
        bs.national_run(**{"n_branches": 300, **kwargs}, out_dir=tmp_path / "n", progress=False)
    assert list(tmp_path.iterdir()) == []
    # and the next run starts afresh, without asking for resume=True
    bs.national_run(n_branches=300, out_dir=tmp_path / "n", progress=False)


def test_a_failed_fresh_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(bs.BranchsimError, match="No space left on device.*nothing was kept"):
        bs.national_run(n_branches=300, out_dir=tmp_path / "a" / "n", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_damaged_manifest_is_an_error_naming_it(tmp_path):
    out = tmp_path / "n"
    bs.national_run(n_branches=600, chunk_size=256, out_dir=out, max_chunks=1, progress=False)
    text = (out / "manifest.json").read_text()
    for damaged in (text[: len(text) // 2], "[1, 2]", '{"settings": {}, "chunks": 3, "done": ["x"]}'):
        (out / "manifest.json").write_text(damaged)
        with pytest.raises(bs.BranchsimError, match=r"manifest\.json: damaged"):
            bs.national_run(n_branches=600, chunk_size=256, out_dir=out, resume=True, progress=False)
        assert (out / "manifest.json").read_text() == damaged            # left as it was
        assert not (out / ".lock").exists()


def test_a_second_run_on_a_held_folder_is_refused(tmp_path):
    import fcntl
    import os
    out = tmp_path / "n"
    bs.national_run(n_branches=600, chunk_size=256, out_dir=out, max_chunks=1, progress=False)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(bs.BranchsimError, match="another national run"):
            bs.national_run(n_branches=600, chunk_size=256, out_dir=out, resume=True, progress=False)
        assert json.loads((out / "manifest.json").read_text())["done"] == [0]     # no work was done
    finally:
        os.close(fd)


def test_a_chunk_with_a_lost_file_is_redone(reference, tmp_path):
    result, _ = reference
    out = tmp_path / "r"
    bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=2, progress=False)
    (out / "members" / "chunk-000001.parquet").unlink()
    again = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)
    assert again.chunks_run == 2 and again.totals == result.totals
