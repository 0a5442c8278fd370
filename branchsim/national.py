"""Country-scale runs: generate, measure and score chunk by chunk with bounded memory.

A national population (millions of branches, ~100 million members, 12
monthly records of ~50 indicators each) is far larger than memory. A
:func:`national_run` never holds it: each *chunk* (a whole number of seed
blocks) is generated, measured and scored, and only what the analyses need
is kept — per-branch and per-member outcomes written as Parquet files, and
integer aggregates. Monthly records live only inside one seed block at a
time, so peak memory depends on the chunk size, not on the scale.

Chunks are independent (each seed block draws from its own streams), so
they can run in any order, on threads, on a process pool or on a Dask
cluster, with bit-identical outputs. A run writes each chunk's files
atomically and records it in ``manifest.json``; run again with the same
settings and ``resume=True`` and finished chunks are skipped.

The output folder is guarded: a run holds ``out_dir/.lock`` (an advisory
``flock``), so a second run on the same folder is refused rather than doing
the work twice; a resume removes temporary files a killed run left; a
damaged ``manifest.json`` is an error naming it; and a fresh run that fails
before finishing a chunk (a full disk, a read-only folder, an interrupt)
leaves nothing behind, while one that fails later keeps its finished chunks
for a resume.
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ._run_folder import _API_NAMES, _RunFolder, _atomic
from .errors import BranchsimError
from .measurement import _SUB, _member_draws, _monthly_facts
from .model import (BLOCK, BlockGenerator, GeneratorParams, _workers, as_seed_sequence,
                    truth_arrays, with_members)
from .sensitivity import _kernels
from .streams import _MEMBER, _MONTHS, block_stream
from .policy import Policy
from .scoring import (GRADES, STRUCTURE_LEVELS, annual_scores, branch_outcome, member_grades,
                      monthly_scores, required_level)

__all__ = ["national_run", "NationalResult", "chunk_outcomes"]

_LEVELS = 6


def _monthly_compiled(gen: BlockGenerator, rng_mm, base, shock, mtype) -> np.ndarray:
    """Monthly scores ``(12 * m,)`` month-major, without storing a single fact (compiled kernel).

    Draws the same uniforms in the same pieces as the generator, so the scores
    equal those :func:`branchsim.evaluate` gives the generated population (to
    the 9 decimals kept).
    """
    ind = gen.mrules_sorted.indicators
    f32 = np.float32
    k, m = base.shape
    req32 = ind.required.astype(f32)
    scale32 = (f32(2) * ind.max_points.max(axis=0).astype(f32)
               / np.where(ind.per_unit > 0, ind.per_unit, 1.0).astype(f32))
    prop = f32(gen.params.get("measurement.proportion_noise"))
    total = np.empty((12, m))
    for lo in range(0, m, _SUB):
        hi = min(lo + _SUB, m)
        u = rng_mm.random((k, 12, hi - lo), dtype=f32)
        out = np.empty((12, hi - lo))
        topm = np.ascontiguousarray(ind.max_points[mtype[lo:hi]].T)                   # (k, m)
        _kernels.month_points(np.ascontiguousarray(base[:, lo:hi]), np.ascontiguousarray(shock[:, lo:hi]),
                              u, ind.kind.astype(np.int8), req32, scale32, prop, topm,
                              ind.per_shortfall, ind.required, ind.per_unit, out)
        total[:, lo:hi] = out
    top = ind.group_max.sum(axis=1)[np.tile(mtype, 12)]
    return np.round(np.minimum(100.0 * total.ravel() / top, 100.0), 9)


def _score_block(gen: BlockGenerator, blk: int) -> dict[str, np.ndarray]:
    """Generate, measure and score one seed block; keep outcomes only."""
    struct = gen.structure(blk)
    t, size, level, q, state = struct
    (t, size, level, q, facts, survey), _ = gen.measure(blk, struct, None)
    out = branch_outcome(facts, t, survey, gen.brules)
    tr = truth_arrays(q, t, state, gen.b_off, gen.params, gen.brules).outcome(gen.brules, t)
    need = required_level(size, gen.policy)["level"]
    rng_m, rng_mm = block_stream(gen.root, _MEMBER, blk), block_stream(gen.root, _MONTHS, blk)
    owner, mq, cat, appraisal, base, shock = _member_draws(rng_m, rng_mm, q, t, size, gen.mrules, gen.m_off,
                                                           gen.order, gen.params, gen.cat_cum)
    m = len(owner)
    member_idx = np.tile(np.arange(m), 12)
    if _kernels.available():
        monthly = _monthly_compiled(gen, rng_mm, base, shock, t[owner].astype(np.intp))
    else:   # NumPy: the facts of the block, then the scoring of evaluate()
        months = np.empty((gen.k_member, 12, m), dtype=np.float32)
        _monthly_facts(rng_mm, base, shock, gen.mrules.indicators, gen.order,
                       np.float32(gen.params.get("measurement.proportion_noise")), months)
        monthly = monthly_scores(months.reshape(gen.k_member, -1).T, t[owner][member_idx], gen.mrules_sorted)
    annual = annual_scores(monthly, member_idx, m, appraisal, gen.mrules)
    return {
        "branch_index": np.arange(blk * BLOCK, blk * BLOCK + len(t), dtype=np.int64),
        "type": t.astype(np.int8), "n_members": size.astype(np.int32),
        "level": level.astype(np.int8), "required_level": need.astype(np.int8),
        "score": out["score"], "stars": out["stars"], "weak": out["weak"],
        "true_quality": q, "true_score": tr["true_score"], "true_stars": tr["true_stars"],
        "true_weak": tr["true_weak"],
        "member_owner": owner.astype(np.int64) + blk * BLOCK, "member_true_quality": mq,
        "member_category": cat.astype(np.int8), "appraisal": appraisal, "annual": annual,
        "grade": member_grades(annual, gen.mrules),
    }


def chunk_outcomes(gen: BlockGenerator, blocks: range, member_start: int, workers: int = 1):
    """Branch and member outcome frames of the seed blocks in ``blocks``."""
    if workers > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda b: _score_block(gen, b), blocks))
    else:
        parts = [_score_block(gen, b) for b in blocks]
    cat = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    branches = pd.DataFrame({k: cat[k] for k in ("branch_index", "type", "n_members", "level",
                                                   "required_level", "score", "stars", "weak",
                                                   "true_quality", "true_score", "true_stars",
                                                   "true_weak")})
    n_m = len(cat["annual"])
    members = pd.DataFrame({"member_index": np.arange(member_start, member_start + n_m, dtype=np.int64),
                            "branch_index": cat["member_owner"], "category": cat["member_category"],
                            "true_quality": cat["member_true_quality"], "appraisal": cat["appraisal"],
                            "annual": cat["annual"], "grade": cat["grade"]})
    return branches, members


def _summary(branches: pd.DataFrame, members: pd.DataFrame, n_types: int) -> dict:
    """Integer aggregates of one chunk (exact to add up across chunks)."""
    stars = branches["stars"].to_numpy()
    return {
        "branches": len(branches), "members": len(members),
        "stars": np.bincount(stars, minlength=_LEVELS).tolist(),
        "true_stars": np.bincount(branches["true_stars"].to_numpy(), minlength=_LEVELS).tolist(),
        "weak": int(branches["weak"].sum()), "true_weak": int(branches["true_weak"].sum()),
        "correct": int((stars == branches["true_stars"].to_numpy()).sum()),
        "stars_by_type": np.bincount(branches["type"].to_numpy().astype(np.intp) * _LEVELS + stars,
                                     minlength=n_types * _LEVELS).tolist(),
        "upgrades": np.bincount(branches["required_level"][branches["required_level"] > branches["level"]]
                                .to_numpy().astype(np.intp), minlength=len(STRUCTURE_LEVELS)).tolist(),
        "grades": np.bincount(members["grade"].to_numpy().astype(np.intp), minlength=len(GRADES)).tolist(),
    }


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with _atomic(path) as tmp:
        df.to_parquet(tmp, index=False)


def _run_chunk(policy_doc: dict, params_doc: dict, seed_state: tuple, n: int, index: int,
               blocks: tuple[int, int], member_start: int, out_dir: str | None, workers: int) -> dict:
    """One chunk, end to end (a module-level function: picklable for process pools and Dask)."""
    from .model import _values
    policy = Policy(policy_doc, where="<national run>")
    params = GeneratorParams(_values(params_doc), params_doc)
    root = np.random.SeedSequence(seed_state[0], spawn_key=tuple(seed_state[1]))
    gen = BlockGenerator(policy, params, root, n)
    branches, members = chunk_outcomes(gen, range(*blocks), member_start, workers)
    summary = _summary(branches, members, len(gen.types))
    if out_dir is not None:
        out = Path(out_dir)
        _write_parquet(branches, out / "branches" / f"chunk-{index:06d}.parquet")
        _write_parquet(members, out / "members" / f"chunk-{index:06d}.parquet")
        with _atomic(out / "summaries" / f"chunk-{index:06d}.json") as tmp:
            tmp.write_text(json.dumps(summary), encoding="utf-8")
    summary["index"] = index
    return summary


@dataclass
class NationalResult:
    """Aggregates of a national run (and where its per-unit outputs are).

    >>> import branchsim as bs
    >>> r = bs.national_run(n_branches=300, seed=2, progress=False)
    >>> r.totals["branches"], 0 <= r.accuracy() <= 1
    (300, True)
    """

    settings: dict
    totals: dict
    types: tuple
    out_dir: Path | None
    seconds: float
    chunks_run: int

    def star_counts(self) -> pd.DataFrame:
        from .evaluate import STAR_NAMES
        levels = [lv for lv in range(5, -1, -1) if self.totals["stars"][lv] or lv == 0]
        df = pd.DataFrame({"count": [self.totals["stars"][lv] for lv in levels],
                           "true": [self.totals["true_stars"][lv] for lv in levels]},
                          index=[STAR_NAMES[lv] for lv in levels])
        df.loc["weak"] = [self.totals["weak"], self.totals["true_weak"]]
        df["share"] = df["count"] / self.totals["branches"]
        return df

    def stars_by_type(self) -> pd.DataFrame:
        from .evaluate import STAR_NAMES
        a = np.array(self.totals["stars_by_type"]).reshape(len(self.types), _LEVELS)
        return pd.DataFrame(a[:, ::-1], index=list(self.types),
                            columns=[STAR_NAMES[lv] for lv in range(5, -1, -1)])

    def grade_counts(self) -> pd.Series:
        return pd.Series(self.totals["grades"][::-1], index=list(GRADES)[::-1], name="members")

    def accuracy(self) -> float:
        n = self.totals["branches"]
        return self.totals["correct"] / n if n else float("nan")

    def branches(self) -> pd.DataFrame:
        """All per-branch outcomes (reads the Parquet files: mind the size at full scale)."""
        return pd.read_parquet(self.out_dir / "branches")

    def summary(self) -> str:
        t = self.totals
        return "\n".join([
            f"national run: {t['branches']:,} branches, {t['members']:,} members "
            f"({t['members'] * 12 * self.settings['member_indicators']:,} member-month-indicator values) "
            f"in {self.seconds:.1f} s",
            "", self.star_counts().to_string(), "",
            "member grades:", self.grade_counts().to_string(), "",
            f"upgrades: {t['upgrades'][2]:,} to party committee, {t['upgrades'][1]:,} to general branch",
            f"accuracy: {self.accuracy():.1%} of branches get the star of their true quality",
            f"outputs: {self.out_dir}" if self.out_dir else "outputs: not written (out_dir=None)"])

    __str__ = summary

    def _repr_html_(self) -> str:
        return f"<pre>{self.summary()}</pre>"


def _settings(policy: Policy, params: GeneratorParams, root, n, chunk_blocks) -> dict:
    doc = yaml.safe_dump({"policy": policy.to_dict(), "params": params.document}, sort_keys=True)
    return {"n_branches": n, "chunk_blocks": chunk_blocks, "seed_entropy": str(root.entropy),
            "seed_spawn_key": list(root.spawn_key),
            "inputs_sha256": hashlib.sha256(doc.encode("utf-8")).hexdigest(),
            "member_indicators": len(policy.member_indicators)}


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BranchsimError(f"{name} must be a positive whole number; got {_plain(value)!r}")
    return int(value)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def national_run(policy: Policy | None = None, *, n_branches: int, n_members: int | None = None,
                 seed=0, chunk_size: int = 16 * BLOCK, out_dir=None, resume: bool = False,
                 workers: int | None = None, executor=None, params: GeneratorParams | dict | None = None,
                 progress: bool = True, max_chunks: int | None = None) -> NationalResult:
    """Generate, measure and score a country-scale population chunk by chunk.

    Parameters
    ----------
    n_branches, n_members : int
        Scale, e.g. 5_200_000 branches and 99_000_000 members (the defaults
        of ``branchsim national``, in ``data/national.yaml``). Without
        ``n_members``, the generator's mean branch size.
    chunk_size : int
        Branches per chunk (rounded up to whole seed blocks of 256): the
        memory bound. Never changes the numbers.
    out_dir : path, optional
        A new or empty folder for ``branches/chunk-*.parquet``,
        ``members/chunk-*.parquet``, ``summaries/`` and ``manifest.json``;
        each file is written atomically. While the run lasts it holds
        ``out_dir/.lock``: a second run on the same folder is refused. A run
        that fails before finishing a chunk leaves nothing behind.
    resume : bool
        Skip chunks already finished in ``out_dir`` by a run with the same
        settings (seed, scale, chunk size, policy and generator parameters);
        temporary files of a killed run are removed.
    workers : int, optional
        Threads per chunk (default: the cores).
    executor : concurrent.futures.Executor, optional
        Run chunks as tasks (a process pool, or ``dask.distributed.Client
        .get_executor()``); outputs are identical to the local run. With a
        cluster, ``out_dir`` must be storage every worker can write.
    max_chunks : int, optional
        Stop after this many chunks (for testing interruption and resume).

    Raises
    ------
    BranchsimError
        Bad settings; an ``out_dir`` that is a file, holds other files, is
        held by another run, cannot be written (a full disk, a read-only
        folder) or holds a damaged manifest; a finished run in ``out_dir``
        without ``resume=True``, or a resume with other settings.

    Examples
    --------
    >>> import branchsim as bs
    >>> r = bs.national_run(n_branches=600, seed=1, progress=False)
    >>> int(r.star_counts().drop("weak")["count"].sum())
    600
    """
    return _national_run(policy, names=_API_NAMES, n_branches=n_branches, n_members=n_members, seed=seed,
                         chunk_size=chunk_size, out_dir=out_dir, resume=resume, workers=workers,
                         executor=executor, params=params, progress=progress, max_chunks=max_chunks)


def _national_run(policy, *, names: dict, n_branches, n_members, seed, chunk_size, out_dir, resume, workers,
                  executor, progress, params=None, max_chunks=None) -> NationalResult:
    """:func:`national_run`, its messages naming settings as ``names`` does (keywords or CLI flags)."""
    policy = Policy.load() if policy is None else policy
    if isinstance(params, dict) or params is None:
        base = GeneratorParams.load()
        params = base.with_values(params) if params else base
    n = _positive(n_branches, names["branches"])
    chunk_size = _positive(chunk_size, names["chunk"])
    if workers is not None:
        workers = _positive(workers, names["workers"])
    if n_members is not None and (isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer))
                                  or n_members < 3 * n):
        raise BranchsimError(f"{names['members']} must be a whole number of at least 3 per branch "
                             f"({3 * n:,} for {n:,} branches); got {_plain(n_members)!r}")
    params = with_members(params, n, n_members)
    root = as_seed_sequence(seed)
    chunk_blocks = max(1, -(-chunk_size // BLOCK))
    gen = BlockGenerator(policy, params, root, n)
    chunks = [(i, (lo, min(lo + chunk_blocks, gen.n_blocks)))
              for i, lo in enumerate(range(0, gen.n_blocks, chunk_blocks))]
    settings = _settings(policy, params, root, n, chunk_blocks)
    workers = _workers(workers)
    out = None if out_dir is None else Path(out_dir)
    # The folder is checked (and locked) before the cheap but not free pass over the structure stream.
    folder = None if out is None else _RunFolder(out, settings, len(chunks), resume, names)
    try:
        result = _run(policy, params, root, n, gen, chunks, settings, folder, workers, executor, progress,
                      max_chunks)
    except BaseException as exc:
        error = None if folder is None else folder.fault(exc)
        if folder is not None:
            folder.close(failed=True)
        if error is not None:
            raise error from None
        raise
    if folder is not None:
        folder.close(failed=False)
    return result


def _run(policy, params, root, n, gen, chunks, settings, folder, workers, executor, progress,
         max_chunks) -> NationalResult:
    """Run the chunks not yet done; the totals of all of them."""
    # Member offsets need every block's size: the structure stream is cheap (one
    # draw per branch) and drawn once here.
    sizes = np.array([int(gen.structure(b)[1].sum()) for b in range(gen.n_blocks)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = None if folder is None else folder.out
    done = set() if folder is None else set(folder.done)
    todo = [c for c in chunks if c[0] not in done]
    if max_chunks is not None:
        todo = todo[:max_chunks]
    args = (policy.to_dict(), params.document, (root.entropy, list(root.spawn_key)), n)
    t0 = time.perf_counter()
    summaries: dict[int, dict] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(chunks), initial=len(done), desc="national run", unit="chunk")
    futures = []
    try:
        if executor is None:
            results = (_run_chunk(*args, i, blocks, int(starts[blocks[0]]), None if out is None else str(out),
                                  workers) for i, blocks in todo)
        else:
            futures = [executor.submit(_run_chunk, *args, i, blocks, int(starts[blocks[0]]),
                                       None if out is None else str(out), 1) for i, blocks in todo]
            results = (f.result() for f in futures)
        for s in results:
            summaries[s["index"]] = s
            if folder is not None:
                folder.finished(s["index"])
            if bar is not None:
                bar.update(1)
    finally:
        for f in futures:          # after a failure, do not start chunks nobody will record
            f.cancel()
        if bar is not None:
            bar.close()
    if folder is not None:   # finished earlier runs count too, read back in chunk order
        for i in sorted(folder.done - set(summaries)):
            summaries[i] = json.loads((out / "summaries" / f"chunk-{i:06d}.json").read_text(encoding="utf-8"))
    totals = _add([summaries[i] for i in sorted(summaries)])
    return NationalResult(settings, totals, tuple(gen.types), out, time.perf_counter() - t0, len(todo))


def _add(parts: list[dict]) -> dict:
    if not parts:                      # nothing run yet (e.g. max_chunks=0): zero totals
        return {"branches": 0, "members": 0, "stars": [0] * _LEVELS, "true_stars": [0] * _LEVELS,
                "weak": 0, "true_weak": 0, "correct": 0, "stars_by_type": [], "upgrades": [0] * 3,
                "grades": [0] * len(GRADES)}
    keys = [k for k in parts[0] if k != "index"]
    total = {}
    for k in keys:
        vals = [p[k] for p in parts]
        total[k] = (np.sum(vals, axis=0).astype(int).tolist() if isinstance(vals[0], list) else int(sum(vals)))
    return total


