"""Country-scale runs under every shipped scheme: bit-identical whatever the chunking, workers or executor.

Each feature is checked on the three shipped policies and the baseline under
``data/reforms/baseline_kmeans_by_type.yaml`` (``shipped.SCHEMES``): a relative
design and the places among all units (``rank``, ``last_place``) are settled
by the first pass, so every scheme's national outputs equal what
``bs.evaluate`` gives the same generated population.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import branchsim as bs
from branchsim import _national_blocks as nb
from branchsim.cli import main
import shipped

N = 1100   # five seed blocks of 256 (the last one partial)


def _outputs(folder):
    return (pd.read_parquet(folder / "branches"), pd.read_parquet(folder / "members"))


@pytest.fixture(scope="module", params=shipped.SCHEMES)
def reference(request, tmp_path_factory):
    policy = shipped.load(request.param)
    out = tmp_path_factory.mktemp("national") / "ref"
    result = bs.national_run(policy, n_branches=N, seed=3, chunk_size=512, out_dir=out, workers=1, progress=False)
    return policy, result, out


def test_outputs_cover_every_unit(reference):
    policy, result, out = reference
    s = policy.scheme
    branches, members = _outputs(out)
    assert len(branches) == N and branches["branch_index"].tolist() == list(range(N))
    assert sum(result.totals["levels"]) == N == result.level_counts().loc[list(policy.levels), "count"].sum()
    for d in s.branch.designations:
        assert result.level_counts().loc[d.id, "count"] == branches[d.id].sum()
    for c in s.consequences_of("branch"):
        assert result.consequence_counts()[c.id] == branches[c.id].sum()
    if s.member is None:
        assert len(members) == 0 and result.totals["members"] == 0 and result.grade_counts().empty
        return
    assert members["member_index"].tolist() == list(range(len(members)))
    assert int(branches["n_members"].sum()) == len(members) == result.totals["members"]
    per_branch = members.groupby("branch_index").size().reindex(range(N), fill_value=0)
    assert (per_branch.to_numpy() == branches["n_members"].to_numpy()).all()
    grades = result.grade_counts()
    assert grades.sum() == len(members) and list(grades.index[:s.member.grades.n]) == list(s.member.grades.ids)
    for c in s.consequences_of("member"):
        assert result.consequence_counts()[c.id] == members[c.id].sum()


def test_codebook_names_the_codes(reference):
    policy, _, out = reference
    s = policy.scheme
    cb = json.loads((out / "codebook.json").read_text(encoding="utf-8"))["columns"]
    branches, members = _outputs(out)
    assert {cb["rating"][str(c)] for c in branches["rating"].unique()} <= set(s.branch.levels.ids)
    assert [cb["rating"][str(i)] for i in range(s.branch.levels.n)] == list(s.branch.levels.worst_first)
    assert [cb["type"][str(i)] for i in range(len(s.branch.types))] == list(s.branch.types)
    if s.member is not None:
        assert cb["grade"]["-1"] is None and {str(g) for g in members["grade"].unique()} <= set(cb["grade"])


@pytest.mark.parametrize("chunk_size", [256, 10_000])
def test_chunk_size_changes_nothing(reference, tmp_path, chunk_size):
    policy, result, ref = reference
    other = bs.national_run(policy, n_branches=N, seed=3, chunk_size=chunk_size, out_dir=tmp_path / "o",
                            progress=False)
    for a, b in zip(_outputs(ref), _outputs(tmp_path / "o")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == result.totals


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_count_changes_nothing(tmp_path, workers):
    for name in ("baseline", "member_points"):
        policy = shipped.load(name)
        a = bs.national_run(policy, n_branches=700, seed=3, chunk_size=512, out_dir=tmp_path / f"{name}1",
                            workers=1, progress=False)
        b = bs.national_run(policy, n_branches=700, seed=3, chunk_size=512, out_dir=tmp_path / f"{name}w",
                            workers=workers, progress=False)
        for x, y in zip(_outputs(tmp_path / f"{name}1"), _outputs(tmp_path / f"{name}w")):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        assert a.totals == b.totals


@pytest.mark.parametrize("name", ["baseline", "star_quota"])
def test_process_pool_equals_local(tmp_path, name):
    policy = shipped.load(name)
    local = bs.national_run(policy, n_branches=700, seed=3, chunk_size=256, out_dir=tmp_path / "l", progress=False)
    with ProcessPoolExecutor(2) as pool:
        other = bs.national_run(policy, n_branches=700, seed=3, chunk_size=256, out_dir=tmp_path / "p",
                                executor=pool, progress=False)
    for a, b in zip(_outputs(tmp_path / "l"), _outputs(tmp_path / "p")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == local.totals


def test_dask_local_cluster_equals_local(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    policy = shipped.load("member_points")
    local = bs.national_run(policy, n_branches=700, seed=3, chunk_size=256, out_dir=tmp_path / "l", progress=False)
    # In-process workers: the Dask executor path without starting processes (pickling to other
    # processes is what test_process_pool_equals_local checks).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        other = bs.national_run(policy, n_branches=700, seed=3, chunk_size=256, out_dir=tmp_path / "d",
                                executor=client.get_executor(), progress=False)
    for a, b in zip(_outputs(tmp_path / "l"), _outputs(tmp_path / "d")):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert other.totals == local.totals


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_same_numbers_as_evaluate(tmp_path, name):
    # The national path rates blocks without building frames (places and relative cut points from the
    # first pass); it must agree with evaluate() on the same generated population, unit by unit.
    policy = shipped.load(name)
    s = policy.scheme
    result = bs.national_run(policy, n_branches=600, seed=8, chunk_size=256, out_dir=tmp_path / "n", progress=False)
    ev = bs.evaluate(bs.generate(policy, seed=8, n_branches=600), policy)
    branches, members = _outputs(tmp_path / "n")
    for col in ("score", "true_score"):
        np.testing.assert_array_equal(branches[col].to_numpy(), ev.branches[col].to_numpy(), err_msg=col)
    for col in ("rating", "true_rating"):
        assert s.branch.levels.id_of(branches[col].to_numpy()).tolist() == ev.branches[col].tolist(), col
    for col in [d.id for d in s.branch.designations] + [f"true_{d.id}" for d in s.branch.designations] \
            + [c.id for c in s.consequences_of("branch")]:
        assert branches[col].tolist() == ev.branches[col].tolist(), col
    fired = ev.branches["vetoes"].fillna("").str.split(",") if s.branch.vetoes.n else None
    for v in s.branch.vetoes.ids:                       # one boolean column a veto: which fired, per branch
        assert branches[f"veto_{v}"].dtype == bool
        assert branches[f"veto_{v}"].tolist() == [v in names for names in fired], v
    assert result.accuracy() == pytest.approx(ev.accuracy())
    assert result.level_counts()["count"].to_dict() == ev.level_counts()["count"].to_dict()
    if s.member is None:
        return
    np.testing.assert_allclose(members["annual"], ev.members["annual"], atol=1e-9, rtol=0)
    assert pd.Series(s.member.grades.id_of(members["grade"].to_numpy())).fillna("-").tolist() == \
        ev.members["grade"].fillna("-").tolist()
    assert result.grade_counts().to_dict() == ev.grade_counts().to_dict()
    for c in s.consequences_of("member"):
        assert members[c.id].tolist() == ev.members[c.id].tolist(), c.id


def test_the_compiled_period_path_equals_the_numpy_path(tmp_path, monkeypatch):
    policy = bs.Policy.load()
    assert nb.kernel_allowed(policy.scheme)
    assert not nb.kernel_allowed(shipped.load("member_points").scheme)       # 4 periods, summed: NumPy
    bs.national_run(policy, n_branches=400, seed=2, out_dir=tmp_path / "k", progress=False)
    monkeypatch.setattr(nb, "kernel_allowed", lambda scheme: False)
    bs.national_run(policy, n_branches=400, seed=2, out_dir=tmp_path / "n", progress=False)
    (bk, mk), (bn, mn) = _outputs(tmp_path / "k"), _outputs(tmp_path / "n")
    pd.testing.assert_frame_equal(bk, bn, check_exact=True)
    np.testing.assert_allclose(mk["record"], mn["record"], atol=1e-9, rtol=0)
    assert (mk["grade"] == mn["grade"]).mean() > 0.999


def test_what_a_chunked_run_cannot_rate_is_refused():
    base = bs.Policy.load()
    with pytest.raises(bs.BranchsimError, match="member.rating: design 'kmeans'"):
        bs.national_run(base.update({"member.rating.design": "kmeans"}), n_branches=300, progress=False)
    with pytest.raises(bs.BranchsimError, match="peer groups 'parent'"):
        bs.national_run(base.update({"branch.rating.design": "kmeans", "branch.rating.peer_groups": "parent"}),
                        n_branches=300, progress=False)


def test_resume_after_interruption_gives_the_uninterrupted_outputs(tmp_path):
    ref = tmp_path / "ref"
    result = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=ref, progress=False)
    out = tmp_path / "r"
    first = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=1, progress=False)
    assert first.chunks_run == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["done"] == [0] and manifest["chunks"] == 3
    # Simulate a crash mid-chunk: stray temporary files must not count as done, and are removed.
    stray = [out / "branches" / ".chunk-000001.parquet.tmp-1", out / "members" / ".chunk-000001.parquet.tmp-7",
             out / "summaries" / ".chunk-000001.json.tmp-7", out / ".manifest.json.tmp-7",
             out / ".codebook.json.tmp-7"]
    for p in stray:
        p.write_bytes(b"partial")
    second = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)
    assert second.chunks_run == 2                       # chunk 0 was not redone
    assert not any(p.exists() for p in stray)
    assert sorted(p.name for p in out.rglob(".*")) == []          # no lock file left either
    assert second.totals == result.totals
    for a, b in zip(_outputs(ref), _outputs(out)):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_existing_run_needs_resume_and_the_same_settings(tmp_path):
    out = tmp_path / "s"
    bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=1, progress=False)
    with pytest.raises(bs.BranchsimError, match="resume=True"):
        bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, progress=False)
    with pytest.raises(bs.BranchsimError, match="seed_entropy"):
        bs.national_run(n_branches=N, seed=4, chunk_size=512, out_dir=out, resume=True, progress=False)
    with pytest.raises(bs.BranchsimError, match="inputs_sha256"):
        bs.national_run(bs.Policy.load().update({"branch.designations.weak.criteria.low_score.below": 45}),
                        n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)


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
            "print(before, after, r.totals['members'] * r.settings['member_periods'] "
            "* r.settings['member_indicators'] * 4 // 1024)")
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


def test_a_chunk_with_a_lost_file_is_redone(tmp_path):
    result = bs.national_run(n_branches=N, seed=3, chunk_size=512, progress=False)
    out = tmp_path / "r"
    bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, max_chunks=2, progress=False)
    (out / "members" / "chunk-000001.parquet").unlink()
    again = bs.national_run(n_branches=N, seed=3, chunk_size=512, out_dir=out, resume=True, progress=False)
    assert again.chunks_run == 2 and again.totals == result.totals
