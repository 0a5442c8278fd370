"""Figures of branchsim results (matplotlib), one function per analysis.

Each function takes the result object or its tidy frame, draws on ``ax=``
(or ``fig=`` where it draws several panels) or on a new figure, and returns
the Axes or Figure. The package style is applied inside each call only;
global ``rcParams`` are left as they were.

Names and colours come from the scheme (``policy.scheme``): levels in their
order, best first, coloured on one sequential scale with the floor grey;
designations red. A result carries its policy; a plain frame takes
``policy=``. Labels are the source's term with English (``五星級 (five-star)``)
when the figure's fonts draw it, English otherwise; never missing-glyph
boxes. The package's figures use DejaVu Sans and an installed CJK font; for
a figure of your own, draw it inside ``with style():`` to get the same fonts
and labels (outside it, ``label()`` follows your ``rcParams``).
``use_cjk`` chooses: ``"auto"`` (default), ``True`` or ``False``; ``with use_labels("en"):`` (or ``"zh"``,
``"auto"``) sets it for a block, and ``write_report(labels="en")`` / ``branchsim report --labels en`` for a report.

Examples
--------
>>> import matplotlib; matplotlib.use("Agg")
>>> import branchsim as bs, branchsim.plot as bp
>>> p = bs.Policy.load(bs.data_path("policies", "star_quota.yaml"))
>>> bp.use_cjk = False
>>> bp.label(p.levels[-1], p) == p.scheme.branch.levels.en[-1]
True
>>> bp.use_cjk = "auto"
"""
from .analyses import cut_point_fit, fragility_curve, member_schemes, morris, prim_boxes, rule_accuracy
from .audit import counterfactual_distances, design_comparison
from .dynamics import level_flows, star_flows
from .exact import exact_sweep
from .export import save
from .gsa import nominal_vs_effective, sobol_indices
from .labels import cjk_enabled, cjk_font, font_families, label, scheme_terms, use_labels
from .outcomes import level_counts, level_probabilities, score_histogram, star_counts, star_probabilities
from .schemes import scheme_grid
from .sensitivity import heatmap, sweep_lines, transitions
from .style import colour, level_colours, style

#: ``"auto"``: the source's terms when the figure's fonts draw them; ``True``/``False`` force a mode.
use_cjk: bool | str = "auto"

__all__ = ["save", "level_counts", "star_counts", "sweep_lines", "heatmap", "transitions", "score_histogram",
           "level_probabilities", "star_probabilities", "sobol_indices", "nominal_vs_effective", "level_flows",
           "star_flows", "scheme_grid", "exact_sweep", "label", "scheme_terms", "use_cjk", "cjk_font", "cjk_enabled",
           "font_families", "style", "colour", "level_colours", "counterfactual_distances",
           "design_comparison", "morris", "prim_boxes", "fragility_curve", "cut_point_fit", "member_schemes",
           "rule_accuracy", "use_labels"]
