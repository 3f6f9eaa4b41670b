"""The ``robolearn`` command: collect | train | eval | quickstart | inspect.

Overrides use ``key=value`` (``task=pusht``, ``policy.head.loss=mse``, ``algo.steps=2000``).
User errors print one line and exit 2; nothing is half-written (datasets grow episode by
episode, checkpoints and JSON files are renamed into place).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def _task_from(name: str, kwargs: dict | None = None):
    from envs import make_task

    return make_task(name, **(kwargs or {}))


def cmd_collect(a) -> int:
    from robolearn.algos.collect import collect

    kw = {"obs": a.obs} if a.obs else {}
    task = _task_from(a.task, kw)
    s = collect(task, a.episodes, a.out, noise=a.noise, seed_start=a.seed_start, keep_failures=a.keep_failures,
                overwrite=a.overwrite, append=a.append)
    print(f"collected {s['episodes_kept']} episodes ({s['steps_kept']} steps) of {s['task']} -> {s['path']}; "
          f"expert success {s['expert_success']:.1%} over {s['episodes_run']} episodes (noise {s['noise']})")
    return 0


def default_run_dir(cfg) -> Path:
    return Path("runs") / f"{cfg.task._name}_{cfg.policy._name}_{time.strftime('%Y%m%d-%H%M%S')}"


def _dist(timeout_s=1800):
    """The process group of a torchrun launch (a world of one otherwise)."""
    from robolearn.train import dist
    from robolearn.train.trainer import pick_device

    return dist.init(pick_device("auto"), timeout_s)


def cmd_train(a) -> int:
    from robolearn.config import compose
    from robolearn.train.trainer import train

    cfg = compose(a.overrides)
    dist = _dist(cfg.get("dist_timeout_s", 1800))
    try:
        run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        if dist.world > 1 and not cfg.run_dir:
            from robolearn.errors import ConfigError

            raise ConfigError("run_dir: expected an explicit run_dir under torchrun (ranks must agree on it), found none")
        ckpt = train(cfg, run_dir, dist=dist)
        if dist.is_main:
            print(f"checkpoint: {ckpt}")
        if a.eval_episodes:
            return _eval_and_print(ckpt, a.eval_episodes, cfg.eval.n_envs, cfg.eval.seed_start, cfg.eval.videos,
                                   dict(cfg.exec), run_dir / "eval", dist)
        return 0
    finally:
        dist.close()


def _eval_and_print(ckpt, episodes, n_envs, seed_start, videos, exec_cfg, out_dir, dist=None) -> int:
    from robolearn.eval.rollout import evaluate_policy
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import pick_device

    policy = ChunkPolicy.load(ckpt, device=pick_device("auto"))
    t = policy.meta.get("task") or {}
    task = _task_from(t.get("name"), dict(t.get("kwargs") or {}))
    m = evaluate_policy(policy, task, exec_cfg, out_dir, n_episodes=episodes, n_envs=n_envs,
                        seed_start=seed_start, n_videos=videos, dist=dist)
    if m is not None:  # rank 0 (or a single process) reports
        print(results_table([(str(ckpt), m)]))
        print(f"metrics: {Path(out_dir) / 'metrics.json'}")
    return 0


def results_table(rows: list[tuple[str, dict]]) -> str:
    head = f"| {'policy':<40} | episodes | success | 95% CI        | mean max score | mean length |"
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for name, m in rows:
        lo, hi = m["success_ci95"]
        lines.append(f"| {name[-40:]:<40} | {m['episodes']:>8} | {m['success_rate']:>7.2f} | [{lo:.2f}, {hi:.2f}]  |"
                     f" {m['mean_max_score']:>14.3f} | {m['mean_length']:>11.1f} |")
    return "\n".join(lines)


def cmd_eval(a) -> int:
    from robolearn.config import load_group
    from robolearn.errors import ConfigError

    ckpt = Path(a.checkpoint)
    if (ckpt / "checkpoints" / "last").is_dir():
        ckpt = ckpt / "checkpoints" / "last"
    execs = []
    for name in a.exec.split(","):
        cfg = {k: v for k, v in dict(load_group("exec", name.strip())).items() if k != "_name"}
        for o in a.overrides:
            k, sep, v = o.partition("=")
            if not sep:
                raise ConfigError(f"override {o!r}: expected key=value")
            cfg[k.removeprefix("exec.")] = _parse_value(v)
        execs.append(cfg)
    if a.delays is None:
        if len(execs) > 1:
            raise ConfigError("several executors given: add --delays (e.g. --delays 0) to compare them")
        out = Path(a.out) if a.out else ckpt.parent.parent / "eval" / execs[0].get("name", "exec")
        dist = _dist()
        try:
            return _eval_and_print(ckpt, a.episodes, a.n_envs, a.seed_start, a.videos, execs[0], out, dist)
        finally:
            dist.close()
    return _delay_sweep(ckpt, execs, a)


def _delay_sweep(ckpt: Path, execs: list[dict], a) -> int:
    from robolearn.errors import ConfigError
    from robolearn.eval.delay_sweep import sweep
    from robolearn.policy import ChunkPolicy
    from robolearn.train.trainer import pick_device

    try:
        delays = [int(d) for d in a.delays.split(",")]
    except ValueError:
        raise ConfigError(f"--delays: expected comma-separated integers, got {a.delays!r}") from None
    policy = ChunkPolicy.load(ckpt, device=pick_device("auto"))
    t = policy.meta.get("task") or {}
    task = _task_from(t.get("name"), dict(t.get("kwargs") or {}))
    out = Path(a.out) if a.out else ckpt.parent.parent / "eval" / "delay_sweep"
    rows = sweep(policy, task, execs, delays, n_episodes=a.episodes, n_envs=a.n_envs, seed_start=a.seed_start,
                 out_dir=out)
    print(f"| {'executor':<24} | delay | success | 95% CI       | max score | jerk   | boundary jump |")
    print(f"|{'-' * 26}|-------|---------|--------------|-----------|--------|---------------|")
    for r in rows:
        lo, hi = r["success_ci95"]
        print(f"| {r['executor'][:24]:<24} | {r['delay']:>5} | {r['success_rate']:>7.2f} | [{lo:.2f}, {hi:.2f}] |"
              f" {r['mean_max_score']:>9.3f} | {r['mean_abs_jerk']:.4f} | {r['boundary_jump']:>13.4f} |")
    print(f"table + plot: {out / 'delay_sweep.json'}, {out / 'delay_sweep.png'}")
    return 0


def _parse_value(v: str):
    import yaml

    return yaml.safe_load(v)


def cmd_inspect(a) -> int:
    from robolearn.data.dataset import describe

    print(describe(a.path))
    if a.video is not None:
        from robolearn.data.replay_buffer import ReplayBuffer
        from robolearn.eval.rollout import write_video

        buf = ReplayBuffer.open(a.path)
        ep = buf.get_episode(a.video, keys=[a.key])
        frames = ep[a.key]
        if frames.dtype != "uint8":
            frames = frames.clip(0, 255).astype("uint8")
        out = Path(a.out or f"episode_{a.video}.mp4")
        write_video(list(frames), out, fps=a.fps)
        print(f"video: {out} ({len(frames)} frames of {a.key})")
    return 0


def cmd_interactive(a) -> int:
    from robolearn.algos.dagger import main as interactive_main

    return interactive_main(a.overrides, default_algo=a.default_algo, prog_name=f"robolearn {a.cmd}")


def cmd_ablate(a) -> int:
    from robolearn.ablate import aggregate, load_experiment, markdown_table, run_experiment
    from robolearn.errors import ConfigError

    try:
        seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else None
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers, got {a.seeds!r}") from None
    rows = run_experiment(a.experiment, out=a.out, progress=True,
                          only_tasks=[t.strip() for t in a.tasks.split(",")] if a.tasks else None, only_seeds=seeds)
    exp = load_experiment(a.experiment)
    out = Path(a.out or exp.get("out") or f"runs/ablate/{exp._name}")
    print(markdown_table(aggregate(rows, exp.get("reference")), exp.get("reference")))
    print(f"results: {out / 'results.csv'}, {out / 'results.md'}, {out / 'results.png'}")
    return 0


def cmd_quickstart(a) -> int:
    from robolearn.quickstart import quickstart

    quickstart(Path(a.out), episodes=a.episodes, steps=a.steps, eval_episodes=a.eval_episodes)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robolearn", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("collect", help="run a scripted expert and write demos to zarr")
    c.add_argument("task")
    c.add_argument("--episodes", type=int, default=100)
    c.add_argument("--out", required=True)
    c.add_argument("--noise", type=float, default=0.0, help="DART: std of Gaussian noise added to executed actions")
    c.add_argument("--obs", choices=["state", "image"], default=None)
    c.add_argument("--seed-start", type=int, default=0)
    c.add_argument("--keep-failures", action="store_true")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    g.add_argument("--append", action="store_true", help="add episodes to an existing dataset at --out")
    c.set_defaults(fn=cmd_collect)

    t = sub.add_parser("train", help="train a chunked policy: key=value overrides (task=, policy=, data=, algo.steps=)")
    t.add_argument("overrides", nargs="*")
    t.add_argument("--eval-episodes", type=int, default=0, help="evaluate the final checkpoint on N episodes")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint (or run dir) in simulation")
    e.add_argument("checkpoint")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--n-envs", type=int, default=10)
    e.add_argument("--seed-start", type=int, default=100_000)
    e.add_argument("--videos", type=int, default=2)
    e.add_argument("--exec", default="receding",
                   help="executor config(s) in configs/exec/: receding | ensemble | naive_async | rtc (comma-separated with --delays)")
    e.add_argument("--delays", default=None, help="simulated inference delays in env steps, e.g. 0,1,2,4: a sweep table + plot")
    e.add_argument("--out", default=None)
    e.add_argument("overrides", nargs="*", help="exec options for every executor, e.g. s=4 delay=2")
    e.set_defaults(fn=cmd_eval)

    q = sub.add_parser("quickstart", help="collect FetchPush demos, train, evaluate, print the table")
    q.add_argument("--out", default="runs/quickstart")
    q.add_argument("--episodes", type=int, default=200)
    q.add_argument("--steps", type=int, default=3000)
    q.add_argument("--eval-episodes", type=int, default=50)
    q.set_defaults(fn=cmd_quickstart)

    for name, algo, what in (("dagger", "dagger", "DAgger rounds (algo=hg_dagger for HG-DAgger)"),
                             ("dart", "dart", "DART iterations: noise set from the learner's error")):
        d = sub.add_parser(name, help=f"{what}: key=value overrides (task=, run_dir=, algo.rounds=, algo.expert=CKPT); "
                                      "re-run to resume")
        d.add_argument("overrides", nargs="*")
        d.set_defaults(fn=cmd_interactive, default_algo=algo)

    ab = sub.add_parser("ablate", help="variants x tasks x seeds from configs/experiment/<name>.yaml; re-run to resume")
    ab.add_argument("experiment")
    ab.add_argument("--out", default=None, help="results directory (default: the experiment's out, or runs/ablate/<name>)")
    ab.add_argument("--tasks", default=None, help="run only these tasks of the grid (comma-separated)")
    ab.add_argument("--seeds", default=None, help="run only these seeds (comma-separated): split a grid over processes")
    ab.set_defaults(fn=cmd_ablate)

    i = sub.add_parser("inspect", help="describe a zarr dataset; optionally render an episode to video")
    i.add_argument("path")
    i.add_argument("--video", type=int, default=None, metavar="EPISODE")
    i.add_argument("--key", default="img")
    i.add_argument("--fps", type=int, default=10)
    i.add_argument("--out", default=None)
    i.set_defaults(fn=cmd_inspect)
    return p


def main(argv: list[str] | None = None) -> int:
    from robolearn.errors import RobolearnError

    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except RobolearnError as e:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        where = f" [rank {os.environ.get('RANK', '0')}/{world}]" if world > 1 else ""
        print(f"robolearn {args.cmd}{where}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robolearn {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
