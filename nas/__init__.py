"""evonas core library: search spaces, strategies, evaluators, supernet, surrogates, Pareto tools.

Importable and usable with neither Prefect nor Dask running.
"""

__version__ = "0.1.0"
