"""The outputs of a national run: per-unit frames (integer codes), their codebook, integer aggregates.

Frames hold one row per branch and per member with the scheme's columns (a
column per designation and consequence); levels, grades, types, classes and
organisation levels are stored as integer codes that ``codebook.json``
names. Summaries are integer counts that add up exactly across chunks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .model import BlockGenerator, GeneratorParams
from .policy import Policy

__all__ = ["frames", "codebook", "summary", "empty"]


def frames(gen: BlockGenerator, parts: list[dict], member_start: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Branch and member outcome frames of some scored blocks (integer codes: see :func:`codebook`)."""
    scheme = gen.scheme
    bs = scheme.branch

    def cat(get):
        return np.concatenate([get(p) for p in parts])

    t = cat(lambda p: p["raw"]["t"])
    b = {"branch_index": np.arange(parts[0]["first"], parts[0]["first"] + len(t), dtype=np.int64),
         "type": t.astype(np.int8), "n_members": cat(lambda p: p["raw"]["size"]).astype(np.int32)}
    if scheme.structure is not None:
        b["level"] = cat(lambda p: p["raw"]["level"]).astype(np.int8)
        b["required_level"] = cat(lambda p: p["required"]).astype(np.int8)
    b["score"] = cat(lambda p: p["out"]["score"])
    b["rating"] = cat(lambda p: p["out"]["level"]).astype(np.int8)
    b.update({d.id: cat(lambda p, d=d: p["out"]["designations"][d.id]) for d in bs.designations})
    b.update({f"veto_{v}": cat(lambda p, j=j: p["out"]["vetoes"][:, j]) for j, v in enumerate(bs.vetoes.ids)})
    b.update({c.id: cat(lambda p, c=c: p["out"]["consequences"][c.id]) for c in scheme.consequences_of("branch")})
    b["true_quality"] = cat(lambda p: p["raw"]["q"])
    b["true_score"] = cat(lambda p: p["true"]["score"])
    b["true_rating"] = cat(lambda p: p["true"]["level"]).astype(np.int8)
    b.update({f"true_{d.id}": cat(lambda p, d=d: p["true"]["designations"][d.id]) for d in bs.designations})
    branches = pd.DataFrame(b)
    if scheme.member is None:
        return branches, pd.DataFrame({"member_index": np.zeros(0, dtype=np.int64)})
    owner = cat(lambda p: p["members"]["owner"] + p["first"]).astype(np.int64)
    m = {"member_index": np.arange(member_start, member_start + len(owner), dtype=np.int64),
         "branch_index": owner, "category": cat(lambda p: p["members"]["cat"]).astype(np.int8),
         "true_quality": cat(lambda p: p["members"]["mq"]), "appraisal": cat(lambda p: p["members"]["appraisal"]),
         "record": np.round(cat(lambda p: p["members"]["record"]), 9), "annual": cat(lambda p: p["members"]["annual"]),
         "grade": cat(lambda p: p["members"]["grade"]).astype(np.int8)}
    m.update({c.id: cat(lambda p, c=c: p["members"]["consequences"][c.id]) for c in scheme.consequences_of("member")})
    return branches, pd.DataFrame(m)


def codebook(policy: Policy, params: GeneratorParams | None = None) -> dict:
    """What the integer codes of the Parquet outputs stand for (written as ``codebook.json``).

    >>> import branchsim as bs
    >>> cb = codebook(bs.Policy.load())
    >>> cb["columns"]["rating"]["0"] == bs.Policy.load().levels[-1]
    True
    """
    from .measurement import categories
    s = policy.scheme
    params = GeneratorParams.for_policy(policy) if params is None else params
    levels = {str(i): lv for i, lv in enumerate(s.branch.levels.worst_first)}
    cols = {"type": {str(i): t for i, t in enumerate(s.branch.types)}, "rating": levels, "true_rating": levels}
    if s.structure is not None:
        cols["level"] = cols["required_level"] = {str(i): lv for i, lv in enumerate(s.structure.ids)}
    if s.member is not None:
        names, _ = categories(params, s)
        cols["category"] = {str(i): c for i, c in enumerate(names)}
        cols["grade"] = {"-1": None, **{str(i): g for i, g in enumerate(s.member.grades.worst_first)}}
    return {"schema": "branchsim-national-codebook/1", "policy": policy.name,
            "note": "integer codes of the Parquet columns; level and grade codes count from the floor (0); "
                    "grade -1: an exempt member (not graded)", "columns": cols}


def summary(scheme, branches: pd.DataFrame, members: pd.DataFrame) -> dict:
    """Integer aggregates of one chunk (exact to add up across chunks)."""
    bs = scheme.branch
    L, T = bs.levels.n, len(bs.types)
    level, true = branches["rating"].to_numpy().astype(np.intp), branches["true_rating"].to_numpy().astype(np.intp)
    out = {"branches": len(branches), "members": len(members),
           "levels": np.bincount(level, minlength=L).tolist(), "true_levels": np.bincount(true, minlength=L).tolist(),
           "designations": [int(branches[d.id].sum()) for d in bs.designations],
           "true_designations": [int(branches[f"true_{d.id}"].sum()) for d in bs.designations],
           "correct": int((level == true).sum()),
           "levels_by_type": np.bincount(branches["type"].to_numpy().astype(np.intp) * L + level,
                                         minlength=T * L).tolist()}
    cons = []
    for c in scheme.consequences:
        frame = branches if c.unit == "branch" else members
        cons.append(int(frame[c.id].sum()) if c.id in frame else 0)
    out["consequences"] = cons
    if scheme.structure is not None:
        up = branches["required_level"] > branches["level"]
        out["upgrades"] = np.bincount(branches["required_level"][up].to_numpy().astype(np.intp),
                                      minlength=len(scheme.structure.ids)).tolist()
    if scheme.member is not None:
        g = members["grade"].to_numpy().astype(np.intp)
        out["grades"] = np.bincount(g[g >= 0], minlength=scheme.member.grades.n).tolist()
        out["exempt"] = int((g < 0).sum())
    return out


def empty(scheme) -> dict:
    """The totals of no chunk (same keys and shapes as :func:`summary`)."""
    bs = scheme.branch
    out = {"branches": 0, "members": 0, "levels": [0] * bs.levels.n, "true_levels": [0] * bs.levels.n,
           "designations": [0] * len(bs.designations), "true_designations": [0] * len(bs.designations),
           "correct": 0, "levels_by_type": [0] * (len(bs.types) * bs.levels.n),
           "consequences": [0] * len(scheme.consequences)}
    if scheme.structure is not None:
        out["upgrades"] = [0] * len(scheme.structure.ids)
    if scheme.member is not None:
        out["grades"] = [0] * scheme.member.grades.n
        out["exempt"] = 0
    return out
