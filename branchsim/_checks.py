"""Checks across the entries of a policy (format 2): what the structural walk cannot see.

Every function takes the (structurally checked) document and returns a list
of problems, each naming its dotted path and what is allowed, so a policy
with several defects reports them all at once (``docs/policy-format.md``,
"Checks across the policy").
"""
from __future__ import annotations

import math

from ._schema import (EXTRA_RULES, MAX_NUMBER, RULE_KEYS, RULE_OPTIONS, RULE_PARAMS, _finite, _is_number,
                      _suggest, _val, range_problem, shown)

__all__ = ["semantic_problems", "merged_indicator", "reserved_columns", "levels_of", "RESERVED_PREFIXES"]

#: Fact names may not start with these: the tables use them for survey answers and streaks.
RESERVED_PREFIXES = ("survey_", "prev_")


def reserved_columns() -> dict[str, set[str]]:
    """Table columns a fact may not be named after: ``{"branch": {...}, "member": {...}}``.

    Read from the data dictionary in :mod:`branchsim.tables`, so the two lists
    cannot drift apart.

    >>> sorted(reserved_columns()["member"])[:3]
    ['appraisal', 'branch_id', 'category']
    """
    from . import tables        # imported here: tables imports policy, which imports this module
    given = tables.RESERVED_COLUMNS     # {table name: column names}
    return {"branch": set(given["branches"]), "member": set(given["members"]) | set(given["member_months"])}


def merged_indicator(base: dict, over: dict | None) -> dict:
    """An indicator with a type's or class's override applied (a fresh dict; inputs unchanged).

    An override that changes the rule drops the base's parameters the new rule
    does not use.

    >>> merged_indicator({"rule": "binary", "points": {"value": 2}}, {"points": {"value": 3}})["points"]
    {'value': 3}
    """
    out = dict(base)
    if not over:
        return out
    if "rule" in over and over["rule"] != base.get("rule"):
        for k in RULE_KEYS:
            out.pop(k, None)
    out.update(over)
    return out


def levels_of(section: dict, key: str) -> list[str]:
    """The level ids of a section (``branch.levels`` or ``member.grades``), best first."""
    levels = section.get(key)
    return [str(k) for k in levels] if isinstance(levels, dict) else []


def _overrides(section: dict) -> dict[str, dict]:
    """``{profile name: {indicator id: override}}`` of a section's types and classes."""
    out = {}
    for block in ("types", "classes"):
        for tid, tdef in (section.get(block) or {}).items():
            if isinstance(tdef, dict):
                out[f"{block}.{tid}"] = tdef.get("indicators") or {}
    return out


def _indicator_problems(section: dict, group_key: str, groups_key: str, path: str, rank_ok: bool) -> list[str]:
    out = []
    inds = section.get("indicators") or {}
    groups = section.get(groups_key) or {}
    facts: dict[str, str] = {}
    for iid, ind in inds.items():
        if not isinstance(ind, dict):
            continue
        if ind.get(group_key) not in groups:
            out.append(f"{path}.indicators.{iid}.{group_key}: {shown(ind.get(group_key))} is not one of "
                       f"{', '.join(groups)}{_suggest(ind.get(group_key), groups)}")
        variants = [(f"{path}.indicators.{iid}", ind)]
        variants += [(f"{path}.{prof}.indicators.{iid}", merged_indicator(ind, over[iid]))
                     for prof, over in _overrides(section).items() if iid in over]
        for where, full in variants:
            out += _rule_problems(full, where, inds, iid, rank_ok)
        fact = ind.get("fact")
        if fact in facts:
            out.append(f"{path}.indicators.{iid}.fact: {shown(fact)} is already the fact of {facts[fact]}")
        facts[fact] = iid
    for prof, over in _overrides(section).items():
        for iid in over:
            if iid not in inds:
                out.append(f"{path}.{prof}.indicators.{iid}: no such indicator{_suggest(iid, inds)}")
    return out


def _rule_problems(ind: dict, where: str, inds: dict, iid: str, rank_ok: bool) -> list[str]:
    rule = ind.get("rule")
    if rule not in RULE_PARAMS:
        return []
    out = []
    need = RULE_PARAMS[rule]
    allowed = set(need) | set(RULE_OPTIONS.get(rule, ()))
    for p in need:
        if p not in ind:
            out.append(f"{where}.{p}: missing (rule {rule!r} needs {', '.join(need)})")
    for p in RULE_KEYS:
        if p in ind and p not in allowed:
            out.append(f"{where}.{p}: not used by rule {rule!r}; allowed: {', '.join(sorted(allowed))}")
    if rule == "rank":
        if not rank_ok:
            out.append(f"{where}.rule: 'rank' is a branch rule only (places are counted among the branches "
                       f"evaluated together)")
        for k in (ind.get("places") or {}):
            if not str(k).isdigit() or int(k) < 1:
                out.append(f"{where}.places: {shown(k)} is not a place; allowed: 1, 2, 3, ...")
    if rule == "zeroing":
        target = ind.get("target")
        if target not in inds:
            out.append(f"{where}.target: {shown(target)} is not an indicator{_suggest(target, inds)}")
        elif target == iid or (inds[target] or {}).get("rule") == "zeroing":
            out.append(f"{where}.target: {shown(target)} cannot be zeroed by a zeroing rule (itself or "
                       f"another zeroing rule)")
    if rule != "deduction" and "keeps_points_at_zero" in ind:
        pass    # reported above as not used by the rule
    if rule == "deduction" and _val(ind, "keeps_points_at_zero", default=False) is not True \
            and all(_is_number(_val(ind, k)) for k in ("points", "required", "per_shortfall")):
        top, lost = _val(ind, "points"), _val(ind, "per_shortfall") * _val(ind, "required")
        if top - lost > 1e-9:
            if _val(ind, "required"):
                out.append(f"{where}.points: {top:g} points, but per_shortfall × required = "
                           f"{_val(ind, 'per_shortfall'):g} × {_val(ind, 'required'):g} = {lost:g}, so a fact of 0 "
                           f"still earns {top - lost:g} of them; raise per_shortfall to at least "
                           f"{top / _val(ind, 'required'):g} if that is not meant, or set "
                           f"keeps_points_at_zero to true if it is")
            else:
                out.append(f"{where}.points: {top:g} points, but required is 0, so a fact of 0 earns full points")
    given = ind.get("range")
    if isinstance(given, dict) and range_problem(given.get("value")) is None:
        if rule in ("binary", "proportion") and given["value"][1] > 1:
            out.append(f"{where}.range: {shown(given['value'])} goes beyond 1; a {rule} fact is in [0, 1]")
        elif rule == "deduction" and _is_number(_val(ind, "required")) and given["value"][1] < _val(ind, "required"):
            out.append(f"{where}.range: {shown(given['value'])} ends below required ({_val(ind, 'required'):g}): "
                       f"no unit could earn full points; allowed: a high end of at least {_val(ind, 'required'):g}")
    return out


def _rule_points(ind: dict) -> float:
    """The most points an indicator gives (its maximum, or what a penalty can take)."""
    if ind.get("rule") == "rank":
        vals = [_val(p) for p in (ind.get("places") or {}).values()] + [_val(ind, "otherwise", default=0)]
        vals = [v for v in vals if _is_number(v)]
        return float(max(vals, default=0.0))
    if ind.get("rule") == "zeroing":
        return 0.0
    pts = _val(ind, "points", default=0)
    return float(pts) if _is_number(pts) and _finite(pts) else 0.0


def _profile_problems(section: dict, group_key: str, groups_key: str, path: str, shares: bool) -> list[str]:
    """Every profile (type, class) keeps points in each weighted group; totals stay representable."""
    out = []
    inds = section.get("indicators") or {}
    groups = section.get(groups_key) or {}
    profiles = {"": {}} | _overrides(section)
    for prof, over in profiles.items():
        totals: dict[str, float] = {}
        sheet = 0.0
        for iid, ind in inds.items():
            if not isinstance(ind, dict):
                continue
            full = merged_indicator(ind, over.get(iid))
            pts = _rule_points(full)
            sheet += pts
            if full.get("rule") not in EXTRA_RULES:
                g = str(full.get(group_key, ind.get(group_key)))
                totals[g] = totals.get(g, 0.0) + pts
        where = f"{path}.{prof}" if prof else f"{path}.indicators"
        if not math.isfinite(sheet) or sheet > MAX_NUMBER:
            out.append(f"{where}: the points add up to {sheet:g}; allowed: totals of at most {MAX_NUMBER:g} per "
                       f"score sheet")
        if shares:
            for gid, g in groups.items():
                share = _val(g, "share", default=1.0)
                if share and totals.get(gid, 0.0) <= 0:
                    out.append(f"{where}: {group_key} {gid!r} has no points left (all its indicators are 0"
                               f"{' for this ' + prof.split('.')[0][:-1] if prof else ''})")
        elif groups_key == "groups" and sum(totals.values()) <= 0:
            out.append(f"{where}: no scored points at all (the record would divide by 0)")
    return out


def _reserved_problems(section: dict, reserved: set[str], table: str, path: str) -> list[str]:
    out = []
    names = [(f"{path}.indicators.{i}.fact", (ind or {}).get("fact")) for i, ind in
             (section.get("indicators") or {}).items() if isinstance(ind, dict)]
    names += [(f"{path}.facts.{f}", f) for f in (section.get("facts") or {})]
    for where, fact in names:
        if fact in reserved or (isinstance(fact, str) and fact.startswith(RESERVED_PREFIXES)):
            out.append(f"{where}: {shown(fact)} is a column of the {table} table itself; name the fact "
                       f"otherwise (reserved: {', '.join(sorted(reserved))}, and names starting with "
                       f"{' or '.join(RESERVED_PREFIXES)})")
    return out


def section_facts(section: dict) -> dict[str, dict]:
    """Every fact a section's tables hold: indicator facts and declared facts, ``{fact: entry}``."""
    out = {ind["fact"]: ind for ind in (section.get("indicators") or {}).values()
           if isinstance(ind, dict) and isinstance(ind.get("fact"), str)}
    for f, entry in (section.get("facts") or {}).items():
        out.setdefault(f, entry)
    return out


def _rating_problems(section: dict, levels: list[str], path: str, type_key: str) -> list[str]:
    out = []
    rating = section.get("rating") or {}
    design = rating.get("design")
    above = levels[:-1]                         # levels with a cut or quota (not the floor)
    cuts = rating.get("cuts") or {}
    quotas = rating.get("quotas") or {}
    for key, given in (("cuts", cuts), ("quotas", quotas)):
        for lv in given:
            if lv not in above:
                out.append(f"{path}.rating.{key}.{lv}: not a level above the floor; allowed: {', '.join(above)}"
                           + ("" if lv not in levels else f" ({lv} is the floor: every unit reaches it)"))
    if design in ("cuts", "cuts_and_quota"):
        missing = [lv for lv in above if lv not in cuts]
        if missing:
            out.append(f"{path}.rating.cuts: missing {', '.join(missing)} (design {design!r} needs a cut for "
                       f"every level above the floor)")
        out += _cut_order(cuts, above, f"{path}.rating.cuts")
    if design == "cuts":
        for tid, tdef in (section.get(type_key) or {}).items():
            over = ((tdef or {}).get("rating") or {}).get("cuts") or {}
            for lv in over:
                if lv not in above:
                    out.append(f"{path}.{type_key}.{tid}.rating.cuts.{lv}: not a level above the floor")
            if over:
                out += _cut_order({**cuts, **over}, above, f"{path}.{type_key}.{tid}.rating.cuts")
    elif design is not None:
        for tid, tdef in (section.get(type_key) or {}).items():
            if ((tdef or {}).get("rating") or {}).get("cuts"):
                out.append(f"{path}.{type_key}.{tid}.rating.cuts: a type's own cut points apply to design "
                           f"'cuts' only (design {design!r} sets its cut points for all units)")
    if design in ("quota", "cuts_and_quota"):
        missing = [lv for lv in above if lv not in quotas]
        if missing:
            out.append(f"{path}.rating.quotas: missing {', '.join(missing)} (design {design!r} needs a quota "
                       f"for every level above the floor)")
        total = sum(_val(q) for q in quotas.values() if _is_number(_val(q)))
        if total > 1 + 1e-9:
            out.append(f"{path}.rating.quotas: add up to {total:.6g}; allowed: at most 1 (the floor takes the rest)")
    for key in ("trim",):
        if key in rating and design not in ("kmeans", "hierarchical"):
            out.append(f"{path}.rating.{key}: applies to the clustering designs (kmeans, hierarchical) only")
    for key in ("resamples", "seed"):
        if key in rating and design != "hierarchical":
            out.append(f"{path}.rating.{key}: applies to design 'hierarchical' only")
    facts = section_facts(section)
    for did, d in (rating.get("direct") or {}).items():
        if not isinstance(d, dict):
            continue
        if d.get("level") not in levels:
            out.append(f"{path}.rating.direct.{did}.level: {shown(d.get('level'))} is not a level; allowed: "
                       f"{', '.join(levels)}")
        if d.get("fact") not in facts:
            out.append(f"{path}.rating.direct.{did}.fact: {shown(d.get('fact'))} is not a fact of this section "
                       f"(an indicator's fact, or one declared in {path}.facts){_suggest(d.get('fact'), facts)}")
    return out


def _cut_order(cuts: dict, above: list[str], where: str) -> list[str]:
    out = []
    given = [(lv, _val(cuts[lv])) for lv in reversed(above) if lv in cuts and _is_number(_val(cuts[lv]))]
    for (l1, c1), (l2, c2) in zip(given, given[1:]):
        if not c2 > c1:
            out.append(f"{where}: the cut of {l2} ({c2:g}) must be above the cut of {l1} ({c1:g}), the level "
                       f"below it")
    return out


def _veto_problems(section: dict, levels: list[str], path: str) -> list[str]:
    out = []
    inds = section.get("indicators") or {}
    facts = section_facts(section)
    for vid, v in (section.get("vetoes") or {}).items():
        if not isinstance(v, dict):
            continue
        where = f"{path}.vetoes.{vid}"
        if ("fact" in v) == ("indicator" in v):
            out.append(f"{where}: give exactly one of 'fact' (a fact column) or 'indicator' (its fact)")
        elif "indicator" in v and v["indicator"] not in inds:
            out.append(f"{where}.indicator: {shown(v['indicator'])} is not an indicator{_suggest(v['indicator'], inds)}")
        elif "fact" in v and v["fact"] not in facts:
            out.append(f"{where}.fact: {shown(v['fact'])} is not a fact of this section (an indicator's fact, or "
                       f"one declared in {path}.facts){_suggest(v['fact'], facts)}")
        if ("below" in v) == ("at_least" in v):
            out.append(f"{where}: give exactly one of 'below' (fires when the fact is below it) or 'at_least'")
        if "cap" in v and "force" in v:
            out.append(f"{where}: give at most one of 'cap' and 'force'")
        for key in ("cap", "force"):
            if key in v and v[key] not in levels:
                out.append(f"{where}.{key}: {shown(v[key])} is not a level; allowed: {', '.join(levels)}")
    return out


def _designation_problems(br: dict, levels: list[str], path: str) -> list[str]:
    out = []
    vetoes = br.get("vetoes") or {}
    facts = section_facts(br)
    answers = ((br.get("survey") or {}).get("answer_values") or {})
    need = {"score_below": ("below",), "survey_below": ("below",), "veto": ("veto",),
            "fact_below": ("fact", "below"), "fact_at_least": ("fact", "at_least"), "last_place": (),
            "level": ("level",)}
    rating = br.get("rating") or {}
    cuts = rating.get("cuts") or {}
    top = _val(cuts.get(levels[0])) if levels and levels[0] in cuts and rating.get("design") == "cuts" else None
    seen: dict[str, str] = {lv: "a level" for lv in levels}
    for did, des in (br.get("designations") or {}).items():
        if did in seen:
            out.append(f"{path}.designations.{did}: the id is already {seen[did]}; ids of levels, "
                       f"designations and criteria name the streak columns prev_<id>, so each must be unique")
        seen[did] = f"designation {did!r}"
        for cid in ((des or {}).get("criteria") or {}):
            if cid in seen:
                out.append(f"{path}.designations.{did}.criteria.{cid}: the id is already {seen[cid]}; ids of "
                           f"levels, designations and criteria name the streak columns prev_<id>, so each must "
                           f"be unique")
            seen[cid] = f"a criterion of {did!r}"
    for did, des in (br.get("designations") or {}).items():
        for cid, c in ((des or {}).get("criteria") or {}).items():
            if not isinstance(c, dict) or c.get("kind") not in need:
                continue
            where = f"{path}.designations.{did}.criteria.{cid}"
            kind = c["kind"]
            for k in need[kind]:
                if k not in c:
                    out.append(f"{where}.{k}: missing (kind {kind!r} needs {', '.join(need[kind])})")
            extra = {"below", "at_least", "veto", "fact", "answers", "within", "level", "or_below"} - set(need[kind])
            extra -= {"answers"} if kind == "survey_below" else set()
            extra -= {"within"} if kind == "last_place" else set()
            extra -= {"or_below"} if kind == "level" else set()
            for k in sorted(extra & set(c)):
                out.append(f"{where}.{k}: not used by kind {kind!r}")
            if kind == "veto" and "veto" in c and c["veto"] not in vetoes:
                out.append(f"{where}.veto: {shown(c['veto'])} is not a veto of this section"
                           f"{_suggest(c['veto'], vetoes)}")
            if kind.startswith("fact_") and "fact" in c and c["fact"] not in facts:
                out.append(f"{where}.fact: {shown(c['fact'])} is not a fact (an indicator's fact, or one declared "
                           f"in {path}.facts){_suggest(c['fact'], facts)}")
            if kind == "survey_below":
                if not answers:
                    out.append(f"{where}: the policy has no survey")
                for a in c.get("answers") or []:
                    if a not in answers:
                        out.append(f"{where}.answers: {shown(a)} is not a survey answer; allowed: "
                                   f"{', '.join(answers)}")
            if kind == "level" and "level" in c and c["level"] not in levels:
                out.append(f"{where}.level: {shown(c['level'])} is not a level; allowed: {', '.join(levels)}")
            if kind == "score_below" and _is_number(top) and _is_number(_val(c, "below")) and _val(c, "below") > top:
                out.append(f"{where}.below: {_val(c, 'below'):g} is above the cut of the top level {levels[0]} "
                           f"({top:g}): a unit could get the top level and be designated at once; allowed: at "
                           f"most {top:g}")
    return out


def _share_problems(data: dict) -> list[str]:
    out = []
    br = data.get("branch") or {}
    form = (br.get("score") or {}).get("form", "shares")
    survey = br.get("survey") is not None
    has_share = "satisfaction_share" in br
    if survey and not has_share:
        out.append("branch.satisfaction_share: missing (the policy has a survey: give its share of the score)")
    if has_share and not survey:
        out.append("branch.satisfaction_share: the policy has no survey (add branch.survey or remove the share)")
    if form == "shares":
        dims = br.get("dimensions") or {}
        missing = [d for d, v in dims.items() if isinstance(v, dict) and "share" not in v]
        if missing:
            out.append(f"branch.dimensions: {', '.join(missing)} without a share (form 'shares' weights every "
                       f"dimension)")
        shares = [_val(br, "satisfaction_share", default=0)] + [_val(d, "share", default=0) for d in dims.values()]
        if all(_is_number(s) for s in shares) and abs(sum(shares) - 1.0) > 1e-9:
            out.append(f"branch: satisfaction_share + dimensions.*.share add up to {sum(shares):.6g}; they must "
                       f"add up to 1 (the score is on 100 points)")
        for key in ("base", "cap", "floor", "bonus_cap"):
            if key in (br.get("score") or {}):
                out.append(f"branch.score.{key}: applies to form 'points' only")
        for d, v in dims.items():
            if isinstance(v, dict) and "cap" in v:
                out.append(f"branch.dimensions.{d}.cap: applies to form 'points' only")
    mb = data.get("member")
    if isinstance(mb, dict):
        ms = [_val(mb, "record_share"), _val(mb, "appraisal_share")]
        if all(_is_number(s) for s in ms) and abs(sum(ms) - 1.0) > 1e-9:
            out.append(f"member: record_share + appraisal_share add up to {sum(ms):.6g}; they must add up to 1")
    return out


def _consequence_problems(data: dict, levels: list[str], grades: list[str]) -> list[str]:
    out = []
    designations = (data.get("branch") or {}).get("designations") or {}
    for aid, a in (data.get("consequences") or {}).items():
        if not isinstance(a, dict):
            continue
        where = f"consequences.{aid}"
        when = a.get("when") or {}
        keys = [k for k in ("designation", "level", "grade") if k in when]
        if len(keys) != 1:
            out.append(f"{where}.when: name exactly one condition (designation, level or grade), got "
                       f"{', '.join(keys) or 'none'}")
            continue
        key = keys[0]
        unit = a.get("unit")
        if unit == "member" and key != "grade" or unit == "branch" and key == "grade":
            out.append(f"{where}.when.{key}: a {unit} consequence follows a "
                       f"{'grade' if unit == 'member' else 'designation or level'}")
            continue
        if unit == "member" and not isinstance(data.get("member"), dict):
            out.append(f"{where}.unit: the policy has no member section")
        known = {"designation": designations, "level": levels, "grade": grades}[key]
        if when[key] not in known:
            out.append(f"{where}.when.{key}: {shown(when[key])} is not a {key}; allowed: {', '.join(known)}")
        if "or_below" in when and key == "designation":
            out.append(f"{where}.when.or_below: applies to a level or grade")
    return out


def _intervention_problems(data: dict, levels: list[str]) -> list[str]:
    out = []
    designations = (data.get("branch") or {}).get("designations") or {}
    for iid, iv in (data.get("interventions") or {}).items():
        if not isinstance(iv, dict):
            continue
        where = f"interventions.{iid}"
        if iv.get("select") == "lowest":     # a count, a coverage share of the `among` units, or both
            if "count" not in iv and "coverage" not in iv:
                out.append(f"{where}.count: missing (select 'lowest' needs a count, a coverage or both)")
        else:
            if "coverage" not in iv:
                out.append(f"{where}.coverage: missing (select {iv.get('select')!r} needs it)")
            if "count" in iv:
                out.append(f"{where}.count: not used by select {iv.get('select')!r}")
        among = iv.get("among") or {}
        if "designation" in among and among["designation"] not in designations:
            out.append(f"{where}.among.designation: {shown(among['designation'])} is not a designation")
        if "level" in among and among["level"] not in levels:
            out.append(f"{where}.among.level: {shown(among['level'])} is not a level")
    return out


def _structure_problems(data: dict) -> list[str]:
    st = data.get("structure")
    if not isinstance(st, dict):
        return []
    out = []
    order = [(lid, _val(lv, "from")) for lid, lv in (st.get("levels") or {}).items() if isinstance(lv, dict)]
    for (l1, v1), (l2, v2) in zip(order, order[1:]):
        if _is_number(v1) and _is_number(v2) and not v2 > v1:
            out.append(f"structure.levels.{l2}.from ({v2}) must be above structure.levels.{l1}.from ({v1})")
    return out


def semantic_problems(data: dict) -> list[str]:
    """Checks that span several entries of a format-2 document."""
    out: list[str] = []
    br = data["branch"]
    mb = data.get("member") if isinstance(data.get("member"), dict) else None
    reserved = reserved_columns()
    levels = levels_of(br, "levels")
    grades = levels_of(mb, "grades") if mb else []
    out += _share_problems(data)
    out += _reserved_problems(br, reserved["branch"], "branches", "branch")
    out += _indicator_problems(br, "dimension", "dimensions", "branch", rank_ok=True)
    out += _profile_problems(br, "dimension", "dimensions", "branch",
                             shares=(br.get("score") or {}).get("form", "shares") == "shares")
    if len(levels) < 2:
        out.append("branch.levels: at least 2 levels (the last is the floor)")
    out += _rating_problems(br, levels, "branch", "types")
    out += _veto_problems(br, levels, "branch")
    out += _designation_problems(br, levels, "branch")
    branch_facts = set(section_facts(br))
    if mb:
        out += _reserved_problems(mb, reserved["member"], "members or member_months", "member")
        out += _indicator_problems(mb, "group", "groups", "member", rank_ok=False)
        out += _profile_problems(mb, "group", "groups", "member", shares=False)
        if len(grades) < 2:
            out.append("member.grades: at least 2 grades (the last is the floor)")
        out += _rating_problems(mb, grades, "member", "types")
        out += _veto_problems(mb, grades, "member")
        clash = branch_facts & set(section_facts(mb))
        if clash:
            out.append(f"member: fact column(s) {sorted(clash)} are also branch facts; use other names")
        for t in sorted(set(mb.get("types") or {}) - set(br.get("types") or {})):
            out.append(f"member.types.{t}: not a branch type; allowed: {', '.join(br.get('types') or {})}")
        if (mb.get("rating") or {}).get("peer_groups") not in (None, "type", "class"):
            out.append(f"member.rating.peer_groups: {shown(mb['rating']['peer_groups'])}; allowed: type (the "
                       f"member's branch type) or class")
    out += _consequence_problems(data, levels, grades)
    out += _intervention_problems(data, levels)
    out += _structure_problems(data)
    return out
