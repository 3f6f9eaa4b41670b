"""GAIL from the `imitation` library (HumanCompatibleAI/imitation) against robolearn's GAIL: the same
task, demonstrations, BC warm start, PPO settings and environment-step budget, evaluated by
robolearn's rollout loop on the same seeds and execution-noise draws.

The robolearn side is a finished ``robolearn ablate`` cell (a GAIL variant); this tool reads its
experiment (task, demonstrations in ``OUT/data``, evaluation seeds and noise), its ``history.json``
(the PPO budget) and its metrics, then trains imitation's ``GAIL`` (``BasicRewardNet`` on
(observation, action), its default logistic discriminator) around a stable-baselines3 PPO learner
built with the robolearn cell's settings and warm-started by robolearn's own BC routine on the same
seed, for the same number of environment steps and critic updates per round. imitation 1.0.1 pins
gymnasium 0.29 and stable-baselines3 2.2, so it lives in its own venv, with robolearn installed
there without its dependencies (an optional extra of this tool; never needed by robolearn):

    python3 -m venv .imvenv && .imvenv/bin/pip install torch==2.13.0
    .imvenv/bin/pip install imitation==1.0.1 "mujoco>=3.3.7,<3.5" "zarr>=3,<4" numcodecs omegaconf \\
        einops safetensors imageio imageio-ffmpeg diffusers && .imvenv/bin/pip install --no-deps -e .
    robolearn ablate divergence_catch                          # robolearn's side (gail_js cells)
    OMP_NUM_THREADS=1 MUJOCO_GL=egl .imvenv/bin/python tools/imitation_gail_peer.py \\
        runs/ablate/divergence_catch --variant gail_js --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="a robolearn ablate output directory with finished GAIL cells")
    p.add_argument("--variant", default="gail_js", help="the robolearn GAIL variant to match")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)

    import imitation
    import stable_baselines3
    import torch
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data.types import Transitions
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imitation_logger
    from imitation.util.networks import RunningNorm
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robolearn.algos.adversarial import FlatEnv, SB3Actor, _warm_start, demonstrations, make_learner, standardize
    from robolearn.data.replay_buffer import ReplayBuffer
    from robolearn.eval.metrics import summarize, wilson_interval
    from robolearn.eval.rollout import rollout
    from robolearn.experiments.spec import cell_cfg, load_experiment
    from robolearn.train.data import make_task_from, task_obs_entries

    torch.set_num_threads(1)
    exp = load_experiment(args.out / "experiment.yaml")
    if args.variant not in exp.variants:
        raise SystemExit(f"imitation_gail_peer: --variant {args.variant!r}: not in {list(exp.variants)}")
    (task_name,) = list(exp.tasks)
    rows, ours, theirs = [], [], []
    for seed in args.seeds:
        cfg = cell_cfg(exp, args.variant, task_name, seed, str(args.out / "data" / f"{task_name}.zarr"))
        algo = cfg.algo
        if str(algo.method) != "gail" or str(algo.divergence) != "js":
            raise SystemExit(
                f"imitation_gail_peer: {args.variant} is {algo.method}/{algo.divergence}; imitation's GAIL is js"
            )
        cell = args.out / "cells" / args.variant / task_name / f"s{seed}" / "metrics.json"
        hist_file = args.out / "train" / args.variant / task_name / f"s{seed}" / "history.json"
        if not cell.exists() or not hist_file.exists():
            raise SystemExit(f"imitation_gail_peer: {cell}: expected a finished robolearn cell, not found")
        budget = int(json.loads(hist_file.read_text())[-1]["env_steps"])
        task = make_task_from(cfg)
        buf = ReplayBuffer.open(cfg.data, mode="r")
        demo = demonstrations(buf, task_obs_entries(cfg), str(cfg.task.action_key), task)
        buf.close()
        mean, std, norm = standardize(demo)  # robolearn's normalisation
        env = FlatEnv(task, demo["names"], mean, std, lambda *a: 0.0)  # imitation wraps the reward
        venv = DummyVecEnv([lambda: env])
        learner = make_learner(venv, algo, seed)  # the robolearn cell's PPO settings
        _warm_start(learner, norm, int(algo.steps), int(algo.batch_size), float(algo.lr), seed)  # robolearn's BC

        def evaluate():
            return rollout(lambda n, w: SB3Actor(learner, env), task, int(cfg.eval.episodes), int(cfg.eval.n_envs),
                           int(cfg.eval.seed_start), 1, progress=False, action_noise=float(cfg.eval.action_noise),
                           noise_seed=seed)  # fmt: skip

        start = summarize(evaluate())["success_rate"]  # the warm start both GAILs begin from
        transitions = Transitions(obs=norm["obs"], acts=norm["act"], infos=np.array([{}] * len(norm["obs"])),
                                  next_obs=norm["next_obs"], dones=norm["done"])  # fmt: skip
        reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
        trainer = GAIL(demonstrations=transitions, demo_batch_size=int(algo.disc_batch), venv=venv, gen_algo=learner,
                       reward_net=reward_net, n_disc_updates_per_round=int(algo.disc_updates),
                       allow_variable_horizon=True, init_tensorboard=False,
                       custom_logger=imitation_logger.configure(format_strs=[]))  # fmt: skip
        t0 = time.perf_counter()
        trainer.train(budget)
        secs = time.perf_counter() - t0
        recs = evaluate()
        env.close()
        mine = json.loads(cell.read_text())
        m = summarize(recs)
        ours += [e["success"] for e in mine["episodes"]]
        theirs += [r["success"] for r in recs]
        rob_secs = sum(h.get("seconds", 0.0) for h in json.loads(hist_file.read_text()))
        rows.append(f"| {seed} | {budget} | {start:.2f} | {mine['summary']['success_rate']:.2f} ({rob_secs:.0f} s) | "
                    f"{m['success_rate']:.2f} ({secs:.0f} s) |")  # fmt: skip
        print(rows[-1], flush=True)

    def pooled(xs):
        lo, hi = wilson_interval(sum(xs), len(xs))
        return f"{np.mean(xs):.2f} [{lo:.2f}, {hi:.2f}]"

    print(
        f"\nimitation {imitation.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"torch {torch.__version__}"
    )
    print(f"task {task_name}, robolearn variant {args.variant}, {cfg.eval.episodes} evaluation episodes per seed "
          f"from {cfg.eval.seed_start}, execution noise {cfg.eval.action_noise}")  # fmt: skip
    print("| seed | learner env steps | BC warm start | robolearn GAIL success (training s) | imitation GAIL success "
          "(training s) |")  # fmt: skip
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"| pooled | | | {pooled(ours)} | {pooled(theirs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
