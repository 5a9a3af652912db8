"""The one place where names in params become classes: strategies, evaluators, Dask pools."""

from __future__ import annotations

from nas.config import Config
from nas.evaluators.dask import DaskPool
from nas.evaluators.inherited import InheritedEvaluator
from nas.genome import Genome
from nas.spaces.elastic import ElasticSpace
from nas.strategies import MSuNASStrategy, NSGA2Strategy, RandomStrategy


def build_space(cfg: Config) -> ElasticSpace:
    return ElasticSpace(cfg.space)


def build_strategy(cfg: Config, space, prior: list[tuple[Genome, dict[str, float]]] | None = None):
    s = cfg.search
    if s.strategy == "random":
        return RandomStrategy(space, s.objectives, s.constraints, cfg.seed)
    if s.strategy == "nsga2":
        return NSGA2Strategy(space, s.objectives, s.constraints, s.population, cfg.seed)
    return MSuNASStrategy(space, s.objectives, s.constraints, cfg.seed, cfg.surrogate.models,
                          cfg.surrogate.ensemble_size, cfg.surrogate.cv_folds, s.surrogate_generations,
                          s.surrogate_population, prior)


def build_evaluator(cfg: Config) -> InheritedEvaluator:
    e = cfg.evaluation
    return InheritedEvaluator(supernet_dir=cfg.supernet.out_dir, data_dir=cfg.data.out_dir, base_seed=cfg.seed,
                              bn_batches=e.bn_batches, batch_size=e.batch_size, latency_repeats=e.latency_repeats,
                              latency_warmup=e.latency_warmup, device=e.device, threads=e.threads_per_worker)


def build_pool(cfg: Config) -> DaskPool:
    e = cfg.evaluation
    return DaskPool(workers=e.workers, threads_per_worker=e.threads_per_worker, scheduler_address=e.scheduler_address)
