"""The measurement model: truth, state facts, and noisy measurements of them.

Parameters in ``data/generator.yaml``:

* a branch's true quality ``q`` lies on the attainment scale (1 = every
  indicator fully met); it is drawn from a sinh-arcsinh transformed normal
  whose location, scale, skew and tail are calibrated to the published counts;
* state facts (a vacant secretary post, a major violation) are part of the
  truth: drawn once, likelier in weak branches, recorded without error;
* each indicator fact is a noisy measurement: attainment
  ``p = clip(q + offset_i + noise, 0, 1)`` turned into the raw fact by the
  indicator's rule form with one uniform draw (met if ``u < p``; a count
  ``floor(required × p + u)``; a share ``p ± noise``; bonus units);
* ``survey_size`` respondents per branch (members and residents) each give
  one answer drawn with expected value ``q + generosity + branch mood``;
* members' monthly records are measured the same way from the member's
  quality; the year-end appraisal carries the impression bias the source
  complains of (打印象分: a halo towards the branch's standing; 感情分: a
  personal affinity term).

:class:`Truth` is what a branch deserves: every fact at its expectation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .params import GeneratorParams
from .policy import Policy
from .scoring import _columns_by_rule, compile_branch_rules, required_level, type_codes
from .streams import _INDICATORS, block_stream

__all__ = ["STATE_FACTS", "Truth", "truth", "truth_arrays", "true_components", "state_facts",
           "state_problem_probability"]

CATEGORIES = ("in_service", "retired", "farmer", "mobile")
#: Facts that describe a branch's state rather than measure its work: a vacant
#: secretary post, a major violation. They are drawn once with the truth (more
#: likely in weak branches) and recorded without error, so a veto they trigger
#: is part of what the branch truly is, not measurement noise.
STATE_FACTS = ("secretary_in_post", "no_major_violation")


def _type_table(params: GeneratorParams, policy: Policy):
    types = policy.branch_types
    share = np.array([params.get(f"types.{t}.share") if t in params.values["types"] else 0.0
                      for t in types], float)
    size = np.array([params.get(f"types.{t}.size") if t in params.values["types"] else 1.0
                     for t in types], float)
    return types, share / share.sum(), size


MIN_SIZE = 3   # a branch needs at least three full members; smaller draws are set to 3


def expected_size(median: float, params: GeneratorParams, policy: Policy) -> float:
    """Mean branch size for an overall ``median``: log-normal by type, rounded, at least 3.

    ``E[max(rint X, 3)] ≈ 3 P(X < 2.5) + E[X; X >= 2.5]`` for each type's
    log-normal ``X`` (rounding changes the mean by a negligible amount).
    """
    from scipy.stats import norm
    _, share, mult = _type_table(params, policy)
    sigma = params.get("structure.size_sigma")
    m = median * mult
    a = np.log((MIN_SIZE - 0.5) / m) / sigma
    per_type = MIN_SIZE * norm.cdf(a) + m * math.exp(sigma ** 2 / 2) * norm.sf(a - sigma)
    return float(share @ per_type)


def size_median(params: GeneratorParams, policy: Policy) -> float:
    """Overall median size so the *expected* mean branch size is ``scale.mean_size``.

    Accounts for the three-member minimum, which raises small branches: without
    it a requested member total is overshot by several per cent.
    """
    from scipy.optimize import brentq
    target = params.get("scale.mean_size")
    if target <= MIN_SIZE:
        return 1e-9
    return brentq(lambda med: expected_size(med, params, policy) - target, 1e-6, target * 10, xtol=1e-10)


def _quality(z: np.ndarray, p: dict) -> np.ndarray:
    return p["loc"] + p["scale"] * np.sinh((np.arcsinh(z) + p["skew"]) / p["tail"])


def _structure_block(rng, n: int, params: GeneratorParams, policy: Policy, median: float):
    types, share, mult = _type_table(params, policy)
    t = np.searchsorted(np.cumsum(share)[:-1], rng.random(n), side="right")
    size = np.maximum(np.rint(median * mult[t] * np.exp(params.get("structure.size_sigma")
                                                        * rng.standard_normal(n))), MIN_SIZE).astype(np.int64)
    need = required_level(size, policy)["level"]
    under = rng.random(n) < params.get("structure.p_underlevel")
    level = np.where(under, np.maximum(need - 1, 0), need)
    q = _quality(rng.standard_normal(n), params.values["branch_quality"])
    return t, size, level, q, state_facts(rng, q, params)


def state_facts(rng, q: np.ndarray, params: GeneratorParams) -> np.ndarray:
    """Draw the state facts ``(n, len(STATE_FACTS))`` of branches of quality ``q`` (1 = in order).

    Each problem (a vacant secretary post, a major violation) occurs with
    probability ``problem_rate × exp(-quality_gradient × z)``, ``z`` the
    branch's quality in standard units of the quality distribution: rare in
    a typical branch, likelier the weaker it is.
    """
    s, bq = params.values["state"], params.values["branch_quality"]
    z = (np.asarray(q) - bq["loc"]) / bq["scale"]
    p_problem = np.clip(s["problem_rate"] * np.exp(-s["quality_gradient"] * z), 0, 1)
    return (rng.random((len(z), len(STATE_FACTS))) >= p_problem[:, None]).astype(float)


def state_problem_probability(q: np.ndarray, params: GeneratorParams) -> np.ndarray:
    """Probability that a branch of quality ``q`` has at least one state problem."""
    s, bq = params.values["state"], params.values["branch_quality"]
    p = np.clip(s["problem_rate"] * np.exp(-s["quality_gradient"] * (np.asarray(q) - bq["loc"]) / bq["scale"]),
                0, 1)
    return 1.0 - (1.0 - p) ** len(STATE_FACTS)


# -- measurement ----------------------------------------------------------------
def _facts_from_attainment(p: np.ndarray, u: np.ndarray, kind: np.ndarray, required: np.ndarray,
                           per_unit: np.ndarray, cap: np.ndarray, prop_noise: float) -> np.ndarray:
    """Turn attainment ``p`` (..., k) into raw facts with one uniform ``u`` per value."""
    out = np.empty_like(p)
    for code, cols in _columns_by_rule(kind):
        pc, uc = p[..., cols], u[..., cols]
        if code == 0:                                  # met / not met
            out[..., cols] = uc < pc
        elif code == 1:                                # count against a requirement
            out[..., cols] = np.floor(required[cols] * pc + uc)
        elif code == 2:                                # a share
            out[..., cols] = np.clip(pc + prop_noise * (uc - 0.5), 0.0, 1.0)
        else:                                          # bonus units: the cap is reached at p = 0.5
            scale = 2.0 * cap[cols] / np.where(per_unit[cols] > 0, per_unit[cols], 1.0)
            out[..., cols] = np.floor(scale * pc + uc)
    return out


def _indicator_offsets(seed, rules, spread: float, purpose_block: int):
    """One difficulty offset per indicator, drawn once from the seed (not per chunk)."""
    rng = block_stream(seed, _INDICATORS, purpose_block)
    return spread * rng.standard_normal(len(rules.ids))


def _survey(rng, q, size, params: GeneratorParams) -> np.ndarray:
    """Counts of satisfied / basic / dissatisfied answers, each respondent's answer drawn.

    With expected rate ``r``, answers are drawn with P(basic) = r(1 - r) and
    P(satisfied) = r(0.4 + 0.6 r), so that under the baseline answer values
    (1, 0.6, 0) the expected survey rate is ``r``.
    """
    m = params.values["measurement"]
    n_resp = np.full(len(size), int(m["survey_size"]))
    r = np.clip(q + m["survey_generosity"] + m["survey_shock"] * rng.standard_normal(len(q)), 0, 1)
    probs = np.column_stack([r * (0.4 + 0.6 * r), r * (1 - r), (1 - r) * (1 - 0.4 * r)])
    probs /= probs.sum(axis=1, keepdims=True)
    # Each respondent's answer is one categorical draw; the per-branch multinomial
    # is the same distribution drawn in one call.
    return rng.multinomial(n_resp, probs).astype(np.int64)


def _branch_block(rng, q, t, size, rules, offsets, params: GeneratorParams, state=None):
    """Measured facts ``(n, k)`` and survey counts ``(n, 3)`` of branches of true quality ``q``.

    ``state`` ``(n, len(STATE_FACTS))`` holds the branches' state facts, which
    are recorded as they are (the draws for those columns are made and
    discarded, so the stream does not depend on the policy's indicators).
    """
    m = params.values["measurement"]
    ind = rules.indicators
    n, k = len(q), len(ind.ids)
    p = np.clip(q[:, None] + offsets[None, :] + m["indicator_noise"] * rng.standard_normal((n, k)), 0, 1)
    facts = _facts_from_attainment(p, rng.random((n, k)), ind.kind, ind.required, ind.per_unit,
                                   ind.max_points.max(axis=0), m["proportion_noise"])
    facts[:, ind.kind == 2] = np.round(facts[:, ind.kind == 2], 2)
    if state is not None:
        for j, fact in enumerate(STATE_FACTS):
            if fact in ind.facts:
                facts[:, ind.facts.index(fact)] = state[:, j]
    return facts, _survey(rng, q, size, params)


def _member_block(rng_m, rng_mm, q_branch, t_branch, size, rules, offsets, order, params, cat_cum, out):
    """Members of one seed block of branches and their twelve monthly records (into ``out``)."""
    owner, q, cat, appraisal, base, shock = _member_draws(rng_m, rng_mm, q_branch, t_branch, size, rules,
                                                          offsets, order, params, cat_cum)
    _monthly_facts(rng_mm, base, shock, rules.indicators, order,
                   np.float32(params.get("measurement.proportion_noise")), out)
    return owner, q, cat, appraisal


def _member_draws(rng_m, rng_mm, q_branch, t_branch, size, rules, offsets, order, params, cat_cum):
    """Members' truth, categories and appraisals, and the attainment their monthly records measure.

    Returns ``(owner, q, category, appraisal, base (k, n), shock (12, n))``;
    the monthly uniforms are drawn next from ``rng_mm`` (see :func:`_monthly_facts`).
    """
    mq, mm = params.values["member_quality"], params.values["member_measurement"]
    ind = rules.indicators
    owner = np.repeat(np.arange(len(size)), size)
    n, k = len(owner), len(ind.ids)
    qb = q_branch[owner]
    q = np.clip(mq["loc"] + mq["branch_link"] * (qb - params.get("branch_quality.loc"))
                + mq["sd"] * rng_m.standard_normal(n), 0, 1)
    cat = (rng_m.random(n)[:, None] > cat_cum[t_branch[owner]]).sum(axis=1)
    z_affinity = rng_m.standard_normal(n)
    z_noise = rng_m.standard_normal(n)
    appraisal = appraise(member_true_scores(q, t_branch[owner], rules, offsets), owner, params,
                         z_affinity, z_noise)
    f32 = np.float32
    # Indicator-major layout (k, 12, n): every rule form works on long contiguous runs.
    base = offsets.astype(f32)[order, None] + q.astype(f32)[None, :] \
        + f32(mm["indicator_noise"]) * rng_m.standard_normal((k, n), dtype=f32)
    shock = f32(mm["month_noise"]) * rng_mm.standard_normal((12, n), dtype=f32)
    return owner, q, cat, appraisal, base, shock


def member_true_scores(q: np.ndarray, type_idx: np.ndarray, rules, offsets: np.ndarray) -> np.ndarray:
    """A member's noise-free monthly score: every fact at its expectation given quality ``q``.

    Attainment ``clip(q + offset_i, 0, 1)`` on each indicator, expected points
    by rule form, 100 × points over the type's maximum, capped at 100: the
    member counterpart of :class:`Truth`.
    """
    ind = rules.indicators
    q = np.asarray(q, float)
    type_idx = np.asarray(type_idx)
    out = np.empty(len(q))
    cols = _columns_by_rule(ind.kind)
    for t in np.unique(type_idx):            # one type at a time: its maxima are a vector
        rows = np.flatnonzero(type_idx == t)
        top = ind.max_points[t]
        total = np.zeros(len(rows))
        for code, c in cols:
            p = np.clip(q[rows, None] + offsets[c], 0.0, 1.0)
            if code == 0 or code == 2:       # met with probability p; a share of p
                total += p @ top[c]
            elif code == 1:                  # expected shortfall required x (1 - p)
                total += np.maximum(top[c] - ind.per_shortfall[c] * ind.required[c] * (1 - p), 0.0).sum(axis=1)
            else:                            # bonus: the cap is reached at p = 0.5
                total += np.minimum(2 * p, 1.0) @ top[c]
        out[rows] = 100.0 * total / ind.group_max[t].sum()
    return np.round(np.minimum(out, 100.0), 9)


def appraise(true_score: np.ndarray, branch: np.ndarray, params: GeneratorParams,
             z_affinity: np.ndarray | None = None, z_noise: np.ndarray | None = None) -> np.ndarray:
    """The year-end appraisal: a member's true score as an impression-prone appraiser sees it.

    打印象分: the appraisal is pulled towards the standing of the member's
    branch (the mean true score of its members) by ``impression_halo``;
    感情分: a personal affinity term (``affinity_bias`` × ``z_affinity``); plus
    appraisal noise. Centred on the member's own true score, so the bias is a
    pull, not a shift of level. ``branch`` is any integer key of the member's
    branch; ``z_*`` standard normal draws (None: the term is left out).
    """
    mm = params.values["member_measurement"]
    true_score = np.asarray(true_score, float)
    branch = np.asarray(branch)
    if np.issubdtype(branch.dtype, np.integer) and len(branch) and 0 <= branch.min() \
            and branch.max() < 4 * len(branch) + 1024:
        inverse, k = branch, int(branch.max()) + 1          # small integer keys: no sort needed
    else:
        keys, inverse = np.unique(branch, return_inverse=True)
        k = len(keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        standing = (np.bincount(inverse, true_score, k) / np.bincount(inverse, minlength=k))[inverse]
    a = true_score + mm["impression_halo"] * (standing - true_score)
    if z_affinity is not None:
        a = a + 100.0 * mm["affinity_bias"] * z_affinity
    if z_noise is not None:
        a = a + 100.0 * mm["appraisal_noise"] * z_noise
    return np.clip(np.round(a, 1), 0, 100)


_SUB = 1024  # members per cache-sized piece of the monthly hot path (fixed: part of the stream)


def _compiled():
    """The compiled kernels when Numba is available (the NumPy path gives the same numbers)."""
    from .sensitivity import _kernels
    return _kernels if _kernels.available() else None


def _monthly_facts(rng, base, shock, ind, order, prop_noise, out):
    """Twelve months of facts for ``n`` members into ``out`` ``(k, 12, n)``, indicators in ``order``.

    The hot path of generation: one uniform per value, computed in place on
    contiguous slabs of indicators that share a rule form, in pieces of
    :data:`_SUB` members so the working set stays in cache. ``base`` is the
    member-indicator attainment ``(k, n)``, ``shock`` the month shock ``(12, n)``.
    """
    f32 = np.float32
    k, n = base.shape
    kind = ind.kind[order]
    col = (slice(None), None, None)
    required = ind.required[order].astype(f32)[col]
    cap = ind.max_points.max(axis=0)[order].astype(f32)
    per_unit = ind.per_unit[order].astype(f32)
    bonus_scale = (f32(2) * cap / np.where(per_unit > 0, per_unit, f32(1)))[col]
    runs = [(code, slice(c[0], c[-1] + 1)) for code in range(4)
            if len(c := np.flatnonzero(kind == code))]
    compiled = _compiled()
    kind8 = kind.astype(np.int8)
    for lo in range(0, n, _SUB):
        hi = min(lo + _SUB, n)
        o = out[:, :, lo:hi]
        u = rng.random((k, 12, hi - lo), dtype=f32)
        if compiled is not None:             # one fused pass, the same float32 arithmetic
            compiled.month_facts(base[:, lo:hi], shock[:, lo:hi], u, kind8, required.ravel(),
                                 bonus_scale.ravel(), f32(prop_noise), o)
            continue
        np.add(base[:, None, lo:hi], shock[None, :, lo:hi], out=o)      # attainment p, unclipped
        for code, sl in runs:
            p, uu = o[sl], u[sl]
            if code == 0:      # met if u < p (p outside [0, 1] needs no clip here)
                np.less(uu, p, out=p)
            elif code == 1:    # a count against the requirement, floor(required * p + u)
                p *= required[sl]
                p += uu
                np.floor(p, out=p)
                np.maximum(p, f32(0), out=p)
                np.minimum(p, required[sl], out=p)
            elif code == 2:    # a reported share
                uu -= f32(0.5)
                uu *= prop_noise
                p += uu
                np.maximum(p, f32(0), out=p)
                np.minimum(p, f32(1), out=p)
            else:              # bonus units; the cap is reached at p = 0.5
                p *= bonus_scale[sl]
                p += uu
                np.floor(p, out=p)
                np.maximum(p, f32(0), out=p)


def _expected_points(p: np.ndarray, rules) -> np.ndarray:
    """Expected indicator points at attainment ``p`` (n, k), by rule form (noise-free truth)."""
    kind = rules.kind
    out = np.empty_like(p)
    for code, cols in _columns_by_rule(kind):
        pc = p[:, cols]
        if code == 0 or code == 2:      # met with probability p; a share of p
            out[:, cols] = pc
        elif code == 1:                 # expected count required × p
            short = rules.required[cols] * (1 - pc)
            out[:, cols] = -rules.per_shortfall[cols] * short   # relative to the maximum
        else:                           # bonus: the cap is reached at p = 0.5
            out[:, cols] = np.minimum(2 * pc, 1.0)
    return out


@dataclass(frozen=True)
class Truth:
    """What each branch deserves under a policy, measured without noise.

    ``components`` ``(n, d + 1)``: the dimension fractions and survey rate at
    the expectation of every fact given the branch's true quality; ``cap`` and
    ``veto_weak``: the vetoes its true state triggers (state facts as they are,
    other facts at their expectation).
    """

    components: np.ndarray
    cap: np.ndarray
    veto_weak: np.ndarray

    def outcome(self, rules, type_idx: np.ndarray) -> dict[str, np.ndarray]:
        """``true_score``, ``true_stars`` and ``true_weak`` under compiled branch rules."""
        from .scoring import star_levels
        score = np.round(100.0 * np.einsum("nc,nc->n", self.components, rules.weights[type_idx]), 9)
        stars = np.minimum(star_levels(score, rules.star_levels, rules.star_cuts), self.cap)
        return {"true_score": score, "true_stars": stars.astype(np.int8),
                "true_weak": (score < rules.weak_below) | self.veto_weak}


def truth(pop, policy: Policy) -> Truth | None:
    """The noise-free :class:`Truth` of a generated population; ``None`` without truth."""
    if not pop.has_truth or pop.params is None or pop.seed is None:
        return None
    rules = compile_branch_rules(policy)
    m = pop.params.values["measurement"]
    off = _indicator_offsets(pop.seed, rules.indicators, m["indicator_spread"], 0)
    b = pop.branches
    state = np.column_stack([b[f].to_numpy(float) if f in b.columns else np.ones(len(b))
                             for f in STATE_FACTS])
    return truth_arrays(b["true_quality"].to_numpy(float),
                        type_codes(b["type"], rules.types, policy.name), state, off,
                        pop.params, rules)


def truth_arrays(q, t, state, offsets, params: GeneratorParams, rules) -> Truth:
    """:class:`Truth` from arrays: true quality, type codes, state facts ``(n, len(STATE_FACTS))``."""
    ind = rules.indicators
    m = params.values["measurement"]
    p = np.clip(q[:, None] + offsets[None, :], 0, 1)
    for j, fact in enumerate(STATE_FACTS):
        if fact in ind.facts:
            p[:, ind.facts.index(fact)] = state[:, j]
    e = _expected_points(p, ind)
    top = ind.max_points[t]
    pts = np.where(ind.kind == 1, np.maximum(top + e, 0.0),
                   np.where(ind.kind == 3, np.minimum(top, e * top), top * e))
    from .scoring import group_fractions
    frac = group_fractions(pts, t, ind)
    r = np.clip(q + m["survey_generosity"], 0, 1)
    probs = np.column_stack([r * (0.4 + 0.6 * r), r * (1 - r), (1 - r) * (1 - 0.4 * r)])
    survey = probs @ rules.answer_values / probs.sum(axis=1)
    # Expected facts (binary: met if more likely than not) decide the true vetoes.
    scale = 2.0 * ind.max_points.max(axis=0) / np.where(ind.per_unit > 0, ind.per_unit, 1.0)
    expected = np.select([ind.kind == 0, ind.kind == 1, ind.kind == 2],
                         [np.round(p), ind.required * p, p], default=scale * p)
    fired = expected[:, rules.veto_indicator] < rules.veto_below
    cap = np.where(fired, rules.veto_max_star, 5).min(axis=1, initial=5).astype(np.int8)
    return Truth(np.column_stack([frac, survey]), cap, (fired & rules.veto_weak).any(axis=1))


def true_components(pop, policy: Policy) -> np.ndarray | None:
    """Noise-free components ``(n, d + 1)`` of each branch (see :func:`truth`)."""
    tr = truth(pop, policy)
    return None if tr is None else tr.components
