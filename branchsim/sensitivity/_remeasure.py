"""Re-measuring a generated population under many noise settings with common random numbers.

A noise factor (``measurement.indicator_noise``, ``measurement.proportion_noise``,
``measurement.survey_size``) changes how the branches are *measured*, not what
they are: their types, sizes, true qualities and state facts, and so their
truth, stay as generated. Instead of generating the population again for
every noise setting, :class:`Remeasure` draws the measurement's random numbers
once and rescales them for each setting (common random numbers):

* each indicator's standard normal ``z`` and uniform ``u`` are the population's
  own draws (its branch stream, re-drawn from its seed), so a setting's
  attainment is ``p = clip(q + offset + indicator_noise × z, 0, 1)`` and its
  raw fact follows from ``p`` and ``u`` by the rule form, exactly as
  :func:`branchsim.generate` with that setting measures it;
* the survey is a fixed list of respondents per branch: the population's own
  answers in a random order, then further respondents drawn from the
  branch's answer probabilities (with its own survey mood), for the largest
  survey size of the factor range. A setting with ``m`` respondents counts
  the first ``m``: the samples are nested (a bigger survey only adds
  respondents), and a random subset of the population's answers is a sample
  of the same multinomial. The order and the added respondents come from a
  stream of their own (:data:`_CRN`), drawn respondent by respondent, so the
  first ``m`` do not depend on the largest size.

At the population's own setting the facts and answer counts are the
population's, so the outcomes equal its own; at any other setting they have
the distribution a re-generated population has. State facts and declared
facts (truth, not noise) are kept. The truth is computed once; each setting
costs one scoring of the branches (:func:`~branchsim.evaluate.branch_outcome`)
and one engine run of its scenarios, and the facts of many settings are
formed in one vectorised pass.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import BranchsimError
from ..evaluate import BranchInputs, branch_inputs, branch_outcome
from ..measurement import _indicator_offsets, facts_from_attainment, survey_probabilities
from ..scheme import RULE_CODES
from ..streams import _BRANCH, BLOCK, block_stream

__all__ = ["CRN_KEYS", "Remeasure"]

#: Generator parameters (under ``measurement``) a :class:`Remeasure` varies without re-generating.
CRN_KEYS = ("indicator_noise", "proportion_noise", "survey_size")
#: Noise settings per unit of work (an executor's job; the numbers do not depend on it).
CHUNK = 128
_CRN = 64          # the purpose number of the respondents' order and added respondents (not a generator's)


class Remeasure:
    """Common random numbers of a generated population, re-measured under noise settings.

    Parameters
    ----------
    pop : Population
        A generated population (with its seed and generator parameters).
    policy : Policy
        The policy it was generated with (whose sheet its facts measure).
    max_survey : int, optional
        The largest survey size a setting will ask for (default: the population's).

    Raises
    ------
    BranchsimError
        When the population has no seed, or its seed does not reproduce its
        measured facts and answers (another policy, or edited tables).

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(p, seed=3, n_branches=300, members=False)
    >>> crn = Remeasure(pop, p, max_survey=40)
    >>> same = crn.facts({})                               # the population's own setting
    >>> bool((same["survey"].sum(axis=1) == pop.params.get("measurement.survey_size")).all())
    True
    >>> int(crn.facts({"survey_size": 40})["survey"].sum(axis=1).max())
    40
    """

    def __init__(self, pop, policy, *, max_survey: int | None = None):
        if pop.seed is None or pop.params is None or not pop.has_truth:
            raise BranchsimError("noise factors re-measure a generated population; this one has no seed, "
                                 "generator parameters or truth (drop the 'noise' rows of the factors)")
        bs = policy.scheme.branch
        sheet = bs.sheet
        b = pop.branches
        n, k = len(b), sheet.k
        self.policy, self.params, self.n = policy, pop.params, n
        self.inputs = branch_inputs(b, policy.scheme, policy_name=policy.name)
        q = b["true_quality"].to_numpy(float)
        off = _indicator_offsets(pop.seed, sheet, pop.params, 0)
        self.base = q[:, None] + off[None, :]                  # as branch_block adds them: (q + off) + noise
        self.z, self.u = np.empty((n, k)), np.empty((n, k))
        mood = np.empty(n)
        for blk in range(-(-n // BLOCK)):   # the generator's branch stream, block by block (branch_block's order)
            rows = slice(blk * BLOCK, min(n, (blk + 1) * BLOCK))
            m = rows.stop - rows.start
            rng = block_stream(pop.seed, _BRANCH, blk)
            self.z[rows] = rng.standard_normal((m, k))
            self.u[rows] = rng.random((m, k))
            mood[rows] = rng.standard_normal(m)
        kept = set(bs.state_facts) | set(bs.fact_entries)      # truth or declared facts: not re-measured
        self.measured = [j for j, f in enumerate(sheet.facts) if f not in kept]
        self.share_cols = np.flatnonzero(sheet.kind[0] == RULE_CODES["proportion"])
        self.survey_size = int(pop.params.get("measurement.survey_size")) if bs.survey else 0
        self.counts = self._respondents(pop, b, q, mood, max_survey) if bs.survey else None
        own = self.facts({})
        same = all(np.array_equal(own["facts"][:, i], self.inputs.values[sheet.facts[j]], equal_nan=True)
                   for i, j in enumerate(self.measured))
        if not same:
            raise BranchsimError("the population cannot be re-measured: its seed and generator parameters do "
                                 "not reproduce its measured facts (another policy or a changed table?); "
                                 "drop the noise factors")

    def __getstate__(self):            # for an executor: a Policy does not pickle, its document does
        state = dict(self.__dict__)
        state["policy"] = self.policy.to_dict()
        return state

    def __setstate__(self, state):
        from ..policy import Policy
        state["policy"] = Policy(state["policy"])
        self.__dict__.update(state)

    def _respondents(self, pop, b, q, mood, max_survey) -> np.ndarray:
        """Cumulative answer counts ``(n, M + 1, a)``: row ``m`` counts the first ``m`` respondents."""
        bs = self.policy.scheme.branch
        m0 = self.survey_size
        counts = b[list(bs.survey_columns)].to_numpy(np.int64)
        if not (counts.sum(axis=1) == m0).all():
            raise BranchsimError(f"the population cannot be re-measured: its survey answers do not add up to "
                                 f"its measurement.survey_size ({m0}); drop the noise factors")
        M = max(m0, int(max_survey or m0))
        n, a = counts.shape
        rng = block_stream(pop.seed, _CRN, 0)
        # The population's own answers (as codes, sorted) in a random order per branch.
        pos = np.arange(m0)
        own = (pos[None, :, None] >= np.cumsum(counts, axis=1)[:, None, :]).sum(axis=2)
        order = np.argsort(rng.random((m0, n)).T, axis=1, kind="stable")
        codes = np.empty((n, M), dtype=np.int64)
        codes[:, :m0] = np.take_along_axis(own, order, axis=1)
        if M > m0:              # respondents beyond the population's: the branch's own answer probabilities
            m = self.params.values["measurement"]
            r = np.clip(q + m["survey_generosity"] + m["survey_shock"] * mood, 0, 1)
            probs = survey_probabilities(r, bs.answer_values)
            cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)[:, :-1]
            extra = rng.random((M - m0, n)).T             # respondent by respondent: a prefix never changes
            codes[:, m0:] = (extra[:, :, None] >= cum[:, None, :]).sum(axis=2)
        out = np.zeros((n, M + 1, a), dtype=np.int32)
        np.cumsum(codes[:, :, None] == np.arange(a)[None, None, :], axis=1, out=out[:, 1:])
        return out

    @property
    def max_survey(self) -> int:
        return 0 if self.counts is None else self.counts.shape[1] - 1

    def _setting(self, changes: dict) -> tuple[float, float, int]:
        m = self.params.values["measurement"]
        bad = [key for key in changes if key not in CRN_KEYS]
        if bad:
            raise BranchsimError(f"measurement.{bad[0]}: not re-measured with common random numbers; "
                                 f"allowed: {', '.join('measurement.' + c for c in CRN_KEYS)}")
        size = int(changes.get("survey_size", self.survey_size))
        if self.counts is not None and not 1 <= size <= self.max_survey:
            raise BranchsimError(f"measurement.survey_size: {size} lies outside 1..{self.max_survey} "
                                 "(the respondents drawn)")
        return (float(changes.get("indicator_noise", m["indicator_noise"])),
                float(changes.get("proportion_noise", m["proportion_noise"])), size)

    def facts_batch(self, settings: list) -> np.ndarray:
        """Measured facts ``(G, n, len(measured))`` of several settings (dicts of :data:`CRN_KEYS`), one pass."""
        sheet = self.policy.scheme.branch.sheet
        parsed = [self._setting(s) for s in settings]
        noise = np.array([p[0] for p in parsed])
        p = np.clip(self.base[None] + noise[:, None, None] * self.z[None], 0, 1)
        out = np.empty_like(p)
        for prop in np.unique([q[1] for q in parsed]):       # facts_from_attainment takes one share noise
            g = np.flatnonzero([q[1] == prop for q in parsed])
            out[g] = facts_from_attainment(p[g], np.broadcast_to(self.u, p[g].shape), sheet, prop)
        out[..., self.share_cols] = np.round(out[..., self.share_cols], 2)
        return out[..., self.measured]

    def facts(self, changes: dict) -> dict:
        """``facts`` ``(n, len(measured))`` and ``survey`` counts ``(n, a)`` (None without one) of a setting."""
        noise, prop, size = self._setting(changes)
        p = self.base + noise * self.z
        np.clip(p, 0, 1, out=p)
        out = facts_from_attainment(p, self.u, self.policy.scheme.branch.sheet, prop)
        out[:, self.share_cols] = np.round(out[:, self.share_cols], 2)
        return {"facts": out[:, self.measured] if len(self.measured) < out.shape[1] else out,
                "survey": None if self.counts is None else self.counts[:, size].astype(float)}

    def inputs_for(self, facts: np.ndarray, survey, scheme) -> BranchInputs:
        """:class:`~branchsim.evaluate.BranchInputs` of a setting's facts, read by ``scheme`` (the rated one)."""
        inp = self.inputs
        values = dict(inp.values)
        names = self.policy.scheme.branch.sheet.facts
        for i, j in enumerate(self.measured):
            values[names[j]] = facts[:, i]
        sheet = scheme.branch.sheet
        missing = [f for f in sheet.facts if f not in values]
        if missing:
            raise BranchsimError(f"the rated policy reads fact(s) {missing[:8]} the population does not measure")
        fx = np.column_stack([values[f] for f in sheet.facts]) if sheet.k else np.empty((self.n, 0))
        return BranchInputs(fx, values, inp.type_idx, survey, inp.prev, inp.columns)

    def prepared(self, prep, facts: np.ndarray, survey):
        """``prep`` (the population prepared under the rated policy) with a setting's measurement:
        components, caps, fixed levels and designations re-scored; the truth kept; ``levels`` None
        (the engine rates every scenario itself)."""
        from .engine import _unit_state
        scheme = prep.policy.scheme
        inp = self.inputs_for(facts, survey, scheme)
        # The engine rates each scenario itself: the policy's own rating is skipped (a placeholder design;
        # only what does not depend on the score is kept), so ``levels`` is left empty.
        out = branch_outcome(inp, scheme, rated=(np.zeros(self.n, dtype=np.int8), None))
        cap, fixed, designated, line_ok, dep_ok = _unit_state(out, scheme, inp.prev)
        return dataclasses.replace(prep, components=out["components"], cap=cap, fixed=fixed, designated=designated,
                                   line_ok=line_ok, dep_ok=dep_ok, levels=None, cache={})

    def run_settings(self, prep, jobs: list, baseline) -> list:
        """Engine outputs of each ``(changes, scenarios)`` job under ``prep`` (the rated policy).

        One setting at a time: on a city of branches its arrays stay in cache,
        which measured faster than forming many settings' facts at once
        (:meth:`facts_batch`).
        """
        from .engine import run
        outs = []
        for changes, sc in jobs:
            got = self.facts(changes)
            outs.append(run(self.prepared(prep, got["facts"], got["survey"]), sc, baseline=baseline))
        return outs


def run_job(policy, rated, pop, crn: Remeasure, jobs: list, baseline) -> list:
    """An executor's share of the settings: ``policy`` / ``rated`` as documents (a Policy does not pickle)."""
    from ..policy import Policy
    from .engine import prepare
    policy = policy if isinstance(policy, Policy) else Policy(policy)
    rated = policy if rated is None else rated if isinstance(rated, Policy) else Policy(rated)
    return crn.run_settings(prepare(pop, rated), jobs, baseline)


class CrnOut:
    """One setting's engine output within a chunk of settings run together (locally or by an executor)."""

    def __init__(self, chunk, i):
        self.chunk, self.i = chunk, i

    def get(self):
        return self.chunk.get()[self.i]


class _Chunk:
    def __init__(self, call, future=None):
        self.call, self.future, self.value = call, future, None

    def get(self):
        if self.value is None:
            self.value = self.future.result() if self.future is not None else self.call()
        return self.value


def crn_jobs(crn, pop, policy, pol, settings, base, executor) -> list:
    """``(idx, pol, CrnOut)`` of each noise setting under the rated policy ``pol``, in chunks of
    :data:`CHUNK` settings (an executor's unit of work; the numbers do not depend on it)."""
    rated = None if pol is policy else pol
    prep = None
    out = []
    for lo in range(0, len(settings), CHUNK):
        part = settings[lo:lo + CHUNK]
        work = [(c, sc) for _, c, sc in part]
        if executor is not None:
            from ..population import Population
            light = Population(pop.branches, seed=pop.seed, params=pop.params)   # branches only: all it needs
            chunk = _Chunk(None, executor.submit(run_job, policy.to_dict(), None if rated is None
                                                 else rated.to_dict(), light, crn, work, base))
        else:
            if prep is None:
                from .engine import prepare
                prep = prepare(pop, pol)
            chunk = _Chunk(lambda work=work, prep=prep: crn.run_settings(prep, work, base))
        out += [(idx, pol, CrnOut(chunk, i)) for i, (idx, _, _) in enumerate(part)]
    return out
