"""Which routes the policies of a catch experiment take: mode coverage per variant.

The two-route catch expert (``task=catch_multimodal``) reaches the interception point from the
left or from the right, one side drawn per episode; a policy that matched the demonstrations'
distribution would take both. For every finished cell of an ``ablate`` output directory, this
replays the cell's evaluation (the same seeds, waves, noise draws and executor generator, so the
successes equal the cell's ``metrics.json``; checked) while ``eval.modality.catch_routes`` reads
each episode's route (left / right / direct: ``envs.dynamic.classify_route``), and writes per
variant, pooled over seeds: success with its Wilson interval, the share of each route, and the
success on each route. The scripted two-route expert on the same seeds and noise is the first row.

    python tools/route_coverage.py runs/ablate/divergence_catch [--out runs/ablate/divergence_catch/routes.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class ExpertDrive:
    """The task's scripted expert as a rollout actor (reset(), act(obs_history)): it reads each
    env's simulator, so the rollout must run in-process envs the caller made (``venv``)."""

    def __init__(self, task, envs):
        self.expert, self.envs = task.expert(), envs

    def reset(self):
        for env in self.envs:
            self.expert.reset(env)

    def act(self, obs):
        return np.stack([self.expert.act(env) for env in self.envs])


def actor_factory(cfg, ckpt: str, seed: int):
    """(act_fn_factory, obs_horizon, cleanup) for a cell's checkpoint, built as its evaluation built it."""
    from robolearn.config import to_dict
    from robolearn.eval.rollout import wave_generator
    from robolearn.execution import build_executor
    from robolearn.train.trainer import make_task_from

    if ckpt.endswith(".zip"):  # a GAIL / AIRL learner (stable-baselines3)
        from robolearn.algos.adversarial import load_learner

        actor = load_learner(Path(ckpt).parent, make_task_from(cfg))
        return (lambda n, w: actor), 1, actor.env.close
    from robolearn.policy import ChunkPolicy

    policy = ChunkPolicy.load(ckpt, device="cpu")
    exec_cfg = to_dict(cfg.exec)
    return (lambda n, w: build_executor(exec_cfg, policy, n, generator=wave_generator(policy, seed, w))), \
        policy.obs_horizon, (lambda: None)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from robolearn.errors import ConfigError
    from robolearn.eval.env_batch import EnvBatch
    from robolearn.eval.metrics import wilson_interval
    from robolearn.eval.modality import catch_routes
    from robolearn.experiments.spec import cell_cfg, load_experiment
    from robolearn.train.trainer import make_task_from

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="an `robolearn ablate` output directory on a catch task")
    p.add_argument("--md", type=Path, default=None, help="write the table here (default OUT/routes.md)")
    args = p.parse_args(argv)
    exp_file = args.out / "experiment.yaml"
    if not exp_file.is_file():
        raise SystemExit(f"route_coverage: {exp_file}: expected the experiment file of an ablate output, not found")
    exp = load_experiment(exp_file)
    cache = args.out / "routes.json"
    done: dict = json.loads(cache.read_text()) if cache.is_file() else {}
    rows: dict[str, list[dict]] = defaultdict(list)
    for task_name in exp.tasks:
        for seed in exp.seeds:
            for variant in ["expert", *exp.variants]:
                key = f"{variant}/{task_name}/s{seed}"
                if variant == "expert" and seed != exp.seeds[0]:
                    continue  # the scripted expert does not depend on the training seed
                if key not in done:
                    cfg = cell_cfg(exp, next(iter(exp.variants)) if variant == "expert" else variant, task_name,
                                   int(seed), None)  # fmt: skip
                    task = make_task_from(cfg)
                    if variant == "expert":
                        if task.expert() is None:
                            raise ConfigError(f"{exp_file}: task {task_name!r} has no scripted expert")
                        n_envs = int(cfg.eval.n_envs)
                        envs = [task.make_env() for _ in range(n_envs)]
                        try:
                            recs = catch_routes(task, lambda n, w, e=envs: ExpertDrive(task, e), int(cfg.eval.episodes),
                                                n_envs, int(cfg.eval.seed_start), 1, float(cfg.eval.action_noise),
                                                int(seed), venv=EnvBatch(envs))  # fmt: skip
                        finally:
                            for e in envs:
                                e.close()
                    else:
                        mfile = args.out / "cells" / variant / task_name / f"s{seed}" / "metrics.json"
                        if not mfile.is_file():
                            continue
                        cell = json.loads(mfile.read_text())
                        factory, horizon, close = actor_factory(cfg, cell["summary"]["checkpoint"], int(seed))
                        try:
                            recs = catch_routes(task, factory, int(cfg.eval.episodes), int(cfg.eval.n_envs),
                                                int(cfg.eval.seed_start), horizon, float(cfg.eval.action_noise),
                                                int(seed))  # fmt: skip
                        finally:
                            close()
                        same = sum(a["success"] == b["success"] for a, b in zip(recs, cell["episodes"]))
                        if same != len(recs):
                            print(f"warning: {key}: {len(recs) - same} of {len(recs)} episodes' success differ "
                                  "from the cell's evaluation")  # fmt: skip
                    done[key] = [{"seed": r["seed"], "success": r["success"], "route": r["route"]} for r in recs]
                    cache.write_text(json.dumps(done))
                    print(f"{key}: done", flush=True)
                rows[f"{variant}|{task_name}"] += done[key]

    lines = [
        "| variant | task | episodes | success [95% CI] | left | right | direct | success on left / right / direct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, recs in rows.items():
        variant, task_name = key.split("|")
        n = len(recs)
        k = sum(r["success"] for r in recs)
        lo, hi = wilson_interval(k, n)
        shares, on = [], []
        for route in ("left", "right", "direct"):
            mine = [r for r in recs if r["route"] == route]
            shares.append(f"{len(mine) / n:.2f}")
            on.append(f"{np.mean([r['success'] for r in mine]):.2f}" if mine else "-")
        lines.append(f"| {variant} | {task_name} | {n} | {k / n:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{' | '.join(shares)} | {' / '.join(on)} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    (args.md or args.out / "routes.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
