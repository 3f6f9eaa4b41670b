"""The training loop: one loop for every head and encoder, BC on a fixed dataset.

AdamW with warm-up + cosine decay, an EMA copy of the weights (what gets saved and
evaluated), gradient clipping, TensorBoard scalars, periodic checkpoints and exact resume
(model, EMA, optimizer, schedule, step and RNG states). CUDA with bf16 autocast when present.

``algo.eval_every`` adds closed-loop evaluations during training (Diffusion Policy's protocol:
the EMA weights on fixed seeds, ``eval.episodes`` from ``eval.seed_start``): their score and
success go to TensorBoard, ``train_history.json`` (rows with ``eval_score``) and ``eval.png``
(against step and against training wall-clock, evaluations excluded), and the summary reports
the best evaluation and the mean of the last ``algo.eval_last_k``.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from robolearn.atomic import atomic_path, write_json
from robolearn.config import save_config, to_dict
from robolearn.data.dataset import load_dataset, train_val_split
from robolearn.data.normalizer import Normalizer
from robolearn.data.sampler import WindowSampler
from robolearn.errors import ConfigError, DataError
from robolearn.locks import WriteLock
from robolearn.policy import ChunkPolicy, obs_name, spec_from_array
from robolearn.train import dist as distributed


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present (under torchrun, the GPU of this rank's LOCAL_RANK), else CPU."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: CUDA is not available on this machine")
    if name in ("auto", "cuda") and torch.cuda.is_available():
        import os

        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    if name == "auto":
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def to_torch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    def conv(x):
        return torch.from_numpy(np.ascontiguousarray(x)).to(device, non_blocking=True)

    return {
        "obs": {k: conv(v) for k, v in batch["obs"].items()},
        "action": conv(batch["action"]),
        "action_mask": conv(batch["action_mask"]),
    }


def task_obs_entries(cfg) -> list[str]:
    """The dataset entries of a task's observations: ``task.obs_keys``, or the task's own
    ``spec.data_keys`` when the config leaves them to it (e.g. Push-T's angle encoding)."""
    if cfg.task.get("obs_keys"):
        return list(cfg.task.obs_keys)
    return list(make_task_from(cfg).spec.data_keys)


def make_task_from(cfg):
    from envs import make_task

    return make_task(str(cfg.task.name), **dict(cfg.task.get("kwargs") or {}))


def eval_plan(cfg) -> dict[str, Any] | None:
    """Validated settings of the evaluations during training, or None when off."""
    algo, steps = cfg.algo, cfg.algo.steps
    every = algo.eval_every
    if every is None:
        return None
    if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
        raise ConfigError(f"algo.eval_every: expected a positive number of steps (or null = off), found {every!r}")
    if isinstance(steps, int) and every > steps:
        raise ConfigError(f"algo.eval_every: expected <= algo.steps={steps} (no evaluation would run), found {every}")
    k = algo.eval_last_k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"algo.eval_last_k: expected a positive int, found {k!r}")
    ev = cfg.eval
    episodes = ev.episodes
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"eval.episodes: expected a positive int, found {episodes!r}")
    workers = ev.workers
    if not (workers == "auto" or (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 0)):
        raise ConfigError(f"eval.workers: expected 'auto' or an int >= 0, found {workers!r}")
    return {
        "every": every,
        "last_k": k,
        "episodes": episodes,
        "n_envs": int(ev.n_envs),
        "seed_start": int(ev.seed_start),
        "workers": workers,
        "action_noise": float(ev.action_noise),
        "task": make_task_from(cfg),
        "exec": to_dict(cfg.exec),
    }


def eval_workers(setting) -> int:
    """``auto``: worker processes only when more than one core is free (the load average says
    how many are taken, this process included), else in-process (0)."""
    if setting != "auto":
        return int(setting)
    import os

    from robolearn.eval.workers import free_cores

    idle = free_cores() - int(round(os.getloadavg()[0]))
    return idle + 1 if idle >= 1 else 0


def _check_data_path(cfg, data_path) -> None:
    """A missing dataset says where the path came from and how to set it."""
    if data_path is None or str(data_path) in ("", "None"):
        raise ConfigError(f"data: expected the path of a zarr dataset for task {cfg.task.name} (data=PATH), found none")
    if Path(data_path).exists():
        return
    import re

    from omegaconf import OmegaConf

    raw = str(OmegaConf.to_container(cfg.task, resolve=False).get("data"))
    var = re.search(r"oc\.env:(\w+)", raw)
    hint = f"set {var.group(1)}=PATH or pass data=PATH" if var and not cfg.get("data") else "pass data=PATH"
    raise DataError(
        f"{data_path}: no dataset at this path (task {cfg.task.name}; {hint}; working directory {Path.cwd()})"
    )


MAX_ABS = 1e6  # larger finite values in float32 training are a units or scaling mistake, not data


def check_against_task(cfg, data: DataBundle) -> None:
    """Every observation and the action of the dataset against the task's spec, before training:
    keys the task observes, rank and width, images of the task's size, and values plausible for
    float32 training. One line naming the key, expected and found."""
    task = make_task_from(cfg)
    spec, where = task.spec, f"{cfg.data or cfg.task.data}"
    for k, s in data.obs_spec.items():
        if k not in spec.obs:
            raise DataError(
                f"{where}: key {k!r}: the task {spec.name} observes {sorted(spec.obs)}, found a key it does not "
                "provide (a policy trained on it could not be evaluated); fix task.obs_keys"
            )
        want = spec.obs[k]
        if want.kind != s.kind or tuple(want.shape) != tuple(s.shape):
            what = "an image" if want.kind == "rgb" else "a low-dim vector"
            raise DataError(
                f"{where}: key {k!r}: expected {what} of shape {tuple(want.shape)} (task {spec.name}), "
                f"found {'an image' if s.kind == 'rgb' else 'low-dim'} of shape {tuple(s.shape)}"
            )
    if data.action_dim != spec.action_dim or data.action_rank != 2:
        raise DataError(
            f"{where}: key {data.action_key!r}: expected actions of shape (N, {spec.action_dim}) (task {spec.name}), "
            f"found (N, {', '.join(map(str, data.action_shape))})"
        )
    acts = np.asarray(data.arrays[data.action_key], dtype=np.float64).reshape(len(data.arrays[data.action_key]), -1)
    lo, hi = np.asarray(spec.action_low, np.float64), np.asarray(spec.action_high, np.float64)
    slack = 0.5 * (hi - lo)  # demonstrations may overshoot a little; far outside is another unit or task
    out = ((acts < lo - slack) | (acts > hi + slack)).any(axis=1)
    if out.any():
        row = int(np.argmax(out))
        raise DataError(
            f"{where}: key 'data/{data.action_key}': expected actions within the task's range "
            f"[{lo.min():g}, {hi.max():g}] (task {spec.name}), found {acts[row].round(3).tolist()} at row {row}"
        )
    for k in [*data.lowdim_keys, data.action_key]:
        x = data.arrays[k]
        big = np.abs(np.asarray(x, dtype=np.float64)).reshape(len(x), -1).max(axis=1) > MAX_ABS
        if big.any():
            row = int(np.argmax(big))
            raise DataError(
                f"{where}: key 'data/{k}': expected magnitudes below {MAX_ABS:g} for float32 training, found "
                f"{float(np.abs(np.asarray(x[row], dtype=np.float64)).max()):.3g} at row {row}"
            )


class DataBundle:
    """What training needs from a dataset: windows for train/val, specs and a fitted normalizer."""

    def __init__(self, cfg, data_path: str | Path):
        pol, algo = cfg.policy, cfg.algo
        obs_entries = task_obs_entries(cfg)
        self.obs_keys = [obs_name(e) for e in obs_entries]
        self.action_key = cfg.task.get("action_key", "action")
        _check_data_path(cfg, data_path)
        self.buffer, arrays = load_dataset(data_path, obs_entries, action_key=self.action_key)
        ends = np.asarray(self.buffer.episode_ends)
        n_eps = len(ends)
        if algo.max_episodes:
            n_eps = min(n_eps, int(algo.max_episodes))
        val_mask = algo.val_mask
        if val_mask:  # a stored split (robomimic's mask/<filter>, kept by `robolearn convert`)
            masks = dict(self.buffer.attrs.get("masks") or {})
            if val_mask not in masks:
                raise ConfigError(
                    f"algo.val_mask={val_mask}: expected one of the dataset's masks {sorted(masks)}, "
                    f"found no such mask in {data_path}"
                )
            val_eps = np.array(sorted(e for e in masks[val_mask] if e < n_eps), dtype=np.int64)
            train_eps = np.setdiff1d(np.arange(n_eps), val_eps)
            if not len(train_eps):
                raise ConfigError(f"algo.val_mask={val_mask}: expected episodes left for training, found none")
        else:
            train_eps, val_eps = train_val_split(n_eps, float(algo.val_fraction), seed=int(cfg.seed))
        self.n_train_episodes = len(train_eps)
        self.obs_spec = {k: spec_from_array(arrays[k]) for k in self.obs_keys}
        self.arrays = arrays
        self.lowdim_keys = [k for k in self.obs_keys if self.obs_spec[k].kind == "lowdim"]
        self.action_shape = tuple(int(d) for d in arrays[self.action_key].shape[1:])
        self.action_rank = arrays[self.action_key].ndim
        self.action_dim = int(arrays[self.action_key].shape[-1]) if self.action_rank > 1 else 1
        starts = np.concatenate([[0], ends[:-1]])
        train_rows = np.concatenate([np.arange(starts[e], ends[e]) for e in train_eps])
        self.normalizer = Normalizer()
        fit_keys = [k for k in self.obs_keys if self.obs_spec[k].kind == "lowdim"] + [self.action_key]
        self.normalizer.fit(
            {("action" if k == self.action_key else k): arrays[k][train_rows] for k in fit_keys},
            str(pol.normalizer),
        )
        kw = dict(
            obs_keys=self.obs_keys,
            action_key=self.action_key,
            obs_horizon=int(pol.obs_horizon),
            horizon=int(pol.horizon),
        )
        self.train = WindowSampler(arrays, ends, episodes=train_eps, **kw)
        self.val = WindowSampler(arrays, ends, episodes=val_eps, **kw) if len(val_eps) else None
        # stored chunk labels (DAgger's expert chunks, robolearn correct): the target of step t is
        # chunk[t, :H], all real, instead of the window over the per-step actions
        self.chunks, self.horizon = None, int(pol.horizon)
        if algo.chunk_key:
            key = str(algo.chunk_key)
            if key not in self.buffer.keys:
                raise DataError(
                    f"{data_path}: key 'data/{key}' expected by algo.chunk_key, found keys {self.buffer.keys}"
                )
            self.chunks = self.buffer.load([key])[key]
            if self.chunks.ndim != 3 or self.chunks.shape[1] < self.horizon or self.chunks.shape[2] != self.action_dim:
                raise DataError(
                    f"{data_path}: key 'data/{key}' expected shape (T, >= {self.horizon}, {self.action_dim}), "
                    f"found {self.chunks.shape}"
                )

    def batch(self, sampler: WindowSampler, size: int, rng: np.random.Generator) -> dict[str, Any]:
        if self.chunks is None:
            return sampler.random_batch(size, rng)
        idx = rng.integers(0, len(sampler), size=size)
        b = sampler.sample(idx)
        b["action"] = self.chunks[sampler.t[idx], : self.horizon]
        b["action_mask"] = np.ones(b["action"].shape[:2], dtype=bool)
        return b


class _Loss(torch.nn.Module):
    """The policy's loss as ``forward``: DistributedDataParallel synchronizes gradients of what
    its forward ran, and a policy's training entry point is ``compute_loss``."""

    def __init__(self, policy: ChunkPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.policy.compute_loss(batch)


def train(
    cfg,
    run_dir: str | Path,
    progress: bool = True,
    data: DataBundle | None = None,
    init_from: ChunkPolicy | None = None,
    dist: distributed.Dist | None = None,
) -> Path:
    """Train a ChunkPolicy; returns the path of the final (EMA) checkpoint.

    With ``dist`` (the process group of a ``torchrun`` launch, see ``robolearn.train.dist``) this
    is data-parallel: ``algo.batch_size`` is the global batch, split evenly over the ranks; each
    rank draws its own windows (seeded by seed and rank); rank 0 alone keeps the EMA and writes
    the run directory. Without it, one process, as always."""
    run_dir = Path(run_dir)
    algo = cfg.algo
    plan = eval_plan(cfg)  # bad evaluation settings fail before anything is written
    device = pick_device(str(cfg.device))
    dist = dist or distributed.Dist()
    batch_size = int(algo.batch_size)
    if batch_size % dist.world:
        raise ConfigError(
            f"algo.batch_size: the global batch must divide evenly over the {dist.world} processes "
            f"of this launch, found {batch_size}"
        )
    local_batch = batch_size // dist.world
    seed_everything(int(cfg.seed))
    if data is None:
        data = DataBundle(cfg, cfg.data or cfg.task.data)
        check_against_task(cfg, data)
    # everything that can be checked without writing is checked first: a failed start changes no file
    policy = ChunkPolicy(to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer).to(device)
    resume_file = run_dir / "resume" / "state.pt"
    st = _load_resume(resume_file, device) if resume_file.exists() else None
    saved_world = int(st.get("world_size", 1)) if st is not None else dist.world
    if saved_world != dist.world:
        raise ConfigError(
            f"{resume_file}: written by a launch of {saved_world} process(es), this one has "
            f"{dist.world}; re-launch with {saved_world} (torchrun --nproc_per_node) to resume "
            "exactly, or start a new run_dir"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir}: expected a directory, found a file")
    lock = WriteLock(run_dir, "run directory").acquire() if dist.is_main else None  # one trainer per run dir
    try:
        if dist.is_main:
            _writable_dir(run_dir)
            save_config(cfg, run_dir / "config.yaml")

        if init_from is not None:  # warm start (DAgger rounds): same architecture, new normalizer
            own = policy.state_dict()
            own.update({k: v for k, v in init_from.state_dict().items() if not k.startswith("normalizer.")})
            policy.load_state_dict(own)
        if init_from is None:  # the head's data-fitting hook (e.g. autoregressive bins); kept when warm-started
            acts = data.batch(data.train, min(len(data.train), 20000), np.random.default_rng(0))["action"]
            policy.head.fit_data(policy.normalizer.normalize("action", torch.as_tensor(acts, device=device).float()))
        # rank 0 keeps the EMA; the others hold a copy that receives it for sharded evaluations
        ema = copy.deepcopy(policy).requires_grad_(False)

        steps = int(algo.steps)
        opt = make_optimizer(policy, algo)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(int(algo.warmup_steps), steps))
        # one stream of windows (and of loss noise) per rank; a world of one keeps the plain seed
        rng = np.random.default_rng(int(cfg.seed) if dist.world == 1 else [int(cfg.seed), dist.rank])
        if dist.world > 1:
            torch.manual_seed(int(cfg.seed) * 1_000_003 + dist.rank)
        start = 0
        if st is not None:
            try:
                policy.load_state_dict(st["model"])
                ema.load_state_dict(st["ema"])
                opt.load_state_dict(st["opt"])
                sched.load_state_dict(st["sched"])
            except (RuntimeError, ValueError, KeyError) as e:
                first = str(e).strip().splitlines()[0][:200]
                raise DataError(
                    f"{resume_file}: expected the training state of this run's architecture, found one that "
                    f"does not fit ({first}); the config changed in a way that changes the weights: use a "
                    "new run_dir"
                ) from None
            start = int(st["step"])
            if start >= steps and (run_dir / "train_summary.json").exists():
                return run_dir / "checkpoints" / "last"  # finished before: keep its summary and timing
            np_state, torch_state = (
                (st["np_rng"], st["torch_rng"])
                if saved_world == 1
                else (st["np_rng_ranks"][dist.rank], st["torch_rng_ranks"][dist.rank])
            )
            rng.bit_generator.state = _unpack_rng(np_state)
            torch.set_rng_state(torch_state.cpu())
        model = policy
        if dist.world > 1:  # after resume: DDP starts from rank 0's weights, identical anyway
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(
                _Loss(policy), device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
            )
        try:
            state = RunState(policy, model, ema, opt, sched, rng, start, steps, local_batch, resume_file)
            return _loop(cfg, run_dir, progress, data, state, plan, dist, device)
        except RuntimeError as e:
            if dist.active and _is_comm_error(e):
                raise distributed.lost_rank_error(dist, e) from None
            raise
    finally:
        if lock is not None:
            lock.release()


def make_optimizer(policy: torch.nn.Module, algo) -> torch.optim.Optimizer:
    """AdamW; fused (one kernel for the whole update: 7-11% faster training steps on CPU,
    tools/profile_train_step.py) unless ``algo.fused_optimizer`` is off or the device lacks it."""
    kw = dict(lr=float(algo.lr), betas=tuple(algo.betas), weight_decay=float(algo.weight_decay))
    if algo.fused_optimizer:
        try:
            return torch.optim.AdamW(policy.parameters(), fused=True, **kw)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW(policy.parameters(), **kw)


def _is_comm_error(e: BaseException) -> bool:
    text = f"{type(e).__name__} {e}".lower()
    return any(w in text for w in ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "distbackend"))


@dataclass
class RunState:
    """What the training loop advances: the policy (and its DDP wrapper ``model``, the policy
    itself in one process), the EMA copy, optimizer, schedule and window stream, from step
    ``start`` to ``steps``, ``local_batch`` windows per step on this rank; ``resume_file`` holds it
    for an exact resume."""

    policy: ChunkPolicy
    model: torch.nn.Module
    ema: ChunkPolicy
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    rng: np.random.Generator
    start: int
    steps: int
    local_batch: int
    resume_file: Path


def _loop(cfg, run_dir: Path, progress: bool, data, run: RunState, plan, dist, device) -> Path:
    algo = cfg.algo
    policy, model, ema, opt, sched, rng = run.policy, run.model, run.ema, run.opt, run.sched, run.rng
    start, steps, local_batch, resume_file = run.start, run.steps, run.local_batch, run.resume_file
    main = dist.is_main
    writer = None
    if main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
    amp = device.type == "cuda"
    history: list[dict[str, float]] = _read_history(run_dir) if start and main else []
    t0, seen = time.time(), 0
    train_s = history[-1].get("train_s", 0.0) if history else 0.0  # wall-clock of training alone
    t_last = time.time()
    bar = tqdm(
        range(start, steps),
        initial=start,
        total=steps,
        desc="train",
        disable=not (progress and main),
        dynamic_ncols=True,
    )
    for step in bar:
        policy.train()
        batch = to_torch(data.batch(data.train, local_batch, rng), device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(batch) if model is not policy else policy.compute_loss(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower algo.lr or check the data")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(policy.parameters(), float(algo.grad_clip))
        opt.step()
        sched.step()
        policy.head.on_train_step(step + 1, steps)
        if main:
            decay = min(float(algo.ema_decay), (1 + step) / (10 + step))
            ema_update(ema, policy, decay)
        seen += local_batch * dist.world
        done = step + 1
        now = time.time()
        train_s += now - t_last
        t_last = now
        evaluate_now = plan is not None and (done % plan["every"] == 0 or done == steps)
        if done % int(algo.log_every) == 0 or done == steps or evaluate_now:
            rec = {
                "step": done,
                "loss": dist.mean(loss.item()),
                "grad_norm": gnorm.item(),
                "lr": sched.get_last_lr()[0],
                "train_s": train_s,
            }
            if main and data.val is not None and (done % int(algo.val_every) == 0 or done == steps):
                rec["val_loss"] = validate(ema, data, int(algo.batch_size))
            if evaluate_now:
                dist.broadcast_module(ema)
                ev = evaluate_during_training(ema, plan, dist)
                if main:
                    rec.update(ev)
                    bar.write(
                        f"step {done}: eval score {rec['eval_score']:.3f} success {rec['eval_success']:.2f} "
                        f"({rec['eval_s']:.0f} s)"
                    )
            if main:
                for k, v in rec.items():
                    if k != "step" and np.isscalar(v):
                        writer.add_scalar(f"{'eval' if k.startswith('eval_') else 'train'}/{k}", v, done)
                history.append(rec)
                bar.set_postfix(
                    loss=f"{rec['loss']:.4f}", **({"val": f"{rec['val_loss']:.4f}"} if "val_loss" in rec else {})
                )
            t_last = time.time()  # validation and evaluation do not count as training time
        if done % int(algo.ckpt_every) == 0 or done == steps:
            rngs = dist.gather((_pack_rng(rng.bit_generator.state), torch.get_rng_state()))
            if main:
                ema.save(run_dir / "checkpoints" / "last", extra={"step": done, "task": to_dict(cfg.task)})
                _save_resume(resume_file, policy, ema, opt, sched, done, rngs)
                write_json(history, run_dir / "train_history.json")
            t_last = time.time()
    elapsed = time.time() - t0
    if main:
        writer.close()
        summary = {
            "steps": steps,
            "seconds": elapsed,
            "samples_per_s": seen / max(elapsed, 1e-9),
            "train_seconds": train_s,
            "final_loss": history[-1]["loss"] if history else None,
            "n_train_episodes": data.n_train_episodes,
            "device": str(device),
            "world_size": dist.world,
        }
        if plan is not None:
            summary["eval"] = eval_summary(history, plan["last_k"])
        write_json(summary, run_dir / "train_summary.json")
        plot_history(history, run_dir / "loss.png")
        plot_evals(history, run_dir / "eval.png", str(cfg.task.name))
    dist.barrier()  # the run directory is complete before any rank returns
    return run_dir / "checkpoints" / "last"


def evaluate_during_training(ema: ChunkPolicy, plan: dict[str, Any], dist=None) -> dict[str, float]:
    """One closed-loop evaluation of the EMA weights (its waves split over the ranks of a
    distributed run); the global RNG is left as it was, so a run with evaluations trains exactly
    like one without. Returns the metrics on rank 0, {} elsewhere."""
    from robolearn.eval.rollout import evaluate_policy

    state = torch.get_rng_state()
    t = time.time()
    m = evaluate_policy(
        ema,
        plan["task"],
        plan["exec"],
        None,
        n_episodes=plan["episodes"],
        n_envs=plan["n_envs"],
        seed_start=plan["seed_start"],
        progress=False,
        workers=eval_workers(plan["workers"]),
        dist=dist,
        action_noise=plan["action_noise"],
    )
    torch.set_rng_state(state)
    if m is None:
        return {}
    return {
        "eval_score": m["mean_max_score"],
        "eval_success": m["success_rate"],
        "eval_success_ci95": m["success_ci95"],
        "eval_episodes": m["episodes"],
        "eval_s": time.time() - t,
    }


def eval_summary(history: list[dict[str, Any]], last_k: int) -> dict[str, Any]:
    """The protocol's numbers from the evaluation rows: the best evaluation (by score, then
    success) and the mean of the last ``last_k``."""
    rows = [h for h in history if "eval_score" in h]
    if not rows:
        return {"n_evals": 0}
    best = max(rows, key=lambda h: (h["eval_score"], h["eval_success"]))
    last = rows[-last_k:]
    return {
        "n_evals": len(rows),
        "episodes": rows[-1]["eval_episodes"],
        "best_score": best["eval_score"],
        "best_success": best["eval_success"],
        "best_step": best["step"],
        "last_k": len(last),
        "mean_last_k_score": float(np.mean([h["eval_score"] for h in last])),
        "mean_last_k_success": float(np.mean([h["eval_success"] for h in last])),
        "final_score": rows[-1]["eval_score"],
        "final_success": rows[-1]["eval_success"],
        "eval_seconds": float(sum(h["eval_s"] for h in rows)),
    }


def plot_evals(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Score and success of the evaluations against step and against training wall-clock."""
    rows = [h for h in history if "eval_score" in h]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, key, label in ((axes[0], "step", "training step"), (axes[1], "train_s", "training wall-clock (min)")):
        x = np.array([h[key] for h in rows], dtype=float) / (60.0 if key == "train_s" else 1.0)
        ax.plot(x, [h["eval_score"] for h in rows], "o-", label="mean max score")
        ax.plot(x, [h["eval_success"] for h in rows], "s-", label="success rate")
        ax.set_xlabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{title}: {rows[-1]['eval_episodes']} evaluation episodes each (EMA weights)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


@torch.no_grad()
def validate(policy: ChunkPolicy, data: DataBundle, batch_size: int, n_batches: int = 4) -> float:
    """Loss of the EMA weights on held-out episodes (fixed windows, fixed noise)."""
    policy.eval()
    rng = np.random.default_rng(1234)
    state = torch.get_rng_state()
    torch.manual_seed(1234)
    losses = [
        float(policy.compute_loss(to_torch(data.batch(data.val, batch_size, rng), policy.device))["loss"])
        for _ in range(n_batches)
    ]
    torch.set_rng_state(state)
    return float(np.mean(losses))


def _writable_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir}: expected a directory, found a file")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"run_dir={run_dir}: expected a writable directory, found {e.strerror.lower()}") from None


def _load_resume(path: Path, device: torch.device) -> dict[str, Any]:
    """``resume/state.pt`` read safely (``weights_only``): an empty, truncated or foreign file is
    one line naming it."""
    try:
        st = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise DataError(
            f"{path}: expected robolearn's resume state (torch.save), found an unreadable file "
            f"({type(e).__name__}); delete resume/ to start this run over"
        ) from None
    need = ("model", "ema", "opt", "sched", "step")
    if not isinstance(st, dict) or any(k not in st for k in need):
        found = sorted(st) if isinstance(st, dict) else type(st).__name__
        raise DataError(f"{path}: expected keys {list(need)}, found {found}")
    return st


def _pack_rng(state: dict) -> dict:
    s = state["state"]
    # PCG64's 128-bit integers do not fit a tensor; strings survive weights_only loading.
    return {
        "bit_generator": state["bit_generator"],
        "state": str(s["state"]),
        "inc": str(s["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _unpack_rng(p: dict) -> dict:
    return {
        "bit_generator": p["bit_generator"],
        "state": {"state": int(p["state"]), "inc": int(p["inc"])},
        "has_uint32": int(p["has_uint32"]),
        "uinteger": int(p["uinteger"]),
    }


def _save_resume(path: Path, policy, ema, opt, sched, step: int, rngs: list[tuple[dict, torch.Tensor]]) -> None:
    """Training state for exact resume; loaded with ``weights_only=True`` (no arbitrary code).
    ``rngs``: every rank's (numpy, torch) generator state; a world of one keeps the single-process
    layout."""
    state = {
        "model": policy.state_dict(),
        "ema": ema.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "step": step,
    }
    if len(rngs) == 1:
        state.update(np_rng=rngs[0][0], torch_rng=rngs[0][1])
    else:
        state.update(world_size=len(rngs), np_rng_ranks=[r[0] for r in rngs], torch_rng_ranks=[r[1] for r in rngs])
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _read_history(run_dir: Path) -> list[dict[str, float]]:
    import json

    f = run_dir / "train_history.json"
    return json.loads(f.read_text()) if f.exists() else []


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train (batch)", alpha=0.7)
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if val:
        ax.plot(*zip(*val), "o-", label="val (EMA)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
