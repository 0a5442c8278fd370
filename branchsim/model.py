"""Populations: generated (truth plus noisy measurement) or loaded from tables.

Generation is vectorised and chunked. Branches are drawn in fixed *seed
blocks* of :data:`BLOCK` branches; block ``i`` of purpose ``p`` draws from
``SeedSequence(entropy, spawn_key=(p, i))``, so the same seed gives the same
numbers whatever the processing ``chunk_size``, worker count or machine.

The measurement model (parameters in ``data/generator.yaml``):

* a branch's true quality ``q`` lies on the attainment scale (1 = every
  indicator fully met); it is drawn from a sinh-arcsinh transformed normal
  whose location, scale, skew and tail are calibrated to the published counts;
* each indicator fact is a noisy measurement: attainment
  ``p = clip(q + offset_i + noise, 0, 1)`` turned into the raw fact by the
  indicator's rule form with one uniform draw (met if ``u < p``; a count
  ``floor(required × p + u)``; a share ``p ± noise``; bonus units);
* survey respondents (members and residents) each give one answer drawn
  with expected value ``q + generosity + branch mood``;
* members' monthly records are measured the same way from the member's
  quality; the year-end appraisal carries the impression bias the source
  complains of (打印象分: a halo towards the branch's standing; 感情分: a
  personal affinity term).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from .policy import Policy, data_path
from .scoring import STRUCTURE_LEVELS, _columns_by_rule, compile_branch_rules, compile_member_rules, required_level

__all__ = ["BLOCK", "GeneratorParams", "generate", "block_stream"]

#: Branches per seed block. Processing chunks are whole numbers of blocks.
BLOCK = 256
_STRUCTURE, _BRANCH, _MEMBER, _MONTHS, _INDICATORS = range(5)
CATEGORIES = ("in_service", "retired", "farmer", "mobile")
_VETO_FACTS = ("secretary_in_post", "no_major_violation")


def _workers(workers: int | None) -> int:
    if workers is None:
        return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1))
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        from .errors import BranchsimError
        raise BranchsimError(f"workers must be a positive whole number, got {workers!r}")
    return int(workers)


def block_stream(seed: np.random.SeedSequence, purpose: int, block: int) -> np.random.Generator:
    """The random stream of one purpose and seed block (independent of chunking)."""
    child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, purpose, block))
    return np.random.Generator(np.random.PCG64(child))


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """Accept an int, a SeedSequence or a Generator (whose bit generator's seed is used)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return seed.bit_generator.seed_seq
    if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.SeedSequence(seed)
    from .errors import BranchsimError
    raise BranchsimError(f"seed must be an int, a numpy SeedSequence or Generator; got {seed!r}")


def _values(node):
    if isinstance(node, dict) and "value" in node:
        return node["value"]
    if isinstance(node, dict):
        return {k: _values(v) for k, v in node.items()}
    return node


@dataclass(frozen=True)
class GeneratorParams:
    """Generator parameters as a nested dict of plain values (``data/generator.yaml``)."""

    values: dict = field(repr=False)
    document: dict = field(repr=False)

    @classmethod
    def load(cls, path=None) -> "GeneratorParams":
        path = data_path("generator.yaml") if path is None else path
        with open(path, encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return cls(_values(doc), doc)

    def get(self, dotted: str):
        node = self.values
        for key in dotted.split("."):
            node = node[key]
        return node

    def with_values(self, changes: dict) -> "GeneratorParams":
        """A copy with some dotted paths set (used by calibration and sweeps of noise)."""
        import copy
        values, doc = copy.deepcopy(self.values), copy.deepcopy(self.document)
        for dotted, v in changes.items():
            *head, last = dotted.split(".")
            node, dnode = values, doc
            for key in head:
                node, dnode = node[key], dnode[key]
            if last not in node:
                from .errors import BranchsimError
                raise BranchsimError(f"unknown generator parameter {dotted!r}")
            node[last] = v
            if isinstance(dnode[last], dict) and "value" in dnode[last]:
                dnode[last]["value"] = v
            else:
                dnode[last] = v
        return GeneratorParams(values, doc)


# -- structure and truth --------------------------------------------------------
def _type_table(params: GeneratorParams, policy: Policy):
    types = policy.branch_types
    share = np.array([params.get(f"types.{t}.share") if t in params.values["types"] else 0.0
                      for t in types], float)
    size = np.array([params.get(f"types.{t}.size") if t in params.values["types"] else 1.0
                     for t in types], float)
    return types, share / share.sum(), size


def size_median(params: GeneratorParams, policy: Policy) -> float:
    """Overall median size so the mean branch size matches ``scale.mean_size``."""
    _, share, mult = _type_table(params, policy)
    sigma = params.get("structure.size_sigma")
    return params.get("scale.mean_size") / float(share @ mult) / math.exp(sigma ** 2 / 2)


def _quality(z: np.ndarray, p: dict) -> np.ndarray:
    return p["loc"] + p["scale"] * np.sinh((np.arcsinh(z) + p["skew"]) / p["tail"])


def _structure_block(rng, n: int, params: GeneratorParams, policy: Policy, median: float):
    types, share, mult = _type_table(params, policy)
    t = np.searchsorted(np.cumsum(share)[:-1], rng.random(n), side="right")
    size = np.maximum(np.rint(median * mult[t] * np.exp(params.get("structure.size_sigma")
                                                        * rng.standard_normal(n))), 3).astype(np.int64)
    need = required_level(size, policy)["level"]
    under = rng.random(n) < params.get("structure.p_underlevel")
    level = np.where(under, np.maximum(need - 1, 0), need)
    q = _quality(rng.standard_normal(n), params.values["branch_quality"])
    return t, size, level, q


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


def _indicator_offsets(seed, rules, spread: float, veto_offset: float, purpose_block: int):
    """One difficulty offset per indicator, drawn once from the seed (not per chunk)."""
    rng = block_stream(seed, _INDICATORS, purpose_block)
    off = spread * rng.standard_normal(len(rules.ids))
    for i, fact in enumerate(rules.facts):
        if fact in _VETO_FACTS:
            off[i] = veto_offset
    return off


def _survey(rng, q, size, params: GeneratorParams) -> np.ndarray:
    """Counts of satisfied / basic / dissatisfied answers, each respondent's answer drawn.

    With expected rate ``r``, answers are drawn with P(basic) = r(1 - r) and
    P(satisfied) = r(0.4 + 0.6 r), so that under the baseline answer values
    (1, 0.6, 0) the expected survey rate is ``r``.
    """
    m = params.values["measurement"]
    n_resp = np.minimum(size, m["survey_members"]) + m["survey_residents"]
    r = np.clip(q + m["survey_generosity"] + m["survey_shock"] * rng.standard_normal(len(q)), 0, 1)
    probs = np.column_stack([r * (0.4 + 0.6 * r), r * (1 - r), (1 - r) * (1 - 0.4 * r)])
    probs /= probs.sum(axis=1, keepdims=True)
    # Each respondent's answer is one categorical draw; the per-branch multinomial
    # is the same distribution drawn in one call.
    return rng.multinomial(n_resp, probs).astype(np.int64)


def _branch_block(rng, q, t, size, rules, offsets, params: GeneratorParams):
    m = params.values["measurement"]
    ind = rules.indicators
    n, k = len(q), len(ind.ids)
    p = np.clip(q[:, None] + offsets[None, :] + m["indicator_noise"] * rng.standard_normal((n, k)), 0, 1)
    facts = _facts_from_attainment(p, rng.random((n, k)), ind.kind, ind.required, ind.per_unit,
                                   ind.max_points.max(axis=0), m["proportion_noise"])
    facts[:, ind.kind == 2] = np.round(facts[:, ind.kind == 2], 2)
    return facts, _survey(rng, q, size, params)


def _member_block(rng_m, rng_mm, q_branch, t_branch, size, rules, offsets, order, params, cat_cum, out):
    """Members of one seed block of branches and their twelve monthly records."""
    mq, mm = params.values["member_quality"], params.values["member_measurement"]
    ind = rules.indicators
    owner = np.repeat(np.arange(len(size)), size)
    n, k = len(owner), len(ind.ids)
    qb = q_branch[owner]
    q = np.clip(mq["loc"] + mq["branch_link"] * (qb - params.get("branch_quality.loc"))
                + mq["sd"] * rng_m.standard_normal(n), 0, 1)
    cat = (rng_m.random(n)[:, None] > cat_cum[t_branch[owner]]).sum(axis=1)
    # 打印象分 pulls the appraisal towards the branch's standing; 感情分 adds affinity.
    impression = mm["impression_halo"] * (qb - q) + mm["affinity_bias"] * rng_m.standard_normal(n)
    appraisal = np.clip(np.round(100 * (q + impression + mm["appraisal_noise"] * rng_m.standard_normal(n)), 1),
                        0, 100)
    f32 = np.float32
    # Indicator-major layout (k, 12, n): every rule form works on long contiguous runs.
    base = offsets.astype(f32)[order, None] + q.astype(f32)[None, :] \
        + f32(mm["indicator_noise"]) * rng_m.standard_normal((k, n), dtype=f32)
    shock = f32(mm["month_noise"]) * rng_mm.standard_normal((12, n), dtype=f32)
    _monthly_facts(rng_mm, base, shock, ind, order, f32(params.get("measurement.proportion_noise")), out)
    return owner, q, cat, appraisal


_SUB = 1024  # members per cache-sized piece of the monthly hot path (fixed: part of the stream)


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
    for lo in range(0, n, _SUB):
        hi = min(lo + _SUB, n)
        o = out[:, :, lo:hi]
        np.add(base[:, None, lo:hi], shock[None, :, lo:hi], out=o)      # attainment p, unclipped
        u = rng.random((k, 12, hi - lo), dtype=f32)
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


def _ids(prefix: str, start: int, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(start, start + n).astype(str), width)).astype(object)


def generate(policy: Policy | None = None, *, seed=0, n_branches: int | None = None,
             members: bool = True, chunk_size: int = 32 * BLOCK, params: GeneratorParams | dict | None = None,
             workers: int | None = None, progress: bool = False):
    """Generate a population: truth plus noisy measurements, calibrated to the published city.

    Parameters
    ----------
    policy : Policy, optional
        Rules whose indicators are measured (default: the baseline).
    seed : int, SeedSequence or Generator
        The same seed gives the same population, whatever ``chunk_size``.
    n_branches : int, optional
        Number of branches (default: the city, 1,500). Members follow from
        the branch sizes (about 21 per branch: ~32,000 for the city).
    members : bool
        Also draw members and their monthly records (skip for branch-only work).
    chunk_size : int
        Branches processed at once (rounded up to whole seed blocks of
        :data:`BLOCK`); changes memory use, never the numbers.
    params : GeneratorParams or dict, optional
        Generator parameters (default: ``data/generator.yaml``); a dict of
        dotted paths changes some of the defaults, e.g.
        ``{"measurement.survey_residents": 5}``.
    workers : int, optional
        Threads over seed blocks (default: the machine's cores, at most 8);
        changes speed, never the numbers.
    progress : bool
        Show a progress bar over chunks.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=1, n_branches=50)
    >>> len(pop.branches), int(pop.branches["n_members"].sum()) == len(pop.members)
    (50, True)
    """
    from .population import Population
    from .errors import BranchsimError
    policy = Policy.load() if policy is None else policy
    params = GeneratorParams.load() if params is None else params
    if isinstance(params, dict):
        params = GeneratorParams.load().with_values(params)
    root = as_seed_sequence(seed)
    n = int(params.get("scale.n_branches") if n_branches is None else n_branches)
    if n < 1 or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise BranchsimError(f"n_branches and chunk_size must be positive whole numbers; got {n}, {chunk_size!r}")
    brules, mrules = compile_branch_rules(policy), compile_member_rules(policy)
    m = params.values["measurement"]
    b_off = _indicator_offsets(root, brules.indicators, m["indicator_spread"], m["veto_offset"], 0)
    m_off = _indicator_offsets(root, mrules.indicators, m["indicator_spread"], m["veto_offset"], 1)
    median = size_median(params, policy)
    types = policy.branch_types
    cats = params.values["categories"]
    cat_cum = np.cumsum([[cats.get(t, {}).get(c, 0.0) for c in CATEGORIES] for t in types], axis=1)
    cat_cum = cat_cum[:, :-1] / cat_cum[:, -1:]
    blocks_per_chunk = max(1, -(-int(chunk_size) // BLOCK))
    n_blocks = -(-n // BLOCK)
    # Structure and truth first (one value per branch), so every block knows
    # where its members start and the monthly records fill one preallocated array.
    structure = [_structure_block(block_stream(root, _STRUCTURE, blk),
                                  min(n, (blk + 1) * BLOCK) - blk * BLOCK, params, policy, median)
                 for blk in range(n_blocks)]
    starts = np.cumsum([0] + [int(s[1].sum()) for s in structure])
    k = len(mrules.indicators.ids)
    order = np.argsort(mrules.indicators.kind, kind="stable")   # member fact columns grouped by rule
    # Member-month facts, indicator-major: pandas keeps a frame's columns as one
    # (columns, rows) block, so this array becomes the frame without a copy.
    months = np.empty((k, int(starts[-1]) * 12), dtype=np.float32) if members else None

    def measure(blk):
        # One seed block: its own streams and its own slice of ``months``, so
        # blocks run in any order on any number of threads with the same numbers.
        t, size, level, q = structure[blk]
        facts, survey = _branch_block(block_stream(root, _BRANCH, blk), q, t, size, brules, b_off, params)
        part_m = None
        if members:
            out = months[:, starts[blk] * 12:starts[blk + 1] * 12].reshape(k, 12, -1)
            part_m = (blk * BLOCK, *_member_block(
                block_stream(root, _MEMBER, blk), block_stream(root, _MONTHS, blk),
                q, t, size, mrules, m_off, order, params, cat_cum, out))
        return (t, size, level, q, facts, survey), part_m

    chunks = range(0, n_blocks, blocks_per_chunk)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="generate", unit="chunk")
    parts = []
    workers = _workers(workers)
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        run = pool.map if pool is not None else map   # numpy releases the GIL in fills and ufuncs
        for first in chunks:
            parts += run(measure, range(first, min(first + blocks_per_chunk, n_blocks)))
    parts_b = [p for p, _ in parts]
    parts_m = [p for _, p in parts if p is not None]
    branches = _branch_frame(parts_b, brules, types, n)
    if not members:
        return Population(branches, None, None, seed=root, params=params)
    mem, month_frame = _member_frames(parts_m, months, [mrules.indicators.facts[i] for i in order], starts)
    return Population(branches, mem, month_frame, seed=root, params=params)


def _branch_frame(parts, rules, types, n) -> pd.DataFrame:
    t, size, level, q, facts, survey = (np.concatenate([p[i] for p in parts]) for i in range(6))
    ids = _ids("B", 1, n, 6)
    tnames = np.array(types, dtype=object)
    frame = {"branch_id": ids, "type": tnames[t], "level": np.array(STRUCTURE_LEVELS, dtype=object)[level],
             "n_members": size, "parent": np.char.add("P", np.char.zfill((np.arange(n) // 12 + 1).astype(str),
                                                                         4)).astype(object),
             "prev_weak": np.zeros(n, dtype=np.int64),
             "survey_satisfied": survey[:, 0], "survey_basic": survey[:, 1],
             "survey_dissatisfied": survey[:, 2], "true_quality": q}
    frame.update({f: facts[:, j] for j, f in enumerate(rules.indicators.facts)})
    return pd.DataFrame(frame)


def _member_frames(parts, months: np.ndarray, columns: list[str], starts: np.ndarray):
    owner = np.concatenate([lo + p[0] for lo, *p in parts])
    q, cat, appraisal = (np.concatenate([p[i] for _, *p in parts]) for i in (1, 2, 3))
    n_members = len(owner)
    ids = _ids("M", 1, n_members, 8)
    branch_ids = _ids("B", 1, int(owner.max()) + 1 if n_members else 0, 6)
    members = pd.DataFrame({"member_id": ids, "branch_id": branch_ids[owner],
                            "category": np.array(CATEGORIES, dtype=object)[cat],
                            "appraisal": appraisal, "true_quality": q})
    # Rows follow the generation layout: seed block, then month, then member.
    # The id is stored once per member (a categorical), not as twelve strings.
    sizes = np.diff(starts)
    codes = np.concatenate([np.tile(np.arange(s, s + m), 12) for s, m in zip(starts[:-1], sizes)])
    month = np.concatenate([np.repeat(np.arange(1, 13, dtype=np.int64), m) for m in sizes])
    frame = pd.DataFrame(months.T, columns=columns, copy=False)
    frame.insert(0, "month", month)
    frame.insert(0, "member_id", pd.Categorical.from_codes(codes, categories=pd.Index(ids)))
    return members, frame


def _expected_points(p: np.ndarray, rules) -> np.ndarray:
    """Expected indicator points at attainment ``p`` (n, k), by rule form (noise-free truth)."""
    top = rules.max_points
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


def true_components(pop, policy: Policy) -> np.ndarray | None:
    """Noise-free components ``(n, d + 1)`` of each branch: what it deserves under ``policy``.

    The dimension fractions and survey rate a branch would get if every fact
    were measured at its expectation given the branch's true quality (the
    generator's measurement model without noise). ``None`` when the
    population has no truth or no generator record.
    """
    if not pop.has_truth or pop.params is None or pop.seed is None:
        return None
    params = pop.params
    rules = compile_branch_rules(policy)
    ind = rules.indicators
    m = params.values["measurement"]
    off = _indicator_offsets(pop.seed, ind, m["indicator_spread"], m["veto_offset"], 0)
    q = pop.branches["true_quality"].to_numpy(float)
    t = pd.Categorical(pop.branches["type"], categories=rules.types).codes
    p = np.clip(q[:, None] + off[None, :], 0, 1)
    e = _expected_points(p, ind)
    top = ind.max_points[t]
    pts = np.where(ind.kind == 1, np.maximum(top + e, 0.0),
                   np.where(ind.kind == 3, np.minimum(top, e * top), top * e))
    from .scoring import group_fractions
    frac = group_fractions(pts, t, ind)
    r = np.clip(q + m["survey_generosity"], 0, 1)
    probs = np.column_stack([r * (0.4 + 0.6 * r), r * (1 - r), (1 - r) * (1 - 0.4 * r)])
    survey = probs @ rules.answer_values / probs.sum(axis=1)
    return np.column_stack([frac, survey])
