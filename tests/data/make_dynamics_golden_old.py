"""Write tests/data/dynamics_golden_v1.json from the implementation before policy format 2.

Run it with the old code on the path, e.g.::

    git worktree add /tmp/old a54fae5
    python tests/data/make_dynamics_golden_old.py tests/data/dynamics_golden_v1.json   # with OLD=/tmp/old

It imports branchsim from ``$OLD`` (default /tmp/old), simulates two small
baseline histories and writes per-year sums of every column and every value
of a sample of branches and members (star numbers mapped to level ids).
"""
import json
import os
import sys


def main(out):
    sys.path.insert(0, os.environ.get("OLD", "/tmp/old"))
    import pandas as pd
    import branchsim as bs
    from branchsim import dynamics as dy
    assert bs.__file__.startswith(os.environ.get("OLD", "/tmp/old")), bs.__file__

    STARS = {5: "five_star", 4: "four_star", 3: "three_star", 0: "no_star"}

    def pack(frame, id_col, ids):
        out = {"sums": {}, "rows": {}}
        for col in frame.columns:
            if col in ("branch_id", "member_id", "type"):
                continue
            s = frame[col]
            if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
                out["sums"][col] = {str(y): g.value_counts().sort_index().to_dict() for y, g in s.groupby(frame["year"])}
            else:
                out["sums"][col] = {str(y): float(g.astype(float).sum()) for y, g in s.groupby(frame["year"])}
        sample = frame[frame[id_col].isin(ids)]
        out["rows"] = {"columns": [c for c in frame.columns],
                       "data": [[(x.item() if hasattr(x, "item") else x) for x in row] for row in sample.itertuples(index=False)]}
        return out

    doc = {"source": "branchsim at commit a54fae5 (before policy format 2), run by tests/data/make_dynamics_golden_old.py",
           "runs": {}}
    policy = bs.Policy.load()
    strict = policy.update({"branch.weak_below": 60})
    pop = bs.generate(seed=11, n_branches=300)
    h = dy.simulate(pop, strict, years=3, seed=5)
    b, m = h.branches.copy(), h.members.copy()
    for c in ("stars", "true_stars"):
        b[c] = b[c].map(STARS)
    bids = list(pop.branches["branch_id"][::9])
    mids = list(pop.members["member_id"][::97])
    doc["runs"]["strict_noise"] = {"policy": {"branch.designations.weak.criteria.low_score.below": 60},
                                   "generate": {"seed": 11, "n_branches": 300}, "simulate": {"years": 3, "seed": 5},
                                   "branches": pack(b, "branch_id", bids), "members": pack(m, "member_id", mids)}
    pop2 = bs.generate(seed=4, n_branches=300, members=False)
    h2 = dy.simulate(pop2, strict, years=3, seed=2, noise=False)
    b2 = h2.branches.copy()
    for c in ("stars", "true_stars"):
        b2[c] = b2[c].map(STARS)
    doc["runs"]["strict_exact_branches"] = {"policy": {"branch.designations.weak.criteria.low_score.below": 60},
                                            "generate": {"seed": 4, "n_branches": 300, "members": False},
                                            "simulate": {"years": 3, "seed": 2, "noise": False},
                                            "branches": pack(b2, "branch_id", list(pop2.branches["branch_id"][::9]))}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"), ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
