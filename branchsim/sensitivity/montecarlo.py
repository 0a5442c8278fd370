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
from ..population import Population
from ..scoring import type_codes
from ..streams import BLOCK, as_seed_sequence
from . import _mc_tables
from ._mc_members import member_grades, member_setup, stream
from .mc_result import OBSERVED, MonteCarlo, assemble

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


def _tally(out: dict, j: int, i: int, o: dict, bs, true_level: np.ndarray, true_des: np.ndarray) -> None:
    """Add one rated draw ``o`` (size ``j``, draw ``i`` of the batch) to the batch's integer tallies."""
    n, L = len(true_level), bs.levels.n
    level = o["level"].astype(np.intp)
    des = np.column_stack([o["designations"][x.id] for x in bs.designations]) if bs.designations \
        else np.zeros((n, 0), dtype=bool)
    out["hits"][j] += np.bincount(np.arange(n) * L + level, minlength=n * L).reshape(n, L)
    out["designated_hits"][j] += des
    out["levels"][j, i] = np.bincount(level, minlength=L)
    out["designated"][j, i] = des.sum(axis=0)
    out["too_high"][j, i] = (level > true_level).sum()
    out["too_low"][j, i] = (level < true_level).sum()
    out["false_alarms"][j, i] = (des & ~true_des).sum(axis=0)
    out["misses"][j, i] = (~des & true_des).sum(axis=0)


def _branch_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    bs = s.scheme.branch
    for i, d in enumerate(range(first, stop)):
        facts, values, survey = _measure(s, root, d)
        for j in range(len(s.params)):
            inp = BranchInputs(facts, values, s.t, survey[j] if bs.survey else None, s.prev, s.columns)
            _tally(out, j, i, branch_outcome(inp, s.scheme), bs, s.true_level, s.true_designated)


def _tallies(S: int, n: int, B: int, L: int, D: int) -> dict:
    return {"hits": np.zeros((S, n, L), np.int64), "designated_hits": np.zeros((S, n, D), np.int64),
            "levels": np.zeros((S, B, L), np.int64), "designated": np.zeros((S, B, D), np.int64),
            "too_high": np.zeros((S, B), np.int64), "too_low": np.zeros((S, B), np.int64),
            "false_alarms": np.zeros((S, B, D), np.int64), "misses": np.zeros((S, B, D), np.int64)}


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
    out = _tallies(S, n, B, L, D)
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
                   batch: int = 20, noise=None, survey_prior: float | None = None) -> MonteCarlo:
    """Monte Carlo over measurement noise, for any scheme and design: around the truth, or around real tables.

    Each draw measures every branch again from its true quality: indicator
    facts, survey answers and the declared facts that are not part of the
    state, with the population's own indicator offsets (part of the truth).
    Branch type, size, true quality and state facts never change. The draw
    is rated by the policy's rules on the whole population (a relative
    design re-rates everyone) and compared with the level and designations
    the branch's true quality earns (``true_rating``, ``true_<designation>``
    of :func:`branchsim.evaluate`).

    On **loaded tables** (a population without the truth: a researcher's
    own, from :func:`branchsim.load_population`) each draw redraws every
    branch's survey from its own observed answer counts (a
    Dirichlet-multinomial: answer shares ``~ Dirichlet(survey_prior +
    counts)``, the same number of respondents) and the facts ``noise``
    declares (every other fact stays as observed; see
    :mod:`branchsim.sensitivity._mc_tables`). A draw is compared with the
    level the tables give: the columns are named ``observed_*`` (not
    ``true_*``), ``p_observed`` is the probability that a redraw gives the
    observed level, and ``misclassification`` the probability that it
    gives another — how firmly the data fix a level, not an accuracy,
    which needs the truth.

    Parameters
    ----------
    pop : Population
        A generated population (it carries the truth: ``true_quality``, its
        seed and generator parameters), generated with this policy's facts;
        or loaded tables (without ``true_quality``).
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
    noise : mapping or path, optional
        Loaded tables only: how the facts are measured, by fact or kind of
        fact (``binary``, ``count``, ``share``, ``number``), e.g.
        ``{"binary": {"model": "flip", "p": 0.05}, "count": "poisson",
        "share": {"model": "binomial", "n": "n_members"}}``; or a YAML file
        of it. Models: ``fixed`` (the default), ``flip``, ``poisson``,
        ``binomial``, ``normal`` (see :mod:`~branchsim.sensitivity._mc_tables`).
        State facts stay fixed unless named.
    survey_prior : float, optional
        Loaded tables only: the Dirichlet prior per answer (default 0.5,
        Jeffreys').

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

    On loaded tables, around what was observed:

    >>> tables = bs.load_population(bs.data_path("examples"))
    >>> mc = measurement_mc(tables, draws=50, seed=1, progress=False, noise={"count": "poisson"})
    >>> p = mc.level_probabilities[[f"p_{lv}" for lv in mc.levels]]
    >>> bool(p.sum(axis=1).round(9).eq(1).all()), mc.reference, "p_observed" in mc.level_probabilities
    (True, 'observed', True)
    """
    if not isinstance(pop, Population):
        raise DataError(f"measurement_mc takes a Population (from generate or load_population), "
                        f"got {type(pop).__name__}")
    if not pop.has_truth:
        return _on_tables(pop, policy, draws=draws, seed=seed, survey_sizes=survey_sizes, params=params,
                          members=members, noise=noise, survey_prior=survey_prior, executor=executor,
                          progress=progress, batch=batch)
    if getattr(pop, "params", None) is None or pop.seed is None:
        raise DataError("measurement_mc: the population has true_quality but not the seed and generator "
                        "parameters that drew it (a generated population saved with Population.save keeps "
                        "them); drop true_quality to redraw around the tables as observed")
    if noise is not None or survey_prior is not None:
        raise BranchsimError("noise and survey_prior apply to loaded tables; a generated population is redrawn "
                             "from its generator (change its measurement with params=)")
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

    parts = _collect(_run_batch, setup, root, draws, batch, executor, progress)
    return assemble(parts, pop, policy, setup, sizes=sizes, base_size=base_size, true_score=true["score"],
                    draws=draws, root=root, mode=mode)


def _collect(run, setup, root, draws: int, batch: int, executor, progress: bool) -> list:
    """The batches' tallies, in order (sequentially or on ``executor``), with a progress bar."""
    spans = [(lo, min(draws, lo + batch)) for lo in range(0, draws, batch)]
    if executor is None:
        results = (run(setup, root, lo, hi) for lo, hi in spans)
    else:
        futures = [executor.submit(run, setup, root, lo, hi) for lo, hi in spans]
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
    return parts


# -- loaded tables: redrawn around what was observed (see _mc_tables) -----------------------
@dataclass(frozen=True)
class _Tables:
    """What a batch of draws on loaded tables needs (picklable)."""

    scheme: object
    t: np.ndarray
    facts: np.ndarray        # observed sheet facts (n, k)
    values: dict             # observed fact columns by name
    survey: np.ndarray | None
    prior: float
    noisy: list              # _mc_tables.prepare(...)
    kinds: dict
    prev: dict
    columns: pd.DataFrame
    true_level: np.ndarray   # the observed level: what a redraw is compared with
    true_designated: np.ndarray


def _run_tables_batch(s: _Tables, root, first: int, stop: int) -> dict:
    """Draws ``first`` … ``stop - 1`` on loaded tables: integer tallies, as :func:`_run_batch`."""
    bs = s.scheme.branch
    n = len(s.t)
    out = _tallies(1, n, stop - first, bs.levels.n, len(bs.designations))
    col = {f: j for j, f in enumerate(bs.sheet.facts)}
    for i, d in enumerate(range(first, stop)):
        got = _mc_tables.redraw_facts(stream(root, _mc_tables.FACTS, d, 0), s.noisy, s.kinds)
        facts, values = s.facts, s.values
        if got:
            facts, values = s.facts.copy(), {**s.values, **got}
            for f, v in got.items():
                if f in col:
                    facts[:, col[f]] = v
        survey = (_mc_tables.redraw_survey(stream(root, _mc_tables.SURVEY, d, 0), s.survey, s.prior)
                  if bs.survey else None)
        o = branch_outcome(BranchInputs(facts, values, s.t, survey, s.prev, s.columns), s.scheme)
        _tally(out, 0, i, o, bs, s.true_level, s.true_designated)
    return out


def _on_tables(pop, policy: Policy, *, draws, seed, survey_sizes, params, members, noise, survey_prior,
               executor, progress, batch) -> MonteCarlo:
    """:func:`measurement_mc` on loaded tables (no truth): the observed survey and declared facts redrawn."""
    if members is not None and members is not False:
        raise DataError(f"members={members!r} needs a generated population (members' true quality); on loaded "
                        "tables the branches are redrawn, run with members=False")
    if survey_sizes is not None:
        raise BranchsimError("survey_sizes applies to a generated population; on loaded tables each branch's "
                             "survey keeps its observed number of respondents")
    if params is not None:
        raise BranchsimError("params are generator parameters, which loaded tables do not have; declare the "
                             "measurement noise of the facts with noise=")
    policy = as_policy(policy)
    draws, batch = _whole(draws, "draws", 1), _whole(batch, "batch", 1)
    scheme = policy.scheme
    bs = scheme.branch
    b = pop.branches
    inp = branch_inputs(b, scheme, policy_name=policy.name)
    models, file_prior = _mc_tables.noise_model(noise, bs, b.columns, policy.name)
    if survey_prior is not None and file_prior is not None:
        raise BranchsimError("survey_prior is given twice: as an argument and in the noise model; give it once")
    prior = _mc_tables.JEFFREYS if survey_prior is None and file_prior is None else \
        (survey_prior if survey_prior is not None else file_prior)
    if isinstance(prior, bool) or not isinstance(prior, (int, float, np.integer, np.floating)) \
            or not np.isfinite(prior) or prior <= 0:
        raise BranchsimError(f"survey_prior must be a number > 0 (Jeffreys: 0.5 per answer), got {prior!r}")
    if (prior != _mc_tables.JEFFREYS or file_prior is not None) and not bs.survey:
        raise BranchsimError(f"policy {policy.name!r} has no survey: survey_prior does not apply")
    seen = branch_outcome(inp, scheme)
    des = (np.column_stack([seen["designations"][x.id] for x in bs.designations]) if bs.designations
           else np.zeros((len(b), 0), dtype=bool))
    setup = _Tables(scheme=scheme, t=inp.type_idx, facts=inp.facts, values=inp.values,
                    survey=None if inp.survey is None else np.rint(inp.survey).astype(np.int64),
                    prior=float(prior), noisy=_mc_tables.prepare(models, b), kinds=_mc_tables.fact_kinds(bs),
                    prev=inp.prev, columns=b, true_level=seen["level"].astype(np.intp), true_designated=des)
    root = as_seed_sequence(seed)
    parts = _collect(_run_tables_batch, setup, root, draws, batch, executor, progress)
    respondents = float(setup.survey.sum(axis=1).mean()) if bs.survey else 0.0
    return assemble(parts, pop, policy, setup, sizes=[OBSERVED], base_size=OBSERVED, true_score=seen["score"],
                    draws=draws, root=root, mode=None, reference="observed", respondents=respondents,
                    noise=models, prior=float(prior) if bs.survey else None)
