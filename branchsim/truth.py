"""The noise-free truth of a generated population: what each branch deserves under a scheme.

:func:`truth` (from a :class:`~branchsim.population.Population`) and
:func:`truth_arrays` (from arrays) evaluate the measurement model of
:mod:`branchsim.measurement` at its expectation: every fact at its expected
value given the branch's true quality, the survey at its expected answer
shares. :class:`Truth` applies the scheme's design to those expectations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _truth_kernel
from .measurement import (_codes, _indicator_offsets, _scales, _state_column, _state_value,
                          survey_probabilities)
from .params import GeneratorParams
from .scheme import RULE_CODES, Scheme, Sheet
from .scoring import rank_points, scores_from_components


#: Branches from which the expected points and facts take the compiled pass.
_COMPILED_FROM = 256


@dataclass(frozen=True)
class Truth:
    """What each branch deserves under a scheme, measured without noise.

    ``components`` ``(n, c)``: the score's components at the expectation of
    every fact given the branch's true quality; ``facts``: every fact the
    rules read, at its expectation (state facts as they are); ``survey``
    ``(n, a)``: the expected answer shares.
    """

    components: np.ndarray
    facts: dict
    survey: np.ndarray | None
    points: np.ndarray | None = None

    def outcome_arrays(self, scheme: Scheme, inp, *, previous=None) -> dict:
        """The true :func:`~branchsim.evaluate.branch_outcome` (the design applied to the true scores).

        ``inp`` (the measured :class:`~branchsim.evaluate.BranchInputs`) gives
        the types, groups and the streaks of years before.
        """
        from .evaluate import BranchInputs, branch_outcome
        bs = scheme.branch
        # The scores are given, so branch_outcome reads the facts by name only, never as an (n, k) matrix.
        true_inp = BranchInputs(None, self.facts, inp.type_idx, self.survey, inp.prev, inp.columns)
        return branch_outcome(true_inp, scheme, previous=previous,
                              scores=scores_from_components(self.points, self.components, inp.type_idx, bs))

    def outcome(self, scheme: Scheme, inp, *, previous=None) -> dict[str, np.ndarray]:
        """``true_score``, ``true_rating`` and ``true_<designation>`` columns under the scheme."""
        out = self.outcome_arrays(scheme, inp, previous=previous)
        res = {"true_score": out["score"], "true_rating": scheme.branch.levels.id_of(out["level"])}
        res.update({f"true_{d}": v for d, v in out["designations"].items()})
        return res


def truth(pop, policy) -> Truth | None:
    """The noise-free :class:`Truth` of a generated population; ``None`` without truth."""
    if not pop.has_truth or pop.params is None or pop.seed is None:
        return None
    scheme = policy.scheme
    bs = scheme.branch
    off = _indicator_offsets(pop.seed, bs.sheet, pop.params, 0)
    b = pop.branches
    from .scoring import type_codes
    state = np.column_stack([_state_column(b, bs, f) for f in bs.state_facts]) if bs.state_facts \
        else np.zeros((len(b), 0))
    groups = {w: _codes(b, w) for w in {w for w in bs.sheet.within if w is not None}}
    return truth_arrays(b["true_quality"].to_numpy(float), type_codes(b["type"], bs.types, policy.name), state,
                        off, pop.params, scheme, rank_groups=groups)


def _expected_by_column(q: np.ndarray, offsets: np.ndarray, fixed: dict, t: np.ndarray, sheet: Sheet,
                        sc: dict) -> tuple[np.ndarray, np.ndarray]:
    """Expected points and facts ``(n, k)`` of a sheet with one rule form per column: the expressions of
    :func:`truth_arrays`' ``np.select`` evaluated for each column's own form only (element by element the
    same arithmetic, so the same numbers, without seven full-size temporaries per table).

    Each column's attainment is ``clip(q + offset, 0, 1)``, or the state fact ``fixed[j]``. The columns are
    written as contiguous rows of ``(k, n)`` buffers (a column of an ``(n, k)`` array is strided) and
    returned as their transposes: Fortran-ordered ``(n, k)`` views.
    """
    n, k = len(q), len(offsets)
    if n >= _COMPILED_FROM and _truth_kernel.available():     # the same numbers, in one compiled pass
        return _truth_kernel.expected(q, offsets, fixed, t, sheet, sc)
    pts, expected = np.empty((k, n)), np.empty((k, n))
    for j in range(k):                     # a loop over the indicators, not the branches
        code = int(sheet.kind[0, j])
        pj = fixed[j] if j in fixed else np.clip(q + offsets[j], 0, 1)
        top = sheet.points[t, j]
        if code == 1:
            pts[j] = np.maximum(top - sheet.per_shortfall[t, j] * (sheet.required[t, j] * (1 - pj)), 0.0)
        elif code in (0, 2, 4, 5):
            pts[j] = top * pj
        elif code == 3:
            pts[j] = np.minimum(top, np.minimum(2 * pj, 1.0) * top)
        elif code == 6:
            pts[j] = -top * (1 - pj)
        else:
            pts[j] = 0.0
        if code == 0:
            expected[j] = np.round(pj)
        elif code == 1:
            expected[j] = sc["required"][j] * pj
        elif code == 2:
            expected[j] = pj
        elif code == 3:
            expected[j] = sc["bonus"][j] * pj
        elif code == 4:
            expected[j] = sc["per_event"][j] * pj
        elif code in (5, 6):
            expected[j] = sc["occurrences"][j] * (1 - pj)
        elif code == 7:
            expected[j] = 0.0 * pj
        else:
            expected[j] = 100.0 * pj
    return pts.T, expected.T


def truth_arrays(q, t, state, offsets, params: GeneratorParams, scheme: Scheme, *,
                 rank_groups: dict | None = None) -> Truth:
    """:class:`Truth` from arrays: true quality, type codes, state facts ``(n, len(state_facts))``."""
    bs = scheme.branch
    sheet = bs.sheet
    m = params.values["measurement"]
    fixed = {sheet.facts.index(f): state[:, j] for j, f in enumerate(bs.state_facts) if f in sheet.facts}
    sc = _scales(sheet)
    if sheet.uniform:       # one rule form per column: each column's own expression only (same numbers)
        pts, expected = _expected_by_column(q, offsets, fixed, t, sheet, sc)
    else:
        p = np.clip(q[:, None] + offsets[None, :], 0, 1)
        for j, col in fixed.items():
            p[:, j] = col
        kind = sheet.kind[t]
        top = sheet.points[t]
        # Expected points by rule form (the measurement model without noise).
        short = sheet.required[t] * (1 - p)
        pts = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5, kind == 6],
            [top * p, np.maximum(top - sheet.per_shortfall[t] * short, 0.0), top * p,
             np.minimum(top, np.minimum(2 * p, 1.0) * top), top * p, top * p, -top * (1 - p)], default=0.0)
        expected = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, (kind == 5) | (kind == 6),
                              kind == 7],
                             [np.round(p), sc["required"] * p, p, sc["bonus"] * p, sc["per_event"] * p,
                              sc["occurrences"] * (1 - p), 0.0 * p], default=100.0 * p)
    kind = sheet.kind[t]
    for j, fact in enumerate(bs.state_facts):
        if fact in sheet.facts:
            good, bad = _state_value(bs, fact)
            expected[:, sheet.facts.index(fact)] = np.where(state[:, j] > 0, good, bad)
    for j in np.flatnonzero((sheet.kind == RULE_CODES["rank"]).any(axis=0)):
        groups = None if sheet.within[j] is None else (rank_groups or {}).get(sheet.within[j])
        pts[:, j] = np.where(kind[:, j] == RULE_CODES["rank"],
                             rank_points(expected[:, j], groups, sheet.places[t, j], sheet.high_first[j]), pts[:, j])
    from .scoring import branch_components
    pts = np.ascontiguousarray(pts)     # row-major, as the product over indicators has always read it
    comp_points = pts
    r = np.clip(q + m["survey_generosity"], 0, 1)
    # Expected answer shares (unnormalised: the rate divides by their sum, as for counts).
    survey = survey_probabilities(r, bs.answer_values) if bs.survey else None
    comp = branch_components(comp_points, t, survey, bs)
    facts = {f: expected[:, j] for j, f in enumerate(sheet.facts)}
    for f, entry in bs.fact_entries.items():
        if f in bs.state_facts:
            good, bad = _state_value(bs, f)
            facts[f] = np.where(state[:, bs.state_facts.index(f)] > 0, good, bad)
        elif entry["kind"] == "binary":
            facts[f] = np.zeros(len(q))
        elif entry["kind"] == "count":
            facts[f] = 3 * np.clip(q, 0, 1)
        else:
            facts[f] = np.clip(q, 0, 1) * (1.0 if entry["kind"] == "share" else 100.0)
    return Truth(comp, facts, survey, pts)


def true_components(pop, policy) -> np.ndarray | None:
    """Noise-free components ``(n, c)`` of each branch (see :func:`truth`)."""
    tr = truth(pop, policy)
    return None if tr is None else tr.components
