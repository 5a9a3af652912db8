"""After a weight-agnostic search: the best single shared weight, then every connection's own weight.

- :func:`best_shared_weight`: the shared weight, on a grid, with the best *validation*
  performance (validation images, or rollouts with seeds the search never used).
- :func:`tune_classifier`: individual weights by gradient descent (Adam, cross-entropy on the
  training split, optionally with Gaussian noise on the inputs), starting from the best shared
  weight, keeping the iterate that scores best on the validation images.
- :func:`reinforce`: individual weights for control by REINFORCE (Williams, 1992): Gaussian
  exploration on the network's actions, each episode's log-likelihood weighted by its
  standardised return; episodes of one iteration are rolled out together.

Every random draw comes from an explicit generator or a seed derived from the candidate's seed.
"""

from __future__ import annotations

import numpy as np
import torch

from nas.wann.network import WannNet, compile_plan, forward_numpy

WEIGHT_GRID: tuple[float, ...] = tuple(float(w) for w in np.round(np.linspace(-3, 3, 61), 2) if w != 0)
"""Shared weights tried when picking the best single one."""


def best_shared_weight(score, grid=WEIGHT_GRID) -> tuple[float, float]:
    """``score(weights (W,)) -> (W,)`` on validation data; returns (best weight, its score).
    Ties go to the smaller magnitude, then the positive weight."""
    w = np.asarray(grid, dtype=np.float64)
    s = np.asarray(score(w), dtype=float)
    order = sorted(range(len(w)), key=lambda i: (-s[i], abs(w[i]), -w[i]))
    return float(w[order[0]]), float(s[order[0]])


def tune_classifier(spec: dict, x: np.ndarray, y: np.ndarray, w0, steps: int, lr: float,
                    seed: int, val: tuple[np.ndarray, np.ndarray] | None = None, val_every: int = 10,
                    weight_decay: float = 0.0, input_noise: float = 0.0) -> np.ndarray:
    """Per-connection weights from ``w0`` (shared or per connection) by full-batch Adam (AdamW with
    ``weight_decay`` > 0) on cross-entropy over the training images; returns them.

    With ``input_noise`` > 0, every step sees the training images plus fresh Gaussian noise of that
    standard deviation (in the units of ``x``; prepared inputs are standardised), drawn from a
    generator seeded by ``seed``: a regulariser for networks that would otherwise fit the few
    training images exactly and lose on validation.

    With ``val`` (images, labels), the weights are scored on them every ``val_every`` steps and the
    best seen (the start included) are returned, ranked by validation accuracy, then by mean
    log-likelihood; an equal score keeps the earlier weights. Tuning then never ends worse on
    validation than it began, as the control tuners promise."""
    if input_noise < 0:
        raise ValueError(f"input_noise must be >= 0, got {input_noise}")
    net = WannNet(spec, w0, trainable=True).double()
    if steps <= 0 or net.plan.n_conns == 0:
        return net.weight.detach().numpy().astype(np.float64)
    best = _BestClassifier(net, val) if val is not None and val_every > 0 else None
    noise_gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = (torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay) if weight_decay > 0
               else torch.optim.Adam(net.parameters(), lr=lr))
        xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
        for step in range(1, steps + 1):
            opt.zero_grad()
            xin = xt if input_noise == 0 else xt + input_noise * torch.randn(xt.shape, generator=noise_gen,
                                                                             dtype=xt.dtype)
            loss = torch.nn.functional.cross_entropy(net(xin), yt)
            if not torch.isfinite(loss):
                break
            loss.backward()
            opt.step()
            if best is not None and (step % val_every == 0 or step == steps):
                best.offer()
    return best.w if best is not None else net.weight.detach().numpy().astype(np.float64)


class _BestClassifier:
    """The classifier weights with the best (validation accuracy, mean log-likelihood) offered."""

    def __init__(self, net, val: tuple[np.ndarray, np.ndarray]):
        self.net = net
        self.x = torch.as_tensor(val[0], dtype=torch.float64)
        self.y = torch.as_tensor(val[1])
        self.w, self.v = None, None
        self.offer()

    def offer(self) -> None:
        with torch.no_grad():
            out = self.net(self.x)
            ll = -torch.nn.functional.cross_entropy(out, self.y)
            v = (float((out.argmax(1) == self.y).double().mean()), float(ll) if torch.isfinite(ll) else -np.inf)
        if self.v is None or v > self.v:
            self.w, self.v = self.net.weight.detach().numpy().astype(np.float64).copy(), v


def policy_returns(task, spec: dict, weights: np.ndarray, seed: int, rollouts: int) -> np.ndarray:
    """Returns ``(rollouts,)`` of the network with per-connection ``weights`` (one row)."""
    plan = compile_plan(spec)
    w = np.asarray(weights, dtype=np.float64)[None, :]
    return task.returns(lambda o: _act(forward_numpy(plan, o.reshape(1, -1, o.shape[-1]), w).reshape(*o.shape[:2], -1),
                                       task), 1, seed, rollouts)[0]


def _act(out: np.ndarray, task) -> np.ndarray:
    return out[..., 0] if getattr(task, "n_out", 1) == 1 and getattr(task, "kind", "") == "swingup" else out


class _BestOnValidation:
    """The weights with the best mean return on validation rollouts among those offered (the
    start first), for tuners that keep their best iterate; inactive without ``val_seed``."""

    def __init__(self, task, spec: dict, val_seed: int | None, val_rollouts: int, start: np.ndarray):
        self.task, self.spec, self.val_seed, self.val_rollouts = task, spec, val_seed, val_rollouts
        self.w = np.asarray(start, dtype=np.float64).copy()
        self.v = self._score(self.w) if val_seed is not None else None

    def _score(self, w: np.ndarray) -> float:
        return float(np.mean(policy_returns(self.task, self.spec, w, self.val_seed, self.val_rollouts)))

    def offer(self, w: np.ndarray) -> None:
        w = np.asarray(w, dtype=np.float64).copy()
        v = self._score(w)
        if v > self.v:
            self.w, self.v = w, v

    def result(self, final: np.ndarray) -> np.ndarray:
        """The best weights offered, or ``final`` when no validation was asked for."""
        return self.w if self.val_seed is not None else np.asarray(final, dtype=np.float64).copy()


def reinforce(task, spec: dict, w0, iterations: int, lr: float, sigma: float, episodes: int, seed: int,
              log=None, val_seed: int | None = None, val_every: int = 10, val_rollouts: int = 8) -> np.ndarray:
    """REINFORCE on per-connection weights starting from ``w0`` (shared or per connection).

    Each iteration rolls out ``episodes`` episodes together with actions ``mean + sigma * noise``
    (noise from a generator seeded by ``seed`` and the iteration), then takes one Adam step on
    ``-sum_t mean_i(A_it * log N(a_it; mu(o_it), sigma))``, where ``A_it`` is the reward-to-go of
    episode ``i`` from step ``t`` minus its mean over the episodes (a per-step baseline), scaled by
    the overall standard deviation. With ``val_seed``, the weights are scored every ``val_every``
    iterations on ``val_rollouts`` validation episodes (noise-free actions), and the best weights
    seen (the start included) are returned: tuning never ends worse on validation than it began.
    Returns the final (or best) weights."""
    net = WannNet(spec, w0, trainable=True).double()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ss = np.random.SeedSequence(seed)
    best = _BestOnValidation(task, spec, val_seed, val_rollouts, net.weight.detach().numpy())
    for it, child in enumerate(ss.spawn(iterations)):
        rng = np.random.default_rng(child)
        env_seed = int(child.generate_state(1)[0])
        obs_log, act_log, rew_log = [], [], []
        w = net.weight.detach().numpy()[None, :]
        plan = net.plan

        def act(o):  # o: (1, E, n_in)
            mu = forward_numpy(plan, o.reshape(1, -1, o.shape[-1]), w)[0]
            a = mu + sigma * rng.standard_normal(mu.shape)
            obs_log.append(o.reshape(-1, o.shape[-1]).copy())
            act_log.append(a.copy())
            return _act(a.reshape(*o.shape[:2], -1), task)

        ret = task.returns(act, 1, env_seed, episodes, rewards=rew_log)[0]
        rew = np.stack(rew_log)  # (T, E)
        togo = np.flip(np.cumsum(np.flip(rew, 0), 0), 0)
        adv = togo - togo.mean(axis=1, keepdims=True)
        adv = adv / (adv.std() + 1e-8)
        T = min(len(obs_log), len(adv))
        obs = torch.as_tensor(np.stack(obs_log[:T]))  # (T, E, n_in)
        acts = torch.as_tensor(np.stack(act_log[:T]))  # (T, E, n_out)
        opt.zero_grad()
        mu = net(obs.reshape(-1, obs.shape[-1])).reshape(acts.shape)
        logp = (-0.5 * ((acts - mu) / sigma) ** 2).sum(dim=2)  # (T, E), constants dropped
        loss = -(torch.as_tensor(adv[:T].copy()) * logp).sum(dim=0).mean() / T
        loss.backward()
        opt.step()
        if log is not None:
            log(it, float(ret.mean()))
        if val_seed is not None and ((it + 1) % val_every == 0 or it == iterations - 1):
            best.offer(net.weight.detach().numpy())
    return best.result(net.weight.detach().numpy())


def cmaes(task, spec: dict, w0, iterations: int, sigma: float, popsize: int | None, episodes: int, seed: int,
          log=None, val_seed: int | None = None, val_every: int = 10, val_rollouts: int = 8) -> np.ndarray:
    """CMA-ES (Hansen's ``cma``) on per-connection weights starting from ``w0`` (shared or per connection).

    Each iteration asks ``popsize`` weight vectors (``None``: cma's default, 4 + 3 ln n), rolls out
    ``episodes`` episodes of each in one batched pass (every vector sees the same ``episodes`` start
    states, drawn from a seed derived from ``seed`` and the iteration), and tells cma their mean
    returns. With ``val_seed``, the distribution's mean is scored every ``val_every`` iterations on
    ``val_rollouts`` validation episodes and the best weights seen (the start included) are returned,
    as :func:`reinforce` does. The search is deterministic for a seed."""
    from nas.strategies.cma_es import seeded_es

    plan = compile_plan(spec)
    n = plan.n_conns
    x0 = np.broadcast_to(np.asarray(w0, dtype=np.float64), (n,)).copy()
    if iterations <= 0 or n == 0:
        return x0
    es = seeded_es(x0, sigma, np.random.default_rng([seed, 2]), popsize)
    ss = np.random.SeedSequence([seed, 1])
    best = _BestOnValidation(task, spec, val_seed, val_rollouts, x0)
    for it, child in enumerate(ss.spawn(iterations)):
        xs = np.asarray(es.ask(), dtype=np.float64)  # (P, n)
        env_seed = int(child.generate_state(1)[0])
        ret = task.returns(lambda o: _act(forward_numpy(plan, o, xs), task), len(xs), env_seed, episodes,
                           same_starts=True)  # (P, episodes): every vector on the same start states
        es.tell(list(xs), list(-ret.mean(axis=1)))
        if log is not None:
            log(it, float(ret.mean()))
        if val_seed is not None and ((it + 1) % val_every == 0 or it == iterations - 1):
            best.offer(es.mean)
    return best.result(es.mean)


def tune_control(task, spec: dict, w0, ev, seed: int, val_seed: int | None = None) -> np.ndarray:
    """Individual weights for a control task by the tuner ``ev.tuner`` names (``ev``: the
    ``evaluation.wann`` config section)."""
    if ev.tune_steps <= 0:
        return np.broadcast_to(np.asarray(w0, dtype=np.float64), (len(spec["conns"]),)).copy()
    if ev.tuner == "cmaes":
        return cmaes(task, spec, w0, ev.tune_steps, ev.cmaes_sigma, ev.cmaes_popsize, ev.cmaes_episodes, seed,
                     val_seed=val_seed, val_rollouts=ev.rollouts)
    return reinforce(task, spec, w0, ev.tune_steps, ev.tune_lr, ev.reinforce_sigma, ev.reinforce_episodes, seed,
                     val_seed=val_seed, val_rollouts=ev.rollouts)
