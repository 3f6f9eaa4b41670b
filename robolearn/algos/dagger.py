"""DAgger and HG-DAgger with action-chunk labels, on a zarr dataset that only ever grows.

Round 0 is BC on expert demonstrations. Each later round rolls the current policy out (mixed
with the expert: with probability beta the expert's action is executed), asks the expert
what it would do at every state the rollout reached, appends those labelled episodes to the
dataset and retrains. HG-DAgger lets the learner drive and the expert take over when the two
disagree by more than a threshold; only the takeover stretches are added.

Labels are chunks. A chunked policy predicts H actions at s_t, so its label must be the
expert's H actions *from s_t*: the simulator state is saved, the expert rolled H-1 steps
forward, the state restored (``ScriptedLabeler.chunk``). Windows over the learner's own
trajectory would instead label step t+k with the expert's action at a state the learner,
not the expert, produced. The dataset stores the chunk as ``action_chunk`` (T, H, A) next to
the per-step label ``action`` = chunk[:, 0]; ``ChunkLabelBundle`` makes the trainer fit the
stored chunk. The expert is the task's scripted expert or a trained policy checkpoint
(teacher-student: ``algo.expert=<checkpoint>``, labels from its ``predict_chunk``).

Faults: an episode becomes visible in the dataset only when complete (ReplayBuffer), the
trainer resumes from its own checkpoint, and ``progress.json`` is rewritten atomically after
each finished round. A killed run, started again with the same arguments, keeps the data of
the interrupted round (tagged with ``round`` and ``rollout`` ids), collects only what is
missing, and continues from the last completed round.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from robolearn.algos.accounting import evaluate_with_errors, mse, offpolicy_errors, plot_ledgers, write_ledger
from robolearn.config import load_group, save_config, write_json
from robolearn.data.replay_buffer import ReplayBuffer
from robolearn.errors import ConfigError, DataError
from robolearn.eval.rollout import ObsHistory
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import DataBundle, pick_device, train

CHUNK_KEY = "action_chunk"
HELDOUT_SEED = 500_000  # clean expert episodes for the off-policy error (eval uses 100_000+)
ROUND_STRIDE = 100_000  # rollout id = round * ROUND_STRIDE + index within the round


# ---- who labels: the scripted expert or a trained teacher ----------------------------------
class ScriptedLabeler:
    """The task's Markovian expert. Its chunk at a state is what it does from there for H
    steps: save the simulator, roll the expert forward, restore."""

    obs_horizon = 1

    def __init__(self, task, horizon: int):
        self.task, self.horizon = task, horizon
        self.expert = task.expert()
        if self.expert is None:
            raise ConfigError(
                f"task {task.spec.name!r} has no scripted expert; set algo.expert=<teacher checkpoint dir>"
            )
        self.sim_steps = 0

    def reset(self, env) -> None:
        self.expert.reset(env)

    def act(self, env, hist=None) -> np.ndarray:
        return np.asarray(self.expert.act(env), dtype=np.float32)

    def chunk(self, env, hist=None, n: int | None = None) -> np.ndarray:
        n = n or self.horizon
        state = self.task.get_state(env)
        out = []
        try:
            for i in range(n):
                out.append(self.act(env))
                if i < n - 1:
                    env.step(out[-1])
                    self.sim_steps += 1
        finally:
            self.task.set_state(env, state)
        return np.stack(out)


class TeacherLabeler:
    """A trained ChunkPolicy as the expert (teacher-student distillation, e.g. Push-T where only
    human data exists): its label is the chunk it predicts from its own observation history."""

    sim_steps = 0

    def __init__(self, policy: ChunkPolicy, horizon: int, seed: int = 0):
        if policy.horizon < horizon:
            raise ConfigError(
                f"algo.expert: the teacher predicts {policy.horizon} actions per chunk, "
                f"the student needs policy.horizon={horizon}; expected teacher horizon >= {horizon}"
            )
        self.policy, self.horizon, self.obs_horizon = policy, horizon, policy.obs_horizon
        self.gen = torch.Generator(device=policy.device).manual_seed(seed)

    def reset(self, env) -> None:
        pass

    def chunk(self, env, hist: dict[str, np.ndarray], n: int | None = None) -> np.ndarray:
        missing = set(self.policy.obs_spec) - set(hist)
        if missing:
            raise ConfigError(
                f"algo.expert: the teacher needs observation keys {sorted(missing)} the env does not give"
            )
        obs = {k: hist[k][None, -self.obs_horizon :] for k in self.policy.obs_spec}
        return self.policy.predict_chunk(obs, generator=self.gen)[0, : n or self.horizon].astype(np.float32)

    def act(self, env, hist: dict[str, np.ndarray]) -> np.ndarray:
        return self.chunk(env, hist, 1)[0]


def make_labeler(task, expert: str, horizon: int, device, seed: int = 0):
    if expert in (None, "", "scripted"):
        return ScriptedLabeler(task, horizon)
    return TeacherLabeler(ChunkPolicy.load(expert, device=device), horizon, seed)


# ---- one rollout ---------------------------------------------------------------------------
@dataclass
class Actor:
    """Who drives a rollout. ``expert``: the expert (+ Gaussian noise with std ``noise``, a
    scalar or a Cholesky factor (A, A): DART); ``mixture``: the expert's action with probability
    ``beta``, else the learner's (DAgger); ``gated``: the learner until it strays more than
    ``threshold`` from the expert, then the expert until the learner agrees within
    ``release * threshold`` again, for at least ``min_takeover`` steps (HG-DAgger)."""

    kind: str = "expert"
    noise: float | np.ndarray | None = None
    beta: float = 0.0
    threshold: float = 0.5
    release: float = 0.5
    min_takeover: int = 4
    record: dict[str, Any] = field(default_factory=dict)  # what the ledger shows (beta, noise std)


def run_episode(
    task,
    env,
    labeler,
    seed: int,
    actor: Actor,
    rng: np.random.Generator,
    chunk_labels: bool,
    policy: ChunkPolicy | None = None,
    exec_cfg: dict | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Roll one episode; return the labelled stretches to store and what it cost.

    Every stored step has the observation, the expert's label ``action`` (and ``action_chunk``),
    the executed ``exec_action`` (clipped to the action bounds) and ``expert_acted``."""
    from robolearn.algos.accounting import _LastFrames
    from robolearn.execution import build_executor

    if actor.kind not in ("expert", "mixture", "gated"):
        raise ConfigError(f"actor kind: expected expert | mixture | gated, found {actor.kind!r}")
    if actor.kind != "expert" and policy is None:
        raise ConfigError(f"actor {actor.kind!r} needs a learner policy")
    lo, hi = task.spec.action_low, task.spec.action_high
    obs, _ = env.reset(seed=seed)
    labeler.reset(env)
    hist = ObsHistory(max(labeler.obs_horizon, policy.obs_horizon if policy else 1))
    hist.reset({k: v[None] for k, v in obs.items()})
    ex = _LastFrames(build_executor(exec_cfg, policy, 1, generator=generator), policy.obs_horizon) if policy else None
    fast = chunk_labels and actor.kind == "expert" and actor.noise is None and isinstance(labeler, ScriptedLabeler)
    sim0 = labeler.sim_steps
    segments: list[dict[str, list]] = []
    seg: dict[str, list] | None = None
    expert_on, taken, success, steps, queries = actor.kind == "expert", 0, False, 0, 0
    while True:
        h = {k: v[0] for k, v in hist.buf.items()}
        a_exp = a_learn = None
        if actor.kind == "gated":
            a_exp = labeler.act(env, h)
            queries += 1
            if expert_on and taken >= actor.min_takeover:
                fresh = policy.predict_chunk(
                    {k: v[None, -policy.obs_horizon :] for k, v in h.items() if k in policy.obs_spec},
                    generator=generator,
                )[0, 0]
                if np.linalg.norm(fresh - a_exp) < actor.release * actor.threshold:
                    expert_on = False
                    ex.reset()
            if not expert_on:
                a_learn = ex.act(hist.buf)[0]
                if np.linalg.norm(a_learn - a_exp) > actor.threshold:
                    expert_on, taken = True, 0
        labelled = actor.kind != "gated" or expert_on
        chunk = None
        if labelled:
            if chunk_labels and not fast:
                chunk = labeler.chunk(env, h)
                a_exp = chunk[0]
            elif a_exp is None:
                a_exp = labeler.act(env, h)
            if actor.kind != "gated":
                queries += 1
        if actor.kind == "expert":
            a, by_expert = a_exp, True
            if actor.noise is not None:
                z = rng.standard_normal(a.shape[0])
                a = a + (actor.noise @ z if np.ndim(actor.noise) == 2 else actor.noise * z)
        elif actor.kind == "mixture":
            a_learn = ex.act(hist.buf)[0]  # the learner's queue advances every step, whoever acts
            by_expert = bool(rng.random() < actor.beta)
            a = a_exp if by_expert else a_learn
        else:
            by_expert = expert_on
            a = a_exp if expert_on else a_learn
            taken += expert_on
        a = np.clip(a, lo, hi).astype(np.float32)  # what the env executes (a regressor may ask for more)
        if labelled:
            if seg is None:
                keys = [*obs, "action", "exec_action", "expert_acted"] + ([CHUNK_KEY] if chunk is not None else [])
                seg = {k: [] for k in keys}
                segments.append(seg)
            for k, v in obs.items():
                seg[k].append(v)
            seg["action"].append(a_exp)
            seg["exec_action"].append(a)
            seg["expert_acted"].append(np.uint8(by_expert))
            if chunk is not None:
                seg[CHUNK_KEY].append(chunk)
        else:
            seg = None
        obs, _, term, trunc, info = env.step(a)
        hist.push({k: v[None] for k, v in obs.items()})
        steps += 1
        success = success or bool(info.get("is_success", False))
        if term or trunc or success:
            break
    out = [{k: np.stack(v) for k, v in s.items()} for s in segments]
    if fast and out:  # an undisturbed expert: its chunk at t is its own next H actions
        acts = out[0]["action"]
        tail = labeler.chunk(env, None, labeler.horizon - 1) if labeler.horizon > 1 else acts[:0]
        full = np.concatenate([acts, tail])
        out[0][CHUNK_KEY] = np.stack([full[t : t + labeler.horizon] for t in range(len(acts))])
    stats = {
        "success": success,
        "env_steps": steps,
        "queries": queries,
        "labels": int(sum(len(s["action"]) for s in out)),
        "label_sim_steps": labeler.sim_steps - sim0,
    }
    return out, stats


# ---- one round of collection, resumable ----------------------------------------------------
def _stored(buf: ReplayBuffer) -> dict[int, tuple[int, int]]:
    """Rollout id -> (round, labels stored) for everything already in the dataset."""
    if buf.n_episodes == 0:
        return {}
    d = buf.load(["rollout", "round"])
    ids, first, counts = np.unique(d["rollout"], return_index=True, return_counts=True)
    return {int(g): (int(d["round"][i]), int(n)) for g, i, n in zip(ids, first, counts)}


def collect_round(
    task,
    labeler,
    buf: ReplayBuffer,
    r: int,
    actor: Actor,
    *,
    n_rollouts: int,
    label_budget: int | None,
    max_rollouts: int,
    seed: int,
    chunk_labels: bool,
    keep_failures: bool,
    sidecar: Path,
    policy: ChunkPolicy | None = None,
    exec_cfg: dict | None = None,
    progress: bool = True,
) -> dict:
    """Run round ``r``'s rollouts, appending each one's labelled stretches as episodes.

    Stops after ``n_rollouts`` or, with ``label_budget``, once the round has added that many
    labels (at most ``max_rollouts``). Rollouts already in the dataset or in ``sidecar`` (the
    per-rollout cost log) are skipped, so a resumed round only collects what is missing. A
    rollout stored but not logged (killed in between) is logged from its stored steps."""
    stored = {g: n for g, (rr, n) in _stored(buf).items() if rr == r}
    log: dict[str, dict] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    for g, n in stored.items():  # killed between add_episode and the log write: rebuild what we can
        log.setdefault(
            str(g),
            {"success": None, "env_steps": n, "queries": n, "labels": n, "label_sim_steps": 0, "reconstructed": True},
        )
    done = {int(k) for k in log}
    labels = sum(stored.values())
    env = task.make_env()
    total = label_budget if label_budget else n_rollouts
    bar = tqdm(
        total=total,
        initial=min(labels, total) if label_budget else len(done),
        desc=f"round {r} ({actor.kind})",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for k in range(max_rollouts if label_budget else n_rollouts):
            if label_budget and labels >= label_budget:
                break
            g = r * ROUND_STRIDE + k
            if g in done:
                continue
            # per-rollout randomness, so a resumed round draws what an uninterrupted one would
            rng, before = np.random.default_rng([seed, g]), labels
            gen = torch.Generator(device=policy.device).manual_seed(_env_seed(seed, g)) if policy else None
            segs, st = run_episode(
                task, env, labeler, _env_seed(seed, g), actor, rng, chunk_labels, policy, exec_cfg, gen
            )
            kept = st["success"] or keep_failures
            for s in segs if kept else []:
                if label_budget:  # exact budgets: the last rollout contributes only what fits
                    s = {key: v[: label_budget - labels] for key, v in s.items()}
                n = len(s["action"])
                if n == 0:
                    break
                buf.add_episode({**s, "round": np.full(n, r, np.int32), "rollout": np.full(n, g, np.int64)})
                labels += n
            log[str(g)] = {**st, "labels": labels - before}
            write_json(log, sidecar)
            bar.update(labels - before if label_budget else 1)
    finally:
        bar.close()
        env.close()
    mine = [v for k, v in log.items() if int(k) // ROUND_STRIDE == r]
    return {
        "rollouts": len(mine),
        "labels": labels,
        **{k: int(sum(v[k] for v in mine)) for k in ("env_steps", "queries", "label_sim_steps")},
        "rollout_success": float(np.mean([v["success"] for v in mine if v["success"] is not None] or [np.nan])),
    }


def _env_seed(seed: int, g: int) -> int:
    """Collection seeds: disjoint from evaluation (100_000+) and held-out (500_000+) seeds."""
    return 10_000_000 * (seed + 1) + g


def ensure_heldout(task, labeler, path: Path, n: int, progress: bool = True) -> Path:
    """Clean expert episodes on fixed seeds, for the off-policy error (the same for every run)."""
    buf = ReplayBuffer.open(path, mode="a") if path.exists() else ReplayBuffer.create(path)
    env = task.make_env()
    try:
        for i in tqdm(
            range(buf.n_episodes, n), desc="held-out expert episodes", disable=not progress or n <= buf.n_episodes
        ):
            segs, _ = run_episode(
                task, env, labeler, HELDOUT_SEED + i, Actor("expert"), np.random.default_rng(i), chunk_labels=False
            )
            buf.add_episode(segs[0])
    finally:
        env.close()
    return path


# ---- training on chunk labels --------------------------------------------------------------
class ChunkLabelBundle(DataBundle):
    """DataBundle whose action targets are the stored expert chunks ``action_chunk[t, :H]``
    (all real: the expert was rolled H steps even past the episode's end) instead of windows
    over the per-step ``action``. Observation windows, split and normalizer are unchanged."""

    def __init__(self, cfg, data_path: str | Path, chunk_key: str = CHUNK_KEY):
        super().__init__(cfg, data_path)
        self.chunks = self.buffer.load([chunk_key])[chunk_key]
        self.horizon = int(cfg.policy.horizon)
        if self.chunks.ndim != 3 or self.chunks.shape[1] < self.horizon:
            raise DataError(
                f"{data_path}: key 'data/{chunk_key}' expected shape (T, >= {self.horizon}, A), "
                f"found {self.chunks.shape}"
            )

    def batch(self, sampler, size: int, rng: np.random.Generator) -> dict[str, Any]:
        idx = rng.integers(0, len(sampler), size=size)
        b = sampler.sample(idx)
        b["action"] = self.chunks[sampler.t[idx], : self.horizon]
        b["action_mask"] = np.ones(b["action"].shape[:2], dtype=bool)
        return b


# ---- the round loop, shared by BC-in-rounds, DART, DAgger and HG-DAgger ---------------------
def beta_at(r: int, algo) -> float:
    """Probability that the expert acts in round r >= 1: constant, linear (to 0 at the last
    round) or exponential (beta * decay^(r-1), Ross et al.)."""
    b, kind = float(algo.get("beta", 0.0)), str(algo.get("beta_schedule", "constant"))
    if kind == "constant":
        return b
    if kind == "linear":
        n = int(algo.rounds)
        return b * (1.0 - (r - 1) / max(1, n - 1)) if n > 1 else b
    if kind == "exponential":
        return b * float(algo.get("beta_decay", 0.5)) ** (r - 1)
    raise ConfigError(f"algo.beta_schedule: expected constant | linear | exponential, found {kind!r}")


def plan_round(r: int, history: list[dict], algo) -> Actor:
    """Who drives round r of ``algo.name``: bc (the expert, always), dagger, hg_dagger."""
    name = str(algo.name)
    if r == 0 or name == "bc":
        return Actor("expert")
    if name == "dagger":
        b = beta_at(r, algo)
        return Actor("mixture", beta=b, record={"beta": b})
    if name == "hg_dagger":
        return Actor(
            "gated",
            threshold=float(algo.threshold),
            release=float(algo.get("release", 0.5)),
            min_takeover=int(algo.get("min_takeover", 4)),
        )
    raise ConfigError(f"algo.name: expected bc | dagger | hg_dagger here, found {name!r}")


def with_training_defaults(cfg: DictConfig) -> DictConfig:
    """An interactive algo config lists its own keys; training keys it leaves out come from bc.yaml."""
    base = load_group("algo", "bc")
    for k in ("name", "_name"):
        base.pop(k, None)
    cfg = copy.deepcopy(cfg)
    cfg.algo = OmegaConf.merge(base, cfg.algo)
    return cfg


def run_rounds(
    cfg: DictConfig,
    run_dir: str | Path,
    plan: Callable[[int, list[dict], Any], Actor] = plan_round,
    progress: bool = True,
    dist=None,
) -> dict:
    """Collect -> train -> evaluate, round after round; resumes from ``run_dir/progress.json``.

    Under torchrun (``dist``, a world of several processes) rank 0 collects, evaluates and writes
    everything, as in one process; every rank joins each round's training (DDP)."""
    from envs import make_task

    cfg = with_training_defaults(cfg)
    if dist is not None and dist.world > 1 and not dist.is_main:
        return _train_rounds_follower(cfg, Path(run_dir), progress, dist)
    algo, method = cfg.algo, str(cfg.algo.name)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    prog_file = run_dir / "progress.json"
    prog = (
        json.loads(prog_file.read_text())
        if prog_file.exists()
        else {"method": method, "completed_round": -1, "history": [], "checkpoints": {}}
    )
    if prog["method"] != method:
        raise ConfigError(
            f"{prog_file}: run dir holds a {prog['method']!r} run, expected {method!r}; use another run_dir"
        )
    save_config(cfg, run_dir / "config.yaml")
    if dist is not None:
        dist.barrier()  # the followers read progress.json from here on
    task = make_task(cfg.task.name, **dict(cfg.task.get("kwargs") or {}))
    device = pick_device(str(cfg.get("device", "auto")))
    seed, horizon = int(cfg.seed), int(cfg.policy.horizon)
    chunk_labels = str(algo.get("labels", "chunk")) == "chunk"
    if str(algo.get("labels", "chunk")) not in ("chunk", "step"):
        raise ConfigError(f"algo.labels: expected chunk | step, found {algo.labels!r}")
    labeler = make_labeler(task, str(algo.get("expert", "scripted")), horizon, device, seed)
    heldout = ensure_heldout(task, labeler, run_dir / "heldout.zarr", int(algo.heldout_episodes), progress)
    data_path = run_dir / "data.zarr"
    buf = ReplayBuffer.open(data_path, mode="a") if data_path.exists() else ReplayBuffer.create(data_path)
    exec_cfg = OmegaConf.to_container(cfg.exec, resolve=True)
    n_eval = int(algo.get("eval_episodes") or cfg.eval.episodes)
    budget = algo.get("labels_per_round")
    if prog["history"]:  # a kill between progress.json and the ledger leaves the ledger one round behind
        write_ledger(prog["history"], run_dir / "ledger.csv")
    totals = {
        k: (prog["history"][-1][k] if prog["history"] else 0)
        for k in ("expert_queries", "env_steps", "label_sim_steps")
    }
    for r in range(prog["completed_round"] + 1, int(algo.rounds) + 1):
        prev = ChunkPolicy.load(run_dir / prog["checkpoints"][str(r - 1)], device=device) if r > 0 else None
        actor = plan(r, prog["history"], algo)
        rdir = run_dir / f"round_{r:02d}"
        rdir.mkdir(exist_ok=True)
        st = collect_round(
            task,
            labeler,
            buf,
            r,
            actor,
            n_rollouts=int(algo.demo_episodes if r == 0 else algo.episodes_per_round),
            label_budget=int(budget) if budget else None,
            max_rollouts=int(algo.get("max_rollouts_per_round", 1000)),
            seed=seed,
            chunk_labels=chunk_labels,
            keep_failures=r > 0 or bool(algo.get("keep_failed_demos")),
            sidecar=rdir / "collect.json",
            policy=prev,
            exec_cfg=exec_cfg,
            progress=progress,
        )
        if buf.n_episodes == 0:
            raise DataError(
                f"{data_path}: round {r} added no episodes (expert success {st['rollout_success']:.0%}); "
                f"nothing to train on (algo.keep_failed_demos=true keeps failed demonstrations)"
            )
        rcfg = copy.deepcopy(cfg)
        rcfg.data = str(data_path)
        warm = str(algo.get("retrain", "scratch")) == "warm" and prev is not None
        if warm and algo.get("warm_steps"):
            rcfg.algo.steps = int(algo.warm_steps)
        t0 = time.time()
        if dist is not None:
            dist.barrier()  # the round's data is on disk: the other ranks join its training
        bundle = ChunkLabelBundle(rcfg, data_path) if chunk_labels else DataBundle(rcfg, data_path)
        ckpt = train(rcfg, rdir / "train", progress=progress, data=bundle, init_from=prev if warm else None, dist=dist)
        train_s = time.time() - t0
        policy = ChunkPolicy.load(ckpt, device=device)
        m, on = evaluate_with_errors(
            policy,
            task,
            labeler,
            exec_cfg,
            n_eval,
            int(cfg.eval.n_envs),
            int(cfg.eval.seed_start),
            seed=seed,
            progress=progress,
        )
        off = offpolicy_errors(policy, heldout, (task.spec.action_low, task.spec.action_high), seed=seed)
        for k, v in (("expert_queries", "queries"), ("env_steps", "env_steps"), ("label_sim_steps", "label_sim_steps")):
            totals[k] += st[v]
        row = {
            "method": method,
            "seed": seed,
            "round": r,
            "expert_labels": buf.n_steps,
            **totals,
            "dataset_episodes": buf.n_episodes,
            "rollouts": st["rollouts"],
            "beta": actor.record.get("beta"),
            "noise_std": actor.record.get("noise_std"),
            "success_rate": m["success_rate"],
            "success_lo": m["success_ci95"][0],
            "success_hi": m["success_ci95"][1],
            "mean_max_score": m["mean_max_score"],
            "offpolicy_mse": mse(off),
            "onpolicy_mse": mse(on),
            "train_seconds": train_s,
            "rollout_success": st["rollout_success"],
            "error_cov": (off.T @ off / max(1, len(off))).tolist(),
        }
        prog["history"].append(row)
        prog["checkpoints"][str(r)] = str(Path(ckpt).relative_to(run_dir))  # the run dir may move
        prog["completed_round"] = r
        write_json(prog, prog_file)  # the round exists from here on
        write_ledger(prog["history"], run_dir / "ledger.csv")
        plot_ledgers(prog["history"], run_dir / "ledger.png", title=f"{method} on {cfg.task.name}")
        if progress:
            print(
                f"round {r}: labels {row['expert_labels']}, success {row['success_rate']:.2f}, "
                f"off-policy mse {row['offpolicy_mse']:.4g}, on-policy mse {row['onpolicy_mse']:.4g}"
            )
    return prog


def _train_rounds_follower(cfg: DictConfig, run_dir: Path, progress: bool, dist) -> dict:
    """A rank other than 0: wait for each round's data, then train on it with the others."""
    algo = cfg.algo
    prog_file = run_dir / "progress.json"
    dist.barrier()  # rank 0 has read or created the run directory's state
    prog = json.loads(prog_file.read_text()) if prog_file.exists() else {"completed_round": -1, "checkpoints": {}}
    device = pick_device(str(cfg.device))
    chunk_labels = str(algo.labels) == "chunk"
    for r in range(prog["completed_round"] + 1, int(algo.rounds) + 1):
        rcfg = copy.deepcopy(cfg)
        rcfg.data = str(run_dir / "data.zarr")
        dist.barrier()  # rank 0 collected round r
        prev = None
        if r > 0 and str(algo.retrain) == "warm":
            done = json.loads(prog_file.read_text())["checkpoints"]
            prev = ChunkPolicy.load(run_dir / done[str(r - 1)], device=device)
            if algo.warm_steps:
                rcfg.algo.steps = int(algo.warm_steps)
        bundle = ChunkLabelBundle(rcfg, rcfg.data) if chunk_labels else DataBundle(rcfg, rcfg.data)
        train(rcfg, run_dir / f"round_{r:02d}" / "train", progress=False, data=bundle, init_from=prev, dist=dist)
    return prog


def run_dagger(cfg: DictConfig, run_dir: str | Path, progress: bool = True, dist=None) -> dict:
    """DAgger (``algo=dagger``), HG-DAgger (``algo=hg_dagger``) or BC in rounds (``algo.name=bc``,
    the equal-budget baseline). Returns the progress record (history rows, checkpoints)."""
    return run_rounds(cfg, run_dir, plan_round, progress, dist)
