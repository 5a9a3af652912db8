"""Search strategies: each proposes via ``ask`` and learns via ``tell``; none evaluates."""

from nas.strategies.aging import AgingEvolutionStrategy
from nas.strategies.base import Archive, Strategy
from nas.strategies.local_search import LocalSearchStrategy
from nas.strategies.msunas import MSuNASStrategy
from nas.strategies.nsga2 import NSGA2Strategy
from nas.strategies.random_search import RandomStrategy
from nas.strategies.thompson import ThompsonStrategy

__all__ = ["AgingEvolutionStrategy", "Archive", "LocalSearchStrategy", "Strategy", "MSuNASStrategy", "NSGA2Strategy", "RandomStrategy", "ThompsonStrategy"]
