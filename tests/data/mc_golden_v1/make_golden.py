"""Write the golden tallies of this folder with the measurement Monte Carlo before policy format 2.

Run it in its own process with the old code first on the path (see README.md)::

    git worktree add /tmp/old_mc a54fae5
    PYTHONPATH=/tmp/old_mc python tests/data/mc_golden_v1/make_golden.py OUT_FOLDER   # from the repository root

Importing this file does nothing (the test suite collects it for doctests).
"""
import sys


def main(out: str) -> None:
    import pandas as pd
    import branchsim as bs
    stars = ["five_star", "four_star", "three_star", "no_star"]
    star_of = {0: "no_star", 3: "three_star", 4: "four_star", 5: "five_star"}
    pop = bs.generate(seed=3, n_branches=300, members=False)
    mc = bs.measurement_mc(pop, draws=12, seed=7, survey_sizes=[10, 60], progress=False, batch=5)
    rows = []
    for s in mc.survey_sizes:
        p = mc.probabilities(s)
        f = pd.DataFrame({"survey_size": s, "branch_id": p["branch_id"],
                          "true_rating": [star_of[v] for v in p["true_stars"]],
                          "true_weak": p["true_weak"].astype(int)})
        for lv in stars:
            f[lv] = (p[f"p_{lv}"] * 12).round().astype(int)
        f["weak"] = (p["p_weak"] * 12).round().astype(int)
        rows.append(f)
    pd.concat(rows).to_csv(f"{out}/branches.csv", index=False)
    mc.counts.drop(columns=["accuracy"]).to_csv(f"{out}/counts.csv", index=False)
    for mode, seed, draws in (("appraisal", 6, 6), ("monthly", 4, 4)):
        popm = bs.generate(seed=seed, n_branches=40)
        m = bs.measurement_mc(popm, draws=draws, seed=2, members=mode, progress=False, batch=3)
        g = m.member_probabilities
        f = pd.DataFrame({"member_id": g["member_id"]})
        for name in ["excellent", "qualified", "basic", "warning", "unqualified"]:
            f[name] = (g[f"p_{name}"] * draws).round().astype(int)
        f.to_csv(f"{out}/members_{mode}.csv", index=False)
        p = m.star_probabilities
        f = pd.DataFrame({"branch_id": p["branch_id"]})
        for lv in stars:
            f[lv] = (p[f"p_{lv}"] * draws).round().astype(int)
        f.to_csv(f"{out}/branches_{mode}.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1])
