"""Axis and legend wording: the scheme's own terms where the figure's font can draw them, English otherwise.

The rules being modelled are written in their source's language, and a
researcher reading a figure should see the original term (the level's
``label`` in the policy file) beside its translation (its ``en``). Every name
of a scheme — levels, grades, designations, dimensions, consequences, branch
types, survey answers — comes from the policy (:func:`scheme_terms`); this
module holds only the scheme-free vocabulary of the figures (:data:`TERMS`:
score, year, published, ...).

A figure must never show "tofu" boxes, so a label and the font that draws it
are chosen together. In the default mode (``branchsim.plot.use_cjk =
"auto"``) :func:`label` returns the source's term only when the fonts of the
*current* ``rcParams`` (the ones a figure made now will draw with) have every
glyph of it. Every plot function of the package runs under
:func:`branchsim.plot.style`, whose font list is DejaVu Sans followed by an
installed CJK font (:func:`cjk_font`), so its figures show ``五星級 (five-star)``
on a machine with such a font and ``five-star`` elsewhere; a figure of your
own made with plain ``rcParams`` gets English labels, and one made inside
``with branchsim.plot.style():`` gets the package's choice. ``use_cjk = True``
forces the source's terms (an error without a CJK font), ``False`` forces
English.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import re
import sys
from functools import lru_cache

from ..errors import BranchsimError

if TYPE_CHECKING:
    from .._types import PathLike, PolicyLike, Seed

__all__ = ["TERMS", "CJK_FAMILIES", "PIP_FONT_PACKAGES", "label", "term", "scheme_terms", "cjk_font", "pip_fonts",
           "cjk_enabled", "font_families",
           "fonts_draw", "drawing_families", "LABEL_MODES", "use_labels", "labels_mode", "check_labels"]

#: The figures' own vocabulary, free of any scheme: key -> (Chinese term or None, English).
TERMS: dict[str, tuple[str | None, str]] = {
    "published": ("公布數", "published"),
    "simulated": ("模擬", "simulated"),
    "branches": ("支部數", "branches"),
    "members": ("黨員數", "members"),
    "score": ("得分", "score"),
    "level": ("等次", "level"),
    "true_level": ("真實等次", "true level"),
    "fragile": ("臨界支部", "fragile"),
    "baseline": ("現行規則", "baseline"),
    "reform": ("改革方案", "reform"),
    "year": ("年度", "year"),
    "probability": ("概率", "probability"),
    "nominal_share": ("名義權重", "nominal weight"),
    "satisfaction": ("測評", "survey"),                 # the survey component of every scheme
    "sheet": ("積分", "points sheet"),                  # the sheet component of a points-form score
    "branch.satisfaction_share": ("測評占比", "survey share"),
    "satisfaction_share": ("測評占比", "survey share"),
    "cut": ("分數線", "cut"),
    "quota": ("比例", "quota"),
    # English-only terms: no Chinese wording to quote.
    "changed": (None, "branches changing level"),
    "mean_abs_change": (None, "mean |change| (levels)"),
    "accuracy": (None, "accuracy (share at the true level)"),
    "linear_share": (None, "effective share (linear)"),
    "covariance_share": (None, "effective share (covariance)"),
    "main_effect_score": (None, "main effect on score (η²)"),
    "main_effect_star": (None, "main effect on level (η²)"),
    "main_effect_level": (None, "main effect on level (η²)"),
    "unique_score": (None, "unique share of score"),
    "S1": (None, "first-order S1"),
    "ST": (None, "total-order ST"),
    "share": (None, "share of branches"),
    "share_fragile": (None, "share of branches within ±δ of a cut"),
    "n": (None, "branches"),
}

#: Font families known to cover Chinese text, in order of preference.
CJK_FAMILIES = (
    "Noto Sans CJK TC", "Noto Sans CJK HK", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK KR",
    "Noto Sans TC", "Noto Sans SC", "Source Han Sans TC", "Source Han Sans TW", "Source Han Sans SC",
    "Source Han Sans CN", "Source Han Sans", "Noto Serif CJK TC", "Noto Serif CJK SC",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Microsoft JhengHei", "Microsoft YaHei",
    "PingFang TC", "PingFang SC", "PingFang HK", "Heiti TC", "Heiti SC", "Hiragino Sans GB",
    "SimHei", "AR PL UMing TW", "AR PL UMing CN", "AR PL UMing HK", "AR PL UKai TW", "AR PL UKai CN",
    "Droid Sans Fallback", "Sarasa Gothic TC", "Sarasa Gothic SC",
)
_LATIN = "DejaVu Sans"          # ships with matplotlib: every English label has its glyphs
_WIDE = re.compile("[^\x00-\u024f\u2000-\u206f\u2190-\u22ff]")     # beyond Latin, punctuation and maths
_PAIR = re.compile(r"^(?P<head>.*?)\s*\((?P<tail>[^()]*)\)\s*$", re.S)


def _needed_glyphs() -> set[int]:
    """The glyphs of the figures' own Chinese terms: what a CJK font must draw to be chosen."""
    return {ord(ch) for zh, _ in TERMS.values() if zh for ch in zh}


# -- a scheme's terms ----------------------------------------------------------------------------
def _pair(text, en=None) -> tuple[str | None, str | None]:
    """``(source term, English)`` of a label: ``en`` when the file gives one, else ``"中文 (English)"`` split.

    >>> _pair("組織建設 (organisation building)")
    ('組織建設', 'organisation building')
    >>> _pair("五星級", "five-star"), _pair("advanced")
    (('五星級', 'five-star'), (None, 'advanced'))
    """
    text = None if text is None else str(text)
    if en is not None and str(en) != text:
        return text, str(en)
    if text is None:
        return None, None
    m = _PAIR.match(text)
    if m and _WIDE.search(m["head"]) and not _WIDE.search(m["tail"]):
        return m["head"], m["tail"]
    return (text, None) if _WIDE.search(text) else (None, text)


def _entries(section, *keys) -> dict:
    node = section
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def scheme_terms(policy: PolicyLike) -> dict[str, tuple[str | None, str | None]]:
    """Every name of a policy's scheme with its ``(source term, English)``, read from the policy file.

    Keys are the ids of the branch levels, member grades, designations,
    dimensions and member groups, consequences, interventions, branch types,
    member classes, indicators, vetoes, survey answers and structure levels;
    where two kinds share an id the level wins (then grade, designation, ...).
    Each is also kept as ``"<kind>:<id>"`` (``type:village``), for a caller
    that knows which kind it names.

    Examples
    --------
    >>> import branchsim as bs
    >>> p = bs.Policy.load()
    >>> t = scheme_terms(p)
    >>> t[p.levels[0]] == (p.scheme.branch.levels.labels[0], p.scheme.branch.levels.en[0])
    True
    >>> t["type:" + p.branch_types[0]] == t[p.branch_types[0]]
    True
    """
    data = policy._data
    br, mb = data.get("branch") or {}, data.get("member") or {}
    out: dict[str, tuple[str | None, str | None]] = {}

    def add(kind: str, entries: dict, labels: dict | None = None):
        for key, e in entries.items():
            e = e if isinstance(e, dict) else {}
            text = (labels or {}).get(key, e.get("label"))
            if text is None and f"{kind}:{key}" in out:
                continue                               # a member type without a label keeps the branch type's
            out[f"{kind}:{key}"] = out[str(key)] = _pair(key if text is None else text, e.get("en"))

    for section in (br, mb):
        add("type", _entries(section, "types"))
        add("indicator", _entries(section, "indicators"))
        add("veto", _entries(section, "vetoes"))
    add("class", _entries(mb, "classes"))
    add("group", _entries(mb, "groups"))
    add("dimension", _entries(br, "dimensions"))
    add("answer", {a: {} for a in _entries(br, "survey", "answer_values")}, _entries(br, "survey", "answer_labels"))
    add("structure", _entries(data, "structure", "levels"))
    add("intervention", _entries(data, "interventions"))
    add("consequence", _entries(data, "consequences"))
    add("designation", _entries(br, "designations"))
    add("grade", _entries(mb, "grades"))
    add("level", _entries(br, "levels"))
    return out


_TERMS_CACHE: dict[int, tuple[object, dict]] = {}


def _terms_of(policy) -> dict:
    if policy is None:
        return {}
    if isinstance(policy, dict):
        return policy
    hit = _TERMS_CACHE.get(id(policy))
    if hit is None or hit[0] is not policy:
        if len(_TERMS_CACHE) > 64:
            _TERMS_CACHE.clear()
        hit = _TERMS_CACHE[id(policy)] = (policy, scheme_terms(policy))   # the policy kept: its id stays its own
    return hit[1]


def term(key: object, policy: PolicyLike = None, kind: str | None = None) -> tuple[str | None, str | None]:
    """``(source term, English)`` of ``key``: the scheme's term (of ``kind``, if given), a path's, or a figure term."""
    key = str(key)
    terms = _terms_of(policy)
    if kind is not None and f"{kind}:{key}" in terms:
        return terms[f"{kind}:{key}"]
    if key in terms:
        return terms[key]
    if key in TERMS:
        return TERMS[key]
    parts = key.split(".")
    if len(parts) >= 3 and parts[-2] in ("cuts", "quotas") and parts[-1] in terms:
        zh, en = terms[parts[-1]]
        what = TERMS["cut" if parts[-2] == "cuts" else "quota"]
        return (f"{zh}{what[0]}" if zh else None), f"{en or parts[-1]} {what[1]}"
    return None, None


# -- fonts ---------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _charmap(path: str) -> frozenset[int]:
    from matplotlib import ft2font
    try:
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _covers(path: str, needed: set[int]) -> bool:
    return needed.issubset(_charmap(path))


#: Packages that pip installs with a CJK font file in them (a dependency of branchsim: Noto Sans CJK TC,
#: SIL Open Font License), so the figures draw Chinese on a machine with nothing but pip.
PIP_FONT_PACKAGES = ("cvttf_NotoSansCJK_Regular",)


@lru_cache(maxsize=1)
def pip_fonts() -> tuple[str, ...]:
    """Font files of :data:`PIP_FONT_PACKAGES` that are installed, added to matplotlib's font list.

    Added with ``font_manager.fontManager.addfont`` in this process: no font
    cache is read or written, so no cache ever needs clearing by hand.

    Examples
    --------
    >>> all(p.endswith((".otf", ".ttf", ".ttc")) for p in pip_fonts())
    True
    """
    import importlib.util
    from pathlib import Path

    from matplotlib import font_manager
    known = {e.fname for e in font_manager.fontManager.ttflist}
    out = []
    for name in PIP_FONT_PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or ()) if spec is not None else ():
            for path in sorted(Path(folder).iterdir()):
                if path.suffix.lower() in (".otf", ".ttf", ".ttc"):
                    if str(path) not in known:
                        font_manager.fontManager.addfont(str(path))
                    out.append(str(path))
    return tuple(out)


@lru_cache(maxsize=1)
def _font_files() -> dict[str, list[str]]:
    """Installed family name (lower case) -> its font files, as matplotlib knows them."""
    from matplotlib import font_manager
    pip_fonts()
    files: dict[str, list[str]] = {}
    for entry in font_manager.fontManager.ttflist:
        files.setdefault(entry.name.lower(), []).append(entry.fname)
    return files


_GENERIC = ("sans-serif", "serif", "monospace", "cursive", "fantasy")


def drawing_families(rc=None) -> tuple[str, ...]:
    """The font families text drawn under ``rc`` (default: the current ``rcParams``) looks glyphs up in.

    Matplotlib falls back glyph by glyph through the families listed in
    ``font.family``; a generic name there (``"sans-serif"``) stands for one
    font only, the first installed family of its ``rcParams`` list. So
    ``font.family = "sans-serif"`` draws with DejaVu Sans alone, however many
    CJK fonts ``font.sans-serif`` names after it.

    Examples
    --------
    >>> drawing_families({"font.family": ["sans-serif"], "font.sans-serif": ["No Such Font", "DejaVu Sans", "Arial"]})
    ('DejaVu Sans',)
    >>> drawing_families({"font.family": ["DejaVu Sans", "Noto Sans CJK TC"]})
    ('DejaVu Sans', 'Noto Sans CJK TC')
    """
    import matplotlib
    rc = matplotlib.rcParams if rc is None else rc
    fams = rc["font.family"]
    fams = [fams] if isinstance(fams, str) else list(fams)
    installed = _font_files()
    out: list[str] = []
    for f in fams:
        if f.lower() in _GENERIC:
            f = next((n for n in rc[f"font.{f.lower()}"] if n.lower() in installed), _LATIN)
        out.append(f)
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=64)
def _glyphs_of(families: tuple[str, ...]) -> frozenset[int]:
    files = _font_files()
    have: set[int] = set()
    for fam in families:
        for path in files.get(fam.lower(), ()):
            have |= _charmap(path)
    return frozenset(have)


def fonts_draw(families=None, text: str | None = None) -> bool:
    """Whether ``families`` (default: the current ``rcParams``') draw ``text`` (default: the figures' Chinese terms).

    Matplotlib looks each glyph up in the families in turn, so the families
    together must hold every glyph; only installed fonts count.

    Examples
    --------
    >>> fonts_draw(["DejaVu Sans"])           # a Latin font: no Chinese glyphs
    False
    >>> fonts_draw(["DejaVu Sans"], "five-star")
    True
    """
    fams = drawing_families() if families is None else tuple(families)
    needed = _needed_glyphs() if text is None else {ord(ch) for ch in text if not ch.isspace()}
    return needed.issubset(_glyphs_of(tuple(fams)))


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font that draws the figures' Chinese terms, or None.

    Only the fonts matplotlib knows are looked at (``font_manager.fontManager``);
    the result is cached for the session.

    Examples
    --------
    >>> name = cjk_font()
    >>> name is None or isinstance(name, str)
    True
    """
    from matplotlib import font_manager
    pip_fonts()
    paths: dict[str, list[str]] = {}
    for entry in font_manager.fontManager.ttflist:
        paths.setdefault(entry.name, []).append(entry.fname)
    needed = _needed_glyphs()
    others = sorted(n for n in paths if n not in CJK_FAMILIES and ("CJK" in n or "Han Sans" in n))
    for name in (*CJK_FAMILIES, *others):
        if any(_covers(p, needed) for p in sorted(paths.get(name, ()))):
            return name
    return None


def _mode():
    pkg = sys.modules.get(__package__)
    return getattr(pkg, "use_cjk", "auto")


def cjk_enabled() -> bool:
    """Whether :func:`label` gives the source's terms with English now (``branchsim.plot.use_cjk``; see the module).

    In ``"auto"`` mode: whether the fonts of the current ``rcParams`` draw
    the figures' Chinese terms (inside :func:`branchsim.plot.style`, whether
    a CJK font is installed).

    >>> isinstance(cjk_enabled(), bool)
    True
    """
    mode = _mode()
    if mode is None or (isinstance(mode, str) and mode == "auto"):
        return fonts_draw()
    if not isinstance(mode, (bool, int)) or mode not in (True, False):
        raise BranchsimError(f"branchsim.plot.use_cjk = {mode!r}; allowed: 'auto', True or False")
    if mode and cjk_font() is None:
        raise BranchsimError("branchsim.plot.use_cjk is True but no installed font draws the Chinese terms "
                             f"(looked for {', '.join(CJK_FAMILIES[:6])}, ...); install one (e.g. Debian's "
                             "fonts-noto-cjk or fonts-wqy-microhei) or set use_cjk = 'auto' or False")
    return bool(mode)


def font_families() -> list[str]:
    """Font families for a figure: DejaVu Sans for Latin text, then a CJK font if installed.

    The CJK font is a per-glyph fallback even in English mode, so Chinese text
    in a user's own data (a branch type, say) still renders.
    """
    cjk = cjk_font()
    return [_LATIN] + ([cjk] if cjk else [])


def label(key: object, policy: PolicyLike = None, *, wrap: bool = False, kind: str | None = None) -> str:
    """The label of a term: ``"五星級 (five-star)"`` where the figure's fonts draw it, ``"five-star"`` otherwise.

    Parameters
    ----------
    key : str
        A name of the policy's scheme (a level, grade, designation,
        dimension, consequence, type or answer id; a cut or quota path such
        as ``branch.rating.cuts.<level>``) or one of the figures' own terms
        (:data:`TERMS`). Unknown keys (a column of the user's own) come back
        unchanged.
    policy : Policy, optional
        Where the scheme's terms come from (:func:`scheme_terms`).
    wrap : bool
        Put the bracketed English on a second line (for tick labels).
    kind : str, optional
        Which kind of name ``key`` is (``"type"``, ``"level"``, ...), where
        ids of two kinds coincide (see :func:`scheme_terms`).

    Which wording depends on ``branchsim.plot.use_cjk`` and, in ``"auto"``
    mode, on the fonts of the current ``rcParams`` (see :func:`cjk_enabled`):
    the source's term is shown only when those fonts draw every glyph of it.
    A term the file gives no English for falls back to its id.

    Examples
    --------
    >>> import branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> bp.use_cjk = False
    >>> label(p.levels[0], p) == p.scheme.branch.levels.en[0]
    True
    >>> label("score"), label("my_column")
    ('score', 'my_column')
    >>> bp.use_cjk = "auto"
    """
    zh, en = term(key, policy, kind)
    if zh is None and en is None:
        return str(key)
    text = None
    if zh and cjk_enabled():
        fams = drawing_families() if _mode() == "auto" or _mode() is None else tuple(font_families())
        if fonts_draw(fams, zh):
            text = f"{zh} ({en})" if en else zh
    if text is None:
        text = en or str(key)
    return text.replace(" (", "\n(", 1) if wrap else text


#: The wordings of :func:`use_labels` and ``write_report(labels=)``, as values of ``branchsim.plot.use_cjk``.
LABEL_MODES = {"en": False, "zh": True, "auto": "auto"}


def labels_mode() -> str:
    """The wording in force now, as a :data:`LABEL_MODES` key (``"en"``, ``"zh"`` or ``"auto"``)."""
    mode = _mode()
    return "auto" if mode is None or (isinstance(mode, str) and mode == "auto") else "zh" if mode else "en"


def check_labels(labels: object, what: str = "labels") -> str:
    """``labels`` if it is one of :data:`LABEL_MODES`, else one clear error."""
    if not isinstance(labels, str) or labels not in LABEL_MODES:
        raise BranchsimError(f"{what} must be one of {', '.join(map(repr, LABEL_MODES))} (English; the source's "
                             f"terms with English; the source's terms where the fonts draw them), got {labels!r}")
    return labels


class use_labels:
    """Figures (and reports) drawn inside ``with use_labels("en"):`` label in English; ``"zh"``: the source's terms
    with English (``五星級 (five-star)``); ``"auto"``: the source's terms where the fonts draw them.

    Sets ``branchsim.plot.use_cjk`` for the block and restores it after. Called without ``with``, it sets the
    wording until changed.

    Examples
    --------
    >>> import branchsim as bs, branchsim.plot as bp
    >>> p = bs.Policy.load()
    >>> with bp.use_labels("en"):
    ...     bp.label(p.levels[0], p) == p.scheme.branch.levels.en[0]
    True
    >>> bp.use_labels("fr")
    Traceback (most recent call last):
    ...
    branchsim.errors.BranchsimError: labels must be one of 'en', 'zh', 'auto' (English; the source's terms with English; the source's terms where the fonts draw them), got 'fr'
    """

    def __init__(self, labels: str) -> None:
        pkg = sys.modules[__package__]
        value = LABEL_MODES[check_labels(labels)]
        self._before = getattr(pkg, "use_cjk", "auto")
        setattr(pkg, "use_cjk", value)

    def __enter__(self) -> "use_labels":
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(sys.modules[__package__], "use_cjk", self._before)
