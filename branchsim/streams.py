"""Random streams: seed blocks, purposes, and the seeds a user may pass.

Branches are drawn in fixed *seed blocks* of :data:`BLOCK` branches; block
``i`` of purpose ``p`` draws from ``SeedSequence(entropy, spawn_key=(p, i))``,
so the same seed gives the same numbers whatever the processing chunk size,
worker count or machine.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import BranchsimError

__all__ = ["BLOCK", "block_stream", "as_seed_sequence"]

#: Branches per seed block. Processing chunks are whole numbers of blocks.
BLOCK = 256
_STRUCTURE, _BRANCH, _MEMBER, _MONTHS, _INDICATORS, _DECLARED, _MEMBER_DECLARED = range(7)


def _workers(workers: int | None) -> int:
    if workers is None:
        return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1))
    if not isinstance(workers, (int, np.integer)) or workers < 1:
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
        if seed is not None and seed < 0:
            raise BranchsimError(f"seed must be a non-negative whole number; got {seed}")
        return np.random.SeedSequence(seed)
    raise BranchsimError(f"seed must be an int, a numpy SeedSequence or Generator; got {seed!r}")


