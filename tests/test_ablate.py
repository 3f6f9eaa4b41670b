"""`robolearn ablate`: a tiny grid on a real simulator runs end to end, skips finished cells and
resumes after being killed."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robolearn.config import group_options
from robolearn.errors import ConfigError
from robolearn.experiments import aggregate, load_experiment, markdown_table, run_experiment
from tests.procs import kill_when

TINY = """
name: tiny
reference: flow
seeds: [0, 1]
train: [algo.steps=30, algo.batch_size=32, algo.warmup_steps=5, algo.log_every=10, algo.val_every=30,
        algo.ckpt_every=10, device=cpu, "policy.head.down_dims=[16,32]", policy.head.n_groups=4]
eval: {episodes: 2, n_envs: 2}
tasks:
  reach: {overrides: [task=fetch_reach], collect: {episodes: 4}}
variants:
  flow: {train: [policy=flow], components: C1+C2+C3}
  flow_z0: {from: flow, sample: {init_noise: zero}, components: C1+C3}
"""


def _write(tmp_path: Path, text: str = TINY) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def _mtimes(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob("cells/*/*/*/metrics.json")}


def test_tiny_grid_end_to_end_then_skips_finished_cells(tmp_path):
    exp, out = _write(tmp_path), tmp_path / "out"
    # seeds=[1] first (an experiment extended seed by seed into one --out), then the file's seeds
    # [0, 1] with --seeds 0 (a grid split over processes): seed 1 is not run again, the table pools both
    part = run_experiment(exp, out=out, progress=False, overrides=["seeds=[1]"])
    assert [(r["variant"], r["seed"]) for r in part] == [("flow", 1), ("flow_z0", 1)]
    first = _mtimes(out)
    other = run_experiment(exp, out=out, progress=False, only_seeds=[0])
    assert [r["seed"] for r in other] == [0, 0] and all(_mtimes(out)[k] == v for k, v in first.items())
    with open(out / "results.csv") as f:  # the results show every finished cell, not just the last run's
        assert len(list(csv.DictReader(f))) == 4
    rows = run_experiment(exp, out=out, progress=False)
    assert all(_mtimes(out)[k] == v for k, v in first.items())
    assert [(r["variant"], r["seed"]) for r in rows] == [("flow", 0), ("flow_z0", 0), ("flow", 1), ("flow_z0", 1)]
    with open(out / "results.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 4 and {g["variant"] for g in got} == {"flow", "flow_z0"}
    assert all(0.0 <= float(g["success_rate"]) <= 1.0 and int(g["episodes"]) == 2 for g in got)
    assert (out / "results.png").stat().st_size > 0
    md = (out / "results.md").read_text()
    assert "| flow_z0 | C1+C3 | 10 |" in md and "score (/flow)" in md
    # z = 0 re-samples the flow weights: no second training run
    assert sorted(p.name for p in (out / "train").iterdir()) == ["flow"]
    head = json.loads((out / "train/flow/reach/s0/checkpoints/last/config.json").read_text())["policy"]["head"]
    assert head["init_noise"] == "gaussian"
    # the variant's sampling option reached the policy that was evaluated (metrics record the head as sampled)
    for variant, noise in (("flow", "gaussian"), ("flow_z0", "zero")):
        m = json.loads((out / f"cells/{variant}/reach/s0/metrics.json").read_text())["summary"]
        assert m["head"]["init_noise"] == noise, variant
    before = _mtimes(out)
    assert len(before) == 4
    rows2 = run_experiment(exp, out=out, progress=False)
    assert _mtimes(out) == before  # finished cells are not re-run
    assert [r["mean_max_score"] for r in rows2] == [r["mean_max_score"] for r in rows]
    # another budget into the same --out: refused with what differs, nothing rewritten
    saved = (out / "experiment.yaml").read_text()
    with pytest.raises(ConfigError, match=r"train_cli: .* -> .*algo.steps=40"):
        run_experiment(exp, out=out, progress=False, overrides=["algo.steps=40"])
    assert (out / "experiment.yaml").read_text() == saved and _mtimes(out) == before


def test_killed_grid_resumes(tmp_path):
    exp, out = _write(tmp_path), tmp_path / "out"
    env = {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "robolearn.cli", "ablate", str(exp), "--out", str(out)]
    kill_when(cmd, env, lambda: bool(_mtimes(out)), timeout=300)
    done = _mtimes(out)
    assert 1 <= len(done) < 4
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    after = _mtimes(out)
    assert len(after) == 4
    assert all(after[k] == v for k, v in done.items())  # what was finished stays as it was
    assert "flow_z0" in r.stdout and "results.csv" in r.stdout


INTERACTIVE = """
name: rounds
seeds: [0]
train: [algo.steps=20, algo.batch_size=16, algo.warmup_steps=2, algo.log_every=10, algo.val_every=20,
        algo.ckpt_every=20, device=cpu, policy=regression]
eval: {episodes: 2, n_envs: 2}
tasks:
  reach: {overrides: [task=fetch_reach], collect: {episodes: 3}}
variants:
  bc: {train: []}
  dagger: {train: [algo=dagger, algo.rounds=1, algo.demo_episodes=2, algo.episodes_per_round=1,
                   algo.heldout_episodes=1, algo.eval_episodes=2, algo.steps=20]}
"""


def test_an_interactive_variant_runs_its_rounds_and_reports_its_labels(tmp_path):
    """A variant with algo=dagger runs DAgger's rounds (its own demos, then one learner round) and
    the cell evaluates the last round's model; the table counts each variant's expert labels."""
    out = tmp_path / "out"
    rows = {r["variant"]: r for r in run_experiment(_write(tmp_path, INTERACTIVE), out=out, progress=False)}
    prog = json.loads((out / "train/dagger/reach/s0/progress.json").read_text())
    assert prog["completed_round"] == 1 and prog["method"] == "dagger"
    assert rows["dagger"]["expert_labels"] == prog["history"][-1]["expert_labels"]
    assert rows["dagger"]["expert_labels"] > prog["history"][0]["expert_labels"]  # round 1 added labels
    from robolearn.data.replay_buffer import ReplayBuffer

    demos = ReplayBuffer.open(out / "data/reach.zarr")
    assert demos.n_episodes == 3 and rows["bc"]["expert_labels"] == demos.n_steps  # the steps BC trained on
    demos.close()
    # environment steps after the demonstrations: DAgger's mixed rollouts; none for BC
    assert rows["bc"]["env_steps"] == 0
    assert rows["dagger"]["env_steps"] == prog["history"][-1]["env_steps"] - prog["history"][0]["env_steps"] > 0
    assert "| learner env steps |" in (out / "results.md").read_text()
    m = json.loads((out / "cells/dagger/reach/s0/metrics.json").read_text())["summary"]
    assert Path(m["checkpoint"]).resolve() == (out / "train/dagger/reach/s0" / prog["checkpoints"]["1"]).resolve()


ADVERSARIAL = """
name: adv
seeds: [0]
train: [algo.steps=50, device=cpu]
eval: {episodes: 3, n_envs: 3}
tasks:
  catch: {overrides: [task=catch], collect: {episodes: 4}}
variants:
  gail: {train: [algo=gail, algo.rounds=1, algo.env_steps_per_round=128, algo.disc_updates=2, eval.episodes=2]}
"""


def test_an_adversarial_variant_is_a_cell_like_the_others(tmp_path):
    """A GAIL variant trains its PPO learner on the experiment's demos and is evaluated through the
    same rollout loop and seeds as every cell; finished, it is never re-run."""
    pytest.importorskip("stable_baselines3", reason="GAIL cells need stable-baselines3")
    out = tmp_path / "out"
    (row,) = run_experiment(_write(tmp_path, ADVERSARIAL), out=out, progress=False)
    m = json.loads((out / "cells/gail/catch/s0/metrics.json").read_text())
    assert [e["seed"] for e in m["episodes"]] == [100000, 100001, 100002]  # the experiment's eval, not the algo's
    assert m["summary"]["checkpoint"].endswith("train/gail/catch/s0/learner.zip")
    hist = json.loads((out / "train/gail/catch/s0/history.json").read_text())
    assert row["expert_labels"] == hist[-1]["expert_labels"] > 0 and row["nfe"] is None
    assert row["env_steps"] == 128  # PPO's steps against the critic (1 round x 128)
    before = _mtimes(out)
    run_experiment(_write(tmp_path, ADVERSARIAL), out=out, progress=False)
    assert _mtimes(out) == before


CHANCE = """
name: chance
seeds: [0]
train: []
eval: {episodes: 4, n_envs: 2}
tasks:
  catch: {overrides: [task=catch], collect: {episodes: 2}}
variants:
  uniform: {train: [algo=chance, algo.low=-1.0]}
"""


def test_a_new_experiment_kind_is_a_schema_and_one_cell_function(tmp_path, monkeypatch):
    """The extension seam: a chance baseline (uniform random actions) as a new kind of cell, written
    here in 25 lines (its schema, its algo YAML, its cell function); the runner plans, evaluates,
    tabulates and resumes it like every other cell, and its option is checked by its schema."""
    from dataclasses import dataclass

    import numpy as np

    from robolearn.atomic import write_json
    from robolearn.config import add_config_dir
    from robolearn.config_files import _EXTRA_DIRS
    from robolearn.config_schema import ALGOS, Name
    from robolearn.eval.metrics import summarize
    from robolearn.eval.rollout import rollout
    from robolearn.experiments import cells
    from robolearn.train.trainer import make_task_from

    monkeypatch.setattr(cells, "CELL_KINDS", dict(cells.CELL_KINDS))
    monkeypatch.setattr("robolearn.config_schema.ALGOS", dict(ALGOS))
    monkeypatch.setattr("robolearn.config_files._EXTRA_DIRS", list(_EXTRA_DIRS))
    (tmp_path / "algo").mkdir()
    (tmp_path / "algo" / "chance.yaml").write_text("name: chance\nlow: -1.0\n")
    add_config_dir(tmp_path)
    calls = []

    @dataclass
    class ChanceSchema:
        name: Name
        low: float

    class Uniform:
        def __init__(self, n, a, low):
            self.rng, self.n, self.a, self.low = np.random.default_rng(0), n, a, low

        def reset(self):
            pass

        def act(self, obs):
            return self.rng.uniform(self.low, 1.0, (self.n, self.a))

    @cells.register_cell("chance", has_head=False, schema=ChanceSchema)
    def chance_cell(exp, variant, cfg, train_dir, cell_dir, progress):
        calls.append(variant)
        task = make_task_from(cfg)
        a = len(task.spec.action_low)
        recs = rollout(lambda n, w: Uniform(n, a, float(cfg.algo.low)), task, int(cfg.eval.episodes),
                       int(cfg.eval.n_envs), int(cfg.eval.seed_start), 1, progress=False)  # fmt: skip
        write_json({"summary": summarize(recs), "episodes": recs}, cell_dir / "metrics.json")
        return summarize(recs)

    out = tmp_path / "out"
    (row,) = run_experiment(_write(tmp_path, CHANCE), out=out, progress=False)
    m = json.loads((out / "cells/uniform/catch/s0/metrics.json").read_text())
    assert calls == ["uniform"] and [e["seed"] for e in m["episodes"]] == [100000, 100001, 100002, 100003]
    assert row["nfe"] is None and row["episodes"] == 4 and row["success_rate"] == m["summary"]["success_rate"]
    assert "uniform" in (out / "results.md").read_text()
    run_experiment(_write(tmp_path, CHANCE), out=out, progress=False)
    assert calls == ["uniform"]  # finished: never re-run
    with pytest.raises(ConfigError, match="algo.low: expected a number"):  # its schema checks its option
        run_experiment(_write(tmp_path, CHANCE.replace("algo.low=-1.0", "algo.low=abc")), out=tmp_path / "o2")


def test_unknown_seed_task_or_variant_is_refused_before_any_work(tmp_path):
    exp = _write(tmp_path)
    with pytest.raises(ConfigError, match="--seeds"):
        run_experiment(exp, out=tmp_path / "o", progress=False, only_seeds=[7])
    with pytest.raises(ConfigError, match="--tasks"):
        run_experiment(exp, out=tmp_path / "o", progress=False, only_tasks=["nope"])
    with pytest.raises(ConfigError, match=r"--variants \['nope'\]: not in the experiment's variants"):
        run_experiment(exp, out=tmp_path / "o", progress=False, only_variants=["nope"])
    assert not (tmp_path / "o" / "cells").exists()


@pytest.mark.parametrize(
    "text, words",
    [
        ("seeds: [0]\ntasks: {}\nvariants: {a: {train: [policy=flow]}}", "'tasks'"),
        ("tasks: {t: {overrides: [task=fetch_reach]}}\nvariants: {a: {from: b}}", "variants.a.from"),
        ("tasks: {t: {overrides: [task=fetch_reach]}}\nvariants: {a: {train: policy=flow}}", "variants.a.train"),
        ("seeds: []\ntasks: {t: {overrides: [task=fetch_reach]}}\nvariants: {a: {train: [policy=flow]}}", "'seeds'"),
        (
            "tasks: {t: {overrides: [task=catch], collect: {episodes: 2, noise: -0.1}}}\nvariants: {a: {train: [a=b]}}",
            "tasks.t.collect.noise: expected a number >= 0, found -0.1",
        ),
    ],
)
def test_bad_experiment_files_are_one_line_errors(tmp_path, text, words):
    with pytest.raises(ConfigError) as e:
        load_experiment(_write(tmp_path, text))
    assert words in str(e.value) and "tiny.yaml" in str(e.value) and "\n" not in str(e.value)


def test_aggregate_pools_successes_and_scores_relative_to_the_reference():
    rows = [
        {
            "variant": v,
            "task": "t",
            "seed": s,
            "components": "",
            "nfe": 1,
            "mean_max_score": sc,
            "successes": k,
            "episodes": 10,
        }
        for v, s, sc, k in [("flow", 0, 0.8, 5), ("flow", 1, 0.6, 3), ("reg", 0, 0.35, 1), ("reg", 1, 0.35, 0)]
    ]
    agg = {a["variant"]: a for a in aggregate(rows, "flow")}
    assert agg["flow"]["score_mean"] == pytest.approx(0.7) and agg["flow"]["relative"] == pytest.approx(1.0)
    assert agg["reg"]["relative"] == pytest.approx(0.5) and agg["reg"]["success"] == pytest.approx(0.05)
    assert agg["reg"]["success_lo"] < 0.05 < agg["reg"]["success_hi"]
    assert "| reg |" in markdown_table(list(agg.values()), "flow")


@pytest.mark.parametrize("name", group_options("experiment"))
def test_shipped_experiments_compose(name):
    """Every variant of every shipped experiment builds a valid training config."""
    from robolearn.config import config_root, to_dict
    from robolearn.experiments import cell_cfg
    from robolearn.heads.base import build_head

    exp = load_experiment(config_root() / "experiment" / f"{name}.yaml")
    for v in exp.variants:
        for t in exp.tasks:
            cfg = cell_cfg(exp, v, t, 0, None)
            head = {**to_dict(cfg.policy.head), **to_dict(exp.variants[v].get("sample") or {})}
            build_head(head.pop("name"), 8, int(cfg.policy.horizon), 2, **head)  # raises on a bad option


REGRET = """
name: regret
seeds: [0]
train: [policy=regression, eval.action_noise=0.3]
eval: {episodes: 4, n_envs: 2}
tasks:
  T20: {overrides: [task=cartpole, task.kwargs.max_steps=20], collect: {episodes: 1}}
  T40: {overrides: [task=cartpole, task.kwargs.max_steps=40], collect: {episodes: 1}}
variants:
  expert: {train: [algo=expert]}
  bc: {train: [algo.steps=20, algo.batch_size=16, algo.log_every=10, algo.val_every=20, algo.ckpt_every=20,
               device=cpu, algo.warmup_steps=2]}
"""


def test_expert_cells_give_the_reference_of_a_regret_table(tmp_path):
    """`algo=expert` cells run the scripted expert on the experiment's seeds with its execution noise;
    tools/regret_horizon.py turns expert and learner cells into regret against the horizon."""
    out = tmp_path / "out"
    part = run_experiment(_write(tmp_path, REGRET), out=out, progress=False, only_variants=["expert"])  # --variants
    assert {(r["variant"], r["task"]) for r in part} == {("expert", "T20"), ("expert", "T40")}
    assert not (out / "cells" / "bc").exists() and not (out / "train" / "bc").exists()
    rows = run_experiment(_write(tmp_path, REGRET), out=out, progress=False)
    assert {(r["variant"], r["task"]) for r in rows} == {(v, t) for v in ("expert", "bc") for t in ("T20", "T40")}
    m = json.loads((out / "cells/expert/T40/s0/metrics.json").read_text())
    assert [e["seed"] for e in m["episodes"]] == [100000, 100001, 100002, 100003]
    assert m["summary"]["checkpoint"] == "scripted expert" and m["summary"]["action_noise"] == 0.3
    assert m["summary"]["max_steps"] == 40 and m["summary"]["success_rate"] == 1.0  # LQR balances 40 steps
    expert_rows = [r for r in rows if r["variant"] == "expert"]
    assert all(r["expert_labels"] is None and r["env_steps"] == 0 for r in expert_rows)  # nothing labelled or learned
    bc = {r["task"]: r for r in rows if r["variant"] == "bc"}
    r = subprocess.run(
        [sys.executable, "tools/regret_horizon.py", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert r.returncode == 0, r.stderr
    assert "| expert J | 20.0 | 40.0 |" in r.stdout
    want = f"| bc regret | {20 * (1 - bc['T20']['mean_max_score']):.1f} ± nan (1) |"
    assert want in r.stdout, r.stdout


def test_a_cell_trained_on_the_tasks_own_data_counts_its_steps_as_labels(tmp_path, pusht_zarr):
    """A BC cell whose task brings its data (Push-T's human demonstrations: nothing collected by the
    experiment) reports the steps of that data as its labels, not none."""
    from omegaconf import OmegaConf

    from robolearn.data.replay_buffer import ReplayBuffer
    from robolearn.experiments.cells import _cell_cost

    train_dir = tmp_path / "train"
    train_dir.mkdir()
    OmegaConf.save(OmegaConf.create({"data": None, "task": {"data": str(pusht_zarr)}}), train_dir / "config.yaml")
    buf = ReplayBuffer.open(pusht_zarr, mode="r")
    try:
        assert _cell_cost(train_dir, tmp_path / "out", "pusht_keypoints")[1:] == (buf.n_steps, 0)
    finally:
        buf.close()


def test_a_variants_setting_wins_over_the_files_and_the_command_line_over_both(tmp_path):
    """Order of a cell's training settings: file `train:` < the variant's `train:` < command line."""
    from robolearn.experiments.spec import cell_cfg

    text = TINY.replace("flow: {train: [policy=flow]", "flow: {train: [policy=flow, algo.steps=70, algo.batch_size=8]")
    exp = load_experiment(_write(tmp_path, text))
    cfg = cell_cfg(exp, "flow", "reach", 0, None)
    assert cfg.algo.steps == 70 and cfg.algo.batch_size == 8 and cfg.algo.warmup_steps == 5  # file's for the rest
    assert cell_cfg(exp, "flow_z0", "reach", 0, None).algo.steps == 70  # `from:` trains the same model
    exp = load_experiment(_write(tmp_path, text), ["algo.steps=11"])
    assert cell_cfg(exp, "flow", "reach", 0, None).algo.steps == 11  # a budget for every cell
    assert cell_cfg(exp, "flow", "reach", 0, None).algo.batch_size == 8


def test_hardest_tasks_pools_the_seeds_of_one_variant(tmp_path, capsys):
    """tools/hardest_tasks.py: the tasks a suite's variant succeeded least on, seeds pooled, ties by name."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
    from hardest_tasks import main

    rows = [  # (variant, task, seed, successes): a ranks lowest only with both seeds pooled
        ("reg", "a", 0, 10), ("reg", "a", 1, 0), ("reg", "b", 0, 6), ("reg", "b", 1, 6),
        ("reg", "c", 0, 5), ("reg", "c", 1, 5), ("reg", "d", 0, 5), ("reg", "d", 1, 5), ("flow", "b", 0, 0),
    ]  # fmt: skip
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "task", "seed", "successes", "episodes"])
        w.writerows([(v, t, s, k, 10) for v, t, s, k in rows])
    assert main([str(tmp_path), "--variant", "reg", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "suite: {tasks: [a, c, d]}"  # 0.50, 0.50, 0.50 by name; b (0.60) left out
    assert "| a | 0.50 | 10 / 20 |" in out
    with pytest.raises(SystemExit, match="no row of variant 'mdn'"):
        main([str(tmp_path), "--variant", "mdn"])


def test_a_packed_archive_restores_the_finished_cells_without_their_checkpoints(tmp_path, capsys):
    """tools/results_archive.py: the cells (not train/ or data/) travel in one archive; unpacked into a
    fresh directory, the same command trains nothing and gives the same table; unpacking never
    replaces a file that exists with other contents."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from results_archive import main

    exp, out, fresh = _write(tmp_path), tmp_path / "out", tmp_path / "fresh"
    rows = run_experiment(exp, out=out, progress=False, overrides=["seeds=[0]"])
    archive = tmp_path / "keep" / "tiny.tar.gz"
    assert main(["pack", str(out), str(archive)]) == 0
    assert main(["unpack", str(archive), str(fresh)]) == 0
    assert not (fresh / "train").exists() and not (fresh / "data").exists()
    assert sorted(_mtimes(fresh)) == sorted(_mtimes(out))
    again = run_experiment(exp, out=fresh, progress=False, overrides=["seeds=[0]"])
    assert not (fresh / "train").exists()  # every cell was found finished: nothing trained
    key = ("variant", "seed", "success_rate", "mean_max_score")
    assert [tuple(r[k] for k in key) for r in again] == [tuple(r[k] for k in key) for r in rows]
    mine = next(iter(fresh.glob("cells/*/*/*/metrics.json")))
    mine.write_text('{"mine": 1}')
    gone = next(p for p in fresh.glob("cells/*/*/*/metrics.json") if p != mine)
    gone.unlink()
    capsys.readouterr()
    assert main(["unpack", str(archive), str(fresh)]) == 0
    assert mine.read_text() == '{"mine": 1}' and gone.is_file()
    assert str(mine) in capsys.readouterr().err
