"""Where a training step's time goes on CPU, and which change measurably helps.

Times the full training step of ``robolearn train`` (sample windows, normalize, encoder, head
loss, backward, clip, optimizer, EMA) for Push-T keypoints with the shipped flow and
diffusion U-Nets, with variants interleaved in one process (round-robin, median of rounds) so
that load from other jobs hits every variant alike:

* ``base``: the trainer as it was (AdamW with its default multi-tensor step).
* ``fused``: ``AdamW(fused=True)`` (one kernel for the whole parameter update).
* ``compile``: ``torch.compile`` of the loss (inductor), with fused AdamW.

    OMP_NUM_THREADS=1 python tools/profile_train_step.py --threads 1
    python tools/profile_train_step.py --threads 2 --policies flow --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from robolearn.config import compose, to_dict
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import DataBundle, ema_update, to_torch

VARIANTS = ("base", "fused", "compile")


def make_step(policy: ChunkPolicy, data: DataBundle, batch: int, variant: str):
    ema = copy.deepcopy(policy).requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4, fused=variant != "base")
    loss_fn = policy.compute_loss
    if variant == "compile":
        loss_fn = torch.compile(policy.compute_loss)
    rng = np.random.default_rng(0)

    def step():
        b = to_torch(data.batch(data.train, batch, rng), policy.device)
        loss = loss_fn(b)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        ema_update(ema, policy, 0.999)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", nargs="*", default=["flow", "diffusion"])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    ap.add_argument(
        "--data", default=os.environ.get("ROBOLEARN_PUSHT_ZARR", "../shared/data/pusht_cchi_v7_replay.zarr")
    )
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = []
    for pol in a.policies:
        cfg = compose(["task=pusht_keypoints", f"policy={pol}", f"data={a.data}"])
        data = DataBundle(cfg, a.data)
        steps = {}
        for v in a.variants:
            torch.manual_seed(0)
            policy = ChunkPolicy(to_dict(cfg.policy), data.obs_spec, data.action_dim, data.normalizer).train()
            steps[v] = make_step(policy, data, a.batch, v)
            t = time.perf_counter()
            for _ in range(3):  # warm-up (and compilation)
                steps[v]()
            print(f"{pol}/{v}: warm-up {time.perf_counter() - t:.1f} s", flush=True)
        times: dict[str, list[float]] = {v: [] for v in a.variants}
        for _ in range(a.rounds):
            for v in a.variants:
                t = time.perf_counter()
                for _ in range(a.steps):
                    steps[v]()
                times[v].append((time.perf_counter() - t) / a.steps)
        base = statistics.median(times[a.variants[0]])
        for v in a.variants:
            med = statistics.median(times[v])
            row = {
                "policy": pol,
                "variant": v,
                "threads": a.threads,
                "batch": a.batch,
                "ms_per_step": 1e3 * med,
                "samples_per_s": a.batch / med,
                "speedup": base / med,
            }
            out.append(row)
            print(
                f"| {pol:10s} | {v:8s} | {a.threads} | {a.batch} | {row['ms_per_step']:8.1f} | "
                f"{row['samples_per_s']:8.0f} | {row['speedup']:.2f}x |",
                flush=True,
            )
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
