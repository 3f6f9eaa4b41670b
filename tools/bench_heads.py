"""Speed of every action head, as configured in configs/policy/<name>.yaml.

Training throughput (samples/s: forward + backward + Adam step on random data, batch 256,
cond dim 64, H=16, A=2) and inference latency per chunk at batch 1, without and with an
inpainting prefix (what real-time chunking pays), median over repeated calls.

    python tools/bench_heads.py                      # all policy configs, 1 CPU thread
    python tools/bench_heads.py --heads flow mip --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from robolearn.heads import build_head

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["regression", "mdn", "autoregressive", "diffusion", "diffusion_transformer", "flow", "mip"]


def head_options(config: str) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "policy" / f"{config}.yaml"), resolve=True)
    return dict(cfg["head"])


def median_time(fn, n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(
    config: str, batch: int, cond_dim: int, horizon: int, action_dim: int, train_steps: int, n_infer: int
) -> dict:
    opts = head_options(config)
    name = opts.pop("name")
    torch.manual_seed(0)
    head = build_head(name, cond_dim, horizon, action_dim, **opts)
    acts = torch.rand(batch, horizon, action_dim) * 2 - 1
    cond = torch.randn(batch, cond_dim)
    head.fit_data(acts)
    opt = torch.optim.Adam(head.parameters(), lr=1e-4)

    def step():
        loss = head.loss(cond, acts)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t_step = median_time(step, train_steps)
    head.eval()
    c1 = cond[:1]
    g = torch.Generator().manual_seed(0)
    prefix = acts[:1]
    w = torch.zeros(horizon)
    w[: horizon // 4] = 1.0  # a frozen delay of H/4 steps plus an exponentially decaying soft part
    w[horizon // 4 : horizon // 2] = torch.exp(-torch.arange(horizon // 4, dtype=torch.float32))
    t_free = median_time(lambda: head.sample(c1, generator=g), n_infer)
    t_prefix = median_time(lambda: head.sample(c1, prefix=prefix, prefix_weights=w, generator=g), n_infer)
    return {
        "config": config,
        "head": name,
        "params": sum(p.numel() for p in head.parameters()),
        "train_samples_per_s": batch / t_step,
        "infer_ms": 1e3 * t_free,
        "infer_prefix_ms": 1e3 * t_prefix,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", nargs="*", default=DEFAULT, help="policy config names under configs/policy/")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--cond-dim", type=int, default=64)
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--action-dim", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=10, help="timed training steps (median)")
    ap.add_argument("--infer-calls", type=int, default=20, help="timed sample() calls (median)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, cond {args.cond_dim}, "
        f"H={args.horizon}, A={args.action_dim}"
    )
    print(
        f"| {'config':22s} | {'params':>9s} | {'train samples/s':>15s} | {'infer ms/chunk':>14s} | "
        f"{'+prefix ms':>10s} |"
    )
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 17}|{'-' * 16}|{'-' * 12}|")
    for config in args.heads:
        r = bench(config, args.batch, args.cond_dim, args.horizon, args.action_dim, args.train_steps, args.infer_calls)
        rows.append(r)
        print(
            f"| {config:22s} | {r['params']:9,d} | {r['train_samples_per_s']:15,.0f} | {r['infer_ms']:14.2f} | "
            f"{r['infer_prefix_ms']:10.2f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
