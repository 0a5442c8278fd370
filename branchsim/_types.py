"""Type aliases of the public API (read by type checkers; nothing here is needed at run time).

Modules import these under ``if TYPE_CHECKING:`` so that ``import branchsim`` stays light.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = ["Seed", "PathLike", "PolicyLike", "TableLike"]

#: What a ``seed=`` accepts (:func:`branchsim.streams.as_seed_sequence`): an int, a SeedSequence, a Generator,
#: or None (fresh entropy).
Seed: TypeAlias = "int | np.integer | np.random.SeedSequence | np.random.Generator | None"
#: A file or folder path.
PathLike: TypeAlias = "str | os.PathLike[str]"
#: What a ``policy=`` accepts (:func:`branchsim.policy.as_policy`): a Policy, a policy file's path, or None
#: (the baseline policy).
PolicyLike: TypeAlias = "Policy | str | os.PathLike[str] | None"
#: A table as the loaders take it: a DataFrame, a list of row dicts, a dict of columns, or a file's path.
TableLike: TypeAlias = "pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any] | str | os.PathLike[str]"

from .policy import Policy  # noqa: E402  (for the alias above; this module is only imported by type checkers)
