"""What a weight-agnostic network is scored on: a task turns a network and a batch of weight rows
into one performance per row.

- :class:`ClassifyTask`: the prepared data (any ``data.kind`` of one task, images flattened);
  performance = accuracy (or the mean log-likelihood of the true class), every weight row and
  every image in one batched pass.
- :class:`SwingUpTask`: CartPole swing-up (:mod:`nas.wann.swingup`), every weight row and every
  rollout stepped together; performance = mean return over the rollouts.
- :class:`GymTask`: any gymnasium environment with Box observations and actions (BipedalWalker-v3),
  one environment per (weight row, rollout), the network evaluated once per step for all of them.

Rollout seeds come from the candidate's seed (base seed and genome key), so a score does not
depend on the worker. :func:`make_task` builds the configured task and checks it before a search
starts (an unknown environment id is a clear error).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from nas.wann.network import Plan, forward_numpy


class TaskError(ValueError):
    """A WANN task that cannot be used (unknown environment, wrong spaces, no data)."""


def _seeds(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


@dataclass(frozen=True)
class ClassifyTask:
    data_dir: str
    fitness_samples: int | None = None
    score: str = "accuracy"  # or "log_likelihood" (evaluation.wann.classify_score)
    kind = "classify"

    @functools.cached_property
    def data(self):
        from nas.data import load_prepared

        d = load_prepared(self.data_dir)
        if d.is_multitask:
            raise TaskError("a WANN classifies one task; the prepared data holds several")
        return d

    @property
    def n_in(self) -> int:
        return int(np.prod(self.data.x_train.shape[1:]))

    @property
    def n_out(self) -> int:
        return int(self.data.num_classes)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        x, y = getattr(d, f"x_{name}"), getattr(d, f"y_{name}")
        return x.reshape(len(x), -1).astype(np.float64), y

    @functools.cached_property
    def _fitness_data(self):
        x, y = self.split("train")
        if self.fitness_samples and self.fitness_samples < len(x):
            idx = np.sort(np.random.default_rng(0).choice(len(x), self.fitness_samples, replace=False))
            x, y = x[idx], y[idx]
        return x, y

    def performance(self, plan: Plan, weights: np.ndarray, seed: int) -> np.ndarray:
        """Accuracy (or mean log-likelihood, as ``score`` says) on the (fixed) fitness images of
        the training split, one per weight row."""
        return self.scores(plan, weights, seed)[0]

    def scores(self, plan: Plan, weights: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
        """:meth:`performance` and the weights' ensemble in the same measure (its accuracy, or the
        mean log of its probability of the true class), from one forward pass."""
        x, y = self._fitness_data
        return classify_scores(forward_numpy(plan, x, weights), y, self.score)


def classify_scores(out: np.ndarray, y: np.ndarray, score: str = "accuracy") -> tuple[np.ndarray, float]:
    """From the outputs ``(W, N, C)`` at W weight rows: the performance at each row and the rows'
    ensemble (each row's softmax probabilities, averaged). ``score`` accuracy: accuracies and the
    ensemble's vote accuracy; log_likelihood: the mean log-likelihood of the true class at each row
    and of the ensemble, ``mean_i log(mean_w p_w(y_i))`` (every image's term floored at
    :data:`LOG_LIKELIHOOD_FLOOR`, a non-finite one counting as the floor: an image on which any
    row's outputs are not finite gives the ensemble the floor, its average being undefined)."""
    with np.errstate(all="ignore"):
        logp = _log_softmax(out)
    if score == "accuracy":
        per = (out.argmax(axis=2) == y[None, :]).mean(axis=1)
        return per, float((np.exp(logp).sum(axis=0).argmax(axis=1) == y).mean())
    with np.errstate(all="ignore"):
        ll = np.take_along_axis(logp, y[None, :, None].astype(np.int64), axis=2)[..., 0]
        ens = np.logaddexp.reduce(ll, axis=0) - np.log(len(ll))
    ll = np.where(np.isfinite(ll), np.maximum(ll, LOG_LIKELIHOOD_FLOOR), LOG_LIKELIHOOD_FLOOR)
    ens = np.where(np.isfinite(ens), np.maximum(ens, LOG_LIKELIHOOD_FLOOR), LOG_LIKELIHOOD_FLOOR)
    return ll.mean(axis=1), float(ens.mean())


def accuracies(plan: Plan, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = forward_numpy(plan, x, weights)
    return (out.argmax(axis=2) == y[None, :]).mean(axis=1)


LOG_LIKELIHOOD_FLOOR = -50.0
"""Each image's log-likelihood term is at least this (a non-finite output counts as this)."""


def log_likelihoods(plan: Plan, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean log softmax probability of the true class, one per weight row (each image's term
    floored at :data:`LOG_LIKELIHOOD_FLOOR`, so one overflowing output cannot sink a network to
    minus infinity)."""
    return classify_scores(forward_numpy(plan, x, weights), y, "log_likelihood")[0]


def ensemble_accuracy(plan: Plan, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """The weights vote (the paper's ensemble): each weight's softmax probabilities, summed."""
    return classify_scores(forward_numpy(plan, x, weights), y, "accuracy")[1]


def _log_softmax(out: np.ndarray) -> np.ndarray:
    """Log softmax over the last axis (classes), shifted by the maximum for stability."""
    z = out - out.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class SwingUpTask:
    rollouts: int = 4
    max_steps: int | None = None
    kind = "swingup"
    n_in = 5
    n_out = 1

    def returns(self, act, n_rows: int, seed: int, rollouts: int | None = None, rewards: list | None = None,
                same_starts: bool = False) -> np.ndarray:
        """Returns ``(n_rows, rollouts)`` of the policy ``act(obs (n_rows, R, 5)) -> (n_rows, R)``;
        ``rewards``, if given, receives each step's rewards (``(n_rows * R,)``, 0 once done).
        ``same_starts``: every row starts its R episodes from the same R states (common random
        numbers, for comparing rows); otherwise each episode has its own."""
        from nas.wann.swingup import SwingUpBatch

        r = rollouts or self.rollouts
        env = SwingUpBatch(n_rows * r, t_limit=self.max_steps or 1000)
        obs = env.reset(np.random.default_rng(seed), repeat=n_rows if same_starts else 1)
        total = np.zeros(n_rows * r)
        for _ in range(env.t_limit):
            a = act(obs.reshape(n_rows, r, -1)).reshape(-1)
            obs, rew, done = env.step(a)
            total += rew
            if rewards is not None:
                rewards.append(np.asarray(rew, dtype=float).copy())
            if done.all():
                break
        return total.reshape(n_rows, r)

    def performance(self, plan: Plan, weights: np.ndarray, seed: int) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        return self.returns(lambda o: forward_numpy(plan, o, w)[..., 0], len(w), seed).mean(axis=1)

    def scores(self, plan: Plan, weights: np.ndarray, seed: int) -> tuple[np.ndarray, None]:
        """:meth:`performance`; a controller has no ensemble of its weights (None)."""
        return self.performance(plan, weights, seed), None


@dataclass(frozen=True)
class GymTask:
    env_id: str
    rollouts: int = 4
    max_steps: int | None = None
    kind = "gym"

    @functools.cached_property
    def _spaces(self) -> tuple[int, int, np.ndarray, np.ndarray]:
        env = make_env(self.env_id)
        try:
            return (int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)),
                    env.action_space.low, env.action_space.high)
        finally:
            env.close()

    @property
    def n_in(self) -> int:
        return self._spaces[0]

    @property
    def n_out(self) -> int:
        return self._spaces[1]

    def returns(self, act, n_rows: int, seed: int, rollouts: int | None = None, rewards: list | None = None,
                same_starts: bool = False) -> np.ndarray:
        r = rollouts or self.rollouts
        n = n_rows * r
        envs = [make_env(self.env_id) for _ in range(n)]
        low, high = self._spaces[2], self._spaces[3]
        seeds = _seeds(seed, r) * n_rows if same_starts else _seeds(seed, n)
        try:
            obs = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, seeds)]).astype(np.float64)
            total, live = np.zeros(n), np.ones(n, dtype=bool)
            limit = self.max_steps or envs[0].spec.max_episode_steps or 1000
            for _ in range(limit):
                a = np.clip(act(obs.reshape(n_rows, r, -1)).reshape(n, -1), low, high)
                step = np.zeros(n)
                for i in np.flatnonzero(live):
                    o, rew, term, trunc, _ = envs[i].step(a[i].astype(np.float32))
                    obs[i], total[i], step[i] = o, total[i] + rew, rew
                    live[i] = not (term or trunc)
                if rewards is not None:
                    rewards.append(step)
                if not live.any():
                    break
        finally:
            for e in envs:
                e.close()
        return total.reshape(n_rows, r)

    def performance(self, plan: Plan, weights: np.ndarray, seed: int) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        return self.returns(lambda o: forward_numpy(plan, o, w), len(w), seed).mean(axis=1)

    def scores(self, plan: Plan, weights: np.ndarray, seed: int) -> tuple[np.ndarray, None]:
        """:meth:`performance`; a controller has no ensemble of its weights (None)."""
        return self.performance(plan, weights, seed), None


def make_env(env_id: str):
    """A gymnasium environment with Box observation and action spaces, or a clear :class:`TaskError`."""
    try:
        import gymnasium as gym
    except ImportError:  # pragma: no cover - gymnasium is a pinned dependency
        raise TaskError("control tasks need gymnasium (pip install gymnasium)") from None
    try:
        env = gym.make(env_id)
    except gym.error.Error as exc:
        raise TaskError(f"evaluation.wann.task {env_id!r} is not a gymnasium environment ({exc}); use classify, "
                        "swingup or an id such as BipedalWalker-v3") from None
    except ImportError as exc:  # e.g. Box2D missing
        raise TaskError(f"environment {env_id!r} cannot start: {exc}") from None
    from gymnasium.spaces import Box

    if not isinstance(env.observation_space, Box) or not isinstance(env.action_space, Box):
        env.close()
        raise TaskError(f"environment {env_id!r} must have Box observation and action spaces (a WANN outputs "
                        f"continuous actions); it has {env.observation_space} and {env.action_space}")
    return env


def make_task(wann_cfg, data_dir: str):
    """The task ``evaluation.wann`` names."""
    if wann_cfg.task == "classify":
        return ClassifyTask(data_dir, wann_cfg.fitness_samples, wann_cfg.classify_score)
    if wann_cfg.task == "swingup":
        return SwingUpTask(wann_cfg.rollouts, wann_cfg.max_steps)
    return GymTask(wann_cfg.task, wann_cfg.rollouts, wann_cfg.max_steps)
