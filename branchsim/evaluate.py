"""One evaluation of a population under a policy, as tidy frames.

:func:`evaluate_tables` checks the tables, runs the pure rules of
:mod:`branchsim.scoring` on whole columns and returns a :class:`Result`
with one row per branch and one row per member.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import yaml

from .errors import DataError
from .policy import Policy, data_path
from .scoring import (GRADES, STRUCTURE_LEVELS, annual_scores, branch_consequences, branch_outcome,
                      compile_branch_rules, compile_member_rules, member_consequences, member_grades,
                      monthly_scores, required_level, type_codes)
from .tables import SURVEY_COLUMNS, check_tables, positions

__all__ = ["Result", "evaluate_tables", "evaluate_checked", "published_counts", "STAR_NAMES"]

#: Branches scored at a time (with their members and member-months) by default.
CHUNK_BRANCHES = 2048
STAR_NAMES = {5: "five_star", 4: "four_star", 3: "three_star", 2: "two_star", 1: "one_star", 0: "no_star"}


def _published() -> tuple[dict, float]:
    """``data/published.yaml``: its counts and the published city's number of branches."""
    doc = yaml.safe_load(data_path("published.yaml").read_text(encoding="utf-8"))
    return doc["counts"], float(doc["scale"]["branches"]["value"])


def published_counts() -> pd.Series:
    """The published counts (41 five-star, …) from ``data/published.yaml``.

    >>> int(published_counts()["five_star"])
    41
    """
    return pd.Series({k: v["value"] for k, v in _published()[0].items()}, name="published")


#: The published counts are shown beside a population only when its number of branches is within
#: this share of the published city's (about 1,500 branches: 1,350 to 1,650). Counts of a city of
#: another size, or of a researcher's small table, are not comparable with them, scaled or not.
PUBLISHED_TOLERANCE = 0.10


def at_published_scale(n_branches: int, *, city: float | None = None) -> bool:
    """Whether a population of ``n_branches`` is of the published city's scale (see PUBLISHED_TOLERANCE).

    ``city`` is the published number of branches, when the caller has already read it.

    >>> at_published_scale(1500), at_published_scale(1400), at_published_scale(150)
    (True, True, False)
    """
    city = _published()[1] if city is None else city
    return abs(int(n_branches) - city) <= PUBLISHED_TOLERANCE * city


class Result:
    """Outcome of one evaluation: ``.branches`` and ``.members`` (tidy frames).

    >>> import branchsim as bs
    >>> r = bs.evaluate(bs.generate(seed=0, n_branches=100, members=False))
    >>> list(r.star_counts().columns), len(r.branches)
    (['count', 'share', 'published'], 100)
    """

    def __init__(self, branches: pd.DataFrame, members: pd.DataFrame | None, policy: Policy):
        self.branches = branches
        self.members = members
        self.policy = policy

    def star_counts(self) -> pd.DataFrame:
        """Count per star level and of weak units, beside the published counts."""
        levels = sorted({0, *(int(k) for k in self.policy["branch.star_cuts"]),
                         *(int(s) for s in np.unique(self.branches["stars"]))}, reverse=True)
        counts = {STAR_NAMES[k]: int((self.branches["stars"] == k).sum()) for k in levels}
        counts["weak"] = int(self.branches["weak"].sum())
        out = pd.DataFrame({"count": pd.Series(counts)})
        out["share"] = out["count"] / len(self.branches)
        out["published"] = published_counts().reindex(out.index).astype("Int64")
        out.index.name = "level"
        return out

    def grade_counts(self) -> pd.Series:
        """Members per grade, best first."""
        if self.members is None:
            return pd.Series(dtype=int)
        g = self.members["grade"].value_counts().reindex(list(GRADES)[::-1], fill_value=0)
        return g.rename("members")

    def consequence_counts(self) -> pd.Series:
        """How many branches get a talk or a reorganisation, and members mentoring or handling."""
        out = {"talk": int(self.branches["talk"].sum()),
               "reorganise": int(self.branches["reorganise"].sum())}
        if self.members is not None:
            out["mentoring"] = int(self.members["mentoring"].sum())
            out["handling"] = int(self.members["handling"].sum())
        return pd.Series(out, name="count")

    def upgrade_counts(self) -> pd.DataFrame:
        """Units whose member count calls for a higher level, beside the published counts."""
        up = self.branches["upgrade_to"].value_counts()
        out = pd.DataFrame({"count": [int(up.get("party_committee", 0)), int(up.get("general_branch", 0))]},
                           index=["upgrade_party_committee", "upgrade_general_branch"])
        out["published"] = published_counts().reindex(out.index).astype("Int64")
        return out

    def accuracy(self) -> float:
        """Share of branches whose star equals the star of their true quality (NaN without truth)."""
        if "true_stars" not in self.branches:
            return float("nan")
        return float((self.branches["stars"] == self.branches["true_stars"]).mean())

    def confusion(self) -> pd.DataFrame:
        """Measured star (rows) against true star (columns); empty without truth."""
        if "true_stars" not in self.branches:
            return pd.DataFrame()
        return pd.crosstab(self.branches["stars"], self.branches["true_stars"],
                           rownames=["measured"], colnames=["true"])

    def _display_counts(self) -> pd.DataFrame:
        sc = self.star_counts()
        sc["share"] = sc["share"].map(lambda v: f"{v:.1%}")
        sc["published"] = sc["published"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
        return sc

    def summary(self) -> str:
        """A plain-text summary (what ``print(result)`` shows)."""
        parts = [f"{len(self.branches)} branches" + (f", {len(self.members)} members"
                                                     if self.members is not None else ""),
                 f"policy {self.policy.name!r}", "", "Stars:",
                 self._display_counts().to_string(),
                 "", "Structure:", self.upgrade_counts().to_string()]
        if self.members is not None:
            parts += ["", "Member grades:", self.grade_counts().to_string()]
        parts += ["", "Consequences:", self.consequence_counts().to_string()]
        return "\n".join(parts)

    __str__ = summary

    def __repr__(self) -> str:
        sc = self.star_counts()["count"]
        return f"<Result: {len(self.branches)} branches; " + ", ".join(f"{k} {v}" for k, v in sc.items()) + ">"

    def _repr_html_(self) -> str:
        head = (f"<b>Result</b> — {len(self.branches)} branches"
                + (f", {len(self.members)} members" if self.members is not None else "")
                + f", policy <code>{html.escape(self.policy.name)}</code>")
        blocks = [("Stars", self._display_counts()), ("Structure", self.upgrade_counts()),
                  ("Consequences", self.consequence_counts().to_frame())]
        if self.members is not None:
            blocks.insert(1, ("Member grades", self.grade_counts().to_frame()))
        # The blocks wrap onto a new line when the output area is narrower than all of them (CSS only).
        cells = "".join(f"<td style='vertical-align:top;padding:0 1.5em .8em 0;display:block'><i>{t}</i>"
                        f"{df.to_html()}</td>" for t, df in blocks)
        return (f"<div style='max-width:100%'>{head}<table style='display:block;max-width:100%'>"
                f"<tr style='display:flex;flex-wrap:wrap;align-items:flex-start'>{cells}</tr></table></div>")


def _branch_frame(b: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    rules = compile_branch_rules(policy)
    type_idx = type_codes(b["type"], rules.types)
    facts = b[list(rules.indicators.facts)].to_numpy(dtype=float)
    out = branch_outcome(facts, type_idx, b[list(SURVEY_COLUMNS)].to_numpy(float), rules)
    talk, reorganise, streak = branch_consequences(out["weak"], b["prev_weak"].to_numpy(),
                                                   rules.reorganise_after)
    need = required_level(b["n_members"].to_numpy(), policy)
    current = pd.Index(STRUCTURE_LEVELS).get_indexer(b["level"])
    levels = np.array(STRUCTURE_LEVELS, dtype=object)
    frame = {"branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy(),
             "level": b["level"].to_numpy(), "n_members": b["n_members"].to_numpy(),
             "score": out["score"]}
    for j, comp in enumerate(rules.components):
        frame[f"sub_{comp}"] = out["subscores"][:, j]
    frame.update({
        "stars": out["stars"],
        "weak": out["weak"],
        "vetoes": [",".join(np.array(rules.veto_ids, dtype=object)[row]) for row in out["vetoes"]]
        if rules.veto_ids else "",
        "talk": talk, "reorganise": reorganise, "weak_streak": streak,
        "required_level": levels[need["level"]],
        "upgrade_to": np.where(need["level"] > current, levels[need["level"]], ""),
        "committee_needed": need["committee"], "below_minimum": need["below_minimum"],
    })
    if "true_quality" in b.columns:
        frame["true_quality"] = b["true_quality"].to_numpy()
    return pd.DataFrame(frame)


def _fact_columns(mm: pd.DataFrame, facts) -> tuple:
    """The fact columns as 1-d arrays of one dtype, without copying those already alike."""
    cols = [mm[f].to_numpy() for f in facts]
    dtypes = {c.dtype for c in cols}
    dtype = dtypes.pop() if len(dtypes) == 1 and next(iter(dtypes)).kind in "fiu" else np.dtype(np.float64)
    return tuple(np.ascontiguousarray(c, dtype=dtype) for c in cols)


def _chunks(key: np.ndarray, n_chunks: int):
    """Stable order of ``key`` (a chunk number per row) and where each chunk starts in it."""
    order = np.argsort(key, kind="stable")
    starts = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n_chunks), out=starts[1:])
    return order, starts


def _member_frame(b: pd.DataFrame, m: pd.DataFrame, mm: pd.DataFrame, policy: Policy,
                  chunk_size: int) -> pd.DataFrame:
    """Member outcomes, computed ``chunk_size`` branches at a time (members and their months together).

    Each chunk scores only its own member-month rows, taken in the table's
    order, so every number equals the whole-table computation whatever the
    chunk size.
    """
    rules = compile_member_rules(policy)
    ind = rules.indicators
    branch_type = type_codes(b["type"], rules.types)
    mb = positions(b["branch_id"], m["branch_id"])           # each member's branch
    member_idx = positions(m["member_id"], mm["member_id"])  # each member-month's member
    if (mb < 0).any() or (member_idx < 0).any():
        raise DataError("members of unknown branches or months of unknown members; check the tables "
                        "with branchsim.check_tables first")
    member_type = branch_type[mb]
    n_m = len(m)
    months = np.bincount(member_idx, minlength=n_m)
    appraisal = m["appraisal"].to_numpy(float)
    n_chunks = max(1, -(-len(b) // chunk_size))
    member_chunk = (mb // chunk_size).astype(np.int64)
    morder, mstarts = _chunks(member_chunk, n_chunks)
    local = np.empty(n_m, dtype=np.int64)          # a member's place among its chunk's members
    local[morder] = np.arange(n_m) - np.repeat(mstarts[:-1], np.diff(mstarts))
    row_chunk = member_chunk[member_idx]
    rorder, rstarts = _chunks(row_chunk, n_chunks)
    del row_chunk
    top_sum = ind.group_max.sum(axis=1)            # (t,) the points a month can reach, by type
    from . import _month_kernel
    compiled = _month_kernel.available() and 0 < len(ind.facts) <= _month_kernel.MAX_K
    cols = _month_kernel.fact_list(_fact_columns(mm, ind.facts)) if compiled \
        else [mm[f].to_numpy() for f in ind.facts]
    prepared = _month_kernel.prepare(ind) if compiled else None
    total = np.empty(n_m)
    annual = np.empty(n_m)
    for c in range(n_chunks):
        rows = rorder[rstarts[c]:rstarts[c + 1]]               # in table order: sums as the whole table
        who = morder[mstarts[c]:mstarts[c + 1]]
        owner = member_idx[rows]
        row_type = member_type[owner]
        if compiled:
            points = _month_kernel.row_totals(cols, ind, rows, row_type, prepared=prepared)
            monthly = np.round(np.minimum(100.0 * points / top_sum[row_type], 100.0), 9)
        else:
            facts = np.column_stack([np.asarray(col[rows], dtype=float) for col in cols]) if cols \
                else np.empty((len(rows), 0))
            monthly = monthly_scores(facts, row_type, rules)
        li = local[owner]
        total[who] = np.bincount(li, monthly, len(who))
        annual[who] = annual_scores(monthly, li, len(who), appraisal[who], rules)
    grade = member_grades(annual, rules)
    mentoring, handling = member_consequences(grade)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.round(total / months, 9)
    frame = {"member_id": m["member_id"].to_numpy(), "branch_id": m["branch_id"].to_numpy(),
             "category": m["category"].to_numpy(), "months": months,
             "monthly_mean": mean,
             "appraisal": appraisal, "annual": annual,
             "grade": np.array(GRADES, dtype=object)[grade],
             "mentoring": mentoring, "handling": handling}
    if "true_quality" in m.columns:
        frame["true_quality"] = m["true_quality"].to_numpy()
    return pd.DataFrame(frame)


def _chunk_size(chunk_size) -> int:
    if chunk_size is None:
        return CHUNK_BRANCHES
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive whole number of branches; got {chunk_size!r}")
    return int(chunk_size)


def evaluate_tables(policy: Policy, branches, members=None, member_months=None, *,
                    names: dict | None = None, chunk_size: int | None = None) -> Result:
    """Evaluate population tables under ``policy`` (all defects reported at once).

    ``chunk_size`` branches are scored at a time, with their members and
    member-months (default :data:`CHUNK_BRANCHES`): it bounds the memory
    beyond the tables and never changes a number.

    Examples
    --------
    >>> import branchsim as bs, pandas as pd
    >>> ex = bs.data_path("examples")
    >>> r = evaluate_tables(bs.Policy.load(), pd.read_csv(ex / "branches.csv"),
    ...                     pd.read_csv(ex / "members.csv"), pd.read_csv(ex / "member_months.csv"))
    >>> int(r.star_counts().loc[["five_star", "four_star", "three_star", "no_star"], "count"].sum())
    12
    """
    chunk_size = _chunk_size(chunk_size)
    b, m, mm = check_tables(policy, branches, members, member_months, names=names)
    return evaluate_checked(policy, b, m, mm, chunk_size=chunk_size)


def evaluate_checked(policy: Policy, b: pd.DataFrame, m, mm, truth=None, *,
                     chunk_size: int | None = None) -> Result:
    """Evaluate tables already in canonical form (from check_tables or generate).

    Member-months are scored ``chunk_size`` branches at a time (their
    members and months together) by a compiled kernel that reads the facts
    where they lie: memory beyond the tables stays a few bytes per row, and
    the numbers equal the whole-table NumPy computation bit for bit.

    ``truth``, when given, is the population's :class:`branchsim.model.Truth`;
    the branch frame then also has ``true_score``, ``true_stars`` (true vetoes
    applied) and ``true_weak``.
    """
    type_codes(b["type"], policy.branch_types, policy.name)      # every type known to the policy
    missing = [f for f in compile_branch_rules(policy).indicators.facts if f not in b.columns]
    if mm is not None:
        missing += [f for f in compile_member_rules(policy).indicators.facts if f not in mm.columns]
    if missing:
        raise DataError(f"the population has no column for fact(s) {missing[:8]} that policy "
                        f"{policy.name!r} measures; generate or load it with this policy's indicators")
    chunk_size = _chunk_size(chunk_size)
    members_out = None if m is None else _member_frame(b, m, mm, policy, chunk_size)
    frame = _branch_frame(b, policy)
    if truth is not None:
        rules = compile_branch_rules(policy)
        for k, v in truth.outcome(rules, type_codes(b["type"], rules.types)).items():
            frame[k] = v
    return Result(frame, members_out, policy)
