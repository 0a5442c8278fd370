"""The steps of one branch for :func:`branchsim.explain`: sheet, survey, score, rating, designations.

Everything is read off one evaluation of the whole branches table
(:func:`branchsim.evaluate.branch_outcome`, the code :func:`branchsim.evaluate`
runs), so ranks, quotas, clusters and last places are those of the
population; the lines only lay out how the unit's numbers come about. The
lines that add (``adds``) sum to the unit's score for either score form:

* ``shares``: each indicator adds ``100 × share_d × points / max_d``; a line
  for a dimension's bonus cap and one for the clip of its fraction to [0, 1]
  when they bind; the survey adds ``100 × share × rate``.
* ``points``: the base and each indicator add ``(1 − s) × points``; lines for
  the dimension caps, the bonus caps and the clip of the sheet to its floor
  and cap when they bind; the survey adds ``100 × s × rate``.
"""
from __future__ import annotations

import numpy as np

from . import rating as rt
from ._explain_lines import RULE_PARAMS, RULES, Lines, cut_text, first, indicator_path, level_text, num, pts, \
    rule_text, veto_effect, vetoes_text
from .errors import BranchsimError
from .evaluate import branch_inputs, branch_outcome
from .scheme import EXTRA_CODES, RULE_CODES
from .scoring import answer_share, required_level, satisfaction_rate

__all__ = ["branch_steps"]


class _Unit:
    """One branch of an evaluated table: its row ``i``, type ``t`` and the outcome arrays."""

    def __init__(self, policy, b, i: int):
        self.policy, self.b, self.i = policy, b, i
        self.scheme = policy.scheme
        self.bs = self.scheme.branch
        self.inp = branch_inputs(b, self.scheme, policy_name=policy.name)
        self.out = branch_outcome(self.inp, self.scheme)
        self.t = int(self.inp.type_idx[i])
        self.tid = self.bs.types[self.t]
        self.score = float(self.out["score"][i])
        self.lines = Lines(policy)

    def path(self, tail: str) -> str | None:
        """A branch parameter as it applies to the unit's type: the type's override, else the default."""
        return first(self.policy, [f"branch.types.{self.tid}.{tail}", f"branch.{tail}"])

    def fact(self, name: str) -> float:
        return float(self.inp.value(name)[self.i])


# -- the sheet ---------------------------------------------------------------------------------
def _place(u: _Unit, j: int) -> tuple[int, int, str]:
    """The unit's place by indicator ``j``'s fact in its group (competition ranking), the group size, where."""
    sheet = u.bs.sheet
    col = sheet.within[j]
    if col is None:
        same, where = np.ones(len(u.b), dtype=bool), "among all branches"
    else:
        codes = u.inp.codes(col)[0]
        same, where = codes == codes[u.i], f"within {col} {u.b[col].iloc[u.i]}"
    f = u.inp.facts[:, j]
    better = f[same] > f[u.i] if sheet.high_first[j] else f[same] < f[u.i]
    order = "highest first" if sheet.high_first[j] else "lowest first"
    return 1 + int(better.sum()), int(same.sum()), f"{where}, {order}"


def _zeroed_by(u: _Unit, j: int) -> list[int]:
    """The zeroing indicators that set indicator ``j``'s points to 0 for the unit."""
    sheet, t = u.bs.sheet, u.t
    return [z for z in range(sheet.k) if sheet.target[z] == j and sheet.kind[t, z] == RULE_CODES["zeroing"]
            and u.inp.facts[u.i, z] >= sheet.at_least[t, z]]


def _indicator(u: _Unit, j: int, adds: float, expr: str, extra_paths=()) -> None:
    sheet, t, i = u.bs.sheet, u.t, u.i
    rule, iid = RULES[int(sheet.kind[t, j])], sheet.ids[j]
    got = float(u.out["points"][i, j])
    over = [f"branch.types.{u.tid}"]
    names = ["points"] + list(RULE_PARAMS[rule]) if rule not in ("zeroing", "rank") else list(RULE_PARAMS[rule])
    paths = [indicator_path(u.policy, "branch", over, iid, n) for n in names]
    text = rule_text(sheet, t, j)
    if rule == "rank":
        place, n, where = _place(u, j)
        m = sheet.places.shape[2]
        listed = place < m and f"branch.indicators.{iid}.places.{place}" in u.policy
        paths.append(indicator_path(u.policy, "branch", over, iid, f"places.{place}" if listed else "otherwise"))
        text = f"place {place} of {n} {where}; {text}"
    zeroed = _zeroed_by(u, j)
    if zeroed:
        text += "; zeroed by " + ", ".join(f"{sheet.ids[z]} (fact {sheet.facts[z]} = {num(u.inp.facts[i, z])})"
                                           for z in zeroed)
    result = f"{pts(got)} points [{text}]"
    if rule == "zeroing":
        target = sheet.ids[sheet.target[j]]
        fired = u.inp.facts[i, j] >= sheet.at_least[t, j]
        result = f"{'FIRES: ' + target + ' gets 0 points' if fired else 'does not fire'}; {result}"
    u.lines.add(f"indicator ({rule})", f"{iid}: {sheet.labels[j]}", f"fact {sheet.facts[j]} = "
                f"{num(u.inp.facts[i, j])}", f"{result}; adds {adds:.2f} = {expr}", adds,
                paths + list(extra_paths))


def _split(u: _Unit, g: int) -> tuple[float, float, float]:
    """Dimension ``g``'s scored points, bonus (before any cap) and penalties (negative) for the unit."""
    sheet, t = u.bs.sheet, u.t
    cols = np.flatnonzero(sheet.group == g)
    p = u.out["points"][u.i, cols]
    extra = np.isin(sheet.kind[t, cols], EXTRA_CODES)
    return float(p[~extra].sum()), float(np.maximum(p[extra], 0).sum()), float(np.minimum(p[extra], 0).sum())


def _shares_sheet(u: _Unit) -> None:
    bs, t, L = u.bs, u.t, u.lines
    top = bs.sheet.group_max[t]
    s_path = u.path("satisfaction_share")
    for g, dim in enumerate(bs.sheet.group_ids):
        w, M = float(bs.weights[t, g]), float(top[g])
        share = u.path(f"dimensions.{dim}.share")
        paths = [share] + ([s_path] if abs(w - u.policy[share]) > 1e-12 else [])
        scale = 100.0 * w / M if M > 0 else 0.0
        for j in np.flatnonzero(bs.sheet.group == g):
            got = float(u.out["points"][u.i, j])
            _indicator(u, j, got * scale, f"100 × {w:.6g} × {pts(got)}/{M:g}" if M > 0 else "0", paths)
        scored, bonus, penalty = _split(u, g)
        cap = float(bs.dim_bonus_cap[t, g])
        label = u.policy.get(f"branch.dimensions.{dim}.label", dim)
        if bonus > cap:
            cut = scale * (cap - bonus)
            L.add("bonus cap", f"{dim}: bonus at most {cap:g} points", f"{pts(bonus)} bonus points earned",
                  f"{cut:.2f} = 100 × {w:.6g} × ({cap:g} - {pts(bonus)})/{M:g}", cut,
                  [u.path(f"dimensions.{dim}.bonus_cap")] + paths)
            bonus = cap
        got = scored + bonus + penalty
        frac = got / M if M > 0 else 0.0
        kept = min(max(frac, 0.0), 1.0)
        if kept != frac:
            cut = 100.0 * w * (kept - frac)
            L.add("cap", f"{dim}: the fraction counts within 0-1", f"{pts(got)} points of {M:g}",
                  f"{cut:.2f} = 100 × {w:.6g} × ({kept:g} - {pts(got)}/{M:g})", cut, paths)
        L.add("dimension", f"{dim}: {label}", f"{pts(scored)} scored, {pts(bonus)} bonus, {pts(penalty)} "
              f"penalties of {M:g} points", f"{100 * w * kept:.2f} = 100 × {w:.6g} × {kept:.4g}"
              if M > 0 else "0.00 (no scored points for this type)", paths=paths)


def _points_sheet(u: _Unit) -> None:
    bs, t, L = u.bs, u.t, u.lines
    w = float(bs.weights[t, 0])
    s_path = u.path("satisfaction_share") if bs.survey else None
    base_path = first(u.policy, ["branch.score.base"])
    if bs.base or base_path:
        L.add("base", "the sheet starts from", f"{bs.base:g} points", f"{w * bs.base:.2f} = {w:.6g} × {bs.base:g}",
              w * bs.base, [base_path, s_path])
    kept_total, bonus_total, penalty_total = bs.base, 0.0, 0.0
    for g, dim in enumerate(bs.sheet.group_ids):
        for j in np.flatnonzero(bs.sheet.group == g):
            got = float(u.out["points"][u.i, j])
            _indicator(u, j, w * got, f"{w:.6g} × {pts(got)}", [s_path])
        scored, bonus, penalty = _split(u, g)
        cap, bcap = float(bs.dim_cap[t, g]), float(bs.dim_bonus_cap[t, g])
        if scored > cap:
            L.add("cap", f"{dim}: scored points count at most {cap:g}", f"{pts(scored)} scored points",
                  f"{w * (cap - scored):.2f} = {w:.6g} × ({cap:g} - {pts(scored)})", w * (cap - scored),
                  [u.path(f"dimensions.{dim}.cap"), s_path])
        if bonus > bcap:
            L.add("bonus cap", f"{dim}: bonus counts at most {bcap:g}", f"{pts(bonus)} bonus points",
                  f"{w * (bcap - bonus):.2f} = {w:.6g} × ({bcap:g} - {pts(bonus)})", w * (bcap - bonus),
                  [u.path(f"dimensions.{dim}.bonus_cap"), s_path])
        kept_total += min(scored, cap)
        bonus_total += min(bonus, bcap)
        penalty_total += penalty
        L.add("dimension", f"{dim}: {u.policy.get(f'branch.dimensions.{dim}.label', dim)}",
              f"{pts(scored)} scored, {pts(bonus)} bonus, {pts(penalty)} penalties",
              f"counts {pts(min(scored, cap))} scored, {pts(min(bonus, bcap))} bonus, {pts(penalty)} penalties",
              paths=[u.path(f"dimensions.{dim}.cap") if np.isfinite(cap) else None,
                     u.path(f"dimensions.{dim}.bonus_cap") if np.isfinite(bcap) else None])
    if bonus_total > bs.bonus_cap:
        cut = w * (bs.bonus_cap - bonus_total)
        L.add("bonus cap", f"the sheet's bonus counts at most {bs.bonus_cap:g}", f"{pts(bonus_total)} bonus points",
              f"{cut:.2f} = {w:.6g} × ({bs.bonus_cap:g} - {pts(bonus_total)})", cut, ["branch.score.bonus_cap", s_path])
        bonus_total = bs.bonus_cap
    sheet = kept_total + bonus_total + penalty_total
    kept = min(max(sheet, bs.floor), bs.cap)
    if kept != sheet:
        which = "floor" if sheet < bs.floor else "cap"
        L.add("clip", f"the sheet's {which}: {kept:g}", f"{pts(sheet)} points", f"{w * (kept - sheet):.2f} = "
              f"{w:.6g} × ({kept:g} - {pts(sheet)})", w * (kept - sheet), [f"branch.score.{which}", s_path])
    L.add("sheet", "points of the sheet", f"base {bs.base:g} + counted points", f"{pts(kept)} points, counting "
          f"{w:.6g} × {pts(kept)} = {w * kept:.2f}", paths=[s_path])


def _survey(u: _Unit) -> None:
    bs, t = u.bs, u.t
    if not bs.survey:
        return
    n = u.inp.survey[u.i]
    rate = float(satisfaction_rate(n[None, :], bs.answer_values)[0])
    w = float(bs.weights[t, -1])
    sub = float(u.out["subscores"][u.i, -1])
    terms = " + ".join(f"{num(c)} × {num(v)}" for c, v in zip(n, bs.answer_values))
    u.lines.add("survey", "satisfaction survey", ", ".join(f"{num(c)} {a} ({lab})" for c, a, lab in
                                                          zip(n, bs.answers, bs.answer_labels)),
                f"{sub:.2f} = 100 × {w:.6g} × {rate:.6f} (rate = ({terms})/{num(n.sum())})", sub,
                [f"branch.survey.answer_values.{a}" for a in bs.answers] + [u.path("satisfaction_share")])


# -- the rating --------------------------------------------------------------------------------
def _group(u: _Unit) -> tuple[str, np.ndarray]:
    """The unit's rating group (its type under a cuts design, else its peer group) and its members."""
    r = u.bs.rating
    if r.design == "cuts":
        return u.tid, u.inp.type_idx == u.t
    if r.peer_groups is None:
        return "all", np.ones(len(u.b), dtype=bool)
    codes, names = u.inp.codes(r.peer_groups)
    return names[codes[u.i]], codes == codes[u.i]


def _rating(u: _Unit) -> None:
    bs, L, r = u.bs, u.lines, u.bs.rating
    above = bs.levels.worst_first[1:]
    group, same = _group(u)
    table = u.out["cuts"].set_index(["group", "level"])["cut"]
    cuts = np.array([table[(group, lv)] for lv in above], dtype=float)
    cut_paths = [u.path(f"rating.cuts.{lv}") for lv in reversed(above)] if r.cuts is not None else []
    where = f"type {group}" if r.design == "cuts" else (f"peer group {r.peer_groups} = {group}"
                                                        if r.peer_groups else "all branches")
    shown = ", ".join(f"{lv} {c:.2f}" for lv, c in zip(reversed(above), reversed(cuts)))
    scores = u.out["score"][same]
    n = int(same.sum())
    if r.design == "cuts":
        how, paths = f"fixed cut points of {where}", cut_paths
    elif r.design in ("quota", "cuts_and_quota"):
        allowed = rt.allowed_counts(n, r.allowed_shares)
        how = (f"quotas among the {n} branches of {where}: " + ", ".join(
            f"{lv} the best {a} = floor({n} × {num(q)})" for lv, a, q in
            zip(reversed(above), allowed[::-1], r.allowed_shares[::-1]))
            + "; units tied at a boundary that would exceed a quota all stay below; each cut is the lowest "
              "score admitted" + ("; and at least the level's cut" if r.design == "cuts_and_quota" else ""))
        paths = [f"branch.rating.quotas.{lv}" for lv in reversed(above)] \
            + (cut_paths if r.design == "cuts_and_quota" else [])
    else:
        how = (f"{r.design} clustering of the {n} scores of {where} into {bs.levels.n} clusters; each "
               f"cluster's lowest score is its level's cut")
        paths = [first(u.policy, [f"branch.rating.{k}"]) for k in ("trim", "resamples", "seed")]
    L.add("cut points", f"{r.design} design", how, shown + ("" if r.design == "cuts" else " (realised)"),
          paths=paths)
    code, why = cut_text(bs.levels, cuts, u.score)
    if code != int(u.out["design"][u.i]):           # pragma: no cover - rate() rates by these very cuts
        raise BranchsimError(f"explain: the design's level of row {u.i + 1} differs from the cut points it used")
    if r.design in ("quota", "cuts_and_quota"):
        why = f"place {1 + int((scores > u.score).sum())} of {n} by score; " + why
    elif r.design != "cuts":
        why = f"in the cluster of {bs.levels.ids[bs.levels.n - 1 - code]}: " + why
    L.add("design level", "level by the design", why, level_text(bs.levels, code))


def _direct_and_vetoes(u: _Unit) -> None:
    bs, L, r, i = u.bs, u.lines, u.bs.rating, u.i
    design = int(u.out["design"][i])
    for d, did in enumerate(r.direct_ids):
        fired = bool(u.out["direct"][i, d])
        L.add("direct grading", did, f"fact {r.direct_fact[d]} = {num(u.fact(r.direct_fact[d]))} (fires at "
              f"{num(r.direct_at_least[d])} or more)", (f"FIRES: {level_text(bs.levels, r.direct_level[d])}"
                                                         if fired else "does not fire"),
              paths=[f"branch.rating.direct.{did}.at_least"])
    direct = int(rt.apply_direct(np.array([design]), u.out["direct"][i:i + 1], r)[0])
    v = bs.vetoes
    for k, vid in enumerate(v.ids):
        fired = bool(u.out["vetoes"][i, k])
        rule = f"fires at {num(v.threshold[k])} or more" if v.at_least[k] else f"fires below {num(v.threshold[k])}"
        if not v.active[k]:
            rule += "; switched off"
        L.add("veto", f"{vid}: {v.labels[k]}", f"fact {v.fact[k]} = {num(u.fact(v.fact[k]))} ({rule})",
              f"FIRES: {veto_effect(bs.levels, v, k)}" if fired else "does not fire",
              paths=[f"branch.vetoes.{vid}.{'at_least' if v.at_least[k] else 'below'}",
                     first(u.policy, [f"branch.vetoes.{vid}.active"])])
    final = int(u.out["level"][i])
    steps = [f"design {bs.levels.ids[bs.levels.n - 1 - design]}"]
    if r.direct_ids:
        steps.append(f"after direct grading {bs.levels.ids[bs.levels.n - 1 - direct]}")
    steps.append(vetoes_text(bs.levels, v, u.out["vetoes"][i], direct))
    L.add("level", "the unit's level", "; ".join(x for x in steps if x), level_text(bs.levels, final))


# -- designations, consequences, structure ---------------------------------------------------------
def _criterion_text(u: _Unit, c) -> tuple[str, list]:
    bs, i = u.bs, u.i
    if c.kind == "score_below":
        return f"score {u.score:.2f} (below {num(c.value)}?)", ["below"]
    if c.kind == "survey_below":
        n = u.inp.survey[i:i + 1]
        if c.answers:
            share = float(answer_share(n, np.isin(bs.answers, c.answers))[0])
            return f"share answering {' or '.join(c.answers)} {share:.4f} (below {num(c.value)}?)", ["below"]
        rate = float(satisfaction_rate(n, bs.answer_values)[0])
        return f"survey rate {rate:.4f} (below {num(c.value)}?)", ["below"]
    if c.kind == "veto":
        fired = bool(u.out["vetoes"][i, c.veto])
        return f"veto {bs.vetoes.ids[c.veto]} {'fires' if fired else 'does not fire'}", []
    if c.kind in ("fact_below", "fact_at_least"):
        op = "below" if c.kind == "fact_below" else "at least"
        return f"fact {c.fact} = {num(u.fact(c.fact))} ({op} {num(c.value)}?)", [op.replace(" ", "_")]
    if c.kind == "last_place":
        if c.within is None:
            same, where = np.ones(len(u.b), dtype=bool), "of all branches"
        else:
            codes = u.inp.codes(c.within)[0]
            same, where = codes == codes[i], f"within {c.within} {u.b[c.within].iloc[i]}"
        low = float(u.out["score"][same].min())
        return f"score {u.score:.2f}; the lowest {where} ({int(same.sum())} branches) is {low:.2f}", []
    level = bs.levels.ids[bs.levels.n - 1 - c.level]
    now = bs.levels.ids[bs.levels.n - 1 - int(u.out["level"][i])]
    return f"the level is {now} (holds at {level}{' or below' if c.or_below else ''})", []


def _designations(u: _Unit) -> None:
    bs, L, i = u.bs, u.lines, u.i
    for d in bs.designations:
        held_by = []
        for c in d.criteria:
            held = bool(u.out["criteria"][c.id][i])
            text, keys = _criterion_text(u, c)
            base = f"branch.designations.{d.id}.criteria.{c.id}"
            paths = [f"{base}.{k}" for k in keys]
            result = "holds" if held else "does not hold"
            counts = held
            if c.years > 1:
                run = int(u.out["streaks"][c.id][i])
                before = _prev(u, c.id)
                counts = run >= c.years
                result += f"; {before} year(s) just before → {run} in a row of the {c.years} needed"
                paths.append(f"{base}.years")
            if counts:
                held_by.append(c.id)
            L.add("criterion", f"{d.id}.{c.id} ({c.kind})", text, result, paths=paths)
        on = bool(u.out["designations"][d.id][i])
        if on != bool(held_by):                     # pragma: no cover - designate() ORs these very criteria
            raise BranchsimError(f"explain: designation {d.id!r} of row {i + 1} disagrees with its criteria")
        L.add("designation", f"{d.id}: {d.label}" + (f" ({d.en})" if d.en != d.label else ""),
              "any one criterion designates; streak " + str(int(u.out["streaks"][d.id][i])),
              f"designated ({', '.join(held_by)})" if on else "not designated")


def _prev(u: _Unit, key: str) -> int:
    before = u.inp.prev.get(key)
    return int(before[u.i]) if before is not None else 0


def _consequences(u: _Unit) -> None:
    L, i = u.lines, u.i
    for c in u.scheme.consequences_of("branch"):
        what = f"designation {c.target}" if c.kind == "designation" else \
            f"level {c.target}" + (" or below" if c.or_below else "")
        run = int(u.out["streaks"][c.target][i]) if c.target in u.out["streaks"] else 0
        needed = f" for {c.years} years in a row" if c.years > 1 else ""
        follows = bool(u.out["consequences"][c.id][i])
        L.add("consequence", f"{c.id}: {c.label}", f"when {what}{needed}; now {run} year(s) in a row",
              "follows" if follows else "does not follow",
              paths=[first(u.policy, [f"consequences.{c.id}.when.years"])])


def _structure(u: _Unit) -> None:
    st = u.scheme.structure
    if st is None or "n_members" not in u.b.columns:
        return
    n = int(u.b["n_members"].iloc[u.i])
    need = required_level(np.array([n]), st)
    lvl = st.ids[int(need["level"][0])]
    now = str(u.b["level"].iloc[u.i]) if "level" in u.b.columns else None
    up = now in st.ids and st.ids.index(lvl) > st.ids.index(now)
    u.lines.add("structure", "organisation level called for by size", f"{n} members" + (f"; now {now}" if now else ""),
                lvl + (" (upgrade)" if up else "") + ("; committee called for" if need["committee"][0] else "")
                + ("; below the minimum membership" if need["below_minimum"][0] else ""),
                paths=[f"structure.levels.{k}.from" for k in st.ids] + [first(u.policy, ["structure.committee_from"])])


def _next_level(u: _Unit) -> None:
    """What it takes to reach the next level (or to leave a designation): :func:`branchsim.next_level`."""
    from .audit.counterfactual import explain_rows
    for item, what, result in explain_rows(u.policy, u.b, u.inp, u.out, u.i):
        u.lines.add("next level", item, what, result)


def branch_steps(policy, b, i: int):
    """The steps of branch row ``i`` of the checked branches table ``b`` (see :func:`branchsim.explain`)."""
    u = _Unit(policy, b, i)
    (_shares_sheet if u.bs.form == "shares" else _points_sheet)(u)
    _survey(u)
    u.lines.add("score", "total", "sum of the lines above (column adds)", f"{u.score:.2f}")
    _rating(u)
    _direct_and_vetoes(u)
    _designations(u)
    _consequences(u)
    _structure(u)
    _next_level(u)
    level = u.bs.levels.ids[u.bs.levels.n - 1 - int(u.out["level"][i])]
    return u.lines.frame(unit="branch", adds_to="the score", score=u.score, level=level,
                         designations=[d.id for d in u.bs.designations if u.out["designations"][d.id][i]])
