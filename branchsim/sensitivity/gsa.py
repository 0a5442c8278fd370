"""Global sensitivity: which weights, cut points and noise levels drive the outcome.

* :func:`sobol` / :func:`sobol_indices` — Sobol' first- and total-order
  indices (Saltelli design, SALib estimators), with
  :class:`SensitivityResult` and its convergence check;
* :func:`morris` / :func:`morris_indices` — Morris elementary effects;
* :func:`effective_importance` / :func:`main_effects` — nominal weights
  beside what each component actually explains in a population.

The factors varied and the scoring of each sample live in :mod:`.factors`
(:func:`default_factors`, :func:`evaluate_samples`; re-exported here). Cost
of :func:`sobol` with ``n=256`` on 1,500 branches: without noise factors
2,816 scenarios in one engine pass on the kernel's threads and one
vectorised analysis of all outputs (0.04-0.25 s on the shared 2-core
machine, ``benchmarks/bench_sobol.py``); with the two default noise factors
3,328 scenarios and about a thousand distinct noise settings, each
re-measured with common random numbers (2-3 s,
``benchmarks/bench_sobol_noise.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import BranchsimError
from ..manifest import recorded
from ..model import as_seed_sequence
from ..policy import Policy
from .engine import prepare
from .factors import KINDS, scenarios  # noqa: F401  (re-exported: moved to .factors)
from .factors import _factors_for, default_factors, evaluate_samples, factor_problem, factor_values

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from concurrent.futures import Executor
    from numpy.typing import ArrayLike
    from ..plausible import Cities
    from ..population import Population
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["KINDS", "default_outputs", "default_factors", "factor_problem", "factor_values", "scenarios",
           "evaluate_samples", "SensitivityResult", "sobol", "sobol_indices", "morris",
           "morris_indices", "main_effects", "effective_importance"]


def default_outputs(policy: Policy) -> tuple[str, ...]:
    """The outputs analysed by default: the count of each level above the floor, of each
    designation, and the mean absolute change of level.

    >>> import branchsim as bs
    >>> len(default_outputs(bs.Policy.load()))
    5
    """
    bs = policy.scheme.branch
    return tuple(bs.levels.ids[:-1]) + tuple(d.id for d in bs.designations) + ("mean_abs_change",)


def _unit_output_names(policy: Policy, pop, wanted: set) -> dict:
    """Output columns beyond branch levels, by the part of the policy that changes them."""
    out = {}
    if "member" in wanted and policy.has_members:
        ms = policy.scheme.member
        out["member"] = [f"grade_{g}" for g in ms.grades.ids] + (["grade_exempt"] if ms.exempt.any() else []) \
            + ["members_changed"] + (["misgraded"] if pop.has_truth else [])
    if "structure" in wanted and policy.scheme.structure is not None:
        st = policy.scheme.structure
        out["structure"] = [f"upgrade_{lv}" for lv in reversed(st.ids[1:])] + ["committee_needed", "below_minimum"]
    if "consequences" in wanted:
        out["consequences"] = [f"consequence_{c.id}" for c in policy.scheme.consequences]
    return out


def _domains(slow: pd.DataFrame) -> list[set]:
    """What each ``param`` / ``choice`` factor changes: ``branch`` (levels), ``member``, ``structure``
    or ``consequences``."""
    from .factors import changed_paths
    return [{p.split(".", 1)[0] for p in changed_paths(slow.iloc[[i]])} for i in range(len(slow))]


def _check_outputs(outputs, pop, policy: Policy, factors=None) -> list[str]:
    """The outputs to analyse (default: :func:`default_outputs`, and the member / structure /
    consequence outputs a factor changes); a factor that changes none of them is an error."""
    from .factors import changed_paths
    from .sweep import unit_outputs
    bs = policy.scheme.branch
    f = factors if factors is not None else pd.DataFrame(columns=["name", "path", "kind"])
    is_slow = np.isin(f["kind"].to_numpy(object), ["param", "choice"])    # numpy: no string-dtype ops
    slow = f[is_slow] if is_slow.any() else None
    extra = _unit_output_names(policy, pop, unit_outputs(policy, [] if slow is None else changed_paths(slow), pop))
    branch = list(bs.levels.ids) + [d.id for d in bs.designations] + ["changed", "mean_abs_change"] \
        + (["accuracy"] if pop.has_truth else [])
    by_domain = {"branch": branch, **extra}
    if outputs is None:
        outputs = list(default_outputs(policy)) + [c for cols in extra.values() for c in cols]
    allowed = [c for cols in by_domain.values() for c in cols]
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    bad = [o for o in outputs if o not in allowed]
    if bad or not outputs:
        raise BranchsimError(f"outputs {bad or outputs}: allowed: {', '.join(allowed)}")
    asked = {d for d, cols in by_domain.items() if set(cols) & set(outputs)}
    domains = iter([] if slow is None else _domains(slow))
    idle = [f"{name} ({path})" for name, path, s in zip(f["name"], f["path"], is_slow)
            if not (next(domains) if s else {"branch"}) & asked]
    if idle:
        raise BranchsimError(f"factor(s) {', '.join(idle)} change none of the requested outputs "
                             f"({', '.join(outputs)}): each would get an index of 0 by construction. Ask for "
                             f"an output it changes (allowed: {', '.join(allowed)}) or drop it")
    return outputs


# -- Sobol' -------------------------------------------------------------------------
def _seed_ints(seed, k: int) -> list[int]:
    """``k`` independent non-zero ints from ``seed`` (SALib treats 0 as 'unseeded')."""
    ss = as_seed_sequence(seed)
    return [int(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i)).generate_state(1)[0]) + 1
            for i in range(k)]


def _outputs_frame(Y, m: int) -> pd.DataFrame:
    Y = Y if isinstance(Y, pd.DataFrame) else pd.DataFrame(np.asarray(Y, float).reshape(m, -1))
    if len(Y) != m:
        raise BranchsimError(f"the model returned {len(Y)} rows for {m} samples")
    if Y.shape[1] == 1 and not isinstance(Y.columns[0], str):
        return Y.set_axis(["y"], axis=1)          # a copy: the model's own frame is left as it was
    return Y if all(isinstance(c, str) for c in Y.columns) else Y.rename(columns=str)


def _saltelli(problem, n: int, second_order: bool, seed) -> np.ndarray:
    """SALib's ``sobol.sample`` (the same points for the same seed), its per-row loop done as one array copy.

    Row ``i * step`` is A's point, then A with column ``k`` from B (``k = 0 … D-1``), with second order
    B with column ``k`` from A, and last B's point: ``step = D + 2`` (``2D + 2``).
    """
    from SALib.sample import sobol as ss
    from SALib.util import scale_samples
    if problem.get("groups") is not None:
        return ss.sample(problem, n, calc_second_order=second_order, seed=seed)
    from scipy.stats import qmc
    D = problem["num_vars"]
    base = qmc.Sobol(d=2 * D, scramble=True, seed=seed).random(n)
    a, b = base[:, :D], base[:, D:]
    eye = np.eye(D, dtype=bool)
    blocks = [a[:, None, :], np.where(eye, b[:, None, :], a[:, None, :])]
    if second_order:
        blocks.append(np.where(eye, a[:, None, :], b[:, None, :]))
    blocks.append(b[:, None, :])
    X = np.concatenate(blocks, axis=1).reshape(-1, D)
    return scale_samples(X, problem)


def _ratio(num, var):
    """SALib's normalisation of an estimator: ``num / var``, 0 where the variance is not above eps."""
    var = np.broadcast_to(var, np.broadcast_shapes(np.shape(num), np.shape(var)))
    return np.divide(num, var, out=np.zeros(var.shape), where=var > np.finfo(float).eps)


def _analyze_sobol(problem, Y: pd.DataFrame, second_order, conf_level, seed, num_resamples: int = 100):
    """SALib's ``sobol.analyze`` on every output column in one pass.

    The same normalisation of each column, SALib's estimators (``first_order``, ``total_order``,
    ``second_order``: Saltelli 2010 and 2002, each divided by the variance of A and B, 0 where that
    is not above eps) and the same bootstrap resamples for the same ``seed`` (``r``, drawn as
    ``analyze`` draws them). What changes is the arithmetic: the variance of A and B is computed once
    for all factors, not once per factor and estimator, and the bootstrap means of every estimator's
    terms are one product with the count of each base point in each resample (``counts @ f / N``)
    instead of gathered copies of the outputs; the indices equal ``analyze``'s to ~1e-15. A constant
    column has no variance to apportion: its indices are NaN and it has no second-order rows.
    """
    from scipy.stats import norm
    if not 0 < conf_level < 1:
        raise BranchsimError(f"conf_level must be between 0 and 1 (exclusive); got {conf_level!r}")
    names = np.asarray(problem["names"], dtype=object)
    D = problem["num_vars"]
    step = 2 * D + 2 if second_order else D + 2
    Ym = Y.to_numpy(float)
    M, P = Ym.shape
    if M % step or M == 0:
        raise BranchsimError(f"{M} model runs are not a whole number of Saltelli blocks of {step}")
    N, R = M // step, num_resamples
    cols = np.flatnonzero(np.ptp(Ym, axis=0) > 0)
    T = np.ascontiguousarray(Ym[:, cols].T)                      # (outputs, runs): each row as analyze's Y
    T = (T - T.mean(axis=1, keepdims=True)) / T.std(axis=1, keepdims=True)
    Yn = T.T.reshape(N, step, len(cols))                         # (base point, Saltelli row, output)
    A, B, AB = Yn[:, :1], Yn[:, -1:], Yn[:, 1:D + 1]            # (N, 1 or D, outputs)
    r = np.random.default_rng(seed).integers(N, size=(N, R))    # as analyze draws them
    counts = np.bincount((np.arange(R)[:, None] * N + r.T).ravel(), minlength=R * N).reshape(R, N) / N

    z = norm.ppf(0.5 + conf_level / 2)

    def conf(x):                                                 # Z × sd over the resamples (analyze's conf)
        return z * np.moveaxis(x, 0, -1).std(axis=-1, ddof=1)

    s1_num, st_num = B * (AB - A), 0.5 * (A - AB) ** 2                                # (N, D, outputs)
    parts = [A + B, A * A + B * B, s1_num, st_num]
    if second_order:
        i, j = np.triu_indices(D, 1)
        BA = Yn[:, D + 1:2 * D + 1]
        parts.append(BA[:, i] * AB[:, j] - A * B)                                      # (N, pairs, outputs)
    F = np.concatenate(parts, axis=1)
    # every bootstrap mean at once: (R, 2 + 2D [+ pairs], outputs). einsum, not a BLAS product: for a
    # product this small a threaded BLAS on a busy machine takes 2-20 ms (its threads wait for each
    # other) against ~0.6 ms, and limiting its threads would change process-wide state
    Fb = np.einsum("bn,nk->bk", counts, F.reshape(N, -1)).reshape((R,) + F.shape[1:])
    var = np.var(np.concatenate([A, B]), axis=0)                                       # (1, outputs)
    var_b = Fb[:, 1:2] / 2 - (Fb[:, :1] / 2) ** 2                                      # (R, 1, outputs)
    s1_b = _ratio(Fb[:, 2:D + 2], var_b)
    used = counts.any(axis=0)       # analyze: a half-width is 0 when the resampled A and B do not vary
    spread = np.ptp(np.concatenate([A[used], B[used]]), axis=0) != 0                  # (1, outputs)
    stats = {"S1": _ratio(np.mean(s1_num, axis=0), var), "S1_conf": np.where(spread, conf(s1_b), 0.0),
             "ST": _ratio(np.mean(st_num, axis=0), var),
             "ST_conf": np.where(spread, conf(_ratio(Fb[:, D + 2:2 * D + 2], var_b)), 0.0)}
    full = {k: np.full((P, D), np.nan) for k in stats}
    for k, v in stats.items():
        full[k][cols] = v.T
    out = np.asarray(Y.columns, dtype=object)
    idx = pd.DataFrame({"output": np.repeat(out, D), "factor": np.tile(names, P),
                        **{k: v.ravel() for k, v in full.items()}})
    if not second_order or not len(cols):
        return idx, None
    s1 = stats["S1"]
    s2 = _ratio(np.mean(parts[-1], axis=0), var) - s1[i] - s1[j]
    s2_b = _ratio(Fb[:, 2 * D + 2:], var_b) - s1_b[:, i] - s1_b[:, j]
    q = len(i)
    return idx, pd.DataFrame({"output": np.repeat(out[cols], q), "factor_i": np.tile(names[i], len(cols)),
                              "factor_j": np.tile(names[j], len(cols)), "S2": s2.T.ravel(),
                              "S2_conf": conf(s2_b).T.ravel()})


def _sobol_run(problem, func, n, seed, conf_level, second_order):
    if not (isinstance(n, (int, np.integer)) and n >= 2 and n & (n - 1) == 0):
        raise BranchsimError(f"n must be a power of two (Sobol' points are balanced only then); got {n!r}")
    s_sample, s_boot = _seed_ints(seed, 2)
    X = _saltelli(problem, int(n), second_order, s_sample)
    Y = _outputs_frame(func(X), len(X))
    return X, Y, s_boot, *_analyze_sobol(problem, Y, second_order, conf_level, s_boot)


def sobol_indices(problem: dict, func: Callable[[np.ndarray], ArrayLike], n: int = 1024, *, seed: Seed = 0, conf_level: float = 0.95,
                  second_order: bool = False) -> pd.DataFrame:
    """Sobol' first- and total-order indices of ``func`` over a SALib ``problem``.

    Saltelli sampling (``n (k + 2)`` runs; ``n (2k + 2)`` with
    ``second_order``) and SALib's estimators; ``*_conf`` are bootstrap
    half-widths at ``conf_level``. ``func`` maps samples ``(m, k)`` to
    ``(m,)``, ``(m, p)`` or a DataFrame of named outputs.

    Examples
    --------
    >>> prob = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]]}
    >>> s = sobol_indices(prob, lambda X: X[:, 0] + 0.1 * X[:, 1], n=512)
    >>> s.S1.round(1).tolist()
    [1.0, 0.0]
    """
    return _sobol_run(problem, func, n, seed, conf_level, second_order)[3]


@dataclass(frozen=True, repr=False)
class SensitivityResult:
    """Sobol' indices of the outputs, the samples behind them, and a convergence check."""

    indices: pd.DataFrame          # output, factor, S1, S1_conf, ST, ST_conf
    samples: pd.DataFrame          # factor values and outputs, in Saltelli order
    problem: dict
    outputs: tuple
    second_order: bool = False
    conf_level: float = 0.95
    boot_seed: int = 1
    s2: pd.DataFrame | None = None
    manifest: dict | None = None   # what produced it (branchsim.manifest): set by sobol()

    @property
    def n(self) -> int:
        k = self.problem["num_vars"]
        return len(self.samples) // ((2 * k + 2) if self.second_order else (k + 2))

    def convergence(self, ns: Iterable[int] | None = None) -> pd.DataFrame:
        """Indices from the first ``n`` base points for each ``n`` in ``ns`` (powers of two).

        A Saltelli design's first ``n`` base points are themselves a design,
        so no new model runs are needed: the indices should settle as ``n`` grows.
        """
        ns = [m for m in (2 ** np.arange(4, 30)) if m <= self.n][-4:] if ns is None else list(ns)
        bad = [m for m in ns if not (m >= 2 and m & (m - 1) == 0 and m <= self.n)]
        if bad:
            raise BranchsimError(f"convergence ns {bad}: each must be a power of two up to n={self.n}")
        k = self.problem["num_vars"]
        step = (2 * k + 2) if self.second_order else (k + 2)
        frames = [_analyze_sobol(self.problem, self.samples[list(self.outputs)].iloc[:m * step],
                                 self.second_order, self.conf_level, self.boot_seed)[0].assign(n=m)
                  for m in ns]
        out = pd.concat(frames, ignore_index=True)
        return out[["n"] + [c for c in out.columns if c != "n"]]

    def __repr__(self) -> str:
        return (f"SensitivityResult: Sobol' indices of {self.problem['num_vars']} factors on "
                f"{len(self.outputs)} outputs, n={self.n} ({len(self.samples):,} runs)\n"
                + self.indices.pivot(index="factor", columns="output", values="ST").round(3).to_string())

    def _repr_html_(self) -> str:
        st = self.indices.pivot(index="factor", columns="output", values="ST").round(3)
        return (f"<p><b>Total-order Sobol' indices</b> (n={self.n}, {len(self.samples):,} runs; "
                f"see <code>.indices</code> for S1 and confidence intervals)</p>" + st.to_html())


@recorded("sobol")
def sobol(pop: Population, policy: Policy, factors: pd.DataFrame | None = None, *, n: int = 256,
          outputs: Sequence[str] | None = None, seed: Seed = 0,
          conf_level: float = 0.95, second_order: bool = False, progress: bool = True,
          executor: Executor | None = None) -> SensitivityResult:
    """Sobol' indices of the outcome over weights, cut points and noise levels.

    Parameters
    ----------
    pop : Population
    policy : Policy
        The baseline (``changed`` / ``mean_abs_change`` are against its levels).
    factors : DataFrame, optional
        Default: :func:`default_factors` around the population's generator
        parameters (no noise factors for a loaded population).
    n : int
        Base samples, a power of two: ``n (k + 2)`` scenarios.
    outputs : sequence of str, optional
        Columns of :func:`evaluate_samples` to analyse (default:
        :func:`default_outputs`, from the scheme).

    Returns
    -------
    SensitivityResult
        ``.indices`` is tidy: ``output, factor, S1, S1_conf, ST, ST_conf``;
        ``.convergence(ns)`` re-estimates them on the first ``n`` base points.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> r = sobol(pop, p, default_factors(p, noise=False), n=32, outputs=("weak",), progress=False)
    >>> sorted(r.indices.columns)
    ['S1', 'S1_conf', 'ST', 'ST_conf', 'factor', 'output']
    """
    f = _factors_for(pop, policy, factors)
    outputs = _check_outputs(outputs, pop, policy, f)
    problem = factor_problem(f)
    frames = []

    def model(X):
        frames.append(evaluate_samples(pop, policy, factor_values(f, X), f, executor=executor,
                                       progress=progress, _checked=True))
        return frames[0][outputs]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, _, boot, idx, s2 = _sobol_run(problem, model, n, seed, conf_level, second_order)
    return SensitivityResult(idx, frames[0], problem, tuple(outputs), second_order, conf_level, boot, s2)


# -- Morris --------------------------------------------------------------------------
def morris_indices(problem: dict, func, trajectories: int = 20, *, levels: int = 4, seed=0,
                   conf_level: float = 0.95) -> pd.DataFrame:
    """Morris elementary effects of ``func``: ``mu, mu_star, mu_star_conf, sigma`` per output.

    Effects are on the normalised scale: ``mu_star`` is the output change
    for a move across a factor's whole range.

    Examples
    --------
    >>> prob = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 10]]}
    >>> morris_indices(prob, lambda X: 3 * X[:, 0], 10).mu_star.round(6).tolist()
    [3.0, 0.0]
    """
    from SALib.analyze import morris as ma
    from SALib.sample import morris as ms
    if not (isinstance(trajectories, (int, np.integer)) and trajectories >= 2
            and isinstance(levels, (int, np.integer)) and levels >= 2):
        raise BranchsimError(f"trajectories and levels must be whole numbers >= 2; got {trajectories!r}, "
                             f"{levels!r}")
    s_sample, s_boot = _seed_ints(seed, 2)
    X = ms.sample(problem, int(trajectories), num_levels=levels, seed=s_sample)
    Y = _outputs_frame(func(X), len(X))
    rows = []
    for out in Y.columns:
        S = ma.analyze(problem, X, Y[out].to_numpy(float), conf_level=conf_level, num_levels=levels,
                       seed=s_boot)
        rows.append(pd.DataFrame({"output": out, "factor": problem["names"],
                                  **{k: np.asarray(S[k], float) for k in ("mu", "mu_star", "mu_star_conf",
                                                                          "sigma")}}))
    return pd.concat(rows, ignore_index=True)


@recorded("morris")
def morris(pop: Population, policy: Policy, factors: pd.DataFrame | None = None, *, trajectories: int = 20,
           levels: int = 4, outputs: Sequence[str] | None = None, seed: Seed = 0, conf_level: float = 0.95, progress: bool = True,
           executor: Executor | None = None) -> pd.DataFrame:
    """Morris screening of the outcome: ``trajectories × (k + 1)`` scenarios.

    Returns a tidy frame ``output, factor, mu, mu_star, mu_star_conf, sigma``
    (see :func:`morris_indices`; factors as in :func:`sobol`).

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> pop = bs.generate(seed=0, n_branches=300, members=False)
    >>> m = morris(pop, p, default_factors(p, noise=False), trajectories=4, outputs=("weak",),
    ...            progress=False)
    >>> m.loc[m.factor == "line_weak", "mu_star"].item() > 0
    True
    """
    f = _factors_for(pop, policy, factors)
    outputs = _check_outputs(outputs, pop, policy, f)

    def model(X):
        return evaluate_samples(pop, policy, factor_values(f, X), f, executor=executor,
                                progress=progress, _checked=True)[outputs]

    return morris_indices(factor_problem(f), model, trajectories, levels=levels, seed=seed,
                          conf_level=conf_level)


# -- effective importance ------------------------------------------------------------
def main_effects(X: pd.DataFrame | ArrayLike, y: ArrayLike, bins: int = 20) -> pd.Series | np.ndarray:
    """Correlation ratios η² = Var(E[y | x_j]) / Var(y), one per column of ``X``.

    ``E[y | x_j]`` is estimated by the mean of ``y`` within quantile bins of
    ``x_j`` (equal values share a bin, so a discrete ``x_j`` with few values
    is conditioned on exactly). The estimator is biased up by about
    ``(bins - 1) / n`` (noise in the bin means) and down by the variation of
    ``E[y | x_j]`` within a bin (≈ ``1 / bins²`` of it for a linear effect).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20000, 2))
    >>> main_effects(X, X[:, 0] + X[:, 1]).round(1).tolist()
    [0.5, 0.5]
    """
    names = list(X.columns) if isinstance(X, pd.DataFrame) else None
    X, y = np.asarray(X, float), np.asarray(y, float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.shape != (len(X),) or len(X) < 2 * bins:
        raise BranchsimError(f"main_effects takes X (n, k) and y (n,) with n >= 2 × bins; got "
                             f"{X.shape}, {y.shape}, bins={bins}")
    vy = y.var()
    out = np.full(X.shape[1], np.nan)
    for j in range(X.shape[1]):     # a loop over factors
        x = X[:, j]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        b = np.searchsorted(edges, x, side="right")
        cnt = np.bincount(b)
        ok = cnt > 0
        means = np.bincount(b, weights=y)[ok] / cnt[ok]
        out[j] = np.sum(cnt[ok] * (means - y.mean()) ** 2) / (len(y) * vy) if vy > 0 else np.nan
    return pd.Series(out, index=names) if names else out


def effective_importance(pop: Population | None, policy: Policy, *, bins: int = 20,
                         cities: Cities | None = None) -> pd.DataFrame:
    """Nominal weight of each component beside its effective importance in this population.

    One row per component of the score (the dimensions and the survey, or
    the sheet and the survey): ``nominal_share`` (the policy's share);
    ``linear_share`` = Var(w_c x_c) / Σ Var(w_j x_j), what the share would
    mean if components were independent; ``covariance_share`` =
    Cov(w_c x_c, S) / Var(S), with S = Σ w_j x_j the score: the share of
    the score's variance the component carries once the covariances are
    counted, each pair's covariance split equally between its two
    components (the shares add up to 1 exactly, because Σ_c Cov(w_c x_c, S)
    = Var(S); a component negatively correlated with the rest can get less
    than its linear share, or below 0); ``correlation_rest``, the
    correlation of the component with the sum of the others (0 for all:
    ``covariance_share`` = ``linear_share``); ``main_effect_score`` and
    ``main_effect_level``, the correlation ratio of the score and of the level
    given the component (:func:`main_effects`: how much of the spread knowing
    it alone explains; components share the branch's quality, so these
    overlap and do not add up to 1); ``unique_score`` = 1 − R² of the score on
    the other components (what it adds once they are known).

    With ``cities`` (:func:`branchsim.plausible_cities`; ``pop`` None): each
    of these numbers per component with its mean and 5–95% interval across
    the plausible cities' populations
    (:func:`~branchsim.plausible.across_cities`: ``component``,
    ``quantity``, ``mean``, ``sd``, ``lower``, ``upper``, ``n_cities``).

    Examples
    --------
    >>> import branchsim as bs
    >>> pop = bs.generate(seed=0, n_branches=500, members=False)
    >>> e = effective_importance(pop, bs.Policy.load())
    >>> e.component.tolist()[-1], e.nominal_share.sum().round(6), e.covariance_share.sum().round(6)
    ('satisfaction', np.float64(1.0), np.float64(1.0))
    >>> c = bs.plausible_cities(bs.Policy.load(), {"weak": 4}, n=2, scale=200, seeds=range(2), refine=1, tol=2)
    >>> out = effective_importance(None, bs.Policy.load(), cities=c).set_index(["component", "quantity"])
    >>> int(out.loc[("satisfaction", "covariance_share"), "n_cities"])
    2

    The contributions ``w_c x_c`` are the component's points before the
    score's own caps, bonus and rounding (``S`` is their sum).
    """
    if cities is not None:
        from ..plausible import across_cities, check_cities
        check_cities(cities, pop, policy, "effective_importance")
        return across_cities(cities, effective_importance, policy, keys=["component"], bins=bins)
    prep = prepare(pop, policy)
    bs = policy.scheme.branch
    comp = prep.components
    contrib = 100.0 * comp * bs.weights[prep.type_idx]
    score = contrib.sum(axis=1)
    levels = prep.levels.astype(float)
    s = policy.get("branch.satisfaction_share", 0.0)
    if bs.form == "shares":
        nominal = [policy[f"branch.dimensions.{d}.share"] for d in bs.sheet.group_ids] + ([s] if bs.survey else [])
    else:
        nominal = [1 - s] + ([s] if bs.survey else [])
    var = contrib.var(axis=0)
    centred = contrib - contrib.mean(axis=0)
    dev = score - score.mean()
    covariance = centred.T @ dev / len(score) / score.var()          # Cov(w_c x_c, S) / Var(S)
    rest = dev[:, None] - centred
    with np.errstate(invalid="ignore", divide="ignore"):
        corr_rest = (centred * rest).mean(axis=0) / np.sqrt(var * rest.var(axis=0))
    unique = []
    for j in range(comp.shape[1]):      # a loop over components
        A = np.column_stack([np.ones(len(score)), np.delete(comp, j, axis=1)])
        resid = score - A @ np.linalg.lstsq(A, score, rcond=None)[0]
        unique.append(resid.var() / score.var())
    return pd.DataFrame({"component": list(prep.component_names), "nominal_share": nominal,
                         "linear_share": var / var.sum(), "covariance_share": covariance,
                         "correlation_rest": corr_rest,
                         "main_effect_score": main_effects(comp, score, bins),
                         "main_effect_level": main_effects(comp, levels, bins),
                         "unique_score": unique})
