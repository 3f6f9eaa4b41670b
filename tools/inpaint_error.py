"""Does a trained model continue a frozen prefix the way the expert would? The error of a chunk's
free part against the expert's exact continuation after that prefix, with and without inpainting.

    python tools/inpaint_error.py CKPT [--task catch_multimodal] [--states 200] [--delays 1,2,3,4] \
        [--head inpaint=given]

States come from the scripted expert's own episodes with 0.1 execution noise (seeds 1000..; every
4th step after the first two). At each state, the prefix is the first d actions of one chunk the
model samples there (a plan the robot could be executing, differing from the expert's by the
model's own spread). The target is what the expert does after that prefix: the simulator is
restored, the prefix executed, the expert rolled for the remaining H - d steps, the simulator put
back (the exact inpainting of tools/expert_plan_delay.py). Compared with the target, per d:

- ``free``: indices d.. of a second, independent sample (naive async ignores the prefix);
- ``inpainted``: indices d.. of a sample given the prefix with a hard mask (RTC's ablation; the
  head's inpainting: guided, or the prefix input with ``--head inpaint=given``);
- ``plan``: indices d.. of the expert's plan from the state without the prefix (what a perfect
  model switched naively would execute).

Mean absolute error per action dimension, over states and the H - d steps. A model that inpaints
as the expert would has ``inpainted`` well below ``free``; the gap between ``plan`` and zero is
what exact inpainting can fix at all. Two more columns say how much the continuation *responds* to
the prefix: with the prefixes of two different samples, the mean change of the model's inpainted
free part (same random draw for both) and of the expert's exact continuation."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robolearn.algos.labelers import ScriptedLabeler
from robolearn.config import compose
from robolearn.policy import ChunkPolicy
from robolearn.train.data import make_task_from


def states(task, n: int, obs_horizon: int, seed0: int = 1000, every: int = 4):
    """(sim state, obs history {k: (To, ...)}, the expert's mode or None) from its noisy episodes."""
    env, ex = task.make_env(), task.expert()
    lo, hi = task.spec.action_low, task.spec.action_high
    out, ep = [], 0
    try:
        while len(out) < n:
            rng = np.random.default_rng(ep)
            obs, _ = env.reset(seed=seed0 + ep)
            ex.reset(env)
            hist = [obs] * obs_horizon
            t = 0
            while len(out) < n:
                if t >= 2 and t % every == 0:
                    stacked = {k: np.stack([h[k] for h in hist[-obs_horizon:]]) for k in obs}
                    out.append((task.get_state(env), stacked, ex.mode(env) if hasattr(ex, "mode") else None))
                a = np.clip(ex.act(env) + 0.1 * (hi - lo) / 2 * rng.standard_normal(lo.shape), lo, hi)
                obs, _, term, trunc, _ = env.step(a)
                hist.append(obs)
                t += 1
                if term or trunc:
                    break
            ep += 1
    finally:
        env.close()
    return out


def after(task, env, lab: ScriptedLabeler, state, prefix: np.ndarray, n: int) -> np.ndarray:
    """The expert's next ``n`` actions after ``prefix`` is executed from ``state`` (then restored)."""
    task.set_state(env, state)
    for act in prefix:
        env.step(act)
    out = lab.chunk(env, n=n)
    task.set_state(env, state)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--task", default="catch_multimodal")
    p.add_argument("--states", type=int, default=200)
    p.add_argument("--delays", default="1,2,3,4")
    p.add_argument("--head", nargs="*", default=[], help="sampling options of the trained head, KEY=VALUE")
    a = p.parse_args()
    over = {}
    for kv in a.head:
        k, v = kv.split("=", 1)
        over[k] = int(v) if v.isdigit() else v
    policy = ChunkPolicy.load(a.checkpoint, head_overrides=over or None)
    task = make_task_from(compose([f"task={a.task}"]))
    H = int(policy.horizon)
    pool = states(task, a.states, int(policy.obs_horizon))
    env = task.make_env()
    lab = ScriptedLabeler(task, H)
    gen = torch.Generator().manual_seed(0)
    env.reset(seed=0)  # once: every state below is restored into it
    print(
        "| d | free sample | inpainted (hard mask) | expert plan without the prefix | model's response to the prefix"
        " | expert's response to the prefix |\n|---|---|---|---|---|---|"
    )
    try:
        for d in (int(x) for x in a.delays.split(",")):
            err = {"free": [], "inpainted": [], "plan": [], "model_resp": [], "expert_resp": []}
            w = (np.arange(H) < d).astype(np.float32)
            for state, hist, mode in pool:
                obs = {k: v[None] for k, v in hist.items()}
                first = policy.predict_chunk(obs, generator=gen)[0]
                second = policy.predict_chunk(obs, generator=gen)[0]
                prefix = np.concatenate([first[:d], np.repeat(first[d - 1 : d], H - d, 0)])[None]
                other = np.concatenate([second[:d], np.repeat(second[d - 1 : d], H - d, 0)])[None]
                k = int(torch.randint(2**31 - 1, (1,), generator=gen))
                inpainted, inpainted2 = (
                    policy.predict_chunk(obs, prefix=x, prefix_weights=w, generator=torch.Generator().manual_seed(k))[0]
                    for x in (prefix, other)
                )
                task.set_state(env, state)
                if mode is not None:
                    lab.expert.set_mode(env, mode)
                plan = lab.chunk(env)
                target = after(task, env, lab, state, first[:d], H - d)
                target2 = after(task, env, lab, state, second[:d], H - d)
                err["free"].append(np.abs(second[d:] - target).mean())
                err["inpainted"].append(np.abs(inpainted[d:] - target).mean())
                err["plan"].append(np.abs(plan[d:] - target).mean())
                err["model_resp"].append(np.abs(inpainted[d:] - inpainted2[d:]).mean())
                err["expert_resp"].append(np.abs(target - target2).mean())
            m = {k: float(np.mean(v)) for k, v in err.items()}
            print(
                f"| {d} | {m['free']:.3f} | {m['inpainted']:.3f} | {m['plan']:.3f} | {m['model_resp']:.3f} | "
                f"{m['expert_resp']:.3f} |",
                flush=True,
            )
    finally:
        env.close()


if __name__ == "__main__":
    main()
