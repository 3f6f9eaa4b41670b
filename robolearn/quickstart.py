"""``robolearn quickstart``: the whole loop on an embedded default, on CPU, in minutes.

Collect FetchPush demonstrations with the scripted expert, train a chunked regression
policy on them, evaluate it in simulation on seeds disjoint from the data, print the table.
"""

from __future__ import annotations

from pathlib import Path

from robolearn.algos.collect import collect
from robolearn.config import compose
from robolearn.eval.rollout import evaluate_policy
from robolearn.policy import ChunkPolicy
from robolearn.train.trainer import train


def quickstart(
    out: Path,
    episodes: int = 200,
    steps: int = 3000,
    eval_episodes: int = 50,
    task_name: str = "fetch_push",
    progress: bool = True,
) -> dict:
    from robolearn.envs import make_task
    from robolearn.eval.metrics import results_table

    out = Path(out)
    data = out / f"{task_name}.zarr"
    task = make_task(task_name, obs="state")
    if not data.exists():
        s = collect(task, episodes, data, progress=progress)
        print(
            f"[1/3] collected {s['episodes_kept']} expert demos ({s['steps_kept']} steps), "
            f"expert success {s['expert_success']:.1%} -> {data}"
        )
    else:
        print(f"[1/3] reusing demos at {data}")
    cfg = compose(
        [
            f"task={task_name}",
            "policy=regression",
            f"data={data}",
            f"run_dir={out / 'run'}",
            f"algo.steps={steps}",
            "algo.ckpt_every=1000",
            "algo.val_every=500",
        ]
    )
    ckpt = train(cfg, out / "run", progress=progress)
    print(f"[2/3] trained {steps} steps -> {ckpt}")
    policy = ChunkPolicy.load(ckpt)
    m = evaluate_policy(
        policy,
        task,
        dict(cfg.exec),
        out / "run" / "eval",
        n_episodes=eval_episodes,
        n_envs=10,
        seed_start=int(cfg.eval.seed_start),
        n_videos=int(cfg.eval.videos),
        progress=progress,
    )
    print(f"[3/3] evaluated on {eval_episodes} unseen seeds")
    print(results_table([(f"{task_name} regression ({episodes} demos)", m)]))
    return m
