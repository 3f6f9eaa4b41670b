"""The scripted expert's own plans under inference delay (tools/expert_plan_delay.py): the known
answers that say why naive async loses at d >= 1 under the agent's noise and what RTC aims at."""

import sys
from pathlib import Path

import numpy as np
import pytest

from robolearn.config import compose
from robolearn.train.data import make_task_from

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from expert_plan_delay import ExpertPlanSchedule, plan_success  # noqa: E402

from robolearn.algos.labelers import ScriptedLabeler  # noqa: E402


@pytest.fixture(scope="module")
def catch():
    return make_task_from(compose(["task=catch_multimodal"]))


def test_exact_plans_replay_what_the_previous_chunk_still_has_pending(catch):
    env = catch.make_env()
    try:
        obs, _ = env.reset(seed=1000)
        lab = ScriptedLabeler(catch, 8)
        lab.reset(env)
        ex = ExpertPlanSchedule(catch, env, lab, 8, s=2, d=2, exact=True)
        rng, chunks = np.random.default_rng(0), {}
        for t in range(12):
            a = ex.act({k: v[None] for k, v in obs.items()})[0]
            if t % 2 == 0:
                chunks[t] = ex.buf[0, (t // 2) % ex.ring].copy()
            obs, *_ = env.step(np.clip(a + 0.1 * rng.standard_normal(2), -1, 1))
        for t in range(2, 12, 2):  # chunk requested at t freezes indices s .. s+d-1 of the one before
            np.testing.assert_array_equal(chunks[t][:2], chunks[t - 2][2:4])
            assert np.abs(chunks[t][2:6] - chunks[t - 2][4:]).max() > 0  # and re-plans the rest from the true state
    finally:
        env.close()


def test_without_noise_both_plans_agree_and_with_noise_only_naive_loses(catch):
    # noise 0: a deterministic expert's pending actions are exactly its own new plan's first steps
    assert (plan_success(catch, 4, 0.0, 2, 2, False) == plan_success(catch, 4, 0.0, 2, 2, True)).all()
    naive = plan_success(catch, 10, 0.1, 2, 2, False)
    exact = plan_success(catch, 10, 0.1, 2, 2, True)
    assert exact.all() and naive.sum() <= 7  # measured 10 / 10 against 5 / 10 on these seeds


def test_the_experts_continuation_after_a_prefix(catch):
    """tools/inpaint_error.py's target: after its own first d planned actions the expert continues
    with the rest of its plan exactly; after other actions, differently; the simulator is put back."""
    from inpaint_error import after

    env = catch.make_env()
    try:
        env.reset(seed=1001)
        lab = ScriptedLabeler(catch, 8)
        lab.reset(env)
        for _ in range(10):
            env.step(lab.act(env))
        state, before = catch.get_state(env), env.unwrapped.get_obs()["state"]
        plan = lab.chunk(env)
        np.testing.assert_array_equal(after(catch, env, lab, state, plan[:2], 6), plan[2:])
        moved = after(catch, env, lab, state, plan[:2] + 0.3, 6)
        assert np.abs(moved - plan[2:]).max() > 0.01
        np.testing.assert_array_equal(env.unwrapped.get_obs()["state"], before)
    finally:
        env.close()
