"""The steps of one member for :func:`branchsim.explain`: periods, record, appraisal, grade, vetoes.

The member's rows are scored with the engine's own functions
(:mod:`branchsim.scoring`), so each line is what :func:`branchsim.evaluate`
computes. The lines that add (``adds``) sum to the annual score
``record_share × record + appraisal_share × appraisal``: each indicator adds
``record_share × 100 × points / max`` (under ``accrual: mean``, averaged over
the periods), with a line for the record's bonus cap and one for its clip to
``[0, cap]`` when they bind, and the appraisal adds its share. With
``month=`` the lines add up to that period's record on 100 instead.
"""
from __future__ import annotations

import numpy as np

from . import rating as rt
from ._explain_lines import RULE_PARAMS, RULES, Lines, by_period, cut_text, first, indicator_path, level_text, \
    num, pts, rule_text, veto_effect, vetoes_text
from .errors import DataError
from .evaluate import evaluate_checked, member_profiles
from .scheme import EXTRA_CODES, RULE_CODES
from .scoring import annual_facts, annual_scores, indicator_points, period_totals, record_scores, type_codes

__all__ = ["member_steps"]

_YEAR = {RULE_CODES["binary"]: "the lowest (met only if met in every period)",
         RULE_CODES["proportion"]: "the mean"}


class _Member:
    """One member of checked tables: its rows, profile and the parameters' paths for it."""

    def __init__(self, policy, b, m, mm, k: int, month, where: str):
        self.policy, self.b, self.m, self.mm, self.k = policy, b, m, mm, k
        self.ms = ms = policy.scheme.member
        self.id = m["member_id"].iloc[k]
        mine = mm[(mm["member_id"] == self.id).to_numpy()]
        self.rows = mine.iloc[np.argsort(mine["month"].to_numpy(), kind="stable")]
        self.periods = self.rows["month"].to_numpy()
        branch = m["branch_id"].iloc[k]
        self.tid = str(b.loc[(b["branch_id"] == branch).to_numpy(), "type"].iloc[0])
        t = type_codes([self.tid], ms.types, policy.name)
        self.cls = str(m["category"].iloc[k]) if ms.classes else None
        profile, _ = member_profiles(ms, t, m["category"].iloc[[k]] if ms.classes else None)
        self.p = int(profile[0])
        self.overrides = ([f"member.classes.{self.cls}"] if self.cls else []) + [f"member.types.{self.tid}"]
        missing = [f for f in ms.sheet.facts if f not in mm.columns] + [f for f in ms.facts if f not in m.columns]
        if missing:
            raise DataError(f"the population has no column for member fact(s) {missing[:8]} that policy "
                            f"{policy.name!r} reads; generate or load it with this policy")
        self.facts = self.rows[list(ms.sheet.facts)].to_numpy(float)
        self.top = float(ms.sheet.group_max[self.p].sum())
        self.lines = Lines(policy)
        self.sel = np.arange(len(self.rows))
        if month is not None:
            if ms.accrual != "mean":
                raise DataError(f"explain(): month= explains one period's record, but policy {policy.name!r} adds "
                                f"the facts up over the year (accrual: sum) and scores the year once")
            self.sel = np.flatnonzero(self.periods == month)
            if not len(self.sel):
                raise DataError(f"member {self.id} has no record for period {month} in the member_months table "
                                f"of {where}; periods on record: {', '.join(str(int(x)) for x in self.periods)}")
        self.month = month

    def path(self, tail: str) -> str | None:
        """A member parameter as it applies: the class's override, else the type's, else the default."""
        return first(self.policy, [f"{o}.{tail}" for o in self.overrides] + [f"member.{tail}"])


def _indicators(u: _Member, points: np.ndarray, weight: float, year: np.ndarray | None) -> None:
    """One line per indicator: ``points`` (rows, k) of the periods explained (one row: the year)."""
    sheet, p = u.ms.sheet, u.p
    share = ["member.record_share"] if u.month is None else []
    for j, iid in enumerate(sheet.ids):
        rule = RULES[int(sheet.kind[p, j])]
        names = ["points"] + list(RULE_PARAMS[rule]) if rule != "zeroing" else list(RULE_PARAMS[rule])
        paths = [indicator_path(u.policy, "member", u.overrides, iid, n) for n in names]
        got = float(points[:, j].mean())
        values = u.facts[u.sel, j]
        fact = f"fact {sheet.facts[j]} " + (f"= {num(values[0])} (period {int(u.periods[u.sel[0]])})"
                                             if len(values) == 1 else by_period(u.periods[u.sel], values))
        text = rule_text(sheet, p, j)
        if year is not None:
            fact += f"; over the year {num(year[j])} ({_YEAR.get(int(sheet.kind[0, j]), 'the sum')})"
        many = year is None and len(u.sel) > 1
        result = (f"{pts(got)} points a period on average [mean over periods of {text}]" if many
                  else f"{pts(got)} points [{text}]")
        adds = weight * 100.0 * got / u.top
        expr = f"{weight:g} × 100 × {pts(got)}/{u.top:g}"
        u.lines.add(f"indicator ({rule})", f"{iid}: {sheet.labels[j]}", fact, f"{result}; adds {adds:.2f} = {expr}",
                    adds, paths + share)


def _record(u: _Member, points: np.ndarray, weight: float) -> float:
    """Bonus cap and clip lines of the periods' (or the year's) ``points``; returns the record explained."""
    ms, p, L = u.ms, u.p, u.lines
    prof = np.full(len(points), p)
    share = ["member.record_share"] if u.month is None else []
    extra = np.isin(ms.sheet.kind[p], EXTRA_CODES)
    bonus = np.maximum(points[:, extra], 0.0).sum(axis=1)
    if not np.isnan(ms.bonus_cap) and (bonus > ms.bonus_cap).any():
        cut = weight * float(np.mean(100.0 * (np.minimum(bonus, ms.bonus_cap) - bonus) / u.top))
        how = f" = {weight:g} × 100 × ({ms.bonus_cap:g} - {pts(bonus[0])})/{u.top:g}" if len(bonus) == 1 else \
            f" = {weight:g} × the mean over the periods of 100 × (min({ms.bonus_cap:g}, bonus) - bonus)/{u.top:g}"
        L.add("bonus cap", f"bonus points count at most {ms.bonus_cap:g}", f"{pts(bonus.max())} bonus points"
              + (" (the most in a period)" if len(bonus) > 1 else ""), f"{cut:.2f}{how}", cut,
              [u.path("score.bonus_cap")] + share)
    raw = 100.0 * period_totals(points, prof, ms) / u.top
    record = float(np.mean(record_scores(points, prof, ms)))   # as the engine: mean of the rounded scores
    cut = weight * (record - float(np.mean(raw)))       # the clip, and the rounding to 9 decimals
    cap = ms.cap if not np.isnan(ms.cap) else np.inf
    if ((raw > cap) | (raw < 0)).any():
        how = f" = {weight:g} × ({record:.2f} - {raw[0]:.2f})" if len(raw) == 1 else \
            f" = {weight:g} × the mean over the periods of (clipped - score)"
        L.add("cap", f"the record counts within 0-{cap:g}", "before the clip " + ", ".join(
            f"{r:.2f}" for r in raw), f"{cut:.2f}{how}", cut, [u.path("score.cap")] + share)
    else:   # only the rounding (< 1e-9): counted in the last indicator's line, so the lines add up exactly
        last = max(n for n, row in enumerate(L.rows) if row["step"].startswith("indicator"))
        L.rows[last]["adds"] += cut
    return record


def _grade(u: _Member, annual: float) -> tuple[int, bool]:
    ms, L, policy = u.ms, u.lines, u.policy
    if ms.exempt[u.p]:
        L.add("grade", "grade", f"class {u.cls}", "not graded (exempt class)",
              paths=[f"member.classes.{u.cls}.exempt"])
        return -1, False
    r = ms.rating
    above = ms.grades.worst_first[1:]
    if r.design == "cuts":
        cuts = r.cuts[u.p]
        how, paths = f"fixed cut points of {ms.profiles[u.p]}", [u.path(f"rating.cuts.{g}") for g in reversed(above)]
    else:
        res = evaluate_checked(policy, u.b, u.m, u.mm)
        pg = r.peer_groups
        group = u.cls if pg == "class" and ms.classes else u.tid if pg == "type" else "all"
        table = res.member_cut_points.set_index(["group", "level"])["cut"]
        cuts = np.array([table[(group, g)] for g in above], dtype=float)
        how = f"{r.design} design among the graded members of {group} (realised cut points)"
        paths = ([f"member.rating.quotas.{g}" for g in reversed(above)] if r.quotas is not None else []) \
            + ([u.path(f"rating.cuts.{g}") for g in reversed(above)] if r.design == "cuts_and_quota" else []) \
            + [first(policy, [f"member.rating.{key}"]) for key in ("trim", "resamples", "seed")]
    L.add("cut points", f"{r.design} design", how, ", ".join(f"{g} {c:.2f}" for g, c in
                                                             zip(reversed(above), reversed(cuts))), paths=paths)
    code, why = cut_text(ms.grades, cuts, annual)
    L.add("design grade", "grade by the design", why.replace("score", "annual score", 1),
          level_text(ms.grades, code))
    return code, True


def _vetoes(u: _Member, code: int, graded: bool) -> int:
    ms, L = u.ms, u.lines
    v = ms.vetoes
    values = []
    for k, fact in enumerate(v.fact):
        if fact in ms.facts:
            values.append((float(u.m[fact].iloc[u.k]), f"fact {fact} = {num(u.m[fact].iloc[u.k])}"))
        else:
            col = u.rows[fact].to_numpy(float)
            val = float(col.sum() if v.at_least[k] else col.min())
            values.append((val, f"fact {fact} {'summed' if v.at_least[k] else 'at its lowest'} over the "
                                f"{len(col)} periods = {num(val)}"))
    fired = rt.veto_fired(np.array([[x for x, _ in values]]), v) if v.n else np.zeros((1, 0), dtype=bool)
    for k, vid in enumerate(v.ids):
        rule = f"fires at {num(v.threshold[k])} or more" if v.at_least[k] else f"fires below {num(v.threshold[k])}"
        effect = veto_effect(ms.grades, v, k).replace("the level", "the grade")
        L.add("veto", f"{vid}: {v.labels[k]}", f"{values[k][1]} ({rule})",
              (f"FIRES: {effect}" + ("" if graded else " (not graded: no effect)")) if fired[0, k]
              else "does not fire", paths=[f"member.vetoes.{vid}.{'at_least' if v.at_least[k] else 'below'}",
                                           first(u.policy, [f"member.vetoes.{vid}.active"])])
    if not graded:
        return -1
    final = int(rt.apply_vetoes(np.array([max(code, 0)]), fired, v)[0])
    why = vetoes_text(ms.grades, v, fired[0], max(code, 0))
    L.add("grade", "the member's grade", f"design {ms.grades.ids[ms.grades.n - 1 - code]}" + (f"; {why}" if why else ""),
          level_text(ms.grades, final))
    return final


def _consequences(u: _Member, grade: int, graded: bool) -> None:
    for c in u.policy.scheme.consequences_of("member"):
        held = graded and (grade <= c.code if c.or_below else grade == c.code)
        before = int(u.m[f"prev_{c.target}"].iloc[u.k]) if f"prev_{c.target}" in u.m.columns else 0
        run = before + 1 if held else 0
        follows = run >= c.years if c.years > 1 else held
        needed = f" for {c.years} years in a row" if c.years > 1 else ""
        u.lines.add("consequence", f"{c.id}: {c.label}", f"when grade {c.target}"
                    + (" or below" if c.or_below else "") + needed + (f"; now {run} year(s) in a row"
                                                                     if c.years > 1 else ""),
                    "follows" if follows else "does not follow",
                    paths=[first(u.policy, [f"consequences.{c.id}.when.years"])])


def member_steps(policy, b, m, mm, k: int, month, where: str):
    """The steps of member row ``k`` of checked tables (see :func:`branchsim.explain`)."""
    u = _Member(policy, b, m, mm, k, month, where)
    ms, L = u.ms, u.lines
    n = len(u.rows)
    weight = ms.record_share if month is None else 1.0
    if ms.accrual == "mean":
        points = indicator_points(u.facts, np.full(n, u.p), ms.sheet)
        L.add("periods", f"{n} periods on record", "periods " + ", ".join(str(int(x)) for x in u.periods),
              "each period is scored on 100; the record is the mean of the period scores")
        _indicators(u, points[u.sel], weight, None)
        explained = _record(u, points[u.sel], weight)
        if month is not None:
            L.add("period score", f"period {month}", "sum of the lines above (column adds)", f"{explained:.2f}")
        scores = record_scores(points, np.full(n, u.p), ms)
        record = float(scores.mean())
        L.add("record", "the year's record", "period scores " + by_period(u.periods, scores, lambda s: f"{s:.2f}"),
              f"{record:.2f} (the mean)")
    else:
        year = annual_facts(u.facts, np.zeros(n, dtype=np.intp), 1, ms.sheet.kind[0])
        points = indicator_points(year, np.array([u.p]), ms.sheet)
        L.add("periods", f"{n} periods on record", "periods " + ", ".join(str(int(x)) for x in u.periods),
              "the facts are added up over the year (a share averaged, a binary fact met only if met in every "
              "period) and the year is scored once")
        _indicators(u, points, weight, year[0])
        record = explained = _record(u, points, weight)
        L.add("record", "the year's record", "scored once on the year's facts", f"{record:.2f}")
    appraisal = float(u.m["appraisal"].iloc[k]) if "appraisal" in u.m.columns else 0.0
    if month is None:
        L.add("appraisal", "year-end appraisal", f"appraisal {num(appraisal)}",
              f"{ms.appraisal_share * appraisal:.2f} = {ms.appraisal_share:g} × {num(appraisal)}",
              ms.appraisal_share * appraisal, ["member.appraisal_share"])
    annual = float(annual_scores(np.array([record]), np.array([appraisal]), ms)[0])
    L.add("annual score", "record and appraisal", f"record {record:.2f}, appraisal {num(appraisal)}",
          f"{annual:.2f} = {ms.record_share:g} × {record:.2f} + {ms.appraisal_share:g} × {num(appraisal)}",
          paths=["member.record_share", "member.appraisal_share"])
    code, graded = _grade(u, annual)
    grade = _vetoes(u, code, graded)
    _consequences(u, grade, graded)
    shown = ms.grades.ids[ms.grades.n - 1 - grade] if grade >= 0 else None
    return L.frame(unit="member", adds_to="the annual score" if month is None else f"the record of period {month}",
                   score=annual if month is None else explained, record=record, annual=annual, grade=shown)
