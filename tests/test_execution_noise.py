"""Execution noise (``eval.action_noise``): seeded Gaussian noise on every executed action, the
same for every executor, scaled to the action range and clipped to it."""

import numpy as np
import pytest

from robolearn.config import compose
from robolearn.envs import make_task
from robolearn.errors import ConfigError
from robolearn.eval.env_batch import EnvBatch
from robolearn.eval.rollout import rollout


class Recording(EnvBatch):
    """EnvBatch that keeps what the envs were asked to execute."""

    def __init__(self, envs):
        super().__init__(envs)
        self.executed: list[np.ndarray] = []

    def step(self, actions, alive):
        self.executed.append(np.array(actions[alive]))
        return super().step(actions, alive)


class Constant:
    """An actor that always commands the same action (what the policy would ask)."""

    def __init__(self, n, a):
        self.a = np.tile(np.asarray(a, np.float32), (n, 1))

    def reset(self):
        pass

    def act(self, hist):
        return self.a


@pytest.fixture(scope="module")
def task():
    return make_task("fetch_reach")


def _run(task, noise, noise_seed=0, a=(0.2, -0.1, 0.0, 0.95), episodes=2):
    venv = Recording([task.make_env() for _ in range(2)])
    try:
        rollout(
            lambda n, w: Constant(n, a),
            task,
            episodes,
            2,
            seed_start=100_000,
            progress=False,
            venv=venv,
            action_noise=noise,
            noise_seed=noise_seed,
        )
    finally:
        venv.close()
    return np.concatenate(venv.executed), np.asarray(a, np.float32)


def test_noise_is_seeded_scaled_and_clipped(task):
    e1, a = _run(task, 0.1)
    e2, _ = _run(task, 0.1)
    e3, _ = _run(task, 0.1, noise_seed=1)
    np.testing.assert_array_equal(e1, e2)  # the same seed: the same executed actions
    assert np.abs(e1 - e3).max() > 0.01  # another seed: other noise
    half = (task.spec.action_high - task.spec.action_low) / 2
    z = (e1 - a) / half
    free = np.abs(e1[:, :3]) < 0.99  # dims not clipped
    assert 0.07 < z[:, :3][free].std() < 0.13 and abs(z[:, :3][free].mean()) < 0.03
    assert np.all(e1 <= task.spec.action_high) and np.all(e1 >= task.spec.action_low)
    assert np.any(e1[:, 3] == task.spec.action_high[3])  # 0.95 + noise is clipped at 1


def test_no_noise_executes_the_commanded_action(task):
    e, a = _run(task, 0.0)
    np.testing.assert_array_equal(e, np.broadcast_to(a, e.shape))


def test_bad_noise_is_one_line():
    with pytest.raises(ConfigError) as e:
        compose(["eval.action_noise=-0.1"])
    assert "eval.action_noise" in str(e.value) and "\n" not in str(e.value)
