"""Run manifests (branchsim.manifest) and ``branchsim verify``: every output records what produced it, and a
re-run from the manifest makes the same files, byte for byte; an edited output, a changed input or a changed
environment is reported."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import branchsim as bs
import shipped
from branchsim.cli import main
from branchsim.errors import BranchsimError
from branchsim.manifest import MANIFEST, read_manifest, sha256_doc, verify
from branchsim.report import write_report

EXAMPLES = bs.data_path("examples")
SHARE = "branch.satisfaction_share"


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def data(tmp_path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "data"))


# -- round trips from the command line ---------------------------------------------------------------------
@pytest.mark.parametrize("argv, output", [
    (["report", "--data", "{data}", "--draws", "2", "--out", "{t}/r"], "r"),
    (["report", "--policy", "star_quota", "--draws", "2", "--out", "{t}/r"], "r"),
    (["evaluate", "--data", "{data}", "--out", "{t}/e"], "e"),
    (["compare", "--data", "{data}", "--reform", str(shipped.REFORM), "--out", "{t}/c"], "c"),
    (["sweep", "--param", SHARE, "--values", "0.3,0.5", "--data", "{data}", "--out", "{t}/s.csv"], "s.csv"),
    (["sweep", "--exact", SHARE, "--data", "{data}", "--out", "{t}/x.csv"], "x.csv"),
    (["national", "--branches", "600", "--chunk-size", "256", "--quiet", "--out", "{t}/n"], "n"),
    (["compare-designs", "--design", f"km={shipped.REFORM}", "--branches", "200", "--draws", "2", "--out",
      "{t}/d.csv"], "d.csv"),
], ids=["report", "report-star-quota", "evaluate", "compare", "sweep", "exact-sweep", "national", "designs"])
def test_verify_reports_identical_after_a_cli_run(tmp_path, data, capsys, argv, output):
    argv = [a.format(t=tmp_path, data=data) for a in argv]
    assert main(argv) == 0
    capsys.readouterr()
    m = read_manifest(tmp_path / output)
    assert m["command_line"]["argv"] == ["branchsim", *argv]
    recorded = m["outputs"]
    assert recorded and all(sha(tmp_path / output / name if (tmp_path / output).is_dir() else tmp_path / output)
                            == h for name, h in recorded.items())
    code, text = cli(capsys, "verify", tmp_path / output)
    assert code == 0, text
    assert "identical" in text and "NOT" not in text


def test_an_edited_output_and_a_rerun_that_differs_are_reported(tmp_path, data, capsys):
    out = tmp_path / "e"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 0
    with open(out / "members.csv", "a", encoding="utf-8") as f:
        f.write("x\n")
    code, text = cli(capsys, "verify", out)
    assert code == 1 and "members.csv: changed on disk" in text and "NOT identical: 1 of 2" in text
    # a manifest whose recorded hash is not what the command makes: the re-run "differs"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 0
    doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    doc["outputs"]["branches.csv"] = "0" * 64
    (out / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    v = verify(out)
    assert not v.identical
    assert v.files.set_index("file").loc["branches.csv", "status"] == "differs"
    assert v.files.set_index("file").loc["members.csv", "status"] == "identical"


def test_a_changed_input_is_refused_before_rerunning(tmp_path, data, capsys):
    out = tmp_path / "s.csv"
    policy = Path(shutil.copy(bs.data_path("policies", "baseline.yaml"), tmp_path / "p.yaml"))
    assert main(["sweep", "--policy", str(policy), "--param", SHARE, "--values", "0.4", "--data", str(data),
                 "--out", str(out)]) == 0
    policy.write_text(policy.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(BranchsimError, match="p.yaml has changed since the run"):
        verify(out)


def test_a_different_environment_is_named(tmp_path, data):
    out = tmp_path / "e"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 0
    doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    doc["versions"]["numpy"] = "0.0.1"
    (out / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    v = verify(out)
    assert v.identical
    assert any(line.startswith("numpy 0.0.1 -> ") for line in v.environment)


# -- what a manifest records -------------------------------------------------------------------------------
def test_the_manifest_records_policy_population_versions_and_files(tmp_path, data):
    out = tmp_path / "e"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 0
    m = read_manifest(out)
    p = bs.Policy.load()
    assert m["policy"]["name"] == p.name and m["policy"]["sha256"] == sha256_doc(p.to_dict())
    assert bs.Policy(m["policy"]["document"]).to_dict() == p.to_dict()        # the rules travel with it
    assert m["policy"]["file_sha256"] == sha(bs.data_path("policies", "baseline.yaml"))
    files = {Path(f["path"]).name: f["sha256"] for f in m["population"]["files"]}
    assert files == {name: sha(data / name) for name in files} and "branches.csv" in files
    assert {"numpy", "pandas", "scipy", "SALib", "numba", "python"} <= set(m["versions"])
    assert all(m["versions"][k] for k in ("numpy", "pandas", "scipy", "SALib", "numba"))
    assert m["branchsim"] == bs.__version__ and m["platform"]["machine"]
    assert set(m["outputs"]) == {"branches.csv", "members.csv"}


@pytest.mark.parametrize("name", shipped.SCHEMES)
def test_python_objects_carry_their_manifest(name):
    policy = shipped.load(name)
    pop = bs.generate(policy, seed=3, n_branches=150, members=False)
    r = bs.evaluate(pop, policy).manifest
    assert r["command"] == "evaluate" and r["policy"]["sha256"] == sha256_doc(policy.to_dict())
    assert r["policy"]["name"] == policy.name and r["policy"]["document"] == json.loads(json.dumps(
        policy.to_dict(), ensure_ascii=False, default=str))
    assert r["population"]["source"] == "generated" and r["population"]["seed"] == "3"
    assert r["population"]["branches"] == 150 and "generator" in r["population"]
    m = bs.morris(pop, policy, trajectories=2, progress=False).attrs["manifest"]
    assert m["command"] == "morris" and m["seeds"] == {"seed": 0} and m["arguments"]["trajectories"] == 2
    assert "document" not in m["policy"] and "generator" not in m["population"]     # light: hashes only
    assert m["population"]["generator_sha256"] == r["population"]["generator_sha256"]


def test_sweep_sobol_and_exact_sweep_record_their_arguments():
    policy = bs.Policy.load()
    pop = bs.generate(policy, seed=1, n_branches=120, members=False)
    f = bs.sweep(pop, policy, {SHARE: [0.3, 0.4]}, progress=False)
    assert f.attrs["manifest"]["arguments"]["grid"] == {SHARE: [0.3, 0.4]}
    assert f.attrs["manifest"]["population"]["seed"] == "1"
    s = bs.sobol(pop, policy, n=8, seed=4, progress=False)
    assert s.manifest["command"] == "sobol" and s.manifest["seeds"] == {"seed": 4}
    e = bs.exact_sweep(pop, policy, SHARE)
    assert e.attrs["manifest"]["arguments"]["path"] == SHARE


# -- the report ----------------------------------------------------------------------------------------------
def test_the_report_shows_its_manifest_and_a_python_report_verifies(tmp_path, data):
    path = write_report(tmp_path / "r", policy=shipped.load("member_points"), data=None, seed=2, draws=2)
    html = path.read_text(encoding="utf-8")
    m = read_manifest(path.parent)
    assert "id='manifest'" in html and m["policy"]["sha256"] in html and m["population"]["generator_sha256"] in html
    assert m["command_line"] is None and m["command"] == "write_report" and m["arguments"]["seed"] == 2
    assert verify(path.parent).identical            # rebuilt from the policy document in the manifest


def test_a_report_of_a_population_object_names_why_it_cannot_rerun(tmp_path):
    pop = bs.generate(seed=0, n_branches=60, members=False)
    path = write_report(tmp_path / "r", data=pop, draws=2)
    with pytest.raises(BranchsimError, match="passed as an object"):
        verify(path.parent)


def test_the_command_line_shown_names_the_output_as_out(tmp_path, data, capsys):
    assert main(["report", "--data", str(data), "--draws", "2", "--out", str(tmp_path / "a")]) == 0
    assert main(["report", "--data", str(data), "--draws", "2", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a, b = ((tmp_path / x / "report.html").read_bytes() for x in "ab")
    assert a == b and b"--out OUT" in a


def test_an_unfinished_national_run_is_not_verified(tmp_path, capsys):
    out = tmp_path / "n"
    (out).mkdir()
    (out / MANIFEST).write_text(json.dumps({"settings": {}, "chunks": 3, "done": [0]}), encoding="utf-8")
    code, text = cli(capsys, "verify", out)
    assert code == 2 and "not finished (1 of 3 chunks)" in text


# -- the figures' wording: an option, recorded ------------------------------------------------------------
def test_report_labels_are_an_option_recorded_in_the_manifest(tmp_path):
    import branchsim.plot as bp
    p = shipped.load("baseline")
    top_zh = p.scheme.branch.levels.labels[0]
    pages = {}
    for labels in ("en", "zh"):
        path = write_report(tmp_path / labels, policy=p, data=EXAMPLES, draws=2, labels=labels)
        assert read_manifest(path.parent)["arguments"]["labels"] == labels
        pages[labels] = path.read_bytes()
    assert pages["en"] != pages["zh"]                    # the figures are drawn in another wording
    assert bp.use_cjk is False                           # the tests' own setting (conftest) is restored
    with bp.use_labels("zh"):
        assert bp.label(p.levels[0], p).startswith(top_zh)
    assert bp.label(p.levels[0], p) == p.scheme.branch.levels.en[0]
    with pytest.raises(BranchsimError, match="labels must be one of 'en', 'zh', 'auto'"):
        write_report(tmp_path / "x", data=EXAMPLES, draws=2, labels="fr")
    assert not (tmp_path / "x").exists()


def test_a_national_run_from_python_verifies(tmp_path):
    p = shipped.load("star_quota")
    params = bs.GeneratorParams.for_policy(p).with_values({"measurement.indicator_noise": 0.2})
    res = bs.national_run(p, n_branches=700, chunk_size=256, seed=11, out_dir=tmp_path / "n", params=params,
                          progress=False)
    m = read_manifest(tmp_path / "n")
    assert m["command_line"] is None and m["arguments"]["params"] == params.document
    assert m["policy"]["sha256"] == sha256_doc(p.to_dict()) and len(m["outputs"]) >= 6
    assert verify(tmp_path / "n").identical
    assert res.summary()


def test_compare_fragility_and_measurement_mc_carry_their_manifest():
    policy = shipped.load("baseline")
    pop = bs.generate(policy, seed=2, n_branches=150, members=False)
    c = bs.compare(pop, policy, shipped.REFORM)
    assert c.manifest["policy"]["name"] == policy.name
    assert c.manifest["reform"]["sha256"] == sha256_doc(policy.update(shipped.REFORM).to_dict())
    assert c.manifest["reform"]["file"] == str(shipped.REFORM)
    f = bs.fragility(pop, policy, 2.0)
    assert f.manifest["command"] == "fragility" and f.manifest["arguments"]["delta"] == 2.0
    m = bs.measurement_mc(pop, policy, draws=3, seed=9, progress=False)
    assert m.manifest["seeds"] == {"seed": 9} and m.manifest["population"]["seed"] == "2"


def test_cities_are_recorded_and_inner_calls_record_nothing(monkeypatch):
    import branchsim.manifest as man
    p = shipped.load("baseline")
    cities = bs.plausible_cities(p, {"weak": 5}, n=3, scale=300, seeds=range(2), refine=1, tol=2)
    calls = []
    real = man.build
    monkeypatch.setattr(man, "build", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    frame = bs.fragility(None, p, cities=cities)
    assert calls == ["fragility"]                        # one manifest, not one per city
    pop = frame.attrs["manifest"]["population"]
    assert pop["source"] == "plausible cities" and pop["cities"] == 3 and pop["branches"] == 300
    assert len(pop["params_sha256"]) == 64


def test_an_attached_manifest_is_not_copied_with_every_derived_frame():
    pop = bs.generate(seed=1, n_branches=100, members=False)
    f = bs.sweep(pop, bs.Policy.load(), {SHARE: [0.3, 0.4]}, progress=False)
    g = f[f.columns[:2]].copy()
    assert g.attrs["manifest"] is f.attrs["manifest"]


def test_file_outputs_and_their_manifest_are_written_together(tmp_path, data, capsys):
    out = tmp_path / "s.csv"
    (tmp_path / "s.csv.manifest.json").mkdir()              # the manifest cannot be written
    code, text = cli(capsys, "sweep", "--param", SHARE, "--values", "0.4", "--data", data, "--out", out)
    assert code == 2 and "cannot write its manifest" in text and len(text.strip().splitlines()) == 1
    assert not out.exists()                                 # nothing half-written
    for name in ("manifest.json", "x.manifest.json"):
        code, text = cli(capsys, "sweep", "--param", SHARE, "--values", "0.4", "--out", tmp_path / name)
        assert code == 2 and "a name for manifests" in text


def test_a_shipped_input_is_found_in_another_install(tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["evaluate", "--out", str(out)]) == 0           # the default policy and example tables
    capsys.readouterr()
    doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert doc["policy"]["shipped"] == "policies/baseline.yaml"
    assert {f["shipped"] for f in doc["population"]["files"]} >= {"examples/branches.csv"}
    moved = json.dumps(doc).replace(str(bs.data_path()), "/elsewhere/branchsim/data")
    (out / MANIFEST).write_text(moved, encoding="utf-8")
    assert verify(out).identical                               # found by their shipped names
    html = write_report(tmp_path / "r", draws=2).read_text(encoding="utf-8")
    shown = html[html.index("id='manifest'"):]
    assert "policies/baseline.yaml (shipped with branchsim)" in shown and str(bs.data_path()) not in shown


def test_an_apply_file_changed_since_the_run_is_caught(tmp_path, capsys):
    reform = Path(shutil.copy(shipped.REFORM, tmp_path / "R.yaml"))
    out = tmp_path / "r"
    assert main(["report", "--apply", str(reform), "--data", str(EXAMPLES), "--draws", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    lines = reform.read_text(encoding="utf-8").splitlines()
    reform.write_text("\n".join(line for line in lines if "peer_groups" not in line) + "\n", encoding="utf-8")
    with pytest.raises(BranchsimError, match="another policy than the run"):
        verify(out)
