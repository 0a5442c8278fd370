"""No scheme-specific name left in branchsim/ (issue 11): the baseline's indicator ids and its level and
grade ids never appear quoted in the package's code, outside doctest input lines (``>>>`` / ``...``).

Everything a scheme names lives in data/; the code reads it from ``policy.scheme``. The ids are read
from data/policies/baseline.yaml, so the test follows the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def baseline_ids() -> set[str]:
    doc = yaml.safe_load((ROOT / "data" / "policies" / "baseline.yaml").read_text(encoding="utf-8"))
    ids = set(doc["branch"]["indicators"]) | set(doc["member"]["indicators"])
    ids |= set(doc["branch"]["levels"]) | set(doc["member"]["grades"])
    return ids


def quoted_hits(ids: set[str]) -> list[str]:
    """``file:line: id`` for each quoted id outside doctest input lines."""
    pattern = re.compile(r"""(['"])(%s)\1""" % "|".join(sorted(map(re.escape, ids), key=len, reverse=True)))
    hits = []
    for path in sorted((ROOT / "branchsim").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith((">>>", "...")):
                continue
            for m in pattern.finditer(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(2)}")
    return hits


def test_the_ids_are_read_from_the_baseline():
    ids = baseline_ids()
    assert {"five_star", "no_star", "excellent", "unqualified", "committee_meetings"} <= ids
    assert len(ids) > 80


def test_the_search_finds_a_quoted_id(tmp_path):
    # Guard: the pattern sees both quote styles and skips doctest input lines only.
    pattern = re.compile(r"""(['"])(five_star)\1""")
    assert pattern.search("x = 'five_star'") and pattern.search('x = "five_star"')
    assert not pattern.search("x = five_star_count")


def test_no_baseline_name_in_the_package():
    hits = quoted_hits(baseline_ids())
    assert hits == [], f"{len(hits)} quoted baseline names in branchsim/:\n" + "\n".join(hits[:60])
