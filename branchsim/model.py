"""Populations: generated (truth plus noisy measurement) or loaded from tables.

Generation is vectorised and chunked (see :mod:`branchsim.streams`): the
same seed gives the same population whatever the chunk size or thread
count. The measurement model itself lives in :mod:`branchsim.measurement`,
the generator parameters in :mod:`branchsim.params`.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import pandas as pd

from .measurement import (CATEGORIES, STATE_FACTS, Truth, _branch_block, _expected_points,  # noqa: F401
                          _facts_from_attainment, _indicator_offsets, _member_block, _monthly_facts,
                          _quality, _structure_block, _survey, _type_table, size_median, state_facts,
                          state_problem_probability, true_components, truth, truth_arrays)
from .params import GeneratorParams, _leaf_paths, _param_problem, _values  # noqa: F401
from .policy import Policy
from .scoring import STRUCTURE_LEVELS, compile_branch_rules, compile_member_rules
from .streams import (_BRANCH, _INDICATORS, _MEMBER, _MONTHS, _STRUCTURE, BLOCK,  # noqa: F401
                      _workers, as_seed_sequence, block_stream)

__all__ = ["BLOCK", "GeneratorParams", "generate", "block_stream", "BlockGenerator", "with_members"]


def _ids(prefix: str, start: int, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(start, start + n).astype(str), width)).astype(object)


def with_members(params: GeneratorParams, n_branches: int, n_members) -> GeneratorParams:
    """Parameters whose mean branch size gives ``n_members`` expected members (None: unchanged)."""
    if n_members is None:
        return params
    from .errors import BranchsimError
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) or n_members < 3 * n_branches:
        raise BranchsimError(f"n_members must be a whole number of at least 3 per branch "
                             f"({3 * n_branches}); got {n_members!r}")
    return params.with_values({"scale.mean_size": float(n_members) / n_branches})


class BlockGenerator:
    """Draws a population seed block by seed block (shared by :func:`generate` and national runs).

    ``structure(blk)`` gives a block's types, sizes, levels, true qualities and
    state facts; ``measure(blk, structure, months)`` its measured branch facts
    and survey and, when ``months`` (``(k, 12, m)`` float32) is given, its
    members and their monthly records written into ``months``. Each block
    draws only from its own streams.
    """

    def __init__(self, policy: Policy, params: GeneratorParams, root: np.random.SeedSequence, n: int):
        self.policy, self.params, self.root, self.n = policy, params, root, n
        self.brules, self.mrules = compile_branch_rules(policy), compile_member_rules(policy)
        m = params.values["measurement"]
        self.b_off = _indicator_offsets(root, self.brules.indicators, m["indicator_spread"], 0)
        self.m_off = _indicator_offsets(root, self.mrules.indicators, m["indicator_spread"], 1)
        self.median = size_median(params, policy)
        self.types = policy.branch_types
        cats = params.values["categories"]
        cum = np.cumsum([[cats.get(t, {}).get(c, 0.0) for c in CATEGORIES] for t in self.types], axis=1)
        self.cat_cum = cum[:, :-1] / cum[:, -1:]
        self.n_blocks = -(-n // BLOCK)
        self.k_member = len(self.mrules.indicators.ids)
        self.order = np.argsort(self.mrules.indicators.kind, kind="stable")   # columns grouped by rule
        self.mrules_sorted = dataclasses.replace(self.mrules,
                                                 indicators=self.mrules.indicators.reordered(self.order))

    def block_rows(self, blk: int) -> range:
        return range(blk * BLOCK, min(self.n, (blk + 1) * BLOCK))

    def structure(self, blk: int):
        rows = self.block_rows(blk)
        return _structure_block(block_stream(self.root, _STRUCTURE, blk), len(rows), self.params,
                                self.policy, self.median)

    def measure(self, blk: int, structure, months: np.ndarray | None = None):
        t, size, level, q, state = structure
        facts, survey = _branch_block(block_stream(self.root, _BRANCH, blk), q, t, size, self.brules,
                                      self.b_off, self.params, state)
        part_m = None
        if months is not None:
            part_m = (blk * BLOCK, *_member_block(
                block_stream(self.root, _MEMBER, blk), block_stream(self.root, _MONTHS, blk),
                q, t, size, self.mrules, self.m_off, self.order, self.params, self.cat_cum, months))
        return (t, size, level, q, facts, survey), part_m


def generate(policy: Policy | None = None, *, seed=0, n_branches: int | None = None,
             n_members: int | None = None, members: bool = True, chunk_size: int = 32 * BLOCK, params: GeneratorParams | dict | None = None,
             workers: int | None = None, progress: bool = False):
    """Generate a population: truth plus noisy measurements, calibrated to the published city.

    Parameters
    ----------
    policy : Policy or path, optional
        Rules whose indicators are measured (default: the baseline); a path
        is read with :meth:`Policy.load`.
    seed : int, SeedSequence or Generator
        The same seed gives the same population, whatever ``chunk_size``.
    n_branches : int, optional
        Number of branches (default: the city, 1,500). Members follow from
        the branch sizes (about 21 per branch: ~32,000 for the city).
    n_members : int, optional
        Expected number of members: sets the mean branch size to
        ``n_members / n_branches`` (the spread keeps its calibrated shape).
    members : bool
        Also draw members and their monthly records (skip for branch-only work).
    chunk_size : int
        Branches processed at once (rounded up to whole seed blocks of
        :data:`BLOCK`); changes memory use, never the numbers.
    params : GeneratorParams or dict, optional
        Generator parameters (default: ``data/generator.yaml``); a dict of
        dotted paths changes some of the defaults, e.g.
        ``{"measurement.survey_size": 40}``.
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
    from .policy import as_policy
    from .population import Population
    from .errors import BranchsimError
    policy = as_policy(policy)       # None (the baseline), a Policy or a policy file's path
    params = GeneratorParams.load() if params is None else params
    if isinstance(params, dict):
        params = GeneratorParams.load().with_values(params)
    root = as_seed_sequence(seed)
    n = params.get("scale.n_branches") if n_branches is None else n_branches
    for name, v in (("n_branches", n), ("chunk_size", chunk_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise BranchsimError(f"{name} must be a positive whole number; got {v!r}")
    n = int(n)
    params = with_members(params, n, n_members)
    gen = BlockGenerator(policy, params, root, n)
    brules, mrules, types = gen.brules, gen.mrules, gen.types
    blocks_per_chunk = max(1, -(-int(chunk_size) // BLOCK))
    n_blocks = gen.n_blocks
    # Structure and truth first (one value per branch), so every block knows
    # where its members start and the monthly records fill one preallocated array.
    structure = [gen.structure(blk) for blk in range(n_blocks)]
    starts = np.cumsum([0] + [int(s[1].sum()) for s in structure])
    k, order = gen.k_member, gen.order
    # Member-month facts, indicator-major: pandas keeps a frame's columns as one
    # (columns, rows) block, so this array becomes the frame without a copy.
    months = np.empty((k, int(starts[-1]) * 12), dtype=np.float32) if members else None

    def measure(blk):
        # One seed block: its own streams and its own slice of ``months``, so
        # blocks run in any order on any number of threads with the same numbers.
        out = months[:, starts[blk] * 12:starts[blk + 1] * 12].reshape(k, 12, -1) if members else None
        return gen.measure(blk, structure[blk], out)

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


