"""What a chunk with a prefix costs: plain sampling vs RTC by guidance (a vector-Jacobian product at
every denoising step) vs RTC by training-time prefix conditioning (the prefix given as an input)
vs BID (n candidates in one batched call), for every head: flow and diffusion inpaint by guidance
or by a given prefix; the other heads by their own prefix rule (blending for regression and MIP,
component re-weighting for MDN, teacher forcing for autoregressive bins, the prefix on the noise
path for shortcut), which adds almost nothing.

One set of weights per head (flow and diffusion trained with ``prefix_conditioning``, so
``inpaint: guided`` and ``inpaint: given`` run on the same network); the timings are interleaved round by round in one
process and reported as medians and as ratios to the plain chunk. Batch 1 (one robot), 1 thread.

    python tools/bench_rtc_cost.py [--down-dims 32,64,128] [--rounds 30]
    python tools/bench_rtc_cost.py --heads flow,diffusion --flow-steps 5 --bid-samples 16   # rtc_paper_catch's settings
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from robolearn.heads import build_head


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--down-dims", default="32,64,128")
    p.add_argument("--horizon", type=int, default=8)
    p.add_argument("--action-dim", type=int, default=2)
    p.add_argument("--cond-dim", type=int, default=20)
    p.add_argument("--bid-samples", type=int, default=8)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--flow-steps", type=int, default=10, help="Euler steps of the flow head (the RTC reference: 5)")
    p.add_argument("--heads", default="", help="comma-separated head names to time (default: every head)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dims = [int(x) for x in a.down_dims.split(",")]
    H, A = a.horizon, a.action_dim
    unet = dict(down_dims=dims)
    heads = {
        "regression": build_head("regression", a.cond_dim, H, A),
        "mdn (K = 5)": build_head("mdn", a.cond_dim, H, A),
        "autoregressive (256 bins)": build_head("autoregressive", a.cond_dim, H, A),
        "mip (2 passes)": build_head("mip", a.cond_dim, H, A, **unet),
        "shortcut (1 step)": build_head("shortcut", a.cond_dim, H, A, **unet),
        f"flow ({a.flow_steps} Euler steps)": build_head(
            "flow", a.cond_dim, H, A, prefix_conditioning=4, num_steps=a.flow_steps, **unet
        ),
        "diffusion (DDIM 10)": build_head("diffusion", a.cond_dim, H, A, prefix_conditioning=4, **unet),
    }
    wanted = [w for w in a.heads.split(",") if w]
    heads = {k: v for k, v in heads.items() if not wanted or k.split(" ")[0] in wanted}
    cond = torch.randn(1, a.cond_dim)
    prefix = torch.randn(1, H, A).clamp(-1, 1)
    w = torch.tensor([1.0, 1.0, 0.8, 0.5, 0.2, 0.0, 0.0, 0.0])[:H]  # d = 2 frozen, a decaying overlap
    gen = torch.Generator().manual_seed(0)

    def calls(head):
        def plain():
            head.sample(cond, generator=gen)

        def rtc(mode=None):
            def call():
                if mode:
                    head.inpaint = mode
                head.sample(cond, prefix=prefix, prefix_weights=w, generator=gen)

            return call

        def bid():
            head.sample(cond.expand(a.bid_samples, -1), generator=gen)

        if hasattr(head, "inpaint"):
            prefixed = {"RTC, guided": rtc("guided"), "RTC, given (prefix conditioning)": rtc("given")}
        else:
            prefixed = {"RTC (the head's prefix rule)": rtc()}
        return {"plain chunk": plain, **prefixed, f"BID, {a.bid_samples} candidates": bid}

    print(f"batch 1, H={H}, A={A}, U-Net {dims}, {a.threads} thread(s), median of {a.rounds} interleaved rounds")
    print("| head | call | ms per chunk | ratio to plain |")
    print("|---|---|---|---|")
    for name, head in heads.items():
        head.eval()
        fns = calls(head)
        times = {k: [] for k in fns}
        for f in fns.values():  # warm-up
            f()
            f()
        for _ in range(a.rounds):
            for k, f in fns.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        base = statistics.median(times["plain chunk"])
        for k, ts in times.items():
            m = statistics.median(ts)
            print(f"| {name} | {k} | {1000 * m:.2f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
