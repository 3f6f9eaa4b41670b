"""The ``robolearn`` command: collect | train | eval | dagger | dart | correct | ablate | delay | convert |
inspect | list | quickstart.

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


def _task_from(name: str, overrides: list[str] | None = None, obs: str | None = None):
    """The task a command names: its config (configs/task/<name>.yaml, or a suite's template) with
    ``task.*`` overrides, composed and checked as ``train`` does; a built-in task without a config
    file of its own (fetch_reach_image) by name."""
    from robolearn.config import compose, find_config
    from robolearn.envs import make_task, task_names
    from robolearn.train.data import make_task_from

    if find_config("task", name) is None and name in task_names() and not overrides:
        return make_task(name, **({"obs": obs} if obs else {}))
    cfg = compose([f"task={name}", *(overrides or [])])
    if obs:
        cfg.task.kwargs = {**dict(cfg.task.get("kwargs") or {}), "obs": obs}
    return make_task_from(cfg)


def cmd_collect(a) -> int:
    from robolearn.algos.collect import collect

    task = _task_from(a.task, a.overrides, a.obs)
    s = collect(
        task,
        a.episodes,
        a.out,
        noise=a.noise,
        seed_start=a.seed_start,
        keep_failures=a.keep_failures,
        overwrite=a.overwrite,
        append=a.append,
        until_kept=a.until_kept,
    )
    print(
        f"collected {s['episodes_kept']} episodes ({s['steps_kept']} steps) of {s['task']} -> {s['path']}; "
        f"expert success {s['expert_success']:.1%} over {s['episodes_run']} episodes (noise {s['noise']})"
    )
    return 0


def cmd_correct(a) -> int:
    from robolearn.algos.corrective import correct

    task = _task_from(a.task, a.overrides)
    s = correct(
        task,
        a.data,
        a.out,
        dynamics=a.dynamics,
        n_samples=a.samples,
        noise=a.noise,
        threshold=a.threshold,
        trust=a.trust,
        horizon=a.horizon,
        obs_horizon=a.obs_horizon,
        dims=[int(d) for d in a.perturb_dims.split(",")] if a.perturb_dims else None,
        seed=a.seed,
        overwrite=a.overwrite,
    )
    print(
        f"corrective labels ({s['dynamics']} dynamics): kept {s['kept']} of {s['generated']} "
        f"({s['kept_fraction']:.0%}; median label error {s['label_error_median']:.3g} stds) -> {s['path']} "
        f"({s['demo_episodes']} demonstration + {s['corrective_episodes']} corrective episodes); "
        "train with data=<it> algo.chunk_key=action_chunk"
    )
    if "sim_within_threshold_kept" in s:
        rej = s.get("sim_within_threshold_rejected")
        print(
            f"checked in the simulator: {s['sim_within_threshold_kept']:.0%} of the kept labels reach the "
            f"demonstrated next state within {s['threshold']:g} stds (median {s['sim_error_median_kept']:.3g})"
            + ("" if rej is None else f", {rej:.0%} of the rejected ones (median {s['sim_error_median_rejected']:.3g})")
        )
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
    from robolearn.eval.api import check_counts
    from robolearn.train.trainer import train

    check_counts(eval_episodes=(a.eval_episodes, 0))
    cfg = compose(a.overrides)
    if str(cfg.algo.name) in ("gail", "airl", "expert"):
        from robolearn.errors import ConfigError

        how = (
            "evaluate it as a cell of `robolearn ablate`"
            if cfg.algo.name == "expert"
            else f"run `robolearn {cfg.algo.name}`"
        )
        raise ConfigError(f"algo={cfg.algo._name}: `robolearn train` runs behavior cloning (algo=bc); {how}")
    if "rounds" in cfg.algo:
        from robolearn.errors import ConfigError

        raise ConfigError(
            f"algo={cfg.algo._name}: `robolearn train` runs behavior cloning (algo=bc); run "
            f"`robolearn {'dart' if cfg.algo.name == 'dart' else 'dagger'} algo={cfg.algo._name} ...` for rounds"
        )
    dist = _dist(cfg.dist_timeout_s)
    try:
        run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        if dist.world > 1 and not cfg.run_dir:
            from robolearn.errors import ConfigError

            raise ConfigError(
                "run_dir: expected an explicit run_dir under torchrun (ranks must agree on it), found none"
            )
        from robolearn.config import refuse_changed_settings

        refuse_changed_settings(cfg, run_dir, a.continue_with_new_settings, "--continue-with-new-settings")
        ckpt = train(cfg, run_dir, dist=dist)
        if dist.is_main:
            print(f"checkpoint: {ckpt}")
        if a.eval_episodes:
            return _eval_and_print(
                ckpt,
                a.eval_episodes,
                cfg.eval.n_envs,
                cfg.eval.seed_start,
                cfg.eval.videos,
                dict(cfg.exec),
                run_dir / "eval",
                dist,
                float(cfg.eval.action_noise),
            )
        return 0
    finally:
        dist.close()


def _eval_and_print(run_or_ckpt, episodes, n_envs, seed_start, videos, exec_cfg, out_dir, dist=None, noise=0.0) -> int:
    """Evaluate right after training, with the run's own executor config (``train --eval-episodes``)."""
    from robolearn.eval.api import evaluate_checkpoint, resolve_checkpoint

    ckpt = resolve_checkpoint(run_or_ckpt)
    m = evaluate_checkpoint(ckpt, exec_cfg, Path(out_dir), episodes, n_envs, seed_start, videos, dist, noise)
    _print_metrics(ckpt, m)
    return 0


def _print_metrics(ckpt, m) -> None:
    if m is not None:  # rank 0 (or a single process) reports
        from robolearn.eval.metrics import results_table

        print(results_table([(str(ckpt), m)]))
        print(f"metrics: {m['metrics_file']}")


def cmd_eval(a) -> int:
    from robolearn.eval import api

    if a.delays is not None:
        return _delay_sweep(a)
    dist = _dist()
    try:
        m = api.evaluate(
            a.checkpoint,
            episodes=a.episodes,
            n_envs=a.n_envs,
            seed_start=a.seed_start,
            videos=a.videos,
            exec=a.exec,
            overrides=a.overrides,
            out=a.out,
            action_noise=a.action_noise,
            max_steps=a.max_steps,
            dist=dist,
        )
    finally:
        dist.close()
    _print_metrics(api.resolve_checkpoint(a.checkpoint), m)
    return 0


def _delay_sweep(a) -> int:
    from robolearn.errors import ConfigError
    from robolearn.eval import api

    try:
        delays = [int(d) for d in a.delays.split(",")]
    except ValueError:
        raise ConfigError(f"--delays: expected comma-separated integers, got {a.delays!r}") from None
    api.check_counts(episodes=(a.episodes, 1), n_envs=(a.n_envs, 1), seed_start=(a.seed_start, 0))
    from robolearn.experiments.sweep import delay_sweep

    rows, out = delay_sweep(
        a.checkpoint,
        delays,
        exec=a.exec,
        overrides=a.overrides,
        episodes=a.episodes,
        n_envs=a.n_envs,
        seed_start=a.seed_start,
        out=a.out,
        action_noise=a.action_noise,
        max_steps=a.max_steps,
    )
    from robolearn.experiments.report import sweep_markdown

    print(sweep_markdown(rows))
    print(f"table + plot: {out / 'delay_sweep.json'}, {out / 'delay_sweep.png'}")
    return 0


def cmd_inspect(a) -> int:
    from robolearn.eval.inspect import inspect_dataset

    return inspect_dataset(a.path, verify=a.verify, video=a.video, key=a.key, out=a.out, fps=a.fps)


def cmd_interactive(a) -> int:
    from robolearn.algos.interactive import main as interactive_main

    return interactive_main(
        a.overrides,
        default_algo=a.default_algo,
        prog_name=f"robolearn {a.cmd}",
        allow_changed=a.continue_with_new_settings,
    )


def cmd_adversarial(a) -> int:
    from robolearn.algos.adversarial import main as adversarial_main

    return adversarial_main(a.overrides, default_algo=a.default_algo)


def _names(arg: str | None) -> list[str] | None:
    """A comma-separated option (``--tasks a,b``) as its names; None when not given."""
    return [x.strip() for x in arg.split(",")] if arg else None


def cmd_ablate(a) -> int:
    from robolearn.errors import ConfigError
    from robolearn.experiments import aggregate, load_experiment, results_table, run_experiment

    try:
        seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else None
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers, got {a.seeds!r}") from None
    rows = run_experiment(
        a.experiment,
        out=a.out,
        progress=True,
        only_tasks=_names(a.tasks),
        only_seeds=seeds,
        overrides=a.overrides,
        only_variants=_names(a.variants),
    )
    exp = load_experiment(a.experiment, a.overrides)
    out = Path(a.out or exp.get("out") or f"runs/ablate/{exp._name}")
    print(results_table(aggregate(rows, exp.get("reference")), exp, out))
    print(f"results: {out / 'results.csv'}, {out / 'results.md'}, {out / 'results.png'}")
    return 0


def cmd_delay(a) -> int:
    from robolearn.experiments.delay import run_delay_experiment
    from robolearn.experiments.report import delay_markdown

    rows = run_delay_experiment(
        a.experiment,
        out=a.out,
        progress=True,
        only_tasks=_names(a.tasks),
        overrides=a.overrides,
        only_variants=_names(a.variants),
    )
    print(delay_markdown(rows))
    return 0


def cmd_convert(a) -> int:
    from robolearn.data.formats import convert, summary_line

    s = convert(a.src, a.dst, fmt=a.from_, image_size=a.image_size, fps=a.fps, vcodec=a.vcodec, progress=True)
    if s.get("key_map"):
        print("keys: " + ", ".join(f"{k} -> {v}" for k, v in s["key_map"].items()))
    if s.get("masks"):
        print("masks: " + ", ".join(f"{k} ({n} episodes)" for k, n in s["masks"].items()))
    print(f"converted {s['from']}: " + summary_line(s))
    return 0


def catalogue() -> dict[str, list[str]]:
    """Every name a user can pick, by what it is."""
    from robolearn.config import group_options
    from robolearn.envs import task_names
    from robolearn.execution import load_executors
    from robolearn.heads.base import head_names

    EXECUTORS = load_executors()

    return {
        "tasks (task=)": group_options("task"),
        "simulated tasks (envs)": task_names(),
        "policies (policy=)": group_options("policy"),
        "heads (policy.head.name=)": head_names(),
        "encoder presets (policy.encoder.preset=)": group_options("policy/encoder"),
        "algorithms (algo=)": group_options("algo"),
        "executors (--exec / exec=)": sorted(EXECUTORS),
        "recipes (recipe=)": group_options("recipe"),
        "experiments (robolearn ablate)": group_options("experiment"),
    }


def cmd_list(a) -> int:
    from robolearn.config import DEFAULTS, config_dirs

    for what, names in catalogue().items():
        print(f"{what}: {', '.join(names)}")
    print(
        "top-level keys: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items() if not isinstance(v, dict))
        + ", eval.episodes, eval.n_envs, eval.seed_start, eval.videos, eval.workers"
    )
    print("config folders (first match wins): " + ", ".join(str(d) for d in config_dirs()))
    return 0


def cmd_quickstart(a) -> int:
    from robolearn.quickstart import quickstart

    quickstart(Path(a.out), episodes=a.episodes, steps=a.steps, eval_episodes=a.eval_episodes)
    return 0


def _choices_epilog() -> str:
    try:
        return "choices:\n" + "\n".join(f"  {what}: {', '.join(names)}" for what, names in catalogue().items())
    except Exception:  # the help must print even if a config folder is broken
        return "choices: robolearn list"


def _choices_on_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The catalogue as the parser's epilog, built when its help is printed: building it imports
    every task (seconds), which a command that runs should not pay."""
    plain = parser.format_help

    def format_help() -> str:
        parser.epilog = _choices_epilog()
        return plain()

    parser.format_help = format_help
    return parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robolearn",
        description=" ".join(__doc__.split(".\n")[0].split(": ", 1)[-1].split()),
        epilog="robolearn list: every task, policy, head, executor and recipe. "
        "robolearn COMMAND --help: that command's options.",
    )
    p.add_argument(
        "--config-dir",
        action="append",
        default=[],
        help="a folder of your own configs (<group>/<name>.yaml) searched before the shipped ones; "
        "./configs in the working directory is searched too",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    c = sub.add_parser("collect", help="run a scripted expert and write demos to zarr")
    c.add_argument("task", help="a task config: catch, fetch_push, catch_multimodal, metaworld/<env>, ...")
    c.add_argument("overrides", nargs="*", help="task options: task.kwargs.wander=0.0 task.kwargs.expert=multimodal")
    c.add_argument("--episodes", type=int, default=100)
    c.add_argument("--out", required=True)
    c.add_argument("--noise", type=float, default=0.0, help="DART: std of Gaussian noise added to executed actions")
    c.add_argument("--obs", choices=["state", "image"], default=None)
    c.add_argument("--seed-start", type=int, default=0)
    c.add_argument("--keep-failures", action="store_true")
    c.add_argument(
        "--until-kept", action="store_true", help="--episodes counts kept (successful) episodes: run seeds until then"
    )
    g = c.add_mutually_exclusive_group()
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    g.add_argument("--append", action="store_true", help="add episodes to an existing dataset at --out")
    c.set_defaults(fn=cmd_collect)

    t = sub.add_parser(
        "train",
        help="train a chunked policy: key=value overrides (task=, policy=, data=, algo.steps=)",
        description="Train a chunked policy. Overrides are key=value: group choices (task=NAME, "
        "policy=NAME, algo=NAME, exec=NAME, recipe=NAME) and dotted keys "
        "(algo.steps=2000, policy.head.num_steps=4, data=PATH, run_dir=DIR, seed=1).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _choices_on_help(t)
    t.add_argument("overrides", nargs="*")
    t.add_argument("--eval-episodes", type=int, default=0, help="evaluate the final checkpoint on N episodes")
    t.add_argument(
        "--continue-with-new-settings",
        action="store_true",
        help="resume a run_dir whose saved config.yaml differs from these settings (refused otherwise)",
    )
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint (or run dir) in simulation")
    e.add_argument("checkpoint")
    e.add_argument("--episodes", type=int, default=50)
    e.add_argument("--n-envs", type=int, default=10)
    e.add_argument("--seed-start", type=int, default=100_000)
    e.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="episode step limit (default: the task's, e.g. Push-T's 300); episodes still end at success",
    )
    e.add_argument("--videos", type=int, default=2)
    e.add_argument(
        "--exec",
        default=None,
        help="executor config(s) in configs/exec/: receding | ensemble | naive_async | rtc "
        "(comma-separated with --delays); default: the run's own (its config.yaml), else receding",
    )
    e.add_argument(
        "--delays", default=None, help="simulated inference delays in env steps, e.g. 0,1,2,4: a sweep table + plot"
    )
    e.add_argument(
        "--action-noise",
        type=float,
        default=0.0,
        help="execution noise: Gaussian, std in half action ranges, added to every executed action (seeded)",
    )
    e.add_argument("--out", default=None)
    e.add_argument(
        "overrides",
        nargs="*",
        help="exec options for every executor (s=4 delay=2); head.KEY=VALUE changes a sampling option "
        "of the trained head (head.num_steps=20, head.init_noise=zero)",
    )
    e.set_defaults(fn=cmd_eval)

    q = sub.add_parser("quickstart", help="collect FetchPush demos, train, evaluate, print the table")
    q.add_argument("--out", default="runs/quickstart", help="folder for the demos, the run and its evaluation")
    q.add_argument("--episodes", type=int, default=200, help="expert demonstrations to collect")
    q.add_argument("--steps", type=int, default=3000, help="training steps (batch 256)")
    q.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes (seeds from 100000)")
    q.set_defaults(fn=cmd_quickstart)

    for name, algo, what in (
        ("dagger", "dagger", "DAgger rounds (algo=hg_dagger for HG-DAgger)"),
        ("dart", "dart", "DART iterations: noise set from the learner's error"),
    ):
        d = sub.add_parser(
            name,
            help=f"{what}: key=value overrides (task=, run_dir=, algo.rounds=, algo.expert=CKPT); re-run to resume",
        )
        d.add_argument("overrides", nargs="*")
        d.add_argument(
            "--continue-with-new-settings",
            action="store_true",
            help="resume a run_dir whose saved config.yaml differs from these settings (refused otherwise)",
        )
        d.set_defaults(fn=cmd_interactive, default_algo=algo)

    for name in ("gail", "airl"):
        g = sub.add_parser(
            name,
            help=f"{name.upper()}: a critic against the demos, a PPO learner on its reward (stable-baselines3); "
            "key=value overrides (task=, data=, run_dir=, algo.divergence=, algo.rounds=)",
        )
        g.add_argument("overrides", nargs="*")
        g.set_defaults(fn=cmd_adversarial, default_algo=name)

    ab = sub.add_parser("ablate", help="variants x tasks x seeds from configs/experiment/<name>.yaml; re-run to resume")
    ab.add_argument("experiment")
    ab.add_argument(
        "--out", default=None, help="results directory (default: the experiment's out, or runs/ablate/<name>)"
    )
    ab.add_argument("--tasks", default=None, help="run only these tasks of the grid (comma-separated)")
    ab.add_argument("--seeds", default=None, help="run only these seeds (comma-separated): split a grid over processes")
    ab.add_argument("--variants", default=None, help="run only these variants of the grid (comma-separated)")
    ab.add_argument(
        "overrides",
        nargs="*",
        help="budget for every cell: training overrides (algo.steps=500), "
        "eval.episodes= / eval.n_envs= / eval.seed_start=, seeds=[0,1] (the training seeds) and "
        "collect.episodes=N (demonstrations collected per task)",
    )
    ab.set_defaults(fn=cmd_ablate)

    cr = sub.add_parser(
        "correct",
        help="corrective labels without an expert: demos + perturbed states labelled by true or learned dynamics",
    )
    cr.add_argument("task", help="a task that can be put into a given state: pusht, pusht_keypoints, catch, cartpole")
    cr.add_argument("overrides", nargs="*", help="task options, as for collect: task.kwargs.wander=0.0")
    cr.add_argument("--data", required=True, help="the demonstrations (zarr)")
    cr.add_argument("--out", required=True, help="the new dataset: demonstrations + corrective episodes")
    cr.add_argument("--dynamics", default="true", help="true (the simulator) | learned (CCIL: a model of the demos)")
    cr.add_argument("--samples", type=int, default=1000, help="corrective samples to generate")
    cr.add_argument("--noise", type=float, default=0.3, help="state perturbation, in demonstration stds")
    cr.add_argument(
        "--threshold", type=float, default=0.1, help="keep labels reaching the demo's next state within this"
    )
    cr.add_argument("--trust", type=float, default=None, help="learned: max held-out model error (default: its median)")
    cr.add_argument("--horizon", type=int, default=16, help="chunk length of the labels (the policy's horizon)")
    cr.add_argument("--obs-horizon", type=int, default=2, help="observation history of each corrective episode")
    cr.add_argument(
        "--perturb-dims",
        default=None,
        help="state dims to perturb, e.g. 0,1 (default: the task's, those one action undoes)",
    )
    cr.add_argument("--seed", type=int, default=0)
    cr.add_argument("--overwrite", action="store_true")
    cr.set_defaults(fn=cmd_correct)

    dl = sub.add_parser(
        "delay",
        help="success against inference delay per executor, head and task (configs/experiment/rtc_delay.yaml)",
    )
    dl.add_argument("experiment")
    dl.add_argument(
        "--out", default=None, help="results directory (default: the experiment's out, or runs/delay/<name>)"
    )
    dl.add_argument("--tasks", default=None, help="run only these tasks (comma-separated)")
    dl.add_argument("--variants", default=None, help="run only these variants (comma-separated)")
    dl.add_argument(
        "overrides", nargs="*", help="as for ablate: algo.steps=500, eval.episodes=20, seeds=[0], collect.episodes=50"
    )
    dl.set_defaults(fn=cmd_delay)

    cv = sub.add_parser(
        "convert",
        help="convert demos: LeRobot v3.0/v2.1 or robomimic hdf5 -> zarr, zarr -> LeRobot v3.0",
        description="Convert SRC to DST. The format of SRC is detected (a folder with meta/info.json: "
        "LeRobot; a .hdf5 file: robomimic; a zarr store: written as LeRobot v3.0).",
    )
    cv.add_argument("src")
    cv.add_argument("dst", help="a new path (an existing one is refused)")
    cv.add_argument(
        "--from",
        dest="from_",
        choices=["lerobot", "robomimic", "zarr"],
        default=None,
        help="source format, when detection cannot tell",
    )
    cv.add_argument("--image-size", type=int, default=None, help="resize decoded frames to N x N")
    cv.add_argument(
        "--fps", type=float, default=None, help="zarr -> LeRobot: frame rate (default: the store's fps, or 10)"
    )
    cv.add_argument("--vcodec", default="libx264", help="zarr -> LeRobot: video codec (libx264 | libsvtav1)")
    cv.set_defaults(fn=cmd_convert)

    ls = sub.add_parser(
        "list", help="every task, policy, head, encoder preset, algorithm, executor, recipe and experiment"
    )
    ls.set_defaults(fn=cmd_list)

    i = sub.add_parser("inspect", help="describe a zarr dataset; optionally render an episode to video")
    i.add_argument("path")
    i.add_argument("--verify", action="store_true", help="read every chunk; report all missing or corrupt ones")
    i.add_argument("--video", type=int, default=None, metavar="EPISODE")
    i.add_argument("--key", default="img")
    i.add_argument("--fps", type=int, default=10)
    i.add_argument("--out", default=None)
    i.set_defaults(fn=cmd_inspect)
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Options may stand anywhere on the line, also after key=value overrides
    (``robolearn eval RUN --exec rtc s=8 delay=2 --episodes 20``): the command's own parser reads
    its arguments intermixed."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    top, rest = parser.parse_known_args(argv)
    if not rest:
        return top
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[top.cmd]
    i = argv.index(top.cmd)
    ns = sub.parse_intermixed_args(argv[i + 1 :])
    for k, v in vars(top).items():
        if not hasattr(ns, k) or k in ("cmd", "config_dir"):
            setattr(ns, k, v)
    return ns


def main(argv: list[str] | None = None) -> int:
    from robolearn.errors import RobolearnError

    args = parse(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _explain_launcher_stop(args.cmd)
    try:
        from robolearn.config import add_config_dir
        from robolearn.threads import choose_threads

        choose_threads()  # cores other processes keep busy are not ours: see robolearn/threads.py

        for d in args.config_dir:
            add_config_dir(d)
        return int(args.fn(args) or 0)
    except RobolearnError as e:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        where = f" [rank {os.environ.get('RANK', '0')}/{world}]" if world > 1 else ""
        print(f"robolearn {args.cmd}{where}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robolearn {args.cmd}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


def _explain_launcher_stop(cmd: str) -> None:
    """torchrun stops the other ranks with SIGTERM when one fails: say so in one line."""
    import signal

    def stop(signum, frame):
        print(
            f"robolearn {cmd} [rank {os.environ.get('RANK', '?')}/{os.environ.get('WORLD_SIZE')}]: stopped by the "
            "launcher because another rank failed (see above); re-launch the same command to resume from the last "
            "checkpoint",
            file=sys.stderr,
            flush=True,
        )
        os._exit(143)

    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
