"""Training throughput of the image pipeline: encoder + a small MLP regression head.

The setting is Push-T from pixels: a 96x96 uint8 camera randomly cropped to 84x84 plus a 2-D
agent position, To=2 frames, regressing a (16, 2) action chunk (L1), AdamW. Reports training
samples/s, eval (inference) samples/s and parameter counts as one JSON line.

    python tools/bench_encoders.py                     # CPU, 2 threads, default encoder
    python tools/bench_encoders.py --width 64          # the full-width ResNet-18 trunk
    python tools/bench_encoders.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from robolearn.encoders import build_encoder
from robolearn.encoders.image import count_params
from robolearn.nets.mlp import mlp
from robolearn.spec import ObsSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed window (after 2 warm-up steps)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed windows; median and best are reported "
        "(best is the least disturbed by other jobs on a shared machine)",
    )
    ap.add_argument("--width", type=int, default=None, help="trunk width (default: the encoder default)")
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--pool", default=None)
    ap.add_argument("--color-jitter", type=float, default=0.0)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    To, H, A, B = 2, 16, 2, args.batch
    spec = {"img": ObsSpec((96, 96, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,), "float32", "lowdim")}
    rgb = {"crop": 84, "color_jitter": args.color_jitter}
    for k in ("width", "backbone", "pool"):
        if getattr(args, k) is not None:
            rgb[k] = getattr(args, k)
    enc = build_encoder({"rgb": rgb, "output": "vector"}, spec, To).to(dev)
    head = mlp(enc.out_dim, [256, 256], H * A).to(dev)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)

    # Data lives on the host as uint8, as it comes from the sampler; the copy is part of the step.
    obs = {
        "img": torch.randint(0, 256, (B, To, 96, 96, 3), dtype=torch.uint8),
        "agent_pos": torch.rand(B, To, 2) * 2 - 1,
    }
    act = torch.rand(B, H, A) * 2 - 1
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.amp)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        o = {k: v.to(dev, non_blocking=True) for k, v in obs.items()}
        with amp:
            pred = head(enc(o)).view(B, H, A)
            loss = F.l1_loss(pred.float(), act.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(fn) -> list[float]:
        """samples/s of each timed window."""
        out = []
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync()
            out.append(args.steps * B / (time.perf_counter() - t0))
        return out

    def infer() -> None:
        head(enc({k: v.to(dev, non_blocking=True) for k, v in obs.items()}))

    enc.train()
    for _ in range(2):
        train_step()
    train_sps = timed(train_step)
    enc.eval()
    with torch.no_grad(), amp:
        infer()
        eval_sps = timed(infer)

    cam = enc.cameras["img"]
    print(
        json.dumps(
            {
                "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
                "cpu": platform.processor() or platform.machine(),
                "threads": args.threads,
                "batch": B,
                "rgb": rgb,
                "amp": args.amp,
                "train_samples_per_s": round(statistics.median(train_sps), 1),
                "train_samples_per_s_best": round(max(train_sps), 1),
                "eval_samples_per_s": round(statistics.median(eval_sps), 1),
                "eval_samples_per_s_best": round(max(eval_sps), 1),
                "image_encoder_params": count_params(cam),
                "trunk_params": count_params(cam.trunk),
                "total_params": sum(p.numel() for p in params),
            }
        )
    )


if __name__ == "__main__":
    main()
