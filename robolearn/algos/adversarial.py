"""Adversarial imitation: the reward moment (GAIL, AIRL, f-divergence variants).

BC matches the expert's actions on the expert's states (the off-policy Q moment); DAgger and DART
on the learner's states (the on-policy Q moment). Adversarial imitation matches the *reward*
moment: a discriminator (the adversary) is trained to tell the expert's (observation, action)
pairs from the learner's, and the learner is trained by reinforcement learning to maximise the
reward the discriminator gives it, with no expert query at all (Swamy et al. 2021).

- ``algo.method=gail``: a critic V(s, a); it maximises the variational lower bound of the chosen
  f-divergence (``algo.divergence``: js = GAIL, forward_kl, reverse_kl, chi2; ``game/fdiv.py``)
  between expert and learner, and the learner's reward is the critic's T = g(V).
- ``algo.method=airl``: the discriminator is D = exp(f) / (exp(f) + pi(a|s)) with
  f(s, a, s') = g(s, a) + gamma h(s') - h(s) (Fu et al. 2018), trained by logistic regression;
  the learner's reward is log D - log(1 - D) = f - log pi(a|s), and g is kept, a reward that can
  be re-used (the shaping term gamma h' - h does not change optimal policies).

The learner is stable-baselines3's PPO (a maintained implementation with GAE, clipping and
minibatching; an optional install, ``pip install stable-baselines3``), warm-started by behaviour
cloning its Gaussian policy on the demonstrations. The discriminator regularises with a gradient
penalty on interpolates (``algo.grad_penalty``) or spectral norm (``algo.spectral_norm``).

Environment interactions and expert labels are counted in ``history.json``: labels are the
demonstrations' steps, never more (no expert is queried).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from robolearn.errors import ConfigError
from robolearn.game.fdiv import check_divergence, variational_bound
from robolearn.game.fdiv import reward as fdiv_reward

METHODS = ("gail", "airl")


def _mlp(i: int, hidden: list[int], o: int, sn: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        lin = nn.Linear(i, h)
        layers += [nn.utils.parametrizations.spectral_norm(lin) if sn else lin, nn.Tanh()]
        i = h
    last = nn.Linear(i, o)
    layers.append(nn.utils.parametrizations.spectral_norm(last) if sn else last)
    return nn.Sequential(*layers)


class Critic(nn.Module):
    """GAIL / f-divergence critic V(s, a) and AIRL's f(s, a, s') = g(s, a) + gamma h(s') - h(s)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], method: str, gamma: float, sn: bool):
        super().__init__()
        self.method, self.gamma = method, gamma
        self.g = _mlp(obs_dim + act_dim, hidden, 1, sn)
        self.h = _mlp(obs_dim, hidden, 1, sn) if method == "airl" else None

    def forward(self, obs, act, next_obs=None, done=None) -> torch.Tensor:
        v = self.g(torch.cat([obs, act], -1)).squeeze(-1)
        if self.h is None:
            return v
        keep = 1.0 - done.float()
        return v + self.gamma * keep * self.h(next_obs).squeeze(-1) - self.h(obs).squeeze(-1)

    def reward_g(self, obs, act) -> torch.Tensor:
        """AIRL's re-usable reward (the shaping removed); GAIL's critic as is."""
        return self.g(torch.cat([obs, act], -1)).squeeze(-1)


class FlatEnv(gym.Env):
    """A robolearn task env as stable-baselines3 sees it: the observation keys flattened and
    standardised with the demonstrations' statistics, actions in [-1, 1] mapped to the task's
    range, and the reward given by ``reward_fn(obs, act, next_obs, done)`` (the discriminator's),
    the task's own reward never seen. ``info`` keeps the task's success and score."""

    def __init__(self, task, keys: list[str], mean: np.ndarray, std: np.ndarray, reward_fn):
        self.task, self.env, self.keys = task, task.make_env(), keys
        self.mean, self.std, self.reward_fn = mean, std, reward_fn
        lo, hi = np.asarray(task.spec.action_low, np.float32), np.asarray(task.spec.action_high, np.float32)
        self.center, self.half = (hi + lo) / 2, (hi - lo) / 2
        d = int(mean.shape[0])
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (d,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(lo),), np.float32)
        self._obs: np.ndarray | None = None

    def flat(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        x = np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k in self.keys])
        return ((x - self.mean) / self.std).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed)
        self._obs = self.flat(obs)
        return self._obs, info

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        obs, _, term, trunc, info = self.env.step(self.center + self.half * a)
        nxt = self.flat(obs)
        done = bool(term or info.get("is_success", False))
        r = float(self.reward_fn(self._obs, a, nxt, done))
        self._obs = nxt
        return nxt, r, done, bool(trunc), info

    def close(self):
        self.env.close()


def demonstrations(buf, keys: list[str], action_key: str, task) -> dict[str, np.ndarray]:
    """(obs, act, next_obs, done) of every demonstration step; actions scaled to [-1, 1]; the last
    step of an episode is terminal (its next observation is itself)."""
    from robolearn.data.dataset import resolve_obs_keys

    arrays = resolve_obs_keys(buf, keys)
    names = list(arrays)
    obs = np.concatenate([np.asarray(arrays[k][:], np.float32).reshape(buf.n_steps, -1) for k in names], 1)
    act = np.asarray(buf[action_key][:], np.float32)
    lo, hi = np.asarray(task.spec.action_low, np.float32), np.asarray(task.spec.action_high, np.float32)
    act = (act - (hi + lo) / 2) / ((hi - lo) / 2)
    ends = np.asarray(buf.episode_ends[:], np.int64)
    done = np.zeros(len(obs), bool)
    done[ends - 1] = True
    nxt = np.concatenate([obs[1:], obs[-1:]])
    nxt[done] = obs[done]
    return {"obs": obs, "act": np.clip(act, -1, 1), "next_obs": nxt, "done": done, "names": names}


def standardize(demo: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(mean, std, demonstrations) with the observations standardised by the demonstrations' own
    statistics: what the critic is trained on and the learner's ``FlatEnv`` observes."""
    mean, std = demo["obs"].mean(0), demo["obs"].std(0) + 1e-3
    norm = {
        k: (demo[k] - mean) / std if k in ("obs", "next_obs") else demo[k] for k in ("obs", "act", "next_obs", "done")
    }
    return mean, std, norm


def make_learner(venv, algo, seed: int):
    """The PPO learner of an adversarial run, with ``algo``'s settings (one PPO update per round of
    ``algo.env_steps_per_round`` steps)."""
    from stable_baselines3 import PPO

    n_steps = int(algo.env_steps_per_round)
    return PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=min(64, n_steps), n_epochs=int(algo.ppo_epochs),
               learning_rate=float(algo.ppo_lr), gamma=float(algo.gamma), ent_coef=0.0, seed=seed,
               policy_kwargs={"net_arch": list(algo.policy_hidden), "log_std_init": float(algo.log_std_init)},
               device="cpu", verbose=0)  # fmt: skip


def check_options(algo, task) -> None:
    """Every bad option as one line before any work starts."""
    method = str(algo.method)
    if method not in METHODS:
        raise ConfigError(f"algo.method: expected one of {' | '.join(METHODS)}, found {method!r}")
    check_divergence(str(algo.divergence))
    if method == "airl" and str(algo.divergence) != "js":
        raise ConfigError(
            f"algo.divergence: AIRL's discriminator is logistic (js); found {algo.divergence!r} (use algo.method=gail)"
        )
    if int(algo.env_steps_per_round) < 1 or int(algo.rounds) < 1:
        raise ConfigError(
            f"algo.env_steps_per_round x algo.rounds: expected a reinforcement-learning budget of at least one "
            f"environment step, found {algo.env_steps_per_round} x {algo.rounds}"
        )
    if int(algo.disc_chunk) != 1:
        raise ConfigError(
            f"algo.disc_chunk: expected 1 (the discriminator sees one (observation, action) pair; a learner trained "
            f"by PPO acts step by step, so its chunks are its next actions), found {algo.disc_chunk}"
        )
    if not hasattr(task, "make_env"):
        raise ConfigError(f"task {task.spec.name}: adversarial imitation needs a simulator for the learner's rollouts")


class SB3Actor:
    """Drives robolearn's rollout loop with the learner's deterministic (mean) action."""

    def __init__(self, model, flat_env: FlatEnv):
        self.model, self.env = model, flat_env

    def reset(self) -> None:
        pass

    def act(self, buf: dict[str, np.ndarray]) -> np.ndarray:
        x = np.stack(
            [self.env.flat({k: buf[k][i, -1] for k in self.env.keys}) for i in range(len(buf[self.env.keys[0]]))]
        )
        a, _ = self.model.predict(x, deterministic=True)
        return self.env.center + self.env.half * np.clip(a, -1, 1)


def run_adversarial(cfg, run_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Warm-start PPO by BC, then ``algo.rounds`` rounds of (PPO on the discriminator's reward for
    ``algo.env_steps_per_round`` steps, discriminator updates on those steps against the demos),
    evaluating the learner after each round on the task's evaluation seeds. Returns the history, the
    learner, the critic and the learner's env (the caller closes ``env``)."""
    try:
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError:
        raise ConfigError("adversarial imitation needs stable-baselines3: pip install stable-baselines3") from None
    from robolearn.atomic import write_json
    from robolearn.config import save_config
    from robolearn.data.replay_buffer import ReplayBuffer
    from robolearn.eval.metrics import summarize
    from robolearn.eval.rollout import rollout
    from robolearn.train.data import _check_data_path, make_task_from, task_obs_entries

    algo = cfg.algo
    task = make_task_from(cfg)
    check_options(algo, task)
    data_path = cfg.data or cfg.task.data
    _check_data_path(cfg, data_path)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    buf = ReplayBuffer.open(data_path)
    try:
        demo = demonstrations(buf, task_obs_entries(cfg), str(cfg.task.action_key), task)
    finally:
        buf.close()
    for k in demo["names"]:
        spec = task.spec.obs.get(k)
        if spec is None or spec.kind != "lowdim":
            raise ConfigError(
                f"{data_path}: key {k!r}: adversarial imitation expected low-dim observations the task provides, "
                f"found {'an image' if spec is not None else 'a key the task does not observe'}"
            )
    mean, std, norm = standardize(demo)
    method, div = str(algo.method), str(algo.divergence)
    critic = Critic(len(mean), norm["act"].shape[1], list(algo.disc_hidden), method, float(algo.gamma),
                    bool(algo.spectral_norm))  # fmt: skip
    d_opt = torch.optim.Adam(critic.parameters(), lr=float(algo.disc_lr))
    model_ref: dict[str, Any] = {}

    def t(x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32)

    def log_pi(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        policy = model_ref["model"].policy
        with torch.no_grad():
            _, lp, _ = policy.evaluate_actions(obs, act)
        return lp

    def reward_fn(o, a, o2, done) -> float:
        with torch.no_grad():
            if method == "airl":
                f = critic(t(o)[None], t(a)[None], t(o2)[None], torch.tensor([done]))
                return float(f - log_pi(t(o)[None], t(a)[None]))
            return float(fdiv_reward(critic(t(o)[None], t(a)[None]), div))

    env = FlatEnv(task, demo["names"], mean, std, reward_fn)
    venv = DummyVecEnv([lambda: env])
    n_steps = int(algo.env_steps_per_round)
    model = make_learner(venv, algo, seed)
    model_ref["model"] = model
    bc_loss = _warm_start(model, norm, int(algo.steps), int(algo.batch_size), float(algo.lr), seed)
    model.save(str(run_dir / "bc_start.zip"))  # the learner before any reinforcement learning
    hist_file = run_dir / "history.json"
    history: list[dict[str, Any]] = []
    labels = int(len(demo["obs"]))
    gen = torch.Generator().manual_seed(seed)

    def evaluate(r: int) -> dict:
        recs = rollout(lambda n, w: SB3Actor(model, env), task, int(cfg.eval.episodes), int(cfg.eval.n_envs),
                       int(cfg.eval.seed_start), 1, progress=False)  # fmt: skip
        return summarize(recs)

    m0 = evaluate(0)
    history.append({"round": 0, "env_steps": 0, "expert_labels": labels, "bc_loss": bc_loss,
                    "success_rate": m0["success_rate"], "success_ci95": m0["success_ci95"],
                    "mean_max_score": m0["mean_max_score"]})  # fmt: skip
    write_json(history, hist_file)
    env_steps = 0
    for r in range(1, int(algo.rounds) + 1):
        t0 = time.time()
        model.learn(total_timesteps=n_steps, reset_num_timesteps=False, progress_bar=False)
        env_steps += n_steps
        rb = model.rollout_buffer
        lo = t(rb.observations.reshape(n_steps, -1))
        la = t(np.clip(rb.actions.reshape(n_steps, -1), -1, 1))
        lr_ = rb.rewards.reshape(-1)
        starts = rb.episode_starts.reshape(-1).astype(bool)
        # the step before an episode start ended an episode; its true next observation was replaced by
        # the reset's, so AIRL's h(s') is masked there (the buffer's last step keeps its own as next)
        l_done = np.r_[starts[1:], False]
        l_next = torch.cat([lo[1:], lo[-1:]])
        l_next[torch.as_tensor(l_done)] = lo[torch.as_tensor(l_done)]
        frozen = algo.disc_rounds is not None and r > int(algo.disc_rounds)
        d_loss = float("nan") if frozen else _update_critic(
            critic, d_opt, norm, (lo, la, l_next, torch.as_tensor(l_done)), method, div, int(algo.disc_updates),
            int(algo.disc_batch), float(algo.grad_penalty), gen, log_pi if method == "airl" else None)  # fmt: skip
        m = evaluate(r)
        history.append({"round": r, "env_steps": env_steps, "expert_labels": labels,
                        "disc_loss": d_loss, "mean_learner_reward": float(np.mean(lr_)),
                        "success_rate": m["success_rate"], "success_ci95": m["success_ci95"],
                        "mean_max_score": m["mean_max_score"], "seconds": time.time() - t0})  # fmt: skip
        write_json(history, hist_file)
        if progress:
            h = history[-1]
            print(f"round {r}: env steps {env_steps}, disc loss {d_loss:.3f}, reward {h['mean_learner_reward']:.3f}, "
                  f"success {h['success_rate']:.2f}, score {h['mean_max_score']:.3f}", flush=True)  # fmt: skip
    model.save(str(run_dir / "learner.zip"))
    torch.save(critic.state_dict(), run_dir / "critic.pt")
    (run_dir / "normalization.json").write_text(
        json.dumps({"keys": demo["names"], "mean": mean.tolist(), "std": std.tolist()})
    )
    return {"history": history, "model": model, "critic": critic, "env": env, "demo": norm}


def _warm_start(model, demo: dict[str, np.ndarray], steps: int, batch: int, lr: float, seed: int) -> float:
    """Behaviour cloning of PPO's Gaussian policy (maximum likelihood on the demonstrations)."""
    policy = model.policy
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    obs, act = torch.as_tensor(demo["obs"]), torch.as_tensor(demo["act"])
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        i = torch.randint(0, len(obs), (min(batch, len(obs)),), generator=g)
        _, lp, _ = policy.evaluate_actions(obs[i], act[i])
        loss = -lp.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def _update_critic(critic, opt, demo, learner, method, div, updates, batch, gp, gen, log_pi) -> float:
    """``updates`` minibatch steps: expert pairs against the learner's latest rollout."""
    e_obs, e_act = torch.as_tensor(demo["obs"]), torch.as_tensor(demo["act"])
    e_next, e_done = torch.as_tensor(demo["next_obs"]), torch.as_tensor(demo["done"])
    l_obs, l_act, l_next, l_done = learner
    total = 0.0
    for _ in range(updates):
        i = torch.randint(0, len(e_obs), (batch,), generator=gen)
        j = torch.randint(0, len(l_obs), (batch,), generator=gen)
        if method == "airl":
            fe = critic(e_obs[i], e_act[i], e_next[i], e_done[i]) - log_pi(e_obs[i], e_act[i])
            fl = critic(l_obs[j], l_act[j], l_next[j], l_done[j]) - log_pi(l_obs[j], l_act[j])
            loss = F.softplus(-fe).mean() + F.softplus(fl).mean()  # logistic: expert 1, learner 0
        else:
            loss = -variational_bound(critic(e_obs[i], e_act[i]), critic(l_obs[j], l_act[j]), div)
        if gp > 0:
            a = torch.rand(batch, 1, generator=gen)
            xo = (a * e_obs[i] + (1 - a) * l_obs[j]).requires_grad_(True)
            xa = (a * e_act[i] + (1 - a) * l_act[j]).requires_grad_(True)
            out = critic.reward_g(xo, xa)
            grads = torch.autograd.grad(out.sum(), [xo, xa], create_graph=True)
            norm = torch.cat([gr.flatten(1) for gr in grads], 1).norm(dim=1)
            loss = loss + gp * ((norm - 1.0) ** 2).mean()  # WGAN-GP style, toward unit slope
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach())
    return total / max(1, updates)


def load_learner(run_dir: str | Path, task) -> SB3Actor:
    """A finished run's learner, ready for robolearn's rollout loop (the caller closes ``.env``)."""
    from stable_baselines3 import PPO

    run_dir = Path(run_dir)
    norm = json.loads((run_dir / "normalization.json").read_text())
    env = FlatEnv(task, list(norm["keys"]), np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32),
                  lambda *a: 0.0)  # fmt: skip
    return SB3Actor(PPO.load(str(run_dir / "learner.zip"), device="cpu"), env)


def discriminator_return(model, critic, env: FlatEnv, method: str, div: str, seeds: list[int], max_steps: int) -> float:
    """Mean undiscounted return of the learner's deterministic policy under a fixed critic's reward
    (GAIL: g(V) of the divergence; AIRL: the re-usable g), over the given seeds."""
    totals = []
    for s in seeds:
        o, _ = env.reset(seed=s)
        ret = 0.0
        for _ in range(max_steps):
            a, _ = model.predict(o, deterministic=True)
            a = np.clip(a, -1, 1).astype(np.float32)
            with torch.no_grad():
                ot, at = torch.as_tensor(o)[None], torch.as_tensor(a)[None]
                r = critic.reward_g(ot, at) if method == "airl" else fdiv_reward(critic(ot, at), div)
            ret += float(r)
            o, _, term, trunc, _ = _raw_step(env, a)
            if term or trunc:
                break
        totals.append(ret)
    return float(np.mean(totals)) if totals else math.nan


def _raw_step(env: FlatEnv, a: np.ndarray):
    """A step without calling the training reward function (which may depend on the policy)."""
    obs, _, term, trunc, info = env.env.step(env.center + env.half * a)
    env._obs = env.flat(obs)
    return env._obs, 0.0, bool(term or info.get("is_success", False)), bool(trunc), info


def main(overrides: list[str], default_algo: str = "gail") -> int:
    """``robolearn gail | airl [key=value ...]``: compose, refuse a finished or differently-set run
    directory, run, print the success before (the BC start) and after."""
    from pathlib import Path

    from robolearn.config import compose, refuse_changed_settings

    overrides = list(overrides)
    if not any(o.startswith("algo=") for o in overrides):
        overrides = [f"algo={default_algo}", *overrides]
    cfg = compose(overrides)
    if str(cfg.algo.name) not in ("gail", "airl"):
        raise ConfigError(f"algo={cfg.algo._name}: expected an adversarial algo config (gail | airl)")
    run_dir = Path(cfg.run_dir or f"runs/{cfg.task._name}_{cfg.algo.name}_s{cfg.seed}")
    refuse_changed_settings(cfg, run_dir, False, None)
    if (run_dir / "learner.zip").exists():
        raise ConfigError(f"{run_dir}: holds a finished {cfg.algo.name} run (learner.zip); choose a new run_dir")
    out = run_adversarial(cfg, run_dir)
    out["env"].close()
    first, last = out["history"][0], out["history"][-1]
    print(
        f"{cfg.algo.name} on {cfg.task.name}: success {first['success_rate']:.2f} (BC start) -> "
        f"{last['success_rate']:.2f} after {last['env_steps']} env steps, {last['expert_labels']} expert labels; "
        f"history: {run_dir / 'history.json'}"
    )
    return 0
