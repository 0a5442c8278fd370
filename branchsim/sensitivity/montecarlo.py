"""Monte Carlo over measurement noise, with the truth held fixed.

The *measurement* of a generated population is drawn again many times —
indicator facts, survey answers, declared facts, optionally members'
appraisals (and period records) — while type, size, true quality, state
facts and the indicators' difficulty offsets stay the population's. Each
draw is rated by the policy's own rules (:func:`branchsim.evaluate.branch_outcome`,
:func:`~branchsim.evaluate.member_outcome`) on the whole population at once,
so a relative design (quotas, clustering, ranks, last place) re-rates every
unit in every draw. Levels, designations, grades and designs all come from
``policy.scheme``.

Streams: draw ``d`` of seed block ``b`` (:data:`branchsim.streams.BLOCK`
branches) and purpose ``p`` uses
``SeedSequence(entropy, spawn_key=(*spawn_key, p, d, b))`` of the ``seed``
given, so the numbers do not depend on the batch size or the executor.
Every survey size reuses the draw's survey stream (common random numbers),
so sizes differ by the sample, not by luck.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError
from ..evaluate import BranchInputs, branch_inputs, branch_outcome
from ..measurement import _indicator_offsets, _state_column, _survey, branch_block, declared_facts, truth
from ..params import GeneratorParams
from ..policy import Policy, as_policy
from ..scoring import type_codes
from ..streams import BLOCK, as_seed_sequence
from ._mc_members import member_grades, member_setup, stream
from .mc_result import MonteCarlo, assemble

__all__ = ["measurement_mc", "MonteCarlo", "MEASUREMENT_PARAMS"]

# Purposes of the branches' Monte Carlo streams (the generator's are 0-6 with two-part keys; members' 10-12).
_FACTS, _SURVEY, _DECLARED = 8, 9, 13
#: Generator parameters a Monte Carlo may change: the measurement, not the truth.
MEASUREMENT_PARAMS = tuple(f"measurement.{k}" for k in (
    "indicator_noise", "proportion_noise", "survey_shock", "survey_generosity",
    "survey_size",)) + ("member_measurement.",)


@dataclass(frozen=True)
class _Setup:
    """Everything a batch of draws needs (plain arrays and the compiled scheme: cheap to send to a worker)."""

    scheme: object
    measured: object         # the branch scheme without its survey: facts are drawn on their own stream
    q: np.ndarray
    t: np.ndarray
    size: np.ndarray
    offsets: np.ndarray
    state: np.ndarray        # state facts (1 = in order): part of the truth, kept fixed
    columns: pd.DataFrame    # the branch columns groups are read from (peer groups, ranks, last place)
    prev: dict               # streaks of the years before (prev_<id>), as in the population
    params: tuple            # one GeneratorParams per survey size
    true_level: np.ndarray
    true_designated: np.ndarray   # (n, D)
    members: str | None = None    # None, "appraisal" or "monthly"
    m: dict | None = None         # member arrays


def _measure(s: _Setup, root, d: int):
    """Draw ``d``: measured facts ``(n, k)``, every fact column by name, survey counts ``(S, n, a)``."""
    bs = s.scheme.branch
    n = len(s.q)
    facts = np.empty((n, bs.sheet.k))
    survey = np.zeros((len(s.params), n, len(bs.answers)), dtype=np.int64)
    declared = {f: np.empty(n) for f in bs.fact_entries}
    for blk in range(-(-n // BLOCK)):                    # a loop over seed blocks, not over units
        r = slice(blk * BLOCK, min(n, (blk + 1) * BLOCK))
        facts[r] = branch_block(stream(root, _FACTS, d, blk), s.q[r], s.t[r], s.size[r], s.measured,
                                s.offsets, s.params[0], s.state[r])[0]
        if bs.survey:
            for j, p in enumerate(s.params):             # the same stream for every size: common random numbers
                survey[j, r] = _survey(stream(root, _SURVEY, d, blk), s.q[r], s.size[r], p, bs)
        if declared:
            got = declared_facts(stream(root, _DECLARED, d, blk), s.q[r], bs, s.params[0], s.state[r])
            for f, col in got.items():
                declared[f][r] = col
    values = {f: facts[:, j] for j, f in enumerate(bs.sheet.facts)}
    values.update(declared)
    return facts, values, survey


def _branch_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    bs = s.scheme.branch
    n, L = len(s.q), bs.levels.n
    unit = np.arange(n) * L
    for i, d in enumerate(range(first, stop)):
        facts, values, survey = _measure(s, root, d)
        for j in range(len(s.params)):
            inp = BranchInputs(facts, values, s.t, survey[j] if bs.survey else None, s.prev, s.columns)
            o = branch_outcome(inp, s.scheme)
            level = o["level"].astype(np.intp)
            des = np.column_stack([o["designations"][x.id] for x in bs.designations]) if bs.designations \
                else np.zeros((n, 0), dtype=bool)
            out["hits"][j] += np.bincount(unit + level, minlength=n * L).reshape(n, L)
            out["designated_hits"][j] += des
            out["levels"][j, i] = np.bincount(level, minlength=L)
            out["designated"][j, i] = des.sum(axis=0)
            out["too_high"][j, i] = (level > s.true_level).sum()
            out["too_low"][j, i] = (level < s.true_level).sum()
            out["false_alarms"][j, i] = (des & ~s.true_designated).sum(axis=0)
            out["misses"][j, i] = (~des & s.true_designated).sum(axis=0)


def _member_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    G, n_all = s.scheme.member.grades.n, len(s.m["q"])
    for i, d in enumerate(range(first, stop)):
        grade = member_grades(s.m, s.scheme, s.params[0], s.members, root, d)
        graded = grade >= 0
        out["grade_hits"] += np.bincount(np.flatnonzero(graded) * G + grade[graded],
                                         minlength=n_all * G).reshape(n_all, G)
        out["grades"][i] = np.bincount(grade[graded], minlength=G)


def _run_batch(s: _Setup, root: np.random.SeedSequence, first: int, stop: int) -> dict:
    """Draws ``first`` … ``stop - 1``: integer tallies only, so batches add up exactly."""
    bs = s.scheme.branch
    S, n, B, L, D = len(s.params), len(s.q), stop - first, bs.levels.n, len(bs.designations)
    out = {"hits": np.zeros((S, n, L), np.int64), "designated_hits": np.zeros((S, n, D), np.int64),
           "levels": np.zeros((S, B, L), np.int64), "designated": np.zeros((S, B, D), np.int64),
           "too_high": np.zeros((S, B), np.int64), "too_low": np.zeros((S, B), np.int64),
           "false_alarms": np.zeros((S, B, D), np.int64), "misses": np.zeros((S, B, D), np.int64)}
    _branch_part(s, root, first, stop, out)
    if s.members:
        G = s.scheme.member.grades.n
        out["grade_hits"] = np.zeros((len(s.m["q"]), G), np.int64)
        out["grades"] = np.zeros((B, G), np.int64)
        _member_part(s, root, first, stop, out)
    return out


# -- arguments --------------------------------------------------------------------------------
def _flat(d: dict, pre: str = "") -> dict:
    return {k: v for key, val in d.items()
            for k, v in (_flat(val, f"{pre}{key}.") if isinstance(val, dict) else {pre + key: val}).items()}


def _resolve_params(pop, params) -> GeneratorParams:
    """The population's generator parameters with measurement changes only (the truth is kept)."""
    base = pop.params
    if params is None:
        return base
    if isinstance(params, dict):
        new, changed = base.with_values(params), list(params)
    elif isinstance(params, GeneratorParams):
        new, old, got = params, _flat(base.values), _flat(params.values)
        changed = sorted(k for k in old.keys() | got.keys() if old.get(k) != got.get(k))
    else:
        raise BranchsimError(f"params must be a dict of dotted generator paths or GeneratorParams, "
                             f"got {type(params).__name__}")
    bad = [k for k in changed if not any(k == a or (a.endswith(".") and k.startswith(a))
                                         for a in MEASUREMENT_PARAMS)]
    if bad:
        raise BranchsimError(f"params: {bad[:5]} describe the truth, which a measurement Monte Carlo holds "
                             f"fixed; allowed: {', '.join(MEASUREMENT_PARAMS)}*")
    return new


def _whole(x, what: str, low: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise BranchsimError(f"{what} must be a whole number >= {low}, got {x!r}")
    return int(x)


def _mode(members) -> str | None:
    if members is None or members is False:
        return None
    if members is True or members in ("appraisal", "monthly"):
        return "monthly" if members == "monthly" else "appraisal"
    raise BranchsimError(f"members must be False, True, 'appraisal' or 'monthly', got {members!r}")


def measurement_mc(pop, policy: Policy | None = None, *, draws: int = 200, seed=0,
                   survey_sizes=None, params: dict | GeneratorParams | None = None,
                   members: bool | str = False, executor=None, progress: bool = True,
                   batch: int = 20) -> MonteCarlo:
    """Monte Carlo over measurement noise with the truth held fixed, for any scheme and design.

    Each draw measures every branch again from its true quality: indicator
    facts, survey answers and the declared facts that are not part of the
    state, with the population's own indicator offsets (part of the truth).
    Branch type, size, true quality and state facts never change. The draw
    is rated by the policy's rules on the whole population (a relative
    design re-rates everyone) and compared with the level and designations
    the branch's true quality earns (``true_rating``, ``true_<designation>``
    of :func:`branchsim.evaluate`).

    Parameters
    ----------
    pop : Population
        A generated population (it carries the truth: ``true_quality``, its
        seed and generator parameters), generated with this policy's facts.
    policy : Policy or path, optional
        Rules to rate with (default: the baseline).
    draws : int
        Measurement draws.
    seed : int, SeedSequence or Generator
        Seed of the draws; the same seed gives identical results whatever
        ``batch`` or ``executor``.
    survey_sizes : list of int, optional
        Respondents per branch (``measurement.survey_size``). The baseline
        size — the generator's, after ``params`` — is always run, added if
        missing. Not for a policy without a survey.
    params : dict or GeneratorParams, optional
        Measurement parameters changed from the population's own, e.g.
        ``{"measurement.survey_shock": 0}``. Only ``measurement.*_noise``,
        ``survey_*`` and ``member_measurement.*`` may change: the truth is fixed.
    members : bool or {"appraisal", "monthly"}
        ``True`` (= ``"appraisal"``) redraws members' year-end appraisals
        only: the impression halo (打印象分, from the member's and the
        branch's true quality) stays, the affinity term (感情分) and the
        appraisal noise are redrawn, and the period records stay as measured
        in the population. ``"monthly"`` also redraws every period record
        (each member's indicator deviations, period shocks and facts).
        Member facts of the members table stay as measured. Either gives
        per-member grade probabilities (exempt members are not graded).
    executor : concurrent.futures.Executor, optional
        Runs batches of draws (a process pool, or ``client.get_executor()``
        of Dask); results equal the sequential run.
    progress : bool
        Show a progress bar over draws (notebook or terminal).
    batch : int
        Draws per task; changes memory and scheduling, never the numbers.

    Returns
    -------
    MonteCarlo
        ``level_probabilities`` (``p_<level id>`` per branch), ``counts``,
        ``misclassification``, ``designation_errors``, ``confusion()`` and
        with ``members`` ``member_probabilities`` and ``grade_counts``.

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=200, members=False)
    >>> mc = measurement_mc(pop, draws=20, seed=1, progress=False)
    >>> p = mc.level_probabilities[[f"p_{lv}" for lv in mc.levels]]
    >>> bool(p.sum(axis=1).round(9).eq(1).all()), len(mc.counts)
    (True, 20)
    """
    if not getattr(pop, "has_truth", False) or getattr(pop, "params", None) is None or pop.seed is None:
        raise DataError("measurement_mc needs the truth: a population from branchsim.generate() (with "
                        "true_quality, its seed and generator parameters); loaded tables without truth "
                        "cannot be redrawn")
    policy = as_policy(policy)
    draws, batch = _whole(draws, "draws", 1), _whole(batch, "batch", 1)
    mode = _mode(members)
    root = as_seed_sequence(seed)
    prm = _resolve_params(pop, params)
    scheme = policy.scheme
    bs = scheme.branch
    base_size = int(prm.get("measurement.survey_size"))
    asked = [] if survey_sizes is None else np.atleast_1d(np.asarray(survey_sizes, dtype=object)).tolist()
    if asked and not bs.survey:
        raise BranchsimError(f"policy {policy.name!r} has no survey: survey_sizes does not apply")
    sizes = sorted({base_size, *(_whole(s, "survey_sizes entries", 1) for s in asked)})
    b = pop.branches
    inp = branch_inputs(b, scheme, policy_name=policy.name)
    t = type_codes(b["type"], bs.types, policy.name)
    true = truth(pop, policy).outcome_arrays(scheme, inp)
    true_des = (np.column_stack([true["designations"][x.id] for x in bs.designations]) if bs.designations
                else np.zeros((len(b), 0), dtype=bool))
    state = (np.column_stack([_state_column(b, bs, f) for f in bs.state_facts]) if bs.state_facts
             else np.zeros((len(b), 0)))
    setup = _Setup(
        scheme=scheme, measured=dataclasses.replace(bs, answers=()), q=b["true_quality"].to_numpy(float), t=t,
        size=b["n_members"].to_numpy(np.int64),
        offsets=_indicator_offsets(pop.seed, bs.sheet, pop.params, 0),
        state=state, columns=b, prev=inp.prev,
        params=tuple(prm.with_values({"measurement.survey_size": s}) for s in sizes),
        true_level=true["level"].astype(np.intp), true_designated=true_des, members=mode,
        m=member_setup(pop, policy, t, mode) if mode else None)

    spans = [(lo, min(draws, lo + batch)) for lo in range(0, draws, batch)]
    if executor is None:
        results = (_run_batch(setup, root, lo, hi) for lo, hi in spans)
    else:
        futures = [executor.submit(_run_batch, setup, root, lo, hi) for lo, hi in spans]
        results = (f.result() for f in futures)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=draws, desc="measurement MC", unit="draw")
    parts = []
    for r in results:
        parts.append(r)
        if bar is not None:
            bar.update(r["levels"].shape[1])
    if bar is not None:
        bar.close()
    return assemble(parts, pop, policy, setup, sizes=sizes, base_size=base_size, true_score=true["score"],
                    draws=draws, root=root, mode=mode)
