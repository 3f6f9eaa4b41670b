"""Adversarial imitation (GAIL / AIRL / f-divergence GAIL with a stable-baselines3 PPO learner):
the reward reaches the learner, AIRL's discriminator has its shaping, bad options are one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="adversarial imitation needs stable-baselines3")

from robolearn.algos.adversarial import check_options, discriminator_return, run_adversarial  # noqa: E402
from robolearn.config import compose  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def catch_demos(tmp_path_factory):
    from robolearn.algos.collect import collect
    from robolearn.envs import make_task

    path = tmp_path_factory.mktemp("adv") / "catch.zarr"
    collect(make_task("catch"), 12, path, progress=False)
    return path


def _cfg(data, *extra):
    return compose(["algo=gail", "task=catch", f"data={data}", "algo.steps=300", "eval.episodes=4",
                    "eval.n_envs=4", *extra])  # fmt: skip


def test_ppo_raises_the_return_of_a_fixed_critic_from_the_bc_start(catch_demos, tmp_path):
    """The critic learns in round 1 only; PPO then optimises its reward for three rounds. Under that
    critic the learner's return must rise well above the BC-initialised policy's (a reward that
    never reaches PPO, or reaches it with the wrong sign, fails this)."""
    from stable_baselines3 import PPO

    cfg = _cfg(catch_demos, "algo.rounds=4", "algo.disc_rounds=1", "algo.env_steps_per_round=1024", "seed=0")
    out = run_adversarial(cfg, tmp_path / "run", progress=False)
    try:
        start = PPO.load(tmp_path / "run" / "bc_start.zip", device="cpu")
        seeds = list(range(200, 208))
        before = discriminator_return(start, out["critic"], out["env"], "gail", "js", seeds, 100)
        after = discriminator_return(out["model"], out["critic"], out["env"], "gail", "js", seeds, 100)
    finally:
        out["env"].close()
    assert after > before + 2.0, (before, after)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["env_steps"] for h in hist] == [0, 1024, 2048, 3072, 4096]
    assert all(h["expert_labels"] == hist[0]["expert_labels"] > 0 for h in hist)  # no expert query, ever
    assert np.isnan(hist[2]["disc_loss"]) and not np.isnan(hist[1]["disc_loss"])  # frozen after round 1


def test_airl_critic_is_shaped_and_its_reward_g_is_kept(catch_demos, tmp_path):
    import torch

    cfg = _cfg(catch_demos, "algo=airl", "algo.rounds=1", "algo.env_steps_per_round=256", "algo.disc_updates=5")
    out = run_adversarial(cfg, tmp_path / "run", progress=False)
    out["env"].close()
    critic = out["critic"]
    assert critic.h is not None
    o, a = torch.randn(5, critic.g[0].in_features - 2), torch.randn(5, 2)
    o2 = torch.randn_like(o)
    f = critic(o, a, o2, torch.zeros(5, dtype=torch.bool))
    with torch.no_grad():
        want = critic.reward_g(o, a) + cfg.algo.gamma * critic.h(o2).squeeze(-1) - critic.h(o).squeeze(-1)
        terminal = critic(o, a, o2, torch.ones(5, dtype=torch.bool))
    assert torch.allclose(f, want, atol=1e-6)
    assert torch.allclose(terminal, critic.reward_g(o, a) - critic.h(o).squeeze(-1), atol=1e-6)  # no h' at the end


@pytest.mark.parametrize(
    "override, words",
    [
        ("algo.divergence=wasserstein", ["algo.divergence", "js", "wasserstein"]),
        ("algo.env_steps_per_round=0", ["algo.env_steps_per_round", "RL budget"]),
    ],
)
def test_bad_options_fail_when_composing(catch_demos, override, words):
    with pytest.raises(ConfigError) as e:
        _cfg(catch_demos, override)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_bad_combinations_fail_before_any_work(catch_demos):
    from robolearn.envs import make_task

    task = make_task("catch")
    for extra, words in (
        (["algo=airl", "algo.divergence=chi2"], ["AIRL", "chi2"]),
        (["algo.disc_chunk=4"], ["algo.disc_chunk", "found 4"]),
    ):
        with pytest.raises(ConfigError) as e:
            check_options(_cfg(catch_demos, *extra).algo, task)
        assert all(w in str(e.value) for w in words), str(e.value)

    class DatasetOnly:  # a task known only from its data: nothing to roll the learner out in
        spec = task.spec

    with pytest.raises(ConfigError, match="needs a simulator"):
        check_options(_cfg(catch_demos).algo, DatasetOnly())


def test_cli_error_is_one_line_before_work(catch_demos, tmp_path):
    cmd = [sys.executable, "-m", "robolearn", "airl", "task=catch", f"data={catch_demos}", "algo.divergence=chi2"]
    r = subprocess.run([*cmd, f"run_dir={tmp_path / 'r'}"], capture_output=True, text=True)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "AIRL" in r.stderr
    assert not (tmp_path / "r" / "bc_start.zip").exists()
