"""A scheme's generator before any calibration: new type names work, and a scheme without a quality
location of its own is centred on its own cut points (GeneratorParams.for_policy), so the default
population is sensible (not most branches at the floor or weak) and every level and designation has a
truth to score accuracy against."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import branchsim as bs
import shipped

COUNTY = Path(__file__).parent / "data" / "docs_only" / "county.yaml"
SCHEMES = [shipped.path(n) for n in shipped.POLICIES] + [COUNTY]


def _renamed(tmp_path) -> Path:
    """The docs-only county with branch types named as no generator file names them."""
    text = COUNTY.read_text(encoding="utf-8").replace("    village:\n", "    hamlet:\n") \
        .replace("    enterprise:\n", "    workshop:\n")
    path = tmp_path / "renamed.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", SCHEMES + ["renamed"], ids=lambda p: Path(str(p)).stem)
def test_default_population_is_sensible_and_has_a_truth(path, tmp_path):
    policy = bs.Policy.load(_renamed(tmp_path) if path == "renamed" else path)
    if path == "renamed":
        assert set(policy.scheme.branch.types) == {"hamlet", "workshop"}
    pop = bs.generate(policy, seed=3, n_branches=800, members=False)
    b = bs.evaluate(pop, policy).branches
    floor = policy.levels[-1]       # the reference city's published figures put 58% there (864 of 1,500)
    assert (b["rating"] == floor).mean() < 0.65, b["rating"].value_counts()
    assert b["rating"].nunique() >= 2
    for d in policy.scheme.branch.designations:
        assert b[d.id].mean() < 0.2 and f"true_{d.id}" in b
    accuracy = (b["rating"] == b["true_rating"]).mean()
    assert 0.3 < accuracy < 1.0


def test_centring_aims_the_median_branch_between_the_cut_points():
    policy = bs.Policy.load(COUNTY)
    params = bs.GeneratorParams.for_policy(policy)
    assert params.document["branch_quality"]["loc"]["assumption"].startswith("centred")
    pop = bs.generate(policy, seed=0, n_branches=3000, members=False)
    cuts = policy.scheme.branch.rating.cuts
    mid = np.mean([(c.min() + c.max()) / 2 for c in cuts])
    median = float(np.median(bs.evaluate(pop, policy).branches["true_score"]))
    assert abs(median - mid) < 3, (median, mid)          # per-type mid-points differ by at most 1 point here


def test_a_location_of_the_schemes_own_is_kept(tmp_path):
    (tmp_path / "mine.yaml").write_text(COUNTY.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "mine.generator.yaml").write_text(yaml.safe_dump(
        {"schema": "branchsim-generator/1", "branch_quality": {"loc": {"value": 0.61, "assumption": "mine"}}}),
        encoding="utf-8")
    assert bs.GeneratorParams.for_policy(bs.Policy.load(tmp_path / "mine.yaml")).get("branch_quality.loc") == 0.61


def test_the_calibrated_scheme_and_its_reforms_keep_the_calibrated_location():
    base = bs.GeneratorParams.load()
    reform = bs.Policy.load().update({"branch.satisfaction_share": 0.3})
    assert bs.GeneratorParams.for_policy(reform).get("branch_quality.loc") == base.get("branch_quality.loc")
