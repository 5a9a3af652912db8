"""CartPole swing-up, the control task of Gaier & Ha, "Weight Agnostic Neural Networks" (NeurIPS 2019).

A pole hinged on a cart starts hanging down (``theta`` near pi; ``theta = 0`` is upright) and the
network pushes the cart left or right with a force ``clip(a, -1, 1) * 10`` N, to swing the pole up
and balance it while keeping the cart near the centre of a track of half-length 2.4 m. Each step
of ``dt = 0.01`` s pays ``(cos(theta) + 1) / 2 * cos(x / 2.4 * pi / 2)``: up to 1 with the pole
upright and the cart centred, 0 with the pole hanging down or the cart at the track's end. An
episode ends when the cart leaves the track (``|x| > 2.4``) or after ``t_limit`` (1000) steps, so
a return lies in ``[0, 1000]`` (except the step that leaves the track, which pays a little below
zero, exactly as in the original).

Followed exactly: ``google/brain-tokyo-workshop``, ``WANNRelease/prettyNeatWann/domain/cartpole_swingup.py``
at commit ``dfa8e09cbb44a7b75c70795b9d220cb2fea4b34b`` (the authors' release; itself from hardmaru's
estool ``cartpole_swingup.py``, after zuoxingdong's DeepPILCO). Checked against it:

- constants: ``g = 9.82``, ``m_c = 0.5``, ``m_p = 0.5``, ``l = 0.6``, ``force_mag = 10``, ``dt = 0.01``,
  friction ``b = 0.1``, ``t_limit = 1000``, ``x_threshold = 2.4`` (its docstring's "dt is 0.05, only
  200 timesteps" is stale: the code sets 0.01 and 1000);
- dynamics (``s, c = sin(theta), cos(theta)``, ``F`` the force)::

      xdot_update     = (-2 m_p l thdot^2 s + 3 m_p g s c + 4 F - 4 b xdot) / (4 (m_p + m_c) - 3 m_p c^2)
      thetadot_update = (-3 m_p l thdot^2 s c + 6 (m_p + m_c) g s + 6 (F - b xdot) c)
                        / (4 l (m_p + m_c) - 3 m_p l c^2)

  then semi-implicit in the original's order: ``x += xdot dt``, ``theta += thdot dt`` with the *old*
  velocities, then ``xdot += xdot_update dt``, ``thdot += thetadot_update dt`` (this explicit Euler
  step slowly pumps energy into the pendulum: with no force, a small swing about the bottom grows
  about fivefold over 1000 steps; kept, as the published results were obtained with it);
- after the update: ``t += 1``; done when ``x < -2.4 or x > 2.4`` or ``t >= t_limit``; the reward is
  computed from the *new* state and paid on the step that ends the episode too;
- reset: ``state ~ N([0, 0, pi, 0], 0.2)`` per component, ``t = 0``;
- observation ``[x, xdot, cos(theta), sin(theta), thdot]`` of the new state.

Differences, none of which changes the task: every random draw comes from the caller's
``np.random.Generator`` (the original's ``reset`` used the global ``np.random``); the original's optional
observation noise (``setNoise``, 0 by default) and pole-length change (``setEnv``) are left out; ``n``
copies step together as arrays; and a copy that is done stays frozen (state and observation unchanged,
reward 0, done stays true), so a caller can sum rewards over ``t_limit`` steps without masking (the
original, a gym env, leaves stepping past ``done`` to the caller). A NaN action is not cleaned up (as
in the original): it makes that copy's state, reward and return NaN.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

GRAVITY = 9.82
MASS_CART = 0.5
MASS_POLE = 0.5
POLE_LENGTH = 0.6
FORCE_MAG = 10.0
DT = 0.01
FRICTION = 0.1
T_LIMIT = 1000
X_THRESHOLD = 2.4
RESET_MEAN = (0.0, 0.0, np.pi, 0.0)
RESET_STD = 0.2


def observe(state: np.ndarray) -> np.ndarray:
    """``(n, 4)`` states ``x, x_dot, theta, theta_dot`` -> ``(n, 5)`` observations
    ``x, x_dot, cos(theta), sin(theta), theta_dot``."""
    x, x_dot, theta, theta_dot = state.T
    return np.stack([x, x_dot, np.cos(theta), np.sin(theta), theta_dot], axis=1)


def reward_of(state: np.ndarray) -> np.ndarray:
    """``(n,)`` rewards of ``(n, 4)`` states: ``(cos(theta) + 1) / 2 * cos(x / x_threshold * pi / 2)``."""
    x, theta = state[:, 0], state[:, 2]
    return (np.cos(theta) + 1.0) / 2.0 * np.cos(x / X_THRESHOLD * (np.pi / 2.0))


def dynamics(state: np.ndarray, force: np.ndarray) -> np.ndarray:
    """The next ``(n, 4)`` states after one step of ``dt`` under ``force`` (``(n,)``, newtons)."""
    x, x_dot, theta, theta_dot = state.T
    s, c = np.sin(theta), np.cos(theta)
    m_p, l, b, total_m = MASS_POLE, POLE_LENGTH, FRICTION, MASS_POLE + MASS_CART
    xdot_update = ((-2 * m_p * l * theta_dot ** 2 * s + 3 * m_p * GRAVITY * s * c + 4 * force - 4 * b * x_dot)
                   / (4 * total_m - 3 * m_p * c ** 2))
    thetadot_update = ((-3 * m_p * l * theta_dot ** 2 * s * c + 6 * total_m * GRAVITY * s + 6 * (force - b * x_dot) * c)
                       / (4 * l * total_m - 3 * m_p * l * c ** 2))
    return np.stack([x + x_dot * DT,
                     x_dot + xdot_update * DT,
                     theta + theta_dot * DT,
                     theta_dot + thetadot_update * DT], axis=1)


class SwingUpBatch:
    """``n`` independent copies of CartPole swing-up, stepped together (no Python loop over copies).

    ``reset(rng)`` starts every copy; ``step(action)`` advances every copy one step and returns
    ``(obs (n, 5), reward (n,), done (n,) bool)``. A copy that is done stays frozen and is paid 0.
    ``state`` (``(n, 4)``: ``x, x_dot, theta, theta_dot``) can be read and set, e.g. to place copies
    exactly; setting it leaves the step count and the done flags as they are.
    """

    obs_size = 5
    act_size = 1

    def __init__(self, n: int, t_limit: int = T_LIMIT):
        if int(n) < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if int(t_limit) < 1:
            raise ValueError(f"t_limit must be at least 1, got {t_limit}")
        self.n = int(n)
        self.t_limit = int(t_limit)
        self.t = 0
        self.done = np.zeros(self.n, dtype=bool)
        self._state: np.ndarray | None = None

    @property
    def state(self) -> np.ndarray:
        if self._state is None:
            raise RuntimeError("SwingUpBatch has no state yet: call reset(rng) or set state first")
        return self._state

    @state.setter
    def state(self, value) -> None:
        value = np.array(value, dtype=np.float64)
        if value.shape != (self.n, 4):
            raise ValueError(f"state must have shape ({self.n}, 4), got {value.shape}")
        self._state = value

    def observation(self) -> np.ndarray:
        """The current ``(n, 5)`` observations."""
        return observe(self.state)

    def reset(self, rng: np.random.Generator, repeat: int = 1) -> np.ndarray:
        """Draws every copy's state from ``N([0, 0, pi, 0], 0.2)``; returns the ``(n, 5)`` observations.
        ``repeat``: draw ``n / repeat`` states and repeat that block (copies ``i`` and
        ``i + n / repeat`` start alike)."""
        if repeat < 1 or self.n % repeat:
            raise ValueError(f"repeat must divide the {self.n} copies, got {repeat}")
        block = rng.normal(loc=RESET_MEAN, scale=RESET_STD, size=(self.n // repeat, 4))
        self._state = np.tile(block, (repeat, 1))
        self.t = 0
        self.done = np.zeros(self.n, dtype=bool)
        return self.observation()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step with ``action`` (``(n,)`` or ``(n, 1)``, clipped to ``[-1, 1]``, times ``force_mag``)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape not in ((self.n,), (self.n, 1)):
            raise ValueError(f"action must have shape ({self.n},) or ({self.n}, 1), got {a.shape}")
        force = np.clip(a.reshape(self.n), -1.0, 1.0) * FORCE_MAG
        live = ~self.done
        new = dynamics(self.state, force)
        self._state = np.where(live[:, None], new, self.state)
        self.t += 1
        x = self._state[:, 0]
        self.done = self.done | (x < -X_THRESHOLD) | (x > X_THRESHOLD)
        if self.t >= self.t_limit:
            self.done = np.ones(self.n, dtype=bool)
        reward = np.where(live, reward_of(self._state), 0.0)
        return self.observation(), reward, self.done.copy()


def rollout_returns(policy: Callable[[np.ndarray], np.ndarray], n: int, rng: np.random.Generator,
                    t_limit: int = T_LIMIT) -> np.ndarray:
    """Total reward of each of ``n`` copies under ``policy`` (``obs (n, 5) -> action (n,)``), started by
    ``reset(rng)``; stops early once every copy is done."""
    env = SwingUpBatch(n, t_limit=t_limit)
    obs = env.reset(rng)
    total = np.zeros(env.n)
    for _ in range(env.t_limit):
        obs, reward, done = env.step(policy(obs))
        total += reward
        if done.all():
            break
    return total
