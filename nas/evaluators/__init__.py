from nas.evaluators.base import Evaluator, LocalPool, evaluate

__all__ = ["Evaluator", "LocalPool", "evaluate"]
