"""The outcome of one evaluation (:class:`Result`) and the scheme's published targets.

A scheme's published figures live in its targets file (``NAME.targets.yaml``
beside the policy, ``docs/policy-format.md``, "Targets"); they are shown
beside a population only when it is of the published scale.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, cast

import html
import os

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .policy import Policy
    from .scheme import MemberScheme, Scheme
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["Result", "targets", "published_counts", "at_published_scale", "PUBLISHED_TOLERANCE"]

#: The published counts are shown beside a population only when its number of branches is within
#: this share of the published city's. Counts of a city of another size, or of a researcher's small
#: table, are not comparable with them, scaled or not.
PUBLISHED_TOLERANCE = 0.10


def targets(policy: PolicyLike) -> dict:
    """The policy's published targets: ``{"counts": {id: value}, "quotes": {id: text}, "scale": n or None}``.

    Empty counts when the policy has no targets file.

    >>> import branchsim as bs
    >>> t = targets(bs.Policy.load())
    >>> t["scale"], sum(t["counts"].values()) > 0
    (1500.0, True)
    """
    if policy is None or isinstance(policy, (str, os.PathLike)):   # a policy file's path (None: the baseline)
        from .policy import as_policy
        policy = as_policy(policy)
    path = policy.companion("targets") if hasattr(policy, "companion") else None
    if path is None:
        return {"counts": {}, "quotes": {}, "scale": None, "source": None}
    from .policy import read_yaml
    from .errors import PolicyError
    doc = read_yaml(path, what="targets file")
    if not isinstance(doc, dict):
        raise PolicyError("a targets file is a mapping with 'counts' and 'scale'", where=str(path))
    counts, quotes, problems = {}, {}, []
    for key, leaf in (doc.get("counts") or {}).items():
        if not isinstance(leaf, dict) or not isinstance(leaf.get("value"), (int, float)) \
                or isinstance(leaf.get("value"), bool):
            problems.append(f"counts.{key}: a mapping with a numeric 'value' and its 'quote'")
            continue
        counts[str(key)] = leaf["value"]
        quotes[str(key)] = leaf.get("quote") or leaf.get("assumption") or ""
    scale = ((doc.get("scale") or {}).get("branches") or {})
    value = scale.get("value") if isinstance(scale, dict) else None
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
        problems.append("scale.branches.value: a positive number of branches")
    if problems:
        raise PolicyError(problems, where=str(path))
    return {"counts": counts, "quotes": quotes, "scale": None if value is None else float(value),
            "source": doc.get("source")}


def published_counts(policy: PolicyLike = None) -> pd.Series:
    """The published counts of a scheme (default: the baseline) from its targets file.

    >>> int(published_counts().iloc[0]) > 0
    True
    """
    if policy is None:
        from .policy import Policy
        policy = Policy.load()
    return pd.Series(targets(policy)["counts"], name="published", dtype=float)


def at_published_scale(n_branches: int, policy: PolicyLike = None, *, city: float | None = None) -> bool:
    """Whether a population of ``n_branches`` is of the scale of the scheme's published figures.

    ``city`` is the published number of branches, when the caller has already
    read it; without targets (or a scale) nothing is at the published scale.

    >>> at_published_scale(1500), at_published_scale(1400), at_published_scale(150)
    (True, True, False)
    """
    if city is None:
        if policy is None:
            from .policy import Policy
            policy = Policy.load()
        city = targets(policy)["scale"]
    return city is not None and abs(int(n_branches) - city) <= PUBLISHED_TOLERANCE * city


class Result:
    """Outcome of one evaluation: ``.branches`` and ``.members`` (tidy frames).

    ``rating`` holds each branch's level id, one boolean column per
    designation and per consequence; ``cut_points`` the cut points the design
    used (realised thresholds for relative designs).

    >>> import branchsim as bs
    >>> r = bs.evaluate(bs.generate(seed=0, n_branches=100, members=False))
    >>> list(r.level_counts().columns), len(r.branches)
    (['count', 'share'], 100)
    """

    def __init__(self, branches: pd.DataFrame, members: pd.DataFrame | None, policy: Policy, *,
                 cut_points: pd.DataFrame | None = None,
                 member_cut_points: pd.DataFrame | None = None) -> None:
        self.branches = branches
        self.members = members
        self.policy = policy
        self.cut_points = cut_points if cut_points is not None else pd.DataFrame(columns=["group", "level", "cut"])
        self.member_cut_points = member_cut_points
        #: What produced it (:mod:`branchsim.manifest`): set by :func:`~branchsim.evaluate`.
        self.manifest: dict | None = None

    @property
    def scheme(self) -> Scheme:
        return self.policy.scheme

    def _targets(self) -> dict:
        t = targets(self.policy)
        return t if at_published_scale(len(self.branches), city=t["scale"]) else {"counts": {}}

    def level_counts(self) -> pd.DataFrame:
        """Branches per level (best first) and per designation; beside the published counts at their scale."""
        bs = self.scheme.branch
        counts = self.branches["rating"].value_counts()
        out = {lv: int(counts.get(lv, 0)) for lv in bs.levels.ids}
        for d in bs.designations:
            out[d.id] = int(self.branches[d.id].sum())
        frame = pd.DataFrame({"count": pd.Series(out, dtype=np.int64)})
        frame["share"] = frame["count"] / max(len(self.branches), 1)
        published = self._targets()["counts"]
        if published:
            frame["published"] = pd.Series(published).reindex(frame.index).astype("Int64")
        frame.index.name = "level"
        return frame

    def star_counts(self) -> pd.DataFrame:
        """Alias of :meth:`level_counts` (the first scheme rated in stars)."""
        return self.level_counts()

    def grade_counts(self) -> pd.Series:
        """Members per grade, best first (and ``exempt`` members, when a class is exempt)."""
        if self.members is None:
            return pd.Series(dtype=int, name="members")
        ms = cast("MemberScheme", self.scheme.member)      # members were rated: the scheme has them
        g = self.members["grade"].value_counts().reindex(list(ms.grades.ids), fill_value=0)
        if ms.exempt.any():
            g["exempt"] = int(self.members["grade"].isna().sum())
        return g.astype(int).rename("members")

    def consequence_counts(self) -> pd.Series:
        """How many branches and members each consequence reaches."""
        out = {}
        for c in self.scheme.consequences:
            frame = self.branches if c.unit == "branch" else self.members
            if frame is not None and c.id in frame:
                out[c.id] = int(frame[c.id].sum())
        return pd.Series(out, name="count", dtype=np.int64)

    def upgrade_counts(self) -> pd.DataFrame:
        """Units whose member count calls for a larger organisation level (with a structure)."""
        st = self.scheme.structure
        if st is None or "upgrade_to" not in self.branches:
            return pd.DataFrame(columns=["count"])
        up = self.branches["upgrade_to"].value_counts()
        keys = [f"upgrade_{lv}" for lv in reversed(st.ids[1:])]
        out = pd.DataFrame({"count": [int(up.get(lv, 0)) for lv in reversed(st.ids[1:])]}, index=keys)
        published = self._targets()["counts"]
        if published:
            out["published"] = pd.Series(published).reindex(out.index).astype("Int64")
        return out

    def accuracy(self) -> float:
        """Share of branches whose level equals the level their true quality earns (NaN without truth)."""
        if "true_rating" not in self.branches:
            return float("nan")
        return float((self.branches["rating"] == self.branches["true_rating"]).mean())

    def confusion(self) -> pd.DataFrame:
        """Measured level (rows) against true level (columns), best first; empty without truth."""
        if "true_rating" not in self.branches:
            return pd.DataFrame()
        ids = list(self.scheme.branch.levels.ids)
        return pd.crosstab(pd.Categorical(self.branches["rating"], ids),
                           pd.Categorical(self.branches["true_rating"], ids),
                           rownames=["measured"], colnames=["true"], dropna=False)

    def _display_counts(self) -> pd.DataFrame:
        sc = self.level_counts()
        sc["share"] = sc["share"].map(lambda v: f"{v:.1%}")
        if "published" in sc:
            sc["published"] = sc["published"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
        return sc

    def summary(self) -> str:
        """A plain-text summary (what ``print(result)`` shows)."""
        parts = [f"{len(self.branches)} branches" + (f", {len(self.members)} members"
                                                     if self.members is not None else ""),
                 f"policy {self.policy.name!r}", "", "Levels:", self._display_counts().to_string()]
        up = self.upgrade_counts()
        if len(up):
            parts += ["", "Structure:", up.to_string()]
        if self.members is not None:
            parts += ["", "Member grades:", self.grade_counts().to_string()]
        cons = self.consequence_counts()
        if len(cons):
            parts += ["", "Consequences:", cons.to_string()]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        sc = self.level_counts()["count"]
        return f"<Result: {len(self.branches)} branches; " + ", ".join(f"{k} {v}" for k, v in sc.items()) + ">"

    def _repr_html_(self) -> str:
        head = (f"<b>Result</b> — {len(self.branches)} branches"
                + (f", {len(self.members)} members" if self.members is not None else "")
                + f", policy <code>{html.escape(self.policy.name)}</code>")
        blocks = [("Levels", self._display_counts())]
        if self.members is not None:
            blocks.append(("Member grades", self.grade_counts().to_frame()))
        up = self.upgrade_counts()
        if len(up):
            blocks.append(("Structure", up))
        cons = self.consequence_counts()
        if len(cons):
            blocks.append(("Consequences", cons.to_frame()))
        # The blocks wrap onto a new line when the output area is narrower than all of them (CSS only).
        cells = "".join(f"<td style='vertical-align:top;padding:0 1.5em .8em 0;display:block'><i>{t}</i>"
                        f"{df.to_html()}</td>" for t, df in blocks)
        return (f"<div style='max-width:100%'>{head}<table style='display:block;max-width:100%'>"
                f"<tr style='display:flex;flex-wrap:wrap;align-items:flex-start'>{cells}</tr></table></div>")
