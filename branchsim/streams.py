"""Random streams: seed blocks, purposes, and the seeds a user may pass.

Branches are drawn in fixed *seed blocks* of :data:`BLOCK` branches; block
``i`` of purpose ``p`` draws from ``SeedSequence(entropy, spawn_key=(p, i))``,
so the same seed gives the same numbers whatever the processing chunk size,
worker count or machine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import os

import numpy as np

from .errors import BranchsimError

if TYPE_CHECKING:
    from ._types import Seed

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


def as_seed_sequence(seed: Seed) -> np.random.SeedSequence:
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





try:
    import numba as _numba
    from llvmlite import ir as _ir
    from numba.extending import intrinsic as _intrinsic
except ImportError:  # pragma: no cover - numba is a dependency
    _numba = None

if _numba is not None:
    def _caller(result):
        """An intrinsic calling a bit generator's ``result next(void *state)`` by its address."""
        def call(typingctx, fn, state):   # pragma: no cover - compiled
            def codegen(context, builder, signature, args):
                out = context.get_value_type(signature.return_type)
                ptr = _ir.IntType(8).as_pointer()
                f = builder.inttoptr(args[0], _ir.FunctionType(out, [ptr]).as_pointer())
                return builder.call(f, [builder.inttoptr(args[1], ptr)])
            return result(_numba.types.uintp, _numba.types.uintp), codegen
        return _intrinsic(call)

    _draw, _draw32 = _caller(_numba.types.uint64), _caller(_numba.types.uint32)   # next_uint64, next_uint32

    @_numba.njit(nogil=True, cache=True)
    def _fill_f32(next64, next32, state, buffered, out):   # pragma: no cover - compiled
        # NumPy's float32 uniform is (next_uint32 >> 8) / 2**24, and PCG64's next_uint32 returns the low
        # half of a 64-bit draw and keeps the high half for the next call: so a buffered half first,
        # then whole 64-bit words split in two, and an odd last value through next_uint32 itself (which
        # keeps the other half, as NumPy would).
        scale = np.float32(1.0 / 16777216.0)
        lo_mask = np.uint64(0xFFFFFFFF)
        eight, forty = np.uint64(8), np.uint64(40)
        n = out.shape[0]
        j = 0
        if buffered and n > 0:
            out[0] = np.float32(_draw32(next32, state) >> np.uint32(8)) * scale
            j = 1
        for i in range((n - j) // 2):
            x = _draw(next64, state)
            out[j + 2 * i] = np.float32((x & lo_mask) >> eight) * scale
            out[j + 2 * i + 1] = np.float32(x >> forty) * scale
        if (n - j) % 2:
            out[n - 1] = np.float32(_draw32(next32, state) >> np.uint32(8)) * scale


def uniforms_f32(rng: np.random.Generator, shape, out: np.ndarray | None = None) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32)``, bit for bit and leaving ``rng`` in the same state, faster.

    NumPy makes each float32 uniform with one call through the bit generator
    for every 32 bits; here a compiled loop (which releases the GIL) calls
    PCG64's ``next_uint64`` once for two values and splits the word as
    NumPy's ``next_uint32`` does (low half first, the high half kept for the
    next draw). ``out``: a contiguous float32 array of ``prod(shape)``
    values to fill (hot loops reuse one and spare the allocation). Any other
    bit generator, or without Numba, falls back to NumPy.
    """
    bg = rng.bit_generator
    n = int(np.prod(shape, dtype=np.int64))
    if out is None:
        out = np.empty(n, dtype=np.float32)
    elif out.dtype != np.float32 or out.size != n or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous float32 array of {n} values")
    flat = out.reshape(-1)
    if _numba is None or type(bg) is not np.random.PCG64:
        rng.random(out=flat, dtype=np.float32)
    elif n:
        c = bg.ctypes
        with bg.lock:
            _fill_f32(_address(c.next_uint64), _address(c.next_uint32), c.state_address,
                      bool(bg.state["has_uint32"]), flat)
    return out.reshape(shape)


def _address(fn) -> int:
    import ctypes
    return ctypes.cast(fn, ctypes.c_void_p).value
