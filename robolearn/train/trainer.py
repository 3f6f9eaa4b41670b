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
from robolearn.errors import ConfigError, DataError
from robolearn.locks import WriteLock
from robolearn.policy import ChunkPolicy
from robolearn.train import dist as distributed
from robolearn.train.data import (  # noqa: F401  (re-exported: callers import them from here)
    MAX_ABS,
    DataBundle,
    check_against_task,
    make_task_from,
    task_obs_entries,
)
from robolearn.train.evaluation import (  # noqa: F401
    eval_plan,
    eval_summary,
    eval_workers,
    evaluate_during_training,
    plot_evals,
)


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

    out = {
        "obs": {k: conv(v) for k, v in batch["obs"].items()},
        "action": conv(batch["action"]),
        "action_mask": conv(batch["action_mask"]),
    }
    if "aux" in batch:
        out["aux"] = conv(batch["aux"])
    return out


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
    policy = ChunkPolicy(
        to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer, aux_dim=getattr(data, "aux_dim", None)
    ).to(device)
    resume_file = run_dir / "resume" / "state.pt"
    st = _load_resume(resume_file, device) if resume_file.exists() else None
    if st is not None:  # a resume state of another architecture stops here, before config.yaml is rewritten
        _restore(resume_file, lambda: policy.load_state_dict(st["model"]))
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
            _restore(
                resume_file,
                lambda: (
                    policy.load_state_dict(st["model"]),
                    ema.load_state_dict(st["ema"]),
                    opt.load_state_dict(st["opt"]),
                    sched.load_state_dict(st["sched"]),
                ),
            )
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


def _restore(resume_file: Path, load) -> None:
    """Run ``load`` (state dicts into this run's modules); a state that does not fit is one line."""
    try:
        load()
    except (RuntimeError, ValueError, KeyError) as e:
        first = " ".join(str(e).split())[:160]
        raise DataError(
            f"{resume_file}: expected the training state of this run's architecture, found one that "
            f"does not fit ({first}); the config changed in a way that changes the weights: use a "
            "new run_dir"
        ) from None


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
                # the parts of a composite loss (a head's terms, an auxiliary target's), as logged scalars
                **{k: dist.mean(v.item()) for k, v in out.items() if k != "loss" and k.endswith("_loss")},
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
