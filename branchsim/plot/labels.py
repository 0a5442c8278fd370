"""Axis and legend wording: Chinese terms where the figure's font can draw them, English otherwise.

The rules being modelled are Chinese, and a researcher reading a figure
should see the original term (五星級, 軟弱渙散) beside its translation. A
figure must never show "tofu" boxes, so a label and the font that draws it
are chosen together. In the default mode (``branchsim.plot.use_cjk =
"auto"``) :func:`label` returns Chinese only when the fonts of the *current*
``rcParams`` (the ones a figure made now will draw with) have every glyph
this module can emit. Every plot function of the package runs under
:func:`branchsim.plot.style`, whose font list is DejaVu Sans followed by an
installed CJK font (:func:`cjk_font`), so its figures are Chinese with
English on a machine with such a font and English elsewhere; a figure of
your own made with plain ``rcParams`` gets English labels, and one made
inside ``with branchsim.plot.style():`` gets the package's choice.
``use_cjk = True`` forces Chinese (an error without a CJK font; draw such
labels inside ``style()``), ``False`` forces English (with a romanised term
where the English alone loses it).
"""
from __future__ import annotations

import sys
from functools import lru_cache

from ..errors import BranchsimError

__all__ = ["TERMS", "CJK_FAMILIES", "label", "cjk_font", "cjk_enabled", "font_families", "fonts_draw",
           "drawing_families"]

#: key -> (Chinese term or None, English, romanisation or None).
TERMS: dict[str, tuple[str | None, str, str | None]] = {
    "five_star": ("五星級", "five-star", None),
    "four_star": ("四星級", "four-star", None),
    "three_star": ("三星級", "three-star", None),
    "two_star": ("二星級", "two-star", None),
    "one_star": ("一星級", "one-star", None),
    "no_star": ("無星級", "no star", None),
    "weak": ("軟弱渙散", "weak", "ruanruo huansan"),
    "weak_line": ("軟弱渙散線", "weak line", None),
    "published": ("公布數", "published", None),
    "simulated": ("模擬", "simulated", None),
    "branches": ("支部數", "branches", None),
    "score": ("得分", "score", None),
    "stars": ("星級", "star level", None),
    "true_star": ("真實星級", "true star", None),
    "fragile": ("臨界支部", "fragile", None),
    "baseline": ("現行規則", "baseline", None),
    "reform": ("改革方案", "reform", None),
    "year": ("年度", "year", None),
    "probability": ("概率", "probability", None),
    "nominal_share": ("名義權重", "nominal weight", None),
    "organisation": ("組織建設", "organisation building", None),
    "institution": ("制度建設", "institution building", None),
    "activities": ("支部活動", "branch activities", None),
    "role": ("作用發揮", "role played", None),
    "satisfaction": ("滿意度測評", "satisfaction survey", None),
    "branch.satisfaction_share": ("滿意度占比", "satisfaction share", None),
    "satisfaction_share": ("滿意度占比", "satisfaction share", None),
    "branch.weak_below": ("軟弱渙散線", "weak line", None),
    "branch.star_cuts.5": ("五星級分數線", "five-star cut", None),
    "branch.star_cuts.4": ("四星級分數線", "four-star cut", None),
    "branch.star_cuts.3": ("三星級分數線", "three-star cut", None),
    "branch.star_cuts.2": ("二星級分數線", "two-star cut", None),
    "branch.star_cuts.1": ("一星級分數線", "one-star cut", None),
    # English-only terms: no published Chinese wording to quote.
    "changed": (None, "branches changing star", None),
    "mean_abs_change": (None, "mean |change| (stars)", None),
    "accuracy": (None, "accuracy (share at true star)", None),
    "linear_share": (None, "effective share (linear)", None),
    "main_effect_score": (None, "main effect on score (η²)", None),
    "main_effect_star": (None, "main effect on star (η²)", None),
    "unique_score": (None, "unique share of score", None),
    "S1": (None, "first-order S1", None),
    "ST": (None, "total-order ST", None),
    "share": (None, "share of branches", None),
    "share_fragile": (None, "share of branches within ±δ of a cut", None),
    "n": (None, "branches", None),
}

#: Font families known to cover the Traditional Chinese terms, in order of preference.
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


def _needed_glyphs() -> set[int]:
    return {ord(ch) for zh, _, _ in TERMS.values() if zh for ch in zh}


@lru_cache(maxsize=256)
def _charmap(path: str) -> frozenset[int]:
    from matplotlib import ft2font
    try:
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _covers(path: str, needed: set[int]) -> bool:
    return needed.issubset(_charmap(path))


@lru_cache(maxsize=1)
def _font_files() -> dict[str, list[str]]:
    """Installed family name (lower case) -> its font files, as matplotlib knows them."""
    from matplotlib import font_manager
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
def _families_cover(families: tuple[str, ...]) -> bool:
    files = _font_files()
    have: set[int] = set()
    for fam in families:
        for path in files.get(fam.lower(), ()):
            have |= _charmap(path)
    return _needed_glyphs().issubset(have)


def fonts_draw(families=None) -> bool:
    """Whether ``families`` (default: :func:`drawing_families` of the current ``rcParams``) draw every Chinese term.

    Matplotlib looks each glyph up in the families in turn, so the families
    together must hold every glyph; only installed fonts count.

    Examples
    --------
    >>> fonts_draw(["DejaVu Sans"])           # a Latin font: no Chinese glyphs
    False
    """
    fams = drawing_families() if families is None else tuple(families)
    return _families_cover(tuple(fams))


def _forget_fonts() -> None:
    """Drop the cached font look-ups (after fonts are installed or hidden in a session)."""
    for f in (cjk_font, _families_cover, _charmap, _font_files):
        f.cache_clear()


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font that draws every Chinese term, or None.

    Only the fonts matplotlib knows are looked at (``font_manager.fontManager``);
    the result is cached for the session.

    Examples
    --------
    >>> name = cjk_font()
    >>> name is None or isinstance(name, str)
    True
    """
    from matplotlib import font_manager
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
    """Whether :func:`label` gives Chinese with English now (``branchsim.plot.use_cjk``; see the module).

    In ``"auto"`` mode: whether the fonts of the current ``rcParams`` draw
    every Chinese term (inside :func:`branchsim.plot.style`, whether a CJK
    font is installed).

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


def label(key: str, *, wrap: bool = False) -> str:
    """The label of a term: ``"五星級 (five-star)"`` where the figure's fonts draw it, ``"five-star"`` otherwise.

    Which one depends on ``branchsim.plot.use_cjk`` and, in ``"auto"`` mode,
    on the fonts of the current ``rcParams`` (see :func:`cjk_enabled`), so a
    label is never drawn in a font that lacks its glyphs.

    Unknown keys (a factor or column name of the user's own) come back
    unchanged. ``wrap=True`` puts the bracketed part on a second line (for
    tick labels).

    Examples
    --------
    >>> import branchsim.plot as bp
    >>> bp.use_cjk = False
    >>> label("five_star"), label("weak"), label("my_column")
    ('five-star', 'weak (ruanruo huansan)', 'my_column')
    >>> bp.use_cjk = "auto"
    """
    term = TERMS.get(key)
    if term is None:
        return str(key)
    zh, en, roman = term
    if zh and cjk_enabled():
        text = f"{zh} ({en})"
    else:
        text = f"{en} ({roman})" if roman else en
    return text.replace(" (", "\n(", 1) if wrap else text
