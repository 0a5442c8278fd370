"""Figures of branchsim results (matplotlib), one function per analysis.

Each function takes the result object or its tidy frame, draws on ``ax=``
(or ``fig=`` where it draws several panels) or on a new figure, and returns
the Axes or Figure. The package style is applied inside each call only;
global ``rcParams`` are left as they were.

Labels are Chinese with English (``五星級 (five-star)``) when the figure's
fonts draw every Chinese term, English otherwise; never missing-glyph boxes.
The package's figures use DejaVu Sans and an installed CJK font; for a
figure of your own, draw it inside ``with style():`` to get the same fonts
and labels (outside it, ``label()`` follows your ``rcParams``).
``use_cjk`` chooses: ``"auto"`` (default), ``True`` or ``False``.

Examples
--------
>>> import matplotlib; matplotlib.use("Agg")
>>> import branchsim as bs, branchsim.plot as bp
>>> bp.use_cjk = False
>>> bp.label("three_star")
'three-star'
>>> bp.use_cjk = "auto"
"""
from .dynamics import star_flows
from .gsa import nominal_vs_effective, sobol_indices
from .labels import cjk_enabled, cjk_font, font_families, label
from .outcomes import score_histogram, star_counts, star_probabilities
from .sensitivity import heatmap, sweep_lines, transitions
from .style import style

#: ``"auto"``: Chinese labels when the figure's fonts draw them; ``True``/``False`` force a mode.
use_cjk: bool | str = "auto"

__all__ = ["star_counts", "sweep_lines", "heatmap", "transitions", "score_histogram", "star_probabilities",
           "sobol_indices", "nominal_vs_effective", "star_flows", "label", "use_cjk", "cjk_font",
           "cjk_enabled", "font_families", "style"]
