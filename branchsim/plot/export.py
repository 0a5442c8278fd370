"""A figure written for a paper in one call: any format matplotlib writes, at a chosen resolution."""
from __future__ import annotations

from typing import TYPE_CHECKING

import os
from pathlib import Path

from ..errors import BranchsimError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["save"]


def save(fig: Figure | SubFigure | Axes, path: str | os.PathLike[str], *, dpi: float = 300, format: str | None = None,
         transparent: bool = False) -> Path:
    """Write ``fig`` (a matplotlib Figure, or an Axes of one) to ``path`` at ``dpi``; returns the path.

    The format is ``format`` or the file's suffix (``.png``, ``.pdf``,
    ``.svg``, ``.eps``, ... whatever the figure's canvas writes); the figure
    is cropped to what it draws (``bbox_inches="tight"``). The file is
    written atomically: a failed write (a full disk) leaves no file behind
    and an existing one unchanged. A bad format, resolution or path is a
    :class:`~branchsim.BranchsimError` naming it.

    Examples
    --------
    >>> import tempfile, matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1])
    >>> save(fig, Path(tempfile.mkdtemp()) / "fig.pdf", dpi=600).read_bytes()[:4]
    b'%PDF'
    >>> plt.close(fig)
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure
    if isinstance(fig, Axes):
        fig = fig.figure
    if isinstance(fig, SubFigure):          # an Axes of a subfigure, or the subfigure: its whole figure is written
        fig = fig.figure
    if not isinstance(fig, Figure):
        raise BranchsimError(f"save takes a matplotlib Figure or Axes, got {type(fig).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise BranchsimError(f"save: the path must be a file name, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise BranchsimError(f"save {path}: is a folder; give a file name such as {path / 'figure.png'}")
    fmt = (format if format is not None else path.suffix[1:]).lower()
    allowed = sorted(fig.canvas.get_supported_filetypes())
    if fmt not in allowed:
        how = f"format={format!r}" if format is not None else f"the suffix of {path.name!r}"
        raise BranchsimError(f"save: {how} is not a format matplotlib writes; allowed: {', '.join(allowed)}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 1 <= dpi <= 10_000:
        raise BranchsimError(f"save: dpi must be a number from 1 to 10000, got {dpi!r}")
    if not Path(os.path.abspath(path)).parent.is_dir():
        raise BranchsimError(f"save {path}: the folder {path.parent} does not exist; create it first")
    from .._output import atomic_file
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, bbox_inches="tight", transparent=transparent)
    return path
