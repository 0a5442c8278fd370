"""branchsim policy --parameters --format text|csv|md [--out FILE]: the parameter table for a paper."""
from __future__ import annotations

import io

import pandas as pd
import pytest

import branchsim as bs
from branchsim.cli import main

import shipped


@pytest.mark.parametrize("name", shipped.POLICIES)
def test_csv_reads_back_as_the_parameter_table(name, capsys):
    assert main(["policy", "--policy", name, "--format", "csv"]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    want = bs.Policy.load(name).parameters()
    assert list(got.columns) == list(want.columns)
    assert got["path"].tolist() == want["path"].tolist()
    assert got["provenance"].tolist() == want["provenance"].tolist()


def test_markdown_is_one_row_a_parameter_with_pipes_escaped(capsys):
    assert main(["policy", "--format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = bs.Policy.load().parameters()
    assert lines[0] == "| " + " | ".join(table.columns) + " |" and lines[1] == "|---|---|---|---|"
    assert len(lines) == len(table) + 2
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[:1] + lines[2:])
    # every row has as many unescaped separators as the header
    assert {line.replace("\\|", "").count("|") for line in lines} == {len(table.columns) + 1}


def test_out_writes_the_table_and_prints_one_line(tmp_path, capsys):
    out = tmp_path / "params.md"
    assert main(["policy", "--format", "md", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    assert out.read_text(encoding="utf-8").startswith("| path |")
    text = tmp_path / "params.txt"
    assert main(["policy", "--parameters", "--out", str(text)]) == 0
    assert "branch.satisfaction_share" in text.read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, words", [
    (["policy", "--out", "{t}/p.md"], ["--parameters"]),                 # nothing to write
    (["policy", "--format", "csv", "--out", "{t}"], ["is a folder", "parameters.csv"]),
    (["policy", "--format", "csv", "--out", "{t}/file.txt/p.csv"], ["is a file"]),
])
def test_bad_out_is_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "file.txt").write_text("x")
    assert main([a.format(t=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (tmp_path / "p.md").exists()
