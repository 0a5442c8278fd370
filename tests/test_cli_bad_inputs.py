"""Every subcommand on a table of bad inputs: one ``branchsim: error:`` line naming the place, exit 2,
no traceback, nothing left behind and no input changed.

Each row builds its inputs in a fresh folder, runs ``branchsim.cli.main`` in-process and compares the
folder (every file, dotfiles and temporary files included, with its bytes) before and after. A few rows
run as a subprocess to prove no traceback reaches stderr. Full disks and read-only folders are tried
for real on a small tmpfs (when mounting is permitted, e.g. as root) and, always, by injecting the
``OSError`` they raise.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from branchsim.cli import main
from conftest import EXAMPLES

SHARE = "branch.satisfaction_share"
NAT = ["national", "--branches", "300", "--chunk-size", "256", "--quiet"]


# -- the folder, before and after -----------------------------------------------------------------------
def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` (dotfiles included) with a digest of each file's bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink() or p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: int, err: str, *names: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("branchsim: error: "), err
    assert "Traceback" not in err and "np.int64" not in err and "np.float64" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


# -- inputs -------------------------------------------------------------------------------------------------
def binary_policy(t: Path) -> Path:
    p = t / "y.yaml"
    p.write_bytes(bytes(range(256)) * 12)     # what `head -c 3000 /dev/urandom` gives: NULs, invalid UTF-8
    return p


def latin1_policy(t: Path) -> Path:
    p = t / "latin.yaml"
    p.write_bytes("name: r\xe9forme\n".encode("latin-1"))
    return p


def data_folder(t: Path, name: str = "D") -> Path:
    folder = t / name
    shutil.copytree(EXAMPLES, folder)
    return folder


def gbk_folder(t: Path) -> Path:
    folder = data_folder(t, "gbk")
    df = pd.read_csv(folder / "branches.csv")
    df["name"] = "村党支部"
    (folder / "branches.csv").write_bytes(df.to_csv(index=False).encode("gbk"))
    return folder


def national_run_folder(t: Path) -> Path:
    out = t / "nat"
    assert main([*NAT, "--out", str(out)]) == 0
    return out


def truncated_manifest(t: Path) -> Path:
    out = national_run_folder(t)
    text = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(text[: len(text) // 2])
    return out


def a_file(t: Path, name: str = "afile") -> Path:
    p = t / name
    p.write_text("keep me\n")
    return p


def a_folder(t: Path, name: str = "adir") -> Path:
    p = t / name
    p.mkdir()
    (p / "notes.txt").write_text("mine\n")
    return p


def evaluated(t: Path, change: str | None = None) -> Path:
    """An ``evaluate --out`` folder (with its manifest) of a copy of the example tables; ``change``: then
    ``"input"`` edits a table it read, ``"damaged"`` cuts its manifest short, ``"foreign"`` replaces it by
    another JSON document."""
    from branchsim.cli import main
    data, out = data_folder(t), t / "ev"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 0
    if change == "input":
        with open(data / "branches.csv", "a", encoding="utf-8") as f:
            f.write("\n")
    elif change == "damaged":
        text = (out / "manifest.json").read_text(encoding="utf-8")
        (out / "manifest.json").write_text(text[: len(text) // 2], encoding="utf-8")
    elif change == "foreign":
        (out / "manifest.json").write_text('{"settings": 1}\n', encoding="utf-8")
    return out


def small(t: Path) -> list:
    return ["--data", EXAMPLES]


def reform_file(t: Path, changes: str, name: str = "r.yaml") -> Path:
    p = t / name
    p.write_text(f"schema: branchsim-reform/1\nname: trial\nchanges:\n{changes}", encoding="utf-8")
    return p


def v1_policy(t: Path) -> Path:
    p = t / "v1.yaml"
    shutil.copy(V1, p)
    return p


def with_tests(t: Path, text: str) -> Path:
    policy = t / "p.yaml"
    shutil.copy(BASELINE, policy)
    (t / "p.tests.yaml").write_text(text, encoding="utf-8")
    return policy


BASELINE = EXAMPLES.parent / "policies" / "baseline.yaml"
V1 = Path(__file__).resolve().parent / "data" / "baseline_v1.yaml"       # format 1 (git a54fae5)
CASE = ("schema: branchsim-policy-tests/1\ncases:\n  - name: c\n    branches: [{id: b1, type: village}]\n"
        "    expect:\n")
# Every subcommand that reads a policy file, with the rest of a valid command line.
POLICY_READERS = {
    "policy": lambda t: ["policy"],
    "run": lambda t: ["run"],
    "evaluate": lambda t: ["evaluate"],
    "explain": lambda t: ["explain", "--branch", "B001"],
    "compare": lambda t: ["compare", *small(t), "--reform", BASELINE, "--out", t / "c"],
    "report": lambda t: ["report", *small(t), "--draws", "2", "--out", t / "r"],
    "national": lambda t: [*NAT, "--out", t / "n"],
    "calibrate": lambda t: ["calibrate", "--seeds", "1", "--maxiter", "1"],
    "sweep": lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2", "--out", t / "s.csv"],
}

# Each row: id, a function of the folder giving argv, the names the one line must contain.
CASES = [
    # output folders and files that cannot be written, or would replace something
    ("evaluate-out-proc", lambda t: ["evaluate", "--out", "/proc/x"], ["/proc/x"]),
    ("evaluate-out-file", lambda t: ["evaluate", "--out", a_file(t)], ["afile", "not a folder"]),
    ("evaluate-out-is-data", lambda t: ["evaluate", "--data", data_folder(t), "--out", t / "D"],
     ["--out", "input of this run"]),
    ("evaluate-out-holds-data", lambda t: ["evaluate", "--data", data_folder(t, "P/D"), "--out", t / "P"],
     ["--out", "input of this run"]),
    ("evaluate-out-foreign-folder", lambda t: ["evaluate", "--out", a_folder(t)], ["adir", "notes.txt"]),
    ("national-out-proc", lambda t: [*NAT, "--out", "/proc/x"], ["/proc/x"]),
    ("national-out-file", lambda t: [*NAT, "--out", a_file(t)], ["afile", "not a folder"]),
    ("national-out-foreign-folder", lambda t: [*NAT, "--out", a_folder(t)], ["adir", "notes.txt"]),
    ("national-out-under-file", lambda t: [*NAT, "--out", a_file(t) / "sub"], ["afile"]),
    ("sweep-out-folder", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2", "--out", a_folder(t)],
     ["adir", "is a folder"]),
    ("sweep-out-is-policy", lambda t: ["sweep", *small(t), "--policy", shutil.copy(
        BASELINE, t / "p.yaml"), "--param", SHARE, "--values", "0.2",
        "--out", t / "p.yaml"], ["p.yaml", "input of this run"]),
    ("sweep-out-is-table", lambda t: ["sweep", "--data", data_folder(t), "--param", SHARE, "--values", "0.2",
                                      "--out", t / "D" / "branches.csv"], ["branches.csv", "input"]),
    ("compare-out-is-data", lambda t: ["compare", "--data", data_folder(t), "--reform",
                                       BASELINE, "--out", t / "D"],
     ["D"]),
    ("report-out-file", lambda t: ["report", *small(t), "--draws", "2", "--out", a_file(t)],
     ["afile", "not a folder"]),
    ("report-out-is-data", lambda t: ["report", "--data", data_folder(t), "--draws", "2", "--out", t / "D"],
     ["D"]),
    # values
    ("sweep-value-abc", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2,abc",
                                   "--out", t / "s.csv"], [SHARE, "'abc'", "item 2"]),
    ("sweep-value-True", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2,True",
                                    "--out", t / "s.csv"], [SHARE, "'True'"]),
    ("sweep-value-nan", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "nan",
                                   "--out", t / "s.csv"], [SHARE, "'nan'"]),
    ("sweep-value-empty", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2,,0.3",
                                     "--out", t / "s.csv"], [SHARE]),
    ("sweep-unpaired-values", lambda t: ["sweep", *small(t), "--param", SHARE, "--param", SHARE, "--values",
                                         "0.2", "--out", t / "s.csv"], ["--values"]),
    ("national-workers-0", lambda t: [*NAT, "--workers", "0", "--out", t / "n"], ["--workers"]),
    ("national-branches-abc", lambda t: [*NAT, "--branches", "abc", "--out", t / "n"], ["--branches", "'abc'"]),
    ("national-members-too-few", lambda t: [*NAT, "--members", "10", "--out", t / "n"], ["--members"]),
    ("report-draws-0", lambda t: ["report", *small(t), "--draws", "0", "--out", t / "r"], ["--draws"]),
    ("run-seed-negative", lambda t: ["run", "--seed", "-1"], ["--seed"]),
    ("calibrate-write-into-the-package", lambda t: ["calibrate", "--seeds", "1", "--maxiter", "1", "--write",
                                                    EXAMPLES.parent / "policies" / "x.generator.yaml"],
     ["x.generator.yaml", "inside the installed package"]),
    ("calibrate-out-into-a-missing-folder", lambda t: ["calibrate", "--out", t / "missing" / "g.yaml"],
     ["missing", "checked before fitting"]),
    ("calibrate-targets-missing", lambda t: ["calibrate", "--targets", t / "nope.yaml"], ["nope.yaml", "not found"]),
    ("calibrate-fit-unknown", lambda t: ["calibrate", "--fit", "foo.bar"], ["foo.bar", "not a numeric"]),
    ("unknown-command", lambda t: ["frobnicate"], ["frobnicate"]),
    # national runs: faults of the output folder
    ("national-exists-needs-resume", lambda t: [*NAT, "--out", national_run_folder(t)], ["nat", "--resume"]),
    ("national-truncated-manifest", lambda t: [*NAT, "--resume", "--out", truncated_manifest(t)],
     ["manifest.json", "damaged"]),
    ("national-other-settings", lambda t: [*NAT, "--seed", "5", "--resume", "--out", national_run_folder(t)],
     ["nat", "seed_entropy", "--resume"]),
    # policy files that are not UTF-8 text, for every subcommand that reads one
    *[(f"{cmd}-binary-policy", (lambda f: lambda t: [*f(t), "--policy", binary_policy(t)])(f), ["y.yaml"])
      for cmd, f in POLICY_READERS.items()],
    ("compare-binary-reform", lambda t: ["compare", *small(t), "--reform", binary_policy(t), "--out", t / "c"],
     ["y.yaml"]),
    ("report-binary-reform", lambda t: ["report", *small(t), "--reform", binary_policy(t), "--draws", "2",
                                        "--out", t / "r"], ["y.yaml"]),
    ("policy-latin1", lambda t: ["policy", "--policy", latin1_policy(t)], ["latin.yaml", "UTF-8"]),
    ("policy-missing", lambda t: ["policy", "--policy", t / "missing.yaml"], ["missing.yaml"]),
    # tables and ids (the loader's and explain's messages)
    ("evaluate-gbk-csv", lambda t: ["evaluate", "--data", gbk_folder(t)], ["branches.csv", "UTF-8"]),
    ("evaluate-missing-folder", lambda t: ["evaluate", "--data", t / "nowhere"], ["nowhere"]),
    ("explain-unknown-branch", lambda t: ["explain", "--branch", "NOPE"], ["NOPE", "branch"]),
    ("explain-unknown-member", lambda t: ["explain", "--member", "NOPE"], ["NOPE", "member"]),
    ("next-level-unknown-branch", lambda t: ["next-level", "--branch", "NOPE"], ["NOPE", "branch"]),
    ("compare-designs-no-such-design-file", lambda t: ["compare-designs", "--design", "a=NOPE.yaml"],
     ["NOPE.yaml", "no such file"]),
    # reform files: an unknown path, an unknown design, a value out of range, not a reform at all
    ("compare-reform-unknown-path", lambda t: ["compare", *small(t), "--reform", reform_file(
        t, "  branch.rating.cutz.five_star: 92\n"), "--out", t / "c"], ["r.yaml", "branch.rating.cutz.five_star",
                                                                       "did you mean"]),
    ("compare-reform-unknown-design", lambda t: ["compare", *small(t), "--reform", reform_file(
        t, "  branch.rating.design: magic\n"), "--out", t / "c"], ["branch.rating.design", "magic", "kmeans"]),
    ("report-reform-out-of-range", lambda t: ["report", *small(t), "--draws", "2", "--reform", reform_file(
        t, "  branch.satisfaction_share: 1.5\n"), "--out", t / "r"], ["branch.satisfaction_share", "1.5"]),
    ("compare-reform-changes-nothing", lambda t: ["compare", *small(t), "--reform", reform_file(
        t, "  branch.satisfaction_share: 0.4\n"), "--out", t / "c"], ["changes nothing"]),
    ("compare-reform-not-a-reform", lambda t: ["compare", *small(t), "--reform", a_file(t, "x.yaml"),
                                              "--out", t / "c"], ["x.yaml", "branchsim-reform/1"]),
    ("report-reform-missing", lambda t: ["report", *small(t), "--reform", t / "nowhere.yaml", "--out", t / "r"],
     ["nowhere.yaml"]),
    # check-policy: a file that is no policy, a missing one, a tests file instead of its policy, bad tests
    ("check-policy-not-a-policy", lambda t: ["check-policy", a_file(t, "notes.yaml")], ["notes.yaml", "mapping"]),
    ("check-policy-missing", lambda t: ["check-policy", t / "nowhere.yaml"], ["nowhere.yaml"]),
    ("check-policy-binary", lambda t: ["check-policy", binary_policy(t)], ["y.yaml"]),
    ("check-policy-a-tests-file", lambda t: ["check-policy", shutil.copy(
        EXAMPLES.parent / "policies" / "baseline.tests.yaml", t / "b.tests.yaml")], ["b.tests.yaml", "policy file"]),
    ("check-policy-no-tests", lambda t: ["check-policy", shutil.copy(BASELINE, t / "lone.yaml")],
     ["lone", "no tests file"]),
    ("check-policy-unknown-step", lambda t: ["check-policy", with_tests(t, CASE + "      b1: {stars: 5}\n")],
     ["p.tests.yaml", "b1.stars", "unknown step"]),
    ("check-policy-unknown-level", lambda t: ["check-policy", with_tests(t, CASE + "      b1: {level: top}\n")],
     ["b1.level", "'top'", "five_star"]),
    ("check-policy-unknown-fact", lambda t: ["check-policy", with_tests(
        t, CASE.replace("type: village}", "type: village, facts: {meetngs: 1}}") + "      b1: {score: 1}\n")],
     ["facts.meetngs", "not a fact"]),
    ("check-policy-tests-missing", lambda t: ["check-policy", BASELINE, "--tests", t / "none.tests.yaml"],
     ["none.tests.yaml"]),
    # migrate-policy: onto an existing file, onto itself, a file already of format 2, a missing file
    ("migrate-policy-onto-existing", lambda t: ["migrate-policy", v1_policy(t), a_file(t, "new.yaml")],
     ["new.yaml", "exists", "--force"]),
    ("migrate-policy-onto-itself", lambda t: ["migrate-policy", v1_policy(t), t / "v1.yaml", "--force"],
     ["v1.yaml", "input"]),
    ("migrate-policy-already-format-2", lambda t: ["migrate-policy", BASELINE, t / "new.yaml"],
     ["baseline.yaml", "already format 2"]),
    ("migrate-policy-missing", lambda t: ["migrate-policy", t / "old.yaml", t / "new.yaml"], ["old.yaml"]),
    ("migrate-policy-onto-a-folder", lambda t: ["migrate-policy", v1_policy(t), a_folder(t), "--force"],
     ["adir", "folder"]),
    ("migrate-policy-binary", lambda t: ["migrate-policy", binary_policy(t), t / "new.yaml"], ["y.yaml"]),
    # verify: nothing there, no manifest, a damaged or foreign one, an input changed since the run
    ("verify-missing", lambda t: ["verify", t / "nowhere"], ["nowhere", "no such"]),
    ("verify-no-manifest", lambda t: ["verify", a_folder(t)], ["adir", "no manifest"]),
    ("verify-damaged-manifest", lambda t: ["verify", evaluated(t, "damaged")], ["manifest.json", "damaged"]),
    ("verify-foreign-manifest", lambda t: ["verify", evaluated(t, "foreign")], ["manifest.json", "not a branchsim"]),
    ("verify-input-changed", lambda t: ["verify", evaluated(t, "input")], ["branches.csv", "changed since the run"]),
]


@pytest.mark.parametrize("make, names", [pytest.param(m, n, id=i) for i, m, n in CASES])
def test_bad_input_is_one_line_exit_2_nothing_left(tmp_path, capsys, make, names):
    argv = make(tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    code, out, err = run(argv, capsys)
    assert_one_error_line(code, err, *names)
    assert out == ""
    assert snapshot(tmp_path) == before


def test_the_table_covers_every_subcommand():
    from branchsim.cli import build_parser
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    covered = {c for c in commands if any(case_id.startswith(c + "-") for case_id, *_ in CASES)}
    assert commands == covered, commands - covered


# -- a second run must not do the work twice ----------------------------------------------------------------
def test_national_resume_while_another_run_holds_the_folder(tmp_path, capsys):
    out = tmp_path / "nat"
    assert main([*NAT, "--out", str(out)]) == 0
    capsys.readouterr()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # what a running `national` holds
        before = snapshot(tmp_path)
        code, _, err = run([*NAT, "--resume", "--out", out], capsys)
        assert_one_error_line(code, err, "another national run", ".lock")
        assert snapshot(tmp_path) == before
    finally:
        os.close(fd)
    os.unlink(out / ".lock")
    code, _, err = run([*NAT, "--resume", "--out", out], capsys)
    assert code == 0, err
    assert not (out / ".lock").exists()


# -- full disks and read-only folders, injected (always) ----------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


FULL_DISK = [
    ("report", lambda t: ["report", *small(t), "--draws", "2", "--out", t / "r"], "to_csv"),
    ("evaluate", lambda t: ["evaluate", "--out", t / "e"], "to_csv"),
    ("sweep", lambda t: ["sweep", *small(t), "--param", SHARE, "--values", "0.2,0.3", "--out", t / "s.csv"],
     "to_csv"),
    ("compare", lambda t: ["compare", *small(t), "--reform", BASELINE,
                           "--out", t / "c"], "to_csv"),
    ("national", lambda t: [*NAT, "--out", t / "n"], "to_parquet"),
]


@pytest.mark.parametrize("make, method", [pytest.param(m, w, id=i) for i, m, w in FULL_DISK])
def test_full_disk_injected(tmp_path, capsys, monkeypatch, make, method):
    argv = make(tmp_path)
    before = snapshot(tmp_path)
    real = getattr(pd.DataFrame, method)

    def half_then_full(self, path, *args, **kwargs):   # a file is begun, then the disk fills
        Path(path).write_bytes(b"partial")
        _enospc()
    monkeypatch.setattr(pd.DataFrame, method, half_then_full)
    code, out, err = run(argv, capsys)
    monkeypatch.setattr(pd.DataFrame, method, real)
    assert_one_error_line(code, err, "No space left on device")
    assert snapshot(tmp_path) == before


def test_national_full_disk_after_a_chunk_keeps_it_for_resume(tmp_path, capsys, monkeypatch):
    out = tmp_path / "n"
    real = pd.DataFrame.to_parquet
    calls = []

    def fill_after_one_chunk(self, path, *args, **kwargs):
        calls.append(path)
        # The disk is full for every chunk but the first. By chunk, not by call count: chunks run
        # on threads, so their writes interleave in any order.
        if "chunk-000000" not in Path(path).name:
            _enospc()
        return real(self, path, *args, **kwargs)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_after_one_chunk)
    code, _, err = run(["national", "--branches", "600", "--chunk-size", "256", "--quiet", "--out", out], capsys)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    assert_one_error_line(code, err, "No space left on device", "1 of 3 chunks", "--resume")
    assert json.loads((out / "manifest.json").read_text())["done"] == [0]
    left = sorted(p.name for p in out.rglob(".*"))
    assert left == [], left                      # no temporary files, no lock
    code, _, err = run(["national", "--branches", "600", "--chunk-size", "256", "--quiet", "--resume",
                        "--out", out], capsys)
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["done"] == [0, 1, 2]


def test_read_only_folder_injected(tmp_path, capsys, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(self))
    for argv in (["evaluate", "--out", tmp_path / "e"], [*NAT, "--out", tmp_path / "n"]):
        before = snapshot(tmp_path)
        monkeypatch.setattr(Path, "mkdir", read_only)
        code, _, err = run(argv, capsys)
        monkeypatch.undo()
        assert_one_error_line(code, err, "Read-only file system")
        assert snapshot(tmp_path) == before


# -- full disks and read-only folders, for real (a small tmpfs; needs permission to mount) ------------------
def _mount(folder: Path, options: str) -> None:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode(errors='replace').strip()})")


@pytest.fixture
def full_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount(disk, "size=64k")
    try:
        with open(disk / "filler", "wb", buffering=0) as f:     # fill it: not one more block fits
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    disk = tmp_path / "ro"
    _mount(disk, "size=2m,ro")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# The report is left to the injected test: it computes for seconds before its first write.
@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m, _ in FULL_DISK if i != "report"])
def test_full_disk_for_real(full_disk, tmp_path, capsys, make):
    argv = [a if not (isinstance(a, Path) and a.parent == tmp_path and a.name in "r e s.csv c n".split())
            else full_disk / a.name for a in make(tmp_path)]
    before = snapshot(tmp_path)
    code, _, err = run(argv, capsys)
    assert_one_error_line(code, err, "No space left on device")
    assert snapshot(tmp_path) == before


def test_read_only_for_real(read_only_disk, tmp_path, capsys):
    out = national_run_folder(tmp_path)             # an earlier run, copied to a read-only disk
    for argv in (["evaluate", "--out", read_only_disk / "e"], [*NAT, "--out", read_only_disk / "n"]):
        before = snapshot(tmp_path)
        code, _, err = run(argv, capsys)
        assert_one_error_line(code, err, "Read-only file system", str(read_only_disk))
        assert snapshot(tmp_path) == before
    subprocess.run(["mount", "-o", "remount,rw", str(read_only_disk)], check=True)
    shutil.copytree(out, read_only_disk / "nat")
    (read_only_disk / "nat" / "manifest.json").write_text(
        json.dumps({**json.loads((out / "manifest.json").read_text()), "done": [0]}))   # one chunk to go
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_disk)], check=True)
    before = snapshot(tmp_path)
    code, _, err = run([*NAT, "--resume", "--out", read_only_disk / "nat"], capsys)
    assert_one_error_line(code, err, "Read-only file system")
    assert snapshot(tmp_path) == before


# -- no traceback reaches stderr (as a subprocess) ----------------------------------------------------------
def _cli(*args, cwd) -> subprocess.CompletedProcess:
    code = "import sys; from branchsim.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={k: v for k, v in os.environ.items() if k != "BRANCHSIM_DEBUG"})


@pytest.mark.parametrize("argv, names", [
    (lambda t: ["policy", "--policy", binary_policy(t)], ["y.yaml"]),
    (lambda t: ["sweep", "--data", EXAMPLES, "--param", SHARE, "--values", "0.2,abc", "--out", "s.csv"],
     ["'abc'"]),
], ids=["binary-policy", "sweep-abc"])
def test_no_traceback_in_a_real_process(tmp_path, argv, names):
    args = argv(tmp_path)
    before = snapshot(tmp_path)
    done = _cli(*args, cwd=tmp_path)
    assert_one_error_line(done.returncode, done.stderr, *names)
    assert snapshot(tmp_path) == before


def test_unreachable_scheduler_is_one_line_and_quick(tmp_path):
    pytest.importorskip("dask.distributed")
    done = _cli(*NAT, "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1", "--out", tmp_path / "n",
                cwd=tmp_path)
    assert_one_error_line(done.returncode, done.stderr, "--scheduler tcp://127.0.0.1:1", "1 s")
    assert list(tmp_path.iterdir()) == []


def test_internal_error_is_one_line_with_a_hint(capsys, monkeypatch):
    import branchsim.cli as cli
    monkeypatch.setattr(cli, "cmd_policy", lambda args: {}["boom"])     # a bug
    monkeypatch.delenv("BRANCHSIM_DEBUG", raising=False)
    code, _, err = run(["policy"], capsys)
    assert code == 1
    assert err.startswith("branchsim: internal error: KeyError") and "BRANCHSIM_DEBUG=1" in err
    assert len(err.splitlines()) == 1
    monkeypatch.setenv("BRANCHSIM_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["policy"])


# -- help and version ---------------------------------------------------------------------------------------
def test_version_and_help_for_every_option(capsys):
    import branchsim
    from branchsim.cli import build_parser
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"branchsim {branchsim.__version__}"
    parser = build_parser()
    missing = []
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.option_strings and not action.help:
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


def test_help_imports_nothing_heavy(tmp_path):
    code = ("import sys\nfrom branchsim.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('pandas', 'numpy', 'scipy', 'numba', 'pyarrow', 'matplotlib') "
            "if m in sys.modules)\nprint('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout, done.stdout[-300:]


def test_national_members_default_to_the_national_ratio(tmp_path, capsys, monkeypatch):
    import yaml
    import branchsim.national as national
    from branchsim.cli import default_members
    scale = yaml.safe_load((EXAMPLES.parent / "national.yaml").read_text(encoding="utf-8"))
    b, m = scale["branches"]["value"], scale["members"]["value"]
    assert default_members(3000) == round(3000 * m / b)
    seen = {}

    def spy(policy, **kwargs):
        seen.update(kwargs)
        raise national.BranchsimError("stop here")
    monkeypatch.setattr(national, "_national_run", spy)
    assert main(["national", "--branches", "3000", "--out", str(tmp_path / "n"), "--quiet"]) == 2
    assert seen["n_branches"] == 3000 and seen["n_members"] == round(3000 * m / b)
    assert main(["national", "--out", str(tmp_path / "n"), "--quiet"]) == 2
    assert seen["n_branches"] == b and seen["n_members"] == m


# -- killed runs ---------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    return int(child.stdout)           # that process has exited


@pytest.mark.parametrize("argv", [
    ["evaluate", "--out", "out"],
    ["compare", "--data", EXAMPLES, "--reform", BASELINE, "--out", "out"],
    ["sweep", "--data", EXAMPLES, "--param", SHARE, "--values", "0.2", "--out", "out"],
], ids=["evaluate", "compare", "sweep"])
def test_staging_of_a_killed_run_is_removed_by_the_next(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    pid = _dead_pid()
    stale = [tmp_path / f".out.tmp-{pid}-0123abcd", tmp_path / f".out.old-{pid}-0123abcd"]
    stale[0].mkdir()
    (stale[0] / "branches.csv").write_text("half")
    stale[1].write_text("half")
    alive = tmp_path / f".out.tmp-{os.getpid()}-0123abcd"      # a live process's staging is left alone
    alive.mkdir()
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and alive.exists()


def test_national_terminated_leaves_no_temporaries(tmp_path):
    import signal
    import time
    out = tmp_path / "n"
    code = "import sys; from branchsim.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "national", "--branches", "4000", "--chunk-size", "256",
                             "--workers", "1", "--quiet", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):                     # wait (up to 2 min) until the run has started writing
            if (out / "manifest.json").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be stopped")
    assert proc.returncode == 130, err
    assert err.startswith("branchsim: interrupted") and len(err.splitlines()) == 1, err
    leftovers = sorted(p.name for p in tmp_path.rglob(".*"))
    assert leftovers == [], leftovers            # no lock, no temporary files
    if out.exists():                             # chunks were finished: they are kept for --resume
        assert "--resume" in err
        done = json.loads((out / "manifest.json").read_text())["done"]
        assert done
        resumed = _cli("national", "--branches", "4000", "--chunk-size", "256", "--quiet", "--resume",
                       "--out", out, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    else:
        assert "nothing was kept" in err


def test_a_gbk_folder_reads_with_encoding_and_the_error_names_the_flag(tmp_path, capsys):
    folder = gbk_folder(tmp_path)
    assert main(["evaluate", "--data", str(folder)]) == 2
    assert "--encoding gbk" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(folder), "--encoding", "gbk"]) == 0
    assert main(["evaluate", "--data", str(data_folder(tmp_path))]) == 0
    gbk, utf8 = capsys.readouterr().out.split("branchsim: evaluated")[1:]
    assert gbk.split("\n", 1)[1] == utf8.split("\n", 1)[1]      # same outcome, whatever the encoding


def test_several_problems_are_still_one_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("schema: branchsim-policy/1\nname: x\nbranch:\n  weak_below: abc\n  foo: 1\n", encoding="utf-8")
    assert main(["policy", "--policy", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"branchsim: error: {p}: ")
    # A format-1 file is migrated first: its weak_below is reported at its format-2 place.
    assert "problems: " in err and "unknown key 'foo'" in err and "low_score.below" in err
