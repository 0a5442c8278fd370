"""Monte Carlo on a researcher's own tables: the survey and the facts redrawn around what was observed.

Loaded tables carry no truth (no true quality, no generator): there is
nothing to redraw *from* but the observation itself. Each draw of
:func:`~branchsim.sensitivity.montecarlo.measurement_mc` on such tables

* redraws every branch's survey from its observed answer counts ``c``
  (Dirichlet-multinomial, the posterior predictive of a multinomial):
  answer shares ``p ~ Dirichlet(prior + c)``, then the same number of
  respondents ``sum(c)`` answer ``~ Multinomial(sum(c), p)``. The default
  prior, 0.5 per answer, is Jeffreys' (the reference prior of a
  multinomial); 0 is not allowed (a branch with an answer nobody gave
  could never give it);
* redraws the facts a declared *noise model* names (:func:`noise_model`);
  every other fact is held at its observed value. Without a noise model
  only the survey varies (a scheme without a survey then gives the
  observed level with probability 1: say how the facts are measured).

A noise model is a mapping (or a YAML file holding one) from a fact name,
or a kind of fact (``binary``, ``count``, ``share``, ``number``: the kind a
fact's rule form or declaration gives it), to a model:

=============  ===========  =====================================================
model          kinds        a redrawn value of an observed ``x``
=============  ===========  =====================================================
``fixed``      any          ``x`` (the default for every fact)
``flip``       binary       ``1 - x`` with probability ``p``, else ``x``
``poisson``    count        ``Poisson(x)``
``binomial``   count        ``Binomial(n, x / n)`` (``x <= n``)
``binomial``   share        ``Binomial(n, x) / n``
``normal``     share        ``clip(x + sd * N(0, 1), 0, 1)``
``normal``     number       ``x + sd * N(0, 1)``
=============  ===========  =====================================================

``n`` is a whole number or the name of a branch column holding one per
branch (e.g. ``n_members``: a share of the branch's members). A fact named
in the mapping takes its own model over its kind's. A kind's model does not
reach *state* facts (a vacant post, a major violation: what the branch is,
recorded without error in the generator's model); name such a fact to
redraw it. The mapping may also be given as ``{"facts": {...},
"survey_prior": 0.5}``, the form of a noise file.

Streams: the facts of draw ``d`` come from ``SeedSequence(entropy,
spawn_key=(*spawn_key, 14, d, 0))``, its survey from purpose 15, each over
the whole table in one go, so the numbers depend on the seed and the draw
only (not on ``batch`` or the executor).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BranchsimError, DataError
from ..scheme import RULE_CODES

__all__ = ["KINDS", "MODELS", "FactNoise", "fact_kinds", "noise_model", "prepare", "redraw_facts",
           "redraw_survey", "JEFFREYS"]

#: Kinds of fact a noise model may name.
KINDS = ("binary", "count", "share", "number")
#: Each model: (its parameter, the kinds it applies to).
MODELS = {"fixed": (None, KINDS), "flip": ("p", ("binary",)), "poisson": (None, ("count",)),
          "binomial": ("n", ("count", "share")), "normal": ("sd", ("share", "number"))}
#: Jeffreys' prior: 0.5 per answer.
JEFFREYS = 0.5
#: Purposes of the streams (the truth path's are 8-13).
FACTS, SURVEY = 14, 15

_RULE_KIND = {RULE_CODES["binary"]: "binary", RULE_CODES["zeroing"]: "binary", RULE_CODES["proportion"]: "share",
              RULE_CODES["rank"]: "number"}


@dataclass(frozen=True)
class FactNoise:
    """One fact's declared noise: ``model`` with its parameter ``value`` (``p``, ``n`` or ``sd``)."""

    fact: str
    kind: str
    model: str
    value: float | str | None = None


def fact_kinds(bs) -> dict[str, str]:
    """The kind of every fact of a branch scheme: from its rule form, or its declaration.

    >>> import branchsim as bs
    >>> kinds = fact_kinds(bs.Policy.load().scheme.branch)
    >>> sorted(set(kinds.values()))
    ['binary', 'count', 'share']
    """
    out = {}
    for j, f in enumerate(bs.sheet.facts):
        out[f] = _RULE_KIND.get(int(bs.sheet.kind[0, j]), "count")
    for f, entry in bs.fact_entries.items():
        out.setdefault(f, entry.get("kind", "number"))
    return out


def _read(noise) -> dict:
    if isinstance(noise, (str, Path)):
        import yaml
        path = Path(noise)
        if not path.is_file():
            raise BranchsimError(f"noise: {path}: no such file")
        try:
            noise = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise BranchsimError(f"noise: {path}: not YAML ({str(exc).splitlines()[0]})") from None
        if noise is None:
            noise = {}
    if not isinstance(noise, dict):
        raise BranchsimError(f"noise must be a mapping of facts or kinds to models, or a YAML file of one; "
                             f"got {type(noise).__name__}")
    return noise


def noise_model(noise, bs, columns, policy_name: str) -> tuple[list[FactNoise], float | None]:
    """The declared noise of every fact that varies, and the survey prior a noise file gives (or None).

    ``noise``: a mapping or a YAML path (see the module); ``columns``: the
    branch table's columns (where a binomial ``n`` may be read).

    >>> import branchsim as bs
    >>> b = bs.Policy.load().scheme.branch
    >>> got, prior = noise_model({"share": {"model": "binomial", "n": "n_members"}, "wechat_group": "fixed"},
    ...                          b, ["n_members"], "baseline")
    >>> got[0], prior
    (FactNoise(fact='mobile_registered_share', kind='share', model='binomial', value='n_members'), None)
    """
    doc = _read({} if noise is None else noise)
    prior = None
    if doc and set(doc) <= {"facts", "survey_prior"}:
        prior = doc.get("survey_prior")
        doc = doc.get("facts") or {}
        if not isinstance(doc, dict):
            raise BranchsimError(f"noise: facts must be a mapping of facts or kinds to models, got "
                                 f"{type(doc).__name__}")
    kinds = fact_kinds(bs)
    state = set(bs.state_facts)
    by_kind, by_fact = {}, {}
    for key, spec in doc.items():
        if key in kinds:
            by_fact[key] = _spec(key, spec, (kinds[key],), columns)
        elif key in KINDS:
            by_kind[key] = _spec(key, spec, (key,), columns)
        else:
            shown = ", ".join(list(kinds)[:6]) + (", …" if len(kinds) > 6 else "")
            raise BranchsimError(f"noise: {key!r} is neither a fact of policy {policy_name!r} nor a kind of "
                                 f"fact; allowed: {', '.join(KINDS)} or a fact ({shown})")
    out = []
    for f, kind in kinds.items():
        model, value = by_fact.get(f) or (("fixed", None) if f in state else by_kind.get(kind, ("fixed", None)))
        if model != "fixed":
            out.append(FactNoise(f, kind, model, value))
    return out, prior


def _spec(key: str, spec, kinds: tuple, columns) -> tuple[str, object]:
    """``(model, value)`` of one entry, checked: the model exists, fits the kind, has its parameter."""
    if isinstance(spec, str):
        spec = {"model": spec}
    if not isinstance(spec, dict) or "model" not in spec:
        raise BranchsimError(f"noise: {key}: a model is a name or a mapping with 'model' (one of "
                             f"{', '.join(MODELS)}), got {spec!r}")
    model = spec["model"]
    if not isinstance(model, str) or model not in MODELS:
        raise BranchsimError(f"noise: {key}: unknown model {model!r}; allowed: {', '.join(MODELS)}")
    param, fits = MODELS[model]
    if not set(kinds) & set(fits):
        raise BranchsimError(f"noise: {key}: model {model!r} applies to {' and '.join(fits)} facts, and "
                             f"{key!r} is {'a ' + kinds[0] + ' fact' if key not in KINDS else 'a kind of its own'}")
    extra = sorted(set(spec) - {"model", param})
    if extra:
        raise BranchsimError(f"noise: {key}: model {model!r} takes {repr(param) if param else 'no parameter'}, "
                             f"not {', '.join(map(repr, extra))}")
    if param is None:
        return model, None
    if param not in spec:
        raise BranchsimError(f"noise: {key}: model {model!r} needs {param!r}")
    v = spec[param]
    if param == "n":
        if isinstance(v, str):
            if v not in set(columns):
                raise BranchsimError(f"noise: {key}: n={v!r} is not a column of the branches table")
            return model, v
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise BranchsimError(f"noise: {key}: n must be a whole number >= 1 or a branch column, got {v!r}")
        return model, int(v)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) \
            or v < 0 or (param == "p" and v > 1):
        limits = "between 0 and 1" if param == "p" else ">= 0"
        raise BranchsimError(f"noise: {key}: {param} must be a number {limits}, got {v!r}")
    return model, float(v)


def _rows(mask: np.ndarray) -> str:
    """Rows as the table checks name them: 1-based data rows (the line after a CSV's header is row 1)."""
    from ..tables import _rows as table_rows
    return table_rows(mask)


def prepare(models: list[FactNoise], b) -> list[tuple]:
    """Per model: ``(fact, model, x, n, value)`` with the observed column ``x`` checked against the model."""
    out = []
    for m in models:
        x = b[m.fact].to_numpy(float)
        where = f"branches table, column {m.fact!r}"
        bad = ~np.isfinite(x)
        if bad.any():
            raise DataError(f"{where}: no value in {_rows(bad)}; noise model {m.model!r} needs one")
        n = None
        if m.model == "flip" and ((x != 0) & (x != 1)).any():
            raise DataError(f"{where}: not 0 or 1 in {_rows((x != 0) & (x != 1))}; model 'flip' "
                            f"flips a binary fact")
        if m.model == "poisson" and (x < 0).any():
            raise DataError(f"{where}: negative in {_rows(x < 0)}; model 'poisson' draws counts")
        if m.model == "binomial":
            if isinstance(m.value, str):
                import pandas as pd
                n = pd.to_numeric(b[m.value], errors="coerce").to_numpy(float)   # text: not a number
                bad = ~np.isfinite(n) | (n < 1) | (n != np.round(n))
                if bad.any():
                    raise DataError(f"branches table, column {m.value!r}: not a whole number >= 1 in "
                                    f"{_rows(bad)}, the n of fact {m.fact!r}'s binomial noise")
            else:
                n = np.full(len(x), float(m.value))
            share = x / n if m.kind == "count" else x
            bad = (share < 0) | (share > 1)
            if bad.any():
                what = "outside 0-1" if m.kind == "share" else "negative or above n"
                raise DataError(f"{where}: {what} in {_rows(bad)}; model 'binomial' needs "
                                f"{'a share' if m.kind == 'share' else 'a count of at most n'}")
            n = n.astype(np.int64)
        out.append((m.fact, m.model, x, n, m.value))
    return out


def redraw_facts(rng: np.random.Generator, prepared: list[tuple], kinds: dict) -> dict[str, np.ndarray]:
    """One draw of every fact a noise model names (in the model's order, one column at a time)."""
    out = {}
    for fact, model, x, n, value in prepared:
        if model == "flip":
            out[fact] = np.where(rng.random(len(x)) < value, 1.0 - x, x)
        elif model == "poisson":
            out[fact] = rng.poisson(x).astype(float)
        elif model == "binomial":
            share = kinds[fact] == "share"
            got = rng.binomial(n, x if share else x / n).astype(float)
            out[fact] = got / n if share else got
        else:                                          # normal
            got = x + value * rng.standard_normal(len(x))
            out[fact] = np.clip(got, 0.0, 1.0) if kinds[fact] == "share" else got
    return out


def redraw_survey(rng: np.random.Generator, counts: np.ndarray, prior: float) -> np.ndarray:
    """Answer counts ``(n, a)`` redrawn: shares from ``Dirichlet(prior + counts)``, the same respondents.

    >>> c = np.array([[20, 5, 0], [0, 0, 0]])
    >>> got = redraw_survey(np.random.default_rng(0), c, 0.5)
    >>> got.sum(axis=1).tolist()
    [25, 0]
    """
    g = rng.standard_gamma(prior + counts)
    total = counts.sum(axis=1)
    s = g.sum(axis=1, keepdims=True)
    p = np.divide(g, s, out=np.full_like(g, 1.0 / counts.shape[1]), where=s > 0)
    return rng.multinomial(total, p).astype(np.int64)
