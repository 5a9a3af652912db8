"""CartPole swing-up (nas.wann.swingup): hand-computed steps, vectorisation, episode ends, reset, rollouts.

The expected values are written out here with plain ``math`` from Gaier & Ha's release
(google/brain-tokyo-workshop, WANNRelease/prettyNeatWann/domain/cartpole_swingup.py), not by
calling the module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.wann.swingup import SwingUpBatch, rollout_returns

G, M_C, M_P, L, F_MAG, DT, B, X_TH = 9.82, 0.5, 0.5, 0.6, 10.0, 0.01, 0.1, 2.4


def ref_step(state, a):
    """One step of the original's scalar ``stateUpdate`` + reward + observation."""
    x, x_dot, th, th_dot = state
    f = max(-1.0, min(1.0, a)) * F_MAG
    s, c = math.sin(th), math.cos(th)
    tm = M_P + M_C
    xacc = (-2 * M_P * L * th_dot ** 2 * s + 3 * M_P * G * s * c + 4 * f - 4 * B * x_dot) / (4 * tm - 3 * M_P * c ** 2)
    thacc = ((-3 * M_P * L * th_dot ** 2 * s * c + 6 * tm * G * s + 6 * (f - B * x_dot) * c)
             / (4 * L * tm - 3 * M_P * L * c ** 2))
    new = (x + x_dot * DT, x_dot + xacc * DT, th + th_dot * DT, th_dot + thacc * DT)
    reward = (math.cos(new[2]) + 1) / 2 * math.cos(new[0] / X_TH * math.pi / 2)
    obs = (new[0], new[1], math.cos(new[2]), math.sin(new[2]), new[3])
    return new, reward, obs


def placed(states, t_limit=1000):
    env = SwingUpBatch(len(states), t_limit=t_limit)
    env.state = np.array(states, dtype=float)
    return env


def test_hanging_at_rest_pushed_right():
    # theta = pi, at rest, F = +10: x'' = 4F / (4 m - 3 m_p) = 40 / 2.5 = 16,
    # theta'' = 6 F c / (4 l m - 3 m_p l) = -60 / 1.5 = -40 (sin(pi) ~ 1e-16 terms vanish)
    env = placed([[0.0, 0.0, math.pi, 0.0]])
    obs, rew, done = env.step(np.array([1.0]))
    assert env.state[0].tolist() == pytest.approx([0.0, 0.16, math.pi, -0.4], abs=1e-12)
    assert rew[0] == pytest.approx(0.0, abs=1e-12)  # pole straight down pays nothing
    assert obs[0].tolist() == pytest.approx([0.0, 0.16, -1.0, 0.0, -0.4], abs=1e-12)
    assert obs.shape == (1, 5) and rew.shape == (1,) and done.dtype == bool and not done[0]


def test_upright_moving_and_off_centre_clipped_action():
    # copy 0: upright (s = 0, c = 1), moving, F = 2.5:
    #   x'' = (4*2.5 + 4*0.1*0.3) / 2.5 = 4.048, theta'' = 6*(2.5 + 0.03) / 1.5 = 10.12
    # copy 1: off-centre at a general angle with an action of 5 (clipped to 1), given as (n, 1)
    s0 = (0.5, -0.3, 0.0, 1.0)
    s1 = (-1.2, 0.7, 2.0, -3.0)
    env = placed([s0, s1])
    obs, rew, done = env.step(np.array([[0.25], [5.0]]))

    expect0 = (0.5 - 0.003, -0.3 + 0.04048, 0.01, 1.0 + 0.1012)
    assert env.state[0].tolist() == pytest.approx(expect0, rel=1e-12, abs=1e-14)
    r0 = (math.cos(0.01) + 1) / 2 * math.cos(0.497 / 2.4 * math.pi / 2)
    assert rew[0] == pytest.approx(r0, rel=1e-12)
    assert obs[0].tolist() == pytest.approx([0.497, -0.25952, math.cos(0.01), math.sin(0.01), 1.1012], rel=1e-12)

    new1, r1, o1 = ref_step(s1, 5.0)
    assert env.state[1].tolist() == pytest.approx(new1, rel=1e-12)
    assert rew[1] == pytest.approx(r1, rel=1e-12)
    assert obs[1].tolist() == pytest.approx(o1, rel=1e-12)
    assert ref_step(s1, 5.0) == ref_step(s1, 1.0)  # the clip is what the module applied
    assert not done.any()


def test_several_steps_follow_reference():
    s = (0.3, -0.2, 2.5, 0.4)
    env = placed([s])
    for a in (0.7, -1.0, -3.0, 0.1, 0.0):
        s, r, o = ref_step(s, a)
        obs, rew, _ = env.step(np.array([a]))
        assert env.state[0].tolist() == pytest.approx(s, rel=1e-12, abs=1e-15)
        assert rew[0] == pytest.approx(r, rel=1e-12, abs=1e-15)
        assert obs[0].tolist() == pytest.approx(o, rel=1e-12, abs=1e-15)


def test_batch_equals_each_copy_alone():
    rng = np.random.default_rng(7)
    states = rng.normal([0, 0, math.pi, 0], [1.0, 1.0, 2.0, 3.0], size=(5, 4))
    actions = rng.uniform(-1.5, 1.5, size=(20, 5))
    batch = placed(states)
    singles = [placed(states[i:i + 1]) for i in range(5)]
    for a in actions:
        obs, rew, done = batch.step(a)
        for i, env in enumerate(singles):
            o, r, d = env.step(a[i:i + 1])
            np.testing.assert_allclose(obs[i], o[0], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(rew[i], r[0], rtol=1e-13, atol=1e-15)
            assert done[i] == d[0]
            np.testing.assert_allclose(batch.state[i], env.state[0], rtol=1e-13, atol=1e-15)


def test_leaving_the_track_ends_the_copy_and_freezes_it():
    # copy 0 crosses x = +2.4 this step; copy 1 crosses -2.4 next step; copy 2 stays in the middle
    env = placed([[2.399, 5.0, 0.3, 0.0], [-2.396, -0.3, 1.0, 0.0], [0.0, 0.0, math.pi, 0.0]])
    obs, rew, done = env.step(np.zeros(3))
    new0, r0, _ = ref_step((2.399, 5.0, 0.3, 0.0), 0.0)
    assert new0[0] == pytest.approx(2.449)
    assert done.tolist() == [True, False, False]
    assert rew[0] == pytest.approx(r0, rel=1e-12) and r0 < 0  # the leaving step is paid, as in the original
    frozen0 = env.state[0].copy()

    obs, rew, done = env.step(np.array([1.0, -1.0, 1.0]))
    assert done.tolist() == [True, True, False]
    assert rew[0] == 0.0 and rew[1] != 0.0
    assert env.state[0].tolist() == frozen0.tolist()
    frozen1 = env.state[1].copy()

    moving = env.state[2].copy()
    for _ in range(3):
        obs, rew, done = env.step(np.array([-1.0, 1.0, 1.0]))
        assert rew[0] == 0.0 and rew[1] == 0.0
        assert done.tolist() == [True, True, False]
        assert env.state[0].tolist() == frozen0.tolist()
        assert env.state[1].tolist() == frozen1.tolist()
        assert obs[0].tolist() == pytest.approx([frozen0[0], frozen0[1], math.cos(frozen0[2]),
                                                 math.sin(frozen0[2]), frozen0[3]])
    assert env.state[2].tolist() != moving.tolist()


def test_t_limit_ends_every_copy():
    env = SwingUpBatch(3, t_limit=7)
    env.reset(np.random.default_rng(0))
    for t in range(1, 7):
        _, rew, done = env.step(np.zeros(3))
        assert not done.any(), t
    _, rew, done = env.step(np.zeros(3))
    assert done.all() and (rew > 0).all()  # the last step is still paid (near-down pole, reward tiny but > 0)
    state = env.state.copy()
    _, rew, done = env.step(np.ones(3))
    assert done.all() and (rew == 0).all() and (env.state == state).all()


def test_reset_is_deterministic_and_centred_hanging_down():
    a, b = SwingUpBatch(4), SwingUpBatch(4)
    oa, ob = a.reset(np.random.default_rng(11)), b.reset(np.random.default_rng(11))
    assert (oa == ob).all() and (a.state == b.state).all()
    assert not (a.reset(np.random.default_rng(12)) == oa).all()
    s = b.state  # still the seed-11 start, like oa
    for o, (x, x_dot, th, th_dot) in zip(oa.tolist(), s.tolist()):
        assert o == pytest.approx([x, x_dot, math.cos(th), math.sin(th), th_dot], rel=1e-15)

    big = SwingUpBatch(20000)
    big.reset(np.random.default_rng(3))
    mean, std = big.state.mean(axis=0), big.state.std(axis=0)
    assert mean.tolist() == pytest.approx([0.0, 0.0, math.pi, 0.0], abs=0.01)
    assert std.tolist() == pytest.approx([0.2] * 4, rel=0.03)

    # reset restarts the step count and the done flags
    env = SwingUpBatch(2, t_limit=2)
    env.reset(np.random.default_rng(1))
    env.step(np.zeros(2))
    assert env.step(np.zeros(2))[2].all()
    env.reset(np.random.default_rng(1))
    assert not env.step(np.zeros(2))[2].any()


def test_rollout_returns_zero_policy_bounded_and_reproducible():
    def zero(obs):
        assert obs.shape == (6, 5)
        return np.zeros(len(obs))

    r1 = rollout_returns(zero, 6, np.random.default_rng(5))
    r2 = rollout_returns(zero, 6, np.random.default_rng(5))
    assert r1.shape == (6,)
    assert (r1 >= 0).all() and (r1 <= 1000).all()
    assert r1.tolist() == r2.tolist()
    assert not (rollout_returns(zero, 6, np.random.default_rng(6)) == r1).all()


def test_rollout_returns_stops_when_all_done():
    calls = []

    def push(obs):
        calls.append(1)
        return np.ones(len(obs))

    returns = rollout_returns(push, 3, np.random.default_rng(0), t_limit=1000)
    assert 0 < len(calls) < 1000  # a constant full push drives every cart off the track early
    assert np.isfinite(returns).all()


def test_bad_input():
    env = SwingUpBatch(2)
    with pytest.raises(RuntimeError):
        env.step(np.zeros(2))
    env.reset(np.random.default_rng(0))
    with pytest.raises(ValueError):
        env.step(np.zeros(3))
    with pytest.raises(ValueError):
        env.state = np.zeros((3, 4))
