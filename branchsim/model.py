"""Populations: generated (truth plus noisy measurement) or loaded from tables.

Generation is vectorised and chunked (see :mod:`branchsim.streams`): the
same seed gives the same population whatever the chunk size or thread
count. The measurement model itself lives in :mod:`branchsim.measurement`,
the generator parameters in :mod:`branchsim.params`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
import pandas as pd

from .measurement import (_indicator_offsets, branch_block, categories, declared_facts,  # noqa: F401
                          member_draws, monthly_facts, period_share, size_median, state_facts, structure_block)
from .truth import Truth, truth, truth_arrays  # noqa: F401
from .params import GeneratorParams, _leaf_paths, _param_problem, _values  # noqa: F401
from .policy import Policy
from .streams import (_BRANCH, _DECLARED, _INDICATORS, _MEMBER, _MEMBER_DECLARED, _MONTHS,  # noqa: F401
                      _STRUCTURE, BLOCK, _workers, as_seed_sequence, block_stream)

if TYPE_CHECKING:
    from ._types import PathLike, PolicyLike, Seed
    from ._types import Seed
    from .population import Population

__all__ = ["BLOCK", "GeneratorParams", "generate", "block_stream", "BlockGenerator", "with_members"]


def _ids(prefix: str, start: int, n: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(start, start + n).astype(str), width)).astype(object)


def with_members(params: GeneratorParams, n_branches: int, n_members: int | None) -> GeneratorParams:
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
    state facts; ``measure(blk, structure, months)`` its measured branch facts,
    survey and declared facts and, when ``months`` (``(k, periods, m)``
    float32) is given, its members and their period records written into
    ``months``. Each block draws only from its own streams.
    """

    def __init__(self, policy: Policy, params: GeneratorParams, root: np.random.SeedSequence, n: int):
        self.policy, self.params, self.root, self.n = policy, params, root, n
        self.scheme = scheme = policy.scheme
        self.b_off = _indicator_offsets(root, scheme.branch.sheet, params, 0)
        self.members = scheme.member is not None
        self.median = size_median(params, scheme)
        self.types = scheme.branch.types
        self.categories, self.cat_cum = categories(params, scheme)
        self.n_blocks = -(-n // BLOCK)
        if self.members:
            ms = scheme.member
            self.m_off = _indicator_offsets(root, ms.sheet, params, 1)
            self.k_member = ms.sheet.k
            self.order = np.argsort(ms.sheet.kind[0], kind="stable")   # columns grouped by rule
            self.periods = ms.periods
            # classes drawn by the generator → the scheme's class codes (None: no classes)
            self.class_codes = (np.array([ms.classes.index(c) for c in self.categories])
                                if ms.classes else None)

    def profile_of(self, type_idx: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Member profiles from their branch types and drawn classes."""
        ms = self.scheme.member
        return ms.profile_index(type_idx, None if self.class_codes is None else self.class_codes[cat])

    def block_rows(self, blk: int) -> range:
        return range(blk * BLOCK, min(self.n, (blk + 1) * BLOCK))

    def structure(self, blk: int):
        rows = self.block_rows(blk)
        return structure_block(block_stream(self.root, _STRUCTURE, blk), len(rows), self.params,
                               self.scheme, self.median)

    def measure(self, blk: int, structure, months: np.ndarray | None = None):
        t, size, level, q, state = structure
        bs = self.scheme.branch
        facts, survey = branch_block(block_stream(self.root, _BRANCH, blk), q, t, size, bs, self.b_off,
                                     self.params, state)
        declared = declared_facts(block_stream(self.root, _DECLARED, blk), q, bs, self.params, state) \
            if bs.fact_entries else {}
        part_m = None
        if months is not None:
            rng_m, rng_mm = block_stream(self.root, _MEMBER, blk), block_stream(self.root, _MONTHS, blk)
            owner, mq, cat, appraisal, base, shock = member_draws(
                rng_m, rng_mm, q, t, size, self.scheme.member, self.m_off, self.order, self.params,
                self.cat_cum, self.profile_of)
            monthly_facts(rng_mm, base, shock, self.scheme.member.sheet, self.order,
                          np.float32(self.params.get("measurement.proportion_noise")), months,
                          per_period=period_share(self.scheme.member))
            part_m = (blk * BLOCK, owner, mq, cat, appraisal, self.member_facts(blk, mq))
        return (t, size, level, q, facts, survey, declared), part_m

    def member_facts(self, blk: int, mq: np.ndarray) -> dict:
        """The declared member facts of a block's members (true qualities ``mq``), from their own stream."""
        ms = self.scheme.member
        if not ms.fact_entries:
            return {}
        mqp = self.params.values["member_quality"]
        return declared_facts(block_stream(self.root, _MEMBER_DECLARED, blk), mq, ms, self.params,
                              z=(mq - mqp["loc"]) / mqp["sd"])


def generate(policy: Policy | None = None, *, seed: Seed = 0, n_branches: int | None = None,
             n_members: int | None = None, members: bool = True, chunk_size: int = 32 * BLOCK, params: GeneratorParams | dict | None = None,
             workers: int | None = None, progress: bool = False) -> Population:
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
    params = GeneratorParams.for_policy(policy) if params is None else params
    if isinstance(params, dict):
        params = GeneratorParams.for_policy(policy).with_values(params)
    root = as_seed_sequence(seed)
    n = params.get("scale.n_branches") if n_branches is None else n_branches
    for name, v in (("n_branches", n), ("chunk_size", chunk_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise BranchsimError(f"{name} must be a positive whole number; got {v!r}")
    n = int(n)
    params = with_members(params, n, n_members)
    gen = BlockGenerator(policy, params, root, n)
    members = members and gen.members
    blocks_per_chunk = max(1, -(-int(chunk_size) // BLOCK))
    n_blocks = gen.n_blocks
    # Structure and truth first (one value per branch), so every block knows
    # where its members start and the period records fill one preallocated array.
    structure = [gen.structure(blk) for blk in range(n_blocks)]
    starts = np.cumsum([0] + [int(s[1].sum()) for s in structure])
    k, P = (gen.k_member, gen.periods) if members else (0, 0)
    # Member-period facts, indicator-major: pandas keeps a frame's columns as one
    # (columns, rows) block, so this array becomes the frame without a copy.
    months = np.empty((k, int(starts[-1]) * P), dtype=np.float32) if members else None

    def measure(blk):
        # One seed block: its own streams and its own slice of ``months``, so
        # blocks run in any order on any number of threads with the same numbers.
        out = months[:, starts[blk] * P:starts[blk + 1] * P].reshape(k, P, -1) if members else None
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
    branches = _branch_frame(parts_b, policy, n)
    if not members:
        return Population(branches, None, None, seed=root, params=params)
    sheet = policy.scheme.member.sheet
    mem, month_frame = _member_frames(parts_m, months, [sheet.facts[i] for i in gen.order], starts,
                                      gen.categories, P)
    return Population(branches, mem, month_frame, seed=root, params=params)


def _branch_frame(parts, policy: Policy, n) -> pd.DataFrame:
    t, size, level, q, facts, survey = (np.concatenate([p[i] for p in parts]) for i in range(6))
    scheme = policy.scheme
    bs = scheme.branch
    ids = _ids("B", 1, n, 6)
    tnames = np.array(bs.types, dtype=object)
    frame = {"branch_id": ids, "type": tnames[t]}
    if scheme.structure is not None:
        frame["level"] = np.array(scheme.structure.ids, dtype=object)[level]
    frame.update({"n_members": size,
                  "parent": np.char.add("P", np.char.zfill((np.arange(n) // 12 + 1).astype(str), 4)).astype(object)})
    from .tables import streak_inputs
    frame.update({f"prev_{i}": np.zeros(n, dtype=np.int64) for i in streak_inputs(policy)["branches"]})
    frame.update({c: survey[:, j] for j, c in enumerate(bs.survey_columns)})
    frame["true_quality"] = q
    frame.update({f: facts[:, j] for j, f in enumerate(bs.sheet.facts)})
    for f in bs.fact_entries:
        frame[f] = np.concatenate([p[6][f] for p in parts])
    return pd.DataFrame(frame)


def _member_frames(parts, months: np.ndarray, columns: list[str], starts: np.ndarray, classes, periods: int):
    owner = np.concatenate([lo + o for lo, o, *_ in parts])
    q, cat, appraisal = (np.concatenate([p[i] for p in parts]) for i in (2, 3, 4))
    n_members = len(owner)
    ids = _ids("M", 1, n_members, 8)
    branch_ids = _ids("B", 1, int(owner.max()) + 1 if n_members else 0, 6)
    members = pd.DataFrame({"member_id": ids, "branch_id": branch_ids[owner],
                            "category": np.array(classes, dtype=object)[cat],
                            "appraisal": appraisal, "true_quality": q})
    for f in parts[0][5] if parts else ():
        members[f] = np.concatenate([p[5][f] for p in parts])
    # Rows follow the generation layout: seed block, then period, then member.
    # The id is stored once per member (a categorical), not as one string per period.
    sizes = np.diff(starts)
    codes = np.concatenate([np.tile(np.arange(s, s + m), periods) for s, m in zip(starts[:-1], sizes)])
    month = np.concatenate([np.repeat(np.arange(1, periods + 1, dtype=np.int64), m) for m in sizes])
    frame = pd.DataFrame(months.T, columns=columns, copy=False)
    frame.insert(0, "month", month)
    frame.insert(0, "member_id", pd.Categorical.from_codes(codes, categories=pd.Index(ids)))
    return members, frame
