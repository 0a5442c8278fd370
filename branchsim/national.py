"""Country-scale runs: generate, measure and score chunk by chunk with bounded memory.

A national population (millions of branches, ~100 million members, a
year of period records of tens of indicators each) is far larger than
memory. A :func:`national_run` never holds it: each *chunk* (a whole number
of seed blocks) is generated, measured and rated under the scheme
(``policy.scheme``: its levels, designations, consequences, member grades,
periods and accrual), and only what the analyses need is kept — per-branch
and per-member outcomes written as Parquet files (integer codes, named in
``codebook.json``; each branch's designations, consequences and a
``veto_<id>`` column per veto that fired), and integer aggregates. Period records live only inside
one seed block at a time, so peak memory depends on the chunk size, not on
the scale.

What depends on other units — a place among all units (``rank``
indicators, ``last_place`` criteria) or every unit's score (relative
designs: quotas, clustering) — is settled first by a pass over every
block's branches (no member is drawn in it; :mod:`branchsim._national_blocks`),
so each chunk rates its units exactly as :func:`branchsim.evaluate` rates
the whole population. A relative *member* design, and groups by a branch
column a national population does not have, are refused.

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

from typing import TYPE_CHECKING

import hashlib
import json
import time
import html
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import _national_blocks as nb
from ._national_outputs import codebook, empty, frames, summary
from ._run_folder import _API_NAMES, _RunFolder, _atomic
from .errors import BranchsimError
from .model import BLOCK, BlockGenerator, GeneratorParams, _workers, as_seed_sequence, with_members
from .policy import Policy, as_policy

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from .scheme import Scheme
    from ._types import PathLike, PolicyLike, Seed

__all__ = ["national_run", "NationalResult", "chunk_outcomes", "codebook"]


def chunk_outcomes(gen: BlockGenerator, blocks: range, member_start: int, workers: int = 1,
                   plan: nb.Plan | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Branch and member outcome frames of the seed blocks in ``blocks`` (``plan``: see :func:`national_run`)."""
    plan = nb.plan(gen, map) if plan is None else plan
    if workers > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda b: nb.score_block(gen, b, plan), blocks))
    else:
        parts = [nb.score_block(gen, b, plan) for b in blocks]
    return frames(gen, parts, member_start)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    with _atomic(path) as tmp:
        df.to_parquet(tmp, index=False)


_GENERATORS: dict = {}


def _generator(policy_doc: dict, params_doc: dict, seed_state: tuple, n: int) -> BlockGenerator:
    """The run's block generator, built once per process: chunks of one run on threads (or on one
    worker) share it instead of validating the policy and compiling its scheme again per chunk."""
    key = (id(policy_doc), id(params_doc), seed_state[0], tuple(seed_state[1]), n)
    hit = _GENERATORS.get(key)
    if hit is not None and hit[0] is policy_doc and hit[1] is params_doc:
        return hit[2]
    from .params import _values
    policy = Policy(policy_doc, where="<national run>")
    params = GeneratorParams(_values(params_doc), params_doc)
    root = np.random.SeedSequence(seed_state[0], spawn_key=tuple(seed_state[1]))
    gen = BlockGenerator(policy, params, root, n)
    _GENERATORS.clear()                  # one run at a time: keep only the latest
    _GENERATORS[key] = (policy_doc, params_doc, gen)
    return gen


def _run_chunk(policy_doc: dict, params_doc: dict, seed_state: tuple, n: int, index: int,
               blocks: tuple[int, int], member_start: int, out_dir: str | None, workers: int,
               plan: nb.Plan) -> dict:
    """One chunk, end to end (a module-level function: picklable for process pools and Dask)."""
    gen = _generator(policy_doc, params_doc, seed_state, n)
    branches, members = chunk_outcomes(gen, range(*blocks), member_start, workers, plan)
    counts = summary(gen.scheme, branches, members)
    if out_dir is not None:
        out = Path(out_dir)
        _write_parquet(branches, out / "branches" / f"chunk-{index:06d}.parquet")
        _write_parquet(members, out / "members" / f"chunk-{index:06d}.parquet")
        with _atomic(out / "summaries" / f"chunk-{index:06d}.json") as tmp:
            tmp.write_text(json.dumps(counts), encoding="utf-8")
    counts["index"] = index
    return counts


@dataclass
class NationalResult:
    """Aggregates of a national run (and where its per-unit outputs are).

    Counts are named by the scheme (level ids best first, designation,
    consequence, grade and structure level ids).

    >>> import branchsim as bs
    >>> r = bs.national_run(n_branches=300, seed=2, progress=False)
    >>> r.totals["branches"], 0 <= r.accuracy() <= 1
    (300, True)
    """

    settings: dict
    totals: dict
    policy: Policy
    out_dir: Path | None
    seconds: float
    chunks_run: int

    @property
    def scheme(self) -> Scheme:
        return self.policy.scheme

    @property
    def types(self) -> tuple:
        return self.scheme.branch.types

    def level_counts(self) -> pd.DataFrame:
        """Branches per level (best first) and per designation: measured (``count``) and true, and the share."""
        bs, t = self.scheme.branch, self.totals
        L = bs.levels.n
        df = pd.DataFrame({"count": [t["levels"][L - 1 - i] for i in range(L)],
                           "true": [t["true_levels"][L - 1 - i] for i in range(L)]}, index=list(bs.levels.ids))
        for j, d in enumerate(bs.designations):
            df.loc[d.id] = [t["designations"][j], t["true_designations"][j]]
        df["share"] = df["count"] / t["branches"] if t["branches"] else np.nan
        df.index.name = "level"
        return df

    def star_counts(self) -> pd.DataFrame:
        """Alias of :meth:`level_counts` (the first scheme rated in stars)."""
        return self.level_counts()

    def levels_by_type(self) -> pd.DataFrame:
        """Branches per type (rows) and level (columns, best first)."""
        bs = self.scheme.branch
        a = np.array(self.totals["levels_by_type"]).reshape(len(bs.types), bs.levels.n)
        return pd.DataFrame(a[:, ::-1], index=list(bs.types), columns=list(bs.levels.ids))

    def stars_by_type(self) -> pd.DataFrame:
        """Alias of :meth:`levels_by_type`."""
        return self.levels_by_type()

    def grade_counts(self) -> pd.Series:
        """Members per grade (best first; ``exempt`` when a class is); empty for a branch-only scheme."""
        ms = self.scheme.member
        if ms is None:
            return pd.Series(dtype=np.int64, name="members")
        out = pd.Series(self.totals["grades"][::-1], index=list(ms.grades.ids), name="members", dtype=np.int64)
        if ms.exempt.any():
            out["exempt"] = self.totals["exempt"]
        return out

    def consequence_counts(self) -> pd.Series:
        """Branches and members each consequence reaches."""
        return pd.Series(self.totals["consequences"], index=[c.id for c in self.scheme.consequences],
                         name="count", dtype=np.int64)

    def upgrade_counts(self) -> pd.Series:
        """Units whose size calls for a larger organisation level, by that level (with a structure)."""
        st = self.scheme.structure
        if st is None:
            return pd.Series(dtype=np.int64, name="count")
        up = self.totals["upgrades"]
        return pd.Series([up[i] for i in range(len(st.ids) - 1, 0, -1)],
                         index=[f"upgrade_{lv}" for lv in reversed(st.ids[1:])], name="count", dtype=np.int64)

    def accuracy(self) -> float:
        n = self.totals["branches"]
        return self.totals["correct"] / n if n else float("nan")

    def branches(self) -> pd.DataFrame:
        """All per-branch outcomes (reads the Parquet files: mind the size at full scale)."""
        return pd.read_parquet(self.out_dir / "branches")

    def summary(self) -> str:
        t = self.totals
        values = t["members"] * self.settings["member_periods"] * self.settings["member_indicators"]
        lines = [f"national run: {t['branches']:,} branches, {t['members']:,} members "
                 f"({values:,} member-period-indicator values) in {self.seconds:.1f} s",
                 "", self.level_counts().to_string(float_format=lambda v: f"{v:.4f}")]
        if self.scheme.member is not None:
            lines += ["", "member grades:", self.grade_counts().to_string()]
        if len(self.consequence_counts()):
            lines += ["", "consequences:", self.consequence_counts().to_string()]
        up = self.upgrade_counts()
        if len(up):
            lines += ["", "upgrades: " + ", ".join(f"{v:,} to {k[len('upgrade_'):]}" for k, v in up.items())]
        lines += [f"accuracy: {self.accuracy():.1%} of branches get the level of their true quality",
                  f"outputs: {self.out_dir}" if self.out_dir else "outputs: not written (out_dir=None)"]
        return "\n".join(lines)

    __str__ = summary

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.summary())}</pre>"


def _settings(policy: Policy, params: GeneratorParams, root: np.random.SeedSequence, n: int,
              chunk_blocks: int) -> dict:
    doc = yaml.safe_dump({"policy": policy.to_dict(), "params": params.document}, sort_keys=True)
    return {"n_branches": n, "chunk_blocks": chunk_blocks, "seed_entropy": str(root.entropy),
            "seed_spawn_key": list(root.spawn_key),
            "inputs_sha256": hashlib.sha256(doc.encode("utf-8")).hexdigest(),
            "member_indicators": 0 if policy.scheme.member is None else policy.scheme.member.sheet.k,
            "member_periods": 0 if policy.scheme.member is None else policy.scheme.member.periods}


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BranchsimError(f"{name} must be a positive whole number; got {_plain(value)!r}")
    return int(value)


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def national_run(policy: Policy | None = None, *, n_branches: int, n_members: int | None = None,
                 seed: Seed = 0, chunk_size: int = 16 * BLOCK, out_dir: PathLike | None = None,
                 resume: bool = False, workers: int | None = None, executor: Executor | None = None, params: GeneratorParams | dict | None = None,
                 progress: bool = True, max_chunks: int | None = None) -> NationalResult:
    """Generate, measure and rate a country-scale population chunk by chunk.

    Parameters
    ----------
    policy : Policy or path, optional
        The scheme (default: the baseline). Its period records are scored by
        a fused compiled kernel where the rule forms allow it
        (:func:`branchsim._national_blocks.kernel_allowed`), else with NumPy
        on each block's facts.
    n_branches, n_members : int
        Scale, e.g. 5_200_000 branches and 99_000_000 members (the defaults
        of ``branchsim national``, in ``data/national.yaml``). Without
        ``n_members``, the generator's mean branch size.
    chunk_size : int
        Branches per chunk (rounded up to whole seed blocks of 256): the
        memory bound. Never changes the numbers.
    out_dir : path, optional
        A new or empty folder for ``branches/chunk-*.parquet``,
        ``members/chunk-*.parquet``, ``summaries/``, ``codebook.json`` (what
        the integer codes stand for) and ``manifest.json``;
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
        A scheme a chunked run cannot rate (a relative member design, groups
        by a column other than ``type`` or ``level``); bad settings; an ``out_dir`` that is a file, holds other files, is
        held by another run, cannot be written (a full disk, a read-only
        folder) or holds a damaged manifest; a finished run in ``out_dir``
        without ``resume=True``, or a resume with other settings.

    Examples
    --------
    >>> import branchsim as bs
    >>> r = bs.national_run(n_branches=600, seed=1, progress=False)
    >>> int(r.level_counts().loc[list(r.policy.levels), "count"].sum())
    600
    """
    return _national_run(policy, names=_API_NAMES, n_branches=n_branches, n_members=n_members, seed=seed,
                         chunk_size=chunk_size, out_dir=out_dir, resume=resume, workers=workers,
                         executor=executor, params=params, progress=progress, max_chunks=max_chunks)


def _national_run(policy: PolicyLike, *, names: dict, n_branches: int, n_members: int | None, seed: Seed,
                  chunk_size: int, out_dir: PathLike | None, resume: bool, workers: int | None,
                  executor: Executor | None, progress: bool, params: GeneratorParams | dict | None = None,
                  max_chunks: int | None = None) -> NationalResult:
    """:func:`national_run`, its messages naming settings as ``names`` does (keywords or CLI flags)."""
    policy = as_policy(policy)
    nb.check_scheme(policy.scheme)
    if isinstance(params, dict) or params is None:
        base = GeneratorParams.for_policy(policy)
        params = base.with_values(params) if params else base
    n = _positive(n_branches, names["branches"])
    chunk_size = _positive(chunk_size, names["chunk"])
    if workers is not None:
        workers = _positive(workers, names["workers"])
    if n_members is not None and (isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer))
                                  or n_members < 3 * n):
        raise BranchsimError(f"{names['members']} must be a whole number of at least 3 per branch "
                             f"({3 * n:,} for {n:,} branches); got {_plain(n_members)!r}")
    given_params = params
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
    folder = None if out is None else _RunFolder(out, settings, len(chunks), resume, names,
                                                 extra={"codebook.json": codebook(policy, params)})
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
        try:
            if len(folder.done) == len(chunks):
                from .manifest import build, sha256_doc
                folder.complete(build("national", policy=policy, seeds={"population": str(root.entropy)},
                                      arguments={"branches": n, "members": n_members, "chunk_size": chunk_size,
                                                 "seed": {"entropy": str(root.entropy),
                                                          "spawn_key": list(root.spawn_key)},
                                                 "generator_sha256": sha256_doc(params.document),
                                                 "params": given_params.document}))
        except OSError as exc:
            folder.close(failed=False)
            raise folder.fault(exc) from None
        folder.close(failed=False)
    return result


def _run(policy: Policy, params: GeneratorParams, root: np.random.SeedSequence, n: int, gen: BlockGenerator,
         chunks: list[tuple[int, tuple[int, int]]], settings: dict, folder: _RunFolder | None,
         workers: int, executor: Executor | None, progress: bool, max_chunks: int | None) -> NationalResult:
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
    t0 = time.perf_counter()
    plan = None
    if todo:       # ranks, last places and relative cut points: a pass over every block's branches
        with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            plan = nb.plan(gen, pool.map if pool is not None else map)
    args = (policy.to_dict(), params.document, (root.entropy, list(root.spawn_key)), n)
    summaries: dict[int, dict] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(chunks), initial=len(done), desc="national run", unit="chunk")
    futures = []
    # Without an executor, chunks run on ``workers`` threads, one chunk per thread (its blocks in turn):
    # a chunk's serial part (its frames, summary and Parquet files) then overlaps other chunks' blocks
    # instead of leaving the other threads idle. At most ``workers`` chunks are in memory at a time.
    own = ThreadPoolExecutor(workers) if executor is None and workers > 1 and len(todo) > 1 else None
    pool = executor if executor is not None else own
    try:
        if pool is None:
            results = (_run_chunk(*args, i, blocks, int(starts[blocks[0]]), None if out is None else str(out),
                                  workers, plan) for i, blocks in todo)
        else:
            futures = [pool.submit(_run_chunk, *args, i, blocks, int(starts[blocks[0]]),
                                   None if out is None else str(out), 1, plan) for i, blocks in todo]
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
        if own is not None:
            own.shutdown(wait=True)
        if bar is not None:
            bar.close()
    if folder is not None:   # finished earlier runs count too, read back in chunk order
        for i in sorted(folder.done - set(summaries)):
            summaries[i] = json.loads((out / "summaries" / f"chunk-{i:06d}.json").read_text(encoding="utf-8"))
    totals = _add(gen.scheme, [summaries[i] for i in sorted(summaries)])
    return NationalResult(settings, totals, policy, out, time.perf_counter() - t0, len(todo))


def _add(scheme: Scheme, parts: list[dict]) -> dict:
    """Totals of chunk summaries (lists add element by element)."""
    total = empty(scheme)
    for k in total:
        vals = [p[k] for p in parts]
        if vals:
            total[k] = (np.sum(vals, axis=0).astype(int).tolist() if isinstance(total[k], list)
                        else int(sum(vals)))
    return total


