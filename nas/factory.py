"""The one place where names in params become classes: strategies, evaluators, Dask pools."""

from __future__ import annotations

from nas.config import Config
from nas.evaluators.dask import DaskPool
from nas.genome import Genome
from nas.strategies import (AgingEvolutionStrategy, LocalSearchStrategy, MSuNASStrategy, NSGA2Strategy,
                            RandomStrategy, ThompsonStrategy)


def build_space(cfg: Config):
    if cfg.space.kind == "wann":  # inputs and outputs come from the task (the data or the environment)
        from nas.wann.select import task_and_space

        return task_and_space(cfg)[1]
    if cfg.space.kind in ("activation", "loss", "augmentation"):
        from nas.spaces.meta import from_config as meta_space

        return meta_space(cfg)
    if cfg.space.kind == "codeepneat" and cfg.space.multitask == "routing":
        from nas.spaces.multitask import RoutingSpace  # one topology per task: the prepared data says how many

        return RoutingSpace(cfg.space.codeepneat, len(prepared_tasks(cfg)), cfg.space.routing_channels)
    from nas.spaces.registry import from_config

    return from_config(cfg.space)


def prepared_tasks(cfg: Config) -> list[str]:
    """Task names of the prepared data (from its meta.json; one task for single-task data)."""
    import json
    from pathlib import Path

    meta = Path(cfg.data.out_dir) / "meta.json"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta}: no prepared data (run `evonas stage prepare` first)")
    return list(json.loads(meta.read_text()).get("tasks") or ["main"])


def build_strategy(cfg: Config, space, prior: list[tuple[Genome, dict[str, float]]] | None = None,
                   exact_costs=None):
    """``exact_costs(genome)``: the costs known without evaluation (the supernet's cost table), which
    surrogate-assisted strategies then compute instead of predicting."""
    s = cfg.search
    seed = cfg.search_seed()  # search.seed, else the run's seed
    if s.strategy == "random":
        return RandomStrategy(space, s.objectives, s.constraints, seed)
    if s.strategy == "codeepneat":
        from nas.strategies.codeepneat import CoDeepNEATStrategy

        return CoDeepNEATStrategy(space, s.objectives, s.constraints, seed, s.codeepneat, s.population)
    if s.strategy == "wann":
        from nas.strategies.wann import WANNStrategy

        w = s.wann
        return WANNStrategy(space, s.objectives, s.constraints, seed, w.conn_rank_prob, w.elite_ratio,
                            w.cull_ratio, w.tournament, w.mutations)
    if s.strategy == "cma":
        from nas.strategies.cma_es import CMAESStrategy

        return CMAESStrategy(space, s.objectives, s.constraints, seed, s.population, cfg.space.meta.loss_sigma)
    if s.strategy == "aging":
        return AgingEvolutionStrategy(space, s.objectives, s.constraints, seed, s.aging_population,
                                      s.aging_tournament, s.aging_crossover_prob, elitist=s.aging_elitist)
    if s.strategy == "reinforce":
        from nas.strategies.reinforce import ReinforceStrategy

        return ReinforceStrategy(space, s.objectives, s.constraints, seed, s.reinforce_lr,
                                 normalise=s.reinforce_normalise)
    if s.strategy == "local_search":
        return LocalSearchStrategy(space, s.objectives, s.constraints, seed)
    if s.strategy == "thompson":
        return ThompsonStrategy(space, s.objectives, s.constraints, seed, n_init=s.thompson_init,
                                prior_pair=s.thompson_interaction_prior, noise=s.thompson_noise,
                                primary_every=s.thompson_primary_every, primary_start=s.thompson_primary_start)
    if s.strategy == "nsga2":
        return NSGA2Strategy(space, s.objectives, s.constraints, s.population, seed,
                             steady_state=s.mode == "async")
    return MSuNASStrategy(space, s.objectives, s.constraints, seed, cfg.surrogate.models,
                          cfg.surrogate.ensemble_size, cfg.surrogate.cv_folds, s.surrogate_generations,
                          s.surrogate_population, prior,
                          refit_every=s.async_.surrogate_refit if s.mode == "async" else 0, exact_costs=exact_costs)


def build_evaluator(cfg: Config):
    ev = _build_evaluator(cfg)
    f = cfg.evaluation.faults
    if f.active:
        from nas.evaluators.faults import FaultInjectingEvaluator

        ev = FaultInjectingEvaluator(ev, f.error_rate, f.nan_rate, f.hang_rate, f.hang_seconds)
    return ev


def _build_evaluator(cfg: Config):
    from nas.backends import backend

    return backend(cfg).evaluator(cfg)


def build_pool(cfg: Config) -> DaskPool:
    from nas.backends import backend

    backend(cfg).check_pool(cfg)  # candidates side by side in one process only where that is safe
    e = cfg.evaluation
    return DaskPool(workers=e.workers, threads_per_worker=e.threads_per_worker, scheduler_address=e.scheduler_address,
                    timeout_s=e.timeout_s, cluster=e.cluster, slurm=e.slurm.model_dump(), log=_console,
                    adaptive=(e.adaptive.minimum, e.adaptive.maximum) if e.adaptive else None,
                    chunk_size=e.chunk_size, preload=backend(cfg).worker_modules)


def _console(msg: str) -> None:
    from nas.progress import console

    console.print(msg, highlight=False)
