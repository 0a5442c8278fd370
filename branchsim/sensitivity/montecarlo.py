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

Streams: the branches of draw ``d`` are measured in seed blocks of
:data:`MC_BLOCK` branches; block ``b`` and purpose ``p`` (16: the
indicators' normals then uniforms, 17: the survey's mood shocks then
answers, 18: declared facts) use ``SeedSequence(entropy, spawn_key=(*spawn_key,
p, d, b))`` of the ``seed`` given, so the numbers do not depend on the batch
size, the stacking of draws (:data:`STACK_ROWS`) or the executor. Every
survey size reuses the draw's survey stream (common random numbers), so
sizes differ by the sample, not by luck. (Before the compiled kernel the blocks were
the generator's 256 branches with purposes 8, 9 and 13: a block's stream
costs as much to set up as drawing a few thousand values, so the larger
blocks changed the draws, not their distribution; members keep the
generator's blocks, purposes 10-12.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, overload

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BranchsimError, DataError
from ..manifest import recorded
from ..evaluate import BranchInputs, branch_inputs, branch_outcome
from ..measurement import (_indicator_offsets, _state_column, _state_value, declared_facts, facts_from_attainment,
                           survey_probabilities)
from ..scheme import RULE_CODES
from ..scoring import DECIMALS, branch_components, indicator_points
from ..params import GeneratorParams
from ..policy import Policy, as_policy
from ..population import Population
from ..scoring import type_codes
from ..truth import truth
from ..streams import as_seed_sequence
from . import _mc_kernel, _mc_tables
from ._mc_members import member_grades, member_setup, stream
from .mc_result import OBSERVED, MonteCarlo, assemble

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from concurrent.futures import Executor
    from typing import Any
    from ..plausible import Cities
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["measurement_mc", "mc_numbers", "MonteCarlo", "MEASUREMENT_PARAMS"]

# Purposes of the branches' Monte Carlo streams (the generator's are 0-6 with two-part keys; members' 10-12;
# loaded tables' 14-15).
_FACTS, _SURVEY, _DECLARED = 16, 17, 18
#: Branches per seed block of the branches' Monte Carlo streams (one stream per block, draw and purpose).
MC_BLOCK = 8192
#: Generator parameters a Monte Carlo may change: the measurement, not the truth.
MEASUREMENT_PARAMS = tuple(f"measurement.{k}" for k in (
    "indicator_noise", "proportion_noise", "survey_shock", "survey_generosity",
    "survey_size",)) + ("member_measurement.",)


@dataclass(frozen=True)
class _Setup:
    """Everything a batch of draws needs (plain arrays and the compiled scheme: cheap to send to a worker)."""

    scheme: object
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
    arrays: tuple = ()            # the sheet's arrays for the compiled kernel (_mc_kernel.sheet_arrays)
    stackable: bool = False       # levels depend on each branch's own facts: draws are rated as one table
    rank_groups: dict | None = None   # group codes of the columns ranks are taken within
    read: tuple = ()              # positions of the indicator facts the rules read beyond points (vetoes, …)


#: Rows (draws × branches) measured and rated at once: a memory bound that never changes a number.
STACK_ROWS = 1 << 16
_NO_COLUMNS = pd.DataFrame()


def _stackable(bs) -> bool:
    """Whether a branch's level depends on its own facts only, so that many draws are rated as one table."""
    return (bs.rating.design == "cuts" and not bs.sheet.has("rank")
            and not any(c.kind == "last_place" for d in bs.designations for c in d.criteria))


def _read_facts(bs) -> set:
    """The facts a branch's rules read beyond its points: vetoes, direct grading, designation criteria."""
    return ({*bs.vetoes.fact, *bs.rating.direct_fact}
            | {c.fact for d in bs.designations for c in d.criteria if getattr(c, "fact", None)})


def _blocks(n: int):
    return [(blk, blk * MC_BLOCK, min(n, (blk + 1) * MC_BLOCK)) for blk in range(-(-n // MC_BLOCK))]


def _surveys(s: _Setup, root, draws: range) -> list:
    """Answer counts ``(R, a)`` of every survey size (the same stream for every size: common random numbers).

    Each seed block of each draw reads its survey stream (purpose 17) as
    :func:`~branchsim.measurement._survey` does: the branches' mood shocks, then the answers.
    """
    bs = s.scheme.branch
    n = len(s.q)
    m = s.params[0].values["measurement"]
    qR = np.tile(s.q, len(draws))
    shocks, gens = np.empty(len(qR)), []
    for i, d in enumerate(draws):
        for blk, a, b in _blocks(n):
            gens.append(stream(root, _SURVEY, d, blk))
            shocks[i * n + a:i * n + b] = gens[-1].standard_normal(b - a)
    r = np.clip(qR + m["survey_generosity"] + m["survey_shock"] * shocks, 0, 1)
    probs = survey_probabilities(r, bs.answer_values)
    probs /= probs.sum(axis=1, keepdims=True)
    out = []
    for j, prm in enumerate(s.params):
        size = int(prm.values["measurement"]["survey_size"])
        counts = np.empty((len(qR), len(bs.answers)), dtype=np.int64)
        g = iter(gens)
        for i, d in enumerate(draws):
            for blk, a, b in _blocks(n):
                rng = next(g)
                if j:                                     # the size's own copy of the stream, past the shocks
                    rng = stream(root, _SURVEY, d, blk)
                    rng.standard_normal(b - a)
                counts[i * n + a:i * n + b] = rng.multinomial(size, probs[i * n + a:i * n + b])
        out.append(counts)
    return out


def _declared(s: _Setup, root, draws: range) -> dict:
    """The declared facts of the stacked draws (purpose 18, as :func:`~branchsim.measurement.declared_facts`)."""
    bs = s.scheme.branch
    n = len(s.q)
    out = {f: np.empty(len(draws) * n) for f in bs.fact_entries}
    for i, d in enumerate(draws):
        for blk, a, b in _blocks(n) if out else ():
            got = declared_facts(stream(root, _DECLARED, d, blk), s.q[a:b], bs, s.params[0], s.state[a:b])
            for f, col in got.items():
                out[f][i * n + a:i * n + b] = col
    return out


def _normals_uniforms(s: _Setup, root, d: int, z: np.ndarray, u: np.ndarray) -> None:
    """Draw ``d``'s normals and uniforms ``(n, k)`` into ``z`` and ``u`` (purpose 16, as
    :func:`~branchsim.measurement.branch_block` reads them: a block's normals, then its uniforms)."""
    for blk, a, b in _blocks(len(s.q)):
        rng = stream(root, _FACTS, d, blk)
        rng.standard_normal(out=z[a:b])
        rng.random(out=u[a:b])


def _numpy_facts(s: _Setup, qR, z, u, stateR) -> np.ndarray:
    """The facts of stacked rows with NumPy (:func:`~branchsim.measurement.branch_block`'s arithmetic)."""
    bs = s.scheme.branch
    m = s.params[0].values["measurement"]
    p = np.clip(qR[:, None] + s.offsets[None, :] + m["indicator_noise"] * z, 0, 1)
    facts = facts_from_attainment(p, u, bs.sheet, m["proportion_noise"])
    share = bs.sheet.kind[0] == RULE_CODES["proportion"]
    facts[:, share] = np.round(facts[:, share], 2)
    for j, fact in enumerate(bs.state_facts):
        if fact in bs.sheet.facts:
            good, bad = _state_value(bs, fact)
            facts[:, bs.sheet.facts.index(fact)] = np.where(stateR[:, j] > 0, good, bad)
    return facts


def _points(s: _Setup, facts, pts, tR, B: int):
    """Points where the kernel leaves them to NumPy: ranks (a draw ranks its own branches), zeroing."""
    sheet = s.scheme.branch.sheet
    n = len(s.q)
    if sheet.has("rank"):
        return np.concatenate([indicator_points(facts[i * n:(i + 1) * n], s.t, sheet, rank_groups=s.rank_groups)
                               for i in range(B)])
    if sheet.has("zeroing") or pts is None:
        return indicator_points(facts, tR, sheet)
    return pts


def _stack(s: _Setup, root, draws: range, i0: int, out: dict) -> None:
    """Measure and rate the draws ``draws`` stacked as one table of ``len(draws) × n`` rows.

    A draw's normals and uniforms live in one reused ``(n, k)`` buffer; where
    the kernel fuses the components, only they and the facts the rules read
    are kept for the stack (the measured sheet is never held whole).
    """
    bs = s.scheme.branch
    n, k, B = len(s.q), bs.sheet.k, len(draws)
    S = len(s.params)
    surveys = _surveys(s, root, draws) if bs.survey else [None] * S
    declared = _declared(s, root, draws)
    m = s.params[0].values["measurement"]
    compiled = _mc_kernel.available()
    fused = compiled and _mc_kernel.fuses_components(bs)
    keep = s.read if fused else tuple(range(k))
    names = [bs.sheet.facts[c] for c in keep]
    facts = np.empty((B * n, len(keep)))
    pts = None if fused else np.empty((B * n, k))
    comps = [None] * S
    z, u = np.empty((n, k)), np.empty((n, k))
    for i, d in enumerate(draws):
        rows = slice(i * n, (i + 1) * n)
        _normals_uniforms(s, root, d, z, u)
        if not compiled:                                  # the NumPy measurement (same facts)
            facts[rows] = _numpy_facts(s, s.q, z, u, s.state)
            continue
        for j in range(S if fused else 1):
            f, p, c = _mc_kernel.facts_points(s.q, s.t, s.offsets, m["indicator_noise"], m["proportion_noise"], z,
                                              u, s.state, None if surveys[j] is None else surveys[j][rows],
                                              s.arrays, fused, keep=keep if fused else None)
            facts[rows] = f
            if fused:
                if comps[j] is None:
                    comps[j] = np.empty((B * n, c.shape[1]))
                comps[j][rows] = c
            else:
                pts[rows] = p
    tR = np.tile(s.t, B)
    if not fused:
        pts = _points(s, facts, pts if compiled else None, tR, B)
        # a draw at a time: one large product would run on BLAS's threads, which a shared machine pays for
        comps = [np.concatenate([branch_components(pts[i * n:(i + 1) * n], s.t,
                                                   None if survey is None else survey[i * n:(i + 1) * n], bs)
                                 for i in range(B)]) for survey in surveys]
    values = {f: facts[:, c] for c, f in enumerate(names)}
    values.update(declared)
    prevR = {key: np.tile(v, B) for key, v in s.prev.items()} if s.stackable else None
    for j, survey in enumerate(surveys):
        scores = _scores(pts, comps[j], tR, bs)
        if s.stackable:
            inp = BranchInputs(facts, values, tR, survey, prevR, _NO_COLUMNS)
            _tally(out, j, i0, branch_outcome(inp, s.scheme, scores=scores), bs, s.true_level, s.true_designated,
                   B)
            continue
        for i in range(B):
            rows = slice(i * n, (i + 1) * n)
            inp = BranchInputs(facts[rows], {f: v[rows] for f, v in values.items()}, s.t,
                               None if survey is None else survey[rows], s.prev, s.columns)
            o = branch_outcome(inp, s.scheme, scores={key: v if v is None else v[rows] for key, v in scores.items()})
            _tally(out, j, i0 + i, o, bs, s.true_level, s.true_designated)


def _scores(pts, comps, tR, bs) -> dict:
    """Points, components and scores of stacked rows (:func:`~branchsim.scoring.scores_from_components`'s
    score; without the sub-scores, which no Monte Carlo count reads; no points when fused)."""
    score = np.round(100.0 * np.einsum("nc,nc->n", comps, bs.weights[tR]), DECIMALS)
    return {"points": pts, "components": comps, "score": score}


def _tally(out: dict, j: int, i: int, o: dict, bs, true_level: np.ndarray, true_des: np.ndarray,
           B: int = 1) -> None:
    """Add ``B`` rated draws ``o`` (stacked, size ``j``, draws ``i`` … of the batch) to the integer tallies."""
    n, L = len(true_level), bs.levels.n
    level = o["level"].astype(np.intp)
    des = np.column_stack([o["designations"][x.id] for x in bs.designations]) if bs.designations \
        else np.zeros((n * B, 0), dtype=bool)
    out["hits"][j] += np.bincount(np.tile(np.arange(n) * L, B) + level, minlength=n * L).reshape(n, L)
    out["levels"][j, i:i + B] = np.bincount(np.repeat(np.arange(B) * L, n) + level,
                                            minlength=B * L).reshape(B, L)
    by_draw, des3 = level.reshape(B, n), des.reshape(B, n, -1)
    out["designated_hits"][j] += des3.sum(axis=0)
    out["designated"][j, i:i + B] = des3.sum(axis=1)
    out["too_high"][j, i:i + B] = (by_draw > true_level).sum(axis=1)
    out["too_low"][j, i:i + B] = (by_draw < true_level).sum(axis=1)
    out["false_alarms"][j, i:i + B] = (des3 & ~true_des).sum(axis=1)
    out["misses"][j, i:i + B] = (~des3 & true_des).sum(axis=1)


def _branch_part(s: _Setup, root, first: int, stop: int, out: dict) -> None:
    per = max(1, STACK_ROWS // max(len(s.q), 1))
    for lo in range(first, stop, per):
        _stack(s, root, range(lo, min(stop, lo + per)), lo - first, out)


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


@overload
def measurement_mc(pop: Population, policy: Policy | None = None, *, draws: int = 200, seed: Seed = 0,
                   survey_sizes: Iterable[int] | None = None, params: dict | GeneratorParams | None = None,
                   members: bool | str = False, executor: Executor | None = None, progress: bool = True,
                   batch: int = 50, noise: Mapping[str, Any] | None = None,
                   survey_prior: float | None = None, cities: None = None) -> MonteCarlo: ...
@overload
def measurement_mc(pop: Population | None, policy: Policy | None = None, *, draws: int = 200, seed: Seed = 0,
                   survey_sizes: Iterable[int] | None = None, params: dict | GeneratorParams | None = None,
                   members: bool | str = False, executor: Executor | None = None, progress: bool = True,
                   batch: int = 50, noise: Mapping[str, Any] | None = None,
                   survey_prior: float | None = None, cities: Cities) -> pd.DataFrame: ...


@recorded("measurement_mc")
def measurement_mc(pop: Population | None, policy: Policy | None = None, *, draws: int = 200, seed: Seed = 0,
                   survey_sizes: Iterable[int] | None = None, params: dict | GeneratorParams | None = None,
                   members: bool | str = False, executor: Executor | None = None, progress: bool = True,
                   batch: int = 50, noise: Mapping[str, Any] | None = None,
                   survey_prior: float | None = None, cities: Cities | None = None) -> MonteCarlo | pd.DataFrame:
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
    cities : Cities, optional
        Plausible cities (:func:`branchsim.plausible_cities`; ``pop`` None):
        the Monte Carlo runs on each city's population (the same ``seed``
        for every city) and each number of :func:`mc_numbers` comes with
        its mean and interval across cities (``policy`` None: the cities').

    Returns
    -------
    MonteCarlo
        ``level_probabilities`` (``p_<level id>`` per branch), ``counts``,
        ``misclassification``, ``designation_errors``, ``confusion()`` and
        with ``members`` ``member_probabilities`` and ``grade_counts``.
        With ``cities``: a DataFrame, one row per ``survey_size`` and
        ``quantity`` (:func:`~branchsim.plausible.across_cities`).

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

    Across plausible cities:

    >>> c = bs.plausible_cities(bs.Policy.load(), {"weak": 4}, n=2, scale=200, seeds=range(2), refine=1, tol=2)
    >>> out = measurement_mc(None, draws=5, seed=1, cities=c).set_index(["survey_size", "quantity"])
    >>> int(out.loc[(25, "misclassified"), "n_cities"]), bool(out["lower"].le(out["upper"]).all())
    (2, True)
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, None if policy is None else as_policy(policy), "measurement_mc")
        policy = cities.policy if policy is None else as_policy(policy)
        mode = _mode(members)

        def one(p):
            return measurement_mc(p, policy, draws=draws, seed=seed, survey_sizes=survey_sizes, params=params,
                                  members=members, executor=executor, progress=False, batch=batch, noise=noise,
                                  survey_prior=survey_prior)
        return across_cities(cities, one, keys=["survey_size"], numbers=mc_numbers, members=mode is not None,
                             progress=progress)
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
        scheme=scheme, q=b["true_quality"].to_numpy(float), t=t,
        size=b["n_members"].to_numpy(np.int64),
        offsets=_indicator_offsets(pop.seed, bs.sheet, pop.params, 0),
        state=state, columns=b, prev=inp.prev,
        params=tuple(prm.with_values({"measurement.survey_size": s}) for s in sizes),
        true_level=true["level"].astype(np.intp), true_designated=true_des, members=mode,
        m=member_setup(pop, policy, t, mode) if mode else None,
        arrays=_mc_kernel.sheet_arrays(bs, bs.state_facts), stackable=_stackable(bs),
        rank_groups={w: inp.codes(w)[0] for w in bs.sheet.within if w is not None},
        read=tuple(j for j, f in enumerate(bs.sheet.facts) if f in _read_facts(bs)))

    parts = _collect(_run_batch, setup, root, draws, batch, executor, progress)
    return assemble(parts, pop, policy, setup, sizes=sizes, base_size=base_size, true_score=true["score"],
                    draws=draws, root=root, mode=mode)


def mc_numbers(mc: MonteCarlo) -> pd.DataFrame:
    """A Monte Carlo's numbers, one row per survey size (what ``measurement_mc(cities=)`` summarises).

    Columns: ``survey_size``; ``misclassified``, ``too_high``, ``too_low``
    (shares of branch-draws, :attr:`MonteCarlo.misclassification`);
    ``mean_p_true`` (mean per-branch probability of the true level); the mean
    per draw of each count of :attr:`MonteCarlo.counts` (level ids,
    designation ids, ``accuracy``, ``<designation>_false_alarms``,
    ``<designation>_misses``) and ``true_<id>`` its count under the truth;
    per designation ``<d>_false_alarm_rate``, ``<d>_miss_rate``
    (:attr:`MonteCarlo.designation_errors`) and ``<d>_false_alarm_share``
    (mean false alarms over mean designated: the share of designations
    that fall on branches the truth does not designate; NaN when none is
    designated); with members, ``grade_<id>`` (mean members per grade a
    draw) on the baseline size's row.

    >>> import branchsim as bs
    >>> mc = measurement_mc(bs.generate(seed=0, n_branches=200, members=False), draws=5, progress=False)
    >>> n = mc_numbers(mc).set_index("survey_size")
    >>> bool(n.loc[25, "misclassified"] == mc.misclassification["misclassified"].iloc[0])
    True
    """
    head = [c for c in mc.counts.columns if c not in ("survey_size", "draw", "too_high", "too_low")]
    means = mc.counts.groupby("survey_size", sort=False)[head].mean()
    out = mc.misclassification.set_index("survey_size")[["misclassified", "too_high", "too_low"]].copy()
    out["mean_p_true"] = [float(mc.probabilities(s)["p_true"].mean()) for s in out.index]
    out = out.join(means)
    for k in mc.levels + mc.designations:
        out[f"true_{k}"] = float(mc.true_counts[k])
    errs = mc.designation_errors
    for d in mc.designations:
        e = errs[errs["designation"] == d].set_index("survey_size")
        out[f"{d}_false_alarm_rate"] = e["false_alarm_rate"].reindex(out.index)
        out[f"{d}_miss_rate"] = e["miss_rate"].reindex(out.index)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{d}_false_alarm_share"] = np.where(out[d] > 0, out[f"{d}_false_alarms"] / out[d].where(out[d] > 0),
                                                     np.nan)
    if mc.grade_counts is not None:
        g = mc.grade_counts.drop(columns="draw").mean()
        for k, v in g.items():
            out[f"grade_{k}"] = np.where(out.index == mc.baseline_size, float(v), np.nan)
    return out.reset_index()


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
    if inp.survey is not None:
        frac = (np.abs(inp.survey - np.rint(inp.survey)) > 1e-9).any(axis=1)
        if frac.any():
            raise DataError(f"branches: survey answer counts ({', '.join(bs.survey_columns)}) must be whole "
                            f"numbers of respondents to be redrawn; {_mc_tables._rows(frac)} are not")
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
