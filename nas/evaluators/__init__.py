from nas.evaluators.base import Evaluator, evaluate

__all__ = ["Evaluator", "evaluate"]
