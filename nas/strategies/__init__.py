"""Search strategies: each proposes via ``ask`` and learns via ``tell``; none evaluates.

The classes load on first use (PEP 562): importing one strategy's module, or ``nas.strategies.base``
as every stage does, does not import the others and what they need (scipy.stats, scikit-learn,
pymoo's optimiser: about 1.3 s per process on the 2-core reference machine).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULES = {"AgingEvolutionStrategy": "aging", "Archive": "base", "Strategy": "base",
            "LocalSearchStrategy": "local_search", "MSuNASStrategy": "msunas", "NSGA2Strategy": "nsga2",
            "RandomStrategy": "random_search", "ThompsonStrategy": "thompson"}

__all__ = sorted(_MODULES)

if TYPE_CHECKING:
    from nas.strategies.aging import AgingEvolutionStrategy
    from nas.strategies.base import Archive, Strategy
    from nas.strategies.local_search import LocalSearchStrategy
    from nas.strategies.msunas import MSuNASStrategy
    from nas.strategies.nsga2 import NSGA2Strategy
    from nas.strategies.random_search import RandomStrategy
    from nas.strategies.thompson import ThompsonStrategy


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'nas.strategies' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nas.strategies.{_MODULES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES))
