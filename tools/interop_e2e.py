"""End to end on other people's formats: FetchPush demos written as a robomimic hdf5 file and
as a LeRobot v3.0 dataset, converted with `robolearn convert`, trained on and evaluated in the
simulator, next to the same training on the original zarr.

    OMP_NUM_THREADS=1 python tools/interop_e2e.py --out runs/interop --episodes 100 --steps 2000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from robolearn.data.formats import convert
from robolearn.data.replay_buffer import ReplayBuffer


def write_robomimic(src: Path, dst: Path, valid_every: int = 10) -> None:
    """robomimic's layout: data/demo_i/{obs/<key>, actions, rewards, dones}, mask/{train, valid}."""
    import h5py

    buf = ReplayBuffer.open(src)
    with h5py.File(dst, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "FetchPush", "type": 0, "env_kwargs": {}})
        data.attrs["total"] = int(buf.n_steps)
        names = []
        for i in range(buf.n_episodes):
            ep = buf.get_episode(i, keys=["state", "action"])
            g = data.create_group(f"demo_{i}")
            t = len(ep["action"])
            g.attrs["num_samples"] = t
            g.create_dataset("actions", data=ep["action"])
            g.create_dataset("obs/state", data=ep["state"])
            g.create_dataset("rewards", data=np.zeros(t, np.float64))
            g.create_dataset("dones", data=(np.arange(t) == t - 1).astype(np.int64))
            names.append(f"demo_{i}")
        f.create_dataset("mask/valid", data=np.array([n.encode() for i, n in enumerate(names) if i % valid_every == 0]))
        f.create_dataset("mask/train", data=np.array([n.encode() for i, n in enumerate(names) if i % valid_every != 0]))


def train_eval(data: Path, run: Path, steps: int, episodes: int, extra: list[str]) -> dict:
    from robolearn.config import compose
    from robolearn.envs import make_task
    from robolearn.eval.rollout import evaluate_policy
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import train

    cfg = compose(["task=fetch_push", f"data={data}", f"run_dir={run}", f"algo.steps={steps}", *extra])
    policy = ChunkPolicy.load(train(cfg, run, progress=False))
    return evaluate_policy(
        policy,
        make_task("fetch_push"),
        {"name": "receding"},
        run / "eval",
        n_episodes=episodes,
        n_envs=10,
        progress=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/interop"))
    ap.add_argument("--episodes", type=int, default=100, help="demonstrations")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-episodes", type=int, default=50)
    a = ap.parse_args()
    from robolearn.algos.collect import collect
    from robolearn.envs import make_task

    a.out.mkdir(parents=True, exist_ok=True)
    demos = a.out / "demos.zarr"
    if not demos.exists():
        collect(make_task("fetch_push"), a.episodes, demos, progress=False)
    rm = a.out / "demos.hdf5"
    if not rm.exists():
        write_robomimic(demos, rm)
    for src, dst in (
        (rm, a.out / "from_robomimic.zarr"),
        (demos, a.out / "lerobot_v3"),
        (a.out / "lerobot_v3", a.out / "from_lerobot.zarr"),
    ):
        if not dst.exists():
            convert(src, dst, progress=False)
    rows = {}
    for name, data, extra in (
        ("original zarr", demos, []),
        ("robomimic hdf5 -> zarr", a.out / "from_robomimic.zarr", ["algo.val_mask=valid"]),
        ("zarr -> LeRobot v3 -> zarr", a.out / "from_lerobot.zarr", []),
    ):
        m = train_eval(data, a.out / "runs" / name.split()[0], a.steps, a.eval_episodes, extra)
        rows[name] = m
        lo, hi = m["success_ci95"]
        print(f"| {name} | {m['episodes']} | {m['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] |", flush=True)
    (a.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
