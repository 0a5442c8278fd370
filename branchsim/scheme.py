"""The compiled form of a policy: arrays of rules, level lists and the rating design.

A :class:`Scheme` is built once from a :class:`~branchsim.policy.Policy`
(``policy.scheme``) and passed down to scoring, rating, generation and the
analyses, so no room compiles the policy again. Everything scheme-specific
(how many levels and what they are called, which rule forms, which design)
is read from the policy here; the rooms below work on the arrays.

Conventions
-----------
* **Level codes** count from the floor: 0 is the lowest level (the floor),
  ``L - 1`` the best. ``Levels.ids`` lists ids best first, as the file does.
* **Profiles**: rules may differ by branch type (and, for members, by member
  class); a unit's *profile* indexes the first axis of every per-profile array.
* **Cut arrays** are ascending: ``cuts[..., j]`` is the minimum score of the
  level with code ``j + 1``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np

from ._checks import merged_indicator, section_facts
from ._schema import EXTRA_RULES, fact_range

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Scheme", "Levels", "Sheet", "BranchScheme", "MemberScheme", "Rating", "Vetoes", "Criterion",
           "Designation", "Consequence", "Intervention", "Structure", "RULE_CODES", "compile_scheme"]

#: Rule form → code. The first four keep their codes of format 1 (the compiled kernels use them).
RULE_CODES = {"binary": 0, "deduction": 1, "proportion": 2, "bonus": 3, "per_event": 4, "per_occurrence": 5,
              "penalty": 6, "zeroing": 7, "rank": 8}
#: Codes whose points do not count in the maximum.
EXTRA_CODES = tuple(RULE_CODES[r] for r in EXTRA_RULES)
SURVEY_COMPONENT = "satisfaction"
SHEET_COMPONENT = "sheet"


def _v(node, key: str, default=np.nan):
    """A parameter's value (``default`` when absent)."""
    leaf = node.get(key) if isinstance(node, dict) else None
    return leaf["value"] if isinstance(leaf, dict) and "value" in leaf else default


@dataclass(frozen=True)
class Levels:
    """An ordered list of levels (a rating's levels, member grades), best first."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    en: tuple[str, ...]

    @classmethod
    def from_section(cls, levels: dict) -> "Levels":
        ids = tuple(levels)
        return cls(ids, tuple(str(levels[i].get("label", i)) for i in ids),
                   tuple(str(levels[i].get("en", levels[i].get("label", i))) for i in ids))

    @property
    def n(self) -> int:
        return len(self.ids)

    def code(self, level: str) -> int:
        """Code of a level id: 0 for the floor, ``n - 1`` for the best."""
        return self.n - 1 - self.ids.index(level)

    def id_of(self, codes: ArrayLike) -> np.ndarray:
        """Level ids (object array) of an array of codes; a negative code (not rated) gives None."""
        table = np.array(list(reversed(self.ids)) + [None], dtype=object)
        codes = np.asarray(codes)
        return table[np.where(codes < 0, self.n, codes)]

    @property
    def worst_first(self) -> tuple[str, ...]:
        return tuple(reversed(self.ids))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Sheet:
    """A section's indicators compiled to arrays (``k`` indicators, ``P`` profiles, ``g`` groups)."""

    ids: tuple[str, ...]
    facts: tuple[str, ...]
    labels: tuple[str, ...]
    group_ids: tuple[str, ...]
    group: np.ndarray            # (k,) group index
    profiles: tuple[str, ...]
    kind: np.ndarray             # (P, k) int8 rule codes
    points: np.ndarray           # (P, k) maximum points (what a penalty can take; a rank's first place)
    required: np.ndarray         # (P, k) deduction
    per_shortfall: np.ndarray    # (P, k) deduction
    per_unit: np.ndarray         # (P, k) bonus
    per_event: np.ndarray        # (P, k) per_event
    per_occurrence: np.ndarray   # (P, k) per_occurrence, penalty
    at_least: np.ndarray         # (P, k) binary, zeroing (default 1)
    target: np.ndarray           # (k,) zeroing: index of the zeroed indicator (-1: none)
    places: np.ndarray           # (P, k, m) rank: points of places 1..m-1, then `otherwise` (column m)
    otherwise: np.ndarray        # (P, k) rank: points beyond the listed places
    within: tuple                # (k,) rank: None (all units) or a branch column
    high_first: np.ndarray       # (k,) rank: a higher fact is a better place
    state: np.ndarray            # (k,) bool: the fact describes the unit's state
    ranges: np.ndarray           # (k, 2) plausible range of each fact

    def __post_init__(self):
        # Compiled arrays are read-only: the derived arrays below are computed once and kept, so a
        # change in place would make them stale; it raises instead.
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v.flags.writeable = False

    @property
    def k(self) -> int:
        return len(self.ids)

    @property
    def uniform(self) -> bool:
        """Whether every profile uses the same rule form for each indicator."""
        return bool((self.kind == self.kind[:1]).all())

    @cached_property
    def scored(self) -> np.ndarray:
        """(P, k) whether an indicator counts in its group's maximum."""
        return _read_only(~np.isin(self.kind, EXTRA_CODES))

    @cached_property
    def group_max(self) -> np.ndarray:
        """(P, g) maximum points of each group's scored indicators for each profile (added in column order, as
        the points are: :func:`branchsim.scoring.ordered_product`)."""
        from .scoring import ordered_product
        return _read_only(ordered_product(np.where(self.scored, self.points, 0.0), self.onehot))

    @cached_property
    def onehot(self) -> np.ndarray:
        """(k, g) indicator → group."""
        return _read_only(np.eye(len(self.group_ids))[self.group])

    def has(self, rule: str) -> bool:
        return bool((self.kind == RULE_CODES[rule]).any())


@dataclass(frozen=True)
class Rating:
    """A rating design compiled: how scores become level codes."""

    design: str
    levels: Levels
    cuts: np.ndarray | None          # (P, L-1) ascending, per profile (cuts designs)
    quotas: np.ndarray | None        # (L-1,) ascending by code: share of units at exactly that level
    peer_groups: str | None
    trim: bool
    resamples: int
    seed: int
    guardrail: float                 # nan: none
    direct_ids: tuple[str, ...]
    direct_fact: tuple[str, ...]
    direct_at_least: np.ndarray      # (d,)
    direct_level: np.ndarray         # (d,) level codes

    @property
    def relative(self) -> bool:
        """Whether a unit's level depends on the other units (quotas, clustering)."""
        return self.design != "cuts"

    @property
    def allowed_shares(self) -> np.ndarray | None:
        """(L-1,) cumulative share of units allowed at each level code or better (ascending codes)."""
        if self.quotas is None:
            return None
        return np.cumsum(self.quotas[::-1])[::-1]


@dataclass(frozen=True)
class Vetoes:
    """One-vote vetoes: a fact below (or at least) a value caps or forces a level."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    fact: tuple[str, ...]
    threshold: np.ndarray       # (v,)
    at_least: np.ndarray        # (v,) bool: fires when fact >= threshold (else fact < threshold)
    effect: tuple[str, ...]     # "cap" | "force" | "" (none: read by designations only)
    level: np.ndarray           # (v,) level code of the cap or force (-1: none)
    active: np.ndarray          # (v,) bool

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str
    value: float = np.nan        # below / at_least
    fact: str | None = None
    veto: int = -1               # index into Vetoes
    answers: tuple[str, ...] = ()
    within: str | None = None
    level: int = -1
    or_below: bool = False
    years: int = 1


@dataclass(frozen=True)
class Designation:
    id: str
    label: str
    en: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Consequence:
    id: str
    label: str
    unit: str                    # branch | member
    kind: str                    # designation | level | grade
    target: str                  # the designation, level or grade id
    code: int                    # level / grade code (-1 for designations)
    or_below: bool
    years: int
    effect: float


@dataclass(frozen=True)
class Intervention:
    id: str
    label: str
    select: str                  # lowest | random
    among_kind: str | None       # designation | level | None
    among: str | None
    among_code: int
    or_below: bool
    count: int                   # lowest: at most this many (-1: no cap); random: unused (0)
    coverage: float              # lowest: the share of the `among` units reached, lowest first (1 when
    effect: float                # not given); random: each `among` unit's chance


@dataclass(frozen=True)
class Structure:
    ids: tuple[str, ...]         # smallest first
    labels: tuple[str, ...]
    start: np.ndarray            # (l,) members from which each level is called for
    committee_from: float        # nan: none


@dataclass(frozen=True)
class BranchScheme:
    types: tuple[str, ...]
    sheet: Sheet
    form: str                    # shares | points
    components: tuple[str, ...]
    weights: np.ndarray          # (t, c) shares of the 100-point score
    base: float
    cap: float
    floor: float
    bonus_cap: float
    dim_cap: np.ndarray          # (t, g) points form: cap of a dimension's scored points (inf: none)
    dim_bonus_cap: np.ndarray    # (t, g) cap of a dimension's bonus points (inf: none)
    answers: tuple[str, ...]
    answer_labels: tuple[str, ...]
    answer_values: np.ndarray    # (a,)
    levels: Levels
    rating: Rating
    vetoes: Vetoes
    designations: tuple[Designation, ...]
    facts: tuple[str, ...]       # every fact column the branches table needs (indicators, then declared)
    fact_entries: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def survey(self) -> bool:
        return len(self.answers) > 0

    @property
    def survey_columns(self) -> tuple[str, ...]:
        return tuple(f"survey_{a}" for a in self.answers)

    @property
    def state_facts(self) -> tuple[str, ...]:
        """Facts that describe a branch's state (drawn with its truth, recorded without error)."""
        out = [f for f, s in zip(self.sheet.facts, self.sheet.state) if s]
        out += [f for f, e in self.fact_entries.items() if e.get("state") and f not in out]
        return tuple(out)


@dataclass(frozen=True)
class MemberScheme:
    types: tuple[str, ...]
    classes: tuple[str, ...]     # the policy's member classes (empty: any category, one class)
    profiles: tuple[str, ...]    # "type" or "type/class"
    sheet: Sheet
    periods: int
    accrual: str                 # mean | sum
    record_share: float
    appraisal_share: float
    cap: float                   # nan: none
    bonus_cap: float             # nan: none
    grades: Levels
    rating: Rating
    vetoes: Vetoes
    exempt: np.ndarray           # (P,) bool: members of this profile are not graded
    facts: tuple[str, ...]       # member facts of the members table (declared)
    fact_entries: dict = field(repr=False, compare=False, default_factory=dict)

    def profile_index(self, type_idx: np.ndarray, class_idx: np.ndarray | None) -> np.ndarray:
        """Profile of each member from its branch type (and class) codes."""
        if not self.classes or class_idx is None:
            return np.asarray(type_idx)
        return np.asarray(type_idx) * len(self.classes) + np.asarray(class_idx)


@dataclass(frozen=True)
class Scheme:
    """A policy compiled once: what every room needs, as arrays and small records.

    >>> import branchsim as bs
    >>> s = bs.Policy.load().scheme
    >>> s.branch.levels.n, s.branch.sheet.k, s.member.periods
    (4, 35, 12)
    """

    name: str
    branch: BranchScheme
    member: MemberScheme | None
    consequences: tuple[Consequence, ...]
    interventions: tuple[Intervention, ...]
    structure: Structure | None

    def consequences_of(self, unit: str) -> tuple[Consequence, ...]:
        return tuple(c for c in self.consequences if c.unit == unit)


# -- compilation -------------------------------------------------------------------
def _sheet(section: dict, group_key: str, groups_key: str, profiles: list[tuple[str, list[dict]]]) -> Sheet:
    """Indicators of a section for each profile (``(name, [override, ...])`` applied in order)."""
    inds = section["indicators"]
    ids = tuple(inds)
    groups = list(section[groups_key])
    P, k = len(profiles), len(ids)
    arrays = {name: np.zeros((P, k)) for name in ("points", "required", "per_shortfall", "per_unit",
                                                   "per_event", "per_occurrence", "otherwise")}
    at_least = np.ones((P, k))
    kind = np.zeros((P, k), dtype=np.int8)
    # One column per listed place and one more for `otherwise`: the last column serves every place
    # beyond the listed ones (rank_points), so a place after the last listed earns `otherwise`.
    m = max([int(n) for ind in inds.values() for n in (ind.get("places") or {})] + [0]) + 1
    for p, (_, overs) in enumerate(profiles):
        for j, iid in enumerate(ids):
            full = inds[iid]
            for over in overs:
                full = merged_indicator(full, ((over or {}).get("indicators") or {}).get(iid))
            kind[p, j] = RULE_CODES[full["rule"]]
            for name in arrays:
                arrays[name][p, j] = _v(full, name, 0.0)
            at_least[p, j] = _v(full, "at_least", 1.0)
            if full["rule"] == "rank":
                places = full.get("places") or {}
                vals = [_v(places, str(i + 1), np.nan) for i in range(m)]
                arrays["points"][p, j] = max([v for v in vals if v == v] + [arrays["otherwise"][p, j]])
    places = np.zeros((P, k, m))
    for p, (_, overs) in enumerate(profiles):
        for j, iid in enumerate(ids):
            full = inds[iid]
            for over in overs:
                full = merged_indicator(full, ((over or {}).get("indicators") or {}).get(iid))
            given = full.get("places") or {}
            otherwise = arrays["otherwise"][p, j]
            places[p, j] = [_v(given, str(i + 1), otherwise) for i in range(m)]
    target = np.array([ids.index(inds[i]["target"]) if inds[i].get("rule") == "zeroing" else -1 for i in ids],
                      dtype=np.intp)
    return Sheet(
        ids=ids, facts=tuple(inds[i]["fact"] for i in ids),
        labels=tuple(str(inds[i].get("label", i)) for i in ids),
        group_ids=tuple(groups),
        group=np.array([groups.index(inds[i][group_key]) for i in ids], dtype=np.intp),
        profiles=tuple(name for name, _ in profiles), kind=kind, at_least=at_least, target=target,
        places=places, within=tuple((inds[i].get("within") if inds[i].get("within") not in (None, "all") else None)
                                    for i in ids),
        high_first=np.array([inds[i].get("order", "high_first") == "high_first" for i in ids], dtype=bool),
        state=np.array([bool(inds[i].get("state", False)) for i in ids], dtype=bool),
        ranges=np.array([fact_range(inds[i]) for i in ids], dtype=float).reshape(k, 2),
        **{name: arrays[name] for name in ("points", "required", "per_shortfall", "per_unit", "per_event",
                                           "per_occurrence", "otherwise")})


def _rating(section: dict, levels: Levels, profiles: list[tuple[str, list[dict]]]) -> Rating:
    r = section["rating"]
    above = list(levels.worst_first[1:])                 # ascending codes 1..L-1
    cuts = None
    if r.get("cuts"):
        cuts = np.full((len(profiles), len(above)), np.nan)
        for p, (_, overs) in enumerate(profiles):
            given = dict(r["cuts"])
            for over in overs:
                given.update(((over or {}).get("rating") or {}).get("cuts") or {})
            cuts[p] = [_v(given, lv) for lv in above]
    quotas = np.array([_v(r.get("quotas") or {}, lv, 0.0) for lv in above]) if r.get("quotas") else None
    direct = r.get("direct") or {}
    return Rating(
        design=r["design"], levels=levels, cuts=cuts, quotas=quotas, peer_groups=r.get("peer_groups"),
        trim=bool(_v(r, "trim", False)), resamples=int(_v(r, "resamples", 10)), seed=int(_v(r, "seed", 0)),
        guardrail=float(_v(r, "guardrail")),
        direct_ids=tuple(direct), direct_fact=tuple(d["fact"] for d in direct.values()),
        direct_at_least=np.array([_v(d, "at_least") for d in direct.values()], dtype=float),
        direct_level=np.array([levels.code(d["level"]) for d in direct.values()], dtype=np.int8))


def _vetoes(section: dict, levels: Levels) -> Vetoes:
    vetoes = section.get("vetoes") or {}
    inds = section["indicators"]
    ids = tuple(vetoes)

    def fact(v):
        return v["fact"] if "fact" in v else inds[v["indicator"]]["fact"]

    return Vetoes(
        ids=ids, labels=tuple(str(vetoes[v].get("label", v)) for v in ids),
        fact=tuple(fact(vetoes[v]) for v in ids),
        threshold=np.array([_v(vetoes[v], "below") if "below" in vetoes[v] else _v(vetoes[v], "at_least")
                            for v in ids], dtype=float),
        at_least=np.array(["at_least" in vetoes[v] for v in ids], dtype=bool),
        effect=tuple("cap" if "cap" in vetoes[v] else "force" if "force" in vetoes[v] else "" for v in ids),
        level=np.array([levels.code(vetoes[v].get("cap", vetoes[v].get("force")))
                        if ("cap" in vetoes[v] or "force" in vetoes[v]) else -1 for v in ids], dtype=np.int8),
        active=np.array([bool(_v(vetoes[v], "active", True)) for v in ids], dtype=bool))


def _designations(br: dict, levels: Levels, vetoes: Vetoes) -> tuple[Designation, ...]:
    out = []
    for did, d in (br.get("designations") or {}).items():
        crits = []
        for cid, c in d["criteria"].items():
            kind = c["kind"]
            value = _v(c, "below") if "below" in c else _v(c, "at_least")
            crits.append(Criterion(
                id=cid, kind=kind, value=float(value), fact=c.get("fact"),
                veto=vetoes.ids.index(c["veto"]) if kind == "veto" else -1,
                answers=tuple(c.get("answers") or ()),
                within=c.get("within") if c.get("within") not in (None, "all") else None,
                level=levels.code(c["level"]) if kind == "level" else -1,
                or_below=bool(c.get("or_below", False)), years=int(_v(c, "years", 1))))
        out.append(Designation(did, str(d.get("label", did)), str(d.get("en", d.get("label", did))), tuple(crits)))
    return tuple(out)


def _branch(policy) -> BranchScheme:
    br = policy._data["branch"]
    types = list(br["types"])
    profiles = [(t, [br["types"][t]]) for t in types]
    sheet = _sheet(br, "dimension", "dimensions", profiles)
    score = br.get("score") or {}
    form = score.get("form", "shares")
    dims = list(br["dimensions"])
    survey = br.get("survey")
    answers = tuple(survey["answer_values"]) if survey else ()
    s = _v(br, "satisfaction_share", 0.0)
    share_t = np.array([_v(br["types"][t], "satisfaction_share", s) for t in types], dtype=float)
    if form == "shares":
        comps = tuple(dims) + ((SURVEY_COMPONENT,) if survey else ())
        weights = np.empty((len(types), len(comps)))
        for i, t in enumerate(types):
            over = br["types"][t].get("dimensions") or {}
            dim_share = np.array([_v(over.get(d) or {}, "share", _v(br["dimensions"][d], "share", 0.0))
                                  for d in dims], dtype=float)
            st = share_t[i]
            # The dimensions fill what the survey leaves, in proportion to their shares: a type's
            # own survey share re-normalises them for that type. (The same expression as the
            # sweep's scenario weights, so a scenario equal to the policy is bit-identical.)
            weights[i, :len(dims)] = dim_share * ((1 - st) / dim_share.sum()) if dim_share.sum() else 0.0
            if survey:
                weights[i, -1] = st
    else:
        comps = (SHEET_COMPONENT,) + ((SURVEY_COMPONENT,) if survey else ())
        weights = np.column_stack([1 - share_t] + ([share_t] if survey else []))

    def dim_param(key):
        out = np.full((len(types), len(dims)), np.inf)
        for i, t in enumerate(types):
            over = br["types"][t].get("dimensions") or {}
            for g, d in enumerate(dims):
                out[i, g] = _v(over.get(d) or {}, key, _v(br["dimensions"][d], key, np.inf))
        return out

    levels = Levels.from_section(br["levels"])
    vetoes = _vetoes(br, levels)
    facts = list(sheet.facts)
    entries = section_facts(br)
    for f in list(br.get("facts") or {}):
        if f not in facts:
            facts.append(f)
    return BranchScheme(
        types=tuple(types), sheet=sheet, form=form, components=comps, weights=weights,
        base=float(_v(score, "base", 0.0)), cap=float(_v(score, "cap", np.inf)),
        floor=float(_v(score, "floor", -np.inf)), bonus_cap=float(_v(score, "bonus_cap", np.inf)),
        dim_cap=dim_param("cap"), dim_bonus_cap=dim_param("bonus_cap"),
        answers=answers,
        answer_labels=tuple(str(((survey or {}).get("answer_labels") or {}).get(a, a)) for a in answers),
        answer_values=np.array([_v(survey["answer_values"], a) for a in answers], dtype=float),
        levels=levels, rating=_rating(br, levels, profiles), vetoes=vetoes,
        designations=_designations(br, levels, vetoes), facts=tuple(facts),
        fact_entries={f: e for f, e in entries.items() if f in (br.get("facts") or {})})


def _member(policy, types: tuple[str, ...]) -> MemberScheme | None:
    mb = policy._data.get("member")
    if not isinstance(mb, dict):
        return None
    classes = tuple(mb.get("classes") or ())
    tdefs, cdefs = mb.get("types") or {}, mb.get("classes") or {}
    if classes:
        profiles = [(f"{t}/{c}", [tdefs.get(t), cdefs[c]]) for t in types for c in classes]
        exempt = np.array([bool(_v(cdefs[c], "exempt", False)) for _ in types for c in classes], dtype=bool)
    else:
        profiles = [(t, [tdefs.get(t)]) for t in types]
        exempt = np.zeros(len(types), dtype=bool)
    grades = Levels.from_section(mb["grades"])
    score = mb.get("score") or {}
    entries = section_facts(mb)
    return MemberScheme(
        types=types, classes=classes, profiles=tuple(n for n, _ in profiles),
        sheet=_sheet(mb, "group", "groups", profiles), periods=int(mb["record"]["periods"]),
        accrual=mb["record"]["accrual"], record_share=float(_v(mb, "record_share")),
        appraisal_share=float(_v(mb, "appraisal_share")), cap=float(_v(score, "cap")),
        bonus_cap=float(_v(score, "bonus_cap")), grades=grades, rating=_rating(mb, grades, profiles),
        vetoes=_vetoes(mb, grades), exempt=exempt, facts=tuple(mb.get("facts") or ()),
        fact_entries={f: e for f, e in entries.items() if f in (mb.get("facts") or {})})


def _consequences(data: dict, branch: BranchScheme, member: MemberScheme | None) -> tuple[Consequence, ...]:
    out = []
    for aid, a in (data.get("consequences") or {}).items():
        when = a["when"]
        kind = next(k for k in ("designation", "level", "grade") if k in when)
        target = when[kind]
        code = branch.levels.code(target) if kind == "level" else \
            member.grades.code(target) if kind == "grade" else -1
        out.append(Consequence(aid, str(a.get("label", aid)), a["unit"], kind, target, code,
                               bool(when.get("or_below", False)), int(_v(when, "years", 1)),
                               float(_v(a, "effect", 0.0))))
    return tuple(out)


def _interventions(data: dict, branch: BranchScheme) -> tuple[Intervention, ...]:
    out = []
    for iid, iv in (data.get("interventions") or {}).items():
        among = iv.get("among") or {}
        kind = "designation" if "designation" in among else "level" if "level" in among else None
        out.append(Intervention(
            iid, str(iv.get("label", iid)), iv["select"], kind, among.get(kind) if kind else None,
            branch.levels.code(among["level"]) if kind == "level" else -1, bool(among.get("or_below", False)),
            # a lowest-first intervention without a count reaches its coverage share; without a coverage, its count
            int(_v(iv, "count", -1 if iv["select"] == "lowest" else 0)),
            float(_v(iv, "coverage", 1.0 if iv["select"] == "lowest" else 0.0)), float(_v(iv, "effect", 0.0))))
    return tuple(out)


def _structure(data: dict) -> Structure | None:
    st = data.get("structure")
    if not isinstance(st, dict):
        return None
    levels = st["levels"]
    return Structure(tuple(levels), tuple(str(v.get("label", k)) for k, v in levels.items()),
                     np.array([_v(v, "from") for v in levels.values()], dtype=float),
                     float(_v(st, "committee_from")))


def compile_scheme(policy) -> Scheme:
    """Compile a policy (use ``policy.scheme``, which compiles once and keeps the result)."""
    branch = _branch(policy)
    member = _member(policy, branch.types)
    data = policy._data
    return Scheme(name=policy.name, branch=branch, member=member,
                  consequences=_consequences(data, branch, member),
                  interventions=_interventions(data, branch), structure=_structure(data))
