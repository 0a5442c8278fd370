"""The package's own exception family.

Every error a user can act on derives from :class:`BranchsimError`, so a
notebook can catch them all with one ``except``. Messages name where the
problem is (file, column, rows, parameter path) and what is allowed.
"""
from __future__ import annotations

__all__ = ["BranchsimError", "PolicyError", "DataError", "Problem"]


class BranchsimError(Exception):
    """Base class of every error raised by branchsim."""


class Problem(str):
    """One defect in a list of defects (a plain string with a location)."""


class _ManyProblems(BranchsimError):
    """An error that reports every defect found, not only the first."""

    def __init__(self, problems, *, where: str = ""):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        self.where = where
        head = f"{where}: " if where else ""
        if len(self.problems) == 1:
            msg = head + self.problems[0]
        else:
            msg = head + f"{len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class PolicyError(_ManyProblems, ValueError):
    """A policy file or a policy change is invalid.

    ``problems`` lists every defect; each names the parameter path and what
    is allowed.
    """


class DataError(_ManyProblems, ValueError):
    """A population table is invalid.

    ``problems`` lists every defect; each names the file or table, the
    column, the rows and what is allowed.
    """
