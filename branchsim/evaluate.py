"""One evaluation of a population under a policy, as tidy frames.

:func:`evaluate_tables` checks the tables; :func:`branch_outcome` and the
member outcome run the pure rules of :mod:`branchsim.scoring` and
:mod:`branchsim.rating` on whole columns; a :class:`Result` holds one row per
branch and one per member. Every column name that is not fixed here comes
from the scheme: the level ids, designations and consequences.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import rating as rt
from ._result import Result, at_published_scale, published_counts, targets
from .errors import DataError
from .policy import Policy
from .scheme import BranchScheme, MemberScheme, Scheme
from .scoring import (DECIMALS, stack_columns, annual_facts, annual_scores, answer_share, branch_scores, indicator_points,
                      record_from_totals, record_scores, required_level, satisfaction_rate, type_codes)
from .tables import check_tables, positions

if TYPE_CHECKING:
    from ._types import TableLike

__all__ = ["Result", "evaluate_tables", "evaluate_checked", "branch_outcome", "BranchInputs",
           "branch_inputs", "member_outcome", "member_veto_values", "published_counts", "at_published_scale", "targets"]

#: Branches scored at a time (with their members and member-months) by default.
CHUNK_BRANCHES = 2048


class BranchInputs:
    """What the branch rules read from a branches table, as arrays.

    ``facts`` ``(n, k)`` the sheet's facts; ``values`` any fact column by
    name; ``type_idx``; ``survey`` ``(n, a)`` answer counts (None without a
    survey); ``prev`` the streaks of years before (``prev_<id>``); ``columns``
    the frame, for peer groups and ranks within groups.
    """

    __slots__ = ("facts", "values", "type_idx", "survey", "prev", "columns")

    def __init__(self, facts, values, type_idx, survey, prev, columns):
        self.facts, self.values, self.type_idx = facts, values, type_idx
        self.survey, self.prev, self.columns = survey, prev, columns

    def value(self, fact: str) -> np.ndarray:
        if fact not in self.values:
            raise DataError(f"the branches table has no column {fact!r} that the policy reads")
        return self.values[fact]

    def codes(self, column: str) -> tuple[np.ndarray, list]:
        """Group codes (sorted names) of a branch column, for peer groups and groups of ranks."""
        if column not in self.columns.columns:
            raise DataError(f"the policy groups branches by {column!r}, which is not a column of the branches "
                            f"table; allowed: {', '.join(map(str, self.columns.columns))}")
        codes, names = pd.factorize(self.columns[column], sort=True)
        return codes.astype(np.intp), [str(x) for x in names]


def branch_inputs(b: pd.DataFrame, scheme: Scheme, *, policy_name: str = "") -> BranchInputs:
    """:class:`BranchInputs` from a checked branches frame (columns as the data dictionary names them)."""
    bs = scheme.branch
    missing = [f for f in bs.facts if f not in b.columns]
    if missing:
        raise DataError(f"the population has no column for fact(s) {missing[:8]} that policy "
                        f"{policy_name or scheme.name!r} reads; generate or load it with this policy")
    values = {f: b[f].to_numpy(dtype=float) for f in bs.facts}
    facts = stack_columns([values[f] for f in bs.sheet.facts], len(b))
    survey = b[list(bs.survey_columns)].to_numpy(float) if bs.survey else None
    prev = {c[5:]: b[c].to_numpy() for c in b.columns if isinstance(c, str) and c.startswith("prev_")}
    return BranchInputs(facts, values, type_codes(b["type"], bs.types, policy_name or scheme.name), survey, prev,
                        b)


def _groups(inp: BranchInputs, column: str | None, n: int):
    if column is None:
        return np.zeros(n, dtype=np.intp), ["all"]
    return inp.codes(column)


def branch_outcome(inp: BranchInputs, scheme: Scheme, *, previous: pd.DataFrame | None = None,
                   scores: dict | None = None, rated: tuple | None = None) -> dict:
    """Everything one evaluation decides for each branch, as arrays.

    Returns a dict: ``points`` (n, k), ``components`` (n, c), ``subscores``
    (n, c), ``score``, ``design`` (the design's level codes), ``level``
    (after direct grading and vetoes), ``direct`` (n, d) and ``vetoes`` (n, v)
    fired, ``criteria`` and ``designations`` ({id: bool array}), ``streaks``
    ({id: consecutive years, this one included}), ``consequences``
    ({id: bool array}) and ``cuts`` (the cut points used, a DataFrame).
    ``scores`` (the first four entries, already computed) skips the scoring;
    ``rated`` (``(design, cuts)`` that :func:`branchsim.rating.rate` gave for
    these scores under this design) skips the rating (the report's
    assumption moves re-rate only when a move changes the scores or the design).
    """
    bs = scheme.branch
    n = len(inp.type_idx)
    if scores is None:
        rank_cols = {w for w in bs.sheet.within if w is not None}
        rank_groups = {w: inp.codes(w)[0] for w in rank_cols}
        scores = branch_scores(inp.facts, inp.type_idx, inp.survey, bs, rank_groups=rank_groups)
    out = dict(scores)
    score = out["score"]
    r = bs.rating
    if rated is not None:
        design, cuts = rated
    elif r.design == "cuts":
        design, cuts = rt.rate(score, r, profile=inp.type_idx, group_names=list(bs.types), previous=previous)
    else:
        groups, names = _groups(inp, r.peer_groups, n)
        design, cuts = rt.rate(score, r, profile=inp.type_idx, groups=groups, group_names=names,
                               previous=previous)
    direct = rt.direct_fired(np.column_stack([inp.value(f) for f in r.direct_fact]), r) if r.direct_ids \
        else np.zeros((n, 0), dtype=bool)
    level = rt.apply_direct(design, direct, r)
    fired = rt.veto_fired(np.column_stack([inp.value(f) for f in bs.vetoes.fact]), bs.vetoes) if bs.vetoes.n \
        else np.zeros((n, 0), dtype=bool)
    level = rt.apply_vetoes(level, fired, bs.vetoes)
    out.update(design=design, level=level, direct=direct, vetoes=fired, cuts=cuts)
    out.update(designate(bs, score=score, level=level, fired=fired, survey=inp.survey, values=inp.values,
                         prev=inp.prev, group_codes=lambda col: inp.codes(col)[0]))
    out["consequences"] = branch_consequences(scheme, level, out["designations"], out["streaks"], inp.prev)
    return out


def designate(bs: BranchScheme, *, score, level, fired, survey, values, prev, group_codes) -> dict:
    """Criteria, designations and their streaks (``docs/policy-format.md``, "Designations")."""
    criteria, designations, streaks = {}, {}, {}
    n = len(score)
    for d in bs.designations:
        any_held = np.zeros(n, dtype=bool)
        for c in d.criteria:
            held = _criterion(c, bs, score=score, level=level, fired=fired, survey=survey, values=values,
                              group_codes=group_codes)
            run = rt.streak(held, prev.get(c.id))
            criteria[c.id] = held
            if c.years > 1:
                streaks[c.id] = run
            any_held |= run >= c.years
        designations[d.id] = any_held
        streaks[d.id] = rt.streak(any_held, prev.get(d.id))
    return {"criteria": criteria, "designations": designations, "streaks": streaks}


def _criterion(c, bs: BranchScheme, *, score, level, fired, survey, values, group_codes) -> np.ndarray:
    kind = c.kind
    if kind == "score_below":
        return np.asarray(score) < c.value
    if kind == "survey_below":
        if survey is None:
            raise DataError(f"criterion {c.id!r} reads the survey, which the population lacks")
        rate = answer_share(survey, np.isin(bs.answers, c.answers)) if c.answers \
            else satisfaction_rate(survey, bs.answer_values)
        return np.round(rate, DECIMALS) < c.value
    if kind == "veto":
        return np.asarray(fired[:, c.veto], bool)
    if kind == "fact_below":
        return values[c.fact] < c.value
    if kind == "fact_at_least":
        return values[c.fact] >= c.value
    if kind == "last_place":
        codes = np.zeros(len(score), dtype=np.intp) if c.within is None else group_codes(c.within)
        lowest = np.full(int(codes.max()) + 1 if len(codes) else 0, np.inf)
        np.minimum.at(lowest, codes, score)
        return np.asarray(score) <= lowest[codes]
    if kind == "level":
        return level <= c.level if c.or_below else level == c.level
    raise DataError(f"criterion {c.id!r}: unknown kind {kind!r}")  # pragma: no cover - the policy checks kinds


def branch_consequences(scheme: Scheme, level: np.ndarray, designations: dict, streaks: dict,
                        prev: dict) -> dict[str, np.ndarray]:
    """Which branch consequences follow (a condition held for its number of years)."""
    out = {}
    for c in scheme.consequences_of("branch"):
        if c.kind == "designation":
            held, run = designations[c.target], streaks[c.target]
        else:
            held = level <= c.code if c.or_below else level == c.code
            run = rt.streak(held, prev.get(c.target))
            streaks.setdefault(c.target, run)
        out[c.id] = run >= c.years if c.years > 1 else np.asarray(held, bool)
    return out


# -- members ---------------------------------------------------------------------------
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


def member_profiles(ms: MemberScheme, branch_type: np.ndarray, category) -> tuple[np.ndarray, np.ndarray | None]:
    """Each member's profile code (type, or type and class) and class code (None without classes)."""
    if not ms.classes:
        return np.asarray(branch_type), None
    cls = type_codes(category, ms.classes, what="member class")
    return ms.profile_index(branch_type, cls), cls


def member_veto_values(ms: MemberScheme, facts, read: dict, n: int) -> np.ndarray:
    """``(n, v)``: what each member veto reads over the year.

    A member fact (``facts``, by name) as it is; a period fact's year from
    ``read[fact] = (lowest, sum)``: the sum for a veto that fires at or above
    its value, the lowest for one that fires below it; NaN for a fact in
    neither (not measured).
    """
    cols = []
    for fact, at_least in zip(ms.vetoes.fact, ms.vetoes.at_least):
        if fact in facts:
            cols.append(np.asarray(facts[fact], float))
        elif fact in read:
            cols.append(read[fact][1 if at_least else 0])
        else:
            cols.append(np.full(n, np.nan))
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def member_outcome(record: np.ndarray, appraisal, profile: np.ndarray, ms: MemberScheme, scheme: Scheme, *,
                   veto_values: np.ndarray | None = None, groups=None, group_names=None,
                   previous: pd.DataFrame | None = None, prev: dict | None = None) -> dict:
    """Annual scores, grades (after vetoes; -1 for exempt members) and consequences of members."""
    annual = annual_scores(record, appraisal, ms)
    exempt = ms.exempt[np.asarray(profile)]
    graded = ~exempt
    n = len(annual)
    grade = np.full(n, -1, dtype=np.int8)
    r = ms.rating
    cuts = None
    if graded.any():
        sub = np.flatnonzero(graded)
        if r.design == "cuts":
            g, cuts = rt.rate(annual[sub], r, profile=np.asarray(profile)[sub], group_names=list(ms.profiles),
                              previous=previous)
        else:
            codes = np.zeros(n, dtype=np.intp) if groups is None else np.asarray(groups)
            g, cuts = rt.rate(annual[sub], r, profile=np.asarray(profile)[sub], groups=codes[sub],
                              group_names=group_names or ["all"], previous=previous)
        grade[sub] = g
    if cuts is None:                 # every member exempt: no cut applied (built only then: it is not free)
        cuts = pd.DataFrame(columns=["group", "level", "cut"])
    fired = rt.veto_fired(veto_values, ms.vetoes) if ms.vetoes.n else np.zeros((n, 0), dtype=bool)
    if fired.size:
        grade = np.where(graded, rt.apply_vetoes(np.maximum(grade, 0), fired, ms.vetoes), -1).astype(np.int8)
    cons = {}
    prev = prev or {}
    for c in scheme.consequences_of("member"):
        held = graded & ((grade <= c.code) if c.or_below else (grade == c.code))
        cons[c.id] = rt.streak(held, prev.get(c.target)) >= c.years if c.years > 1 else held
    return {"annual": annual, "grade": grade, "vetoes": fired, "consequences": cons, "cuts": cuts}


def _member_frame(b: pd.DataFrame, m: pd.DataFrame, mm: pd.DataFrame, scheme: Scheme,
                  chunk_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Member outcomes, computed ``chunk_size`` branches at a time (members and their months together).

    Each chunk scores only its own member-month rows, taken in the table's
    order, so every number equals the whole-table computation whatever the
    chunk size.
    """
    ms = scheme.member
    sheet = ms.sheet
    branch_type = type_codes(b["type"], ms.types)
    mb = positions(b["branch_id"], m["branch_id"])           # each member's branch
    member_idx = positions(m["member_id"], mm["member_id"])  # each member-month's member
    if (mb < 0).any() or (member_idx < 0).any():
        raise DataError("members of unknown branches or months of unknown members; check the tables "
                        "with branchsim.check_tables first")
    missing = [f for f in sheet.facts if f not in mm.columns] + [f for f in ms.facts if f not in m.columns]
    if missing:
        raise DataError(f"the population has no column for member fact(s) {missing[:8]} that policy "
                        f"{scheme.name!r} reads; generate or load it with this policy")
    profile, class_idx = member_profiles(ms, branch_type[mb], m["category"])
    n_m = len(m)
    periods = np.bincount(member_idx, minlength=n_m)
    n_chunks = max(1, -(-len(b) // chunk_size))
    member_chunk = (mb // chunk_size).astype(np.int64)
    morder, mstarts = _chunks(member_chunk, n_chunks)
    local = np.empty(n_m, dtype=np.int64)          # a member's place among its chunk's members
    local[morder] = np.arange(n_m) - np.repeat(mstarts[:-1], np.diff(mstarts))
    row_chunk = member_chunk[member_idx]
    rorder, rstarts = _chunks(row_chunk, n_chunks)
    del row_chunk
    from . import _month_kernel
    compiled = ms.accrual == "mean" and np.isnan(ms.bonus_cap) and _month_kernel.supports(sheet)
    cols = _month_kernel.fact_list(_fact_columns(mm, sheet.facts)) if compiled \
        else [mm[f].to_numpy() for f in sheet.facts]
    prepared = _month_kernel.prepare(sheet) if compiled else None
    vfacts = [f for f in ms.vetoes.fact if f in sheet.facts]
    record = np.empty(n_m)
    read = {f: (np.empty(n_m), np.empty(n_m)) for f in vfacts}          # a period fact's lowest and sum
    for c in range(n_chunks):
        rows = rorder[rstarts[c]:rstarts[c + 1]]               # in table order: sums as the whole table
        who = morder[mstarts[c]:mstarts[c + 1]]
        owner = member_idx[rows]
        li = local[owner]
        row_profile = profile[owner]
        if compiled:
            points = _month_kernel.row_totals(cols, sheet, rows, row_profile, prepared=prepared)
            monthly = record_from_totals(points, row_profile, ms)
        else:
            facts = np.column_stack([np.asarray(col[rows], dtype=float) for col in cols]) if cols \
                else np.empty((len(rows), 0))
            if ms.accrual == "mean":
                monthly = record_scores(indicator_points(facts, row_profile, sheet), row_profile, ms)
            else:
                year = annual_facts(facts, li, len(who), sheet.kind[0])
                record[who] = record_scores(indicator_points(year, profile[who], sheet), profile[who], ms)
        if ms.accrual == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                record[who] = np.bincount(li, monthly, len(who)) / periods[who]
        for f in vfacts:
            col = np.asarray(mm[f].to_numpy()[rows], dtype=float)
            low = np.full(len(who), np.inf)
            np.minimum.at(low, li, col)
            read[f][0][who] = low
            read[f][1][who] = np.bincount(li, col, len(who))
    appraisal = m["appraisal"].to_numpy(float) if "appraisal" in m.columns else np.zeros(n_m)
    groups = names = None
    if ms.rating.design != "cuts":
        key = ms.rating.peer_groups
        if key == "class" and class_idx is not None:
            groups, names = class_idx, list(ms.classes)
        elif key == "type":
            groups, names = branch_type[mb], list(ms.types)
    prev = {c[5:]: m[c].to_numpy() for c in m.columns if isinstance(c, str) and c.startswith("prev_")}
    out = member_outcome(record, appraisal, profile, ms, scheme,
                         veto_values=member_veto_values(ms, {f: m[f] for f in ms.facts}, read, n_m), groups=groups,
                         group_names=names, prev=prev)
    frame = {"member_id": m["member_id"].to_numpy(), "branch_id": m["branch_id"].to_numpy(),
             "category": m["category"].to_numpy(), "periods": periods,
             "record": np.round(record, DECIMALS), "appraisal": appraisal, "annual": out["annual"],
             "grade": ms.grades.id_of(out["grade"])}
    if ms.vetoes.n:
        frame["vetoes"] = _fired_names(out["vetoes"], ms.vetoes.ids)
    frame.update(out["consequences"])
    if "true_quality" in m.columns:
        frame["true_quality"] = m["true_quality"].to_numpy()
    return pd.DataFrame(frame), out["cuts"]


def _fired_names(fired: np.ndarray, ids) -> list[str]:
    names = np.array(ids, dtype=object)
    return [",".join(names[row]) for row in fired]


def _branch_frame(b: pd.DataFrame, scheme: Scheme, out: dict) -> pd.DataFrame:
    bs = scheme.branch
    frame = {"branch_id": b["branch_id"].to_numpy(), "type": b["type"].to_numpy()}
    for col in ("level", "n_members"):
        if col in b.columns:
            frame[col] = b[col].to_numpy()
    frame["score"] = out["score"]
    for j, comp in enumerate(bs.components):
        frame[f"sub_{comp}"] = out["subscores"][:, j]
    frame["rating"] = bs.levels.id_of(out["level"])
    for did, held in out["designations"].items():
        frame[did] = held
    frame["vetoes"] = _fired_names(out["vetoes"], bs.vetoes.ids) if bs.vetoes.n else ""
    if bs.rating.direct_ids:
        frame["direct"] = _fired_names(out["direct"], bs.rating.direct_ids)
    frame.update(out["consequences"])
    for key, run in out["streaks"].items():
        frame[f"{key}_streak"] = run
    st = scheme.structure
    if st is not None and "n_members" in b.columns:
        need = required_level(b["n_members"].to_numpy(), st)
        levels = np.array(st.ids, dtype=object)
        frame["required_level"] = levels[need["level"]]
        if "level" in b.columns:
            current = pd.Index(st.ids).get_indexer(b["level"])
            frame["upgrade_to"] = np.where(need["level"] > current, levels[need["level"]], "")
        frame["committee_needed"] = need["committee"]
        frame["below_minimum"] = need["below_minimum"]
    if "true_quality" in b.columns:
        frame["true_quality"] = b["true_quality"].to_numpy()
    return pd.DataFrame(frame)


def _chunk_size(chunk_size) -> int:
    if chunk_size is None:
        return CHUNK_BRANCHES
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive whole number of branches; got {chunk_size!r}")
    return int(chunk_size)


def evaluate_tables(policy: Policy, branches: TableLike, members: TableLike | None = None,
                    member_months: TableLike | None = None, *,
                    names: dict | None = None, chunk_size: int | None = None,
                    previous: Result | None = None) -> Result:
    """Evaluate population tables under ``policy`` (all defects reported at once).

    ``chunk_size`` branches are scored at a time, with their members and
    member-months (default :data:`CHUNK_BRANCHES`): it bounds the memory
    beyond the tables and never changes a number. ``previous`` (last year's
    :class:`Result`) gives the guardrail of a design its last cut points.

    Examples
    --------
    >>> import branchsim as bs, pandas as pd
    >>> ex = bs.data_path("examples")
    >>> r = evaluate_tables(bs.Policy.load(), pd.read_csv(ex / "branches.csv"),
    ...                     pd.read_csv(ex / "members.csv"), pd.read_csv(ex / "member_months.csv"))
    >>> int(r.level_counts().loc[list(r.policy.levels), "count"].sum())
    12
    """
    chunk_size = _chunk_size(chunk_size)
    b, m, mm = check_tables(policy, branches, members, member_months, names=names)
    return evaluate_checked(policy, b, m, mm, chunk_size=chunk_size, previous=previous)


def evaluate_checked(policy: Policy, b: pd.DataFrame, m, mm, truth=None, *,
                     chunk_size: int | None = None, previous: Result | None = None) -> Result:
    """Evaluate tables already in canonical form (from check_tables or generate).

    Member-periods are scored ``chunk_size`` branches at a time (their
    members and periods together), by a compiled kernel where the rule forms
    allow it: memory beyond the tables stays a few bytes per row, and the
    numbers equal the whole-table NumPy computation bit for bit.

    ``truth``, when given, is the population's :class:`branchsim.model.Truth`;
    the branch frame then also has ``true_score``, ``true_rating`` and the
    true designations (``true_<designation>``).
    """
    scheme = policy.scheme
    chunk_size = _chunk_size(chunk_size)
    if m is not None and scheme.member is None:
        m = mm = None                      # a branch-only policy: the members are not rated
    member_cuts = None
    members_out = None
    if m is not None:
        members_out, member_cuts = _member_frame(b, m, mm, scheme, chunk_size)
    inp = branch_inputs(b, scheme, policy_name=policy.name)
    out = branch_outcome(inp, scheme, previous=None if previous is None else previous.cut_points)
    frame = _branch_frame(b, scheme, out)
    if truth is not None:
        for k, v in truth.outcome(scheme, inp).items():
            frame[k] = v
    return Result(frame, members_out, policy, cut_points=out["cuts"], member_cut_points=member_cuts)
