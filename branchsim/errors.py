"""The package's own exception family.

Every error a user can act on derives from :class:`BranchsimError`, so a
notebook can catch them all with one ``except``. Messages name where the
problem is (file, column, rows, parameter path) and what is allowed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BranchsimError", "PolicyError", "DataError", "Problem"]


class BranchsimError(Exception):
    """Base class of every error raised by branchsim.

    Examples
    --------
    >>> import branchsim as bs
    >>> try:
    ...     bs.Policy.load().update({"branch.rating.cutz.top": 92})
    ... except bs.BranchsimError as err:
    ...     print(type(err).__name__, "|", str(err).split(";")[0])
    PolicyError | update: branch.rating.cutz.top: no such parameter or section (did you mean 'branch.rating.cuts'?)
    """


class Problem(str):
    """One defect in a list of defects (a plain string with a location)."""


class _ManyProblems(BranchsimError):
    """An error that reports every defect found, not only the first."""

    #: Longest text of one problem (and of ``where``) in the message; longer ones are cut.
    MAX_PROBLEM = 600
    #: Most problems listed in the message (all stay in ``problems``).
    MAX_LISTED = 25

    def __init__(self, problems: str | Iterable[str], *, where: str = "") -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = [_bounded(p, self.MAX_PROBLEM) for p in problems]
        self.where = _bounded(where, self.MAX_PROBLEM) if where else where
        head = f"{self.where}: " if self.where else ""
        if len(self.problems) == 1:
            msg = head + self.problems[0]
        else:
            listed = self.problems[: self.MAX_LISTED]
            more = len(self.problems) - len(listed)
            msg = head + f"{len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in listed
            ) + (f"\n  - ... and {more} more (see .problems)" if more else "")
        super().__init__(msg)


def _bounded(text: object, limit: int) -> str:
    """``text`` as a str of at most ``limit`` characters (a cut one ends with '...').

    >>> _bounded("x" * 10, 6)
    'xxx...'
    """
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."



class PolicyError(_ManyProblems, ValueError):
    """A policy file or a policy change is invalid.

    ``problems`` lists every defect; each names the parameter path and what
    is allowed.

    >>> import branchsim as bs
    >>> try:
    ...     bs.Policy.load().update({"branch.satisfaction_share": -5, "member.record_share": "high"})
    ... except bs.PolicyError as err:
    ...     print(len(err.problems))
    2
    """


class DataError(_ManyProblems, ValueError):
    """A population table is invalid.

    ``problems`` lists every defect; each names the file or table, the
    column, the rows and what is allowed.

    >>> import branchsim as bs, pandas as pd
    >>> b = pd.read_csv(bs.data_path("examples", "branches.csv"))
    >>> b.loc[2, "type"] = "temple"
    >>> try:
    ...     bs.load_population(branches=b)
    ... except bs.DataError as err:
    ...     print(err.problems[0].split(";")[0])
    branches, column 'type': unknown value(s) ['temple'] in row 3
    """
