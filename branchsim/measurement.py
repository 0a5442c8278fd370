"""The measurement model: truth, state facts, and noisy measurements of them.

Parameters in the generator file (``data/generator.yaml``, overlaid by a
scheme's ``NAME.generator.yaml``):

* a branch's true quality ``q`` lies on the attainment scale (1 = every
  indicator fully met); it is drawn from a sinh-arcsinh transformed normal
  whose location, scale, skew and tail are calibrated to the published counts;
* **state facts** — the facts the scheme declares ``state: true`` (a vacant
  secretary post, a major violation) — are part of the truth: drawn once,
  likelier to be out of order in weak branches, recorded without error;
* each indicator fact is a noisy measurement: attainment
  ``p = clip(q + offset_i + noise, 0, 1)`` turned into the raw fact by the
  indicator's rule form with one uniform draw ``u`` (:func:`facts_from_attainment`);
* ``survey_size`` respondents per branch each give one answer of the scheme's
  scale, drawn with expected value ``q + generosity + branch mood``;
* members' period records are measured the same way from the member's
  quality; the year-end appraisal carries the impression bias the source
  complains of (打印象分: a halo towards the branch's standing; 感情分: a
  personal affinity term). The period records can carry the same two
  biases (``monthly_halo``, ``monthly_affinity``; 0 by default, see
  :func:`record_quality`), so that the claim that monthly records curb
  impression scores is tested, not assumed.

What a branch deserves (every fact at its expectation) is in :mod:`branchsim.truth`.
"""
from __future__ import annotations

import math

import numpy as np

from .params import GeneratorParams
from .scheme import RULE_CODES, BranchScheme, MemberScheme, Scheme, Sheet
from .scoring import _columns_by_rule, required_level
from .streams import _INDICATORS, block_stream, uniforms_f32

__all__ = ["state_facts", "state_problem_probability",
           "categories", "facts_from_attainment", "survey_probabilities", "record_quality"]

MIN_SIZE = 3   # a branch needs at least three full members; smaller draws are set to 3
_SUB = 1024    # members per cache-sized piece of the monthly hot path (fixed: part of the stream)


def _type_table(params: GeneratorParams, bs: BranchScheme):
    """Share and size multiplier of each of the scheme's branch types.

    Types the generator file does not list get the mean share of those it
    lists (all equal when it lists none) and a size multiplier of 1.
    """
    given = params.values.get("types") or {}
    known = [t for t in bs.types if t in given]
    mean_share = float(np.mean([given[t]["share"] for t in known])) if known else 1.0
    share = np.array([given[t]["share"] if t in given else mean_share for t in bs.types], float)
    size = np.array([given[t]["size"] if t in given else 1.0 for t in bs.types], float)
    return bs.types, share / share.sum(), size


def categories(params: GeneratorParams, scheme: Scheme) -> tuple[tuple[str, ...], np.ndarray]:
    """Member classes drawn by the generator and their cumulative shares by type ``(t, c-1)``.

    The policy's member classes when it has them, else those of the generator
    file (``categories.<type>.<class>``); a type the file does not list draws
    its classes in equal shares.
    """
    given = params.values.get("categories") or {}
    ms = scheme.member
    if ms is not None and ms.classes:
        names = ms.classes
    else:
        names = tuple(dict.fromkeys(c for t in given.values() for c in t)) or ("member",)
    rows = []
    for t in scheme.branch.types:
        shares = np.array([float((given.get(t) or {}).get(c, 0.0)) for c in names])
        rows.append(shares if shares.sum() > 0 else np.ones(len(names)))
    cum = np.cumsum(rows, axis=1)
    return tuple(names), cum[:, :-1] / cum[:, -1:]


def expected_size(median: float, params: GeneratorParams, scheme: Scheme) -> float:
    """Mean branch size for an overall ``median``: log-normal by type, rounded, at least 3.

    ``E[max(rint X, 3)] ≈ 3 P(X < 2.5) + E[X; X >= 2.5]`` for each type's
    log-normal ``X`` (rounding changes the mean by a negligible amount).
    """
    from scipy.stats import norm
    _, share, mult = _type_table(params, scheme.branch)
    sigma = params.get("structure.size_sigma")
    m = median * mult
    a = np.log((MIN_SIZE - 0.5) / m) / sigma
    per_type = MIN_SIZE * norm.cdf(a) + m * math.exp(sigma ** 2 / 2) * norm.sf(a - sigma)
    return float(share @ per_type)


def size_median(params: GeneratorParams, scheme: Scheme) -> float:
    """Overall median size so the *expected* mean branch size is ``scale.mean_size``.

    Accounts for the three-member minimum, which raises small branches: without
    it a requested member total is overshot by several per cent.
    """
    from scipy.optimize import brentq
    target = params.get("scale.mean_size")
    if target <= MIN_SIZE:
        return 1e-9
    return brentq(lambda med: expected_size(med, params, scheme) - target, 1e-6, target * 10, xtol=1e-10)


def _quality(z: np.ndarray, p: dict) -> np.ndarray:
    return p["loc"] + p["scale"] * np.sinh((np.arcsinh(z) + p["skew"]) / p["tail"])


def structure_block(rng, n: int, params: GeneratorParams, scheme: Scheme, median: float):
    """Types, sizes, organisation levels, true qualities and state facts of ``n`` branches."""
    _, share, mult = _type_table(params, scheme.branch)
    t = np.searchsorted(np.cumsum(share)[:-1], rng.random(n), side="right")
    size = np.maximum(np.rint(median * mult[t] * np.exp(params.get("structure.size_sigma")
                                                        * rng.standard_normal(n))), MIN_SIZE).astype(np.int64)
    under = rng.random(n) < params.get("structure.p_underlevel")    # drawn whatever the scheme: one stream
    if scheme.structure is not None:
        need = required_level(size, scheme.structure)["level"]
        level = np.where(under, np.maximum(need - 1, 0), need)
    else:
        level = np.zeros(n, dtype=np.int8)
    q = _quality(rng.standard_normal(n), params.values["branch_quality"])
    return t, size, level, q, state_facts(rng, q, params, len(scheme.branch.state_facts))


def state_facts(rng, q: np.ndarray, params: GeneratorParams, n_state: int) -> np.ndarray:
    """Draw ``n_state`` state facts ``(n, n_state)`` of branches of quality ``q`` (1 = in order).

    Each problem (a vacant secretary post, a major violation) occurs with
    probability ``problem_rate × exp(-quality_gradient × z)``, ``z`` the
    branch's quality in standard units of the quality distribution: rare in
    a typical branch, likelier the weaker it is.
    """
    s, bq = params.values["state"], params.values["branch_quality"]
    z = (np.asarray(q) - bq["loc"]) / bq["scale"]
    p_problem = np.clip(s["problem_rate"] * np.exp(-s["quality_gradient"] * z), 0, 1)
    return (rng.random((len(z), n_state)) >= p_problem[:, None]).astype(float)


def state_problem_probability(q: np.ndarray, params: GeneratorParams, n_state: int) -> np.ndarray:
    """Probability that a branch of quality ``q`` has at least one of ``n_state`` state problems."""
    s, bq = params.values["state"], params.values["branch_quality"]
    p = np.clip(s["problem_rate"] * np.exp(-s["quality_gradient"] * (np.asarray(q) - bq["loc"]) / bq["scale"]),
                0, 1)
    return 1.0 - (1.0 - p) ** n_state


# -- measurement ----------------------------------------------------------------
def _scales(sheet: Sheet) -> dict[str, np.ndarray]:
    """Per indicator: how many units of the fact reach full points (or take them all), ``(k,)``."""
    top = sheet.points.max(axis=0)

    def ratio(rate):
        return np.where(rate > 0, top / np.where(rate > 0, rate, 1.0), 1.0)

    return {"bonus": 2.0 * top / np.where(sheet.per_unit.max(axis=0) > 0, sheet.per_unit.max(axis=0), 1.0),
            "per_event": np.maximum(np.ceil(ratio(sheet.per_event.max(axis=0))), 1.0),
            "occurrences": np.maximum(np.ceil(ratio(sheet.per_occurrence.max(axis=0))), 1.0),
            "required": sheet.required.max(axis=0)}


def facts_from_attainment(p: np.ndarray, u: np.ndarray, sheet: Sheet, prop_noise: float) -> np.ndarray:
    """Turn attainment ``p`` ``(..., k)`` into raw facts with one uniform ``u`` per value.

    By rule form: met if ``u < p``; a count against a requirement
    ``floor(required × p + u)``; a share ``p ± noise``; bonus units (the cap
    is reached at ``p = 0.5``); events (the cap at ``p = 1``); occurrences of a
    shortfall ``floor(n × (1 - p) + u)`` (``n`` take all the points);
    a zeroing breach with probability ``(1 - p) / 2``; a rank's performance
    measure ``100 p``.
    """
    out = np.empty_like(p)
    sc = _scales(sheet)
    for code, cols in _columns_by_rule(sheet.kind[0]):
        pc, uc = p[..., cols], u[..., cols]
        if code == 0:                                  # met / not met
            out[..., cols] = uc < pc
        elif code == 1:                                # count against a requirement
            out[..., cols] = np.floor(sc["required"][cols] * pc + uc)
        elif code == 2:                                # a share
            out[..., cols] = np.clip(pc + prop_noise * (uc - 0.5), 0.0, 1.0)
        elif code == 3:                                # bonus units: the cap is reached at p = 0.5
            out[..., cols] = np.floor(sc["bonus"][cols] * pc + uc)
        elif code == 4:                                # events: the cap is reached at p = 1
            out[..., cols] = np.floor(sc["per_event"][cols] * pc + uc)
        elif code in (5, 6):                           # occurrences of a shortfall
            out[..., cols] = np.floor(sc["occurrences"][cols] * (1.0 - pc) + uc)
        elif code == 7:                                # a zeroing breach
            out[..., cols] = uc < (1.0 - pc) / 2.0
        else:                                          # a performance measure ranked among units
            out[..., cols] = np.round(100.0 * pc, 2)
    return out


def _indicator_offsets(seed, sheet: Sheet, params: GeneratorParams, purpose_block: int):
    """One difficulty offset per indicator, drawn once from the seed (not per chunk).

    ``measurement.indicator_spread`` × a standard normal, plus the fact's own
    ``facts.<fact>.offset`` when the generator file gives one (an item nearly
    everyone meets, such as dues paid on time, gets a positive offset).
    """
    rng = block_stream(seed, _INDICATORS, purpose_block)
    off = params.get("measurement.indicator_spread") * rng.standard_normal(sheet.k)
    given = params.values.get("facts") or {}
    extra = np.array([float((given.get(f) or {}).get("offset", 0.0)) for f in sheet.facts])
    return off + extra if extra.any() else off


def survey_probabilities(rate: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Answer probabilities ``(n, a)`` with expected answer value ``rate`` on the scheme's scale.

    With answer values normalised to ``u`` in [0, 1] (best 1, worst 0) and
    ``r`` the rate on that scale: three answers ``(1, u_m, 0)`` are answered
    ``r (1 - u_m + u_m r)``, ``r (1 - r)`` and the rest (so the expected value
    is ``r``); any other scale by a binomial over the ordered answers whose
    success probability makes the expected value ``r``.
    """
    values = np.asarray(values, float)
    lo, hi = values.min(), values.max()
    u = (values - lo) / (hi - lo) if hi > lo else np.linspace(1, 0, len(values))
    r = np.clip((np.asarray(rate, float) - lo) / (hi - lo) if hi > lo else rate, 0, 1)
    order = np.argsort(-u, kind="stable")                # best answer first
    us = u[order]
    if len(u) == 3 and us[0] == 1 and us[2] == 0:
        b = 1 - us[1]
        probs = np.column_stack([r * (b + (1 - b) * r), r * (1 - r), (1 - r) * (1 - b * r)])
    else:
        from scipy.stats import binom
        k = len(u) - 1
        steps = np.arange(k, -1, -1)                     # the best answer is k successes
        lo_p, hi_p = np.zeros_like(r), np.ones_like(r)
        for _ in range(50):                              # the expected value rises with p: bisect
            mid = (lo_p + hi_p) / 2
            e = binom.pmf(steps[None, :], k, mid[:, None]) @ us
            lo_p, hi_p = np.where(e < r, mid, lo_p), np.where(e < r, hi_p, mid)
        probs = binom.pmf(steps[None, :], k, ((lo_p + hi_p) / 2)[:, None])
    out = np.empty_like(probs)
    out[:, order] = probs
    return out


def _survey(rng, q, size, params: GeneratorParams, bs: BranchScheme) -> np.ndarray:
    """Answer counts ``(n, a)``, each respondent's answer drawn (the per-branch multinomial)."""
    m = params.values["measurement"]
    n_resp = np.full(len(size), int(m["survey_size"]))
    r = np.clip(q + m["survey_generosity"] + m["survey_shock"] * rng.standard_normal(len(q)), 0, 1)
    probs = survey_probabilities(r, bs.answer_values)
    probs /= probs.sum(axis=1, keepdims=True)
    return rng.multinomial(n_resp, probs).astype(np.int64)


def _state_value(section, fact: str) -> tuple[float, float]:
    """(value in order, value out of order) of a state fact: read off the vetoes and criteria that read it.

    ``section`` is the branch or member scheme. A fact a veto or criterion
    reads with ``at_least`` is out of order at that value (in order at 0);
    any other is in order at 1 and out of order at 0.
    """
    vetoes = section.vetoes
    at_least = [thr for f, thr, al in zip(vetoes.fact, vetoes.threshold, vetoes.at_least) if f == fact and al]
    at_least += [c.value for d in getattr(section, "designations", ()) for c in d.criteria
                 if c.fact == fact and c.kind == "fact_at_least"]
    if at_least:
        return 0.0, float(max(min(at_least), 1.0))
    return 1.0, 0.0


def branch_block(rng, q, t, size, bs: BranchScheme, offsets, params: GeneratorParams, state=None):
    """Measured facts ``(n, k)`` and survey counts ``(n, a)`` of branches of true quality ``q``.

    ``state`` ``(n, len(bs.state_facts))`` holds the branches' state facts
    (1 = in order), recorded as they are: the draws for those columns are made
    and discarded, so the stream does not depend on which facts are state facts.
    """
    m = params.values["measurement"]
    sheet = bs.sheet
    n, k = len(q), sheet.k
    p = np.clip(q[:, None] + offsets[None, :] + m["indicator_noise"] * rng.standard_normal((n, k)), 0, 1)
    facts = facts_from_attainment(p, rng.random((n, k)), sheet, m["proportion_noise"])
    share = sheet.kind[0] == RULE_CODES["proportion"]
    facts[:, share] = np.round(facts[:, share], 2)
    if state is not None:
        for j, fact in enumerate(bs.state_facts):
            if fact in sheet.facts:
                good, bad = _state_value(bs, fact)
                facts[:, sheet.facts.index(fact)] = np.where(state[:, j] > 0, good, bad)
    survey = _survey(rng, q, size, params, bs) if bs.survey else np.zeros((n, 0), dtype=np.int64)
    return facts, survey


def declared_facts(rng, q: np.ndarray, section, params: GeneratorParams, state=None, *,
                   z: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The facts a scheme declares (read by vetoes, designations, direct grading only).

    ``section`` is the branch or member scheme, ``q`` the units' true
    quality, ``z`` it in standard units (default: the branch quality's). A
    branch state fact is the branch's state (``state``, 1 = in order); a member
    state fact is out of order with probability ``problem_rate ×
    exp(-quality_gradient × z)``. Any other fact follows quality: a binary fact
    is 1 with probability ``rate × exp(quality_gradient × z)`` (rare unless the
    unit is strong; ``facts.<fact>.rate`` in the generator file, default 0.05),
    a count is ``floor(3 p + u)``, a share ``p``, a number ``100 p``.
    """
    out = {}
    given = params.values.get("facts") or {}
    s, bq = params.values["state"], params.values["branch_quality"]
    z = (np.asarray(q) - bq["loc"]) / bq["scale"] if z is None else z
    p = np.clip(q, 0, 1)
    state_facts = getattr(section, "state_facts", ())
    for f, entry in section.fact_entries.items():
        u = rng.random(len(q))
        if entry.get("state"):
            good, bad = _state_value(section, f)
            if f in state_facts and state is not None:
                in_order = state[:, state_facts.index(f)] > 0
            else:
                in_order = u >= np.clip(s["problem_rate"] * np.exp(-s["quality_gradient"] * z), 0, 1)
                u = rng.random(len(q))
            col = np.where(in_order, good, bad)
            if entry["kind"] == "count" and good > 0:
                col = np.where(in_order, np.floor(3 * p + u) + 1, bad)
            out[f] = col
            continue
        kind = entry["kind"]
        if kind == "binary":
            rate = float((given.get(f) or {}).get("rate", 0.05))
            out[f] = (u < np.clip(rate * np.exp(s["quality_gradient"] * z), 0, 1)).astype(float)
        elif kind == "count":
            out[f] = np.floor(3 * p + u)
        elif kind == "share":
            out[f] = np.round(p, 2)
        else:
            out[f] = np.round(100 * p, 2)
    return out


def member_draws(rng_m, rng_mm, q_branch, t_branch, size, ms: MemberScheme, offsets, order, params,
                 cat_cum, profile_of):
    """Members' truth, classes and appraisals, and the attainment their period records measure.

    Returns ``(owner, q, class, appraisal, base (k, n), shock (periods, n))``;
    the period uniforms are drawn next from ``rng_mm`` (see :func:`monthly_facts`).
    ``profile_of(type codes, class codes)`` gives each member's profile.
    """
    mq, mm = params.values["member_quality"], params.values["member_measurement"]
    owner = np.repeat(np.arange(len(size)), size)
    n, k = len(owner), ms.sheet.k
    qb = q_branch[owner]
    q = np.clip(mq["loc"] + mq["branch_link"] * (qb - params.get("branch_quality.loc"))
                + mq["sd"] * rng_m.standard_normal(n), 0, 1)
    cat = (rng_m.random(n)[:, None] > cat_cum[t_branch[owner]]).sum(axis=1)
    z_affinity = rng_m.standard_normal(n)
    z_noise = rng_m.standard_normal(n)
    appraisal = appraise(member_true_scores(q, profile_of(t_branch[owner], cat), ms, offsets), owner, params,
                         z_affinity, z_noise)
    f32 = np.float32
    # Indicator-major layout (k, periods, n): every rule form works on long contiguous runs.
    base = offsets.astype(f32)[order, None] + record_quality(q, owner, params, z_affinity).astype(f32)[None, :] \
        + f32(mm["indicator_noise"]) * rng_m.standard_normal((k, n), dtype=f32)
    shock = f32(mm["month_noise"]) * rng_mm.standard_normal((ms.periods, n), dtype=f32)
    return owner, q, cat, appraisal, base, shock


def _expected_member_points(p: np.ndarray, sheet: Sheet, profile: int, cols, code: int) -> np.ndarray:
    top = sheet.points[profile, cols]
    if code in (0, 2, 4, 5):          # met with probability p; a share of p; events and occurrences ∝ p
        return p @ top
    if code == 1:                     # expected shortfall required × (1 - p)
        return np.maximum(top - sheet.per_shortfall[profile, cols] * sheet.required[profile, cols] * (1 - p),
                          0.0).sum(axis=1)
    if code == 3:                     # bonus: the cap is reached at p = 0.5
        return np.minimum(2 * p, 1.0) @ top
    if code == 6:                     # a penalty: occurrences ∝ 1 - p
        return -((1 - p) @ top)
    return np.zeros(len(p))           # zeroing (no breach expected), rank (members have none)


_COLUMNS: dict = {}


def _profile_columns(sheet: Sheet) -> list:
    """The columns of each rule form, per profile (computed once per sheet: blocks reuse them)."""
    key = id(sheet)
    hit = _COLUMNS.get(key)
    if hit is None or hit[0] is not sheet:
        hit = (sheet, [_columns_by_rule(sheet.kind[p]) for p in range(len(sheet.kind))])
        if len(_COLUMNS) > 64:
            _COLUMNS.clear()
        _COLUMNS[key] = hit
    return hit[1]


def member_true_scores(q: np.ndarray, profile: np.ndarray, ms: MemberScheme, offsets: np.ndarray) -> np.ndarray:
    """A member's noise-free record score: every fact at its expectation given quality ``q``.

    Attainment ``clip(q + offset_i, 0, 1)`` on each indicator, expected points
    by rule form, 100 × points over the profile's maximum, within the record's
    cap: the member counterpart of :class:`Truth`. Under ``accrual: sum`` the
    year's counts are measured once (see :func:`period_share`) and a binary
    fact counts only if met in every period (expected ``p ** periods``).
    """
    sheet = ms.sheet
    q = np.asarray(q, float)
    profile = np.asarray(profile)
    out = np.empty(len(q))
    every = ms.periods if ms.accrual == "sum" else 1    # summed: a binary fact is met if met every period
    columns = _profile_columns(sheet)
    for t in np.unique(profile):             # one profile at a time: its maxima are a vector
        rows = np.flatnonzero(profile == t)
        total = np.zeros(len(rows))
        for code, c in columns[t]:
            p = q[rows, None] + offsets[c]
            np.minimum(np.maximum(p, 0.0, out=p), 1.0, out=p)      # clip, without its overhead
            if code == 0 and every > 1:
                p = p ** every
            total += _expected_member_points(p, sheet, t, c, int(code))
        out[rows] = 100.0 * total / sheet.group_max[t].sum()
    if not np.isnan(ms.cap):
        out = np.minimum(out, ms.cap)
    return np.round(np.maximum(out, 0.0), 9)


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
    a = true_score + mm["impression_halo"] * (_standing(true_score, branch) - true_score)
    if z_affinity is not None:
        a = a + 100.0 * mm["affinity_bias"] * z_affinity
    if z_noise is not None:
        a = a + 100.0 * mm["appraisal_noise"] * z_noise
    return np.clip(np.round(a, 1), 0, 100)


def _standing(values: np.ndarray, branch) -> np.ndarray:
    """Each member's branch mean of ``values`` (``branch``: any key of the member's branch)."""
    branch = np.asarray(branch)
    if np.issubdtype(branch.dtype, np.integer) and len(branch) and 0 <= branch.min() \
            and branch.max() < 4 * len(branch) + 1024:
        inverse, k = branch, int(branch.max()) + 1          # small integer keys: no sort needed
    else:
        keys, inverse = np.unique(branch, return_inverse=True)
        k = len(keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.bincount(inverse, values, k) / np.bincount(inverse, minlength=k))[inverse]


def record_quality(q: np.ndarray, branch, params: GeneratorParams, z_affinity: np.ndarray | None) -> np.ndarray:
    """The quality a member's period records measure: the true quality, or it with impression bias.

    The period records carry the year-end appraisal's two biases when the
    generator file says so (both 0 by default: the records then measure the
    member's own quality): ``member_measurement.monthly_halo`` pulls it
    towards the standing of the member's branch (its members' mean true
    quality), ``member_measurement.monthly_affinity`` adds that many units of
    attainment (0.01 ≈ one record point) times the member's affinity draw
    ``z_affinity`` — the same draw as the appraisal's 感情分, as the same
    secretary keeps the records and appraises. With both at the appraisal's
    values (``impression_halo``, ``affinity_bias``) the records are about as
    biased as the appraisal.

    >>> p = GeneratorParams.load().with_values({"member_measurement.monthly_halo": 0.5})
    >>> record_quality(np.array([0.6, 0.8, 0.5]), np.array([0, 0, 1]), p, None).round(3).tolist()
    [0.65, 0.75, 0.5]
    """
    mm = params.values["member_measurement"]
    halo, affinity = float(mm.get("monthly_halo", 0.0)), float(mm.get("monthly_affinity", 0.0))
    q = np.asarray(q, float)
    if halo == 0 and affinity == 0:            # the default: the records measure the truth (no extra work)
        return q
    out = q + halo * (_standing(q, branch) - q) if halo else q.copy()
    if affinity and z_affinity is not None:
        out = out + affinity * np.asarray(z_affinity, float)
    return out


def _compiled():
    """The compiled kernels when Numba is available (the NumPy path gives the same numbers)."""
    from .sensitivity import _kernels
    return _kernels if _kernels.available() else None


#: Rule codes the compiled kernel of the period facts draws (the others take the NumPy path).
_KERNEL_CODES = (0, 1, 2, 3)


def period_share(ms: MemberScheme) -> float:
    """How many periods share a count's scale: ``periods`` when the facts are summed over the year
    (each period draws its part of the year's count), else 1 (each period is scored on its own)."""
    return float(ms.periods) if ms.accrual == "sum" else 1.0


def monthly_facts(rng, base, shock, sheet: Sheet, order, prop_noise, out, *, per_period: float = 1.0):
    """``periods`` records of facts for ``n`` members into ``out`` ``(k, periods, n)``, indicators in ``order``.

    The hot path of generation: one uniform per value, computed in place on
    contiguous slabs of indicators that share a rule form, in pieces of
    :data:`_SUB` members so the working set stays in cache. ``base`` is the
    member-indicator attainment ``(k, n)``, ``shock`` the period shock
    ``(periods, n)``. ``per_period`` (:func:`period_share`) divides the
    scale of every count, so a year of summed periods measures the year's
    requirement, cap or allowance once.
    """
    f32 = np.float32
    k, n = base.shape
    periods = shock.shape[0]
    kind = sheet.kind[0][order]
    sc = {key: v / per_period for key, v in _scales(sheet).items()} if per_period != 1.0 else _scales(sheet)
    col = (slice(None), None, None)
    required = sc["required"][order].astype(f32)[col]
    bonus_scale = sc["bonus"][order].astype(f32)[col]
    events = sc["per_event"][order].astype(f32)[col]
    occurrences = sc["occurrences"][order].astype(f32)[col]
    runs = [(code, slice(c[0], c[-1] + 1)) for code in range(9)
            if len(c := np.flatnonzero(kind == code))]
    compiled = _compiled() if np.isin(kind, _KERNEL_CODES).all() else None
    kind8 = kind.astype(np.int8)
    for lo in range(0, n, _SUB):
        hi = min(lo + _SUB, n)
        o = out[:, :, lo:hi]
        u = uniforms_f32(rng, (k, periods, hi - lo))      # = rng.random(..., dtype=float32), faster
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
            elif code in (3, 4):   # bonus units (cap at p = 0.5), events (cap at p = 1)
                p *= (bonus_scale if code == 3 else events)[sl]
                p += uu
                np.floor(p, out=p)
                np.maximum(p, f32(0), out=p)
            elif code in (5, 6):   # occurrences of a shortfall
                np.clip(p, f32(0), f32(1), out=p)
                np.subtract(f32(1), p, out=p)
                p *= occurrences[sl]
                p += uu
                np.floor(p, out=p)
            elif code == 7:        # a zeroing breach
                np.clip(p, f32(0), f32(1), out=p)
                np.subtract(f32(1), p, out=p)
                p *= f32(0.5)
                np.less(uu, p, out=p)
            else:                  # a performance measure
                np.clip(p, f32(0), f32(1), out=p)
                p *= f32(100)


# -- helpers the truth and the Monte Carlo share ------------------------------------
def _codes(b, column):
    import pandas as pd
    return pd.factorize(b[column], sort=True)[0].astype(np.intp)


def _state_column(b, bs: BranchScheme, fact: str) -> np.ndarray:
    """A state fact of the branches table as 1 (in order) / 0 (out of order)."""
    if fact not in b.columns:
        return np.ones(len(b))
    good, bad = _state_value(bs, fact)
    v = b[fact].to_numpy(float)
    return (v >= good).astype(float) if good > bad else (v < bad).astype(float)
