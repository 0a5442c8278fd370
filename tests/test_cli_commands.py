"""The command line on good input, with every shipped scheme: levels from the scheme, reforms by file,
the reformed policy named after what changed, migrate-policy and check-policy."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

import branchsim as bs
from branchsim.cli import main
import shipped

EXAMPLES = bs.data_path("examples")


def run(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("migrate-policy", "check-policy", "compare", "report", "sweep"):
        assert command in text


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_policy_summary(capsys, name):
    out = run(capsys, "policy", "--policy", shipped.path(name))
    p = shipped.load(name)
    assert f"Policy {name!r}" in out and " > ".join(p.levels) in out
    assert f"{name}.tests.yaml (branchsim check-policy)" in out


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_run_with_every_shipped_policy(capsys, name):
    out = run(capsys, "run", "--policy", shipped.path(name), "--seed", "1")
    p = shipped.load(name)
    assert f"policy {name!r}" in out and "accuracy:" in out
    for level in p.levels:
        assert level in out


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_evaluate_with_every_shipped_policy(capsys, tmp_path, name):
    out = run(capsys, "evaluate", "--policy", shipped.path(name), "--out", tmp_path / "e")
    p = shipped.load(name)
    b = pd.read_csv(tmp_path / "e" / "branches.csv")
    assert set(b["rating"]) <= set(p.levels)
    # The example tables hold the baseline's facts; another scheme is evaluated on its own city.
    assert ("the example tables in" in out) == (name == "baseline")
    assert ("default city generated with seed 0" in out) == (name != "baseline")
    assert (tmp_path / "e" / "members.csv").exists() == p.has_members


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_sweep_with_every_shipped_policy(capsys, tmp_path, name):
    out = run(capsys, "sweep", "--policy", shipped.path(name), "--param", "branch.satisfaction_share",
              "--values", "0.1,0.3", "--out", tmp_path / "s.csv")
    assert "swept branch.satisfaction_share" in out
    assert len(pd.read_csv(tmp_path / "s.csv")) >= 2


def test_compare_with_a_reform_file(capsys, tmp_path):
    out = run(capsys, "compare", "--reform", shipped.REFORM, "--data", EXAMPLES, "--out", tmp_path / "c")
    assert "compared 'baseline+kmeans_by_type'" in out and "with policy 'baseline'" in out
    files = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert files == sorted(["level_counts.csv", "transitions.csv", "movers.csv", "designations.csv",
                            "new_consequences.csv", "policy_diff.csv", "manifest.json"])
    counts = pd.read_csv(tmp_path / "c" / "level_counts.csv")
    policy = bs.Policy.load()
    assert counts["level"].tolist() == policy.levels + [d.id for d in policy.scheme.branch.designations]
    assert (counts["change"] == counts["reform"] - counts["baseline"]).all()
    assert counts.iloc[:len(policy.levels)][["baseline", "reform"]].sum().tolist() == [12, 12]
    diff = pd.read_csv(tmp_path / "c" / "policy_diff.csv")
    assert set(diff["path"]) == {"branch.rating.design", "branch.rating.peer_groups"}
    tr = pd.read_csv(tmp_path / "c" / "transitions.csv")
    assert tr.loc[tr["type"] == "all", "branches"].sum() == 12
    assert len(tr[tr["type"] == "all"]) == len(policy.levels) ** 2


def test_a_whole_policy_file_as_reform_is_named_after_its_changes(capsys, tmp_path):
    doc = yaml.safe_load(shipped.path("baseline").read_text(encoding="utf-8"))
    doc["branch"]["rating"]["cuts"]["five_star"]["value"] = 92
    path = tmp_path / "stricter.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    out = run(capsys, "compare", "--reform", path, "--data", EXAMPLES, "--out", tmp_path / "c")
    assert "compared 'baseline[branch.rating.cuts.five_star=92]'" in out
    # The same file unchanged compares to itself: nothing moves, and the name says so.
    out = run(capsys, "compare", "--reform", shipped.path("baseline"), "--data", EXAMPLES, "--out", tmp_path / "d")
    assert "compared 'baseline[unchanged]'" in out
    assert pd.read_csv(tmp_path / "d" / "movers.csv").empty


def test_report_receives_the_reformed_policy(monkeypatch, capsys, tmp_path):
    import branchsim.report as report
    seen = {}

    def fake(out, **kwargs):
        seen.update(kwargs)
        (tmp_path / "r").mkdir()
        return tmp_path / "r" / "report.html"
    monkeypatch.setattr(report, "write_report", fake)
    run(capsys, "report", "--reform", shipped.REFORM, "--out", tmp_path / "r")
    # the file is read (and checked) by the command, and handed on by its path so the report names it
    assert str(seen["reform"]) == str(shipped.REFORM)
    from branchsim.report import _reform_arg
    reformed, source = _reform_arg(seen["reform"], bs.Policy.load())
    assert reformed.name == "baseline+kmeans_by_type" and source == f"file {shipped.REFORM}"
    assert reformed.scheme.branch.rating.design == "kmeans"


def test_check_policy_on_every_shipped_scheme(capsys):
    for path in map(shipped.path, shipped.POLICIES):
        assert run(capsys, "check-policy", path).strip().endswith("all pass")


def test_check_policy_with_another_tests_file(capsys, tmp_path):
    shutil.copy(shipped.path("baseline"), tmp_path / "mine.yaml")
    out = run(capsys, "check-policy", tmp_path / "mine.yaml", "--tests",
              bs.data_path("policies", "baseline.tests.yaml"))
    assert "all pass" in out


@pytest.mark.parametrize("command", [["run"], ["evaluate"], ["policy"], ["explain", "--branch", "B000001", "--seed", "0"],
                                     ["sweep", "--param", "branch.satisfaction_share", "--values", "0.3,0.4"]])
def test_apply_runs_a_command_under_a_reform(capsys, tmp_path, command):
    # --apply FILE: every command works on the policy with the reform file applied (here the k-means
    # reform), so a reform runs through every analysis from the command line.
    args = list(command) + (["--out", tmp_path / "s.csv"] if command[0] == "sweep" else [])
    out = run(capsys, *args, "--apply", shipped.REFORM)
    assert "baseline+kmeans_by_type" in out or "kmeans" in out


def test_apply_with_a_file_that_is_no_reform_is_one_line(capsys, tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("schema: something/1\n", encoding="utf-8")
    assert main(["run", "--apply", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--apply takes a reform file" in err


def test_calibrate_reads_the_users_targets_and_writes_the_users_file(capsys, tmp_path):
    shutil.copy(shipped.path("member_points"), tmp_path / "mine.yaml")
    targets = tmp_path / "figures.yaml"
    targets.write_text(yaml.safe_dump({"schema": "branchsim-targets/1", "source": "my city",
                                       "scale": {"branches": {"value": 300, "assumption": "test"}},
                                       "counts": {"weak": {"value": 12, "assumption": "test"}}}), encoding="utf-8")
    out_file = tmp_path / "out" / "mine.generator.yaml"
    out_file.parent.mkdir()
    before = {p: p.read_bytes() for p in bs.data_path().rglob("*") if p.is_file()}
    out = run(capsys, "calibrate", "--policy", tmp_path / "mine.yaml", "--targets", targets, "--out", out_file,
              "--seeds", 2, "--maxiter", 8)
    assert "weak" in out and "fitted: branch_quality.loc = " in out and f"written to {out_file}" in out
    written = bs.GeneratorParams.load(out_file)
    fitted = float(out.split("branch_quality.loc = ")[1].split()[0])
    assert written.get("branch_quality.loc") == pytest.approx(fitted, rel=1e-5)
    assert {p: p.read_bytes() for p in bs.data_path().rglob("*") if p.is_file()} == before
