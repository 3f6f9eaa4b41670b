"""LeRobot side by side: the real LeRobot library's diffusion policy trained on the same Push-T
pixels, on this CPU, for a wall-clock budget, its checkpoints scored by robolearn's Push-T evaluator
on the same seeds as robolearn's runs.

Three steps (LeRobot lives in its own venv: LeRobot 0.4.4 pins torch < 2.11 on Python 3.11;
RESULTS.md has the recipe):

    # 1. the 206 human demos as a LeRobot v3.0 dataset: the 96x96 image and the agent position
    #    (observation.state, 2-dim: what Diffusion Policy's image policy sees), actions
    python tools/lerobot_pusht_image.py prepare --zarr $ROBOLEARN_PUSHT_ZARR --out runs/lerobot_pusht_image/data
    # 2. lerobot-train (diffusion) for a wall-clock budget, one thread, a checkpoint every N steps
    python tools/lerobot_pusht_image.py train --lerobot-python /work/lrvenv/bin/python \
        --data runs/lerobot_pusht_image/data --out runs/lerobot_pusht_image/train --minutes 60 --steps 1200
    # 3. every checkpoint through robolearn's evaluator (run with LeRobot's python; robolearn is
    #    imported from this checkout): 50 seeds from 100000, 300 steps, score = max min(cov/0.95, 1)
    /work/lrvenv/bin/python tools/lerobot_pusht_image.py eval --run runs/lerobot_pusht_image/train

``train`` records the wall-clock second at which each checkpoint appeared (``times.json``), so the
evaluation table has training minutes next to every score (LeRobot's start-up, about 20 s of
dataset loading, included); ``eval`` also writes the curve as ``<run>_curve/train_history.json``,
which ``tools/lever_table.py`` plots beside robolearn's runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(a) -> None:
    from robolearn.data.formats.lerobot import zarr_to_lerobot
    from robolearn.data.replay_buffer import ReplayBuffer

    out = Path(a.out)
    mid = out.with_name(out.name + "_zarr")
    if out.exists():
        print(f"{out}: exists, kept")
        return
    src = ReplayBuffer.open(a.zarr)
    dst = ReplayBuffer.create(mid, overwrite=True)
    for i in range(src.n_episodes):
        e = src.get_episode(i, keys=["img", "state", "action"])
        dst.add_episode({"img": e["img"], "agent_pos": e["state"][:, :2], "action": e["action"]})
    dst.attrs.update({"fps": 10, "key_map": {"observation.state": "agent_pos"}})
    n = dst.n_episodes
    src.close()
    dst.close()
    zarr_to_lerobot(mid, out, fps=10)
    print(f"{out}: {n} episodes as LeRobot v3.0 (observation.images.img, observation.state = agent_pos, action)")


def train(a) -> None:
    out = Path(a.out)
    le_bin = Path(a.lerobot_python).parent
    cmd = [
        str(le_bin / "lerobot-train"),
        "--dataset.repo_id=local/pusht_image",
        f"--dataset.root={Path(a.data).resolve()}",
        "--policy.type=diffusion",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--wandb.enable=false",
        # sized like robolearn's recipe (U-Net [64, 128, 256], 84x84 random crops, 10 sampling
        # steps) so the comparison is of the frameworks, not of model sizes; the vision backbone
        # stays LeRobot's (ResNet-18, no pretrained weights: nothing is downloaded)
        "--policy.down_dims=[64,128,256]",
        "--policy.crop_shape=[84,84]",
        "--policy.noise_scheduler_type=DDIM",
        "--policy.num_inference_steps=10",
        f"--steps={a.steps}",
        f"--batch_size={a.batch_size}",
        "--num_workers=0",
        f"--save_freq={a.save_every}",
        "--log_freq=25",
        f"--seed={a.seed}",
        f"--output_dir={out.resolve()}",
        *a.extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    out.parent.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.time()
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None and time.time() - t0 < a.minutes * 60:
                time.sleep(2)
                for d in (out / "checkpoints").glob("[0-9]*"):
                    if d.name not in times and (d / "pretrained_model" / "model.safetensors").exists():
                        times[d.name] = time.time() - t0
                        (out.with_name(out.name + "_times.json")).write_text(json.dumps(times, indent=1))
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    print(f"lerobot-train: {len(times)} checkpoints in {(time.time() - t0) / 60:.1f} min -> {out}")


class LeRobotActor:
    """robolearn's rollout drives this like one of its executors: ``reset`` per wave, ``act`` on
    the observation history of every env; LeRobot's policy keeps its own action queue."""

    def __init__(self, policy, pre, post):
        self.policy, self.pre, self.post = policy, pre, post

    def reset(self) -> None:
        self.policy.reset()

    def act(self, buf):
        import torch

        img = torch.from_numpy(buf["img"][:, -1]).permute(0, 3, 1, 2).float() / 255.0
        state = torch.from_numpy(buf["agent_pos"][:, -1]).float()
        with torch.no_grad():
            batch = self.pre({"observation.images.img": img, "observation.state": state})
            action = self.post(self.policy.select_action(batch))
        return action.cpu().numpy()


def evaluate(a) -> None:
    sys.path.insert(0, str(ROOT))
    import torch
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    from robolearn.envs import make_task
    from robolearn.eval.metrics import summarize
    from robolearn.eval.rollout import rollout

    torch.set_num_threads(a.threads)
    run = Path(a.run)
    times_file = run.with_name(run.name + "_times.json")
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    res_file = run.with_name(run.name + "_eval.json")
    results = json.loads(res_file.read_text()) if res_file.exists() else {}
    task = make_task("pusht_image")
    for ck in sorted((run / "checkpoints").glob("[0-9]*")):
        if ck.name in results or not (ck / "pretrained_model").is_dir():
            continue
        path = ck / "pretrained_model"
        policy = DiffusionPolicy.from_pretrained(str(path))
        policy.eval()
        pre, post = make_pre_post_processors(
            policy.config, pretrained_path=str(path), preprocessor_overrides={"device_processor": {"device": "cpu"}}
        )
        actor = LeRobotActor(policy, pre, post)
        t0 = time.time()
        recs = rollout(lambda n, w: actor, task, a.episodes, a.n_envs, a.seed_start, 1, progress=False)
        m = summarize(recs)
        results[ck.name] = {
            "step": int(ck.name),
            "train_minutes": times.get(ck.name, float("nan")) / 60,
            "score": m["mean_max_score"],
            "success": m["success_rate"],
            "success_ci95": m["success_ci95"],
            "episodes": m["episodes"],
            "eval_s": time.time() - t0,
        }
        res_file.write_text(json.dumps(results, indent=1))
        r = results[ck.name]
        print(f"step {r['step']}: {r['train_minutes']:.1f} min, score {r['score']:.3f}, success {r['success']:.2f}")
    # the curve in robolearn's run layout, so tools/lever_table.py puts it beside robolearn's runs
    curve = run.with_name(run.name + "_curve")
    curve.mkdir(exist_ok=True)
    rows = [
        {"step": r["step"], "train_s": r["train_minutes"] * 60, "eval_score": r["score"], "eval_success": r["success"]}
        for r in sorted(results.values(), key=lambda r: r["step"])
    ]
    (curve / "train_history.json").write_text(json.dumps(rows, indent=1))
    (curve / "train_summary.json").write_text(json.dumps({"source": "lerobot-train", "checkpoints": len(rows)}))
    print("| step | training minutes | score | success [95% CI] |")
    print("|---|---|---|---|")
    for r in sorted(results.values(), key=lambda r: r["step"]):
        lo, hi = r["success_ci95"]
        print(
            f"| {r['step']} | {r['train_minutes']:.1f} | {r['score']:.3f} | {r['success']:.2f} [{lo:.2f}, {hi:.2f}] |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare")
    pr.add_argument("--zarr", required=True)
    pr.add_argument("--out", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--lerobot-python", required=True)
    tr.add_argument("--data", required=True)
    tr.add_argument("--out", required=True)
    tr.add_argument("--minutes", type=float, default=60)
    tr.add_argument("--steps", type=int, default=1200, help="the cosine schedule's length (set to what fits)")
    tr.add_argument("--save-every", type=int, default=200)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--threads", type=int, default=1)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("extra", nargs="*", help="more lerobot-train options")
    ev = sub.add_parser("eval")
    ev.add_argument("--run", required=True)
    ev.add_argument("--episodes", type=int, default=50)
    ev.add_argument("--n-envs", type=int, default=50)
    ev.add_argument("--seed-start", type=int, default=100_000)
    ev.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    {"prepare": prepare, "train": train, "eval": evaluate}[a.cmd](a)


if __name__ == "__main__":
    main()
