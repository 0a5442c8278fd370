"""Policy.load and --policy by the bare name of a shipped policy."""
from __future__ import annotations

import pytest

import branchsim as bs
from branchsim.cli import main
from branchsim.errors import PolicyError
from branchsim.policy import shipped_policies

from shipped import POLICIES as SHIPPED


def test_shipped_names_are_the_policy_files():
    files = {p.name[:-5] for p in bs.data_path("policies").glob("*.yaml") if p.name.count(".") == 1}
    assert set(shipped_policies()) == files and len(files) >= 3


@pytest.mark.parametrize("name", SHIPPED)
def test_a_bare_name_loads_the_shipped_policy(name):
    by_name = bs.Policy.load(name)
    by_path = bs.Policy.load(bs.data_path("policies", f"{name}.yaml"))
    assert by_name.to_dict() == by_path.to_dict()


def test_a_file_of_that_name_in_the_working_folder_wins(tmp_path, monkeypatch):
    doc = bs.Policy.load().to_dict()
    doc["name"] = "mine"
    monkeypatch.chdir(tmp_path)
    bs.Policy(doc).save(tmp_path / "star_quota")
    assert bs.Policy.load("star_quota").name == "mine"


def test_an_unknown_bare_name_lists_the_shipped_ones():
    with pytest.raises(PolicyError) as e:
        bs.Policy.load("no_such_scheme")
    msg = str(e.value)
    assert "no_such_scheme" in msg and all(n in msg for n in shipped_policies())
    with pytest.raises(PolicyError, match="cannot read policy file"):     # a path is still a path
        bs.Policy.load("no_such_scheme.yaml")


def test_cli_takes_a_bare_name(capsys):
    assert main(["policy", "--policy", SHIPPED[-1]]) == 0
    assert main(["policy", "--policy", "no_such_scheme"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_scheme" in err[0] and "Traceback" not in err[0]
